//! Load errors: every problem of a refused policy, each located.

use crate::unit_enum::codes;
use serde::Serialize;
use std::fmt;

codes! {
    /// Stable codes for load errors (and the JSON `code` field).
    pub enum LoadErrorCode {
        /// The text is not JSON.
        JsonSyntax = "json-syntax",
        /// JSON of the wrong shape: unknown field, wrong type, missing field, unknown value.
        Schema = "schema",
        /// `version` is not `1`.
        UnsupportedVersion = "unsupported-version",
        /// A regex that does not parse.
        RegexSyntax = "regex-syntax",
        /// A regex using backreferences or look-around, which RE2 does not have.
        RegexUnsupported = "regex-unsupported",
        /// A regex whose compiled form exceeds the size cap.
        RegexTooLarge = "regex-too-large",
        /// A glob that does not parse.
        GlobSyntax = "glob-syntax",
        /// A glob list with no globs.
        EmptyGlobList = "empty-glob-list",
        /// A pattern longer than the limits allow.
        PatternTooLong = "pattern-too-long",
        /// More rules (or exceptions) than the limits allow.
        TooManyRules = "too-many-rules",
        /// Custom limits of zero or above the ceiling.
        InvalidLimits = "invalid-limits",
        /// A rule with an empty name.
        EmptyRuleName = "empty-rule-name",
        /// Two rules with the same name.
        DuplicateRuleName = "duplicate-rule-name",
        /// A principal that is not `user:`, `group:`, `token:` or `pipeline:` something.
        InvalidPrincipal = "invalid-principal",
        /// An image entry with neither or both of `name` and `pattern`.
        InvalidImageEntry = "invalid-image-entry",
        /// An image record whose name breaks the OCI grammar.
        InvalidImageName = "invalid-image-name",
        /// Two records for the same image name.
        DuplicateImage = "duplicate-image",
        /// A repository name that is empty.
        InvalidRepository = "invalid-repository",
        /// A policy text larger than [`crate::Limits::MAX_POLICY_BYTES`].
        PolicyTooLarge = "policy-too-large",
        /// A rule name, principal or repository name longer than its cap
        /// ([`crate::Limits::MAX_RULE_NAME_CHARS`], [`crate::Limits::MAX_NAME_CHARS`]).
        NameTooLong = "name-too-long",
        /// A rule name holding a control character (it would reach terminals and logs).
        InvalidRuleName = "invalid-rule-name",
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

/// Every problem of a refused policy. Never empty: [`LoadErrors::new`] refuses an
/// empty list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct LoadErrors(pub(crate) Vec<LoadError>);

impl LoadErrors {
    /// The problems of a refused policy, or `None` for an empty list (a refusal
    /// has at least one reason).
    pub fn new(errors: Vec<LoadError>) -> Option<LoadErrors> {
        (!errors.is_empty()).then_some(LoadErrors(errors))
    }

    /// The problems, in document order.
    pub fn as_slice(&self) -> &[LoadError] {
        &self.0
    }

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

impl IntoIterator for LoadErrors {
    type Item = LoadError;
    type IntoIter = std::vec::IntoIter<LoadError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a LoadErrors {
    type Item = &'a LoadError;
    type IntoIter = std::slice::Iter<'a, LoadError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}
