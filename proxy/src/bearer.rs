//! Bearer tokens for the upstream registry: the Docker token protocol that CNCF
//! distribution, Harbor, Docker Hub and most hosted registries speak.
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
use policy_core::names;
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// The longest `WWW-Authenticate` value parsed; a longer one is an error.
pub const MAX_CHALLENGE_BYTES: usize = 8 * 1024;

/// The most parameters (over all challenges) one `WWW-Authenticate` may hold.
pub const MAX_CHALLENGE_PARAMS: usize = 32;

/// The most resource scopes a challenge's `scope` may name.
pub const MAX_SCOPES: usize = 8;

/// The most tokens kept at once (one per realm, service and scope: a proxy in
/// front of a registry with many repositories keeps the most recent ones).
pub const MAX_CACHED_TOKENS: usize = 256;

/// The largest token answer read from the realm.
pub const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;

/// The longest token accepted.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// A token's lifetime when the realm does not say (the protocol's default).
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// The longest a token is kept, whatever the realm says.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// A token is fetched again this long before it expires at most (a quarter of
/// its lifetime for shorter-lived ones).
pub const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(30);

/// The OAuth2 `client_id` the proxy names itself with.
pub const CLIENT_ID: &str = "taglock";

/// How a token is asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenRequest {
    /// `GET` with HTTP Basic (the Docker token protocol), then the OAuth2 form
    /// `POST` when the realm refuses it.
    #[default]
    Get,
    /// The OAuth2 password-grant form `POST` only.
    Post,
}

impl TokenRequest {
    /// The name used on the command line and in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenRequest::Get => "get",
            TokenRequest::Post => "post",
        }
    }
}

/// A `WWW-Authenticate` value that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// Longer than [`MAX_CHALLENGE_BYTES`].
    #[error("the challenge is longer than {MAX_CHALLENGE_BYTES} bytes")]
    TooLong,
    /// More than [`MAX_CHALLENGE_PARAMS`] parameters.
    #[error("the challenge has more than {MAX_CHALLENGE_PARAMS} parameters")]
    TooManyParams,
    /// Not the RFC 9110 grammar.
    #[error("the challenge is malformed at byte {at}: {why}")]
    Malformed {
        /// Byte offset of the problem.
        at: usize,
        /// What was expected.
        why: &'static str,
    },
    /// A parameter given twice in one challenge.
    #[error("the challenge gives parameter `{0}` twice")]
    Duplicate(String),
    /// More than one `Bearer` challenge.
    #[error("the upstream sent several Bearer challenges")]
    SeveralBearer,
    /// A `Bearer` challenge without `realm`.
    #[error("the Bearer challenge has no realm")]
    NoRealm,
    /// A `scope` that is not `type:name:actions`.
    #[error("the scope `{0}` is not type:name:actions")]
    Scope(String),
    /// More than [`MAX_SCOPES`] scopes.
    #[error("the challenge names more than {MAX_SCOPES} scopes")]
    TooManyScopes,
}

/// Why no token could be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The upstream's challenge cannot be read.
    #[error("the upstream's WWW-Authenticate cannot be read: {0}")]
    Challenge(#[from] ChallengeError),
    /// The realm is not one the proxy may send its credentials to.
    #[error("refusing to send the upstream credentials to the token realm `{realm}`: {why}")]
    RealmRefused {
        /// The realm the upstream named.
        realm: String,
        /// Which rule it breaks.
        why: String,
    },
    /// The challenge asks for a scope on another resource than the request's.
    #[error("the upstream asks for a token for `{asked}`, but the request is for {needed}")]
    ScopeRefused {
        /// The scope the challenge names.
        asked: String,
        /// The request's own scope.
        needed: String,
    },
    /// A request path whose scope cannot be told.
    #[error("cannot tell which token `{method} {path}` needs: {why}")]
    UnknownScope {
        /// The method.
        method: String,
        /// The path.
        path: String,
        /// Why.
        why: String,
    },
    /// Connecting to the realm or reading its answer failed.
    #[error("the token realm `{realm}` cannot be reached: {why}")]
    Unreachable {
        /// The realm.
        realm: String,
        /// Why.
        why: String,
    },
    /// The realm did not answer in time.
    #[error("the token realm `{realm}` did not answer within {after:?}")]
    Timeout {
        /// The realm.
        realm: String,
        /// The bound.
        after: Duration,
    },
    /// The realm refused the proxy's credentials (or the scope).
    #[error(
        "the token realm `{realm}` refused taglock's credentials: {status} (check --upstream-user and --upstream-password-file)"
    )]
    Refused {
        /// The realm.
        realm: String,
        /// Its answer's status.
        status: StatusCode,
    },
    /// The realm's answer is not a token.
    #[error("the token realm `{realm}` answered no usable token: {why}")]
    BadAnswer {
        /// The realm.
        realm: String,
        /// What was wrong (never the answer's text, which may hold a token).
        why: String,
    },
}

/// One challenge of a `WWW-Authenticate` header.
#[derive(Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme, lower-cased (`bearer`, `basic`).
    pub scheme: String,
    /// The parameters, names lower-cased, in order.
    pub params: Vec<(String, String)>,
    /// A `token68` instead of parameters.
    pub token68: Option<String>,
}

impl fmt::Debug for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Challenge")
            .field("scheme", &self.scheme)
            .field("params", &self.params)
            .field("token68", &self.token68.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Challenge {
    /// The value of parameter `name` (lower-case).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token68(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

struct Cursor<'a> {
    s: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn skip_ows(&mut self) -> bool {
        let start = self.at;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
        self.at > start
    }

    fn token(&mut self) -> String {
        let start = self.at;
        while self.peek().is_some_and(is_tchar) {
            self.at += 1;
        }
        String::from_utf8_lossy(self.s.get(start..self.at).unwrap_or_default()).into_owned()
    }

    fn malformed(&self, why: &'static str) -> ChallengeError {
        ChallengeError::Malformed { at: self.at, why }
    }

    fn quoted(&mut self) -> Result<String, ChallengeError> {
        // At the opening quote.
        self.at += 1;
        let mut value = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.malformed("unterminated quoted string")),
                Some(b'"') => {
                    self.at += 1;
                    return String::from_utf8(value)
                        .map_err(|_| self.malformed("a quoted string that is not UTF-8"));
                }
                Some(b'\\') => {
                    self.at += 1;
                    match self.peek() {
                        Some(b) if b == b'\t' || b >= 0x20 && b != 0x7f => {
                            value.push(b);
                            self.at += 1;
                        }
                        _ => return Err(self.malformed("a dangling escape")),
                    }
                }
                Some(b) if b == b'\t' || b >= 0x20 && b != 0x7f => {
                    value.push(b);
                    self.at += 1;
                }
                Some(_) => return Err(self.malformed("a control character")),
            }
        }
    }

    /// Whether a `token68` starts here: token68 characters, `=` padding, then
    /// the end or a comma.
    fn token68_ahead(&self) -> Option<usize> {
        let mut end = self.at;
        while self.s.get(end).copied().is_some_and(is_token68) {
            end += 1;
        }
        if end == self.at {
            return None;
        }
        while self.s.get(end) == Some(&b'=') {
            end += 1;
        }
        let mut after = end;
        while matches!(self.s.get(after), Some(b' ' | b'\t')) {
            after += 1;
        }
        matches!(self.s.get(after), None | Some(b',')).then_some(end)
    }

    /// Whether `name =` (a parameter, not a new challenge) starts here.
    fn param_ahead(&self) -> bool {
        let mut end = self.at;
        while self.s.get(end).copied().is_some_and(is_tchar) {
            end += 1;
        }
        if end == self.at {
            return false;
        }
        while matches!(self.s.get(end), Some(b' ' | b'\t')) {
            end += 1;
        }
        if self.s.get(end) != Some(&b'=') {
            return false;
        }
        end += 1;
        while matches!(self.s.get(end), Some(b' ' | b'\t')) {
            end += 1;
        }
        // `abc==` or `abc=,` is a token68 with its padding, not a parameter.
        !matches!(self.s.get(end), None | Some(b'=' | b','))
    }
}

/// Every challenge of a `WWW-Authenticate` value (RFC 9110 §11.6.1): schemes
/// and parameter names case-insensitive, values tokens or quoted strings with
/// `\` escapes, commas inside quotes kept. Anything else is an error.
pub fn parse_challenges(header: &str) -> Result<Vec<Challenge>, ChallengeError> {
    if header.len() > MAX_CHALLENGE_BYTES {
        return Err(ChallengeError::TooLong);
    }
    let mut c = Cursor {
        s: header.as_bytes(),
        at: 0,
    };
    let mut challenges = Vec::new();
    let mut params_seen = 0usize;
    loop {
        while matches!(c.peek(), Some(b' ' | b'\t' | b',')) {
            c.at += 1;
        }
        if c.peek().is_none() {
            break;
        }
        let scheme = c.token();
        if scheme.is_empty() {
            return Err(c.malformed("an authentication scheme"));
        }
        let mut challenge = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: Vec::new(),
            token68: None,
        };
        let spaced = c.skip_ows();
        if matches!(c.peek(), None | Some(b',')) {
            challenges.push(challenge);
            continue;
        }
        if !spaced {
            return Err(c.malformed("a space after the scheme"));
        }
        if !c.param_ahead() {
            if let Some(end) = c.token68_ahead() {
                let text = header.get(c.at..end).unwrap_or_default().to_owned();
                challenge.token68 = Some(text);
                c.at = end;
                c.skip_ows();
                challenges.push(challenge);
                continue;
            }
            return Err(c.malformed("a parameter or token68"));
        }
        // Parameters, until a comma is followed by something that is not one.
        loop {
            let name = c.token().to_ascii_lowercase();
            c.skip_ows();
            if c.peek() != Some(b'=') {
                return Err(c.malformed("`=` after a parameter name"));
            }
            c.at += 1;
            c.skip_ows();
            let value = match c.peek() {
                Some(b'"') => c.quoted()?,
                _ => {
                    let value = c.token();
                    if value.is_empty() {
                        return Err(c.malformed("a parameter value"));
                    }
                    value
                }
            };
            params_seen += 1;
            if params_seen > MAX_CHALLENGE_PARAMS {
                return Err(ChallengeError::TooManyParams);
            }
            if challenge.param(&name).is_some() {
                return Err(ChallengeError::Duplicate(name));
            }
            challenge.params.push((name, value));
            c.skip_ows();
            match c.peek() {
                None => break,
                Some(b',') => {
                    while matches!(c.peek(), Some(b' ' | b'\t' | b',')) {
                        c.at += 1;
                    }
                    if !c.param_ahead() {
                        break;
                    }
                }
                Some(_) => return Err(c.malformed("`,` between parameters")),
            }
        }
        challenges.push(challenge);
    }
    Ok(challenges)
}

/// What a `Bearer` challenge asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerChallenge {
    /// Where tokens are had.
    pub realm: String,
    /// The `service` to name in the token request.
    pub service: Option<String>,
    /// The scopes the registry asks for (empty when it names none).
    pub scope: Vec<Access>,
    /// The `error` parameter (`invalid_token`, `insufficient_scope`).
    pub error: Option<String>,
}

/// The `Bearer` challenge of a `WWW-Authenticate` value, if it has one.
pub fn bearer_challenge(header: &str) -> Result<Option<BearerChallenge>, ChallengeError> {
    let challenges = parse_challenges(header)?;
    let mut bearers = challenges.iter().filter(|c| c.scheme == "bearer");
    let Some(bearer) = bearers.next() else {
        return Ok(None);
    };
    if bearers.next().is_some() {
        return Err(ChallengeError::SeveralBearer);
    }
    let realm = bearer.param("realm").ok_or(ChallengeError::NoRealm)?;
    let scope = match bearer.param("scope") {
        Some(scope) => parse_scope(scope)?,
        None => Vec::new(),
    };
    Ok(Some(BearerChallenge {
        realm: realm.to_owned(),
        service: bearer.param("service").map(str::to_owned),
        scope,
        error: bearer.param("error").map(str::to_owned),
    }))
}

/// One resource scope: `repository:acme/web:pull,push`, `registry:catalog:*`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Access {
    /// `repository` or `registry` (or what the registry names).
    pub kind: String,
    /// The repository name, or `catalog`.
    pub name: String,
    /// `pull`, `push`, `delete`, `*`.
    pub actions: Vec<String>,
}

impl Access {
    fn new(kind: &str, name: &str, actions: &[&str]) -> Access {
        Access {
            kind: kind.to_owned(),
            name: name.to_owned(),
            actions: actions.iter().map(|a| (*a).to_owned()).collect(),
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.kind, self.name, self.actions.join(","))
    }
}

/// Space-separated scopes, each `type:name:actions` (the name may hold `:`,
/// e.g. a host with a port; the type is up to the first `:`, the actions after
/// the last).
pub fn parse_scope(text: &str) -> Result<Vec<Access>, ChallengeError> {
    let mut scopes = Vec::new();
    for one in text.split(' ').filter(|s| !s.is_empty()) {
        if scopes.len() == MAX_SCOPES {
            return Err(ChallengeError::TooManyScopes);
        }
        let bad = || ChallengeError::Scope(one.chars().take(200).collect());
        let (kind, rest) = one.split_once(':').ok_or_else(bad)?;
        let (name, actions) = rest.rsplit_once(':').ok_or_else(bad)?;
        if kind.is_empty() || name.is_empty() || actions.is_empty() {
            return Err(bad());
        }
        let actions: Vec<String> = actions.split(',').map(str::to_owned).collect();
        if actions.iter().any(String::is_empty) {
            return Err(bad());
        }
        scopes.push(Access {
            kind: kind.to_owned(),
            name: name.to_owned(),
            actions,
        });
    }
    Ok(scopes)
}

/// The scopes `method path_and_query` needs (empty for `GET /v2/`).
pub fn needed_access(method: &Method, path_and_query: &str) -> Result<Vec<Access>, TokenError> {
    let fail = |why: &str| TokenError::UnknownScope {
        method: method.to_string(),
        path: path_and_query.chars().take(200).collect(),
        why: why.to_owned(),
    };
    let (path, query) = path_and_query
        .split_once('?')
        .map_or((path_and_query, None), |(p, q)| (p, Some(q)));
    if path == "/v2/" || path == "/v2" {
        return Ok(Vec::new());
    }
    if path == "/v2/_catalog" {
        return Ok(vec![Access::new("registry", "catalog", &["*"])]);
    }
    let rest = path
        .strip_prefix("/v2/")
        .ok_or_else(|| fail("not a /v2/ path"))?;
    let (name, upload) = if let Some(name) = rest.strip_suffix("/tags/list") {
        (name, false)
    } else {
        let (head, _last) = rest
            .rsplit_once('/')
            .ok_or_else(|| fail("no repository in the path"))?;
        if let Some(name) = head.strip_suffix("/blobs/uploads") {
            (name, true)
        } else if let Some(name) = head
            .strip_suffix("/manifests")
            .or_else(|| head.strip_suffix("/blobs"))
            .or_else(|| head.strip_suffix("/referrers"))
        {
            (name, false)
        } else {
            return Err(fail("not an OCI distribution API path"));
        }
    };
    names::check_image_name(name).map_err(|err| fail(&err.to_string()))?;
    let mut needed = match *method {
        Method::GET | Method::HEAD => vec![Access::new("repository", name, &["pull"])],
        Method::DELETE if !upload => vec![Access::new("repository", name, &["delete"])],
        // Cancelling an upload is part of pushing.
        Method::DELETE | Method::POST | Method::PUT | Method::PATCH => {
            vec![Access::new("repository", name, &["pull", "push"])]
        }
        _ => return Err(fail("a method the OCI API does not use")),
    };
    if upload && *method == Method::POST {
        let from = query.and_then(|query| {
            form_urlencoded::parse(query.as_bytes())
                .find(|(key, _)| key == "from")
                .map(|(_, from)| from.into_owned())
        });
        if let Some(from) = from {
            names::check_image_name(&from).map_err(|err| fail(&err.to_string()))?;
            if from != name {
                needed.push(Access::new("repository", &from, &["pull"]));
            }
        }
    }
    Ok(needed)
}

/// The scopes to ask for: the challenge's when it names some (each on one of the
/// request's own resources), else the request's own.
pub fn scopes_to_ask(asked: &[Access], needed: &[Access]) -> Result<Vec<Access>, TokenError> {
    if asked.is_empty() {
        return Ok(needed.to_vec());
    }
    for access in asked {
        let own = needed
            .iter()
            .any(|n| n.kind == access.kind && n.name == access.name);
        if !own {
            return Err(TokenError::ScopeRefused {
                asked: access.to_string(),
                needed: if needed.is_empty() {
                    "no resource (`GET /v2/`)".to_owned()
                } else {
                    scope_key(needed)
                },
            });
        }
    }
    Ok(asked.to_vec())
}

/// The scopes as one space-separated string, sorted (a cache key).
pub fn scope_key(scopes: &[Access]) -> String {
    let mut shown: Vec<String> = scopes.iter().map(ToString::to_string).collect();
    shown.sort();
    shown.join(" ")
}

/// Which realms the proxy sends its credentials to.
#[derive(Debug, Clone)]
pub struct RealmRule {
    upstream: Uri,
    configured: Option<Uri>,
}

impl RealmRule {
    /// Realms on `upstream`'s host (no `https` → `http` downgrade), or exactly
    /// `configured` when given (which must be an `http(s)://` URL without query).
    pub fn new(upstream: Uri, configured: Option<&str>) -> Result<RealmRule, String> {
        let configured = match configured {
            None => None,
            Some(text) => {
                let uri: Uri = text.parse().map_err(|err| format!("`{text}`: {err}"))?;
                if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.authority().is_none()
                {
                    return Err(format!("`{text}` is not an http:// or https:// URL"));
                }
                if uri.query().is_some() {
                    return Err(format!("`{text}` may not have a query"));
                }
                Some(uri)
            }
        };
        Ok(RealmRule {
            upstream,
            configured,
        })
    }

    /// The realm as a URL, if the proxy may send its credentials there.
    pub fn check(&self, realm: &str) -> Result<Uri, TokenError> {
        let refuse = |why: &str| TokenError::RealmRefused {
            realm: realm.chars().take(200).collect(),
            why: why.to_owned(),
        };
        let uri: Uri = realm.parse().map_err(|_| refuse("it is not a URL"))?;
        let scheme = uri.scheme_str().unwrap_or_default();
        if scheme != "http" && scheme != "https" {
            return Err(refuse("its scheme is not http or https"));
        }
        let Some(authority) = uri.authority() else {
            return Err(refuse("it names no host"));
        };
        if authority.as_str().contains('@') {
            return Err(refuse("it holds user information"));
        }
        if let Some(allowed) = &self.configured {
            let same = allowed.scheme_str() == Some(scheme)
                && allowed
                    .authority()
                    .is_some_and(|a| a.as_str().eq_ignore_ascii_case(authority.as_str()))
                && allowed.path() == uri.path();
            return if same {
                Ok(uri)
            } else {
                Err(refuse("it is not the configured upstream_token_realm"))
            };
        }
        if !authority
            .host()
            .eq_ignore_ascii_case(self.upstream.host().unwrap_or_default())
        {
            return Err(refuse(
                "it is not on the upstream's host; name it with --upstream-token-realm to trust it",
            ));
        }
        if self.upstream.scheme_str() == Some("https") && scheme != "https" {
            return Err(refuse("the upstream is https but the realm is not"));
        }
        Ok(uri)
    }
}

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

#[derive(Debug)]
struct Cached {
    /// `Bearer …`, sensitive.
    value: HeaderValue,
    until: Instant,
}

/// Tokens by realm, service and scope, at most [`MAX_CACHED_TOKENS`].
#[derive(Debug, Default)]
pub struct TokenCache {
    tokens: HashMap<String, Cached>,
}

impl TokenCache {
    fn get(&self, key: &str, now: Instant) -> Option<HeaderValue> {
        self.tokens
            .get(key)
            .filter(|cached| cached.until > now)
            .map(|cached| cached.value.clone())
    }

    fn insert(&mut self, key: String, cached: Cached, now: Instant) {
        if self.tokens.len() >= MAX_CACHED_TOKENS && !self.tokens.contains_key(&key) {
            self.tokens.retain(|_, c| c.until > now);
            while self.tokens.len() >= MAX_CACHED_TOKENS {
                let first = self
                    .tokens
                    .iter()
                    .min_by_key(|(_, c)| c.until)
                    .map(|(k, _)| k.clone());
                match first {
                    Some(first) => self.tokens.remove(&first),
                    None => break,
                };
            }
        }
        self.tokens.insert(key, cached);
    }

    /// Drops the token of `key` if it is still `value`.
    fn forget(&mut self, key: &str, value: &HeaderValue) {
        if self.tokens.get(key).is_some_and(|c| c.value == value) {
            self.tokens.remove(key);
        }
    }

    /// How many tokens are kept.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether no token is kept.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
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

/// The token answer (Docker token protocol, or OAuth2).
#[derive(Deserialize)]
struct TokenAnswer {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<f64>,
    issued_at: Option<String>,
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

    fn key(realm: &str, service: Option<&str>, scopes: &[Access]) -> String {
        format!("{realm} {} {}", service.unwrap_or(""), scope_key(scopes))
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
                let needed = needed_access(method, path)?;
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
        let needed = needed_access(method, path)?;
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
        let key = Credentials::key(realm, service, scopes);
        let now = Instant::now();
        if let Ok(mut cache) = self.cache.lock() {
            if let Some(refused) = refused {
                cache.forget(&key, refused);
            }
            if let Some(value) = cache.get(&key, now) {
                return Ok((value.clone(), Sent::Bearer { key, value }));
            }
        }
        let uri = self.rule.check(realm)?;
        let (value, lifetime) = self
            .fetch(client, timeout, &uri, realm, service, scopes)
            .await?;
        let now = Instant::now();
        let margin = (lifetime / 4).min(MAX_REFRESH_MARGIN);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(
                key.clone(),
                Cached {
                    value: value.clone(),
                    until: now + lifetime.saturating_sub(margin),
                },
                now,
            );
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
                        status,
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
                status,
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

/// The token and how long it may be used, from the realm's JSON answer.
fn parse_answer(body: &[u8], realm: &str) -> Result<(HeaderValue, Duration), TokenError> {
    let bad = |why: String| TokenError::BadAnswer {
        realm: realm.to_owned(),
        why,
    };
    // serde_json's messages may quote the answer's text: only say where.
    let answer: TokenAnswer = serde_json::from_slice(body).map_err(|err| {
        bad(format!(
            "not the token JSON (line {}, column {})",
            err.line(),
            err.column()
        ))
    })?;
    let token = answer
        .token
        .filter(|t| !t.is_empty())
        .or(answer.access_token.filter(|t| !t.is_empty()))
        .ok_or_else(|| bad("neither `token` nor `access_token`".to_owned()))?;
    if token.len() > MAX_TOKEN_BYTES {
        return Err(bad(format!("a token longer than {MAX_TOKEN_BYTES} bytes")));
    }
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| bad("a token with characters a header cannot hold".to_owned()))?;
    value.set_sensitive(true);
    Ok((
        value,
        lifetime(answer.expires_in, answer.issued_at.as_deref()),
    ))
}

/// How long a token may be used from now: `expires_in` seconds (the default
/// when absent or not positive, at most [`MAX_TOKEN_LIFETIME`]), less the time
/// since `issued_at` when that is a past RFC 3339 time.
fn lifetime(expires_in: Option<f64>, issued_at: Option<&str>) -> Duration {
    let full = expires_in
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(DEFAULT_TOKEN_LIFETIME, |s| {
            Duration::from_secs_f64(s.min(MAX_TOKEN_LIFETIME.as_secs_f64()))
        });
    let age = issued_at
        .and_then(|text| humantime::parse_rfc3339_weak(text).ok())
        .and_then(|issued| SystemTime::now().duration_since(issued).ok())
        .unwrap_or_default();
    full.saturating_sub(age)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(header: &str) -> BearerChallenge {
        bearer_challenge(header).unwrap().unwrap()
    }

    #[test]
    fn distribution_challenges_are_read() {
        let c = bearer(
            r#"Bearer realm="http://127.0.0.1:5001/token",service="registry",scope="repository:acme/web:pull,push""#,
        );
        assert_eq!(c.realm, "http://127.0.0.1:5001/token");
        assert_eq!(c.service.as_deref(), Some("registry"));
        assert_eq!(
            c.scope,
            vec![Access::new("repository", "acme/web", &["pull", "push"])]
        );
        assert_eq!(c.error, None);
    }

    #[test]
    fn schemes_and_names_are_case_insensitive_and_escapes_are_read() {
        let c = bearer(
            r#"BEARER Realm = "https://auth.example/t\"x\\y" , SERVICE=reg.example, error="insufficient_scope""#,
        );
        assert_eq!(c.realm, r#"https://auth.example/t"x\y"#);
        assert_eq!(c.service.as_deref(), Some("reg.example"));
        assert_eq!(c.error.as_deref(), Some("insufficient_scope"));
    }

    #[test]
    fn several_challenges_and_token68_are_told_apart() {
        let all = parse_challenges(
            r#"Basic realm="a, b", Negotiate abc123==, Bearer realm="r",scope="repository:x:pull registry:catalog:*""#,
        )
        .unwrap();
        let schemes: Vec<&str> = all.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["basic", "negotiate", "bearer"]);
        assert_eq!(all[0].param("realm"), Some("a, b"));
        assert_eq!(all[1].token68.as_deref(), Some("abc123=="));
        let c = bearer(
            r#"Basic realm="a, b", Negotiate abc123==, Bearer realm="r",scope="repository:x:pull registry:catalog:*""#,
        );
        assert_eq!(c.scope.len(), 2);
        assert_eq!(c.scope[1], Access::new("registry", "catalog", &["*"]));
        // A Basic-only answer has no Bearer challenge.
        assert_eq!(bearer_challenge(r#"Basic realm="x""#).unwrap(), None);
        // A bare scheme is a challenge without parameters.
        assert_eq!(parse_challenges("Basic").unwrap().len(), 1);
    }

    #[test]
    fn hostile_challenges_are_errors() {
        let err = |h: &str| bearer_challenge(h).unwrap_err();
        assert!(matches!(
            err(r#"Bearer realm="http://x/token"#),
            ChallengeError::Malformed { .. }
        ));
        assert!(matches!(
            err(r#"Bearer realm="x\"#),
            ChallengeError::Malformed { .. }
        ));
        assert_eq!(
            err(&format!(
                r#"Bearer realm="{}""#,
                "a".repeat(MAX_CHALLENGE_BYTES)
            )),
            ChallengeError::TooLong
        );
        let many: Vec<String> = (0..40).map(|n| format!("p{n}=v")).collect();
        assert_eq!(
            err(&format!("Bearer realm=r, {}", many.join(", "))),
            ChallengeError::TooManyParams
        );
        assert_eq!(
            err(r#"Bearer realm="a", realm="b""#),
            ChallengeError::Duplicate("realm".into())
        );
        assert_eq!(
            err(r#"Bearer realm="a", Bearer realm="b""#),
            ChallengeError::SeveralBearer
        );
        assert_eq!(err(r#"Bearer service="s""#), ChallengeError::NoRealm);
        assert!(matches!(
            err(r#"Bearer realm="r",scope="repository:x""#),
            ChallengeError::Scope(_)
        ));
        assert!(matches!(
            err("Bearer realm=\"a\u{1}\""),
            ChallengeError::Malformed { .. }
        ));
        assert!(matches!(
            err(r#"Bearer realm="a" service="b""#),
            ChallengeError::Malformed { .. }
        ));
        assert!(bearer_challenge("Bearer realm=").is_err());
        assert!(matches!(err("=x"), ChallengeError::Malformed { .. }));
    }

    #[test]
    fn each_request_needs_its_own_repository_and_actions() {
        let scope = |m: Method, p: &str| scope_key(&needed_access(&m, p).unwrap());
        assert_eq!(scope(Method::GET, "/v2/"), "");
        assert_eq!(
            scope(Method::GET, "/v2/_catalog?n=100"),
            "registry:catalog:*"
        );
        assert_eq!(
            scope(Method::HEAD, "/v2/acme/web/manifests/v1"),
            "repository:acme/web:pull"
        );
        assert_eq!(
            scope(Method::GET, "/v2/acme/web/tags/list?n=1000"),
            "repository:acme/web:pull"
        );
        assert_eq!(
            scope(Method::PUT, "/v2/acme/web/manifests/v1"),
            "repository:acme/web:pull,push"
        );
        assert_eq!(
            scope(Method::PATCH, "/v2/a/blobs/uploads/uuid-1?_state=x"),
            "repository:a:pull,push"
        );
        assert_eq!(
            scope(Method::POST, "/v2/a/blobs/uploads/"),
            "repository:a:pull,push"
        );
        assert_eq!(
            scope(
                Method::POST,
                "/v2/a/blobs/uploads/?mount=sha256:00&from=other/img"
            ),
            "repository:a:pull,push repository:other/img:pull"
        );
        assert_eq!(
            scope(Method::DELETE, "/v2/a/manifests/sha256:00"),
            "repository:a:delete"
        );
        assert_eq!(
            scope(Method::DELETE, "/v2/a/blobs/uploads/u"),
            "repository:a:pull,push"
        );
        // A repository component named like an API word.
        assert_eq!(
            scope(Method::GET, "/v2/x/manifests/y/manifests/latest"),
            "repository:x/manifests/y:pull"
        );
        for (method, path) in [
            (Method::GET, "/v3/a/manifests/x"),
            (Method::GET, "/v2/a/other/x"),
            (Method::GET, "/v2/UPPER/manifests/x"),
            (Method::OPTIONS, "/v2/a/manifests/x"),
            (Method::POST, "/v2/a/blobs/uploads/?mount=d&from=Bad..name"),
        ] {
            assert!(needed_access(&method, path).is_err(), "{method} {path}");
        }
    }

    #[test]
    fn the_challenge_scope_wins_but_only_on_the_request_own_resources() {
        let needed = needed_access(&Method::DELETE, "/v2/a/manifests/sha256:00").unwrap();
        let star = parse_scope("repository:a:*").unwrap();
        assert_eq!(scopes_to_ask(&star, &needed).unwrap(), star);
        assert_eq!(scopes_to_ask(&[], &needed).unwrap(), needed);
        let other = parse_scope("repository:b:pull").unwrap();
        assert!(matches!(
            scopes_to_ask(&other, &needed),
            Err(TokenError::ScopeRefused { .. })
        ));
        let catalog = parse_scope("registry:catalog:*").unwrap();
        assert!(scopes_to_ask(&catalog, &[]).is_err());
    }

    #[test]
    fn realms_are_trusted_on_the_upstream_host_only() {
        let rule = RealmRule::new("https://reg.example:5000".parse().unwrap(), None).unwrap();
        assert!(rule.check("https://reg.example/token").is_ok());
        assert!(rule.check("https://REG.example:8443/token?x=1").is_ok());
        for bad in [
            "http://reg.example/token",
            "https://auth.example/token",
            "ftp://reg.example/token",
            "https://user@reg.example/token",
            "/token",
            "not a url",
        ] {
            assert!(
                matches!(rule.check(bad), Err(TokenError::RealmRefused { .. })),
                "{bad}"
            );
        }
        let named = RealmRule::new(
            "https://reg.example".parse().unwrap(),
            Some("https://auth.example/token"),
        )
        .unwrap();
        assert!(named.check("https://auth.example/token?a=b").is_ok());
        assert!(named.check("https://auth.example/other").is_err());
        assert!(named.check("https://reg.example/token").is_err());
        assert!(RealmRule::new("http://x".parse().unwrap(), Some("ftp://a/b")).is_err());
        assert!(RealmRule::new("http://x".parse().unwrap(), Some("http://a/b?c")).is_err());
    }

    #[test]
    fn lifetimes_default_and_count_from_issued_at() {
        assert_eq!(lifetime(None, None), DEFAULT_TOKEN_LIFETIME);
        assert_eq!(lifetime(Some(0.0), None), DEFAULT_TOKEN_LIFETIME);
        assert_eq!(lifetime(Some(300.0), None), Duration::from_secs(300));
        assert_eq!(lifetime(Some(1e12), None), MAX_TOKEN_LIFETIME);
        let issued = humantime::format_rfc3339(SystemTime::now() - Duration::from_secs(100));
        let left = lifetime(Some(300.0), Some(&issued.to_string()));
        assert!(left <= Duration::from_secs(200) && left > Duration::from_secs(190));
        assert_eq!(
            lifetime(Some(60.0), Some("garbage")),
            DEFAULT_TOKEN_LIFETIME
        );
    }

    #[test]
    fn token_answers_are_read_and_never_shown() {
        let (value, life) =
            parse_answer(br#"{"token":"abc.def","expires_in":120}"#, "realm").unwrap();
        assert_eq!(value.to_str().unwrap(), "Bearer abc.def");
        assert!(value.is_sensitive());
        assert_eq!(format!("{value:?}"), "Sensitive");
        assert_eq!(life, Duration::from_secs(120));
        let (oauth, _) = parse_answer(br#"{"access_token":"xyz"}"#, "realm").unwrap();
        assert_eq!(oauth.to_str().unwrap(), "Bearer xyz");
        let secret = "s3cr3t-token-value";
        for body in [
            format!(r#"{{"token":"{secret}","expires_in":"{secret}"}}"#),
            format!(r#"{{"token":"{secret}\n"}}"#),
            format!(r#"{{"nothing":"{secret}"}}"#),
        ] {
            let shown = parse_answer(body.as_bytes(), "realm")
                .unwrap_err()
                .to_string();
            assert!(!shown.contains(secret), "{shown}");
        }
        let huge = format!(r#"{{"token":"{}"}}"#, "a".repeat(MAX_TOKEN_BYTES + 1));
        assert!(parse_answer(huge.as_bytes(), "realm").is_err());
    }

    #[test]
    fn the_cache_is_bounded_and_drops_what_expires_first() {
        let now = Instant::now();
        let mut cache = TokenCache::default();
        let value = |n: usize| HeaderValue::from_str(&format!("Bearer {n}")).unwrap();
        for n in 0..MAX_CACHED_TOKENS + 10 {
            cache.insert(
                format!("k{n}"),
                Cached {
                    value: value(n),
                    until: now + Duration::from_secs(100 + n as u64),
                },
                now,
            );
        }
        assert_eq!(cache.len(), MAX_CACHED_TOKENS);
        assert_eq!(cache.get("k0", now), None);
        assert_eq!(cache.get("k9", now), None);
        assert_eq!(cache.get("k10", now), Some(value(10)));
        assert_eq!(cache.get("k10", now + Duration::from_secs(200)), None);
        cache.forget("k10", &value(11));
        assert!(cache.get("k10", now).is_some());
        cache.forget("k10", &value(10));
        assert!(cache.get("k10", now).is_none());
    }

    #[test]
    fn credentials_never_show_their_password() {
        let rule = RealmRule::new("http://x".parse().unwrap(), None).unwrap();
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
