//! A small blocking HTTP client for the OCI Distribution API, for what skopeo
//! cannot show: status codes, headers, concurrent requests, exact bodies.

use super::oci::{Blob, Image};
use std::time::Duration;

/// Every manifest media type a `HEAD`/`GET` of a manifest accepts.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.manifest.v1+json, \
    application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.docker.distribution.manifest.list.v2+json";

/// A response, fully read.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; fails the test when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|err| panic!("body is not JSON ({err}): {self}"))
    }

    /// The first OCI error code of the body, if it is an OCI error.
    pub fn error_code(&self) -> Option<String> {
        let body: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        body["errors"][0]["code"].as_str().map(str::to_owned)
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {} ", self.status)?;
        for (name, value) in &self.headers {
            write!(f, "[{name}: {value}] ")?;
        }
        let text = self.text();
        let cut: String = text.chars().take(2000).collect();
        write!(f, "{cut}")
    }
}

/// A client for one base URL (`http://127.0.0.1:PORT`), optionally logged in.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    base: String,
    authorization: Option<String>,
}

impl Client {
    pub fn new(base: &str) -> Client {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build();
        Client {
            agent: ureq::Agent::new_with_config(config),
            base: base.trim_end_matches('/').to_owned(),
            authorization: None,
        }
    }

    /// The same client sending HTTP Basic credentials.
    pub fn login(&self, user: &str, password: &str) -> Client {
        Client {
            authorization: Some(
                taglock_proxy::upstream::basic_authorization(user, password)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned(),
            ),
            ..self.clone()
        }
    }

    /// The same client sending `Authorization: Bearer TOKEN`.
    pub fn bearer(&self, token: &str) -> Client {
        Client {
            authorization: Some(format!("Bearer {token}")),
            ..self.clone()
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends one request; `Err` when no HTTP answer came (refused, reset, timeout).
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Reply, String> {
        let url = format!("{}{path}", self.base);
        let mut builder = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(authorization) = &self.authorization {
            builder = builder.header("Authorization", authorization);
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let result = match body {
            Some(bytes) => self
                .agent
                .run(builder.body(bytes).map_err(|e| e.to_string())?),
            None => self.agent.run(builder.body(()).map_err(|e| e.to_string())?),
        };
        let mut response = result.map_err(|err| format!("{method} {url}: {err}"))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = if method == "HEAD" {
            Vec::new()
        } else {
            response
                .body_mut()
                .with_config()
                .limit(64 * 1024 * 1024)
                .read_to_vec()
                .map_err(|err| format!("{method} {url}: reading the body: {err}"))?
        };
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// Sends one request; fails the test when no HTTP answer came.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Reply {
        self.try_request(method, path, headers, body)
            .unwrap_or_else(|err| panic!("{err}"))
    }

    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[], None)
    }

    /// Starts a blob upload session; the reply's `Location` is where to `PUT`.
    pub fn start_upload(&self, image: &str) -> Reply {
        self.request(
            "POST",
            &format!("/v2/{image}/blobs/uploads/"),
            &[("Content-Length", "0")],
            Some(b""),
        )
    }

    /// Uploads `blob` to `image` in one session (POST, then a monolithic PUT) and
    /// returns the final reply (201 when stored); a refused POST is returned as is.
    pub fn upload_blob(&self, image: &str, blob: &Blob) -> Reply {
        let started = self.start_upload(image);
        if started.status != 202 {
            return started;
        }
        let location = started
            .header("Location")
            .unwrap_or_else(|| panic!("upload session without Location: {started}"));
        let path = self.own_path(location);
        let separator = if path.contains('?') { '&' } else { '?' };
        self.request(
            "PUT",
            &format!("{path}{separator}digest={}", blob.digest),
            &[("Content-Type", "application/octet-stream")],
            Some(&blob.bytes),
        )
    }

    /// Uploads `blob`, failing the test unless it is stored.
    pub fn push_blob(&self, image: &str, blob: &Blob) {
        let reply = self.upload_blob(image, blob);
        assert_eq!(
            reply.status, 201,
            "uploading {} to {image}: {reply}",
            blob.digest
        );
    }

    /// `PUT /v2/<image>/manifests/<reference>` with the manifest's media type.
    pub fn put_manifest(&self, image: &str, reference: &str, manifest: &Blob) -> Reply {
        self.request(
            "PUT",
            &format!("/v2/{image}/manifests/{reference}"),
            &[("Content-Type", manifest.media_type)],
            Some(&manifest.bytes),
        )
    }

    /// `DELETE /v2/<image>/manifests/<reference>` (a tag or a digest).
    pub fn delete_manifest(&self, image: &str, reference: &str) -> Reply {
        self.request(
            "DELETE",
            &format!("/v2/{image}/manifests/{reference}"),
            &[],
            None,
        )
    }

    /// Uploads the image's blobs, then puts its manifest under `reference`.
    pub fn push_image(&self, image: &str, reference: &str, content: &Image) -> Reply {
        self.push_blob(image, &content.config);
        self.push_blob(image, &content.layer);
        self.put_manifest(image, reference, &content.manifest)
    }

    /// The digest `reference` resolves to (`HEAD`, `Docker-Content-Digest`), or
    /// `None` on 404.
    pub fn manifest_digest(&self, image: &str, reference: &str) -> Option<String> {
        let reply = self.request(
            "HEAD",
            &format!("/v2/{image}/manifests/{reference}"),
            &[("Accept", ACCEPT_MANIFESTS)],
            None,
        );
        match reply.status {
            200 => Some(
                reply
                    .header("Docker-Content-Digest")
                    .unwrap_or_else(|| panic!("HEAD without Docker-Content-Digest: {reply}"))
                    .to_owned(),
            ),
            404 => None,
            _ => panic!("HEAD /v2/{image}/manifests/{reference}: {reply}"),
        }
    }

    /// The image's tags (`[]` when the image does not exist).
    pub fn tags(&self, image: &str) -> Vec<String> {
        let reply = self.get(&format!("/v2/{image}/tags/list"));
        match reply.status {
            200 => {
                let mut tags: Vec<String> = reply.json()["tags"]
                    .as_array()
                    .map(|tags| {
                        tags.iter()
                            .filter_map(|t| t.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                tags.sort();
                tags
            }
            404 => Vec::new(),
            _ => panic!("tags of {image}: {reply}"),
        }
    }

    /// Sends one request over a plain socket, writing the body on another thread
    /// while the answer is read, as a client does that can take an early answer
    /// (a 413 before the whole body is sent). `chunked` sends the body with
    /// `Transfer-Encoding: chunked`, so no length is declared up front. One
    /// request per connection (`Connection: close`).
    pub fn raw_exchange(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        chunked: bool,
    ) -> Reply {
        use std::io::{Read, Write};
        let authority = self.base.split_once("://").map_or("", |(_, a)| a);
        let mut stream = std::net::TcpStream::connect(authority).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut head =
            format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
        if let Some(authorization) = &self.authorization {
            head.push_str(&format!("Authorization: {authorization}\r\n"));
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if chunked {
            head.push_str("Transfer-Encoding: chunked\r\n\r\n");
        } else {
            head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        }
        let mut writer = stream.try_clone().unwrap();
        let sender = std::thread::spawn(move || -> std::io::Result<()> {
            writer.write_all(head.as_bytes())?;
            if chunked {
                for chunk in body.chunks(64 * 1024) {
                    writer.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())?;
                    writer.write_all(chunk)?;
                    writer.write_all(b"\r\n")?;
                }
                writer.write_all(b"0\r\n\r\n")?;
            } else {
                writer.write_all(&body)?;
            }
            writer.flush()
        });
        let mut raw = Vec::new();
        let mut buffer = [0u8; 16 * 1024];
        let reply =
            loop {
                if let Some(reply) = parse_response(&raw) {
                    break reply;
                }
                match stream.read(&mut buffer) {
                    Ok(0) => break parse_response(&raw).unwrap_or_else(|| {
                        panic!(
                            "{method} {path}: the connection closed after {} bytes of answer: {:?}",
                            raw.len(),
                            String::from_utf8_lossy(&raw)
                        )
                    }),
                    Ok(n) => raw.extend_from_slice(&buffer[..n]),
                    Err(err) => panic!(
                        "{method} {path}: reading the answer failed after {} bytes ({err}): {:?}",
                        raw.len(),
                        String::from_utf8_lossy(&raw)
                    ),
                }
            };
        // The server may stop reading once it has answered: a failed write is fine.
        let _ = sender.join();
        reply
    }

    /// The path (and query) of `location`, which must point at this client's
    /// server when absolute: an upload session the proxy hands out must not lead
    /// the client around it to the upstream.
    fn own_path(&self, location: &str) -> String {
        match location.split_once("://") {
            Some((_, rest)) => {
                let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                let own = self.base.split_once("://").map_or("", |(_, a)| a);
                assert_eq!(
                    authority, own,
                    "Location {location} leads away from {}",
                    self.base
                );
                path.to_owned()
            }
            None => location.to_owned(),
        }
    }
}

/// A complete HTTP/1.1 response in `raw` (headers and a `Content-Length` or
/// chunked body), or `None` while more bytes are needed.
fn parse_response(raw: &[u8]) -> Option<Reply> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let body = if let Some(length) = header("Content-Length") {
        let length: usize = length.parse().ok()?;
        rest.get(..length)?.to_vec()
    } else if header("Transfer-Encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        let mut body = Vec::new();
        let mut at = 0;
        loop {
            let line_end = at + rest.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
            let size = usize::from_str_radix(
                String::from_utf8_lossy(&rest[at..line_end])
                    .split(';')
                    .next()?
                    .trim(),
                16,
            )
            .ok()?;
            at = line_end + 2;
            if size == 0 {
                break body;
            }
            body.extend_from_slice(rest.get(at..at + size)?);
            at += size + 2;
        }
    } else {
        // No length: the body runs to the end of the connection; an early answer
        // without a body is what matters here.
        rest.to_vec()
    };
    Some(Reply {
        status,
        headers,
        body,
    })
}
