//! Host bindings generated from `wit/taglock.wit`, and the conversions between
//! its types and `policy-core`'s. A translation table: no policy logic.
//!
//! Requests are lowered from borrowed views of the core request (no copies of
//! strings on the host side); decisions are lifted into `policy_core::Decision`
//! so that a decision from the component is `==` to the native one.

use crate::HostError;
use policy_core as core;
use policy_core::Detail;
use std::ops::Range;
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

/// A request's strings gathered for the component: one text, and the spans of
/// the actor's groups and of the tags' `via` lists. Each string is named by its
/// span, so a request crosses in a few copies.
pub(crate) struct Strings {
    text: String,
    groups: Vec<wit::Span>,
    vias: Vec<wit::Span>,
}

/// An actor lowered but for its groups, which its [`Strings`] hold
/// ([`Strings::actor_record`] puts them together).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoweredActor {
    kind: wit::ActorKind,
    id: wit::Span,
    workspace_admin: bool,
    role: wit::HostRole,
}

/// A tag state lowered but for its `via` list, which its [`Strings`] hold
/// ([`Strings::tag_records`] puts them together).
#[derive(Debug, Clone)]
pub(crate) struct LoweredTag {
    name: wit::Span,
    current: Option<wit::Span>,
    locked: bool,
    via: Range<usize>,
}

impl Strings {
    pub(crate) fn new() -> Strings {
        Strings {
            text: String::with_capacity(256),
            groups: Vec::new(),
            vias: Vec::new(),
        }
    }

    /// Adds `string`; its span.
    pub(crate) fn span(&mut self, string: &str) -> Result<wit::Span, HostError> {
        let start = offset(self.text.len())?;
        let len = offset(string.len())?;
        offset(self.text.len().saturating_add(string.len()))?;
        self.text.push_str(string);
        Ok(wit::Span { start, len })
    }

    /// The actor, its strings added (its groups kept here).
    pub(crate) fn actor(&mut self, actor: &core::Actor) -> Result<LoweredActor, HostError> {
        for group in &actor.groups {
            let span = self.span(group)?;
            self.groups.push(span);
        }
        Ok(LoweredActor {
            kind: match actor.kind {
                core::ActorKind::User => wit::ActorKind::User,
                core::ActorKind::Pipeline => wit::ActorKind::Pipeline,
                core::ActorKind::Token => wit::ActorKind::Token,
                core::ActorKind::Anonymous => wit::ActorKind::Anonymous,
            },
            id: self.span(&actor.id)?,
            workspace_admin: actor.workspace_admin,
            role: match actor.role {
                None => wit::HostRole::Unresolved,
                Some(core::Role::None) => wit::HostRole::None,
                Some(core::Role::Read) => wit::HostRole::Read,
                Some(core::Role::Write) => wit::HostRole::Write,
                Some(core::Role::Admin) => wit::HostRole::Admin,
            },
        })
    }

    /// The `actor` record of `actor`, with its groups.
    pub(crate) fn actor_record(&self, actor: LoweredActor) -> wit::Actor<'_> {
        wit::Actor {
            kind: actor.kind,
            id: actor.id,
            groups: &self.groups,
            workspace_admin: actor.workspace_admin,
            role: actor.role,
        }
    }

    /// The tag states, their strings added (their `via` lists kept here).
    pub(crate) fn tags(&mut self, tags: &[core::TagState]) -> Result<Vec<LoweredTag>, HostError> {
        tags.iter()
            .map(|tag| {
                let name = self.span(&tag.name)?;
                let current = tag.current.as_deref().map(|c| self.span(c)).transpose()?;
                let first = self.vias.len();
                for digest in &tag.via {
                    let span = self.span(digest)?;
                    self.vias.push(span);
                }
                Ok(LoweredTag {
                    name,
                    current,
                    locked: tag.locked,
                    via: first..self.vias.len(),
                })
            })
            .collect()
    }

    /// The `tag-state` records of `tags`, with their `via` lists (`none` when
    /// empty: no list to lower).
    pub(crate) fn tag_records(&self, tags: &[LoweredTag]) -> Vec<wit::TagState<'_>> {
        tags.iter()
            .map(|tag| wit::TagState {
                name: tag.name,
                current: tag.current,
                locked: tag.locked,
                via: self.vias.get(tag.via.clone()).filter(|via| !via.is_empty()),
            })
            .collect()
    }

    /// What a delete removes, its string added.
    pub(crate) fn delete_target(
        &mut self,
        target: &core::DeleteTarget,
    ) -> Result<wit::DeleteTarget, HostError> {
        Ok(match target {
            core::DeleteTarget::Tag(tag) => wit::DeleteTarget::Tag(self.span(tag)?),
            core::DeleteTarget::Digest(digest) => wit::DeleteTarget::Digest(self.span(digest)?),
            core::DeleteTarget::Image => wit::DeleteTarget::Image,
        })
    }

    /// The text, as the request record holds it.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }
}

/// A push request lowered for the component: its strings and tag states, kept
/// while the record borrows them.
pub(crate) struct LoweredPush {
    strings: Strings,
    image: wit::Span,
    digest: wit::Span,
    tags: Vec<LoweredTag>,
    image_exists: bool,
    actor: LoweredActor,
}

impl LoweredPush {
    pub(crate) fn new(request: &core::PushRequest) -> Result<LoweredPush, HostError> {
        let mut strings = Strings::new();
        Ok(LoweredPush {
            image: strings.span(&request.image)?,
            digest: strings.span(&request.digest)?,
            tags: strings.tags(&request.tags)?,
            image_exists: request.image_exists,
            actor: strings.actor(&request.actor)?,
            strings,
        })
    }

    /// Calls `f` with the `push-request` record.
    pub(crate) fn with_record<R>(&self, f: impl FnOnce(wit::PushRequest<'_>) -> R) -> R {
        let tags = self.strings.tag_records(&self.tags);
        f(wit::PushRequest {
            text: self.strings.text(),
            image: self.image,
            digest: self.digest,
            tags: &tags,
            image_exists: self.image_exists,
            actor: self.strings.actor_record(self.actor),
        })
    }
}

/// An offset or length in a request's strings, which the interface holds in 32 bits.
fn offset(value: usize) -> Result<u32, HostError> {
    u32::try_from(value)
        .map_err(|_| HostError::Unreadable("the request holds over 4 GiB of strings".to_owned()))
}

/// The names of an `allowed-protecting` verdict's `mask` (bit `i`: `tags[i]`), in
/// index order. A bit past the pushed tags, or a name twice, is not an answer the
/// engine gives.
pub(crate) fn protected_tags(mask: u64, tags: &[core::TagState]) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = Vec::new();
    let mut rest = mask;
    while rest != 0 {
        let index = rest.trailing_zeros();
        rest &= rest - 1;
        let tag = usize::try_from(index)
            .ok()
            .and_then(|i| tags.get(i))
            .ok_or_else(|| format!("protected tag {index} of a push of {} tags", tags.len()))?;
        if names.contains(&tag.name) {
            return Err(format!("tag {} protected twice", tag.name));
        }
        names.push(tag.name.clone());
    }
    Ok(names)
}

/// Lifts the facts a push depends on: one entry per tag of the request, or
/// the component does not match this host.
pub(crate) fn push_needs(needs: wit::NeededFacts, tags: usize) -> Result<core::PushNeeds, String> {
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

#[cfg(test)]
mod tests {
    use super::protected_tags;
    use policy_core::TagState;

    #[test]
    fn a_protecting_mask_names_the_pushed_tags_in_order_and_nothing_else() {
        let tags = ["v1", "latest", "v1.0", "v1"].map(TagState::new_tag);
        assert_eq!(protected_tags(0, &tags), Ok(Vec::new()));
        assert_eq!(
            protected_tags(0b101, &tags),
            Ok(vec!["v1".to_owned(), "v1.0".to_owned()])
        );
        assert!(
            protected_tags(1 << 4, &tags).is_err(),
            "a bit past the tags"
        );
        assert!(protected_tags(1 << 63, &tags).is_err());
        assert!(protected_tags(0b1001, &tags).is_err(), "one name twice");
    }
}
