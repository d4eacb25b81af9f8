//! The plugin configuration Envoy hands the filter (`PluginConfig.configuration`,
//! a JSON string), as `taglock envoy bootstrap` writes it.
//!
//! ```json
//! {"policy": "<the policy's JSON text>", "cluster": "registry",
//!  "authority": "127.0.0.1:5000",
//!  "identity": {"mode": "jwt", "payload_key": "jwt_payload", "claims": {"id": "sub"}},
//!  "facts_timeout_ms": 5000, "facts_concurrency": 8, "lock_ttl_ms": 60000,
//!  "lock_timeout_ms": 30000, "lock_waiters": 256,
//!  "upstream": {"user": "envoy", "password": "…",
//!               "token_realm": "https://auth.example/token", "token_cluster": "taglock_token_realm"}}
//! ```

use crate::waiters::{DEFAULT_WAITERS, MAX_WAITERS};
use serde::Deserialize;
use taglock_gateway::ClaimNames;

/// The most facts a request asks the registry for at once.
pub const MAX_FACTS_CONCURRENCY: usize = 64;
/// The longest a request may spend gathering facts.
pub const MAX_FACTS_TIMEOUT_MS: u64 = 120_000;
/// The longest a write may wait for another write's lock.
pub const MAX_LOCK_TIMEOUT_MS: u64 = 300_000;

/// The filter's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// The policy, as the text of its JSON document (so that problems are
    /// located by line and column of that text).
    pub policy: String,
    /// The Envoy cluster of the registry: where look-ups go.
    pub cluster: String,
    /// The `:authority` of look-ups (the registry's host and port).
    pub authority: String,
    /// How the actor is known.
    #[serde(default)]
    pub identity: Identity,
    /// The bound on gathering one request's facts, in milliseconds (default
    /// 5000, at most [`MAX_FACTS_TIMEOUT_MS`]); past it, what is still unknown
    /// fails closed.
    #[serde(default = "default_facts_timeout")]
    pub facts_timeout_ms: u64,
    /// How many look-ups of one request are in flight at once (default 8, at
    /// most [`MAX_FACTS_CONCURRENCY`]).
    #[serde(default = "default_facts_concurrency")]
    pub facts_concurrency: usize,
    /// How long a write lock outlives a worker that died holding it, in
    /// milliseconds (default 60000). Locks are normally released when the
    /// registry answers the write or the stream ends.
    #[serde(default = "default_lock_ttl")]
    pub lock_ttl_ms: u64,
    /// How long a write waits for a busy write lock, in milliseconds (default
    /// 30000 like `taglock serve --lock-timeout`, at most
    /// [`MAX_LOCK_TIMEOUT_MS`]; 0: a busy lock is refused at once). Past it,
    /// 503.
    #[serde(default = "default_lock_timeout")]
    pub lock_timeout_ms: u64,
    /// How many requests of one worker may wait for write locks at once
    /// (default [`DEFAULT_WAITERS`], 1..=[`MAX_WAITERS`]); past it, a request
    /// whose lock is busy is refused at once (503).
    #[serde(default = "default_lock_waiters")]
    pub lock_waiters: usize,
    /// The sha256 of this filter's module, as audit records name the engine
    /// that decided (`taglock envoy bootstrap` writes it; empty when unknown).
    #[serde(default)]
    pub filter_sha256: String,
    /// The filter's own credentials for the registry (`taglock envoy bootstrap
    /// --upstream-user --upstream-password-file`): every look-up carries them,
    /// and in JWT mode every forwarded request too (see [`crate::upstream`]).
    /// Absent: look-ups carry no credentials (JWT mode) or the client's
    /// (registry mode).
    #[serde(default)]
    pub upstream: Option<UpstreamCredentials>,
}

/// The filter's credentials for the registry. The password is a secret: the
/// plugin configuration that holds it must be readable by Envoy only, and
/// [`Debug`] output never shows it.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamCredentials {
    /// The user (HTTP Basic, and the token realm's Basic).
    pub user: String,
    /// The password.
    pub password: String,
    /// The one token realm outside the registry's own authority the
    /// credentials may go to (`--upstream-token-realm`).
    #[serde(default)]
    pub token_realm: Option<String>,
    /// The Envoy cluster that reaches `token_realm`.
    #[serde(default)]
    pub token_cluster: Option<String>,
}

impl std::fmt::Debug for UpstreamCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamCredentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("token_realm", &self.token_realm)
            .field("token_cluster", &self.token_cluster)
            .finish()
    }
}

/// Who the actor of a request is.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Identity {
    /// The registry authenticates clients itself: the client's `Authorization`
    /// goes to the registry (and to the filter's look-ups), and every actor is
    /// anonymous to the policy — for immutability-only policies.
    #[default]
    Registry,
    /// A JWT verified by Envoy's `jwt_authn` filter, read from its dynamic
    /// metadata (`payload_in_metadata`), never from a client's header.
    Jwt {
        /// The `payload_in_metadata` key of the `jwt_authn` provider.
        payload_key: String,
        /// Which claims give the actor.
        #[serde(default)]
        claims: ClaimNames,
    },
}

fn default_facts_timeout() -> u64 {
    5_000
}

fn default_facts_concurrency() -> usize {
    8
}

fn default_lock_ttl() -> u64 {
    60_000
}

fn default_lock_timeout() -> u64 {
    30_000
}

fn default_lock_waiters() -> usize {
    DEFAULT_WAITERS
}

/// Why a configuration is refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not JSON of the expected shape.
    #[error("the plugin configuration is invalid: {0}")]
    Shape(#[from] serde_json::Error),
    /// A bound out of range.
    #[error("the plugin configuration is invalid: {0}")]
    Bound(String),
}

impl PluginConfig {
    /// Parses and checks the configuration.
    pub fn parse(bytes: &[u8]) -> Result<PluginConfig, ConfigError> {
        let config: PluginConfig = serde_json::from_slice(bytes)?;
        if config.cluster.is_empty() || config.authority.is_empty() {
            return Err(ConfigError::Bound(
                "`cluster` and `authority` must name the registry".to_owned(),
            ));
        }
        if config.facts_timeout_ms == 0 || config.facts_timeout_ms > MAX_FACTS_TIMEOUT_MS {
            return Err(ConfigError::Bound(format!(
                "`facts_timeout_ms` must be 1..={MAX_FACTS_TIMEOUT_MS}"
            )));
        }
        if config.facts_concurrency == 0 || config.facts_concurrency > MAX_FACTS_CONCURRENCY {
            return Err(ConfigError::Bound(format!(
                "`facts_concurrency` must be 1..={MAX_FACTS_CONCURRENCY}"
            )));
        }
        if config.lock_timeout_ms > MAX_LOCK_TIMEOUT_MS {
            return Err(ConfigError::Bound(format!(
                "`lock_timeout_ms` must be 0..={MAX_LOCK_TIMEOUT_MS}"
            )));
        }
        if config.lock_waiters == 0 || config.lock_waiters > MAX_WAITERS {
            return Err(ConfigError::Bound(format!(
                "`lock_waiters` must be 1..={MAX_WAITERS}"
            )));
        }
        if let Some(upstream) = &config.upstream {
            crate::upstream::UpstreamAuth::new(upstream, &config.cluster, &config.authority)
                .map_err(ConfigError::Bound)?;
        }
        if config.lock_ttl_ms < config.facts_timeout_ms {
            return Err(ConfigError::Bound(
                "`lock_ttl_ms` must be at least `facts_timeout_ms`".to_owned(),
            ));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        let config =
            PluginConfig::parse(br#"{"policy":"{}","cluster":"r","authority":"h:1"}"#).unwrap();
        assert!(matches!(config.identity, Identity::Registry));
        assert_eq!(config.facts_timeout_ms, 5_000);
        assert_eq!(config.lock_timeout_ms, 30_000);
        assert_eq!(config.lock_waiters, DEFAULT_WAITERS);
        let jwt = PluginConfig::parse(
            br#"{"policy":"{}","cluster":"r","authority":"h:1",
                 "identity":{"mode":"jwt","payload_key":"p","claims":{"id":"email"}}}"#,
        )
        .unwrap();
        let Identity::Jwt { claims, .. } = jwt.identity else {
            panic!("not jwt")
        };
        assert_eq!(claims.id, "email");
        let with = PluginConfig::parse(
            br#"{"policy":"{}","cluster":"r","authority":"h:1",
                 "upstream":{"user":"envoy","password":"hunter2"}}"#,
        )
        .unwrap();
        assert!(!format!("{with:?}").contains("hunter2"));
        for bad in [
            &br#"{"policy":"{}","cluster":"","authority":"h:1"}"#[..],
            br#"{"policy":"{}","cluster":"r","authority":"h:1","facts_timeout_ms":0}"#,
            br#"{"policy":"{}","cluster":"r","authority":"h:1","facts_concurrency":1000}"#,
            br#"{"policy":"{}","cluster":"r","authority":"h:1","unknown":1}"#,
            br#"{"policy":"{}","cluster":"r","authority":"h:1","lock_timeout_ms":300001}"#,
            br#"{"policy":"{}","cluster":"r","authority":"h:1","lock_waiters":0}"#,
            br#"{"policy":"{}","cluster":"r","authority":"h:1","lock_waiters":4097}"#,
            br#"{"policy":"{}","cluster":"r","authority":"h:1","identity":{"mode":"header"}}"#,
            br#"{"policy":"{}","cluster":"r","authority":"h:1","upstream":{"user":"a:b","password":"p"}}"#,
            br#"{"policy":"{}","cluster":"r","authority":"h:1","upstream":{"user":"a","password":"p","token_realm":"http://t/x"}}"#,
        ] {
            assert!(PluginConfig::parse(bad).is_err());
        }
    }
}
