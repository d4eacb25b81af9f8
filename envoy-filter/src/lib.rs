//! taglock as an Envoy HTTP filter (proxy-wasm ABI 0.2.1): the same decisions
//! as `taglock serve`, made inside Envoy in front of an OCI registry.
//!
//! The filter is a host of the gateway crate and of the policy core, linked in
//! directly (Envoy runs core wasm modules, not WIT components). It holds no
//! mapping or policy logic of its own: routes, facts, statuses and bodies come
//! from `taglock-gateway`, decisions from `policy-core`. What is Envoy's own:
//!
//! - [`config`]: the plugin configuration `taglock envoy bootstrap` writes;
//! - [`metadata`]: the verified JWT payload, read from `jwt_authn`'s dynamic
//!   metadata, never from a client's header;
//! - [`upstream`]: the filter's own credentials for the registry (Basic or
//!   tokens, through the gateway's token protocol);
//! - [`locks`]: write locks shared by the workers (shared data, compare-and-swap);
//! - [`waiters`]: the requests of a worker waiting for a busy lock, retried by
//!   the root context's tick;
//! - [`exchange`]: one request through the gateway's steps;
//! - [`root`]: configuration, policy and counters per worker.
//!
//! Nothing here panics on input; a refused configuration makes `on_configure`
//! return false (Envoy refuses the listener), and a worker whose configuration
//! is missing refuses every request with 503.

pub mod config;
pub mod locks;
pub mod metadata;
pub mod upstream;
pub mod waiters;

#[cfg(target_family = "wasm")]
pub mod exchange;
#[cfg(target_family = "wasm")]
mod host;
#[cfg(target_family = "wasm")]
pub mod root;
#[cfg(target_family = "wasm")]
mod wait;

/// The module's entry point (`_initialize`): one [`root::Root`] per plugin.
#[cfg(target_family = "wasm")]
#[allow(missing_docs)]
mod entry {
    proxy_wasm::main! {{
        proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
        proxy_wasm::set_root_context(|context_id| -> Box<dyn proxy_wasm::traits::RootContext> {
            Box::new(crate::root::Root::new(context_id))
        });
    }}
}
