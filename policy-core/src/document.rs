//! The policy document as written by an admin (`docs/policy.md`). Each type reads
//! itself from JSON ([`crate::FromJson`]) with its fields named once, in a `fields!`
//! reader next to it: unknown and duplicate fields refused, every error located by
//! path, line and column. [`crate::Policy::load`] turns it into a compiled policy.

use crate::json::{JsonError, Path, Read, Value, fields};
use crate::role::Role;
use crate::unit_enum::codes;
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;

/// A whole policy document, version 1.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyDocument {
    /// Format version; only `1` exists.
    pub version: u32,
    /// Whether denials are enforced or only reported.
    pub mode: Mode,
    /// Caps on the number of rules and the length of patterns.
    pub limits: LimitsSpec,
    /// Which tags are immutable.
    pub immutability: ImmutabilityDocument,
    /// Who may do what; absent turns permission checks off.
    #[serde(skip_serializing_if = "Option::is_none")]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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

impl Read for PolicyDocument {
    fn read(value: Value<'_>, at: &Path<'_>) -> Result<Self, JsonError> {
        fields!(value, at, "a policy", {
            version: u32,
            mode: Mode = Mode::default(),
            limits: LimitsSpec = LimitsSpec::default(),
            immutability: ImmutabilityDocument = ImmutabilityDocument::default(),
            permissions: Option<PermissionsDocument> = None,
        });
        Ok(PolicyDocument {
            version,
            mode,
            limits,
            immutability,
            permissions,
        })
    }
}

/// `"bitbucket"`, `"harbor"` or custom numbers.
impl Read for LimitsSpec {
    fn read(value: Value<'_>, at: &Path<'_>) -> Result<Self, JsonError> {
        const EXPECTING: &str =
            r#"`"bitbucket"`, `"harbor"` or `{"max_rules": N, "max_pattern_length": N}`"#;
        if !matches!(value.first(), b'"' | b'{') {
            return Err(value.wrong_type(at, EXPECTING));
        }
        if value.first() == b'"' {
            return match &*value.string(at, EXPECTING)? {
                "bitbucket" => Ok(LimitsSpec::Bitbucket),
                "harbor" => Ok(LimitsSpec::Harbor),
                other => Err(value.error(
                    at,
                    format!("unknown limits profile `{other}`, expected {EXPECTING}"),
                )),
            };
        }
        fields!(value, at, "custom limits", {
            max_rules: usize,
            max_pattern_length: usize,
        });
        Ok(LimitsSpec::Custom(CustomLimits {
            max_rules,
            max_pattern_length,
        }))
    }
}

/// The `immutability` section.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImmutabilityDocument {
    /// `none`, `all` or `some`.
    pub protect: Protect,
    /// Rules, OR-ed; only meaningful under `some`.
    pub rules: Vec<RuleDocument>,
    /// Tag selectors that are never immutable, whatever the rules say.
    pub exceptions: Vec<Selector>,
    /// Whether pushing the same digest to an immutable tag again is allowed.
    pub identical_repush: IdenticalRepush,
    /// Whether workspace admins may delete immutable tags.
    pub admin_delete: bool,
    /// Whether cosign-style `sha256-<hex>.sig` tags are exempt from protection.
    pub referrer_tags: ReferrerTags,
}

impl Read for ImmutabilityDocument {
    fn read(value: Value<'_>, at: &Path<'_>) -> Result<Self, JsonError> {
        fields!(value, at, "the immutability section", {
            protect: Protect = Protect::default(),
            rules: Vec<RuleDocument> = Vec::new(),
            exceptions: Vec<Selector> = Vec::new(),
            identical_repush: IdenticalRepush = IdenticalRepush::default(),
            admin_delete: bool = true,
            referrer_tags: ReferrerTags = ReferrerTags::default(),
        });
        Ok(ImmutabilityDocument {
            protect,
            rules,
            exceptions,
            identical_repush,
            admin_delete,
            referrer_tags,
        })
    }
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
            admin_delete: true,
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleDocument {
    /// Unique, non-empty; named in decisions.
    pub name: String,
    /// Which tags the rule protects.
    pub tags: Selector,
    /// Which images the rule applies to; absent means all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repositories: Option<Selector>,
}

/// A tag or repository selector: exactly one of `regex`, `matching`, `excluding`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Selector {
    /// An RE2 regex, matched unanchored (partial match).
    Regex(String),
    /// Globs; the selector matches names matched by any of them.
    Matching(Vec<String>),
    /// Globs; the selector matches names matched by none of them.
    Excluding(Vec<String>),
}

impl Read for RuleDocument {
    fn read(value: Value<'_>, at: &Path<'_>) -> Result<Self, JsonError> {
        fields!(value, at, "a rule", {
            name: String,
            tags: Selector,
            repositories: Option<Selector> = None,
        });
        Ok(RuleDocument {
            name,
            tags,
            repositories,
        })
    }
}

impl Read for Selector {
    fn read(value: Value<'_>, at: &Path<'_>) -> Result<Self, JsonError> {
        fields!(value, at, "a selector", {
            regex: Option<String> = None,
            matching: Option<Vec<String>> = None,
            excluding: Option<Vec<String>> = None,
        });
        match (regex, matching, excluding) {
            (Some(regex), None, None) => Ok(Selector::Regex(regex)),
            (None, Some(globs), None) => Ok(Selector::Matching(globs)),
            (None, None, Some(globs)) => Ok(Selector::Excluding(globs)),
            _ => Err(value.error(
                at,
                "a selector has exactly one of `regex`, `matching` or `excluding`",
            )),
        }
    }
}

/// The `permissions` section.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct PermissionsDocument {
    /// Principals holding admin on every repository.
    pub workspace_admins: Vec<String>,
    /// Code repositories and their grants.
    pub repositories: BTreeMap<String, RepositoryGrants>,
    /// Links from images to repositories: exact records and patterns.
    pub images: Vec<ImageDocument>,
    /// Whether pipelines of an image's repository get write on it implicitly.
    pub pipelines_inherit_write: bool,
    /// The default publishing rule for images that do not set one.
    pub publish: Publish,
}

/// The principals holding each role on one code repository.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct RepositoryGrants {
    /// Principals with admin.
    pub admin: Vec<String>,
    /// Principals with write.
    pub write: Vec<String>,
    /// Principals with read.
    pub read: Vec<String>,
}

/// One entry of `permissions.images`: exactly one of `name` (a record) or `pattern`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageDocument {
    /// An exact image name: a record, so its first push needs only write.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A glob over image names: links without a record, so a first push needs admin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// The code repository whose roles apply.
    pub repository: String,
    /// Readable by any authenticated workspace member.
    pub public: bool,
    /// Who may publish; the policy's default when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish: Option<Publish>,
    /// Principal → role, replacing the inherited role for those principals.
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

impl Read for PermissionsDocument {
    fn read(value: Value<'_>, at: &Path<'_>) -> Result<Self, JsonError> {
        fields!(value, at, "the permissions section", {
            workspace_admins: Vec<String> = Vec::new(),
            repositories: BTreeMap<String, RepositoryGrants> = BTreeMap::new(),
            images: Vec<ImageDocument> = Vec::new(),
            pipelines_inherit_write: bool = false,
            publish: Publish = Publish::default(),
        });
        Ok(PermissionsDocument {
            workspace_admins,
            repositories,
            images,
            pipelines_inherit_write,
            publish,
        })
    }
}

impl Read for RepositoryGrants {
    fn read(value: Value<'_>, at: &Path<'_>) -> Result<Self, JsonError> {
        fields!(value, at, "a repository's grants", {
            admin: Vec<String> = Vec::new(),
            write: Vec<String> = Vec::new(),
            read: Vec<String> = Vec::new(),
        });
        Ok(RepositoryGrants { admin, write, read })
    }
}

impl Read for ImageDocument {
    fn read(value: Value<'_>, at: &Path<'_>) -> Result<Self, JsonError> {
        fields!(value, at, "an image entry", {
            name: Option<String> = None,
            pattern: Option<String> = None,
            repository: String,
            public: bool = false,
            publish: Option<Publish> = None,
            overrides: BTreeMap<String, Role> = BTreeMap::new(),
        });
        Ok(ImageDocument {
            name,
            pattern,
            repository,
            public,
            publish,
            overrides,
        })
    }
}
