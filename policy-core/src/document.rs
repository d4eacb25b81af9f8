//! The policy document as written by an admin (`docs/policy.md`): plain serde types,
//! unknown fields rejected. [`crate::Policy::load`] turns it into a compiled policy.

use crate::json::Segment;
use crate::role::Role;
use crate::unit_enum::codes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

/// A whole policy document, version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    /// Format version; only `1` exists.
    pub version: u32,
    /// Whether denials are enforced or only reported.
    #[serde(default)]
    pub mode: Mode,
    /// Caps on the number of rules and the length of patterns.
    #[serde(default)]
    pub limits: LimitsSpec,
    /// Which tags are immutable.
    #[serde(default)]
    pub immutability: ImmutabilityDocument,
    /// Who may do what; absent turns permission checks off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<PermissionsDocument>,
}

codes! {
    /// Enforcement mode (`enforce` or `audit`).
    #[derive(Default)]
    pub enum Mode {
        /// Denials are denials.
        #[default]
        Enforce = "enforce",
        /// Requests are allowed; decisions that would deny are marked `would_deny`.
        Audit = "audit",
    }
}

/// A limits profile by name, or custom numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LimitsSpec {
    /// Bitbucket's: 7 rules, patterns up to 100 characters.
    Bitbucket,
    /// Harbor's: 15 rules, patterns up to 255 characters (the default).
    #[default]
    Harbor,
    /// Numbers of the admin's choosing.
    Custom(CustomLimits),
}

/// `{"max_rules": N, "max_pattern_length": N}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomLimits {
    /// The most rules (and, separately, exceptions) a policy may hold.
    pub max_rules: usize,
    /// The longest pattern, in characters: a regex, or a glob list joined by commas.
    pub max_pattern_length: usize,
}

impl Serialize for LimitsSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            LimitsSpec::Bitbucket => serializer.serialize_str("bitbucket"),
            LimitsSpec::Harbor => serializer.serialize_str("harbor"),
            LimitsSpec::Custom(custom) => custom.serialize(serializer),
        }
    }
}

// The document's fields in declaration order (a struct may be written as an
// array of its fields).
const POLICY: &[&str] = &["version", "mode", "limits", "immutability", "permissions"];
const IMMUTABILITY: &[&str] = &[
    "protect",
    "rules",
    "exceptions",
    "identical_repush",
    "admin_delete",
    "referrer_tags",
];
const PERMISSIONS: &[&str] = &[
    "workspace_admins",
    "repositories",
    "images",
    "pipelines_inherit_write",
    "publish",
];
const IMAGE: &[&str] = &[
    "name",
    "pattern",
    "repository",
    "public",
    "publish",
    "overrides",
];
/// The field `path` starts with, by name or by index, and the rest of `path`.
fn field<'a>(path: &'a [Segment], names: &[&str]) -> Option<(usize, &'a [Segment])> {
    let (first, rest) = path.split_first()?;
    let index = match first {
        Segment::Key(key) => names.iter().position(|name| name == key)?,
        Segment::Index(index) if *index < names.len() => *index,
        _ => return None,
    };
    Some((index, rest))
}

/// Whether the value at `path` is one of the document's enums: serde reads
/// those, not structs or maps, when the value is an object, which changes the
/// path of a syntax error inside it (`json::path_at`). A struct may also be
/// written as an array of its fields in order, so fields are found by name or
/// by index.
pub(crate) fn is_enum_at(path: &[Segment]) -> bool {
    match field(path, POLICY) {
        Some((1, rest)) => rest.is_empty(),
        Some((3, rest)) => matches!(field(rest, IMMUTABILITY), Some((0 | 3 | 5, []))),
        Some((4, rest)) => match field(rest, PERMISSIONS) {
            Some((4, rest)) => rest.is_empty(),
            Some((2, [Segment::Index(_), image @ ..])) => match field(image, IMAGE) {
                Some((4, rest)) => rest.is_empty(),
                Some((5, rest)) => matches!(rest, [Segment::Key(_)]),
                _ => false,
            },
            _ => false,
        },
        _ => false,
    }
}

/// Whether the value at `path` is a [`Selector`]: a rule's `tags` or
/// `repositories`, or an exception (fields by name or by index, as in
/// [`is_enum_at`]).
pub(crate) fn is_selector_at(path: &[Segment]) -> bool {
    const RULE: &[&str] = &["name", "tags", "repositories"];
    let Some((3, immutability)) = field(path, POLICY) else {
        return false;
    };
    match field(immutability, IMMUTABILITY) {
        Some((1, [Segment::Index(_), rule @ ..])) => matches!(field(rule, RULE), Some((1 | 2, []))),
        Some((2, [Segment::Index(_)])) => true,
        _ => false,
    }
}

/// What a `limits` value may be, as serde's "expected …" words it.
pub(crate) const LIMITS_EXPECTING: &str =
    r#""bitbucket", "harbor" or {"max_rules": N, "max_pattern_length": N}"#;

impl<'de> Deserialize<'de> for LimitsSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = LimitsSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(LIMITS_EXPECTING)
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<LimitsSpec, E> {
                match value {
                    "bitbucket" => Ok(LimitsSpec::Bitbucket),
                    "harbor" => Ok(LimitsSpec::Harbor),
                    other => Err(E::unknown_variant(other, &["bitbucket", "harbor"])),
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<LimitsSpec, A::Error> {
                CustomLimits::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(LimitsSpec::Custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// The `immutability` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImmutabilityDocument {
    /// `none`, `all` or `some`.
    #[serde(default)]
    pub protect: Protect,
    /// Rules, OR-ed; only meaningful under `some`.
    #[serde(default)]
    pub rules: Vec<RuleDocument>,
    /// Tag selectors that are never immutable, whatever the rules say.
    #[serde(default)]
    pub exceptions: Vec<Selector>,
    /// Whether pushing the same digest to an immutable tag again is allowed.
    #[serde(default)]
    pub identical_repush: IdenticalRepush,
    /// Whether workspace admins may delete immutable tags.
    #[serde(default = "default_true")]
    pub admin_delete: bool,
    /// Whether cosign-style `sha256-<hex>.sig` tags are exempt from protection.
    #[serde(default)]
    pub referrer_tags: ReferrerTags,
}

fn default_true() -> bool {
    true
}

/// The section as an absent `immutability` reads: the same defaults as `{}`
/// (a derived `Default` would turn `admin_delete` off).
impl Default for ImmutabilityDocument {
    fn default() -> Self {
        ImmutabilityDocument {
            protect: Protect::default(),
            rules: Vec::new(),
            exceptions: Vec::new(),
            identical_repush: IdenticalRepush::default(),
            admin_delete: default_true(),
            referrer_tags: ReferrerTags::default(),
        }
    }
}

codes! {
    /// Which tags are protected (Bitbucket's three options).
    #[derive(Default)]
    pub enum Protect {
        /// All tags stay mutable.
        #[default]
        None = "none",
        /// Every tag is immutable once pushed, except exceptions.
        All = "all",
        /// Tags matched by a rule are immutable once pushed, except exceptions.
        Some = "some",
    }
}

codes! {
    /// What an identical re-push of an immutable tag gets.
    #[derive(Default)]
    pub enum IdenticalRepush {
        /// Allowed as a no-op (a CI retry).
        #[default]
        Allow = "allow",
        /// Refused, as Harbor and ECR do.
        Deny = "deny",
    }
}

codes! {
    /// How legacy referrer tags are treated.
    #[derive(Default)]
    pub enum ReferrerTags {
        /// Exempt from `all` and from rules: signing rewrites them.
        #[default]
        Mutable = "mutable",
        /// Treated like any other tag.
        Protected = "protected",
    }
}

/// One immutability rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDocument {
    /// Unique, non-empty; named in decisions.
    pub name: String,
    /// Which tags the rule protects.
    pub tags: Selector,
    /// Which images the rule applies to; absent means all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repositories: Option<Selector>,
}

/// A tag or repository selector: exactly one of `regex`, `matching`, `excluding`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "SelectorFields")]
pub enum Selector {
    /// An RE2 regex, matched unanchored (partial match).
    Regex(String),
    /// Globs; the selector matches names matched by any of them.
    Matching(Vec<String>),
    /// Globs; the selector matches names matched by none of them.
    Excluding(Vec<String>),
}

/// The JSON object of a selector, before exactly one field is required of it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SelectorFields {
    regex: Option<String>,
    matching: Option<Vec<String>>,
    excluding: Option<Vec<String>>,
}

impl TryFrom<SelectorFields> for Selector {
    type Error = &'static str;
    fn try_from(fields: SelectorFields) -> Result<Selector, Self::Error> {
        match (fields.regex, fields.matching, fields.excluding) {
            (Some(regex), None, None) => Ok(Selector::Regex(regex)),
            (None, Some(globs), None) => Ok(Selector::Matching(globs)),
            (None, None, Some(globs)) => Ok(Selector::Excluding(globs)),
            _ => Err("a selector has exactly one of `regex`, `matching` or `excluding`"),
        }
    }
}

/// The `permissions` section.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionsDocument {
    /// Principals holding admin on every repository.
    #[serde(default)]
    pub workspace_admins: Vec<String>,
    /// Code repositories and their grants.
    #[serde(default)]
    pub repositories: BTreeMap<String, RepositoryGrants>,
    /// Links from images to repositories: exact records and patterns.
    #[serde(default)]
    pub images: Vec<ImageDocument>,
    /// Whether pipelines of an image's repository get write on it implicitly.
    #[serde(default)]
    pub pipelines_inherit_write: bool,
    /// The default publishing rule for images that do not set one.
    #[serde(default)]
    pub publish: Publish,
}

/// The principals holding each role on one code repository.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryGrants {
    /// Principals with admin.
    #[serde(default)]
    pub admin: Vec<String>,
    /// Principals with write.
    #[serde(default)]
    pub write: Vec<String>,
    /// Principals with read.
    #[serde(default)]
    pub read: Vec<String>,
}

/// One entry of `permissions.images`: exactly one of `name` (a record) or `pattern`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageDocument {
    /// An exact image name: a record, so its first push needs only write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A glob over image names: links without a record, so a first push needs admin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// The code repository whose roles apply.
    pub repository: String,
    /// Readable by any authenticated workspace member.
    #[serde(default)]
    pub public: bool,
    /// Who may publish; the policy's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<Publish>,
    /// Principal → role, replacing the inherited role for those principals.
    #[serde(default)]
    pub overrides: BTreeMap<String, Role>,
}

codes! {
    /// Who may publish (push, upload, mount into) an image.
    #[derive(Default)]
    pub enum Publish {
        /// Anyone holding write.
        #[default]
        Anyone = "anyone",
        /// Only pipelines holding write.
        PipelinesOnly = "pipelines-only",
    }
}
