//! The unit enums of policies, requests, decisions and diagnostics (`mode`,
//! `protect`, a role, an actor's `kind`, a reason, a lint code, …): each declared
//! once with [`codes!`], which writes the variant ↔ text table a single time and
//! derives `as_str`, `ALL`, `from_name`, `Display` and `Serialize` from it. Reading
//! a code from JSON goes through that same table (`json`'s readers look the text
//! up in `ALL` by `as_str`), so the text a code is printed with and the text it is
//! read from cannot disagree.

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
/// `#[derive]`), `ALL` (every variant in declaration order), `as_str`, `from_name`,
/// `Display`, and `Serialize` as serde's derive with those names would write them.
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
    };
}

pub(crate) use codes;

#[cfg(test)]
mod tests {
    use crate::json::{FromJson, from_json};

    /// A code reads back, through the core's JSON reader, what it writes; its name
    /// is its `Display` and `from_name` finds it; other texts are refused with the
    /// list of names.
    fn reads_what_it_writes<T>(all: &[T], as_str: fn(T) -> &'static str)
    where
        T: FromJson + serde::Serialize + PartialEq + std::fmt::Debug + Copy,
    {
        for variant in all {
            let text = serde_json::to_string(variant).unwrap();
            assert_eq!(text, format!("\"{}\"", as_str(*variant)));
            assert_eq!(&from_json::<T>(&text).unwrap(), variant, "{text}");
        }
        let unknown = from_json::<T>(r#""?""#).unwrap_err();
        for variant in all {
            assert!(unknown.message.contains(as_str(*variant)), "{unknown}");
        }
    }

    #[test]
    fn every_code_read_from_json_reads_what_it_writes() {
        use crate::document::{IdenticalRepush, Mode, Protect, Publish, ReferrerTags};
        use crate::request::ActorKind;
        use crate::role::Role;
        reads_what_it_writes(Mode::ALL, Mode::as_str);
        reads_what_it_writes(Protect::ALL, Protect::as_str);
        reads_what_it_writes(IdenticalRepush::ALL, IdenticalRepush::as_str);
        reads_what_it_writes(ReferrerTags::ALL, ReferrerTags::as_str);
        reads_what_it_writes(Publish::ALL, Publish::as_str);
        reads_what_it_writes(Role::ALL, Role::as_str);
        reads_what_it_writes(ActorKind::ALL, ActorKind::as_str);
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
