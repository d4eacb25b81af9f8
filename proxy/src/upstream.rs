//! The upstream registry: forwarding requests to it, and reading the facts a
//! decision needs (the digest a tag points at, the tags of an image).
//!
//! # The proxy's own credentials
//!
//! With `--upstream-user`, every request the proxy makes (facts and forwards)
//! carries the proxy's credentials, never the client's. At first that is HTTP
//! Basic, which ECR-style registries take as it is. When the upstream answers
//! `401` with a `Bearer` challenge instead, the proxy gets a token from the
//! challenge's realm (see [`crate::bearer`]), remembers the realm, and from then
//! on sends each request with a token scoped to it, from the cache when it can.
//!
//! A request without a body (facts, pulls, deletes, starting an upload) can be
//! sent again, so a `401` to it is answered once: a token is fetched (again, if
//! the one sent was refused) and the request repeated. A request with a body
//! (an upload's chunks, a manifest) cannot: the body is gone once sent. So it
//! goes out with a token from the start: while the upstream's way of
//! authenticating is unknown, the proxy first sends `GET /v2/` (the probe) to
//! learn it; a `401` to the body itself then only drops the refused token and
//! goes back to the client as the proxy's own 503, and its next try gets a
//! fresh token.
//!
//! Without credentials of its own (`--auth none`, pass-through) the proxy sends
//! the client's `Authorization` as it is, with forwards and with the facts read
//! for that client's request; it does no token flow of its own.

use crate::bearer::{
    self, BearerChallenge, Credentials, RealmRule, Sent, TokenError, TokenRequest,
};
use crate::listing::{Answer, ListingError, RegistryClient};
use axum::body::Body;
use base64::Engine as _;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
use std::time::Duration;

use taglock_gateway::facts::MAX_FACT_BODY;
use taglock_gateway::{Answer as FactAnswer, Lookup, LookupId};

/// How to reach the upstream registry.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// Base URL, e.g. `http://127.0.0.1:5000` (a path prefix is kept).
    pub url: String,
    /// The credentials the proxy uses upstream (never the client's own): HTTP
    /// Basic, or to get bearer tokens when the upstream asks for them.
    pub credentials: Option<(String, String)>,
    /// The one token realm, besides those on the upstream's host, the proxy may
    /// send its credentials to.
    pub token_realm: Option<String>,
    /// How tokens are asked for.
    pub token_request: TokenRequest,
    /// Bound on each fact-finding request (and on connecting).
    pub timeout: Duration,
    /// Bound on a forwarded request, from sending it to the response headers
    /// (it includes streaming the request body, so it must fit a large blob).
    pub forward_timeout: Duration,
}

/// Why the upstream could not answer.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The configured URL is not an `http://` or `https://` URL.
    #[error("invalid upstream URL `{url}`: {why}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The TLS setup failed (no system roots).
    #[error("cannot set up TLS to the upstream: {0}")]
    Tls(String),
    /// Connecting or exchanging the request failed.
    #[error("upstream unreachable: {0}")]
    Unreachable(String),
    /// The connection to the upstream could not be opened, so nothing of the
    /// request reached it.
    #[error("cannot connect to the upstream: {0}")]
    Connect(String),
    /// The upstream did not answer in time.
    #[error("upstream did not answer within {0:?}")]
    Timeout(Duration),
    /// The upstream answered, but not as the OCI Distribution API says it should.
    #[error("unexpected upstream answer to {what}: {status}{detail}")]
    Unexpected {
        /// What was asked.
        what: String,
        /// The HTTP status received.
        status: StatusCode,
        /// More about it (e.g. a missing header), with a leading separator.
        detail: String,
    },
    /// A bearer token was needed and could not be had.
    #[error("{0}")]
    Token(#[from] TokenError),
}

/// The HTTP client the proxy talks to the upstream (and its token realm) with.
pub(crate) type HttpClient = Client<HttpsConnector<HttpConnector>, Body>;

/// A client for one upstream registry: cheap to clone, shared by all requests.
#[derive(Clone, Debug)]
pub struct Upstream {
    client: HttpClient,
    scheme: Scheme,
    authority: Authority,
    /// The URL's path without its trailing `/` (usually empty).
    prefix: String,
    /// The proxy's own credentials, and the tokens they got.
    credentials: Option<Arc<Credentials>>,
    timeout: Duration,
    forward_timeout: Duration,
}

impl Upstream {
    /// A client for `config.url`.
    pub fn new(config: &UpstreamConfig) -> Result<Upstream, UpstreamError> {
        let invalid = |why: &str| UpstreamError::InvalidUrl {
            url: config.url.clone(),
            why: why.to_owned(),
        };
        let uri: Uri = config
            .url
            .parse()
            .map_err(|err: http::uri::InvalidUri| invalid(&err.to_string()))?;
        let scheme = uri
            .scheme()
            .cloned()
            .ok_or_else(|| invalid("it needs a scheme: http:// or https://"))?;
        if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
            return Err(invalid("the scheme must be http or https"));
        }
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| invalid("it needs a host"))?;
        if uri.query().is_some() {
            return Err(invalid("it may not have a query"));
        }
        let prefix = uri.path().trim_end_matches('/').to_owned();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(config.timeout));
        http.set_nodelay(true);
        let tls = if scheme == Scheme::HTTPS {
            hyper_rustls::HttpsConnectorBuilder::new()
                .with_native_roots()
                .map_err(|err| UpstreamError::Tls(err.to_string()))?
        } else {
            // Plain HTTP to the upstream needs no trusted roots on the machine; an
            // `https` token realm does, when the machine has them.
            match hyper_rustls::HttpsConnectorBuilder::new().with_native_roots() {
                Ok(builder) => builder,
                Err(_) => {
                    hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(plain_http_tls()?)
                }
            }
        };
        let https = tls.https_or_http().enable_http1().wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        let rule =
            RealmRule::new(&uri.to_string(), config.token_realm.as_deref()).map_err(|why| {
                UpstreamError::InvalidUrl {
                    url: config.token_realm.clone().unwrap_or_default(),
                    why: format!("the upstream token realm {why}"),
                }
            })?;
        let credentials = match &config.credentials {
            Some((user, password)) => {
                let basic = basic_authorization(user, password).map_err(|_| {
                    invalid("the upstream credentials hold characters a header cannot")
                })?;
                Some(Arc::new(Credentials::new(
                    user.clone(),
                    password.clone(),
                    basic,
                    rule,
                    config.token_request,
                )))
            }
            None => None,
        };
        Ok(Upstream {
            client,
            scheme,
            authority,
            prefix,
            credentials,
            timeout: config.timeout,
            forward_timeout: config.forward_timeout,
        })
    }

    /// The upstream's base URL as configured, for messages.
    pub fn base_url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.authority, self.prefix)
    }

    /// Forwards a client's request: same method, path, query, headers and body,
    /// with the upstream's `Host`, the proxy's own upstream credentials (or, when
    /// `client_authorization` is given, the client's, in pass-through mode), and no
    /// hop-by-hop or `X-Taglock-*` headers.
    pub async fn forward(
        &self,
        request: Request<Body>,
        client_authorization: Option<HeaderValue>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let (mut parts, body) = request.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", PathAndQuery::as_str)
            .to_owned();
        parts.uri = self.uri(&path)?;
        strip_hop_by_hop(&mut parts.headers);
        parts.headers.remove(header::AUTHORIZATION);
        parts.headers.remove(header::HOST);
        parts.headers.insert(header::HOST, self.host_header()?);
        // No timeout here: a write must be seen through to its end (the caller
        // bounds its own wait with `forward_timeout`, see `handler.rs`).
        let Some(credentials) = &self.credentials else {
            if let Some(auth) = client_authorization {
                parts.headers.insert(header::AUTHORIZATION, auth);
            }
            return self.dispatch(Request::from_parts(parts, body), None).await;
        };
        if hyper::body::Body::size_hint(&body).exact() == Some(0) {
            // No body: the request can be sent again after a 401.
            let (method, uri, version, headers) =
                (parts.method, parts.uri, parts.version, parts.headers);
            let build = |auth: HeaderValue| {
                let mut request = Request::new(Body::empty());
                *request.method_mut() = method.clone();
                *request.uri_mut() = uri.clone();
                *request.version_mut() = version;
                *request.headers_mut() = headers.clone();
                request.headers_mut().insert(header::AUTHORIZATION, auth);
                Ok(request)
            };
            return self
                .send_authorized(credentials, &method, &path, &build, None)
                .await;
        }
        if credentials.is_unknown() {
            // Learn how the upstream authenticates before the body goes out.
            drop(self.fact(Method::GET, "/v2/", &[], None).await?);
        }
        let (auth, sent) = credentials
            .authorization(&self.client, self.timeout, &parts.method, &path)
            .await?;
        parts.headers.insert(header::AUTHORIZATION, auth);
        let response = self
            .dispatch(Request::from_parts(parts, body), None)
            .await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            let challenge = challenge_of(&response).ok().flatten();
            credentials.refused(challenge.as_ref(), &sent);
        } else if matches!(sent, Sent::Basic) {
            credentials.basic_worked();
        }
        Ok(response)
    }

    /// Sends a request without a body (built by `build` with an `Authorization`)
    /// with the proxy's credentials; a `401` with a `Bearer` challenge gets a
    /// token and one more try.
    async fn send_authorized(
        &self,
        credentials: &Credentials,
        method: &Method,
        path: &str,
        build: &(dyn Fn(HeaderValue) -> Result<Request<Body>, UpstreamError> + Send + Sync),
        timeout: Option<Duration>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let (auth, sent) = credentials
            .authorization(&self.client, self.timeout, method, path)
            .await?;
        let response = self.dispatch(build(auth)?, timeout).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            if matches!(sent, Sent::Basic) {
                credentials.basic_worked();
            }
            return Ok(response);
        }
        let Some(challenge) = challenge_of(&response)? else {
            // A Basic challenge: the credentials were refused as they are.
            return Ok(response);
        };
        drop(response);
        let (auth, sent) = credentials
            .after_challenge(&self.client, self.timeout, &challenge, method, path, &sent)
            .await?;
        let response = self.dispatch(build(auth)?, timeout).await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            credentials.refused(None, &sent);
        }
        Ok(response)
    }

    /// Sends `request`, within `timeout` when given.
    async fn dispatch(
        &self,
        request: Request<Body>,
        timeout: Option<Duration>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        match timeout {
            Some(timeout) => self.send(request, timeout).await,
            None => self
                .client
                .request(request)
                .await
                .map_err(|err| client_error(&err)),
        }
    }

    /// How long a client waits for a forwarded request's answer.
    pub fn forward_timeout(&self) -> Duration {
        self.forward_timeout
    }

    /// Sends one of the gateway's look-ups with the proxy's credentials (or, in
    /// pass-through mode, the client's `pass`) and the fact timeout, and reads
    /// the whole answer (at most [`MAX_FACT_BODY`]).
    pub async fn lookup(
        &self,
        lookup: Lookup,
        pass: Option<HeaderValue>,
    ) -> (LookupId, FactAnswer) {
        let answer = match self.lookup_answer(&lookup, pass).await {
            Ok(answer) => answer,
            Err(err) => FactAnswer::Failed(err.to_string()),
        };
        (lookup.id, answer)
    }

    async fn lookup_answer(
        &self,
        lookup: &Lookup,
        pass: Option<HeaderValue>,
    ) -> Result<FactAnswer, UpstreamError> {
        let method = Method::from_bytes(lookup.method.as_bytes()).map_err(|err| {
            UpstreamError::Unreachable(format!("cannot send {}: {err}", lookup.method))
        })?;
        let response = self.fact(method, &lookup.path, lookup.accept, pass).await?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect();
        let body = self.read_body(response, &lookup.path).await?.to_vec();
        Ok(FactAnswer::Reply {
            status,
            headers,
            body,
        })
    }

    /// Whether the proxy sends credentials of its own.
    pub fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }

    /// `GET /v2/` with the proxy's credentials: any answer below 500 means the
    /// upstream is up (401 included: the registry answers, and forwards decide).
    pub async fn ping(&self) -> Result<StatusCode, UpstreamError> {
        let response = self.fact(Method::GET, "/v2/", &[], None).await?;
        let status = response.status();
        if status.is_server_error() {
            return Err(unexpected("GET", "/v2/", status));
        }
        Ok(status)
    }

    /// Turns an absolute `Location` pointing at the upstream into a path, so the
    /// client's next request (an upload session's `PATCH`/`PUT`) comes back here.
    pub fn relative_location(&self, location: &str) -> Option<String> {
        let uri: Uri = location.parse().ok()?;
        let authority = uri.authority()?;
        if authority != &self.authority {
            return None;
        }
        let path = uri.path_and_query().map_or("/", PathAndQuery::as_str);
        Some(path.strip_prefix(&self.prefix).unwrap_or(path).to_owned())
    }

    async fn read_body(
        &self,
        response: Response<Incoming>,
        path: &str,
    ) -> Result<Bytes, UpstreamError> {
        let read = Limited::new(response.into_body(), MAX_FACT_BODY).collect();
        match tokio::time::timeout(self.timeout, read).await {
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
            Ok(Err(err)) => Err(UpstreamError::Unreachable(format!(
                "reading GET {path}: {err}"
            ))),
            Err(_) => Err(UpstreamError::Timeout(self.timeout)),
        }
    }

    /// A request of the proxy's own, with its credentials (or `pass`, the
    /// client's, without any) and the fact timeout.
    async fn fact(
        &self,
        method: Method,
        path: &str,
        accept: &[&str],
        pass: Option<HeaderValue>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let uri = self.uri(path)?;
        let host = self.host_header()?;
        let build = |auth: Option<HeaderValue>| {
            let mut request = Request::builder()
                .method(method.clone())
                .uri(uri.clone())
                .header(header::HOST, host.clone());
            for media_type in accept {
                request = request.header(header::ACCEPT, *media_type);
            }
            if let Some(auth) = auth {
                request = request.header(header::AUTHORIZATION, auth);
            }
            request.body(Body::empty()).map_err(|err| {
                UpstreamError::Unreachable(format!("cannot build a request for {path}: {err}"))
            })
        };
        match &self.credentials {
            Some(credentials) => {
                let build = |auth: HeaderValue| build(Some(auth));
                self.send_authorized(credentials, &method, path, &build, Some(self.timeout))
                    .await
            }
            None => self.send(build(pass)?, self.timeout).await,
        }
    }

    async fn send(
        &self,
        request: Request<Body>,
        timeout: Duration,
    ) -> Result<Response<Incoming>, UpstreamError> {
        match tokio::time::timeout(timeout, self.client.request(request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(err)) => Err(client_error(&err)),
            Err(_) => Err(UpstreamError::Timeout(timeout)),
        }
    }

    fn uri(&self, path_and_query: &str) -> Result<Uri, UpstreamError> {
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(format!("{}{path_and_query}", self.prefix))
            .build()
            .map_err(|err| UpstreamError::InvalidUrl {
                url: format!("{}{path_and_query}", self.base_url()),
                why: err.to_string(),
            })
    }

    fn host_header(&self) -> Result<HeaderValue, UpstreamError> {
        HeaderValue::from_str(self.authority.as_str()).map_err(|err| UpstreamError::InvalidUrl {
            url: self.base_url(),
            why: err.to_string(),
        })
    }
}

impl RegistryClient for Upstream {
    async fn get(&self, path_and_query: &str) -> Result<Answer, ListingError> {
        let url = || format!("{}{path_and_query}", self.base_url());
        let failed = |err: UpstreamError| match err {
            UpstreamError::Timeout(after) => ListingError::Timeout { url: url(), after },
            UpstreamError::Token(err) => ListingError::Answer {
                url: url(),
                why: err.to_string(),
            },
            other => ListingError::Unreachable {
                url: url(),
                why: other.to_string(),
            },
        };
        let response = self
            .fact(Method::GET, path_and_query, &[], None)
            .await
            .map_err(failed)?;
        let text = |name: header::HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let status = response.status();
        let link = text(header::LINK);
        let challenge = text(header::WWW_AUTHENTICATE);
        let body = self
            .read_body(response, path_and_query)
            .await
            .map_err(failed)?;
        Ok(Answer {
            status,
            link,
            challenge,
            body,
        })
    }

    fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base_url())
    }

    fn has_credentials(&self) -> bool {
        Upstream::has_credentials(self)
    }
}

/// A TLS configuration for a connector that only ever speaks plain HTTP.
fn plain_http_tls() -> Result<rustls::ClientConfig, UpstreamError> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| UpstreamError::Tls(err.to_string()))?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth())
}

/// The error of an exchange that failed: [`UpstreamError::Connect`] when no
/// connection could be opened (nothing reached the upstream), else
/// [`UpstreamError::Unreachable`].
fn client_error(err: &hyper_util::client::legacy::Error) -> UpstreamError {
    if err.is_connect() {
        UpstreamError::Connect(error_chain(err))
    } else {
        UpstreamError::Unreachable(error_chain(err))
    }
}

/// `Basic base64(user:password)`, marked sensitive so it is never logged.
pub fn basic_authorization(
    user: &str,
    password: &str,
) -> Result<HeaderValue, http::header::InvalidHeaderValue> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))?;
    value.set_sensitive(true);
    Ok(value)
}

/// Removes the headers that describe one connection, not the message (RFC 9110 §7.6.1),
/// and taglock's trusted identity headers, which never go upstream.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    let taglock: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("x-taglock-"))
        .cloned()
        .collect();
    for name in taglock {
        headers.remove(name);
    }
}

fn unexpected(method: &str, path: &str, status: StatusCode) -> UpstreamError {
    let detail = match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            ": check the proxy's upstream credentials".to_owned()
        }
        _ => String::new(),
    };
    UpstreamError::Unexpected {
        what: format!("{method} {path}"),
        status,
        detail,
    }
}

/// The `Bearer` challenge of a `401`, if it has one; one that cannot be read
/// is an error.
fn challenge_of(response: &Response<Incoming>) -> Result<Option<BearerChallenge>, TokenError> {
    let mut found = None;
    for value in response.headers().get_all(header::WWW_AUTHENTICATE) {
        let text = value.to_str().map_err(|_| {
            TokenError::Challenge(bearer::ChallengeError::Malformed {
                at: 0,
                why: "a header value that is not text",
            })
        })?;
        if let Some(challenge) = bearer::bearer_challenge(text)? {
            if found.is_some() {
                return Err(TokenError::Challenge(bearer::ChallengeError::SeveralBearer));
            }
            found = Some(challenge);
        }
    }
    Ok(found)
}

/// An error and its sources on one line (hyper's own message is terse).
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(url: &str) -> Result<Upstream, UpstreamError> {
        Upstream::new(&UpstreamConfig {
            url: url.into(),
            credentials: None,
            token_realm: None,
            token_request: TokenRequest::Get,
            timeout: Duration::from_secs(1),
            forward_timeout: Duration::from_secs(1),
        })
    }

    #[test]
    fn urls_are_checked() {
        assert!(matches!(
            upstream("127.0.0.1:5000"),
            Err(UpstreamError::InvalidUrl { .. })
        ));
        assert!(matches!(
            upstream("ftp://x"),
            Err(UpstreamError::InvalidUrl { .. })
        ));
        assert!(matches!(
            upstream("http://x/?a=b"),
            Err(UpstreamError::InvalidUrl { .. })
        ));
        let up = upstream("http://127.0.0.1:5000/").unwrap();
        assert_eq!(up.base_url(), "http://127.0.0.1:5000");
        let prefixed = upstream("https://registry.example/mirror/").unwrap();
        assert_eq!(prefixed.base_url(), "https://registry.example/mirror");
        assert_eq!(
            prefixed.uri("/v2/").unwrap().to_string(),
            "https://registry.example/mirror/v2/"
        );
    }

    #[test]
    fn locations_at_the_upstream_become_paths() {
        let up = upstream("http://127.0.0.1:5000").unwrap();
        assert_eq!(
            up.relative_location("http://127.0.0.1:5000/v2/a/blobs/uploads/1?_state=x")
                .as_deref(),
            Some("/v2/a/blobs/uploads/1?_state=x")
        );
        assert_eq!(up.relative_location("/v2/a/blobs/uploads/1"), None);
        assert_eq!(up.relative_location("http://elsewhere/v2/a"), None);
    }

    #[test]
    fn hop_by_hop_and_identity_headers_never_go_upstream() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-custom"),
        );
        headers.insert("x-custom", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("x-taglock-user", HeaderValue::from_static("root"));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key(header::CONTENT_TYPE));
    }

    #[tokio::test]
    async fn an_unreachable_registry_is_a_listing_error_naming_it() {
        // Port 9 on loopback: nothing listens there in a test environment.
        let up = upstream("http://127.0.0.1:9").unwrap();
        let shown = crate::listing::catalog(&up).await.unwrap_err().to_string();
        assert!(
            shown.starts_with("cannot reach http://127.0.0.1:9/v2/_catalog?n=100: "),
            "{shown}"
        );
        assert!(shown.contains("Connection refused"), "{shown}");
    }

    /// What the mock registry saw: method, path and query, `Authorization`,
    /// body length.
    type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, String, String, usize)>>>;

    /// A registry on loopback that wants `Bearer good` (from its realm
    /// `/token`, for the proxy's Basic credentials), challenging with `scope`.
    async fn mock_registry(scope: &'static str) -> (String, Seen) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen: Seen = Seen::default();
        let realm = format!("{url}/token");
        let record = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let mut raw = Vec::new();
                let mut buf = [0u8; 4096];
                let head_end = loop {
                    if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                        break at + 4;
                    }
                    let n = stream.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        break 0;
                    }
                    raw.extend_from_slice(&buf[..n]);
                };
                if head_end == 0 {
                    continue;
                }
                let head = String::from_utf8_lossy(&raw[..head_end]).to_lowercase();
                let header = |name: &str| {
                    head.lines()
                        .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_owned))
                        .unwrap_or_default()
                };
                let length: usize = header("content-length").parse().unwrap_or(0);
                while raw.len() < head_end + length {
                    let n = stream.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    raw.extend_from_slice(&buf[..n]);
                }
                let mut words = head.split(' ');
                let method = words.next().unwrap_or_default().to_uppercase();
                let target = words.next().unwrap_or_default().to_owned();
                let auth = header("authorization");
                record
                    .lock()
                    .unwrap()
                    .push((method, target.clone(), auth.clone(), length));
                let (status, extra, body) = if target.starts_with("/token") {
                    if auth == format!("basic {}", "cdpwdw==") {
                        ("200 OK", String::new(), r#"{"token":"good"}"#)
                    } else {
                        ("401 Unauthorized", String::new(), "{}")
                    }
                } else if auth == "bearer good" {
                    ("201 Created", String::new(), "")
                } else {
                    let scope = if scope.is_empty() {
                        String::new()
                    } else {
                        format!(",scope=\"{scope}\"")
                    };
                    (
                        "401 Unauthorized",
                        format!(
                            "WWW-Authenticate: Bearer realm=\"{realm}\",service=\"mock\"{scope}\r\n"
                        ),
                        "",
                    )
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        (url, seen)
    }

    fn with_credentials(url: &str, user: &str, password: &str) -> Upstream {
        Upstream::new(&UpstreamConfig {
            url: url.into(),
            credentials: Some((user.into(), password.into())),
            token_realm: None,
            token_request: TokenRequest::Get,
            timeout: Duration::from_secs(5),
            forward_timeout: Duration::from_secs(5),
        })
        .unwrap()
    }

    fn put_blob(body: &'static str) -> Request<Body> {
        Request::put("/v2/acme/web/blobs/uploads/u1?digest=sha256:00")
            .header(header::CONTENT_LENGTH, body.len())
            .body(Body::from(body))
            .unwrap()
    }

    #[tokio::test]
    async fn a_body_waits_for_a_token_and_tokens_are_cached() {
        let (url, seen) = mock_registry("").await;
        // "p:pw" is cDpwdw== in Basic.
        let up = with_credentials(&url, "p", "pw");
        let answer = up.forward(put_blob("abc"), None).await.unwrap();
        assert_eq!(answer.status(), StatusCode::CREATED);
        let answer = up.forward(put_blob("defg"), None).await.unwrap();
        assert_eq!(answer.status(), StatusCode::CREATED);
        let seen = seen.lock().unwrap().clone();
        let summary: Vec<(&str, &str, usize)> = seen
            .iter()
            .map(|(m, _, a, n)| (m.as_str(), a.split(' ').next().unwrap_or(""), *n))
            .collect();
        // The probe (Basic, refused; then with its own unscoped token), one
        // token for the push, then each body once, with it.
        assert_eq!(
            summary,
            [
                ("GET", "basic", 0),
                ("GET", "basic", 0),
                ("GET", "bearer", 0),
                ("GET", "basic", 0),
                ("PUT", "bearer", 3),
                ("PUT", "bearer", 4)
            ],
            "{seen:?}"
        );
        assert_eq!(seen[0].1, "/v2/");
        assert_eq!(seen[1].1, "/token?service=mock");
        assert_eq!(
            seen[3].1,
            "/token?service=mock&scope=repository%3aacme%2fweb%3apull%2cpush"
        );
    }

    #[tokio::test]
    async fn realms_and_scopes_the_proxy_does_not_trust_get_no_password() {
        let (url, seen) = mock_registry("repository:other/secret:pull").await;
        let up = with_credentials(&url, "p", "pw");
        let err = up
            .fact(Method::HEAD, "/v2/acme/web/manifests/v1", &[], None)
            .await
            .unwrap_err();
        assert!(
            matches!(err, UpstreamError::Token(TokenError::ScopeRefused { .. })),
            "{err}"
        );
        assert!(
            seen.lock()
                .unwrap()
                .iter()
                .all(|(_, t, _, _)| !t.starts_with("/token")),
            "a token was asked for another repository"
        );

        // The upstream on `localhost`, the realm it names on 127.0.0.1: another host.
        let (url, seen) = mock_registry("").await;
        let up = with_credentials(&url.replace("127.0.0.1", "localhost"), "p", "pw");
        let err = up.ping().await.unwrap_err();
        assert!(
            matches!(err, UpstreamError::Token(TokenError::RealmRefused { .. })),
            "{err}"
        );
        assert!(
            seen.lock()
                .unwrap()
                .iter()
                .all(|(_, t, _, _)| !t.starts_with("/token")),
            "the password went to another host's realm"
        );

        // Wrong credentials: the realm refuses them (GET, then the OAuth2 form),
        // and the error says so without the password.
        let (url, _) = mock_registry("").await;
        let up = with_credentials(&url, "p", "wrong-password");
        let shown = up.ping().await.unwrap_err().to_string();
        assert!(shown.contains("refused taglock's credentials"), "{shown}");
        assert!(!shown.contains("wrong-password"), "{shown}");
    }

    #[test]
    fn basic_credentials() {
        let value = basic_authorization("alice", "s3cret").unwrap();
        assert_eq!(value.to_str().unwrap(), "Basic YWxpY2U6czNjcmV0");
        assert!(value.is_sensitive());
    }
}
