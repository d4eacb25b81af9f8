//! Compiled tag and repository selectors.

use crate::document;
use crate::glob;
use crate::matcher::Matcher;
use crate::pattern::Regex;
use crate::pattern::{self, PatternError};
use regex_automata::nfa::thompson::WhichCaptures;
use regex_syntax::ast::Ast;
use regex_syntax::hir::Hir;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

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
    ast: Ast,
    hir: Hir,
    display: Arc<str>,
    globs: Box<[Box<str>]>,
    /// For a selector whose matcher is a plain comparison: a regex that reports
    /// where it matched, built on the first `find` (only the pattern tester asks).
    /// A matcher with a regex engine answers `find` itself.
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
            matcher,
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

    /// Whether the selector selects `name` (an already validated tag or image name).
    #[inline]
    pub fn matches(&self, name: &str) -> bool {
        let hit = self.matcher.is_match(name.as_bytes());
        match self.kind {
            SelectorKind::Excluding => !hit,
            SelectorKind::Regex | SelectorKind::Matching => hit,
        }
    }

    /// The part of `name` the selector matched, for highlighting: the leftmost regex
    /// match, or the whole name for globs.
    pub fn find(&self, name: &str) -> Option<Range<usize>> {
        match self.kind {
            SelectorKind::Regex => {
                // The matcher's own engine when it has one; a simple matcher's
                // pattern is cheap to build (it is a literal, a list or a prefix).
                let finder = match self.matcher.regex() {
                    Some(regex) => Some(regex),
                    None => self
                        .finder
                        .get_or_init(|| pattern::build(&self.hir, WhichCaptures::Implicit).ok())
                        .as_ref(),
                };
                match finder {
                    Some(finder) => finder.find(name.as_bytes()).map(|m| m.range()),
                    // Built once already at load, so this cannot fail; stay correct anyway.
                    None => self.matches(name).then_some(0..name.len()),
                }
            }
            _ => self.matches(name).then_some(0..name.len()),
        }
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
