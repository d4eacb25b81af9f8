//! The matcher behind a selector: plain byte comparisons for the shapes most rules
//! take — an exact name (`^prod$`, `latest`), a list of names (`^(staging|prod)$`,
//! `["rc", "test"]`), a prefix (`^release-.*$`, `team-a/**`, `dev-*`), a literal
//! anywhere (`prod`), a run of byte classes (`^v\d+\.\d+\.\d+$`, `?.?.?`), fixed
//! pieces between stars (`v*.*.*`), and any of those (a list of globs,
//! `{prod,staging}-*`) — and the regex engine for everything else.
//!
//! The shape is read off the pattern's parsed form, so every selector goes through
//! the same parser and validation; only the (costly) build of a regex engine is
//! skipped when a comparison does the same job. Matchers only ever see validated
//! names, whose bytes are `[A-Za-z0-9._/-]`, which is what makes a class such as
//! `[^/]` or `.` equivalent to "any name byte but `/`" or "any name byte". Each
//! shape is held to the regex engine's answer (whether, and where, it matches) on
//! every short name over an alphabet of name bytes, in the tests below.

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
    /// The name starts with `prefix`, then runs of byte classes follow, each
    /// repeated between its bounds (`^v\d+\.\d+\.\d+$`, `^hotfix-\d+`,
    /// the glob `?.?.?`); with `to_end`, nothing after them. Only built for a
    /// [`Sequence`] that greedy matching decides exactly.
    Sequence(Sequence),
    /// Pieces of fixed length between stars, anchored at both ends
    /// (`v*.*.*`, `[0-9]*.[0-9]*`, `edge/*/prod`).
    Wildcard(Wildcard),
    /// Any of these (a list of globs or an alternation between `^` and `$`
    /// whose every branch has a simple shape): each matches the whole name.
    AnyOf(Box<[Matcher]>),
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
            Matcher::Sequence(sequence) => sequence.lead(),
            Matcher::Wildcard(wildcard) => wildcard.lead(),
            Matcher::AnyOf(matchers) => {
                for matcher in matchers.iter() {
                    set.extend(matcher.lead()?);
                }
                Some(set)
            }
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
            Matcher::Exact(_)
            | Matcher::Prefix { .. }
            | Matcher::Wildcard(_)
            | Matcher::AnyOf(_) => Some(self.is_match(name).or_match().then_some(0..name.len())),
            Matcher::Sequence(sequence) => Some(sequence.end(name).map(|end| 0..end)),
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
            Matcher::Sequence(sequence) => Found::from_bool(sequence.end(name).is_some()),
            Matcher::Wildcard(wildcard) => Found::from_bool(wildcard.is_match(name)),
            Matcher::AnyOf(matchers) => {
                Found::from_bool(matchers.iter().any(|m| m.is_match(name) == Found::Match))
            }
            Matcher::Regex { regex, first_bytes } => match (first_bytes, name.first()) {
                (Some(set), Some(&first)) if !set.contains(first) => Found::NoMatch,
                _ => regex.search(name),
            },
            #[cfg(test)]
            Matcher::Failing => Found::Unknown,
        }
    }
}

/// How many matchers an alternation may expand into ([`Matcher::AnyOf`]);
/// a pattern needing more goes to the regex engine.
const MAX_ALTERNATIVES: usize = 32;

/// The comparison `hir` amounts to, if it is one of the simple shapes.
fn simple(hir: &Hir) -> Option<Matcher> {
    let mut budget = MAX_ALTERNATIVES;
    simple_within(hir, &mut budget)
}

/// [`simple`], expanding alternations into at most `budget` more matchers.
fn simple_within(hir: &Hir, budget: &mut usize) -> Option<Matcher> {
    let items: &[Hir] = match hir.kind() {
        HirKind::Concat(items) => items,
        _ => std::slice::from_ref(hir),
    };
    let (start, rest) = match items {
        [first, rest @ ..] if is_look(first, Look::Start) => (true, rest),
        _ => (false, items),
    };
    let (inner, end) = match rest {
        [inner @ .., last] if is_look(last, Look::End) => (inner, true),
        _ => (rest, false),
    };
    match (start, end) {
        (true, true) => whole(inner, budget)
            .or_else(|| Sequence::new(inner, true).map(Matcher::Sequence))
            .or_else(|| Wildcard::new(inner).map(Matcher::Wildcard)),
        (true, false) => Sequence::new(inner, false).map(Matcher::Sequence),
        // Unanchored: a lone literal, or something matching the empty string everywhere.
        (false, false) => match inner {
            [] => Some(Matcher::Any),
            [one] => match one.kind() {
                HirKind::Literal(lit) => Some(Matcher::Contains(lit.0.clone())),
                HirKind::Empty => Some(Matcher::Any),
                HirKind::Repetition(rep) if rep.min == 0 && !has_look(one) => Some(Matcher::Any),
                _ => None,
            },
            _ => None,
        },
        (false, true) => None,
    }
}

/// The matcher for `inner` between `^` and `$` when it is a list of names, a
/// prefix, or an alternation of such shapes.
fn whole(inner: &[Hir], budget: &mut usize) -> Option<Matcher> {
    let shape = match inner {
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
    };
    shape.or_else(|| {
        // An alternation (`{prod,staging}-*`, `mobile/{ios,android}/*`, or
        // what the parser leaves of a list of globs once it lifts their common
        // start out): one matcher per branch, with what comes before and after.
        let at = inner
            .iter()
            .position(|item| matches!(unwrap_capture(item).kind(), HirKind::Alternation(_)))?;
        let HirKind::Alternation(branches) = unwrap_capture(inner.get(at)?).kind() else {
            return None;
        };
        alternatives(branches, inner.get(..at)?, inner.get(at + 1..)?, budget)
    })
}

/// [`Matcher::AnyOf`] the branches, each between `before` and `after` and
/// anchored at both ends, when every one has a simple shape and they fit in
/// `budget`.
fn alternatives(
    branches: &[Hir],
    before: &[Hir],
    after: &[Hir],
    budget: &mut usize,
) -> Option<Matcher> {
    *budget = budget.checked_sub(branches.len())?;
    branches
        .iter()
        .map(|branch| {
            let mut items = Vec::with_capacity(before.len() + after.len() + 3);
            items.push(Hir::look(Look::Start));
            items.extend(before.iter().cloned());
            items.push(branch.clone());
            items.extend(after.iter().cloned());
            items.push(Hir::look(Look::End));
            simple_within(&Hir::concat(items), budget)
        })
        .try_fold(Vec::new(), |mut all, matcher| {
            match matcher? {
                Matcher::AnyOf(more) => all.extend(more),
                one => all.push(one),
            }
            Some(all)
        })
        .map(|all| Matcher::AnyOf(all.into()))
}

/// One step of a [`Sequence`]: a byte of `set`, between `min` and `max` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Step {
    set: ByteSet,
    min: u32,
    max: u32,
}

impl Step {
    /// Exactly the byte `byte`, once.
    fn byte(byte: u8) -> Step {
        let mut set = ByteSet::default();
        set.insert(byte);
        Step {
            set,
            min: 1,
            max: 1,
        }
    }

    /// Whether the step is one given byte, once.
    fn is_byte(&self) -> bool {
        self.min == 1 && self.max == 1 && self.set.single().is_some()
    }

    /// Whether the step takes exactly one byte.
    fn is_once(&self) -> bool {
        self.min == 1 && self.max == 1
    }
}

/// A start-anchored pattern that is a literal prefix and then a run of
/// [`Step`]s, none of which can take a byte the steps after it would need:
/// each step then takes every byte it can (up to its maximum), and that is
/// exactly what any match does, so one pass with no backtracking decides, and
/// the bytes taken are the regex engine's (greedy, leftmost-first) match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sequence {
    prefix: Box<[u8]>,
    steps: Box<[Step]>,
    /// Anchored at the end (`$`): the steps must take the whole name.
    to_end: bool,
}

impl Sequence {
    /// The sequence `items` (what follows `^`) amounts to, if greedy matching
    /// decides it exactly.
    fn new(items: &[Hir], to_end: bool) -> Option<Sequence> {
        let mut steps = Vec::new();
        for item in items {
            push_steps(item, &mut steps)?;
        }
        let fixed = steps.iter().take_while(|step| step.is_byte()).count();
        let prefix: Vec<u8> = steps
            .drain(..fixed)
            .filter_map(|s| s.set.single())
            .collect();
        let name_bytes = name_bytes();
        for (at, step) in steps.iter().enumerate() {
            if step.min == step.max {
                continue;
            }
            // The bytes the next steps can start with: up to the first that must take one.
            let mut next = ByteSet::default();
            for later in steps.get(at + 1..).unwrap_or_default() {
                next.extend(later.set);
                if later.min > 0 {
                    break;
                }
            }
            if step.set.intersect(next).intersect(name_bytes) != ByteSet::default() {
                return None;
            }
        }
        Some(Sequence {
            prefix: prefix.into(),
            steps: steps.into(),
            to_end,
        })
    }

    /// Where the match of `name` ends, if it matches.
    #[inline]
    fn end(&self, name: &[u8]) -> Option<usize> {
        let mut at = self.prefix.len();
        if name.get(..at)? != &*self.prefix {
            return None;
        }
        for step in self.steps.iter() {
            let mut taken = 0;
            while taken < step.max
                && let Some(&byte) = name.get(at)
                && step.set.contains(byte)
            {
                at += 1;
                taken += 1;
            }
            if taken < step.min {
                return None;
            }
        }
        (!self.to_end || at == name.len()).then_some(at)
    }

    /// The bytes a match begins with; `None` when it can be empty.
    fn lead(&self) -> Option<ByteSet> {
        let mut set = ByteSet::default();
        if let Some(&first) = self.prefix.first() {
            set.insert(first);
            return Some(set);
        }
        for step in self.steps.iter() {
            set.extend(step.set);
            if step.min > 0 {
                return Some(set);
            }
        }
        None
    }
}

/// Pieces of fixed length (every step one byte of a class) separated by
/// stars that take any run of name bytes (`**`, `.*`) or any run without `/`
/// (`*`, `[^/]*`), all stars alike, anchored at both ends. The first piece
/// must begin the name, the last end it, and each piece between is placed at
/// its leftmost fit after the one before: any later fit leaves less of the
/// name to the pieces after it, so if some placement matches, that one does.
/// That argument is plain when stars take every byte; stars that cannot take
/// `/` are only used where it stays plain: with pieces that cannot hold `/`
/// (a name with `/` then matches no placement, and one without is as above)
/// or with a single star (there is nothing to place). Other shapes go to the
/// regex engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wildcard {
    /// At least two: before the first star and after the last (either may be empty).
    pieces: Box<[Box<[ByteSet]>]>,
    /// Whether the stars take `/`.
    slash: bool,
}

impl Wildcard {
    /// The wildcard `inner` (what lies between `^` and `$`) amounts to, if any.
    fn new(inner: &[Hir]) -> Option<Wildcard> {
        let mut pieces = vec![Vec::new()];
        let mut slash = None;
        for item in inner {
            push_pieces(item, &mut pieces, &mut slash)?;
        }
        let slash = slash?;
        let slash_in_pieces = pieces.iter().flatten().any(|set| set.contains(b'/'));
        if !slash && slash_in_pieces && pieces.len() > 2 {
            return None;
        }
        Some(Wildcard {
            pieces: pieces.into_iter().map(Vec::into_boxed_slice).collect(),
            slash,
        })
    }

    /// Whether `name` matches.
    fn is_match(&self, name: &[u8]) -> bool {
        let [first, middle @ .., last] = &*self.pieces else {
            return false;
        };
        let Some(end) = name.len().checked_sub(last.len()) else {
            return false;
        };
        if end < first.len() || !fits(first, name, 0) || !fits(last, name, end) {
            return false;
        }
        let star_ok = |gap: &[u8]| self.slash || !gap.contains(&b'/');
        let mut at = first.len();
        for piece in middle {
            let Some(found) = (at..=end.saturating_sub(piece.len()))
                .take_while(|&start| start + piece.len() <= end)
                .find(|&start| fits(piece, name, start))
            else {
                return false;
            };
            if !name.get(at..found).is_some_and(star_ok) {
                return false;
            }
            at = found + piece.len();
        }
        name.get(at..end).is_some_and(star_ok)
    }

    /// The bytes a match begins with, when the first piece is not empty.
    fn lead(&self) -> Option<ByteSet> {
        self.pieces.first()?.first().copied()
    }
}

/// Whether `piece` fits `name` from byte `start`.
fn fits(piece: &[ByteSet], name: &[u8], start: usize) -> bool {
    name.get(start..start + piece.len())
        .is_some_and(|bytes| piece.iter().zip(bytes).all(|(set, &b)| set.contains(b)))
}

/// Appends `item` to the [`Wildcard`] being read: a star starts a new piece
/// (all stars must agree on `/`), a byte of a class extends the last.
fn push_pieces(item: &Hir, pieces: &mut Vec<Vec<ByteSet>>, slash: &mut Option<bool>) -> Option<()> {
    if let Some(takes_slash) = rest_class(item) {
        if *slash.get_or_insert(takes_slash) != takes_slash {
            return None;
        }
        pieces.push(Vec::new());
        return Some(());
    }
    match item.kind() {
        HirKind::Capture(capture) => push_pieces(&capture.sub, pieces, slash),
        HirKind::Concat(items) => items
            .iter()
            .try_for_each(|item| push_pieces(item, pieces, slash)),
        _ => {
            let mut steps = Vec::new();
            push_steps(item, &mut steps)?;
            let piece = pieces.last_mut()?;
            for step in steps {
                if !step.is_once() {
                    return None;
                }
                piece.push(step.set);
            }
            Some(())
        }
    }
}

/// Appends the steps `item` amounts to, in order; `None` when it is not a
/// run of bytes, classes and greedy repetitions of one.
fn push_steps(item: &Hir, steps: &mut Vec<Step>) -> Option<()> {
    match item.kind() {
        HirKind::Empty => {}
        HirKind::Literal(literal) => {
            steps.extend(literal.0.iter().map(|&byte| Step::byte(byte)));
        }
        HirKind::Class(class) => steps.push(Step {
            set: class_set(class),
            min: 1,
            max: 1,
        }),
        HirKind::Repetition(repetition) if repetition.greedy => {
            let set = match unwrap_capture(&repetition.sub).kind() {
                HirKind::Literal(literal) if literal.0.len() == 1 => {
                    Step::byte(*literal.0.first()?).set
                }
                HirKind::Class(class) => class_set(class),
                _ => return None,
            };
            steps.push(Step {
                set,
                min: repetition.min,
                max: repetition.max.unwrap_or(u32::MAX),
            });
        }
        HirKind::Capture(capture) => return push_steps(&capture.sub, steps),
        HirKind::Concat(items) => {
            for item in items {
                push_steps(item, steps)?;
            }
        }
        HirKind::Repetition(_) | HirKind::Look(_) | HirKind::Alternation(_) => return None,
    }
    Some(())
}

/// The bytes of `class` a valid name can hold. Names are ASCII, so a class of
/// characters counts by its ASCII part: one character is one byte there, and
/// the rest never matches a name. The one conversion every shape, the
/// first-byte sets and the star check use.
fn class_set(class: &Class) -> ByteSet {
    let mut set = ByteSet::default();
    match class {
        Class::Bytes(class) => {
            for range in class.ranges() {
                (range.start()..=range.end()).for_each(|byte| set.insert(byte));
            }
        }
        Class::Unicode(class) => {
            for range in class.ranges() {
                let start = u32::from(range.start());
                let end = u32::from(range.end()).min(0x7F);
                (start..=end)
                    .filter_map(|code| u8::try_from(code).ok())
                    .for_each(|byte| set.insert(byte));
            }
        }
    }
    set
}

/// Every byte a valid image name or tag can hold.
fn name_bytes() -> ByteSet {
    let mut set = ByteSet::default();
    (0u8..=127)
        .filter(|&b| {
            crate::names::is_image_name_char(char::from(b))
                || crate::names::is_tag_char(char::from(b))
        })
        .for_each(|byte| set.insert(byte));
    set
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
    let HirKind::Class(class) = rep.sub.kind() else {
        return None;
    };
    let set = class_set(class);
    let name_bytes = name_bytes();
    if !(0u8..=127)
        .filter(|&b| b != b'/' && name_bytes.contains(b))
        .all(|b| set.contains(b))
    {
        return None;
    }
    Some(set.contains(b'/'))
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
        HirKind::Class(class) => set = class_set(class),
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
    /// The bytes in both sets.
    fn intersect(self, other: ByteSet) -> ByteSet {
        let mut both = self;
        for (word, other) in both.0.iter_mut().zip(other.0) {
            *word &= other;
        }
        both
    }

    /// The set's only byte, if it holds exactly one.
    fn single(&self) -> Option<u8> {
        let mut found = None;
        for (index, &word) in (0u32..).zip(self.0.iter()) {
            if word == 0 {
                continue;
            }
            if found.is_some() || word.count_ones() != 1 {
                return None;
            }
            found = u8::try_from(index * 64 + word.trailing_zeros()).ok();
        }
        found
    }

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
        assert!(matches!(matcher(r"^v\d+$"), Matcher::Sequence(_)));
        assert!(matches!(
            matcher(r"^v\d+\.\d+\.\d+-rc\.\d+$"),
            Matcher::Sequence(_)
        ));
        assert!(matches!(matcher(r"^hotfix-\d+"), Matcher::Sequence(_)));
        assert!(matches!(glob(&["?.??.?"]), Matcher::Sequence(_)));
        assert!(matches!(glob(&["release-[0-9]*"]), Matcher::Sequence(_)));
        assert!(matches!(
            glob(&["legacy/**", "archive/**"]),
            Matcher::AnyOf(_)
        ));
        assert!(matches!(glob(&["{prod,staging}-*"]), Matcher::AnyOf(_)));
        // A step that could take what the next one needs: greedy matching
        // would decide wrongly, so the regex engine does it.
        assert!(matches!(matcher(r"^\d+1$"), Matcher::Regex { .. }));
        assert!(matches!(glob(&["v*.*.*"]), Matcher::Wildcard(_)));
        assert!(matches!(glob(&["[0-9]*.[0-9]*"]), Matcher::Wildcard(_)));
        assert!(matches!(glob(&["edge/*/prod"]), Matcher::Sequence(_)));
        assert!(matches!(glob(&["**/prod"]), Matcher::Wildcard(_)));
        assert!(matches!(glob(&["a/*b/c"]), Matcher::Wildcard(_)));
        assert!(matches!(glob(&["**/x/**"]), Matcher::Wildcard(_)));
        // Stars without `/` around pieces with `/`: where each piece goes matters.
        assert!(matches!(glob(&["*a/*a/x"]), Matcher::Regex { .. }));
        // Stars that disagree on `/`.
        assert!(matches!(glob(&["a/**/*.tar"]), Matcher::Regex { .. }));
        assert!(matches!(matcher(r"^a+?b"), Matcher::Regex { .. }));
        // More alternatives than an expansion may make.
        let many = (0..6).map(|_| "{ab,cd}").collect::<String>();
        assert!(matches!(glob(&[many.as_str()]), Matcher::Regex { .. }));
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

    /// Every string up to `len` bytes over `alphabet`.
    fn strings(alphabet: &[u8], len: usize) -> Vec<Vec<u8>> {
        let mut all = vec![Vec::new()];
        let mut last = vec![Vec::new()];
        for _ in 0..len {
            last = last
                .iter()
                .flat_map(|s| {
                    alphabet.iter().map(move |&b| {
                        let mut longer = s.clone();
                        longer.push(b);
                        longer
                    })
                })
                .collect();
            all.extend(last.iter().cloned());
        }
        all
    }

    /// The shapes decide like the regex engine on every short name: whether
    /// they match, where (leftmost-first), and which bytes a match starts with.
    #[test]
    fn shapes_agree_with_the_regex_engine_on_every_short_name() {
        let regexes = [
            r"^v\d+\.\d+\.\d+$",
            r"^v\d+",
            r"^v\d*$",
            r"^\d+1$",
            r"^a*a$",
            r"^a?b",
            r"^[ab]{2,3}c?",
            r"^a{2}b*$",
            r"^(?:v|)1",
            r"^x*",
            r"^$",
            r"^",
            r"^a*",
            r"^.{0,3}z",
            r"^(v\d+)\.x",
            r"^\d*$",
            r"^a+?b",
            r"^ab*?",
            r"^(?:a|b1)$",
            r"^(?:a|b\d+)$",
            r"^(a|)$",
            r"^(?:ab|a)(?:b|)$",
            r"^[a-c]+-\d{1,2}$",
            r"^v.*\..*$",
            r"^[^/]*/[^/]*/x$",
            r"^.*a.*a$",
            // Classes of characters: only their ASCII part can meet a name.
            r"^(?u:[a-cé])+-?$",
            r"^(?u:.)*x$",
            r"^(?u:[^a])\d",
        ];
        let globs: [&[&str]; 31] = [
            &["a/{b,c}/*"],
            &["?.?", "??.?", "?.??"],
            &["[0-9]*.[0-9]*", "[0-9]*.[0-9]*.[0-9]*"],
            &["{ab,c}-*", "b*", "x"],
            &["v*.*.*"],
            &["*.*.*"],
            &["*a*"],
            &["a*a"],
            &["*a/*"],
            &["a/*/b"],
            &["a/*b/c"],
            &["*a/*a/x"],
            &["a/*/b/*"],
            &["*/*"],
            &["**/a/**"],
            &["a/**/*.x"],
            &["[0-9]*.[0-9]*"],
            &["?.?"],
            &["{a,b}-*"],
            &["{a,{b,c}}x"],
            &["a/**"],
            &["{a,b}/*"],
            &["*.*"],
            &["[0-9]*"],
            &["a{,b}"],
            &["{a,b}{c,d}"],
            &["v[0-9]*"],
            &["a/**", "b/**"],
            &["v*", "1"],
            &["{a,b}-?", "x"],
            &["?", "??"],
        ];
        let mut sources: Vec<String> = regexes.iter().map(|s| (*s).to_owned()).collect();
        for g in globs {
            let g: Vec<String> = g.iter().map(|s| (*s).to_owned()).collect();
            sources.push(crate::glob::to_regex(&g).unwrap());
        }
        let names = strings(b"abcd1.-/vxz", 4);
        for source in &sources {
            let hir = pattern::parse(source).unwrap().hir;
            let fast = Matcher::new(&hir).unwrap();
            let engine = pattern::build(&hir, WhichCaptures::None).unwrap();
            let finder = pattern::build(&hir, WhichCaptures::Implicit).unwrap();
            for name in &names {
                let expected = engine.search(name);
                assert_eq!(
                    fast.is_match(name),
                    expected,
                    "{source} on {}",
                    String::from_utf8_lossy(name)
                );
                if let (Some(lead), Some(&first)) = (fast.lead(), name.first()) {
                    assert!(
                        lead.contains(first) || expected == Found::NoMatch,
                        "{source} on {}",
                        String::from_utf8_lossy(name)
                    );
                }
                if let Some(span) = fast.span(name) {
                    assert_eq!(
                        Ok(span),
                        finder.find(name),
                        "{source} on {}",
                        String::from_utf8_lossy(name)
                    );
                }
            }
        }
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
