//! JSON input with located errors: every host parses policies and requests here.
//!
//! Reading is two steps, and neither guesses:
//!
//! 1. `scan` checks that the whole text is JSON, left to right, keeping the path of
//!    the value it is in (keys as spans of the text, indexes as counters). A syntax
//!    error is made where the scanner stands: its path, its line and column, the
//!    `syntax` flag. Nesting deeper than [`path::MAX_DEPTH`] is refused; every byte is
//!    looked at a constant number of times, however long a number or a string.
//! 2. The type reads itself ([`Read`]) from the checked text: values are spans
//!    ([`Value`]), decoded only when the schema reads them. Each document type names
//!    its fields once, in the `fields!` reader next to its definition
//!    (`document.rs`, `request/fields.rs`); reading descends value by value and
//!    extends the [`Path`] as it goes (`immutability.rules[0].tags`), so every error
//!    is made where it is found, with that path and the position of the value or key
//!    at fault. Fields are read in the order of the text, so the first problem in the
//!    text is the one reported.
//!
//! Objects refuse unknown and duplicate keys; an object is never read as an array
//! of its fields, nor an enum as an object.

mod path;
mod scan;
mod value;

pub use path::Path;
pub use value::Value;
pub(crate) use value::fields;
pub(crate) use value::{duplicate, unknown_field};

use scan::scan;
use serde::Serialize;
use std::fmt;

/// JSON that could not be read as the expected shape, located in the text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JsonError {
    /// JSON path of the offending value, e.g. `immutability.rules[0].tags`; empty for the root.
    pub path: String,
    /// 1-based line of the problem in the text (0 when unknown).
    pub line: usize,
    /// 1-based column of the problem in the text (0 when unknown).
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// Whether the text is not JSON at all (as opposed to JSON of the wrong shape).
    pub syntax: bool,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            write!(f, "at `{}`: ", self.path)?;
        }
        write!(f, "{}", self.message)?;
        if self.line > 0 {
            write!(f, " (line {}, column {})", self.line, self.column)?;
        }
        Ok(())
    }
}

impl std::error::Error for JsonError {}

impl JsonError {
    /// A shape problem at `path`, with no position in the text.
    pub fn at(path: impl Into<String>, message: impl Into<String>) -> JsonError {
        JsonError {
            path: path.into(),
            line: 0,
            column: 0,
            message: message.into(),
            syntax: false,
        }
    }
}

/// A type [`from_json`] reads: the policy document and everything in it, requests,
/// and the values they are made of. Sealed: only the core's own types read
/// themselves this way (the reading itself is private to the crate).
pub trait FromJson: Read {}

impl<T: Read> FromJson for T {}

/// How a type reads itself from checked JSON: the private half of [`FromJson`].
pub trait Read: Sized {
    /// Reads `value`, found at `at`; errors carry `at` (extended) and a position.
    fn read(value: Value<'_>, at: &Path<'_>) -> Result<Self, JsonError>;
}

/// Parses `text` as `T`, locating the first problem by JSON path, line and column.
pub fn from_json<T: FromJson>(text: &str) -> Result<T, JsonError> {
    T::read(scan(text)?, &Path::ROOT)
}

#[cfg(test)]
mod tests;
