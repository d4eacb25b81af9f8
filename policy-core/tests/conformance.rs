//! Runs the engine-independent conformance corpus in `tests/conformance/` (at the
//! repository root) against the native core. The format and the comparison rules are
//! written down in `tests/conformance/README.md`; the component, JS and proxy-wasm
//! hosts run the same files with their own runners.
//!
//! Every case runs; all failures are reported together (case, file, expected and
//! actual) before the test fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use policy_core::{Policy, Request};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Loading the corpus and comparing results, kept free of any particular engine
/// call so it reads as the executable form of the README's rules.
mod corpus {
    use serde_json::{Map, Value};
    use std::collections::BTreeMap;
    use std::fs;
    use std::path::Path;

    /// The fewest cases the corpus may hold.
    pub const MIN_CASES: usize = 200;

    /// Where a case's policy comes from.
    #[derive(Debug, Clone)]
    pub enum PolicySource {
        /// `"policy": "<stem>"`: a file in `policies/`.
        Named(String, Value),
        /// `"policy": {...}`.
        Inline(Value),
        /// `"policy_text": "..."`: raw text, possibly not JSON at all.
        Text(String),
    }

    impl PolicySource {
        /// The policy as text, exactly as a host would receive it.
        pub fn text(&self) -> String {
            match self {
                PolicySource::Named(_, value) | PolicySource::Inline(value) => value.to_string(),
                PolicySource::Text(text) => text.clone(),
            }
        }
    }

    /// What a case asks, and what it expects.
    #[derive(Debug, Clone)]
    pub enum Body {
        /// One or more requests, each with its expected decision.
        Decisions(Vec<(Value, Value)>),
        /// `test_tag(image, tag)` and its expected answer.
        TestTag {
            image: String,
            tag: String,
            expect: Value,
        },
        /// Loading the policy: validity, errors, lints.
        Load(Value),
    }

    /// One case of the corpus.
    #[derive(Debug, Clone)]
    pub struct Case {
        pub file: String,
        pub name: String,
        pub spec: String,
        pub policy: PolicySource,
        pub body: Body,
    }

    const CASE_KEYS: &[&str] = &[
        "name",
        "spec",
        "note",
        "policy",
        "policy_text",
        "request",
        "requests",
        "test_tag",
        "expect",
        "expect_load",
    ];
    const DECISION_REQUIRED: &[&str] = &[
        "allowed",
        "would_deny",
        "reason",
        "rule",
        "status",
        "protected_tags",
    ];
    const DECISION_OPTIONAL: &[&str] = &["code", "message_contains", "detail"];
    const TAG_REQUIRED: &[&str] = &["protected", "rule", "because", "matches"];
    const TAG_OPTIONAL: &[&str] = &["exception"];
    const LOAD_KEYS: &[&str] = &["valid", "errors", "lints", "lint_details"];
    const LOCATED_KEYS: &[&str] = &["code", "path", "offset", "rule"];

    /// Reads every policy and case file under `root`. Problems with the corpus
    /// itself (bad JSON, unknown keys, a missing policy) are returned, all of them.
    pub fn load(root: &Path) -> Result<Vec<Case>, Vec<String>> {
        let mut problems = Vec::new();
        let mut policies = BTreeMap::new();
        for path in json_files(&root.join("policies"), &mut problems) {
            let stem = stem(&path);
            match read_json(&path) {
                Ok(value) => {
                    policies.insert(stem, value);
                }
                Err(err) => problems.push(err),
            }
        }
        let reference = root.join("../../docs/policy.md");
        let anchors = match std::fs::read_to_string(&reference) {
            Ok(text) => anchors(&text),
            Err(err) => {
                problems.push(format!("{}: {err}", reference.display()));
                Vec::new()
            }
        };
        let mut cases = Vec::new();
        for path in json_files(&root.join("cases"), &mut problems) {
            let file = format!("cases/{}.json", stem(&path));
            let value = match read_json(&path) {
                Ok(value) => value,
                Err(err) => {
                    problems.push(err);
                    continue;
                }
            };
            let list = match value.as_object() {
                Some(top) if top.len() == 1 && top.get("cases").is_some_and(Value::is_array) => {
                    top.get("cases").and_then(Value::as_array).cloned()
                }
                _ => None,
            };
            let Some(list) = list else {
                problems.push(format!("{file}: expected {{\"cases\": [...]}}"));
                continue;
            };
            for (index, raw) in list.iter().enumerate() {
                match parse_case(raw, &file, &policies, &anchors) {
                    Ok(case) => cases.push(case),
                    Err(err) => problems.push(format!("{file} case #{index}: {err}")),
                }
            }
        }
        if problems.is_empty() {
            Ok(cases)
        } else {
            Err(problems)
        }
    }

    fn json_files(dir: &Path, problems: &mut Vec<String>) -> Vec<std::path::PathBuf> {
        let mut files: Vec<_> = match fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect(),
            Err(err) => {
                problems.push(format!("cannot read {}: {err}", dir.display()));
                Vec::new()
            }
        };
        files.sort();
        files
    }

    fn stem(path: &Path) -> String {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    fn read_json(path: &Path) -> Result<Value, String> {
        let text =
            fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))
    }

    fn only_keys(object: &Map<String, Value>, allowed: &[&str], what: &str) -> Result<(), String> {
        match object.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(key) => Err(format!("unknown key `{key}` in {what}")),
            None => Ok(()),
        }
    }

    fn required(object: &Map<String, Value>, keys: &[&str], what: &str) -> Result<(), String> {
        match keys.iter().find(|k| !object.contains_key(**k)) {
            Some(key) => Err(format!("{what} lacks `{key}`")),
            None => Ok(()),
        }
    }

    /// The anchors of the headings of a Markdown document, as GitHub makes them
    /// (lower case, punctuation dropped, spaces as `-`).
    fn anchors(markdown: &str) -> Vec<String> {
        markdown
            .lines()
            .filter_map(|line| line.strip_prefix('#'))
            .map(|heading| {
                heading
                    .trim_start_matches('#')
                    .trim()
                    .to_lowercase()
                    .chars()
                    .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
                    .map(|c| if c == ' ' { '-' } else { c })
                    .collect()
            })
            .collect()
    }

    fn parse_case(
        raw: &Value,
        file: &str,
        policies: &BTreeMap<String, Value>,
        anchors: &[String],
    ) -> Result<Case, String> {
        let object = raw.as_object().ok_or("a case is an object")?;
        only_keys(object, CASE_KEYS, "a case")?;
        let name = object
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or("a case needs a non-empty string `name`")?
            .to_owned();
        let at = |msg: String| format!("`{name}`: {msg}");
        let spec = object
            .get("spec")
            .and_then(Value::as_str)
            .filter(|s| {
                s.strip_prefix("docs/policy.md#")
                    .is_some_and(|anchor| anchors.iter().any(|a| a == anchor))
            })
            .ok_or_else(|| {
                at("`spec` must name a section of docs/policy.md that exists, like \"docs/policy.md#selectors\"".into())
            })?
            .to_owned();
        let policy = match (object.get("policy"), object.get("policy_text")) {
            (Some(Value::String(stem)), None) => {
                let value = policies
                    .get(stem)
                    .ok_or_else(|| at(format!("no policy file policies/{stem}.json")))?;
                PolicySource::Named(stem.clone(), value.clone())
            }
            (Some(value @ Value::Object(_)), None) => PolicySource::Inline(value.clone()),
            (None, Some(Value::String(text))) => PolicySource::Text(text.clone()),
            _ => {
                return Err(at(
                    "exactly one of `policy` (a stem or an object) and `policy_text` (a string)"
                        .into(),
                ));
            }
        };
        let kinds = ["request", "requests", "test_tag", "expect_load"]
            .iter()
            .filter(|k| object.contains_key(**k))
            .count();
        if kinds != 1 {
            return Err(at(
                "exactly one of `request`, `requests`, `test_tag`, `expect_load`".into(),
            ));
        }
        let expect = object.get("expect");
        let body = if let Some(request) = object.get("request") {
            let expect = expect.ok_or_else(|| at("`request` needs `expect`".into()))?;
            check_decision_expect(expect).map_err(&at)?;
            Body::Decisions(vec![(request.clone(), expect.clone())])
        } else if let Some(requests) = object.get("requests") {
            let requests = requests
                .as_array()
                .filter(|r| !r.is_empty())
                .ok_or_else(|| at("`requests` is a non-empty array".into()))?;
            let expects = expect
                .and_then(Value::as_array)
                .filter(|e| e.len() == requests.len())
                .ok_or_else(
                    || at("`requests` needs an `expect` array of the same length".into()),
                )?;
            for e in expects {
                check_decision_expect(e).map_err(&at)?;
            }
            Body::Decisions(
                requests
                    .iter()
                    .cloned()
                    .zip(expects.iter().cloned())
                    .collect(),
            )
        } else if let Some(test) = object.get("test_tag") {
            let test = test
                .as_object()
                .ok_or_else(|| at("`test_tag` is an object".into()))?;
            only_keys(test, &["image", "tag"], "`test_tag`").map_err(&at)?;
            let field = |k: &str| {
                test.get(k)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| at(format!("`test_tag.{k}` is a string")))
            };
            let expect = expect.ok_or_else(|| at("`test_tag` needs `expect`".into()))?;
            let e = expect
                .as_object()
                .ok_or_else(|| at("`expect` is an object".into()))?;
            only_keys(e, &[TAG_REQUIRED, TAG_OPTIONAL].concat(), "`expect`").map_err(&at)?;
            required(e, TAG_REQUIRED, "`expect`").map_err(&at)?;
            Body::TestTag {
                image: field("image")?,
                tag: field("tag")?,
                expect: expect.clone(),
            }
        } else {
            if expect.is_some() {
                return Err(at("`expect_load` cases have no `expect`".into()));
            }
            let load = object.get("expect_load").cloned().unwrap_or(Value::Null);
            let e = load
                .as_object()
                .ok_or_else(|| at("`expect_load` is an object".into()))?;
            only_keys(e, LOAD_KEYS, "`expect_load`").map_err(&at)?;
            if !e.get("valid").is_some_and(Value::is_boolean) {
                return Err(at("`expect_load.valid` is a boolean".into()));
            }
            for key in ["errors", "lint_details"] {
                for entry in e.get(key).and_then(Value::as_array).into_iter().flatten() {
                    let entry = entry
                        .as_object()
                        .ok_or_else(|| at(format!("`{key}` entries are objects")))?;
                    only_keys(entry, LOCATED_KEYS, key).map_err(&at)?;
                    required(entry, &["code"], key).map_err(&at)?;
                }
            }
            Body::Load(load)
        };
        Ok(Case {
            file: file.to_owned(),
            name,
            spec,
            policy,
            body,
        })
    }

    fn check_decision_expect(expect: &Value) -> Result<(), String> {
        let e = expect.as_object().ok_or("`expect` is an object")?;
        only_keys(
            e,
            &[DECISION_REQUIRED, DECISION_OPTIONAL].concat(),
            "`expect`",
        )?;
        required(e, DECISION_REQUIRED, "`expect`")
    }

    /// Compares a decision (as serialized) with its expectation; returns
    /// every mismatch. Also checks the invariants every decision obeys.
    pub fn compare_decision(expect: &Value, actual: &Value) -> Vec<String> {
        let mut out = Vec::new();
        for key in [
            "allowed",
            "would_deny",
            "reason",
            "message",
            "rule",
            "protected_tags",
            "status",
            "error",
        ] {
            if actual.get(key).is_none() {
                out.push(format!("decision lacks `{key}`"));
            }
        }
        for key in DECISION_REQUIRED {
            let want = &expect[*key];
            let got = &actual[*key];
            if want != got {
                out.push(format!("{key}: expected {want}, got {got}"));
            }
        }
        let error = &actual["error"];
        let first = &error["errors"][0];
        // Invariants: an error body exactly when the request is refused, and it
        // repeats the decision.
        let allowed = actual["allowed"].as_bool().unwrap_or(false);
        if allowed != error.is_null() {
            out.push(format!(
                "`error` must be null exactly when allowed; got {error}"
            ));
        }
        if !error.is_null() {
            if error["errors"].as_array().map(Vec::len) != Some(1) {
                out.push(format!("`error.errors` must hold one error; got {error}"));
            }
            if first["message"] != actual["message"] {
                out.push("`error.errors[0].message` differs from `message`".into());
            }
            if first["detail"]["reason"] != actual["reason"]
                || first["detail"]["rule"] != actual["rule"]
            {
                out.push("`error.errors[0].detail` reason/rule differ from the decision".into());
            }
        }
        if actual["allowed"] == Value::Bool(true)
            && actual["would_deny"] == Value::Bool(false)
            && actual["reason"] != "allowed"
        {
            out.push("an allowed decision without would_deny has reason `allowed`".into());
        }
        if let Some(want) = expect.get("code") {
            let got = if error.is_null() {
                Value::Null
            } else {
                first["code"].clone()
            };
            if *want != got {
                out.push(format!("code: expected {want}, got {got}"));
            }
        }
        if let Some(parts) = expect.get("message_contains").and_then(Value::as_array) {
            let message = actual["message"].as_str().unwrap_or_default();
            for part in parts {
                let part = part.as_str().unwrap_or_default();
                if !message.contains(part) {
                    out.push(format!("message {message:?} does not contain {part:?}"));
                }
            }
        }
        if let Some(detail) = expect.get("detail").and_then(Value::as_object) {
            for (key, want) in detail {
                let got = &first["detail"][key.as_str()];
                if want != got {
                    out.push(format!("detail.{key}: expected {want}, got {got}"));
                }
            }
        }
        out
    }

    /// Compares a `test_tag` answer with its expectation.
    pub fn compare_tag_test(expect: &Value, actual: &Value) -> Vec<String> {
        let mut out = Vec::new();
        for key in ["protected", "rule", "because"] {
            if expect[key] != actual[key] {
                out.push(format!(
                    "{key}: expected {}, got {}",
                    expect[key], actual[key]
                ));
            }
        }
        let got: Vec<Value> = actual["matches"].as_array().cloned().unwrap_or_default();
        let want = expect["matches"].as_array().cloned().unwrap_or_default();
        // A string names the rule; an object also fixes the matched span.
        let same = want.len() == got.len()
            && want.iter().zip(&got).all(|(w, g)| match w {
                Value::String(_) => *w == g["rule"],
                other => other == g,
            });
        if !same {
            out.push(format!(
                "matches: expected {}, got {}",
                expect["matches"], actual["matches"]
            ));
        }
        if let Some(want) = expect.get("exception") {
            if *want != actual["exception"] {
                out.push(format!(
                    "exception: expected {want}, got {}",
                    actual["exception"]
                ));
            }
        }
        out
    }

    /// Compares a load outcome with its expectation: `errors` is `None` for a
    /// policy that loaded; `lints` are that policy's lints.
    pub fn compare_load(expect: &Value, errors: Option<&[Value]>, lints: &[Value]) -> Vec<String> {
        let mut out = Vec::new();
        let valid = errors.is_none();
        if expect["valid"] != Value::Bool(valid) {
            out.push(format!(
                "valid: expected {}, got {valid}; errors {}",
                expect["valid"],
                Value::Array(errors.unwrap_or_default().to_vec())
            ));
            return out;
        }
        let want_errors = expect["errors"].as_array().cloned().unwrap_or_default();
        let got_errors = errors.unwrap_or_default();
        if !located_match(&want_errors, got_errors) {
            out.push(format!(
                "errors: expected {}, got {}",
                Value::Array(want_errors),
                Value::Array(got_errors.to_vec())
            ));
        }
        let want_lints: std::collections::BTreeSet<String> = expect["lints"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        let got_lints: std::collections::BTreeSet<String> = lints
            .iter()
            .filter_map(|l| l["code"].as_str().map(str::to_owned))
            .collect();
        if want_lints != got_lints {
            out.push(format!(
                "lints: expected {want_lints:?}, got {got_lints:?} ({})",
                Value::Array(lints.to_vec())
            ));
        }
        for want in expect["lint_details"].as_array().into_iter().flatten() {
            if !lints.iter().any(|l| located_fits(want, l)) {
                out.push(format!(
                    "no lint fits {want}; lints {}",
                    Value::Array(lints.to_vec())
                ));
            }
        }
        out
    }

    /// Whether `got` fits the located entry `want` (code always; path, offset, rule when given).
    fn located_fits(want: &Value, got: &Value) -> bool {
        LOCATED_KEYS
            .iter()
            .all(|k| want.get(*k).is_none_or(|w| *w == got[*k]))
    }

    /// One-to-one matching of expected entries with actual ones (order-insensitive).
    fn located_match(want: &[Value], got: &[Value]) -> bool {
        fn assign(want: &[Value], got: &[Value], used: &mut Vec<bool>) -> bool {
            let Some((first, rest)) = want.split_first() else {
                return true;
            };
            for (i, g) in got.iter().enumerate() {
                if !used[i] && located_fits(first, g) {
                    used[i] = true;
                    if assign(rest, got, used) {
                        return true;
                    }
                    used[i] = false;
                }
            }
            false
        }
        want.len() == got.len() && assign(want, got, &mut vec![false; got.len()])
    }
}

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance")
}

/// Runs one case natively; returns its mismatches.
fn run(case: &corpus::Case) -> Vec<String> {
    use corpus::Body;
    let loaded = Policy::from_json(&case.policy.text());
    match &case.body {
        Body::Load(expect) => match &loaded {
            Ok(policy) => {
                let lints: Vec<Value> = policy
                    .lints()
                    .iter()
                    .map(|l| serde_json::to_value(l).unwrap())
                    .collect();
                corpus::compare_load(expect, None, &lints)
            }
            Err(errors) => {
                let errors: Vec<Value> = errors
                    .iter()
                    .map(|e| serde_json::to_value(e).unwrap())
                    .collect();
                corpus::compare_load(expect, Some(&errors), &[])
            }
        },
        _ if loaded.is_err() => vec![format!(
            "policy does not load: {}",
            loaded.err().map(|e| e.to_string()).unwrap_or_default()
        )],
        Body::TestTag { image, tag, expect } => {
            let policy = loaded.as_ref().unwrap();
            let actual = serde_json::to_value(policy.test_tag(image, tag)).unwrap();
            corpus::compare_tag_test(expect, &actual)
        }
        Body::Decisions(pairs) => {
            let policy = loaded.as_ref().unwrap();
            let mut out = Vec::new();
            for (index, (request, expect)) in pairs.iter().enumerate() {
                let prefix = if pairs.len() > 1 {
                    format!("request #{index}: ")
                } else {
                    String::new()
                };
                match Request::from_json(&request.to_string()) {
                    Ok(request) => {
                        let actual = policy.evaluate(&request).to_json_value();
                        out.extend(
                            corpus::compare_decision(expect, &actual)
                                .into_iter()
                                .map(|m| format!("{prefix}{m}\n      decision: {actual}")),
                        );
                    }
                    Err(err) => out.push(format!("{prefix}request does not parse: {err}")),
                }
            }
            out
        }
    }
}

#[test]
fn conformance_corpus() {
    let cases = match corpus::load(&corpus_root()) {
        Ok(cases) => cases,
        Err(problems) => panic!("the corpus itself is broken:\n  {}", problems.join("\n  ")),
    };
    let mut names = BTreeSet::new();
    let duplicates: Vec<&str> = cases
        .iter()
        .filter(|c| !names.insert(c.name.as_str()))
        .map(|c| c.name.as_str())
        .collect();
    assert!(
        duplicates.is_empty(),
        "duplicate case names: {duplicates:?}"
    );
    assert!(
        cases.len() >= corpus::MIN_CASES,
        "the corpus holds {} cases; it must hold at least {}",
        cases.len(),
        corpus::MIN_CASES
    );
    let mut failures = Vec::new();
    for case in &cases {
        let mismatches = run(case);
        if !mismatches.is_empty() {
            let policy = match &case.policy {
                corpus::PolicySource::Named(stem, _) => format!("policy {stem}"),
                _ => "inline policy".to_owned(),
            };
            failures.push(format!(
                "{} ({}, {}, {policy}):\n    {}",
                case.name,
                case.file,
                case.spec,
                mismatches.join("\n    ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} conformance cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
    eprintln!("{} conformance cases passed", cases.len());
}

/// The comparison rules themselves must be able to fail.
#[test]
fn comparison_rules_reject_mismatches() {
    let actual = json!({"allowed": false, "would_deny": false, "reason": "tag_immutable",
        "message": "tag v1 of a is immutable", "rule": "semver", "protected_tags": [],
        "status": 403, "error": {"errors": [{"code": "DENIED", "message": "tag v1 of a is immutable",
        "detail": {"reason": "tag_immutable", "rule": "semver", "pattern": null, "tag": "v1",
        "current_digest": null}}]}});
    let good = json!({"allowed": false, "would_deny": false, "reason": "tag_immutable",
        "rule": "semver", "status": 403, "protected_tags": [], "code": "DENIED",
        "message_contains": ["v1"], "detail": {"tag": "v1"}});
    assert!(corpus::compare_decision(&good, &actual).is_empty());
    for (key, value) in [
        ("allowed", json!(true)),
        ("rule", Value::Null),
        ("status", json!(400)),
        ("code", json!("TAG_INVALID")),
        ("message_contains", json!(["v2"])),
        ("detail", json!({"tag": "v2"})),
    ] {
        let mut bad = good.clone();
        bad[key] = value;
        assert!(
            !corpus::compare_decision(&bad, &actual).is_empty(),
            "{key} mismatch went unnoticed"
        );
    }
    let errors = [
        json!({"code": "schema", "path": "mode"}),
        json!({"code": "schema", "path": "x"}),
    ];
    let want =
        json!({"valid": false, "errors": [{"code": "schema", "path": "x"}, {"code": "schema"}]});
    assert!(corpus::compare_load(&want, Some(&errors), &[]).is_empty());
    let want = json!({"valid": false, "errors": [{"code": "schema"}]});
    assert!(!corpus::compare_load(&want, Some(&errors), &[]).is_empty());
    let want = json!({"valid": true, "lints": ["no-rules"]});
    assert!(!corpus::compare_load(&want, None, &[]).is_empty());
}
