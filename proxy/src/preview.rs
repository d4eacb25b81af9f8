//! `taglock preview`: which tags already in a live registry a policy would
//! protect, and by which rule — before the policy is switched on.
//!
//! Three parts, each replaceable on its own:
//! - [`RegistryClient`]: one `GET` of a registry path (the HTTP part);
//!   [`HttpRegistry`] implements it with hyper-util's client, over `http://` or
//!   `https://`, with optional Basic credentials and a per-request timeout.
//! - [`walk`]: the catalog (or the named images) and each image's tags, following
//!   `Link: <…>; rel="next"` pages, at most `concurrency` images at a time.
//! - [`Report::build`]: a pure function from each image's tags and the policy's
//!   [`TagTest`] answers to the report. The core decides; this only counts.

use base64::Engine as _;
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use http::header::{self, HeaderValue};
use http::uri::{Authority, Scheme};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use policy_core::{TagTest, TagVerdict, names};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How many repositories one catalog page asks for.
pub const CATALOG_PAGE: usize = 100;
/// How many tags one tag-list page asks for.
pub const TAG_PAGE: usize = 1000;
/// The most one response body may hold.
const MAX_BODY: usize = 16 << 20;
/// The most pages one listing may take (a registry whose `Link` never ends).
const MAX_PAGES: usize = 100_000;

/// Why the preview could not walk the registry.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    /// The registry URL is not an `http://` or `https://` URL.
    #[error("invalid registry URL `{url}`: {why}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// TLS could not be set up (no trusted roots on this machine).
    #[error("cannot set up TLS for {url}: {why}")]
    Tls {
        /// The registry URL.
        url: String,
        /// Why.
        why: String,
    },
    /// Connecting, sending or reading failed.
    #[error("cannot reach {url}: {why}")]
    Unreachable {
        /// The URL asked.
        url: String,
        /// Why, as the network stack says it.
        why: String,
    },
    /// No answer within the per-request timeout.
    #[error("{url} did not answer within {} s", after.as_secs_f64())]
    Timeout {
        /// The URL asked.
        url: String,
        /// The timeout.
        after: Duration,
    },
    /// An image name that is not one (checked before it is put in a URL).
    #[error("invalid image name `{image}`: {why}")]
    InvalidImage {
        /// The name as given.
        image: String,
        /// What is wrong with it.
        why: String,
    },
    /// An answer the preview cannot use (an error status, a body that is not the
    /// expected JSON, a `Link` out of `/v2/`); `why` says what and what to do.
    #[error("GET {url}: {why}")]
    Answer {
        /// The URL asked.
        url: String,
        /// What was wrong with the answer.
        why: String,
    },
}

/// One answer of the registry, read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// The `Link` header, if any.
    pub link: Option<String>,
    /// The `WWW-Authenticate` header, if any (what a 401 asks for).
    pub challenge: Option<String>,
    /// The body.
    pub body: Bytes,
}

/// One `GET` of a registry path: the only thing [`walk`] needs from HTTP.
pub trait RegistryClient {
    /// `GET path_and_query` (e.g. `/v2/_catalog?n=100`) and the whole answer; a
    /// transport failure or timeout is an error, any HTTP status is an answer.
    fn get(&self, path_and_query: &str) -> impl Future<Output = Result<Answer, PreviewError>>;

    /// The full URL of a path, for messages.
    fn url(&self, path_and_query: &str) -> String;

    /// Whether requests carry credentials (for the advice a 401 gets).
    fn has_credentials(&self) -> bool;
}

/// A registry over HTTP(S), with hyper-util's pooled client.
#[derive(Debug, Clone)]
pub struct HttpRegistry {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    scheme: Scheme,
    authority: Authority,
    /// The URL's path without its trailing `/` (usually empty).
    prefix: String,
    authorization: Option<HeaderValue>,
    timeout: Duration,
}

impl HttpRegistry {
    /// A client for the registry at `url` (`http://host:port` or `https://…`; a path
    /// prefix is kept), sending `credentials` as HTTP Basic, bounding each request
    /// (connecting, answering and reading the body) by `timeout`.
    pub fn new(
        url: &str,
        credentials: Option<(&str, &str)>,
        timeout: Duration,
    ) -> Result<HttpRegistry, PreviewError> {
        let invalid = |why: &str| PreviewError::InvalidUrl {
            url: url.to_owned(),
            why: why.to_owned(),
        };
        let uri: Uri = url
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
        http.set_connect_timeout(Some(timeout));
        let tls = if scheme == Scheme::HTTPS {
            hyper_rustls::HttpsConnectorBuilder::new()
                .with_native_roots()
                .map_err(|err| PreviewError::Tls {
                    url: url.to_owned(),
                    why: err.to_string(),
                })?
        } else {
            // Plain HTTP: no TLS is ever spoken, so no trusted roots are needed.
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(plain_http_tls(url)?)
        };
        let connector = tls.https_or_http().enable_http1().wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        let authorization = credentials
            .map(|(user, password)| basic_authorization(user, password))
            .transpose()
            .map_err(|_| invalid("the credentials hold characters a header cannot"))?;
        Ok(HttpRegistry {
            client,
            scheme,
            authority,
            prefix,
            authorization,
            timeout,
        })
    }

    fn uri(&self, path_and_query: &str) -> Result<Uri, PreviewError> {
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(format!("{}{path_and_query}", self.prefix))
            .build()
            .map_err(|err| PreviewError::InvalidUrl {
                url: self.url(path_and_query),
                why: err.to_string(),
            })
    }

    async fn exchange(&self, path_and_query: &str) -> Result<Answer, PreviewError> {
        let url = self.url(path_and_query);
        let unreachable = |why: String| PreviewError::Unreachable {
            url: url.clone(),
            why,
        };
        let mut request = Request::get(self.uri(path_and_query)?)
            .header(header::ACCEPT, "application/json")
            .header(
                header::USER_AGENT,
                concat!("taglock-preview/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(authorization) = &self.authorization {
            request = request.header(header::AUTHORIZATION, authorization.clone());
        }
        let request = request
            .body(Empty::new())
            .map_err(|err| unreachable(err.to_string()))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|err| unreachable(error_chain(&err)))?;
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
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|err| unreachable(format!("reading the answer: {err}")))?
            .to_bytes();
        Ok(Answer {
            status,
            link,
            challenge,
            body,
        })
    }
}

impl RegistryClient for HttpRegistry {
    async fn get(&self, path_and_query: &str) -> Result<Answer, PreviewError> {
        match tokio::time::timeout(self.timeout, self.exchange(path_and_query)).await {
            Ok(answer) => answer,
            Err(_) => Err(PreviewError::Timeout {
                url: self.url(path_and_query),
                after: self.timeout,
            }),
        }
    }

    fn url(&self, path_and_query: &str) -> String {
        format!(
            "{}://{}{}{path_and_query}",
            self.scheme, self.authority, self.prefix
        )
    }

    fn has_credentials(&self) -> bool {
        self.authorization.is_some()
    }
}

/// A TLS configuration for a connector that only ever speaks plain HTTP.
fn plain_http_tls(url: &str) -> Result<rustls::ClientConfig, PreviewError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| PreviewError::Tls {
            url: url.to_owned(),
            why: err.to_string(),
        })?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth())
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

/// What a client error says once its sources are read: hyper-util's own message
/// is only "client error (Connect)", so the causes below it are joined instead
/// (`tcp connect error: Connection refused`), without the `(os error N)` suffix.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut messages = Vec::new();
    let mut source = err.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        let text = match text.rfind(" (os error ") {
            Some(cut) if text.ends_with(')') => text.get(..cut).unwrap_or(&text).to_owned(),
            _ => text,
        };
        messages.push(text);
        source = inner.source();
    }
    if messages.is_empty() {
        err.to_string()
    } else {
        messages.join(": ")
    }
}

/// The target of the `rel="next"` link of a `Link` header, as a path and query:
/// `</v2/_catalog?last=x&n=100>; rel="next"` gives `/v2/_catalog?last=x&n=100`.
/// An absolute target keeps only its path and query (the walk asks the registry it
/// was given, never another host). `None` when no link is `rel="next"`.
pub fn parse_next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|value| {
        let (target, params) = value.split_once(';')?;
        let is_next = params.split(';').any(|param| {
            let Some((name, rel)) = param.split_once('=') else {
                return false;
            };
            name.trim().eq_ignore_ascii_case("rel")
                && rel
                    .trim()
                    .trim_matches('"')
                    .split_ascii_whitespace()
                    .any(|kind| kind.eq_ignore_ascii_case("next"))
        });
        if !is_next {
            return None;
        }
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?.trim();
        match target.parse::<Uri>() {
            Ok(uri) if uri.authority().is_some() => {
                uri.path_and_query().map(|p| p.as_str().to_owned())
            }
            _ => Some(target.to_owned()),
        }
    })
}

/// What one listing page holds and where the next one is.
struct Page<T> {
    items: Vec<T>,
    next: Option<String>,
}

/// Follows a paginated listing from `first`, reading `items` out of each page and
/// telling `on_page` how many it has so far. `Ok(None)` when the first page is a
/// 404 (the thing listed does not exist).
async fn listing<C: RegistryClient>(
    client: &C,
    first: String,
    items: fn(&[u8]) -> Result<Vec<String>, serde_json::Error>,
    what: &str,
    on_page: &dyn Fn(usize),
) -> Result<Option<Vec<String>>, PreviewError> {
    let mut all = Vec::new();
    let mut next = Some(first);
    let mut pages = 0usize;
    while let Some(path) = next.take() {
        pages += 1;
        let page = match page(client, &path, items, what).await? {
            Some(page) => page,
            None if pages == 1 => return Ok(None),
            None => {
                return Err(PreviewError::Answer {
                    url: client.url(&path),
                    why: format!("404 Not Found for a later page of the {what}"),
                });
            }
        };
        all.extend(page.items);
        on_page(all.len());
        if let Some(target) = &page.next {
            let bad = if !target.starts_with("/v2/") {
                Some("outside /v2/")
            } else if *target == path {
                Some("back to the same page")
            } else if pages >= MAX_PAGES {
                Some("past the page limit")
            } else {
                None
            };
            if let Some(bad) = bad {
                return Err(PreviewError::Answer {
                    url: client.url(&path),
                    why: format!("the Link header points {bad}: <{target}>"),
                });
            }
        }
        next = page.next;
    }
    Ok(Some(all))
}

/// One page: its items and next link; `None` for a 404; an error for any other
/// status that is not 200, with advice for 401.
async fn page<C: RegistryClient>(
    client: &C,
    path: &str,
    items: fn(&[u8]) -> Result<Vec<String>, serde_json::Error>,
    what: &str,
) -> Result<Option<Page<String>>, PreviewError> {
    let answer = client.get(path).await?;
    let refuse = |why: String| PreviewError::Answer {
        url: client.url(path),
        why,
    };
    match answer.status {
        StatusCode::OK => {}
        StatusCode::NOT_FOUND => return Ok(None),
        StatusCode::UNAUTHORIZED => {
            let challenge = answer.challenge.unwrap_or_default();
            let why = if challenge
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("bearer")
            {
                format!(
                    "401 Unauthorized: the registry asks for a bearer token ({challenge}); \
                     preview logs in with HTTP Basic only"
                )
            } else if client.has_credentials() {
                "401 Unauthorized: the registry refused the credentials".to_owned()
            } else {
                "401 Unauthorized: the registry needs a login (--user and --password-file)"
                    .to_owned()
            };
            return Err(refuse(why));
        }
        status => {
            let body = String::from_utf8_lossy(&answer.body);
            let detail: String = body.trim().chars().take(200).collect();
            return Err(refuse(if detail.is_empty() {
                format!("{status}")
            } else {
                format!("{status}: {detail}")
            }));
        }
    }
    let items = items(&answer.body).map_err(|err| {
        refuse(format!(
            "the {what} is not the JSON the OCI API defines: {err}"
        ))
    })?;
    Ok(Some(Page {
        items,
        next: answer.link.as_deref().and_then(parse_next_link),
    }))
}

fn catalog_items(body: &[u8]) -> Result<Vec<String>, serde_json::Error> {
    #[derive(Deserialize)]
    struct Catalog {
        repositories: Option<Vec<String>>,
    }
    Ok(serde_json::from_slice::<Catalog>(body)?
        .repositories
        .unwrap_or_default())
}

fn tag_items(body: &[u8]) -> Result<Vec<String>, serde_json::Error> {
    #[derive(Deserialize)]
    struct Tags {
        tags: Option<Vec<String>>,
    }
    Ok(serde_json::from_slice::<Tags>(body)?
        .tags
        .unwrap_or_default())
}

/// Every repository the catalog lists, in its order (`GET /v2/_catalog`, paged).
pub async fn catalog<C: RegistryClient>(client: &C) -> Result<Vec<String>, PreviewError> {
    catalog_pages(client, &|_| {}).await
}

/// [`catalog`], telling `on_page` how many repositories it has after each page.
async fn catalog_pages<C: RegistryClient>(
    client: &C,
    on_page: &dyn Fn(usize),
) -> Result<Vec<String>, PreviewError> {
    let first = format!("/v2/_catalog?n={CATALOG_PAGE}");
    listing(client, first.clone(), catalog_items, "catalog", on_page)
        .await?
        .ok_or_else(|| PreviewError::Answer {
            url: client.url(&first),
            why: "404 Not Found: the registry offers no catalog; name the images with --image"
                .to_owned(),
        })
}

/// Every tag of `image`, sorted (registries list them in no fixed order); `None`
/// when the registry does not know the image. The name is checked first, so it
/// is safe in a URL.
pub async fn tags<C: RegistryClient>(
    client: &C,
    image: &str,
) -> Result<Option<Vec<String>>, PreviewError> {
    names::check_image_name(image).map_err(|err| PreviewError::InvalidImage {
        image: image.to_owned(),
        why: err.to_string(),
    })?;
    let mut tags = listing(
        client,
        format!("/v2/{image}/tags/list?n={TAG_PAGE}"),
        tag_items,
        "tag list",
        &|_| {},
    )
    .await?;
    if let Some(tags) = &mut tags {
        tags.sort_unstable();
        tags.dedup();
    }
    Ok(tags)
}

/// Which images to walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Images {
    /// Every image of the catalog; one the catalog lists but whose tag list
    /// cannot be had (deleted meanwhile, a malformed name) is reported with an error.
    Catalog,
    /// Only these; one the registry does not know stops the walk.
    Named(Vec<String>),
}

/// How far the walk has got, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress<'a> {
    /// A catalog page was read; `images` listed so far (the last one gives the total).
    Catalog {
        /// Images listed so far.
        images: usize,
    },
    /// The tags of one more image were read.
    Image {
        /// The image.
        image: &'a str,
        /// Images done, this one included.
        done: usize,
        /// Images to do in all.
        total: usize,
    },
}

/// The tags of one image, as the walk found them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageTags {
    /// The image name.
    pub image: String,
    /// Its tags, sorted.
    pub tags: Vec<String>,
    /// Why its tags could not be listed (catalog walks only).
    pub error: Option<String>,
}

/// Lists the tags of every image to walk, `concurrency` images at a time, in
/// catalog (or command-line) order. Transport failures, timeouts and error
/// answers stop the walk: a preview never reports a partial registry as whole.
pub async fn walk<C: RegistryClient>(
    client: &C,
    images: Images,
    concurrency: usize,
    progress: &dyn Fn(Progress<'_>),
) -> Result<Vec<ImageTags>, PreviewError> {
    let (names, from_catalog) = match images {
        Images::Catalog => {
            let on_page = |images| progress(Progress::Catalog { images });
            (catalog_pages(client, &on_page).await?, true)
        }
        Images::Named(names) => (names, false),
    };
    let total = names.len();
    let mut results = stream::iter(names)
        .map(|image| async move {
            let found = if from_catalog && names::check_image_name(&image).is_err() {
                Err("the catalog lists a name that is not a valid image name".to_owned())
            } else {
                match tags(client, &image).await? {
                    Some(tags) => Ok(tags),
                    None if from_catalog => Err(
                        "the catalog lists it, but its tag list answers 404 (deleted meanwhile?)"
                            .to_owned(),
                    ),
                    None => {
                        return Err(PreviewError::Answer {
                            url: client.url(&format!("/v2/{image}/tags/list")),
                            why: format!("404 Not Found: the registry has no image `{image}`"),
                        });
                    }
                }
            };
            let (tags, error) = match found {
                Ok(tags) => (tags, None),
                Err(error) => (Vec::new(), Some(error)),
            };
            Ok(ImageTags { image, tags, error })
        })
        .buffered(concurrency.max(1));
    let mut walked = Vec::with_capacity(total);
    while let Some(result) = results.next().await {
        let image = result?;
        progress(Progress::Image {
            image: &image.image,
            done: walked.len() + 1,
            total,
        });
        walked.push(image);
    }
    Ok(walked)
}

/// The preview: each image's tags with the policy's verdict, and per rule how
/// many tags it protects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Every image walked, in order.
    pub images: Vec<ImageReport>,
    /// Every rule of the policy, in document order, with the tags it protects.
    pub rules: Vec<RuleCount>,
    /// The rules that protect no existing tag, in document order.
    pub unused_rules: Vec<String>,
}

/// One image of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageReport {
    /// The image name.
    pub image: String,
    /// Why its tags could not be listed, when they could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its tags, sorted.
    pub tags: Vec<TagReport>,
}

/// One existing tag and the policy's verdict on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagReport {
    /// The tag.
    pub tag: String,
    /// Whether the policy makes it immutable.
    pub protected: bool,
    /// The rule that protects it (`None` under `protect: all` or when unprotected).
    pub rule: Option<String>,
    /// Why it is (not) protected: `rule`, `all`, `exception`, `referrer`,
    /// `no-rule`, `mode-none` or `invalid`.
    pub because: TagVerdict,
    /// Why the tag is malformed, when `because` is `invalid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How many existing tags one rule protects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleCount {
    /// The rule's name.
    pub name: String,
    /// Tags it protects (as the first protecting rule in document order).
    pub protected: usize,
}

/// One image's walk result and the policy's answer for each of its tags.
#[derive(Debug, Clone)]
pub struct TestedImage {
    /// The image, its tags and any listing error.
    pub walked: ImageTags,
    /// The policy's answer for each tag, in the same order.
    pub tests: Vec<TagTest>,
}

impl Report {
    /// The report from each image's tests, counting for each of `rules` (the
    /// policy's rule names, in document order) the tags it protects.
    pub fn build(rules: &[String], images: Vec<TestedImage>) -> Report {
        let images: Vec<ImageReport> = images
            .into_iter()
            .map(|tested| ImageReport {
                image: tested.walked.image,
                error: tested.walked.error,
                tags: tested
                    .tests
                    .into_iter()
                    .map(|test| TagReport {
                        tag: test.tag,
                        protected: test.protected,
                        rule: test.rule.filter(|_| test.protected).map(|r| r.to_string()),
                        because: test.because,
                        error: test.error,
                    })
                    .collect(),
            })
            .collect();
        let rules: Vec<RuleCount> = rules
            .iter()
            .map(|name| RuleCount {
                name: name.clone(),
                protected: images
                    .iter()
                    .flat_map(|image| &image.tags)
                    .filter(|tag| tag.protected && tag.rule.as_deref() == Some(name.as_str()))
                    .count(),
            })
            .collect();
        let unused_rules = rules
            .iter()
            .filter(|rule| rule.protected == 0)
            .map(|rule| rule.name.clone())
            .collect();
        Report {
            images,
            rules,
            unused_rules,
        }
    }

    /// Tags walked, in all images.
    pub fn tag_count(&self) -> usize {
        self.images.iter().map(|image| image.tags.len()).sum()
    }

    /// Tags the policy protects, in all images.
    pub fn protected_count(&self) -> usize {
        self.images
            .iter()
            .flat_map(|image| &image.tags)
            .filter(|tag| tag.protected)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    #[test]
    fn next_links_are_found_in_every_spelling() {
        assert_eq!(
            parse_next_link(r#"</v2/_catalog?last=x&n=100>; rel="next""#).as_deref(),
            Some("/v2/_catalog?last=x&n=100")
        );
        assert_eq!(
            parse_next_link("</v2/a/tags/list?last=v9&n=2>;rel=next").as_deref(),
            Some("/v2/a/tags/list?last=v9&n=2")
        );
        assert_eq!(
            parse_next_link(
                r#"<https://reg.example/v2/_catalog?last=b&n=1>; type="x"; REL="prev next""#
            )
            .as_deref(),
            Some("/v2/_catalog?last=b&n=1")
        );
        assert_eq!(
            parse_next_link(r#"</v2/_catalog?n=1>; rel="prev", </v2/_catalog?last=c>; rel="next""#)
                .as_deref(),
            Some("/v2/_catalog?last=c")
        );
        assert_eq!(parse_next_link(r#"</v2/_catalog?n=1>; rel="prev""#), None);
        assert_eq!(
            parse_next_link(r#"</v2/_catalog?n=1>; rel="nextish""#),
            None
        );
        assert_eq!(parse_next_link("/v2/_catalog; rel=next"), None);
        assert_eq!(parse_next_link(""), None);
    }

    /// Answers from a table of path → (status, Link, body); records what was asked.
    #[derive(Default)]
    struct Table {
        answers: HashMap<String, (u16, Option<String>, String)>,
        asked: RefCell<Vec<String>>,
    }

    impl Table {
        fn with(mut self, path: &str, status: u16, link: Option<&str>, body: &str) -> Table {
            self.answers.insert(
                path.to_owned(),
                (status, link.map(str::to_owned), body.to_owned()),
            );
            self
        }
    }

    impl RegistryClient for Table {
        async fn get(&self, path: &str) -> Result<Answer, PreviewError> {
            self.asked.borrow_mut().push(path.to_owned());
            let (status, link, body) =
                self.answers
                    .get(path)
                    .cloned()
                    .ok_or_else(|| PreviewError::Unreachable {
                        url: self.url(path),
                        why: "connection refused".to_owned(),
                    })?;
            Ok(Answer {
                status: StatusCode::from_u16(status).unwrap(),
                link: link.map(|l| format!("<{l}>; rel=\"next\"")),
                challenge: (status == 401).then(|| "Basic realm=\"r\"".to_owned()),
                body: Bytes::from(body),
            })
        }

        fn url(&self, path: &str) -> String {
            format!("http://registry.test{path}")
        }

        fn has_credentials(&self) -> bool {
            false
        }
    }

    fn run<T>(future: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    fn registry() -> Table {
        Table::default()
            .with(
                "/v2/_catalog?n=100",
                200,
                Some("/v2/_catalog?last=acme%2Fapi&n=100"),
                r#"{"repositories": ["acme/api"]}"#,
            )
            .with(
                "/v2/_catalog?last=acme%2Fapi&n=100",
                200,
                None,
                r#"{"repositories": ["acme/gone", "acme/web"]}"#,
            )
            .with(
                "/v2/acme/api/tags/list?n=1000",
                200,
                None,
                r#"{"name": "acme/api", "tags": null}"#,
            )
            .with(
                "/v2/acme/web/tags/list?n=1000",
                200,
                Some("/v2/acme/web/tags/list?last=v1&n=1000"),
                r#"{"name": "acme/web", "tags": ["latest", "v1"]}"#,
            )
            .with(
                "/v2/acme/web/tags/list?last=v1&n=1000",
                200,
                None,
                r#"{"name": "acme/web", "tags": ["v2"]}"#,
            )
            .with("/v2/acme/gone/tags/list?n=1000", 404, None, "")
    }

    #[test]
    fn the_walk_follows_every_page_in_order() {
        let client = registry();
        let seen = RefCell::new(Vec::new());
        let progress = |p: Progress<'_>| seen.borrow_mut().push(format!("{p:?}"));
        let walked = run(walk(&client, Images::Catalog, 2, &progress)).unwrap();
        let summary: Vec<(&str, Vec<&str>, bool)> = walked
            .iter()
            .map(|w| {
                let tags = w.tags.iter().map(String::as_str).collect();
                (w.image.as_str(), tags, w.error.is_some())
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("acme/api", vec![], false),
                ("acme/gone", vec![], true),
                ("acme/web", vec!["latest", "v1", "v2"], false),
            ]
        );
        let seen = seen.borrow();
        assert_eq!(
            seen[..2],
            ["Catalog { images: 1 }", "Catalog { images: 3 }"]
        );
        assert_eq!(
            seen.last().unwrap(),
            r#"Image { image: "acme/web", done: 3, total: 3 }"#
        );
    }

    #[test]
    fn named_images_skip_the_catalog_and_an_unknown_one_stops_the_walk() {
        let client = registry();
        let named = Images::Named(vec!["acme/web".into()]);
        let walked = run(walk(&client, named, 8, &|_| {})).unwrap();
        assert_eq!(walked.len(), 1);
        assert!(
            client
                .asked
                .borrow()
                .iter()
                .all(|p| !p.contains("_catalog"))
        );

        let named = Images::Named(vec!["acme/gone".into()]);
        let err = run(walk(&client, named, 8, &|_| {})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "GET http://registry.test/v2/acme/gone/tags/list: \
             404 Not Found: the registry has no image `acme/gone`"
        );
    }

    #[test]
    fn failures_name_the_url_and_what_failed() {
        let err = run(catalog(&Table::default())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot reach http://registry.test/v2/_catalog?n=100: connection refused"
        );
        let login = Table::default().with("/v2/_catalog?n=100", 401, None, "{}");
        let shown = run(catalog(&login)).unwrap_err().to_string();
        assert!(
            shown.contains("needs a login (--user and --password-file)"),
            "{shown}"
        );
        let none = Table::default().with("/v2/_catalog?n=100", 404, None, "");
        let shown = run(catalog(&none)).unwrap_err().to_string();
        assert!(
            shown.contains("offers no catalog; name the images with --image"),
            "{shown}"
        );
        let broken = Table::default().with("/v2/_catalog?n=100", 200, None, "<html>");
        let shown = run(catalog(&broken)).unwrap_err().to_string();
        assert!(shown.contains("the catalog is not the JSON"), "{shown}");
        let failing = Table::default().with("/v2/_catalog?n=100", 500, None, "disk full");
        let shown = run(catalog(&failing)).unwrap_err().to_string();
        assert!(
            shown.ends_with("500 Internal Server Error: disk full"),
            "{shown}"
        );
    }

    #[test]
    fn links_that_loop_or_leave_the_api_are_refused() {
        let looping = Table::default().with(
            "/v2/_catalog?n=100",
            200,
            Some("/v2/_catalog?n=100"),
            r#"{"repositories": []}"#,
        );
        let shown = run(catalog(&looping)).unwrap_err().to_string();
        assert!(shown.contains("points back to the same page"), "{shown}");
        let away = Table::default().with(
            "/v2/_catalog?n=100",
            200,
            Some("/admin"),
            r#"{"repositories": []}"#,
        );
        let shown = run(catalog(&away)).unwrap_err().to_string();
        assert!(shown.contains("points outside /v2/"), "{shown}");
    }

    #[test]
    fn malformed_image_names_never_reach_a_url() {
        let client = Table::default().with(
            "/v2/_catalog?n=100",
            200,
            None,
            r#"{"repositories": ["../admin"]}"#,
        );
        let walked = run(walk(&client, Images::Catalog, 1, &|_| {})).unwrap();
        assert!(walked.first().unwrap().error.is_some());
        assert_eq!(client.asked.borrow().len(), 1);
    }

    #[test]
    fn the_http_client_refuses_urls_it_cannot_use() {
        for url in ["ftp://h", "127.0.0.1:5000", "http://h/?q=1", "http://"] {
            assert!(
                HttpRegistry::new(url, None, Duration::from_secs(1)).is_err(),
                "{url}"
            );
        }
        let client = HttpRegistry::new("http://h:5000/", None, Duration::from_secs(1)).unwrap();
        assert_eq!(client.url("/v2/_catalog"), "http://h:5000/v2/_catalog");
        assert!(!client.has_credentials());
    }

    #[test]
    fn an_unreachable_registry_is_an_error_naming_it() {
        // Port 9 on loopback: nothing listens there in a test environment.
        let client = HttpRegistry::new("http://127.0.0.1:9", None, Duration::from_secs(5)).unwrap();
        let shown = run(catalog(&client)).unwrap_err().to_string();
        assert!(
            shown.starts_with("cannot reach http://127.0.0.1:9/v2/_catalog?n=100: "),
            "{shown}"
        );
    }

    fn tested(image: &str, tags: &[&str], policy: &policy_core::Policy) -> TestedImage {
        TestedImage {
            walked: ImageTags {
                image: image.to_owned(),
                tags: tags.iter().map(|t| (*t).to_owned()).collect(),
                error: None,
            },
            tests: tags.iter().map(|tag| policy.test_tag(image, tag)).collect(),
        }
    }

    #[test]
    fn the_report_counts_tags_per_rule_and_lists_unused_rules() {
        let policy = policy_core::Policy::from_json(
            r#"{"version": 1, "immutability": {"protect": "some", "rules": [
                {"name": "semver", "tags": {"regex": "^v\\d+\\.\\d+\\.\\d+$"}},
                {"name": "any-v", "tags": {"regex": "^v"}},
                {"name": "prod", "tags": {"matching": ["prod"]}},
                {"name": "web-only", "repositories": {"matching": ["acme/web"]},
                 "tags": {"matching": ["stable"]}}
            ], "exceptions": [{"matching": ["v0.*"]}]}}"#,
        )
        .unwrap();
        let rules: Vec<String> = policy
            .document()
            .immutability
            .rules
            .iter()
            .map(|r| r.name.clone())
            .collect();
        let report = Report::build(
            &rules,
            vec![
                tested("acme/web", &["v1.0.0", "v2", "latest", "v0.1.0"], &policy),
                tested("acme/api", &["v1.2.3", "stable"], &policy),
            ],
        );
        let counts: Vec<(&str, usize)> = report
            .rules
            .iter()
            .map(|r| (r.name.as_str(), r.protected))
            .collect();
        assert_eq!(
            counts,
            [("semver", 2), ("any-v", 1), ("prod", 0), ("web-only", 0)]
        );
        assert_eq!(report.unused_rules, ["prod", "web-only"]);
        assert_eq!((report.tag_count(), report.protected_count()), (6, 3));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json["images"][0]["tags"][0],
            serde_json::json!({"tag": "v1.0.0", "protected": true, "rule": "semver",
                "because": "rule"})
        );
        assert_eq!(
            json["images"][0]["tags"][3],
            serde_json::json!({"tag": "v0.1.0", "protected": false, "rule": null,
                "because": "exception"})
        );
        assert_eq!(json["images"][1]["image"], "acme/api");
        assert!(json["images"][1].get("error").is_none());
        assert_eq!(
            json["rules"][0],
            serde_json::json!({"name": "semver", "protected": 2})
        );
    }

    #[test]
    fn the_report_under_protect_all_names_no_rule() {
        let policy = policy_core::Policy::from_json(
            r#"{"version": 1, "immutability": {"protect": "all",
                "exceptions": [{"matching": ["latest"]}]}}"#,
        )
        .unwrap();
        let report = Report::build(&[], vec![tested("acme/web", &["v1", "latest"], &policy)]);
        let tags = &report.images[0].tags;
        assert!(tags[0].protected && tags[0].rule.is_none());
        assert_eq!(tags[0].because, TagVerdict::All);
        assert!(!tags[1].protected);
        assert!(report.rules.is_empty() && report.unused_rules.is_empty());
    }
}
