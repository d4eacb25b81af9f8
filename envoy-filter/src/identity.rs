//! How [`Identity`] is read from the plugin configuration: the same as serde's
//! derive for an internally tagged enum (`#[serde(tag = "mode", rename_all =
//! "kebab-case", deny_unknown_fields)]`), written out.
//!
//! The derive buffers every field but the tag in serde's generic `Content` and
//! reads the variant back from it; that machinery made the filter 4.5 KB larger
//! than this module does. Here the other fields are held in [`Held`], which has
//! exactly the few shapes JSON has, and are read back in the order they came. Values,
//! errors, messages and where serde_json locates them are the derive's: the tests
//! hold the two side by side on every shape below.

use crate::config::Identity;
use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::marker::PhantomData;
use taglock_gateway::ClaimNames;

const TAG: &str = "mode";
const VARIANTS: &[&str] = &["registry", "jwt"];
const JWT_FIELDS: &[&str] = &["payload_key", "claims"];

impl<'de> Deserialize<'de> for Identity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Identity, D::Error> {
        let (mode, rest) = deserializer.deserialize_any(Tagged)?;
        match (mode, rest) {
            // A unit variant ignores the other fields of a map, and refuses other
            // elements of a sequence.
            (Mode::Registry, Rest::Map(_)) => Ok(Identity::Registry),
            (Mode::Registry, Rest::Seq(items)) => {
                Elements::new(items).end()?;
                Ok(Identity::Registry)
            }
            (Mode::Jwt, Rest::Map(entries)) => jwt_from_map(entries),
            (Mode::Jwt, Rest::Seq(items)) => jwt_from_seq(items),
        }
    }
}

fn jwt_from_map<E: de::Error>(entries: Vec<(String, Held)>) -> Result<Identity, E> {
    let mut entries = Entries::new(entries);
    let mut payload_key = None;
    let mut claims = None;
    while let Some((key, value)) = entries.next_entry_held() {
        match key.as_str() {
            "payload_key" => {
                if payload_key.is_some() {
                    return Err(de::Error::duplicate_field("payload_key"));
                }
                payload_key = Some(String::deserialize(HeldDeserializer::new(value))?);
            }
            "claims" => {
                if claims.is_some() {
                    return Err(de::Error::duplicate_field("claims"));
                }
                claims = Some(ClaimNames::deserialize(HeldDeserializer::new(value))?);
            }
            other => return Err(de::Error::unknown_field(other, JWT_FIELDS)),
        }
    }
    entries.end()?;
    let payload_key = payload_key.ok_or_else(|| de::Error::missing_field("payload_key"))?;
    Ok(Identity::Jwt {
        payload_key,
        claims: claims.unwrap_or_default(),
    })
}

fn jwt_from_seq<E: de::Error>(items: Vec<Held>) -> Result<Identity, E> {
    let mut elements = Elements::new(items);
    let Some(payload_key) = elements.next_element::<String>()? else {
        return Err(de::Error::invalid_length(
            0,
            &"struct variant Identity::Jwt with 2 elements",
        ));
    };
    let claims = elements.next_element::<ClaimNames>()?.unwrap_or_default();
    elements.end()?;
    Ok(Identity::Jwt {
        payload_key,
        claims,
    })
}

/// The variant the tag names.
enum Mode {
    Registry,
    Jwt,
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Mode, D::Error> {
        struct ModeVisitor;
        impl Visitor<'_> for ModeVisitor {
            type Value = Mode;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("variant identifier")
            }
            fn visit_u64<E: de::Error>(self, index: u64) -> Result<Mode, E> {
                match index {
                    0 => Ok(Mode::Registry),
                    1 => Ok(Mode::Jwt),
                    _ => Err(de::Error::invalid_value(
                        de::Unexpected::Unsigned(index),
                        &"variant index 0 <= i < 2",
                    )),
                }
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Mode, E> {
                match name {
                    "registry" => Ok(Mode::Registry),
                    "jwt" => Ok(Mode::Jwt),
                    _ => Err(de::Error::unknown_variant(name, VARIANTS)),
                }
            }
        }
        deserializer.deserialize_identifier(ModeVisitor)
    }
}

/// What came besides the tag: the other entries of a map, or the elements
/// after the tag in a sequence.
enum Rest {
    Map(Vec<(String, Held)>),
    Seq(Vec<Held>),
}

/// Finds the tag and holds the rest, as serde's `TaggedContentVisitor` does.
struct Tagged;

impl<'de> Visitor<'de> for Tagged {
    type Value = (Mode, Rest);

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("internally tagged enum Identity")
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        let Some(mode) = seq.next_element::<Mode>()? else {
            return Err(de::Error::missing_field(TAG));
        };
        let mut rest = Vec::new();
        while let Some(item) = seq.next_element::<Held>()? {
            rest.push(item);
        }
        Ok((mode, Rest::Seq(rest)))
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let mut mode = None;
        let mut rest = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == TAG {
                if mode.is_some() {
                    return Err(de::Error::duplicate_field(TAG));
                }
                mode = Some(map.next_value::<Mode>()?);
            } else {
                let value = map.next_value::<Held>()?;
                rest.push((key, value));
            }
        }
        match mode {
            Some(mode) => Ok((mode, Rest::Map(rest))),
            None => Err(de::Error::missing_field(TAG)),
        }
    }
}

/// A JSON value held until the variant is known, map entries in their order
/// (duplicates kept: the variant's fields refuse them).
enum Held {
    Null,
    Bool(bool),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Text(String),
    Seq(Vec<Held>),
    Map(Vec<(String, Held)>),
}

impl<'de> Deserialize<'de> for Held {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Held, D::Error> {
        struct HeldVisitor;
        impl<'de> Visitor<'de> for HeldVisitor {
            type Value = Held;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("any value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Held, E> {
                Ok(Held::Null)
            }
            fn visit_bool<E: de::Error>(self, value: bool) -> Result<Held, E> {
                Ok(Held::Bool(value))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Held, E> {
                Ok(Held::Unsigned(value))
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Held, E> {
                Ok(Held::Signed(value))
            }
            fn visit_f64<E: de::Error>(self, value: f64) -> Result<Held, E> {
                Ok(Held::Float(value))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Held, E> {
                Ok(Held::Text(value.to_owned()))
            }
            fn visit_string<E: de::Error>(self, value: String) -> Result<Held, E> {
                Ok(Held::Text(value))
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Held, S::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Held::Seq(items))
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Held, M::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value = map.next_value()?;
                    entries.push((key, value));
                }
                Ok(Held::Map(entries))
            }
        }
        deserializer.deserialize_any(HeldVisitor)
    }
}

/// Reads a held value as serde's `ContentDeserializer` reads content: each
/// shape is handed to the visitor as it is (so a wrong one gets the visitor's
/// own "invalid type" error), null is an absent `Option`, and a sequence or
/// map must be read to its end.
struct HeldDeserializer<E> {
    held: Held,
    error: PhantomData<E>,
}

impl<E> HeldDeserializer<E> {
    fn new(held: Held) -> Self {
        HeldDeserializer {
            held,
            error: PhantomData,
        }
    }
}

impl<'de, E: de::Error> Deserializer<'de> for HeldDeserializer<E> {
    type Error = E;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        match self.held {
            Held::Null => visitor.visit_unit(),
            Held::Bool(value) => visitor.visit_bool(value),
            Held::Unsigned(value) => visitor.visit_u64(value),
            Held::Signed(value) => visitor.visit_i64(value),
            Held::Float(value) => visitor.visit_f64(value),
            Held::Text(value) => visitor.visit_string(value),
            Held::Seq(items) => {
                let mut elements = Elements::new(items);
                let value = visitor.visit_seq(&mut elements)?;
                elements.end()?;
                Ok(value)
            }
            Held::Map(entries) => {
                let mut entries = Entries::new(entries);
                let value = visitor.visit_map(&mut entries)?;
                entries.end()?;
                Ok(value)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        match self.held {
            Held::Null => visitor.visit_unit(),
            held => visitor.visit_some(HeldDeserializer::new(held)),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// The elements of a held sequence; one that is not read to its end is an
/// error ("invalid length 3, expected 2 elements in sequence").
struct Elements<E> {
    items: std::vec::IntoIter<Held>,
    count: usize,
    error: PhantomData<E>,
}

impl<E: de::Error> Elements<E> {
    fn new(items: Vec<Held>) -> Self {
        Elements {
            items: items.into_iter(),
            count: 0,
            error: PhantomData,
        }
    }

    fn end(self) -> Result<(), E> {
        let remaining = self.items.len();
        if remaining == 0 {
            return Ok(());
        }
        Err(de::Error::invalid_length(
            self.count + remaining,
            &ExpectedIn("sequence", self.count),
        ))
    }
}

impl<'de, E: de::Error> SeqAccess<'de> for Elements<E> {
    type Error = E;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, E> {
        match self.items.next() {
            Some(item) => {
                self.count += 1;
                seed.deserialize(HeldDeserializer::new(item)).map(Some)
            }
            None => Ok(None),
        }
    }
}

/// The entries of a held map, in their order; like [`Elements`], one not read
/// to its end is an error.
struct Entries<E> {
    entries: std::vec::IntoIter<(String, Held)>,
    value: Option<Held>,
    count: usize,
    error: PhantomData<E>,
}

impl<E: de::Error> Entries<E> {
    fn new(entries: Vec<(String, Held)>) -> Self {
        Entries {
            entries: entries.into_iter(),
            value: None,
            count: 0,
            error: PhantomData,
        }
    }

    /// The next entry as it is held.
    fn next_entry_held(&mut self) -> Option<(String, Held)> {
        let entry = self.entries.next()?;
        self.count += 1;
        Some(entry)
    }

    fn end(self) -> Result<(), E> {
        let remaining = self.entries.len();
        if remaining == 0 {
            return Ok(());
        }
        Err(de::Error::invalid_length(
            self.count + remaining,
            &ExpectedIn("map", self.count),
        ))
    }
}

impl<'de, E: de::Error> MapAccess<'de> for Entries<E> {
    type Error = E;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, E> {
        match self.next_entry_held() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(HeldDeserializer::new(Held::Text(key)))
                    .map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, E> {
        match self.value.take() {
            Some(value) => seed.deserialize(HeldDeserializer::new(value)),
            None => Err(de::Error::custom("value is missing")),
        }
    }
}

/// "1 element in sequence", "2 elements in map".
struct ExpectedIn(&'static str, usize);

impl de::Expected for ExpectedIn {
    fn fmt(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        if self.1 == 1 {
            write!(formatter, "1 element in {}", self.0)
        } else {
            write!(formatter, "{} elements in {}", self.1, self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    /// The derive this module replaces, for comparison.
    mod derived {
        use serde::Deserialize;
        use taglock_gateway::ClaimNames;

        #[derive(Debug, Deserialize)]
        #[allow(dead_code)] // read through `Debug`
        #[serde(tag = "mode", rename_all = "kebab-case", deny_unknown_fields)]
        pub enum Identity {
            Registry,
            Jwt {
                payload_key: String,
                #[serde(default)]
                claims: ClaimNames,
            },
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Holder<T> {
        #[serde(rename = "identity")]
        _identity: T,
        #[serde(default, rename = "after")]
        _after: Option<u8>,
    }

    fn outcome<T: std::fmt::Debug + for<'de> Deserialize<'de>>(text: &str) -> String {
        let wrapped = format!("{{\"identity\": {text}, \"after\": 1}}");
        match serde_json::from_slice::<Holder<T>>(wrapped.as_bytes()) {
            Ok(holder) => format!("ok {:?}", holder._identity),
            Err(err) => format!("err {err} ({:?})", err.classify()),
        }
    }

    /// Every shape the tests hold the two readers to.
    fn shapes() -> Vec<String> {
        let modes = [
            None,
            Some(r#""registry""#),
            Some(r#""jwt""#),
            Some(r#""header""#),
            Some("1"),
            Some("null"),
            Some(r#"{"jwt":null}"#),
        ];
        let payload_keys = [None, Some(r#""p""#), Some("5"), Some("null"), Some("[]")];
        let claims = [
            None,
            Some("{}"),
            Some(r#"{"id":"email","kind":null,"groups":"g"}"#),
            Some(r#"{"id":5}"#),
            Some(r#"{"zzz":1,"id":5}"#),
            Some(r#"{"id":"a","id":"b"}"#),
            Some(r#"{"workspace_admin":true}"#),
            Some(r#"{"kind":-3}"#),
            Some(r#"{"groups":1.5}"#),
            Some("[]"),
            Some(r#"["a"]"#),
            Some(r#"["a",null,"g","r","e","w"]"#),
            Some(r#"["a",null,"g","r","e","w","x"]"#),
            Some(r#""text""#),
            Some("null"),
            Some("1.5e300"),
            Some("false"),
        ];
        let extras = [None, Some(r#""other":{"a":[1,-2,3.5,"x",null,true]}"#)];
        let mut shapes = Vec::new();
        for mode in modes {
            for payload_key in payload_keys {
                for claim in claims {
                    for extra in extras {
                        let mut fields = Vec::new();
                        if let Some(extra) = extra {
                            fields.push(extra.to_owned());
                        }
                        if let Some(payload_key) = payload_key {
                            fields.push(format!(r#""payload_key":{payload_key}"#));
                        }
                        if let Some(claim) = claim {
                            fields.push(format!(r#""claims":{claim}"#));
                        }
                        let mode = mode.map(|mode| format!(r#""mode":{mode}"#));
                        // The tag first, last, and twice.
                        for at in [0, fields.len()] {
                            let mut with = fields.clone();
                            if let Some(mode) = &mode {
                                with.insert(at, mode.clone());
                            }
                            shapes.push(format!("{{{}}}", with.join(",")));
                        }
                        if let Some(mode) = &mode {
                            let mut twice = fields.clone();
                            twice.insert(0, mode.clone());
                            twice.push(mode.clone());
                            shapes.push(format!("{{{}}}", twice.join(",")));
                        }
                    }
                }
            }
        }
        // Duplicate variant fields.
        shapes.push(r#"{"mode":"jwt","payload_key":"p","payload_key":"q"}"#.to_owned());
        shapes.push(r#"{"mode":"jwt","payload_key":"p","claims":{},"claims":{}}"#.to_owned());
        shapes.push(r#"{"payload_key":"p","payload_key":"q","mode":"registry"}"#.to_owned());
        // Sequences: the tag, then the variant's fields in order.
        for items in [
            "",
            r#""jwt""#,
            r#""jwt","p""#,
            r#""jwt",5"#,
            r#""jwt","p",{"id":"x"}"#,
            r#""jwt","p",{"id":"x"},3"#,
            r#""jwt","p",{"id":"x"},3,4"#,
            r#""jwt","p",["i"]"#,
            r#""jwt","p",null"#,
            r#""registry""#,
            r#""registry",1"#,
            r#""registry",1,{}"#,
            r#""header""#,
            "1",
            "null",
        ] {
            shapes.push(format!("[{items}]"));
        }
        // Neither a map nor a sequence; and broken JSON inside the value.
        for other in [
            r#""jwt""#,
            "null",
            "5",
            "-5",
            "2.5",
            "true",
            r#"{"mode":"jwt","payload_key":"p","claims":{"id":"a"},}"#,
            r#"{"mode":"jwt","payload_key":"\ud800"}"#,
            r#"{"mode":"jwt","other":[1,2}"#,
            "{\"mode\":\"jwt\",\n \"payload_key\":\"p\",\n \"zzz\":1}",
        ] {
            shapes.push(other.to_owned());
        }
        shapes
    }

    #[test]
    fn reads_what_the_derive_reads() {
        let shapes = shapes();
        assert!(shapes.len() > 2000, "{}", shapes.len());
        let mut oks = 0;
        let mut outcomes = std::collections::BTreeSet::new();
        for shape in &shapes {
            let ours = outcome::<crate::config::Identity>(shape);
            let derived = outcome::<derived::Identity>(shape);
            assert_eq!(ours, derived, "{shape}");
            oks += usize::from(ours.starts_with("ok"));
            outcomes.insert(
                ours.split(" at line ")
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
        // Both kinds of outcome are exercised, and many different errors.
        assert!(oks > 100 && oks < shapes.len() / 2, "{oks}");
        assert!(outcomes.len() > 40, "{outcomes:#?}");
    }
}
