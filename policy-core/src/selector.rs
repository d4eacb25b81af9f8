//! Compiled tag and repository selectors.

use crate::document;
use crate::glob;
use crate::pattern::{self, PatternError};
use regex_automata::meta::Regex;
use regex_automata::nfa::thompson::WhichCaptures;
use regex_syntax::hir::literal::{ExtractKind, Extractor};
use regex_syntax::hir::{Hir, Look};
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
    regex: Regex,
    hir: Hir,
    display: Arc<str>,
    /// For a pattern anchored at the start: the bytes a match can begin with.
    /// Checking them first spares the regex engine for most rules a tag cannot match.
    first_bytes: Option<ByteSet>,
    globs: Box<[Box<str>]>,
    /// A matcher that reports where it matched, built on the first `find` (only the
    /// pattern tester asks), so loading and evaluating never pay for it.
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
    /// Compiles a selector as written in a policy.
    pub fn compile(source: &document::Selector) -> Result<Selector, SelectorError> {
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
        let compiled = pattern::compile(&regex_source).map_err(|mut error| {
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
            regex: compiled.regex,
            first_bytes: first_bytes(&compiled.hir),
            finder: OnceLock::new(),
            globs: match source {
                document::Selector::Regex(_) => Box::default(),
                document::Selector::Matching(globs) | document::Selector::Excluding(globs) => {
                    globs.iter().map(|g| Box::from(g.as_str())).collect()
                }
            },
            hir: compiled.hir,
            display: display(source).into(),
        })
    }

    /// Whether the selector selects `name` (an already validated tag or image name).
    #[inline]
    pub fn matches(&self, name: &str) -> bool {
        let name = name.as_bytes();
        let hit = match (self.first_bytes, name.first()) {
            (Some(set), Some(&first)) if !set.contains(first) => false,
            _ => self.regex.is_match(name),
        };
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
                let finder = self
                    .finder
                    .get_or_init(|| pattern::build(&self.hir, WhichCaptures::Implicit).ok());
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

    /// The compiled pattern's IR (for a glob list, of the list's translation).
    pub fn hir(&self) -> &Hir {
        &self.hir
    }
}

/// The bytes every match of a start-anchored pattern can begin with, when they can
/// be known from the pattern's literal prefixes (otherwise no cheap pre-check exists).
fn first_bytes(hir: &Hir) -> Option<ByteSet> {
    if !hir.properties().look_set_prefix().contains(Look::Start) {
        return None;
    }
    let mut extractor = Extractor::new();
    extractor.kind(ExtractKind::Prefix).limit_total(256);
    let seq = extractor.extract(hir);
    let mut set = ByteSet::default();
    for literal in seq.literals()? {
        set.insert(*literal.as_bytes().first()?);
    }
    Some(set)
}

/// A set of bytes, as a 256-bit table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ByteSet([u64; 4]);

impl ByteSet {
    fn insert(&mut self, byte: u8) {
        if let Some(word) = self.0.get_mut(usize::from(byte >> 6)) {
            *word |= 1 << (byte & 63);
        }
    }

    #[inline]
    fn contains(&self, byte: u8) -> bool {
        self.0
            .get(usize::from(byte >> 6))
            .is_some_and(|word| word & (1 << (byte & 63)) != 0)
    }
}

/// The text shown as `pattern` in decisions: the regex itself, or the globs joined
/// by commas as Harbor shows them, prefixed `excluding` when they exclude.
pub fn display(source: &document::Selector) -> String {
    match source {
        document::Selector::Regex(re) => re.clone(),
        document::Selector::Matching(globs) => globs.join(","),
        document::Selector::Excluding(globs) => format!("excluding {}", globs.join(",")),
    }
}

/// The length a selector counts against `max_pattern_length`, in characters:
/// a regex's length, or a glob list joined by commas (as Harbor stores it).
pub fn pattern_length(source: &document::Selector) -> usize {
    match source {
        document::Selector::Regex(re) => re.chars().count(),
        document::Selector::Matching(globs) | document::Selector::Excluding(globs) => {
            globs.iter().map(|g| g.chars().count()).sum::<usize>() + globs.len().saturating_sub(1)
        }
    }
}
