//! The WIT component adapter: `taglock:policy/engine` over `policy-core`.
//!
//! A translation table and nothing else: WIT request in, core request, `evaluate`,
//! core decision, WIT decision out. Every `match` is exhaustive, so a new code in
//! the core fails to compile here until the WIT interface names it too.

use crate::component::bindings::exports::taglock::policy::engine as wit;
use policy_core as core;

/// The generated canonical-ABI glue. It is the only code allowed `unsafe`.
#[allow(unsafe_code, missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "taglock",
    });

    use super::Component;
    export!(Component);
}

/// The component: implements the exported `engine` interface.
struct Component;

impl wit::Guest for Component {
    type Policy = LoadedPolicy;
}

/// The `policy` resource: a compiled core policy.
struct LoadedPolicy(core::Policy);

impl wit::GuestPolicy for LoadedPolicy {
    fn from_json(json: String) -> Result<wit::Policy, Vec<wit::LoadError>> {
        match core::Policy::from_json(&json) {
            Ok(policy) => Ok(wit::Policy::new(LoadedPolicy(policy))),
            Err(errors) => Err(errors.into_iter().map(load_error).collect()),
        }
    }

    fn evaluate_push(&self, request: wit::PushRequest) -> wit::Decision {
        decision(self.0.evaluate_push(&core::PushRequest {
            image: request.image,
            digest: request.digest,
            tags: request.tags.into_iter().map(tag_state).collect(),
            image_exists: request.image_exists,
            actor: actor(request.actor),
        }))
    }

    fn evaluate_delete(&self, request: wit::DeleteRequest) -> wit::Decision {
        decision(
            self.0.evaluate_delete(&core::DeleteRequest {
                image: request.image,
                target: match request.target {
                    wit::DeleteTarget::Tag(tag) => core::DeleteTarget::Tag(tag),
                    wit::DeleteTarget::Digest(digest) => core::DeleteTarget::Digest(digest),
                    wit::DeleteTarget::Image => core::DeleteTarget::Image,
                },
                tags: request
                    .tags
                    .map(|tags| tags.into_iter().map(tag_state).collect()),
                actor: actor(request.actor),
            }),
        )
    }

    fn evaluate_upload(&self, request: wit::UploadRequest) -> wit::Decision {
        decision(self.0.evaluate_upload(&core::UploadRequest {
            image: request.image,
            image_exists: request.image_exists,
            actor: actor(request.actor),
        }))
    }

    fn evaluate_pull(&self, request: wit::PullRequest) -> wit::Decision {
        decision(self.0.evaluate_pull(&core::PullRequest {
            image: request.image,
            actor: actor(request.actor),
        }))
    }

    fn evaluate_mount(&self, request: wit::MountRequest) -> wit::Decision {
        decision(self.0.evaluate_mount(&core::MountRequest {
            image: request.image,
            from: request.from,
            image_exists: request.image_exists,
            actor: actor(request.actor),
        }))
    }

    fn test_tag(&self, image: String, tag: String) -> wit::TagTest {
        let test = self.0.test_tag(&image, &tag);
        wit::TagTest {
            tag: test.tag,
            error: test.error,
            protected: test.protected,
            rule: test.rule.as_deref().map(str::to_owned),
            because: match test.because {
                core::TagVerdict::Rule => wit::TagVerdict::Rule,
                core::TagVerdict::All => wit::TagVerdict::All,
                core::TagVerdict::Exception => wit::TagVerdict::Exception,
                core::TagVerdict::Referrer => wit::TagVerdict::Referrer,
                core::TagVerdict::NoRule => wit::TagVerdict::NoRule,
                core::TagVerdict::ModeNone => wit::TagVerdict::ModeNone,
                core::TagVerdict::Invalid => wit::TagVerdict::Invalid,
            },
            matches: test
                .matches
                .into_iter()
                .map(|m| wit::RuleMatch {
                    rule: m.rule.as_ref().to_owned(),
                    start: index(m.start),
                    end: index(m.end),
                })
                .collect(),
            exception: test.exception.map(index),
            why: test.why,
        }
    }

    fn lints(&self) -> Vec<wit::Lint> {
        self.0.lints().iter().map(lint).collect()
    }

    fn push_needs(&self, request: wit::PushRequest) -> wit::PushNeeds {
        let needs = self.0.push_needs(&core::PushRequest {
            image: request.image,
            digest: request.digest,
            tags: request.tags.into_iter().map(tag_state).collect(),
            image_exists: request.image_exists,
            actor: actor(request.actor),
        });
        wit::PushNeeds {
            image_exists: needs.image_exists,
            current: needs.current,
        }
    }

    fn existence_matters(&self, image: String, writer: wit::Actor) -> bool {
        self.0.existence_matters(&image, &actor(writer))
    }
}

/// Offsets and indexes: `usize` is 32 bits on wasm32, so this never saturates there.
fn index(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

fn tag_state(tag: wit::TagState) -> core::TagState {
    core::TagState {
        name: tag.name,
        current: tag.current,
        locked: tag.locked,
        via: tag.via,
    }
}

fn actor(actor: wit::Actor) -> core::Actor {
    core::Actor {
        kind: match actor.kind {
            wit::ActorKind::User => core::ActorKind::User,
            wit::ActorKind::Pipeline => core::ActorKind::Pipeline,
            wit::ActorKind::Token => core::ActorKind::Token,
            wit::ActorKind::Anonymous => core::ActorKind::Anonymous,
        },
        id: actor.id,
        groups: actor.groups,
        workspace_admin: actor.workspace_admin,
        role: actor.role.map(|role| match role {
            wit::Role::None => core::Role::None,
            wit::Role::Read => core::Role::Read,
            wit::Role::Write => core::Role::Write,
            wit::Role::Admin => core::Role::Admin,
        }),
    }
}

fn decision(decision: core::Decision) -> wit::Decision {
    let status = decision.status();
    let decision = decision.into_parts();
    wit::Decision {
        allowed: decision.allowed,
        would_deny: decision.would_deny,
        reason: match decision.reason {
            core::Reason::Allowed => wit::Reason::Allowed,
            core::Reason::InvalidRequest => wit::Reason::InvalidRequest,
            core::Reason::AuthenticationRequired => wit::Reason::AuthenticationRequired,
            core::Reason::ImageNotLinked => wit::Reason::ImageNotLinked,
            core::Reason::PermissionDenied => wit::Reason::PermissionDenied,
            core::Reason::PipelinesOnly => wit::Reason::PipelinesOnly,
            core::Reason::TagImmutable => wit::Reason::TagImmutable,
        },
        message: decision.message,
        rule: decision.rule,
        protected_tags: decision.protected_tags,
        status,
        detail: decision.detail.map(|detail| wit::Detail {
            code: detail.code.map(|code| match code {
                core::ErrorCode::Denied => wit::ErrorCode::Denied,
                core::ErrorCode::Unauthorized => wit::ErrorCode::Unauthorized,
                core::ErrorCode::NameInvalid => wit::ErrorCode::NameInvalid,
                core::ErrorCode::TagInvalid => wit::ErrorCode::TagInvalid,
                core::ErrorCode::DigestInvalid => wit::ErrorCode::DigestInvalid,
            }),
            pattern: detail.pattern.map(|pattern| pattern.as_ref().to_owned()),
            tag: detail.tag,
            current_digest: detail.current_digest,
            via: detail.via,
        }),
    }
}

fn load_error(error: core::LoadError) -> wit::LoadError {
    use core::LoadErrorCode as C;
    use wit::LoadErrorCode as W;
    wit::LoadError {
        code: match error.code {
            C::JsonSyntax => W::JsonSyntax,
            C::Schema => W::Schema,
            C::UnsupportedVersion => W::UnsupportedVersion,
            C::RegexSyntax => W::RegexSyntax,
            C::RegexUnsupported => W::RegexUnsupported,
            C::RegexTooLarge => W::RegexTooLarge,
            C::GlobSyntax => W::GlobSyntax,
            C::EmptyGlobList => W::EmptyGlobList,
            C::PatternTooLong => W::PatternTooLong,
            C::TooManyRules => W::TooManyRules,
            C::InvalidLimits => W::InvalidLimits,
            C::EmptyRuleName => W::EmptyRuleName,
            C::DuplicateRuleName => W::DuplicateRuleName,
            C::InvalidPrincipal => W::InvalidPrincipal,
            C::InvalidImageEntry => W::InvalidImageEntry,
            C::InvalidImageName => W::InvalidImageName,
            C::DuplicateImage => W::DuplicateImage,
            C::InvalidRepository => W::InvalidRepository,
            C::PolicyTooLarge => W::PolicyTooLarge,
            C::NameTooLong => W::NameTooLong,
            C::InvalidRuleName => W::InvalidRuleName,
        },
        message: error.message,
        path: error.path,
        rule: error.rule,
        offset: error.offset.map(index),
        line: error.line.map(index),
        column: error.column.map(index),
    }
}

fn lint(lint: &core::Lint) -> wit::Lint {
    wit::Lint {
        code: lint.code.as_str().to_owned(),
        message: lint.message.clone(),
        path: lint.path.clone(),
        rule: lint.rule.clone(),
        offset: lint.offset.map(index),
    }
}
