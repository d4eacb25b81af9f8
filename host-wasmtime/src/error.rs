//! Errors of the host. Every one of them means "no decision": a registry answers
//! it with a denial or a 5xx, never by letting the request through.

use policy_core::LoadErrors;
use std::path::PathBuf;
use std::time::Duration;

/// Why the host could not load the component, load a policy, or decide.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The component's sha256 is not the expected one; it is refused unrun.
    #[error("component digest mismatch: expected sha256:{expected}, got sha256:{actual}")]
    DigestMismatch {
        /// The digest the host was told to accept.
        expected: String,
        /// The digest of the bytes it was given.
        actual: String,
    },
    /// An expected digest that is not `sha256:` + 64 hex digits (or the 64 digits alone).
    #[error("invalid expected digest `{0}`: expected `sha256:` followed by 64 hex digits")]
    InvalidDigest(String),
    /// The component file could not be read.
    #[error("cannot read component `{path}`: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// wasmtime could not set up the engine, or compile or link the component.
    #[error("cannot prepare the component: {0}")]
    Compile(String),
    /// The policy was refused; every problem is listed and located.
    #[error("{0}")]
    Policy(#[from] LoadErrors),
    /// The call ran out of its CPU budget (epoch deadline).
    #[error("evaluation timed out (limit {0:?})")]
    Timeout(Duration),
    /// Loading the policy ran out of its budget ([`crate::Limits::load_timeout`]).
    #[error("loading the policy timed out (limit {0:?})")]
    LoadTimeout(Duration),
    /// The call wanted more linear memory than the limit allows.
    #[error("evaluation exceeded the memory limit of {0} bytes")]
    MemoryLimit(usize),
    /// The component trapped for another reason.
    #[error("the component trapped: {0}")]
    Trap(String),
    /// The request could not be handed to the component (over 4 GiB of strings),
    /// or the component found it unreadable (a span outside its strings: a host
    /// bug). Nothing was decided.
    #[error("the request could not be read by the component: {0}")]
    Unreadable(String),
    /// The component answered with a value the host does not understand.
    #[error("the component returned an invalid value: {0}")]
    InvalidResponse(String),
}

impl HostError {
    /// The HTTP status a registry answers with when it gets this error while
    /// deciding a request: 503 for exhausted budgets (try again later), 500 for
    /// the rest. Never a 2xx: a failed decision is never an allow.
    pub fn http_status(&self) -> u16 {
        match self {
            HostError::Timeout(_) | HostError::LoadTimeout(_) | HostError::MemoryLimit(_) => 503,
            _ => 500,
        }
    }
}
