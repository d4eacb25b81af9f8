//! Run taglock's decision component in a Rust registry, with wasmtime.
//!
//! The component (`wit/taglock.wit`, built from `policy-core` by
//! `cargo xtask build-wasm`) is embedded in this crate and pinned by its sha256.
//! A registry builds one [`Host`] per process, loads its policy once, and asks
//! for a decision on every write, with `policy-core`'s typed requests and
//! decisions — never raw JSON:
//!
//! ```
//! use policy_core::{Actor, PushRequest, TagState};
//! use taglock_host_wasmtime::Host;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let host = Host::embedded()?;
//! let policy = host.load_policy(r#"{
//!   "version": 1,
//!   "immutability": { "protect": "some",
//!     "rules": [{ "name": "semver", "tags": { "regex": "^v\\d+\\.\\d+\\.\\d+$" } }] }
//! }"#)?;
//! let push = PushRequest {
//!     image: "acme/web".into(),
//!     digest: format!("sha256:{}", "a".repeat(64)),
//!     tags: vec![TagState::existing("v1.2.0", format!("sha256:{}", "b".repeat(64)))],
//!     image_exists: true,
//!     actor: Actor::user("alice", &[]),
//! };
//! let decision = policy.evaluate_push(&push)?;
//! assert!(!decision.allowed());
//! assert_eq!(decision.status(), 403);
//! assert_eq!(decision, policy_core::Policy::from_json(r#"{
//!   "version": 1,
//!   "immutability": { "protect": "some",
//!     "rules": [{ "name": "semver", "tags": { "regex": "^v\\d+\\.\\d+\\.\\d+$" } }] }
//! }"#)?.evaluate_push(&push));
//! # Ok(()) }
//! ```
//!
//! # Guarantees
//! - **Pinned**: the component's sha256 is checked before it is compiled; a
//!   mismatch is refused ([`HostError::DigestMismatch`]).
//! - **Bounded**: every call has a CPU budget (epoch interruption) and a memory
//!   cap ([`Limits`]). A timeout or trap is a typed [`HostError`], the instance
//!   that failed is dropped, and the next call gets a fresh one.
//! - **Fail closed**: there is no decision in an `Err`; treat it as a denial.
//! - **Shared**: [`Host`] and [`WasmPolicy`] are `Send + Sync`; one `Engine`
//!   per process ([`runtime::engine`]), the component compiled once per `Host`.
//! - **Same decisions**: a decision from the component is `==` to
//!   `policy_core::Policy::evaluate`'s (`tests/differential.rs` checks generated
//!   input; `tests/conformance.rs` checks the corpus, answer by answer as JSON).

mod bindings;
mod cache;
pub mod digest;
mod error;
mod host;
mod policy;
pub mod runtime;

pub use cache::CacheOutcome;
pub use error::HostError;
pub use host::{
    DEFAULT_LOAD_TIMEOUT, EMBEDDED_COMPONENT, EMBEDDED_SHA256, Host, HostBuilder, Limits,
};
pub use policy::WasmPolicy;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_policy_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Host>();
        assert_send_sync::<WasmPolicy>();
    }
}
