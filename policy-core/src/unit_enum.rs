//! The unit enums of policies, requests, decisions and diagnostics (`mode`,
//! `protect`, a role, an actor's `kind`, a reason, a lint code, …): each declared
//! once with [`codes!`], which writes the variant ↔ text table a single time and
//! derives `as_str`, `ALL`, `Display`, `Serialize` and `Deserialize` from it, so the
//! text a code is printed with and the text it is read from cannot disagree.
//!
//! Reading goes through one visitor for all of them. serde's derive gives every
//! enum its own enum visitor, variant-name visitor and variant access, each
//! instantiated for every deserializer that reads it: about 1.6 KB of WebAssembly
//! per enum in the component. [`deserialize`] reads any unit enum exactly as the
//! derive does — the same `deserialize_enum` call with the same name and variant
//! names, the same "expected" words, the same errors in the same order — and
//! answers with the variant's index. The tests hold it to a derived twin.

use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, VariantAccess, Visitor};
use std::fmt;

/// Declares a unit enum with the text of each variant, written once.
///
/// ```text
/// codes! {
///     /// Enforcement mode.
///     #[derive(Default)]
///     pub enum Mode {
///         /// Denials are denials.
///         #[default]
///         Enforce = "enforce",
///         /// Requests are allowed, marked `would_deny`.
///         Audit = "audit",
///     }
/// }
/// ```
///
/// The enum gets `Debug, Clone, Copy, PartialEq, Eq, Hash` (more through its own
/// `#[derive]`), `ALL` (every variant in declaration order), `as_str`, `from_name`, `Display`,
/// and `Serialize`/`Deserialize` as serde's derive with those names would write
/// and read them.
macro_rules! codes {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $(
                $(#[$variant_meta:meta])*
                $variant:ident = $text:literal,
            )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $(
                $(#[$variant_meta])*
                $variant,
            )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text the code is written and read as.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The code written as `text`, if there is one.
            pub fn from_name(text: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|code| code.as_str() == text)
            }

            /// How serde's derive would describe the enum.
            const UNIT: $crate::unit_enum::UnitEnum = $crate::unit_enum::UnitEnum {
                name: stringify!($name),
                variants: &[$($text),+],
            };
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_unit_variant(stringify!($name), *self as u32, self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<$name, D::Error> {
                let index = $crate::unit_enum::deserialize(deserializer, &$name::UNIT)?;
                // `deserialize` answers with an index into `UNIT.variants`, which
                // lists exactly `ALL`'s texts: always in range.
                $name::ALL.get(index).copied().ok_or_else(|| {
                    <D::Error as ::serde::de::Error>::custom("variant index out of range")
                })
            }
        }
    };
}

pub(crate) use codes;

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
        use crate::decision::{ErrorCode, Reason};
        use crate::document::{IdenticalRepush, Mode, Protect, Publish, ReferrerTags};
        use crate::error::LoadErrorCode;
        use crate::immutability::TagVerdict;
        use crate::lint::LintCode;
        use crate::request::ActorKind;
        use crate::role::Role;
        reads_what_it_writes("Mode", Mode::ALL);
        reads_what_it_writes("Protect", Protect::ALL);
        reads_what_it_writes("IdenticalRepush", IdenticalRepush::ALL);
        reads_what_it_writes("ReferrerTags", ReferrerTags::ALL);
        reads_what_it_writes("Publish", Publish::ALL);
        reads_what_it_writes("Role", Role::ALL);
        reads_what_it_writes("ActorKind", ActorKind::ALL);
        reads_what_it_writes("Reason", Reason::ALL);
        reads_what_it_writes("ErrorCode", ErrorCode::ALL);
        reads_what_it_writes("LoadErrorCode", LoadErrorCode::ALL);
        reads_what_it_writes("LintCode", LintCode::ALL);
        reads_what_it_writes("TagVerdict", TagVerdict::ALL);
    }

    /// What the macro writes is what serde's derive with `rename_all` writes.
    #[test]
    fn codes_write_as_the_derive_does() {
        #[derive(serde::Serialize)]
        #[serde(rename_all = "kebab-case")]
        enum Twin {
            First,
            SecondOne,
            Third,
        }
        codes! {
            /// The twin, declared with the macro.
            enum Ours {
                /// 0
                First = "first",
                /// 1
                SecondOne = "second-one",
                /// 2
                Third = "third",
            }
        }
        for (ours, twin) in Ours::ALL
            .iter()
            .zip([Twin::First, Twin::SecondOne, Twin::Third])
        {
            assert_eq!(
                serde_json::to_string(ours).unwrap(),
                serde_json::to_string(&twin).unwrap()
            );
            assert_eq!(ours.to_string(), ours.as_str());
            assert_eq!(Ours::from_name(ours.as_str()), Some(*ours));
        }
        assert_eq!(Ours::ALL.len(), 3);
        assert_eq!(Ours::from_name("Third"), None);
    }
}
