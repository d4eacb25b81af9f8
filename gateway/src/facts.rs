//! The facts a decision needs, gathered from the upstream registry without doing
//! any I/O here: a [`Gathering`] says which look-ups to make ([`Lookup`]), the
//! host makes them however it does HTTP (hyper, Envoy's `dispatch_http_call`)
//! and hands each answer back ([`Answer`]), and once nothing is pending the
//! gathering becomes the core's request.
//!
//! | operation | look-ups | a fact not understood |
//! | --- | --- | --- |
//! | push | `HEAD` of each tag the policy may protect on the image; first tag-list page when the permission check depends on it | 503, nothing forwarded |
//! | upload, mount | first tag-list page, when the permission check depends on it | 503 |
//! | tag delete | `HEAD` of the tag | `tags: null` (fail closed) |
//! | digest delete | every tag-list page, `HEAD` of each tag, `GET` of each index reachable from a tag | `tags: null` |
//! | pull | none | — |
//!
//! A digest delete removes more than the tags pointing at the digest: a manifest
//! reachable from a tag through an index (a multi-arch image's child, at any
//! depth) is part of that tag's image, so the tag is among those the delete
//! affects, with the path of indexes that leads to the digest.
//!
//! A write asks only for the facts its decision depends on, as the host's
//! policy says ([`Needs`], over [`Policy::push_needs`] and
//! [`Policy::existence_matters`]): a tag no rule can protect may move whatever
//! it points at, and whether the image exists only matters to a permission
//! check that asks more to create an image than to write to it. A push of an
//! unprotected tag under an immutability-only policy therefore makes no
//! look-up at all. A host whose policy cannot say gathers every fact.
//!
//! The registry is the only truth; a gateway keeps no state of its own.

use crate::listing;
use crate::manifest::{self, MANIFEST_MEDIA_TYPES};
use crate::reply::Refusal;
use crate::route::{Reference, Route};
use policy_core::names;
use policy_core::{
    Actor, DeleteRequest, DeleteTarget, MountRequest, Policy, PullRequest, PushNeeds, PushRequest,
    Request, TagState, UploadRequest,
};
use std::collections::{HashMap, VecDeque};

/// The most tags a digest delete looks at; an image with more is judged with
/// its tags unknown (fail closed).
pub const MAX_TAGS_PER_DIGEST_DELETE: usize = 10_000;
/// The most index manifests a digest delete reads to find the tags that reach
/// the digest; past it, the tags are unknown.
pub const MAX_INDEXES_READ: usize = 256;
/// The deepest index nesting a digest delete follows (a tag's index is depth 1);
/// deeper, the tags are unknown.
pub const MAX_INDEX_DEPTH: usize = 8;
/// The most a fact's body (a tag-list page, an index) may hold; a host reads no
/// more and answers [`Answer::Failed`] for a longer one.
pub const MAX_FACT_BODY: usize = 16 << 20;

/// Identifies one look-up among those of a gathering.
pub type LookupId = u32;

/// One request the host sends to the upstream, with its own credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// Hand it back with the answer.
    pub id: LookupId,
    /// `HEAD` or `GET`.
    pub method: &'static str,
    /// Path and query, e.g. `/v2/acme/web/manifests/v1`.
    pub path: String,
    /// `Accept` values to send (every manifest media type for manifests).
    pub accept: &'static [&'static str],
}

/// What the upstream answered to a [`Lookup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// An HTTP answer, whatever its status.
    Reply {
        /// The status.
        status: u16,
        /// Its headers (any case).
        headers: Vec<(String, String)>,
        /// Its body, at most [`MAX_FACT_BODY`] (empty for `HEAD`).
        body: Vec<u8>,
    },
    /// No answer: connecting, sending or reading failed, or timed out.
    Failed(String),
}

/// What the host's policy says a write's decision depends on; a [`Gathering`]
/// asks the upstream only for those facts.
///
/// Implemented for [`Policy`] (a host deciding natively, like the Envoy
/// filter); a host deciding through another engine implements it over that
/// engine, which must be the very policy that decides the request. `None`
/// means the policy could not say: every fact is gathered (fail closed).
pub trait Needs {
    /// Which facts of `request` (its names and actor; its `image_exists` and
    /// its tags' `current` are what is asked about) the decision depends on.
    fn push_needs(&self, request: &PushRequest) -> Option<PushNeeds>;
    /// Whether the decision of a write of `actor` to `image` depends on
    /// whether the image exists.
    fn existence_matters(&self, image: &str, actor: &Actor) -> Option<bool>;
}

impl Needs for Policy {
    fn push_needs(&self, request: &PushRequest) -> Option<PushNeeds> {
        Some(Policy::push_needs(self, request))
    }

    fn existence_matters(&self, image: &str, actor: &Actor) -> Option<bool> {
        Some(Policy::existence_matters(self, image, actor))
    }
}

/// Every fact, whatever the policy: for a caller with no policy at hand.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllFacts;

impl Needs for AllFacts {
    fn push_needs(&self, _: &PushRequest) -> Option<PushNeeds> {
        None
    }

    fn existence_matters(&self, _: &str, _: &Actor) -> Option<bool> {
        None
    }
}

/// The facts gathered: the core's request, and why some fact stayed unknown
/// (for the host's log) when the request says so (`tags: null`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gathered {
    /// The request to decide.
    pub request: Request,
    /// Why the request holds an unknown fact, if it does.
    pub unknown: Option<String>,
}

/// A fact on its way.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fact<T> {
    Pending,
    Known(T),
    Unknown(String),
}

impl<T> Fact<T> {
    fn unknown_reason(&self) -> Option<&str> {
        match self {
            Fact::Pending => Some("the upstream did not answer in time"),
            Fact::Known(_) => None,
            Fact::Unknown(why) => Some(why),
        }
    }
}

/// What each pending look-up is for.
#[derive(Debug, Clone)]
enum Purpose {
    Exists,
    PushTag(usize),
    DeletedTag,
    ListPage { path: String, page: usize },
    TagAtDigest(usize),
    Index { digest: String, depth: usize },
}

#[derive(Debug)]
enum Operation {
    Pull {
        image: String,
    },
    Upload {
        image: String,
        exists: Fact<bool>,
    },
    Mount {
        image: String,
        from: String,
        exists: Fact<bool>,
    },
    Push {
        image: String,
        digest: String,
        tags: Vec<(String, Fact<Option<String>>)>,
        exists: Fact<bool>,
    },
    TagDelete {
        image: String,
        tag: String,
        current: Fact<Option<String>>,
    },
    DigestDelete(DigestWalk),
}

/// The tags that reach one digest, being found.
#[derive(Debug)]
struct DigestWalk {
    image: String,
    digest: String,
    /// Askable: a well-formed image and digest.
    tags: Vec<(String, Fact<Option<String>>)>,
    /// Every index read (or being read): digest → the manifests it lists.
    indexes: HashMap<String, Fact<Vec<String>>>,
    /// The first reason the walk cannot be complete.
    unknown: Option<String>,
}

/// The facts of one request, being gathered.
#[derive(Debug)]
pub struct Gathering {
    actor: Actor,
    operation: Operation,
    queue: VecDeque<Lookup>,
    pending: HashMap<LookupId, Purpose>,
    next_id: LookupId,
}

impl Gathering {
    /// Starts gathering the facts of `route` for `actor`; `body` is the
    /// request's body for a route that [needs one](Route::needs_body) (a
    /// manifest push: its digest is computed here, and must match a digest
    /// reference). `needs` is the policy that will decide the request: only the
    /// facts it depends on are asked for ([`AllFacts`]: every one).
    ///
    /// `Route::Base` and `Route::Catalog` are answered without a decision of
    /// their own and are refused here.
    pub fn new(
        route: Route,
        actor: Actor,
        body: Option<&[u8]>,
        needs: &dyn Needs,
    ) -> Result<Gathering, Refusal> {
        let operation = match route {
            Route::Base | Route::Catalog => {
                return Err(Refusal::unsupported(
                    "the API check and the catalog are not decided one request at a time",
                ));
            }
            Route::Read { image } => Operation::Pull { image },
            Route::Upload { image } => Operation::Upload {
                image,
                exists: Fact::Pending,
            },
            Route::Mount { image, from } => Operation::Mount {
                image,
                from,
                exists: Fact::Pending,
            },
            Route::PushManifest {
                image,
                reference,
                tags,
            } => {
                let body =
                    body.ok_or_else(|| Refusal::bad_body("a manifest push needs its body"))?;
                let named = match &reference {
                    Reference::Digest(digest) => Some(digest.as_str()),
                    Reference::Tag(_) => None,
                };
                let digest = manifest::digest(body, named);
                if let Some(named) = named.filter(|named| *named != digest) {
                    return Err(Refusal::digest_mismatch(named, &digest));
                }
                Operation::Push {
                    image,
                    digest,
                    tags: tags.into_iter().map(|tag| (tag, Fact::Pending)).collect(),
                    exists: Fact::Pending,
                }
            }
            Route::DeleteManifest {
                image,
                reference: Reference::Tag(tag),
            } => Operation::TagDelete {
                image,
                tag,
                current: Fact::Pending,
            },
            Route::DeleteManifest {
                image,
                reference: Reference::Digest(digest),
            } => Operation::DigestDelete(DigestWalk {
                image,
                digest,
                tags: Vec::new(),
                indexes: HashMap::new(),
                unknown: None,
            }),
        };
        let mut gathering = Gathering {
            actor,
            operation,
            queue: VecDeque::new(),
            pending: HashMap::new(),
            next_id: 0,
        };
        gathering.start(needs);
        Ok(gathering)
    }

    /// The next look-up to send, if any. A host may send several at once; new
    /// ones may appear after an [`answer`](Gathering::answer).
    pub fn next_lookup(&mut self) -> Option<Lookup> {
        self.queue.pop_front()
    }

    /// Whether every fact is in: no look-up queued or awaiting its answer, or
    /// a digest delete already knows its tags are unknown (the rest would not
    /// change its request).
    pub fn is_done(&self) -> bool {
        if let Operation::DigestDelete(walk) = &self.operation
            && walk.unknown.is_some()
        {
            return true;
        }
        self.queue.is_empty() && self.pending.is_empty()
    }

    /// Hands back the answer to look-up `id` (an unknown `id` is ignored).
    pub fn answer(&mut self, id: LookupId, answer: Answer) {
        let Some(purpose) = self.pending.remove(&id) else {
            return;
        };
        match purpose {
            Purpose::Exists => {
                let fact = image_exists(&answer);
                match &mut self.operation {
                    Operation::Upload { exists, .. }
                    | Operation::Mount { exists, .. }
                    | Operation::Push { exists, .. } => *exists = fact,
                    _ => {}
                }
            }
            Purpose::PushTag(index) => {
                if let Operation::Push { tags, .. } = &mut self.operation
                    && let Some((_, current)) = tags.get_mut(index)
                {
                    *current = tag_digest(&answer).map(|head| head.map(|(digest, _)| digest));
                }
            }
            Purpose::DeletedTag => {
                if let Operation::TagDelete { current, .. } = &mut self.operation {
                    *current = tag_digest(&answer).map(|head| head.map(|(digest, _)| digest));
                }
            }
            Purpose::ListPage { path, page } => self.list_page(&path, page, &answer),
            Purpose::TagAtDigest(index) => self.tag_at_digest(index, &answer),
            Purpose::Index { digest, depth } => self.index(digest, depth, &answer),
        }
    }

    /// The request to decide. Called before [`is_done`](Gathering::is_done)
    /// (the host's time bound ran out), what is still pending is unknown: a
    /// push, upload or mount is then refused (503), a delete judged with its
    /// tags unknown (fail closed).
    pub fn finish(self) -> Result<Gathered, Refusal> {
        let actor = self.actor;
        match self.operation {
            Operation::Pull { image } => Ok(known(Request::Pull(PullRequest { image, actor }))),
            Operation::Upload { image, exists } => {
                let image_exists = settled(exists)?;
                Ok(known(Request::Upload(UploadRequest {
                    image,
                    image_exists,
                    actor,
                })))
            }
            Operation::Mount {
                image,
                from,
                exists,
            } => {
                let image_exists = settled(exists)?;
                Ok(known(Request::Mount(MountRequest {
                    image,
                    from,
                    image_exists,
                    actor,
                })))
            }
            Operation::Push {
                image,
                digest,
                tags,
                exists,
            } => {
                let mut states = Vec::with_capacity(tags.len());
                for (name, current) in tags {
                    states.push(TagState {
                        current: settled(current)?,
                        ..TagState::new_tag(name)
                    });
                }
                // A pushed tag that exists proves the image does, whatever the
                // tag list said a moment earlier.
                let image_exists = settled(exists)? || states.iter().any(TagState::exists);
                Ok(known(Request::Push(PushRequest {
                    image,
                    digest,
                    tags: states,
                    image_exists,
                    actor,
                })))
            }
            Operation::TagDelete {
                image,
                tag,
                current,
            } => {
                let unknown = current.unknown_reason().map(str::to_owned);
                let tags = match current {
                    Fact::Known(current) => Some(vec![TagState {
                        current,
                        ..TagState::new_tag(tag.clone())
                    }]),
                    _ => None,
                };
                Ok(Gathered {
                    request: Request::Delete(DeleteRequest {
                        image,
                        target: DeleteTarget::Tag(tag),
                        tags,
                        actor,
                    }),
                    unknown,
                })
            }
            Operation::DigestDelete(walk) => {
                let complete = self.pending.is_empty();
                let (tags, unknown) = walk.tags_reaching(complete);
                Ok(Gathered {
                    request: Request::Delete(DeleteRequest {
                        image: walk.image,
                        target: DeleteTarget::Digest(walk.digest),
                        tags,
                        actor,
                    }),
                    unknown,
                })
            }
        }
    }

    /// Queues the first look-ups, only of facts the decision depends on. A
    /// malformed name is never asked about: it cannot exist upstream, and the
    /// core refuses it as `invalid_request` whatever the facts say.
    fn start(&mut self, needs: &dyn Needs) {
        let actor = &self.actor;
        // A mount's source must be a valid name too before anything is asked.
        let source_askable = match &self.operation {
            Operation::Mount { from, .. } => askable(from),
            _ => true,
        };
        match &mut self.operation {
            Operation::Pull { .. } => {}
            Operation::Upload { image, exists } | Operation::Mount { image, exists, .. } => {
                if source_askable
                    && askable(image)
                    && needs.existence_matters(image, actor).unwrap_or(true)
                {
                    let path = exists_path(image);
                    self.send("GET", path, &[], Purpose::Exists);
                } else {
                    *exists = Fact::Known(false);
                }
            }
            Operation::Push {
                image,
                digest,
                tags,
                exists,
            } => {
                if !askable(image) {
                    *exists = Fact::Known(false);
                    for (_, current) in tags.iter_mut() {
                        *current = Fact::Known(None);
                    }
                    return;
                }
                let asked = PushRequest {
                    image: image.clone(),
                    digest: digest.clone(),
                    tags: tags
                        .iter()
                        .map(|(tag, _)| TagState::new_tag(tag.clone()))
                        .collect(),
                    image_exists: false,
                    actor: actor.clone(),
                };
                let needed = needs
                    .push_needs(&asked)
                    .filter(|needed| needed.current.len() == tags.len())
                    .unwrap_or_else(|| PushNeeds::all(tags.len()));
                // A tag not asked about is judged new: whatever it points at,
                // the decision is the same.
                for ((tag, current), needed) in tags.iter_mut().zip(&needed.current) {
                    if !*needed || names::check_tag(tag).is_err() {
                        *current = Fact::Known(None);
                    }
                }
                let heads: Vec<_> = tags
                    .iter()
                    .enumerate()
                    .filter(|(_, (_, current))| matches!(current, Fact::Pending))
                    .map(|(index, (tag, _))| (manifest_path(image, tag), Purpose::PushTag(index)))
                    .collect();
                let list = needed.image_exists.then(|| exists_path(image));
                if list.is_none() {
                    *exists = Fact::Known(false);
                }
                for (path, purpose) in heads {
                    self.send("HEAD", path, MANIFEST_MEDIA_TYPES, purpose);
                }
                if let Some(path) = list {
                    self.send("GET", path, &[], Purpose::Exists);
                }
            }
            Operation::TagDelete {
                image,
                tag,
                current,
            } => {
                if askable(image) && names::check_tag(tag).is_ok() {
                    let path = manifest_path(image, tag);
                    self.send("HEAD", path, MANIFEST_MEDIA_TYPES, Purpose::DeletedTag);
                } else {
                    *current = Fact::Known(None);
                }
            }
            Operation::DigestDelete(walk) => {
                if askable(&walk.image) && names::check_digest(&walk.digest).is_ok() {
                    let path = listing::first_tag_page(&walk.image);
                    self.send(
                        "GET",
                        path.clone(),
                        &[],
                        Purpose::ListPage { path, page: 1 },
                    );
                } else {
                    walk.unknown = Some("the image name or digest is malformed".to_owned());
                }
            }
        }
    }

    fn send(
        &mut self,
        method: &'static str,
        path: String,
        accept: &'static [&'static str],
        purpose: Purpose,
    ) {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.pending.insert(id, purpose);
        self.queue.push_back(Lookup {
            id,
            method,
            path,
            accept,
        });
    }

    /// One page of the tag list of a digest delete's image.
    fn list_page(&mut self, path: &str, page: usize, answer: &Answer) {
        let Operation::DigestDelete(walk) = &mut self.operation else {
            return;
        };
        let (status, headers, body) = match answer {
            Answer::Reply {
                status,
                headers,
                body,
            } => (*status, headers, body),
            Answer::Failed(why) => return walk.give_up(format!("reading {path}: {why}")),
        };
        match status {
            200 => {}
            // No tag list: the image holds no tag, so no tag reaches the digest.
            404 if page == 1 => return,
            status => return walk.give_up(format!("GET {path} answered {status}")),
        }
        let items = match listing::tag_items(body) {
            Ok(items) => items,
            Err(err) => {
                return walk.give_up(format!(
                    "the tag list at {path} is not the JSON the OCI API defines: {err}"
                ));
            }
        };
        let next = header(headers, "link").and_then(listing::next_link);
        if walk.tags.len().saturating_add(items.len()) > MAX_TAGS_PER_DIGEST_DELETE {
            return walk.give_up(format!(
                "{} holds more than {MAX_TAGS_PER_DIGEST_DELETE} tags",
                walk.image
            ));
        }
        let mut heads = Vec::new();
        for tag in items {
            if names::check_tag(&tag).is_err() {
                return walk.give_up(format!(
                    "the tag list holds `{}`, which is not a tag",
                    tag.chars()
                        .take(64)
                        .flat_map(char::escape_debug)
                        .collect::<String>()
                ));
            }
            if walk.tags.iter().any(|(known, _)| *known == tag) {
                continue;
            }
            heads.push((manifest_path(&walk.image, &tag), walk.tags.len()));
            walk.tags.push((tag, Fact::Pending));
        }
        let next = match next {
            Some(next) => match listing::refuse_next(&next, path, page) {
                Some(bad) => {
                    return walk.give_up(format!("the tag list's Link header points {bad}"));
                }
                None => Some(next),
            },
            None => None,
        };
        for (head, index) in heads {
            self.send(
                "HEAD",
                head,
                MANIFEST_MEDIA_TYPES,
                Purpose::TagAtDigest(index),
            );
        }
        if let Some(next) = next {
            self.send(
                "GET",
                next.clone(),
                &[],
                Purpose::ListPage {
                    path: next,
                    page: page.saturating_add(1),
                },
            );
        }
    }

    /// The current digest of one tag of a digest delete's image; an index is
    /// read to see whether the digest is inside it.
    fn tag_at_digest(&mut self, index: usize, answer: &Answer) {
        let Operation::DigestDelete(walk) = &mut self.operation else {
            return;
        };
        let fact = tag_digest(answer);
        if let Some(why) = fact.unknown_reason() {
            return walk.give_up(why.to_owned());
        }
        let read = match &fact {
            Fact::Known(Some((current, media_type)))
                if *current != walk.digest
                    && manifest::may_refer_to_manifests(media_type.as_deref()) =>
            {
                Some(current.clone())
            }
            _ => None,
        };
        if let Some((_, slot)) = walk.tags.get_mut(index) {
            *slot = fact.map(|head| head.map(|(digest, _)| digest));
        }
        if let Some(current) = read {
            self.read_index(current, 1);
        }
    }

    /// An index (or a manifest that may be one) reachable from a tag.
    fn index(&mut self, digest: String, depth: usize, answer: &Answer) {
        let Operation::DigestDelete(walk) = &mut self.operation else {
            return;
        };
        let path = manifest_path(&walk.image, &digest);
        let fact = match answer {
            Answer::Reply {
                status: 200, body, ..
            } => {
                let actual = manifest::digest(body, Some(&digest));
                if actual != digest {
                    Fact::Unknown(format!(
                        "GET {path} answered a manifest whose digest is {actual}"
                    ))
                } else {
                    match manifest::children(body) {
                        Ok(children) => Fact::Known(children),
                        Err(err) => Fact::Unknown(format!("GET {path}: {err}")),
                    }
                }
            }
            Answer::Reply { status, .. } => Fact::Unknown(format!("GET {path} answered {status}")),
            Answer::Failed(why) => Fact::Unknown(format!("reading {path}: {why}")),
        };
        let children = match fact {
            Fact::Known(children) => children,
            Fact::Unknown(why) => {
                walk.indexes.insert(digest, Fact::Unknown(why.clone()));
                return walk.give_up(why);
            }
            Fact::Pending => return,
        };
        let target = walk.digest.clone();
        let mut deeper = Vec::new();
        for child in &children {
            if child.digest != target
                && manifest::may_refer_to_manifests(child.media_type.as_deref())
            {
                deeper.push(child.digest.clone());
            }
        }
        walk.indexes.insert(
            digest,
            Fact::Known(children.into_iter().map(|child| child.digest).collect()),
        );
        for child in deeper {
            self.read_index(child, depth.saturating_add(1));
        }
    }

    /// Queues a read of the manifest `digest` at `depth`, once, within the
    /// bounds.
    fn read_index(&mut self, digest: String, depth: usize) {
        let Operation::DigestDelete(walk) = &mut self.operation else {
            return;
        };
        if walk.indexes.contains_key(&digest) || walk.unknown.is_some() {
            return;
        }
        if depth > MAX_INDEX_DEPTH {
            return walk.give_up(format!("indexes nest deeper than {MAX_INDEX_DEPTH} levels"));
        }
        if walk.indexes.len() >= MAX_INDEXES_READ {
            return walk.give_up(format!(
                "more than {MAX_INDEXES_READ} indexes would have to be read"
            ));
        }
        let path = manifest_path(&walk.image, &digest);
        walk.indexes.insert(digest.clone(), Fact::Pending);
        self.send(
            "GET",
            path,
            MANIFEST_MEDIA_TYPES,
            Purpose::Index { digest, depth },
        );
    }
}

impl DigestWalk {
    fn give_up(&mut self, why: String) {
        self.unknown.get_or_insert(why);
    }

    /// Every tag that reaches the digest, directly or through indexes; `None`
    /// (with why) when the walk is incomplete or some fact was not understood.
    fn tags_reaching(&self, complete: bool) -> (Option<Vec<TagState>>, Option<String>) {
        if let Some(why) = &self.unknown {
            return (None, Some(why.clone()));
        }
        if !complete {
            return (
                None,
                Some("the upstream did not answer every look-up in time".to_owned()),
            );
        }
        let mut reaching = Vec::new();
        for (name, current) in &self.tags {
            let current = match current {
                Fact::Known(Some(current)) => current,
                // Gone since the tag list was read: the delete cannot remove it.
                Fact::Known(None) => continue,
                other => {
                    let why = other.unknown_reason().unwrap_or_default();
                    return (None, Some(format!("the digest of tag {name}: {why}")));
                }
            };
            if *current == self.digest {
                reaching.push(TagState::existing(name.clone(), current.clone()));
                continue;
            }
            match self.path_from(current, 1) {
                Ok(Some(via)) => reaching.push(tag_through(name, current, via)),
                Ok(None) => {}
                Err(why) => return (None, Some(why)),
            }
        }
        (Some(reaching), None)
    }

    /// The indexes from `digest` down to the parent of the deleted manifest,
    /// `digest` first; `None` when it is not reachable from `digest`.
    fn path_from(&self, digest: &str, depth: usize) -> Result<Option<Vec<String>>, String> {
        let children = match self.indexes.get(digest) {
            // Never read: a manifest that refers to no other.
            None => return Ok(None),
            Some(Fact::Known(children)) => children,
            Some(other) => {
                return Err(other
                    .unknown_reason()
                    .unwrap_or("an index could not be read")
                    .to_owned());
            }
        };
        if children.contains(&self.digest) {
            return Ok(Some(vec![digest.to_owned()]));
        }
        if depth >= MAX_INDEX_DEPTH {
            return Ok(None);
        }
        for child in children {
            if let Some(mut via) = self.path_from(child, depth.saturating_add(1))? {
                via.insert(0, digest.to_owned());
                return Ok(Some(via));
            }
        }
        Ok(None)
    }
}

/// A tag whose current manifest (an index) reaches the deleted one through `via`.
fn tag_through(name: &str, current: &str, via: Vec<String>) -> TagState {
    TagState::existing(name, current).with_via(via)
}

fn known(request: Request) -> Gathered {
    Gathered {
        request,
        unknown: None,
    }
}

/// A fact a push, upload or mount cannot do without: unknown means 503.
fn settled<T>(fact: Fact<T>) -> Result<T, Refusal> {
    match fact {
        Fact::Known(value) => Ok(value),
        other => Err(Refusal::upstream_unavailable(
            other.unknown_reason().unwrap_or_default(),
        )),
    }
}

fn askable(image: &str) -> bool {
    names::check_image_name(image).is_ok()
}

fn manifest_path(image: &str, reference: &str) -> String {
    format!("/v2/{image}/manifests/{reference}")
}

/// Whether the image holds a tag: one tag asked for.
fn exists_path(image: &str) -> String {
    format!("/v2/{image}/tags/list?n=1")
}

/// The first value of header `name` (any case).
fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The answer to a first tag-list page: does the image hold a tag?
fn image_exists(answer: &Answer) -> Fact<bool> {
    match answer {
        Answer::Reply {
            status: 200, body, ..
        } => match listing::tag_items(body) {
            Ok(tags) => Fact::Known(!tags.is_empty()),
            Err(err) => Fact::Unknown(format!(
                "the upstream's tag list is not the JSON the OCI API defines: {err}"
            )),
        },
        Answer::Reply { status: 404, .. } => Fact::Known(false),
        Answer::Reply { status, .. } => Fact::Unknown(status_reason("a tag list", *status)),
        Answer::Failed(why) => Fact::Unknown(why.clone()),
    }
}

/// The answer to a `HEAD` of a tag: its digest and media type, `None` when the
/// tag does not exist. Understood only with exactly one well-formed
/// `Docker-Content-Digest`.
fn tag_digest(answer: &Answer) -> Fact<Option<(String, Option<String>)>> {
    let headers = match answer {
        Answer::Reply {
            status: 200,
            headers,
            ..
        } => headers,
        Answer::Reply { status: 404, .. } => return Fact::Known(None),
        Answer::Reply { status, .. } => {
            return Fact::Unknown(status_reason("a tag's manifest", *status));
        }
        Answer::Failed(why) => return Fact::Unknown(why.clone()),
    };
    let mut digests = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("docker-content-digest"))
        .map(|(_, v)| v.trim());
    let (Some(digest), None) = (digests.next(), digests.next()) else {
        return Fact::Unknown(
            "the upstream did not answer with exactly one Docker-Content-Digest".to_owned(),
        );
    };
    if names::check_digest(digest).is_err() {
        return Fact::Unknown(format!(
            "the upstream's Docker-Content-Digest `{}` is not a digest",
            digest
                .chars()
                .take(80)
                .flat_map(char::escape_debug)
                .collect::<String>()
        ));
    }
    let media_type = header(headers, "content-type").map(str::to_owned);
    Fact::Known(Some((digest.to_owned(), media_type)))
}

fn status_reason(what: &str, status: u16) -> String {
    match status {
        401 | 403 => format!(
            "the upstream answered {status} to a look-up of {what}: it refused taglock's own credentials"
        ),
        _ => format!("the upstream answered {status} to a look-up of {what}"),
    }
}

impl<T> Fact<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Fact<U> {
        match self {
            Fact::Pending => Fact::Pending,
            Fact::Known(value) => Fact::Known(f(value)),
            Fact::Unknown(why) => Fact::Unknown(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const DELETED: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const OTHER: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    const INDEX: &str = "application/vnd.oci.image.index.v1+json";
    const IMAGE: &str = "application/vnd.oci.image.manifest.v1+json";

    /// A registry as a table of answers: `(method, path)` → answer; anything
    /// else is 404. It records every look-up it was asked.
    #[derive(Default)]
    struct Registry {
        answers: BTreeMap<(String, String), Answer>,
        asked: Vec<String>,
    }

    impl Registry {
        fn on(&mut self, method: &str, path: &str, answer: Answer) -> &mut Registry {
            self.answers
                .insert((method.to_owned(), path.to_owned()), answer);
            self
        }

        /// A tag list page at `path` (`Link` to `next` if given).
        fn tags(&mut self, path: &str, tags: &[&str], next: Option<&str>) -> &mut Registry {
            let body = serde_json::json!({"name": "acme/web", "tags": tags});
            let headers = next
                .map(|next| vec![("Link".to_owned(), format!("<{next}>; rel=\"next\""))])
                .unwrap_or_default();
            self.on(
                "GET",
                path,
                reply(200, headers, body.to_string().into_bytes()),
            )
        }

        /// `tag` points at `digest`, stored as `media_type`.
        fn tag(&mut self, tag: &str, digest: &str, media_type: &str) -> &mut Registry {
            let headers = vec![
                ("Docker-Content-Digest".to_owned(), digest.to_owned()),
                ("Content-Type".to_owned(), media_type.to_owned()),
            ];
            let path = format!("/v2/acme/web/manifests/{tag}");
            self.on("HEAD", &path, reply(200, headers, Vec::new()))
        }

        /// Stores an index listing `children` (digest, media type); returns
        /// its digest.
        fn index(&mut self, children: &[(&str, &str)]) -> String {
            let manifests: Vec<_> = children
                .iter()
                .map(|(digest, media_type)| {
                    serde_json::json!({"mediaType": media_type, "digest": digest, "size": 1})
                })
                .collect();
            let body = serde_json::json!({
                "schemaVersion": 2, "mediaType": INDEX, "manifests": manifests,
            })
            .to_string()
            .into_bytes();
            let digest = manifest::digest(&body, None);
            let path = format!("/v2/acme/web/manifests/{digest}");
            self.on("GET", &path, reply(200, Vec::new(), body));
            digest
        }

        /// Answers every look-up until the gathering is done, at most `limit`.
        fn drive(&mut self, gathering: &mut Gathering, limit: usize) {
            for _ in 0..limit {
                let Some(lookup) = gathering.next_lookup() else {
                    return;
                };
                self.asked
                    .push(format!("{} {}", lookup.method, lookup.path));
                let key = (lookup.method.to_owned(), lookup.path.clone());
                let answer = self
                    .answers
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| reply(404, Vec::new(), Vec::new()));
                gathering.answer(lookup.id, answer);
            }
        }

        fn gather(&mut self, route: Route, body: Option<&[u8]>) -> Result<Gathered, Refusal> {
            self.gather_for(route, body, Actor::user("alice", &[]), &AllFacts)
        }

        /// Gathers for `actor` what `needs` says the decision depends on.
        fn gather_for(
            &mut self,
            route: Route,
            body: Option<&[u8]>,
            actor: Actor,
            needs: &dyn Needs,
        ) -> Result<Gathered, Refusal> {
            let mut gathering = Gathering::new(route, actor, body, needs)?;
            self.drive(&mut gathering, 100_000);
            assert!(gathering.is_done(), "every look-up answered");
            gathering.finish()
        }
    }

    fn reply(status: u16, headers: Vec<(String, String)>, body: Vec<u8>) -> Answer {
        Answer::Reply {
            status,
            headers,
            body,
        }
    }

    fn push(tags: &[&str]) -> Route {
        Route::PushManifest {
            image: "acme/web".into(),
            reference: Reference::Tag(tags[0].into()),
            tags: tags.iter().map(|tag| (*tag).to_owned()).collect(),
        }
    }

    fn digest_delete(digest: &str) -> Route {
        Route::DeleteManifest {
            image: "acme/web".into(),
            reference: Reference::Digest(digest.into()),
        }
    }

    /// The tags of a delete's request: `(name, current, via)`, or `None`.
    fn delete_tags(gathered: &Gathered) -> Option<Vec<(String, String, Vec<String>)>> {
        let Request::Delete(delete) = &gathered.request else {
            panic!("not a delete: {:?}", gathered.request);
        };
        delete.tags.as_ref().map(|tags| {
            tags.iter()
                .map(|tag| {
                    (
                        tag.name.clone(),
                        tag.current.clone().unwrap_or_default(),
                        tag.via.clone(),
                    )
                })
                .collect()
        })
    }

    #[test]
    fn a_push_reads_each_tag_and_whether_the_image_exists() {
        let mut registry = Registry::default();
        registry
            .tag("v1", OTHER, IMAGE)
            .tags("/v2/acme/web/tags/list?n=1", &["v1"], None);
        let body = br#"{"schemaVersion":2}"#;
        let gathered = registry.gather(push(&["v1", "v2"]), Some(body)).unwrap();
        let Request::Push(push) = gathered.request else {
            panic!("not a push");
        };
        assert_eq!(push.digest, manifest::digest(body, None));
        assert!(push.image_exists);
        assert_eq!(push.tags[0].current.as_deref(), Some(OTHER));
        assert_eq!(push.tags[1].current, None);
        assert_eq!(gathered.unknown, None);
    }

    #[test]
    fn a_push_whose_tag_digest_is_not_understood_is_refused_503() {
        let cases: Vec<Vec<(String, String)>> = vec![
            vec![],
            vec![("Docker-Content-Digest".into(), "garbage".into())],
            vec![
                ("Docker-Content-Digest".into(), OTHER.into()),
                ("docker-content-digest".into(), DELETED.into()),
            ],
        ];
        for headers in cases {
            let mut registry = Registry::default();
            registry.on(
                "HEAD",
                "/v2/acme/web/manifests/v1",
                reply(200, headers.clone(), vec![]),
            );
            let refused = registry.gather(push(&["v1"]), Some(b"{}")).unwrap_err();
            assert_eq!(refused.status, 503, "{headers:?}");
            assert!(!refused.message.contains("invalid"), "{}", refused.message);
        }
        // A status that says nothing about the tag is no answer either.
        for status in [401, 500, 302] {
            let mut registry = Registry::default();
            registry.on(
                "HEAD",
                "/v2/acme/web/manifests/v1",
                reply(status, vec![], vec![]),
            );
            assert_eq!(
                registry
                    .gather(push(&["v1"]), Some(b"{}"))
                    .unwrap_err()
                    .status,
                503
            );
        }
    }

    #[test]
    fn a_push_by_digest_must_match_its_body() {
        let route = Route::PushManifest {
            image: "acme/web".into(),
            reference: Reference::Digest(OTHER.into()),
            tags: vec![],
        };
        let refused = Registry::default().gather(route, Some(b"{}")).unwrap_err();
        assert_eq!(refused.status, 400);
    }

    #[test]
    fn a_tag_delete_with_a_digest_not_understood_has_unknown_tags() {
        let mut registry = Registry::default();
        let headers = vec![("Docker-Content-Digest".into(), "sha256:short".into())];
        registry.on(
            "HEAD",
            "/v2/acme/web/manifests/v1",
            reply(200, headers, vec![]),
        );
        let route = Route::DeleteManifest {
            image: "acme/web".into(),
            reference: Reference::Tag("v1".into()),
        };
        let gathered = registry.gather(route, None).unwrap();
        assert_eq!(delete_tags(&gathered), None);
        assert!(gathered.unknown.unwrap().contains("not a digest"));
    }

    #[test]
    fn a_digest_delete_finds_tags_pointing_at_it_directly() {
        let mut registry = Registry::default();
        registry
            .tags(&listing::first_tag_page("acme/web"), &["v1", "v2"], None)
            .tag("v1", DELETED, IMAGE)
            .tag("v2", OTHER, IMAGE);
        let gathered = registry.gather(digest_delete(DELETED), None).unwrap();
        assert_eq!(
            delete_tags(&gathered),
            Some(vec![("v1".into(), DELETED.into(), vec![])])
        );
    }

    #[test]
    fn a_digest_delete_finds_tags_reaching_it_through_indexes() {
        let mut registry = Registry::default();
        let inner = registry.index(&[(DELETED, IMAGE)]);
        let outer = registry.index(&[(OTHER, IMAGE), (&inner, INDEX)]);
        let direct = registry.index(&[(DELETED, IMAGE)]);
        assert_eq!(direct, inner, "the same bytes, the same index");
        registry
            .tags(
                &listing::first_tag_page("acme/web"),
                &["one", "two", "leaf"],
                None,
            )
            .tag("one", &inner, INDEX)
            .tag("two", &outer, INDEX)
            .tag("leaf", OTHER, IMAGE);
        let gathered = registry.gather(digest_delete(DELETED), None).unwrap();
        assert_eq!(
            delete_tags(&gathered),
            Some(vec![
                ("one".into(), inner.clone(), vec![inner.clone()]),
                (
                    "two".into(),
                    outer.clone(),
                    vec![outer.clone(), inner.clone()]
                ),
            ])
        );
        // A leaf manifest is never read; each index once.
        let reads: Vec<_> = registry
            .asked
            .iter()
            .filter(|a| a.starts_with("GET /v2/acme/web/manifests"))
            .collect();
        assert_eq!(reads.len(), 2, "{reads:?}");
    }

    #[test]
    fn a_digest_delete_fails_closed_when_any_fact_is_not_understood() {
        let page = listing::first_tag_page("acme/web");
        type SetUp<'a> = Box<dyn Fn(&mut Registry) + 'a>;
        let scenarios: Vec<(&str, SetUp<'_>)> = vec![
            (
                "tag list unreadable",
                Box::new(|r: &mut Registry| {
                    r.on("GET", &page, reply(200, vec![], b"not json".to_vec()));
                }),
            ),
            (
                "tag list 500",
                Box::new(|r: &mut Registry| {
                    r.on("GET", &page, reply(500, vec![], vec![]));
                }),
            ),
            (
                "tag list holds a non-tag",
                Box::new(|r: &mut Registry| {
                    r.tags(&page, &["v1", "../x"], None);
                }),
            ),
            (
                "a tag's digest is garbage",
                Box::new(|r: &mut Registry| {
                    r.tags(&page, &["v1"], None).tag("v1", "garbage", IMAGE);
                }),
            ),
            (
                "a tag's HEAD fails",
                Box::new(|r: &mut Registry| {
                    r.tags(&page, &["v1"], None);
                    r.on(
                        "HEAD",
                        "/v2/acme/web/manifests/v1",
                        Answer::Failed("reset".into()),
                    );
                }),
            ),
            (
                "an index is not JSON",
                Box::new(|r: &mut Registry| {
                    r.tags(&page, &["v1"], None).tag("v1", OTHER, INDEX);
                    r.on(
                        "GET",
                        &format!("/v2/acme/web/manifests/{OTHER}"),
                        reply(200, vec![], b"<html>".to_vec()),
                    );
                }),
            ),
            (
                "an index is not the manifest asked for",
                Box::new(|r: &mut Registry| {
                    r.tags(&page, &["v1"], None).tag("v1", OTHER, INDEX);
                    let body = format!(r#"{{"manifests":[{{"digest":"{DELETED}"}}]}}"#);
                    r.on(
                        "GET",
                        &format!("/v2/acme/web/manifests/{OTHER}"),
                        reply(200, vec![], body.into_bytes()),
                    );
                }),
            ),
            (
                "an index is gone",
                Box::new(|r: &mut Registry| {
                    r.tags(&page, &["v1"], None).tag("v1", OTHER, INDEX);
                }),
            ),
            (
                "a manifest of unknown type is unreadable",
                Box::new(|r: &mut Registry| {
                    r.tags(&page, &["v1"], None)
                        .tag("v1", OTHER, "application/x-whatever");
                }),
            ),
            (
                "a next page points elsewhere",
                Box::new(|r: &mut Registry| {
                    r.tags(
                        &page,
                        &["v1"],
                        Some("https://evil.example/v2/acme/web/tags/list"),
                    );
                }),
            ),
        ];
        for (name, set_up) in scenarios {
            let mut registry = Registry::default();
            set_up(&mut registry);
            let gathered = registry.gather(digest_delete(DELETED), None).unwrap();
            assert_eq!(delete_tags(&gathered), None, "{name}");
            assert!(gathered.unknown.is_some(), "{name}");
        }
    }

    #[test]
    fn a_digest_delete_follows_every_tag_page() {
        let mut registry = Registry::default();
        let first = listing::first_tag_page("acme/web");
        let second = "/v2/acme/web/tags/list?last=a&n=1000";
        registry
            .tags(&first, &["a"], Some(second))
            .tags(second, &["b"], None)
            .tag("a", OTHER, IMAGE)
            .tag("b", DELETED, IMAGE);
        let gathered = registry.gather(digest_delete(DELETED), None).unwrap();
        assert_eq!(
            delete_tags(&gathered),
            Some(vec![("b".into(), DELETED.into(), vec![])])
        );
    }

    #[test]
    fn indexes_nested_deeper_than_the_bound_leave_the_tags_unknown() {
        let mut registry = Registry::default();
        let mut top = registry.index(&[(DELETED, IMAGE)]);
        for _ in 0..MAX_INDEX_DEPTH {
            top = registry.index(&[(&top, INDEX)]);
        }
        registry
            .tags(&listing::first_tag_page("acme/web"), &["deep"], None)
            .tag("deep", &top, INDEX);
        let gathered = registry.gather(digest_delete(DELETED), None).unwrap();
        assert_eq!(delete_tags(&gathered), None);
        assert!(gathered.unknown.unwrap().contains("deeper"));

        // One level less is within the bound, and found.
        let mut registry = Registry::default();
        let mut top = registry.index(&[(DELETED, IMAGE)]);
        for _ in 1..MAX_INDEX_DEPTH {
            top = registry.index(&[(&top, INDEX)]);
        }
        registry
            .tags(&listing::first_tag_page("acme/web"), &["deep"], None)
            .tag("deep", &top, INDEX);
        let gathered = registry.gather(digest_delete(DELETED), None).unwrap();
        let tags = delete_tags(&gathered).unwrap();
        assert_eq!(tags[0].2.len(), MAX_INDEX_DEPTH);
    }

    #[test]
    fn a_gathering_cut_short_is_unknown() {
        let mut registry = Registry::default();
        registry
            .tags(&listing::first_tag_page("acme/web"), &["a", "b"], None)
            .tag("a", OTHER, IMAGE)
            .tag("b", DELETED, IMAGE);
        let mut gathering = Gathering::new(
            digest_delete(DELETED),
            Actor::user("alice", &[]),
            None,
            &AllFacts,
        )
        .unwrap();
        // The tag list and one HEAD answered; the other never is.
        registry.drive(&mut gathering, 2);
        assert!(!gathering.is_done());
        let gathered = gathering.finish().unwrap();
        assert_eq!(delete_tags(&gathered), None);

        let mut gathering = Gathering::new(
            push(&["v1"]),
            Actor::user("alice", &[]),
            Some(b"{}"),
            &AllFacts,
        )
        .unwrap();
        registry.drive(&mut gathering, 1);
        assert_eq!(gathering.finish().unwrap_err().status, 503);
    }

    #[test]
    fn malformed_names_are_never_asked_about() {
        let mut registry = Registry::default();
        let route = Route::PushManifest {
            image: "Acme/../web".into(),
            reference: Reference::Tag("v1".into()),
            tags: vec!["v1".into()],
        };
        let gathered = registry.gather(route, Some(b"{}")).unwrap();
        assert!(registry.asked.is_empty(), "{:?}", registry.asked);
        let Request::Push(push) = gathered.request else {
            panic!("not a push");
        };
        assert!(!push.image_exists);
    }

    #[test]
    fn a_tag_list_over_the_bound_leaves_the_tags_unknown() {
        let mut registry = Registry::default();
        let many: Vec<String> = (0..=MAX_TAGS_PER_DIGEST_DELETE)
            .map(|i| format!("t{i}"))
            .collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        registry.tags(&listing::first_tag_page("acme/web"), &many, None);
        let gathered = registry.gather(digest_delete(DELETED), None).unwrap();
        assert_eq!(delete_tags(&gathered), None);
        assert!(registry.asked.len() == 1, "no tag was looked up");
    }

    /// A policy protecting semver tags, and (when `permissions`) linking
    /// `acme/web` by a record and `acme/web-*` by a pattern to a repository
    /// where `dev` writes and `ops` administers.
    fn semver(permissions: bool) -> Policy {
        let permissions = if permissions {
            r#", "permissions": {
                "repositories": {"web-app": {"write": ["user:dev"], "admin": ["user:ops"]}},
                "images": [
                  {"name": "acme/web", "repository": "web-app"},
                  {"pattern": "acme/web-*", "repository": "web-app"}
                ]}"#
        } else {
            ""
        };
        Policy::from_json(&format!(
            r#"{{"version": 1, "immutability": {{"protect": "some",
                "rules": [{{"name": "semver", "tags": {{"regex": "^v\\d+\\.\\d+\\.\\d+$"}}}}]}}{permissions}}}"#
        ))
        .unwrap()
    }

    fn push_to(image: &str, tags: &[&str]) -> Route {
        Route::PushManifest {
            image: image.into(),
            reference: Reference::Tag(tags[0].into()),
            tags: tags.iter().map(|tag| (*tag).to_owned()).collect(),
        }
    }

    fn pushed(gathered: &Gathered) -> &PushRequest {
        let Request::Push(push) = &gathered.request else {
            panic!("not a push: {:?}", gathered.request);
        };
        push
    }

    #[test]
    fn a_push_of_an_unprotectable_tag_by_a_writer_looks_nothing_up() {
        let body = br#"{"schemaVersion":2}"#;
        for (policy, actor) in [
            (semver(false), Actor::anonymous()),
            (semver(true), Actor::user("dev", &[])),
        ] {
            let mut registry = Registry::default();
            registry.tag("latest", OTHER, IMAGE).tags(
                "/v2/acme/web/tags/list?n=1",
                &["latest"],
                None,
            );
            let gathered = registry
                .gather_for(push(&["latest", "main"]), Some(body), actor, &policy)
                .unwrap();
            assert!(registry.asked.is_empty(), "{:?}", registry.asked);
            // Asked of nothing, judged new and in a new image: the decision is
            // the one the real facts give.
            let push = pushed(&gathered);
            assert_eq!(push.tags[0].current, None);
            assert!(!push.image_exists);
            let mut real = push.clone();
            real.tags[0].current = Some(OTHER.into());
            real.image_exists = true;
            assert_eq!(policy.evaluate_push(push), policy.evaluate_push(&real));
            assert!(policy.evaluate_push(push).allowed());
        }
    }

    #[test]
    fn a_protected_tag_is_still_looked_up() {
        let policy = semver(false);
        let mut registry = Registry::default();
        registry
            .tag("v1.0.0", OTHER, IMAGE)
            .tags("/v2/acme/web/tags/list?n=1", &["v1.0.0"], None);
        let gathered = registry
            .gather_for(
                push(&["latest", "v1.0.0"]),
                Some(b"{}"),
                Actor::anonymous(),
                &policy,
            )
            .unwrap();
        assert_eq!(registry.asked, ["HEAD /v2/acme/web/manifests/v1.0.0"]);
        let push = pushed(&gathered);
        assert_eq!(push.tags[1].current.as_deref(), Some(OTHER));
        // The tag proves the image exists, even unasked.
        assert!(push.image_exists);
        assert!(!policy.evaluate_push(push).allowed());
    }

    #[test]
    fn existence_is_asked_only_when_the_permission_check_depends_on_it() {
        let policy = semver(true);
        let list = "GET /v2/acme/web-api/tags/list?n=1";
        let dev = || Actor::user("dev", &[]);
        let ops = || Actor::user("ops", &[]);
        // A pattern link: creating the image needs admin, so a writer's push,
        // upload and mount ask; an admin's do not.
        let upload = || Route::Upload {
            image: "acme/web-api".into(),
        };
        let mount = || Route::Mount {
            image: "acme/web-api".into(),
            from: "acme/web".into(),
        };
        for (route, body) in [
            (push_to("acme/web-api", &["latest"]), Some(&b"{}"[..])),
            (upload(), None),
            (mount(), None),
        ] {
            let mut registry = Registry::default();
            registry.tags("/v2/acme/web-api/tags/list?n=1", &["old"], None);
            let gathered = registry
                .gather_for(route.clone(), body, dev(), &policy)
                .unwrap();
            assert_eq!(registry.asked, [list], "{route:?}");
            assert!(policy.evaluate(&gathered.request).allowed(), "{route:?}");

            let mut registry = Registry::default();
            registry
                .gather_for(route.clone(), body, ops(), &policy)
                .unwrap();
            assert!(registry.asked.is_empty(), "{route:?}: {:?}", registry.asked);
        }
        // A record: writers may create it, nothing to ask.
        let mut registry = Registry::default();
        registry
            .gather_for(
                Route::Upload {
                    image: "acme/web".into(),
                },
                None,
                dev(),
                &policy,
            )
            .unwrap();
        assert!(registry.asked.is_empty(), "{:?}", registry.asked);
    }

    /// A policy that cannot say, or says something that does not fit the request.
    struct Broken {
        answer: Option<PushNeeds>,
    }

    impl Needs for Broken {
        fn push_needs(&self, _: &PushRequest) -> Option<PushNeeds> {
            self.answer.clone()
        }

        fn existence_matters(&self, _: &str, _: &Actor) -> Option<bool> {
            None
        }
    }

    #[test]
    fn needs_not_known_gather_every_fact() {
        let everything = [
            "HEAD /v2/acme/web/manifests/latest",
            "HEAD /v2/acme/web/manifests/main",
            "GET /v2/acme/web/tags/list?n=1",
        ];
        let cannot_say = Broken { answer: None };
        let too_short = Broken {
            answer: Some(PushNeeds::default()),
        };
        for needs in [&AllFacts as &dyn Needs, &cannot_say, &too_short] {
            let mut registry = Registry::default();
            registry
                .gather_for(
                    push(&["latest", "main"]),
                    Some(b"{}"),
                    Actor::anonymous(),
                    needs,
                )
                .unwrap();
            assert_eq!(registry.asked, everything);

            let mut registry = Registry::default();
            registry
                .gather_for(
                    Route::Upload {
                        image: "acme/web".into(),
                    },
                    None,
                    Actor::anonymous(),
                    needs,
                )
                .unwrap();
            assert_eq!(registry.asked, ["GET /v2/acme/web/tags/list?n=1"]);
        }
        // Unknown and needed is still a 503.
        let mut registry = Registry::default();
        registry.on(
            "GET",
            "/v2/acme/web/tags/list?n=1",
            Answer::Failed("reset".into()),
        );
        let refused = registry
            .gather_for(
                push(&["latest"]),
                Some(b"{}"),
                Actor::anonymous(),
                &cannot_say,
            )
            .unwrap_err();
        assert_eq!(refused.status, 503);
    }
}
