//! Warnings a careful admin wants before saving a policy. A lint never
//! refuses a policy; it points at something that probably does not do what its
//! author meant.

use crate::document::{self, Protect};
use crate::names;
use crate::pattern;
use crate::policy::{Immutability, Policy, Rule};
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

/// Adds a lint, if a check produced one.
fn report(out: &mut Vec<Lint>, lint: Option<Lint>) {
    if let Some(lint) = lint {
        out.push(lint);
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

    /// The characters its names hold, in words.
    fn characters(self) -> &'static str {
        match self {
            Alphabet::Tag => "letters, digits, `_`, `.` and `-`",
            Alphabet::Image => "lowercase letters, digits, `_`, `.`, `-` and `/`",
        }
    }

    /// Whether one glob matches every name: `*` or `**` for a tag, `**` for an
    /// image name (whose `*` stops at `/`).
    fn glob_matches_all(self, glob: &str) -> bool {
        glob == "**" || (self == Alphabet::Tag && glob == "*")
    }
}

/// Computes every lint of a compiled policy, in a stable order: the rules'
/// presence, each rule, the exceptions against the rules, each exception, each
/// image link.
pub(crate) fn lints(policy: &Policy) -> Vec<Lint> {
    let mut out = Vec::new();
    report(&mut out, no_rules(policy));
    report(&mut out, rules_ignored(policy));
    if policy.immutability.protect == Protect::Some {
        let sources = &policy.document.immutability.rules;
        for (index, (source, rule)) in sources.iter().zip(&policy.immutability.rules).enumerate() {
            rule_lints(policy, index, source, rule, &mut out);
        }
    }
    report(&mut out, exceptions_cancel_rules(policy));
    report(&mut out, all_protects_latest(policy));
    exception_lints(policy, &mut out);
    if let Some(permissions) = &policy.document.permissions {
        for (index, image) in permissions.images.iter().enumerate() {
            report(&mut out, unknown_repository(permissions, index, image));
        }
    }
    out
}

/// `protect: some` with no rules.
fn no_rules(policy: &Policy) -> Option<Lint> {
    if policy.immutability.protect != Protect::Some
        || !policy.document.immutability.rules.is_empty()
    {
        return None;
    }
    Some(lint(
        LintCode::NoRules,
        "immutability.protect".into(),
        None,
        "`protect` is `some` but there are no rules, so no tag is protected; add a rule or choose `all`".into(),
    ))
}

/// Rules under `protect: none` or `all`.
fn rules_ignored(policy: &Policy) -> Option<Lint> {
    let mode = match policy.immutability.protect {
        Protect::All => "all",
        Protect::None => "none",
        Protect::Some => return None,
    };
    if policy.document.immutability.rules.is_empty() {
        return None;
    }
    Some(lint(
        LintCode::RulesIgnored,
        "immutability.rules".into(),
        None,
        format!("rules are only meaningful under `protect: some`; under `{mode}` they are ignored"),
    ))
}

/// Every lint of one rule (`protect: some`), in the order they are reported: its
/// selectors', then its own among the other rules'.
fn rule_lints(
    policy: &Policy,
    index: usize,
    source: &document::RuleDocument,
    rule: &Rule,
    out: &mut Vec<Lint>,
) {
    let path = format!("immutability.rules[{index}]");
    let name = Some(&*rule.name);
    let tags = format!("{path}.tags");
    selector_lints(
        &site(&source.tags, &rule.tags, &tags, name, Alphabet::Tag),
        out,
    );
    if let (Some(source), Some(compiled)) = (&source.repositories, &rule.repositories) {
        let path = format!("{path}.repositories");
        selector_lints(&site(source, compiled, &path, name, Alphabet::Image), out);
    }
    report(out, excluding_does_not_subtract(policy, &path, rule));
    report(out, shadowed_rule(policy, index, &path, rule));
    report(out, protects_latest(policy, &path, rule));
}

/// An `excluding` rule next to other rules: it does not subtract from them.
fn excluding_does_not_subtract(policy: &Policy, path: &str, rule: &Rule) -> Option<Lint> {
    if rule.tags.kind() != SelectorKind::Excluding || policy.immutability.rules.len() <= 1 {
        return None;
    }
    Some(lint(
        LintCode::ExcludingDoesNotSubtract,
        format!("{path}.tags.excluding"),
        Some(&rule.name),
        format!(
            "rule \"{}\" protects every tag except its list on its own; it does not subtract from the other rules (rules are OR-ed). To exempt tags from every rule, use `exceptions`",
            rule.name
        ),
    ))
}

/// A rule an earlier rule always pre-empts.
fn shadowed_rule(policy: &Policy, index: usize, path: &str, rule: &Rule) -> Option<Lint> {
    let earlier = policy
        .immutability
        .rules
        .iter()
        .take(index)
        .find(|earlier| covers(earlier, rule))?;
    Some(lint(
        LintCode::ShadowedRule,
        path.to_owned(),
        Some(&rule.name),
        format!(
            "rule \"{}\" is shadowed by the earlier rule \"{}\": every tag it protects is already protected by it, so decisions never name it",
            rule.name, earlier.name
        ),
    ))
}

/// A rule that protects `latest`, which no exception exempts.
fn protects_latest(policy: &Policy, path: &str, rule: &Rule) -> Option<Lint> {
    if !rule.tags.matches("latest").or_match() || excepted(policy, "latest") {
        return None;
    }
    Some(lint(
        LintCode::ProtectsLatest,
        format!("{path}.tags"),
        Some(&rule.name),
        format!(
            "rule \"{}\" protects `latest`: once pushed it can never move to a newer image. Add {{\"matching\": [\"latest\"]}} to `exceptions` if it should keep moving",
            rule.name
        ),
    ))
}

/// The exceptions exempt everything the rules protect (`some`), or every tag (`all`).
fn exceptions_cancel_rules(policy: &Policy) -> Option<Lint> {
    let imm = &policy.immutability;
    let message = match imm.protect {
        Protect::Some if cancelled(imm) => {
            "the exceptions exempt every tag the rules protect, so no tag is immutable"
        }
        Protect::All if imm.exceptions.iter().any(matches_every_tag) => {
            "an exception matches every tag, which cancels `protect: all`: no tag is immutable"
        }
        _ => return None,
    };
    Some(lint(
        LintCode::ExceptionsCancelRules,
        "immutability.exceptions".into(),
        None,
        message.into(),
    ))
}

/// Whether there are rules and every one is covered by an exception.
fn cancelled(imm: &Immutability) -> bool {
    !imm.rules.is_empty()
        && imm.rules.iter().all(|rule| {
            imm.exceptions
                .iter()
                .any(|e| selector_covers(e, &rule.tags))
        })
}

/// `protect: all` and no exception for `latest`. (An exception that matches every
/// tag, which [`exceptions_cancel_rules`] reports, matches `latest` too.)
fn all_protects_latest(policy: &Policy) -> Option<Lint> {
    if policy.immutability.protect != Protect::All || excepted(policy, "latest") {
        return None;
    }
    Some(lint(
        LintCode::ProtectsLatest,
        "immutability.protect".into(),
        None,
        "`protect: all` makes `latest` immutable: once pushed it can never move to a newer image. Add {\"matching\": [\"latest\"]} to `exceptions` if it should keep moving".into(),
    ))
}

/// The selector lints of every exception.
fn exception_lints(policy: &Policy, out: &mut Vec<Lint>) {
    let sources = &policy.document.immutability.exceptions;
    for (index, (source, compiled)) in sources
        .iter()
        .zip(&policy.immutability.exceptions)
        .enumerate()
    {
        let path = format!("immutability.exceptions[{index}]");
        selector_lints(&site(source, compiled, &path, None, Alphabet::Tag), out);
    }
}

/// An image linked to a repository that has no grants (when some repository has).
fn unknown_repository(
    permissions: &document::PermissionsDocument,
    index: usize,
    image: &document::ImageDocument,
) -> Option<Lint> {
    if permissions.repositories.is_empty()
        || permissions.repositories.contains_key(&image.repository)
    {
        return None;
    }
    Some(lint(
        LintCode::UnknownRepository,
        format!("permissions.images[{index}].repository"),
        None,
        format!(
            "repository `{}` has no grants in `permissions.repositories`, so only workspace admins (and overrides) reach this image; is the name misspelled?",
            image.repository
        ),
    ))
}

/// Whether an exception exempts `tag`.
fn excepted(policy: &Policy, tag: &str) -> bool {
    policy.immutability.exempts(tag)
}

/// One selector under lint: as written, compiled, where, and in which rule.
struct Site<'a> {
    source: &'a document::Selector,
    compiled: &'a Selector,
    /// JSON path of the selector (its field, `.regex` or a glob list, is added).
    path: &'a str,
    rule: Option<&'a str>,
    alphabet: Alphabet,
}

/// A [`Site`]; `rule` is `None` for an exception.
fn site<'a>(
    source: &'a document::Selector,
    compiled: &'a Selector,
    path: &'a str,
    rule: Option<&'a str>,
    alphabet: Alphabet,
) -> Site<'a> {
    Site {
        source,
        compiled,
        path,
        rule,
        alphabet,
    }
}

impl Site<'_> {
    /// A lint at the selector's field (`regex`, `matching` or `excluding`).
    fn lint(&self, code: LintCode, message: String) -> Lint {
        let field = match self.source {
            document::Selector::Regex(_) => "regex",
            document::Selector::Matching(_) => "matching",
            document::Selector::Excluding(_) => "excluding",
        };
        lint(code, format!("{}.{field}", self.path), self.rule, message)
    }
}

/// Lints about one selector on its own, in the order they are reported.
fn selector_lints(site: &Site<'_>, out: &mut Vec<Lint>) {
    report(out, unanchored_regex(site));
    report(out, unescaped_dot(site));
    report(out, regex_matches_every_tag(site));
    report(out, never_matches(site));
}

/// A regex not anchored at both ends.
fn unanchored_regex(site: &Site<'_>) -> Option<Lint> {
    let document::Selector::Regex(source) = site.source else {
        return None;
    };
    let hir = site.compiled.hir();
    let props = hir.properties();
    let start = anchored_start(hir);
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
    let noun = site.alphabet.noun();
    let message = match (start, end, literal) {
        (true, true, _) => return None,
        (false, false, Some(lit)) => format!(
            "regex `{source}` is not anchored: it matches any {noun} containing `{lit}`, such as `pre{lit}` or `{lit}-old`; write `^{lit}$` to match exactly"
        ),
        (false, false, None) => format!(
            "regex `{source}` is not anchored: it matches any {noun} that merely contains a match; add `^` and `$` to match whole {noun}s"
        ),
        (false, true, _) => format!(
            "regex `{source}` is not anchored at the start: it also matches {noun}s that only end with a match; start it with `^`"
        ),
        (true, false, _) => format!(
            "regex `{source}` is not anchored at the end: it also matches {noun}s that only start with a match (`v1.2.3` patterns also catch `v1.2.3-rc1`); end it with `$`"
        ),
    };
    Some(site.lint(LintCode::UnanchoredRegex, message))
}

/// A lone `.` in a regex, located at it.
fn unescaped_dot(site: &Site<'_>) -> Option<Lint> {
    let document::Selector::Regex(source) = site.source else {
        return None;
    };
    let offset = lone_dot(site.compiled.ast())?;
    Some(Lint {
        offset: Some(pattern::char_offset(source, offset)),
        ..site.lint(
            LintCode::UnescapedDot,
            "`.` matches any character, so a pattern like `v1.2` also matches `v1x2`; write `\\.` for a literal dot".to_owned(),
        )
    })
}

/// A tag regex that can match the empty string somewhere, so every tag.
fn regex_matches_every_tag(site: &Site<'_>) -> Option<Lint> {
    let document::Selector::Regex(source) = site.source else {
        return None;
    };
    if site.alphabet != Alphabet::Tag || !matches_empty_anywhere(site.compiled.hir()) {
        return None;
    }
    let what = if site.rule.is_some() {
        "the rule protects them all, `latest` included"
    } else {
        "the exception exempts them all"
    };
    Some(site.lint(
        LintCode::MatchesEveryTag,
        format!(
            "regex `{source}` can match the empty string, and a regex matches anywhere in a tag, so it matches every tag: {what}; did you mean `.+` (or `.*` after a prefix) instead of `*`, or a `?` too many?"
        ),
    ))
}

/// A selector that can never match a valid name of its alphabet.
fn never_matches(site: &Site<'_>) -> Option<Lint> {
    let hir = site.compiled.hir();
    let noun = site.alphabet.noun();
    let message = match site.source {
        document::Selector::Regex(re) => {
            if can_match(hir, site.alphabet) && !anchored_empty(hir) {
                return None;
            }
            format!("regex `{re}` can never match a valid {noun}, so the rule protects nothing")
        }
        document::Selector::Matching(globs) => {
            if can_match(hir, site.alphabet) {
                return None;
            }
            format!(
                "no glob of `{}` can match a valid {noun} ({noun}s hold only {}), so the selector matches nothing",
                globs.join(","),
                site.alphabet.characters()
            )
        }
        document::Selector::Excluding(globs) => {
            if !globs.iter().any(|g| site.alphabet.glob_matches_all(g)) {
                return None;
            }
            format!(
                "excluding `{}` excludes every {noun}, so the selector matches nothing",
                globs.join(",")
            )
        }
    };
    Some(site.lint(LintCode::NeverMatches, message))
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

/// Whether the regex is held by `^` at its start.
fn anchored_start(hir: &Hir) -> bool {
    hir.properties().look_set_prefix().contains(Look::Start)
}

/// Whether the regex is held by `^` and `$` at both ends.
fn anchored_both(hir: &Hir) -> bool {
    anchored_start(hir) && hir.properties().look_set_suffix().contains(Look::End)
}

/// `v*`, `(prod)?`, `^v*`: a regex that can match nothing, not held by anchors at
/// both ends, finds that empty match in every tag.
fn matches_empty_anywhere(hir: &Hir) -> bool {
    hir.properties().minimum_len() == Some(0) && !anchored_both(hir)
}

/// `^$` and the like: anchored at both ends around nothing, so only an empty name matches.
fn anchored_empty(hir: &Hir) -> bool {
    anchored_both(hir) && hir.properties().maximum_len() == Some(0)
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
        SelectorKind::Matching => selector
            .globs()
            .iter()
            .any(|g| Alphabet::Tag.glob_matches_all(g)),
        SelectorKind::Excluding => false,
    }
}
