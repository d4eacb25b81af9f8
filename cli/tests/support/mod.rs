//! What the proxy's tests and benchmark stand on: a real CNCF distribution
//! registry, `taglock serve` (or Envoy with the taglock filter) in front of it, tiny OCI images built on disk, skopeo
//! (the real client), podman, buildah and oras-py (more real clients), a raw HTTP
//! client and a misbehaving relay in front of the registry. Everything listens on 127.0.0.1 only,
//! every process is killed when its handle drops, and every wait is bounded.
//!
//! Shared by `cli/tests/serve*.rs` and `cli.rs` (`mod support;`) and `cli/benches/proxy.rs`
//! (`#[path = "../tests/support/mod.rs"] mod support;`), so not every item is used
//! by both.
#![allow(dead_code)]

pub mod envoy;
pub mod http;
pub mod jwt;
pub mod latency;
pub mod oci;
pub mod oras;
pub mod podman;
pub mod process;
pub mod proxy;
pub mod registry;
pub mod relay;
pub mod scenario;
pub mod skopeo;
pub mod token;
pub mod verdict;

use std::path::Path;

/// Fails, never skips, when a tool the proxy is proven against is not installed.
pub fn require_tool(path_or_name: &str) {
    let found = if path_or_name.contains('/') {
        Path::new(path_or_name).is_file()
    } else {
        std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths).any(|dir| dir.join(path_or_name).is_file())
        })
    };
    assert!(
        found,
        "{path_or_name} is not installed: the proxy is tested against the real registry \
         and client; run scripts/install-registry.sh (or scripts/setup.sh) first"
    );
}
