//! The WIT component adapter: `taglock:policy/engine` over `policy-core`.
//!
//! A translation table and nothing else: WIT request in, core request, `evaluate`,
//! core decision, WIT verdict out (and the decision itself, when the verdict says
//! the host needs it). Every `match` is exhaustive, so a new code in
//! the core fails to compile here until the WIT interface names it too.
//!
//! An instance holds one policy, loaded by `load`; every other function traps
//! until one has loaded (the interface's contract: nothing is decided without a
//! policy).

use crate::component::bindings::exports::taglock::policy::engine as wit;
use crate::spans::Unreadable;
use policy_core as core;
use requests::Requests;
use std::cell::{Cell, RefCell};

mod requests;

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

thread_local! {
    /// The instance's policy, once loaded. (The component is single-threaded:
    /// this is one static.)
    static LOADED: RefCell<Option<LoadedPolicy>> = const { RefCell::new(None) };
}

/// Runs `f` on the instance's policy; traps when none has loaded.
fn loaded<R>(f: impl FnOnce(&LoadedPolicy) -> R) -> R {
    LOADED.with_borrow(|loaded| match loaded {
        Some(policy) => f(policy),
        // `abort` is the `unreachable` instruction here: the call traps, and
        // the host gets an error, never a decision.
        None => std::process::abort(),
    })
}

/// The instance's policy: a compiled core policy, and the last decision that
/// did not fit in a bare `allowed` verdict, until the host takes it.
struct LoadedPolicy {
    policy: core::Policy,
    last: Cell<Option<core::Decision>>,
    /// The requests each call refills (see [`requests`]).
    requests: RefCell<Requests>,
}

impl LoadedPolicy {
    /// The verdict on `decision` for a request that pushed `tags` (none for other
    /// operations): `allowed` or `allowed-protecting` when the host can rebuild the
    /// decision from the operation and the tags ([`core::Decision::allow`]);
    /// otherwise `detailed`, with the decision kept for `last-decision`.
    fn answer(
        &self,
        operation: core::Operation,
        tags: &[core::TagState],
        decision: core::Decision,
    ) -> wit::Verdict {
        let verdict = decision
            .as_allow(operation)
            .and_then(|protected| protected_mask(tags, protected))
            .map(|mask| match mask {
                0 => wit::Verdict::Allowed,
                mask => wit::Verdict::AllowedProtecting(mask),
            });
        self.last.set(verdict.is_none().then_some(decision));
        verdict.unwrap_or(wit::Verdict::Detailed)
    }
}

/// The positions of `protected` in `tags` as a bit mask (bit `i`: `tags[i]`), each
/// name at its first position; `None` when that does not spell `protected` back
/// in order, or a position is past 63.
fn protected_mask(tags: &[core::TagState], protected: &[String]) -> Option<u64> {
    let mut mask = 0u64;
    let mut rest = protected.iter().peekable();
    for (i, tag) in tags.iter().enumerate() {
        if rest.peek().is_some_and(|name| **name == tag.name) {
            mask |= 1u64.checked_shl(u32::try_from(i).ok()?)?;
            rest.next();
        }
    }
    rest.peek().is_none().then_some(mask)
}

impl wit::Guest for Component {
    fn load(json: String) -> Result<(), Vec<wit::LoadError>> {
        // The policy outlives the call; the load errors do not, but a refused
        // load is rare enough not to matter.
        let _long_lived = crate::long_lived();
        let policy = core::Policy::from_json(&json)
            .map_err(|errors| errors.into_iter().map(load_error).collect::<Vec<_>>())?;
        let policy = LoadedPolicy {
            policy,
            last: Cell::new(None),
            requests: RefCell::new(Requests::new()),
        };
        LOADED.with_borrow_mut(|loaded| *loaded = Some(policy));
        Ok(())
    }

    fn evaluate_push(request: wit::PushRequest) -> wit::Verdict {
        loaded(|policy| policy.evaluate_push(&request))
    }

    fn evaluate_delete(request: wit::DeleteRequest) -> wit::Verdict {
        loaded(|policy| policy.evaluate_delete(&request))
    }

    fn evaluate_upload(request: wit::UploadRequest) -> wit::Verdict {
        loaded(|policy| policy.evaluate_upload(&request))
    }

    fn evaluate_pull(request: wit::PullRequest) -> wit::Verdict {
        loaded(|policy| policy.evaluate_pull(&request))
    }

    fn evaluate_mount(request: wit::MountRequest) -> wit::Verdict {
        loaded(|policy| policy.evaluate_mount(&request))
    }

    fn last_decision() -> Option<wit::Decision> {
        loaded(|policy| policy.last.take().map(decision))
    }

    fn test_tag(image: String, tag: String) -> wit::TagTest {
        loaded(|policy| policy.test_tag(&image, &tag))
    }

    fn lints() -> Vec<wit::Lint> {
        loaded(|policy| policy.policy.lints().iter().map(lint).collect())
    }

    fn push_needs(request: wit::PushRequest) -> wit::NeededFacts {
        loaded(|policy| policy.push_needs(&request))
    }

    fn existence_matters(request: wit::UploadRequest) -> bool {
        loaded(|policy| policy.existence_matters(&request))
    }
}

impl LoadedPolicy {
    fn evaluate_push(&self, request: &wit::PushRequest) -> wit::Verdict {
        let mut requests = self.requests.borrow_mut();
        match requests.push(request) {
            Ok(request) => {
                let decision = self.policy.evaluate_push(request);
                self.answer(core::Operation::Push, &request.tags, decision)
            }
            Err(Unreadable) => wit::Verdict::Unreadable,
        }
    }

    fn evaluate_delete(&self, request: &wit::DeleteRequest) -> wit::Verdict {
        let mut requests = self.requests.borrow_mut();
        match requests.delete(request) {
            Ok(request) => {
                let decision = self.policy.evaluate_delete(request);
                self.answer(core::Operation::Delete, &[], decision)
            }
            Err(Unreadable) => wit::Verdict::Unreadable,
        }
    }

    fn evaluate_upload(&self, request: &wit::UploadRequest) -> wit::Verdict {
        let mut requests = self.requests.borrow_mut();
        match requests.upload(request) {
            Ok(request) => {
                let decision = self.policy.evaluate_upload(request);
                self.answer(core::Operation::Upload, &[], decision)
            }
            Err(Unreadable) => wit::Verdict::Unreadable,
        }
    }

    fn evaluate_pull(&self, request: &wit::PullRequest) -> wit::Verdict {
        let mut requests = self.requests.borrow_mut();
        match requests.pull(request) {
            Ok(request) => {
                let decision = self.policy.evaluate_pull(request);
                self.answer(core::Operation::Pull, &[], decision)
            }
            Err(Unreadable) => wit::Verdict::Unreadable,
        }
    }

    fn evaluate_mount(&self, request: &wit::MountRequest) -> wit::Verdict {
        let mut requests = self.requests.borrow_mut();
        match requests.mount(request) {
            Ok(request) => {
                let decision = self.policy.evaluate_mount(request);
                self.answer(core::Operation::Mount, &[], decision)
            }
            Err(Unreadable) => wit::Verdict::Unreadable,
        }
    }

    fn test_tag(&self, image: &str, tag: &str) -> wit::TagTest {
        let test = self.policy.test_tag(image, tag);
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

    fn push_needs(&self, request: &wit::PushRequest) -> wit::NeededFacts {
        let tags = request.tags.len();
        let mut requests = self.requests.borrow_mut();
        match requests.push(request) {
            Ok(request) => {
                let needs = self.policy.push_needs(request);
                wit::NeededFacts {
                    image_exists: needs.image_exists,
                    current: needs.current,
                }
            }
            // Unreadable: every fact is needed (the evaluation then answers
            // `unreadable` itself).
            Err(Unreadable) => wit::NeededFacts {
                image_exists: true,
                current: vec![true; tags],
            },
        }
    }

    fn existence_matters(&self, request: &wit::UploadRequest) -> bool {
        let mut requests = self.requests.borrow_mut();
        match requests.upload(request) {
            Ok(write) => self.policy.existence_matters(&write.image, &write.actor),
            Err(Unreadable) => true,
        }
    }
}

/// Offsets and indexes: `usize` is 32 bits on wasm32, so this never saturates there.
fn index(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
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
