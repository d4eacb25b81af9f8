//! Reading the unit enums of policies and requests (`mode`, `protect`, a role, an
//! actor's `kind`, …) with one visitor for all of them.
//!
//! serde's derive gives every enum its own enum visitor, variant-name visitor and
//! variant access, each instantiated for every deserializer that reads it: about
//! 1.6 KB of WebAssembly per enum in the component. [`deserialize`] reads any unit
//! enum exactly as the derive does — the same `deserialize_enum` call with the same
//! name and variant names, the same "expected" words, the same errors in the same
//! order — and answers with the variant's index, which the enum's own
//! `Deserialize` turns back into the variant. The tests hold it to a derived twin.

use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, VariantAccess, Visitor};
use std::fmt;

/// What serde's derive knows of a unit enum.
pub(crate) struct UnitEnum {
    /// The enum's Rust name (the derive says "expected enum {name}").
    pub(crate) name: &'static str,
    /// The variants' names as written (after `rename_all`), in declaration order.
    pub(crate) variants: &'static [&'static str],
}

/// Reads one of `unit`'s variants and answers with its index in `unit.variants`.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
    unit: &'static UnitEnum,
) -> Result<usize, D::Error> {
    deserializer.deserialize_enum(unit.name, unit.variants, Enum(unit))
}

/// The enum visitor: a variant name, then its (empty) content.
struct Enum(&'static UnitEnum);

impl<'de> Visitor<'de> for Enum {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("enum ")?;
        f.write_str(self.0.name)
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<usize, A::Error> {
        let (index, variant) = data.variant_seed(Variant(self.0.variants))?;
        variant.unit_variant()?;
        Ok(index)
    }
}

/// A variant's name (or index), as the derive's identifier visitor reads it.
struct Variant(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for Variant {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl<'de> Visitor<'de> for Variant {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("variant identifier")
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<usize, E> {
        match usize::try_from(value) {
            Ok(index) if index < self.0.len() => Ok(index),
            _ => Err(E::invalid_value(
                de::Unexpected::Unsigned(value),
                &IndexBelow(self.0.len()),
            )),
        }
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<usize, E> {
        self.0
            .iter()
            .position(|name| *name == value)
            .ok_or_else(|| E::unknown_variant(value, self.0))
    }

    fn visit_bytes<E: de::Error>(self, value: &[u8]) -> Result<usize, E> {
        match self.0.iter().position(|name| name.as_bytes() == value) {
            Some(index) => Ok(index),
            None => Err(E::unknown_variant(&String::from_utf8_lossy(value), self.0)),
        }
    }
}

/// "variant index 0 <= i < N", as the derive words a variant index out of range.
struct IndexBelow(usize);

impl de::Expected for IndexBelow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "variant index 0 <= i < {}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde::de::IntoDeserializer;
    use serde::de::value::Error as ValueError;

    /// A unit enum read through [`deserialize`].
    #[derive(Debug, PartialEq)]
    struct Ours(usize);

    const THREE: UnitEnum = UnitEnum {
        name: "Three",
        variants: &["first", "second-one", "third"],
    };

    impl<'de> Deserialize<'de> for Ours {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Ours, D::Error> {
            deserialize(deserializer, &THREE).map(Ours)
        }
    }

    /// The same enum, derived.
    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    enum Three {
        First,
        SecondOne,
        Third,
    }

    fn index(three: Three) -> usize {
        match three {
            Three::First => 0,
            Three::SecondOne => 1,
            Three::Third => 2,
        }
    }

    /// `{"v": <value>}` read as a struct field, so errors carry serde_json's
    /// locations and the field's context.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Holder<T> {
        #[allow(dead_code)]
        v: T,
        #[serde(default = "Vec::new")]
        #[allow(dead_code)]
        list: Vec<T>,
    }

    #[test]
    fn reads_json_as_the_derive_does() {
        let values = [
            r#""first""#,
            r#""second-one""#,
            r#""third""#,
            r#""Third""#,
            r#""secondOne""#,
            r#""""#,
            r#""fir\u0073t""#,
            r#""\u00e9""#,
            r#"{"third": null}"#,
            r#"{"third": 1}"#,
            r#"{"third": {}}"#,
            r#"{"fourth": null}"#,
            r#"{"third": null, "first": null}"#,
            r#"{"third": null"#,
            r#"{"third" null}"#,
            r#"{}"#,
            r#"{1: null}"#,
            r#"["third"]"#,
            r#"[]"#,
            r#"0"#,
            r#"2"#,
            r#"7"#,
            r#"-1"#,
            r#"1.5"#,
            r#"1e400"#,
            r#"true"#,
            r#"null"#,
            r#""third"#,
            r#"thi"#,
            r#""#,
        ];
        for value in values {
            for text in [
                format!(r#"{{"v": {value}}}"#),
                format!(r#"{{"list": ["first", {value}], "v": "first"}}"#),
                format!(r#"{{"v": "first", "list": [{value}]}}"#),
            ] {
                let ours = serde_json::from_str::<Holder<Ours>>(&text)
                    .map(|h| (h.v.0, h.list.into_iter().map(|o| o.0).collect::<Vec<_>>()))
                    .map_err(|e| e.to_string());
                let derived = serde_json::from_str::<Holder<Three>>(&text)
                    .map(|h| (index(h.v), h.list.into_iter().map(index).collect()))
                    .map_err(|e| e.to_string());
                assert_eq!(ours, derived, "{text}");
            }
        }
    }

    #[test]
    fn reads_other_deserializers_as_the_derive_does() {
        // Variant indexes, which serde_json never hands over, and other inputs.
        for value in [0u32, 1, 2, 3, u32::MAX] {
            let ours = Ours::deserialize(IntoDeserializer::<ValueError>::into_deserializer(value));
            let derived =
                Three::deserialize(IntoDeserializer::<ValueError>::into_deserializer(value));
            assert_eq!(
                ours.map(|o| o.0).map_err(|e| e.to_string()),
                derived.map(index).map_err(|e| e.to_string()),
                "{value}"
            );
        }
        for value in [0u64, 2, 3] {
            let ours = Ours::deserialize(IntoDeserializer::<ValueError>::into_deserializer(value));
            let derived =
                Three::deserialize(IntoDeserializer::<ValueError>::into_deserializer(value));
            assert_eq!(
                ours.map(|o| o.0).map_err(|e| e.to_string()),
                derived.map(index).map_err(|e| e.to_string()),
                "{value}"
            );
        }
        for name in ["first", "third", "fourth", ""] {
            let ours = Ours::deserialize(IntoDeserializer::<ValueError>::into_deserializer(name));
            let derived =
                Three::deserialize(IntoDeserializer::<ValueError>::into_deserializer(name));
            assert_eq!(
                ours.map(|o| o.0).map_err(|e| e.to_string()),
                derived.map(index).map_err(|e| e.to_string()),
                "{name}"
            );
        }
    }

    /// Every enum read through [`deserialize`] reads back what it writes, and
    /// names its variants, in order, as its `Serialize` does.
    fn reads_what_it_writes<T>(name: &str, all: &[T])
    where
        T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let mut names = Vec::new();
        for variant in all {
            let text = serde_json::to_string(variant).unwrap();
            assert_eq!(
                &serde_json::from_str::<T>(&text).unwrap(),
                variant,
                "{text}"
            );
            names.push(text.replace('"', "`"));
        }
        let unknown = serde_json::from_str::<T>(r#""?""#).unwrap_err().to_string();
        let expected = match names.as_slice() {
            [a, b] => format!("expected {a} or {b}"),
            _ => format!("expected one of {}", names.join(", ")),
        };
        assert!(
            unknown.starts_with(&format!("unknown variant `?`, {expected}")),
            "{unknown}"
        );
        let wrong = T::deserialize(IntoDeserializer::<ValueError>::into_deserializer(7u64));
        assert_eq!(
            wrong.unwrap_err().to_string(),
            format!("invalid type: integer `7`, expected enum {name}")
        );
    }

    #[test]
    fn every_unit_enum_reads_what_it_writes() {
        use crate::document::{IdenticalRepush, Mode, Protect, Publish, ReferrerTags};
        use crate::request::ActorKind;
        use crate::role::Role;
        reads_what_it_writes("Mode", &[Mode::Enforce, Mode::Audit]);
        reads_what_it_writes("Protect", &[Protect::None, Protect::All, Protect::Some]);
        reads_what_it_writes(
            "IdenticalRepush",
            &[IdenticalRepush::Allow, IdenticalRepush::Deny],
        );
        reads_what_it_writes(
            "ReferrerTags",
            &[ReferrerTags::Mutable, ReferrerTags::Protected],
        );
        reads_what_it_writes("Publish", &[Publish::Anyone, Publish::PipelinesOnly]);
        reads_what_it_writes("Role", &[Role::None, Role::Read, Role::Write, Role::Admin]);
        reads_what_it_writes(
            "ActorKind",
            &[
                ActorKind::User,
                ActorKind::Pipeline,
                ActorKind::Token,
                ActorKind::Anonymous,
            ],
        );
    }
}
