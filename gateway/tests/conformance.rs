//! Runs the conformance corpus (`tests/conformance/` at the repository root)
//! through the gateway's side of every decision, with the shared runner
//! (`taglock-conformance`): what a client and an operator are shown of each
//! decision must be the corpus's decision.
//!
//! For each case the core decides natively (loading, `test_tag` and lints are the
//! core's own); the decision then goes through what every HTTP host sends: the
//! audit record (the decision object as logged), and for a denial the reply
//! (`Reply::denial`: status, the challenge on 401, the OCI error body), for a
//! would-be denial in audit mode the `Warning` header. The JSON the runner
//! checks is rebuilt from those, so a gateway that rewords, re-codes or drops
//! anything a case expects fails it.
#![allow(clippy::panic, clippy::indexing_slicing, missing_docs)]

use policy_core::Policy;
use serde_json::Value;
use taglock_conformance::{
    Corpus, Engine, Loaded, Native, differential, parse_request, run, to_json,
};
use taglock_gateway::audit::{AuditRecord, Exchange};
use taglock_gateway::{Reply, audit_warning};

const CHALLENGE: &str = "Basic realm=\"taglock\"";

/// The gateway as an engine: the native core behind the gateway's replies and
/// audit records.
struct Gateway;

impl Engine for Gateway {
    type Policy = Policy;

    fn name(&self) -> String {
        "gateway".into()
    }

    fn load(&mut self, policy: &str) -> Result<Loaded<Policy>, String> {
        Native.load(policy)
    }

    fn evaluate(&mut self, policy: &Policy, request: &str) -> Result<Value, String> {
        let request = parse_request(request)?;
        let decision = policy.evaluate(&request);
        let exchange = Exchange {
            method: "PUT",
            path: "/v2/",
        };
        let record = AuditRecord::decided("-", exchange, &request, &decision, None, "-");
        let mut record = to_json(&record)?;
        let mut shown = record["decision"].take();
        if record["rule"].as_str() != decision.rule() {
            return Err(format!("the audit record's rule is {}", record["rule"]));
        }
        if decision.allowed() {
            let warning = audit_warning(&decision);
            if warning.is_some() != decision.would_deny() {
                return Err(format!("audit warning {warning:?} for {shown}"));
            }
            return Ok(shown);
        }
        let reply = Reply::denial(&decision, Some(CHALLENGE));
        let challenged = reply
            .headers
            .iter()
            .any(|(name, value)| *name == "www-authenticate" && value == CHALLENGE);
        if challenged != (reply.status == 401) {
            return Err(format!(
                "status {} with challenge: {challenged}",
                reply.status
            ));
        }
        let body: Value = serde_json::from_slice(&reply.body)
            .map_err(|err| format!("the reply's body is not JSON: {err}"))?;
        shown["status"] = Value::from(reply.status);
        shown["error"] = body;
        Ok(shown)
    }

    fn test_tag(&mut self, policy: &Policy, image: &str, tag: &str) -> Result<Value, String> {
        Native.test_tag(policy, image, tag)
    }

    fn lints(&mut self, policy: &Policy) -> Result<Vec<Value>, String> {
        Native.lints(policy)
    }
}

fn corpus() -> Corpus {
    Corpus::load_default().unwrap_or_else(|err| panic!("{err}"))
}

#[test]
fn corpus_through_the_gateway() {
    run(&corpus(), &mut Gateway).assert_passed();
}

#[test]
fn corpus_through_the_gateway_matches_native() {
    differential(&corpus(), &mut Native, &mut Gateway).assert_passed();
}
