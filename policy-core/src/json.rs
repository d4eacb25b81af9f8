//! JSON input with located errors: every host parses policies and requests here.
//!
//! Text is deserialized by serde_json directly; only when that fails is the error's
//! JSON path worked out, from its line and column ([`path_at`]), by walking the
//! text up to that point. This gives the paths `serde_path_to_error` gives (the
//! test `json_paths.rs` holds the two to the same answers) without wrapping every
//! type's deserializer, which cost ~60 KB of each WebAssembly build.

use serde::Serialize;
use serde::de::DeserializeOwned;
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
    // From the bytes rather than the `str`: the same reading of a text that is
    // UTF-8 already (same values, errors and positions), and the Envoy filter,
    // whose other JSON arrives as bytes, then carries one copy of serde_json's
    // parser instead of two (−5.7 KB there).
    let mut deserializer = serde_json::Deserializer::from_slice(text.as_bytes());
    let value = T::deserialize(&mut deserializer).map_err(|err| {
        let message = bare_message(&err);
        // serde follows some values differently from their JSON shape: the walk
        // needs to know where a policy document has enums and selectors.
        let schema = if std::any::type_name::<T>() == std::any::type_name::<crate::PolicyDocument>()
        {
            Schema {
                enum_at: crate::document::is_enum_at,
                selector_at: crate::document::is_selector_at,
            }
        } else {
            Schema {
                enum_at: |_| false,
                selector_at: |_| false,
            }
        };
        let path = path_at(text, &err, &message, &schema);
        located(path, message, &err)
    })?;
    deserializer
        .end()
        .map_err(|err| located(String::new(), bare_message(&err), &err))?;
    Ok(value)
}

/// serde_json appends " at line L column C" to its Display; this is the message
/// without it.
fn bare_message(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.rfind(" at line ") {
        Some(cut) if err.line() > 0 => text.get(..cut).unwrap_or(&text).to_owned(),
        _ => text,
    }
}

fn located(path: String, message: String, err: &serde_json::Error) -> JsonError {
    JsonError {
        path,
        line: err.line(),
        column: err.column(),
        message,
        syntax: is_syntax(err),
    }
}

fn is_syntax(err: &serde_json::Error) -> bool {
    matches!(
        err.classify(),
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof
    )
}

/// No path: serde_path_to_error writes `.` for the root and `?` where it could
/// not follow the path (a syntax error), and so does [`render`].
fn clean_path(path: String) -> String {
    if path == "." || path == "?" {
        String::new()
    } else {
        path
    }
}

// ---------------------------------------------------------------------------
// Locating an error by walking the text.

/// The message serde gives a `Selector` that names none or several of its kinds
/// (`document::Selector`'s `try_from`): raised after the selector object is read, so
/// serde_json places it on the closing bracket of the container around it.
const SELECTOR_MESSAGE: &str = "a selector has exactly one of `regex`, `matching` or `excluding`";

/// Where the type being read has values serde reads unlike their JSON shape.
struct Schema {
    /// An enum: written as an object (`{"variant": …}`), serde names the enum
    /// itself, with no step for the key, in errors inside it.
    enum_at: fn(&[Segment]) -> bool,
    /// A `Selector`: its "exactly one of" error is raised after the whole object
    /// (or array) is read, so serde_json places it past the selector's end.
    selector_at: fn(&[Segment]) -> bool,
}

/// One step of a JSON path.
#[derive(Debug, Clone)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
    /// A key that could not be read.
    Unknown,
}

/// Where the walk is inside one object or array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Object: after `{` (`first`) or after a `,`; array: before an element.
    Before { first: bool },
    /// Object: inside a key string.
    InKey,
    /// Object: after the key string, before `:`.
    AfterKey,
    /// Object: after `:`, before the value.
    BeforeValue,
    /// A child scalar is being read.
    InValue,
    /// After a child value, before `,` or the closing bracket.
    AfterValue,
}

/// An open object or array.
#[derive(Debug)]
struct Frame {
    object: bool,
    phase: Phase,
    /// The current key (objects), once read; kept until the next `,`.
    key: Option<String>,
    /// The current element's index (arrays).
    index: usize,
    /// Whether the last child value read was an object or an array.
    last_child_container: bool,
}

impl Frame {
    fn child_segment(&self) -> Segment {
        match (&self.key, self.object) {
            (_, false) => Segment::Index(self.index),
            (Some(key), true) => Segment::Key(key.clone()),
            (None, true) => Segment::Unknown,
        }
    }
}

/// A scalar being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scalar {
    /// Inside a string; `escape` after a backslash, `hex` digits of `\u` left.
    String { key: bool, escape: bool, hex: u8 },
    /// A number or `true`/`false`/`null`, from `start`; `number` is where a number
    /// is in its grammar (`None` for the words), so each byte is judged in constant
    /// time however long the number (re-reading the token at every byte made
    /// locating an error in a number of 400,000 digits take half a minute).
    Bare {
        start: usize,
        number: Option<NumberState>,
    },
}

/// Where a number being read is in the JSON number grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumberState {
    /// After `-`.
    Minus,
    /// The integer part is `0` (or `-0`).
    Zero,
    /// A digit after a leading `0`: serde_json reads it into the number and then
    /// refuses the number; nothing continues it.
    ZeroDigit,
    /// In the integer part.
    Int,
    /// After the `.`.
    Dot,
    /// In the fraction.
    Fraction,
    /// After `e` or `E`.
    Exponent,
    /// After the exponent's sign.
    ExponentSign,
    /// In the exponent's digits.
    ExponentDigits,
}

impl NumberState {
    /// The state a number starts in at `byte` (`None`: no number starts so).
    fn start(byte: u8) -> Option<NumberState> {
        match byte {
            b'-' => Some(NumberState::Minus),
            b'0' => Some(NumberState::Zero),
            b'1'..=b'9' => Some(NumberState::Int),
            _ => None,
        }
    }

    /// The state after `byte`, when `byte` extends the number as serde_json reads
    /// it (the same answer as [`continues_bare`]).
    fn next(self, byte: u8) -> Option<NumberState> {
        use NumberState::*;
        let digit = byte.is_ascii_digit();
        match (self, byte) {
            (Minus, b'0') => Some(Zero),
            (Minus, _) if digit => Some(Int),
            (Zero, _) if digit => Some(ZeroDigit),
            (Int, _) if digit => Some(Int),
            (Zero | Int, b'.') => Some(Dot),
            (Zero | Int | Fraction, b'e' | b'E') => Some(Exponent),
            (Dot | Fraction, _) if digit => Some(Fraction),
            (Exponent, b'+' | b'-') => Some(ExponentSign),
            (Exponent | ExponentSign | ExponentDigits, _) if digit => Some(ExponentDigits),
            _ => None,
        }
    }

    /// Whether the number read so far is whole (the same answer as [`is_number`]).
    fn complete(self) -> bool {
        matches!(
            self,
            NumberState::Zero
                | NumberState::Int
                | NumberState::Fraction
                | NumberState::ExponentDigits
        )
    }
}

/// A container that the last byte read closed.
#[derive(Debug)]
struct Closed {
    path: Vec<Segment>,
    /// Its last child, when that was an object or an array.
    last_container_child: Option<Segment>,
}

/// The state of the walk after some prefix of the text.
#[derive(Debug, Default)]
struct Walk {
    frames: Vec<Frame>,
    scalar: Option<Scalar>,
    /// Start of the key string being read (after its opening quote).
    key_start: usize,
    /// The root value has been read.
    root_done: bool,
    just_closed: Option<Closed>,
    /// How many bytes the walk read.
    read: usize,
}

/// The JSON path serde_path_to_error gives for `err`, found from the error's
/// position in `text` (how far the deserializer had read) and its kind.
fn path_at(text: &str, err: &serde_json::Error, message: &str, schema: &Schema) -> String {
    if err.line() == 0 {
        return String::new();
    }
    let Some(end) = byte_offset(text, err.line(), err.column()) else {
        return String::new();
    };
    let bytes = text.as_bytes();
    let segments = match err.classify() {
        // The position is just after the last byte read.
        serde_json::error::Category::Data => Walk::over(bytes, end).data_path(message, schema),
        serde_json::error::Category::Eof => {
            Walk::over(bytes, end).syntax_path(bytes, None, message, schema.enum_at)
        }
        // The position is just after the offending byte: the walk stops before it.
        _ => {
            let before = end.saturating_sub(1);
            Walk::over(bytes, before).syntax_path(
                bytes,
                bytes.get(before).copied(),
                message,
                schema.enum_at,
            )
        }
    };
    clean_path(render(&segments))
}

/// serde_json's (line, column) back to a byte offset: the column counts the
/// bytes of the line read so far.
fn byte_offset(text: &str, line: usize, column: usize) -> Option<usize> {
    let mut start = 0;
    for _ in 1..line {
        start += text.get(start..)?.find('\n')? + 1;
    }
    let offset = start + column;
    (offset <= text.len()).then_some(offset)
}

/// `a.b[0].c`, as serde_path_to_error writes a path; `.` for the root.
fn render(segments: &[Segment]) -> String {
    if segments.is_empty() {
        return ".".to_owned();
    }
    let mut out = String::new();
    for (i, segment) in segments.iter().enumerate() {
        if i > 0 && !matches!(segment, Segment::Index(_)) {
            out.push('.');
        }
        match segment {
            Segment::Index(index) => {
                out.push('[');
                out.push_str(&index.to_string());
                out.push(']');
            }
            Segment::Key(key) => out.push_str(key),
            Segment::Unknown => out.push('?'),
        }
    }
    out
}

/// Whether `token` is a whole JSON number.
fn is_number(token: &[u8]) -> bool {
    let digits = |t: &[u8]| t.iter().take_while(|b| b.is_ascii_digit()).count();
    let rest = token.strip_prefix(b"-").unwrap_or(token);
    let int = digits(rest);
    if int == 0 || (int > 1 && rest.first() == Some(&b'0')) {
        return false;
    }
    let mut rest = rest.get(int..).unwrap_or_default();
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = digits(fraction);
        if n == 0 {
            return false;
        }
        rest = fraction.get(n..).unwrap_or_default();
    }
    if let Some(exponent) = rest.strip_prefix(b"e").or_else(|| rest.strip_prefix(b"E")) {
        let exponent = exponent
            .strip_prefix(b"+")
            .or_else(|| exponent.strip_prefix(b"-"))
            .unwrap_or(exponent);
        let n = digits(exponent);
        if n == 0 {
            return false;
        }
        rest = exponent.get(n..).unwrap_or_default();
    }
    rest.is_empty()
}

/// Whether `byte` extends the number or literal `token` as serde_json reads it
/// (a digit after a leading `0` is an error inside the number).
fn continues_bare(token: &[u8], byte: u8) -> bool {
    let word = [token, &[byte]].concat();
    match token.first() {
        Some(b't' | b'f' | b'n') => [&b"true"[..], b"false", b"null"]
            .iter()
            .any(|w| w.starts_with(&word)),
        _ => is_number_prefix(&word) || (matches!(token, b"0" | b"-0") && byte.is_ascii_digit()),
    }
}

/// Whether `token` can start a JSON number.
fn is_number_prefix(token: &[u8]) -> bool {
    let digits = |t: &[u8]| t.iter().take_while(|b| b.is_ascii_digit()).count();
    let rest = token.strip_prefix(b"-").unwrap_or(token);
    let int = digits(rest);
    if int > 1 && rest.first() == Some(&b'0') {
        return false;
    }
    let Some(mut rest) = rest.get(int..) else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    if int == 0 {
        return false;
    }
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = digits(fraction);
        rest = fraction.get(n..).unwrap_or_default();
        if rest.is_empty() {
            return true;
        }
        if n == 0 {
            return false;
        }
    }
    let Some(exponent) = rest.strip_prefix(b"e").or_else(|| rest.strip_prefix(b"E")) else {
        return false;
    };
    let exponent = exponent
        .strip_prefix(b"+")
        .or_else(|| exponent.strip_prefix(b"-"))
        .unwrap_or(exponent);
    digits(exponent) == exponent.len()
}

/// Whether `token` is a whole number or literal.
fn is_complete_bare(token: &[u8]) -> bool {
    matches!(token, b"true" | b"false" | b"null") || is_number(token)
}

impl Walk {
    /// Walks `bytes[..end]`, stopping early at a byte that cannot come next.
    fn over(bytes: &[u8], end: usize) -> Walk {
        let mut walk = Walk::default();
        for (at, &byte) in bytes.iter().enumerate().take(end) {
            if !walk.step(bytes, at, byte) {
                break;
            }
            walk.read = at + 1;
        }
        walk
    }

    /// The path of the container on top (empty for the root).
    fn container_path(&self) -> Vec<Segment> {
        match self.frames.split_last() {
            Some((_, parents)) => parents.iter().map(Frame::child_segment).collect(),
            None => Vec::new(),
        }
    }

    /// The path of the top container's current child (the root when none is open).
    fn child_path(&self) -> Vec<Segment> {
        self.frames.iter().map(Frame::child_segment).collect()
    }

    /// Reads one byte; false when it cannot come next in JSON.
    fn step(&mut self, bytes: &[u8], at: usize, byte: u8) -> bool {
        self.just_closed = None;
        match self.scalar {
            Some(Scalar::String { key, escape, hex }) => {
                return self.string_byte(bytes, at, byte, key, escape, hex);
            }
            Some(Scalar::Bare { start, number }) => {
                let (continues, complete) = match number {
                    Some(state) => match state.next(byte) {
                        Some(next) => {
                            self.scalar = Some(Scalar::Bare {
                                start,
                                number: Some(next),
                            });
                            (true, true)
                        }
                        None => (false, state.complete()),
                    },
                    // `true`, `false`, `null`: at most five bytes.
                    None => {
                        let token = bytes.get(start..at).unwrap_or_default();
                        (continues_bare(token, byte), is_complete_bare(token))
                    }
                };
                if continues {
                    return true;
                }
                if !complete {
                    return false;
                }
                self.scalar = None;
                self.value_done(false);
            }
            None => {}
        }
        if matches!(byte, b' ' | b'\n' | b'\t' | b'\r') {
            return true;
        }
        let Some(top) = self.frames.last() else {
            if self.root_done {
                return false;
            }
            return self.start_value(at, byte);
        };
        match (top.object, top.phase, byte) {
            (true, Phase::Before { .. }, b'"') => {
                self.set_phase(Phase::InKey);
                self.key_start = at + 1;
                self.scalar = Some(Scalar::String {
                    key: true,
                    escape: false,
                    hex: 0,
                });
                true
            }
            (true, Phase::Before { first: true }, b'}')
            | (false, Phase::Before { first: true }, b']') => {
                self.close();
                true
            }
            (true, Phase::AfterKey, b':') => {
                self.set_phase(Phase::BeforeValue);
                true
            }
            (true, Phase::BeforeValue, _) | (false, Phase::Before { .. }, _) if byte != b']' => {
                self.set_phase(Phase::InValue);
                self.start_value(at, byte)
            }
            (object, Phase::AfterValue, b',') => {
                if let Some(top) = self.frames.last_mut() {
                    top.phase = Phase::Before { first: false };
                    top.last_child_container = false;
                    if object {
                        top.key = None;
                    } else {
                        top.index += 1;
                    }
                }
                true
            }
            (true, Phase::AfterValue, b'}') | (false, Phase::AfterValue, b']') => {
                self.close();
                true
            }
            _ => false,
        }
    }

    /// Reads one byte of a string.
    fn string_byte(
        &mut self,
        bytes: &[u8],
        at: usize,
        byte: u8,
        key: bool,
        escape: bool,
        hex: u8,
    ) -> bool {
        let next = |escape, hex| Some(Scalar::String { key, escape, hex });
        self.scalar = if hex > 0 {
            if !byte.is_ascii_hexdigit() {
                return false;
            }
            next(false, hex - 1)
        } else if escape {
            match byte {
                b'u' => next(false, 4),
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => next(false, 0),
                _ => return false,
            }
        } else if byte == b'\\' {
            next(true, 0)
        } else if byte < 0x20 {
            return false;
        } else if byte != b'"' {
            next(false, 0)
        } else {
            self.scalar = None;
            if key {
                let key = unescape(bytes.get(self.key_start..at).unwrap_or_default());
                if let Some(top) = self.frames.last_mut() {
                    top.key = Some(key);
                    top.phase = Phase::AfterKey;
                }
            } else {
                self.value_done(false);
            }
            return true;
        };
        true
    }

    fn set_phase(&mut self, phase: Phase) {
        if let Some(top) = self.frames.last_mut() {
            top.phase = phase;
        }
    }

    /// Starts a value at `byte`; false when no value starts so.
    fn start_value(&mut self, at: usize, byte: u8) -> bool {
        match byte {
            b'{' | b'[' => self.frames.push(Frame {
                object: byte == b'{',
                phase: Phase::Before { first: true },
                key: None,
                index: 0,
                last_child_container: false,
            }),
            b'"' => {
                self.scalar = Some(Scalar::String {
                    key: false,
                    escape: false,
                    hex: 0,
                });
            }
            b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
                self.scalar = Some(Scalar::Bare {
                    start: at,
                    number: NumberState::start(byte),
                })
            }
            _ => return false,
        }
        true
    }

    /// Closes the container on top.
    fn close(&mut self) {
        let path = self.container_path();
        let Some(frame) = self.frames.pop() else {
            return;
        };
        self.value_done(true);
        self.just_closed = Some(Closed {
            path,
            last_container_child: frame.last_child_container.then(|| frame.child_segment()),
        });
    }

    /// A value of the top container (or the root) has been read.
    fn value_done(&mut self, container: bool) {
        match self.frames.last_mut() {
            Some(top) => {
                top.phase = Phase::AfterValue;
                top.last_child_container = container;
            }
            None => self.root_done = true,
        }
    }

    /// The path of a data error: the deserializer had read the text up to here
    /// and serde refused what it found.
    fn data_path(&self, message: &str, schema: &Schema) -> Vec<Segment> {
        if let Some(closed) = &self.just_closed {
            let mut path = closed.path.clone();
            if message == SELECTOR_MESSAGE && !(schema.selector_at)(&path) {
                // Raised after the selector; serde_json then read on to the bracket
                // closing the container it is the last value of.
                path.extend(closed.last_container_child.clone());
            }
            return path;
        }
        let Some(top) = self.frames.last() else {
            return Vec::new();
        };
        if self.scalar.is_some() {
            return self.child_path();
        }
        if message == SELECTOR_MESSAGE
            && top.phase == (Phase::Before { first: false })
            && !top.object
        {
            // After a selector in an array serde_json read on past the comma.
            let mut path = self.container_path();
            path.push(Segment::Index(top.index.saturating_sub(1)));
            return path;
        }
        if message.starts_with("invalid type: sequence")
            && message.ends_with(crate::document::LIMITS_EXPECTING)
        {
            // `limits` reads any value: serde_json opened the array (and read on to
            // its first comma) before the visitor refused it.
            return self.container_path();
        }
        match top.phase {
            // Serde names the object for these, not the key.
            Phase::AfterKey
                if message.starts_with("unknown variant")
                    || message.starts_with("duplicate field") =>
            {
                self.container_path()
            }
            Phase::Before { .. } if top.object => self.container_path(),
            _ => self.child_path(),
        }
    }

    /// The path of a syntax error before `offending` (`None`: the text ended).
    fn syntax_path(
        &self,
        bytes: &[u8],
        offending: Option<u8>,
        message: &str,
        enums: fn(&[Segment]) -> bool,
    ) -> Vec<Segment> {
        let mut after_value = false;
        match self.scalar {
            Some(Scalar::String { key: true, .. }) => {
                let mut path = self.container_path();
                if !enums(&path) {
                    path.push(Segment::Unknown);
                }
                return path;
            }
            Some(Scalar::String { key: false, .. }) => return self.child_path(),
            Some(Scalar::Bare { start, .. }) => {
                let token = bytes.get(start..self.read).unwrap_or_default();
                let inside = offending.is_some_and(|b| continues_bare(token, b));
                if inside || !is_complete_bare(token) {
                    return self.child_path();
                }
                after_value = true;
            }
            None => {}
        }
        let Some(top) = self.frames.last() else {
            return Vec::new();
        };
        let phase = if after_value {
            Phase::AfterValue
        } else {
            top.phase
        };
        match (top.object, phase) {
            (true, Phase::Before { .. } | Phase::AfterValue | Phase::InKey) => {
                let mut path = self.container_path();
                // Between the keys of a map or struct serde has no key to name; an
                // enum written as an object is named itself.
                if !enums(&path) {
                    path.push(Segment::Unknown);
                }
                path
            }
            (true, Phase::AfterKey) | (false, Phase::AfterValue) => self.container_path(),
            // A struct read from an array stops after its fields; serde_json then
            // finds more elements (`trailing characters`) or a `]` after a comma.
            (false, Phase::Before { .. })
                if offending.is_none_or(|b| b == b']') || message == "trailing characters" =>
            {
                self.container_path()
            }
            _ => self.child_path(),
        }
    }
}

/// Decodes the content of a JSON string that was read whole (so its escapes are
/// valid), as serde_json does; by hand, so no second deserializer is compiled in.
fn unescape(raw: &[u8]) -> String {
    let mut units: Vec<u16> = Vec::new();
    let mut out = String::new();
    let mut rest = raw;
    let flush = |units: &mut Vec<u16>, out: &mut String| {
        out.extend(char::decode_utf16(units.drain(..)).map(|c| c.unwrap_or('\u{fffd}')));
    };
    while let Some(at) = rest.iter().position(|&b| b == b'\\') {
        let (plain, tail) = rest.split_at(at);
        if !plain.is_empty() {
            flush(&mut units, &mut out);
            out.push_str(&String::from_utf8_lossy(plain));
        }
        let escape = tail.get(1).copied().unwrap_or(b'\\');
        rest = tail.get(2..).unwrap_or_default();
        let simple = match escape {
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hex = rest.get(..4).and_then(|h| std::str::from_utf8(h).ok());
                if let Some(unit) = hex.and_then(|h| u16::from_str_radix(h, 16).ok()) {
                    units.push(unit);
                }
                rest = rest.get(4..).unwrap_or_default();
                continue;
            }
            other => char::from(other),
        };
        flush(&mut units, &mut out);
        out.push(simple);
    }
    flush(&mut units, &mut out);
    out.push_str(&String::from_utf8_lossy(rest));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// Every token of up to five bytes over the number alphabet: the incremental
    /// number state gives the answers the token functions give.
    #[test]
    fn number_states_agree_with_the_token_functions() {
        let alphabet = b"-0159.eE+x";
        let mut tokens: Vec<Vec<u8>> = alphabet
            .iter()
            .filter(|b| NumberState::start(**b).is_some())
            .map(|b| vec![*b])
            .collect();
        let mut checked = 0;
        while let Some(token) = tokens.pop() {
            let mut state = NumberState::start(token[0]);
            for &b in &token[1..] {
                state = state.and_then(|s| s.next(b));
            }
            // Only tokens the walk can reach: each byte continued the one before.
            let Some(state) = state else { continue };
            assert_eq!(state.complete(), is_complete_bare(&token), "{token:?}");
            for &b in alphabet {
                let continues = state.next(b).is_some();
                assert_eq!(continues, continues_bare(&token, b), "{token:?} + {b}");
                if continues && token.len() < 5 {
                    tokens.push([token.as_slice(), &[b]].concat());
                }
            }
            checked += 1;
        }
        assert!(checked > 100, "{checked}");
    }
}
