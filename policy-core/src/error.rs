//! Load errors: every problem of a refused policy, each located.

use serde::Serialize;
use std::fmt;

/// Stable codes for load errors (and the JSON `code` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoadErrorCode {
    /// The text is not JSON.
    JsonSyntax,
    /// JSON of the wrong shape: unknown field, wrong type, missing field, unknown value.
    Schema,
    /// `version` is not `1`.
    UnsupportedVersion,
    /// A regex that does not parse.
    RegexSyntax,
    /// A regex using backreferences or look-around, which RE2 does not have.
    RegexUnsupported,
    /// A regex whose compiled form exceeds the size cap.
    RegexTooLarge,
    /// A glob that does not parse.
    GlobSyntax,
    /// A glob list with no globs.
    EmptyGlobList,
    /// A pattern longer than the limits allow.
    PatternTooLong,
    /// More rules (or exceptions) than the limits allow.
    TooManyRules,
    /// Custom limits of zero or above the ceiling.
    InvalidLimits,
    /// A rule with an empty name.
    EmptyRuleName,
    /// Two rules with the same name.
    DuplicateRuleName,
    /// A principal that is not `user:`, `group:`, `token:` or `pipeline:` something.
    InvalidPrincipal,
    /// An image entry with neither or both of `name` and `pattern`.
    InvalidImageEntry,
    /// An image record whose name breaks the OCI grammar.
    InvalidImageName,
    /// Two records for the same image name.
    DuplicateImage,
    /// A repository name that is empty.
    InvalidRepository,
    /// A policy text larger than [`crate::limits::MAX_POLICY_BYTES`].
    PolicyTooLarge,
    /// A rule name, principal or repository name longer than its cap
    /// ([`crate::limits::MAX_RULE_NAME_CHARS`], [`crate::limits::MAX_NAME_CHARS`]).
    NameTooLong,
    /// A rule name holding a control character (it would reach terminals and logs).
    InvalidRuleName,
}

impl LoadErrorCode {
    /// The code as printed and serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            LoadErrorCode::JsonSyntax => "json-syntax",
            LoadErrorCode::Schema => "schema",
            LoadErrorCode::UnsupportedVersion => "unsupported-version",
            LoadErrorCode::RegexSyntax => "regex-syntax",
            LoadErrorCode::RegexUnsupported => "regex-unsupported",
            LoadErrorCode::RegexTooLarge => "regex-too-large",
            LoadErrorCode::GlobSyntax => "glob-syntax",
            LoadErrorCode::EmptyGlobList => "empty-glob-list",
            LoadErrorCode::PatternTooLong => "pattern-too-long",
            LoadErrorCode::TooManyRules => "too-many-rules",
            LoadErrorCode::InvalidLimits => "invalid-limits",
            LoadErrorCode::EmptyRuleName => "empty-rule-name",
            LoadErrorCode::DuplicateRuleName => "duplicate-rule-name",
            LoadErrorCode::InvalidPrincipal => "invalid-principal",
            LoadErrorCode::InvalidImageEntry => "invalid-image-entry",
            LoadErrorCode::InvalidImageName => "invalid-image-name",
            LoadErrorCode::DuplicateImage => "duplicate-image",
            LoadErrorCode::InvalidRepository => "invalid-repository",
            LoadErrorCode::PolicyTooLarge => "policy-too-large",
            LoadErrorCode::NameTooLong => "name-too-long",
            LoadErrorCode::InvalidRuleName => "invalid-rule-name",
        }
    }
}

impl fmt::Display for LoadErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem of a policy, located.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadError {
    /// Stable machine code.
    pub code: LoadErrorCode,
    /// What is wrong, for an admin.
    pub message: String,
    /// JSON path of the offending value, e.g. `immutability.rules[2].tags.regex`.
    pub path: String,
    /// The rule concerned, if the problem is inside a rule.
    pub rule: Option<String>,
    /// Character offset inside the pattern, when the problem is inside one.
    pub offset: Option<usize>,
    /// 1-based line and column in the JSON text, for structural problems.
    pub line: Option<usize>,
    /// See `line`.
    pub column: Option<usize>,
}

impl LoadError {
    /// A problem at `path` with no finer location.
    pub fn new(
        code: LoadErrorCode,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> LoadError {
        LoadError {
            code,
            message: message.into(),
            path: path.into(),
            rule: None,
            offset: None,
            line: None,
            column: None,
        }
    }

    /// Names the rule the problem is in.
    pub fn in_rule(mut self, rule: Option<&str>) -> LoadError {
        self.rule = rule.map(str::to_owned);
        self
    }

    /// Sets the character offset inside the pattern.
    pub fn at_offset(mut self, offset: Option<usize>) -> LoadError {
        self.offset = offset;
        self
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            write!(f, "{}", self.path)?;
        }
        if let Some(rule) = &self.rule {
            write!(f, " (rule \"{rule}\")")?;
        }
        if let Some(offset) = self.offset {
            write!(f, " at character {offset}")?;
        }
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, " (line {line}, column {column})")?;
        }
        if !self.path.is_empty() || self.rule.is_some() || self.line.is_some() {
            f.write_str(": ")?;
        }
        write!(f, "{} [{}]", self.message, self.code)
    }
}

/// Every problem of a refused policy. Never empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct LoadErrors(pub Vec<LoadError>);

impl LoadErrors {
    /// The problems, in document order.
    pub fn iter(&self) -> std::slice::Iter<'_, LoadError> {
        self.0.iter()
    }

    /// How many problems there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a refusal has at least one reason.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "policy refused: {n} problem{}",
            if n == 1 { "" } else { "s" }
        )?;
        for err in &self.0 {
            write!(f, "\n  {err}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadErrors {}

impl<'a> IntoIterator for &'a LoadErrors {
    type Item = &'a LoadError;
    type IntoIter = std::slice::Iter<'a, LoadError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}
