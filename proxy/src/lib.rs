//! `taglock serve`: an enforcing reverse proxy for the OCI Distribution API, in
//! front of any registry (CNCF distribution, zot, Harbor, …).
//!
//! Every request is mapped to one of the core's operations and its facts
//! gathered as the gateway crate (`taglock-gateway`, shared with the Envoy
//! filter) says, its actor authenticated (`identity.rs`), the gateway's
//! look-ups sent to the upstream (`upstream.rs`), and the request decided by the
//! same WebAssembly component every taglock host runs (`taglock-host-wasmtime`). Only an allowed request is forwarded; a
//! denial answers with the decision's OCI error. Writes to one tag are
//! serialized (`locks.rs`), every decision is audited (`audit.rs`) and counted
//! (`metrics.rs`), and the policy reloads without a restart (`reload.rs`).
//!
//! `docs/proxy.md` has the request mapping table and the deployment notes.
//!
//! ```no_run
//! use taglock_proxy::{Proxy, ServeOptions};
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ServeOptions {
//!     upstream: Some("http://127.0.0.1:5000".into()),
//!     policy: Some("policy.json".into()),
//!     users: Some("users.json".into()),
//!     ..ServeOptions::default()
//! }
//! .resolve()?;
//! let proxy = Proxy::bind(config).await?;
//! println!("listening on {}", proxy.url());
//! proxy.run(taglock_proxy::shutdown_signal()).await?;
//! # Ok(()) }
//! ```

pub mod audit;
pub mod bearer;
pub mod config;
mod handler;
pub mod identity;
pub mod listing;
mod locks;
pub mod metrics;
pub mod oci;
pub mod preview;
mod reload;
mod server;
mod tls;
pub mod upstream;
pub mod users;

pub use config::{ServeConfig, ServeOptions};
pub use identity::AuthMode;
pub use server::{Proxy, ServeError, shutdown_signal};
