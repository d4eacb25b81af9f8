//! Compiling a regex the way taglock matches: RE2 syntax, ASCII classes, bounded size.
//!
//! Names are checked against their OCI grammars before matching, so every haystack is
//! ASCII; matching bytes with Unicode off gives RE2's ASCII `\d`, `\w`, `\s` and keeps
//! the Unicode tables out of the WebAssembly builds. The pattern is parsed once (with
//! located errors), and the matcher is built from that parse by the `regex` project's
//! engine crate, `regex-automata`: with the `fast-matching` feature its meta engine
//! (a lazy DFA with a PikeVM fallback), without it the PikeVM alone (what the
//! WebAssembly builds use: the meta engine's strategies add ~15 KB there and only
//! pick the PikeVM anyway). Both are linear-time and give the same matches.
//!
//! The WebAssembly builds do not use regex-automata's bounded backtracker, though it
//! is smaller and faster: its search fails (rather than answers) on a haystack its
//! visited set cannot hold, and beside that set it keeps a stack that grows with the
//! NFA times the haystack, stays in the cache, and cannot be bounded. After one
//! search of a 128-byte tag, a pattern just under [`REGEX_WEIGHT_LIMIT`] leaves
//! 12 MiB in the backtracker's cache in wasm32, against 0.49 MiB in the PikeVM's
//! (docs/benchmarks.md).

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

/// A compiled regex: the meta engine (feature `fast-matching`).
#[cfg(feature = "fast-matching")]
pub type Regex = meta::Regex;

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
        .map_err(|err| build_error(err.size_limit(), err.to_string()))
}

/// Builds a matcher from a parsed pattern, with the size caps.
#[cfg(not(feature = "fast-matching"))]
pub fn build(hir: &Hir, captures: WhichCaptures) -> Result<Regex, PatternError> {
    use regex_automata::nfa::thompson::{Compiler, Config};
    let nfa = Compiler::new()
        .configure(
            Config::new()
                .which_captures(captures)
                .nfa_size_limit(Some(REGEX_SIZE_LIMIT))
                .shrink(false),
        )
        .build_from_hir(hir)
        // The meta engine words every NFA failure but the size cap so.
        .map_err(|err| build_error(err.size_limit(), "error building NFA".to_owned()))?;
    let vm = pike::PikeVM::new_from_nfa(nfa)
        .map_err(|err| build_error(err.size_limit(), "error building NFA".to_owned()))?;
    Ok(Regex::new(vm))
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
use regex_automata::nfa::thompson::pikevm as pike;

/// A compiled regex: the PikeVM, with a pool of its scratch space so that a
/// search allocates nothing once warm (the meta engine does the same).
#[cfg(not(feature = "fast-matching"))]
pub struct Regex {
    vm: pike::PikeVM,
    pool: regex_automata::util::pool::Pool<pike::Cache, CacheFn>,
}

#[cfg(not(feature = "fast-matching"))]
type CacheFn =
    Box<dyn Fn() -> pike::Cache + Send + Sync + std::panic::UnwindSafe + std::panic::RefUnwindSafe>;

#[cfg(not(feature = "fast-matching"))]
impl Regex {
    fn new(vm: pike::PikeVM) -> Regex {
        let for_cache = vm.clone();
        let create: CacheFn = Box::new(move || for_cache.create_cache());
        Regex {
            vm,
            pool: regex_automata::util::pool::Pool::new(create),
        }
    }

    /// Whether the regex matches anywhere in `haystack`.
    pub fn is_match(&self, haystack: &[u8]) -> bool {
        self.vm.is_match(&mut self.pool.get(), haystack)
    }

    /// The leftmost-first match in `haystack`.
    pub fn find(&self, haystack: &[u8]) -> Option<regex_automata::Match> {
        self.vm.find(&mut self.pool.get(), haystack)
    }
}

#[cfg(not(feature = "fast-matching"))]
impl Clone for Regex {
    fn clone(&self) -> Regex {
        Regex::new(self.vm.clone())
    }
}

#[cfg(not(feature = "fast-matching"))]
impl std::fmt::Debug for Regex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Regex(PikeVM)")
    }
}

/// Converts a byte offset in `source` to a character offset.
pub fn char_offset(source: &str, byte: usize) -> usize {
    source
        .get(..byte)
        .map_or_else(|| source.chars().count(), |head| head.chars().count())
}
