//! Evaluation of the five operations, in the documented check order:
//! `invalid_request`, `authentication_required`, `image_not_linked`,
//! `permission_denied`, `pipelines_only`, `tag_immutable`.

use crate::decision::{Decision, Detail, ErrorCode, Reason, concat};
use crate::document::{IdenticalRepush, Mode};
use crate::immutability::Protection;
use crate::limits::MAX_VIA;
use crate::names::{self, NameError, NameKind, short_digest};
use crate::pattern;
use crate::permissions::Action;
use crate::policy::Policy;
use crate::protected::ProtectedTags;
use crate::request::{
    Actor, DeleteRequest, DeleteTarget, MountRequest, Operation, PullRequest, PushRequest, Request,
    TagState, UploadRequest,
};
use std::borrow::Cow;
use std::sync::Arc;

/// A denial on its way to becoming a [`Decision`].
#[derive(Debug)]
pub(crate) struct Denial {
    reason: Reason,
    message: String,
    rule: Option<Arc<str>>,
    /// Boxed as the decision keeps it, which also keeps a denial small to move.
    detail: Box<Detail>,
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
            detail: Box::new(Detail {
                code: Some(code),
                ..Detail::default()
            }),
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
            detail: Box::new(Detail {
                code: Some(code),
                tag,
                ..Detail::default()
            }),
        }
    }

    /// A tag's `via` longer than [`MAX_VIA`]: refused like a malformed digest.
    fn via_too_long(tag: &TagState) -> Denial {
        Denial {
            reason: Reason::InvalidRequest,
            message: concat(&[&[
                "invalid `via` of tag ",
                &tag.name,
                ": ",
                &tag.via.len().to_string(),
                " digests, more than the ",
                &MAX_VIA.to_string(),
                " a tag may list",
            ]]),
            rule: None,
            detail: Box::new(Detail {
                code: Some(ErrorCode::DigestInvalid),
                ..Detail::default()
            }),
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
            detail: Box::new(Detail {
                code: Some(ErrorCode::Denied),
                pattern: protection.pattern(),
                tag: tag.map(str::to_owned),
                current_digest: current.map(str::to_owned),
                via: Vec::new(),
            }),
        }
    }
}

/// How a refused overwrite ends.
const NEW_TAG: &str = "; push a new tag instead";

/// The indexes of a path, shortened and joined by arrows.
fn path(indexes: &[String]) -> String {
    let pieces: Vec<&str> = indexes
        .iter()
        .enumerate()
        .flat_map(|(i, digest)| {
            let [short, ellipsis] = short_digest(digest).words();
            [if i > 0 { " → " } else { "" }, short, ellipsis]
        })
        .collect();
    concat(&[&pieces])
}

/// The first denial in check order; `a` when both come at the same point.
/// Two at a time, by value: a denial is large, and an iterator over an array of
/// them moved every one of them once more.
fn first(a: Option<Denial>, b: Option<Denial>) -> Option<Denial> {
    match (a, b) {
        (Some(a), Some(b)) if b.reason.precedence() < a.reason.precedence() => Some(b),
        (Some(a), _) => Some(a),
        (None, b) => b,
    }
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
        pattern::scoped(|| self.decide_push(request))
    }

    /// [`Policy::evaluate_push`], inside its search scope.
    fn decide_push(&self, request: &PushRequest) -> Decision {
        if let Err(invalid) = validate_push(request) {
            return self.finish(Some(invalid.into()), ProtectedTags::None, Operation::Push);
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
        let mut protected = ProtectedTags::None;
        let mut immutable = None;
        for (at, tag) in request.tags.iter().enumerate() {
            let Some(protection) = self.immutability.protection(image, &tag.name) else {
                continue;
            };
            protected.add(&tag.name, request.tags.len() - at - 1);
            if immutable.is_none() && tag.exists() {
                immutable = self.overwrite(protection, image, &request.digest, tag);
            }
        }
        self.finish(first(access, immutable), protected, Operation::Push)
    }

    /// Why pushing `digest` to an existing protected tag is refused, if it is.
    fn overwrite(
        &self,
        protection: Protection<'_>,
        image: &str,
        digest: &str,
        tag: &TagState,
    ) -> Option<Denial> {
        let name = &tag.name;
        let current = tag.current.as_deref();
        let [rule, rule_name, rule_end] = protection.words();
        let opening = [
            "tag ",
            name,
            " of ",
            image,
            " is immutable (",
            rule,
            rule_name,
            rule_end,
        ];
        let message = match current {
            Some(current) if current == digest => {
                if self.immutability.identical_repush == IdenticalRepush::Allow {
                    return None;
                }
                let [short, ellipsis] = short_digest(current).words();
                let refused = ") and this policy refuses even an identical re-push of ";
                concat(&[&opening, &[refused, short, ellipsis, NEW_TAG]])
            }
            Some(current) => {
                let [short, ellipsis] = short_digest(current).words();
                concat(&[
                    &opening,
                    &[") and already points to ", short, ellipsis, NEW_TAG],
                ])
            }
            None => concat(&[&opening, &[") and was locked when first pushed", NEW_TAG]]),
        };
        Some(Denial::immutable(protection, Some(name), current, message))
    }

    /// Decides a tag, manifest or image delete.
    pub fn evaluate_delete(&self, request: &DeleteRequest) -> Decision {
        pattern::scoped(|| self.decide_delete(request))
    }

    /// [`Policy::evaluate_delete`], inside its search scope.
    fn decide_delete(&self, request: &DeleteRequest) -> Decision {
        if let Err(invalid) = validate_delete(request) {
            return self.finish(Some(invalid.into()), ProtectedTags::None, Operation::Delete);
        }
        let image = request.image.as_str();
        let (action, verb) = match &request.target {
            DeleteTarget::Tag(_) => (Action::DeleteTag, "delete tags of"),
            DeleteTarget::Digest(_) => (Action::DeleteContent, "delete manifests of"),
            DeleteTarget::Image => (Action::DeleteContent, "delete"),
        };
        let access = self.check_access(image, &request.actor, action, verb);
        let immutable = self.delete_immutability(request);
        self.finish(
            first(access, immutable),
            ProtectedTags::None,
            Operation::Delete,
        )
    }

    /// For deletes: an immutable tag among those removed denies it, unless a
    /// workspace admin deletes and `admin_delete` is on. For a digest delete the tags
    /// include those reaching the manifest through indexes (their `via`), which are
    /// as protected as a tag pointing at it; the message then names the path.
    fn delete_immutability(&self, request: &DeleteRequest) -> Option<Denial> {
        if self.immutability.admin_delete && self.is_workspace_admin(&request.actor) {
            return None;
        }
        match (&request.target, &request.tags) {
            (DeleteTarget::Tag(tag), _) => self.tag_delete_immutability(request, tag),
            (target, None) => self.unknown_tags_immutability(&request.image, target),
            (target, Some(tags)) => self.tagged_delete_immutability(&request.image, target, tags),
        }
    }

    /// Who may still delete a protected tag: "…; {tail}".
    fn delete_tail(&self) -> &'static str {
        if self.immutability.admin_delete {
            "only a workspace admin may delete it"
        } else {
            "nobody may delete it (admin_delete is off)"
        }
    }

    /// A tag delete: the tag being deleted exists, whatever the host knows of its digest.
    fn tag_delete_immutability(&self, request: &DeleteRequest, tag: &str) -> Option<Denial> {
        let image = request.image.as_str();
        let protection = self.immutability.protection(image, tag)?;
        let current = request
            .tags
            .iter()
            .flatten()
            .find(|t| t.name == tag)
            .and_then(|t| t.current.as_deref());
        let message = concat(&[
            &["tag ", tag, " of ", image, " is immutable ("],
            &protection.words(),
            &["); ", self.delete_tail()],
        ]);
        Some(Denial::immutable(protection, Some(tag), current, message))
    }

    /// A digest or image delete whose tags the host does not know: refused when
    /// some rule could protect one of them (fail closed).
    fn unknown_tags_immutability(&self, image: &str, target: &DeleteTarget) -> Option<Denial> {
        let protection = self.immutability.could_protect(image)?;
        let what = match target {
            DeleteTarget::Digest(digest) => {
                let [short, ellipsis] = short_digest(digest).words();
                ["manifest ", short, ellipsis, " of "]
            }
            _ => ["image ", "", "", ""],
        };
        // Named as the policy writes it: `protect: all`, not the sentence.
        let rule = match protection {
            Protection::All => ["protect: all", "", ""],
            Protection::Rule(_) => protection.words(),
        };
        let message = concat(&[
            &["the tags of "],
            &what,
            &[image, " are unknown and "],
            &rule,
            &[
                " could protect them, so the delete is refused (fail closed); ",
                self.delete_tail(),
            ],
        ]);
        Some(Denial::immutable(protection, None, None, message))
    }

    /// A digest or image delete with its tags known: the first protected one refuses it.
    fn tagged_delete_immutability(
        &self,
        image: &str,
        target: &DeleteTarget,
        tags: &[TagState],
    ) -> Option<Denial> {
        let (tag, protection) = tags
            .iter()
            .find_map(|t| self.immutability.protection(image, &t.name).map(|p| (t, p)))?;
        let name = &tag.name;
        let why = protection.words();
        let tail = ["); ", self.delete_tail()];
        let (message, via) = match target {
            DeleteTarget::Digest(digest) => {
                let [short, ellipsis] = short_digest(digest).words();
                let manifest = ["manifest ", short, ellipsis, " of ", image];
                if tag.via.is_empty() {
                    let by = [" is referenced by immutable tag ", name, " ("];
                    (concat(&[&manifest, &by, &why, &tail]), Vec::new())
                } else {
                    let from = [" is reachable from immutable tag ", name, " ("];
                    let indexes = if tag.via.len() == 1 {
                        ") through index "
                    } else {
                        ") through indexes "
                    };
                    let path = path(&tag.via);
                    let through = [indexes, &path, "; ", self.delete_tail()];
                    (concat(&[&manifest, &from, &why, &through]), tag.via.clone())
                }
            }
            _ => {
                let holds = ["image ", image, " holds immutable tag ", name, " ("];
                (concat(&[&holds, &why, &tail]), Vec::new())
            }
        };
        let mut denial = Denial::immutable(protection, Some(name), tag.current.as_deref(), message);
        denial.detail.via = via;
        Some(denial)
    }

    /// Decides a blob upload: judged like a push with no tags.
    pub fn evaluate_upload(&self, request: &UploadRequest) -> Decision {
        pattern::scoped(|| self.decide_upload(request))
    }

    /// [`Policy::evaluate_upload`], inside its search scope.
    fn decide_upload(&self, request: &UploadRequest) -> Decision {
        if let Err(err) = names::check_image_name(&request.image) {
            return self.finish(
                Some(Denial::invalid(err)),
                ProtectedTags::None,
                Operation::Upload,
            );
        }
        let action = Action::Publish {
            image_exists: request.image_exists,
        };
        let access = self.check_access(&request.image, &request.actor, action, "upload to");
        self.finish(access, ProtectedTags::None, Operation::Upload)
    }

    /// Decides a pull (manifests, blobs, tag lists, referrers).
    pub fn evaluate_pull(&self, request: &PullRequest) -> Decision {
        pattern::scoped(|| self.decide_pull(request))
    }

    /// [`Policy::evaluate_pull`], inside its search scope.
    fn decide_pull(&self, request: &PullRequest) -> Decision {
        if let Err(err) = names::check_image_name(&request.image) {
            return self.finish(
                Some(Denial::invalid(err)),
                ProtectedTags::None,
                Operation::Pull,
            );
        }
        let access = self.check_access(&request.image, &request.actor, Action::Read, "pull");
        self.finish(access, ProtectedTags::None, Operation::Pull)
    }

    /// Decides a cross-repository mount: read on `from`, write on `image`.
    pub fn evaluate_mount(&self, request: &MountRequest) -> Decision {
        pattern::scoped(|| self.decide_mount(request))
    }

    /// [`Policy::evaluate_mount`], inside its search scope.
    fn decide_mount(&self, request: &MountRequest) -> Decision {
        let valid = names::check_image_name(&request.image)
            .and_then(|()| names::check_image_name(&request.from));
        if let Err(err) = valid {
            return self.finish(
                Some(Denial::invalid(err)),
                ProtectedTags::None,
                Operation::Mount,
            );
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
        self.finish(first(source, target), ProtectedTags::None, Operation::Mount)
    }

    /// Turns the outcome into a decision, applying audit mode: a policy denial is let
    /// through and marked `would_deny`. Malformed requests are refused in every mode.
    fn finish(
        &self,
        denial: Option<Denial>,
        protected_tags: ProtectedTags,
        operation: Operation,
    ) -> Decision {
        let Some(denial) = denial else {
            return Decision::allowing(operation, protected_tags);
        };
        let audit = self.mode == Mode::Audit && denial.reason != Reason::InvalidRequest;
        Decision {
            allowed: audit,
            would_deny: audit,
            reason: denial.reason,
            message: Cow::Owned(denial.message),
            rule: denial.rule,
            protected_tags: if audit {
                protected_tags
            } else {
                ProtectedTags::None
            },
            detail: Some(denial.detail),
        }
    }
}

/// What makes a request malformed, before it becomes a [`Denial`].
enum Invalid<'a> {
    /// A name, tag or digest breaks its grammar.
    Name(NameError),
    /// A tag's `via` is longer than [`MAX_VIA`].
    ViaTooLong(&'a TagState),
}

impl From<NameError> for Invalid<'_> {
    fn from(err: NameError) -> Self {
        Invalid::Name(err)
    }
}

impl From<Invalid<'_>> for Denial {
    fn from(invalid: Invalid<'_>) -> Denial {
        match invalid {
            Invalid::Name(err) => Denial::invalid(err),
            Invalid::ViaTooLong(tag) => Denial::via_too_long(tag),
        }
    }
}

fn validate_push(request: &PushRequest) -> Result<(), Invalid<'_>> {
    names::check_image_name(&request.image)?;
    names::check_digest(&request.digest)?;
    request.tags.iter().try_for_each(validate_tag_state)
}

/// A tag's name, its current digest, then its `via`: bounded, then each digest.
fn validate_tag_state(tag: &TagState) -> Result<(), Invalid<'_>> {
    names::check_tag(&tag.name)?;
    if let Some(current) = &tag.current {
        names::check_digest(current)?;
    }
    if tag.via.len() > MAX_VIA {
        return Err(Invalid::ViaTooLong(tag));
    }
    for digest in &tag.via {
        names::check_digest(digest)?;
    }
    Ok(())
}

fn validate_delete(request: &DeleteRequest) -> Result<(), Invalid<'_>> {
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

#[cfg(test)]
mod tests {
    use crate::decision::{ErrorCode, Reason};
    use crate::request::{Actor, DeleteRequest, DeleteTarget, PushRequest, TagState};
    use crate::{Policy, limits::MAX_VIA};

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn policy(admin_delete: bool) -> Policy {
        Policy::from_json(&format!(
            r#"{{"version": 1, "immutability": {{"protect": "some", "admin_delete": {admin_delete},
                "rules": [{{"name": "semver", "tags": {{"regex": "^v\\d+\\.\\d+\\.\\d+$"}}}}]}}}}"#
        ))
        .unwrap()
    }

    /// Deletes manifest C of acme/web, the tags reaching it as given.
    fn delete_c(tags: Vec<TagState>, actor: Actor) -> DeleteRequest {
        DeleteRequest {
            image: "acme/web".into(),
            target: DeleteTarget::Digest(digest('c')),
            tags: Some(tags),
            actor,
        }
    }

    fn dev() -> Actor {
        Actor::user("dev1", &["devs"])
    }

    #[test]
    fn a_child_of_a_protected_index_names_the_tag_and_the_index() {
        let tag = TagState::existing("v1.2.0", digest('a')).with_via([digest('a')]);
        let decision = policy(true).evaluate_delete(&delete_c(vec![tag], dev()));
        assert_eq!(decision.reason, Reason::TagImmutable);
        assert_eq!(
            decision.message,
            "manifest sha256:cccccccccccc… of acme/web is reachable from immutable tag v1.2.0 (rule \"semver\") through index sha256:aaaaaaaaaaaa…; only a workspace admin may delete it"
        );
        let detail = decision.detail.as_deref().unwrap();
        assert_eq!(detail.tag.as_deref(), Some("v1.2.0"));
        assert_eq!(detail.current_digest, Some(digest('a')));
        assert_eq!(detail.via, vec![digest('a')]);
        let body = serde_json::to_value(decision.error().unwrap()).unwrap();
        assert_eq!(
            body["errors"][0]["detail"]["via"],
            serde_json::json!([digest('a')])
        );
    }

    #[test]
    fn a_deeper_path_is_shown_in_order_and_admin_delete_off_says_so() {
        let tag = TagState::existing("v1.2.0", digest('a')).with_via([digest('a'), digest('b')]);
        let decision = policy(false).evaluate_delete(&delete_c(vec![tag], dev()));
        assert_eq!(
            decision.message,
            "manifest sha256:cccccccccccc… of acme/web is reachable from immutable tag v1.2.0 (rule \"semver\") through indexes sha256:aaaaaaaaaaaa… → sha256:bbbbbbbbbbbb…; nobody may delete it (admin_delete is off)"
        );
        assert_eq!(
            decision.detail.as_deref().unwrap().via,
            vec![digest('a'), digest('b')]
        );
    }

    #[test]
    fn a_direct_tag_keeps_its_message_and_no_via() {
        let decision = policy(true).evaluate_delete(&delete_c(
            vec![TagState::existing("v1.2.0", digest('c'))],
            dev(),
        ));
        assert_eq!(
            decision.message,
            "manifest sha256:cccccccccccc… of acme/web is referenced by immutable tag v1.2.0 (rule \"semver\"); only a workspace admin may delete it"
        );
        assert!(decision.detail.as_deref().unwrap().via.is_empty());
        let text = serde_json::to_string(&decision).unwrap();
        assert!(!text.contains("via"), "{text}");
    }

    #[test]
    fn a_workspace_admin_may_delete_the_child_unless_admin_delete_is_off() {
        let tag = TagState::existing("v1.2.0", digest('a')).with_via([digest('a')]);
        let admin = Actor {
            workspace_admin: true,
            ..Actor::user("ops", &[])
        };
        let allowed = policy(true).evaluate_delete(&delete_c(vec![tag.clone()], admin.clone()));
        assert!(allowed.allowed, "{allowed:?}");
        let denied = policy(false).evaluate_delete(&delete_c(vec![tag], admin));
        assert_eq!(denied.reason, Reason::TagImmutable);
    }

    #[test]
    fn via_is_validated_like_a_digest_and_bounded() {
        let bad = TagState::existing("v1.2.0", digest('a')).with_via([digest('a'), "md5".into()]);
        let decision = policy(true).evaluate_delete(&delete_c(vec![bad], dev()));
        assert_eq!(decision.reason, Reason::InvalidRequest);
        assert_eq!(decision.code(), ErrorCode::DigestInvalid);
        assert!(decision.message.contains("`md5`"), "{}", decision.message);

        let path = |n: usize| (0..n).map(|_| digest('a')).collect::<Vec<_>>();
        let at_bound = TagState::existing("latest", digest('a')).with_via(path(MAX_VIA));
        let decision = policy(true).evaluate_delete(&delete_c(vec![at_bound], dev()));
        assert!(decision.allowed, "{decision:?}");
        let over = TagState::existing("latest", digest('a')).with_via(path(MAX_VIA + 1));
        let decision = policy(true).evaluate_delete(&delete_c(vec![over.clone()], dev()));
        assert_eq!(decision.reason, Reason::InvalidRequest);
        assert_eq!(decision.code(), ErrorCode::DigestInvalid);
        assert_eq!(
            decision.message,
            format!(
                "invalid `via` of tag latest: {} digests, more than the {MAX_VIA} a tag may list",
                MAX_VIA + 1
            )
        );
        // Validated wherever a tag state is, even where `via` means nothing.
        let push = PushRequest {
            image: "acme/web".into(),
            digest: digest('a'),
            tags: vec![over],
            image_exists: true,
            actor: dev(),
        };
        assert_eq!(
            policy(true).evaluate_push(&push).reason,
            Reason::InvalidRequest
        );
    }

    #[test]
    fn via_means_nothing_outside_a_digest_delete() {
        let tag = TagState::existing("v1.2.0", digest('a')).with_via([digest('a')]);
        let image = DeleteRequest {
            image: "acme/web".into(),
            target: DeleteTarget::Image,
            tags: Some(vec![tag]),
            actor: dev(),
        };
        let decision = policy(true).evaluate_delete(&image);
        assert_eq!(
            decision.message,
            "image acme/web holds immutable tag v1.2.0 (rule \"semver\"); only a workspace admin may delete it"
        );
        assert!(decision.detail.as_deref().unwrap().via.is_empty());
    }
}
