//! Which OCI Distribution endpoint a request addresses (`docs/proxy.md` has the
//! full mapping table). Parsing only: names are checked by the core, which turns a
//! malformed one into an `invalid_request` decision.

use http::Method;

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
        /// The `tag` query parameters (OCI 1.1 multi-tag push), in order.
        extra_tags: Vec<String>,
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
    /// `DELETE /v2/<name>/blobs/<digest>`: refused (see `docs/proxy.md`).
    DeleteBlob {
        /// The image.
        image: String,
    },
    /// A `/v2/` path or method the proxy does not forward.
    Unsupported,
}

impl Route {
    /// Classifies `method path?query`. `path` must start with `/v2/` (or be `/v2`).
    pub fn parse(method: &Method, path: &str, query: Option<&str>) -> Route {
        let Some(rest) = path.strip_prefix("/v2") else {
            return Route::Unsupported;
        };
        let rest = rest.strip_prefix('/').unwrap_or(rest);
        let read = method == Method::GET || method == Method::HEAD;
        if rest.is_empty() {
            return if read {
                Route::Base
            } else {
                Route::Unsupported
            };
        }
        if rest == "_catalog" {
            return if method == Method::GET {
                Route::Catalog
            } else {
                Route::Unsupported
            };
        }
        if let Some(image) = rest.strip_suffix("/tags/list") {
            return Route::read_if(read, image);
        }
        if let Some(image) = rest
            .strip_suffix("/blobs/uploads/")
            .or_else(|| rest.strip_suffix("/blobs/uploads"))
        {
            return Route::upload_start(method, image, query);
        }
        let Some((head, last)) = rest.rsplit_once('/') else {
            return Route::Unsupported;
        };
        if let Some(image) = head.strip_suffix("/blobs/uploads") {
            let session = [Method::PATCH, Method::PUT, Method::GET, Method::DELETE];
            return if session.contains(method) && !image.is_empty() {
                Route::Upload {
                    image: image.to_owned(),
                }
            } else {
                Route::Unsupported
            };
        }
        if let Some(image) = head.strip_suffix("/manifests") {
            if image.is_empty() || last.is_empty() {
                return Route::Unsupported;
            }
            return match *method {
                Method::GET | Method::HEAD => Route::Read {
                    image: image.to_owned(),
                },
                Method::PUT => Route::PushManifest {
                    image: image.to_owned(),
                    reference: Reference::parse(last),
                    extra_tags: query_values(query, "tag"),
                },
                Method::DELETE => Route::DeleteManifest {
                    image: image.to_owned(),
                    reference: Reference::parse(last),
                },
                _ => Route::Unsupported,
            };
        }
        if let Some(image) = head.strip_suffix("/blobs") {
            if image.is_empty() || last.is_empty() {
                return Route::Unsupported;
            }
            return match *method {
                Method::DELETE => Route::DeleteBlob {
                    image: image.to_owned(),
                },
                _ => Route::read_if(read, image),
            };
        }
        if let Some(image) = head.strip_suffix("/referrers") {
            return Route::read_if(read && !last.is_empty(), image);
        }
        Route::Unsupported
    }

    fn read_if(read: bool, image: &str) -> Route {
        if read && !image.is_empty() {
            Route::Read {
                image: image.to_owned(),
            }
        } else {
            Route::Unsupported
        }
    }

    fn upload_start(method: &Method, image: &str, query: Option<&str>) -> Route {
        if method != Method::POST || image.is_empty() {
            return Route::Unsupported;
        }
        let image = image.to_owned();
        let mount = query_values(query, "mount");
        match query_values(query, "from").into_iter().next() {
            // Without `from` a registry ignores `mount` (or searches every image it
            // may read, which is a read the policy cannot see): an ordinary upload.
            Some(from) if !mount.is_empty() => Route::Mount { image, from },
            _ => Route::Upload { image },
        }
    }

    /// The image the request concerns, if any.
    pub fn image(&self) -> Option<&str> {
        match self {
            Route::Read { image }
            | Route::PushManifest { image, .. }
            | Route::DeleteManifest { image, .. }
            | Route::Upload { image }
            | Route::Mount { image, .. }
            | Route::DeleteBlob { image } => Some(image),
            Route::Base | Route::Catalog | Route::Unsupported => None,
        }
    }
}

/// Every value of the query parameter `key`, decoded, in order.
fn query_values(query: Option<&str>, key: &str) -> Vec<String> {
    let Some(query) = query else {
        return Vec::new();
    };
    form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(method: Method, target: &str) -> Route {
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        Route::parse(&method, path, query)
    }

    fn read(image: &str) -> Route {
        Route::Read {
            image: image.into(),
        }
    }

    #[test]
    fn reads() {
        assert_eq!(parse(Method::GET, "/v2/"), Route::Base);
        assert_eq!(parse(Method::GET, "/v2"), Route::Base);
        assert_eq!(parse(Method::GET, "/v2/_catalog?n=10"), Route::Catalog);
        assert_eq!(
            parse(Method::GET, "/v2/acme/web/manifests/v1"),
            read("acme/web")
        );
        assert_eq!(
            parse(Method::HEAD, "/v2/a/b/c/manifests/sha256:00"),
            read("a/b/c")
        );
        assert_eq!(
            parse(Method::GET, "/v2/acme/web/blobs/sha256:00"),
            read("acme/web")
        );
        assert_eq!(
            parse(Method::GET, "/v2/acme/web/tags/list?n=5"),
            read("acme/web")
        );
        assert_eq!(
            parse(Method::GET, "/v2/acme/web/referrers/sha256:00"),
            read("acme/web")
        );
    }

    #[test]
    fn pushes_carry_the_reference_and_every_tag_parameter() {
        assert_eq!(
            parse(Method::PUT, "/v2/acme/web/manifests/v1.2.0"),
            Route::PushManifest {
                image: "acme/web".into(),
                reference: Reference::Tag("v1.2.0".into()),
                extra_tags: vec![],
            }
        );
        assert_eq!(
            parse(
                Method::PUT,
                "/v2/acme/web/manifests/sha256:ab?tag=a&tag=b%2Dc"
            ),
            Route::PushManifest {
                image: "acme/web".into(),
                reference: Reference::Digest("sha256:ab".into()),
                extra_tags: vec!["a".into(), "b-c".into()],
            }
        );
    }

    #[test]
    fn deletes() {
        assert_eq!(
            parse(Method::DELETE, "/v2/acme/web/manifests/prod"),
            Route::DeleteManifest {
                image: "acme/web".into(),
                reference: Reference::Tag("prod".into()),
            }
        );
        assert_eq!(
            parse(Method::DELETE, "/v2/acme/web/blobs/sha256:00"),
            Route::DeleteBlob {
                image: "acme/web".into()
            }
        );
    }

    #[test]
    fn uploads_and_mounts() {
        let upload = Route::Upload {
            image: "acme/web".into(),
        };
        assert_eq!(parse(Method::POST, "/v2/acme/web/blobs/uploads/"), upload);
        assert_eq!(parse(Method::POST, "/v2/acme/web/blobs/uploads"), upload);
        assert_eq!(
            parse(Method::POST, "/v2/acme/web/blobs/uploads/?digest=sha256:00"),
            upload
        );
        for method in [Method::PATCH, Method::PUT, Method::GET, Method::DELETE] {
            assert_eq!(
                parse(method, "/v2/acme/web/blobs/uploads/4f-9a?_state=x"),
                upload
            );
        }
        assert_eq!(
            parse(
                Method::POST,
                "/v2/acme/web/blobs/uploads/?mount=sha256:00&from=acme/base"
            ),
            Route::Mount {
                image: "acme/web".into(),
                from: "acme/base".into()
            }
        );
        assert_eq!(
            parse(Method::POST, "/v2/acme/web/blobs/uploads/?mount=sha256:00"),
            upload
        );
    }

    #[test]
    fn anything_else_is_unsupported() {
        for (method, target) in [
            (Method::POST, "/v2/"),
            (Method::DELETE, "/v2/_catalog"),
            (Method::POST, "/v2/acme/web/manifests/v1"),
            (Method::PUT, "/v2/acme/web/blobs/sha256:00"),
            (Method::PUT, "/v2/acme/web/tags/list"),
            (Method::GET, "/v2/acme/web/unknown/x"),
            (Method::GET, "/v2/manifests/v1"),
            (Method::GET, "/v2/acme/web/manifests/"),
            (Method::GET, "/other"),
            (Method::GET, "/v2/acme"),
        ] {
            assert_eq!(
                parse(method.clone(), target),
                Route::Unsupported,
                "{method} {target}"
            );
        }
    }
}
