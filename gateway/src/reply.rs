//! What a gateway answers a client itself: the OCI error of a denial, and the
//! gateway's own refusals (the upstream is down, a request it cannot decide).
//!
//! A [`Reply`] is plain data — status, headers, body — that any HTTP host turns
//! into its own response type.

use policy_core::Decision;
use serde::Serialize;

/// A response the gateway makes itself, never forwarded upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// Headers, in order (lowercase names).
    pub headers: Vec<(&'static str, String)>,
    /// The JSON body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The OCI error a denying decision carries, with `challenge` as
    /// `WWW-Authenticate` when the decision asks the actor to log in (401).
    ///
    /// An allowed decision has no error; it gets `{"errors":[]}` with status 200,
    /// which no host sends (it forwards instead).
    pub fn denial(decision: &Decision, challenge: Option<&str>) -> Reply {
        let status = decision.status();
        let body = serde_json::to_vec(&decision.error()).unwrap_or_else(|_| b"{}".to_vec());
        Reply::json(status, body, challenge.filter(|_| status == 401))
    }

    fn json(status: u16, body: Vec<u8>, challenge: Option<&str>) -> Reply {
        let mut headers = vec![
            ("content-type", "application/json".to_owned()),
            ("docker-distribution-api-version", "registry/2.0".to_owned()),
        ];
        if let Some(challenge) = challenge {
            headers.push(("www-authenticate", challenge.to_owned()));
        }
        Reply {
            status,
            headers,
            body,
        }
    }
}

/// The OCI error codes of the gateway's own refusals (the policy's codes come
/// with its decisions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum RefusalCode {
    /// 503: a fact could not be read, no decision could be had, or the upstream
    /// could not be reached or did not answer.
    Unavailable,
    /// 401: the client must log in first.
    Unauthorized,
    /// 405, 415 or 400: a request the gateway does not forward, or cannot decide
    /// on exactly (parameters the upstream could read another way).
    Unsupported,
    /// 413: a manifest over the gateway's size bound.
    SizeInvalid,
    /// 400: the manifest's digest is not the one its reference names.
    DigestInvalid,
    /// 400: the manifest body could not be read.
    ManifestInvalid,
}

impl RefusalCode {
    /// The code as OCI error bodies and metrics spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalCode::Unavailable => "UNAVAILABLE",
            RefusalCode::Unauthorized => "UNAUTHORIZED",
            RefusalCode::Unsupported => "UNSUPPORTED",
            RefusalCode::SizeInvalid => "SIZE_INVALID",
            RefusalCode::DigestInvalid => "DIGEST_INVALID",
            RefusalCode::ManifestInvalid => "MANIFEST_INVALID",
        }
    }
}

/// A request the gateway refuses on its own (not a policy decision): what the
/// client is told, and what the audit log records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// The HTTP status.
    pub status: u16,
    /// The OCI error code.
    pub code: RefusalCode,
    /// One sentence for the developer.
    pub message: String,
    /// What went wrong underneath (a connection error, an answer not
    /// understood): for the gateway's log and audit record, never sent to the
    /// client, so both gateways answer the same and no internal detail leaks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// The message of [`Refusal::upstream_unavailable`].
pub const UPSTREAM_UNAVAILABLE: &str =
    "taglock could not check this request with the upstream registry; nothing was written";

/// The message of [`Refusal::upstream_no_answer`].
pub const UPSTREAM_NO_ANSWER: &str = "the upstream registry did not answer; \
     if this was a write, it may still land: check before retrying";

impl Refusal {
    fn new(status: u16, code: RefusalCode, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            code,
            message: message.into(),
            cause: None,
        }
    }

    /// 503: the gateway could not check or forward the request; nothing was written.
    pub fn unavailable(message: impl Into<String>) -> Refusal {
        Refusal::new(503, RefusalCode::Unavailable, message)
    }

    /// 503: the upstream could not be reached (the connection failed), or its
    /// answers to the look-ups were not usable; nothing was forwarded.
    /// `cause` goes to the log, not to the client.
    pub fn upstream_unavailable(cause: impl Into<String>) -> Refusal {
        Refusal::unavailable(UPSTREAM_UNAVAILABLE).because(cause)
    }

    /// 503: the request was forwarded, but the upstream did not answer (it
    /// timed out, or the connection broke): a write may still land.
    /// `cause` goes to the log, not to the client.
    pub fn upstream_no_answer(cause: impl Into<String>) -> Refusal {
        Refusal::unavailable(UPSTREAM_NO_ANSWER).because(cause)
    }

    /// The same refusal, recording `cause` for the log.
    pub fn because(mut self, cause: impl Into<String>) -> Refusal {
        self.cause = Some(cause.into());
        self
    }

    /// 401: log in first.
    pub fn unauthorized(message: impl Into<String>) -> Refusal {
        Refusal::new(401, RefusalCode::Unauthorized, message)
    }

    /// 405: an endpoint or method the gateway does not forward.
    pub fn unsupported(message: impl Into<String>) -> Refusal {
        Refusal::new(405, RefusalCode::Unsupported, message)
    }

    /// 400: a request the gateway cannot decide on exactly (ambiguous or
    /// encoded parameters, too many tags).
    pub fn undecidable(message: impl Into<String>) -> Refusal {
        Refusal::new(400, RefusalCode::Unsupported, message)
    }

    /// 415: request parameters in a form body, which the upstream may read but
    /// the gateway does not decide on.
    pub fn form_body() -> Refusal {
        Refusal::new(
            415,
            RefusalCode::Unsupported,
            "taglock does not accept form-encoded request bodies on the registry API: \
             the upstream could read request parameters from them; send parameters in the query",
        )
    }

    /// 413: a manifest over [`crate::manifest::MAX_MANIFEST_BYTES`].
    pub fn manifest_too_large() -> Refusal {
        Refusal::new(
            413,
            RefusalCode::SizeInvalid,
            format!(
                "manifest is larger than {} MiB; taglock refuses it",
                crate::manifest::MAX_MANIFEST_BYTES >> 20
            ),
        )
    }

    /// 400: the body does not have the digest the path names.
    pub fn digest_mismatch(reference: &str, actual: &str) -> Refusal {
        Refusal::new(
            400,
            RefusalCode::DigestInvalid,
            format!("manifest digest {actual} does not match the reference {reference}"),
        )
    }

    /// 400: the manifest body could not be read.
    pub fn bad_body(message: impl Into<String>) -> Refusal {
        Refusal::new(400, RefusalCode::ManifestInvalid, message)
    }

    /// 408: the manifest body did not arrive within `bound` (a client holding
    /// a connection open by sending its body slowly).
    pub fn manifest_too_slow(bound: std::time::Duration) -> Refusal {
        Refusal::new(
            408,
            RefusalCode::ManifestInvalid,
            format!("the manifest did not arrive within {bound:?}; nothing was written"),
        )
    }

    /// The response: status and `{"errors":[{"code","message","detail":null}]}`,
    /// with `challenge` as `WWW-Authenticate` on a 401.
    pub fn reply(&self, challenge: Option<&str>) -> Reply {
        // Typed rather than `json!`: the same bytes (fields in the order a
        // `serde_json::Map` sorts them) without building a `Value` for them.
        #[derive(Serialize)]
        struct Body<'a> {
            errors: [Entry<'a>; 1],
        }
        #[derive(Serialize)]
        struct Entry<'a> {
            code: RefusalCode,
            detail: Option<()>,
            message: &'a str,
        }
        let body = Body {
            errors: [Entry {
                code: self.code,
                detail: None,
                message: &self.message,
            }],
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
        Reply::json(self.status, bytes, challenge.filter(|_| self.status == 401))
    }
}

/// `299 - "<message>"` (RFC 7234 §5.5), the audit-mode warning of a decision
/// that would have denied; `None` for any other decision. `"` and `\` are escaped
/// as a quoted-string requires, control characters become spaces.
pub fn audit_warning(decision: &Decision) -> Option<String> {
    if !decision.would_deny() {
        return None;
    }
    let escaped = decision
        .message()
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    Some(
        format!("299 - \"{escaped}\"")
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
        reply
            .headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn refusals_are_oci_errors() {
        let reply = Refusal::unauthorized("log in").reply(Some("Basic realm=\"taglock\""));
        assert_eq!(reply.status, 401);
        assert_eq!(
            header(&reply, "www-authenticate"),
            Some("Basic realm=\"taglock\"")
        );
        let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED");
        assert_eq!(body["errors"][0]["message"], "log in");
        let reply = Refusal::manifest_too_large().reply(Some("Basic realm=\"taglock\""));
        assert_eq!(reply.status, 413);
        assert_eq!(header(&reply, "www-authenticate"), None);
        assert_eq!(header(&reply, "content-type"), Some("application/json"));
    }

    #[test]
    fn the_cause_goes_to_the_record_never_to_the_client() {
        let cause = "tcp connect error: Connection refused (10.0.3.7:5000)";
        for refusal in [
            Refusal::upstream_unavailable(cause),
            Refusal::upstream_no_answer(cause),
        ] {
            let reply = refusal.reply(None);
            assert_eq!(reply.status, 503);
            let body = String::from_utf8(reply.body).unwrap();
            assert!(!body.contains("10.0.3.7"), "{body}");
            assert!(body.contains(&refusal.message), "{body}");
            let record = serde_json::to_value(&refusal).unwrap();
            assert_eq!(record["cause"], cause);
        }
        let record = serde_json::to_value(Refusal::unauthorized("log in")).unwrap();
        assert!(record.get("cause").is_none(), "{record}");
    }

    #[test]
    fn bodies_are_the_bytes_of_the_json_value() {
        for code in [
            RefusalCode::Unavailable,
            RefusalCode::Unauthorized,
            RefusalCode::Unsupported,
            RefusalCode::SizeInvalid,
            RefusalCode::DigestInvalid,
            RefusalCode::ManifestInvalid,
        ] {
            for message in [
                "",
                "log in",
                "\"quoted\" \\ \u{1}\n\t é \u{2028} 🦀 </script>",
            ] {
                let expected = serde_json::to_vec(&serde_json::json!({
                    "errors": [{ "code": code, "message": message, "detail": null }]
                }))
                .unwrap();
                assert_eq!(Refusal::new(400, code, message).reply(None).body, expected);
            }
        }
    }

    #[test]
    fn codes_serialize_as_their_names() {
        for code in [
            RefusalCode::Unavailable,
            RefusalCode::Unauthorized,
            RefusalCode::Unsupported,
            RefusalCode::SizeInvalid,
            RefusalCode::DigestInvalid,
            RefusalCode::ManifestInvalid,
        ] {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::Value::from(code.as_str())
            );
        }
    }

    #[test]
    fn warnings_quote_the_message_of_would_be_denials() {
        let policy = policy_core::Policy::from_json(
            r#"{"version":1,"mode":"audit","permissions":{"repositories":{}}}"#,
        )
        .unwrap();
        let pull = policy_core::Request::Pull(policy_core::PullRequest {
            image: "acme/web".into(),
            actor: policy_core::Actor::user("bob", &[]),
        });
        let decision = policy.evaluate(&pull);
        assert!(decision.would_deny(), "{decision:?}");
        let warning = audit_warning(&decision).unwrap();
        assert!(warning.starts_with("299 - \""), "{warning}");
        assert!(!warning.chars().any(char::is_control));
        let allowed = policy_core::Policy::from_json(r#"{"version":1}"#)
            .unwrap()
            .evaluate(&pull);
        assert_eq!(audit_warning(&allowed), None);
    }
}
