//! Authenticating to the upstream registry with a gateway's own credentials,
//! without I/O: the parts of the Docker/OCI token protocol (the one CNCF
//! distribution, Harbor, Docker Hub and most hosted registries speak) that
//! every host shares — `taglock serve` (hyper) and the Envoy filter
//! (`dispatch_http_call`) each do the I/O themselves.
//!
//! # The flow
//!
//! A registry that wants tokens answers `401` with
//! `WWW-Authenticate: Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull"`
//! ([`bearer_challenge`]). The host then asks the *realm* for a token with its
//! own credentials (`GET realm?service=…&scope=…` with HTTP Basic, or the OAuth2
//! password form), reads the answer ([`parse_answer`]) and retries with
//! `Authorization: Bearer <token>`.
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
//! ([`TokenError::ScopeRefused`]), never followed ([`scopes_to_ask`]).
//!
//! # Whom the password goes to
//!
//! The realm is named by the upstream's answer, so a compromised or spoofed
//! upstream could name any host. Credentials go only to a realm on the
//! upstream's own host (any port), over `https` when the upstream is `https`
//! (no downgrade); any other realm must be named exactly by the operator
//! (`--upstream-token-realm`) ([`RealmRule`]).
//!
//! # The cache
//!
//! Tokens are kept per realm, service and scope ([`TokenCache`]) until shortly
//! before they expire ([`lifetime`], [`keep_for`]): `expires_in` (60 s when
//! absent, as the protocol says), counted from `issued_at` when given, less a
//! quarter of the lifetime at most [`MAX_REFRESH_MARGIN`]. At most
//! [`MAX_CACHED_TOKENS`] are kept; past it the expired ones go, then those
//! expiring first. The cache takes the time from its host (any ordered clock).
//!
//! Tokens and passwords are secrets: neither [`Debug`] output nor any error here
//! holds one.

use crate::query::Query;
use policy_core::names;
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, SystemTime};
/// The longest `WWW-Authenticate` value parsed; a longer one is an error.
pub const MAX_CHALLENGE_BYTES: usize = 8 * 1024;

/// The most parameters (over all challenges) one `WWW-Authenticate` may hold.
pub const MAX_CHALLENGE_PARAMS: usize = 32;

/// The most resource scopes a challenge's `scope` may name.
pub const MAX_SCOPES: usize = 8;

/// The most tokens kept at once (one per realm, service and scope: a gateway in
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

/// The OAuth2 `client_id` taglock names itself with.
pub const CLIENT_ID: &str = "taglock";

/// How a token is asked for. With the `clap` feature it is also a command-line
/// value (`get`, `post`; each variant's first paragraph is its help there).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum TokenRequest {
    /// GET with HTTP Basic (the Docker token protocol), then the OAuth2 form POST when refused.
    #[default]
    Get,
    /// The OAuth2 password-grant form POST only.
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
    /// The realm is not one the gateway may send its credentials to.
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
    /// The realm refused the gateway's credentials (or the scope).
    #[error(
        "the token realm `{realm}` refused taglock's credentials: {status} (check --upstream-user and --upstream-password-file)"
    )]
    Refused {
        /// The realm.
        realm: String,
        /// Its answer's status.
        status: u16,
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
    /// The scope `kind:name:actions`.
    pub fn new(kind: &str, name: &str, actions: &[&str]) -> Access {
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
pub fn needed_access(method: &str, path_and_query: &str) -> Result<Vec<Access>, TokenError> {
    let fail = |why: &str| TokenError::UnknownScope {
        method: method.chars().take(20).collect(),
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
    let mut needed = match method {
        "GET" | "HEAD" => vec![Access::new("repository", name, &["pull"])],
        "DELETE" if !upload => vec![Access::new("repository", name, &["delete"])],
        // Cancelling an upload is part of pushing.
        "DELETE" | "POST" | "PUT" | "PATCH" => {
            vec![Access::new("repository", name, &["pull", "push"])]
        }
        _ => return Err(fail("a method the OCI API does not use")),
    };
    if upload && method == "POST" {
        let query = Query::parse(query).map_err(|_| fail("a query that cannot be read"))?;
        if let Some(from) = query.all("from").next() {
            names::check_image_name(from).map_err(|err| fail(&err.to_string()))?;
            if from != name {
                needed.push(Access::new("repository", from, &["pull"]));
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

/// The cache key of a token: realm, service and scopes.
pub fn token_key(realm: &str, service: Option<&str>, scopes: &[Access]) -> String {
    format!("{realm} {} {}", service.unwrap_or(""), scope_key(scopes))
}

/// An absolute `http://` or `https://` URL, as far as the realm rule reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    text: String,
    scheme: String,
    authority_end: usize,
    path_end: usize,
}

impl Url {
    /// Reads `text`: `scheme://authority[/path][?query]`, no fragment, no
    /// whitespace or control characters, a non-empty authority.
    pub fn parse(text: &str) -> Result<Url, &'static str> {
        if text.bytes().any(|b| b <= b' ' || b == 0x7f || b >= 0x80) {
            return Err("it holds spaces, controls or non-ASCII characters");
        }
        if text.contains('#') {
            return Err("it has a fragment");
        }
        let (scheme, rest) = text.split_once("://").ok_or("it is not an absolute URL")?;
        let valid_scheme = scheme
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
        if !valid_scheme {
            return Err("it is not an absolute URL");
        }
        let start = scheme.len() + 3;
        let authority_len = rest.find(['/', '?']).unwrap_or(rest.len());
        if authority_len == 0 {
            return Err("it names no host");
        }
        let authority_end = start + authority_len;
        let path_end = text
            .get(authority_end..)
            .and_then(|after| after.find('?'))
            .map_or(text.len(), |at| authority_end + at);
        Ok(Url {
            text: text.to_owned(),
            scheme: scheme.to_ascii_lowercase(),
            authority_end,
            path_end,
        })
    }

    /// The whole URL, as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The scheme, lower-cased.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// `host[:port]` (with any user information).
    pub fn authority(&self) -> &str {
        self.text
            .get(self.scheme.len() + 3..self.authority_end)
            .unwrap_or_default()
    }

    /// The host, without port (an IPv6 address keeps its brackets).
    pub fn host(&self) -> &str {
        let authority = self.authority();
        let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        if authority.starts_with('[') {
            return authority
                .find(']')
                .and_then(|end| authority.get(..=end))
                .unwrap_or(authority);
        }
        authority.split_once(':').map_or(authority, |(h, _)| h)
    }

    /// The port, when the URL gives one.
    pub fn port(&self) -> Option<u16> {
        let authority = self.authority();
        let after_host = authority.get(self.host().len()..).unwrap_or_default();
        after_host.strip_prefix(':').and_then(|p| p.parse().ok())
    }

    /// The path (`/` when empty).
    pub fn path(&self) -> &str {
        match self.text.get(self.authority_end..self.path_end) {
            Some("") | None => "/",
            Some(path) => path,
        }
    }

    /// The query, without `?`.
    pub fn query(&self) -> Option<&str> {
        self.text.get(self.path_end..)?.strip_prefix('?')
    }

    /// The path and query, as a request line names them.
    pub fn path_and_query(&self) -> &str {
        match self.text.get(self.authority_end..) {
            Some("") | None => "/",
            Some(rest) => rest,
        }
    }
}

/// Which realms a gateway sends its credentials to.
#[derive(Debug, Clone)]
pub struct RealmRule {
    upstream: Url,
    configured: Option<Url>,
}

impl RealmRule {
    /// Realms on `upstream`'s host (no `https` → `http` downgrade), or exactly
    /// `configured` when given (which must be an `http(s)://` URL without query).
    pub fn new(upstream: &str, configured: Option<&str>) -> Result<RealmRule, String> {
        let upstream = Url::parse(upstream).map_err(|why| format!("`{upstream}`: {why}"))?;
        let configured = match configured {
            None => None,
            Some(text) => {
                let uri = Url::parse(text).map_err(|why| format!("`{text}`: {why}"))?;
                if !matches!(uri.scheme(), "http" | "https") {
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

    /// The configured realm, if any.
    pub fn configured(&self) -> Option<&Url> {
        self.configured.as_ref()
    }

    /// The realm as a URL, if the gateway may send its credentials there.
    pub fn check(&self, realm: &str) -> Result<Url, TokenError> {
        let refuse = |why: &str| TokenError::RealmRefused {
            realm: realm.chars().take(200).collect(),
            why: why.to_owned(),
        };
        let uri = Url::parse(realm).map_err(|_| refuse("it is not a URL"))?;
        let scheme = uri.scheme();
        if scheme != "http" && scheme != "https" {
            return Err(refuse("its scheme is not http or https"));
        }
        let authority = uri.authority();
        if authority.contains('@') {
            return Err(refuse("it holds user information"));
        }
        if let Some(allowed) = &self.configured {
            let same = allowed.scheme() == scheme
                && allowed.authority().eq_ignore_ascii_case(authority)
                && allowed.path() == uri.path();
            return if same {
                Ok(uri)
            } else {
                Err(refuse("it is not the configured upstream_token_realm"))
            };
        }
        if !uri.host().eq_ignore_ascii_case(self.upstream.host()) {
            return Err(refuse(
                "it is not on the upstream's host; name it with --upstream-token-realm to trust it",
            ));
        }
        if self.upstream.scheme() == "https" && scheme != "https" {
            return Err(refuse("the upstream is https but the realm is not"));
        }
        Ok(uri)
    }
}

/// The query of a token request (`GET realm?…`): `service` and each scope.
pub fn token_query(service: Option<&str>, scopes: &[Access]) -> String {
    let mut query = String::new();
    let mut add = |key: &str, value: &str| {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(key);
        query.push('=');
        query.push_str(&form_encode(value));
    };
    if let Some(service) = service {
        add("service", service);
    }
    for scope in scopes {
        add("scope", &scope.to_string());
    }
    query
}

/// `application/x-www-form-urlencoded` encoding of one value (the WHATWG set:
/// alphanumerics and `*-._` kept, space as `+`, the rest `%XX`).
pub fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A token the realm issued, ready for `Authorization` (`Bearer <token>`); its
/// [`Debug`] output never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(String);

impl BearerToken {
    /// The `Authorization` value: `Bearer <token>`.
    pub fn authorization(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
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

/// The token and how long it may be used from `now`, from the realm's JSON
/// answer `body`. Errors name `realm`, never the answer's text.
pub fn parse_answer(
    body: &[u8],
    realm: &str,
    now: SystemTime,
) -> Result<(BearerToken, Duration), TokenError> {
    let bad = |why: String| TokenError::BadAnswer {
        realm: realm.to_owned(),
        why,
    };
    if body.len() > MAX_TOKEN_RESPONSE_BYTES {
        return Err(bad(format!(
            "an answer longer than {MAX_TOKEN_RESPONSE_BYTES} bytes"
        )));
    }
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
    // What an HTTP field value may hold (visible ASCII, space, tab).
    if !token
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
    {
        return Err(bad(
            "a token with characters a header cannot hold".to_owned()
        ));
    }
    Ok((
        BearerToken(format!("Bearer {token}")),
        lifetime(answer.expires_in, answer.issued_at.as_deref(), now),
    ))
}

/// How long a token may be used from `now`: `expires_in` seconds (the default
/// when absent or not positive, at most [`MAX_TOKEN_LIFETIME`]), less the time
/// since `issued_at` when that is a past RFC 3339 time.
pub fn lifetime(expires_in: Option<f64>, issued_at: Option<&str>, now: SystemTime) -> Duration {
    let full = expires_in
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(DEFAULT_TOKEN_LIFETIME, |s| {
            Duration::from_secs_f64(s.min(MAX_TOKEN_LIFETIME.as_secs_f64()))
        });
    let age = issued_at
        .and_then(|text| humantime::parse_rfc3339_weak(text).ok())
        .and_then(|issued| now.duration_since(issued).ok())
        .unwrap_or_default();
    full.saturating_sub(age)
}

/// How long a token of `lifetime` is kept: its lifetime less a quarter of it,
/// at most [`MAX_REFRESH_MARGIN`].
pub fn keep_for(lifetime: Duration) -> Duration {
    let margin = (lifetime / 4).min(MAX_REFRESH_MARGIN);
    lifetime.saturating_sub(margin)
}

#[derive(Debug)]
struct Cached<V, T> {
    value: V,
    until: T,
}

/// Tokens `V` by key (realm, service and scope: [`token_key`]), each until a
/// time `T` of the host's clock, at most [`MAX_CACHED_TOKENS`].
#[derive(Debug)]
pub struct TokenCache<V, T> {
    tokens: HashMap<String, Cached<V, T>>,
}

impl<V, T> Default for TokenCache<V, T> {
    fn default() -> Self {
        TokenCache {
            tokens: HashMap::new(),
        }
    }
}

impl<V: Clone + PartialEq, T: Copy + Ord> TokenCache<V, T> {
    /// The token of `key`, unless it is past its time at `now`.
    pub fn get(&self, key: &str, now: T) -> Option<V> {
        self.tokens
            .get(key)
            .filter(|cached| cached.until > now)
            .map(|cached| cached.value.clone())
    }

    /// Keeps `value` for `key` until `until`; when full, the expired tokens go,
    /// then those expiring first.
    pub fn insert(&mut self, key: String, value: V, until: T, now: T) {
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
        self.tokens.insert(key, Cached { value, until });
    }

    /// Drops the token of `key` if it is still `value` (the upstream refused it).
    pub fn forget(&mut self, key: &str, value: &V) {
        if self.tokens.get(key).is_some_and(|c| &c.value == value) {
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
        let scope = |m: &str, p: &str| scope_key(&needed_access(m, p).unwrap());
        assert_eq!(scope("GET", "/v2/"), "");
        assert_eq!(scope("GET", "/v2/_catalog?n=100"), "registry:catalog:*");
        assert_eq!(
            scope("HEAD", "/v2/acme/web/manifests/v1"),
            "repository:acme/web:pull"
        );
        assert_eq!(
            scope("GET", "/v2/acme/web/tags/list?n=1000"),
            "repository:acme/web:pull"
        );
        assert_eq!(
            scope("PUT", "/v2/acme/web/manifests/v1"),
            "repository:acme/web:pull,push"
        );
        assert_eq!(
            scope("PATCH", "/v2/a/blobs/uploads/uuid-1?_state=x"),
            "repository:a:pull,push"
        );
        assert_eq!(
            scope("POST", "/v2/a/blobs/uploads/"),
            "repository:a:pull,push"
        );
        assert_eq!(
            scope(
                "POST",
                "/v2/a/blobs/uploads/?mount=sha256:00&from=other/img"
            ),
            "repository:a:pull,push repository:other/img:pull"
        );
        assert_eq!(
            scope("DELETE", "/v2/a/manifests/sha256:00"),
            "repository:a:delete"
        );
        assert_eq!(
            scope("DELETE", "/v2/a/blobs/uploads/u"),
            "repository:a:pull,push"
        );
        // A repository component named like an API word.
        assert_eq!(
            scope("GET", "/v2/x/manifests/y/manifests/latest"),
            "repository:x/manifests/y:pull"
        );
        for (method, path) in [
            ("GET", "/v3/a/manifests/x"),
            ("GET", "/v2/a/other/x"),
            ("GET", "/v2/UPPER/manifests/x"),
            ("OPTIONS", "/v2/a/manifests/x"),
            ("POST", "/v2/a/blobs/uploads/?mount=d&from=Bad..name"),
        ] {
            assert!(needed_access(method, path).is_err(), "{method} {path}");
        }
    }

    #[test]
    fn the_challenge_scope_wins_but_only_on_the_request_own_resources() {
        let needed = needed_access("DELETE", "/v2/a/manifests/sha256:00").unwrap();
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
        let rule = RealmRule::new("https://reg.example:5000", None).unwrap();
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
        let named =
            RealmRule::new("https://reg.example", Some("https://auth.example/token")).unwrap();
        assert!(named.check("https://auth.example/token?a=b").is_ok());
        assert!(named.check("https://auth.example/other").is_err());
        assert!(named.check("https://reg.example/token").is_err());
        assert!(RealmRule::new("http://x", Some("ftp://a/b")).is_err());
        assert!(RealmRule::new("http://x", Some("http://a/b?c")).is_err());
    }

    #[test]
    fn lifetimes_default_and_count_from_issued_at() {
        let now = SystemTime::now();
        assert_eq!(lifetime(None, None, now), DEFAULT_TOKEN_LIFETIME);
        assert_eq!(lifetime(Some(0.0), None, now), DEFAULT_TOKEN_LIFETIME);
        assert_eq!(lifetime(Some(300.0), None, now), Duration::from_secs(300));
        assert_eq!(lifetime(Some(1e12), None, now), MAX_TOKEN_LIFETIME);
        let issued = humantime::format_rfc3339(now - Duration::from_secs(100));
        let left = lifetime(Some(300.0), Some(&issued.to_string()), now);
        assert!(left <= Duration::from_secs(200) && left > Duration::from_secs(190));
        assert_eq!(
            lifetime(Some(60.0), Some("garbage"), now),
            DEFAULT_TOKEN_LIFETIME
        );
        assert_eq!(keep_for(Duration::from_secs(300)), Duration::from_secs(270));
        assert_eq!(keep_for(Duration::from_secs(60)), Duration::from_secs(45));
    }

    #[test]
    fn token_answers_are_read_and_never_shown() {
        let now = SystemTime::now();
        let (value, life) =
            parse_answer(br#"{"token":"abc.def","expires_in":120}"#, "realm", now).unwrap();
        assert_eq!(value.authorization(), "Bearer abc.def");
        assert_eq!(format!("{value:?}"), "BearerToken(<redacted>)");
        assert_eq!(life, Duration::from_secs(120));
        let (oauth, _) = parse_answer(br#"{"access_token":"xyz"}"#, "realm", now).unwrap();
        assert_eq!(oauth.authorization(), "Bearer xyz");
        let secret = "s3cr3t-token-value";
        for body in [
            format!(r#"{{"token":"{secret}","expires_in":"{secret}"}}"#),
            format!(r#"{{"token":"{secret}\n"}}"#),
            format!(r#"{{"nothing":"{secret}"}}"#),
        ] {
            let shown = parse_answer(body.as_bytes(), "realm", now)
                .unwrap_err()
                .to_string();
            assert!(!shown.contains(secret), "{shown}");
        }
        let huge = format!(r#"{{"token":"{}"}}"#, "a".repeat(MAX_TOKEN_BYTES + 1));
        assert!(parse_answer(huge.as_bytes(), "realm", now).is_err());
    }

    #[test]
    fn the_cache_is_bounded_and_drops_what_expires_first() {
        let now = 1_000u64;
        let mut cache: TokenCache<String, u64> = TokenCache::default();
        let value = |n: usize| format!("Bearer {n}");
        for n in 0..MAX_CACHED_TOKENS + 10 {
            cache.insert(format!("k{n}"), value(n), now + 100 + n as u64, now);
        }
        assert_eq!(cache.len(), MAX_CACHED_TOKENS);
        assert_eq!(cache.get("k0", now), None);
        assert_eq!(cache.get("k9", now), None);
        assert_eq!(cache.get("k10", now), Some(value(10)));
        assert_eq!(cache.get("k10", now + 200), None);
        cache.forget("k10", &value(11));
        assert!(cache.get("k10", now).is_some());
        cache.forget("k10", &value(10));
        assert!(cache.get("k10", now).is_none());
    }

    #[test]
    fn urls_and_token_queries() {
        let url = Url::parse("https://[::1]:8443/token?a=b").unwrap();
        assert_eq!(
            (
                url.scheme(),
                url.host(),
                url.port(),
                url.path(),
                url.query()
            ),
            ("https", "[::1]", Some(8443), "/token", Some("a=b"))
        );
        assert_eq!(url.path_and_query(), "/token?a=b");
        let bare = Url::parse("HTTP://reg.example").unwrap();
        assert_eq!(
            (bare.scheme(), bare.path(), bare.port()),
            ("http", "/", None)
        );
        for bad in [
            "reg.example/token",
            "http:///x",
            "http://a b/",
            "http://a/#x",
            "1x://a",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
        let scopes = parse_scope("repository:a/b:pull,push").unwrap();
        assert_eq!(
            token_query(Some("my registry"), &scopes),
            "service=my+registry&scope=repository%3Aa%2Fb%3Apull%2Cpush"
        );
        assert_eq!(token_query(None, &[]), "");
    }
}
