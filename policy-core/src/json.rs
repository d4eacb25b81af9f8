//! JSON input with located errors: every host parses policies and requests here.

use serde::de::DeserializeOwned;
use std::fmt;

/// JSON that could not be read as the expected shape, located in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// JSON path of the offending value, e.g. `immutability.rules[0].tags`; empty for the root.
    pub path: String,
    /// 1-based line of the problem in the text (0 when unknown).
    pub line: usize,
    /// 1-based column of the problem in the text (0 when unknown).
    pub column: usize,
    /// What is wrong, as serde_json words it.
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

/// Parses `text` as `T`, locating the first problem by JSON path, line and column.
pub fn from_json<T: DeserializeOwned>(text: &str) -> Result<T, JsonError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        located(clean_path(path), &inner)
    })?;
    deserializer
        .end()
        .map_err(|err| located(String::new(), &err))?;
    Ok(value)
}

fn located(path: String, err: &serde_json::Error) -> JsonError {
    // serde_json appends " at line L column C" to its Display; keep the bare message.
    let text = err.to_string();
    let message = match text.rfind(" at line ") {
        Some(cut) if err.line() > 0 => text.get(..cut).unwrap_or(&text).to_owned(),
        _ => text,
    };
    JsonError {
        path,
        line: err.line(),
        column: err.column(),
        message,
        syntax: matches!(
            err.classify(),
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof
        ),
    }
}

/// Reads `T` from an already parsed JSON value, locating the first problem by path.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, JsonError> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        JsonError::at(clean_path(path), err.into_inner().to_string())
    })
}

/// serde_path_to_error writes `.` for the root and `?` where it could not follow the
/// path (a syntax error); both mean "no path" here.
fn clean_path(path: String) -> String {
    if path == "." || path == "?" {
        String::new()
    } else {
        path
    }
}
