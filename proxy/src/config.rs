//! The configuration of `taglock serve`. Its options are declared once, in
//! [`ServeOptions`]: the struct is both the command line (`clap::Args`, flattened
//! into the CLI's `serve` arguments) and the TOML config file (`serde`, same names
//! with `_` for `-`), every field optional. Command-line values win
//! ([`ServeOptions::overridden_by`]), then [`ServeOptions::resolve`] fills the
//! defaults and checks the whole. Each default is a `DEFAULT_*` constant of this
//! module; `resolve` applies it and the option's `--help` text states it, formatted
//! from the same constant (the `help_default` attribute below).
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
use std::fmt::Display;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the proxy listens when nothing says otherwise (`listen`).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5050";
/// How bearer tokens are asked for when nothing says otherwise (`upstream_token_request`).
pub const DEFAULT_UPSTREAM_TOKEN_REQUEST: TokenRequest = TokenRequest::Get;
/// Bound on each upstream request made for facts (`upstream_timeout`).
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on a forwarded request until the upstream answers (`forward_timeout`).
pub const DEFAULT_FORWARD_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// How long a write waits for another write of the same tag (`lock_timeout`).
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on gathering the tags at a digest (`tags_timeout`).
pub const DEFAULT_TAGS_TIMEOUT: Duration = Duration::from_secs(10);
/// `HEAD`s at once when gathering the tags at a digest (`facts_concurrency`).
pub const DEFAULT_FACTS_CONCURRENCY: usize = 8;
/// How often the policy and users files are checked for changes (`reload_interval`).
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(1);
/// Client connections served at once (`max_connections`).
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Bound on receiving a request's header (`header_read_timeout`).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a kept-alive connection may wait for its next request (`idle_timeout`).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Every setting, each optional: what a config file or a command line says.
///
/// Each field's doc comment is its `taglock serve --help` text; a field with a
/// default adds `help_default = <the DEFAULT_* constant>`, which appends
/// `[default: …]` to that text. The field name is the TOML key, and with `-` for
/// `_` the long option.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct ServeOptions {
    /// Base URL of the registry to protect, e.g. http://127.0.0.1:5000.
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,
    /// The policy JSON file (reloaded on SIGHUP and when it changes).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, value_name = "ADDR", help_default = DEFAULT_LISTEN)]
    pub listen: Option<SocketAddr>,
    /// Users file for HTTP Basic logins (create it with `taglock users add`).
    #[arg(long, value_name = "FILE")]
    pub users: Option<PathBuf>,
    /// How actors are identified.
    #[arg(long, value_enum, value_name = "MODE", help_default = format!(
        "{} with --users, else {}",
        AuthMode::Basic.as_str(),
        AuthMode::None.as_str()
    ))]
    pub auth: Option<AuthMode>,
    /// User name the proxy logs in to the upstream with.
    #[arg(long, value_name = "NAME")]
    pub upstream_user: Option<String>,
    /// File whose first line is the upstream password.
    #[arg(long, value_name = "FILE")]
    pub upstream_password_file: Option<PathBuf>,
    /// A bearer-token realm off the upstream's host that may receive the upstream credentials (by default only realms on the upstream's host are trusted).
    #[arg(long, value_name = "URL")]
    pub upstream_token_realm: Option<String>,
    /// How bearer tokens are asked for: get (HTTP Basic, then the OAuth2 form if refused) or post (the OAuth2 form only).
    #[arg(long, value_enum, value_name = "HOW", help_default = DEFAULT_UPSTREAM_TOKEN_REQUEST.as_str())]
    pub upstream_token_request: Option<TokenRequest>,
    /// Append every decision to this JSON-lines file.
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Serve this static directory at /ui/ (`host-js` serves the pattern tester at /ui/tester/).
    #[arg(long, value_name = "DIR")]
    pub ui: Option<PathBuf>,
    /// Bound on each upstream request made to gather facts.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration,
          help_default = format_duration(DEFAULT_UPSTREAM_TIMEOUT))]
    #[serde(default, deserialize_with = "duration")]
    pub upstream_timeout: Option<Duration>,
    /// Bound on a forwarded request until the upstream answers.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration,
          help_default = format_duration(DEFAULT_FORWARD_TIMEOUT))]
    #[serde(default, deserialize_with = "duration")]
    pub forward_timeout: Option<Duration>,
    /// How long a write waits for another write to the same tag.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration,
          help_default = format_duration(DEFAULT_LOCK_TIMEOUT))]
    #[serde(default, deserialize_with = "duration")]
    pub lock_timeout: Option<Duration>,
    /// Bound on gathering the tags at a digest before a delete is judged with tags unknown.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration,
          help_default = format_duration(DEFAULT_TAGS_TIMEOUT))]
    #[serde(default, deserialize_with = "duration")]
    pub tags_timeout: Option<Duration>,
    /// Concurrent HEAD requests when gathering the tags at a digest.
    #[arg(long, value_name = "N", help_default = DEFAULT_FACTS_CONCURRENCY)]
    pub facts_concurrency: Option<usize>,
    /// How often the policy and users files are checked for changes; 0s: SIGHUP only.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration,
          help_default = format_duration(DEFAULT_RELOAD_INTERVAL))]
    #[serde(default, deserialize_with = "duration")]
    pub reload_interval: Option<Duration>,
    /// A decision component to run instead of the embedded one (needs --component-sha256).
    #[arg(long, value_name = "FILE")]
    pub component: Option<PathBuf>,
    /// The sha256 the --component file must have.
    #[arg(long, value_name = "DIGEST")]
    pub component_sha256: Option<String>,
    /// Client connections served at once; more wait to be accepted.
    #[arg(long, value_name = "N", help_default = DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: Option<usize>,
    /// Bound on receiving a request header, from the connection's start (TLS included) or a later request's first byte.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration,
          help_default = format_duration(DEFAULT_HEADER_READ_TIMEOUT))]
    #[serde(default, deserialize_with = "duration")]
    pub header_read_timeout: Option<Duration>,
    /// How long a kept-alive connection may wait for its next request.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration,
          help_default = format_duration(DEFAULT_IDLE_TIMEOUT))]
    #[serde(default, deserialize_with = "duration")]
    pub idle_timeout: Option<Duration>,
    /// Directory for the compiled-component cache. A config file key only, not an
    /// option: `taglock serve` sets its own cache directory (`$XDG_CACHE_HOME/taglock`
    /// or `~/.cache/taglock`), which wins over the file's when there is one.
    #[arg(skip)]
    pub cache_dir: Option<PathBuf>,
}

/// `#[arg(help_default = …)]` on a [`ServeOptions`] field: clap's derive calls it
/// after setting the help from the doc comment, so the default is written in one
/// place, the constant `resolve` applies.
trait HelpDefault {
    /// The help, with ` [default: {default}]` appended.
    fn help_default(self, default: impl Display) -> Self;
}

impl HelpDefault for clap::Arg {
    fn help_default(self, default: impl Display) -> clap::Arg {
        let with_default = |help: &clap::builder::StyledStr| format!("{help} [default: {default}]");
        let long = self.get_long_help().map(with_default);
        let help = self
            .get_help()
            .map_or_else(|| format!("[default: {default}]"), with_default);
        let arg = self.help(help);
        match long {
            Some(long) => arg.long_help(long),
            None => arg,
        }
    }
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

    /// `self`, with every setting `over` has replacing this one's (the command
    /// line over the config file).
    pub fn overridden_by(self, over: ServeOptions) -> ServeOptions {
        // A struct literal without `..`: a field left out of the list does not compile.
        macro_rules! each_from_over_else_self {
            ($($field:ident),* $(,)?) => {
                ServeOptions { $($field: over.$field.or(self.$field)),* }
            };
        }
        each_from_over_else_self!(
            upstream,
            policy,
            listen,
            users,
            auth,
            upstream_user,
            upstream_password_file,
            upstream_token_realm,
            upstream_token_request,
            audit_log,
            tls_cert,
            tls_key,
            ui,
            upstream_timeout,
            forward_timeout,
            lock_timeout,
            tags_timeout,
            facts_concurrency,
            reload_interval,
            component,
            component_sha256,
            max_connections,
            header_read_timeout,
            idle_timeout,
            cache_dir,
        )
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
        let facts_concurrency = self.facts_concurrency.unwrap_or(DEFAULT_FACTS_CONCURRENCY);
        if !(1..=256).contains(&facts_concurrency) {
            return Err(ConfigError::Invalid(format!(
                "facts_concurrency must be between 1 and 256, not {facts_concurrency}"
            )));
        }
        let max_connections = self.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
        if !(1..=MAX_CONNECTIONS_CEILING).contains(&max_connections) {
            return Err(ConfigError::Invalid(format!(
                "max_connections must be between 1 and {MAX_CONNECTIONS_CEILING}, not {max_connections}"
            )));
        }
        let header_read_timeout = positive(
            "header_read_timeout",
            self.header_read_timeout
                .unwrap_or(DEFAULT_HEADER_READ_TIMEOUT),
        )?;
        let idle_timeout = positive(
            "idle_timeout",
            self.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT),
        )?;
        Ok(ServeConfig {
            listen,
            upstream,
            policy,
            users: self.users,
            auth,
            upstream_credentials,
            upstream_token_realm: self.upstream_token_realm,
            upstream_token_request: self
                .upstream_token_request
                .unwrap_or(DEFAULT_UPSTREAM_TOKEN_REQUEST),
            audit_log: self.audit_log,
            tls,
            ui: self.ui,
            upstream_timeout: self.upstream_timeout.unwrap_or(DEFAULT_UPSTREAM_TIMEOUT),
            forward_timeout: self.forward_timeout.unwrap_or(DEFAULT_FORWARD_TIMEOUT),
            lock_timeout: self.lock_timeout.unwrap_or(DEFAULT_LOCK_TIMEOUT),
            tags_timeout: self.tags_timeout.unwrap_or(DEFAULT_TAGS_TIMEOUT),
            facts_concurrency,
            reload_interval: match self.reload_interval {
                Some(interval) if interval.is_zero() => None,
                Some(interval) => Some(interval),
                None => Some(DEFAULT_RELOAD_INTERVAL),
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

/// A duration the way [`parse_duration`] reads it back (`10s`, `5m`, `1m`), as
/// the help states defaults.
pub fn format_duration(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
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

    /// The names serde reads: what `#[derive(Deserialize)]` hands to
    /// `deserialize_struct`, caught by a deserializer that stops there.
    fn toml_keys() -> Vec<&'static str> {
        use serde::de::{Error, Visitor, value};
        struct Keys(&'static [&'static str]);
        impl<'de> serde::Deserializer<'de> for &mut Keys {
            type Error = value::Error;
            fn deserialize_struct<V: Visitor<'de>>(
                self,
                _name: &'static str,
                fields: &'static [&'static str],
                _visitor: V,
            ) -> Result<V::Value, value::Error> {
                self.0 = fields;
                Err(value::Error::custom("only the field names were wanted"))
            }
            fn deserialize_any<V: Visitor<'de>>(
                self,
                _visitor: V,
            ) -> Result<V::Value, value::Error> {
                Err(value::Error::custom("not a struct"))
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
                bytes byte_buf option unit unit_struct newtype_struct seq tuple
                tuple_struct map enum identifier ignored_any
            }
        }
        let mut keys = Keys(&[]);
        assert!(ServeOptions::deserialize(&mut keys).is_err());
        keys.0.to_vec()
    }

    /// A setting added to the TOML shape but not the command line (or the other
    /// way round) fails here; `cache_dir` is the one file-only key.
    #[test]
    fn every_toml_key_is_a_long_option_and_every_option_a_key() {
        use clap::Args;
        const FILE_ONLY: [&str; 1] = ["cache_dir"];
        let keys = toml_keys();
        assert!(keys.len() > 20, "{keys:?}");
        let command = ServeOptions::augment_args(clap::Command::new("serve"));
        let mut options = Vec::new();
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            let long = arg
                .get_long()
                .unwrap_or_else(|| panic!("{id} has no --long"));
            assert_eq!(long, id.replace('_', "-"), "the option of `{id}`");
            assert!(keys.contains(&id), "--{long} is not a config file key");
            assert!(arg.get_help().is_some(), "--{long} has no help");
            options.push(id);
        }
        let file_only: Vec<_> = keys.iter().filter(|key| !options.contains(key)).collect();
        assert_eq!(file_only, FILE_ONLY.iter().collect::<Vec<_>>());
    }

    /// Each `[default: …]` the help states is formatted from the constant
    /// `resolve` applies.
    #[test]
    fn the_help_states_each_default_from_its_constant() {
        use clap::Args;
        let command = ServeOptions::augment_args(clap::Command::new("serve"));
        let help = |id: &str| {
            command
                .get_arguments()
                .find(|arg| arg.get_id() == id)
                .and_then(|arg| arg.get_help())
                .map(ToString::to_string)
                .unwrap_or_default()
        };
        let stated = |id: &str| {
            let help = help(id);
            help.split_once(" [default: ")
                .and_then(|(_, rest)| rest.strip_suffix(']'))
                .unwrap_or_else(|| panic!("no default in the help of {id}: {help}"))
                .to_owned()
        };
        let config = base().resolve().unwrap();
        assert_eq!(stated("listen"), config.listen.to_string());
        assert_eq!(stated("listen"), DEFAULT_LISTEN);
        assert_eq!(stated("auth"), "basic with --users, else none");
        assert_eq!(
            stated("upstream_token_request"),
            DEFAULT_UPSTREAM_TOKEN_REQUEST.as_str()
        );
        let durations = [
            ("upstream_timeout", config.upstream_timeout),
            ("forward_timeout", config.forward_timeout),
            ("lock_timeout", config.lock_timeout),
            ("tags_timeout", config.tags_timeout),
            ("header_read_timeout", config.header_read_timeout),
            ("idle_timeout", config.idle_timeout),
            ("reload_interval", config.reload_interval.unwrap()),
        ];
        for (id, applied) in durations {
            assert_eq!(parse_duration(&stated(id)), Ok(applied), "{id}");
        }
        assert_eq!(stated("forward_timeout"), "5m");
        assert_eq!(
            stated("facts_concurrency"),
            config.facts_concurrency.to_string()
        );
        assert_eq!(
            stated("max_connections"),
            config.max_connections.to_string()
        );
        assert_eq!(
            help("lock_timeout"),
            "How long a write waits for another write to the same tag [default: 30s]"
        );
        assert!(!help("upstream").contains("[default:"));
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
