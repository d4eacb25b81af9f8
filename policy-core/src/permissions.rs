//! The repository-linked permission model: which repository an image
//! belongs to, the actor's role on it, and what each action needs.

use crate::decision::Reason;
use crate::document::Publish;
use crate::evaluate::Denial;
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

/// How an image is linked to a repository.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Link<'p> {
    pub(crate) image: &'p ImageLink,
    /// An exact record (as opposed to a pattern).
    pub(crate) record: bool,
}

impl Permissions {
    /// The image's link: exact records first, then patterns in order.
    pub(crate) fn link(&self, image: &str) -> Option<Link<'_>> {
        if let Some(image) = self.records.get(image) {
            return Some(Link {
                image,
                record: true,
            });
        }
        self.patterns
            .iter()
            .find(|(selector, _)| selector.matches(image))
            .map(|(_, image)| Link {
                image,
                record: false,
            })
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
            .get(&link.image.repository)
            .into_iter()
            .flatten()
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
        let workspace_admin = self.is_workspace_admin(actor);
        let link = match &self.permissions {
            Some(permissions) => permissions.link(image),
            None if actor.role.is_some() => None,
            // No permissions section and no host-resolved role: checks are off.
            None => return None,
        };
        // Without a permissions section, a host-resolved role vouches for the link.
        let vouched = self.permissions.is_none();
        let role = if workspace_admin {
            Role::Admin
        } else if let Some(role) = actor.role {
            role
        } else {
            match (&self.permissions, link) {
                (Some(permissions), Some(link)) => permissions.granted_role(link, actor),
                _ => Role::None,
            }
        };
        let record = vouched || link.is_some_and(|l| l.record);
        let required = match action {
            Action::Read => Role::Read,
            Action::Publish { image_exists: true } | Action::DeleteTag => Role::Write,
            Action::Publish {
                image_exists: false,
            } if record => Role::Write,
            Action::Publish {
                image_exists: false,
            }
            | Action::DeleteContent => Role::Admin,
        };
        let public_read = action == Action::Read
            && link.is_some_and(|l| l.image.public)
            && actor.is_authenticated();
        let sufficient = role >= required || public_read;
        let repository = link.map(|l| &*l.image.repository);

        if !actor.is_authenticated() && !sufficient {
            return Some(Denial::new(
                Reason::AuthenticationRequired,
                format!(
                    "authentication required to {verb} {image}: log in (docker login) and retry"
                ),
            ));
        }
        if link.is_none() && !vouched {
            let creating = matches!(
                action,
                Action::Publish {
                    image_exists: false
                }
            );
            if creating || !workspace_admin {
                return Some(Denial::new(
                    Reason::ImageNotLinked,
                    format!(
                        "image {image} is not linked to a repository; a workspace admin must link it in the policy before anyone can {verb} it"
                    ),
                ));
            }
        }
        if !sufficient {
            let on = match repository {
                Some(repository) => format!(" on repository {repository}"),
                None => String::new(),
            };
            let why = if matches!(
                action,
                Action::Publish {
                    image_exists: false
                }
            ) && required == Role::Admin
            {
                format!(
                    " (image {image} has no record yet: a repository admin pushes it first, or adds a record so writers can)"
                )
            } else {
                String::new()
            };
            return Some(Denial::new(
                Reason::PermissionDenied,
                format!(
                    "{} needs {required}{on} to {verb} {image}, but has {role}{why}",
                    describe_actor(actor)
                ),
            ));
        }
        let pipelines_only = link.is_some_and(|l| l.image.publish == Publish::PipelinesOnly);
        if matches!(action, Action::Publish { .. })
            && pipelines_only
            && actor.kind != ActorKind::Pipeline
        {
            let through = match repository {
                Some(repository) => format!(" of {repository}"),
                None => String::new(),
            };
            return Some(Denial::new(
                Reason::PipelinesOnly,
                format!(
                    "image {image} accepts pushes from pipelines only; {} must publish it through a pipeline{through}",
                    describe_actor(actor)
                ),
            ));
        }
        None
    }
}

/// `user alice`, `pipeline web-app/prod`, `token ci`, `an anonymous user`.
pub(crate) fn describe_actor(actor: &Actor) -> String {
    match actor.kind {
        ActorKind::User => format!("user {}", actor.id),
        ActorKind::Pipeline => format!("pipeline {}", actor.id),
        ActorKind::Token => format!("token {}", actor.id),
        ActorKind::Anonymous => "an anonymous user".to_owned(),
    }
}
