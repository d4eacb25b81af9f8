//! The decision every host returns (`docs/policy.md`, "Decisions"), and the OCI error a registry sends.

use crate::protected::ProtectedTags;
use crate::request::Operation;
use crate::unit_enum::codes;
use serde::ser::{Serialize, SerializeStruct, Serializer};
use std::borrow::Cow;
use std::sync::Arc;

codes! {
    /// Why a request was allowed or denied: a stable machine code.
    pub enum Reason {
        /// Nothing stands in the way.
        Allowed = "allowed",
        /// A malformed image name, tag or digest.
        InvalidRequest = "invalid_request",
        /// An anonymous actor needs to log in.
        AuthenticationRequired = "authentication_required",
        /// The image is linked to no repository.
        ImageNotLinked = "image_not_linked",
        /// The actor's role is too low.
        PermissionDenied = "permission_denied",
        /// The image accepts writes from pipelines only.
        PipelinesOnly = "pipelines_only",
        /// The request would move or remove an immutable tag.
        TagImmutable = "tag_immutable",
    }
}

impl Reason {
    /// Position in the documented check order: when several checks fail, the lowest decides.
    pub fn precedence(self) -> u8 {
        match self {
            Reason::InvalidRequest => 0,
            Reason::AuthenticationRequired => 1,
            Reason::ImageNotLinked => 2,
            Reason::PermissionDenied => 3,
            Reason::PipelinesOnly => 4,
            Reason::TagImmutable => 5,
            Reason::Allowed => 6,
        }
    }
}

codes! {
    /// The OCI distribution error code a registry returns.
    pub enum ErrorCode {
        /// 403: the policy forbids it.
        Denied = "DENIED",
        /// 401: log in first.
        Unauthorized = "UNAUTHORIZED",
        /// 400: malformed image name.
        NameInvalid = "NAME_INVALID",
        /// 400: malformed tag.
        TagInvalid = "TAG_INVALID",
        /// 400: malformed digest.
        DigestInvalid = "DIGEST_INVALID",
    }
}

impl ErrorCode {
    /// The HTTP status that goes with the code.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::Denied => 403,
            ErrorCode::Unauthorized => 401,
            ErrorCode::NameInvalid | ErrorCode::TagInvalid | ErrorCode::DigestInvalid => 400,
        }
    }
}

/// The facts behind a denial, as the OCI error's `detail` shows them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Detail {
    /// The OCI error code.
    pub code: Option<ErrorCode>,
    /// The pattern of the deciding rule or exception.
    pub pattern: Option<Arc<str>>,
    /// The tag concerned.
    pub tag: Option<String>,
    /// The digest the tag points at now.
    pub current_digest: Option<String>,
    /// For a digest delete refused because of a tag that reaches the manifest through
    /// indexes: that path (the tag's `via`); empty otherwise.
    pub via: Vec<String>,
}

/// The answer to one request.
///
/// Built by [`Policy::evaluate`](crate::Policy::evaluate), or by a host from an
/// answer that crossed a boundary ([`DecisionParts`], checked). Its fields are
/// private because they hang together: an allowed decision has the reason
/// `allowed` and no denial facts; a denial (kept, in audit mode, as `would_deny`)
/// has a reason other than `allowed` and the facts behind it.
///
/// `status` and `error` are derived from the other fields (see [`Decision::status`],
/// [`Decision::error`]) and appear in the serialized form exactly as `docs/policy.md` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub(crate) allowed: bool,
    pub(crate) would_deny: bool,
    pub(crate) reason: Reason,
    pub(crate) message: Cow<'static, str>,
    pub(crate) rule: Option<Arc<str>>,
    pub(crate) protected_tags: ProtectedTags,
    pub(crate) detail: Option<Box<Detail>>,
}

/// A decision's fields as they cross a boundary (the component's answer, say),
/// before [`Decision::try_from`] checks that they hang together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionParts {
    /// Whether the host lets the request through (always true in audit mode).
    pub allowed: bool,
    /// Audit mode: the request would have been denied under `enforce`.
    pub would_deny: bool,
    /// Why.
    pub reason: Reason,
    /// One sentence for the developer at the terminal.
    pub message: String,
    /// The rule that decided, if one did.
    pub rule: Option<String>,
    /// For an allowed push: the pushed tags that are immutable once it is done.
    pub protected_tags: Vec<String>,
    /// For a denial (kept in audit mode): the facts behind it.
    pub detail: Option<Detail>,
}

/// Parts that do not make a decision the engine could give.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a decision the engine gives: {0}")]
pub struct InvalidDecision(&'static str);

impl TryFrom<DecisionParts> for Decision {
    type Error = InvalidDecision;

    fn try_from(parts: DecisionParts) -> Result<Decision, InvalidDecision> {
        if let Some(problem) = parts.problem() {
            return Err(InvalidDecision(problem));
        }
        Ok(Decision {
            allowed: parts.allowed,
            would_deny: parts.would_deny,
            reason: parts.reason,
            message: Cow::Owned(parts.message),
            rule: parts.rule.map(Arc::from),
            protected_tags: parts.protected_tags.into(),
            detail: parts.detail.map(Box::new),
        })
    }
}

impl DecisionParts {
    /// What keeps these parts from being a decision the engine gives, if anything.
    fn problem(&self) -> Option<&'static str> {
        let denial = !self.allowed || self.would_deny;
        if self.would_deny && !self.allowed {
            Some("`would_deny` on a request that is not let through")
        } else if denial == (self.reason == Reason::Allowed) {
            Some("the reason does not match whether the request is denied")
        } else if denial && self.detail.as_ref().is_none_or(|d| d.code.is_none()) {
            Some("a denial without its error code")
        } else if !denial && (self.detail.is_some() || self.rule.is_some()) {
            Some("an allowed request with a denial's facts")
        } else if !self.allowed && !self.protected_tags.is_empty() {
            Some("a refused request with protected tags")
        } else if self.would_deny && self.reason == Reason::InvalidRequest {
            Some("a malformed request let through")
        } else {
            None
        }
    }
}

impl Decision {
    /// The decision letting a request of `operation` through with nothing in the
    /// way, worded as the engine words it ("push allowed"); `protected_tags`: for
    /// a push, the pushed tags immutable once it is done. What a host rebuilds
    /// from a bare "allowed" answer that crossed a boundary.
    pub fn allow(operation: Operation, protected_tags: Vec<String>) -> Decision {
        Decision::allowing(operation, protected_tags.into())
    }

    /// [`Decision::allow`], from the engine's own list.
    pub(crate) fn allowing(operation: Operation, protected_tags: ProtectedTags) -> Decision {
        Decision {
            allowed: true,
            would_deny: false,
            reason: Reason::Allowed,
            message: Cow::Borrowed(operation.allowed_message()),
            rule: None,
            protected_tags,
            detail: None,
        }
    }

    /// The tags this decision protects, when it is exactly
    /// [`Decision::allow`]`(operation, those tags)`: then the operation and the
    /// tags are all a host needs to give the same decision back.
    pub fn as_allow(&self, operation: Operation) -> Option<&[String]> {
        let plain = self.allowed
            && !self.would_deny
            && self.reason == Reason::Allowed
            && self.message == operation.allowed_message()
            && self.rule.is_none()
            && self.detail.is_none();
        plain.then_some(self.protected_tags.as_slice())
    }

    /// Whether the host lets the request through (always true in audit mode).
    pub fn allowed(&self) -> bool {
        self.allowed
    }

    /// Audit mode: the request would have been denied under `enforce`.
    pub fn would_deny(&self) -> bool {
        self.would_deny
    }

    /// Why: `allowed`, or the reason of the denial (kept in audit mode).
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// One sentence for the developer at the terminal.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The rule that decided, if one did.
    pub fn rule(&self) -> Option<&str> {
        self.rule.as_deref()
    }

    /// For an allowed push: the pushed tags that are immutable once it is done.
    pub fn protected_tags(&self) -> &[String] {
        self.protected_tags.as_slice()
    }

    /// For a denial (kept in audit mode): the facts behind it.
    pub fn detail(&self) -> Option<&Detail> {
        self.detail.as_deref()
    }

    /// The decision's fields, for a host that sends them on (the inverse of
    /// [`Decision::try_from`]).
    pub fn into_parts(self) -> DecisionParts {
        DecisionParts {
            allowed: self.allowed,
            would_deny: self.would_deny,
            reason: self.reason,
            message: self.message.into_owned(),
            rule: self.rule.map(|rule| rule.as_ref().to_owned()),
            protected_tags: self.protected_tags.into_vec(),
            detail: self.detail.map(|detail| *detail),
        }
    }

    /// The HTTP status a registry answers with: 200 when allowed, else the error code's.
    pub fn status(&self) -> u16 {
        if self.allowed {
            200
        } else {
            self.code().status()
        }
    }

    /// The OCI error code of a denial.
    pub fn code(&self) -> ErrorCode {
        // Every denial the engine makes carries its code (decided in one place,
        // `evaluate::Denial`); `DENIED` only guards hand-built decisions.
        self.detail
            .as_ref()
            .and_then(|d| d.code)
            .unwrap_or(ErrorCode::Denied)
    }

    /// The OCI error body a registry returns; `None` when the request is allowed.
    pub fn error(&self) -> Option<OciErrorBody<'_>> {
        if self.allowed {
            return None;
        }
        let detail = self.detail.as_deref();
        Some(OciErrorBody {
            errors: [OciError {
                code: self.code(),
                message: &self.message,
                detail: ErrorDetail {
                    reason: self.reason,
                    rule: self.rule.as_deref(),
                    pattern: detail.and_then(|d| d.pattern.as_deref()),
                    tag: detail.and_then(|d| d.tag.as_deref()),
                    current_digest: detail.and_then(|d| d.current_digest.as_deref()),
                    via: detail.map_or(&[], |d| d.via.as_slice()),
                },
            }],
        })
    }
}

impl Serialize for Decision {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Decision", 8)?;
        s.serialize_field("allowed", &self.allowed)?;
        s.serialize_field("would_deny", &self.would_deny)?;
        s.serialize_field("reason", &self.reason)?;
        s.serialize_field("message", &self.message)?;
        s.serialize_field("rule", &self.rule.as_deref())?;
        s.serialize_field("protected_tags", self.protected_tags.as_slice())?;
        s.serialize_field("status", &self.status())?;
        s.serialize_field("error", &self.error())?;
        s.end()
    }
}

/// `{"errors": [...]}` as the OCI distribution specification defines it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OciErrorBody<'a> {
    /// Always exactly one error.
    pub errors: [OciError<'a>; 1],
}

/// One OCI error.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OciError<'a> {
    /// `DENIED`, `UNAUTHORIZED`, `NAME_INVALID`, `TAG_INVALID` or `DIGEST_INVALID`.
    pub code: ErrorCode,
    /// The decision's message.
    pub message: &'a str,
    /// Machine-readable facts.
    pub detail: ErrorDetail<'a>,
}

/// The `detail` object of a taglock OCI error.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ErrorDetail<'a> {
    /// The decision's reason.
    pub reason: Reason,
    /// The deciding rule.
    pub rule: Option<&'a str>,
    /// Its pattern.
    pub pattern: Option<&'a str>,
    /// The tag concerned.
    pub tag: Option<&'a str>,
    /// The digest that tag points at now.
    pub current_digest: Option<&'a str>,
    /// The indexes through which that tag reaches a deleted manifest, from the tag's
    /// digest to the manifest's parent; left out when empty.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub via: &'a [String],
}

/// Runs of pieces as one string, allocated once and filled by appending: how
/// every denial message is built (`format!` cost several times
/// more: a denied pull took ~650 ns natively, now ~130 ns). Empty pieces are
/// skipped, not appended: in the component every copy is a `memory.copy`, a call
/// out to the host, whatever its length.
pub(crate) fn concat(runs: &[&[&str]]) -> String {
    let pieces = || {
        runs.iter()
            .flat_map(|run| run.iter())
            .filter(|piece| !piece.is_empty())
    };
    let mut text = String::with_capacity(pieces().map(|piece| piece.len()).sum());
    pieces().for_each(|piece| text.push_str(piece));
    text
}

#[cfg(test)]
mod tests {
    use super::{Decision, DecisionParts, Detail, ErrorCode, Reason};
    use crate::{Operation, Policy, Request};

    fn decisions() -> Vec<Decision> {
        let digest = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let policy = |mode: &str| {
            Policy::from_json(&format!(
                r#"{{"version": 1, "mode": "{mode}", "immutability": {{"protect": "some",
                    "rules": [{{"name": "semver", "tags": {{"regex": "^v"}}}}]}}}}"#
            ))
            .unwrap()
        };
        let push = |tag: &str, image: &str| {
            Request::from_json(&format!(
                r#"{{"operation": "push", "image": "{image}", "digest": "{new}",
                    "tags": [{{"name": "{tag}", "current": "{old}"}}], "image_exists": true,
                    "actor": {{"kind": "user", "id": "alice"}}}}"#,
                new = digest('a'),
                old = digest('b'),
            ))
            .unwrap()
        };
        let mut all = Vec::new();
        for mode in ["enforce", "audit"] {
            let policy = policy(mode);
            for (tag, image) in [("v1", "acme/web"), ("dev", "acme/web"), ("v1", "Bad Name")] {
                all.push(policy.evaluate(&push(tag, image)));
            }
        }
        all
    }

    #[test]
    fn every_decision_the_engine_gives_survives_its_parts() {
        let all = decisions();
        assert!(all.iter().any(|d| d.allowed() && !d.would_deny()));
        assert!(all.iter().any(Decision::would_deny));
        assert!(all.iter().any(|d| !d.allowed()));
        for decision in all {
            let again = Decision::try_from(decision.clone().into_parts());
            assert_eq!(again.as_ref(), Ok(&decision));
        }
    }

    /// `as_allow` says yes exactly for the decisions `Decision::allow` rebuilds:
    /// a host that rebuilds from it gives the same decision back, and a denial, an
    /// audit-mode pass or another operation's allow is never taken for one.
    #[test]
    fn only_a_plain_allow_is_read_as_one() {
        let operations = [
            Operation::Push,
            Operation::Delete,
            Operation::Upload,
            Operation::Pull,
            Operation::Mount,
        ];
        let mut plain = 0;
        for decision in decisions() {
            for operation in operations {
                match decision.as_allow(operation) {
                    Some(tags) => {
                        plain += 1;
                        assert_eq!(Decision::allow(operation, tags.to_vec()), decision);
                    }
                    None => assert_ne!(
                        Decision::allow(operation, decision.protected_tags().to_vec()),
                        decision
                    ),
                }
            }
        }
        assert!(plain > 0, "no plain allow among the decisions");
        let protected = Decision::allow(Operation::Push, vec!["v1".to_owned()]);
        assert_eq!(
            protected.as_allow(Operation::Push),
            Some(&["v1".to_owned()][..])
        );
        assert_eq!(protected.as_allow(Operation::Pull), None);
        // Rebuilt from its parts (the message now a copy, not the engine's own
        // text), an allow is still read as one.
        let rebuilt = Decision::try_from(protected.clone().into_parts()).unwrap();
        assert_eq!(
            rebuilt.as_allow(Operation::Push),
            Some(&["v1".to_owned()][..])
        );
    }

    #[test]
    fn parts_that_do_not_hang_together_are_refused() {
        let allowed = DecisionParts {
            allowed: true,
            would_deny: false,
            reason: Reason::Allowed,
            message: "push allowed".to_owned(),
            rule: None,
            protected_tags: Vec::new(),
            detail: None,
        };
        let denied = DecisionParts {
            allowed: false,
            reason: Reason::TagImmutable,
            rule: Some("semver".to_owned()),
            detail: Some(Detail {
                code: Some(ErrorCode::Denied),
                ..Detail::default()
            }),
            ..allowed.clone()
        };
        assert!(Decision::try_from(allowed.clone()).is_ok());
        assert!(Decision::try_from(denied.clone()).is_ok());
        let broken = [
            DecisionParts {
                would_deny: true,
                ..denied.clone()
            },
            DecisionParts {
                reason: Reason::TagImmutable,
                ..allowed.clone()
            },
            DecisionParts {
                reason: Reason::Allowed,
                ..denied.clone()
            },
            DecisionParts {
                detail: None,
                ..denied.clone()
            },
            DecisionParts {
                detail: Some(Detail::default()),
                ..denied.clone()
            },
            DecisionParts {
                rule: Some("semver".to_owned()),
                ..allowed.clone()
            },
            DecisionParts {
                protected_tags: vec!["v1".to_owned()],
                ..denied.clone()
            },
            DecisionParts {
                allowed: true,
                would_deny: true,
                reason: Reason::InvalidRequest,
                ..denied
            },
        ];
        for parts in broken {
            assert!(Decision::try_from(parts.clone()).is_err(), "{parts:?}");
        }
    }
}
