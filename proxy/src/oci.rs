//! OCI Distribution vocabulary the proxy speaks on its own behalf: manifest media
//! types, manifest digests, and the error responses that are not policy decisions
//! (the upstream is down, a manifest is too large, bad credentials).

use axum::body::Body;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use sha2::{Digest, Sha256, Sha512};

/// Every manifest and index media type, sent as `Accept` when the proxy asks the
/// upstream for a tag's digest, so that the registry answers with the digest of
/// the stored manifest whatever its type (no conversion, no 404 for an index).
pub const MANIFEST_MEDIA_TYPES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.oci.artifact.manifest.v1+json",
];

/// The largest manifest the proxy buffers (the OCI spec's recommended minimum
/// limit is 4 MiB); larger ones get 413 `SIZE_INVALID`.
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// The realm of the proxy's Basic challenge.
pub const REALM: &str = "taglock";

/// The digest of a manifest body, with the algorithm of `reference` when it
/// names `sha512`, `sha256` otherwise.
pub fn manifest_digest(body: &[u8], reference: Option<&str>) -> String {
    if reference.is_some_and(|r| r.starts_with("sha512:")) {
        format!("sha512:{}", hex(&Sha512::digest(body)))
    } else {
        format!("sha256:{}", hex(&Sha256::digest(body)))
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// An error of the proxy itself (not a policy decision), as an OCI error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The OCI error code, e.g. `UNAVAILABLE`.
    pub code: &'static str,
    /// One sentence for the developer.
    pub message: String,
}

impl ProxyError {
    /// 503 `UNAVAILABLE`: the proxy could not check or forward the request, so
    /// nothing was written.
    pub fn unavailable(message: impl Into<String>) -> ProxyError {
        ProxyError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "UNAVAILABLE",
            message: message.into(),
        }
    }

    /// 401 `UNAUTHORIZED`, with a Basic challenge.
    pub fn unauthorized(message: impl Into<String>) -> ProxyError {
        ProxyError {
            status: StatusCode::UNAUTHORIZED,
            code: "UNAUTHORIZED",
            message: message.into(),
        }
    }

    /// 405 `UNSUPPORTED`: an endpoint the proxy does not forward.
    pub fn unsupported(message: impl Into<String>) -> ProxyError {
        ProxyError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: "UNSUPPORTED",
            message: message.into(),
        }
    }

    /// 413 `SIZE_INVALID`: a manifest over [`MAX_MANIFEST_BYTES`].
    pub fn manifest_too_large() -> ProxyError {
        ProxyError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "SIZE_INVALID",
            message: format!(
                "manifest is larger than {} MiB; taglock refuses it",
                MAX_MANIFEST_BYTES >> 20
            ),
        }
    }

    /// 400 `DIGEST_INVALID`: the body does not have the digest the path names.
    pub fn digest_mismatch(reference: &str, actual: &str) -> ProxyError {
        ProxyError {
            status: StatusCode::BAD_REQUEST,
            code: "DIGEST_INVALID",
            message: format!("manifest digest {actual} does not match the reference {reference}"),
        }
    }

    /// 400 `MANIFEST_INVALID`: the body could not be read.
    pub fn bad_body(message: impl Into<String>) -> ProxyError {
        ProxyError {
            status: StatusCode::BAD_REQUEST,
            code: "MANIFEST_INVALID",
            message: message.into(),
        }
    }

    /// The response: status, `{"errors":[{"code","message","detail":null}]}`, and a
    /// challenge on 401.
    pub fn into_response(self) -> Response<Body> {
        let body = serde_json::json!({
            "errors": [{ "code": self.code, "message": self.message, "detail": null }]
        });
        json_response(self.status, &body, self.status == StatusCode::UNAUTHORIZED)
    }
}

/// A JSON response; with `challenge`, also `WWW-Authenticate: Basic realm="taglock"`.
pub fn json_response(
    status: StatusCode,
    body: &impl serde::Serialize,
    challenge: bool,
) -> Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    if challenge {
        headers.insert(header::WWW_AUTHENTICATE, challenge_value());
    }
    response
}

/// `Basic realm="taglock"`.
pub fn challenge_value() -> HeaderValue {
    HeaderValue::from_static("Basic realm=\"taglock\"")
}

/// `299 - "<message>"` (RFC 7234 §5.5), the audit-mode warning; `"` and `\` in the
/// message are escaped as a quoted-string requires.
pub fn warning_value(message: &str) -> Option<HeaderValue> {
    let escaped = message.replace('\\', "\\\\").replace('"', "\\\"");
    let text: String = format!("299 - \"{escaped}\"")
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    HeaderValue::from_bytes(text.as_bytes()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_follow_the_reference_algorithm() {
        assert_eq!(
            manifest_digest(b"", None),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(manifest_digest(b"", Some("sha512:00")).starts_with("sha512:cf83e135"));
        assert!(manifest_digest(b"{}", Some("v1")).starts_with("sha256:44136fa3"));
    }

    #[test]
    fn warnings_quote_the_message() {
        let value =
            warning_value("tag v1 is immutable (rule \"semver\") and points to sha256:ab12…")
                .unwrap();
        assert_eq!(
            value.as_bytes(),
            "299 - \"tag v1 is immutable (rule \\\"semver\\\") and points to sha256:ab12…\""
                .as_bytes()
        );
        assert!(warning_value("line\nbreak").is_some());
    }

    #[test]
    fn proxy_errors_are_oci_errors() {
        let response = ProxyError::unauthorized("log in").into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            "Basic realm=\"taglock\""
        );
        let response = ProxyError::manifest_too_large().into_response();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(!response.headers().contains_key(header::WWW_AUTHENTICATE));
    }
}
