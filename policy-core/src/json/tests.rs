//! Located errors: paths, positions and messages of every kind of problem.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use super::path::{MAX_DEPTH, position};
use super::*;
use crate::PolicyDocument;
use crate::document::{LimitsSpec, Selector};

fn policy_error(text: &str) -> JsonError {
    from_json::<PolicyDocument>(text).unwrap_err()
}

/// The 1-based line and column where `needle`'s `nth` occurrence starts.
fn at(text: &str, needle: &str, nth: usize) -> (usize, usize) {
    let offset = text.match_indices(needle).nth(nth).unwrap().0;
    position(text, offset + 1)
}

fn assert_at(err: &JsonError, path: &str, place: (usize, usize), syntax: bool) {
    assert_eq!(err.path, path, "{err}");
    assert_eq!((err.line, err.column), place, "{err}");
    assert_eq!(err.syntax, syntax, "{err}");
    assert!(!err.message.is_empty());
}

const RULE: &str = r#"{"version": 1, "immutability": {"protect": "some", "rules": [
  {"name": "semver", "tags": {"regex": "^v"}},
  {"name": "x", "tags": {"regex": "^x"}, "pattern": "y"}
]}}"#;

#[test]
fn an_unknown_field_in_a_rule_is_its_key() {
    let err = policy_error(RULE);
    assert_at(
        &err,
        "immutability.rules[1].pattern",
        at(RULE, "\"pattern\"", 0),
        false,
    );
    assert_eq!(
        err.message,
        "unknown field `pattern` in a rule, expected one of `name`, `tags`, `repositories`"
    );
    assert_eq!((err.line, err.column), (3, 42));
}

#[test]
fn a_wrong_type_in_limits_is_the_value() {
    let text = "{\"version\": 1,\n \"limits\": {\"max_rules\": 3, \"max_pattern_length\": \"9\"}}";
    let err = policy_error(text);
    assert_at(
        &err,
        "limits.max_pattern_length",
        at(text, "\"9\"", 0),
        false,
    );
    assert!(
        err.message.starts_with("invalid type: string \"9\""),
        "{err}"
    );
    let err = policy_error(r#"{"version": 1, "limits": [3, 9]}"#);
    assert_at(&err, "limits", (1, 26), false);
    assert!(err.message.contains("`\"harbor\"`"), "{err}");
    let err = policy_error(r#"{"version": 1, "limits": "gitlab"}"#);
    assert_at(&err, "limits", (1, 26), false);
    assert!(err.message.contains("`gitlab`"), "{err}");
    let err = from_json::<LimitsSpec>(r#"{"max_rules": -1, "max_pattern_length": 10}"#);
    let err = err.unwrap_err();
    assert_at(&err, "max_rules", (1, 15), false);
    // The same words on a 32-bit and a 64-bit host.
    assert!(
        err.message
            .ends_with("expected an integer from 0 to 4294967295"),
        "{err}"
    );
}

#[test]
fn a_selector_with_two_kinds_is_the_selector() {
    let text = r#"{"version": 1, "immutability": {"rules": [{"name": "r", "tags": {"regex": "^v", "matching": ["v*"]}}]}}"#;
    let err = policy_error(text);
    assert_at(
        &err,
        "immutability.rules[0].tags",
        at(text, "{\"regex\"", 0),
        false,
    );
    assert!(err.message.contains("exactly one of"), "{err}");
    let err = from_json::<Selector>("{}").unwrap_err();
    assert_at(&err, "", (1, 1), false);
    // `null` is an absent kind, as an absent optional field.
    let selector = from_json::<Selector>(r#"{"regex": null, "matching": ["a"]}"#).unwrap();
    assert_eq!(selector, Selector::Matching(vec!["a".to_owned()]));
}

#[test]
fn a_duplicate_key_is_refused_at_the_second() {
    let text = "{\"version\": 1,\n  \"version\": 1}";
    let err = policy_error(text);
    assert_at(&err, "version", (2, 3), false);
    assert_eq!(err.message, "duplicate field `version`");
    // In a map too: two grant lists for one repository are not merged silently.
    let text = r#"{"version": 1, "permissions": {"repositories": {"web": {}, "w\u0065b": {}}}}"#;
    let err = policy_error(text);
    assert_at(
        &err,
        "permissions.repositories.web",
        at(text, "\"w\\u0065b\"", 0),
        false,
    );
    assert_eq!(err.message, "duplicate key `web`");
}

#[test]
fn a_bad_enum_value_names_the_value_and_the_choices() {
    let text = r#"{"version": 1, "immutability": {"protect": "most"}}"#;
    let err = policy_error(text);
    assert_at(&err, "immutability.protect", at(text, "\"most\"", 0), false);
    assert_eq!(
        err.message,
        "unknown value `most`, expected one of `none`, `all`, `some`"
    );
    // Written as an object (which serde once read as an enum) it is refused.
    let err = policy_error(r#"{"version": 1, "mode": {"audit": null}}"#);
    assert_at(&err, "mode", (1, 24), false);
    assert!(err.message.starts_with("invalid type: object"), "{err}");
    let text = r#"{"version": 1, "permissions": {"images": [{"name": "a", "repository": "r", "overrides": {"user:x": "owner"}}]}}"#;
    let err = policy_error(text);
    assert_eq!(err.path, "permissions.images[0].overrides.user:x");
    assert!(err.message.contains("`owner`"), "{err}");
}

#[test]
fn missing_fields_and_wrong_shapes_name_the_object() {
    let text = r#"{"version": 1, "immutability": {"rules": [{"tags": {"regex": "^v"}}]}}"#;
    let err = policy_error(text);
    assert_at(
        &err,
        "immutability.rules[0]",
        at(text, "{\"tags\"", 0),
        false,
    );
    assert_eq!(err.message, "missing field `name`");
    let err = policy_error(r#"{"mode": "audit"}"#);
    assert_at(&err, "", (1, 1), false);
    assert_eq!(err.message, "missing field `version`");
    // An object is never read as the array of its fields.
    let err = policy_error("[1]");
    assert_at(&err, "", (1, 1), false);
    assert_eq!(
        err.message,
        "invalid type: array, expected a policy (an object)"
    );
    let err = policy_error(r#"{"version": 1.0}"#);
    assert_at(&err, "version", (1, 13), false);
    assert!(
        err.message.starts_with("invalid type: number `1.0`"),
        "{err}"
    );
    let err = policy_error(r#"{"version": 4294967296}"#);
    assert!(err.message.starts_with("invalid value"), "{err}");
    let err = policy_error(r#"{"version": 1, "permissions": {"images": [{"repository": null}]}}"#);
    assert_eq!(err.path, "permissions.images[0].repository");
    assert!(err.message.starts_with("invalid type: null"), "{err}");
}

#[test]
fn the_first_problem_in_the_text_is_reported() {
    let err = policy_error(r#"{"mode": "warn", "version": "1"}"#);
    assert_eq!(err.path, "mode");
    let err = policy_error(r#"{"colour": 1, "mode": "warn"}"#);
    assert_eq!(err.path, "colour");
    // But text that is not JSON is a syntax error, wherever the break is.
    let err = policy_error(r#"{"mode": "warn", "version": 1,"#);
    assert!(err.syntax, "{err}");
}

#[test]
fn an_error_in_a_request_array_starts_with_its_index() {
    let text = "[{\"operation\": \"pull\", \"image\": \"a\"},\n {\"operation\": \"push\", \"image\": \"a\", \"digest\": \"d\", \"tags\": [{\"name\": 5}]}]";
    let err = crate::requests_from_json(text).unwrap_err();
    assert_at(&err, "[1].tags[0].name", at(text, "5}", 0), false);
    assert!(err.message.starts_with("invalid type: number `5`"), "{err}");
    let err = crate::requests_from_json(r#"[{"operation": "pull", "image": "a"}, 7]"#);
    assert_at(&err.unwrap_err(), "[1]", (1, 39), false);
}

#[test]
fn trailing_characters_are_refused() {
    let err = policy_error(r#"{"version": 1} x"#);
    assert_at(&err, "", (1, 16), true);
    assert_eq!(err.message, "trailing characters");
    let err = policy_error("{\"version\": 1}\n{}");
    assert_at(&err, "", (2, 1), true);
}

/// Syntax errors at the places serde_json puts them, with the path of the value
/// the scanner was in.
#[test]
fn syntax_errors_are_located_where_serde_json_locates_them() {
    let cases = [
        ("", ""),
        ("{\"version\": 1,", ""),
        ("{\"version\": 1,\n \"mode\": }", "mode"),
        ("{'version': 1}", ""),
        ("{\"version\" 1}", "version"),
        ("{\"version\": 01}", "version"),
        ("{\"version\": -}", "version"),
        ("{\"version\": 1.}", "version"),
        ("{\"version\": 1e+}", "version"),
        ("{\"version\": tru}", "version"),
        ("{\"version\": nul", "version"),
        ("{\"a\": [1, 2,]}", "a[2]"),
        ("{\"a\": [1 2]}", "a[0]"),
        ("{\"a\": {\"b\": 1,}}", "a"),
        ("{\"a\": \"x\u{1}\"}", "a"),
        ("{\"a\": \"\\q\"}", "a"),
        ("{\"a\": \"\\u12x4\"}", "a"),
        ("{\"a\": \"\\udc00\"}", "a"),
        ("{\"a\": \"\\ud800x\"}", "a"),
        ("{\"a\": \"\\ud800\\u0041\"}", "a"),
        ("{\"a\": \"abc", "a"),
        ("{\"a\\u00e9\": [[{\"b\": }]]}", "aé[0][0].b"),
        ("[1, 2]]", ""),
        ("\n\n", ""),
    ];
    for (text, path) in cases {
        let err = policy_error(text);
        let serde = serde_json::from_str::<serde_json::Value>(text).unwrap_err();
        assert!(err.syntax, "{text:?}: {err}");
        assert_eq!(
            (err.line, err.column),
            (serde.line(), serde.column()),
            "{text:?}: {err} / {serde}"
        );
        assert_eq!(err.path, path, "{text:?}: {err}");
        assert!(!err.message.is_empty());
    }
}

#[test]
fn nesting_is_bounded_and_long_values_are_quick() {
    let deep = "[".repeat(MAX_DEPTH - 1) + &"]".repeat(MAX_DEPTH - 1);
    assert!(scan(&deep).is_ok());
    let deeper = "[".repeat(MAX_DEPTH);
    let err = scan(&deeper).unwrap_err();
    assert_eq!(
        (err.message.as_str(), err.column),
        ("recursion limit exceeded", MAX_DEPTH)
    );
    // A million brackets: refused, no stack overflow.
    assert!(policy_error(&"[".repeat(1_000_000)).syntax);

    let start = std::time::Instant::now();
    let digits = "7".repeat(400_000);
    let err = policy_error(&format!("{{\"version\": {digits}}}"));
    assert_eq!(err.path, "version");
    assert!(err.message.len() < 200, "{}", err.message.len());
    let err = policy_error(&format!("{{\"version\": 1, \"mode\": {digits}.5}}"));
    assert_eq!(err.path, "mode");
    let err = policy_error(&format!("{{\"version\": 1, \"mode\": {digits}x}}"));
    assert!(err.syntax);
    assert_eq!(err.column, digits.len() + 24);
    assert!(start.elapsed() < std::time::Duration::from_secs(2));
}

#[test]
fn reading_gives_the_document_written() {
    let text = r#" {"version": 1, "mode": "audit", "limits": {"max_rules": 3, "max_pattern_length": 9},
        "immutability": {"protect": "some", "admin_delete": false, "rules": [
          {"name": "a\"b", "tags": {"matching": ["v*", "\u00e9"]}, "repositories": {"excluding": []}}],
          "exceptions": [{"regex": "x"}]},
        "permissions": {"workspace_admins": ["user:a"], "repositories": {"web": {"read": ["group:g"]}},
          "images": [{"pattern": "a/*", "repository": "web", "public": true, "publish": "pipelines-only",
            "overrides": {"user:b": "admin"}}], "pipelines_inherit_write": true, "publish": "anyone"}} "#;
    let document = from_json::<PolicyDocument>(text).unwrap();
    let written = serde_json::to_string(&document).unwrap();
    assert_eq!(from_json::<PolicyDocument>(&written).unwrap(), document);
    let rule = &document.immutability.rules[0];
    assert_eq!(rule.name, "a\"b");
    assert_eq!(
        rule.tags,
        Selector::Matching(vec!["v*".to_owned(), "é".to_owned()])
    );
    assert!(!document.immutability.admin_delete);
    assert!(
        from_json::<PolicyDocument>(r#"{"version": 1}"#)
            .unwrap()
            .immutability
            .admin_delete
    );
}
