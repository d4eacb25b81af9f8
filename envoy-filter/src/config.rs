//! The plugin configuration Envoy hands the filter (`PluginConfig.configuration`,
//! a JSON string), as `taglock envoy bootstrap` writes it.
//!
//! ```json
//! {"policy": "<the policy's JSON text>", "cluster": "registry",
//!  "authority": "127.0.0.1:5000",
//!  "identity": {"mode": "jwt", "payload_key": "jwt_payload", "claims": {"id": "sub"}},
//!  "facts_timeout_ms": 5000, "facts_concurrency": 8, "lock_ttl_ms": 60000}
//! ```

use serde::Deserialize;
use taglock_gateway::ClaimNames;

/// The most facts a request asks the registry for at once.
pub const MAX_FACTS_CONCURRENCY: usize = 64;
/// The longest a request may spend gathering facts.
pub const MAX_FACTS_TIMEOUT_MS: u64 = 120_000;

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
    /// The sha256 of this filter's module, as audit records name the engine
    /// that decided (`taglock envoy bootstrap` writes it; empty when unknown).
    #[serde(default)]
    pub filter_sha256: String,
}

/// Who the actor of a request is: `{"mode": "registry"}` or
/// `{"mode": "jwt", "payload_key": …, "claims": …}` (read by `identity.rs`).
#[derive(Debug, Clone, Default)]
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
        /// Which claims give the actor (by default [`ClaimNames::default`]).
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
        let jwt = PluginConfig::parse(
            br#"{"policy":"{}","cluster":"r","authority":"h:1",
                 "identity":{"mode":"jwt","payload_key":"p","claims":{"id":"email"}}}"#,
        )
        .unwrap();
        let Identity::Jwt { claims, .. } = jwt.identity else {
            panic!("not jwt")
        };
        assert_eq!(claims.id, "email");
        for bad in [
            &br#"{"policy":"{}","cluster":"","authority":"h:1"}"#[..],
            br#"{"policy":"{}","cluster":"r","authority":"h:1","facts_timeout_ms":0}"#,
            br#"{"policy":"{}","cluster":"r","authority":"h:1","facts_concurrency":1000}"#,
            br#"{"policy":"{}","cluster":"r","authority":"h:1","unknown":1}"#,
            br#"{"policy":"{}","cluster":"r","authority":"h:1","identity":{"mode":"header"}}"#,
        ] {
            assert!(PluginConfig::parse(bad).is_err());
        }
    }
}
