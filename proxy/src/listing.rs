//! Paginated listings of a registry's OCI API: the catalog (`GET /v2/_catalog`)
//! and an image's tag list (`GET /v2/<name>/tags/list`), following
//! `Link: <…>; rel="next"` pages. One implementation, used by the proxy's facts
//! (the tags at a digest) and by `taglock preview` (every tag of every image).
//!
//! [`RegistryClient`] is the one thing a listing needs from HTTP: a `GET` read
//! whole. [`Upstream`](crate::upstream::Upstream) implements it.

use bytes::Bytes;
use http::StatusCode;
use policy_core::names;
use std::future::Future;
use std::time::Duration;
use taglock_gateway::listing::{self as gateway_listing, catalog_items, tag_items};

/// Why a listing (catalog or tag list) could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ListingError {
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
    /// An answer the listing cannot use (an error status, a body that is not the
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
    fn get(&self, path_and_query: &str) -> impl Future<Output = Result<Answer, ListingError>>;

    /// The full URL of a path, for messages.
    fn url(&self, path_and_query: &str) -> String;

    /// Whether requests carry credentials (for the advice a 401 gets).
    fn has_credentials(&self) -> bool;
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
    on_page: &(dyn Fn(usize) + Sync),
) -> Result<Option<Vec<String>>, ListingError> {
    let mut all = Vec::new();
    let mut next = Some(first);
    let mut pages = 0usize;
    while let Some(path) = next.take() {
        pages += 1;
        let page = match page(client, &path, items, what).await? {
            Some(page) => page,
            None if pages == 1 => return Ok(None),
            None => {
                return Err(ListingError::Answer {
                    url: client.url(&path),
                    why: format!("404 Not Found for a later page of the {what}"),
                });
            }
        };
        all.extend(page.items);
        on_page(all.len());
        if let Some(target) = &page.next {
            if let Some(bad) = gateway_listing::refuse_next(target, &path, pages) {
                return Err(ListingError::Answer {
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
) -> Result<Option<Page<String>>, ListingError> {
    let answer = client.get(path).await?;
    let refuse = |why: String| ListingError::Answer {
        url: client.url(path),
        why,
    };
    match answer.status {
        StatusCode::OK => {}
        StatusCode::NOT_FOUND => return Ok(None),
        StatusCode::UNAUTHORIZED => {
            let challenge = answer.challenge.unwrap_or_default();
            let why = if client.has_credentials() {
                "401 Unauthorized: the registry refused the credentials (or the token they got)"
                    .to_owned()
            } else if challenge
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("bearer")
            {
                format!(
                    "401 Unauthorized: the registry asks for a bearer token ({challenge}); \
                     give --user and --password-file to get one"
                )
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
        next: answer.link.as_deref().and_then(gateway_listing::next_link),
    }))
}

/// Every repository the catalog lists, in its order (`GET /v2/_catalog`, paged).
pub async fn catalog<C: RegistryClient>(client: &C) -> Result<Vec<String>, ListingError> {
    catalog_pages(client, &|_| {}).await
}

/// [`catalog`], telling `on_page` how many repositories it has after each page.
pub(crate) async fn catalog_pages<C: RegistryClient>(
    client: &C,
    on_page: &(dyn Fn(usize) + Sync),
) -> Result<Vec<String>, ListingError> {
    let first = gateway_listing::first_catalog_page();
    listing(client, first.clone(), catalog_items, "catalog", on_page)
        .await?
        .ok_or_else(|| ListingError::Answer {
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
) -> Result<Option<Vec<String>>, ListingError> {
    checked(image)?;
    let mut tags = listing(
        client,
        gateway_listing::first_tag_page(image),
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

/// `image`, once it is known to be an image name (so safe in a URL).
fn checked(image: &str) -> Result<&str, ListingError> {
    names::check_image_name(image).map_err(|err| ListingError::InvalidImage {
        image: image.to_owned(),
        why: err.to_string(),
    })?;
    Ok(image)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    /// Answers from a table of path → (status, Link, body); records what was asked.
    #[derive(Default)]
    pub(crate) struct Table {
        pub(crate) answers: HashMap<String, (u16, Option<String>, String)>,
        pub(crate) asked: RefCell<Vec<String>>,
    }

    impl Table {
        pub(crate) fn with(
            mut self,
            path: &str,
            status: u16,
            link: Option<&str>,
            body: &str,
        ) -> Table {
            self.answers.insert(
                path.to_owned(),
                (status, link.map(str::to_owned), body.to_owned()),
            );
            self
        }
    }

    impl RegistryClient for Table {
        async fn get(&self, path: &str) -> Result<Answer, ListingError> {
            self.asked.borrow_mut().push(path.to_owned());
            let (status, link, body) =
                self.answers
                    .get(path)
                    .cloned()
                    .ok_or_else(|| ListingError::Unreachable {
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

    pub(crate) fn run<T>(future: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    pub(crate) fn registry() -> Table {
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
}
