//! The runner must be able to fail: the comparison rules reject mismatches, and a
//! deliberately wrong engine fails every case it gets wrong, in both modes.
#![allow(clippy::panic, clippy::indexing_slicing, reason = "tests")]

use super::*;
use policy_core::Policy;

fn corpus() -> Corpus {
    Corpus::load_default().unwrap_or_else(|err| panic!("{err}"))
}

/// The native core with `allowed` flipped in every decision.
struct Flipped;

impl Engine for Flipped {
    type Policy = Policy;
    fn name(&self) -> String {
        "flipped".into()
    }
    fn load(&mut self, policy: &str) -> Result<Loaded<Policy>, String> {
        Native.load(policy)
    }
    fn evaluate(&mut self, policy: &Policy, request: &str) -> Result<Value, String> {
        let mut decision = Native.evaluate(policy, request)?;
        decision["allowed"] = Value::Bool(decision["allowed"] != Value::Bool(true));
        Ok(decision)
    }
    fn test_tag(&mut self, policy: &Policy, image: &str, tag: &str) -> Result<Value, String> {
        Native.test_tag(policy, image, tag)
    }
    fn lints(&mut self, policy: &Policy) -> Result<Vec<Value>, String> {
        Native.lints(policy)
    }
}

#[test]
fn a_wrong_engine_fails_every_decision_case_in_both_modes() {
    let corpus = corpus();
    let decision_cases: Vec<&str> = corpus
        .cases
        .iter()
        .filter(|c| matches!(c.body, Body::Decisions(_)))
        .map(|c| c.name.as_str())
        .collect();
    let report = run(&corpus, &mut Flipped);
    let failed: Vec<&str> = report.failures.iter().map(|f| f.case.as_str()).collect();
    assert_eq!(failed, decision_cases);
    let text = report.to_string();
    assert!(text.contains("allowed: expected"), "{text}");
    assert!(text.contains("actual: {"), "{text}");
    assert!(text.contains("docs/policy.md#"), "{text}");
    assert!(text.contains("cases/push.json"), "{text}");

    let report = differential(&corpus, &mut Native, &mut Flipped);
    let failed: Vec<&str> = report.failures.iter().map(|f| f.case.as_str()).collect();
    assert_eq!(failed, decision_cases);
    assert!(report.to_string().contains("request #0 differs"));
}

#[test]
fn the_native_core_answers_as_itself() {
    differential(&corpus(), &mut Native, &mut Native).assert_passed();
}

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
    assert!(compare::decision(&good, &actual).is_empty());
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
            !compare::decision(&bad, &actual).is_empty(),
            "{key} mismatch went unnoticed"
        );
    }
    let mut broken = actual.clone();
    broken["error"] = Value::Null;
    assert!(
        !compare::decision(&good, &broken).is_empty(),
        "an invariant went unchecked"
    );

    let errors = [
        json!({"code": "schema", "path": "mode"}),
        json!({"code": "schema", "path": "x"}),
    ];
    let want =
        json!({"valid": false, "errors": [{"code": "schema", "path": "x"}, {"code": "schema"}]});
    assert!(compare::load(&want, Some(&errors), &[]).is_empty());
    let want = json!({"valid": false, "errors": [{"code": "schema"}]});
    assert!(!compare::load(&want, Some(&errors), &[]).is_empty());
    let want = json!({"valid": true, "lints": ["no-rules"]});
    assert!(!compare::load(&want, None, &[]).is_empty());

    let tag = json!({"protected": true, "rule": "semver", "because": "rule",
        "matches": [{"rule": "semver", "start": 0, "end": 6}], "exception": null});
    let want =
        json!({"protected": true, "rule": "semver", "because": "rule", "matches": ["semver"]});
    assert!(compare::tag_test(&want, &tag).is_empty());
    let want = json!({"protected": true, "rule": "semver", "because": "rule",
        "matches": [{"rule": "semver", "start": 1, "end": 6}]});
    assert!(!compare::tag_test(&want, &tag).is_empty());
}

#[test]
fn corpus_errors_are_all_reported() {
    let dir = std::env::temp_dir().join(format!("taglock-conformance-{}", std::process::id()));
    let cases = dir.join("cases");
    std::fs::create_dir_all(dir.join("policies")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(&cases).unwrap_or_else(|e| panic!("{e}"));
    let text = r#"{"cases": [
        {"name": "a", "spec": "docs/policy.md#decisions", "policy": {"version": 1},
         "expect_load": {"valid": true}, "expcet": 1},
        {"name": "b", "spec": "docs/policy.md#no-such-section", "policy": {"version": 1},
         "expect_load": {"valid": true}},
        {"name": "c", "spec": "docs/policy.md#decisions", "policy": "missing",
         "expect_load": {"valid": true}}
    ]}"#;
    std::fs::write(cases.join("x.json"), text).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("policy.md"), "# Decisions\n").unwrap_or_else(|e| panic!("{e}"));
    let result = Corpus::load(&dir, &dir.join("policy.md"));
    let _ = std::fs::remove_dir_all(&dir);
    let Err(CorpusError(problems)) = result else {
        panic!("a broken corpus loaded");
    };
    let text = problems.join("\n");
    for needle in [
        "unknown key `expcet`",
        "`spec` must name a section",
        "no policy file policies/missing.json",
        "at least 200",
    ] {
        assert!(text.contains(needle), "{needle} not in {text}");
    }
}
