//! The configuration of `taglock serve`: command-line options and the TOML config
//! file share one shape ([`ServeOptions`], every field optional); command-line
//! values win, then [`ServeOptions::resolve`] fills defaults and checks the whole.
//!
//! ```toml
//! listen = "0.0.0.0:5050"
//! upstream = "http://127.0.0.1:5000"
//! policy = "/etc/taglock/policy.json"
//! users = "/etc/taglock/users.json"
//! audit_log = "/var/log/taglock/audit.jsonl"
//! upstream_timeout = "10s"
//! upstream_user = "taglock"
//! upstream_password_file = "/etc/taglock/upstream-password"
//! upstream_token_request = "get"
//! max_connections = 1024
//! header_read_timeout = "10s"
//! idle_timeout = "60s"
//! ```

use crate::bearer::TokenRequest;
use crate::identity::AuthMode;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the proxy listens when nothing says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5050";

/// Every setting, each optional: what a config file or a command line says.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ServeOptions {
    /// Address to listen on (`host:port`; port 0 picks a free one).
    pub listen: Option<SocketAddr>,
    /// Base URL of the registry behind the proxy.
    pub upstream: Option<String>,
    /// The policy JSON file (reloaded on SIGHUP and when it changes).
    pub policy: Option<PathBuf>,
    /// The users file for HTTP Basic (`taglock users add`).
    pub users: Option<PathBuf>,
    /// `basic` (default with a users file), `trusted-headers`, or `none` (default without).
    pub auth: Option<AuthMode>,
    /// User name the proxy logs in to the upstream with.
    pub upstream_user: Option<String>,
    /// File holding the upstream password (first line).
    pub upstream_password_file: Option<PathBuf>,
    /// A token realm off the upstream's host that the proxy may send its
    /// upstream credentials to (by default only realms on the upstream's host).
    pub upstream_token_realm: Option<String>,
    /// How bearer tokens are asked for: `get` (HTTP Basic, then the OAuth2 form
    /// when refused; default) or `post` (the OAuth2 form only).
    pub upstream_token_request: Option<TokenRequest>,
    /// JSON-lines file every decision is appended to.
    pub audit_log: Option<PathBuf>,
    /// PEM certificate chain: serve HTTPS (with `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// A static directory served at `/ui/` (e.g. `host-js`, for the pattern tester).
    pub ui: Option<PathBuf>,
    /// Bound on each upstream request the proxy makes for facts (default 10s).
    #[serde(default, deserialize_with = "duration")]
    pub upstream_timeout: Option<Duration>,
    /// Bound on a forwarded request until the upstream's answer (default 5m).
    #[serde(default, deserialize_with = "duration")]
    pub forward_timeout: Option<Duration>,
    /// How long a write waits for another write of the same tag (default 30s).
    #[serde(default, deserialize_with = "duration")]
    pub lock_timeout: Option<Duration>,
    /// Bound on gathering the tags at a digest; past it the delete carries
    /// `tags: null` and is judged fail-closed (default 10s).
    #[serde(default, deserialize_with = "duration")]
    pub tags_timeout: Option<Duration>,
    /// How many `HEAD`s run at once when gathering the tags at a digest (default 8).
    pub facts_concurrency: Option<usize>,
    /// How often the policy and users files are checked for changes (default 1s; 0s: never, SIGHUP only).
    #[serde(default, deserialize_with = "duration")]
    pub reload_interval: Option<Duration>,
    /// A decision component to use instead of the embedded one (with `component_sha256`).
    pub component: Option<PathBuf>,
    /// The sha256 the component file must have.
    pub component_sha256: Option<String>,
    /// Directory for the compiled-component cache.
    pub cache_dir: Option<PathBuf>,
    /// How many client connections are served at once; more wait to be accepted
    /// (default 1024).
    pub max_connections: Option<usize>,
    /// Bound on receiving a request's header: from the connection's start (TLS
    /// handshake included), or from the first byte of a later request on a
    /// kept-alive connection (default 10s).
    #[serde(default, deserialize_with = "duration")]
    pub header_read_timeout: Option<Duration>,
    /// How long a kept-alive connection may wait for its next request (default 60s).
    #[serde(default, deserialize_with = "duration")]
    pub idle_timeout: Option<Duration>,
}

/// The resolved configuration the proxy runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Base URL of the registry behind the proxy.
    pub upstream: String,
    /// The policy file.
    pub policy: PathBuf,
    /// The users file, for [`AuthMode::Basic`].
    pub users: Option<PathBuf>,
    /// How actors are authenticated.
    pub auth: AuthMode,
    /// The proxy's own upstream credentials.
    pub upstream_credentials: Option<(String, String)>,
    /// A token realm off the upstream's host the credentials may go to.
    pub upstream_token_realm: Option<String>,
    /// How bearer tokens are asked for.
    pub upstream_token_request: TokenRequest,
    /// The audit log file.
    pub audit_log: Option<PathBuf>,
    /// TLS certificate and key files.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Static directory served at `/ui/`.
    pub ui: Option<PathBuf>,
    /// Bound on each fact-finding upstream request.
    pub upstream_timeout: Duration,
    /// Bound on a forwarded request.
    pub forward_timeout: Duration,
    /// How long a write waits for the lock of its tags.
    pub lock_timeout: Duration,
    /// Bound on gathering the tags at a digest.
    pub tags_timeout: Duration,
    /// Concurrent `HEAD`s when gathering the tags at a digest.
    pub facts_concurrency: usize,
    /// Poll interval of the policy and users files (`None`: SIGHUP only).
    pub reload_interval: Option<Duration>,
    /// A component file and its expected sha256, instead of the embedded one.
    pub component: Option<(PathBuf, String)>,
    /// Compiled-component cache directory.
    pub cache_dir: Option<PathBuf>,
    /// Client connections served at once.
    pub max_connections: usize,
    /// Bound on receiving a request's header.
    pub header_read_timeout: Duration,
    /// Bound on a kept-alive connection's wait for its next request.
    pub idle_timeout: Duration,
}

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file cannot be read.
    #[error("cannot read config file `{path}`: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is not valid TOML of the right shape.
    #[error("config file `{path}`: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong and where (TOML's message names the line and key).
        message: String,
    },
    /// A required setting is missing.
    #[error("missing setting `{0}`: give --{flag} or set `{0}` in the config file", flag = .0.replace('_', "-"))]
    Missing(&'static str),
    /// Settings that contradict each other or are out of range.
    #[error("{0}")]
    Invalid(String),
}

impl ServeOptions {
    /// Reads a TOML config file.
    pub fn from_file(path: &Path) -> Result<ServeOptions, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|err| ConfigError::Parse {
            path: path.to_owned(),
            message: err.to_string(),
        })
    }

    /// `self`, with every setting `over` has replacing this one's.
    pub fn overridden_by(self, over: ServeOptions) -> ServeOptions {
        ServeOptions {
            listen: over.listen.or(self.listen),
            upstream: over.upstream.or(self.upstream),
            policy: over.policy.or(self.policy),
            users: over.users.or(self.users),
            auth: over.auth.or(self.auth),
            upstream_user: over.upstream_user.or(self.upstream_user),
            upstream_password_file: over.upstream_password_file.or(self.upstream_password_file),
            upstream_token_realm: over.upstream_token_realm.or(self.upstream_token_realm),
            upstream_token_request: over.upstream_token_request.or(self.upstream_token_request),
            audit_log: over.audit_log.or(self.audit_log),
            tls_cert: over.tls_cert.or(self.tls_cert),
            tls_key: over.tls_key.or(self.tls_key),
            ui: over.ui.or(self.ui),
            upstream_timeout: over.upstream_timeout.or(self.upstream_timeout),
            forward_timeout: over.forward_timeout.or(self.forward_timeout),
            lock_timeout: over.lock_timeout.or(self.lock_timeout),
            tags_timeout: over.tags_timeout.or(self.tags_timeout),
            facts_concurrency: over.facts_concurrency.or(self.facts_concurrency),
            reload_interval: over.reload_interval.or(self.reload_interval),
            component: over.component.or(self.component),
            component_sha256: over.component_sha256.or(self.component_sha256),
            cache_dir: over.cache_dir.or(self.cache_dir),
            max_connections: over.max_connections.or(self.max_connections),
            header_read_timeout: over.header_read_timeout.or(self.header_read_timeout),
            idle_timeout: over.idle_timeout.or(self.idle_timeout),
        }
    }

    /// Fills defaults, reads the upstream password file, checks the whole.
    pub fn resolve(self) -> Result<ServeConfig, ConfigError> {
        let upstream = self.upstream.ok_or(ConfigError::Missing("upstream"))?;
        let policy = self.policy.ok_or(ConfigError::Missing("policy"))?;
        let listen = match self.listen {
            Some(listen) => listen,
            None => DEFAULT_LISTEN.parse().map_err(|_| {
                ConfigError::Invalid(format!("bad default address {DEFAULT_LISTEN}"))
            })?,
        };
        let auth = self.auth.unwrap_or(if self.users.is_some() {
            AuthMode::Basic
        } else {
            AuthMode::None
        });
        match (auth, &self.users) {
            (AuthMode::Basic, None) => {
                return Err(ConfigError::Invalid(
                    "auth `basic` needs a users file: give --users FILE (create one with `taglock users add`)".into(),
                ));
            }
            (AuthMode::TrustedHeaders | AuthMode::None, Some(_)) => {
                return Err(ConfigError::Invalid(format!(
                    "a users file is only used with auth `basic`, not `{}`",
                    auth.as_str()
                )));
            }
            _ => {}
        }
        let upstream_credentials = match (self.upstream_user, self.upstream_password_file) {
            (Some(user), Some(file)) => Some((user, read_password(&file)?)),
            (None, None) => None,
            (Some(_), None) => return Err(ConfigError::Missing("upstream_password_file")),
            (None, Some(_)) => return Err(ConfigError::Missing("upstream_user")),
        };
        if upstream_credentials.is_some() && auth == AuthMode::None {
            // Pass-through forwards the client's credentials; two sets make no sense.
            return Err(ConfigError::Invalid(
                "auth `none` forwards each client's own credentials upstream; drop --upstream-user or choose another auth mode".into(),
            ));
        }
        if upstream_credentials.is_none()
            && (self.upstream_token_realm.is_some() || self.upstream_token_request.is_some())
        {
            return Err(ConfigError::Invalid(
                "upstream_token_realm and upstream_token_request are for the proxy's own upstream credentials: give --upstream-user and --upstream-password-file too".into(),
            ));
        }
        if let Some(realm) = &self.upstream_token_realm {
            if !(realm.starts_with("http://") || realm.starts_with("https://"))
                || realm.contains('?')
            {
                return Err(ConfigError::Invalid(format!(
                    "upstream_token_realm `{realm}` must be an http:// or https:// URL without a query"
                )));
            }
        }
        let tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            (Some(_), None) => return Err(ConfigError::Missing("tls_key")),
            (None, Some(_)) => return Err(ConfigError::Missing("tls_cert")),
        };
        let component = match (self.component, self.component_sha256) {
            (Some(path), Some(sha)) => Some((path, sha)),
            (None, None) => None,
            (Some(_), None) => return Err(ConfigError::Missing("component_sha256")),
            (None, Some(_)) => return Err(ConfigError::Missing("component")),
        };
        let facts_concurrency = self.facts_concurrency.unwrap_or(8);
        if !(1..=256).contains(&facts_concurrency) {
            return Err(ConfigError::Invalid(format!(
                "facts_concurrency must be between 1 and 256, not {facts_concurrency}"
            )));
        }
        let max_connections = self.max_connections.unwrap_or(1024);
        if !(1..=MAX_CONNECTIONS_CEILING).contains(&max_connections) {
            return Err(ConfigError::Invalid(format!(
                "max_connections must be between 1 and {MAX_CONNECTIONS_CEILING}, not {max_connections}"
            )));
        }
        let header_read_timeout = positive(
            "header_read_timeout",
            self.header_read_timeout.unwrap_or(Duration::from_secs(10)),
        )?;
        let idle_timeout = positive(
            "idle_timeout",
            self.idle_timeout.unwrap_or(Duration::from_secs(60)),
        )?;
        Ok(ServeConfig {
            listen,
            upstream,
            policy,
            users: self.users,
            auth,
            upstream_credentials,
            upstream_token_realm: self.upstream_token_realm,
            upstream_token_request: self.upstream_token_request.unwrap_or_default(),
            audit_log: self.audit_log,
            tls,
            ui: self.ui,
            upstream_timeout: self.upstream_timeout.unwrap_or(Duration::from_secs(10)),
            forward_timeout: self.forward_timeout.unwrap_or(Duration::from_secs(300)),
            lock_timeout: self.lock_timeout.unwrap_or(Duration::from_secs(30)),
            tags_timeout: self.tags_timeout.unwrap_or(Duration::from_secs(10)),
            facts_concurrency,
            reload_interval: match self.reload_interval {
                Some(interval) if interval.is_zero() => None,
                Some(interval) => Some(interval),
                None => Some(Duration::from_secs(1)),
            },
            component,
            cache_dir: self.cache_dir,
            max_connections,
            header_read_timeout,
            idle_timeout,
        })
    }
}

/// The most `max_connections` may be (each connection holds a file descriptor,
/// and forwarding holds a second one upstream).
const MAX_CONNECTIONS_CEILING: usize = 1_000_000;

/// `value`, unless it is zero: a zero bound would close every connection at once.
fn positive(name: &str, value: Duration) -> Result<Duration, ConfigError> {
    if value.is_zero() {
        return Err(ConfigError::Invalid(format!("{name} must be more than 0s")));
    }
    Ok(value)
}

/// Parses a duration such as `10s`, `250ms` or `5m` (humantime syntax).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|err| format!("invalid duration `{text}`: {err} (e.g. 10s, 250ms, 5m)"))
}

fn duration<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_duration(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// The first line of a password file (the proxy's upstream password, preview's
/// registry password); an empty one is refused.
pub fn read_password(path: &Path) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let password = text.lines().next().unwrap_or("").to_owned();
    if password.is_empty() {
        return Err(ConfigError::Invalid(format!(
            "password file `{}` is empty",
            path.display()
        )));
    }
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ServeOptions {
        ServeOptions {
            upstream: Some("http://127.0.0.1:5000".into()),
            policy: Some("policy.json".into()),
            ..ServeOptions::default()
        }
    }

    #[test]
    fn defaults() {
        let config = base().resolve().unwrap();
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.auth, AuthMode::None);
        assert_eq!(config.upstream_timeout, Duration::from_secs(10));
        assert_eq!(config.reload_interval, Some(Duration::from_secs(1)));
        assert_eq!(config.max_connections, 1024);
        assert_eq!(config.header_read_timeout, Duration::from_secs(10));
        assert_eq!(config.idle_timeout, Duration::from_secs(60));
        let with_users = ServeOptions {
            users: Some("users.json".into()),
            ..base()
        };
        assert_eq!(with_users.resolve().unwrap().auth, AuthMode::Basic);
    }

    #[test]
    fn the_command_line_overrides_the_file() {
        let file: ServeOptions = toml::from_str(
            r#"
            listen = "0.0.0.0:6000"
            upstream = "http://file:5000"
            policy = "file.json"
            upstream_timeout = "250ms"
            reload_interval = "0s"
            max_connections = 32
            header_read_timeout = "2s"
            idle_timeout = "5s"
            "#,
        )
        .unwrap();
        let cli = ServeOptions {
            upstream: Some("http://cli:5000".into()),
            ..ServeOptions::default()
        };
        let config = file.overridden_by(cli).resolve().unwrap();
        assert_eq!(config.upstream, "http://cli:5000");
        assert_eq!(config.policy, PathBuf::from("file.json"));
        assert_eq!(config.listen.port(), 6000);
        assert_eq!(config.upstream_timeout, Duration::from_millis(250));
        assert_eq!(config.reload_interval, None);
        assert_eq!(config.max_connections, 32);
        assert_eq!(config.header_read_timeout, Duration::from_secs(2));
        assert_eq!(config.idle_timeout, Duration::from_secs(5));
    }

    #[test]
    fn bad_configurations_are_refused_with_the_reason() {
        let err = |options: ServeOptions| options.resolve().unwrap_err().to_string();
        assert!(err(ServeOptions::default()).contains("--upstream"));
        assert!(
            err(ServeOptions {
                auth: Some(AuthMode::Basic),
                ..base()
            })
            .contains("users file")
        );
        assert!(
            err(ServeOptions {
                upstream_user: Some("u".into()),
                ..base()
            })
            .contains("--upstream-password-file")
        );
        assert!(
            err(ServeOptions {
                tls_cert: Some("c.pem".into()),
                ..base()
            })
            .contains("--tls-key")
        );
        assert!(
            err(ServeOptions {
                facts_concurrency: Some(0),
                ..base()
            })
            .contains("between 1 and 256")
        );
        assert!(
            err(ServeOptions {
                max_connections: Some(0),
                ..base()
            })
            .contains("max_connections must be between 1 and")
        );
        assert!(
            err(ServeOptions {
                header_read_timeout: Some(Duration::ZERO),
                ..base()
            })
            .contains("header_read_timeout must be more than 0s")
        );
        assert!(
            err(ServeOptions {
                idle_timeout: Some(Duration::ZERO),
                ..base()
            })
            .contains("idle_timeout must be more than 0s")
        );
        let unknown = toml::from_str::<ServeOptions>("listn = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(unknown.contains("listn"), "{unknown}");
        let bad_duration = toml::from_str::<ServeOptions>("lock_timeout = \"soon\"")
            .unwrap_err()
            .to_string();
        assert!(bad_duration.contains("invalid duration"), "{bad_duration}");
    }

    #[test]
    fn upstream_token_options_need_credentials_and_a_plain_url() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\n").unwrap();
        let with_credentials = || ServeOptions {
            users: Some("users.json".into()),
            upstream_user: Some("proxy".into()),
            upstream_password_file: Some(file.clone()),
            ..base()
        };
        let config = with_credentials().resolve().unwrap();
        assert_eq!(config.upstream_token_request, TokenRequest::Get);
        assert_eq!(config.upstream_token_realm, None);
        let file_options: ServeOptions = toml::from_str(
            "upstream_token_request = \"post\"\nupstream_token_realm = \"https://auth.example/token\"",
        )
        .unwrap();
        let config = with_credentials()
            .overridden_by(file_options)
            .resolve()
            .unwrap();
        assert_eq!(config.upstream_token_request, TokenRequest::Post);
        assert_eq!(
            config.upstream_token_realm.as_deref(),
            Some("https://auth.example/token")
        );
        let err = |options: ServeOptions| options.resolve().unwrap_err().to_string();
        assert!(
            err(ServeOptions {
                upstream_token_request: Some(TokenRequest::Post),
                ..base()
            })
            .contains("--upstream-user")
        );
        for bad in [
            "auth.example/token",
            "ftp://auth.example",
            "https://a/t?x=1",
        ] {
            assert!(
                err(ServeOptions {
                    upstream_token_realm: Some(bad.into()),
                    ..with_credentials()
                })
                .contains("upstream_token_realm"),
                "{bad}"
            );
        }
        assert!(toml::from_str::<ServeOptions>("upstream_token_request = \"put\"").is_err());
    }

    #[test]
    fn the_upstream_password_comes_from_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\n").unwrap();
        let config = ServeOptions {
            users: Some("users.json".into()),
            upstream_user: Some("proxy".into()),
            upstream_password_file: Some(file),
            ..base()
        }
        .resolve()
        .unwrap();
        assert_eq!(
            config.upstream_credentials,
            Some(("proxy".into(), "s3cret".into()))
        );
    }
}
