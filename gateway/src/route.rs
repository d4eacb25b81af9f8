//! Which OCI Distribution endpoint a request addresses, read exactly as the
//! upstream will read it — or refused (`docs/proxy.md` has the full table).
//!
//! Names are not checked here: the core turns a malformed image name, tag or
//! digest into an `invalid_request` decision, located.

use crate::query::Query;
use crate::reply::Refusal;

/// The most tags one manifest push may set (the path's tag and every `?tag=`):
/// each costs an upstream look-up.
pub const MAX_TAGS_PER_PUSH: usize = 64;

/// A manifest reference: a tag, or a digest (a digest always holds a `:`, a tag never).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// `…/manifests/v1.2.0`.
    Tag(String),
    /// `…/manifests/sha256:…`.
    Digest(String),
}

impl Reference {
    fn parse(text: &str) -> Reference {
        if text.contains(':') {
            Reference::Digest(text.to_owned())
        } else {
            Reference::Tag(text.to_owned())
        }
    }
}

/// The head of a client's request: all the gateway reads to classify it.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    /// The method, e.g. `PUT`.
    pub method: &'a str,
    /// The path, still percent-encoded, e.g. `/v2/acme/web/manifests/v1`.
    pub path: &'a str,
    /// The query, without `?`.
    pub query: Option<&'a str>,
    /// Every `Content-Type` header value.
    pub content_types: &'a [&'a str],
}

/// The endpoint of one request, with the method folded in where it changes the
/// operation (a manifest `GET` is a pull, a `PUT` a push).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /v2/`: the API version check clients use to discover authentication.
    Base,
    /// `GET /v2/_catalog`.
    Catalog,
    /// `GET`/`HEAD` of a manifest, blob, tag list or referrers list.
    Read {
        /// The image read.
        image: String,
    },
    /// `PUT /v2/<name>/manifests/<reference>`, with the `?tag=` parameters.
    PushManifest {
        /// The image pushed to.
        image: String,
        /// The reference in the path.
        reference: Reference,
        /// Every tag the push sets: the path's tag, then each `?tag=` (OCI 1.1
        /// multi-tag push), without repeats.
        tags: Vec<String>,
    },
    /// `DELETE /v2/<name>/manifests/<reference>`.
    DeleteManifest {
        /// The image deleted from.
        image: String,
        /// The tag or digest deleted.
        reference: Reference,
    },
    /// `POST /v2/<name>/blobs/uploads/` without a mount, and every request on an
    /// upload session (`PATCH`/`PUT`/`GET`/`DELETE …/blobs/uploads/<id>`).
    Upload {
        /// The image uploaded to.
        image: String,
    },
    /// `POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<other>`.
    Mount {
        /// The image the blob is mounted into.
        image: String,
        /// The image it comes from.
        from: String,
    },
}

/// Form media types: a Go registry reads request parameters out of such a body
/// (`Request.FormValue`), for any method.
const FORM_MEDIA_TYPES: &[&str] = &["application/x-www-form-urlencoded", "multipart/"];

impl Route {
    /// Classifies a request. Refused: endpoints the gateway does not forward
    /// (405), form bodies (415), percent-encoded paths and queries the upstream
    /// could read otherwise (400), more than [`MAX_TAGS_PER_PUSH`] tags (400).
    pub fn classify(head: &RequestHead<'_>) -> Result<Route, Refusal> {
        let unsupported = || {
            Refusal::unsupported(format!(
                "taglock does not forward {} {}",
                head.method, head.path
            ))
        };
        let Some(rest) = head.path.strip_prefix("/v2") else {
            return Err(unsupported());
        };
        if head.content_types.iter().any(|value| is_form(value)) {
            return Err(Refusal::form_body());
        }
        if head.path.contains('%') {
            return Err(Refusal::undecidable(
                "taglock refuses percent-encoded registry paths: image names, tags and digests never need encoding",
            ));
        }
        let query = Query::parse(head.query)?;
        let method = head.method;
        let read = method == "GET" || method == "HEAD";
        let rest = rest.strip_prefix('/').unwrap_or(rest);
        if rest.is_empty() {
            return if read {
                Ok(Route::Base)
            } else {
                Err(unsupported())
            };
        }
        if rest == "_catalog" {
            return if method == "GET" {
                Ok(Route::Catalog)
            } else {
                Err(unsupported())
            };
        }
        if let Some(image) = rest.strip_suffix("/tags/list") {
            return read_if(read, image).ok_or_else(unsupported);
        }
        if let Some(image) = rest
            .strip_suffix("/blobs/uploads/")
            .or_else(|| rest.strip_suffix("/blobs/uploads"))
        {
            if method != "POST" || image.is_empty() {
                return Err(unsupported());
            }
            return upload_start(image, &query);
        }
        let (head_path, last) = rest.rsplit_once('/').ok_or_else(unsupported)?;
        if let Some(image) = head_path.strip_suffix("/blobs/uploads") {
            let session = ["PATCH", "PUT", "GET", "HEAD", "DELETE"];
            return if session.contains(&method) && !image.is_empty() && !last.is_empty() {
                Ok(Route::Upload {
                    image: image.to_owned(),
                })
            } else {
                Err(unsupported())
            };
        }
        if let Some(image) = head_path.strip_suffix("/manifests") {
            if image.is_empty() || last.is_empty() {
                return Err(unsupported());
            }
            let image = image.to_owned();
            return match method {
                "GET" | "HEAD" => Ok(Route::Read { image }),
                "PUT" => push(image, Reference::parse(last), &query),
                "DELETE" => Ok(Route::DeleteManifest {
                    image,
                    reference: Reference::parse(last),
                }),
                _ => Err(unsupported()),
            };
        }
        if let Some(image) = head_path.strip_suffix("/blobs") {
            if image.is_empty() || last.is_empty() {
                return Err(unsupported());
            }
            if method == "DELETE" {
                return Err(Refusal::unsupported(
                    "taglock does not forward blob deletes: delete the manifest, and let the registry's garbage collection remove blobs nothing references",
                ));
            }
            return read_if(read, image).ok_or_else(unsupported);
        }
        if let Some(image) = head_path.strip_suffix("/referrers") {
            return read_if(read && !last.is_empty(), image).ok_or_else(unsupported);
        }
        Err(unsupported())
    }

    /// The image the request concerns, if any.
    pub fn image(&self) -> Option<&str> {
        match self {
            Route::Read { image }
            | Route::PushManifest { image, .. }
            | Route::DeleteManifest { image, .. }
            | Route::Upload { image }
            | Route::Mount { image, .. } => Some(image),
            Route::Base | Route::Catalog => None,
        }
    }

    /// Whether the gateway needs the request's body before it can gather the
    /// facts (a manifest push: its digest), at most
    /// [`MAX_MANIFEST_BYTES`](crate::manifest::MAX_MANIFEST_BYTES).
    pub fn needs_body(&self) -> bool {
        matches!(self, Route::PushManifest { .. })
    }

    /// What a host serializes the request against, from gathering its facts
    /// until the upstream has finished the write.
    pub fn write_lock(&self) -> WriteLock<'_> {
        match self {
            Route::PushManifest { image, tags, .. } => WriteLock::Tags { image, tags },
            Route::DeleteManifest { image, .. } => WriteLock::Image { image },
            _ => WriteLock::None,
        }
    }
}

/// The writes a request must not overlap with: checking "the tag is absent" and
/// writing it must be one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteLock<'a> {
    /// A read, or a write no fact of another request depends on.
    None,
    /// A push: its image shared (against deletes), each tag exclusively.
    Tags {
        /// The image.
        image: &'a str,
        /// The tags set.
        tags: &'a [String],
    },
    /// A manifest delete: the whole image exclusively (it may remove any tag).
    Image {
        /// The image.
        image: &'a str,
    },
}

fn is_form(content_type: &str) -> bool {
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    FORM_MEDIA_TYPES
        .iter()
        .any(|form| media_type.starts_with(form))
}

fn read_if(read: bool, image: &str) -> Option<Route> {
    (read && !image.is_empty()).then(|| Route::Read {
        image: image.to_owned(),
    })
}

fn push(image: String, reference: Reference, query: &Query) -> Result<Route, Refusal> {
    let mut tags: Vec<String> = Vec::new();
    if let Reference::Tag(tag) = &reference {
        tags.push(tag.clone());
    }
    for tag in query.all("tag") {
        if !tags.iter().any(|t| t == tag) {
            if tags.len() == MAX_TAGS_PER_PUSH {
                return Err(Refusal::undecidable(format!(
                    "a push may set at most {MAX_TAGS_PER_PUSH} tags; push the others separately"
                )));
            }
            tags.push(tag.to_owned());
        }
    }
    Ok(Route::PushManifest {
        image,
        reference,
        tags,
    })
}

/// `POST …/blobs/uploads/`: a mount exactly when the upstream will mount — both
/// `mount` and `from` given and non-empty, as distribution requires.
fn upload_start(image: &str, query: &Query) -> Result<Route, Refusal> {
    let image = image.to_owned();
    let mount = query.single("mount")?.filter(|m| !m.is_empty());
    let from = query.single("from")?.filter(|f| !f.is_empty());
    Ok(match (mount, from) {
        (Some(_), Some(from)) => Route::Mount {
            image,
            from: from.to_owned(),
        },
        // distribution 2.8 ignores such a `mount`, but the OCI spec lets a
        // registry mount from any image it holds ("automatic content
        // discovery"): a read of an image nobody named, so no check can cover it.
        (Some(_), None) => {
            return Err(Refusal::undecidable(
                "a mount without `from` lets the registry choose the image the blob comes from, which taglock cannot check; name it in `from`",
            ));
        }
        (None, _) => Route::Upload { image },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify_with(method: &str, target: &str, content_types: &[&str]) -> Result<Route, Refusal> {
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        Route::classify(&RequestHead {
            method,
            path,
            query,
            content_types,
        })
    }

    fn classify(method: &str, target: &str) -> Route {
        classify_with(method, target, &[]).unwrap()
    }

    fn read(image: &str) -> Route {
        Route::Read {
            image: image.into(),
        }
    }

    #[test]
    fn reads() {
        assert_eq!(classify("GET", "/v2/"), Route::Base);
        assert_eq!(classify("GET", "/v2"), Route::Base);
        assert_eq!(classify("GET", "/v2/_catalog?n=10"), Route::Catalog);
        assert_eq!(
            classify("GET", "/v2/acme/web/manifests/v1"),
            read("acme/web")
        );
        assert_eq!(
            classify("HEAD", "/v2/a/b/c/manifests/sha256:00"),
            read("a/b/c")
        );
        assert_eq!(
            classify("GET", "/v2/acme/web/blobs/sha256:00"),
            read("acme/web")
        );
        assert_eq!(
            classify("GET", "/v2/acme/web/tags/list?n=5"),
            read("acme/web")
        );
        assert_eq!(
            classify("GET", "/v2/acme/web/referrers/sha256:00"),
            read("acme/web")
        );
    }

    #[test]
    fn pushes_carry_every_tag_once() {
        assert_eq!(
            classify("PUT", "/v2/acme/web/manifests/v1.2.0"),
            Route::PushManifest {
                image: "acme/web".into(),
                reference: Reference::Tag("v1.2.0".into()),
                tags: vec!["v1.2.0".into()],
            }
        );
        assert_eq!(
            classify(
                "PUT",
                "/v2/acme/web/manifests/sha256:ab?tag=a&tag=b-c&tag=a"
            ),
            Route::PushManifest {
                image: "acme/web".into(),
                reference: Reference::Digest("sha256:ab".into()),
                tags: vec!["a".into(), "b-c".into()],
            }
        );
    }

    #[test]
    fn a_push_sets_a_bounded_number_of_tags() {
        let query: Vec<String> = (0..MAX_TAGS_PER_PUSH)
            .map(|i| format!("tag=t{i}"))
            .collect();
        let target = format!("/v2/acme/web/manifests/sha256:ab?{}", query.join("&"));
        assert!(classify_with("PUT", &target, &[]).is_ok());
        let target = format!("/v2/acme/web/manifests/v0?{}", query.join("&"));
        let refusal = classify_with("PUT", &target, &[]).unwrap_err();
        assert_eq!(refusal.status, 400);
        assert!(
            refusal.message.contains("at most 64 tags"),
            "{}",
            refusal.message
        );
    }

    #[test]
    fn deletes() {
        assert_eq!(
            classify("DELETE", "/v2/acme/web/manifests/prod"),
            Route::DeleteManifest {
                image: "acme/web".into(),
                reference: Reference::Tag("prod".into()),
            }
        );
        let blob = classify_with("DELETE", "/v2/acme/web/blobs/sha256:00", &[]).unwrap_err();
        assert_eq!(blob.status, 405);
        assert!(blob.message.contains("blob deletes"));
    }

    #[test]
    fn uploads_and_mounts() {
        let upload = Route::Upload {
            image: "acme/web".into(),
        };
        assert_eq!(classify("POST", "/v2/acme/web/blobs/uploads/"), upload);
        assert_eq!(classify("POST", "/v2/acme/web/blobs/uploads"), upload);
        assert_eq!(
            classify("POST", "/v2/acme/web/blobs/uploads/?digest=sha256:00"),
            upload
        );
        for method in ["PATCH", "PUT", "GET", "HEAD", "DELETE"] {
            assert_eq!(
                classify(method, "/v2/acme/web/blobs/uploads/4f-9a?_state=x"),
                upload
            );
        }
        let mount = Route::Mount {
            image: "acme/web".into(),
            from: "acme/base".into(),
        };
        assert_eq!(
            classify(
                "POST",
                "/v2/acme/web/blobs/uploads/?mount=sha256:00&from=acme/base"
            ),
            mount
        );
        // Encoded the way Go decodes it: still a mount from acme/base.
        assert_eq!(
            classify(
                "POST",
                "/v2/acme/web/blobs/uploads/?m%6Funt=sha256:00&from=acme%2Fbase"
            ),
            mount
        );
        // Go mounts only with both parameters non-empty; an empty `mount` is an
        // upload.
        assert_eq!(
            classify("POST", "/v2/acme/web/blobs/uploads/?mount=&from=acme/base"),
            upload
        );
    }

    #[test]
    fn parameters_the_upstream_could_read_otherwise_are_refused() {
        for target in [
            "/v2/acme/web/blobs/uploads/?mount=sha256:00&from=acme/base&from=acme/private",
            "/v2/acme/web/blobs/uploads/?mount=sha256:00&mount=sha256:11&from=acme/base",
            "/v2/acme/web/blobs/uploads/?x=1;from=acme/private&mount=sha256:00",
            "/v2/acme/web/blobs/uploads/?mount=sha256:00&from=%zz",
            // The registry could pick the source itself.
            "/v2/acme/web/blobs/uploads/?mount=sha256:00",
            "/v2/acme/web/blobs/uploads/?mount=sha256:00&from=",
        ] {
            let refusal = classify_with("POST", target, &[]).unwrap_err();
            assert_eq!(refusal.status, 400, "{target}");
        }
    }

    #[test]
    fn form_bodies_are_refused_on_every_route() {
        for content_type in [
            "application/x-www-form-urlencoded",
            "Application/X-WWW-Form-Urlencoded; charset=utf-8",
            " multipart/form-data; boundary=x",
        ] {
            for (method, target) in [
                ("POST", "/v2/acme/web/blobs/uploads/"),
                ("PUT", "/v2/acme/web/blobs/uploads/4f?digest=sha256:00"),
                ("PATCH", "/v2/acme/web/blobs/uploads/4f"),
                ("GET", "/v2/acme/web/blobs/uploads/4f"),
                ("PUT", "/v2/acme/web/manifests/v1"),
            ] {
                let refusal =
                    classify_with(method, target, &["application/octet-stream", content_type])
                        .unwrap_err();
                assert_eq!(refusal.status, 415, "{method} {target} {content_type}");
            }
        }
        assert!(
            classify_with(
                "PUT",
                "/v2/acme/web/manifests/v1",
                &["application/vnd.oci.image.manifest.v1+json"]
            )
            .is_ok()
        );
    }

    #[test]
    fn encoded_paths_are_refused() {
        for target in [
            "/v2/acme%2Fprivate/manifests/v1",
            "/v2/acme/web/manifests/sha256%3Aab",
            "/v2/acme/web/blobs%2Fuploads/",
        ] {
            let refusal = classify_with("GET", target, &[]).unwrap_err();
            assert_eq!(refusal.status, 400, "{target}");
        }
    }

    #[test]
    fn anything_else_is_unsupported() {
        for (method, target) in [
            ("POST", "/v2/"),
            ("DELETE", "/v2/_catalog"),
            ("POST", "/v2/acme/web/manifests/v1"),
            ("PUT", "/v2/acme/web/blobs/sha256:00"),
            ("PUT", "/v2/acme/web/tags/list"),
            ("GET", "/v2/acme/web/unknown/x"),
            ("GET", "/v2/manifests/v1"),
            ("GET", "/v2/acme/web/manifests/"),
            ("GET", "/other"),
            ("GET", "/v2/acme"),
            ("PATCH", "/v2/acme/web/blobs/uploads/"),
        ] {
            let refusal = classify_with(method, target, &[]).unwrap_err();
            assert_eq!(refusal.status, 405, "{method} {target}");
        }
    }
}
