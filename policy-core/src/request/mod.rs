//! Requests the engine decides: what the host saw and the facts it gathered.

use crate::json::{self, JsonError};
use crate::role::Role;
use crate::unit_enum::codes;
use serde::Serialize;

mod fields;

/// One request, tagged by `operation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "operation", rename_all = "lowercase")]
pub enum Request {
    /// A manifest push, with or without tags.
    Push(PushRequest),
    /// A tag, manifest or image delete.
    Delete(DeleteRequest),
    /// A blob upload session (the first part of every push).
    Upload(UploadRequest),
    /// A read: manifests, blobs, tag lists, referrers.
    Pull(PullRequest),
    /// A cross-repository blob mount.
    Mount(MountRequest),
}

codes! {
    /// What a request asks to do: its `operation` in JSON.
    pub enum Operation {
        /// A manifest push ([`PushRequest`]).
        Push = "push",
        /// A tag, manifest or image delete ([`DeleteRequest`]).
        Delete = "delete",
        /// A blob upload session ([`UploadRequest`]).
        Upload = "upload",
        /// A read ([`PullRequest`]).
        Pull = "pull",
        /// A cross-repository blob mount ([`MountRequest`]).
        Mount = "mount",
    }
}

impl Operation {
    /// The message of a decision that lets the operation through with nothing to report.
    pub(crate) const fn allowed_message(self) -> &'static str {
        match self {
            Operation::Push => "push allowed",
            Operation::Delete => "delete allowed",
            Operation::Upload => "upload allowed",
            Operation::Pull => "pull allowed",
            Operation::Mount => "mount allowed",
        }
    }
}

impl Request {
    /// What the request asks to do.
    pub fn operation(&self) -> Operation {
        match self {
            Request::Push(_) => Operation::Push,
            Request::Delete(_) => Operation::Delete,
            Request::Upload(_) => Operation::Upload,
            Request::Pull(_) => Operation::Pull,
            Request::Mount(_) => Operation::Mount,
        }
    }

    /// Parses one request from JSON, with the location of the first problem.
    pub fn from_json(text: &str) -> Result<Request, JsonError> {
        json::from_json(text)
    }

    /// The image the request concerns.
    pub fn image(&self) -> &str {
        match self {
            Request::Push(r) => &r.image,
            Request::Delete(r) => &r.image,
            Request::Upload(r) => &r.image,
            Request::Pull(r) => &r.image,
            Request::Mount(r) => &r.image,
        }
    }

    /// Who asks.
    pub fn actor(&self) -> &Actor {
        match self {
            Request::Push(r) => &r.actor,
            Request::Delete(r) => &r.actor,
            Request::Upload(r) => &r.actor,
            Request::Pull(r) => &r.actor,
            Request::Mount(r) => &r.actor,
        }
    }
}

/// `PUT /v2/<name>/manifests/<reference>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushRequest {
    /// The image pushed to.
    pub image: String,
    /// The digest of the manifest being pushed.
    pub digest: String,
    /// The tags this push sets; empty for a push by digest.
    pub tags: Vec<TagState>,
    /// Whether the image exists already (absent: no, which needs the stronger role).
    pub image_exists: bool,
    /// Who pushes (absent: anonymous).
    pub actor: Actor,
}

/// A tag and what the host knows of it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagState {
    /// The tag.
    pub name: String,
    /// The digest the tag points at now; `None` when the tag is new.
    pub current: Option<String>,
    /// The host recorded the tag as protected earlier.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub locked: bool,
    /// For a digest delete only: the index manifests through which this tag reaches
    /// the deleted manifest, in order — first the tag's current digest (an index),
    /// last the deleted manifest's direct parent. Empty when the tag points at the
    /// deleted manifest itself. Other requests ignore it.
    ///
    /// Every entry must be a valid digest and there may be at most
    /// [`MAX_VIA`](crate::Limits::MAX_VIA) of them; otherwise the request is
    /// `invalid_request`. A tag listed in a digest delete's `tags` is judged the same
    /// whether it reaches the manifest directly or through indexes: `via` only names
    /// the path in the decision.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub via: Vec<String>,
}

impl TagState {
    /// A tag that does not exist yet.
    pub fn new_tag(name: impl Into<String>) -> TagState {
        TagState {
            name: name.into(),
            current: None,
            locked: false,
            via: Vec::new(),
        }
    }

    /// A tag that points at `digest` now.
    pub fn existing(name: impl Into<String>, digest: impl Into<String>) -> TagState {
        TagState {
            name: name.into(),
            current: Some(digest.into()),
            locked: false,
            via: Vec::new(),
        }
    }

    /// The same tag, reaching a deleted manifest through the indexes of `path`
    /// (see [`TagState::via`]).
    pub fn with_via<I, S>(mut self, path: I) -> TagState
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.via = path.into_iter().map(Into::into).collect();
        self
    }

    /// Whether the tag exists: it has a current digest, or the host recorded a lock.
    pub fn exists(&self) -> bool {
        self.current.is_some() || self.locked
    }
}

/// `DELETE /v2/<name>/manifests/<reference>` or a whole-image delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeleteRequest {
    /// The image deleted from.
    pub image: String,
    /// What is deleted.
    pub target: DeleteTarget,
    /// The tags the delete removes; `None` when the host does not know (fail closed).
    pub tags: Option<Vec<TagState>>,
    /// Who deletes.
    pub actor: Actor,
}

/// What a delete removes: `{"tag": t}`, `{"digest": d}` or `"image"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeleteTarget {
    /// One tag.
    Tag(String),
    /// A manifest, with every tag pointing at it.
    Digest(String),
    /// The whole image (repository).
    Image,
}

/// A blob upload session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UploadRequest {
    /// The image uploaded to.
    pub image: String,
    /// Whether the image exists already.
    pub image_exists: bool,
    /// Who uploads.
    pub actor: Actor,
}

/// A read of manifests, blobs, tag lists or referrers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PullRequest {
    /// The image read.
    pub image: String,
    /// Who reads.
    pub actor: Actor,
}

/// `POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<other>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MountRequest {
    /// The image the blob is mounted into (needs write).
    pub image: String,
    /// The image the blob comes from (needs read).
    pub from: String,
    /// Whether the target image exists already.
    pub image_exists: bool,
    /// Who mounts.
    pub actor: Actor,
}

/// Who asks, as the host authenticated them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Actor {
    /// User, pipeline, token or anonymous.
    pub kind: ActorKind,
    /// User or token id; for a pipeline `<repository>` or `<repository>/<environment>`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Groups the actor belongs to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// The host vouches that the actor is a workspace admin.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub workspace_admin: bool,
    /// The host's own resolution of the actor's role on this image; replaces the policy's grants.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
}

impl Actor {
    /// An unauthenticated actor.
    pub fn anonymous() -> Actor {
        Actor::default()
    }

    /// A user with groups.
    pub fn user(id: impl Into<String>, groups: &[&str]) -> Actor {
        Actor {
            kind: ActorKind::User,
            id: id.into(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            ..Actor::default()
        }
    }

    /// A pipeline of `repository`, optionally running in a deployment environment.
    pub fn pipeline(repository: &str, environment: Option<&str>) -> Actor {
        let id = match environment {
            Some(env) => format!("{repository}/{env}"),
            None => repository.to_owned(),
        };
        Actor {
            kind: ActorKind::Pipeline,
            id,
            ..Actor::default()
        }
    }

    /// Whether the actor is authenticated.
    pub fn is_authenticated(&self) -> bool {
        self.kind != ActorKind::Anonymous
    }

    /// For a pipeline, its repository and environment (split at the first `/`).
    pub fn pipeline_parts(&self) -> (&str, Option<&str>) {
        match self.id.split_once('/') {
            Some((repository, environment)) => (repository, Some(environment)),
            None => (&self.id, None),
        }
    }
}

codes! {
    /// The kind of actor.
    #[derive(Default)]
    pub enum ActorKind {
        /// A person.
        User = "user",
        /// A CI identity of a code repository, optionally with a deployment environment.
        Pipeline = "pipeline",
        /// An access token.
        Token = "token",
        /// Nobody logged in.
        #[default]
        Anonymous = "anonymous",
    }
}
