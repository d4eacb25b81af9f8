//! Paginated listings of the OCI API — the catalog (`GET /v2/_catalog`) and an
//! image's tag list (`GET /v2/<name>/tags/list`) — read page by page: the items
//! of a page, and where the next page is (`Link: <…>; rel="next"`).
//!
//! One reading of pages for every walk: the gateway's facts (the tags at a
//! digest) and `taglock preview`.

use serde::Deserialize;

/// How many repositories one catalog page asks for.
pub const CATALOG_PAGE: usize = 100;
/// How many tags one tag-list page asks for.
pub const TAG_PAGE: usize = 1000;
/// The most pages one listing may take (a registry whose `Link` never ends).
pub const MAX_PAGES: usize = 100_000;

/// The first page of `image`'s tag list (the name must have been checked: it
/// goes into the path as it is).
pub fn first_tag_page(image: &str) -> String {
    format!("/v2/{image}/tags/list?n={TAG_PAGE}")
}

/// The first page of the catalog.
pub fn first_catalog_page() -> String {
    format!("/v2/_catalog?n={CATALOG_PAGE}")
}

/// The tags of one tag-list page (`{"name": …, "tags": [...]}`; `null` tags: none).
pub fn tag_items(body: &[u8]) -> Result<Vec<String>, serde_json::Error> {
    #[derive(Deserialize)]
    struct Tags {
        tags: Option<Vec<String>>,
    }
    Ok(serde_json::from_slice::<Tags>(body)?
        .tags
        .unwrap_or_default())
}

/// The repositories of one catalog page.
pub fn catalog_items(body: &[u8]) -> Result<Vec<String>, serde_json::Error> {
    #[derive(Deserialize)]
    struct Catalog {
        repositories: Option<Vec<String>>,
    }
    Ok(serde_json::from_slice::<Catalog>(body)?
        .repositories
        .unwrap_or_default())
}

/// The target of the `rel="next"` link of a `Link` header, as a path and query:
/// `</v2/_catalog?last=x&n=100>; rel="next"` gives `/v2/_catalog?last=x&n=100`.
/// An absolute target keeps only its path and query (a walk asks the registry it
/// was given, never another host). `None` when no link is `rel="next"`.
pub fn next_link(link: &str) -> Option<String> {
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
        match target.split_once("://") {
            Some((_scheme, rest)) => Some(
                rest.find('/')
                    .and_then(|at| rest.get(at..))
                    .unwrap_or("/")
                    .to_owned(),
            ),
            None => Some(target.to_owned()),
        }
    })
}

/// Why a walk may not follow a page's next link: it leaves `/v2/`, points back
/// at the page it came from, or the walk has reached [`MAX_PAGES`].
pub fn refuse_next(next: &str, current: &str, pages_read: usize) -> Option<&'static str> {
    if !next.starts_with("/v2/") {
        Some("outside /v2/")
    } else if next == current {
        Some("back to the same page")
    } else if pages_read >= MAX_PAGES {
        Some("past the page limit")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_links_are_found_in_every_spelling() {
        assert_eq!(
            next_link(r#"</v2/_catalog?last=x&n=100>; rel="next""#).as_deref(),
            Some("/v2/_catalog?last=x&n=100")
        );
        assert_eq!(
            next_link("</v2/a/tags/list?last=v9&n=2>;rel=next").as_deref(),
            Some("/v2/a/tags/list?last=v9&n=2")
        );
        assert_eq!(
            next_link(r#"<https://reg.example/v2/_catalog?last=b&n=1>; type="x"; REL="prev next""#)
                .as_deref(),
            Some("/v2/_catalog?last=b&n=1")
        );
        assert_eq!(
            next_link(r#"</v2/_catalog?n=1>; rel="prev", </v2/_catalog?last=c>; rel="next""#)
                .as_deref(),
            Some("/v2/_catalog?last=c")
        );
        assert_eq!(next_link(r#"</v2/_catalog?n=1>; rel="prev""#), None);
        assert_eq!(next_link(r#"</v2/_catalog?n=1>; rel="nextish""#), None);
        assert_eq!(next_link("/v2/_catalog; rel=next"), None);
        assert_eq!(next_link(""), None);
    }

    #[test]
    fn pages() {
        assert_eq!(
            tag_items(br#"{"name":"a","tags":["v1","v2"]}"#).unwrap(),
            ["v1", "v2"]
        );
        assert!(
            tag_items(br#"{"name":"a","tags":null}"#)
                .unwrap()
                .is_empty()
        );
        assert!(tag_items(b"[1]").is_err());
        assert_eq!(
            catalog_items(br#"{"repositories":["a/b"]}"#).unwrap(),
            ["a/b"]
        );
        assert_eq!(refuse_next("/x", "/v2/a", 1), Some("outside /v2/"));
        assert_eq!(
            refuse_next("/v2/a", "/v2/a", 1),
            Some("back to the same page")
        );
        assert_eq!(
            refuse_next("/v2/b", "/v2/a", MAX_PAGES),
            Some("past the page limit")
        );
        assert_eq!(refuse_next("/v2/b", "/v2/a", 1), None);
    }
}
