//! Bearer tokens for the upstream registry: the Docker token protocol that CNCF
//! distribution, Harbor, Docker Hub and most hosted registries speak.
//!
//! The protocol's pure parts — the `WWW-Authenticate` parser, scopes, the realm
//! rule, token answers, lifetimes and the cache's policy — are the gateway's
//! ([`taglock_gateway::upstream_auth`], shared with the Envoy filter); this
//! module is the proxy's I/O around them: the realm requests, over hyper.
//!
//! # The flow
//!
//! A registry that wants tokens answers `401` with
//! `WWW-Authenticate: Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull"`.
//! The proxy then asks the *realm* for a token with its own credentials
//! (`--upstream-user`, `--upstream-password-file`):
//!
//! * `GET realm?service=…&scope=…` with HTTP Basic (the Docker token protocol);
//! * or, when configured (`upstream_token_request = "post"`) or when the realm
//!   refuses that `GET` (401, 403, 404 or 405), the OAuth2 form
//!   `POST realm` with `grant_type=password`, `username`, `password`, `service`,
//!   `scope` and `client_id=taglock`,
//!
//! and retries with `Authorization: Bearer <token>`.
//!
//! # Which scope
//!
//! A token is asked for exactly the repository and actions the request needs
//! ([`needed_access`]): `repository:<name>:pull` for reads (the facts, `GET`,
//! `HEAD`), `repository:<name>:pull,push` for uploads and manifest pushes (plus
//! `repository:<from>:pull` for a cross-repository mount), `repository:<name>:delete`
//! for deletes, `registry:catalog:*` for the catalog, no scope for `GET /v2/`.
//! When the registry's challenge names a scope, that scope is authoritative (a
//! registry that wants `repository:<name>:*` for deletes gets it), but only on the
//! request's own resources: a challenge naming another repository is refused
//! ([`TokenError::ScopeRefused`]), never followed.
//!
//! # Whom the password goes to
//!
//! The realm is named by the upstream's answer, so a compromised or spoofed
//! upstream could name any host. The proxy sends its credentials only to a realm
//! on the upstream's own host (any port), over `https` when the upstream is
//! `https` (no downgrade); any other realm must be named exactly by
//! `upstream_token_realm` ([`RealmRule`]).
//!
//! # The cache
//!
//! Tokens are kept per realm, service and scope ([`TokenCache`]) until shortly
//! before they expire: `expires_in` (60 s when absent, as the protocol says),
//! counted from `issued_at` when given, less a quarter of the lifetime at most
//! [`MAX_REFRESH_MARGIN`]. At most [`MAX_CACHED_TOKENS`] are kept; past it the
//! expired ones go, then those expiring first. A token the upstream refuses
//! anyway is dropped and fetched again once.
//!
//! Tokens are secrets: header values carrying them are marked sensitive, and
//! neither [`Debug`] output nor any error here holds one (or the password).

use crate::upstream::HttpClient;
use axum::body::Body;
use http::header::{self, HeaderValue};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Limited};
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};
use taglock_gateway::upstream_auth::{self as auth, keep_for, needed_access, token_key};
pub use taglock_gateway::upstream_auth::{
    Access, BearerChallenge, CLIENT_ID, Challenge, ChallengeError, DEFAULT_TOKEN_LIFETIME,
    MAX_CACHED_TOKENS, MAX_CHALLENGE_BYTES, MAX_CHALLENGE_PARAMS, MAX_REFRESH_MARGIN, MAX_SCOPES,
    MAX_TOKEN_BYTES, MAX_TOKEN_LIFETIME, MAX_TOKEN_RESPONSE_BYTES, RealmRule, TokenError,
    TokenRequest, bearer_challenge, parse_challenges, parse_scope, scope_key, scopes_to_ask,
};

/// The proxy's token cache: `Bearer …` header values (sensitive) until an
/// instant of the monotonic clock.
pub type TokenCache = auth::TokenCache<HeaderValue, Instant>;

/// What the proxy knows of how the upstream authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Learned {
    /// Nothing yet: requests carry Basic.
    Unknown,
    /// The upstream takes Basic.
    Basic,
    /// The upstream wants tokens from this realm for this service.
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// How a request was authorized, to know what a 401 means.
#[derive(Debug, Clone)]
pub(crate) enum Sent {
    /// HTTP Basic.
    Basic,
    /// This token (a sensitive `Bearer …` value) for this cache key.
    Bearer { key: String, value: HeaderValue },
}

/// The proxy's own upstream credentials, and what they got it: Basic, or tokens.
pub struct Credentials {
    user: String,
    password: String,
    basic: HeaderValue,
    rule: RealmRule,
    request: TokenRequest,
    learned: Mutex<Learned>,
    cache: Mutex<TokenCache>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("rule", &self.rule)
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Credentials `user`/`password`, with the Basic header `basic`.
    pub fn new(
        user: String,
        password: String,
        basic: HeaderValue,
        rule: RealmRule,
        request: TokenRequest,
    ) -> Credentials {
        Credentials {
            user,
            password,
            basic,
            rule,
            request,
            learned: Mutex::new(Learned::Unknown),
            cache: Mutex::new(TokenCache::default()),
        }
    }

    fn learned(&self) -> Learned {
        self.learned
            .lock()
            .map_or(Learned::Unknown, |learned| learned.clone())
    }

    fn learn(&self, now: Learned) {
        if let Ok(mut learned) = self.learned.lock() {
            *learned = now;
        }
    }

    /// Whether the upstream's way of authenticating is still unknown.
    pub(crate) fn is_unknown(&self) -> bool {
        self.learned() == Learned::Unknown
    }

    /// A request carried Basic and was not refused: the upstream takes Basic.
    pub(crate) fn basic_worked(&self) {
        if self.is_unknown() {
            self.learn(Learned::Basic);
        }
    }

    /// How many tokens are cached.
    pub fn cached_tokens(&self) -> usize {
        self.cache.lock().map_or(0, |cache| cache.len())
    }

    /// The `Authorization` for `method path`: Basic while the
    /// upstream has not asked for tokens, else a (cached or new) token.
    pub(crate) async fn authorization(
        &self,
        client: &HttpClient,
        timeout: Duration,
        method: &Method,
        path: &str,
    ) -> Result<(HeaderValue, Sent), TokenError> {
        match self.learned() {
            Learned::Unknown | Learned::Basic => Ok((self.basic.clone(), Sent::Basic)),
            Learned::Bearer { realm, service } => {
                let needed = needed_access(method.as_str(), path)?;
                self.token(client, timeout, &realm, service.as_deref(), &needed, None)
                    .await
            }
        }
    }

    /// The token after a `401` with `challenge` to `method path` that carried
    /// `sent`: the realm is checked and remembered, the scope
    /// chosen, and a token the upstream refused is fetched again.
    pub(crate) async fn after_challenge(
        &self,
        client: &HttpClient,
        timeout: Duration,
        challenge: &BearerChallenge,
        method: &Method,
        path: &str,
        sent: &Sent,
    ) -> Result<(HeaderValue, Sent), TokenError> {
        self.rule.check(&challenge.realm)?;
        let needed = needed_access(method.as_str(), path)?;
        let scopes = scopes_to_ask(&challenge.scope, &needed)?;
        self.learn(Learned::Bearer {
            realm: challenge.realm.clone(),
            service: challenge.service.clone(),
        });
        let refused = match sent {
            Sent::Bearer { value, .. } => Some(value),
            Sent::Basic => None,
        };
        self.token(
            client,
            timeout,
            &challenge.realm,
            challenge.service.as_deref(),
            &scopes,
            refused,
        )
        .await
    }

    /// A forward that cannot be replayed was refused: forget its token, and
    /// remember the realm, so the next request gets a fresh token first.
    pub(crate) fn refused(&self, challenge: Option<&BearerChallenge>, sent: &Sent) {
        if let Sent::Bearer { key, value } = sent {
            if let Ok(mut cache) = self.cache.lock() {
                cache.forget(key, value);
            }
        }
        if let Some(challenge) = challenge {
            if self.rule.check(&challenge.realm).is_ok() {
                self.learn(Learned::Bearer {
                    realm: challenge.realm.clone(),
                    service: challenge.service.clone(),
                });
            }
        }
    }

    async fn token(
        &self,
        client: &HttpClient,
        timeout: Duration,
        realm: &str,
        service: Option<&str>,
        scopes: &[Access],
        refused: Option<&HeaderValue>,
    ) -> Result<(HeaderValue, Sent), TokenError> {
        let key = token_key(realm, service, scopes);
        let now = Instant::now();
        if let Ok(mut cache) = self.cache.lock() {
            if let Some(refused) = refused {
                cache.forget(&key, refused);
            }
            if let Some(value) = cache.get(&key, now) {
                return Ok((value.clone(), Sent::Bearer { key, value }));
            }
        }
        let url = self.rule.check(realm)?;
        let uri: Uri = url.as_str().parse().map_err(|_| TokenError::RealmRefused {
            realm: realm.chars().take(200).collect(),
            why: "it is not a URL".to_owned(),
        })?;
        let (value, lifetime) = self
            .fetch(client, timeout, &uri, realm, service, scopes)
            .await?;
        let now = Instant::now();
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key.clone(), value.clone(), now + keep_for(lifetime), now);
        }
        tracing::debug!(
            scope = scope_key(scopes),
            "got an upstream token for {lifetime:?}"
        );
        Ok((value.clone(), Sent::Bearer { key, value }))
    }

    async fn fetch(
        &self,
        client: &HttpClient,
        timeout: Duration,
        uri: &Uri,
        realm: &str,
        service: Option<&str>,
        scopes: &[Access],
    ) -> Result<(HeaderValue, Duration), TokenError> {
        let realm_shown: String = realm.chars().take(200).collect();
        let unreachable = |why: String| TokenError::Unreachable {
            realm: realm_shown.clone(),
            why,
        };
        if self.request == TokenRequest::Get {
            let query = {
                let mut query = form_urlencoded::Serializer::new(String::new());
                if let Some(service) = service {
                    query.append_pair("service", service);
                }
                for scope in scopes {
                    query.append_pair("scope", &scope.to_string());
                }
                query.finish()
            };
            let separator = if uri.query().is_some() { '&' } else { '?' };
            let url = if query.is_empty() {
                uri.to_string()
            } else {
                format!("{uri}{separator}{query}")
            };
            let request = Request::get(url)
                .header(header::AUTHORIZATION, self.basic.clone())
                .header(header::ACCEPT, "application/json")
                .body(Body::empty())
                .map_err(|err| unreachable(err.to_string()))?;
            let (status, body) = exchange(client, request, timeout, &realm_shown).await?;
            match status {
                StatusCode::OK => return parse_answer(&body, &realm_shown),
                StatusCode::UNAUTHORIZED
                | StatusCode::FORBIDDEN
                | StatusCode::NOT_FOUND
                | StatusCode::METHOD_NOT_ALLOWED => {}
                status => {
                    return Err(TokenError::Refused {
                        realm: realm_shown,
                        status: status.as_u16(),
                    });
                }
            }
        }
        let form = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "password")
                .append_pair("username", &self.user)
                .append_pair("password", &self.password)
                .append_pair("client_id", CLIENT_ID);
            if let Some(service) = service {
                form.append_pair("service", service);
            }
            if !scopes.is_empty() {
                let joined: Vec<String> = scopes.iter().map(ToString::to_string).collect();
                form.append_pair("scope", &joined.join(" "));
            }
            form.finish()
        };
        let request = Request::post(uri.clone())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .body(Body::from(form))
            .map_err(|err| unreachable(err.to_string()))?;
        let (status, body) = exchange(client, request, timeout, &realm_shown).await?;
        if status != StatusCode::OK {
            return Err(TokenError::Refused {
                realm: realm_shown,
                status: status.as_u16(),
            });
        }
        parse_answer(&body, &realm_shown)
    }
}

/// Sends a token request and reads its answer, both within `timeout`, the body
/// at most [`MAX_TOKEN_RESPONSE_BYTES`].
async fn exchange(
    client: &HttpClient,
    request: Request<Body>,
    timeout: Duration,
    realm: &str,
) -> Result<(StatusCode, bytes::Bytes), TokenError> {
    let unreachable = |why: String| TokenError::Unreachable {
        realm: realm.to_owned(),
        why,
    };
    let work = async {
        let response = client
            .request(request)
            .await
            .map_err(|err| unreachable(crate::upstream::error_chain(&err)))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_TOKEN_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|err| unreachable(format!("reading the answer: {err}")))?
            .to_bytes();
        Ok((status, body))
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| TokenError::Timeout {
            realm: realm.to_owned(),
            after: timeout,
        })?
}

/// The token and how long it may be used, from the realm's JSON answer, as a
/// sensitive header value.
fn parse_answer(body: &[u8], realm: &str) -> Result<(HeaderValue, Duration), TokenError> {
    let (token, lifetime) = auth::parse_answer(body, realm, SystemTime::now())?;
    let mut value =
        HeaderValue::from_str(token.authorization()).map_err(|_| TokenError::BadAnswer {
            realm: realm.to_owned(),
            why: "a token with characters a header cannot hold".to_owned(),
        })?;
    value.set_sensitive(true);
    Ok((value, lifetime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_headers_are_sensitive() {
        let (value, _) = parse_answer(br#"{"token":"abc.def"}"#, "realm").unwrap();
        assert_eq!(value.to_str().unwrap(), "Bearer abc.def");
        assert!(value.is_sensitive());
        assert_eq!(format!("{value:?}"), "Sensitive");
    }

    #[test]
    fn credentials_never_show_their_password() {
        let rule = RealmRule::new("http://x", None).unwrap();
        let basic = crate::upstream::basic_authorization("proxy", "hunter2").unwrap();
        let creds = Credentials::new(
            "proxy".into(),
            "hunter2".into(),
            basic,
            rule,
            TokenRequest::Get,
        );
        let shown = format!("{creds:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("aHVudGVyMg"),
            "{shown}"
        );
    }
}
