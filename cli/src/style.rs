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

#[cfg(test)]
mod tests {
    use super::*;

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
