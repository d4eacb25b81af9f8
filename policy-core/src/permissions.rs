//! The repository-linked permission model: which repository an image
//! belongs to, the actor's role on it, and what each action needs.

use crate::decision::{Reason, concat};
use crate::document::Publish;
use crate::evaluate::Denial;
use crate::pattern::Found;
use crate::policy::{ImageLink, Permissions, Policy};
use crate::request::{Actor, ActorKind};
use crate::role::Role;

/// What an action asks of the actor on one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Pull, or read the source of a mount.
    Read,
    /// Push, upload or mount into: content writes, subject to `publish`.
    Publish {
        /// Whether the image exists already.
        image_exists: bool,
    },
    /// Delete one tag.
    DeleteTag,
    /// Delete a manifest or the whole image.
    DeleteContent,
}

impl Action {
    /// The role the action needs; `record`: the image has an exact record (or a
    /// host-resolved role vouches for it), so writers may create it.
    fn requires(self, record: bool) -> Role {
        match self {
            Action::Read => Role::Read,
            Action::Publish { image_exists: true } | Action::DeleteTag => Role::Write,
            Action::Publish {
                image_exists: false,
            } if record => Role::Write,
            Action::Publish {
                image_exists: false,
            }
            | Action::DeleteContent => Role::Admin,
        }
    }

    /// Whether the action creates the image (a first push, upload or mount).
    fn creates(self) -> bool {
        matches!(
            self,
            Action::Publish {
                image_exists: false
            }
        )
    }
}

/// How an image is linked to a repository.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Link<'p> {
    pub(crate) image: &'p ImageLink,
    /// An exact record (as opposed to a pattern).
    pub(crate) record: bool,
}

impl Permissions {
    /// The image's link: exact records first, then patterns in order. A pattern
    /// that cannot decide ends the walk with no link: reading it as a match would
    /// grant its repository's roles, and as no match a later pattern's, so the
    /// image is treated as unlinked (only workspace admins reach it).
    pub(crate) fn link(&self, image: &str) -> Option<Link<'_>> {
        if let Some(image) = self.records.get(image) {
            return Some(Link {
                image,
                record: true,
            });
        }
        for (selector, linked) in &self.patterns {
            match selector.matches(image) {
                Found::Match => {
                    return Some(Link {
                        image: linked,
                        record: false,
                    });
                }
                Found::NoMatch => {}
                Found::Unknown => return None,
            }
        }
        None
    }

    /// The actor's role on a linked image from the policy's grants: the highest
    /// repository grant (and the pipeline's implicit write), replaced by the image's
    /// overrides when any names the actor.
    fn granted_role(&self, link: Link<'_>, actor: &Actor) -> Role {
        let overridden = link
            .image
            .overrides
            .iter()
            .filter(|(p, _)| p.matches(actor))
            .map(|(_, role)| *role)
            .max();
        if let Some(role) = overridden {
            return role;
        }
        // Grants are stored strongest first (admin, write, read): the first match is the highest.
        let mut role = self
            .repositories
            .at(link.image.grants)
            .iter()
            .find(|(p, _)| p.matches(actor))
            .map_or(Role::None, |(_, role)| *role);
        if self.pipelines_inherit_write
            && actor.kind == ActorKind::Pipeline
            && actor.pipeline_parts().0 == &*link.image.repository
        {
            role = role.max(Role::Write);
        }
        role
    }
}

impl Policy {
    /// Whether the actor is a workspace admin: the host says so, or the policy lists it.
    pub(crate) fn is_workspace_admin(&self, actor: &Actor) -> bool {
        actor.workspace_admin
            || self
                .permissions
                .as_ref()
                .is_some_and(|p| p.workspace_admins.iter().any(|admin| admin.matches(actor)))
    }

    /// Checks one action on one image; `verb` completes "… needs write to {verb} {image}".
    pub(crate) fn check_access(
        &self,
        image: &str,
        actor: &Actor,
        action: Action,
        verb: &str,
    ) -> Option<Denial> {
        let access = self.access(image, actor, action)?;
        let refusal = access.refusal(actor, action)?;
        Some(access.deny(refusal, image, actor, action, verb))
    }

    /// What the policy knows of `actor` on `image` for `action`; `None` when
    /// permissions are not checked (no permissions section, no host-resolved role).
    fn access(&self, image: &str, actor: &Actor, action: Action) -> Option<Access<'_>> {
        let link = match &self.permissions {
            Some(permissions) => permissions.link(image),
            None if actor.role.is_some() => None,
            None => return None,
        };
        // Without a permissions section, a host-resolved role vouches for the link.
        let vouched = self.permissions.is_none();
        let workspace_admin = self.is_workspace_admin(actor);
        let role = self.role(actor, link, workspace_admin);
        let required = action.requires(vouched || link.is_some_and(|l| l.record));
        Some(Access {
            link,
            vouched,
            workspace_admin,
            role,
            required,
        })
    }

    /// The actor's role on a (maybe unlinked) image: admin for a workspace admin,
    /// else the host-resolved role, else the policy's grants.
    fn role(&self, actor: &Actor, link: Option<Link<'_>>, workspace_admin: bool) -> Role {
        if workspace_admin {
            return Role::Admin;
        }
        if let Some(role) = actor.role {
            return role;
        }
        match (&self.permissions, link) {
            (Some(permissions), Some(link)) => permissions.granted_role(link, actor),
            _ => Role::None,
        }
    }
}

/// What the policy knows of one actor on one image, for one action.
#[derive(Debug, Clone, Copy)]
struct Access<'p> {
    /// The image's link, if the policy has one.
    link: Option<Link<'p>>,
    /// No permissions section: a host-resolved role vouches for the image.
    vouched: bool,
    /// Whether the actor is a workspace admin.
    workspace_admin: bool,
    /// The actor's role on the image.
    role: Role,
    /// The role the action needs.
    required: Role,
}

/// Why an action is refused, before it is put into words.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// An anonymous actor without enough rights.
    AuthenticationRequired,
    /// The image has no link (and the actor cannot act without one).
    ImageNotLinked,
    /// The actor's role is below what the action needs.
    PermissionDenied,
    /// A push by someone other than a pipeline to a `pipelines-only` image.
    PipelinesOnly,
}

impl Access<'_> {
    /// The first refusal in check order, if any.
    fn refusal(&self, actor: &Actor, action: Action) -> Option<Refusal> {
        let public_read = action == Action::Read
            && self.link.is_some_and(|l| l.image.public)
            && actor.is_authenticated();
        let sufficient = self.role >= self.required || public_read;
        if !actor.is_authenticated() && !sufficient {
            return Some(Refusal::AuthenticationRequired);
        }
        if self.link.is_none() && !self.vouched && (action.creates() || !self.workspace_admin) {
            return Some(Refusal::ImageNotLinked);
        }
        if !sufficient {
            return Some(Refusal::PermissionDenied);
        }
        let pipelines_only = self
            .link
            .is_some_and(|l| l.image.publish == Publish::PipelinesOnly);
        if matches!(action, Action::Publish { .. })
            && pipelines_only
            && actor.kind != ActorKind::Pipeline
        {
            return Some(Refusal::PipelinesOnly);
        }
        None
    }

    /// `permission_denied` in words: the role needed and the role held.
    fn permission_denied(&self, image: &str, actor: &Actor, action: Action, verb: &str) -> String {
        let [kind, id] = actor_words(actor);
        let [on, repository] = match self.link {
            Some(link) => [" on repository ", &*link.image.repository],
            None => ["", ""],
        };
        let [why, why_image, why_end] = if action.creates() && self.required == Role::Admin {
            [
                " (image ",
                image,
                " has no record yet: a repository admin pushes it first, or adds a record so writers can)",
            ]
        } else {
            ["", "", ""]
        };
        concat(&[&[
            kind,
            id,
            " needs ",
            self.required.as_str(),
            on,
            repository,
            " to ",
            verb,
            " ",
            image,
            ", but has ",
            self.role.as_str(),
            why,
            why_image,
            why_end,
        ]])
    }

    /// A refusal in words: `verb` completes "… needs write to {verb} {image}".
    /// Messages are concatenated from their pieces, not formatted (`format!`
    /// cost several times more).
    fn deny(
        &self,
        refusal: Refusal,
        image: &str,
        actor: &Actor,
        action: Action,
        verb: &str,
    ) -> Denial {
        match refusal {
            Refusal::AuthenticationRequired => Denial::new(
                Reason::AuthenticationRequired,
                concat(&[&[
                    "authentication required to ",
                    verb,
                    " ",
                    image,
                    ": log in (docker login) and retry",
                ]]),
            ),
            Refusal::ImageNotLinked => Denial::new(
                Reason::ImageNotLinked,
                concat(&[&[
                    "image ",
                    image,
                    " is not linked to a repository; a workspace admin must link it in the policy before anyone can ",
                    verb,
                    " it",
                ]]),
            ),
            Refusal::PermissionDenied => Denial::new(
                Reason::PermissionDenied,
                self.permission_denied(image, actor, action, verb),
            ),
            Refusal::PipelinesOnly => {
                let [kind, id] = actor_words(actor);
                let [of, repository] = match self.link {
                    Some(link) => [" of ", &*link.image.repository],
                    None => ["", ""],
                };
                Denial::new(
                    Reason::PipelinesOnly,
                    concat(&[&[
                        "image ",
                        image,
                        " accepts pushes from pipelines only; ",
                        kind,
                        id,
                        " must publish it through a pipeline",
                        of,
                        repository,
                    ]]),
                )
            }
        }
    }
}

/// `user alice`, `pipeline web-app/prod`, `token ci`, `an anonymous user`, in
/// two pieces to concatenate.
pub(crate) fn actor_words(actor: &Actor) -> [&str; 2] {
    match actor.kind {
        ActorKind::User => ["user ", &actor.id],
        ActorKind::Pipeline => ["pipeline ", &actor.id],
        ActorKind::Token => ["token ", &actor.id],
        ActorKind::Anonymous => ["an anonymous user", ""],
    }
}
