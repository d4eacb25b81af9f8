//! The filter's own credentials for the registry (`upstream` in the plugin
//! configuration): what each look-up and, in JWT mode, each forwarded request
//! carries, and what a `401` teaches. Pure: the token protocol is the
//! gateway's ([`taglock_gateway::upstream_auth`], the same as `taglock serve`'s);
//! the calls are [`crate::exchange`]'s.
//!
//! - Until the registry says otherwise, requests carry HTTP Basic.
//! - A `401` with a `Bearer` challenge whose realm passes the [`RealmRule`]
//!   teaches the worker the realm; tokens are then asked for with Basic
//!   (`GET realm?service=…&scope=…`) on the cluster that reaches the realm
//!   ([`TokenCall`]), kept per realm, service and scope in a bounded cache
//!   ([`MAX_CACHED_TOKENS`](taglock_gateway::upstream_auth::MAX_CACHED_TOKENS) per worker), and sent as `Bearer`.
//! - Neither the password nor a token is ever in a log line or an error: the
//!   [`Debug`] output of everything here redacts them.

use crate::config::UpstreamCredentials;
use std::fmt;
use std::time::SystemTime;
use taglock_gateway::upstream_auth::{
    Access, BearerChallenge, RealmRule, TokenCache, TokenError, Url, bearer_challenge, keep_for,
    needed_access, parse_answer, scopes_to_ask, token_key, token_query,
};

/// What a worker knows of how the registry authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Learned {
    /// Nothing yet: requests carry Basic.
    Unknown,
    /// The registry takes Basic.
    Basic,
    /// The registry wants tokens from this realm for this service.
    Bearer {
        /// The realm (checked by the [`RealmRule`]).
        realm: String,
        /// The challenge's `service`.
        service: Option<String>,
    },
}

/// A token request to send: `GET path` on `cluster`.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenCall {
    /// The Envoy cluster that reaches the realm.
    pub cluster: String,
    /// `:authority`.
    pub authority: String,
    /// `:scheme`.
    pub scheme: String,
    /// `:path`: the realm's path, `service` and `scope`.
    pub path: String,
    /// The realm, as errors show it.
    pub realm: String,
    /// The cache key of the token asked for.
    pub key: String,
}

impl fmt::Debug for TokenCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCall")
            .field("cluster", &self.cluster)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// How to authorize a request to the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sign {
    /// Send this `Authorization` (Basic, or a cached token of `key`).
    Ready(Sent),
    /// Get this token first.
    Token(TokenCall),
    /// Ask `GET /v2/` with Basic first, to learn whether the registry wants
    /// tokens (forwards only: a forward refused with `401` cannot be replayed).
    Probe,
}

/// The `Authorization` a request carried.
#[derive(Clone, PartialEq, Eq)]
pub struct Sent {
    /// The header's value.
    pub value: String,
    /// The token's cache key (`None`: Basic).
    pub key: Option<String>,
}

impl fmt::Debug for Sent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sent")
            .field("value", &"<redacted>")
            .field("key", &self.key)
            .finish()
    }
}

/// A worker's upstream credentials and what they got it.
pub struct UpstreamAuth {
    basic: String,
    rule: RealmRule,
    cluster: String,
    authority: String,
    token_cluster: Option<String>,
    learned: Learned,
    cache: TokenCache<String, u64>,
}

impl fmt::Debug for UpstreamAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamAuth")
            .field("basic", &"<redacted>")
            .field("rule", &self.rule)
            .field("learned", &self.learned)
            .field("cached_tokens", &self.cache.len())
            .finish_non_exhaustive()
    }
}

impl UpstreamAuth {
    /// The credentials `credentials` for the registry reached through
    /// `cluster` at `authority` (plain HTTP, as bootstrap configures it).
    pub fn new(
        credentials: &UpstreamCredentials,
        cluster: &str,
        authority: &str,
    ) -> Result<UpstreamAuth, String> {
        if credentials.user.contains(':') {
            return Err("the upstream user may not contain `:` (HTTP Basic)".to_owned());
        }
        let rule = RealmRule::new(
            &format!("http://{authority}"),
            credentials.token_realm.as_deref(),
        )
        .map_err(|why| format!("the upstream token realm {why}"))?;
        if rule.configured().is_some() && credentials.token_cluster.is_none() {
            return Err("`upstream.token_realm` needs `upstream.token_cluster`".to_owned());
        }
        let pair = format!("{}:{}", credentials.user, credentials.password);
        Ok(UpstreamAuth {
            basic: format!("Basic {}", base64(pair.as_bytes())),
            rule,
            cluster: cluster.to_owned(),
            authority: authority.to_owned(),
            token_cluster: credentials.token_cluster.clone(),
            learned: Learned::Unknown,
            cache: TokenCache::default(),
        })
    }

    /// The `Authorization` value of HTTP Basic (a secret: never log it).
    pub fn basic_authorization(&self) -> String {
        self.basic.clone()
    }

    /// What the worker has learned.
    pub fn learned(&self) -> &Learned {
        &self.learned
    }

    /// How many tokens the worker keeps (at most [`MAX_CACHED_TOKENS`](taglock_gateway::upstream_auth::MAX_CACHED_TOKENS)).
    pub fn cached_tokens(&self) -> usize {
        self.cache.len()
    }

    fn basic(&self) -> Sign {
        Sign::Ready(Sent {
            value: self.basic.clone(),
            key: None,
        })
    }

    /// How to authorize `method path_and_query` at `now_ms`: Basic until the
    /// registry asked for tokens, then a cached token or a token call. With
    /// `probe`, an unknown registry is probed first.
    pub fn sign(
        &self,
        method: &str,
        path_and_query: &str,
        now_ms: u64,
        probe: bool,
    ) -> Result<Sign, TokenError> {
        match &self.learned {
            Learned::Unknown if probe => Ok(Sign::Probe),
            Learned::Unknown | Learned::Basic => Ok(self.basic()),
            Learned::Bearer { realm, service } => {
                let needed = needed_access(method, path_and_query)?;
                self.token_for(realm, service.as_deref(), &needed, now_ms)
            }
        }
    }

    fn token_for(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[Access],
        now_ms: u64,
    ) -> Result<Sign, TokenError> {
        let key = token_key(realm, service, scopes);
        if let Some(value) = self.cache.get(&key, now_ms) {
            return Ok(Sign::Ready(Sent {
                value,
                key: Some(key),
            }));
        }
        let url = self.rule.check(realm)?;
        let (cluster, authority) = self.cluster_for(&url)?;
        let query = token_query(service, scopes);
        let separator = if url.query().is_some() { '&' } else { '?' };
        let path = if query.is_empty() {
            url.path_and_query().to_owned()
        } else {
            format!("{}{separator}{query}", url.path_and_query())
        };
        Ok(Sign::Token(TokenCall {
            cluster,
            authority,
            scheme: url.scheme().to_owned(),
            path,
            realm: realm.chars().take(200).collect(),
            key,
        }))
    }

    /// The cluster that reaches `realm`: the registry's when the realm is at
    /// the registry's own authority, the token realm's when it is the
    /// configured one.
    fn cluster_for(&self, realm: &Url) -> Result<(String, String), TokenError> {
        let authority = realm.authority().to_owned();
        if realm.scheme() == "http" && authority.eq_ignore_ascii_case(&self.authority) {
            return Ok((self.cluster.clone(), authority));
        }
        match (&self.token_cluster, self.rule.configured()) {
            (Some(cluster), Some(configured))
                if configured.authority().eq_ignore_ascii_case(&authority) =>
            {
                Ok((cluster.clone(), authority))
            }
            _ => Err(TokenError::RealmRefused {
                realm: realm.as_str().chars().take(200).collect(),
                why: "Envoy has no cluster for it: name it with --upstream-token-realm so that \
                      `taglock envoy bootstrap` adds one"
                    .to_owned(),
            }),
        }
    }

    /// A `401` to `method path_and_query`, which carried `sent`, with the
    /// `WWW-Authenticate` value `challenge`: the refused token is forgotten, a
    /// usable Bearer challenge is learned, and the token to retry with is
    /// given (`Ok(None)`: not a Bearer challenge, nothing to retry).
    pub fn challenged(
        &mut self,
        challenge: Option<&str>,
        method: &str,
        path_and_query: &str,
        sent: &Sent,
        now_ms: u64,
    ) -> Result<Option<Sign>, TokenError> {
        self.refused(sent);
        let Some(challenge) = challenge.map(bearer_challenge).transpose()?.flatten() else {
            return Ok(None);
        };
        let BearerChallenge {
            realm,
            service,
            scope,
            ..
        } = challenge;
        self.rule.check(&realm)?;
        let needed = needed_access(method, path_and_query)?;
        let scopes = scopes_to_ask(&scope, &needed)?;
        self.learned = Learned::Bearer {
            realm: realm.clone(),
            service: service.clone(),
        };
        self.token_for(&realm, service.as_deref(), &scopes, now_ms)
            .map(Some)
    }

    /// Forgets a token the registry refused.
    pub fn refused(&mut self, sent: &Sent) {
        if let Some(key) = &sent.key {
            self.cache.forget(key, &sent.value);
        }
    }

    /// The answer to the probe `GET /v2/` (sent with Basic): a `401` with a
    /// usable Bearer challenge teaches the realm; no answer (status 0) or a
    /// `5xx` teaches nothing; anything else, Basic.
    pub fn probed(&mut self, status: u16, challenge: Option<&str>) {
        if self.learned != Learned::Unknown || status == 0 || status >= 500 {
            return;
        }
        if status == 401 {
            if let Some(Ok(Some(challenge))) = challenge.map(bearer_challenge) {
                if self.rule.check(&challenge.realm).is_ok() {
                    self.learned = Learned::Bearer {
                        realm: challenge.realm,
                        service: challenge.service,
                    };
                    return;
                }
            }
            return;
        }
        self.learned = Learned::Basic;
    }

    /// The realm answered `call` with `status` and `body` at `now`
    /// (`now_ms` on the same clock): the token, now cached.
    pub fn token_answered(
        &mut self,
        call: &TokenCall,
        status: u16,
        body: &[u8],
        now: SystemTime,
        now_ms: u64,
    ) -> Result<Sent, TokenError> {
        if status != 200 {
            return Err(TokenError::Refused {
                realm: call.realm.clone(),
                status,
            });
        }
        let (token, lifetime) = parse_answer(body, &call.realm, now)?;
        let keep = u64::try_from(keep_for(lifetime).as_millis()).unwrap_or(u64::MAX);
        let value = token.authorization().to_owned();
        self.cache.insert(
            call.key.clone(),
            value.clone(),
            now_ms.saturating_add(keep),
            now_ms,
        );
        Ok(Sent {
            value,
            key: Some(call.key.clone()),
        })
    }
}

/// Standard base64 with padding (RFC 4648 §4), for HTTP Basic.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sextet = |n: u32| char::from(ALPHABET.get((n & 63) as usize).copied().unwrap_or(b'='));
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (b(0) << 16) | (b(1) << 8) | b(2);
        out.push(sextet(n >> 18));
        out.push(sextet(n >> 12));
        out.push(if chunk.len() > 1 { sextet(n >> 6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(n) } else { '=' });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(realm: Option<&str>) -> UpstreamCredentials {
        UpstreamCredentials {
            user: "envoy".to_owned(),
            password: "hunter2".to_owned(),
            token_realm: realm.map(str::to_owned),
            token_cluster: realm.map(|_| "taglock_token_realm".to_owned()),
        }
    }

    #[test]
    fn basic_is_standard_base64() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"envoy:hunter2"), "ZW52b3k6aHVudGVyMg==");
    }

    #[test]
    fn basic_until_a_bearer_challenge_then_tokens() {
        let mut auth = UpstreamAuth::new(&credentials(None), "registry", "127.0.0.1:5000").unwrap();
        let path = "/v2/acme/web/manifests/v1";
        let Sign::Ready(basic) = auth.sign("HEAD", path, 0, false).unwrap() else {
            panic!("not basic")
        };
        assert_eq!(basic.value, "Basic ZW52b3k6aHVudGVyMg==");
        assert_eq!(auth.sign("PUT", path, 0, true).unwrap(), Sign::Probe);
        let challenge = r#"Bearer realm="http://127.0.0.1:5000/token",service="reg",scope="repository:acme/web:pull""#;
        let Some(Sign::Token(call)) = auth
            .challenged(Some(challenge), "HEAD", path, &basic, 0)
            .unwrap()
        else {
            panic!("no token call")
        };
        assert_eq!(call.cluster, "registry");
        assert_eq!(call.authority, "127.0.0.1:5000");
        assert_eq!(
            call.path,
            "/token?service=reg&scope=repository%3Aacme%2Fweb%3Apull"
        );
        let now = SystemTime::now();
        let sent = auth
            .token_answered(&call, 200, br#"{"token":"t1","expires_in":300}"#, now, 0)
            .unwrap();
        assert_eq!(sent.value, "Bearer t1");
        // Cached for the same scope, asked for another.
        assert_eq!(
            auth.sign("GET", path, 1, false).unwrap(),
            Sign::Ready(sent.clone())
        );
        assert!(matches!(
            auth.sign("PUT", path, 1, true).unwrap(),
            Sign::Token(_)
        ));
        // Expired after its lifetime less the margin.
        assert!(matches!(
            auth.sign("GET", path, 270_000, false).unwrap(),
            Sign::Token(_)
        ));
        // A refused token is forgotten.
        auth.refused(&sent);
        assert!(matches!(
            auth.sign("GET", path, 1, false).unwrap(),
            Sign::Token(_)
        ));
        let refused = auth.token_answered(&call, 401, b"", now, 0).unwrap_err();
        assert!(!format!("{refused} {auth:?}").contains("hunter2"));
        assert!(!format!("{auth:?} {sent:?} {call:?}").contains("t1"));
    }

    #[test]
    fn realms_need_a_cluster_and_the_rule() {
        let mut auth = UpstreamAuth::new(&credentials(None), "registry", "127.0.0.1:5000").unwrap();
        let basic = Sent {
            value: "Basic x".to_owned(),
            key: None,
        };
        let path = "/v2/a/tags/list?n=1";
        // Same host, other port: trusted, but Envoy cannot reach it.
        let other_port = r#"Bearer realm="http://127.0.0.1:5001/token""#;
        assert!(matches!(
            auth.challenged(Some(other_port), "GET", path, &basic, 0),
            Err(TokenError::RealmRefused { .. })
        ));
        let elsewhere = r#"Bearer realm="http://evil.example/token""#;
        assert!(
            auth.challenged(Some(elsewhere), "GET", path, &basic, 0)
                .is_err()
        );
        let other_repo = r#"Bearer realm="http://127.0.0.1:5000/t",scope="repository:b:pull""#;
        assert!(matches!(
            auth.challenged(Some(other_repo), "GET", path, &basic, 0),
            Err(TokenError::ScopeRefused { .. })
        ));
        assert_eq!(
            auth.challenged(Some(r#"Basic realm="r""#), "GET", path, &basic, 0)
                .unwrap(),
            None
        );
        let mut named = UpstreamAuth::new(
            &credentials(Some("http://127.0.0.1:5001/token")),
            "registry",
            "127.0.0.1:5000",
        )
        .unwrap();
        let Some(Sign::Token(call)) = named
            .challenged(Some(other_port), "GET", path, &basic, 0)
            .unwrap()
        else {
            panic!("no token call")
        };
        assert_eq!(call.cluster, "taglock_token_realm");
        assert_eq!(call.authority, "127.0.0.1:5001");
        assert_eq!(call.path, "/token?scope=repository%3Aa%3Apull");
    }

    #[test]
    fn probes_learn_basic_or_the_realm() {
        let mut auth = UpstreamAuth::new(&credentials(None), "registry", "reg:5000").unwrap();
        auth.probed(0, None);
        auth.probed(503, None);
        assert_eq!(auth.learned(), &Learned::Unknown);
        auth.probed(200, None);
        assert_eq!(auth.learned(), &Learned::Basic);
        let mut auth = UpstreamAuth::new(&credentials(None), "registry", "reg:5000").unwrap();
        auth.probed(401, Some(r#"Bearer realm="http://reg:5000/token""#));
        assert!(matches!(auth.learned(), Learned::Bearer { .. }));
        let mut auth = UpstreamAuth::new(&credentials(None), "registry", "reg:5000").unwrap();
        auth.probed(401, Some(r#"Bearer realm="http://evil/token""#));
        assert_eq!(auth.learned(), &Learned::Unknown);
        assert!(
            UpstreamAuth::new(
                &UpstreamCredentials {
                    user: "a:b".to_owned(),
                    ..credentials(None)
                },
                "r",
                "h:1"
            )
            .is_err()
        );
    }
}
