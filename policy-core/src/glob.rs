//! Globs (Harbor/STACKIT style) translated to regex syntax, so they share the
//! linear-time matcher: `*` any run without `/`, `**` anything, `?` one character
//! other than `/`, `{a,b}` alternatives (nestable), `[a-z]`/`[!a-z]` classes,
//! `\x` a literal `x`. A glob matches the whole name.

use crate::pattern::{PatternError, PatternErrorKind};

/// Translates a list of globs into one anchored regex matching any of them.
/// Errors carry the index of the offending glob and the character offset inside it.
pub fn to_regex(globs: &[String]) -> Result<String, (usize, PatternError)> {
    let mut out = String::from(r"\A(?:");
    for (index, glob) in globs.iter().enumerate() {
        if index > 0 {
            out.push('|');
        }
        translate(glob, &mut out).map_err(|err| (index, err))?;
    }
    out.push_str(r")\z");
    Ok(out)
}

fn glob_error(offset: usize, message: &str) -> PatternError {
    PatternError {
        kind: PatternErrorKind::GlobSyntax,
        message: message.to_owned(),
        offset: Some(offset),
    }
}

/// Appends the regex for one glob to `out`.
fn translate(glob: &str, out: &mut String) -> Result<(), PatternError> {
    let chars: Vec<char> = glob.chars().collect();
    // Character offsets of the `{` still open.
    let mut open_braces: Vec<usize> = Vec::new();
    let mut i = 0;
    out.push_str("(?:");
    while let Some(&c) = chars.get(i) {
        match c {
            '*' if chars.get(i + 1) == Some(&'*') => {
                out.push_str(".*");
                i += 2;
                while chars.get(i) == Some(&'*') {
                    i += 1;
                }
                continue;
            }
            '*' => out.push_str("[^/]*"),
            '?' => out.push_str("[^/]"),
            '{' => {
                open_braces.push(i);
                out.push_str("(?:");
            }
            ',' if !open_braces.is_empty() => out.push('|'),
            '}' => {
                if open_braces.pop().is_none() {
                    return Err(glob_error(
                        i,
                        "unmatched `}`: write `\\}` for a literal brace",
                    ));
                }
                out.push(')');
            }
            '[' => {
                i = translate_class(&chars, i, out)?;
            }
            '\\' => {
                let Some(&escaped) = chars.get(i + 1) else {
                    return Err(glob_error(i, "a glob cannot end with `\\`"));
                };
                push_literal(escaped, out);
                i += 1;
            }
            ']' => {
                return Err(glob_error(
                    i,
                    "unmatched `]`: write `\\]` for a literal bracket",
                ));
            }
            other => push_literal(other, out),
        }
        i += 1;
    }
    if let Some(&open) = open_braces.last() {
        return Err(glob_error(open, "unclosed `{`: alternatives end with `}`"));
    }
    out.push(')');
    Ok(())
}

fn push_literal(c: char, out: &mut String) {
    let mut buf = [0u8; 4];
    out.push_str(&regex_syntax::escape(c.encode_utf8(&mut buf)));
}

/// Translates the class starting at `chars[start] == '['`; returns the index of its `]`.
fn translate_class(chars: &[char], start: usize, out: &mut String) -> Result<usize, PatternError> {
    let mut i = start + 1;
    out.push('[');
    if matches!(chars.get(i), Some('!' | '^')) {
        out.push('^');
        i += 1;
    }
    let first = i;
    // Where the upper end of the last range starts: a `-` right after a range is a
    // literal (as the regex translation reads it), not the start of another range.
    let mut range_high = None;
    let mut after_range = false;
    loop {
        let item = i;
        let Some(&c) = chars.get(i) else {
            return Err(glob_error(
                start,
                "unclosed `[`: a character class ends with `]`",
            ));
        };
        match c {
            ']' if i > first => break,
            ']' => return Err(glob_error(i, "empty character class `[]`")),
            '-' if i > first && !after_range && chars.get(i + 1).is_some_and(|&n| n != ']') => {
                range_high = Some(i + 1);
                // A reversed range would only fail later, located in the translation.
                if let (Some(&low), Some(&high)) = (chars.get(i - 1), chars.get(i + 1)) {
                    if low != '\\' && high != '\\' && low > high {
                        return Err(glob_error(
                            i - 1,
                            "invalid range in a character class: its start comes after its end",
                        ));
                    }
                }
                out.push('-');
            }
            '\\' => {
                let Some(&escaped) = chars.get(i + 1) else {
                    return Err(glob_error(i, "a glob cannot end with `\\`"));
                };
                push_class_literal(escaped, out);
                i += 1;
            }
            other => push_class_literal(other, out),
        }
        after_range = range_high == Some(item);
        i += 1;
    }
    out.push(']');
    Ok(i)
}

fn push_class_literal(c: char, out: &mut String) {
    if matches!(c, '\\' | ']' | '[' | '^' | '-' | '&' | '~') {
        out.push('\\');
    }
    out.push(c);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::{build, parse};
    use regex_automata::nfa::thompson::WhichCaptures;

    fn matches(globs: &[&str], name: &str) -> bool {
        let globs: Vec<String> = globs.iter().map(|g| (*g).to_owned()).collect();
        build(
            &parse(&to_regex(&globs).unwrap()).unwrap().hir,
            WhichCaptures::None,
        )
        .unwrap()
        .search(name.as_bytes())
            == crate::pattern::Found::Match
    }

    #[test]
    fn stars() {
        assert!(matches(&["team-a/*"], "team-a/web"));
        assert!(!matches(&["team-a/*"], "team-a/web/api"));
        assert!(matches(&["team-a/**"], "team-a/web/api"));
        assert!(matches(&["**"], "anything/at/all"));
        assert!(matches(&["v*.*.*"], "v1.2.3"));
        assert!(!matches(&["v*.*.*"], "v1.2"));
        assert!(matches(&["a?c"], "abc"));
        assert!(!matches(&["a?c"], "a/c"));
        assert!(!matches(&["prod"], "preprod"));
    }

    #[test]
    fn braces_and_classes() {
        assert!(matches(&["{rc,test}-*"], "rc-1"));
        assert!(matches(&["{rc,test}-*"], "test-2"));
        assert!(!matches(&["{rc,test}-*"], "prod-2"));
        assert!(matches(&["v{1,2{a,b}}"], "v2b"));
        assert!(matches(&["[a-c]x"], "bx"));
        assert!(!matches(&["[!a-c]x"], "bx"));
        assert!(matches(&[r"a\*"], "a*"));
        assert!(!matches(&[r"a\*"], "ab"));
        assert!(matches(&["a.b"], "a.b"));
        assert!(!matches(&["a.b"], "axb"));
    }

    #[test]
    fn located_errors() {
        let err = to_regex(&["ok".into(), "ab{c".into()]).unwrap_err();
        assert_eq!(err.0, 1);
        assert_eq!(err.1.offset, Some(2));
        assert_eq!(to_regex(&["a}".into()]).unwrap_err().1.offset, Some(1));
        assert_eq!(to_regex(&["x[ab".into()]).unwrap_err().1.offset, Some(1));
        assert_eq!(to_regex(&["ab\\".into()]).unwrap_err().1.offset, Some(2));
        assert_eq!(to_regex(&["[]".into()]).unwrap_err().1.offset, Some(1));
        // A `-` after a range is a literal, so nothing is reversed here.
        assert!(matches(&["[a-c-a]"], "-"));
        assert!(matches(&["[a-z-0]x"], "0x"));
        assert!(!matches(&["[a-c-a]"], "d"));
        let reversed = to_regex(&["ok".into(), "v[z-a]".into()]).unwrap_err();
        assert_eq!((reversed.0, reversed.1.offset), (1, Some(2)));
        assert_eq!(reversed.1.kind, PatternErrorKind::GlobSyntax);
    }
}
