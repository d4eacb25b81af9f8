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

#[cfg(feature = "component")]
mod component;
#[cfg(feature = "web")]
mod web;
