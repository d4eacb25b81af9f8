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

/// How a message names a protection: `rule "semver"` or `all tags are protected`.
impl std::fmt::Display for Protection<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Protection::All => f.write_str("all tags are protected"),
            Protection::Rule(rule) => write!(f, "rule \"{}\"", rule.name),
        }
    }
}

impl Immutability {
    /// Whether `tag` of `image` is protected once it exists (both already validated).
    #[inline]
    pub(crate) fn protection(&self, image: &str, tag: &str) -> Option<Protection<'_>> {
        match self.protect {
            Protect::None => return None,
            Protect::All | Protect::Some => {}
        }
        if self.referrer_tags == ReferrerTags::Mutable && names::is_referrer_tag(tag) {
            return None;
        }
        let protection = match self.protect {
            Protect::All => Protection::All,
            _ => Protection::Rule(
                self.rules
                    .iter()
                    .find(|r| r.applies_to(image) && r.tags.matches(tag))?,
            ),
        };
        if self.exceptions.iter().any(|e| e.matches(tag)) {
            return None;
        }
        Some(protection)
    }

    /// What could protect some tag of `image` whose tags are unknown (fail closed).
    pub(crate) fn could_protect(&self, image: &str) -> Option<Protection<'_>> {
        match self.protect {
            Protect::None => None,
            Protect::All => Some(Protection::All),
            Protect::Some => self
                .rules
                .iter()
                .find(|r| r.applies_to(image))
                .map(Protection::Rule),
        }
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
        let mut test = TagTest {
            tag: tag.to_owned(),
            error: None,
            protected: false,
            rule: None,
            because: TagVerdict::Invalid,
            matches: Vec::new(),
            exception: None,
            why: String::new(),
        };
        if let Err(err) = names::check_image_name(image).and_then(|()| names::check_tag(tag)) {
            let err = err.to_string();
            test.why.clone_from(&err);
            test.error = Some(err);
            return test;
        }
        let imm = &self.immutability;
        if imm.protect == crate::document::Protect::Some {
            test.matches = imm
                .rules
                .iter()
                .filter(|r| r.applies_to(image))
                .filter_map(|r| {
                    r.tags.find(tag).map(|span| RuleMatch {
                        rule: Arc::clone(&r.name),
                        start: span.start,
                        end: span.end,
                    })
                })
                .collect();
        }
        test.exception = imm.exceptions.iter().position(|e| e.matches(tag));
        let protection = imm.protection(image, tag);
        test.protected = protection.is_some();
        test.rule = protection.and_then(Protection::rule_name);
        test.because = match (protection, imm.protect) {
            (Some(Protection::All), _) => TagVerdict::All,
            (Some(Protection::Rule(_)), _) => TagVerdict::Rule,
            (None, Protect::None) => TagVerdict::ModeNone,
            (None, _)
                if imm.referrer_tags == ReferrerTags::Mutable && names::is_referrer_tag(tag) =>
            {
                TagVerdict::Referrer
            }
            (None, Protect::All) => TagVerdict::Exception,
            (None, _) if test.exception.is_some() && !test.matches.is_empty() => {
                TagVerdict::Exception
            }
            (None, _) => TagVerdict::NoRule,
        };
        test.why = self.explain(&test);
        test
    }

    /// A valid tag's verdict in words.
    fn explain(&self, test: &TagTest) -> String {
        let imm = &self.immutability;
        let first_match = test.matches.first().map(|m| &*m.rule);
        match test.because {
            TagVerdict::Rule => {
                let rule = test.rule.as_deref().or(first_match).unwrap_or_default();
                let mut text = format!("rule \"{rule}\"");
                if let Some(r) = imm.rules.iter().find(|r| &*r.name == rule) {
                    text.push_str(&format!(" ({})", r.tags.display()));
                }
                let others: Vec<String> = test
                    .matches
                    .iter()
                    .filter(|m| &*m.rule != rule)
                    .map(|m| format!("\"{}\"", m.rule))
                    .collect();
                if !others.is_empty() {
                    text.push_str(&format!("; also matched by {}", others.join(", ")));
                }
                text
            }
            TagVerdict::All => "all tags are protected (protect: all)".to_owned(),
            TagVerdict::Exception => {
                let mut text = match test
                    .exception
                    .and_then(|i| Some((i, imm.exceptions.get(i)?)))
                {
                    Some((index, exception)) => {
                        format!(
                            "exempted by exception {} ({})",
                            index + 1,
                            exception.display()
                        )
                    }
                    None => "exempted by an exception".to_owned(),
                };
                if let Some(rule) = first_match {
                    text.push_str(&format!("; rule \"{rule}\" would protect it"));
                }
                text
            }
            TagVerdict::Referrer => {
                "referrer tag (sha256-…): stays mutable while referrer_tags is mutable".to_owned()
            }
            TagVerdict::NoRule => "no rule matches".to_owned(),
            TagVerdict::ModeNone => "protect: none, every tag stays mutable".to_owned(),
            TagVerdict::Invalid => test.error.clone().unwrap_or_default(),
        }
    }
}
