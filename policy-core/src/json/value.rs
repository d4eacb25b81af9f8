//! Step 2: reading a checked text, value by value, as the schema asks.

use super::path::{Path, located};
use super::{FromJson, JsonError, Read};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// A value of a text `scan` checked: its span, decoded only when read.
#[derive(Debug, Clone, Copy)]
pub struct Value<'a> {
    text: &'a str,
    start: usize,
    end: usize,
}

impl<'a> Value<'a> {
    /// The value at `start..end` of `text`, which `scan` checked.
    pub(super) fn checked(text: &'a str, start: usize, end: usize) -> Value<'a> {
        Value { text, start, end }
    }
}

/// Where the value starting at `start` of a checked text ends.
pub(super) fn value_end(bytes: &[u8], start: usize) -> usize {
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
pub(super) fn string_end(bytes: &[u8], start: usize) -> usize {
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
pub(super) fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
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
pub(super) fn shorten(text: &str) -> Cow<'_, str> {
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
pub(super) fn unescape(raw: &[u8]) -> Cow<'_, str> {
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
