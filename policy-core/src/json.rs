//! JSON input with located errors: every host parses policies and requests here.
//!
//! Reading is two steps, and neither guesses:
//!
//! 1. `scan` checks that the whole text is JSON, left to right, keeping the path of
//!    the value it is in (keys as spans of the text, indexes as counters). A syntax
//!    error is made where the scanner stands: its path, its line and column, the
//!    `syntax` flag. Nesting deeper than [`MAX_DEPTH`] is refused; every byte is
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

use serde::Serialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
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

// ---------------------------------------------------------------------------
// Paths and positions.

/// Where a value is in the document: a chain of keys and indexes, kept on the stack
/// while reading and written out only for an error.
#[derive(Debug)]
pub struct Path<'p> {
    parent: Option<&'p Path<'p>>,
    step: Step<'p>,
}

#[derive(Debug)]
enum Step<'p> {
    Root,
    Key(&'p str),
    Index(usize),
}

impl<'p> Path<'p> {
    /// The document itself.
    pub(crate) const ROOT: Path<'static> = Path {
        parent: None,
        step: Step::Root,
    };

    /// The value under `key` of the object here.
    pub(crate) fn key<'q>(&'q self, key: &'q str) -> Path<'q> {
        Path {
            parent: Some(self),
            step: Step::Key(key),
        }
    }

    /// The element `index` of the array here.
    pub(crate) fn index(&self, index: usize) -> Path<'_> {
        Path {
            parent: Some(self),
            step: Step::Index(index),
        }
    }

    /// `a.b[0].c`; empty for the root.
    fn render(&self) -> String {
        let mut steps = Vec::new();
        let mut here = Some(self);
        while let Some(path) = here {
            steps.push(&path.step);
            here = path.parent;
        }
        let mut out = String::new();
        for step in steps.iter().rev() {
            match step {
                Step::Root => {}
                Step::Key(key) => push_key(&mut out, key),
                Step::Index(index) => push_index(&mut out, *index),
            }
        }
        out
    }
}

fn push_key(out: &mut String, key: &str) {
    if !out.is_empty() {
        out.push('.');
    }
    out.push_str(key);
}

fn push_index(out: &mut String, index: usize) {
    out.push('[');
    out.push_str(&index.to_string());
    out.push(']');
}

/// The 1-based line and column of the byte before `index` (the column counts
/// bytes; `index` past a line break gives column 0: the end of the text after a
/// final line break).
fn position(text: &str, index: usize) -> (usize, usize) {
    let before = text.as_bytes().get(..index).unwrap_or(text.as_bytes());
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |at| at + 1);
    (line, before.len() - start)
}

/// An error about the byte at `offset` (at the end of the text: the end).
fn located(text: &str, offset: usize, path: String, message: String, syntax: bool) -> JsonError {
    let (line, column) = position(text, offset.saturating_add(1).min(text.len()));
    JsonError {
        path,
        line,
        column,
        message,
        syntax,
    }
}

/// At most this many objects and arrays open at once (serde_json's limit).
pub const MAX_DEPTH: usize = 128;

// ---------------------------------------------------------------------------
// Step 1: checking that the text is JSON.

/// An open object or array while scanning.
struct Frame {
    object: bool,
    /// Objects: the span of the current entry's key, once read.
    key: Option<(usize, usize)>,
    /// Arrays: the current element, once started.
    index: Option<usize>,
}

/// Checks the text left to right; the state is where it stands.
struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    frames: Vec<Frame>,
}

const EOF_VALUE: &str = "EOF while parsing a value";
const EOF_STRING: &str = "EOF while parsing a string";
const EOF_OBJECT: &str = "EOF while parsing an object";
const EOF_LIST: &str = "EOF while parsing a list";

/// Checks that `text` is one JSON value (whitespace around it allowed) and
/// returns it; the first syntax error otherwise.
fn scan(text: &str) -> Result<Value<'_>, JsonError> {
    let mut scanner = Scanner {
        text,
        bytes: text.as_bytes(),
        at: 0,
        frames: Vec::new(),
    };
    scanner.whitespace();
    let start = scanner.at;
    scanner.value()?;
    while !scanner.frames.is_empty() {
        scanner.after_value()?;
    }
    let end = scanner.at;
    scanner.whitespace();
    if scanner.at < text.len() {
        return Err(scanner.fail(scanner.at, "trailing characters"));
    }
    Ok(Value { text, start, end })
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\t' | b'\r')) {
            self.at += 1;
        }
    }

    /// A syntax error about the byte at `offset`, with the path being read.
    fn fail(&self, offset: usize, message: &str) -> JsonError {
        located(self.text, offset, self.path(), message.to_owned(), true)
    }

    /// A syntax error at the end of the text.
    fn eof(&self, message: &str) -> JsonError {
        self.fail(self.bytes.len(), message)
    }

    fn path(&self) -> String {
        let mut out = String::new();
        for frame in &self.frames {
            if let Some((start, end)) = frame.key {
                let raw = self.bytes.get(start..end).unwrap_or_default();
                push_key(&mut out, &unescape(raw));
            }
            if let Some(index) = frame.index {
                push_index(&mut out, index);
            }
        }
        out
    }

    /// Reads one value; a container is opened (and its first entry's key read),
    /// then [`Scanner::after_value`] reads on.
    fn value(&mut self) -> Result<(), JsonError> {
        loop {
            self.whitespace();
            match self.peek() {
                None => return Err(self.eof(EOF_VALUE)),
                Some(open @ (b'[' | b'{')) => {
                    if !self.open(open == b'{')? {
                        return Ok(());
                    }
                    if open == b'{' {
                        self.key()?;
                    }
                }
                Some(b'"') => return self.string(),
                Some(b'-' | b'0'..=b'9') => return self.number(),
                Some(b't') => return self.word(b"true"),
                Some(b'f') => return self.word(b"false"),
                Some(b'n') => return self.word(b"null"),
                Some(_) => return Err(self.fail(self.at, "expected value")),
            }
        }
    }

    /// Opens an object or array; false when it closes at once (`{}`, `[]`).
    fn open(&mut self, object: bool) -> Result<bool, JsonError> {
        if self.frames.len() + 1 >= MAX_DEPTH {
            return Err(self.fail(self.at, "recursion limit exceeded"));
        }
        self.at += 1;
        self.frames.push(Frame {
            object,
            key: None,
            index: None,
        });
        self.whitespace();
        match (self.peek(), object) {
            (Some(b'}'), true) | (Some(b']'), false) => {
                self.at += 1;
                self.frames.pop();
                Ok(false)
            }
            (None, true) => Err(self.eof(EOF_OBJECT)),
            (None, false) => Err(self.eof(EOF_LIST)),
            (Some(b'"'), true) => Ok(true),
            (Some(_), true) => Err(self.fail(self.at, "key must be a string")),
            (Some(_), false) => {
                self.set_index(0);
                Ok(true)
            }
        }
    }

    fn set_index(&mut self, index: usize) {
        if let Some(frame) = self.frames.last_mut() {
            frame.index = Some(index);
        }
    }

    /// Reads a key (at its `"`) and the `:` after it.
    fn key(&mut self) -> Result<(), JsonError> {
        let start = self.at + 1;
        self.string()?;
        if let Some(frame) = self.frames.last_mut() {
            frame.key = Some((start, self.at - 1));
        }
        self.whitespace();
        match self.peek() {
            Some(b':') => {
                self.at += 1;
                Ok(())
            }
            Some(_) => Err(self.fail(self.at, "expected `:`")),
            None => Err(self.eof(EOF_OBJECT)),
        }
    }

    /// After a value inside the top container: a `,` and the next entry, or the end.
    fn after_value(&mut self) -> Result<(), JsonError> {
        let Some(frame) = self.frames.last() else {
            return Ok(());
        };
        let (object, index) = (frame.object, frame.index.unwrap_or(0));
        self.whitespace();
        match (self.peek(), object) {
            (Some(b','), _) => {
                self.at += 1;
                if object {
                    if let Some(frame) = self.frames.last_mut() {
                        frame.key = None;
                    }
                } else {
                    self.set_index(index + 1);
                }
                self.whitespace();
                match (self.peek(), object) {
                    (None, _) => return Err(self.eof(EOF_VALUE)),
                    (Some(b'}'), true) | (Some(b']'), false) => {
                        return Err(self.fail(self.at, "trailing comma"));
                    }
                    (Some(b'"'), true) => self.key()?,
                    (Some(_), true) => return Err(self.fail(self.at, "key must be a string")),
                    (Some(_), false) => {}
                }
                self.value()
            }
            (Some(b'}'), true) | (Some(b']'), false) => {
                self.at += 1;
                self.frames.pop();
                Ok(())
            }
            (Some(_), true) => Err(self.fail(self.at, "expected `,` or `}`")),
            (Some(_), false) => Err(self.fail(self.at, "expected `,` or `]`")),
            (None, true) => Err(self.eof(EOF_OBJECT)),
            (None, false) => Err(self.eof(EOF_LIST)),
        }
    }

    /// `true`, `false` or `null`, from its first letter.
    fn word(&mut self, word: &[u8]) -> Result<(), JsonError> {
        for (i, expected) in word.iter().enumerate().skip(1) {
            match self.bytes.get(self.at + i) {
                None => return Err(self.eof(EOF_VALUE)),
                Some(byte) if byte != expected => {
                    return Err(self.fail(self.at + i, "expected ident"));
                }
                Some(_) => {}
            }
        }
        self.at += word.len();
        Ok(())
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        self.at - start
    }

    /// A number: `-`? (`0` | [1-9][0-9]*) (`.` [0-9]+)? ([eE] [+-]? [0-9]+)?
    fn number(&mut self) -> Result<(), JsonError> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            None => return Err(self.eof(EOF_VALUE)),
            Some(b'0') => {
                self.at += 1;
                if matches!(self.peek(), Some(b'0'..=b'9')) {
                    return Err(self.fail(self.at, "invalid number"));
                }
            }
            Some(b'1'..=b'9') => {
                self.digits();
            }
            Some(_) => return Err(self.fail(self.at, "invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return Err(self.number_end());
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return Err(self.number_end());
            }
        }
        Ok(())
    }

    /// A number that ends where a digit is due.
    fn number_end(&self) -> JsonError {
        match self.peek() {
            None => self.eof(EOF_VALUE),
            Some(_) => self.fail(self.at, "invalid number"),
        }
    }

    /// A string, at its opening `"`.
    fn string(&mut self) -> Result<(), JsonError> {
        let mut i = self.at + 1;
        loop {
            match self.bytes.get(i) {
                None => return Err(self.eof(EOF_STRING)),
                Some(b'"') => {
                    self.at = i + 1;
                    return Ok(());
                }
                Some(b'\\') => i = self.escape(i + 1)?,
                Some(0..=0x1f) => {
                    return Err(self.fail(
                        i,
                        "control character (\\u0000-\\u001F) found while parsing a string",
                    ));
                }
                Some(_) => i += 1,
            }
        }
    }

    /// The escape after a `\` at `at - 1`; where the string goes on.
    fn escape(&self, at: usize) -> Result<usize, JsonError> {
        match self.bytes.get(at) {
            None => Err(self.eof(EOF_STRING)),
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(at + 1),
            Some(b'u') => self.unicode_escape(at + 1),
            Some(_) => Err(self.fail(at, "invalid escape")),
        }
    }

    /// The four hex digits at `at`.
    fn hex(&self, at: usize) -> Result<u16, JsonError> {
        let digits = self
            .bytes
            .get(at..at + 4)
            .ok_or_else(|| self.eof(EOF_STRING))?;
        std::str::from_utf8(digits)
            .ok()
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|d| u16::from_str_radix(d, 16).ok())
            .ok_or_else(|| self.fail(at + 3, "invalid escape"))
    }

    /// `\uXXXX` (its digits at `at`), with a surrogate pair's second half.
    fn unicode_escape(&self, at: usize) -> Result<usize, JsonError> {
        const LONE: &str = "lone leading surrogate in hex escape";
        let unit = self.hex(at)?;
        if (0xDC00..=0xDFFF).contains(&unit) {
            return Err(self.fail(at + 3, LONE));
        }
        if !(0xD800..=0xDBFF).contains(&unit) {
            return Ok(at + 4);
        }
        for (offset, expected) in [(4, b'\\'), (5, b'u')] {
            match self.bytes.get(at + offset) {
                None => return Err(self.eof(EOF_STRING)),
                Some(&byte) if byte != expected => {
                    return Err(self.fail(at + offset, "unexpected end of hex escape"));
                }
                Some(_) => {}
            }
        }
        let low = self.hex(at + 6)?;
        if !(0xDC00..=0xDFFF).contains(&low) {
            return Err(self.fail(at + 9, LONE));
        }
        Ok(at + 10)
    }
}

// ---------------------------------------------------------------------------
// Step 2: reading a checked text.

/// A value of a text [`scan`] checked: its span, decoded only when read.
#[derive(Debug, Clone, Copy)]
pub struct Value<'a> {
    text: &'a str,
    start: usize,
    end: usize,
}

/// Where the value starting at `start` of a checked text ends.
fn value_end(bytes: &[u8], start: usize) -> usize {
    match bytes.get(start) {
        Some(b'"') => string_end(bytes, start),
        Some(b'{' | b'[') => {
            let (mut depth, mut at) = (0usize, start);
            while let Some(&byte) = bytes.get(at) {
                match byte {
                    b'"' => {
                        at = string_end(bytes, at);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            return at + 1;
                        }
                    }
                    _ => {}
                }
                at += 1;
            }
            bytes.len()
        }
        _ => {
            let rest = bytes.get(start..).unwrap_or_default();
            start
                + rest
                    .iter()
                    .position(|b| matches!(b, b',' | b']' | b'}' | b' ' | b'\n' | b'\t' | b'\r'))
                    .unwrap_or(rest.len())
        }
    }
}

/// Where the string starting (with its `"`) at `start` of a checked text ends.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut at = start + 1;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'"' => return at + 1,
            b'\\' => at += 2,
            _ => at += 1,
        }
    }
    bytes.len()
}

/// Where the next non-whitespace byte is, from `at`.
fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while matches!(bytes.get(at), Some(b' ' | b'\n' | b'\t' | b'\r')) {
        at += 1;
    }
    at
}

/// The elements of an array, in order.
pub(crate) struct Elements<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Iterator for Elements<'a> {
    type Item = Value<'a>;

    fn next(&mut self) -> Option<Value<'a>> {
        let bytes = self.text.as_bytes();
        let start = skip_whitespace(bytes, self.at);
        if matches!(bytes.get(start), None | Some(b']')) {
            return None;
        }
        let end = value_end(bytes, start);
        let after = skip_whitespace(bytes, end);
        self.at = if bytes.get(after) == Some(&b',') {
            after + 1
        } else {
            after
        };
        Some(Value {
            text: self.text,
            start,
            end,
        })
    }
}

/// The entries of an object, in order: the key (decoded), where it starts, its value.
pub(crate) struct Entries<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Iterator for Entries<'a> {
    type Item = (Cow<'a, str>, usize, Value<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let bytes = self.text.as_bytes();
        let key_start = skip_whitespace(bytes, self.at);
        if bytes.get(key_start) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(bytes, key_start);
        let raw = bytes
            .get(key_start + 1..key_end.saturating_sub(1))
            .unwrap_or_default();
        let colon = skip_whitespace(bytes, key_end);
        let start = skip_whitespace(bytes, colon + 1);
        let value = Value {
            text: self.text,
            start,
            end: value_end(bytes, start),
        };
        let after = skip_whitespace(bytes, value.end);
        self.at = if bytes.get(after) == Some(&b',') {
            after + 1
        } else {
            after
        };
        Some((unescape(raw), key_start, value))
    }
}

impl<'a> Value<'a> {
    /// The value's first byte: `"`, `{`, `[`, `t`, `f`, `n`, `-` or a digit.
    pub(crate) fn first(&self) -> u8 {
        self.text
            .as_bytes()
            .get(self.start)
            .copied()
            .unwrap_or(b' ')
    }

    /// The value's text as written.
    fn raw(&self) -> &'a str {
        self.text.get(self.start..self.end).unwrap_or_default()
    }

    /// Whether the value is `null`.
    pub(crate) fn is_null(&self) -> bool {
        self.first() == b'n'
    }

    /// An error about this value, at `at`.
    pub(crate) fn error(&self, at: &Path<'_>, message: impl Into<String>) -> JsonError {
        located(self.text, self.start, at.render(), message.into(), false)
    }

    /// "invalid type: …, expected `expected`".
    pub(crate) fn wrong_type(&self, at: &Path<'_>, expected: &str) -> JsonError {
        self.error(
            at,
            format!("invalid type: {}, expected {expected}", self.describe()),
        )
    }

    /// What the value is, for a message.
    fn describe(&self) -> String {
        match self.first() {
            b'n' => "null".to_owned(),
            b't' | b'f' => format!("boolean `{}`", self.raw()),
            b'"' => format!("string {:?}", shorten(&self.decoded())),
            b'[' => "array".to_owned(),
            b'{' => "object".to_owned(),
            _ => format!("number `{}`", shorten(self.raw())),
        }
    }

    /// The content of a string value, decoded.
    fn decoded(&self) -> Cow<'a, str> {
        let raw = self.raw();
        unescape(
            raw.get(1..raw.len().saturating_sub(1))
                .unwrap_or_default()
                .as_bytes(),
        )
    }

    /// The value as a string.
    pub(crate) fn string(&self, at: &Path<'_>, expected: &str) -> Result<Cow<'a, str>, JsonError> {
        if self.first() == b'"' {
            Ok(self.decoded())
        } else {
            Err(self.wrong_type(at, expected))
        }
    }

    /// The value as an array.
    pub(crate) fn elements(
        &self,
        at: &Path<'_>,
        expected: &str,
    ) -> Result<Elements<'a>, JsonError> {
        if self.first() == b'[' {
            Ok(Elements {
                text: self.text,
                at: self.start + 1,
            })
        } else {
            Err(self.wrong_type(at, expected))
        }
    }

    /// The value as an object: `what` names it in messages ("a rule").
    pub(crate) fn entries(&self, at: &Path<'_>, what: &str) -> Result<Entries<'a>, JsonError> {
        if self.first() == b'{' {
            Ok(Entries {
                text: self.text,
                at: self.start + 1,
            })
        } else {
            Err(self.wrong_type(at, &format!("{what} (an object)")))
        }
    }

    /// A whole number from 0 to `max`.
    fn unsigned(&self, at: &Path<'_>, max: u64) -> Result<u64, JsonError> {
        let expected = format!("an integer from 0 to {max}");
        let raw = self.raw();
        let (negative, digits) = match raw.strip_prefix('-') {
            Some(digits) => (true, digits),
            None => (false, raw),
        };
        if !matches!(self.first(), b'-' | b'0'..=b'9') {
            return Err(self.wrong_type(at, &expected));
        }
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.wrong_type(at, &expected));
        }
        let value = digits.bytes().try_fold(0u64, |n, digit| {
            n.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
        });
        match value {
            Some(n) if !negative && n <= max => Ok(n),
            _ => Err(self.error(
                at,
                format!("invalid value: `{}`, expected {expected}", shorten(raw)),
            )),
        }
    }

    /// One of `all`, written as its name.
    pub(crate) fn code<T: Copy>(
        &self,
        at: &Path<'_>,
        all: &[T],
        name: fn(T) -> &'static str,
    ) -> Result<T, JsonError> {
        let names: Vec<&str> = all.iter().map(|code| name(*code)).collect();
        let given = self.string(at, &one_of(&names))?;
        all.iter()
            .copied()
            .find(|code| name(*code) == given)
            .ok_or_else(|| {
                self.error(
                    at,
                    format!("unknown value `{given}`, expected {}", one_of(&names)),
                )
            })
    }
}

/// Long values are cut in messages (a 400,000-digit number is not repeated).
fn shorten(text: &str) -> Cow<'_, str> {
    const KEEP: usize = 64;
    match text.char_indices().nth(KEEP) {
        Some((cut, _)) => Cow::Owned(format!("{}…", text.get(..cut).unwrap_or_default())),
        None => Cow::Borrowed(text),
    }
}

/// "`a`", "`a` or `b`", "one of `a`, `b`, `c`", as serde words a list of names.
pub(crate) fn one_of(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
    match quoted.as_slice() {
        [] => "nothing".to_owned(),
        [one] => one.clone(),
        [a, b] => format!("{a} or {b}"),
        _ => format!("one of {}", quoted.join(", ")),
    }
}

/// The error for a key `fields` does not name.
pub(crate) fn unknown_field(
    text_of: &Value<'_>,
    key_start: usize,
    at: &Path<'_>,
    key: &str,
    what: &str,
    fields: &[&str],
) -> JsonError {
    located(
        text_of.text,
        key_start,
        at.key(key).render(),
        format!(
            "unknown field `{key}` in {what}, expected {}",
            one_of(fields)
        ),
        false,
    )
}

/// The error for a key an object has twice (`noun`: "field" or "key"), at the second.
pub(crate) fn duplicate(
    text_of: &Value<'_>,
    key_start: usize,
    at: &Path<'_>,
    key: &str,
    noun: &str,
) -> JsonError {
    located(
        text_of.text,
        key_start,
        at.key(key).render(),
        format!("duplicate {noun} `{key}`"),
        false,
    )
}

/// Reads the object `$value` (found at `$at`, named `$what` in messages) field by
/// field, in the order of the text, each with its own type, refusing unknown and
/// duplicate fields; then binds each field's name to its value: the value read,
/// or the default after `=` when the field is absent ("missing field" without one).
///
/// ```text
/// fields!(value, at, "a rule", {
///     name: String,
///     tags: Selector,
///     repositories: Option<Selector> = None,
/// });
/// ```
macro_rules! fields {
    ($value:expr, $at:expr, $what:expr, { $($field:ident: $ty:ty $(= $default:expr)?),* $(,)? }) => {
        let ($($field,)*) = {
            $(let mut $field: Option<$ty> = None;)*
            let (value, at, what): (&$crate::json::Value<'_>, &$crate::json::Path<'_>, &str) =
                (&$value, $at, $what);
            const NAMES: &[&str] = &[$(stringify!($field)),*];
            for (key, key_start, entry) in value.entries(at, what)? {
                match &*key {
                    $(stringify!($field) => {
                        if $field.is_some() {
                            return Err($crate::json::duplicate(value, key_start, at, &key, "field"));
                        }
                        let path = at.key(stringify!($field));
                        $field = Some(<$ty as $crate::json::Read>::read(entry, &path)?);
                    })*
                    _ => {
                        return Err($crate::json::unknown_field(value, key_start, at, &key, what, NAMES));
                    }
                }
            }
            $(let $field = $crate::json::fields!(@finish $field, value, at $(, $default)?);)*
            ($($field,)*)
        };
    };
    (@finish $field:ident, $value:expr, $at:expr, $default:expr) => {
        match $field {
            Some(read) => read,
            None => $default,
        }
    };
    (@finish $field:ident, $value:expr, $at:expr) => {
        match $field {
            Some(read) => read,
            None => {
                return Err($value.error($at, concat!("missing field `", stringify!($field), "`")));
            }
        }
    };
}

pub(crate) use fields;

impl Read for String {
    fn read(value: Value<'_>, at: &Path<'_>) -> Result<Self, JsonError> {
        value.string(at, "a string").map(Cow::into_owned)
    }
}

impl Read for bool {
    fn read(value: Value<'_>, at: &Path<'_>) -> Result<Self, JsonError> {
        match value.raw() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(value.wrong_type(at, "a boolean")),
        }
    }
}

impl Read for u32 {
    fn read(value: Value<'_>, at: &Path<'_>) -> Result<Self, JsonError> {
        let n = value.unsigned(at, u64::from(u32::MAX))?;
        u32::try_from(n).map_err(|_| value.wrong_type(at, "a 32-bit integer"))
    }
}

/// Up to `u32::MAX` on every platform, so a native host and a WebAssembly one
/// refuse the same numbers in the same words.
impl Read for usize {
    fn read(value: Value<'_>, at: &Path<'_>) -> Result<Self, JsonError> {
        let n = value.unsigned(at, u64::from(u32::MAX))?;
        usize::try_from(n).map_err(|_| value.wrong_type(at, "an integer"))
    }
}

/// `null` is `None`.
impl<T: FromJson> Read for Option<T> {
    fn read(value: Value<'_>, at: &Path<'_>) -> Result<Self, JsonError> {
        if value.is_null() {
            Ok(None)
        } else {
            T::read(value, at).map(Some)
        }
    }
}

impl<T: FromJson> Read for Vec<T> {
    fn read(value: Value<'_>, at: &Path<'_>) -> Result<Self, JsonError> {
        value
            .elements(at, "an array")?
            .enumerate()
            .map(|(index, element)| T::read(element, &at.index(index)))
            .collect()
    }
}

/// An object with keys of the admin's choosing; a key given twice is refused.
impl<T: FromJson> Read for BTreeMap<String, T> {
    fn read(value: Value<'_>, at: &Path<'_>) -> Result<Self, JsonError> {
        let mut map = BTreeMap::new();
        for (key, key_start, entry) in value.entries(at, "a map")? {
            if map.contains_key(&*key) {
                return Err(duplicate(&value, key_start, at, &key, "key"));
            }
            let read = T::read(entry, &at.key(&key))?;
            map.insert(key.into_owned(), read);
        }
        Ok(map)
    }
}

/// Reads the [`codes!`](crate::unit_enum) enums by their names.
macro_rules! codes_from_json {
    ($($ty:ty),* $(,)?) => {
        $(impl Read for $ty {
            fn read(value: Value<'_>, at: &Path<'_>) -> Result<Self, JsonError> {
                value.code(at, <$ty>::ALL, <$ty>::as_str)
            }
        })*
    };
}

codes_from_json!(
    crate::document::Mode,
    crate::document::Protect,
    crate::document::IdenticalRepush,
    crate::document::ReferrerTags,
    crate::document::Publish,
    crate::role::Role,
    crate::request::ActorKind,
);

/// Decodes the content of a JSON string that [`scan`] checked (so its escapes are
/// valid, surrogates paired): borrowed when it has no escape.
fn unescape(raw: &[u8]) -> Cow<'_, str> {
    if !raw.contains(&b'\\') {
        return String::from_utf8_lossy(raw);
    }
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
    Cow::Owned(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
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
        let text =
            "{\"version\": 1,\n \"limits\": {\"max_rules\": 3, \"max_pattern_length\": \"9\"}}";
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
        let text =
            r#"{"version": 1, "permissions": {"repositories": {"web": {}, "w\u0065b": {}}}}"#;
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
        let err =
            policy_error(r#"{"version": 1, "permissions": {"images": [{"repository": null}]}}"#);
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
}
