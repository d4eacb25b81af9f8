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
//! assert!(!decision.allowed);
//! assert_eq!(decision.status(), 403);
//! assert_eq!(decision.rule.as_deref(), Some("semver"));
//! assert!(decision.message.starts_with("tag v1.2.0 of acme/web is immutable (rule \"semver\")"));
//! ```
//!
//! # Untrusted input
//! Policies and requests may come from anyone. Patterns are RE2 syntax, matched in
//! linear time; each compiled regex is capped ([`pattern::REGEX_SIZE_LIMIT`]), nesting
//! is capped, and the limits profile caps rule counts and pattern lengths. Names are
//! checked against their OCI grammars before any matcher runs. Nothing here panics on
//! input: malformed policies get [`LoadErrors`], malformed requests an
//! `invalid_request` decision.

pub mod decision;
pub mod document;
pub mod error;
mod evaluate;
mod glob;
pub mod immutability;
pub mod json;
pub mod limits;
pub mod lint;
mod load;
mod matcher;
pub mod names;
pub mod pattern;
mod permissions;
mod policy;
pub mod principal;
pub mod request;
pub mod role;
pub mod selector;
mod unit_enum;

pub use decision::{Decision, ErrorCode, Reason};
pub use document::PolicyDocument;
pub use error::{LoadError, LoadErrorCode, LoadErrors};
pub use immutability::{RuleMatch, TagTest, TagVerdict};
pub use json::JsonError;
pub use lint::{Lint, LintCode};
pub use policy::{Policy, Rule};
pub use principal::Principal;
pub use request::{
    Actor, ActorKind, DeleteRequest, DeleteTarget, MountRequest, PullRequest, PushRequest, Request,
    TagState, UploadRequest,
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
