//! The matcher behind a selector: plain byte comparisons for the shapes most rules
//! take — an exact name (`^prod$`, `latest`), a list of names (`^(staging|prod)$`,
//! `["rc", "test"]`), a prefix (`^release-.*$`, `team-a/**`, `dev-*`), a literal
//! anywhere (`prod`) — and the regex engine for everything else.
//!
//! The shape is read off the pattern's parsed form, so every selector goes through
//! the same parser and validation; only the (costly) build of a regex engine is
//! skipped when a comparison does the same job. Matchers only ever see validated
//! names, whose bytes are `[A-Za-z0-9._/-]`, which is what makes a class such as
//! `[^/]` or `.` equivalent to "any name byte but `/`" or "any name byte".

use crate::pattern::{self, Found, PatternError, Regex};
use regex_automata::nfa::thompson::WhichCaptures;
use regex_syntax::hir::{Class, Hir, HirKind, Look};
use std::ops::Range;

/// How a selector's pattern is matched.
#[derive(Debug, Clone)]
pub(crate) enum Matcher {
    /// Every name matches.
    Any,
    /// The whole name equals one of these.
    Exact(Box<[Box<[u8]>]>),
    /// The name starts with `prefix`; when `slash` is false the rest holds no `/`.
    Prefix {
        /// The literal start.
        prefix: Box<[u8]>,
        /// Whether the remainder may contain `/`.
        slash: bool,
    },
    /// The name contains the literal somewhere (an unanchored regex literal).
    Contains(Box<[u8]>),
    /// Anything else: the regex engine, behind a check of the first byte.
    Regex {
        /// The engine, built with the implicit whole-match group only, so the
        /// pattern tester can ask where it matched without building it again
        /// (a second build at the first tag test once cost a heavy policy 170 ms
        /// of the component's per-decision budget).
        regex: Regex,
        /// For a start-anchored pattern: the bytes a match can begin with.
        first_bytes: Option<ByteSet>,
    },
    /// A matcher whose every search fails, to hold each use of a selector to
    /// the answer that fails closed.
    #[cfg(test)]
    Failing,
}

impl Matcher {
    /// Chooses the cheapest matcher equivalent to `hir` on valid names.
    pub(crate) fn new(hir: &Hir) -> Result<Matcher, PatternError> {
        if let Some(simple) = simple(hir) {
            return Ok(simple);
        }
        Ok(Matcher::Regex {
            regex: pattern::build(hir, WhichCaptures::Implicit)?,
            first_bytes: first_bytes(hir),
        })
    }

    /// The regex engine, when the pattern needed one.
    pub(crate) fn regex(&self) -> Option<&Regex> {
        match self {
            Matcher::Regex { regex, .. } => Some(regex),
            _ => None,
        }
    }

    /// The bytes a matching name can begin with, when the matcher knows them
    /// (every match is anchored at the start and none is empty): the set a
    /// selector checks inline before calling the matcher at all.
    pub(crate) fn lead(&self) -> Option<ByteSet> {
        let mut set = ByteSet::default();
        match self {
            Matcher::Exact(names) => {
                for name in names.iter() {
                    set.insert(*name.first()?);
                }
                Some(set)
            }
            Matcher::Prefix { prefix, .. } => {
                set.insert(*prefix.first()?);
                Some(set)
            }
            Matcher::Regex { first_bytes, .. } => *first_bytes,
            Matcher::Any | Matcher::Contains(_) => None,
            #[cfg(test)]
            Matcher::Failing => None,
        }
    }

    /// Where a plain comparison matches `name` (leftmost-first, as the regex
    /// engine would report it), without an engine: an exact name or a prefix
    /// is anchored at both ends, so it matches the whole name; a literal
    /// matches at its first occurrence. `None` when only an engine can tell
    /// ([`Matcher::Any`] may match an empty or a partial span, a regex is one).
    pub(crate) fn span(&self, name: &[u8]) -> Option<Option<Range<usize>>> {
        match self {
            Matcher::Exact(_) | Matcher::Prefix { .. } => {
                Some(self.is_match(name).or_match().then_some(0..name.len()))
            }
            Matcher::Contains(needle) if needle.is_empty() => Some(Some(0..0)),
            Matcher::Contains(needle) => Some(
                name.windows(needle.len())
                    .position(|w| w == &**needle)
                    .map(|at| at..at + needle.len()),
            ),
            Matcher::Any | Matcher::Regex { .. } => None,
            #[cfg(test)]
            Matcher::Failing => None,
        }
    }

    /// Whether the pattern matches `name` (partial match for regexes; globs are
    /// anchored). Only a regex engine can fail to answer ([`Found::Unknown`]).
    #[inline]
    pub(crate) fn is_match(&self, name: &[u8]) -> Found {
        match self {
            Matcher::Any => Found::Match,
            Matcher::Exact(names) => Found::from_bool(names.iter().any(|n| **n == *name)),
            // The first bytes compared inline: a rule's repository prefix
            // (`team-a/`, `mirror/`) mostly differs from the image's there, and
            // the walk over a policy's rules then never calls `memcmp`.
            Matcher::Prefix { prefix, slash } => Found::from_bool(
                prefix
                    .first()
                    .is_none_or(|first| name.first() == Some(first))
                    && name
                        .strip_prefix(&**prefix)
                        .is_some_and(|rest| *slash || !rest.contains(&b'/')),
            ),
            Matcher::Contains(needle) => Found::from_bool(
                needle.is_empty() || name.windows(needle.len()).any(|w| w == &**needle),
            ),
            Matcher::Regex { regex, first_bytes } => match (first_bytes, name.first()) {
                (Some(set), Some(&first)) if !set.contains(first) => Found::NoMatch,
                _ => regex.search(name),
            },
            #[cfg(test)]
            Matcher::Failing => Found::Unknown,
        }
    }
}

/// The comparison `hir` amounts to, if it is one of the simple shapes.
fn simple(hir: &Hir) -> Option<Matcher> {
    let items: &[Hir] = match hir.kind() {
        HirKind::Concat(items) => items,
        _ => std::slice::from_ref(hir),
    };
    let (anchored, inner) = match items {
        [start, inner @ .., end] if is_look(start, Look::Start) && is_look(end, Look::End) => {
            (true, inner)
        }
        _ => (false, items),
    };
    if !anchored {
        // Unanchored: a lone literal, or something matching the empty string everywhere.
        return match inner {
            [] => Some(Matcher::Any),
            [one] => match one.kind() {
                HirKind::Literal(lit) => Some(Matcher::Contains(lit.0.clone())),
                HirKind::Empty => Some(Matcher::Any),
                HirKind::Repetition(rep) if rep.min == 0 && !has_look(one) => Some(Matcher::Any),
                _ => None,
            },
            _ => None,
        };
    }
    match inner {
        [one] => {
            let one = unwrap_capture(one);
            match one.kind() {
                HirKind::Literal(lit) => Some(Matcher::Exact(Box::new([lit.0.clone()]))),
                HirKind::Alternation(branches) => branches
                    .iter()
                    .map(|b| match unwrap_capture(b).kind() {
                        HirKind::Literal(lit) => Some(lit.0.clone()),
                        _ => None,
                    })
                    .collect::<Option<Box<[_]>>>()
                    .map(Matcher::Exact),
                HirKind::Repetition(_) => rest_class(one).map(|slash| Matcher::Prefix {
                    prefix: Box::default(),
                    slash,
                }),
                _ => None,
            }
        }
        [literal, rest] => match unwrap_capture(literal).kind() {
            HirKind::Literal(lit) => {
                rest_class(unwrap_capture(rest)).map(|slash| Matcher::Prefix {
                    prefix: lit.0.clone(),
                    slash,
                })
            }
            _ => None,
        },
        _ => None,
    }
}

fn is_look(hir: &Hir, look: Look) -> bool {
    matches!(hir.kind(), HirKind::Look(l) if *l == look)
}

fn has_look(hir: &Hir) -> bool {
    !hir.properties().look_set().is_empty()
}

fn unwrap_capture(hir: &Hir) -> &Hir {
    match hir.kind() {
        HirKind::Capture(capture) => unwrap_capture(&capture.sub),
        _ => hir,
    }
}

/// For `X*` where X is a class: `Some(true)` when X holds every name byte (`.*`,
/// `**`), `Some(false)` when it holds every name byte but `/` (`*`, `[^/]*`).
fn rest_class(hir: &Hir) -> Option<bool> {
    let HirKind::Repetition(rep) = hir.kind() else {
        return None;
    };
    if rep.min != 0 || rep.max.is_some() {
        return None;
    }
    let contains = |byte: u8| match rep.sub.kind() {
        HirKind::Class(Class::Bytes(class)) => class
            .ranges()
            .iter()
            .any(|r| (r.start()..=r.end()).contains(&byte)),
        HirKind::Class(Class::Unicode(class)) => class
            .ranges()
            .iter()
            .any(|r| (r.start()..=r.end()).contains(&char::from(byte))),
        _ => false,
    };
    let name_bytes = || {
        (0u8..=127).filter(|&b| {
            crate::names::is_image_name_char(char::from(b))
                || crate::names::is_tag_char(char::from(b))
        })
    };
    if !name_bytes().filter(|&b| b != b'/').all(contains) {
        return None;
    }
    Some(contains(b'/'))
}

/// The bytes every match of a start-anchored pattern can begin with, when they can
/// be known (otherwise no cheap pre-check exists): a pattern that can match the
/// empty name has none. Read off the IR in one walk; the literal extractor the
/// regex engine uses gave the same sets at a few times the cost of a load.
fn first_bytes(hir: &Hir) -> Option<ByteSet> {
    let props = hir.properties();
    if !props.look_set_prefix().contains(Look::Start) || props.minimum_len() == Some(0) {
        return None;
    }
    leading(hir)
}

/// The bytes a non-empty match of `hir` can begin with (a superset is fine:
/// it only keeps a search from running); `None` when unknown.
fn leading(hir: &Hir) -> Option<ByteSet> {
    let mut set = ByteSet::default();
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => {}
        HirKind::Literal(literal) => {
            if let Some(&first) = literal.0.first() {
                set.insert(first);
            }
        }
        HirKind::Class(Class::Bytes(class)) => {
            for range in class.ranges() {
                (range.start()..=range.end()).for_each(|byte| set.insert(byte));
            }
        }
        HirKind::Class(Class::Unicode(class)) => {
            for range in class.ranges() {
                let (start, end) = (
                    u8::try_from(range.start()).ok(),
                    u8::try_from(range.end()).ok(),
                );
                let (Some(start), Some(end)) = (start, end) else {
                    return None;
                };
                if !end.is_ascii() {
                    return None;
                }
                (start..=end).for_each(|byte| set.insert(byte));
            }
        }
        HirKind::Repetition(repetition) => return leading(&repetition.sub),
        HirKind::Capture(capture) => return leading(&capture.sub),
        HirKind::Alternation(branches) => {
            for branch in branches {
                set.extend(leading(branch)?);
            }
        }
        HirKind::Concat(items) => {
            for item in items {
                set.extend(leading(item)?);
                if item.properties().minimum_len() != Some(0) {
                    break;
                }
            }
        }
    }
    Some(set)
}

/// A set of bytes, as a 256-bit table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ByteSet([u64; 4]);

impl ByteSet {
    /// Adds every byte of `other`.
    fn extend(&mut self, other: ByteSet) {
        for (word, more) in self.0.iter_mut().zip(other.0) {
            *word |= more;
        }
    }

    fn insert(&mut self, byte: u8) {
        if let Some(word) = self.0.get_mut(usize::from(byte >> 6)) {
            *word |= 1 << (byte & 63);
        }
    }

    /// Whether `byte` is in the set.
    #[inline]
    pub(crate) fn contains(&self, byte: u8) -> bool {
        self.0
            .get(usize::from(byte >> 6))
            .is_some_and(|word| word & (1 << (byte & 63)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(source: &str) -> Matcher {
        Matcher::new(&pattern::parse(source).unwrap().hir).unwrap()
    }

    fn glob(globs: &[&str]) -> Matcher {
        let globs: Vec<String> = globs.iter().map(|g| (*g).to_owned()).collect();
        matcher(&crate::glob::to_regex(&globs).unwrap())
    }

    #[test]
    fn shapes() {
        assert!(matches!(matcher("^prod$"), Matcher::Exact(_)));
        assert!(matches!(matcher("^(staging|prod)$"), Matcher::Exact(_)));
        assert!(matches!(
            matcher("^release-.*$"),
            Matcher::Prefix { slash: true, .. }
        ));
        assert!(matches!(matcher("prod"), Matcher::Contains(_)));
        assert!(matches!(matcher(""), Matcher::Any));
        assert!(matches!(matcher(".*"), Matcher::Any));
        assert!(matches!(matcher(r"^v\d+$"), Matcher::Regex { .. }));
        assert!(matches!(
            glob(&["team-a/**"]),
            Matcher::Prefix { slash: true, .. }
        ));
        assert!(matches!(
            glob(&["dev-*"]),
            Matcher::Prefix { slash: false, .. }
        ));
        assert!(matches!(
            glob(&["rc", "test", "nightly"]),
            Matcher::Exact(_)
        ));
        assert!(matches!(glob(&["**"]), Matcher::Prefix { slash: true, .. }));
    }

    /// The first-byte pre-check never turns away a name the engine matches.
    #[test]
    fn first_bytes_hold_every_match() {
        let sources = [
            r"^v\d+\.\d+\.\d+$",
            r"^(staging|prod)-\d+",
            r"^(?:a?b*)c",
            r"^[a-c]?[x-z]+$",
            r"^(?:)x",
            r"^\bv1",
            r"^(?:v|)1",
            r"^.{0,3}z",
        ];
        let names = [
            "v1.2.3",
            "prod-1",
            "staging-22",
            "c",
            "bc",
            "abbc",
            "x",
            "by",
            "zz",
            "v1",
            "1",
            "abz",
            "z",
            "q",
            "",
        ];
        for source in sources {
            let hir = pattern::parse(source).unwrap().hir;
            let engine = pattern::build(&hir, WhichCaptures::None).unwrap();
            let set = first_bytes(&hir);
            for name in names {
                if engine.search(name.as_bytes()) == Found::Match {
                    let first = name.as_bytes().first();
                    assert!(
                        set.is_none_or(|set| first.is_some_and(|&b| set.contains(b))),
                        "{source} on {name}"
                    );
                }
            }
        }
        assert!(first_bytes(&pattern::parse(r"^v\d+$").unwrap().hir).is_some());
        assert!(first_bytes(&pattern::parse(r"^v?$").unwrap().hir).is_none());
    }

    #[test]
    fn simple_shapes_agree_with_the_regex_engine() {
        let names = [
            "prod",
            "preprod",
            "prod-old",
            "staging",
            "release-1",
            "release-",
            "releas",
            "team-a/web",
            "team-a/web/api",
            "team-a",
            "dev-1",
            "dev-1/x",
            "rc",
            "test",
            "nightly",
            "x",
            "v1",
            "preprod-prod",
            "",
        ];
        let sources = [
            "^prod$",
            "^(staging|prod)$",
            "^release-.*$",
            "prod",
            "",
            ".*",
            "^$",
            "^(prod)$",
            "^release-[^/]*$",
        ];
        let globs: [&[&str]; 5] = [
            &["team-a/**"],
            &["dev-*"],
            &["rc", "test", "nightly"],
            &["**"],
            &["*"],
        ];
        let mut cases: Vec<String> = sources.iter().map(|s| (*s).to_owned()).collect();
        for g in globs {
            let g: Vec<String> = g.iter().map(|s| (*s).to_owned()).collect();
            cases.push(crate::glob::to_regex(&g).unwrap());
        }
        for source in &cases {
            let fast = matcher(source);
            let engine =
                pattern::build(&pattern::parse(source).unwrap().hir, WhichCaptures::None).unwrap();
            let finder = pattern::build(
                &pattern::parse(source).unwrap().hir,
                WhichCaptures::Implicit,
            )
            .unwrap();
            for name in names {
                assert_eq!(
                    fast.is_match(name.as_bytes()),
                    engine.search(name.as_bytes()),
                    "{source} on {name}"
                );
                if let (Some(lead), Some(&first)) = (fast.lead(), name.as_bytes().first()) {
                    assert!(
                        lead.contains(first) || engine.search(name.as_bytes()) == Found::NoMatch,
                        "{source} on {name}"
                    );
                }
                if let Some(span) = fast.span(name.as_bytes()) {
                    assert_eq!(Ok(span), finder.find(name.as_bytes()), "{source} on {name}");
                }
            }
        }
    }
}
