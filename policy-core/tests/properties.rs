//! Property tests: the core against the naive reference model in `reference/`, plus
//! structural properties of the decision function (monotonicity under `some`,
//! rule-order independence, determinism, no panics on any input).
//!
//! Shrunk counterexamples are kept in `regressions.json` and replayed by
//! [`regressions_replay`]. `TAGLOCK_PROPTEST_CASES=N` raises the case count for a
//! longer soak.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

#[path = "generators/mod.rs"]
mod generators;
mod reference;

use generators::{
    config, json_ish, named_rules, policy, push_request, replace_node, request, rule_body,
};
use policy_core::{Policy, PolicyDocument, Request};
use proptest::prelude::*;
use reference::Outcome;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------
// Running both models.

fn load(policy: &Value) -> Policy {
    Policy::from_json(&policy.to_string())
        .unwrap_or_else(|e| panic!("generated policy does not load: {e:?}\n{policy:#}"))
}

fn parse_request(request: &Value) -> Request {
    Request::from_json(&request.to_string())
        .unwrap_or_else(|e| panic!("generated request does not parse: {e}\n{request:#}"))
}

fn core_outcome(policy: &Policy, request: &Request) -> Outcome {
    let decision = policy.evaluate(request);
    Outcome::from_decision_json(&serde_json::to_value(&decision).unwrap())
        .unwrap_or_else(|e| panic!("core decision is inconsistent: {e}\n{decision:#?}"))
}

fn reference_outcome(policy: &Value, request: &Request) -> Outcome {
    let document: PolicyDocument = policy_core::from_json(&policy.to_string()).unwrap();
    reference::evaluate(&document, request)
}

/// Checks core == reference on one (policy, request), with a readable failure.
fn agree(policy: &Value, request: &Value) -> Result<Outcome, TestCaseError> {
    let loaded = load(policy);
    let parsed = parse_request(request);
    let core = core_outcome(&loaded, &parsed);
    let reference = reference_outcome(policy, &parsed);
    agree_on_tester(&loaded, policy, &parsed)?;
    prop_assert_eq!(
        &core,
        &reference,
        "core (left) and reference (right) disagree\npolicy: {}\nrequest: {}",
        policy,
        request
    );
    Ok(core)
}

/// The pattern tester (`test_tag`) agrees with the reference on every valid tag the
/// request names.
fn agree_on_tester(
    loaded: &Policy,
    policy: &Value,
    request: &Request,
) -> Result<(), TestCaseError> {
    let image = request.image();
    if !reference::valid_image_name(image) {
        return Ok(());
    }
    let document: PolicyDocument = policy_core::from_json(&policy.to_string()).unwrap();
    let tags: Vec<&str> = match request {
        Request::Push(r) => r.tags.iter().map(|t| t.name.as_str()).collect(),
        Request::Delete(r) => r.tags.iter().flatten().map(|t| t.name.as_str()).collect(),
        _ => Vec::new(),
    };
    for tag in tags.into_iter().filter(|t| reference::valid_tag(t)) {
        let test = loaded.test_tag(image, tag);
        let view = reference::TagView {
            protected: test.protected,
            rule: test.rule.as_deref().map(str::to_owned),
            because: serde_json::to_value(test.because)
                .unwrap()
                .as_str()
                .unwrap_or("?")
                .to_owned(),
            matches: test
                .matches
                .iter()
                .map(|m| (m.rule.to_string(), m.start, m.end))
                .collect(),
            exception: test.exception,
        };
        prop_assert!(
            test.error.is_none(),
            "tester refused {}:{}: {:?}",
            image,
            tag,
            test.error
        );
        let expected = reference::test_tag(&document, image, tag);
        prop_assert_eq!(
            &view,
            &expected,
            "tester disagrees on {}:{}\npolicy: {}",
            image,
            tag,
            policy
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Properties.

proptest! {
    #![proptest_config(config(2048))]

    /// The core and the reference model agree on every compared field.
    #[test]
    fn core_matches_reference(policy in policy(), request in request()) {
        agree(&policy, &request)?;
    }
}

proptest! {
    #![proptest_config(config(1024))]

    /// Under `some` in enforce mode, adding a rule anywhere never turns a denied push
    /// into an allowed one.
    #[test]
    fn adding_a_rule_never_allows_a_denied_push(
        policy in policy(),
        extra in rule_body(),
        at in any::<prop::sample::Index>(),
        request in push_request(),
    ) {
        let mut policy = policy;
        policy["mode"] = json!("enforce");
        policy["limits"] = json!("harbor");
        policy["immutability"]["protect"] = json!("some");
        let before = agree(&policy, &request)?;
        let mut extended = policy.clone();
        let rules = extended["immutability"]["rules"].as_array_mut().unwrap();
        let mut added = named_rules(vec![extra], "added").remove(0);
        added["name"] = json!("added");
        rules.insert(at.index(rules.len() + 1), added);
        let after = agree(&extended, &request)?;
        if !before.allowed {
            prop_assert!(!after.allowed, "adding a rule allowed a denied push\nbefore: {:?}\nafter: {:?}\npolicy: {}", before, after, extended);
        }
        // Protection only grows: every tag protected before still is.
        for tag in &before.protected_tags {
            prop_assert!(!after.allowed || after.protected_tags.contains(tag));
        }
    }

    /// Reordering rules changes at most which rule is named (and its pattern).
    #[test]
    fn rule_order_only_changes_the_named_rule(
        (policy, shuffled) in policy().prop_flat_map(|p| {
            let rules = p["immutability"]["rules"].as_array().cloned().unwrap_or_default();
            (Just(p), Just(rules).prop_shuffle())
        }),
        request in request(),
    ) {
        let mut reordered = policy.clone();
        reordered["immutability"]["rules"] = json!(shuffled);
        let a = agree(&policy, &request)?;
        let b = agree(&reordered, &request)?;
        prop_assert_eq!(a.allowed, b.allowed);
        prop_assert_eq!(a.would_deny, b.would_deny);
        prop_assert_eq!(&a.reason, &b.reason);
        prop_assert_eq!(a.status, b.status);
        prop_assert_eq!(&a.protected_tags, &b.protected_tags);
        prop_assert_eq!(&a.code, &b.code);
        prop_assert_eq!(&a.tag, &b.tag);
        prop_assert_eq!(&a.current_digest, &b.current_digest);
        prop_assert_eq!(&a.via, &b.via);
    }

    /// The same input, evaluated twice (and under a second load), gives the identical
    /// decision and the identical JSON.
    #[test]
    fn evaluation_is_deterministic(policy in policy(), request in request()) {
        let text = policy.to_string();
        let first = Policy::from_json(&text).unwrap();
        let second = Policy::from_json(&text).unwrap();
        let parsed = parse_request(&request);
        let reparsed = parse_request(&request);
        let a = first.evaluate(&parsed);
        let b = first.evaluate(&parsed);
        let c = second.evaluate(&reparsed);
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(&a, &c);
        let json_a = serde_json::to_string(&a).unwrap();
        prop_assert_eq!(&json_a, &serde_json::to_string(&b).unwrap());
        prop_assert_eq!(&json_a, &serde_json::to_string(&c).unwrap());
        prop_assert_eq!(first.lints(), second.lints());
    }
}

// ---------------------------------------------------------------------------
// Globs: random globs against the reference's recursive matcher.

fn glob_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "a", "b", "c", "1", ".", "-", "_", "/", "*", "**", "?", "{", "}", ",", "[", "]", "!",
            "a-c", "\\", "\\*",
        ]),
        0..=8,
    )
    .prop_map(|parts| parts.concat())
}

fn name_text(alphabet: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(alphabet.chars().collect::<Vec<_>>()),
        1..=8,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

proptest! {
    #![proptest_config(config(2048))]

    /// A random glob loads in the core exactly when the reference parses it, and then
    /// selects the same tags (tag selector) and images (repository selector).
    #[test]
    fn globs_match_the_reference(
        glob in glob_text(),
        tags in prop::collection::vec(name_text("abc1._-"), 1..=4),
        images in prop::collection::vec(name_text("abc1/._-"), 1..=4),
    ) {
        let tag_policy = json!({ "version": 1, "immutability": { "protect": "some", "rules": [
            { "name": "tags", "tags": { "matching": [glob] } },
        ] } });
        let image_policy = json!({ "version": 1, "immutability": { "protect": "some", "rules": [
            { "name": "repos", "tags": { "regex": "^image-probe$" }, "repositories": { "matching": [glob] } },
        ] } });
        let loaded = Policy::from_json(&tag_policy.to_string());
        let loaded_images = Policy::from_json(&image_policy.to_string());
        prop_assert_eq!(loaded.is_ok(), reference::glob_parses(&glob), "glob {:?}: core {:?}", glob, loaded.as_ref().err());
        prop_assert_eq!(loaded.is_ok(), loaded_images.is_ok());
        let (Ok(loaded), Ok(loaded_images)) = (loaded, loaded_images) else { return Ok(()) };
        for tag in tags.iter().filter(|t| reference::valid_tag(t)) {
            let test = loaded.test_tag("acme/web", tag);
            prop_assert_eq!(test.protected, reference::glob_matches(&glob, tag), "glob {:?} on tag {:?}", glob, tag);
        }
        for image in images.iter().filter(|i| reference::valid_image_name(i)) {
            let test = loaded_images.test_tag(image, "image-probe");
            prop_assert_eq!(test.protected, reference::glob_matches(&glob, image), "glob {:?} on image {:?}", glob, image);
        }
    }

    /// A random regex selects exactly the tags the `regex` crate's partial match
    /// selects (the core may pre-filter on literal prefixes; this keeps it honest), and
    /// the tester highlights the leftmost-first match.
    #[test]
    fn regexes_match_the_reference(
        regex in (
            prop::sample::select(vec!["", "", "^", r"\A", "(?i)^", "^(?i)", "(?:^|-)", "^(?:v|)"]),
            prop::collection::vec(prop::sample::select(vec![
                "v", "1", r"\d+", r"\.", ".", "prod", "(?:a|b)", "(?i:p)", "[a-c]", "x?", "(?:rc|)",
                "-", "(?:v|rc)", r"\w*", "(?:^a|b)", "(?:R|r)", "P?",
            ]), 0..=4),
            prop::sample::select(vec!["", "", "$", r"\z", "|^1"]),
        ).prop_map(|(head, atoms, tail)| format!("{head}{}{tail}", atoms.concat())),
        tags in prop::collection::vec(name_text("abvxrcpPRD1.-"), 1..=6),
    ) {
        let policy = json!({ "version": 1, "immutability": { "protect": "some", "rules": [
            { "name": "re", "tags": { "regex": regex } },
        ] } });
        let loaded = Policy::from_json(&policy.to_string())
            .unwrap_or_else(|e| panic!("regex {regex:?} does not load: {e:?}"));
        let compiled = regex::bytes::RegexBuilder::new(&regex).unicode(false).build().unwrap();
        for tag in tags.iter().filter(|t| reference::valid_tag(t)) {
            let test = loaded.test_tag("acme/web", tag);
            prop_assert_eq!(test.protected, reference::regex_matches(&regex, tag), "regex {:?} on tag {:?}", regex, tag);
            let span = compiled.find(tag.as_bytes()).map(|m| (m.start(), m.end()));
            let core_span = test.matches.first().map(|m| (m.start, m.end));
            prop_assert_eq!(core_span, span, "regex {:?} span on tag {:?}", regex, tag);
        }
    }

    /// The reference's name grammars agree with the core's hand-written checkers.
    #[test]
    fn name_grammars_match_the_reference(
        image in name_text("aB1/._-:"),
        tag in name_text("aB1/._-: "),
        algorithm in prop::sample::select(vec!["sha256", "sha512", "x+y", "Sha256", "a.", ""]),
        encoded in name_text("af09AF=_-:g"),
    ) {
        let d = format!("{algorithm}:{encoded}");
        prop_assert_eq!(policy_core::names::check_image_name(&image).is_ok(), reference::valid_image_name(&image), "image {:?}", image);
        prop_assert_eq!(policy_core::names::check_tag(&tag).is_ok(), reference::valid_tag(&tag), "tag {:?}", tag);
        prop_assert_eq!(policy_core::names::check_digest(&d).is_ok(), reference::valid_digest(&d), "digest {:?}", d);
    }
}

fn exercise(policy_text: &str, request_text: &str) {
    let policy = Policy::from_json(policy_text);
    let request = Request::from_json(request_text);
    let _ = policy_core::requests_from_json(request_text);
    if let Ok(policy) = &policy {
        let _ = policy.lints();
        let _ = policy.test_tag("acme/web", "v1.2.3");
        if let Ok(request) = &request {
            let decision = policy.evaluate(request);
            let _ = serde_json::to_value(&decision);
        }
    }
}

proptest! {
    #![proptest_config(config(1024))]

    /// Arbitrary text never panics the parsers.
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,64}", bytes in "[{}\\[\\]\":,0-9a-z \\\\]{0,48}") {
        exercise(&text, &text);
        exercise(&bytes, &bytes);
    }

    /// Arbitrary JSON structures, and valid documents with one node replaced by
    /// arbitrary JSON, never panic loading or evaluation.
    #[test]
    fn arbitrary_json_never_panics(
        noise in json_ish(),
        policy in policy(),
        request in request(),
        policy_pick in any::<usize>(),
        request_pick in any::<usize>(),
    ) {
        exercise(&noise.to_string(), &noise.to_string());
        let mut broken_policy = policy.clone();
        let mut pick = policy_pick % 64;
        replace_node(&mut broken_policy, &mut pick, &noise);
        let mut broken_request = request.clone();
        let mut pick = request_pick % 24;
        replace_node(&mut broken_request, &mut pick, &noise);
        exercise(&broken_policy.to_string(), &request.to_string());
        exercise(&policy.to_string(), &broken_request.to_string());
    }

    /// Arbitrary regex and glob text in every selector never panics loading, and a
    /// policy that loads evaluates without panicking.
    #[test]
    fn arbitrary_patterns_never_panic(
        regex in "[\\\\^$.|?*+()\\[\\]{}a-z0-9,!:<=-]{0,24}",
        glob in "[\\\\*?{}\\[\\],!a-z0-9/-]{0,16}",
        request in request(),
    ) {
        let policy = json!({ "version": 1, "immutability": {
            "protect": "some",
            "rules": [
                { "name": "re", "tags": { "regex": regex }, "repositories": { "regex": regex } },
                { "name": "glob", "tags": { "excluding": [glob] }, "repositories": { "matching": [glob] } },
            ],
            "exceptions": [{ "regex": regex }, { "matching": [glob] }],
        }, "permissions": { "images": [{ "pattern": glob, "repository": "r" }] } });
        exercise(&policy.to_string(), &request.to_string());
    }
}

// ---------------------------------------------------------------------------
// Regressions: shrunk counterexamples, replayed on every run.

#[test]
fn regressions_replay() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/regressions.json"
    ))
    .expect("tests/regressions.json is readable");
    let cases: Vec<Value> = serde_json::from_str(&text).expect("regressions.json is JSON");
    assert!(!cases.is_empty(), "regressions.json holds cases");
    for case in &cases {
        let name = case["name"].as_str().expect("a case has a name");
        let policy = &case["policy"];
        if let Some(valid) = case.get("valid") {
            // A policy case: validity and the load error codes, in order.
            let loaded = Policy::from_json(&policy.to_string());
            assert_eq!(Value::Bool(loaded.is_ok()), *valid, "{name}: validity");
            let codes: Vec<Value> = loaded
                .err()
                .map(|errors| errors.iter().map(|e| json!(e.code.as_str())).collect())
                .unwrap_or_default();
            assert_eq!(json!(codes), case["errors"], "{name}: error codes");
            continue;
        }
        let request = &case["request"];
        let core = agree(policy, request).unwrap_or_else(|e| panic!("{name}: {e}"));
        let expect = &case["expect"];
        let actual = json!({
            "allowed": core.allowed,
            "would_deny": core.would_deny,
            "reason": core.reason,
            "rule": core.rule,
            "protected_tags": core.protected_tags,
            "status": core.status,
        });
        for (field, want) in expect.as_object().expect("expect is an object") {
            assert_eq!(&actual[field], want, "{name}: field {field}");
        }
    }
}

// ---------------------------------------------------------------------------
// The generators reach every outcome (otherwise the differential test proves little).

#[test]
fn generators_reach_every_outcome() {
    use proptest::strategy::ValueTree;
    use std::collections::BTreeMap;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = (policy(), request());
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..2000 {
        let (policy, request) = strategy.new_tree(&mut runner).unwrap().current();
        let core = core_outcome(&load(&policy), &parse_request(&request));
        let mut note = |key: String| *seen.entry(key).or_default() += 1;
        note(format!("{} {}", request["operation"], core.reason));
        note(format!("reason {}", core.reason));
        if core.would_deny {
            note("would_deny".into());
        }
        if !core.protected_tags.is_empty() {
            note("protected_tags".into());
        }
        if core.reason == "tag_immutable" {
            note(format!("immutable rule={}", core.rule.is_some()));
            note(format!("immutable tag={}", core.tag.is_some()));
            note(format!(
                "immutable current={}",
                core.current_digest.is_some()
            ));
            if !core.via.is_empty() {
                note("immutable via".into());
            }
        }
        if let Some(code) = &core.code {
            note(code.clone());
        }
    }
    eprintln!("{seen:#?}");
    let mut missing = Vec::new();
    for key in [
        "\"push\" allowed",
        "\"push\" tag_immutable",
        "\"push\" permission_denied",
        "\"push\" image_not_linked",
        "\"push\" pipelines_only",
        "\"push\" authentication_required",
        "\"push\" invalid_request",
        "\"delete\" allowed",
        "\"delete\" tag_immutable",
        "\"delete\" permission_denied",
        "\"delete\" invalid_request",
        "\"upload\" allowed",
        "reason pipelines_only",
        "\"pull\" allowed",
        "\"pull\" authentication_required",
        "\"mount\" allowed",
        "\"mount\" permission_denied",
        "would_deny",
        "protected_tags",
        "immutable rule=true",
        "immutable rule=false",
        "immutable tag=false",
        "immutable current=true",
        "immutable current=false",
        "immutable via",
        "NAME_INVALID",
        "TAG_INVALID",
        "DIGEST_INVALID",
        "UNAUTHORIZED",
        "DENIED",
    ] {
        if seen.get(key).copied().unwrap_or(0) < 3 {
            missing.push(key);
        }
    }
    assert!(missing.is_empty(), "generators rarely reach {missing:?}");
}
