//! Compiling a regex the way taglock matches: RE2 syntax, ASCII classes, bounded size.
//!
//! Names are checked against their OCI grammars before matching, so every haystack is
//! ASCII; matching bytes with Unicode off gives RE2's ASCII `\d`, `\w`, `\s` and keeps
//! the Unicode tables out of the WebAssembly builds. The pattern is parsed once (with
//! located errors), and the matcher is built from that parse by the `regex` project's
//! engine crate, `regex-automata`: a lazy DFA with a PikeVM fallback, linear-time.

use regex_automata::meta::{self, Regex};
use regex_automata::nfa::thompson::WhichCaptures;
use regex_syntax::ast::{self, parse::ParserBuilder};
use regex_syntax::hir::{Hir, translate::TranslatorBuilder};

/// The most bytes one compiled regex may use (its NFA); larger patterns are refused.
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;
/// The most bytes the lazy DFA of one regex may cache per thread.
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
    /// Compiles to more than [`REGEX_SIZE_LIMIT`].
    RegexTooLarge,
    /// Not a valid glob.
    GlobSyntax,
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

/// Builds a matcher from a parsed pattern, with the size caps.
pub fn build(hir: &Hir, captures: WhichCaptures) -> Result<Regex, PatternError> {
    let config = meta::Config::new()
        .which_captures(captures)
        .nfa_size_limit(Some(REGEX_SIZE_LIMIT))
        .hybrid_cache_capacity(REGEX_DFA_SIZE_LIMIT);
    meta::Builder::new()
        .configure(config)
        .build_from_hir(hir)
        .map_err(|err| match err.size_limit() {
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
                message: err.to_string(),
                offset: None,
            },
        })
}

/// Converts a byte offset in `source` to a character offset.
pub fn char_offset(source: &str, byte: usize) -> usize {
    source
        .get(..byte)
        .map_or_else(|| source.chars().count(), |head| head.chars().count())
}
