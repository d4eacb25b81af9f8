#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! The taglock filter inside a real Envoy (1.40, v8) in front of a real CNCF
//! distribution registry, configured by `taglock envoy bootstrap`. Every refused
//! write is checked on the registry directly: it is exactly as it was.
//!
//! Needs `scripts/install-envoy.sh` and `scripts/install-registry.sh`; fails,
//! never skips, without them.

mod support;

use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use support::envoy::{self, Envoy};
use support::jwt::{Issuer, claims, unsigned};
use support::oci::{Blob, Image, LAYER, MANIFEST};
use support::process::wait_until;
use support::proxy::Workdir;
use support::registry::Registry;
use support::relay::{Fault, Relay, Seen};
use support::skopeo;

/// `semver` tags are immutable; nothing else is checked (the registry
/// authenticates, every actor is anonymous to the policy).
fn immutability_policy() -> Value {
    json!({
        "version": 1,
        "immutability": {
            "protect": "some",
            "rules": [ { "name": "semver", "tags": { "regex": "^v\\d+\\.\\d+\\.\\d+$" } } ]
        }
    })
}

fn start(work: &Workdir, registry: &Registry, policy: &Value, extra: &[&str]) -> Envoy {
    let policy = work.write_json("policy.json", policy);
    Envoy::start(&policy, &registry.host(), &work.path("envoy"), extra)
}

fn layout(work: &Workdir, name: &str, image: &Image) -> std::path::PathBuf {
    let dir = work.path(name);
    image.write_layout(&dir, "latest");
    dir
}

#[test]
fn an_immutable_tag_cannot_be_overwritten_or_deleted_through_envoy() {
    let registry = Registry::start();
    let work = Workdir::new();
    let envoy = start(&work, &registry, &immutability_policy(), &[]);
    let (first, second) = (Image::new("first"), Image::new("second"));
    let dest = format!("{}/acme/web:v1.0.0", envoy.host());

    let pushed = skopeo::copy(&layout(&work, "first", &first), "latest", &dest, None);
    assert!(pushed.success(), "first push: {pushed:?}\n{}", envoy.log());
    let direct = registry.client();
    assert_eq!(
        direct.manifest_digest("acme/web", "v1.0.0"),
        Some(first.manifest.digest.clone())
    );

    let overwrite = skopeo::copy(&layout(&work, "second", &second), "latest", &dest, None);
    assert!(!overwrite.success(), "the overwrite went through");
    assert!(
        overwrite
            .stderr
            .contains("denied: tag v1.0.0 of acme/web is immutable"),
        "skopeo did not show the decision: {}",
        overwrite.stderr
    );
    assert_eq!(
        direct.manifest_digest("acme/web", "v1.0.0"),
        Some(first.manifest.digest.clone()),
        "the registry changed"
    );
    assert_eq!(
        direct.manifest_digest("acme/web", &second.manifest.digest),
        None,
        "the refused manifest was stored"
    );

    // The same overwrite over raw HTTP: the decision's OCI error, from the gateway.
    let reply = envoy
        .client()
        .put_manifest("acme/web", "v1.0.0", &second.manifest);
    assert_eq!(reply.status, 403, "{reply}");
    assert_eq!(reply.error_code().as_deref(), Some("DENIED"), "{reply}");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(envoy.counter("wasmcustom.taglock_decisions_denied"), 2);

    // A digest delete of the manifest under the protected tag.
    let deleted = skopeo::delete(
        &format!("{}/acme/web@{}", envoy.host(), first.manifest.digest),
        None,
    );
    assert!(!deleted.success(), "the delete went through");
    assert!(deleted.stderr.contains("v1.0.0"), "{}", deleted.stderr);
    assert_eq!(
        direct.manifest_digest("acme/web", "v1.0.0"),
        Some(first.manifest.digest.clone()),
        "the registry changed"
    );

    // Unprotected tags stay mutable; reads go through.
    let latest = format!("{}/acme/web:latest", envoy.host());
    for image in [&first, &second] {
        let dir = work.path(&format!("again-{}", &image.manifest.digest[7..15]));
        image.write_layout(&dir, "latest");
        let out = skopeo::copy(&dir, "latest", &latest, None);
        assert!(out.success(), "{out:?}");
    }
    let read = skopeo::inspect_digest(&latest, None);
    assert_eq!(read.stdout.trim(), second.manifest.digest, "{read:?}");
    let log = envoy.log_with("taglock=\"denied ");
    let filter_sha256 = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("envoy/taglock_envoy.wasm.sha256"),
    )
    .unwrap();
    assert!(
        log.contains(&format!(
            "\"component_sha256\":\"{}\"",
            filter_sha256.trim()
        )),
        "no audit record naming the filter in the log"
    );
    assert!(
        log.contains("\"PUT /v2/acme/web/manifests/v1.0.0\" 403 ")
            && log.contains("taglock=\"denied tag_immutable semver\""),
        "no decision in the access log:\n{log}"
    );
}

#[test]
fn large_blobs_stream_and_oversized_manifests_get_an_oci_413() {
    let registry = Registry::start();
    let work = Workdir::new();
    let envoy = start(&work, &registry, &immutability_policy(), &[]);
    let client = envoy.client();
    // A 6 MiB blob: over Envoy's 1 MiB buffer, so it must stream.
    let layer = Blob::new(LAYER, vec![7u8; 6 << 20]);
    let image = Image::with_layer(layer);
    let uploaded = client.upload_blob("acme/big", &image.layer);
    assert_eq!(uploaded.status, 201, "{uploaded}");
    client.push_blob("acme/big", &image.config);
    // A manifest over the gateway's 4 MiB bound: Envoy's own 413, as an OCI error.
    let huge = image.padded((4 << 20) + 1024);
    let reply = client.put_manifest("acme/big", "v1.0.0", &huge.manifest);
    assert_eq!(reply.status, 413, "{reply}");
    assert_eq!(
        reply.error_code().as_deref(),
        Some("SIZE_INVALID"),
        "{reply}"
    );
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        registry.client().manifest_digest("acme/big", "v1.0.0"),
        None
    );
    // Just under the bound: buffered, decided, stored.
    let fits = image.padded((4 << 20) - 1024);
    let reply = client.put_manifest("acme/big", "v1.0.0", &fits.manifest);
    assert_eq!(reply.status, 201, "{reply}");
    assert_eq!(
        registry.client().manifest_digest("acme/big", "v1.0.0"),
        Some(fits.manifest.digest.clone())
    );
}

#[test]
fn audit_mode_lets_a_would_be_denial_through_with_a_warning() {
    let registry = Registry::start();
    let work = Workdir::new();
    let mut policy = immutability_policy();
    policy["mode"] = Value::from("audit");
    let envoy = start(&work, &registry, &policy, &[]);
    let client = envoy.client();
    let (first, second) = (Image::new("audit-1"), Image::new("audit-2"));
    assert_eq!(client.push_image("acme/web", "v1.0.0", &first).status, 201);
    let moved = client.push_image("acme/web", "v1.0.0", &second);
    assert_eq!(moved.status, 201, "{moved}");
    let warning = moved.header("warning").unwrap_or_default();
    assert!(
        warning.starts_with("299 - \"tag v1.0.0 of acme/web is immutable"),
        "{moved}"
    );
    assert_eq!(
        registry.client().manifest_digest("acme/web", "v1.0.0"),
        Some(second.manifest.digest.clone())
    );
    assert_eq!(envoy.counter("wasmcustom.taglock_decisions_would_deny"), 1);
    assert!(
        envoy
            .log()
            .contains("audit mode let through PUT /v2/acme/web/manifests/v1.0.0")
    );
}

#[test]
fn concurrent_pushes_to_one_new_protected_tag_store_exactly_one() {
    const PUSHES: usize = 32;
    let registry = Registry::start();
    let work = Workdir::new();
    let envoy = start(&work, &registry, &immutability_policy(), &[]);
    let base = Image::new("race");
    envoy.client().push_blob("acme/race", &base.config);
    envoy.client().push_blob("acme/race", &base.layer);
    let variants: Vec<Image> = (0..PUSHES).map(|n| base.variant(n)).collect();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(PUSHES));
    let handles: Vec<_> = variants
        .iter()
        .map(|image| {
            let (client, barrier, manifest) =
                (envoy.client(), barrier.clone(), image.manifest.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let reply = client.put_manifest("acme/race", "v9.9.9", &manifest);
                (manifest.digest, reply)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let stored: Vec<&String> = results
        .iter()
        .filter(|(_, reply)| reply.status == 201)
        .map(|(digest, _)| digest)
        .collect();
    assert_eq!(stored.len(), 1, "{} pushes stored", stored.len());
    // The losers waited for the winner's lock (as `taglock serve` does), then
    // saw its tag: every one is denied, none is told to try again.
    for (_, reply) in results.iter().filter(|(_, reply)| reply.status != 201) {
        assert_eq!(reply.status, 403, "a losing push answered {reply}");
        assert_eq!(reply.error_code().as_deref(), Some("DENIED"), "{reply}");
        assert!(reply.text().contains("immutable"), "{reply}");
    }
    assert_eq!(envoy.counter("wasmcustom.taglock_lock_busy"), 0);
    assert_eq!(
        envoy.counter("wasmcustom.taglock_decisions_denied"),
        (PUSHES - 1) as u64
    );
    assert_eq!(
        registry
            .client()
            .manifest_digest("acme/race", "v9.9.9")
            .as_ref(),
        Some(stored[0])
    );
    let manifests_stored = variants
        .iter()
        .filter(|image| {
            registry
                .client()
                .manifest_digest("acme/race", &image.manifest.digest)
                .is_some()
        })
        .count();
    assert_eq!(
        manifests_stored, 1,
        "refused manifests reached the registry"
    );
}

/// `127.0.0.1:PORT` of a relay (`--upstream` takes no scheme).
fn relay_host(relay: &Relay) -> String {
    relay.url().trim_start_matches("http://").to_owned()
}

/// A relay in front of `registry` that holds the first manifest PUT for
/// `hold` before the registry sees it; the flag tells when it arrived.
fn slow_first_push(registry: &Registry, hold: Duration) -> (Relay, Arc<AtomicBool>) {
    let arrived = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&arrived);
    let relay = Relay::start(&registry.host(), move |request: &Seen| Fault {
        delay: (request.method == "PUT"
            && request.path.contains("/manifests/")
            && !seen.swap(true, Ordering::SeqCst))
        .then_some(hold),
        ..Fault::default()
    });
    (relay, arrived)
}

/// Waits (at most 10 s) until `flag` is set.
fn wait_for(flag: &AtomicBool) {
    wait_until(Duration::from_secs(10), || {
        if flag.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err("not yet".to_owned())
        }
    })
    .unwrap();
}

#[test]
fn a_write_lock_held_past_the_lock_timeout_gets_503() {
    let registry = Registry::start();
    let (relay, arrived) = slow_first_push(&registry, Duration::from_secs(3));
    let work = Workdir::new();
    let policy = work.write_json("policy.json", &immutability_policy());
    let envoy = Envoy::start(
        &policy,
        &relay_host(&relay),
        &work.path("envoy"),
        &["--lock-timeout", "500ms"],
    );
    let base = Image::new("slow");
    let client = envoy.client();
    client.push_blob("acme/slow", &base.config);
    client.push_blob("acme/slow", &base.layer);
    let (first, second) = (base.variant(1), base.variant(2));

    // The first push holds the tag's lock until the registry answers it (3 s).
    let holder = {
        let (client, manifest) = (envoy.client(), first.manifest.clone());
        std::thread::spawn(move || client.put_manifest("acme/slow", "v1.0.0", &manifest))
    };
    wait_for(&arrived);

    // The second waits 500 ms for it, then is told to try again, in serve's words.
    let started = Instant::now();
    let reply = client.put_manifest("acme/slow", "v1.0.0", &second.manifest);
    let waited = started.elapsed();
    assert_eq!(reply.status, 503, "{reply}");
    assert_eq!(
        reply.error_code().as_deref(),
        Some("UNAVAILABLE"),
        "{reply}"
    );
    assert!(
        reply.text().contains(
            "another write to acme/slow:v1.0.0 is still in progress after 500ms; try again"
        ),
        "{reply}"
    );
    assert!(waited >= Duration::from_millis(500), "no wait: {waited:?}");
    assert!(waited < Duration::from_millis(2_500), "waited {waited:?}");
    assert_eq!(envoy.counter("wasmcustom.taglock_lock_busy"), 1);

    let stored = holder.join().unwrap();
    assert_eq!(stored.status, 201, "{stored}");
    // The lock is free again: the next push is decided at once, and denied.
    let again = client.put_manifest("acme/slow", "v1.0.0", &second.manifest);
    assert_eq!(again.status, 403, "{again}");
    assert_eq!(
        registry.client().manifest_digest("acme/slow", "v1.0.0"),
        Some(first.manifest.digest.clone())
    );
    assert_eq!(
        registry
            .client()
            .manifest_digest("acme/slow", &second.manifest.digest),
        None
    );
}

#[test]
fn a_waiter_whose_client_goes_away_leaves_no_lock_behind() {
    use std::io::Write;
    let registry = Registry::start();
    let (relay, arrived) = slow_first_push(&registry, Duration::from_secs(2));
    let work = Workdir::new();
    let policy = work.write_json("policy.json", &immutability_policy());
    let envoy = Envoy::start(&policy, &relay_host(&relay), &work.path("envoy"), &[]);
    let base = Image::new("gone");
    let client = envoy.client();
    client.push_blob("acme/gone", &base.config);
    client.push_blob("acme/gone", &base.layer);
    let holder = {
        let (client, manifest) = (envoy.client(), base.variant(0).manifest);
        std::thread::spawn(move || client.put_manifest("acme/gone", "v1.0.0", &manifest))
    };
    wait_for(&arrived);

    // Two pushes start waiting for the tag, and their clients hang up.
    let gone = base.variant(1).manifest;
    for _ in 0..2 {
        let mut stream = std::net::TcpStream::connect(envoy.host()).unwrap();
        let head = format!(
            "PUT /v2/acme/gone/manifests/v1.0.0 HTTP/1.1\r\nHost: {}\r\n\
             Content-Type: {}\r\nContent-Length: {}\r\n\r\n",
            envoy.host(),
            gone.media_type,
            gone.bytes.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&gone.bytes).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }
    assert_eq!(holder.join().unwrap().status, 201);

    // Nothing holds the tag any more: the next push is decided at once.
    let started = Instant::now();
    let next = client.put_manifest("acme/gone", "v1.0.0", &base.variant(2).manifest);
    assert_eq!(next.status, 403, "{next}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(
        registry.client().manifest_digest("acme/gone", &gone.digest),
        None,
        "an abandoned push reached the registry"
    );
    // Both were still waiting when their clients went away.
    let abandoned = "\"PUT /v2/acme/gone/manifests/v1.0.0\" 0 DC";
    let log = envoy.log_with(abandoned);
    assert_eq!(log.matches(abandoned).count(), 2, "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn waiters_past_the_waiting_list_bound_get_503_at_once() {
    let registry = Registry::start();
    let (relay, arrived) = slow_first_push(&registry, Duration::from_secs(3));
    let work = Workdir::new();
    let policy = work.write_json("policy.json", &immutability_policy());
    let out = work.path("envoy");
    let (output, listen, admin) = envoy::bootstrap(&policy, &relay_host(&relay), &out, &[]);
    assert!(output.success(), "{output:?}");
    // One waiter per worker (Envoy runs two): of three waiting pushes, at
    // least one finds its worker's list full.
    let config_path = out.join("envoy.yaml");
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    let value = envoy::plugin_configuration(&mut config);
    let mut plugin: Value = serde_json::from_str(value.as_str().unwrap()).unwrap();
    plugin["lock_waiters"] = json!(1);
    *value = Value::from(plugin.to_string());
    std::fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();
    let envoy = Envoy::start_config(&config_path, listen, admin, &out.join("envoy.log"));

    let base = Image::new("crowd");
    let client = envoy.client();
    client.push_blob("acme/crowd", &base.config);
    client.push_blob("acme/crowd", &base.layer);
    let holder = {
        let (client, manifest) = (envoy.client(), base.variant(0).manifest);
        std::thread::spawn(move || client.put_manifest("acme/crowd", "v1.0.0", &manifest))
    };
    wait_for(&arrived);
    let started = Instant::now();
    let waiting: Vec<_> = (1..=3)
        .map(|n| {
            let (client, manifest) = (envoy.client(), base.variant(n).manifest);
            std::thread::spawn(move || {
                let reply = client.put_manifest("acme/crowd", "v1.0.0", &manifest);
                (reply, started.elapsed())
            })
        })
        .collect();
    let replies: Vec<_> = waiting.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(holder.join().unwrap().status, 201);
    let mut crowded = 0;
    for (reply, elapsed) in &replies {
        match reply.status {
            503 => {
                crowded += 1;
                assert!(
                    reply
                        .text()
                        .contains("too many writes are waiting for a write lock; try again"),
                    "{reply}"
                );
                assert!(
                    *elapsed < Duration::from_secs(2),
                    "not at once: {elapsed:?}"
                );
            }
            403 => assert_eq!(reply.error_code().as_deref(), Some("DENIED"), "{reply}"),
            _ => panic!("a waiting push answered {reply}"),
        }
    }
    assert!(crowded >= 1, "nobody was refused: {replies:?}");
    assert_eq!(envoy.counter("wasmcustom.taglock_lock_busy"), crowded);
    assert_eq!(
        registry.client().manifest_digest("acme/crowd", "v1.0.0"),
        Some(base.variant(0).manifest.digest)
    );
}

#[test]
fn an_upstream_that_is_down_gets_503_oci_errors() {
    let mut registry = Registry::start();
    let work = Workdir::new();
    let envoy = start(&work, &registry, &immutability_policy(), &[]);
    let image = Image::new("down");
    registry.stop();
    let client = envoy.client();
    // A write: its facts cannot be read, so the gateway refuses it.
    let push = client.put_manifest("acme/web", "v1.0.0", &image.manifest);
    assert_eq!(push.status, 503, "{push}");
    assert_eq!(push.error_code().as_deref(), Some("UNAVAILABLE"), "{push}");
    // A read: Envoy's own 503, rewritten as an OCI error.
    let pull = client.request(
        "GET",
        "/v2/acme/web/manifests/v1.0.0",
        &[("Accept", MANIFEST)],
        None,
    );
    assert_eq!(pull.status, 503, "{pull}");
    assert_eq!(pull.error_code().as_deref(), Some("UNAVAILABLE"), "{pull}");
    assert_eq!(pull.header("content-type"), Some("application/json"));
}

#[test]
fn an_invalid_policy_is_refused_by_bootstrap_and_by_envoy() {
    let registry = Registry::start();
    let work = Workdir::new();
    let invalid = json!({
        "version": 1,
        "immutability": { "protect": "some", "rules": [ { "name": "bad", "tags": { "regex": "(" } } ] },
        "unknown_field": true
    });
    let policy = work.write_json("invalid.json", &invalid);
    let out = work.path("refused");
    let (output, _, _) = envoy::bootstrap(&policy, &registry.host(), &out, &[]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(output.stderr.contains("unknown_field"), "{}", output.stderr);
    // At the unknown key itself (line 13, column 3).
    assert!(
        output.stderr.contains("invalid.json:13:3"),
        "not located: {}",
        output.stderr
    );
    assert!(!out.join("envoy.yaml").exists());

    // A configuration whose policy went bad after bootstrap: the filter
    // refuses it, so Envoy refuses the whole configuration.
    let good = work.write_json("good.json", &immutability_policy());
    let dir = work.path("edited");
    let (output, _, _) = envoy::bootstrap(&good, &registry.host(), &dir, &[]);
    assert!(output.success(), "{output:?}");
    let config_path = dir.join("envoy.yaml");
    let accepted = envoy::validate(&config_path);
    assert!(accepted.success(), "{accepted:?}");
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    edit_plugin_policy(
        &mut config,
        &serde_json::to_string_pretty(&invalid).unwrap(),
    );
    std::fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();
    let refused = envoy::validate(&config_path);
    assert!(!refused.success(), "envoy accepted an invalid policy");
    let said = format!("{}{}", refused.stdout, refused.stderr);
    assert!(said.contains("taglock: policy: "), "{said}");
    assert!(said.contains("unknown_field"), "{said}");
}

/// Replaces the policy inside the filter's plugin configuration.
fn edit_plugin_policy(config: &mut Value, policy: &str) {
    let value = support::envoy::plugin_configuration(config);
    let mut plugin: Value = serde_json::from_str(value.as_str().unwrap()).unwrap();
    plugin["policy"] = Value::from(policy);
    *value = Value::from(plugin.to_string());
}

#[test]
fn jwt_identity_writers_push_readers_do_not_and_forged_tokens_are_refused() {
    let registry = Registry::start();
    let work = Workdir::new();
    let issuer = Issuer::new("test-key");
    let jwks = work.write_json("jwks.json", &issuer.jwks());
    let policy = json!({
        "version": 1,
        "immutability": {
            "protect": "some",
            "rules": [ { "name": "semver", "tags": { "regex": "^v\\d+\\.\\d+\\.\\d+$" } } ]
        },
        "permissions": {
            "repositories": { "web-app": {
                "write": ["group:writers", "pipeline:web-app/production"],
                "read": ["group:readers"]
            } },
            "images": [ { "name": "acme/web", "repository": "web-app" } ]
        }
    });
    let jwks_arg = jwks.to_str().unwrap().to_owned();
    let envoy = start(
        &work,
        &registry,
        &policy,
        &[
            "--jwt-issuer",
            "https://ci.example.test",
            "--jwt-jwks",
            &jwks_arg,
            "--jwt-audience",
            "taglock",
            "--claim-repository",
            "repository",
            "--claim-environment",
            "environment",
        ],
    );
    let client = envoy.client();
    let writer = client.bearer(&issuer.token(&claims("alice", &["writers"])));
    let reader = client.bearer(&issuer.token(&claims("bob", &["readers"])));

    let image = Image::new("jwt");
    let pushed = writer.push_image("acme/web", "v1.0.0", &image);
    assert_eq!(pushed.status, 201, "writer push: {pushed}\n{}", envoy.log());
    assert_eq!(
        registry.client().manifest_digest("acme/web", "v1.0.0"),
        Some(image.manifest.digest.clone())
    );

    let other = Image::new("reader");
    let refused = reader.put_manifest("acme/web", "v2.0.0", &other.manifest);
    assert_eq!(refused.status, 403, "reader push: {refused}");
    assert_eq!(refused.error_code().as_deref(), Some("DENIED"), "{refused}");
    assert_eq!(
        registry.client().manifest_digest("acme/web", "v2.0.0"),
        None
    );
    let read = reader.request(
        "GET",
        "/v2/acme/web/manifests/v1.0.0",
        &[("Accept", MANIFEST)],
        None,
    );
    assert_eq!(read.status, 200, "reader pull: {read}");

    // A CI pipeline of the image's code repository, by its token's claims.
    let mut pipeline_claims = claims("ci-runner", &[]);
    pipeline_claims["repository"] = Value::from("web-app");
    pipeline_claims["environment"] = Value::from("production");
    let pipeline = client.bearer(&issuer.token(&pipeline_claims));
    let release = Image::new("pipeline");
    let pushed = pipeline.push_image("acme/web", "v1.1.0", &release);
    assert_eq!(pushed.status, 201, "pipeline push: {pushed}");
    pipeline_claims["environment"] = Value::from("staging");
    let staging = client.bearer(&issuer.token(&pipeline_claims));
    let refused = staging.put_manifest("acme/web", "v1.2.0", &release.manifest);
    assert_eq!(refused.status, 403, "staging pipeline push: {refused}");
    assert_eq!(
        registry.client().manifest_digest("acme/web", "v1.2.0"),
        None
    );

    // The catalog shows the reader only what it may pull.
    registry
        .client()
        .push_image("acme/secret", "latest", &Image::new("secret"));
    let catalog = reader.get("/v2/_catalog");
    assert_eq!(catalog.status, 200, "{catalog}");
    assert_eq!(
        catalog.json()["repositories"],
        json!(["acme/web"]),
        "{catalog}"
    );

    // Anonymous: asked to log in.
    let anonymous = client.put_manifest("acme/web", "v3.0.0", &other.manifest);
    assert_eq!(anonymous.status, 401, "{anonymous}");

    // A token signed by another key, and an unsigned one: Envoy refuses both.
    let forger = Issuer::new("test-key");
    let forged = client
        .bearer(&forger.token(&claims("alice", &["writers"])))
        .put_manifest("acme/web", "v3.0.0", &other.manifest);
    assert_eq!(forged.status, 401, "forged token: {forged}");
    let unsigned = client
        .bearer(&unsigned(&claims("alice", &["writers"])))
        .put_manifest("acme/web", "v3.0.0", &other.manifest);
    assert_eq!(unsigned.status, 401, "unsigned token: {unsigned}");
    assert_eq!(
        registry.client().manifest_digest("acme/web", "v3.0.0"),
        None
    );
    assert!(Path::new(&jwks_arg).is_file());
}
