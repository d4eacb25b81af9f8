//! [`Host`]: the verified, compiled decision component, ready to load policies.

use crate::bindings::TaglockPre;
use crate::cache::{self, CacheOutcome};
use crate::digest;
use crate::error::HostError;
use crate::policy::{StoreState, WasmPolicy};
use crate::runtime;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

/// The component built from this release's `policy-core` (`cargo xtask build-wasm`
/// writes it to `host-wasmtime/component/`; CI checks it is up to date).
pub const EMBEDDED_COMPONENT: &[u8] = include_bytes!("../component/taglock_policy.wasm");

/// The sha256 (hex) the embedded component must have.
pub const EMBEDDED_SHA256: &str =
    include_str!("../component/taglock_policy.wasm.sha256").trim_ascii();

/// Bounds on every call into the component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// CPU budget of one decision (an evaluation, a tag test, the lints), enforced
    /// by epoch interruption to within [`runtime::EPOCH_TICK`](crate::runtime::EPOCH_TICK).
    pub timeout: Duration,
    /// Budget of loading a policy (instantiating the component and `load`),
    /// enforced the same way. Separate from `timeout` so that whether a policy
    /// loads never depends on a per-decision budget: the default,
    /// [`DEFAULT_LOAD_TIMEOUT`], is many times what the largest policy the
    /// engine accepts takes to load (docs/benchmarks.md).
    pub load_timeout: Duration,
    /// Largest linear memory an instance may grow to, in bytes.
    pub max_memory: usize,
    /// How many idle instances each loaded policy keeps for reuse (at least one
    /// per thread that evaluates concurrently is ideal; more are dropped).
    pub max_idle_instances: usize,
}

/// The default load budget ([`Limits::load_timeout`]).
pub const DEFAULT_LOAD_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for Limits {
    /// 100 ms per decision, [`DEFAULT_LOAD_TIMEOUT`] per policy load, 64 MiB, and
    /// one idle instance per available core.
    fn default() -> Limits {
        Limits {
            timeout: Duration::from_millis(100),
            load_timeout: DEFAULT_LOAD_TIMEOUT,
            max_memory: 64 << 20,
            max_idle_instances: std::thread::available_parallelism().map_or(4, usize::from),
        }
    }
}

/// Where the component comes from.
#[derive(Debug, Clone)]
enum Source {
    Embedded,
    Bytes(Vec<u8>),
    Path(PathBuf),
}

/// Configures a [`Host`]: component source and digest, limits, artifact cache.
///
/// ```no_run
/// use taglock_host_wasmtime::{Host, Limits};
/// use std::time::Duration;
/// # fn main() -> Result<(), taglock_host_wasmtime::HostError> {
/// let host = Host::builder()
///     .component_path("/opt/taglock/taglock_policy.wasm", "sha256:<64 hex digits>")
///     .cache_dir("/var/cache/taglock")
///     .limits(Limits { timeout: Duration::from_millis(50), ..Limits::default() })
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct HostBuilder {
    source: Source,
    expected: Option<String>,
    cache_dir: Option<PathBuf>,
    limits: Limits,
}

impl HostBuilder {
    /// Uses `bytes` as the component; it must have the sha256 `expected`
    /// (`sha256:<hex>` or `<hex>`).
    pub fn component_bytes(mut self, bytes: impl Into<Vec<u8>>, expected: &str) -> HostBuilder {
        self.source = Source::Bytes(bytes.into());
        self.expected = Some(expected.to_owned());
        self
    }

    /// Reads the component from `path`; it must have the sha256 `expected`.
    pub fn component_path(mut self, path: impl Into<PathBuf>, expected: &str) -> HostBuilder {
        self.source = Source::Path(path.into());
        self.expected = Some(expected.to_owned());
        self
    }

    /// Caches the compiled component in `dir` (see [`CacheOutcome`]).
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> HostBuilder {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Sets the per-call bounds.
    pub fn limits(mut self, limits: Limits) -> HostBuilder {
        self.limits = limits;
        self
    }

    /// Verifies the component's digest, compiles it (or loads the cached
    /// artifact), and links it. Nothing runs before the digest is checked.
    pub fn build(self) -> Result<Host, HostError> {
        let engine = runtime::engine()?;
        let owned;
        let (bytes, expected): (&[u8], String) = match self.source {
            Source::Embedded => (EMBEDDED_COMPONENT, digest::parse_expected(EMBEDDED_SHA256)?),
            Source::Bytes(bytes) => {
                owned = bytes;
                (
                    &owned,
                    digest::parse_expected(self.expected.as_deref().unwrap_or(""))?,
                )
            }
            Source::Path(path) => {
                owned = std::fs::read(&path).map_err(|source| HostError::Read { path, source })?;
                (
                    &owned,
                    digest::parse_expected(self.expected.as_deref().unwrap_or(""))?,
                )
            }
        };
        let sha256 = digest::verify(bytes, &expected)?;
        let (component, cache) = match &self.cache_dir {
            Some(dir) => cache::load_or_compile(engine, dir, &sha256, bytes),
            None => Component::new(engine, bytes).map(|c| (c, CacheOutcome::Disabled)),
        }
        .map_err(compile_error)?;
        Host::link(engine, &component, sha256, cache, self.limits)
    }
}

/// The decision component, verified, compiled once and linked: cheap to clone,
/// `Send + Sync`, shared by every thread of a registry.
///
/// ```
/// use taglock_host_wasmtime::Host;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let host = Host::embedded()?;
/// let policy = host.load_policy(r#"{"version": 1, "immutability": {"protect": "all"}}"#)?;
/// let test = policy.test_tag("acme/web", "v1.0.0")?;
/// assert!(test.protected);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Host {
    pub(crate) inner: Arc<HostInner>,
}

pub(crate) struct HostInner {
    pub(crate) engine: Engine,
    pub(crate) pre: TaglockPre<StoreState>,
    pub(crate) sha256: String,
    pub(crate) cache: CacheOutcome,
    pub(crate) limits: Limits,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("sha256", &self.inner.sha256)
            .field("cache", &self.inner.cache)
            .field("limits", &self.inner.limits)
            .finish()
    }
}

impl Host {
    /// The embedded component with default limits and no artifact cache.
    pub fn embedded() -> Result<Host, HostError> {
        Host::builder().build()
    }

    /// A builder starting from the embedded component and default limits.
    pub fn builder() -> HostBuilder {
        HostBuilder {
            source: Source::Embedded,
            expected: None,
            cache_dir: None,
            limits: Limits::default(),
        }
    }

    fn link(
        engine: &Engine,
        component: &Component,
        sha256: String,
        cache: CacheOutcome,
        limits: Limits,
    ) -> Result<Host, HostError> {
        // The component imports nothing, so the linker stays empty.
        let linker = Linker::<StoreState>::new(engine);
        let pre = linker
            .instantiate_pre(component)
            .and_then(TaglockPre::new)
            .map_err(compile_error)?;
        Ok(Host {
            inner: Arc::new(HostInner {
                engine: engine.clone(),
                pre,
                sha256,
                cache,
                limits,
            }),
        })
    }

    /// Loads a policy into the component: parsed, validated and compiled there
    /// once. A refused policy gives [`HostError::Policy`] with every problem.
    pub fn load_policy(&self, json: &str) -> Result<WasmPolicy, HostError> {
        WasmPolicy::load(self.clone(), json)
    }

    /// Instantiates the component in a fresh store and drops it: a readiness
    /// probe for the limits in use, and what the `instantiate-pre` benchmark times.
    pub fn instantiate(&self) -> Result<(), HostError> {
        crate::policy::probe(self)
    }

    /// The sha256 (hex) of the component in use.
    pub fn component_sha256(&self) -> &str {
        &self.inner.sha256
    }

    /// What the artifact cache did when this host was built.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.inner.cache
    }

    /// The per-call bounds.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }
}

fn compile_error(err: wasmtime::Error) -> HostError {
    HostError::Compile(format!("{err:#}"))
}
