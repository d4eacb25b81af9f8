//! Terminal colour: on only when the stream is a terminal and `NO_COLOR` is not set,
//! so pipes, files and CI logs get plain text.

use std::io::IsTerminal;

/// Whether (and how) to colour text bound for one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    colour: bool,
}

impl Style {
    /// The style for standard output.
    pub fn stdout() -> Style {
        Style::for_terminal(std::io::stdout().is_terminal())
    }

    /// The style for standard error.
    pub fn stderr() -> Style {
        Style::for_terminal(std::io::stderr().is_terminal())
    }

    /// Colour when `terminal` is true, unless `NO_COLOR` is set to a non-empty value
    /// (<https://no-color.org>).
    fn for_terminal(terminal: bool) -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
        Style {
            colour: terminal && !no_color,
        }
    }

    /// Whether this style colours (for other writers, such as the log).
    pub fn is_colored(self) -> bool {
        self.colour
    }

    /// A style that never colours.
    #[cfg(test)]
    pub fn plain() -> Style {
        Style { colour: false }
    }

    /// A style that always colours.
    #[cfg(test)]
    pub fn coloured() -> Style {
        Style { colour: true }
    }

    fn paint(self, sgr: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{sgr}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// Bold red: errors, invalid tags.
    pub fn error(self, text: &str) -> String {
        self.paint("1;31", text)
    }

    /// Bold yellow: warnings.
    pub fn warning(self, text: &str) -> String {
        self.paint("1;33", text)
    }

    /// Bold cyan: notes and locations.
    pub fn note(self, text: &str) -> String {
        self.paint("1;36", text)
    }

    /// Green: success.
    pub fn good(self, text: &str) -> String {
        self.paint("32", text)
    }

    /// Bold: headers and emphasis.
    pub fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }

    /// Dim: less important text.
    pub fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }
}

/// The most characters of one name (tag, image, rule, user) a human-readable
/// report shows; a longer one (never a valid tag or image name) is cut and its
/// length said, so one hostile name cannot flood the terminal.
pub const MAX_SHOWN_CHARS: usize = 160;

/// `text` made safe for a terminal: control characters (C0, DEL, C1) and the
/// bidirectional overrides are written as `\u{..}` escapes, so a name cannot move
/// the cursor, recolour the screen or reorder what follows; text longer than
/// [`MAX_SHOWN_CHARS`] is cut there, with its full length said.
/// Every name a human-readable report prints goes through here.
pub fn shown(text: &str) -> String {
    let mut out = String::new();
    for (count, c) in text.chars().enumerate() {
        if count == MAX_SHOWN_CHARS {
            out.push_str(&format!("… ({} characters)", text.chars().count()));
            return out;
        }
        if is_unsafe(c) {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// `text` with its control characters escaped as [`shown`] does, but not cut: for
/// messages, which quote names but are written by taglock.
pub fn escaped(text: &str) -> String {
    if !text.chars().any(is_unsafe) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if is_unsafe(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Whether `text` holds a character [`shown`] would escape.
pub fn has_unsafe(text: &str) -> bool {
    text.chars().any(is_unsafe)
}

/// Whether a character must not reach a terminal raw.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` followed by spaces up to `width` characters (none when it is already as
/// wide). Unlike `format!("{:width$}")`, any width works: the standard library's
/// formatting panics on widths above 65,535.
pub fn pad(text: &str, width: usize) -> String {
    let length = text.chars().count();
    let mut out = String::with_capacity(text.len() + width.saturating_sub(length));
    out.push_str(text);
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(length)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(shown("v1\x1b[2Jx"), "v1\\u{1b}[2Jx");
        assert_eq!(shown("a\nb\u{7f}\u{9b}"), "a\\u{a}b\\u{7f}\\u{9b}");
        assert_eq!(shown("ab\u{202e}cd"), "ab\\u{202e}cd");
        assert_eq!(shown("plain-name ünï"), "plain-name ünï");
    }

    #[test]
    fn long_text_is_cut_with_its_length() {
        let long = "a".repeat(70_000);
        let cut = shown(&long);
        assert!(cut.starts_with(&"a".repeat(MAX_SHOWN_CHARS)));
        assert!(cut.ends_with("… (70000 characters)"), "{cut}");
        assert_eq!(
            shown(&"b".repeat(MAX_SHOWN_CHARS)),
            "b".repeat(MAX_SHOWN_CHARS)
        );
    }

    #[test]
    fn padding_takes_any_width() {
        assert_eq!(pad("ab", 4), "ab  ");
        assert_eq!(pad("abcdef", 4), "abcdef");
        assert_eq!(pad("x", 70_000).len(), 70_000);
    }

    #[test]
    fn plain_style_leaves_text_alone() {
        assert_eq!(Style::plain().error("error"), "error");
        assert_eq!(Style::plain().dim("x"), "x");
    }

    #[test]
    fn coloured_style_wraps_text_in_sgr_codes() {
        assert_eq!(Style::coloured().error("error"), "\x1b[1;31merror\x1b[0m");
        assert_eq!(Style::coloured().bold("TAG"), "\x1b[1mTAG\x1b[0m");
    }
}
