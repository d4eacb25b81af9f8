//! `taglock serve`: the enforcing reverse proxy (crate `taglock-proxy`), started
//! from the command line or a config file.

use crate::diagnostics;
use crate::engine::EngineKind;
use crate::input::{PolicyInput, Source};
use crate::outcome::Outcome;
use crate::output;
use crate::style::Style;
use anyhow::Context;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use taglock_proxy::bearer::TokenRequest;
use taglock_proxy::config::parse_duration;
use taglock_proxy::{AuthMode, Proxy, ServeError, ServeOptions};

/// The help text's examples and exit codes.
pub const SERVE_AFTER_HELP: &str = "\
Examples:
  taglock serve --upstream http://127.0.0.1:5000 --policy policy.json --users users.json
  taglock serve --config /etc/taglock/serve.toml
  taglock serve --upstream http://127.0.0.1:5000 --policy policy.json --users users.json \\
    --listen 0.0.0.0:5050 --audit-log audit.jsonl --ui host-js

Every request to /v2/ is decided by the taglock decision component before it
reaches the upstream; only allowed requests are forwarded. Denials answer with the
decision's OCI error (docker and skopeo print its message). The policy and users
files reload on SIGHUP and when they change; a new policy that does not load is
refused and the old one keeps serving. /healthz, /readyz and /metrics (Prometheus)
are served beside /v2/. Once listening, one line is printed on stdout:
`taglock serve: listening on http://ADDR`. See docs/proxy.md.

Exit codes:
  0  the proxy was shut down (Ctrl-C or SIGTERM)
  1  the policy is invalid (every problem is listed on stderr)
  2  unusable input: a bad option or config file, an unreadable policy, users
     file, certificate or component, or an address that cannot be bound";

/// `taglock serve` options; each may also be set in the `--config` TOML file
/// (same names, with `_` for `-`), and the command line wins.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML config file with any of the options below.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Base URL of the registry to protect, e.g. http://127.0.0.1:5000.
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,
    /// The policy JSON file.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:5050; port 0 picks a free one].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Users file for HTTP Basic logins (create it with `taglock users add`).
    #[arg(long, value_name = "FILE")]
    pub users: Option<PathBuf>,
    /// How actors are identified [default: basic with --users, else none].
    #[arg(long, value_enum, value_name = "MODE")]
    pub auth: Option<AuthArg>,
    /// User name the proxy logs in to the upstream with.
    #[arg(long, value_name = "NAME")]
    pub upstream_user: Option<String>,
    /// File whose first line is the upstream password.
    #[arg(long, value_name = "FILE")]
    pub upstream_password_file: Option<PathBuf>,
    /// A bearer-token realm off the upstream's host that may receive the upstream credentials (by default only realms on the upstream's host are trusted).
    #[arg(long, value_name = "URL")]
    pub upstream_token_realm: Option<String>,
    /// How bearer tokens are asked for: get (HTTP Basic, then the OAuth2 form if refused) or post (the OAuth2 form only) [default: get].
    #[arg(long, value_enum, value_name = "HOW")]
    pub upstream_token_request: Option<TokenRequestArg>,
    /// Append every decision to this JSON-lines file.
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// PEM certificate chain: serve HTTPS.
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Serve this static directory at /ui/ (`host-js` serves the pattern tester at /ui/tester/).
    #[arg(long, value_name = "DIR")]
    pub ui: Option<PathBuf>,
    /// Bound on each upstream request made to gather facts [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub upstream_timeout: Option<Duration>,
    /// Bound on a forwarded request until the upstream answers [default: 5m].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub forward_timeout: Option<Duration>,
    /// How long a write waits for another write to the same tag [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub lock_timeout: Option<Duration>,
    /// Bound on gathering the tags at a digest before a delete is judged with tags unknown [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub tags_timeout: Option<Duration>,
    /// Concurrent HEAD requests when gathering the tags at a digest [default: 8].
    #[arg(long, value_name = "N")]
    pub facts_concurrency: Option<usize>,
    /// How often the policy and users files are checked for changes; 0s: SIGHUP only [default: 1s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub reload_interval: Option<Duration>,
    /// A decision component to run instead of the embedded one (needs --component-sha256).
    #[arg(long, value_name = "FILE")]
    pub component: Option<PathBuf>,
    /// The sha256 the --component file must have.
    #[arg(long, value_name = "DIGEST")]
    pub component_sha256: Option<String>,
    /// Client connections served at once; more wait to be accepted [default: 1024].
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Bound on receiving a request header, from the connection's start (TLS included) or a later request's first byte [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub header_read_timeout: Option<Duration>,
    /// How long a kept-alive connection may wait for its next request [default: 60s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub idle_timeout: Option<Duration>,
}

/// `--auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthArg {
    /// HTTP Basic against the --users file.
    Basic,
    /// X-Taglock-User / -Kind / -Groups / -Workspace-Admin from a trusted auth proxy in front.
    TrustedHeaders,
    /// Everyone is anonymous to the policy; clients' credentials go to the upstream.
    None,
}

/// `--upstream-token-request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TokenRequestArg {
    /// GET with HTTP Basic (the Docker token protocol), then the OAuth2 form POST when refused.
    Get,
    /// The OAuth2 password-grant form POST only.
    Post,
}

impl From<TokenRequestArg> for TokenRequest {
    fn from(arg: TokenRequestArg) -> TokenRequest {
        match arg {
            TokenRequestArg::Get => TokenRequest::Get,
            TokenRequestArg::Post => TokenRequest::Post,
        }
    }
}

impl From<AuthArg> for AuthMode {
    fn from(arg: AuthArg) -> AuthMode {
        match arg {
            AuthArg::Basic => AuthMode::Basic,
            AuthArg::TrustedHeaders => AuthMode::TrustedHeaders,
            AuthArg::None => AuthMode::None,
        }
    }
}

impl ServeArgs {
    fn options(&self) -> ServeOptions {
        ServeOptions {
            listen: self.listen,
            upstream: self.upstream.clone(),
            policy: self.policy.clone(),
            users: self.users.clone(),
            auth: self.auth.map(AuthMode::from),
            upstream_user: self.upstream_user.clone(),
            upstream_password_file: self.upstream_password_file.clone(),
            upstream_token_realm: self.upstream_token_realm.clone(),
            upstream_token_request: self.upstream_token_request.map(TokenRequest::from),
            audit_log: self.audit_log.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            ui: self.ui.clone(),
            upstream_timeout: self.upstream_timeout,
            forward_timeout: self.forward_timeout,
            lock_timeout: self.lock_timeout,
            tags_timeout: self.tags_timeout,
            facts_concurrency: self.facts_concurrency,
            reload_interval: self.reload_interval,
            component: self.component.clone(),
            component_sha256: self.component_sha256.clone(),
            cache_dir: crate::engine::cache_dir(),
            max_connections: self.max_connections,
            header_read_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
        }
    }
}

/// Resolves the configuration, starts the proxy, serves until Ctrl-C or SIGTERM.
pub fn run(args: &ServeArgs, engine: EngineKind) -> anyhow::Result<Outcome> {
    if engine == EngineKind::Native {
        anyhow::bail!(
            "taglock serve always decides with the decision component (the binary registries run); drop --engine native"
        );
    }
    init_logging();
    let file = match &args.config {
        Some(path) => ServeOptions::from_file(path)?,
        None => ServeOptions::default(),
    };
    let config = file.overridden_by(args.options()).resolve()?;
    check_open_files_limit(config.max_connections);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let proxy = match Proxy::bind(config).await {
            Ok(proxy) => proxy,
            Err(ServeError::Policy { path, errors }) => {
                let input = PolicyInput::read(&Source::new(&path))?;
                output::stderr(&diagnostics::refused(&input, &errors, Style::stderr()));
                return Ok(Outcome::InvalidPolicy);
            }
            Err(err) => return Err(err.into()),
        };
        tracing::info!(
            component_sha256 = proxy.component_sha256(),
            "decision component ready"
        );
        output::stdout(&format!("taglock serve: listening on {}\n", proxy.url()))?;
        proxy.run(taglock_proxy::shutdown_signal()).await?;
        Ok(Outcome::Success)
    })
}

/// Descriptors kept for what is not a client connection: the listener, the
/// policy, users and audit files, the component cache, the runtime's own.
const SPARE_DESCRIPTORS: u64 = 64;

/// Raises the soft limit of open files to the hard limit (two system calls),
/// and warns when even that is too low for `max_connections`: each client
/// connection holds a descriptor, and forwarding its request a second one
/// upstream.
fn check_open_files_limit(max_connections: usize) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let soft = match (limit.current, limit.maximum) {
        (Some(soft), Some(hard)) if soft < hard => {
            let raised = Rlimit {
                current: Some(hard),
                maximum: Some(hard),
            };
            match setrlimit(Resource::Nofile, raised) {
                Ok(()) => {
                    tracing::debug!("open files limit raised from {soft} to {hard}");
                    Some(hard)
                }
                Err(err) => {
                    tracing::warn!(
                        "cannot raise the open files limit from {soft} to {hard}: {err}"
                    );
                    Some(soft)
                }
            }
        }
        (soft, _) => soft,
    };
    let needed = (max_connections as u64)
        .saturating_mul(2)
        .saturating_add(SPARE_DESCRIPTORS);
    if let Some(soft) = soft.filter(|soft| *soft < needed) {
        tracing::warn!(
            "the open files limit ({soft}) is below what {max_connections} connections may need ({needed}); lower --max-connections or raise the limit (ulimit -n, LimitNOFILE=)"
        );
    }
}

/// Logs to stderr; `RUST_LOG` narrows or widens (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(Style::stderr().is_colored())
        .with_target(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        serve: ServeArgs,
    }

    const BASE: [&str; 5] = [
        "taglock",
        "--upstream",
        "http://127.0.0.1:5000",
        "--policy",
        "policy.json",
    ];

    fn resolved(extra: &[&str]) -> Result<taglock_proxy::ServeConfig, String> {
        let args = Wrapper::try_parse_from(BASE.iter().chain(extra)).map_err(|e| e.to_string())?;
        args.serve.options().resolve().map_err(|e| e.to_string())
    }

    /// The defaults live in `ServeOptions::resolve`; each `[default: X]` the help
    /// states must be what it fills in.
    #[test]
    fn the_help_states_the_defaults_resolve_uses() {
        let defaults = resolved(&[]).unwrap();
        let mut checked = Vec::new();
        for arg in Wrapper::command().get_arguments() {
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            let Some(stated) = help
                .split("[default: ")
                .nth(1)
                .and_then(|rest| rest.split([']', ';']).next())
            else {
                continue;
            };
            let flag = format!("--{}", arg.get_long().unwrap());
            // Defaults said in words ("basic with --users, else none") are not values.
            let Ok(given) = resolved(&[&flag, stated]) else {
                continue;
            };
            assert_eq!(given, defaults, "{flag}: the help says {stated}");
            checked.push(flag);
        }
        for flag in [
            "--max-connections",
            "--header-read-timeout",
            "--idle-timeout",
        ] {
            assert!(
                checked.iter().any(|c| c == flag),
                "{flag} unchecked: {checked:?}"
            );
        }
        assert!(checked.len() >= 10, "{checked:?}");
    }
}
