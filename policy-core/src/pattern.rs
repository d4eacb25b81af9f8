//! Compiling a regex the way taglock matches: RE2 syntax, ASCII classes, bounded size.
//!
//! Names are checked against their OCI grammars before matching, so every haystack is
//! ASCII; matching bytes with Unicode off gives RE2's ASCII `\d`, `\w`, `\s` and keeps
//! the Unicode tables out of the WebAssembly builds. The pattern is parsed once (with
//! located errors), and the matcher is built from that parse by the `regex` project's
//! engine crate, `regex-automata`: with the `fast-matching` feature its meta engine
//! (a lazy DFA with a PikeVM fallback), without it the bounded backtracker alone
//! (what the WebAssembly builds use: smaller, and faster on names this short). Both
//! take time linear in the pattern times the name, and give the same matches.
//!
//! The bounded backtracker fails (rather than answers) a search longer than its
//! visited set holds. Its set is sized for the longest valid name, and names are
//! validated before any matcher runs, so no search the core makes fails; should
//! one ever, the answer is [`Found::Unknown`], and each use turns it into the
//! answer that fails closed (a rule protects, an exception exempts nothing, an
//! image links nowhere). Its stack grows with the NFA times the name and is
//! never shrunk, so its scratch is shared by the regexes of one call instead of
//! kept per pattern, and dropped when the call returns (see [`Regex`], [`scoped`]).

#[cfg(feature = "fast-matching")]
use regex_automata::meta;
use regex_automata::nfa::thompson::WhichCaptures;
use regex_syntax::ast::{self, parse::ParserBuilder};
use regex_syntax::hir::{Hir, translate::TranslatorBuilder};

/// The largest [`weight`] one pattern may have; heavier patterns are refused
/// (`regex-too-large`) before anything is built. The weight is computed from the
/// parsed pattern alone, so the verdict is the same on every engine and pointer
/// width (a cap on the built program's bytes would not be: the same NFA takes
/// more bytes on 64-bit hosts than in wasm32).
pub const REGEX_WEIGHT_LIMIT: u64 = 32 * 1024;
/// The most bytes one compiled regex may use (its NFA), on top of
/// [`REGEX_WEIGHT_LIMIT`]: a safety net set well above what any pattern within
/// the weight limit needs on a 64-bit host, so that it never decides a verdict.
pub const REGEX_SIZE_LIMIT: usize = 8 * 1024 * 1024;
/// The most bytes the lazy DFA of one regex may cache per thread.
#[cfg(feature = "fast-matching")]
pub const REGEX_DFA_SIZE_LIMIT: usize = 512 * 1024;
/// The deepest nesting of groups and repetitions a pattern may have.
pub const REGEX_NEST_LIMIT: u32 = 64;

/// Why a pattern did not compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    /// The class of problem.
    pub kind: PatternErrorKind,
    /// What is wrong, in words.
    pub message: String,
    /// Character offset in the pattern where the problem starts, when known.
    pub offset: Option<usize>,
}

/// Classes of pattern problems.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternErrorKind {
    /// Not a valid regex.
    RegexSyntax,
    /// Valid elsewhere, but outside RE2: backreferences, look-around.
    RegexUnsupported,
    /// Weighs more than [`REGEX_WEIGHT_LIMIT`] (or the policy's patterns together
    /// more than their budget).
    RegexTooLarge,
    /// Not a valid glob.
    GlobSyntax,
}

/// A pattern's weight: an upper estimate, in NFA states and transitions, of the
/// program the matcher compiles it to. Literals count a unit per byte, classes
/// a unit per range, and a repetition counts its body once per copy the compiler
/// makes of it (`x{3,5}` makes five), so a nested counted repetition weighs what
/// it expands to. Linear in the size of the parsed pattern, never building it;
/// saturates instead of overflowing.
pub fn weight(hir: &Hir) -> u64 {
    use regex_syntax::hir::{Class, HirKind};
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => 1,
        HirKind::Literal(literal) => u64::try_from(literal.0.len()).unwrap_or(u64::MAX),
        HirKind::Class(Class::Bytes(class)) => {
            u64::try_from(class.ranges().len()).unwrap_or(u64::MAX)
        }
        HirKind::Class(Class::Unicode(class)) => {
            u64::try_from(class.ranges().len()).unwrap_or(u64::MAX)
        }
        HirKind::Repetition(repetition) => {
            let copies = u64::from(repetition.max.unwrap_or(repetition.min).max(1));
            weight(&repetition.sub)
                .saturating_add(1)
                .saturating_mul(copies)
                .saturating_add(1)
        }
        HirKind::Capture(capture) => weight(&capture.sub).saturating_add(2),
        HirKind::Concat(items) | HirKind::Alternation(items) => {
            items.iter().fold(1u64, |sum, item| {
                sum.saturating_add(weight(item)).saturating_add(1)
            })
        }
    }
}

/// The error for a pattern heavier than `limit`.
pub fn too_heavy(weight: u64, limit: u64, what: &str) -> PatternError {
    PatternError {
        kind: PatternErrorKind::RegexTooLarge,
        message: format!(
            "{what} weighs {weight} units of compiled program, more than the {limit} allowed; simplify it (counted repetitions such as `{{1000}}` weigh their body that many times)"
        ),
        offset: None,
    }
}

/// Parses a pattern into its AST with located errors.
pub fn parse_ast(source: &str) -> Result<ast::Ast, PatternError> {
    ParserBuilder::new()
        .nest_limit(REGEX_NEST_LIMIT)
        .build()
        .parse(source)
        .map_err(|err| {
            let kind = match err.kind() {
                ast::ErrorKind::UnsupportedBackreference => PatternErrorKind::RegexUnsupported,
                ast::ErrorKind::UnsupportedLookAround => PatternErrorKind::RegexUnsupported,
                _ => PatternErrorKind::RegexSyntax,
            };
            let message = match kind {
                PatternErrorKind::RegexUnsupported => format!(
                    "{} (RE2 syntax has no backreferences or look-around, which keeps matching linear-time)",
                    err.kind()
                ),
                _ => err.kind().to_string(),
            };
            PatternError {
                kind,
                message,
                offset: Some(char_offset(source, err.span().start.offset)),
            }
        })
}

/// A pattern parsed once: its syntax tree (what the author wrote, for lints) and its
/// high-level IR (what the matcher sees).
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The syntax tree.
    pub ast: ast::Ast,
    /// The IR, ASCII and byte-oriented.
    pub hir: Hir,
}

/// Parses `source` as a regex, with located errors.
pub fn parse(source: &str) -> Result<Parsed, PatternError> {
    let ast = parse_ast(source)?;
    let hir = TranslatorBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .translate(source, &ast)
        .map_err(|err| PatternError {
            kind: PatternErrorKind::RegexSyntax,
            message: err.kind().to_string(),
            offset: Some(char_offset(source, err.span().start.offset)),
        })?;
    Ok(Parsed { ast, hir })
}

/// What one search answered. The engines of the `fast-matching` build always
/// answer; the bounded backtracker of the other builds refuses a haystack longer
/// than its visited set can hold. Its set is sized for the longest valid name,
/// and only validated names are searched, so that cannot happen; if it ever did,
/// the caller picks the safe answer for its use (see [`Found::or_match`] and
/// [`Found::or_no_match`]) — a failed search never silently reads as "no match".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Found {
    /// The pattern matches.
    Match,
    /// The pattern does not match.
    NoMatch,
    /// The engine could not search this haystack.
    #[cfg_attr(
        feature = "fast-matching",
        allow(dead_code, reason = "only the bounded backtracker fails a search")
    )]
    Unknown,
}

impl Found {
    /// From a definite answer.
    #[inline]
    pub fn from_bool(hit: bool) -> Found {
        if hit { Found::Match } else { Found::NoMatch }
    }

    /// The answer with a failed search read as a match: for uses where a match
    /// widens protection (a rule's tags, a rule's repositories), so a failure
    /// protects rather than leaves a tag unprotected.
    #[inline]
    pub fn or_match(self) -> bool {
        self != Found::NoMatch
    }

    /// The answer with a failed search read as no match: for uses where a match
    /// narrows protection (an exception exempts nothing it cannot decide on).
    #[inline]
    pub fn or_no_match(self) -> bool {
        self == Found::Match
    }

    /// The other answer, for a selector that excludes; a failed search stays one.
    #[inline]
    pub fn negate(self) -> Found {
        match self {
            Found::Match => Found::NoMatch,
            Found::NoMatch => Found::Match,
            Found::Unknown => Found::Unknown,
        }
    }
}

/// A compiled regex: the meta engine (feature `fast-matching`).
#[cfg(feature = "fast-matching")]
#[derive(Debug, Clone)]
pub struct Regex(meta::Regex);

/// Builds a matcher from a parsed pattern, with the size caps.
#[cfg(feature = "fast-matching")]
pub fn build(hir: &Hir, captures: WhichCaptures) -> Result<Regex, PatternError> {
    let config = meta::Config::new()
        .which_captures(captures)
        .nfa_size_limit(Some(REGEX_SIZE_LIMIT))
        .hybrid_cache_capacity(REGEX_DFA_SIZE_LIMIT);
    meta::Builder::new()
        .configure(config)
        .build_from_hir(hir)
        .map(Regex)
        .map_err(|err| build_error(err.size_limit(), err.to_string()))
}

#[cfg(feature = "fast-matching")]
impl Regex {
    /// Whether the regex matches anywhere in `haystack` (the meta engine always answers).
    #[inline]
    pub fn search(&self, haystack: &[u8]) -> Found {
        Found::from_bool(self.0.is_match(haystack))
    }

    /// The leftmost-first match in `haystack`; `Err` when the engine could not search.
    pub fn find(&self, haystack: &[u8]) -> Result<Option<std::ops::Range<usize>>, Unsearched> {
        Ok(self.0.find(haystack).map(|m| m.range()))
    }
}

/// A search the engine could not run (see [`Found::Unknown`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsearched;

/// The longest haystack a regex is ever asked about: names are validated before
/// any matcher runs, and no valid tag or image name is longer.
#[cfg(not(feature = "fast-matching"))]
const LONGEST_NAME: usize = {
    let (tag, image) = (crate::names::MAX_TAG_LEN, crate::names::MAX_IMAGE_NAME_LEN);
    if tag > image { tag } else { image }
};

/// The most bytes of search scratch (the backtracker's visited set and stack, at
/// their worst for the longest name) a regex may leave behind in the scratch its
/// call shares ([`scoped`]); a regex that could need more searches with scratch
/// of its own, freed after the search.
#[cfg(not(feature = "fast-matching"))]
const SHARED_SCRATCH_LIMIT: usize = 256 * 1024;

/// Builds a matcher from a parsed pattern, with the size caps.
#[cfg(not(feature = "fast-matching"))]
pub fn build(hir: &Hir, captures: WhichCaptures) -> Result<Regex, PatternError> {
    let nfa = thompson_nfa(hir, captures)?;
    let capacity = visited_capacity(&nfa, LONGEST_NAME);
    backtracker(nfa, capacity)
}

/// The Thompson NFA of a parsed pattern, within [`REGEX_SIZE_LIMIT`].
#[cfg(not(feature = "fast-matching"))]
fn thompson_nfa(hir: &Hir, captures: WhichCaptures) -> Result<NFA, PatternError> {
    use regex_automata::nfa::thompson::{Compiler, Config};
    Compiler::new()
        .configure(
            Config::new()
                .which_captures(captures)
                .nfa_size_limit(Some(REGEX_SIZE_LIMIT))
                .shrink(false),
        )
        .build_from_hir(hir)
        // The meta engine words every NFA failure but the size cap so.
        .map_err(|err| build_error(err.size_limit(), "error building NFA".to_owned()))
}

/// The bytes of visited set the backtracker needs to search any haystack of up
/// to `longest` bytes with `nfa`: one bit per (state, position), end included.
#[cfg(not(feature = "fast-matching"))]
fn visited_capacity(nfa: &NFA, longest: usize) -> usize {
    nfa.states()
        .len()
        .saturating_mul(longest.saturating_add(1))
        .div_ceil(8)
}

/// The backtracker over `nfa` with a visited set of `capacity` bytes.
#[cfg(not(feature = "fast-matching"))]
fn backtracker(nfa: NFA, capacity: usize) -> Result<Regex, PatternError> {
    let shared_scratch = worst_scratch(&nfa, capacity) <= SHARED_SCRATCH_LIMIT;
    let engine = backtrack::Builder::new()
        .configure(backtrack::Config::new().visited_capacity(capacity))
        .build_from_nfa(nfa)
        .map_err(|err| build_error(err.size_limit(), "error building NFA".to_owned()))?;
    Ok(Regex {
        engine,
        shared_scratch,
    })
}

/// An upper bound, in bytes, of the scratch one search of a name with `nfa` can
/// use: the visited set, and the backtracking stack, which holds at most one
/// frame per alternative (or capture) pushed at each (state, position).
#[cfg(not(feature = "fast-matching"))]
fn worst_scratch(nfa: &NFA, visited: usize) -> usize {
    use regex_automata::nfa::thompson::State;
    /// A stack frame's size on 64-bit targets (smaller in wasm32).
    const FRAME_BYTES: usize = 16;
    let pushes: usize = nfa
        .states()
        .iter()
        .map(|state| match state {
            State::Union { alternates } => alternates.len().saturating_sub(1),
            State::BinaryUnion { .. } | State::Capture { .. } => 1,
            _ => 0,
        })
        .fold(1, usize::saturating_add);
    pushes
        .saturating_mul(LONGEST_NAME + 1)
        .saturating_mul(FRAME_BYTES)
        .saturating_add(visited)
}

#[cfg(not(feature = "fast-matching"))]
use regex_automata::nfa::thompson::{NFA, backtrack};

/// A compiled regex: regex-automata's bounded backtracker, whose visited set is
/// sized for the longest valid name (so it answers every search the core makes).
///
/// Its scratch (visited set and stack) is shared by every regex searched during
/// one call of the public API ([`scoped`]) and dropped when the call returns:
/// within a call, a search after the first allocates nothing, and what is
/// allocated is one search's worth, not one per pattern (the stack grows with
/// the NFA times the haystack and is never shrunk, so per-pattern caches could
/// add up to more than a WebAssembly instance's memory on a policy of many
/// heavy patterns); between calls nothing stays allocated. A regex
/// whose worst search could leave more than [`SHARED_SCRATCH_LIMIT`] behind
/// searches with scratch of its own, freed afterwards.
#[cfg(not(feature = "fast-matching"))]
#[derive(Clone)]
pub struct Regex {
    engine: backtrack::BoundedBacktracker,
    /// Whether searches use the thread's shared scratch.
    shared_scratch: bool,
}

/// The thread's shared backtracking scratch, kept only while a [`scoped`] call runs.
#[cfg(not(feature = "fast-matching"))]
#[derive(Default)]
struct Scratch {
    /// How many [`scoped`] calls are running on the thread (they nest).
    depth: usize,
    /// The scratch the regexes of those calls share, made by the first search.
    cache: Option<backtrack::Cache>,
}

#[cfg(not(feature = "fast-matching"))]
thread_local! {
    /// The backtracking scratch the regexes of this thread search with.
    static SCRATCH: std::cell::RefCell<Scratch> = const {
        std::cell::RefCell::new(Scratch { depth: 0, cache: None })
    };
}

/// Runs one call of the public API (a decision, a tag test, a load), letting
/// its searches share scratch, which is dropped when the outermost such call
/// returns. Nothing a search allocates outlives the call: the WebAssembly
/// component gives each call a bump arena as its allocator, and scratch kept
/// from one call to the next (as a per-thread cache filled on first use
/// would be) would keep that call's arena alive. Searches outside any such
/// call use scratch of their own, freed after the search.
///
/// The meta engine of `fast-matching` builds (never in the component) keeps
/// its own per-regex caches; there this is only `f()`.
#[cfg(not(feature = "fast-matching"))]
pub(crate) fn scoped<T>(f: impl FnOnce() -> T) -> T {
    /// Leaves the scope, even when `f` unwinds; the outermost drops the scratch.
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            let dropped = SCRATCH.try_with(|slot| {
                let mut slot = slot.try_borrow_mut().ok()?;
                slot.depth = slot.depth.saturating_sub(1);
                if slot.depth == 0 {
                    slot.cache.take()
                } else {
                    None
                }
            });
            drop(dropped);
        }
    }
    let entered = SCRATCH.try_with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut() {
            slot.depth = slot.depth.saturating_add(1);
            true
        } else {
            false
        }
    });
    let _leave = matches!(entered, Ok(true)).then_some(Leave);
    f()
}

/// Whether the thread holds shared scratch or is inside a [`scoped`] call.
#[cfg(all(test, not(feature = "fast-matching")))]
pub(crate) fn scratch_held() -> bool {
    SCRATCH.with(|slot| {
        let slot = slot.borrow();
        slot.depth > 0 || slot.cache.is_some()
    })
}

/// See the other builds' `scoped`: the meta engine keeps per-regex caches.
#[cfg(feature = "fast-matching")]
#[inline]
pub(crate) fn scoped<T>(f: impl FnOnce() -> T) -> T {
    f()
}

#[cfg(not(feature = "fast-matching"))]
impl Regex {
    /// Whether the regex matches anywhere in `haystack`, or [`Found::Unknown`]
    /// when the haystack is longer than the visited set holds.
    pub fn search(&self, haystack: &[u8]) -> Found {
        let input = regex_automata::Input::new(haystack).earliest(true);
        match self.with_scratch(|engine, cache| engine.try_is_match(cache, input.clone())) {
            Ok(hit) => Found::from_bool(hit),
            Err(_) => Found::Unknown,
        }
    }

    /// The leftmost-first match in `haystack`; `Err` when the engine could not search.
    pub fn find(&self, haystack: &[u8]) -> Result<Option<std::ops::Range<usize>>, Unsearched> {
        self.with_scratch(|engine, cache| engine.try_find(cache, haystack))
            .map(|found| found.map(|m| m.range()))
            .map_err(|_| Unsearched)
    }

    /// Runs `search` with the thread's shared scratch, reset for this regex, or
    /// with fresh scratch when this regex does not share, no [`scoped`] call
    /// is running, or the shared scratch is unavailable (in use, or the thread
    /// is ending).
    fn with_scratch<T>(
        &self,
        search: impl Fn(&backtrack::BoundedBacktracker, &mut backtrack::Cache) -> T,
    ) -> T {
        let engine = &self.engine;
        let fresh = || search(engine, &mut engine.create_cache());
        if !self.shared_scratch {
            return fresh();
        }
        let shared = SCRATCH.try_with(|slot| {
            let mut slot = slot.try_borrow_mut().ok()?;
            if slot.depth == 0 {
                return None;
            }
            let cache = slot.cache.get_or_insert_with(|| engine.create_cache());
            cache.reset(engine);
            Some(search(engine, cache))
        });
        match shared {
            Ok(Some(answer)) => answer,
            _ => fresh(),
        }
    }

    /// A regex whose visited set holds only `capacity` bytes, to provoke the
    /// search failure that a sized set never meets.
    #[cfg(test)]
    pub(crate) fn with_visited_capacity(hir: &Hir, capacity: usize) -> Result<Regex, PatternError> {
        backtracker(thompson_nfa(hir, WhichCaptures::Implicit)?, capacity)
    }

    /// The longest haystack the regex can search.
    #[cfg(test)]
    pub(crate) fn max_haystack_len(&self) -> usize {
        self.engine.max_haystack_len()
    }
}

fn build_error(size_limit: Option<usize>, message: String) -> PatternError {
    match size_limit {
        Some(limit) => PatternError {
            kind: PatternErrorKind::RegexTooLarge,
            message: format!(
                "the pattern compiles to more than {} KiB; simplify it",
                limit / 1024
            ),
            offset: None,
        },
        None => PatternError {
            kind: PatternErrorKind::RegexSyntax,
            message,
            offset: None,
        },
    }
}

#[cfg(not(feature = "fast-matching"))]
impl std::fmt::Debug for Regex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Regex(BoundedBacktracker)")
    }
}

/// Converts a byte offset in `source` to a character offset.
pub fn char_offset(source: &str, byte: usize) -> usize {
    source
        .get(..byte)
        .map_or_else(|| source.chars().count(), |head| head.chars().count())
}
