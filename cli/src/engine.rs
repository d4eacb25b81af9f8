//! Which engine decides: the WebAssembly component that registries and the proxy
//! run (the default, so the CLI answers with the very binary that enforces), or
//! the native core. Both give byte-identical output; the conformance tests check it.
//!
//! Display-only facts (rule patterns, counts for the summary) come from the policy
//! document, parsed without semantics, so both engines print the same words.

use crate::diagnostics;
use crate::input::PolicyInput;
use crate::output;
use crate::style::Style;
use anyhow::Context;
use clap::ValueEnum;
use policy_core::{Decision, Lint, LoadErrors, Policy, PolicyDocument, Request, TagTest};
use std::path::PathBuf;
use taglock_host_wasmtime::{Host, HostError, WasmPolicy};

/// `--engine wasm|native`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum EngineKind {
    /// The decision component, run by wasmtime (what registries run).
    #[default]
    Wasm,
    /// The Rust core, linked into this binary.
    Native,
}

/// A loaded policy, on either engine.
pub enum Engine {
    /// `policy_core::Policy` (boxed: it is much larger than a component handle).
    Native(Box<Policy>),
    /// The policy, loaded into the component.
    Wasm(WasmPolicy),
}

/// Why a policy did not load.
pub enum LoadFailure {
    /// The policy is invalid: every problem, located.
    Invalid(LoadErrors),
    /// The engine itself could not run (component missing, cache unwritable, …).
    Unavailable(anyhow::Error),
}

impl Engine {
    /// Loads `text` on the chosen engine.
    pub fn load(kind: EngineKind, text: &str) -> Result<Engine, LoadFailure> {
        match kind {
            EngineKind::Native => Policy::from_json(text)
                .map(|policy| Engine::Native(Box::new(policy)))
                .map_err(LoadFailure::Invalid),
            EngineKind::Wasm => {
                let host = host().map_err(LoadFailure::Unavailable)?;
                match host.load_policy(text) {
                    Ok(policy) => Ok(Engine::Wasm(policy)),
                    Err(HostError::Policy(errors)) => Err(LoadFailure::Invalid(errors)),
                    Err(other) => Err(LoadFailure::Unavailable(
                        anyhow::Error::new(other).context("the decision component failed"),
                    )),
                }
            }
        }
    }

    /// Loads the policy of a command that needs it valid: an invalid policy's
    /// problems are printed on stderr and `None` is returned (exit 1).
    pub fn load_valid(kind: EngineKind, input: &PolicyInput) -> anyhow::Result<Option<Engine>> {
        match Engine::load(kind, &input.text) {
            Ok(policy) => Ok(Some(policy)),
            Err(LoadFailure::Invalid(errors)) => {
                output::stderr(&diagnostics::refused(input, &errors, Style::stderr()));
                Ok(None)
            }
            Err(LoadFailure::Unavailable(err)) => Err(err),
        }
    }

    /// The policy's lints.
    pub fn lints(&self) -> &[Lint] {
        match self {
            Engine::Native(policy) => policy.lints(),
            Engine::Wasm(policy) => policy.lints(),
        }
    }

    /// Decides one request.
    pub fn evaluate(&self, request: &Request) -> anyhow::Result<Decision> {
        match self {
            Engine::Native(policy) => Ok(policy.evaluate(request)),
            Engine::Wasm(policy) => policy
                .evaluate(request)
                .context("the decision component failed"),
        }
    }

    /// Tests one tag of an image.
    pub fn test_tag(&self, image: &str, tag: &str) -> anyhow::Result<TagTest> {
        match self {
            Engine::Native(policy) => Ok(policy.test_tag(image, tag)),
            Engine::Wasm(policy) => policy
                .test_tag(image, tag)
                .context("the decision component failed"),
        }
    }
}

/// The policy document of an already loaded policy, for display.
pub fn document(text: &str) -> anyhow::Result<PolicyDocument> {
    policy_core::from_json(text).map_err(|err| anyhow::anyhow!("{err}"))
}

/// The embedded component, compiled once per machine: the compiled artifact is
/// cached under `$XDG_CACHE_HOME/taglock` (or `~/.cache/taglock`) when there is one,
/// so a CLI run deserializes it instead of compiling it again.
fn host() -> anyhow::Result<Host> {
    let mut builder = Host::builder();
    if let Some(dir) = cache_dir() {
        builder = builder.cache_dir(dir);
    }
    builder
        .build()
        .context("cannot start the decision component")
}

/// Where the compiled component is cached: `$XDG_CACHE_HOME/taglock` or
/// `~/.cache/taglock`.
pub fn cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("taglock"))
}
