//! Manifests as the gateway needs them: their media types, their digest, and the
//! manifests an index refers to.

use serde::Deserialize;
use sha2::{Digest, Sha256, Sha512};

/// Every manifest and index media type, sent as `Accept` whenever the gateway
/// asks the upstream about a manifest, so that it answers with the digest of the
/// stored manifest whatever its type (no conversion, and no 404 for an index).
pub const MANIFEST_MEDIA_TYPES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.oci.artifact.manifest.v1+json",
];

/// Media types of manifests that refer to no other manifest: nothing is
/// reachable through them.
const LEAF_MEDIA_TYPES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.oci.artifact.manifest.v1+json",
];

/// The largest manifest the gateway buffers (the OCI spec's recommended minimum
/// limit is 4 MiB); larger ones get 413 `SIZE_INVALID`.
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// Whether a manifest of `media_type` (a `Content-Type` or a descriptor's
/// `mediaType`, parameters allowed) can refer to other manifests. Unknown or
/// absent types can: the gateway must read such a manifest to know.
pub fn may_refer_to_manifests(media_type: Option<&str>) -> bool {
    let Some(media_type) = media_type else {
        return true;
    };
    let base = media_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    !LEAF_MEDIA_TYPES.contains(&base.as_str())
}

/// The digest of a manifest body, with the algorithm of `reference` when it
/// names `sha512`, `sha256` otherwise.
pub fn digest(body: &[u8], reference: Option<&str>) -> String {
    if reference.is_some_and(|r| r.starts_with("sha512:")) {
        format!("sha512:{}", hex::encode(Sha512::digest(body)))
    } else {
        format!("sha256:{}", hex::encode(Sha256::digest(body)))
    }
}

/// One manifest an index refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    /// Its digest (checked against the digest grammar).
    pub digest: String,
    /// Its `mediaType`, when the index gives one.
    pub media_type: Option<String>,
}

/// Why a manifest's references could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// The body is not a JSON manifest.
    #[error("the manifest is not JSON the OCI image spec defines: {0}")]
    NotJson(String),
    /// A descriptor names no valid digest.
    #[error("the index refers to `{0}`, which is not a digest")]
    BadDigest(String),
}

/// The manifests `body` refers to: the entries of an index (OCI image index or
/// Docker manifest list), empty for any other manifest.
pub fn children(body: &[u8]) -> Result<Vec<Child>, ManifestError> {
    #[derive(Deserialize)]
    struct Index {
        #[serde(default)]
        manifests: Option<Vec<Descriptor>>,
    }
    #[derive(Deserialize)]
    struct Descriptor {
        digest: String,
        #[serde(rename = "mediaType", default)]
        media_type: Option<String>,
    }
    let index: Index =
        serde_json::from_slice(body).map_err(|err| ManifestError::NotJson(err.to_string()))?;
    index
        .manifests
        .unwrap_or_default()
        .into_iter()
        .map(|descriptor| {
            policy_core::names::check_digest(&descriptor.digest)
                .map_err(|_| ManifestError::BadDigest(descriptor.digest.clone()))?;
            Ok(Child {
                digest: descriptor.digest,
                media_type: descriptor.media_type,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_follow_the_reference_algorithm() {
        assert_eq!(
            digest(b"", None),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(digest(b"", Some("sha512:00")).starts_with("sha512:cf83e135"));
        assert!(digest(b"{}", Some("v1")).starts_with("sha256:44136fa3"));
    }

    #[test]
    fn indexes_list_their_children() {
        let child = format!("sha256:{}", "a".repeat(64));
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",
                "manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{child}","size":1}}]}}"#
        );
        let found = children(index.as_bytes()).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].digest, child);
        assert!(!may_refer_to_manifests(found[0].media_type.as_deref()));
        assert_eq!(children(br#"{"schemaVersion":2,"layers":[]}"#), Ok(vec![]));
        assert!(matches!(
            children(br#"{"manifests":[{"digest":"sha256:zz"}]}"#),
            Err(ManifestError::BadDigest(_))
        ));
        assert!(matches!(
            children(b"<html>"),
            Err(ManifestError::NotJson(_))
        ));
    }

    #[test]
    fn only_known_leaf_types_are_not_read() {
        assert!(may_refer_to_manifests(None));
        assert!(may_refer_to_manifests(Some(
            "application/vnd.oci.image.index.v1+json"
        )));
        assert!(may_refer_to_manifests(Some("text/plain")));
        assert!(!may_refer_to_manifests(Some(
            "Application/VND.docker.distribution.manifest.v2+json; charset=utf-8"
        )));
    }
}
