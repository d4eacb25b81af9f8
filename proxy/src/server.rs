//! The proxy's life: load and check everything, bind, serve until shut down.

mod connections;

use crate::audit::{AuditError, AuditLog};
use crate::config::{ConfigError, ServeConfig};
use crate::handler;
use crate::identity::{AuthMode, Identity};
use crate::locks::WriteLocks;
use crate::metrics::Metrics;
use crate::reload;
use crate::tls;
use crate::upstream::{Upstream, UpstreamConfig, UpstreamError};
use crate::users::{UsersError, UsersFile};
use arc_swap::ArcSwap;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use http::StatusCode;
use http::header::{self, HeaderValue};
use policy_core::LoadErrors;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use taglock_host_wasmtime::{Host, HostError, WasmPolicy};
use tokio::net::TcpListener;
use tower::Layer;
use tower_http::compression::CompressionLayer;
use tower_http::services::ServeDir;

/// Why the proxy cannot start (it never starts half-configured).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The policy file cannot be read.
    #[error("cannot read policy `{path}`: {source}")]
    ReadPolicy {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The policy is invalid: every problem, located.
    #[error("policy `{path}` is invalid:\n{errors}")]
    Policy {
        /// The file.
        path: PathBuf,
        /// Every problem.
        errors: LoadErrors,
    },
    /// The decision component could not start.
    #[error("the decision component cannot start: {0}")]
    Component(HostError),
    /// The users file is invalid.
    #[error(transparent)]
    Users(#[from] UsersError),
    /// The upstream settings are unusable.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The audit log cannot be opened.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The TLS certificate or key is unusable.
    #[error("TLS: {0}")]
    Tls(String),
    /// The listen address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("serving failed: {0}")]
    Serve(std::io::Error),
}

/// Everything a request handler shares.
pub(crate) struct AppState {
    pub(crate) config: ServeConfig,
    pub(crate) host: Host,
    pub(crate) policy: ArcSwap<WasmPolicy>,
    pub(crate) upstream: Upstream,
    pub(crate) identity: Identity,
    pub(crate) locks: WriteLocks,
    pub(crate) audit: Option<AuditLog>,
    pub(crate) metrics: Metrics,
}

/// A proxy that has loaded its policy, users and component and bound its port,
/// ready to [`run`](Proxy::run).
pub struct Proxy {
    state: Arc<AppState>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl Proxy {
    /// Loads and checks everything, then binds `config.listen`. Any problem is an
    /// error here, before a single request is served.
    pub async fn bind(config: ServeConfig) -> Result<Proxy, ServeError> {
        let host = start_component(&config)?;
        let text = read_policy(&config)?;
        let policy = load_policy(&host, &config, &text)?;
        for lint in policy.lints() {
            tracing::warn!("policy lint: {lint}");
        }
        if config.auth == AuthMode::None && declares_permissions(&text) {
            tracing::warn!(
                "the policy has a `permissions` section but auth is `none`: every request is anonymous to it; give --users or --auth trusted-headers"
            );
        }
        let users = match &config.users {
            Some(path) => UsersFile::load(path)?,
            None => UsersFile::default(),
        };
        let upstream = Upstream::new(&UpstreamConfig {
            url: config.upstream.clone(),
            credentials: config.upstream_credentials.clone(),
            token_realm: config.upstream_token_realm.clone(),
            token_request: config.upstream_token_request,
            timeout: config.upstream_timeout,
            forward_timeout: config.forward_timeout,
        })?;
        let audit = config
            .audit_log
            .as_deref()
            .map(AuditLog::open)
            .transpose()?;
        let tls = match &config.tls {
            Some((cert, key)) => Some(tls::acceptor(cert, key)?),
            None => None,
        };
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let state = AppState {
            identity: Identity::new(config.auth, users),
            config,
            host,
            policy: ArcSwap::from_pointee(policy),
            upstream,
            locks: WriteLocks::default(),
            audit,
            metrics: Metrics::new(),
        };
        Ok(Proxy {
            state: Arc::new(state),
            listener,
            tls,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, ServeError> {
        self.listener.local_addr().map_err(ServeError::Serve)
    }

    /// `http://addr` or `https://addr`.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        match self.listener.local_addr() {
            Ok(addr) => format!("{scheme}://{addr}"),
            Err(_) => format!("{scheme}://{}", self.state.config.listen),
        }
    }

    /// The sha256 of the decision component in use.
    pub fn component_sha256(&self) -> &str {
        self.state.host.component_sha256()
    }

    /// Serves until `shutdown` completes, reloading the policy and users files
    /// on SIGHUP and when they change.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let watcher = tokio::spawn(reload::watch(Arc::clone(&self.state)));
        let app = router(Arc::clone(&self.state));
        let served = connections::serve(
            self.listener,
            self.tls,
            app,
            Arc::clone(&self.state),
            shutdown,
        )
        .await;
        watcher.abort();
        served
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}

fn router(state: Arc<AppState>) -> Router {
    let mut app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics));
    if let Some(dir) = &state.config.ui {
        // Static pages are compressed for clients that ask (the tester's engine is
        // most of its weight); registry traffic below is relayed byte for byte.
        app = app
            .nest_service("/ui", CompressionLayer::new().layer(ServeDir::new(dir)))
            .route("/", get(|| async { Redirect::to("/ui/tester/") }));
    }
    app.fallback(handler::proxy).with_state(state)
}

/// 200 when the policy is loaded (always, once serving) and the upstream answers.
async fn readyz(State(state): State<Arc<AppState>>) -> Response<Body> {
    match state.upstream.ping().await {
        Ok(_) => (StatusCode::OK, "ready\n").into_response(),
        Err(err) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: upstream {}: {err}\n", state.upstream.base_url()),
        )
            .into_response(),
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response<Body> {
    let mut response = state.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

fn start_component(config: &ServeConfig) -> Result<Host, ServeError> {
    let mut builder = Host::builder();
    if let Some((path, sha256)) = &config.component {
        builder = builder.component_path(path, sha256);
    }
    if let Some(dir) = &config.cache_dir {
        builder = builder.cache_dir(dir);
    }
    builder.build().map_err(ServeError::Component)
}

pub(crate) fn read_policy(config: &ServeConfig) -> Result<String, ServeError> {
    std::fs::read_to_string(&config.policy).map_err(|source| ServeError::ReadPolicy {
        path: config.policy.clone(),
        source,
    })
}

pub(crate) fn load_policy(
    host: &Host,
    config: &ServeConfig,
    text: &str,
) -> Result<WasmPolicy, ServeError> {
    host.load_policy(text).map_err(|err| match err {
        HostError::Policy(errors) => ServeError::Policy {
            path: config.policy.clone(),
            errors,
        },
        other => ServeError::Component(other),
    })
}

/// Whether the policy document has a `permissions` section (display only: the
/// component decides what it means).
fn declares_permissions(text: &str) -> bool {
    policy_core::from_json::<policy_core::PolicyDocument>(text)
        .is_ok_and(|doc| doc.permissions.is_some())
}
