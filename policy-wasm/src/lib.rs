//! taglock's decision core compiled to WebAssembly.
//!
//! This crate holds no policy logic: each feature is a thin adapter that
//! converts a host's types to `policy-core`'s and back.
//!
//! - `component`: the WIT component (`wit/taglock.wit`, world `taglock`), built
//!   for `wasm32-unknown-unknown` and componentized by `cargo xtask build-wasm`.
//!   It imports nothing.
//! - `web`: the wasm-bindgen build behind the JS package and the browser pattern
//!   tester (`host-js/`), built by `xtask/src/web.rs`. JSON text in and out.

#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

#[cfg(any(test, feature = "component"))]
pub mod arena;
#[cfg(feature = "component")]
mod component;
#[cfg(any(test, feature = "component"))]
mod spans;
#[cfg(feature = "web")]
mod web;

/// The component's allocator (see [`arena`]): only in the component's own build.
#[cfg(all(feature = "component", target_arch = "wasm32"))]
#[global_allocator]
static ALLOCATOR: arena::Arena<{ arena::ARENA_BYTES }> = arena::Arena::new();

/// Keeps what is allocated until it drops out of the call arena: for what
/// outlives calls, such as a loaded policy. `None` where there is no arena (a
/// native build of this crate).
#[cfg(feature = "component")]
fn long_lived() -> Option<arena::LongLived<'static, { arena::ARENA_BYTES }>> {
    #[cfg(target_arch = "wasm32")]
    return Some(ALLOCATOR.long_lived());
    #[cfg(not(target_arch = "wasm32"))]
    return None;
}
