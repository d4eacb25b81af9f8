//! The comparison rules of `README.md`: what an engine's answer must satisfy,
//! given a case's expectation. Each function returns every mismatch found.

use crate::corpus::{DECISION_REQUIRED, LOCATED_KEYS};
use serde_json::Value;
use std::collections::BTreeSet;

static NULL: Value = Value::Null;

/// `value.key`, or `null` when `value` is not an object or lacks the key.
fn get<'a>(value: &'a Value, key: &str) -> &'a Value {
    value.get(key).unwrap_or(&NULL)
}

/// Compares a decision (the JSON contract's object) with its expectation, and
/// checks the invariants every decision obeys.
pub fn decision(expect: &Value, actual: &Value) -> Vec<String> {
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
        let (want, got) = (get(expect, key), get(actual, key));
        if want != got {
            out.push(format!("{key}: expected {want}, got {got}"));
        }
    }
    let error = get(actual, "error");
    let first = get(error, "errors").get(0).unwrap_or(&NULL);
    let detail = get(first, "detail");
    let allowed = get(actual, "allowed").as_bool().unwrap_or(false);
    if allowed != error.is_null() {
        out.push(format!(
            "`error` must be null exactly when allowed; got {error}"
        ));
    }
    if !error.is_null() {
        if get(error, "errors").as_array().map(Vec::len) != Some(1) {
            out.push(format!("`error.errors` must hold one error; got {error}"));
        }
        if get(first, "message") != get(actual, "message") {
            out.push("`error.errors[0].message` differs from `message`".into());
        }
        if get(detail, "reason") != get(actual, "reason")
            || get(detail, "rule") != get(actual, "rule")
        {
            out.push("`error.errors[0].detail` reason/rule differ from the decision".into());
        }
    }
    if allowed
        && get(actual, "would_deny") == &Value::Bool(false)
        && get(actual, "reason") != "allowed"
    {
        out.push("an allowed decision without would_deny has reason `allowed`".into());
    }
    if let Some(want) = expect.get("code") {
        let got = if error.is_null() {
            &NULL
        } else {
            get(first, "code")
        };
        if want != got {
            out.push(format!("code: expected {want}, got {got}"));
        }
    }
    if let Some(parts) = expect.get("message_contains").and_then(Value::as_array) {
        let message = get(actual, "message").as_str().unwrap_or_default();
        for part in parts {
            let part = part.as_str().unwrap_or_default();
            if !message.contains(part) {
                out.push(format!("message {message:?} does not contain {part:?}"));
            }
        }
    }
    if let Some(want_detail) = expect.get("detail").and_then(Value::as_object) {
        for (key, want) in want_detail {
            let got = get(detail, key);
            if want != got {
                out.push(format!("detail.{key}: expected {want}, got {got}"));
            }
        }
    }
    out
}

/// Compares a `test_tag` answer with its expectation.
pub fn tag_test(expect: &Value, actual: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["protected", "rule", "because"] {
        let (want, got) = (get(expect, key), get(actual, key));
        if want != got {
            out.push(format!("{key}: expected {want}, got {got}"));
        }
    }
    let none = Vec::new();
    let got = get(actual, "matches").as_array().unwrap_or(&none);
    let want = get(expect, "matches").as_array().unwrap_or(&none);
    // A string names the rule; an object also fixes the matched span.
    let same = want.len() == got.len()
        && want.iter().zip(got).all(|(w, g)| match w {
            Value::String(_) => w == get(g, "rule"),
            other => other == g,
        });
    if !same {
        out.push(format!(
            "matches: expected {}, got {}",
            get(expect, "matches"),
            get(actual, "matches")
        ));
    }
    if let Some(want) = expect.get("exception") {
        let got = get(actual, "exception");
        if want != got {
            out.push(format!("exception: expected {want}, got {got}"));
        }
    }
    out
}

/// Compares a load outcome with its expectation: `errors` is `None` for a policy
/// that loaded; `lints` are that policy's lints.
pub fn load(expect: &Value, errors: Option<&[Value]>, lints: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    let valid = errors.is_none();
    let got_errors = errors.unwrap_or_default();
    if get(expect, "valid") != &Value::Bool(valid) {
        out.push(format!(
            "valid: expected {}, got {valid}; errors {}",
            get(expect, "valid"),
            Value::from(got_errors.to_vec())
        ));
        return out;
    }
    let none = Vec::new();
    let want_errors = get(expect, "errors").as_array().unwrap_or(&none);
    if !located_match(want_errors, got_errors) {
        out.push(format!(
            "errors: expected {}, got {}",
            Value::from(want_errors.clone()),
            Value::from(got_errors.to_vec())
        ));
    }
    let want_lints: BTreeSet<&str> = get(expect, "lints")
        .as_array()
        .unwrap_or(&none)
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let got_lints: BTreeSet<&str> = lints
        .iter()
        .filter_map(|l| get(l, "code").as_str())
        .collect();
    if want_lints != got_lints {
        out.push(format!(
            "lints: expected {want_lints:?}, got {got_lints:?} ({})",
            Value::from(lints.to_vec())
        ));
    }
    for want in get(expect, "lint_details").as_array().unwrap_or(&none) {
        if !lints.iter().any(|l| located_fits(want, l)) {
            out.push(format!(
                "no lint fits {want}; lints {}",
                Value::from(lints.to_vec())
            ));
        }
    }
    out
}

/// Whether `got` fits the located entry `want` (code always; path, offset, rule
/// when given; a given `null` requires the field absent or null).
fn located_fits(want: &Value, got: &Value) -> bool {
    LOCATED_KEYS
        .iter()
        .all(|k| want.get(*k).is_none_or(|w| w == get(got, k)))
}

/// One-to-one matching of expected entries with actual ones, in any order.
fn located_match(want: &[Value], got: &[Value]) -> bool {
    fn set(used: &mut [bool], i: usize, value: bool) {
        if let Some(slot) = used.get_mut(i) {
            *slot = value;
        }
    }
    fn assign(want: &[Value], got: &[Value], used: &mut [bool]) -> bool {
        let Some((first, rest)) = want.split_first() else {
            return true;
        };
        for (i, g) in got.iter().enumerate() {
            if used.get(i) == Some(&false) && located_fits(first, g) {
                set(used, i, true);
                if assign(rest, got, used) {
                    return true;
                }
                set(used, i, false);
            }
        }
        false
    }
    want.len() == got.len() && assign(want, got, &mut vec![false; got.len()])
}
