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
use std::path::PathBuf;
use taglock_proxy::{Proxy, ServeError, ServeOptions};

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

/// `taglock serve` options: `--config`, then every setting, declared once in
/// [`ServeOptions`] (each may also be set in the TOML file, same names with `_`
/// for `-`; the command line wins).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML config file with any of the options below.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The settings, from the command line.
    #[command(flatten)]
    pub options: ServeOptions,
}

impl ServeArgs {
    /// The command line's settings, with this machine's component cache.
    fn options(&self) -> ServeOptions {
        ServeOptions {
            cache_dir: crate::engine::cache_dir(),
            ..self.options.clone()
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

    /// What `taglock serve --help` prints.
    fn serve_help() -> String {
        let err = crate::args::Cli::try_parse_from(["taglock", "serve", "--help"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
        err.to_string()
    }

    /// The defaults `taglock serve --help` states, by long option, read from the
    /// line after each option's.
    fn stated_defaults(help: &str) -> Vec<(String, String)> {
        let lines: Vec<&str> = help.lines().collect();
        lines
            .windows(2)
            .filter_map(|pair| {
                let flag = pair[0].trim().strip_prefix("--")?.split(' ').next()?;
                let (_, rest) = pair[1].split_once("[default: ")?;
                let default = rest.split(']').next()?;
                Some((flag.to_owned(), default.to_owned()))
            })
            .collect()
    }

    #[test]
    fn serve_help_shows_the_defaults_from_the_constants() {
        use taglock_proxy::config::*;
        let stated = stated_defaults(&serve_help());
        let expected = [
            ("listen", DEFAULT_LISTEN.to_owned()),
            ("auth", "basic with --users, else none".to_owned()),
            (
                "upstream-token-request",
                DEFAULT_UPSTREAM_TOKEN_REQUEST.as_str().to_owned(),
            ),
            (
                "upstream-timeout",
                format_duration(DEFAULT_UPSTREAM_TIMEOUT),
            ),
            ("forward-timeout", format_duration(DEFAULT_FORWARD_TIMEOUT)),
            ("lock-timeout", format_duration(DEFAULT_LOCK_TIMEOUT)),
            ("tags-timeout", format_duration(DEFAULT_TAGS_TIMEOUT)),
            ("facts-concurrency", DEFAULT_FACTS_CONCURRENCY.to_string()),
            ("reload-interval", format_duration(DEFAULT_RELOAD_INTERVAL)),
            ("max-connections", DEFAULT_MAX_CONNECTIONS.to_string()),
            (
                "header-read-timeout",
                format_duration(DEFAULT_HEADER_READ_TIMEOUT),
            ),
            ("idle-timeout", format_duration(DEFAULT_IDLE_TIMEOUT)),
        ]
        .map(|(flag, default)| (flag.to_owned(), default));
        assert_eq!(stated, expected);
        assert_eq!(
            stated
                .iter()
                .find(|(flag, _)| flag == "forward-timeout")
                .map(|(_, default)| default.as_str()),
            Some("5m")
        );
    }

    /// docs/proxy.md's table of limits and timeouts states the same defaults
    /// as `taglock serve --help`.
    #[test]
    fn the_docs_state_the_defaults_the_help_states() {
        let stated = stated_defaults(&serve_help());
        let docs = include_str!("../../docs/proxy.md");
        let table = docs
            .split("### Limits and timeouts")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .unwrap();
        let mut rows = 0;
        for line in table.lines() {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let [_, option, default, ..] = cells.as_slice() else {
                continue;
            };
            let Some(flag) = option
                .strip_prefix("`--")
                .and_then(|rest| rest.split('`').next())
            else {
                continue;
            };
            let help = stated.iter().find(|(f, _)| f == flag);
            assert_eq!(
                help.map(|(_, d)| d.as_str()),
                Some(*default),
                "docs/proxy.md on --{flag}"
            );
            rows += 1;
        }
        assert!(rows >= 9, "{rows} rows of defaults in docs/proxy.md");
    }
}
