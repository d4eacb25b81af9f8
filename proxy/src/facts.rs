//! The facts a decision needs, read from the upstream registry (SPEC §2): the
//! digest each pushed tag points at now, whether the image exists, the tags at a
//! digest. The proxy keeps no state of its own: the registry is the truth.

use crate::listing::{self, ListingError};
use crate::upstream::{Upstream, UpstreamError};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use policy_core::{TagState, names};
use std::time::Duration;

/// Whether the upstream is asked about `image`. A name outside the OCI grammar
/// cannot exist there, and the core refuses such a request as `invalid_request`
/// whatever the facts say; so the proxy does not ask (and never answers 503 for
/// a malformed name): the decision answers 400 with the located reason.
fn askable(image: &str) -> bool {
    names::check_image_name(image).is_ok()
}

/// What a push needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushFacts {
    /// Each pushed tag with its current digest (`None` when new).
    pub tags: Vec<TagState>,
    /// Whether the image holds any tag already.
    pub image_exists: bool,
}

/// The current digest of every tag (at most `concurrency` `HEAD`s at a time) and,
/// at the same time, whether the image exists.
pub async fn push(
    upstream: &Upstream,
    image: &str,
    tags: &[String],
    concurrency: usize,
) -> Result<PushFacts, FactError> {
    if !askable(image) {
        let tags = tags.iter().map(TagState::new_tag).collect();
        return Ok(PushFacts {
            tags,
            image_exists: false,
        });
    }
    let heads = stream::iter(tags.iter().cloned())
        .map(|name: String| async move {
            if names::check_tag(&name).is_err() {
                return Ok(TagState::new_tag(name));
            }
            let current = upstream.tag_digest(image, &name).await?;
            Ok::<_, UpstreamError>(TagState {
                name,
                current,
                locked: false,
                via: Vec::new(),
            })
        })
        .buffered(concurrency.max(1))
        .try_collect::<Vec<_>>();
    let exists = async {
        listing::has_tags(upstream, image)
            .await
            .map_err(FactError::from)
    };
    let heads = async { heads.await.map_err(FactError::from) };
    let (tags, exists) = tokio::try_join!(heads, exists)?;
    // A pushed tag that exists proves the image does, whatever the tag list said
    // a moment earlier.
    let image_exists = exists || tags.iter().any(TagState::exists);
    Ok(PushFacts { tags, image_exists })
}

/// The tag a tag delete removes, with its current digest.
pub async fn tag_delete(
    upstream: &Upstream,
    image: &str,
    tag: &str,
) -> Result<TagState, UpstreamError> {
    if !askable(image) || names::check_tag(tag).is_err() {
        return Ok(TagState::new_tag(tag));
    }
    Ok(TagState {
        name: tag.to_owned(),
        current: upstream.tag_digest(image, tag).await?,
        locked: false,
        via: Vec::new(),
    })
}

/// The tags a digest delete removes; `None` when they could not all be read in
/// `timeout` — the delete is then judged as "tags unknown" (fail closed, SPEC §3.3).
pub async fn digest_delete(
    upstream: &Upstream,
    image: &str,
    digest: &str,
    concurrency: usize,
    timeout: Duration,
) -> Option<Vec<TagState>> {
    if !askable(image) || names::check_digest(digest).is_err() {
        return None;
    }
    let gathering = tags_at_digest(upstream, image, digest, concurrency);
    match tokio::time::timeout(timeout, gathering).await {
        Ok(Ok(tags)) => Some(tags),
        Ok(Err(err)) => {
            tracing::warn!(%image, %digest, "the tags at the digest are unknown ({err}); the delete is judged fail-closed");
            None
        }
        Err(_) => {
            tracing::warn!(%image, %digest, "gathering the tags at the digest took over {timeout:?}; the delete is judged fail-closed");
            None
        }
    }
}

/// Whether an image exists (holds a tag), for uploads and mounts.
pub async fn image_exists(upstream: &Upstream, image: &str) -> Result<bool, FactError> {
    if !askable(image) {
        return Ok(false);
    }
    Ok(listing::has_tags(upstream, image).await?)
}

/// The tags of `image` that point at `digest`: the whole tag list, then a `HEAD`
/// of each, at most `concurrency` at a time.
async fn tags_at_digest(
    upstream: &Upstream,
    image: &str,
    digest: &str,
    concurrency: usize,
) -> Result<Vec<TagState>, FactError> {
    let tags = listing::tags(upstream, image).await?.unwrap_or_default();
    let heads = stream::iter(tags)
        .map(|tag: String| async move {
            let current = upstream.tag_digest(image, &tag).await?;
            Ok::<_, UpstreamError>((tag, current))
        })
        .buffered(concurrency.max(1))
        .try_collect::<Vec<_>>()
        .await?;
    Ok(heads
        .into_iter()
        .filter(|(_, current)| current.as_deref() == Some(digest))
        .map(|(tag, _)| TagState::existing(tag, digest))
        .collect())
}

/// A fact that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FactError {
    /// A request of the proxy's own failed.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// A tag list could not be read.
    #[error(transparent)]
    Listing(#[from] ListingError),
}
