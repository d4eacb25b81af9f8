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
    policy.lints = crate::lint::lints(&policy);
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
        if value == 0 || value > ceiling {
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
        if value == 0 || value > ceiling {
            ceiling
        } else {
            value
        }
    };
    Limits {
        max_rules: valid_or_ceiling(limits.max_rules, CEILING.max_rules),
        max_pattern_length: valid_or_ceiling(limits.max_pattern_length, CEILING.max_pattern_length),
    }
}

fn compile_immutability(
    doc: &document::ImmutabilityDocument,
    limits: Limits,
    problems: &mut Problems,
) -> Immutability {
    if doc.rules.len() > limits.max_rules {
        problems.push(LoadError::new(
            LoadErrorCode::TooManyRules,
            "immutability.rules",
            too_many(doc.rules.len(), "rules", limits.max_rules),
        ));
    }
    if doc.exceptions.len() > limits.max_rules {
        problems.push(LoadError::new(
            LoadErrorCode::TooManyRules,
            "immutability.exceptions",
            too_many(doc.exceptions.len(), "exceptions", limits.max_rules),
        ));
    }
    let mut names = BTreeSet::new();
    let mut rules = Vec::with_capacity(doc.rules.len().min(limits.max_rules));
    for (index, rule) in doc.rules.iter().enumerate().take(limits.max_rules) {
        let path = format!("immutability.rules[{index}]");
        let name = rule.name.trim();
        // A name that cannot be quoted (too long, or control characters) is not.
        let mut quotable = true;
        if let Some(error) = check_length(
            &rule.name,
            MAX_RULE_NAME_CHARS,
            &format!("{path}.name"),
            "the rule name",
        ) {
            problems.push(error);
            quotable = false;
        } else if let Some(at) = rule.name.chars().position(char::is_control) {
            problems.push(
                LoadError::new(
                    LoadErrorCode::InvalidRuleName,
                    format!("{path}.name"),
                    "a rule name cannot hold control characters (line breaks, escapes): decisions, logs and terminals quote it",
                )
                .at_offset(Some(at)),
            );
            quotable = false;
        }
        if name.is_empty() {
            problems.push(LoadError::new(
                LoadErrorCode::EmptyRuleName,
                format!("{path}.name"),
                "every rule needs a name; decisions quote it",
            ));
        } else if !names.insert(rule.name.as_str()) && quotable {
            problems.push(
                LoadError::new(
                    LoadErrorCode::DuplicateRuleName,
                    format!("{path}.name"),
                    format!(
                        "another rule is already named `{}`; rule names are unique",
                        rule.name
                    ),
                )
                .in_rule(Some(&rule.name)),
            );
        }
        let rule_name = (!name.is_empty() && quotable).then_some(rule.name.as_str());
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
        if let (Some(tags), Some(repositories)) = (tags, repositories) {
            rules.push(Rule {
                name: Arc::from(rule.name.as_str()),
                tags,
                repositories,
            });
        }
    }
    let exceptions = doc
        .exceptions
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
        .collect();
    Immutability {
        protect: doc.protect,
        rules,
        exceptions,
        identical_repush: doc.identical_repush,
        admin_delete: doc.admin_delete,
        referrer_tags: doc.referrer_tags,
    }
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
    let mut ok = true;
    if length > limits.max_pattern_length {
        let what = if globs.is_some() {
            "the glob list (joined by commas)"
        } else {
            "the pattern"
        };
        problems.push(
            LoadError::new(
                LoadErrorCode::PatternTooLong,
                path.clone(),
                format!(
                    "{what} has {length} characters, but the limits allow at most {}",
                    limits.max_pattern_length
                ),
            )
            .in_rule(rule)
            .at_offset(Some(limits.max_pattern_length)),
        );
        ok = false;
        if length > CEILING.max_pattern_length {
            // Too long to be worth compiling: nothing good can come of it.
            return None;
        }
    }
    match Selector::compile_within(source, &mut problems.1) {
        Ok(selector) => ok.then_some(selector),
        Err(SelectorError { glob, error }) => {
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
            problems.push(
                LoadError::new(code, path, error.message)
                    .in_rule(rule)
                    .at_offset(error.offset),
            );
            None
        }
    }
}

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
    let mut records = BTreeMap::new();
    let mut patterns = Vec::new();
    let pattern_count = doc.images.iter().filter(|i| i.pattern.is_some()).count();
    if pattern_count > MAX_IMAGE_PATTERNS {
        problems.push(LoadError::new(
            LoadErrorCode::TooManyRules,
            "permissions.images",
            too_many(pattern_count, "image patterns", MAX_IMAGE_PATTERNS),
        ));
    }
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
            (Some(name), None) => {
                if let Err(err) = names::check_image_name(name) {
                    problems.push(
                        LoadError::new(
                            LoadErrorCode::InvalidImageName,
                            format!("{path}.name"),
                            err.to_string(),
                        )
                        .at_offset(err.offset),
                    );
                } else if records.insert(name.clone(), link).is_some() {
                    problems.push(LoadError::new(
                        LoadErrorCode::DuplicateImage,
                        format!("{path}.name"),
                        format!("image `{name}` has two records; keep one"),
                    ));
                }
            }
            (None, Some(pattern)) => {
                let source = document::Selector::Matching(vec![pattern.clone()]);
                // The pattern is compiled as a one-glob list; locate its problems at
                // the `pattern` field the admin wrote, not at an invisible `matching`.
                let mut local = Problems(Vec::new(), problems.1);
                let compiled = compile_selector(&source, &path, None, limits, &mut local);
                problems.1 = local.1;
                for mut problem in local.0 {
                    problem.path = format!("{path}.pattern");
                    problems.push(problem);
                }
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
    Permissions {
        workspace_admins,
        repositories,
        records,
        patterns,
        pipelines_inherit_write: doc.pipelines_inherit_write,
    }
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
