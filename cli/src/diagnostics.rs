//! Load errors and lints as a registry admin reads them: what is wrong, where
//! (file, JSON path, rule, character in the pattern or line and column in the file),
//! and the offending pattern or line with a caret under the spot.

use crate::input::PolicyInput;
use crate::output::plural;
use crate::style::{self, Style};
use policy_core::{Lint, LoadError, LoadErrors};
use serde_json::Value;

/// Longest line or pattern quoted with a caret; longer ones are only located.
const MAX_QUOTED_CHARS: usize = 200;

/// Every problem of a refused policy, then a closing summary line.
pub fn refused(input: &PolicyInput, errors: &LoadErrors, style: Style) -> String {
    let document = serde_json::from_str::<Value>(&input.text).ok();
    let mut out = String::new();
    for error in errors {
        out.push_str(&style.error(&format!("error[{}]", error.code)));
        out.push_str(": ");
        out.push_str(&style::escaped(&error.message));
        out.push('\n');
        out.push_str(&location(input, error, style));
        if let Some(quote) = error_quote(input, document.as_ref(), error) {
            out.push_str(&quote);
        }
    }
    out.push_str(&style.error("error"));
    out.push_str(&format!(
        ": policy {} is refused ({}); nothing was loaded\n",
        input.label,
        plural(errors.len(), "problem")
    ));
    out
}

/// Every lint of a loaded policy.
pub fn warnings(input: &PolicyInput, lints: &[Lint], style: Style) -> String {
    let document = serde_json::from_str::<Value>(&input.text).ok();
    let mut out = String::new();
    for lint in lints {
        out.push_str(&style.warning(&format!("warning[{}]", lint.code)));
        out.push_str(": ");
        out.push_str(&style::escaped(&lint.message));
        out.push('\n');
        out.push_str(&format!(
            "  {} {}{}\n",
            style.note("-->"),
            input.label,
            where_in_document(&lint.path, lint.rule.as_deref(), lint.offset)
        ));
        if let Some(quote) = document
            .as_ref()
            .and_then(|doc| pattern_quote(doc, &lint.path, lint.offset))
        {
            out.push_str(&quote);
        }
    }
    out
}

/// `  --> policy.json:3:14` for JSON problems, `  --> policy.json: path (rule "x"),
/// character 4` for the rest.
fn location(input: &PolicyInput, error: &LoadError, style: Style) -> String {
    let position = match (error.line, error.column) {
        (Some(line), Some(column)) => format!(":{line}:{column}"),
        _ => String::new(),
    };
    format!(
        "  {} {}{}{}\n",
        style.note("-->"),
        input.label,
        position,
        where_in_document(&error.path, error.rule.as_deref(), error.offset)
    )
}

fn where_in_document(path: &str, rule: Option<&str>, offset: Option<usize>) -> String {
    let mut out = String::new();
    // `?` is how a JSON syntax error says it has no path.
    if !path.is_empty() && path != "?" {
        out.push_str(": ");
        out.push_str(&style::escaped(path));
    }
    if let Some(rule) = rule {
        out.push_str(&format!(" (rule \"{}\")", style::shown(rule)));
    }
    if let Some(offset) = offset {
        out.push_str(&format!(", character {offset}"));
    }
    out
}

fn error_quote(input: &PolicyInput, document: Option<&Value>, error: &LoadError) -> Option<String> {
    match (error.line, error.column) {
        (Some(line), Some(column)) => line_quote(&input.text, line, column),
        _ => pattern_quote(document?, &error.path, error.offset),
    }
}

/// The line of the file with a caret under the (1-based) column.
fn line_quote(text: &str, line: usize, column: usize) -> Option<String> {
    let source = text.lines().nth(line.checked_sub(1)?)?;
    // serde_json counts columns in bytes; the caret goes under the character there.
    let prefix = source
        .char_indices()
        .take_while(|(byte, _)| *byte < column.saturating_sub(1))
        .count();
    caret(source, prefix)
}

/// The pattern at `path` in the document with a caret under the character at `offset`.
fn pattern_quote(document: &Value, path: &str, offset: Option<usize>) -> Option<String> {
    let offset = offset?;
    let pattern = value_at(document, path)?.as_str()?;
    caret(pattern, offset)
}

fn caret(text: &str, at: usize) -> Option<String> {
    let length = text.chars().count();
    // A caret under escaped text would point at the wrong character: such text is
    // only located.
    if length > MAX_QUOTED_CHARS || style::has_unsafe(text) {
        return None;
    }
    let indent = " ".repeat(at.min(length));
    Some(format!("   | {text}\n   | {indent}^\n"))
}

/// Follows a JSON path like `immutability.rules[2].tags.regex` into a document.
/// Best effort: keys that themselves hold `.` or `[` are not found, and nothing is quoted.
fn value_at<'a>(document: &'a Value, path: &str) -> Option<&'a Value> {
    let mut value = document;
    for segment in path.split('.') {
        let (key, indexes) = match segment.find('[') {
            Some(cut) => (segment.get(..cut)?, segment.get(cut..)?),
            None => (segment, ""),
        };
        if !key.is_empty() {
            value = value.get(key)?;
        }
        for index in indexes.split('[').filter(|part| !part.is_empty()) {
            let index: usize = index.strip_suffix(']')?.parse().ok()?;
            value = value.get(index)?;
        }
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use policy_core::Policy;

    fn input(text: &str) -> PolicyInput {
        PolicyInput {
            label: "p.json".into(),
            text: text.into(),
        }
    }

    #[test]
    fn paths_lead_into_the_document() {
        let doc =
            serde_json::json!({"immutability": {"rules": [{"tags": {"matching": ["a", "b"]}}]}});
        assert_eq!(
            value_at(&doc, "immutability.rules[0].tags.matching[1]"),
            Some(&Value::from("b"))
        );
        assert_eq!(value_at(&doc, "immutability.rules[3]"), None);
        assert_eq!(value_at(&doc, "immutability.rules[x]"), None);
    }

    #[test]
    fn a_bad_regex_is_quoted_with_a_caret() {
        let text = r#"{"version": 1, "immutability": {"protect": "some",
            "rules": [{"name": "semver", "tags": {"regex": "^v(\\d+"}}]}}"#;
        let errors = Policy::from_json(text).unwrap_err();
        let shown = refused(&input(text), &errors, Style::plain());
        assert!(shown.contains("error[regex-syntax]"), "{shown}");
        assert!(
            shown.contains("p.json: immutability.rules[0].tags.regex (rule \"semver\")"),
            "{shown}"
        );
        assert!(shown.contains("   | ^v(\\d+\n"), "{shown}");
        assert!(
            shown.ends_with("policy p.json is refused (1 problem); nothing was loaded\n"),
            "{shown}"
        );
    }

    #[test]
    fn a_json_syntax_error_quotes_its_line() {
        let text = "{\"version\": 1,\n  \"mode\": enforce}";
        let errors = Policy::from_json(text).unwrap_err();
        let shown = refused(&input(text), &errors, Style::plain());
        assert!(shown.contains("error[json-syntax]"), "{shown}");
        assert!(shown.contains("--> p.json:2:"), "{shown}");
        assert!(!shown.contains('?'), "{shown}");
        assert!(
            shown.contains("   |   \"mode\": enforce}\n   |           ^\n"),
            "{shown}"
        );
    }

    #[test]
    fn lints_are_located() {
        let text = r#"{"version": 1, "immutability": {"protect": "some",
            "rules": [{"name": "prod", "tags": {"regex": "prod"}}]}}"#;
        let policy = Policy::from_json(text).unwrap();
        let shown = warnings(&input(text), policy.lints(), Style::plain());
        assert!(shown.contains("warning[unanchored-regex]"), "{shown}");
        assert!(
            shown.contains("--> p.json: immutability.rules[0].tags.regex (rule \"prod\")"),
            "{shown}"
        );
    }
}
