//! Which tags are immutable, and the pattern tester's view of it.

use crate::document::{Protect, ReferrerTags};
use crate::names;
use crate::policy::{Immutability, Policy, Rule};
use crate::unit_enum::codes;
use serde::Serialize;
use std::sync::Arc;

/// What protects a tag.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Protection<'p> {
    /// `protect: all`.
    All,
    /// The first rule, in document order, that matches.
    Rule(&'p Rule),
}

impl<'p> Protection<'p> {
    /// The rule's name (`None` under `all`).
    pub(crate) fn rule_name(self) -> Option<Arc<str>> {
        match self {
            Protection::All => None,
            Protection::Rule(rule) => Some(Arc::clone(&rule.name)),
        }
    }

    /// The rule's pattern (`None` under `all`).
    pub(crate) fn pattern(self) -> Option<Arc<str>> {
        match self {
            Protection::All => None,
            Protection::Rule(rule) => Some(Arc::clone(rule.tags.display())),
        }
    }
}

impl<'p> Protection<'p> {
    /// How a message names the protection, in pieces to concatenate: `rule
    /// "semver"` or `all tags are protected`.
    pub(crate) fn words(self) -> [&'p str; 3] {
        match self {
            Protection::All => ["all tags are protected", "", ""],
            Protection::Rule(rule) => ["rule \"", &rule.name, "\""],
        }
    }
}

/// How a message names a protection (see [`Protection::words`]).
impl std::fmt::Display for Protection<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.words().iter().try_for_each(|word| f.write_str(word))
    }
}

/// A valid tag's verdict: whether it is protected, and why (or why not). Pushes,
/// deletes and the pattern tester all read it, so they cannot disagree.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Verdict<'p> {
    /// Protected, by `protect: all` or by the first matching rule.
    Protected(Protection<'p>),
    /// What would protect it, were it not for an exception.
    Exempted(Protection<'p>),
    /// A referrer tag while `referrer_tags` is `mutable`.
    Referrer,
    /// `protect: some` and no rule matches.
    NoRule,
    /// `protect: none`.
    ModeNone,
}

impl<'p> Verdict<'p> {
    /// What protects the tag, if it is protected.
    #[inline]
    pub(crate) fn protection(self) -> Option<Protection<'p>> {
        match self {
            Verdict::Protected(protection) => Some(protection),
            Verdict::Exempted(_) | Verdict::Referrer | Verdict::NoRule | Verdict::ModeNone => None,
        }
    }

    /// The verdict's stable code.
    fn code(self) -> TagVerdict {
        match self {
            Verdict::Protected(Protection::All) => TagVerdict::All,
            Verdict::Protected(Protection::Rule(_)) => TagVerdict::Rule,
            Verdict::Exempted(_) => TagVerdict::Exception,
            Verdict::Referrer => TagVerdict::Referrer,
            Verdict::NoRule => TagVerdict::NoRule,
            Verdict::ModeNone => TagVerdict::ModeNone,
        }
    }
}

impl Immutability {
    /// The verdict on `tag` of `image` once it exists (both already validated):
    /// `protect: none`, then referrer tags, then what protects it, then exceptions.
    pub(crate) fn verdict(&self, image: &str, tag: &str) -> Verdict<'_> {
        if self.protect == Protect::None {
            return Verdict::ModeNone;
        }
        if self.referrer_tags == ReferrerTags::Mutable && names::is_referrer_tag(tag) {
            return Verdict::Referrer;
        }
        let Some(protection) = self.would_protect(image, tag) else {
            return Verdict::NoRule;
        };
        if self.exempts(tag) {
            Verdict::Exempted(protection)
        } else {
            Verdict::Protected(protection)
        }
    }

    /// Whether `tag` of `image` is protected once it exists (both already validated).
    #[inline]
    pub(crate) fn protection(&self, image: &str, tag: &str) -> Option<Protection<'_>> {
        self.verdict(image, tag).protection()
    }

    /// What protects `tag` of `image` before exceptions: `all`, or the first rule
    /// (in document order) whose selectors match; a selector that cannot decide
    /// matches, so a failed search protects.
    fn would_protect(&self, image: &str, tag: &str) -> Option<Protection<'_>> {
        self.first_protection(|r| r.applies_to(image) && r.tags.matches(tag).or_match())
    }

    /// Whether an exception exempts `tag`; one that cannot decide exempts nothing.
    pub(crate) fn exempts(&self, tag: &str) -> bool {
        self.exceptions.iter().any(|e| e.matches(tag).or_no_match())
    }

    /// The index of the first exception that exempts `tag`.
    pub(crate) fn exception_for(&self, tag: &str) -> Option<usize> {
        self.exceptions
            .iter()
            .position(|e| e.matches(tag).or_no_match())
    }

    /// What could protect some tag of `image` whose tags are unknown (fail closed).
    pub(crate) fn could_protect(&self, image: &str) -> Option<Protection<'_>> {
        self.first_protection(|r| r.applies_to(image))
    }

    /// `all`, or the first rule (in document order) that `applies` accepts, under
    /// `protect: some`; nothing under `protect: none`.
    fn first_protection(&self, applies: impl Fn(&Rule) -> bool) -> Option<Protection<'_>> {
        match self.protect {
            Protect::None => None,
            Protect::All => Some(Protection::All),
            Protect::Some => self.rules.iter().find(|r| applies(r)).map(Protection::Rule),
        }
    }

    /// Every rule whose selectors match `tag` of `image`, in document order, with
    /// the matched span (only `protect: some` reads rules).
    fn rule_matches(&self, image: &str, tag: &str) -> Vec<RuleMatch> {
        if self.protect != Protect::Some {
            return Vec::new();
        }
        self.rules
            .iter()
            .filter(|r| r.applies_to(image))
            .filter_map(|r| {
                r.tags.find(tag).map(|span| RuleMatch {
                    rule: Arc::clone(&r.name),
                    start: span.start,
                    end: span.end,
                })
            })
            .collect()
    }
}

/// The pattern tester's answer for one tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagTest {
    /// The tag tested.
    pub tag: String,
    /// Why the tag or image name is not valid, if it is not; nothing else is computed then.
    pub error: Option<String>,
    /// Whether the tag is immutable once pushed to the image.
    pub protected: bool,
    /// The rule that protects it (the first in document order); `None` under `all` or when unprotected.
    pub rule: Option<Arc<str>>,
    /// `rule`, `all`, `exception`, `referrer`, `no-rule` or `mode-none`: why it is (not) protected.
    pub because: TagVerdict,
    /// Every rule whose selectors match (tag and image), in document order, with the matched span.
    pub matches: Vec<RuleMatch>,
    /// Index of the first exception that exempts the tag.
    pub exception: Option<usize>,
    /// The verdict in words, naming rules and exceptions with their patterns
    /// (`rule "semver" (^v\d+$); also matched by "all-v"`): what every host shows.
    pub why: String,
}

codes! {
    /// Why a tag is, or is not, protected.
    pub enum TagVerdict {
        /// A rule protects it.
        Rule = "rule",
        /// `protect: all` protects it.
        All = "all",
        /// An exception exempts it.
        Exception = "exception",
        /// It is a referrer tag and `referrer_tags` is `mutable`.
        Referrer = "referrer",
        /// `protect: some` and no rule matches.
        NoRule = "no-rule",
        /// `protect: none`.
        ModeNone = "mode-none",
        /// The tag or image name is malformed.
        Invalid = "invalid",
    }
}

/// One rule matching a tag, and where (character range in the tag).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleMatch {
    /// The rule's name.
    pub rule: Arc<str>,
    /// Start of the matched part of the tag.
    pub start: usize,
    /// End (exclusive) of the matched part of the tag.
    pub end: usize,
}

impl Policy {
    /// Tests one tag of one image: protected or not, by which rule, and every rule
    /// that matches with the matched span (for highlighting).
    pub fn test_tag(&self, image: &str, tag: &str) -> TagTest {
        crate::pattern::scoped(|| self.tag_test(image, tag))
    }

    /// [`Policy::test_tag`], inside its search scope.
    fn tag_test(&self, image: &str, tag: &str) -> TagTest {
        if let Err(err) = names::check_image_name(image).and_then(|()| names::check_tag(tag)) {
            let error = err.to_string();
            return TagTest {
                tag: tag.to_owned(),
                error: Some(error.clone()),
                protected: false,
                rule: None,
                because: TagVerdict::Invalid,
                matches: Vec::new(),
                exception: None,
                why: error,
            };
        }
        let imm = &self.immutability;
        let verdict = imm.verdict(image, tag);
        let matches = imm.rule_matches(image, tag);
        let exception = imm.exception_for(tag);
        TagTest {
            tag: tag.to_owned(),
            error: None,
            protected: verdict.protection().is_some(),
            rule: verdict.protection().and_then(Protection::rule_name),
            because: verdict.code(),
            why: imm.explain(verdict, &matches, exception),
            matches,
            exception,
        }
    }
}

impl Immutability {
    /// A valid tag's verdict in words; `matches` names the other rules that match,
    /// `exception` is the first exception that exempts the tag.
    fn explain(
        &self,
        verdict: Verdict<'_>,
        matches: &[RuleMatch],
        exception: Option<usize>,
    ) -> String {
        match verdict {
            Verdict::Protected(Protection::Rule(rule)) => {
                let mut text = format!("rule \"{}\" ({})", rule.name, rule.tags.display());
                let others: Vec<String> = matches
                    .iter()
                    .filter(|m| m.rule != rule.name)
                    .map(|m| format!("\"{}\"", m.rule))
                    .collect();
                if !others.is_empty() {
                    text.push_str(&format!("; also matched by {}", others.join(", ")));
                }
                text
            }
            Verdict::Protected(Protection::All) => {
                "all tags are protected (protect: all)".to_owned()
            }
            Verdict::Exempted(protection) => {
                let mut text = match exception.and_then(|i| Some((i, self.exceptions.get(i)?))) {
                    Some((index, exception)) => format!(
                        "exempted by exception {} ({})",
                        index + 1,
                        exception.display()
                    ),
                    None => "exempted by an exception".to_owned(),
                };
                if let Protection::Rule(rule) = protection {
                    text.push_str(&format!("; rule \"{}\" would protect it", rule.name));
                }
                text
            }
            Verdict::Referrer => {
                "referrer tag (sha256-…): stays mutable while referrer_tags is mutable".to_owned()
            }
            Verdict::NoRule => "no rule matches".to_owned(),
            Verdict::ModeNone => "protect: none, every tag stays mutable".to_owned(),
        }
    }
}
