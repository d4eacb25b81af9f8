//! The decision every host returns (`docs/policy.md`, "Decisions"), and the OCI error a registry sends.

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
/// `status` and `error` are derived from the other fields (see [`Decision::status`],
/// [`Decision::error`]) and appear in the serialized form exactly as `docs/policy.md` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the host lets the request through (always true in audit mode).
    pub allowed: bool,
    /// Audit mode: the request would have been denied under `enforce`.
    pub would_deny: bool,
    /// Why.
    pub reason: Reason,
    /// One sentence for the developer at the terminal.
    pub message: Cow<'static, str>,
    /// The rule that decided, if one did.
    pub rule: Option<Arc<str>>,
    /// For an allowed push: the pushed tags that are immutable once it is done.
    pub protected_tags: Vec<String>,
    /// For a denial (kept in audit mode): the facts behind it.
    pub detail: Option<Box<Detail>>,
}

impl Decision {
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

    /// The decision as a JSON value, exactly as every host prints it.
    pub fn to_json_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
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
        s.serialize_field("protected_tags", &self.protected_tags)?;
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
