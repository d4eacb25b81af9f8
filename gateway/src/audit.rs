//! What an audit record says of one request: who asked what, the request as
//! the core saw it and its decision — or the gateway's own refusal, when the
//! request never reached a decision. Every host writes these records as one
//! JSON object per line.
//!
//! ```json
//! {"time":"2026-12-01T07:00:00.123Z","method":"PUT","path":"/v2/acme/web/manifests/v1.2.0",
//!  "actor":{"kind":"user","id":"alice"},"request":{"operation":"push",…},
//!  "decision":{"allowed":false,…},"rule":"semver","component_sha256":"…"}
//! ```

use crate::reply::Refusal;
use policy_core::{Actor, Decision, Request};
use serde::Serialize;

/// The client's request line, as the record names it.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The path and query, as the client sent them.
    pub path: &'a str,
}

/// One audit record.
#[derive(Debug, Serialize)]
pub struct AuditRecord<'a> {
    /// When it happened (RFC 3339, UTC, milliseconds), as the host's clock says.
    pub time: &'a str,
    /// The HTTP method of the client's request.
    pub method: &'a str,
    /// Its path and query.
    pub path: &'a str,
    /// Who asked, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<&'a Actor>,
    /// The request as the core saw it, when it got that far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<&'a Request>,
    /// The decision, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<&'a Decision>,
    /// The rule that decided, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<&'a str>,
    /// Why a fact in the request is unknown (`tags: null`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown: Option<&'a str>,
    /// The gateway's own refusal, for a request that got no decision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal: Option<&'a Refusal>,
    /// The sha256 of the decision engine (the component) that decided.
    pub component_sha256: &'a str,
}

impl<'a> AuditRecord<'a> {
    /// The record of a decision.
    pub fn decided(
        time: &'a str,
        exchange: Exchange<'a>,
        request: &'a Request,
        decision: &'a Decision,
        unknown: Option<&'a str>,
        component_sha256: &'a str,
    ) -> AuditRecord<'a> {
        AuditRecord {
            time,
            method: exchange.method,
            path: exchange.path,
            actor: Some(request.actor()),
            request: Some(request),
            decision: Some(decision),
            rule: decision.rule(),
            unknown,
            refusal: None,
            component_sha256,
        }
    }

    /// The record of a request the gateway refused itself.
    pub fn refused(
        time: &'a str,
        exchange: Exchange<'a>,
        actor: Option<&'a Actor>,
        refusal: &'a Refusal,
        component_sha256: &'a str,
    ) -> AuditRecord<'a> {
        AuditRecord {
            time,
            method: exchange.method,
            path: exchange.path,
            actor,
            request: None,
            decision: None,
            rule: None,
            unknown: None,
            refusal: Some(refusal),
            component_sha256,
        }
    }

    /// The record as one JSON line, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec());
        line.push(b'\n');
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_recorded_without_a_decision() {
        let refusal = Refusal::form_body();
        let actor = Actor::user("alice", &[]);
        let exchange = Exchange {
            method: "POST",
            path: "/v2/acme/web/blobs/uploads/",
        };
        let line = AuditRecord::refused("t", exchange, Some(&actor), &refusal, "abc").to_line();
        assert_eq!(line.last(), Some(&b'\n'));
        let record: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(record["refusal"]["status"], 415);
        assert_eq!(record["refusal"]["code"], "UNSUPPORTED");
        assert_eq!(record["actor"]["id"], "alice");
        assert!(record.get("decision").is_none());
        assert_eq!(record["component_sha256"], "abc");
    }
}
