//! taglock's decision core: **tag immutability** and **repository-linked
//! permissions** for OCI registries, as one pure function of (policy, request).
//!
//! The core does no I/O and keeps no state. A host (the CLI, the WebAssembly
//! component, the JS build, the proxy-wasm filter) gathers the facts — the current
//! digest of a tag, the tags at a digest, the authenticated actor — and asks.
//!
//! ```
//! use policy_core::{Policy, Request};
//!
//! let policy = Policy::from_json(r#"{
//!   "version": 1,
//!   "immutability": {
//!     "protect": "some",
//!     "rules": [{ "name": "semver", "tags": { "regex": "^v\\d+\\.\\d+\\.\\d+$" } }]
//!   }
//! }"#).unwrap();
//!
//! let overwrite = Request::from_json(&format!(r#"{{
//!   "operation": "push", "image": "acme/web", "digest": "sha256:{new}",
//!   "tags": [{{ "name": "v1.2.0", "current": "sha256:{old}" }}],
//!   "image_exists": true, "actor": {{ "kind": "user", "id": "alice" }}
//! }}"#, new = "a".repeat(64), old = "b".repeat(64))).unwrap();
//!
//! let decision = policy.evaluate(&overwrite);
//! assert!(!decision.allowed());
//! assert_eq!(decision.status(), 403);
//! assert_eq!(decision.rule(), Some("semver"));
//! assert!(decision.message().starts_with("tag v1.2.0 of acme/web is immutable (rule \"semver\")"));
//! ```
//!
//! # Untrusted input
//! Policies and requests may come from anyone. Patterns are RE2 syntax, matched in
//! linear time; each pattern is capped by weight ([`Limits::MAX_PATTERN_WEIGHT`]) and
//! nesting, and the limits profile caps rule counts and pattern lengths. Names are
//! checked against their OCI grammars before any matcher runs. Nothing here panics on
//! input: malformed policies get [`LoadErrors`], malformed requests an
//! `invalid_request` decision.
//!
//! # The API
//! A host needs a handful of types, all at the crate root: [`Policy`] (load once,
//! ask many times), the [`Request`] kinds, the [`Decision`] and the reports beside it
//! ([`LoadErrors`], [`Lint`], [`TagTest`]), what a write's decision depends on
//! ([`PushNeeds`], [`Policy::existence_matters`]: the facts a host may leave
//! out), the [`Limits`] and bounds, and
//! [`JsonError`] for located JSON problems. Two modules are public because they are
//! contracts of their own: [`document`], the policy document as JSON spells it, and
//! [`names`], the OCI name grammars every host checks names with. Everything else
//! (matchers, the pattern compiler, principals, the loader) is private, and no type
//! of a dependency appears in the API; the `fast-matching` feature changes speed,
//! never a type.
//!
//! Codes that only advise ([`LintCode`]) are `#[non_exhaustive]`. The codes of the
//! decision contract ([`Reason`], [`ErrorCode`], [`LoadErrorCode`], [`TagVerdict`])
//! are deliberately exhaustive: a new one changes what every host answers, and the
//! compiler should point at each host that must decide how.

pub mod document;
pub mod names;

mod decision;
mod error;
mod evaluate;
mod glob;
mod immutability;
mod json;
mod limits;
mod lint;
mod load;
mod matcher;
mod needs;
mod pattern;
mod permissions;
mod policy;
mod principal;
mod protected;
mod request;
mod role;
mod selector;
mod unit_enum;

pub use decision::{
    Decision, DecisionParts, Detail, ErrorCode, ErrorDetail, InvalidDecision, OciError,
    OciErrorBody, Reason,
};
pub use document::PolicyDocument;
pub use error::{LoadError, LoadErrorCode, LoadErrors};
pub use immutability::{RuleMatch, TagTest, TagVerdict};
pub use json::{FromJson, JsonError, from_json};
pub use limits::Limits;
pub use lint::{Lint, LintCode};
pub use needs::PushNeeds;
pub use policy::Policy;
pub use request::{
    Actor, ActorKind, DeleteRequest, DeleteTarget, MountRequest, Operation, PullRequest,
    PushRequest, Request, TagState, UploadRequest,
};
pub use role::Role;

/// Parses JSON that is either one request object or an array of them (the CLI's
/// `eval` input). Errors are located; inside an array the path starts with `[index]`.
pub fn requests_from_json(text: &str) -> Result<(Vec<Request>, bool), JsonError> {
    if !text.trim_start().starts_with('[') {
        return Request::from_json(text).map(|request| (vec![request], false));
    }
    json::from_json::<Vec<Request>>(text).map(|requests| (requests, true))
}
