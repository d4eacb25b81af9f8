#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! `taglock serve` logging in to its upstream with credentials of its own
//! (`--upstream-user`, `--upstream-password-file`): in front of a distribution
//! registry with token authentication (a test token issuer signs real JWTs the
//! registry verifies) and in front of one with HTTP Basic (htpasswd). The
//! proxy's protections hold either way, its tokens are cached, refreshed, kept
//! to the request's repository and never logged, and wrong credentials change
//! nothing upstream. docker-registry and skopeo must be installed; a test fails,
//! never skips, when they are not.

mod support;

use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;
use support::http::{ACCEPT_MANIFESTS, Client};
use support::oci::Image;
use support::process::{Output, wait_until};
use support::proxy::{Proxy, Serve, Workdir};
use support::registry::Registry;
use support::skopeo;
use support::token::{Issuer, User};

/// The proxy's own account upstream.
const PROXY_USER: &str = "taglock-proxy";
const PROXY_PASSWORD: &str = "proxy-upstream-secret";

/// A developer, logging in to the proxy (and, in pass-through, to the issuer).
const DEV: &str = "dev";
const DEV_PASSWORD: &str = "dev-secret";

/// `semver` tags are immutable; nobody may delete them.
fn policy() -> Value {
    json!({
        "version": 1,
        "mode": "enforce",
        "immutability": {
            "protect": "some",
            "rules": [ { "name": "semver", "tags": { "regex": "^v\\d+\\.\\d+\\.\\d+$" } } ],
            "admin_delete": false
        }
    })
}

/// The issuer's accounts: the proxy may do everything, a reader only pull.
fn issuer_users() -> Vec<User> {
    vec![
        User::everywhere(PROXY_USER, PROXY_PASSWORD, &["pull", "push", "delete"]),
        User::everywhere(DEV, DEV_PASSWORD, &["pull", "push"]),
        User::everywhere("reader", "reader-secret", &["pull"]),
    ]
}

/// A registry, the proxy in front of it, and the files. Fields drop in order.
struct Stack {
    proxy: Proxy,
    registry: Registry,
    issuer: Option<Issuer>,
    audit: PathBuf,
    work: Workdir,
}

/// How the registry behind the proxy authenticates.
enum Upstream {
    Token(Issuer),
    Htpasswd,
}

impl Stack {
    /// The proxy (HTTP Basic for its clients, `dev` its user) in front of
    /// `upstream`, logging in with `password`; `configure` adds options.
    fn start(upstream: Upstream, password: &str, configure: impl FnOnce(&mut Serve)) -> Stack {
        let work = Workdir::new();
        let (registry, issuer) = match upstream {
            Upstream::Token(issuer) => (Registry::start_with_token(&issuer), Some(issuer)),
            Upstream::Htpasswd => {
                let htpasswd = work.path("htpasswd");
                std::fs::write(
                    &htpasswd,
                    format!(
                        "{PROXY_USER}:{}\n",
                        bcrypt::hash(PROXY_PASSWORD, 4).unwrap()
                    ),
                )
                .unwrap();
                (Registry::start_with_htpasswd(&htpasswd), None)
            }
        };
        let policy = work.write_json("policy.json", &policy());
        let users = work.path("users.json");
        work.add_user(&users, DEV, DEV_PASSWORD, &[]);
        let password_file = work.path("upstream-password");
        std::fs::write(&password_file, format!("{password}\n")).unwrap();
        let audit = work.path("audit.jsonl");
        let mut serve = Serve::new(&registry.url(), &policy);
        serve
            .users(&users)
            .audit_log(&audit)
            .arg("--upstream-user")
            .arg(PROXY_USER)
            .arg("--upstream-password-file")
            .arg(&password_file);
        configure(&mut serve);
        let proxy = serve.start();
        Stack {
            proxy,
            registry,
            issuer,
            audit,
            work,
        }
    }

    fn issuer(&self) -> &Issuer {
        self.issuer.as_ref().unwrap()
    }

    /// A client of the registry around the proxy, allowed to pull `image`.
    fn direct(&self, image: &str) -> Client {
        match &self.issuer {
            Some(issuer) => {
                let token = issuer.token("reader", &[&format!("repository:{image}:pull")]);
                self.registry.client().bearer(&token)
            }
            None => self.registry.client().login(PROXY_USER, PROXY_PASSWORD),
        }
    }

    /// A client of the registry around the proxy, allowed to push `image`.
    fn direct_writer(&self, image: &str) -> Client {
        match &self.issuer {
            Some(issuer) => {
                let token = issuer.token(PROXY_USER, &[&format!("repository:{image}:pull,push")]);
                self.registry.client().bearer(&token)
            }
            None => self.registry.client().login(PROXY_USER, PROXY_PASSWORD),
        }
    }

    /// The proxy's client logged in as `dev`.
    fn client(&self) -> Client {
        self.proxy.client().login(DEV, DEV_PASSWORD)
    }

    /// `skopeo copy` of `content` to `image:tag` through the proxy as `dev`.
    fn push(&self, image: &str, tag: &str, content: &Image) -> Output {
        let layout = self
            .work
            .path(&format!("layout-{}", &content.manifest.digest[7..23]));
        content.write_layout(&layout, "latest");
        skopeo::copy(
            &layout,
            "latest",
            &format!("{}/{image}:{tag}", self.proxy.host()),
            Some((DEV, DEV_PASSWORD)),
        )
    }

    fn audit_text(&self) -> String {
        std::fs::read_to_string(&self.audit).unwrap_or_default()
    }
}

fn assert_succeeded(output: &Output) {
    assert!(output.success(), "skopeo failed: {output}");
}

/// What both registries must show: pushes through the proxy land, protected
/// tags cannot be overwritten or deleted by digest, other tags move, pulls and
/// the catalog work.
fn protections_hold(stack: &Stack) {
    let original = Image::new("original");
    let other = Image::new("other");

    assert_succeeded(&stack.push("acme/web", "v1.0.0", &original));
    let direct = stack.direct("acme/web");
    assert_eq!(
        direct.manifest_digest("acme/web", "v1.0.0").as_deref(),
        Some(original.manifest.digest.as_str())
    );

    // The overwrite is refused by the decision (the proxy read the tag's digest
    // upstream with its own credentials), and the registry is unchanged.
    let refused = stack.client().push_image("acme/web", "v1.0.0", &other);
    assert_eq!(refused.status, 403, "{refused}");
    assert_eq!(refused.error_code().as_deref(), Some("DENIED"), "{refused}");
    assert!(refused.text().contains("immutable"), "{refused}");
    assert_eq!(
        direct.manifest_digest("acme/web", "v1.0.0").as_deref(),
        Some(original.manifest.digest.as_str())
    );
    assert_eq!(
        direct.manifest_digest("acme/web", &other.manifest.digest),
        None
    );

    // A delete by digest of the protected manifest is refused too.
    let deleted = skopeo::delete(
        &format!(
            "{}/acme/web@{}",
            stack.proxy.host(),
            original.manifest.digest
        ),
        Some((DEV, DEV_PASSWORD)),
    );
    assert!(!deleted.success(), "the delete went through: {deleted}");
    let raw_delete = stack.client().request(
        "DELETE",
        &format!("/v2/acme/web/manifests/{}", original.manifest.digest),
        &[],
        None,
    );
    assert_eq!(raw_delete.status, 403, "{raw_delete}");
    assert_eq!(
        direct.manifest_digest("acme/web", "v1.0.0").as_deref(),
        Some(original.manifest.digest.as_str())
    );

    // An unprotected tag moves.
    assert_succeeded(&stack.push("acme/web", "latest", &original));
    let moved = stack.client().push_image("acme/web", "latest", &other);
    assert_eq!(moved.status, 201, "{moved}");
    assert_eq!(
        direct.manifest_digest("acme/web", "latest").as_deref(),
        Some(other.manifest.digest.as_str())
    );

    // Pulls and the catalog work through the proxy.
    let pulled = skopeo::inspect_digest(
        &format!("{}/acme/web:v1.0.0", stack.proxy.host()),
        Some((DEV, DEV_PASSWORD)),
    );
    assert_succeeded(&pulled);
    assert_eq!(pulled.stdout.trim(), original.manifest.digest);
    let manifest = stack.client().request(
        "GET",
        "/v2/acme/web/manifests/v1.0.0",
        &[("Accept", ACCEPT_MANIFESTS)],
        None,
    );
    assert_eq!(manifest.status, 200, "{manifest}");
    let catalog = stack.client().get("/v2/_catalog");
    assert_eq!(catalog.status, 200, "{catalog}");
    assert_eq!(
        catalog.json()["repositories"],
        json!(["acme/web"]),
        "{catalog}"
    );

    // A manifest no protected tag points to can be deleted by digest.
    let allowed = stack.client().request(
        "DELETE",
        &format!("/v2/acme/web/manifests/{}", other.manifest.digest),
        &[],
        None,
    );
    assert_eq!(allowed.status, 202, "{allowed}");
    assert_eq!(direct.manifest_digest("acme/web", "latest"), None);
    assert_eq!(
        direct.manifest_digest("acme/web", "v1.0.0").as_deref(),
        Some(original.manifest.digest.as_str())
    );
}

#[test]
fn a_token_registry_behind_the_proxy_keeps_its_protections() {
    let stack = Stack::start(
        Upstream::Token(Issuer::start(issuer_users())),
        PROXY_PASSWORD,
        |_| {},
    );
    protections_hold(&stack);
    let issuer = stack.issuer();

    // Every token the proxy asked for was its own, for `acme/web` or the
    // catalog (or none, for `GET /v2/`), never for another repository.
    let seen = issuer.seen();
    let proxies: Vec<_> = seen
        .iter()
        .filter(|s| s.user.as_deref() == Some(PROXY_USER))
        .collect();
    assert!(proxies.len() >= 3, "{seen:?}");
    for s in &proxies {
        assert!(s.issued, "{s:?}");
        for scope in s.scope.split(' ').filter(|s| !s.is_empty()) {
            assert!(
                scope.starts_with("repository:acme/web:") || scope == "registry:catalog:*",
                "{s:?}"
            );
        }
    }
    assert!(
        proxies
            .iter()
            .any(|s| s.scope == "repository:acme/web:delete"),
        "the allowed digest delete never asked for `delete`: {seen:?}"
    );

    // The cache: more reads and a refused write of the same repository need no
    // new token.
    let before = issuer.issued();
    for _ in 0..3 {
        let reply = stack.client().request(
            "HEAD",
            "/v2/acme/web/manifests/v1.0.0",
            &[("Accept", ACCEPT_MANIFESTS)],
            None,
        );
        assert_eq!(reply.status, 200, "{reply}");
    }
    let refused = stack
        .client()
        .push_image("acme/web", "v1.0.0", &Image::new("third"));
    assert_eq!(refused.status, 403, "{refused}");
    assert_eq!(issuer.issued(), before, "{:?}", issuer.seen());

    // No token (nor the password) is ever logged or audited.
    let tokens = issuer.tokens();
    assert!(!tokens.is_empty());
    let stderr = stack.proxy.stderr();
    let audit = stack.audit_text();
    assert!(audit.contains("tag_immutable"), "{audit}");
    for token in &tokens {
        let signature = token.rsplit('.').next().unwrap();
        assert!(!stderr.contains(signature), "a token in the log:\n{stderr}");
        assert!(!audit.contains(signature), "a token in the audit log");
    }
    assert!(!stderr.contains(PROXY_PASSWORD) && !audit.contains(PROXY_PASSWORD));
}

#[test]
fn an_htpasswd_registry_behind_the_proxy_keeps_its_protections() {
    let stack = Stack::start(Upstream::Htpasswd, PROXY_PASSWORD, |_| {});
    protections_hold(&stack);
    let stderr = stack.proxy.stderr();
    assert!(!stderr.contains(PROXY_PASSWORD), "{stderr}");
}

/// Pushes `image:tag` directly (around the proxy) and returns its digest.
fn seed(stack: &Stack, image: &str, tag: &str) -> String {
    let content = Image::new(tag);
    let reply = stack.direct_writer(image).push_image(image, tag, &content);
    assert_eq!(reply.status, 201, "{reply}");
    content.manifest.digest
}

fn head_through(stack: &Stack, image: &str, tag: &str) -> u16 {
    stack
        .client()
        .request(
            "HEAD",
            &format!("/v2/{image}/manifests/{tag}"),
            &[("Accept", ACCEPT_MANIFESTS)],
            None,
        )
        .status
}

#[test]
fn expired_and_refused_tokens_are_fetched_again() {
    let issuer = Issuer::start(issuer_users());
    issuer.set_expires_in(4);
    let stack = Stack::start(Upstream::Token(issuer), PROXY_PASSWORD, |_| {});
    let issuer = stack.issuer();
    seed(&stack, "acme/api", "v1.0.0");

    assert_eq!(head_through(&stack, "acme/api", "v1.0.0"), 200);
    let first = issuer.issued();
    assert_eq!(head_through(&stack, "acme/api", "v1.0.0"), 200);
    assert_eq!(issuer.issued(), first, "the cached token was not reused");

    // Past `expires_in` (less the refresh margin), a new token is fetched first.
    std::thread::sleep(Duration::from_millis(4200));
    assert_eq!(head_through(&stack, "acme/api", "v1.0.0"), 200);
    assert_eq!(issuer.issued(), first + 1, "{:?}", issuer.seen());

    // A token the registry refuses although the realm said it was good (already
    // expired when signed) is dropped and fetched again, once.
    std::thread::sleep(Duration::from_millis(4200));
    issuer.stale_next();
    assert_eq!(head_through(&stack, "acme/api", "v1.0.0"), 200);
    assert_eq!(issuer.issued(), first + 3, "{:?}", issuer.seen());
}

#[test]
fn wrong_upstream_credentials_answer_503_and_change_nothing() {
    for upstream in [
        Upstream::Token(Issuer::start(issuer_users())),
        Upstream::Htpasswd,
    ] {
        let stack = Stack::start(upstream, "not-the-password", |_| {});
        let image = Image::new("refused");
        let upload = stack.client().start_upload("acme/web");
        let manifest = stack
            .client()
            .put_manifest("acme/web", "v1.0.0", &image.manifest);
        for reply in [upload, manifest] {
            assert_eq!(reply.status, 503, "{reply}");
            assert_eq!(
                reply.header("content-type"),
                Some("application/json"),
                "{reply}"
            );
            assert_eq!(
                reply.error_code().as_deref(),
                Some("UNAVAILABLE"),
                "{reply}"
            );
        }
        let pull = stack.client().request(
            "GET",
            "/v2/acme/web/manifests/v1.0.0",
            &[("Accept", ACCEPT_MANIFESTS)],
            None,
        );
        assert_eq!(pull.status, 503, "{pull}");
        assert_eq!(
            stack.direct("acme/web").tags("acme/web"),
            Vec::<String>::new()
        );
        let stderr = stack.proxy.stderr();
        assert!(!stderr.contains("not-the-password"), "{stderr}");
        if let Some(issuer) = &stack.issuer {
            assert_eq!(issuer.issued(), 0, "{:?}", issuer.seen());
            assert!(!issuer.seen().is_empty());
        }
    }
}

#[test]
fn the_credentials_go_only_to_a_realm_on_the_upstream_host_unless_named() {
    // The registry names its realm `localhost`, the proxy knows it as 127.0.0.1.
    let issuer = Issuer::start(issuer_users()).with_host("localhost");
    let realm = issuer.realm();
    let stack = Stack::start(Upstream::Token(issuer), PROXY_PASSWORD, |_| {});
    seed(&stack, "acme/api", "v1.0.0");
    assert_eq!(head_through(&stack, "acme/api", "v1.0.0"), 503);
    assert!(
        stack.issuer().seen().is_empty(),
        "the password went to an untrusted realm: {:?}",
        stack.issuer().seen()
    );
    let stderr = stack.proxy.stderr();
    assert!(stderr.contains("--upstream-token-realm"), "{stderr}");

    // Named, it is trusted; and a realm that only takes the OAuth2 form gets it.
    stack.issuer().post_only();
    let password_file = stack.work.path("upstream-password");
    let policy = stack.work.path("policy.json");
    let users = stack.work.path("users.json");
    let named = Serve::new(&stack.registry.url(), &policy)
        .users(&users)
        .arg("--upstream-user")
        .arg(PROXY_USER)
        .arg("--upstream-password-file")
        .arg(&password_file)
        .arg("--upstream-token-realm")
        .arg(&realm)
        .start();
    let reply = named.client().login(DEV, DEV_PASSWORD).request(
        "HEAD",
        "/v2/acme/api/manifests/v1.0.0",
        &[("Accept", ACCEPT_MANIFESTS)],
        None,
    );
    assert_eq!(reply.status, 200, "{reply}\n{}", named.stderr());
    let seen = stack.issuer().seen();
    assert!(
        seen.iter().any(|s| s.method == "POST" && s.issued),
        "{seen:?}"
    );
}

#[test]
fn pass_through_sends_the_client_token_for_the_facts_too() {
    // `--auth none`: skopeo gets its own token from the issuer (the registry's
    // challenge comes back through the proxy) and the proxy reads the facts of
    // the push with that token: the overwrite is refused by the decision, not
    // for want of facts.
    let issuer = Issuer::start(issuer_users());
    let registry = Registry::start_with_token(&issuer);
    let work = Workdir::new();
    let policy = work.write_json("policy.json", &policy());
    let audit = work.path("audit.jsonl");
    let proxy = Serve::new(&registry.url(), &policy)
        .arg("--auth")
        .arg("none")
        .audit_log(&audit)
        .start();
    let push = |content: &Image| {
        let layout = work.path(&format!("layout-{}", &content.manifest.digest[7..23]));
        content.write_layout(&layout, "latest");
        skopeo::copy(
            &layout,
            "latest",
            &format!("{}/acme/web:v1.0.0", proxy.host()),
            Some((DEV, DEV_PASSWORD)),
        )
    };
    let original = Image::new("original");
    assert_succeeded(&push(&original));
    let refused = push(&Image::new("other"));
    assert!(!refused.success(), "{refused}");
    let waited = wait_until(Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&audit).unwrap_or_default();
        if text.contains("tag_immutable") {
            Ok(())
        } else {
            Err(text)
        }
    });
    assert!(waited.is_ok(), "no immutability denial audited: {waited:?}");
    let token = issuer.token("reader", &["repository:acme/web:pull"]);
    assert_eq!(
        registry
            .client()
            .bearer(&token)
            .manifest_digest("acme/web", "v1.0.0")
            .as_deref(),
        Some(original.manifest.digest.as_str())
    );
    // The proxy asked the issuer for nothing: it has no credentials of its own.
    assert!(
        issuer.seen().iter().all(|s| s.user.as_deref() == Some(DEV)),
        "{:?}",
        issuer.seen()
    );
}

#[test]
fn a_body_goes_out_with_a_token_the_first_time() {
    // An upload session started around the proxy; the proxy's very first
    // request is the `PUT` with the blob. A body cannot be sent twice, so it
    // must carry a token at once (a refused first try would be a 503).
    let stack = Stack::start(
        Upstream::Token(Issuer::start(issuer_users())),
        PROXY_PASSWORD,
        |_| {},
    );
    let blob = support::oci::Blob::new(
        "application/octet-stream",
        b"the first request carries a body".to_vec(),
    );
    let started = stack.direct_writer("acme/web").start_upload("acme/web");
    assert_eq!(started.status, 202, "{started}");
    let location = started.header("Location").unwrap();
    let path = location
        .strip_prefix(stack.registry.url().as_str())
        .unwrap_or(location);
    let separator = if path.contains('?') { '&' } else { '?' };
    let reply = stack.client().request(
        "PUT",
        &format!("{path}{separator}digest={}", blob.digest),
        &[("Content-Type", "application/octet-stream")],
        Some(&blob.bytes),
    );
    assert_eq!(reply.status, 201, "{reply}\n{}", stack.proxy.stderr());
    let stored = stack.direct("acme/web").request(
        "HEAD",
        &format!("/v2/acme/web/blobs/{}", blob.digest),
        &[],
        None,
    );
    assert_eq!(stored.status, 200, "{stored}");
    let seen = stack.issuer().seen();
    assert!(
        seen.iter()
            .any(|s| s.scope == "repository:acme/web:pull,push"
                && s.issued
                && s.user.as_deref() == Some(PROXY_USER)),
        "{seen:?}"
    );
}

#[test]
fn preview_walks_a_token_registry_with_the_same_client() {
    let issuer = Issuer::start(issuer_users());
    let registry = Registry::start_with_token(&issuer);
    let writer = registry
        .client()
        .bearer(&issuer.token(PROXY_USER, &["repository:acme/web:pull,push"]));
    assert_eq!(
        writer
            .push_image("acme/web", "v1.0.0", &Image::new("previewed"))
            .status,
        201
    );
    let work = Workdir::new();
    let policy = work.write_json("policy.json", &policy());
    let password = work.path("password");
    std::fs::write(&password, "reader-secret\n").unwrap();
    let output = support::proxy::taglock(
        &[
            "preview",
            "--registry",
            &registry.url(),
            "--policy",
            policy.to_str().unwrap(),
            "--user",
            "reader",
            "--password-file",
            password.to_str().unwrap(),
            "--json",
        ],
        Duration::from_secs(60),
    );
    assert!(output.success(), "{output}");
    let report: Value = serde_json::from_str(&output.stdout).unwrap();
    assert_eq!(report["images"][0]["image"], "acme/web", "{report}");
    assert_eq!(report["images"][0]["tags"][0]["tag"], "v1.0.0", "{report}");
    assert_eq!(
        report["images"][0]["tags"][0]["protected"], true,
        "{report}"
    );
    let seen = issuer.seen();
    assert!(
        seen.iter()
            .any(|s| s.user.as_deref() == Some("reader") && s.scope == "registry:catalog:*"),
        "{seen:?}"
    );
}
