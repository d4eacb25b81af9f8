//! Compiled tag and repository selectors.

use crate::document;
use crate::glob;
use crate::matcher::{ByteSet, Matcher};
use crate::pattern::{self, Found, PatternError, Regex};
use regex_automata::nfa::thompson::WhichCaptures;
use regex_syntax::ast::Ast;
use regex_syntax::hir::Hir;
use std::ops::Range;
use std::sync::Arc;
#[cfg(feature = "fast-matching")]
use std::sync::OnceLock;

/// How a selector decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectorKind {
    /// A regex, partial match.
    Regex,
    /// Any of a list of globs.
    Matching,
    /// None of a list of globs.
    Excluding,
}

/// A selector compiled once at load.
#[derive(Debug, Clone)]
pub struct Selector {
    kind: SelectorKind,
    matcher: Matcher,
    /// The bytes a name the matcher matches can begin with, when known
    /// ([`Matcher::lead`]): checked inline, so a walk over a policy's rules
    /// passes by the repository selectors that cannot match the image
    /// (`team-a/**` for `apps/web`) with one table look-up each.
    lead: Option<ByteSet>,
    ast: Ast,
    hir: Hir,
    display: Arc<str>,
    globs: Box<[Box<str>]>,
    /// For a selector whose matcher matches everything (`.*`, `a*`): a regex
    /// that reports where it matched, built on the first `find` (only the
    /// pattern tester asks). Other matchers answer `find` themselves. Builds
    /// without `fast-matching` (the WebAssembly ones) keep nothing built after
    /// load: they build this regex for each `find` and drop it (a tiny
    /// pattern), since an engine built during a call and kept would keep that
    /// call's memory arena alive in the component.
    #[cfg(feature = "fast-matching")]
    finder: OnceLock<Option<Regex>>,
}

/// A selector that did not compile: which glob of the list (if a list), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorError {
    /// Index of the offending glob in a `matching`/`excluding` list.
    pub glob: Option<usize>,
    /// The problem, located inside the pattern.
    pub error: PatternError,
}

impl Selector {
    /// Compiles a selector whose pattern must also fit in `budget` (the weight the
    /// policy's patterns have left, see [`pattern::weight`]); the budget shrinks by
    /// the pattern's weight. Nothing is built when the pattern does not fit.
    pub fn compile_within(
        source: &document::Selector,
        budget: &mut u64,
    ) -> Result<Selector, SelectorError> {
        let (kind, regex_source) = match source {
            document::Selector::Regex(re) => (SelectorKind::Regex, re.clone()),
            document::Selector::Matching(globs) | document::Selector::Excluding(globs) => {
                let kind = if matches!(source, document::Selector::Matching(_)) {
                    SelectorKind::Matching
                } else {
                    SelectorKind::Excluding
                };
                let translated = glob::to_regex(globs).map_err(|(index, error)| SelectorError {
                    glob: Some(index),
                    error,
                })?;
                (kind, translated)
            }
        };
        let parsed = pattern::parse(&regex_source).and_then(|p| {
            let weight = pattern::weight(&p.hir);
            if weight > pattern::REGEX_WEIGHT_LIMIT {
                return Err(pattern::too_heavy(
                    weight,
                    pattern::REGEX_WEIGHT_LIMIT,
                    "the pattern",
                ));
            }
            if weight > *budget {
                return Err(PatternError {
                    kind: pattern::PatternErrorKind::RegexTooLarge,
                    message: format!(
                        "the policy's patterns together may weigh at most {} units of compiled program; this one weighs {weight} and only {} are left",
                        crate::Limits::MAX_POLICY_WEIGHT,
                        *budget
                    ),
                    offset: None,
                });
            }
            *budget -= weight;
            Ok((Matcher::new(&p.hir)?, p))
        });
        let (matcher, pattern::Parsed { ast, hir }) = parsed.map_err(|mut error| {
            // An offset into a glob list's translation means nothing to its author.
            if kind != SelectorKind::Regex {
                error.offset = None;
                if error.kind == pattern::PatternErrorKind::RegexSyntax {
                    error.kind = pattern::PatternErrorKind::GlobSyntax;
                }
            }
            SelectorError { glob: None, error }
        })?;
        Ok(Selector {
            kind,
            lead: matcher.lead(),
            matcher,
            #[cfg(feature = "fast-matching")]
            finder: OnceLock::new(),
            globs: match source {
                document::Selector::Regex(_) => Box::default(),
                document::Selector::Matching(globs) | document::Selector::Excluding(globs) => {
                    globs.iter().map(|g| Box::from(g.as_str())).collect()
                }
            },
            ast,
            hir,
            display: source.display().into(),
        })
    }

    /// Whether the selector selects `name` (an already validated tag or image
    /// name). The caller turns [`Found::Unknown`] (a search that failed) into the
    /// answer that fails closed for its use.
    #[inline]
    pub fn matches(&self, name: &str) -> Found {
        match (&self.lead, name.as_bytes().first()) {
            (Some(lead), Some(&first)) if !lead.contains(first) => self.answer(Found::NoMatch),
            _ => self.search(name),
        }
    }

    /// [`Selector::matches`] past the inline check of the first byte: kept out
    /// of line, so that check costs the rule walk no call.
    #[inline(never)]
    fn search(&self, name: &str) -> Found {
        self.answer(self.matcher.is_match(name.as_bytes()))
    }

    /// The selector's answer when its pattern's answer is `hit`.
    #[inline]
    fn answer(&self, hit: Found) -> Found {
        match self.kind {
            SelectorKind::Excluding => hit.negate(),
            SelectorKind::Regex | SelectorKind::Matching => hit,
        }
    }

    /// The part of `name` a rule's tag selector matched, for highlighting: the
    /// leftmost regex match, or the whole name for globs. A search that fails
    /// reads as the whole name, as the rule's protection does ([`Found::or_match`]).
    pub fn find(&self, name: &str) -> Option<Range<usize>> {
        let whole = || self.matches(name).or_match().then_some(0..name.len());
        if self.kind != SelectorKind::Regex {
            return whole();
        }
        if let Some(span) = self.matcher.span(name.as_bytes()) {
            return span;
        }
        let found = match self.matcher.regex() {
            Some(regex) => Some(regex.find(name.as_bytes())),
            None => self.with_finder(|finder| finder.find(name.as_bytes())),
        };
        match found {
            Some(Ok(span)) => span,
            Some(Err(pattern::Unsearched)) => Some(0..name.len()),
            // Built once already at load, so this cannot fail; stay correct anyway.
            None => whole(),
        }
    }

    /// Runs `find` with the regex that reports where the pattern matched,
    /// built on first use and kept (see the `finder` field).
    #[cfg(feature = "fast-matching")]
    fn with_finder<T>(&self, find: impl FnOnce(&Regex) -> T) -> Option<T> {
        self.finder
            .get_or_init(|| pattern::build(&self.hir, WhichCaptures::Implicit).ok())
            .as_ref()
            .map(find)
    }

    /// Runs `find` with the regex that reports where the pattern matched,
    /// built for this call and dropped (see the `finder` field).
    #[cfg(not(feature = "fast-matching"))]
    fn with_finder<T>(&self, find: impl FnOnce(&Regex) -> T) -> Option<T> {
        pattern::build(&self.hir, WhichCaptures::Implicit)
            .ok()
            .as_ref()
            .map(find)
    }

    /// How the selector decides.
    pub fn kind(&self) -> SelectorKind {
        self.kind
    }

    /// The pattern as an admin reads it: the regex, or the glob list.
    pub fn display(&self) -> &Arc<str> {
        &self.display
    }

    /// The globs of a `matching`/`excluding` selector (empty for a regex).
    pub fn globs(&self) -> &[Box<str>] {
        &self.globs
    }

    /// The pattern's syntax tree (for a glob list, of the list's translation).
    pub(crate) fn ast(&self) -> &Ast {
        &self.ast
    }

    /// The compiled pattern's IR (for a glob list, of the list's translation).
    pub(crate) fn hir(&self) -> &Hir {
        &self.hir
    }

    /// A selector of `kind` whose every search fails ([`Found::Unknown`]), to
    /// hold each use to the answer that fails closed.
    #[cfg(test)]
    pub(crate) fn failing(kind: SelectorKind) -> Selector {
        Selector::with_matcher(kind, crate::matcher::Matcher::Failing)
    }

    /// A selector of `kind` around `matcher` (the pattern `x` stands for its source).
    #[cfg(test)]
    pub(crate) fn with_matcher(kind: SelectorKind, matcher: Matcher) -> Selector {
        let parsed = pattern::parse("x").unwrap_or_else(|_| unreachable!());
        Selector {
            kind,
            lead: matcher.lead(),
            matcher,
            ast: parsed.ast,
            hir: parsed.hir,
            display: Arc::from("x"),
            globs: Box::default(),
            #[cfg(feature = "fast-matching")]
            finder: OnceLock::new(),
        }
    }
}

impl document::Selector {
    /// The text shown as `pattern` in decisions: the regex itself, or the globs
    /// joined by commas as Harbor shows them, prefixed `excluding` when they exclude.
    pub fn display(&self) -> String {
        match self {
            document::Selector::Regex(re) => re.clone(),
            document::Selector::Matching(globs) => globs.join(","),
            document::Selector::Excluding(globs) => format!("excluding {}", globs.join(",")),
        }
    }

    /// The length the selector counts against `max_pattern_length`, in characters:
    /// a regex's length, or a glob list joined by commas (as Harbor stores it).
    pub fn pattern_length(&self) -> usize {
        match self {
            document::Selector::Regex(re) => re.chars().count(),
            document::Selector::Matching(globs) | document::Selector::Excluding(globs) => {
                globs.iter().map(|g| g.chars().count()).sum::<usize>()
                    + globs.len().saturating_sub(1)
            }
        }
    }
}

/// A search that fails must never read as "no match": each use of a selector
/// turns it into the answer that fails closed.
#[cfg(test)]
mod fail_closed {
    use super::{Selector, SelectorKind};
    use crate::request::{Actor, PullRequest, PushRequest, TagState};
    use crate::{Policy, Reason};

    const DIGEST: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn policy(text: &str) -> Policy {
        Policy::from_json(text).unwrap()
    }

    /// One rule (tags `v*`, repositories `acme/**`) and one exception (`v1`).
    fn one_rule() -> Policy {
        policy(
            r#"{"version": 1, "immutability": {"protect": "some",
                "rules": [{"name": "r", "tags": {"matching": ["v*"]}, "repositories": {"matching": ["acme/**"]}}],
                "exceptions": [{"matching": ["v1"]}]}}"#,
        )
    }

    fn overwrite(policy: &Policy, image: &str, tag: &str) -> Reason {
        let push = PushRequest {
            image: image.into(),
            digest: DIGEST.replace('a', "b"),
            tags: vec![TagState::existing(tag, DIGEST)],
            image_exists: true,
            actor: Actor::user("u", &[]),
        };
        policy.evaluate_push(&push).reason
    }

    #[test]
    fn a_rule_whose_tags_cannot_be_decided_protects() {
        for kind in [
            SelectorKind::Regex,
            SelectorKind::Matching,
            SelectorKind::Excluding,
        ] {
            let mut policy = one_rule();
            policy.immutability.rules[0].tags = Selector::failing(kind);
            assert_eq!(overwrite(&policy, "acme/web", "x2"), Reason::TagImmutable);
            assert!(policy.test_tag("acme/web", "x2").protected);
            assert_eq!(policy.test_tag("acme/web", "x2").matches.len(), 1);
        }
    }

    #[test]
    fn a_rule_whose_repositories_cannot_be_decided_applies() {
        let mut policy = one_rule();
        policy.immutability.rules[0].repositories = Some(Selector::failing(SelectorKind::Matching));
        assert_eq!(overwrite(&policy, "other/web", "v2"), Reason::TagImmutable);
        assert!(policy.immutability.could_protect("other/web").is_some());
    }

    #[test]
    fn an_exception_that_cannot_be_decided_exempts_nothing() {
        for kind in [SelectorKind::Matching, SelectorKind::Excluding] {
            let mut policy = one_rule();
            policy.immutability.exceptions[0] = Selector::failing(kind);
            assert_eq!(overwrite(&policy, "acme/web", "v1"), Reason::TagImmutable);
            assert_eq!(policy.test_tag("acme/web", "v1").exception, None);
        }
    }

    #[test]
    fn an_image_pattern_that_cannot_be_decided_links_nowhere() {
        let mut policy = policy(
            r#"{"version": 1, "permissions": {
                "repositories": {"a": {"write": ["user:u"]}, "b": {"admin": ["user:u"]}},
                "images": [{"pattern": "acme/**", "repository": "a"}, {"pattern": "**", "repository": "b"}]}}"#,
        );
        let pull = PullRequest {
            image: "acme/web".into(),
            actor: Actor::user("u", &[]),
        };
        assert!(policy.evaluate_pull(&pull).allowed);
        if let Some(permissions) = policy.permissions.as_mut() {
            permissions.patterns[0].0 = Selector::failing(SelectorKind::Matching);
        }
        assert_eq!(policy.evaluate_pull(&pull).reason, Reason::ImageNotLinked);
    }

    /// The bounded backtracker's own failure, provoked with a visited set too
    /// small for the name, goes through the same path.
    #[cfg(not(feature = "fast-matching"))]
    #[test]
    fn the_backtrackers_failure_protects() {
        use crate::matcher::Matcher;
        use crate::pattern::{self, Found, Regex};
        let hir = pattern::parse(r"^v\d+$").unwrap().hir;
        let tiny = Regex::with_visited_capacity(&hir, 1).unwrap();
        assert_eq!(tiny.search(b"v12"), Found::Unknown);
        assert_eq!(tiny.find(b"v12"), Err(pattern::Unsearched));
        let failing = || Matcher::Regex {
            regex: Regex::with_visited_capacity(&hir, 1).unwrap(),
            first_bytes: None,
        };
        let mut policy = one_rule();
        policy.immutability.rules[0].tags = Selector::with_matcher(SelectorKind::Regex, failing());
        assert_eq!(overwrite(&policy, "acme/web", "v12"), Reason::TagImmutable);
        assert_eq!(
            policy.test_tag("acme/web", "v12").matches[0].end,
            "v12".len()
        );
        policy.immutability.exceptions[0] = Selector::with_matcher(SelectorKind::Regex, failing());
        assert_eq!(overwrite(&policy, "acme/web", "v12"), Reason::TagImmutable);
    }

    /// The scratch the searches of a call share is gone once the call returns
    /// (the component's per-call arena must not be kept alive), and a search
    /// outside any call keeps none.
    #[cfg(not(feature = "fast-matching"))]
    #[test]
    fn no_search_scratch_outlives_a_call() {
        let policy = policy(
            r#"{"version": 1, "immutability": {"protect": "some",
                "rules": [{"name": "semver", "tags": {"regex": "^v\\d*\\d$"}},
                          {"name": "any", "tags": {"regex": "x*"}}]}}"#,
        );
        assert!(!crate::pattern::scratch_held());
        assert_eq!(overwrite(&policy, "acme/web", "v12"), Reason::TagImmutable);
        assert!(!crate::pattern::scratch_held());
        assert_eq!(policy.test_tag("acme/web", "y1").matches[0].end, 0);
        assert!(!crate::pattern::scratch_held());
        let rule = &policy.immutability.rules[0];
        assert!(
            rule.tags.matcher.regex().is_some(),
            "a search that needs scratch"
        );
        assert_eq!(rule.tags.matches("v1"), crate::pattern::Found::Match);
        assert!(!crate::pattern::scratch_held());
    }

    /// Sized for the longest valid name, even at the weight limit, the
    /// backtracker answers every search.
    #[cfg(not(feature = "fast-matching"))]
    #[test]
    fn the_backtracker_holds_the_longest_name() {
        use crate::pattern::{self, Found};
        use regex_automata::nfa::thompson::WhichCaptures;
        let longest = crate::names::MAX_IMAGE_NAME_LEN;
        for source in [r"^v\d+$", "a", r"^(?:(?:a??){8000})*?$"] {
            let hir = pattern::parse(source).unwrap().hir;
            let regex = pattern::build(&hir, WhichCaptures::Implicit).unwrap();
            assert!(regex.max_haystack_len() >= longest, "{source}");
            let name = "a".repeat(longest);
            assert_ne!(regex.search(name.as_bytes()), Found::Unknown, "{source}");
            assert!(regex.find(name.as_bytes()).is_ok(), "{source}");
        }
    }
}
