#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! `taglock serve` in operation, against a real CNCF distribution registry:
//! policy reloads (on change and on SIGHUP, a bad policy refused while the old one
//! keeps serving), trusted-header identity, the catalog filter, health, readiness
//! and metrics, and HTTPS with a real client (skopeo).

mod support;

use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;
use support::http::Client;
use support::oci::Image;
use support::process::wait_until;
use support::proxy::{Proxy, Serve, Workdir};
use support::registry::Registry;

const PROTECT_SEMVER: &str = r"^v\d+\.\d+\.\d+$";

/// A policy protecting semver tags (or nothing) for the users' repository.
fn policy(protect: bool) -> serde_json::Value {
    let immutability = if protect {
        json!({ "protect": "some", "rules": [{ "name": "semver", "tags": { "regex": PROTECT_SEMVER } }] })
    } else {
        json!({ "protect": "none" })
    };
    json!({
        "version": 1,
        "immutability": immutability,
        "permissions": {
            "workspace_admins": ["user:root"],
            "repositories": {
                "web-app": { "admin": ["user:alice"], "write": ["group:devs"], "read": ["group:qa"] },
                "tools": { "admin": ["user:root"], "read": ["group:qa"] }
            },
            "images": [
                { "name": "acme/web", "repository": "web-app" },
                { "name": "acme/tools", "repository": "tools" }
            ]
        }
    })
}

/// The value of one sample of the proxy's `/metrics`, 0 when absent.
fn metric(metrics: &str, sample: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(sample)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// A registry and `taglock serve` in front of it, with one user: alice (password
/// `pw`, group `devs`).
struct AliceStack {
    registry: Registry,
    work: Workdir,
    users: PathBuf,
    proxy: Proxy,
}

impl AliceStack {
    /// Starts both with `policy(protect)`; `configure` adds to the proxy's command
    /// line (it may write files into the work directory first).
    fn start(protect: bool, configure: impl FnOnce(&Workdir, &mut Serve)) -> AliceStack {
        let registry = Registry::start();
        let work = Workdir::new();
        let policy_path = work.write_json("policy.json", &policy(protect));
        let users = work.path("users.json");
        work.add_user(&users, "alice", "pw", &["--group", "devs"]);
        let mut serve = Serve::new(&registry.url(), &policy_path);
        serve.users(&users);
        configure(&work, &mut serve);
        let proxy = serve.start();
        AliceStack {
            registry,
            work,
            users,
            proxy,
        }
    }

    /// A client of the proxy logged in as alice.
    fn alice(&self) -> Client {
        self.proxy.client().login("alice", "pw")
    }
}

/// Polls `holds` until it is true, or fails the test naming `what`.
fn eventually(proxy: &support::proxy::Proxy, what: &str, mut holds: impl FnMut() -> bool) {
    let waited = wait_until(Duration::from_secs(20), || {
        if holds() {
            Ok(())
        } else {
            Err(what.to_owned())
        }
    });
    if let Err(what) = waited {
        panic!("{what} within 20 s\n--- proxy log ---\n{}", proxy.stderr());
    }
}

fn reloads(proxy: &support::proxy::Proxy, result: &str) -> u64 {
    let text = proxy.client().get("/metrics").text();
    metric(
        &text,
        &format!("taglock_policy_reloads_total{{result=\"{result}\"}}"),
    )
}

#[test]
fn a_changed_policy_is_loaded_and_a_bad_one_refused_while_the_old_one_serves() {
    let stack = AliceStack::start(false, |_, serve| {
        serve.arg("--reload-interval").arg("100ms");
    });
    let (registry, work, proxy) = (&stack.registry, &stack.work, &stack.proxy);
    let alice = stack.alice();
    let first = Image::new("reload");
    assert_eq!(alice.push_image("acme/web", "v1.0.0", &first).status, 201);
    // protect: none — an overwrite goes through.
    let second = first.variant(1);
    assert_eq!(
        alice
            .put_manifest("acme/web", "v1.0.0", &second.manifest)
            .status,
        201
    );

    work.write_json("policy.json", &policy(true));
    eventually(proxy, "the changed policy was not loaded", || {
        reloads(proxy, "loaded") >= 1
    });
    let third = first.variant(2);
    let refused = alice.put_manifest("acme/web", "v1.0.0", &third.manifest);
    assert_eq!(refused.status, 403, "{refused}");
    assert_eq!(
        refused.json()["errors"][0]["detail"]["reason"],
        "tag_immutable"
    );

    std::fs::write(
        work.path("policy.json"),
        r#"{"version": 1, "immutability": {"protect": "sometimes"}}"#,
    )
    .unwrap();
    eventually(proxy, "the bad policy was not refused", || {
        reloads(proxy, "refused") >= 1
    });
    assert!(
        proxy.stderr().contains("previous one keeps serving"),
        "{}",
        proxy.stderr()
    );
    assert!(
        proxy.stderr().contains("sometimes"),
        "the log names the problem:\n{}",
        proxy.stderr()
    );
    let still = alice.put_manifest("acme/web", "v1.0.0", &third.manifest);
    assert_eq!(still.status, 403, "the old policy keeps serving: {still}");
    assert_eq!(
        registry.client().manifest_digest("acme/web", "v1.0.0"),
        Some(second.manifest.digest.clone())
    );
}

#[test]
fn sighup_reloads_the_policy_and_the_users_file() {
    let stack = AliceStack::start(true, |_, serve| {
        serve.arg("--reload-interval").arg("0s");
    });
    let (work, users, proxy) = (&stack.work, &stack.users, &stack.proxy);
    let image = Image::new("sighup");
    let alice = stack.alice();
    assert_eq!(alice.push_image("acme/web", "v1.0.0", &image).status, 201);
    work.write_json("policy.json", &policy(false));
    work.add_user(users, "bob", "pw2", &["--group", "devs"]);
    // Without polling, nothing changes until the signal.
    assert_eq!(proxy.client().login("bob", "pw2").get("/v2/").status, 401);

    let sent = std::process::Command::new("kill")
        .args(["-HUP", &proxy.pid().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    eventually(proxy, "SIGHUP did not reload the policy", || {
        reloads(proxy, "loaded") >= 1
    });
    let bob = proxy.client().login("bob", "pw2");
    eventually(proxy, "SIGHUP did not reload the users", || {
        bob.get("/v2/").status == 200
    });
    let moved = image.variant(1);
    assert_eq!(
        bob.put_manifest("acme/web", "v1.0.0", &moved.manifest)
            .status,
        201
    );
}

#[test]
fn trusted_headers_name_the_actor_and_are_never_taken_from_basic_auth() {
    let registry = Registry::start();
    let work = Workdir::new();
    let policy_path = work.write_json("policy.json", &policy(true));
    let proxy = Serve::new(&registry.url(), &policy_path)
        .arg("--auth")
        .arg("trusted-headers")
        .start();
    let client = proxy.client();
    let image = Image::new("trusted");
    let as_alice = [("X-Taglock-User", "alice"), ("X-Taglock-Groups", "devs")];
    for blob in [&image.config, &image.layer] {
        let started = client.request(
            "POST",
            "/v2/acme/web/blobs/uploads/",
            &[as_alice[0], as_alice[1], ("Content-Length", "0")],
            Some(b""),
        );
        assert_eq!(started.status, 202, "{started}");
        let location = started.header("Location").unwrap().to_owned();
        let separator = if location.contains('?') { '&' } else { '?' };
        let stored = client.request(
            "PUT",
            &format!("{location}{separator}digest={}", blob.digest),
            &[as_alice[0], as_alice[1]],
            Some(&blob.bytes),
        );
        assert_eq!(stored.status, 201, "{stored}");
    }
    let put = |headers: &[(&str, &str)]| {
        let mut all = vec![("Content-Type", image.manifest.media_type)];
        all.extend_from_slice(headers);
        client.request(
            "PUT",
            "/v2/acme/web/manifests/v1.0.0",
            &all,
            Some(&image.manifest.bytes),
        )
    };
    // Nobody named: anonymous, so a login is required.
    let anonymous = put(&[]);
    assert_eq!(anonymous.status, 401, "{anonymous}");
    assert!(anonymous.header("WWW-Authenticate").is_some());
    // A reader by group.
    let reader = put(&[("X-Taglock-User", "quinn"), ("X-Taglock-Groups", "qa")]);
    assert_eq!(reader.status, 403, "{reader}");
    assert_eq!(
        reader.json()["errors"][0]["detail"]["reason"],
        "permission_denied"
    );
    // A Basic header is not an identity in this mode.
    let basic = client.login("alice", "pw");
    let via_basic = basic.put_manifest("acme/web", "v1.0.0", &image.manifest);
    assert_eq!(via_basic.status, 401, "{via_basic}");
    assert_eq!(put(&as_alice).status, 201);
    assert_eq!(
        registry.client().manifest_digest("acme/web", "v1.0.0"),
        Some(image.manifest.digest.clone())
    );
}

#[test]
fn the_catalog_shows_only_readable_images_and_health_endpoints_answer() {
    let mut registry = Registry::start();
    let direct = registry.client();
    for image in ["acme/web", "acme/tools", "other/thing"] {
        assert_eq!(
            direct.push_image(image, "v1", &Image::new(image)).status,
            201
        );
    }
    let work = Workdir::new();
    let policy_path = work.write_json("policy.json", &policy(true));
    let users = work.path("users.json");
    work.add_user(&users, "alice", "pw", &["--group", "devs"]);
    work.add_user(&users, "quinn", "pw", &["--group", "qa"]);
    let proxy = Serve::new(&registry.url(), &policy_path)
        .users(&users)
        .start();

    let catalog = |user: &str| {
        proxy.client().login(user, "pw").get("/v2/_catalog").json()["repositories"].clone()
    };
    assert_eq!(catalog("alice"), json!(["acme/web"]));
    assert_eq!(catalog("quinn"), json!(["acme/tools", "acme/web"]));
    assert_eq!(proxy.client().get("/v2/_catalog").status, 401);

    assert_eq!(proxy.client().get("/healthz").status, 200);
    assert_eq!(proxy.client().get("/readyz").status, 200);
    let metrics = proxy.client().get("/metrics").text();
    assert!(
        metric(
            &metrics,
            "taglock_upstream_duration_seconds_count{kind=\"forward\"}"
        ) >= 2,
        "{metrics}"
    );
    registry.stop();
    let not_ready = proxy.client().get("/readyz");
    assert_eq!(not_ready.status, 503, "{not_ready}");
    assert!(not_ready.text().contains("upstream"), "{not_ready}");
    assert_eq!(proxy.client().get("/healthz").status, 200);
}

#[test]
fn https_serves_skopeo_with_the_proxys_certificate() {
    support::require_tool("skopeo");
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let stack = AliceStack::start(true, |work, serve| {
        let cert = work.path("cert.pem");
        let key = work.path("key.pem");
        std::fs::write(&cert, certified.cert.pem()).unwrap();
        std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
        serve
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key);
    });
    let (registry, work, proxy) = (&stack.registry, &stack.work, &stack.proxy);
    // skopeo trusts the CA certificates (`*.crt`) of --dest-cert-dir.
    let certs = work.path("certs.d");
    std::fs::create_dir(&certs).unwrap();
    std::fs::write(certs.join("ca.crt"), certified.cert.pem()).unwrap();
    assert!(
        proxy.url().starts_with("https://127.0.0.1:"),
        "{}",
        proxy.url()
    );

    let image = Image::new("tls");
    let layout = work.path("layout");
    image.write_layout(&layout, "v1.0.0");
    let copy = |tag: &str, layout: &std::path::Path| {
        let mut command = std::process::Command::new("skopeo");
        command
            .args(["copy", "--preserve-digests", "--dest-cert-dir"])
            .arg(&certs)
            .args(["--dest-creds", "alice:pw"])
            .arg(format!("oci:{}:v1.0.0", layout.display()))
            .arg(format!("docker://{}/acme/web:{tag}", proxy.host()));
        support::process::run(command, None, Duration::from_secs(60))
    };
    let pushed = copy("v1.0.0", &layout);
    assert!(pushed.success(), "{pushed}");
    assert_eq!(
        registry.client().manifest_digest("acme/web", "v1.0.0"),
        Some(image.manifest.digest.clone())
    );
    let other = work.path("other");
    Image::new("tls-2").write_layout(&other, "v1.0.0");
    let refused = copy("v1.0.0", &other);
    assert!(!refused.success());
    // skopeo's log quotes the message, escaping its own quotes.
    assert!(
        refused
            .stderr
            .contains("tag v1.0.0 of acme/web is immutable (rule \\\"semver\\\")"),
        "{refused}"
    );
}

#[test]
fn an_invalid_policy_refuses_to_start_with_every_problem_listed() {
    let registry = Registry::start();
    let work = Workdir::new();
    let policy = work.path("policy.json");
    std::fs::write(
        &policy,
        r#"{"version": 1, "immutability": {"protect": "some", "rules": [
            {"name": "semver", "tags": {"regex": "^v(\\d+$"}},
            {"name": "semver", "tags": {"matching": ["v*"]}}
        ]}}"#,
    )
    .unwrap();
    let policy = policy.to_str().unwrap();
    let upstream = registry.url();
    let args = [
        "serve",
        "--upstream",
        &upstream,
        "--policy",
        policy,
        "--listen",
        "127.0.0.1:0",
    ];
    let refused = support::proxy::taglock(&args, Duration::from_secs(60));
    assert_eq!(refused.status.code(), Some(1), "{refused}");
    assert!(refused.stdout.is_empty(), "it never listened: {refused}");
    // Both problems, each located: the bad regex and the duplicate name.
    assert!(refused.stderr.contains("rules[0].tags.regex"), "{refused}");
    assert!(refused.stderr.contains("rules[1].name"), "{refused}");

    let missing = [
        "serve",
        "--upstream",
        &upstream,
        "--policy",
        "/nonexistent.json",
    ];
    let unusable = support::proxy::taglock(&missing, Duration::from_secs(60));
    assert_eq!(unusable.status.code(), Some(2), "{unusable}");
    assert!(unusable.stderr.contains("/nonexistent.json"), "{unusable}");
}

#[test]
fn malformed_names_get_the_decisions_400_and_leave_the_registry_untouched() {
    let stack = AliceStack::start(true, |_, _| {});
    let alice = stack.alice();
    let image = Image::new("names");
    alice.push_blob("acme/web", &image.config);
    alice.push_blob("acme/web", &image.layer);

    let code = |reply: &support::http::Reply| reply.json()["errors"][0]["code"].clone();
    let bad_image = alice.put_manifest("Acme/Web", "v1.0.0", &image.manifest);
    assert_eq!(bad_image.status, 400, "{bad_image}");
    assert_eq!(code(&bad_image), "NAME_INVALID", "{bad_image}");
    let bad_tag = alice.put_manifest("acme/web", "-v1.0.0", &image.manifest);
    assert_eq!(bad_tag.status, 400, "{bad_tag}");
    assert_eq!(code(&bad_tag), "TAG_INVALID", "{bad_tag}");
    let bad_upload = alice.start_upload("Acme/Web");
    assert_eq!(bad_upload.status, 400, "{bad_upload}");
    assert_eq!(code(&bad_upload), "NAME_INVALID", "{bad_upload}");
    let bad_delete = alice.request("DELETE", "/v2/acme/web/manifests/-v1", &[], None);
    assert_eq!(bad_delete.status, 400, "{bad_delete}");
    assert_eq!(code(&bad_delete), "TAG_INVALID", "{bad_delete}");
    assert!(stack.registry.client().tags("acme/web").is_empty());
}
