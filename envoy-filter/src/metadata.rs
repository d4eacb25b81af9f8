//! Reading a verified JWT payload out of Envoy's dynamic metadata.
//!
//! `get_property(["metadata"])` gives the stream's dynamic metadata as the
//! protobuf encoding of `envoy.config.core.v3.Metadata`; `jwt_authn` stores
//! the payload there (`filter_metadata["envoy.filters.http.jwt_authn"]`, as a
//! `google.protobuf.Struct` under the provider's `payload_in_metadata` key).
//! This module decodes exactly those messages into JSON, with explicit bounds.

use serde_json::{Map, Number, Value};

/// The namespace `jwt_authn` writes its metadata under.
pub const JWT_AUTHN: &str = "envoy.filters.http.jwt_authn";
/// The deepest nesting of structs and lists decoded.
pub const MAX_DEPTH: usize = 16;

/// Why the metadata could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the stream's metadata is not readable: {0}")]
pub struct MetadataError(&'static str);

/// The payload `jwt_authn` verified under `key`, if there is one.
pub fn jwt_payload(
    metadata: &[u8],
    key: &str,
) -> Result<Option<Map<String, Value>>, MetadataError> {
    // Metadata { map<string, Struct> filter_metadata = 1; … }
    for (field, value) in Fields::new(metadata) {
        let (field, value) = (field?, value);
        if field != 1 {
            continue;
        }
        let Wire::Bytes(entry) = value else {
            return Err(MetadataError("filter_metadata is not a message"));
        };
        let (name, message) = map_entry(entry)?;
        if name != JWT_AUTHN {
            continue;
        }
        let fields = decode_struct(message, 0)?;
        return match fields.get(key) {
            None => Ok(None),
            Some(Value::Object(payload)) => Ok(Some(payload.clone())),
            Some(_) => Err(MetadataError("the payload is not an object")),
        };
    }
    Ok(None)
}

/// One field's value, by wire type.
enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32,
}

/// The fields of one message, in order; an error ends the iteration.
struct Fields<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Fields<'a> {
    fn new(bytes: &'a [u8]) -> Fields<'a> {
        Fields {
            rest: bytes,
            failed: false,
        }
    }

    fn next_field(&mut self) -> Result<(u64, Wire<'a>), MetadataError> {
        let key = varint(&mut self.rest)?;
        let value = match key & 7 {
            0 => Wire::Varint(varint(&mut self.rest)?),
            1 => Wire::Fixed64(u64::from_le_bytes(take_array(&mut self.rest)?)),
            2 => {
                let len = usize::try_from(varint(&mut self.rest)?)
                    .map_err(|_| MetadataError("length out of range"))?;
                if len > self.rest.len() {
                    return Err(MetadataError("truncated field"));
                }
                let (bytes, rest) = self.rest.split_at(len);
                self.rest = rest;
                Wire::Bytes(bytes)
            }
            5 => {
                take_array::<4>(&mut self.rest)?;
                Wire::Fixed32
            }
            _ => return Err(MetadataError("unknown wire type")),
        };
        Ok((key >> 3, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = (Result<u64, MetadataError>, Wire<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() || self.failed {
            return None;
        }
        match self.next_field() {
            Ok((field, wire)) => Some((Ok(field), wire)),
            Err(err) => {
                self.failed = true;
                Some((Err(err), Wire::Fixed32))
            }
        }
    }
}

fn take_array<const N: usize>(rest: &mut &[u8]) -> Result<[u8; N], MetadataError> {
    let Some((head, tail)) = rest.split_first_chunk::<N>() else {
        return Err(MetadataError("truncated field"));
    };
    *rest = tail;
    Ok(*head)
}

fn varint(rest: &mut &[u8]) -> Result<u64, MetadataError> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let Some((&byte, tail)) = rest.split_first() else {
            return Err(MetadataError("truncated varint"));
        };
        *rest = tail;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(MetadataError("varint too long"))
}

/// A map entry: `key = 1` (string), `value = 2` (message).
fn map_entry(entry: &[u8]) -> Result<(&str, &[u8]), MetadataError> {
    let (mut key, mut value): (&[u8], &[u8]) = (&[], &[]);
    for (field, wire) in Fields::new(entry) {
        match (field?, wire) {
            (1, Wire::Bytes(bytes)) => key = bytes,
            (2, Wire::Bytes(bytes)) => value = bytes,
            _ => return Err(MetadataError("unexpected map entry field")),
        }
    }
    let key = std::str::from_utf8(key).map_err(|_| MetadataError("a key is not UTF-8"))?;
    Ok((key, value))
}

/// `google.protobuf.Struct { map<string, Value> fields = 1; }`.
fn decode_struct(bytes: &[u8], depth: usize) -> Result<Map<String, Value>, MetadataError> {
    if depth > MAX_DEPTH {
        return Err(MetadataError("nested too deeply"));
    }
    let mut fields = Map::new();
    for (field, wire) in Fields::new(bytes) {
        match (field?, wire) {
            (1, Wire::Bytes(entry)) => {
                let (key, value) = map_entry(entry)?;
                fields.insert(key.to_owned(), decode_value(value, depth + 1)?);
            }
            _ => return Err(MetadataError("unexpected struct field")),
        }
    }
    Ok(fields)
}

/// `google.protobuf.Value`: null 1, number 2, string 3, bool 4, struct 5, list 6.
fn decode_value(bytes: &[u8], depth: usize) -> Result<Value, MetadataError> {
    let mut value = Value::Null;
    for (field, wire) in Fields::new(bytes) {
        value = match (field?, wire) {
            (1, Wire::Varint(_)) => Value::Null,
            (2, Wire::Fixed64(bits)) => Number::from_f64(f64::from_bits(bits))
                .map(Value::Number)
                .unwrap_or(Value::Null),
            (3, Wire::Bytes(text)) => Value::String(
                std::str::from_utf8(text)
                    .map_err(|_| MetadataError("a string is not UTF-8"))?
                    .to_owned(),
            ),
            (4, Wire::Varint(flag)) => Value::Bool(flag != 0),
            (5, Wire::Bytes(message)) => Value::Object(decode_struct(message, depth + 1)?),
            (6, Wire::Bytes(list)) => {
                if depth > MAX_DEPTH {
                    return Err(MetadataError("nested too deeply"));
                }
                let mut items = Vec::new();
                for (field, wire) in Fields::new(list) {
                    match (field?, wire) {
                        (1, Wire::Bytes(item)) => items.push(decode_value(item, depth + 1)?),
                        _ => return Err(MetadataError("unexpected list field")),
                    }
                }
                Value::Array(items)
            }
            _ => return Err(MetadataError("unexpected value field")),
        };
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(number: u64, wire: u64, out: &mut Vec<u8>) {
        put_varint((number << 3) | wire, out);
    }

    fn put_varint(mut value: u64, out: &mut Vec<u8>) {
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    fn bytes(number: u64, payload: &[u8], out: &mut Vec<u8>) {
        field(number, 2, out);
        put_varint(payload.len() as u64, out);
        out.extend_from_slice(payload);
    }

    fn encode_value(value: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        match value {
            Value::Null => {
                field(1, 0, &mut out);
                out.push(0);
            }
            Value::Number(n) => {
                field(2, 1, &mut out);
                out.extend_from_slice(&n.as_f64().unwrap().to_bits().to_le_bytes());
            }
            Value::String(s) => bytes(3, s.as_bytes(), &mut out),
            Value::Bool(b) => {
                field(4, 0, &mut out);
                out.push(u8::from(*b));
            }
            Value::Object(map) => bytes(5, &encode_struct(map), &mut out),
            Value::Array(items) => {
                let mut list = Vec::new();
                for item in items {
                    bytes(1, &encode_value(item), &mut list);
                }
                bytes(6, &list, &mut out);
            }
        }
        out
    }

    fn entry(key: &str, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        bytes(1, key.as_bytes(), &mut out);
        bytes(2, value, &mut out);
        out
    }

    fn encode_struct(map: &Map<String, Value>) -> Vec<u8> {
        let mut out = Vec::new();
        for (key, value) in map {
            bytes(1, &entry(key, &encode_value(value)), &mut out);
        }
        out
    }

    fn metadata(namespace: &str, fields: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        let other = encode_struct(json!({"x": 1}).as_object().unwrap());
        bytes(1, &entry("other", &other), &mut out);
        let body = encode_struct(fields.as_object().unwrap());
        bytes(1, &entry(namespace, &body), &mut out);
        out
    }

    #[test]
    fn finds_the_payload() {
        let payload = json!({"sub": "alice", "groups": ["a", "b"], "admin": true,
                             "exp": 1.5e9, "nested": {"x": null}});
        let bytes = metadata(JWT_AUTHN, &json!({"jwt_payload": payload}));
        let found = jwt_payload(&bytes, "jwt_payload").unwrap().unwrap();
        assert_eq!(Value::Object(found), payload);
        assert_eq!(jwt_payload(&bytes, "other").unwrap(), None);
        let elsewhere = metadata("envoy.other", &json!({"jwt_payload": payload}));
        assert_eq!(jwt_payload(&elsewhere, "jwt_payload").unwrap(), None);
        assert_eq!(jwt_payload(&[], "jwt_payload").unwrap(), None);
    }

    #[test]
    fn garbage_and_depth_are_errors() {
        let bytes = metadata(JWT_AUTHN, &json!({"jwt_payload": {"sub": "a"}}));
        for cut in 1..bytes.len() {
            // Never a panic; a truncated message is either an error or no payload.
            let _ = jwt_payload(&bytes[..cut], "jwt_payload");
        }
        let mut deep = json!("leaf");
        for _ in 0..(MAX_DEPTH + 2) {
            deep = json!({ "d": deep });
        }
        let bytes = metadata(JWT_AUTHN, &json!({"jwt_payload": deep}));
        assert!(jwt_payload(&bytes, "jwt_payload").is_err());
        let not_object = metadata(JWT_AUTHN, &json!({"jwt_payload": "x"}));
        assert!(jwt_payload(&not_object, "jwt_payload").is_err());
    }
}
