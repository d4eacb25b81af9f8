#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! `taglock serve` against the attacks a hostile tester used, each against a real
//! CNCF distribution registry, and each checked on the registry directly: a
//! refused request leaves it exactly as it was.
//!
//! - request parameters the registry reads but a proxy might not (a form body,
//!   repeated or oddly separated query parameters);
//! - a manifest deleted from inside a multi-arch index an immutable tag points at;
//! - an upstream whose facts cannot be understood (a garbage digest header);
//! - an upstream slower than `--forward-timeout` that still applies the write.

mod support;

use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use support::http::Client;
use support::oci::{Blob, Image, MANIFEST};
use support::proxy::{Proxy, Serve, Workdir};
use support::registry::Registry;
use support::relay::{Fault, Relay, Seen};

const INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// `semver` tags immutable, workspace admins may delete them; `acme/web` belongs
/// to `web-app` (bob admin, devs write), `acme/secret` to `secret`, which only
/// carol may use.
fn policy() -> Value {
    json!({
        "version": 1,
        "immutability": {
            "protect": "some",
            "rules": [ { "name": "semver", "tags": { "regex": "^v\\d+\\.\\d+\\.\\d+$" } } ],
            "admin_delete": true
        },
        "permissions": {
            "workspace_admins": ["user:root"],
            "repositories": {
                "web-app": { "admin": ["user:bob"], "write": ["group:devs"] },
                "secret": { "write": ["user:carol"] }
            },
            "images": [
                { "name": "acme/web", "repository": "web-app" },
                { "name": "acme/secret", "repository": "secret" }
            ]
        }
    })
}

const USERS: &[(&str, &[&str])] = &[
    ("root", &["--workspace-admin"]),
    ("alice", &["--group", "devs"]),
    ("bob", &[]),
    ("carol", &[]),
];

/// The proxy (in front of `upstream`), the registry and the files; dropped in
/// that order.
struct Stack {
    proxy: Proxy,
    audit: PathBuf,
    _work: Workdir,
}

impl Stack {
    fn start(upstream: &str, extra: &[&str]) -> Stack {
        let work = Workdir::new();
        let policy = work.write_json("policy.json", &policy());
        let users = work.path("users.json");
        for (name, flags) in USERS {
            work.add_user(&users, name, &format!("{name}-secret"), flags);
        }
        let audit = work.path("audit.jsonl");
        let mut serve = Serve::new(upstream, &policy);
        serve.users(&users).audit_log(&audit);
        for arg in extra {
            serve.arg(*arg);
        }
        Stack {
            proxy: serve.start(),
            audit,
            _work: work,
        }
    }

    fn client(&self, user: &str) -> Client {
        self.proxy.client().login(user, &format!("{user}-secret"))
    }

    /// Every audit record written so far.
    fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.audit)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

/// The tags of every image in the registry and where they point, and whether
/// each of `blobs` is in `acme/web`: what a refused request must not change.
fn snapshot(direct: &Client, blobs: &[&str]) -> Value {
    let catalog = direct.get("/v2/_catalog").json();
    let mut images = serde_json::Map::new();
    for image in catalog["repositories"].as_array().unwrap() {
        let image = image.as_str().unwrap();
        let tags: Vec<Value> = direct
            .tags(image)
            .into_iter()
            .map(|tag| json!([tag, direct.manifest_digest(image, &tag)]))
            .collect();
        images.insert(image.to_owned(), Value::Array(tags));
    }
    let linked: Vec<Value> = blobs
        .iter()
        .map(|digest| {
            let reply = direct.request("HEAD", &format!("/v2/acme/web/blobs/{digest}"), &[], None);
            json!([digest, reply.status])
        })
        .collect();
    json!({ "images": images, "acme/web blobs": linked })
}

#[test]
fn mount_parameters_in_a_form_body_or_an_ambiguous_query_are_refused() {
    let registry = Registry::start();
    let stack = Stack::start(&registry.url(), &[]);
    let direct = registry.client();
    let secret = Image::new("secret");
    assert_eq!(
        direct.push_image("acme/secret", "v1.0.0", &secret).status,
        201
    );
    let web = Image::new("web");
    assert_eq!(direct.push_image("acme/web", "latest", &web).status, 201);
    let layer = secret.layer.digest.as_str();
    let before = snapshot(&direct, &[layer]);
    assert_eq!(before["acme/web blobs"][0][1], 404, "{before}");

    let alice = stack.client("alice");
    let form = format!("mount={layer}&from=acme/secret");
    for content_type in [
        "application/x-www-form-urlencoded",
        "Application/X-WWW-Form-Urlencoded; charset=utf-8",
        "multipart/form-data; boundary=x",
    ] {
        // Sent by a client that reads the answer while it writes the body: the
        // proxy answers from the head alone, and a client that writes its body
        // only after the head (ureq) can meet a closed connection instead.
        let reply = alice.raw_exchange(
            "POST",
            "/v2/acme/web/blobs/uploads/",
            &[("Content-Type", content_type)],
            form.clone().into_bytes(),
            false,
        );
        assert_eq!(reply.status, 415, "{content_type}: {reply}");
        assert_eq!(
            reply.error_code().as_deref(),
            Some("UNSUPPORTED"),
            "{reply}"
        );
    }
    // A form body on another method is read by the registry too.
    let reply = alice.raw_exchange(
        "PATCH",
        "/v2/acme/web/blobs/uploads/anything",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.clone().into_bytes(),
        false,
    );
    assert_eq!(reply.status, 415, "{reply}");

    // Queries the registry could read another way than the proxy.
    for query in [
        format!("mount={layer}&from=acme/web&from=acme/secret"),
        format!("mount={layer};from=acme/secret"),
        format!("mount={layer}&from=acme/secret&mount={layer}"),
        format!("mount={layer}&from=acme%2"),
    ] {
        let reply = alice.request(
            "POST",
            &format!("/v2/acme/web/blobs/uploads/?{query}"),
            &[],
            None,
        );
        assert_eq!(reply.status, 400, "{query}: {reply}");
    }
    // The same mount spelled plainly, or percent-encoded, is decided as a mount.
    for from in ["acme/secret", "acme%2Fsecret", "%61cme/secret"] {
        let reply = alice.request(
            "POST",
            &format!("/v2/acme/web/blobs/uploads/?mount={layer}&from={from}"),
            &[],
            None,
        );
        assert_eq!(reply.status, 403, "from={from}: {reply}");
        assert!(reply.text().contains("acme/secret"), "{reply}");
    }
    assert_eq!(snapshot(&direct, &[layer]), before);

    // Each refusal is in the audit log, with who asked and why.
    let records = stack.audit();
    let refused: Vec<&Value> = records
        .iter()
        .filter(|r| r["refusal"]["status"] == 415)
        .collect();
    assert_eq!(refused.len(), 4, "{records:#?}");
    assert_eq!(refused[0]["actor"]["id"], "alice");
    assert_eq!(refused[0]["method"], "POST");
    assert_eq!(refused[0]["refusal"]["code"], "UNSUPPORTED");
    assert!(
        records.iter().any(
            |r| r["refusal"]["status"] == 400 && r["path"].as_str().unwrap().contains(";from=")
        ),
        "{records:#?}"
    );
    assert_eq!(
        records
            .iter()
            .filter(|r| r["request"]["operation"] == "mount")
            .count(),
        3,
        "{records:#?}"
    );
}

/// An index of `children` (already in the registry).
fn index_of(children: &[&Image]) -> Blob {
    let manifests: Vec<Value> = children
        .iter()
        .zip(["amd64", "arm64"])
        .map(|(child, arch)| {
            json!({
                "mediaType": MANIFEST,
                "digest": child.manifest.digest,
                "size": child.manifest.bytes.len(),
                "platform": { "architecture": arch, "os": "linux" }
            })
        })
        .collect();
    let index = json!({ "schemaVersion": 2, "mediaType": INDEX, "manifests": manifests });
    Blob::new(INDEX, serde_json::to_vec(&index).unwrap())
}

#[test]
fn a_manifest_inside_an_index_an_immutable_tag_points_at_is_protected() {
    let registry = Registry::start();
    let stack = Stack::start(&registry.url(), &[]);
    let direct = registry.client();
    let (amd64, arm64) = (Image::new("amd64"), Image::new("arm64"));
    let alice = stack.client("alice");
    for child in [&amd64, &arm64] {
        let reply = alice.push_image("acme/web", &child.manifest.digest, child);
        assert_eq!(reply.status, 201, "{reply}");
    }
    let index = index_of(&[&amd64, &arm64]);
    let reply = alice.put_manifest("acme/web", "v1.0.0", &index);
    assert_eq!(reply.status, 201, "{reply}");
    let before = snapshot(&direct, &[]);

    // A repository admin (not a workspace admin) deletes one child by digest.
    let child = amd64.manifest.digest.as_str();
    let reply = stack.client("bob").request(
        "DELETE",
        &format!("/v2/acme/web/manifests/{child}"),
        &[],
        None,
    );
    assert_eq!(reply.status, 403, "{reply}");
    let message = reply.json()["errors"][0]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("immutable tag v1.0.0")
            && message.contains(&format!("through index {}", &index.digest[..19])),
        "{message}"
    );
    assert_eq!(snapshot(&direct, &[]), before);
    let child_there = direct.request(
        "HEAD",
        &format!("/v2/acme/web/manifests/{child}"),
        &[("Accept", MANIFEST)],
        None,
    );
    assert_eq!(child_there.status, 200, "{child_there}");
    let record = stack
        .audit()
        .into_iter()
        .find(|r| r["method"] == "DELETE")
        .unwrap();
    assert_eq!(record["request"]["tags"][0]["name"], "v1.0.0", "{record}");
    assert_eq!(
        record["request"]["tags"][0]["via"][0],
        index.digest.as_str(),
        "{record}"
    );

    // A workspace admin may; the registry then really deletes it.
    let reply = stack.client("root").request(
        "DELETE",
        &format!("/v2/acme/web/manifests/{child}"),
        &[],
        None,
    );
    assert_eq!(reply.status, 202, "{reply}");
}

#[test]
fn facts_the_proxy_cannot_understand_fail_closed() {
    let registry = Registry::start();
    let direct = registry.client();
    let original = Image::new("original");
    assert_eq!(
        direct.push_image("acme/web", "v1.0.0", &original).status,
        201
    );
    let other = Image::new("other");
    direct.push_blob("acme/web", &other.config);
    direct.push_blob("acme/web", &other.layer);
    let before = snapshot(&direct, &[]);

    for garbage in [
        "garbage",
        "sha256:short",
        "sha256:deadbeef, sha256:feedface",
    ] {
        let relay = Relay::start(&registry.host(), move |seen: &Seen| Fault {
            replace_header: (seen.method == "HEAD")
                .then(|| ("Docker-Content-Digest".to_owned(), garbage.to_owned())),
            ..Fault::default()
        });
        let stack = Stack::start(&relay.url(), &[]);

        // A push: the tag's digest is unknown, so nothing is forwarded (503), and
        // the client is not told its own manifest is at fault.
        let reply = stack
            .client("alice")
            .put_manifest("acme/web", "v1.0.0", &other.manifest);
        assert_eq!(reply.status, 503, "{garbage}: {reply}");
        assert_eq!(
            reply.error_code().as_deref(),
            Some("UNAVAILABLE"),
            "{reply}"
        );
        assert!(!reply.text().contains("invalid"), "{reply}");

        // Deletes: the tags are unknown, and unknown is refused, even for the
        // workspace admin (the tag's rule cannot be checked).
        for reference in [original.manifest.digest.as_str(), "v1.0.0"] {
            let reply = stack.client("bob").request(
                "DELETE",
                &format!("/v2/acme/web/manifests/{reference}"),
                &[],
                None,
            );
            assert_eq!(reply.status, 403, "{garbage} {reference}: {reply}");
        }
        assert_eq!(snapshot(&direct, &[]), before, "{garbage}");
        let records = stack.audit();
        let delete = records.iter().find(|r| r["method"] == "DELETE").unwrap();
        assert_eq!(delete["request"]["tags"], Value::Null, "{delete}");
        assert!(delete["unknown"].as_str().is_some(), "{delete}");
    }
}

#[test]
fn a_write_that_timed_out_keeps_its_tag_locked_until_the_upstream_finishes() {
    let registry = Registry::start();
    let direct = registry.client();
    let (first, second) = (Image::new("first"), Image::new("second"));
    for image in [&first, &second] {
        direct.push_blob("acme/web", &image.config);
        direct.push_blob("acme/web", &image.layer);
    }
    // The first manifest PUT reaches the registry only after 4 s; the proxy gives
    // up on it after 1 s.
    let delayed = Arc::new(AtomicBool::new(false));
    let once = Arc::clone(&delayed);
    let relay = Relay::start(&registry.host(), move |seen: &Seen| Fault {
        delay: (seen.method == "PUT"
            && seen.path.contains("/manifests/")
            && !once.swap(true, Ordering::SeqCst))
        .then_some(Duration::from_secs(4)),
        ..Fault::default()
    });
    let stack = Stack::start(&relay.url(), &["--forward-timeout", "1s"]);
    let alice = stack.client("alice");

    let started = Instant::now();
    let reply = alice.put_manifest("acme/web", "v1.0.0", &first.manifest);
    assert_eq!(reply.status, 503, "{reply}");
    assert!(reply.text().contains("may still land"), "{reply}");
    assert!(delayed.load(Ordering::SeqCst));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "answered before the write landed"
    );

    // A second push to the tag waits for the first write, then sees the tag.
    let reply = alice.put_manifest("acme/web", "v1.0.0", &second.manifest);
    assert_eq!(reply.status, 403, "{reply}");
    assert!(started.elapsed() >= Duration::from_secs(4));
    assert_eq!(
        direct.manifest_digest("acme/web", "v1.0.0").as_deref(),
        Some(first.manifest.digest.as_str())
    );
    // The registry never got the second manifest.
    let reply = direct.request(
        "HEAD",
        &format!("/v2/acme/web/manifests/{}", second.manifest.digest),
        &[("Accept", MANIFEST)],
        None,
    );
    assert_eq!(reply.status, 404, "{reply}");
}

#[test]
fn refusals_of_the_proxy_itself_are_audited() {
    let registry = Registry::start();
    let stack = Stack::start(&registry.url(), &[]);
    let digest = Image::new("any").layer.digest;
    let alice = stack.client("alice");
    let cases: Vec<(Client, &str, String, u16)> = vec![
        (
            alice.clone(),
            "DELETE",
            format!("/v2/acme/web/blobs/{digest}"),
            405,
        ),
        (
            alice.clone(),
            "POST",
            "/v2/acme/web/unknown".to_owned(),
            405,
        ),
        (stack.proxy.client(), "GET", "/v2/_catalog".to_owned(), 401),
        (
            stack.proxy.client().login("alice", "wrong"),
            "GET",
            "/v2/acme/web/tags/list".to_owned(),
            401,
        ),
    ];
    for (client, method, path, status) in &cases {
        let reply = client.request(method, path, &[], None);
        assert_eq!(reply.status, *status, "{method} {path}: {reply}");
    }
    let records = stack.audit();
    for (_, method, path, status) in &cases {
        let record = records
            .iter()
            .find(|r| r["method"] == *method && r["path"] == path.as_str())
            .unwrap_or_else(|| panic!("no record of {method} {path}: {records:#?}"));
        assert_eq!(record["refusal"]["status"], *status, "{record}");
        assert!(record["refusal"]["message"].as_str().is_some(), "{record}");
        assert!(record.get("decision").is_none(), "{record}");
    }
    let blob_delete = &records[0];
    assert_eq!(blob_delete["actor"]["id"], "alice", "{blob_delete}");
}

#[test]
fn a_manifest_body_sent_too_slowly_is_refused_in_bounded_time() {
    use std::io::{Read, Write};
    let registry = Registry::start();
    let stack = Stack::start(&registry.url(), &["--header-read-timeout", "1s"]);
    let authorization = taglock_proxy::upstream::basic_authorization("alice", "alice-secret")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let mut socket = std::net::TcpStream::connect(stack.proxy.host()).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let started = Instant::now();
    write!(
        socket,
        "PUT /v2/acme/web/manifests/v1.0.0 HTTP/1.1\r\nHost: x\r\nAuthorization: {authorization}\r\n\
         Content-Type: {MANIFEST}\r\nContent-Length: 1000\r\n\r\n{{\"schema"
    )
    .unwrap();
    // The rest of the body never comes; the connection stays open.
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(err) => panic!("no answer after {:?}: {err}", started.elapsed()),
        }
    }
    let answer = String::from_utf8_lossy(&answer).into_owned();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(registry.client().tags("acme/web"), Vec::<String>::new());
    let records = stack.audit();
    assert!(
        records
            .iter()
            .any(|r| r["refusal"]["status"] == 408 && r["actor"]["id"] == "alice"),
        "{records:#?}"
    );
}
