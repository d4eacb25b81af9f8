#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! `taglock serve` in front of a real CNCF distribution registry, driven by more
//! real clients than skopeo: podman and buildah (containers/image, without a
//! daemon), oras-py (an ORAS client: artifacts with a `subject`, chunked
//! uploads) and the raw HTTP client for what no client sends on demand. What
//! they do through the proxy: protected-tag pushes and refused overwrites,
//! chunked uploads (PATCH with Content-Range), cross-repository mounts, a
//! multi-arch index under an immutable tag, referrers (the referrers API and its
//! tag-schema fallback) and cosign-style signature tags under both
//! `referrer_tags` settings. Every refusal is checked on the registry itself: it
//! is left exactly as it was.
//!
//! The proxy runs with `--auth none` and an immutability-only policy: the
//! registry does its own (here: no) authentication, taglock enforces immutability.
//! docker-registry, skopeo, podman, buildah and oras-py must be installed
//! (scripts/install-registry.sh, scripts/install-clients.sh); a test fails, never
//! skips, when one is missing.

mod support;

use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;
use support::http::{ACCEPT_MANIFESTS, Client};
use support::oci::{Blob, INDEX, Image, Index, MANIFEST, referrer_tag, referrers_index};
use support::oras;
use support::podman::{Storage, Tool};
use support::process::{Output, wait_until};
use support::proxy::{Proxy, Serve, Workdir};
use support::registry::Registry;
use support::skopeo;
use support::verdict::{assert_denied, assert_refused};

/// A registry that logs every request, the proxy in front of it (`--auth none`),
/// and the test's files. Fields drop in order: the proxy, then the registry,
/// then the files.
struct Stack {
    proxy: Proxy,
    registry: Registry,
    audit: PathBuf,
    work: Workdir,
}

impl Stack {
    /// Starts a registry and the proxy enforcing `policy` in front of it.
    fn start(policy: &Value) -> Stack {
        let registry = Registry::start_with_access_log();
        let work = Workdir::new();
        let policy = work.write_json("policy.json", policy);
        let audit = work.path("audit.jsonl");
        let proxy = Serve::new(&registry.url(), &policy)
            .arg("--auth")
            .arg("none")
            .audit_log(&audit)
            .start();
        Stack {
            proxy,
            registry,
            audit,
            work,
        }
    }

    /// A raw client of the proxy.
    fn client(&self) -> Client {
        self.proxy.client()
    }

    /// A raw client of the registry, around the proxy.
    fn direct(&self) -> Client {
        self.registry.client()
    }

    /// `HOST:PORT/IMAGE:TAG` (or `…@DIGEST`) through the proxy.
    fn at(&self, reference: &str) -> String {
        format!("{}/{reference}", self.proxy.host())
    }

    /// Writes `content` as an OCI layout (tagged `latest`) and returns its path.
    fn layout(&self, content: &Image) -> PathBuf {
        let layout = self
            .work
            .path(&format!("layout-{}", &content.manifest.digest[7..23]));
        content.write_layout(&layout, "latest");
        layout
    }

    /// `skopeo copy` of `content` to `reference` through the proxy.
    fn skopeo_push(&self, content: &Image, reference: &str) -> Output {
        skopeo::copy(&self.layout(content), "latest", &self.at(reference), None)
    }

    /// Waits (bounded) for an audit line that `matches`, and returns it.
    fn audit_line(&self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let mut found = None;
        let waited = wait_until(Duration::from_secs(10), || {
            let text = std::fs::read_to_string(&self.audit).unwrap_or_default();
            found = text
                .lines()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .find(|entry| matches(entry));
            found.as_ref().map(|_| ()).ok_or(text)
        });
        match (waited, found) {
            (Ok(()), Some(entry)) => entry,
            (Err(text), _) => {
                panic!(
                    "no audit line for {what} in {}:\n{text}",
                    self.audit.display()
                )
            }
            (Ok(()), None) => unreachable!("wait_until succeeds only with a line"),
        }
    }

    /// The registry as seen directly: every image's tags and their digests, and
    /// whether each of `manifests` (`image@digest`) still exists.
    fn snapshot(&self, manifests: &[(&str, &str)]) -> Value {
        let direct = self.direct();
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
        let manifests: Vec<Value> = manifests
            .iter()
            .map(|(image, digest)| {
                json!([
                    image,
                    digest,
                    direct.manifest_digest(image, digest).is_some()
                ])
            })
            .collect();
        json!({ "tags": images, "manifests": manifests })
    }
}

/// `semver` tags are immutable; every other tag is mutable.
fn semver_policy() -> Value {
    json!({
        "version": 1,
        "mode": "enforce",
        "immutability": {
            "protect": "some",
            "rules": [ { "name": "semver", "tags": { "regex": "^v\\d+\\.\\d+\\.\\d+$" } } ]
        }
    })
}

/// Every tag but `latest` is immutable, with cosign-style referrer tags treated as
/// `referrer_tags` says (`mutable` or `protected`).
fn signing_policy(referrer_tags: &str) -> Value {
    json!({
        "version": 1,
        "mode": "enforce",
        "immutability": {
            "protect": "all",
            "exceptions": [ { "matching": ["latest"] } ],
            "referrer_tags": referrer_tags
        }
    })
}

/// The client succeeded.
fn assert_ok(client: &str, output: &Output) {
    assert!(output.success(), "{client} failed: {output}");
}

/// The requests the registry answered whose method is `method` and whose path
/// starts with `prefix`, their paths with `%3A` and `%2F` decoded.
fn requests(stack: &Stack, method: &str, prefix: &str) -> Vec<(String, u16)> {
    stack
        .registry
        .requests()
        .into_iter()
        .map(|(m, path, status)| (m, path.replace("%3A", ":").replace("%2F", "/"), status))
        .filter(|(m, path, _)| m == method && path.starts_with(prefix))
        .map(|(_, path, status)| (path, status))
        .collect()
}

#[test]
fn podman_and_buildah_push_protected_tags_and_their_overwrites_are_refused() {
    let stack = Stack::start(&semver_policy());
    let direct = stack.direct();
    let storage = Storage::new();
    let (first, second) = (Image::new("podman first"), Image::new("podman second"));
    let first_id = storage.load(&first);
    let second_id = storage.load(&second);

    // podman pushes a protected tag: the registry holds what podman pushed.
    let (output, pushed) =
        storage.push(Tool::Podman, &first_id, &stack.at("acme/web:v1.0.0"), None);
    assert_ok("podman push", &output);
    let pushed = pushed.expect("podman wrote no digest file");
    // podman (containers/image) uploads each blob as one streamed PATCH (chunked
    // transfer encoding, no Content-Range) between the POST and the closing PUT.
    let sessions = requests(&stack, "POST", "/v2/acme/web/blobs/uploads/");
    let patches = requests(&stack, "PATCH", "/v2/acme/web/blobs/uploads/");
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    assert_eq!(patches.len(), 2, "{patches:?}");
    assert!(
        patches.iter().all(|(_, status)| *status == 202),
        "{patches:?}"
    );
    assert_eq!(
        direct.manifest_digest("acme/web", "v1.0.0"),
        Some(pushed.clone())
    );

    // Its overwrite, by podman and by buildah, is refused with taglock's sentence,
    // and leaves the registry as it was.
    let before = stack.snapshot(&[("acme/web", &pushed)]);
    for tool in [Tool::Podman, Tool::Buildah] {
        let (output, digest) = storage.push(tool, &second_id, &stack.at("acme/web:v1.0.0"), None);
        assert_refused(
            &format!("{tool:?}"),
            &output,
            &format!(
                "tag v1.0.0 of acme/web is immutable (rule \"semver\") and already points to {}…",
                &pushed[..19]
            ),
        );
        assert_eq!(digest, None, "{tool:?} reported a pushed digest");
        assert_eq!(stack.snapshot(&[("acme/web", &pushed)]), before);
    }

    // A mutable tag moves, whichever of them pushes.
    let (output, at_first) =
        storage.push(Tool::Podman, &first_id, &stack.at("acme/web:latest"), None);
    assert_ok("podman push", &output);
    assert_eq!(direct.manifest_digest("acme/web", "latest"), at_first);
    let (output, at_second) = storage.push(
        Tool::Buildah,
        &second_id,
        &stack.at("acme/web:latest"),
        None,
    );
    assert_ok("buildah push", &output);
    assert_ne!(at_first, at_second);
    assert_eq!(direct.manifest_digest("acme/web", "latest"), at_second);
    assert_eq!(direct.manifest_digest("acme/web", "v1.0.0"), Some(pushed));
}

#[test]
fn chunked_uploads_by_the_raw_client_and_oras_pass_through_the_proxy() {
    let stack = Stack::start(&semver_policy());
    let client = stack.client();
    let direct = stack.direct();

    // The raw client: POST, two PATCHes with Content-Range, then the closing PUT.
    let image = Image::new("chunked");
    let chunked_upload = |blob: &Blob| {
        let started = client.start_upload("acme/web");
        assert_eq!(started.status, 202, "{started}");
        let mut location = started.header("Location").unwrap().to_owned();
        let half = blob.bytes.len() / 2;
        for (start, chunk) in [(0, &blob.bytes[..half]), (half, &blob.bytes[half..])] {
            let range = format!("{start}-{}", start + chunk.len() - 1);
            let reply = client.request(
                "PATCH",
                &path_of(&location),
                &[
                    ("Content-Type", "application/octet-stream"),
                    ("Content-Range", &range),
                ],
                Some(chunk),
            );
            assert_eq!(reply.status, 202, "PATCH {range}: {reply}");
            assert_eq!(
                reply.header("Range"),
                Some(format!("0-{}", start + chunk.len() - 1).as_str()),
                "{reply}"
            );
            location = reply.header("Location").unwrap().to_owned();
        }
        let path = path_of(&location);
        let separator = if path.contains('?') { '&' } else { '?' };
        let reply = client.request(
            "PUT",
            &format!("{path}{separator}digest={}", blob.digest),
            &[("Content-Length", "0")],
            Some(b""),
        );
        assert_eq!(reply.status, 201, "closing PUT: {reply}");
    };
    chunked_upload(&image.config);
    chunked_upload(&image.layer);
    let patches = requests(&stack, "PATCH", "/v2/acme/web/blobs/uploads/");
    assert_eq!(patches.len(), 4, "{patches:?}");
    assert!(
        patches.iter().all(|(_, status)| *status == 202),
        "{patches:?}"
    );
    assert_eq!(
        client
            .get(&format!("/v2/acme/web/blobs/{}", image.layer.digest))
            .body,
        image.layer.bytes
    );
    assert_eq!(
        client
            .put_manifest("acme/web", "v1.0.0", &image.manifest)
            .status,
        201
    );

    // A chunked upload of another image's blobs is fine; its manifest cannot
    // overwrite the protected tag, and the registry is left as it was.
    let other = Image::new("chunked other");
    let before = stack.snapshot(&[("acme/web", &other.manifest.digest)]);
    chunked_upload(&other.layer);
    chunked_upload(&other.config);
    assert_denied(
        &client.put_manifest("acme/web", "v1.0.0", &other.manifest),
        "tag v1.0.0 of acme/web is immutable",
    );
    assert_eq!(
        stack.snapshot(&[("acme/web", &other.manifest.digest)]),
        before
    );

    // oras-py uploads in chunks of 1000 bytes: three PATCHes for 2500 bytes.
    let file = stack.work.path("payload.bin");
    let payload: Vec<u8> = (0..2500u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &payload).unwrap();
    let output = oras::push(
        &stack.at("acme/tools:bundle"),
        &file,
        "application/vnd.example.taglock.bundle",
        &oras::Push {
            chunk_size: Some(1000),
            ..oras::Push::default()
        },
    );
    assert_ok("oras push", &output);
    let patches = requests(&stack, "PATCH", "/v2/acme/tools/blobs/uploads/");
    assert_eq!(patches.len(), 3, "{patches:?}");
    assert!(
        patches.iter().all(|(_, status)| *status == 202),
        "{patches:?}"
    );
    assert_eq!(
        direct.manifest_digest("acme/tools", "bundle").as_deref(),
        Some(output.stdout.trim())
    );
    let out = stack.work.path("pulled");
    let pulled = oras::pull(&stack.at("acme/tools:bundle"), &out);
    assert_ok("oras pull", &pulled);
    assert_eq!(std::fs::read(out.join("payload.bin")).unwrap(), payload);
}

/// The path and query of an upload `Location`, absolute or not.
fn path_of(location: &str) -> String {
    match location.split_once("://") {
        Some((_, rest)) => rest[rest.find('/').unwrap()..].to_owned(),
        None => location.to_owned(),
    }
}

#[test]
fn skopeo_and_podman_mount_blobs_from_another_repository_through_the_proxy() {
    let stack = Stack::start(&semver_policy());
    let direct = stack.direct();

    // skopeo pushes an image to acme/web, then the same image to acme/api: its
    // blob-info cache knows the layer is in acme/web of the same registry (the
    // proxy), so it asks for a mount instead of uploading.
    let image = Image::new("mounted");
    assert_ok("skopeo copy", &stack.skopeo_push(&image, "acme/web:v1.0.0"));
    assert_ok("skopeo copy", &stack.skopeo_push(&image, "acme/api:v1.0.0"));
    let mounts = requests(&stack, "POST", "/v2/acme/api/blobs/uploads/?");
    let layer = &image.layer.digest;
    assert!(
        mounts.iter().any(|(path, status)| *status == 201
            && path.contains(&format!("mount={layer}"))
            && path.contains("from=acme/web")),
        "no mount of {} from acme/web reached the registry: {mounts:?}",
        image.layer.digest
    );
    let line = stack.audit_line("skopeo's mount", |e| {
        e["request"]["operation"] == "mount"
            && e["path"]
                .as_str()
                .unwrap_or("")
                .starts_with("/v2/acme/api/")
    });
    assert_eq!(line["decision"]["allowed"], true, "{line}");
    assert_eq!(
        direct.manifest_digest("acme/api", "v1.0.0").as_deref(),
        Some(image.manifest.digest.as_str())
    );

    // podman does the same from its own storage.
    let storage = Storage::new();
    let id = storage.load(&Image::new("podman mounted"));
    let (output, pushed) = storage.push(Tool::Podman, &id, &stack.at("acme/web:v2.0.0"), None);
    assert_ok("podman push", &output);
    let before = requests(&stack, "POST", "/v2/acme/tools/blobs/uploads/?").len();
    assert_eq!(before, 0);
    let (output, again) = storage.push(Tool::Podman, &id, &stack.at("acme/tools:v2.0.0"), None);
    assert_ok("podman push", &output);
    assert_eq!(pushed, again);
    let mounts = requests(&stack, "POST", "/v2/acme/tools/blobs/uploads/?");
    assert!(
        mounts.iter().any(|(path, status)| *status == 201
            && path.contains("mount=sha256:")
            && path.contains("from=acme/web")),
        "podman mounted nothing from acme/web: {mounts:?}"
    );
    assert_eq!(direct.manifest_digest("acme/tools", "v2.0.0"), pushed);
}

#[test]
fn a_multi_arch_index_under_an_immutable_tag_protects_its_platform_manifests() {
    let stack = Stack::start(&semver_policy());
    let client = stack.client();

    // The raw client pushes both platform manifests by digest, then the index
    // under the protected tag.
    let web = Index::new("web release", 2);
    for child in &web.children {
        let reply = client.push_image("acme/web", &child.manifest.digest, child);
        assert_eq!(reply.status, 201, "{reply}");
    }
    assert_eq!(
        client
            .put_manifest("acme/web", "v1.0.0", &web.manifest)
            .status,
        201
    );

    // skopeo pushes a whole index from an OCI layout (`copy --all`).
    let api = Index::new("api release", 2);
    let layout = stack.work.path("api-index");
    api.write_layout(&layout, "latest");
    assert_ok(
        "skopeo copy --all",
        &skopeo::copy_all(&layout, "latest", &stack.at("acme/api:v1.0.0"), None, true),
    );
    let direct = stack.direct();
    assert_eq!(
        direct.manifest_digest("acme/api", "v1.0.0").as_deref(),
        Some(api.manifest.digest.as_str())
    );

    let manifests: Vec<(&str, &str)> = [("acme/web", &web), ("acme/api", &api)]
        .iter()
        .flat_map(|(image, index)| {
            index
                .children
                .iter()
                .map(|c| (*image, c.manifest.digest.as_str()))
                .chain([(*image, index.manifest.digest.as_str())])
        })
        .collect();
    let before = stack.snapshot(&manifests);
    assert!(
        manifests
            .iter()
            .all(|m| direct.manifest_digest(m.0, m.1).is_some())
    );

    for (image, index) in [("acme/web", &web), ("acme/api", &api)] {
        for child in &index.children {
            let child = child.manifest.digest.as_str();
            // Deleting a platform manifest by digest: refused for the raw client
            // and for skopeo, with the path through the index named.
            let sentence = format!(
                "manifest {}… of {image} is reachable from immutable tag v1.0.0 (rule \"semver\") through index {}…",
                &child[..19],
                &index.manifest.digest[..19]
            );
            assert_denied(&client.delete_manifest(image, child), &sentence);
            assert_refused(
                "skopeo delete",
                &skopeo::delete(&stack.at(&format!("{image}@{child}")), None),
                &sentence,
            );
        }
        // The index itself, by digest.
        let reply = client.delete_manifest(image, &index.manifest.digest);
        assert_denied(&reply, "immutable tag v1.0.0");

        // Another index cannot take the tag, by skopeo or by the raw client. (skopeo
        // retries a refused OCI index as a Docker manifest list, so it may not
        // preserve digests here, or its last error would be about that conversion.)
        let other = Index::new("other release", 2);
        let layout = stack
            .work
            .path(&format!("other-{}", &other.manifest.digest[7..19]));
        other.write_layout(&layout, "latest");
        assert_refused(
            "skopeo copy --all",
            &skopeo::copy_all(
                &layout,
                "latest",
                &stack.at(&format!("{image}:v1.0.0")),
                None,
                false,
            ),
            &format!("tag v1.0.0 of {image} is immutable"),
        );
        assert_denied(
            &client.put_manifest(image, "v1.0.0", &other.manifest),
            &format!("tag v1.0.0 of {image} is immutable"),
        );
    }
    assert_eq!(stack.snapshot(&manifests), before);
}

#[test]
fn an_oras_referrer_of_an_immutable_image_and_its_fallback_tag_through_the_proxy() {
    let stack = Stack::start(&semver_policy());
    let client = stack.client();
    let direct = stack.direct();
    let image = Image::new("referred");
    assert_ok("skopeo copy", &stack.skopeo_push(&image, "acme/web:v1.0.0"));
    let subject = image.manifest.digest.as_str();

    // oras-py pushes an SBOM whose subject is the released image.
    let file = stack.work.path("sbom.json");
    std::fs::write(&file, br#"{"sbom":"taglock test"}"#).unwrap();
    let output = oras::push(
        &stack.at("acme/web:sbom"),
        &file,
        "application/vnd.example.sbom.v1+json",
        &oras::Push {
            artifact_type: Some("application/vnd.example.sbom"),
            subject: Some((subject, image.manifest.bytes.len(), MANIFEST)),
            annotations: &[("org.example.taglock.kind", "sbom")],
            chunk_size: None,
        },
    );
    assert_ok("oras push", &output);
    let sbom = output.stdout.trim().to_owned();
    let stored = direct.request(
        "GET",
        &format!("/v2/acme/web/manifests/{sbom}"),
        &[("Accept", ACCEPT_MANIFESTS)],
        None,
    );
    let stored_json = stored.json();
    assert_eq!(stored_json["subject"]["digest"], subject, "{stored}");
    assert_eq!(
        stored_json["annotations"]["org.example.taglock.kind"],
        "sbom"
    );

    // The referrers API: distribution 2.8 has none (its router answers a plain-text
    // 404), and the proxy passes that answer on unchanged.
    let path = format!("/v2/acme/web/referrers/{subject}");
    let upstream = direct.get(&path);
    assert_eq!(upstream.status, 404, "{upstream}");
    assert_eq!(upstream.text(), "404 page not found\n");
    let through = client.get(&path);
    assert_eq!(
        (through.status, through.text()),
        (upstream.status, upstream.text()),
        "{through}"
    );
    let filtered = client.get(&format!("{path}?artifactType=application/vnd.example.sbom"));
    assert_eq!(filtered.status, 404, "{filtered}");

    // So a client falls back to the tag schema: it reads `sha256-<hex>` (none
    // yet), and writes the index of referrers under it through the proxy.
    let fallback = referrer_tag(subject, "");
    assert_eq!(client.manifest_digest("acme/web", &fallback), None);
    let descriptor = json!({
        "mediaType": MANIFEST,
        "digest": sbom,
        "size": stored.body.len(),
        "artifactType": "application/vnd.example.sbom",
        "annotations": { "org.example.taglock.kind": "sbom" },
    });
    let index = Blob::new(
        INDEX,
        serde_json::to_vec(
            &json!({ "schemaVersion": 2, "mediaType": INDEX, "manifests": [descriptor] }),
        )
        .unwrap(),
    );
    assert_eq!(
        client.put_manifest("acme/web", &fallback, &index).status,
        201
    );
    let listed = client.request(
        "GET",
        &format!("/v2/acme/web/manifests/{fallback}"),
        &[("Accept", ACCEPT_MANIFESTS)],
        None,
    );
    assert_eq!(listed.status, 200, "{listed}");
    assert_eq!(listed.json()["manifests"][0]["digest"], sbom.as_str());
    assert_eq!(
        listed.json()["manifests"][0]["artifactType"],
        "application/vnd.example.sbom"
    );

    // The artifact comes back through the proxy.
    let out = stack.work.path("pulled");
    assert_ok("oras pull", &oras::pull(&stack.at("acme/web:sbom"), &out));
    assert_eq!(
        std::fs::read(out.join("sbom.json")).unwrap(),
        br#"{"sbom":"taglock test"}"#
    );

    // oras cannot put an artifact over the released tag, and the registry is left
    // as it was. oras-py 0.2.43 takes any 403 for an authentication challenge and
    // reports only that it cannot answer it; the decision's sentence is in the
    // proxy's answer (and audit log), which oras-py does not print.
    let before = stack.snapshot(&[("acme/web", subject), ("acme/web", &sbom)]);
    let output = oras::push(
        &stack.at("acme/web:v1.0.0"),
        &file,
        "application/vnd.example.sbom.v1+json",
        &oras::Push::default(),
    );
    assert_refused(
        "oras push",
        &output,
        "Cannot respond to request for authentication",
    );
    let line = stack.audit_line("oras's refused overwrite", |e| {
        e["method"] == "PUT"
            && e["path"] == "/v2/acme/web/manifests/v1.0.0"
            && e["decision"]["allowed"] == false
    });
    assert!(
        line["decision"]["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("tag v1.0.0 of acme/web is immutable (rule \"semver\")"),
        "{line}"
    );
    assert_eq!(
        stack.snapshot(&[("acme/web", subject), ("acme/web", &sbom)]),
        before
    );
    assert_eq!(
        direct.manifest_digest("acme/web", "v1.0.0").as_deref(),
        Some(subject)
    );
}

/// Signatures and referrers of an image under `protect: all` with
/// `referrer_tags` set to `setting`: cosign-style `.sig` tags, OCI 1.1 referrers
/// and the tag-schema fallback index, re-signing, and deletes by digest.
fn signatures(setting: &str) {
    let mutable = setting == "mutable";
    let stack = Stack::start(&signing_policy(setting));
    let client = stack.client();
    let direct = stack.direct();
    let image = Image::new("signed");
    assert_ok("skopeo copy", &stack.skopeo_push(&image, "acme/web:v1.0.0"));
    let subject = image.manifest.digest.as_str();
    let sig_tag = referrer_tag(subject, ".sig");

    // The first signature goes in under `sha256-<hex>.sig` either way (a first
    // push of a protected tag is allowed).
    let first = Image::signature_of(&image.manifest, "alice");
    assert_eq!(client.push_image("acme/web", &sig_tag, &first).status, 201);
    assert_eq!(
        direct.manifest_digest("acme/web", &sig_tag).as_deref(),
        Some(first.manifest.digest.as_str())
    );

    // Re-signing moves the tag: allowed when referrer tags are mutable, refused
    // (and nothing changes) when they are protected.
    let second = Image::signature_of(&image.manifest, "bob");
    let watched = [
        ("acme/web", subject),
        ("acme/web", first.manifest.digest.as_str()),
        ("acme/web", second.manifest.digest.as_str()),
    ];
    let before = stack.snapshot(&watched);
    let reply = client.push_image("acme/web", &sig_tag, &second);
    let signature = if mutable {
        assert_eq!(reply.status, 201, "{reply}");
        assert_eq!(
            direct.manifest_digest("acme/web", &sig_tag).as_deref(),
            Some(second.manifest.digest.as_str())
        );
        &second
    } else {
        assert_denied(&reply, &format!("tag {sig_tag} of acme/web is immutable"));
        assert_eq!(stack.snapshot(&watched), before);
        &first
    };

    // OCI 1.1 referrers pushed by digest, listed by the fallback index under
    // `sha256-<hex>`; a second referrer rewrites that index, which moves the tag.
    let fallback = referrer_tag(subject, "");
    let sbom = Image::referrer(&image.manifest, "application/vnd.example.sbom", "sbom");
    let vex = Image::referrer(&image.manifest, "application/vnd.example.vex", "vex");
    for referrer in [&sbom, &vex] {
        let reply = client.push_image("acme/web", &referrer.manifest.digest, referrer);
        assert_eq!(reply.status, 201, "{reply}");
        // distribution 2.8 stores the subject but does not process it: no
        // `OCI-Subject` answer, so a client must maintain the fallback index.
        assert_eq!(reply.header("OCI-Subject"), None, "{reply}");
    }
    let one = referrers_index(&[&sbom]);
    assert_eq!(client.put_manifest("acme/web", &fallback, &one).status, 201);
    let both = referrers_index(&[&sbom, &vex]);
    let watched = [
        ("acme/web", subject),
        ("acme/web", sbom.manifest.digest.as_str()),
        ("acme/web", vex.manifest.digest.as_str()),
        ("acme/web", signature.manifest.digest.as_str()),
    ];
    let before = stack.snapshot(&watched);
    let reply = client.put_manifest("acme/web", &fallback, &both);
    if mutable {
        assert_eq!(reply.status, 201, "{reply}");
    } else {
        assert_denied(&reply, &format!("tag {fallback} of acme/web is immutable"));
        assert_eq!(stack.snapshot(&watched), before);
    }
    let listed = direct.manifest_digest("acme/web", &fallback);
    let expected = if mutable { &both } else { &one };
    assert_eq!(listed.as_deref(), Some(expected.digest.as_str()));

    // Deleting the signature's manifest by digest: allowed when referrer tags are
    // mutable (the `.sig` tag goes with it), refused when the tag is protected.
    // Either way the signed image is untouched.
    let before = stack.snapshot(&watched);
    let reply = client.delete_manifest("acme/web", &signature.manifest.digest);
    if mutable {
        assert_eq!(reply.status, 202, "{reply}");
        assert_eq!(direct.manifest_digest("acme/web", &sig_tag), None);
        assert_eq!(
            direct.manifest_digest("acme/web", &signature.manifest.digest),
            None
        );
    } else {
        assert_denied(&reply, &format!("immutable tag {sig_tag}"));
        assert_eq!(stack.snapshot(&watched), before);
    }
    assert_eq!(
        direct.manifest_digest("acme/web", "v1.0.0").as_deref(),
        Some(subject)
    );
    assert_eq!(
        direct.manifest_digest("acme/web", subject).as_deref(),
        Some(subject)
    );

    // Deleting a referrer listed by the fallback index: the index reaches it, so
    // it is as protected as the `sha256-<hex>` tag.
    let before = stack.snapshot(&watched);
    let reply = client.delete_manifest("acme/web", &sbom.manifest.digest);
    if mutable {
        assert_eq!(reply.status, 202, "{reply}");
        assert_eq!(
            direct.manifest_digest("acme/web", &sbom.manifest.digest),
            None
        );
    } else {
        assert_denied(
            &reply,
            &format!("is reachable from immutable tag {fallback}"),
        );
        assert_eq!(stack.snapshot(&watched), before);
    }
    assert_eq!(
        direct.manifest_digest("acme/web", "v1.0.0").as_deref(),
        Some(subject)
    );

    // The signed image itself stays undeletable by digest, under both settings.
    let before = stack.snapshot(&watched);
    let reply = client.delete_manifest("acme/web", subject);
    assert_denied(&reply, "immutable tag v1.0.0");
    assert_eq!(stack.snapshot(&watched), before);
}

#[test]
fn signatures_and_referrers_when_referrer_tags_are_mutable() {
    signatures("mutable");
}

#[test]
fn signatures_and_referrers_when_referrer_tags_are_protected() {
    signatures("protected");
}
