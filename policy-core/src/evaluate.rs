//! Evaluation of the five operations, in the documented check order:
//! `invalid_request`, `authentication_required`, `image_not_linked`,
//! `permission_denied`, `pipelines_only`, `tag_immutable`.

use crate::decision::{Decision, Detail, ErrorCode, Reason};
use crate::document::{IdenticalRepush, Mode};
use crate::immutability::Protection;
use crate::names::{self, NameError, NameKind, short_digest};
use crate::permissions::Action;
use crate::policy::Policy;
use crate::request::{
    Actor, DeleteRequest, DeleteTarget, MountRequest, PullRequest, PushRequest, Request, TagState,
    UploadRequest,
};
use std::borrow::Cow;
use std::sync::Arc;

/// A denial on its way to becoming a [`Decision`].
#[derive(Debug)]
pub(crate) struct Denial {
    reason: Reason,
    message: String,
    rule: Option<Arc<str>>,
    detail: Detail,
}

impl Denial {
    /// A denial with its OCI error code decided here, so no host derives it.
    pub(crate) fn new(reason: Reason, message: String) -> Denial {
        let code = match reason {
            Reason::AuthenticationRequired => ErrorCode::Unauthorized,
            _ => ErrorCode::Denied,
        };
        Denial {
            reason,
            message,
            rule: None,
            detail: Detail {
                code: Some(code),
                ..Detail::default()
            },
        }
    }

    fn invalid(err: NameError) -> Denial {
        let code = match err.kind {
            NameKind::Image => ErrorCode::NameInvalid,
            NameKind::Tag => ErrorCode::TagInvalid,
            NameKind::Digest => ErrorCode::DigestInvalid,
        };
        let tag = (err.kind == NameKind::Tag).then(|| err.value.clone());
        Denial {
            reason: Reason::InvalidRequest,
            message: err.to_string(),
            rule: None,
            detail: Detail {
                code: Some(code),
                tag,
                ..Detail::default()
            },
        }
    }

    fn immutable(
        protection: Protection<'_>,
        tag: Option<&str>,
        current: Option<&str>,
        message: String,
    ) -> Denial {
        Denial {
            reason: Reason::TagImmutable,
            message,
            rule: protection.rule_name(),
            detail: Detail {
                code: Some(ErrorCode::Denied),
                pattern: protection.pattern(),
                tag: tag.map(str::to_owned),
                current_digest: current.map(str::to_owned),
            },
        }
    }
}

/// The first denial in check order.
fn first(denials: impl IntoIterator<Item = Option<Denial>>) -> Option<Denial> {
    denials
        .into_iter()
        .flatten()
        .min_by_key(|d| d.reason.precedence())
}

impl Policy {
    /// Decides any request.
    pub fn evaluate(&self, request: &Request) -> Decision {
        match request {
            Request::Push(r) => self.evaluate_push(r),
            Request::Delete(r) => self.evaluate_delete(r),
            Request::Upload(r) => self.evaluate_upload(r),
            Request::Pull(r) => self.evaluate_pull(r),
            Request::Mount(r) => self.evaluate_mount(r),
        }
    }

    /// Decides a manifest push: permissions, then every tag (all-or-nothing).
    pub fn evaluate_push(&self, request: &PushRequest) -> Decision {
        if let Err(err) = validate_push(request) {
            return self.finish(Some(Denial::invalid(err)), Vec::new(), "push allowed");
        }
        let image = request.image.as_str();
        let access = self.check_access(
            image,
            &request.actor,
            Action::Publish {
                image_exists: request.image_exists,
            },
            "push to",
        );
        let mut protected = Vec::new();
        let mut immutable = None;
        for tag in &request.tags {
            let Some(protection) = self.immutability.protection(image, &tag.name) else {
                continue;
            };
            if !protected.contains(&tag.name) {
                protected.push(tag.name.clone());
            }
            if immutable.is_none() && tag.exists() {
                immutable = self.overwrite(protection, image, &request.digest, tag);
            }
        }
        self.finish(first([access, immutable]), protected, "push allowed")
    }

    /// Why pushing `digest` to an existing protected tag is refused, if it is.
    fn overwrite(
        &self,
        protection: Protection<'_>,
        image: &str,
        digest: &str,
        tag: &TagState,
    ) -> Option<Denial> {
        let why = protection;
        let name = &tag.name;
        let current = tag.current.as_deref();
        let message = match current {
            Some(current) if current == digest => {
                if self.immutability.identical_repush == IdenticalRepush::Allow {
                    return None;
                }
                format!(
                    "tag {name} of {image} is immutable ({why}) and this policy refuses even an identical re-push of {}; push a new tag instead",
                    short_digest(current)
                )
            }
            Some(current) => format!(
                "tag {name} of {image} is immutable ({why}) and already points to {}; push a new tag instead",
                short_digest(current)
            ),
            None => format!(
                "tag {name} of {image} is immutable ({why}) and was locked when first pushed; push a new tag instead"
            ),
        };
        Some(Denial::immutable(protection, Some(name), current, message))
    }

    /// Decides a tag, manifest or image delete.
    pub fn evaluate_delete(&self, request: &DeleteRequest) -> Decision {
        if let Err(err) = validate_delete(request) {
            return self.finish(Some(Denial::invalid(err)), Vec::new(), "delete allowed");
        }
        let image = request.image.as_str();
        let (action, verb) = match &request.target {
            DeleteTarget::Tag(_) => (Action::DeleteTag, "delete tags of"),
            DeleteTarget::Digest(_) => (Action::DeleteContent, "delete manifests of"),
            DeleteTarget::Image => (Action::DeleteContent, "delete"),
        };
        let access = self.check_access(image, &request.actor, action, verb);
        let immutable = self.delete_immutability(request);
        self.finish(first([access, immutable]), Vec::new(), "delete allowed")
    }

    /// §3.3 for deletes: an immutable tag among those removed denies it, unless a
    /// workspace admin deletes and `admin_delete` is on.
    fn delete_immutability(&self, request: &DeleteRequest) -> Option<Denial> {
        if self.immutability.admin_delete && self.is_workspace_admin(&request.actor) {
            return None;
        }
        let image = request.image.as_str();
        let imm = &self.immutability;
        let tail = if imm.admin_delete {
            "only a workspace admin may delete it"
        } else {
            "nobody may delete it (admin_delete is off)"
        };
        let current_of = |name: &str| {
            request
                .tags
                .iter()
                .flatten()
                .find(|t| t.name == name)
                .and_then(|t| t.current.as_deref())
        };
        match &request.target {
            DeleteTarget::Tag(tag) => {
                // A tag being deleted exists, whatever the host knows of its digest.
                let protection = imm.protection(image, tag)?;
                let message = format!("tag {tag} of {image} is immutable ({}); {tail}", protection);
                Some(Denial::immutable(
                    protection,
                    Some(tag),
                    current_of(tag),
                    message,
                ))
            }
            DeleteTarget::Digest(_) | DeleteTarget::Image if request.tags.is_none() => {
                let protection = imm.could_protect(image)?;
                let what = match &request.target {
                    DeleteTarget::Digest(digest) => {
                        format!("manifest {} of {image}", short_digest(digest))
                    }
                    _ => format!("image {image}"),
                };
                let message = format!(
                    "the tags of {what} are unknown and {} could protect them, so the delete is refused (fail closed); {tail}",
                    match protection {
                        Protection::All => "protect: all".to_owned(),
                        Protection::Rule(rule) => format!("rule \"{}\"", rule.name),
                    }
                );
                Some(Denial::immutable(protection, None, None, message))
            }
            target => {
                let (tag, protection) = request
                    .tags
                    .iter()
                    .flatten()
                    .find_map(|t| imm.protection(image, &t.name).map(|p| (t, p)))?;
                let name = &tag.name;
                let why = protection;
                let message = match target {
                    DeleteTarget::Digest(digest) => format!(
                        "manifest {} of {image} is referenced by immutable tag {name} ({why}); {tail}",
                        short_digest(digest)
                    ),
                    _ => format!("image {image} holds immutable tag {name} ({why}); {tail}"),
                };
                Some(Denial::immutable(
                    protection,
                    Some(name),
                    tag.current.as_deref(),
                    message,
                ))
            }
        }
    }

    /// Decides a blob upload: judged like a push with no tags.
    pub fn evaluate_upload(&self, request: &UploadRequest) -> Decision {
        if let Err(err) = names::check_image_name(&request.image) {
            return self.finish(Some(Denial::invalid(err)), Vec::new(), "upload allowed");
        }
        let action = Action::Publish {
            image_exists: request.image_exists,
        };
        let access = self.check_access(&request.image, &request.actor, action, "upload to");
        self.finish(access, Vec::new(), "upload allowed")
    }

    /// Decides a pull (manifests, blobs, tag lists, referrers).
    pub fn evaluate_pull(&self, request: &PullRequest) -> Decision {
        if let Err(err) = names::check_image_name(&request.image) {
            return self.finish(Some(Denial::invalid(err)), Vec::new(), "pull allowed");
        }
        let access = self.check_access(&request.image, &request.actor, Action::Read, "pull");
        self.finish(access, Vec::new(), "pull allowed")
    }

    /// Decides a cross-repository mount: read on `from`, write on `image`.
    pub fn evaluate_mount(&self, request: &MountRequest) -> Decision {
        let valid = names::check_image_name(&request.image)
            .and_then(|()| names::check_image_name(&request.from));
        if let Err(err) = valid {
            return self.finish(Some(Denial::invalid(err)), Vec::new(), "mount allowed");
        }
        let actor: &Actor = &request.actor;
        let source = self.check_access(&request.from, actor, Action::Read, "mount blobs from");
        let target = self.check_access(
            &request.image,
            actor,
            Action::Publish {
                image_exists: request.image_exists,
            },
            "mount blobs into",
        );
        self.finish(first([source, target]), Vec::new(), "mount allowed")
    }

    /// Turns the outcome into a decision, applying audit mode: a policy denial is let
    /// through and marked `would_deny`. Malformed requests are refused in every mode.
    fn finish(
        &self,
        denial: Option<Denial>,
        protected_tags: Vec<String>,
        allowed_message: &'static str,
    ) -> Decision {
        let Some(denial) = denial else {
            return Decision {
                allowed: true,
                would_deny: false,
                reason: Reason::Allowed,
                message: Cow::Borrowed(allowed_message),
                rule: None,
                protected_tags,
                detail: None,
            };
        };
        let audit = self.mode == Mode::Audit && denial.reason != Reason::InvalidRequest;
        Decision {
            allowed: audit,
            would_deny: audit,
            reason: denial.reason,
            message: Cow::Owned(denial.message),
            rule: denial.rule,
            protected_tags: if audit { protected_tags } else { Vec::new() },
            detail: Some(Box::new(denial.detail)),
        }
    }
}

fn validate_push(request: &PushRequest) -> Result<(), NameError> {
    names::check_image_name(&request.image)?;
    names::check_digest(&request.digest)?;
    request.tags.iter().try_for_each(validate_tag_state)
}

fn validate_tag_state(tag: &TagState) -> Result<(), NameError> {
    names::check_tag(&tag.name)?;
    tag.current.as_deref().map_or(Ok(()), names::check_digest)
}

fn validate_delete(request: &DeleteRequest) -> Result<(), NameError> {
    names::check_image_name(&request.image)?;
    match &request.target {
        DeleteTarget::Tag(tag) => names::check_tag(tag)?,
        DeleteTarget::Digest(digest) => names::check_digest(digest)?,
        DeleteTarget::Image => {}
    }
    request
        .tags
        .iter()
        .flatten()
        .try_for_each(validate_tag_state)
}
