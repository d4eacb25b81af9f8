//! Host bindings generated from `wit/taglock.wit`, and the conversions between
//! its types and `policy-core`'s. A translation table: no policy logic.
//!
//! Requests are lowered from borrowed views of the core request (no copies of
//! strings on the host side); decisions are lifted into `policy_core::Decision`
//! so that a decision from the component is `==` to the native one.

use crate::HostError;
use policy_core as core;
use policy_core::Detail;
use std::sync::Arc;

/// The generated code of `wasmtime::component::bindgen!`.
#[allow(missing_docs, unsafe_code, clippy::all)]
pub(crate) mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "taglock",
        ownership: Borrowing { duplicate_if_necessary: false },
    });
}

pub(crate) use generated::exports::taglock::policy::engine as wit;
pub(crate) use generated::{Taglock, TaglockPre};

/// Keeps the borrowed strings a lowered request points into.
pub(crate) struct ActorView<'a> {
    groups: Vec<&'a str>,
    actor: &'a core::Actor,
}

impl<'a> ActorView<'a> {
    pub(crate) fn new(actor: &'a core::Actor) -> ActorView<'a> {
        ActorView {
            groups: actor.groups.iter().map(String::as_str).collect(),
            actor,
        }
    }

    pub(crate) fn lower(&self) -> wit::Actor<'_> {
        wit::Actor {
            kind: match self.actor.kind {
                core::ActorKind::User => wit::ActorKind::User,
                core::ActorKind::Pipeline => wit::ActorKind::Pipeline,
                core::ActorKind::Token => wit::ActorKind::Token,
                core::ActorKind::Anonymous => wit::ActorKind::Anonymous,
            },
            id: &self.actor.id,
            groups: &self.groups,
            workspace_admin: self.actor.workspace_admin,
            role: self.actor.role.map(|role| match role {
                core::Role::None => wit::Role::None,
                core::Role::Read => wit::Role::Read,
                core::Role::Write => wit::Role::Write,
                core::Role::Admin => wit::Role::Admin,
            }),
        }
    }
}

/// Keeps the borrowed `via` lists a lowered list of tag states points into.
pub(crate) struct TagStatesView<'a> {
    vias: Vec<Vec<&'a str>>,
    tags: &'a [core::TagState],
}

impl<'a> TagStatesView<'a> {
    pub(crate) fn new(tags: &'a [core::TagState]) -> TagStatesView<'a> {
        TagStatesView {
            vias: tags
                .iter()
                .map(|tag| tag.via.iter().map(String::as_str).collect())
                .collect(),
            tags,
        }
    }

    pub(crate) fn lower(&self) -> Vec<wit::TagState<'_>> {
        self.tags
            .iter()
            .zip(&self.vias)
            .map(|(tag, via)| wit::TagState {
                name: &tag.name,
                current: tag.current.as_deref(),
                locked: tag.locked,
                via,
            })
            .collect()
    }
}

pub(crate) fn delete_target(target: &core::DeleteTarget) -> wit::DeleteTarget<'_> {
    match target {
        core::DeleteTarget::Tag(tag) => wit::DeleteTarget::Tag(tag),
        core::DeleteTarget::Digest(digest) => wit::DeleteTarget::Digest(digest),
        core::DeleteTarget::Image => wit::DeleteTarget::Image,
    }
}

/// Lifts the facts a push depends on: one entry per tag of the request, or
/// the component does not match this host.
pub(crate) fn push_needs(needs: wit::PushNeeds, tags: usize) -> Result<core::PushNeeds, String> {
    if needs.current.len() != tags {
        return Err(format!(
            "the component answered the needs of {} tags for a push of {tags}",
            needs.current.len()
        ));
    }
    Ok(core::PushNeeds {
        image_exists: needs.image_exists,
        current: needs.current,
    })
}

/// Lifts a decision. `status` is derived from the other fields in the core, so
/// it is checked rather than copied: a mismatch means a component that does not
/// match this host's `policy-core`.
pub(crate) fn decision(decision: wit::Decision) -> Result<core::Decision, String> {
    let parts = core::DecisionParts {
        allowed: decision.allowed,
        would_deny: decision.would_deny,
        reason: match decision.reason {
            wit::Reason::Allowed => core::Reason::Allowed,
            wit::Reason::InvalidRequest => core::Reason::InvalidRequest,
            wit::Reason::AuthenticationRequired => core::Reason::AuthenticationRequired,
            wit::Reason::ImageNotLinked => core::Reason::ImageNotLinked,
            wit::Reason::PermissionDenied => core::Reason::PermissionDenied,
            wit::Reason::PipelinesOnly => core::Reason::PipelinesOnly,
            wit::Reason::TagImmutable => core::Reason::TagImmutable,
        },
        message: decision.message,
        rule: decision.rule,
        protected_tags: decision.protected_tags,
        detail: decision.detail.map(|detail| Detail {
            code: detail.code.map(|code| match code {
                wit::ErrorCode::Denied => core::ErrorCode::Denied,
                wit::ErrorCode::Unauthorized => core::ErrorCode::Unauthorized,
                wit::ErrorCode::NameInvalid => core::ErrorCode::NameInvalid,
                wit::ErrorCode::TagInvalid => core::ErrorCode::TagInvalid,
                wit::ErrorCode::DigestInvalid => core::ErrorCode::DigestInvalid,
            }),
            pattern: detail.pattern.map(Arc::from),
            tag: detail.tag,
            current_digest: detail.current_digest,
            via: detail.via,
        }),
    };
    let lifted = core::Decision::try_from(parts).map_err(|err| err.to_string())?;
    if lifted.status() != decision.status {
        return Err(format!(
            "status {} does not match the decision (expected {})",
            decision.status,
            lifted.status()
        ));
    }
    Ok(lifted)
}

fn index(value: Option<u32>) -> Option<usize> {
    value.and_then(|v| usize::try_from(v).ok())
}

pub(crate) fn load_errors(errors: Vec<wit::LoadError>) -> Result<core::LoadErrors, String> {
    use core::LoadErrorCode as C;
    use wit::LoadErrorCode as W;
    core::LoadErrors::new(
        errors
            .into_iter()
            .map(|error| core::LoadError {
                code: match error.code {
                    W::JsonSyntax => C::JsonSyntax,
                    W::Schema => C::Schema,
                    W::UnsupportedVersion => C::UnsupportedVersion,
                    W::RegexSyntax => C::RegexSyntax,
                    W::RegexUnsupported => C::RegexUnsupported,
                    W::RegexTooLarge => C::RegexTooLarge,
                    W::GlobSyntax => C::GlobSyntax,
                    W::EmptyGlobList => C::EmptyGlobList,
                    W::PatternTooLong => C::PatternTooLong,
                    W::TooManyRules => C::TooManyRules,
                    W::InvalidLimits => C::InvalidLimits,
                    W::EmptyRuleName => C::EmptyRuleName,
                    W::DuplicateRuleName => C::DuplicateRuleName,
                    W::InvalidPrincipal => C::InvalidPrincipal,
                    W::InvalidImageEntry => C::InvalidImageEntry,
                    W::InvalidImageName => C::InvalidImageName,
                    W::DuplicateImage => C::DuplicateImage,
                    W::InvalidRepository => C::InvalidRepository,
                    W::PolicyTooLarge => C::PolicyTooLarge,
                    W::NameTooLong => C::NameTooLong,
                    W::InvalidRuleName => C::InvalidRuleName,
                },
                message: error.message,
                path: error.path,
                rule: error.rule,
                offset: index(error.offset),
                line: index(error.line),
                column: index(error.column),
            })
            .collect(),
    )
    .ok_or_else(|| "a refusal with no problems".to_owned())
}

/// The lints the component reported, each code one the core knows: a component
/// that answers with another is not one this host was built with.
pub(crate) fn lints(lints: Vec<wit::Lint>) -> Result<Vec<core::Lint>, HostError> {
    lints
        .into_iter()
        .map(|lint| {
            let code = core::LintCode::from_name(&lint.code).ok_or_else(|| {
                HostError::InvalidResponse(format!("unknown lint code `{}`", lint.code))
            })?;
            Ok(core::Lint {
                code,
                message: lint.message,
                path: lint.path,
                rule: lint.rule,
                offset: index(lint.offset),
            })
        })
        .collect()
}

pub(crate) fn tag_test(test: wit::TagTest) -> core::TagTest {
    core::TagTest {
        tag: test.tag,
        error: test.error,
        protected: test.protected,
        rule: test.rule.map(Arc::from),
        because: match test.because {
            wit::TagVerdict::Rule => core::TagVerdict::Rule,
            wit::TagVerdict::All => core::TagVerdict::All,
            wit::TagVerdict::Exception => core::TagVerdict::Exception,
            wit::TagVerdict::Referrer => core::TagVerdict::Referrer,
            wit::TagVerdict::NoRule => core::TagVerdict::NoRule,
            wit::TagVerdict::ModeNone => core::TagVerdict::ModeNone,
            wit::TagVerdict::Invalid => core::TagVerdict::Invalid,
        },
        matches: test
            .matches
            .into_iter()
            .filter_map(|m| {
                Some(core::RuleMatch {
                    rule: Arc::from(m.rule),
                    start: usize::try_from(m.start).ok()?,
                    end: usize::try_from(m.end).ok()?,
                })
            })
            .collect(),
        exception: index(test.exception),
        why: test.why,
    }
}
