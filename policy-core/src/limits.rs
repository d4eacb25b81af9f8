//! Limit profiles, validated by the engine rather than by a UI, and the bounds a
//! request is held to.

use crate::document::LimitsSpec;
use serde::Serialize;

/// The caps a policy is held to; as JSON `{"max_rules": N, "max_pattern_length": N}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// The most rules, and separately the most exceptions.
    pub max_rules: usize,
    /// The longest pattern in characters (a glob list counts joined by commas).
    pub max_pattern_length: usize,
}

/// Custom limits may not exceed these, so that no policy loads unbounded work.
pub(crate) const CEILING: Limits = Limits {
    max_rules: 1000,
    max_pattern_length: 4096,
};

/// The most digests a tag's `via` may list: the depth of index nesting a digest
/// delete can report (an index of indexes of … of the deleted manifest). Real images
/// nest one or two levels; a longer list is refused as `invalid_request`, so a
/// request's size stays bounded per tag.
pub(crate) const MAX_VIA: usize = 16;

/// Bitbucket's profile: 7 rules, 100 characters.
pub(crate) const BITBUCKET: Limits = Limits {
    max_rules: 7,
    max_pattern_length: 100,
};

/// Harbor's profile: 15 rules, 255 characters.
pub(crate) const HARBOR: Limits = Limits {
    max_rules: 15,
    max_pattern_length: 255,
};

/// The largest policy text, in bytes, any engine reads; a larger one is refused
/// (`policy-too-large`) before it is parsed, so loading is bounded whatever the
/// text holds.
pub(crate) const MAX_POLICY_BYTES: usize = 4 * 1024 * 1024;

/// What the weights (`pattern::weight`) of a policy's patterns (rules, exceptions,
/// image patterns) may add up to; a pattern that does not fit is refused
/// (`regex-too-large`) before it is built, so a loaded policy's compiled size is
/// bounded on every engine.
pub(crate) const MAX_POLICY_WEIGHT: u64 = 1024 * 1024;

/// The longest rule name, in characters (`name-too-long`).
pub(crate) const MAX_RULE_NAME_CHARS: usize = 128;

/// The longest principal (`user:…`, `group:…`) and repository name, in characters
/// (`name-too-long`).
pub(crate) const MAX_NAME_CHARS: usize = 255;

/// The most `permissions.images` entries with a `pattern` (`too-many-rules`):
/// each compiles a matcher, like a rule.
pub(crate) const MAX_IMAGE_PATTERNS: usize = CEILING.max_rules;

/// The bounds every engine holds policies and requests to, by their public names.
impl Limits {
    /// Bitbucket's profile (`"limits": "bitbucket"`): 7 rules, 100 characters.
    pub const BITBUCKET: Limits = BITBUCKET;
    /// Harbor's profile (`"limits": "harbor"`): 15 rules, 255 characters.
    pub const HARBOR: Limits = HARBOR;
    /// What custom limits may be at most: 1000 rules, 4096 characters.
    pub const CEILING: Limits = CEILING;
    /// The largest policy text in bytes (`policy-too-large`).
    pub const MAX_POLICY_BYTES: usize = MAX_POLICY_BYTES;
    /// What one pattern may weigh (`regex-too-large`), measured on its parse so that
    /// every engine and pointer width agrees.
    pub const MAX_PATTERN_WEIGHT: u64 = crate::pattern::REGEX_WEIGHT_LIMIT;
    /// What all of a policy's patterns may weigh together (`regex-too-large`).
    pub const MAX_POLICY_WEIGHT: u64 = MAX_POLICY_WEIGHT;
    /// The deepest nesting of groups and repetitions in a regex (`regex-too-large`).
    pub const MAX_PATTERN_NESTING: u32 = crate::pattern::REGEX_NEST_LIMIT;
    /// The longest rule name in characters (`name-too-long`).
    pub const MAX_RULE_NAME_CHARS: usize = MAX_RULE_NAME_CHARS;
    /// The longest principal or repository name in characters (`name-too-long`).
    pub const MAX_NAME_CHARS: usize = MAX_NAME_CHARS;
    /// The most `permissions.images` entries with a `pattern` (`too-many-rules`).
    pub const MAX_IMAGE_PATTERNS: usize = MAX_IMAGE_PATTERNS;
    /// The most digests one tag's `via` may list (more: `invalid_request`).
    pub const MAX_VIA: usize = MAX_VIA;
}

impl From<LimitsSpec> for Limits {
    fn from(spec: LimitsSpec) -> Limits {
        match spec {
            LimitsSpec::Bitbucket => BITBUCKET,
            LimitsSpec::Harbor => HARBOR,
            LimitsSpec::Custom(custom) => Limits {
                max_rules: custom.max_rules,
                max_pattern_length: custom.max_pattern_length,
            },
        }
    }
}
