#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! Hostile policies: what is refused before it is built, and that loading stays
//! bounded (sizes are asserted; time only as a generous hang-guard).

use policy_core::{Limits, LoadErrors, Policy};

const MAX_IMAGE_PATTERNS: usize = Limits::MAX_IMAGE_PATTERNS;
const MAX_NAME_CHARS: usize = Limits::MAX_NAME_CHARS;
const MAX_POLICY_BYTES: usize = Limits::MAX_POLICY_BYTES;
const MAX_RULE_NAME_CHARS: usize = Limits::MAX_RULE_NAME_CHARS;
use std::time::{Duration, Instant};

/// Loads `text`, failing the test if that takes longer than `guard` (a hang-guard,
/// far above the expected time, not a benchmark).
fn load(text: &str, guard: Duration) -> Result<Policy, LoadErrors> {
    let start = Instant::now();
    let result = Policy::from_json(text);
    let took = start.elapsed();
    assert!(took < guard, "loading took {took:?}");
    result
}

fn codes(errors: &LoadErrors) -> Vec<(String, String)> {
    errors
        .iter()
        .map(|e| (e.code.to_string(), e.path.clone()))
        .collect()
}

#[test]
fn a_number_of_400k_digits_is_located_in_linear_time() {
    let digits = "1".repeat(400_000);
    for (text, path) in [
        (format!(r#"{{"version": {digits}}}"#), "version"),
        (
            format!(
                r#"{{"version": 1, "limits": {{"max_rules": {digits}, "max_pattern_length": 5}}}}"#
            ),
            "limits.max_rules",
        ),
        (format!(r#"{{"version": 1, "mode": {digits}}}"#), "mode"),
        (
            format!(r#"{{"version": 1, "mode": -{digits}.5e+1}}"#),
            "mode",
        ),
    ] {
        let errors = load(&text, Duration::from_secs(10)).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors}");
        assert_eq!(errors.as_slice()[0].path, path, "{errors}");
    }
}

/// A policy whose rules and exceptions are the given JSON texts.
fn policy(rules: &[String], exceptions: &[String], limits: &str) -> String {
    format!(
        r#"{{"version": 1, "limits": {limits}, "immutability": {{"protect": "some", "rules": [{}], "exceptions": [{}]}}}}"#,
        rules.join(","),
        exceptions.join(",")
    )
}

const CEILING: &str = r#"{"max_rules": 1000, "max_pattern_length": 4096}"#;

#[test]
fn entries_past_the_count_cap_are_not_compiled() {
    // 7 valid exceptions, then 20,000 that would each be a regex-syntax error if
    // anything looked at them: only the count is reported.
    let mut exceptions = vec![r#"{"regex": "^a(b|c)+d$"}"#.to_owned(); 7];
    exceptions.extend(std::iter::repeat_n(r#"{"regex": "("}"#.to_owned(), 20_000));
    let rules: Vec<String> = (0..20_000)
        .map(|i| format!(r#"{{"name": "r{i}", "tags": {{"regex": "("}}}}"#))
        .collect();
    let text = policy(&rules, &exceptions, r#""bitbucket""#);
    let errors = load(&text, Duration::from_secs(20)).unwrap_err();
    let got = codes(&errors);
    // The first 7 rules are examined (and are broken); nothing past them is.
    let mut expected = vec![
        ("too-many-rules".to_owned(), "immutability.rules".to_owned()),
        (
            "too-many-rules".to_owned(),
            "immutability.exceptions".to_owned(),
        ),
    ];
    expected.extend((0..7).map(|i| {
        (
            "regex-syntax".to_owned(),
            format!("immutability.rules[{i}].tags.regex"),
        )
    }));
    assert_eq!(got, expected);
    assert!(
        errors.as_slice()[1].message.contains("20007 exceptions"),
        "{errors}"
    );
}

#[test]
fn a_policy_over_the_size_cap_is_refused_unread() {
    let base = r#"{"version": 1}"#;
    let text = format!("{base}{}", " ".repeat(MAX_POLICY_BYTES + 1 - base.len()));
    let errors = load(&text, Duration::from_secs(10)).unwrap_err();
    assert_eq!(
        codes(&errors),
        vec![("policy-too-large".to_owned(), String::new())]
    );
    assert!(errors.as_slice()[0].message.contains("4 MiB"), "{errors}");
    // One byte less is read (and is a valid policy).
    let fits = format!("{base}{}", " ".repeat(MAX_POLICY_BYTES - base.len()));
    assert!(load(&fits, Duration::from_secs(10)).is_ok());
}

#[test]
fn long_names_are_refused_and_never_quoted() {
    let long = "n".repeat(1_000_000);
    let rules = vec![
        format!(r#"{{"name": "{long}", "tags": {{"regex": "("}}}}"#),
        format!(
            r#"{{"name": "{}", "tags": {{"regex": "^a$"}}}}"#,
            "m".repeat(MAX_RULE_NAME_CHARS)
        ),
    ];
    let text = policy(&rules, &[], CEILING);
    let errors = load(&text, Duration::from_secs(10)).unwrap_err();
    assert_eq!(
        codes(&errors),
        vec![
            (
                "name-too-long".to_owned(),
                "immutability.rules[0].name".to_owned()
            ),
            (
                "regex-syntax".to_owned(),
                "immutability.rules[0].tags.regex".to_owned()
            ),
        ]
    );
    // The rule is not named in its errors: its name is what is wrong.
    assert!(errors.iter().all(|e| e.rule.is_none()));
    assert!(
        errors.to_string().len() < 1_000,
        "{}",
        errors.to_string().len()
    );

    let principal = format!("user:{}", "u".repeat(MAX_NAME_CHARS));
    let repository = "r".repeat(MAX_NAME_CHARS + 1);
    let text = format!(
        r#"{{"version": 1, "permissions": {{"workspace_admins": ["{principal}", "user:ok"],
            "repositories": {{"{repository}": {{"admin": ["user:a"]}}, "web": {{"write": ["{principal}"]}}}},
            "images": [{{"name": "acme/web", "repository": "{repository}", "overrides": {{"{principal}": "read"}}}}]}}}}"#
    );
    let errors = load(&text, Duration::from_secs(10)).unwrap_err();
    let mut got = codes(&errors);
    got.sort();
    let mut expected = vec![
        (
            "name-too-long".to_owned(),
            "permissions.workspace_admins[0]".to_owned(),
        ),
        (
            "name-too-long".to_owned(),
            "permissions.repositories".to_owned(),
        ),
        (
            "name-too-long".to_owned(),
            "permissions.repositories.web.write[0]".to_owned(),
        ),
        (
            "name-too-long".to_owned(),
            "permissions.images[0].repository".to_owned(),
        ),
    ];
    expected.sort();
    assert_eq!(got, expected, "{errors}");
}

#[test]
fn control_characters_in_rule_names_are_refused() {
    let rules = vec![
        r#"{"name": "ok\u001b[2Jname", "tags": {"regex": "^a$"}}"#.to_owned(),
        r#"{"name": "two\nlines", "tags": {"regex": "^b$"}}"#.to_owned(),
        r#"{"name": "fine ünïcode", "tags": {"regex": "^c$"}}"#.to_owned(),
    ];
    let errors = load(&policy(&rules, &[], CEILING), Duration::from_secs(10)).unwrap_err();
    let got: Vec<(String, String, Option<usize>)> = errors
        .iter()
        .map(|e| (e.code.to_string(), e.path.clone(), e.offset))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "invalid-rule-name".to_owned(),
                "immutability.rules[0].name".to_owned(),
                Some(2)
            ),
            (
                "invalid-rule-name".to_owned(),
                "immutability.rules[1].name".to_owned(),
                Some(3)
            ),
        ]
    );
}

#[test]
fn image_patterns_are_capped_before_compiling() {
    let images: Vec<String> = (0..MAX_IMAGE_PATTERNS + 500)
        .map(|i| {
            // Past the cap every pattern is broken: none of those is looked at.
            let pattern = if i < MAX_IMAGE_PATTERNS {
                format!("team-{i}/**")
            } else {
                "{".to_owned()
            };
            format!(r#"{{"pattern": "{pattern}", "repository": "r"}}"#)
        })
        .collect();
    let text = format!(
        r#"{{"version": 1, "permissions": {{"repositories": {{"r": {{"admin": ["user:a"]}}}}, "images": [{}]}}}}"#,
        images.join(",")
    );
    let errors = load(&text, Duration::from_secs(20)).unwrap_err();
    assert_eq!(
        codes(&errors),
        vec![("too-many-rules".to_owned(), "permissions.images".to_owned())]
    );
}

#[test]
fn the_policy_s_patterns_share_one_weight_budget() {
    // Each pattern alone is well within the per-pattern limit; together they are
    // not, and the ones that do not fit are refused (and never built).
    let heavy = r"^\\w{1000}$";
    let rules: Vec<String> = (0..1000)
        .map(|i| format!(r#"{{"name": "r{i}", "tags": {{"regex": "{heavy}"}}}}"#))
        .collect();
    let errors = load(&policy(&rules, &[], CEILING), Duration::from_secs(60)).unwrap_err();
    let fit = 1000 - errors.len();
    assert!(fit > 0 && fit < 1000, "{fit}");
    assert!(
        errors
            .iter()
            .all(|e| e.code.to_string() == "regex-too-large")
    );
    // Exactly `fit` of them fit the budget: one more is one too many.
    assert!(
        load(
            &policy(&rules[..fit], &[], CEILING),
            Duration::from_secs(60)
        )
        .is_ok()
    );
    let one_over = load(
        &policy(&rules[..=fit], &[], CEILING),
        Duration::from_secs(60),
    );
    assert_eq!(one_over.unwrap_err().len(), 1);
    assert_eq!(
        errors.as_slice()[0].path,
        format!("immutability.rules[{fit}].tags.regex")
    );
}
