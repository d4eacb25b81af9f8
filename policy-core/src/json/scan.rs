//! Step 1: checking that the text is JSON, with the path of every syntax error.

use super::JsonError;
use super::path::{MAX_DEPTH, located, push_index, push_key};
use super::value::Value;
use super::value::unescape;

/// An open object or array while scanning.
pub(super) struct Frame {
    object: bool,
    /// Objects: the span of the current entry's key, once read.
    key: Option<(usize, usize)>,
    /// Arrays: the current element, once started.
    index: Option<usize>,
}

/// Checks the text left to right; the state is where it stands.
pub(super) struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    frames: Vec<Frame>,
}

pub(super) const EOF_VALUE: &str = "EOF while parsing a value";
pub(super) const EOF_STRING: &str = "EOF while parsing a string";
pub(super) const EOF_OBJECT: &str = "EOF while parsing an object";
pub(super) const EOF_LIST: &str = "EOF while parsing a list";

/// Checks that `text` is one JSON value (whitespace around it allowed) and
/// returns it; the first syntax error otherwise.
pub(super) fn scan(text: &str) -> Result<Value<'_>, JsonError> {
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
    Ok(Value::checked(text, start, end))
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
