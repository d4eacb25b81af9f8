//! parse → validate → compile. Every problem is collected and located; a policy
//! with any problem is refused whole.

use crate::document::{self, ImageDocument, LimitsSpec, PermissionsDocument, PolicyDocument};
use crate::error::{LoadError, LoadErrorCode, LoadErrors};
use crate::json::{JsonError, from_json};
use crate::limits::{
    CEILING, Limits, MAX_IMAGE_PATTERNS, MAX_NAME_CHARS, MAX_POLICY_BYTES, MAX_POLICY_WEIGHT,
    MAX_RULE_NAME_CHARS,
};
use crate::names;
use crate::pattern::PatternErrorKind;
use crate::policy::{Grants, ImageLink, Immutability, Permissions, Policy, Rule};
use crate::principal::Principal;
use crate::role::Role;
use crate::selector::{Selector, SelectorError};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Parses policy JSON into its document, locating structural problems. Text
/// over [`MAX_POLICY_BYTES`] is refused unread.
pub fn parse(text: &str) -> Result<PolicyDocument, LoadErrors> {
    if text.len() > MAX_POLICY_BYTES {
        return Err(LoadErrors(vec![LoadError::new(
            LoadErrorCode::PolicyTooLarge,
            "",
            format!(
                "the policy is {} bytes; taglock reads policies of at most {MAX_POLICY_BYTES} bytes ({} MiB)",
                text.len(),
                MAX_POLICY_BYTES / (1024 * 1024)
            ),
        )]));
    }
    from_json(text).map_err(|err| LoadErrors(vec![json_error(err)]))
}

fn json_error(err: JsonError) -> LoadError {
    let code = if err.syntax {
        LoadErrorCode::JsonSyntax
    } else {
        LoadErrorCode::Schema
    };
    LoadError {
        code,
        message: err.message,
        path: err.path,
        rule: None,
        offset: None,
        line: (err.line > 0).then_some(err.line),
        column: (err.line > 0).then_some(err.column),
    }
}

/// Collects problems while compiling, and what is left of the policy's pattern
/// weight budget ([`MAX_POLICY_WEIGHT`]).
struct Problems(Vec<LoadError>, u64);

impl Default for Problems {
    fn default() -> Problems {
        Problems(Vec::new(), MAX_POLICY_WEIGHT)
    }
}

impl Problems {
    fn push(&mut self, error: LoadError) {
        self.0.push(error);
    }

    fn extend(&mut self, error: Option<LoadError>) {
        self.0.extend(error);
    }
}

/// The message for a list longer than its cap: the entries past the cap are not
/// examined (nor compiled), so one oversized list cannot make loading slow.
fn too_many(count: usize, what: &str, max: usize) -> String {
    format!("{count} {what}, but the limits allow at most {max}; only the first {max} were checked")
}

/// A name's problem if it is longer than `max` characters: `name-too-long`.
fn check_length(text: &str, max: usize, path: &str, what: &str) -> Option<LoadError> {
    let length = text.chars().count();
    (length > max).then(|| {
        LoadError::new(
            LoadErrorCode::NameTooLong,
            path,
            format!("{what} has {length} characters; at most {max} are allowed"),
        )
        .at_offset(Some(max))
    })
}

/// Validates and compiles a document.
pub fn compile(document: PolicyDocument) -> Result<Policy, LoadErrors> {
    let mut problems = Problems::default();
    if document.version != 1 {
        problems.push(LoadError::new(
            LoadErrorCode::UnsupportedVersion,
            "version",
            format!(
                "version {} is not supported; this taglock reads version 1",
                document.version
            ),
        ));
    }
    let limits = check_limits(document.limits, &mut problems);
    let immutability = compile_immutability(&document.immutability, limits, &mut problems);
    let permissions = document
        .permissions
        .as_ref()
        .map(|p| compile_permissions(p, limits, &mut problems));
    if !problems.0.is_empty() {
        return Err(LoadErrors(problems.0));
    }
    let mut policy = Policy {
        mode: document.mode,
        limits,
        immutability,
        permissions,
        lints: Vec::new(),
        document,
    };
    policy.lints = crate::pattern::scoped(|| crate::lint::lints(&policy));
    Ok(policy)
}

fn check_limits(spec: LimitsSpec, problems: &mut Problems) -> Limits {
    let limits = Limits::from(spec);
    let checks = [
        ("max_rules", limits.max_rules, CEILING.max_rules),
        (
            "max_pattern_length",
            limits.max_pattern_length,
            CEILING.max_pattern_length,
        ),
    ];
    for (field, value, ceiling) in checks {
        if !within(value, ceiling) {
            problems.push(LoadError::new(
                LoadErrorCode::InvalidLimits,
                format!("limits.{field}"),
                format!("`{field}` is {value}; it must be between 1 and {ceiling}"),
            ));
        }
    }
    // An invalid number is already reported; check the rest against the ceiling so
    // it does not cause a cascade of spurious errors.
    let valid_or_ceiling = |value: usize, ceiling: usize| {
        if within(value, ceiling) {
            value
        } else {
            ceiling
        }
    };
    Limits {
        max_rules: valid_or_ceiling(limits.max_rules, CEILING.max_rules),
        max_pattern_length: valid_or_ceiling(limits.max_pattern_length, CEILING.max_pattern_length),
    }
}

/// Whether a limit is valid: between 1 and its ceiling.
fn within(value: usize, ceiling: usize) -> bool {
    value != 0 && value <= ceiling
}

/// Compiles the `immutability` section: its rules, its exceptions, and its
/// settings as written (each has a default in the document).
fn compile_immutability(
    doc: &document::ImmutabilityDocument,
    limits: Limits,
    problems: &mut Problems,
) -> Immutability {
    problems.extend(check_count(
        doc.rules.len(),
        limits.max_rules,
        "immutability.rules",
        "rules",
    ));
    problems.extend(check_count(
        doc.exceptions.len(),
        limits.max_rules,
        "immutability.exceptions",
        "exceptions",
    ));
    Immutability {
        protect: doc.protect,
        rules: compile_rules(&doc.rules, limits, problems),
        exceptions: compile_exceptions(&doc.exceptions, limits, problems),
        identical_repush: doc.identical_repush,
        admin_delete: doc.admin_delete,
        referrer_tags: doc.referrer_tags,
    }
}

/// A list's problem if it holds more than `max` entries: `too-many-rules`.
fn check_count(count: usize, max: usize, path: &str, what: &str) -> Option<LoadError> {
    (count > max).then(|| {
        LoadError::new(
            LoadErrorCode::TooManyRules,
            path,
            too_many(count, what, max),
        )
    })
}

/// Compiles the rules up to the limit; a rule with a problem is left out.
fn compile_rules(
    rules: &[document::RuleDocument],
    limits: Limits,
    problems: &mut Problems,
) -> Vec<Rule> {
    let mut names = BTreeSet::new();
    let mut compiled = Vec::with_capacity(rules.len().min(limits.max_rules));
    for (index, rule) in rules.iter().enumerate().take(limits.max_rules) {
        if let Some(rule) = compile_rule(index, rule, limits, &mut names, problems) {
            compiled.push(rule);
        }
    }
    compiled
}

/// Compiles one rule, checking its name (unique among `names`) and both selectors.
fn compile_rule<'d>(
    index: usize,
    rule: &'d document::RuleDocument,
    limits: Limits,
    names: &mut BTreeSet<&'d str>,
    problems: &mut Problems,
) -> Option<Rule> {
    let path = format!("immutability.rules[{index}]");
    let rule_name = check_rule_name(&rule.name, &path, names, problems);
    let tags = compile_selector(
        &rule.tags,
        &format!("{path}.tags"),
        rule_name,
        limits,
        problems,
    );
    // `Some(None)`: the rule applies to every image; `None`: the selector failed.
    let repositories = match &rule.repositories {
        None => Some(None),
        Some(s) => compile_selector(
            s,
            &format!("{path}.repositories"),
            rule_name,
            limits,
            problems,
        )
        .map(Some),
    };
    Some(Rule {
        name: Arc::from(rule.name.as_str()),
        tags: tags?,
        repositories: repositories?,
    })
}

/// Checks a rule's name: quotable, not empty, unique among `names`. Returns the
/// name when the rule's other problems may quote it.
fn check_rule_name<'d>(
    name: &'d str,
    path: &str,
    names: &mut BTreeSet<&'d str>,
    problems: &mut Problems,
) -> Option<&'d str> {
    let unquotable = unquotable_name(name, path);
    // A name that cannot be quoted (too long, or control characters) is not.
    let quotable = unquotable.is_none();
    problems.extend(unquotable);
    if name.trim().is_empty() {
        problems.push(LoadError::new(
            LoadErrorCode::EmptyRuleName,
            format!("{path}.name"),
            "every rule needs a name; decisions quote it",
        ));
        return None;
    }
    if !names.insert(name) && quotable {
        problems.push(
            LoadError::new(
                LoadErrorCode::DuplicateRuleName,
                format!("{path}.name"),
                format!("another rule is already named `{name}`; rule names are unique"),
            )
            .in_rule(Some(name)),
        );
    }
    quotable.then_some(name)
}

/// Why a rule name cannot be quoted, if it cannot: too long, or control characters.
fn unquotable_name(name: &str, path: &str) -> Option<LoadError> {
    let path = format!("{path}.name");
    if let Some(error) = check_length(name, MAX_RULE_NAME_CHARS, &path, "the rule name") {
        return Some(error);
    }
    let at = name.chars().position(char::is_control)?;
    Some(
        LoadError::new(
            LoadErrorCode::InvalidRuleName,
            path,
            "a rule name cannot hold control characters (line breaks, escapes): decisions, logs and terminals quote it",
        )
        .at_offset(Some(at)),
    )
}

/// Compiles the exceptions up to the limit; one with a problem is left out.
fn compile_exceptions(
    exceptions: &[document::Selector],
    limits: Limits,
    problems: &mut Problems,
) -> Vec<Selector> {
    exceptions
        .iter()
        .enumerate()
        .take(limits.max_rules)
        .filter_map(|(index, s)| {
            compile_selector(
                s,
                &format!("immutability.exceptions[{index}]"),
                None,
                limits,
                problems,
            )
        })
        .collect()
}

/// Compiles one selector, reporting its problems under `path`.
fn compile_selector(
    source: &document::Selector,
    path: &str,
    rule: Option<&str>,
    limits: Limits,
    problems: &mut Problems,
) -> Option<Selector> {
    let (field, globs) = match source {
        document::Selector::Regex(_) => ("regex", None),
        document::Selector::Matching(globs) => ("matching", Some(globs)),
        document::Selector::Excluding(globs) => ("excluding", Some(globs)),
    };
    let path = format!("{path}.{field}");
    if globs.is_some_and(|g| g.is_empty()) {
        problems.push(
            LoadError::new(
                LoadErrorCode::EmptyGlobList,
                path,
                "a glob list needs at least one glob",
            )
            .in_rule(rule),
        );
        return None;
    }
    let length = source.pattern_length();
    let fits = length <= limits.max_pattern_length;
    if !fits {
        problems.push(pattern_too_long(
            &path,
            rule,
            length,
            globs.is_some(),
            limits,
        ));
        if length > CEILING.max_pattern_length {
            // Too long to be worth compiling: nothing good can come of it.
            return None;
        }
    }
    match Selector::compile_within(source, &mut problems.1) {
        Ok(selector) => fits.then_some(selector),
        Err(error) => {
            problems.push(selector_error(error, path, rule));
            None
        }
    }
}

/// `pattern-too-long`, located at the limit.
fn pattern_too_long(
    path: &str,
    rule: Option<&str>,
    length: usize,
    globs: bool,
    limits: Limits,
) -> LoadError {
    let what = if globs {
        "the glob list (joined by commas)"
    } else {
        "the pattern"
    };
    LoadError::new(
        LoadErrorCode::PatternTooLong,
        path,
        format!(
            "{what} has {length} characters, but the limits allow at most {}",
            limits.max_pattern_length
        ),
    )
    .in_rule(rule)
    .at_offset(Some(limits.max_pattern_length))
}

/// A selector that does not compile, located at its glob when one is to blame.
fn selector_error(error: SelectorError, path: String, rule: Option<&str>) -> LoadError {
    let SelectorError { glob, error } = error;
    let code = match error.kind {
        PatternErrorKind::RegexSyntax => LoadErrorCode::RegexSyntax,
        PatternErrorKind::RegexUnsupported => LoadErrorCode::RegexUnsupported,
        PatternErrorKind::RegexTooLarge => LoadErrorCode::RegexTooLarge,
        PatternErrorKind::GlobSyntax => LoadErrorCode::GlobSyntax,
    };
    let path = match glob {
        Some(index) => format!("{path}[{index}]"),
        None => path,
    };
    LoadError::new(code, path, error.message)
        .in_rule(rule)
        .at_offset(error.offset)
}

/// Compiles the `permissions` section: admins, repositories' grants, image links.
fn compile_permissions(
    doc: &PermissionsDocument,
    limits: Limits,
    problems: &mut Problems,
) -> Permissions {
    let workspace_admins = principals(
        &doc.workspace_admins,
        "permissions.workspace_admins",
        problems,
    );
    let repositories = compile_grants(doc, problems);
    let (mut records, mut patterns) = compile_images(doc, limits, problems);
    let links = records
        .values_mut()
        .chain(patterns.iter_mut().map(|(_, link)| link));
    for link in links {
        link.grants = repositories.index(&link.repository);
    }
    Permissions {
        workspace_admins,
        repositories,
        records,
        patterns,
        pipelines_inherit_write: doc.pipelines_inherit_write,
    }
}

/// Each repository's grants, strongest role first.
fn compile_grants(doc: &PermissionsDocument, problems: &mut Problems) -> Grants {
    // The document's map gives the names sorted: `Grants` keeps them so.
    let mut repositories = Grants::default();
    for (name, grants) in &doc.repositories {
        if let Some(error) = check_length(
            name,
            MAX_NAME_CHARS,
            "permissions.repositories",
            "a repository name",
        ) {
            problems.push(error);
            continue;
        }
        let path = format!("permissions.repositories.{name}");
        if name.trim().is_empty() {
            problems.push(LoadError::new(
                LoadErrorCode::InvalidRepository,
                path.clone(),
                "a repository name cannot be empty",
            ));
        }
        let mut list = Vec::new();
        for (role, principals_text) in [
            (Role::Admin, &grants.admin),
            (Role::Write, &grants.write),
            (Role::Read, &grants.read),
        ] {
            let parsed = principals(principals_text, &format!("{path}.{role}"), problems);
            list.extend(parsed.into_iter().map(|p| (p, role)));
        }
        repositories.push(name.clone(), list);
    }
    repositories
}

/// The image links: exact records by name, and patterns (up to
/// [`MAX_IMAGE_PATTERNS`]) in order.
fn compile_images(
    doc: &PermissionsDocument,
    limits: Limits,
    problems: &mut Problems,
) -> (BTreeMap<String, ImageLink>, Vec<(Selector, ImageLink)>) {
    let mut records = BTreeMap::new();
    let mut patterns = Vec::new();
    let pattern_count = doc.images.iter().filter(|i| i.pattern.is_some()).count();
    problems.extend(check_count(
        pattern_count,
        MAX_IMAGE_PATTERNS,
        "permissions.images",
        "image patterns",
    ));
    let mut patterns_seen = 0usize;
    for (index, image) in doc.images.iter().enumerate() {
        let path = format!("permissions.images[{index}]");
        if image.pattern.is_some() {
            patterns_seen += 1;
            if patterns_seen > MAX_IMAGE_PATTERNS {
                continue;
            }
        }
        let Some(link) = image_link(image, doc, &path, problems) else {
            continue;
        };
        match (&image.name, &image.pattern) {
            (Some(name), None) => add_record(&mut records, name, link, &path, problems),
            (None, Some(pattern)) => {
                let compiled = compile_image_pattern(pattern, &path, limits, problems);
                if let Some(selector) = compiled {
                    patterns.push((selector, link));
                }
            }
            _ => problems.push(LoadError::new(
                LoadErrorCode::InvalidImageEntry,
                path,
                "an image entry has exactly one of `name` (a record) and `pattern` (a glob)",
            )),
        }
    }
    (records, patterns)
}

/// Adds an exact record: a valid image name, recorded once.
fn add_record(
    records: &mut BTreeMap<String, ImageLink>,
    name: &str,
    link: ImageLink,
    path: &str,
    problems: &mut Problems,
) {
    if let Err(err) = names::check_image_name(name) {
        problems.push(
            LoadError::new(
                LoadErrorCode::InvalidImageName,
                format!("{path}.name"),
                err.to_string(),
            )
            .at_offset(err.offset),
        );
    } else if records.insert(name.to_owned(), link).is_some() {
        problems.push(LoadError::new(
            LoadErrorCode::DuplicateImage,
            format!("{path}.name"),
            format!("image `{name}` has two records; keep one"),
        ));
    }
}

/// Compiles an image pattern as a one-glob list; its problems are located at the
/// `pattern` field the admin wrote, not at an invisible `matching`.
fn compile_image_pattern(
    pattern: &str,
    path: &str,
    limits: Limits,
    problems: &mut Problems,
) -> Option<Selector> {
    let source = document::Selector::Matching(vec![pattern.to_owned()]);
    let mut local = Problems(Vec::new(), problems.1);
    let compiled = compile_selector(&source, path, None, limits, &mut local);
    problems.1 = local.1;
    for mut problem in local.0 {
        problem.path = format!("{path}.pattern");
        problems.push(problem);
    }
    compiled
}

fn image_link(
    image: &ImageDocument,
    doc: &PermissionsDocument,
    path: &str,
    problems: &mut Problems,
) -> Option<ImageLink> {
    if let Some(error) = check_length(
        &image.repository,
        MAX_NAME_CHARS,
        &format!("{path}.repository"),
        "the repository name",
    ) {
        problems.push(error);
        return None;
    }
    if image.repository.trim().is_empty() {
        problems.push(LoadError::new(
            LoadErrorCode::InvalidRepository,
            format!("{path}.repository"),
            "an image links to a repository: name one",
        ));
        return None;
    }
    let mut overrides = Vec::new();
    for (principal, role) in &image.overrides {
        if let Some(error) = check_length(
            principal,
            MAX_NAME_CHARS,
            &format!("{path}.overrides"),
            "a principal",
        ) {
            problems.push(error);
            continue;
        }
        match Principal::parse(principal) {
            Ok(p) => overrides.push((p, *role)),
            Err(err) => problems.push(LoadError::new(
                LoadErrorCode::InvalidPrincipal,
                format!("{path}.overrides.{principal}"),
                err.to_string(),
            )),
        }
    }
    Some(ImageLink {
        repository: Arc::from(image.repository.as_str()),
        // Resolved once every repository's grants are compiled.
        grants: None,
        public: image.public,
        publish: image.publish.unwrap_or(doc.publish),
        overrides,
    })
}

fn principals(texts: &[String], path: &str, problems: &mut Problems) -> Vec<Principal> {
    texts
        .iter()
        .enumerate()
        .filter_map(|(index, text)| match Principal::parse(text) {
            _ if text.chars().count() > MAX_NAME_CHARS => {
                problems.extend(check_length(
                    text,
                    MAX_NAME_CHARS,
                    &format!("{path}[{index}]"),
                    "the principal",
                ));
                None
            }
            Ok(p) => Some(p),
            Err(err) => {
                problems.push(LoadError::new(
                    LoadErrorCode::InvalidPrincipal,
                    format!("{path}[{index}]"),
                    err.to_string(),
                ));
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::Policy;
    use crate::limits::MAX_POLICY_WEIGHT;
    use crate::pattern;

    /// The policy's patterns share one budget of [`MAX_POLICY_WEIGHT`]: exactly as
    /// many copies of a pattern load as its weight fits, the rest are refused
    /// (`tests/bounds.rs` checks the same from outside, without the weights).
    #[test]
    fn the_weight_budget_admits_exactly_what_fits() {
        let weight = pattern::weight(&pattern::parse(r"^\w{1000}$").unwrap().hir);
        let fit = usize::try_from(MAX_POLICY_WEIGHT / weight).unwrap();
        assert!(fit > 0 && fit < 1000, "{fit}");
        let rules: Vec<String> = (0..1000)
            .map(|i| format!(r#"{{"name": "r{i}", "tags": {{"regex": "^\\w{{1000}}$"}}}}"#))
            .collect();
        let text = format!(
            r#"{{"version": 1, "limits": {{"max_rules": 1000, "max_pattern_length": 4096}},
                "immutability": {{"protect": "some", "rules": [{}]}}}}"#,
            rules.join(",")
        );
        let errors = Policy::from_json(&text).unwrap_err();
        assert_eq!(errors.len(), 1000 - fit, "{weight}");
        assert_eq!(
            errors.as_slice()[0].path,
            format!("immutability.rules[{fit}].tags.regex")
        );
    }
}
