//! The core requests the component evaluates, kept from call to call and
//! refilled in place from each call's spans.
//!
//! A core request owns its strings. Building one per call allocated every name,
//! digest and group again, then freed them all: about a third of the guest's time
//! on a pull. Refilling reuses what earlier calls allocated, so a request no
//! larger than one seen before allocates nothing. Every field is written on every
//! refill, so nothing of one request carries over into the next; a refill that
//! stops at an unreadable span leaves a request that is never evaluated.
//!
//! What a refill does allocate (a longer name, one more tag) outlives the call,
//! so refills run under the arena's long-lived guard ([`crate::long_lived`]).

use super::wit;
use crate::spans::{self, Unreadable};
use policy_core as core;

/// A request's `text`, read by span.
#[derive(Clone, Copy)]
struct Strings<'a> {
    text: &'a str,
}

impl<'a> Strings<'a> {
    fn new(text: &'a str) -> Strings<'a> {
        Strings { text }
    }

    /// The string at `span`.
    fn str(self, span: wit::Span) -> Result<&'a str, Unreadable> {
        spans::string(self.text, span.start, span.len)
    }

    /// Sets `into` to the string at `span`, keeping its buffer.
    fn set(self, into: &mut String, span: wit::Span) -> Result<(), Unreadable> {
        let value = self.str(span)?;
        into.clear();
        into.push_str(value);
        Ok(())
    }

    /// Sets `into` to the strings at `spans`, keeping the strings it has.
    fn set_spans(self, into: &mut Vec<String>, spans: &[wit::Span]) -> Result<(), Unreadable> {
        into.truncate(spans.len());
        for (i, span) in spans.iter().enumerate() {
            match into.get_mut(i) {
                Some(slot) => self.set(slot, *span)?,
                None => into.push(self.str(*span)?.to_owned()),
            }
        }
        Ok(())
    }

    fn set_tags(
        self,
        into: &mut Vec<core::TagState>,
        tags: &[wit::TagState],
    ) -> Result<(), Unreadable> {
        into.truncate(tags.len());
        into.resize_with(tags.len(), || core::TagState::new_tag(String::new()));
        for (slot, tag) in into.iter_mut().zip(tags) {
            self.set(&mut slot.name, tag.name)?;
            match tag.current {
                Some(span) => self.set(slot.current.get_or_insert_with(String::new), span)?,
                None => slot.current = None,
            }
            slot.locked = tag.locked;
            self.set_spans(&mut slot.via, tag.via.as_deref().unwrap_or_default())?;
        }
        Ok(())
    }

    fn set_actor(self, into: &mut core::Actor, actor: &wit::Actor) -> Result<(), Unreadable> {
        into.kind = match actor.kind {
            wit::ActorKind::User => core::ActorKind::User,
            wit::ActorKind::Pipeline => core::ActorKind::Pipeline,
            wit::ActorKind::Token => core::ActorKind::Token,
            wit::ActorKind::Anonymous => core::ActorKind::Anonymous,
        };
        self.set(&mut into.id, actor.id)?;
        self.set_spans(&mut into.groups, &actor.groups)?;
        into.workspace_admin = actor.workspace_admin;
        into.role = match actor.role {
            wit::HostRole::Unresolved => None,
            wit::HostRole::None => Some(core::Role::None),
            wit::HostRole::Read => Some(core::Role::Read),
            wit::HostRole::Write => Some(core::Role::Write),
            wit::HostRole::Admin => Some(core::Role::Admin),
        };
        Ok(())
    }
}

/// One core request of each kind, refilled by each call.
pub(super) struct Requests {
    push: core::PushRequest,
    delete: core::DeleteRequest,
    upload: core::UploadRequest,
    pull: core::PullRequest,
    mount: core::MountRequest,
}

impl Requests {
    /// Empty requests: nothing allocated until the first call.
    pub(super) fn new() -> Requests {
        Requests {
            push: core::PushRequest {
                image: String::new(),
                digest: String::new(),
                tags: Vec::new(),
                image_exists: false,
                actor: core::Actor::anonymous(),
            },
            delete: core::DeleteRequest {
                image: String::new(),
                target: core::DeleteTarget::Image,
                tags: None,
                actor: core::Actor::anonymous(),
            },
            upload: core::UploadRequest {
                image: String::new(),
                image_exists: false,
                actor: core::Actor::anonymous(),
            },
            pull: core::PullRequest {
                image: String::new(),
                actor: core::Actor::anonymous(),
            },
            mount: core::MountRequest {
                image: String::new(),
                from: String::new(),
                image_exists: false,
                actor: core::Actor::anonymous(),
            },
        }
    }

    /// The push `request` names.
    pub(super) fn push(
        &mut self,
        request: &wit::PushRequest,
    ) -> Result<&core::PushRequest, Unreadable> {
        let _long_lived = crate::long_lived();
        let strings = Strings::new(&request.text);
        let push = &mut self.push;
        strings.set(&mut push.image, request.image)?;
        strings.set(&mut push.digest, request.digest)?;
        strings.set_tags(&mut push.tags, &request.tags)?;
        push.image_exists = request.image_exists;
        strings.set_actor(&mut push.actor, &request.actor)?;
        Ok(push)
    }

    /// The delete `request` names.
    pub(super) fn delete(
        &mut self,
        request: &wit::DeleteRequest,
    ) -> Result<&core::DeleteRequest, Unreadable> {
        let _long_lived = crate::long_lived();
        let strings = Strings::new(&request.text);
        let delete = &mut self.delete;
        strings.set(&mut delete.image, request.image)?;
        match (request.target, &mut delete.target) {
            (wit::DeleteTarget::Tag(span), core::DeleteTarget::Tag(into))
            | (wit::DeleteTarget::Digest(span), core::DeleteTarget::Digest(into)) => {
                strings.set(into, span)?;
            }
            (wit::DeleteTarget::Tag(span), into) => {
                *into = core::DeleteTarget::Tag(strings.str(span)?.to_owned());
            }
            (wit::DeleteTarget::Digest(span), into) => {
                *into = core::DeleteTarget::Digest(strings.str(span)?.to_owned());
            }
            (wit::DeleteTarget::Image, into) => *into = core::DeleteTarget::Image,
        }
        match &request.tags {
            Some(tags) => strings.set_tags(delete.tags.get_or_insert_with(Vec::new), tags)?,
            None => delete.tags = None,
        }
        strings.set_actor(&mut delete.actor, &request.actor)?;
        Ok(delete)
    }

    /// The upload `request` names.
    pub(super) fn upload(
        &mut self,
        request: &wit::UploadRequest,
    ) -> Result<&core::UploadRequest, Unreadable> {
        let _long_lived = crate::long_lived();
        let strings = Strings::new(&request.text);
        let upload = &mut self.upload;
        strings.set(&mut upload.image, request.image)?;
        upload.image_exists = request.image_exists;
        strings.set_actor(&mut upload.actor, &request.actor)?;
        Ok(upload)
    }

    /// The pull `request` names.
    pub(super) fn pull(
        &mut self,
        request: &wit::PullRequest,
    ) -> Result<&core::PullRequest, Unreadable> {
        let _long_lived = crate::long_lived();
        let strings = Strings::new(&request.text);
        let pull = &mut self.pull;
        strings.set(&mut pull.image, request.image)?;
        strings.set_actor(&mut pull.actor, &request.actor)?;
        Ok(pull)
    }

    /// The mount `request` names.
    pub(super) fn mount(
        &mut self,
        request: &wit::MountRequest,
    ) -> Result<&core::MountRequest, Unreadable> {
        let _long_lived = crate::long_lived();
        let strings = Strings::new(&request.text);
        let mount = &mut self.mount;
        strings.set(&mut mount.image, request.image)?;
        strings.set(&mut mount.from, request.from)?;
        mount.image_exists = request.image_exists;
        strings.set_actor(&mut mount.actor, &request.actor)?;
        Ok(mount)
    }
}
