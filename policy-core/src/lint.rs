//! Warnings a careful admin wants before saving a policy. A lint never
//! refuses a policy; it points at something that probably does not do what its
//! author meant.

use crate::document::{self, Protect};
use crate::names;
use crate::pattern;
use crate::policy::{Policy, Rule};
use crate::selector::{Selector, SelectorKind};
use crate::unit_enum::codes;
use regex_syntax::ast::{Ast, RepetitionKind};
use regex_syntax::hir::{Class, Hir, HirKind, Look};
use serde::Serialize;
use std::fmt;

codes! {
    /// Stable codes for lints. Lints only advise, and new ones come with new
    /// releases: match with a wildcard arm.
    #[non_exhaustive]
    pub enum LintCode {
        /// A regex that is not anchored: `prod` also matches `preprod`.
        UnanchoredRegex = "unanchored-regex",
        /// A lone `.` in a regex: `v1.2` also matches `v1x2`.
        UnescapedDot = "unescaped-dot",
        /// A selector that can never match a valid tag (or image name).
        NeverMatches = "never-matches",
        /// An `excluding` rule next to other rules: it does not subtract from them.
        ExcludingDoesNotSubtract = "excluding-does-not-subtract",
        /// A rule that an earlier rule always pre-empts.
        ShadowedRule = "shadowed-rule",
        /// `latest` becomes immutable.
        ProtectsLatest = "protects-latest",
        /// The exceptions exempt everything the rules protect.
        ExceptionsCancelRules = "exceptions-cancel-rules",
        /// Rules under `protect: none` or `all`, where they are ignored.
        RulesIgnored = "rules-ignored",
        /// `protect: some` with no rules: nothing is protected.
        NoRules = "no-rules",
        /// An image linked to a repository that has no grants.
        UnknownRepository = "unknown-repository",
        /// A tag regex that can match the empty string somewhere, so every tag.
        MatchesEveryTag = "matches-every-tag",
    }
}

/// One warning, located like a load error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lint {
    /// Stable machine code.
    pub code: LintCode,
    /// What is probably wrong, and how to fix it.
    pub message: String,
    /// JSON path of the value concerned.
    pub path: String,
    /// The rule concerned, if any.
    pub rule: Option<String>,
    /// Character offset inside the pattern, when one spot is to blame.
    pub offset: Option<usize>,
}

impl fmt::Display for Lint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path)?;
        if let Some(rule) = &self.rule {
            write!(f, " (rule \"{rule}\")")?;
        }
        if let Some(offset) = self.offset {
            write!(f, " at character {offset}")?;
        }
        write!(f, ": {} [{}]", self.message, self.code)
    }
}

fn lint(code: LintCode, path: String, rule: Option<&str>, message: String) -> Lint {
    Lint {
        code,
        message,
        path,
        rule: rule.map(str::to_owned),
        offset: None,
    }
}

/// Which names a selector is matched against.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Alphabet {
    Tag,
    Image,
}

impl Alphabet {
    fn allows(self, byte: u8) -> bool {
        let c = char::from(byte);
        match self {
            Alphabet::Tag => byte.is_ascii() && names::is_tag_char(c),
            Alphabet::Image => byte.is_ascii() && names::is_image_name_char(c),
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Alphabet::Tag => "tag",
            Alphabet::Image => "image name",
        }
    }
}

/// Computes every lint of a compiled policy.
pub(crate) fn lints(policy: &Policy) -> Vec<Lint> {
    let mut out = Vec::new();
    let doc = &policy.document.immutability;
    let imm = &policy.immutability;
    match (imm.protect, doc.rules.is_empty()) {
        (Protect::Some, true) => out.push(lint(
            LintCode::NoRules,
            "immutability.protect".into(),
            None,
            "`protect` is `some` but there are no rules, so no tag is protected; add a rule or choose `all`".into(),
        )),
        (Protect::None | Protect::All, false) => out.push(lint(
            LintCode::RulesIgnored,
            "immutability.rules".into(),
            None,
            format!(
                "rules are only meaningful under `protect: some`; under `{}` they are ignored",
                if imm.protect == Protect::All { "all" } else { "none" }
            ),
        )),
        _ => {}
    }
    if imm.protect == Protect::Some {
        for (index, (source, rule)) in doc.rules.iter().zip(&imm.rules).enumerate() {
            let path = format!("immutability.rules[{index}]");
            let name = Some(&*rule.name);
            selector_lints(
                &source.tags,
                &rule.tags,
                &format!("{path}.tags"),
                name,
                Alphabet::Tag,
                &mut out,
            );
            if let (Some(source), Some(compiled)) = (&source.repositories, &rule.repositories) {
                let path = format!("{path}.repositories");
                selector_lints(source, compiled, &path, name, Alphabet::Image, &mut out);
            }
            if rule.tags.kind() == SelectorKind::Excluding && imm.rules.len() > 1 {
                out.push(lint(
                    LintCode::ExcludingDoesNotSubtract,
                    format!("{path}.tags.excluding"),
                    name,
                    format!(
                        "rule \"{}\" protects every tag except its list on its own; it does not subtract from the other rules (rules are OR-ed). To exempt tags from every rule, use `exceptions`",
                        rule.name
                    ),
                ));
            }
            let shadowing = imm
                .rules
                .iter()
                .take(index)
                .find(|earlier| covers(earlier, rule));
            if let Some(earlier) = shadowing {
                out.push(lint(
                    LintCode::ShadowedRule,
                    path.clone(),
                    name,
                    format!(
                        "rule \"{}\" is shadowed by the earlier rule \"{}\": every tag it protects is already protected by it, so decisions never name it",
                        rule.name, earlier.name
                    ),
                ));
            }
            if rule.tags.matches("latest") && !excepted(policy, "latest") {
                out.push(lint(
                    LintCode::ProtectsLatest,
                    format!("{path}.tags"),
                    name,
                    format!(
                        "rule \"{}\" protects `latest`: once pushed it can never move to a newer image. Add {{\"matching\": [\"latest\"]}} to `exceptions` if it should keep moving",
                        rule.name
                    ),
                ));
            }
        }
        let cancelled = !imm.rules.is_empty()
            && imm.rules.iter().all(|rule| {
                imm.exceptions
                    .iter()
                    .any(|e| selector_covers(e, &rule.tags))
            });
        if cancelled {
            out.push(lint(
                LintCode::ExceptionsCancelRules,
                "immutability.exceptions".into(),
                None,
                "the exceptions exempt every tag the rules protect, so no tag is immutable".into(),
            ));
        }
    }
    if imm.protect == Protect::All {
        if imm.exceptions.iter().any(matches_every_tag) {
            out.push(lint(
                LintCode::ExceptionsCancelRules,
                "immutability.exceptions".into(),
                None,
                "an exception matches every tag, which cancels `protect: all`: no tag is immutable"
                    .into(),
            ));
        } else if !excepted(policy, "latest") {
            out.push(lint(
                LintCode::ProtectsLatest,
                "immutability.protect".into(),
                None,
                "`protect: all` makes `latest` immutable: once pushed it can never move to a newer image. Add {\"matching\": [\"latest\"]} to `exceptions` if it should keep moving".into(),
            ));
        }
    }
    for (index, (source, compiled)) in doc.exceptions.iter().zip(&imm.exceptions).enumerate() {
        let path = format!("immutability.exceptions[{index}]");
        selector_lints(source, compiled, &path, None, Alphabet::Tag, &mut out);
    }
    if let Some(permissions) = &policy.document.permissions {
        for (index, image) in permissions.images.iter().enumerate() {
            if !permissions.repositories.is_empty()
                && !permissions.repositories.contains_key(&image.repository)
            {
                out.push(lint(
                    LintCode::UnknownRepository,
                    format!("permissions.images[{index}].repository"),
                    None,
                    format!(
                        "repository `{}` has no grants in `permissions.repositories`, so only workspace admins (and overrides) reach this image; is the name misspelled?",
                        image.repository
                    ),
                ));
            }
        }
    }
    out
}

fn excepted(policy: &Policy, tag: &str) -> bool {
    policy
        .immutability
        .exceptions
        .iter()
        .any(|e| e.matches(tag))
}

/// Lints about one selector on its own.
fn selector_lints(
    source: &document::Selector,
    compiled: &Selector,
    path: &str,
    rule: Option<&str>,
    alphabet: Alphabet,
    out: &mut Vec<Lint>,
) {
    let noun = alphabet.noun();
    match source {
        document::Selector::Regex(re) => {
            let path = format!("{path}.regex");
            if let Some(message) = unanchored(re, compiled.hir(), noun) {
                out.push(lint(LintCode::UnanchoredRegex, path.clone(), rule, message));
            }
            if let Some(offset) = lone_dot(compiled.ast()) {
                out.push(Lint {
                    offset: Some(pattern::char_offset(re, offset)),
                    ..lint(
                        LintCode::UnescapedDot,
                        path.clone(),
                        rule,
                        "`.` matches any character, so a pattern like `v1.2` also matches `v1x2`; write `\\.` for a literal dot".to_owned(),
                    )
                });
            }
            if alphabet == Alphabet::Tag && matches_empty_anywhere(compiled.hir()) {
                out.push(lint(
                    LintCode::MatchesEveryTag,
                    path.clone(),
                    rule,
                    format!(
                        "regex `{re}` can match the empty string, and a regex matches anywhere in a tag, so it matches every tag: {}; did you mean `.+` (or `.*` after a prefix) instead of `*`, or a `?` too many?",
                        if rule.is_some() {
                            "the rule protects them all, `latest` included"
                        } else {
                            "the exception exempts them all"
                        }
                    ),
                ));
            }
            if !can_match(compiled.hir(), alphabet) || anchored_empty(compiled.hir()) {
                out.push(lint(
                    LintCode::NeverMatches,
                    path,
                    rule,
                    format!(
                        "regex `{re}` can never match a valid {noun}, so the rule protects nothing"
                    ),
                ));
            }
        }
        document::Selector::Matching(globs) => {
            if !can_match(compiled.hir(), alphabet) {
                out.push(lint(
                    LintCode::NeverMatches,
                    format!("{path}.matching"),
                    rule,
                    format!(
                        "no glob of `{}` can match a valid {noun} ({noun}s hold only {}), so the selector matches nothing",
                        globs.join(","),
                        match alphabet {
                            Alphabet::Tag => "letters, digits, `_`, `.` and `-`",
                            Alphabet::Image => "lowercase letters, digits, `_`, `.`, `-` and `/`",
                        }
                    ),
                ));
            }
        }
        document::Selector::Excluding(globs) => {
            let everything = match alphabet {
                Alphabet::Tag => globs.iter().any(|g| g == "*" || g == "**"),
                Alphabet::Image => globs.iter().any(|g| g == "**"),
            };
            if everything {
                out.push(lint(
                    LintCode::NeverMatches,
                    format!("{path}.excluding"),
                    rule,
                    format!(
                        "excluding `{}` excludes every {noun}, so the selector matches nothing",
                        globs.join(",")
                    ),
                ));
            }
        }
    }
}

/// The message for a regex that is not anchored at both ends, if it is not.
fn unanchored(source: &str, hir: &Hir, noun: &str) -> Option<String> {
    let props = hir.properties();
    let start = props.look_set_prefix().contains(Look::Start);
    // A pattern ending in `.*`, or in a separator (`^release-`, `^dev_`, `^v1\.`), is a
    // deliberate prefix match; one ending in a name or a number (`^prod`, `^v\d+`) is
    // probably meant to stop there.
    let end = props.look_set_suffix().contains(Look::End)
        || [".*", ".+", "-", "_", "\\.", "/"]
            .iter()
            .any(|tail| source.ends_with(tail));
    let literal = match hir.kind() {
        HirKind::Literal(lit) => std::str::from_utf8(&lit.0).ok(),
        _ => None,
    };
    match (start, end, literal) {
        (true, true, _) => None,
        (false, false, Some(lit)) => Some(format!(
            "regex `{source}` is not anchored: it matches any {noun} containing `{lit}`, such as `pre{lit}` or `{lit}-old`; write `^{lit}$` to match exactly"
        )),
        (false, false, None) => Some(format!(
            "regex `{source}` is not anchored: it matches any {noun} that merely contains a match; add `^` and `$` to match whole {noun}s"
        )),
        (false, true, _) => Some(format!(
            "regex `{source}` is not anchored at the start: it also matches {noun}s that only end with a match; start it with `^`"
        )),
        (true, false, _) => Some(format!(
            "regex `{source}` is not anchored at the end: it also matches {noun}s that only start with a match (`v1.2.3` patterns also catch `v1.2.3-rc1`); end it with `$`"
        )),
    }
}

/// Byte offset of the first `.` not under a repetition (`.*`, `.+`, `.?`, `.{n}` are deliberate).
fn lone_dot(ast: &Ast) -> Option<usize> {
    match ast {
        Ast::Dot(span) => Some(span.start.offset),
        Ast::Repetition(rep) => match (&*rep.ast, &rep.op.kind) {
            (
                Ast::Dot(_),
                RepetitionKind::ZeroOrMore | RepetitionKind::OneOrMore | RepetitionKind::Range(_),
            ) => None,
            (Ast::Dot(_), RepetitionKind::ZeroOrOne) => None,
            (inner, _) => lone_dot(inner),
        },
        Ast::Group(group) => lone_dot(&group.ast),
        Ast::Alternation(alt) => alt.asts.iter().find_map(lone_dot),
        Ast::Concat(concat) => concat.asts.iter().find_map(lone_dot),
        _ => None,
    }
}

/// Whether some string over `alphabet` could match (look-arounds ignored).
fn can_match(hir: &Hir, alphabet: Alphabet) -> bool {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => true,
        HirKind::Literal(lit) => lit.0.iter().all(|&b| alphabet.allows(b)),
        HirKind::Class(Class::Bytes(class)) => class
            .ranges()
            .iter()
            .any(|r| (r.start()..=r.end()).any(|b| alphabet.allows(b))),
        HirKind::Class(Class::Unicode(class)) => class.ranges().iter().any(|r| {
            (r.start()..=r.end())
                .take_while(char::is_ascii)
                .any(|c| u8::try_from(c).is_ok_and(|b| alphabet.allows(b)))
        }),
        HirKind::Repetition(rep) => rep.min == 0 || can_match(&rep.sub, alphabet),
        HirKind::Capture(cap) => can_match(&cap.sub, alphabet),
        HirKind::Concat(items) => items.iter().all(|h| can_match(h, alphabet)),
        HirKind::Alternation(items) => items.iter().any(|h| can_match(h, alphabet)),
    }
}

/// `v*`, `(prod)?`, `^v*`: a regex that can match nothing, not held by anchors at
/// both ends, finds that empty match in every tag.
fn matches_empty_anywhere(hir: &Hir) -> bool {
    let props = hir.properties();
    props.minimum_len() == Some(0)
        && !(props.look_set_prefix().contains(Look::Start)
            && props.look_set_suffix().contains(Look::End))
}

/// `^$` and the like: anchored at both ends around nothing, so only an empty name matches.
fn anchored_empty(hir: &Hir) -> bool {
    let props = hir.properties();
    props.look_set_prefix().contains(Look::Start)
        && props.look_set_suffix().contains(Look::End)
        && props.maximum_len() == Some(0)
}

/// Whether the earlier rule `a` matches everything rule `b` matches.
fn covers(a: &Rule, b: &Rule) -> bool {
    let repositories = match (&a.repositories, &b.repositories) {
        (None, _) => true,
        (Some(a), Some(b)) => selector_covers(a, b),
        (Some(_), None) => false,
    };
    repositories && selector_covers(&a.tags, &b.tags)
}

/// Whether selector `a` matches at least what `b` matches, by what can be seen
/// without solving regex inclusion: `a` matches every tag, or is the same selector,
/// or its glob list contains `b`'s.
fn selector_covers(a: &Selector, b: &Selector) -> bool {
    if matches_every_tag(a) || (a.kind() == b.kind() && a.display() == b.display()) {
        return true;
    }
    match (a.kind(), b.kind()) {
        (SelectorKind::Matching, SelectorKind::Matching) => {
            b.globs().iter().all(|g| a.globs().contains(g))
        }
        (SelectorKind::Excluding, SelectorKind::Excluding) => {
            a.globs().iter().all(|g| b.globs().contains(g))
        }
        _ => false,
    }
}

/// Whether a tag selector matches every valid tag: a regex that matches the empty
/// string with no assertion, or a `*`/`**` glob.
fn matches_every_tag(selector: &Selector) -> bool {
    match selector.kind() {
        SelectorKind::Regex => {
            let props = selector.hir().properties();
            props.minimum_len() == Some(0) && props.look_set().is_empty()
        }
        SelectorKind::Matching => selector.globs().iter().any(|g| &**g == "*" || &**g == "**"),
        SelectorKind::Excluding => false,
    }
}
