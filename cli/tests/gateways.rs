#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! One scenario suite, two gateways: every scenario here runs against
//! `taglock serve` *and* against Envoy with the taglock filter, each in front
//! of its own real CNCF distribution registry, with the same people, the same
//! policy and the same requests; and once more against `taglock serve` in front
//! of a registry that authenticates the gateway, with HTTP Basic (htpasswd) and
//! with tokens (distribution's `auth: token`, a test issuer's signed tokens).
//! Each run writes a transcript (what was asked, the status, the OCI error
//! body); the scenario asserts what each answer must be, and every transcript
//! must equal the first, so the gateways answer with the same statuses and the
//! same OCI errors whatever the registry behind them.
//!
//! The people are the same on both: `taglock serve` knows them from its users
//! file (HTTP Basic), Envoy from real tokens its `jwt_authn` verifies (signed by
//! a key the test makes). The one answer that differs by design is the 401
//! challenge (`Basic` from the proxy, `Bearer` from Envoy), so a transcript
//! keeps a 401's status and error code, not its header.
//!
//! Needs `scripts/install-envoy.sh` and `scripts/install-registry.sh`; fails,
//! never skips, without them.

mod support;

use serde_json::{Value, json};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Barrier};
use std::time::Duration;
use support::envoy::{self, Envoy};
use support::http::{Client, Reply};
use support::jwt::{self, Issuer};
use support::oci::{Image, MANIFEST};
use support::process::{Output, wait_until};
use support::proxy::{Proxy, Serve, TAGLOCK, Workdir};
use support::registry::Registry;
use support::scenario::{self, password, person, policy};
use support::skopeo::{self, Login};
use support::token;
use support::verdict::{assert_denied, message, unquoted};

/// Which gateway a run goes through, and how the registry behind it
/// authenticates the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `taglock serve` in front of a registry without authentication.
    Serve,
    /// Envoy with the taglock filter in front of a registry without authentication.
    Envoy,
    /// `taglock serve` logging in to a registry with HTTP Basic (htpasswd).
    ServeBasicUpstream,
    /// `taglock serve` logging in to a registry with token authentication
    /// (tokens from a test issuer the registry verifies).
    ServeTokenUpstream,
}

/// Every run of a scenario; the first is the one the others are compared with.
const KINDS: [Kind; 4] = [
    Kind::Serve,
    Kind::Envoy,
    Kind::ServeBasicUpstream,
    Kind::ServeTokenUpstream,
];

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Serve => "taglock serve",
            Kind::Envoy => "Envoy with the taglock filter",
            Kind::ServeBasicUpstream => "taglock serve, upstream with HTTP Basic",
            Kind::ServeTokenUpstream => "taglock serve, upstream with tokens",
        })
    }
}

/// The gateway's own account on a registry that authenticates.
const GATEWAY_USER: &str = "taglock-gateway";
const GATEWAY_PASSWORD: &str = "gateway-upstream-secret";

/// The process in front of the registry.
enum Front {
    Serve { proxy: Proxy, audit: PathBuf },
    Envoy { envoy: Envoy, issuer: Box<Issuer> },
}

/// A registry and one gateway in front of it. Fields drop in order: the
/// gateway, then the registry, then the token issuer, then the files.
struct Gateway {
    kind: Kind,
    front: Front,
    registry: Registry,
    tokens: Option<token::Issuer>,
    work: Workdir,
}

impl Gateway {
    fn start(kind: Kind, policy: &Value) -> Gateway {
        Gateway::start_with(kind, policy, false)
    }

    /// A gateway whose registry logs every request it answers when
    /// `access_log` (only for a registry without authentication).
    fn start_with(kind: Kind, policy: &Value, access_log: bool) -> Gateway {
        let work = Workdir::new();
        let (registry, tokens) = match kind {
            Kind::Serve | Kind::Envoy if access_log => (Registry::start_with_access_log(), None),
            Kind::Serve | Kind::Envoy => (Registry::start(), None),
            Kind::ServeBasicUpstream => {
                let htpasswd = work.path("htpasswd");
                let hash = bcrypt::hash(GATEWAY_PASSWORD, 4).unwrap();
                std::fs::write(&htpasswd, format!("{GATEWAY_USER}:{hash}\n")).unwrap();
                (Registry::start_with_htpasswd(&htpasswd), None)
            }
            Kind::ServeTokenUpstream => {
                let tokens = token::Issuer::start(vec![token::User::everywhere(
                    GATEWAY_USER,
                    GATEWAY_PASSWORD,
                    &["pull", "push", "delete"],
                )]);
                (Registry::start_with_token(&tokens), Some(tokens))
            }
        };
        if kind != Kind::Serve && kind != Kind::Envoy {
            // The registry really asks who is there.
            let anonymous = registry.client().get("/v2/");
            assert_eq!(anonymous.status, 401, "{kind}: {anonymous}");
        }
        let policy = work.write_json("policy.json", policy);
        let front = match kind {
            Kind::Serve | Kind::ServeBasicUpstream | Kind::ServeTokenUpstream => {
                let users = work.path("users.json");
                scenario::write_users(&work, &users);
                let audit = work.path("audit.jsonl");
                let mut serve = Serve::new(&registry.url(), &policy);
                serve.users(&users).audit_log(&audit);
                if kind != Kind::Serve {
                    let password = work.path("upstream-password");
                    std::fs::write(&password, GATEWAY_PASSWORD).unwrap();
                    serve
                        .arg("--upstream-user")
                        .arg(GATEWAY_USER)
                        .arg("--upstream-password-file")
                        .arg(&password);
                }
                let proxy = serve.start();
                Front::Serve { proxy, audit }
            }
            Kind::Envoy => {
                let issuer = Box::new(Issuer::new("scenario-key"));
                let jwks = work.write_json("jwks.json", &issuer.jwks());
                let jwks = jwks.to_str().unwrap().to_owned();
                let envoy = Envoy::start(
                    &policy,
                    &registry.host(),
                    &work.path("envoy"),
                    &[
                        "--jwt-issuer",
                        jwt::ISSUER,
                        "--jwt-jwks",
                        &jwks,
                        "--jwt-audience",
                        jwt::AUDIENCE,
                        "--claim-repository",
                        "repository",
                        "--claim-workspace-admin",
                        "workspace_admin",
                    ],
                );
                Front::Envoy { envoy, issuer }
            }
        };
        Gateway {
            kind,
            front,
            registry,
            tokens,
            work,
        }
    }

    /// `127.0.0.1:PORT` of the gateway.
    fn host(&self) -> String {
        match &self.front {
            Front::Serve { proxy, .. } => proxy.host().to_owned(),
            Front::Envoy { envoy, .. } => envoy.host(),
        }
    }

    /// A raw client of the gateway, anonymous.
    fn anonymous(&self) -> Client {
        match &self.front {
            Front::Serve { proxy, .. } => proxy.client(),
            Front::Envoy { envoy, .. } => envoy.client(),
        }
    }

    /// The token Envoy's `jwt_authn` verifies for `name` (Envoy only).
    fn token(&self, name: &str) -> Option<String> {
        let Front::Envoy { issuer, .. } = &self.front else {
            return None;
        };
        let p = person(name);
        let mut claims = jwt::claims(p.name, p.groups);
        if p.workspace_admin {
            claims["workspace_admin"] = Value::Bool(true);
        }
        if let Some(repository) = p.pipeline_of {
            claims["repository"] = Value::from(repository);
        }
        Some(issuer.token(&claims))
    }

    /// A raw client of the gateway, as `name`.
    fn client(&self, name: &str) -> Client {
        match self.token(name) {
            Some(token) => self.anonymous().bearer(&token),
            None => self.anonymous().login(name, &password(name)),
        }
    }

    /// A raw client of the registry, around the gateway, that may read the
    /// scenarios' images (with the gateway's own account where the registry
    /// authenticates).
    fn direct(&self) -> Client {
        let client = self.registry.client();
        match (&self.tokens, self.kind) {
            (Some(tokens), _) => client.bearer(&tokens.token(
                GATEWAY_USER,
                &["repository:acme/web:pull", "repository:acme/tools:pull"],
            )),
            (None, Kind::ServeBasicUpstream) => client.login(GATEWAY_USER, GATEWAY_PASSWORD),
            (None, _) => client,
        }
    }

    /// skopeo, the real client, pushing `content` to `image:tag` as `name`.
    fn push(&self, name: &str, image: &str, tag: &str, content: &Image) -> Output {
        let layout = self
            .work
            .path(&format!("layout-{}", &content.manifest.digest[7..23]));
        if !layout.exists() {
            content.write_layout(&layout, "latest");
        }
        let dest = format!("{}/{image}:{tag}", self.host());
        let pw = password(name);
        let token = self.token(name);
        let login = match &token {
            Some(token) => Login::Token(token),
            None => Login::Basic(name, &pw),
        };
        skopeo::copy(&layout, "latest", &dest, login)
    }

    /// skopeo deleting `image@digest` as `name`.
    fn delete(&self, name: &str, image: &str, digest: &str) -> Output {
        let pw = password(name);
        let token = self.token(name);
        let login = match &token {
            Some(token) => Login::Token(token),
            None => Login::Basic(name, &pw),
        };
        skopeo::delete(&format!("{}/{image}@{digest}", self.host()), login)
    }

    /// Whether the gateway reported an audit-mode let-through of `method path`
    /// (the proxy in its audit log, Envoy as a warning in its log), waiting a
    /// bounded time.
    fn reported_let_through(&self, method: &str, path: &str) -> bool {
        wait_until(Duration::from_secs(10), || {
            let found = match &self.front {
                Front::Serve { audit, .. } => std::fs::read_to_string(audit)
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                    .any(|e| {
                        e["decision"]["would_deny"] == true
                            && e["method"] == method
                            && e["path"] == path
                    }),
                Front::Envoy { envoy, .. } => envoy
                    .log()
                    .contains(&format!("audit mode let through {method} {path}")),
            };
            if found { Ok(()) } else { Err(String::new()) }
        })
        .is_ok()
    }

    /// What the gateway logged, for failure messages.
    fn log(&self) -> String {
        match &self.front {
            Front::Serve { proxy, audit } => format!(
                "{}\n--- audit log ---\n{}",
                proxy.stderr(),
                std::fs::read_to_string(audit).unwrap_or_default()
            ),
            Front::Envoy { envoy, .. } => envoy.log(),
        }
    }
}

/// One answer of a run: what was asked, the status, and the OCI error body
/// (`None` when the answer is not an OCI error).
#[derive(Debug, Clone, PartialEq)]
struct Step {
    what: String,
    status: u16,
    errors: Option<Value>,
}

/// Every answer of one run, in order. The images of a run are made afresh
/// (their digests differ between runs), so a transcript writes each digest it
/// was told about as the image's label.
#[derive(Debug, Default)]
struct Transcript {
    steps: Vec<Step>,
    labels: Vec<(String, String)>,
}

impl Transcript {
    /// Writes `image`'s manifest digest as `<label>` from now on (in full, and
    /// as the decision messages shorten it).
    fn label(&mut self, label: &str, image: &Image) {
        let digest = &image.manifest.digest;
        self.labels.push((digest.clone(), format!("<{label}>")));
        self.labels
            .push((format!("{}…", &digest[..19]), format!("<{label}>")));
    }

    fn relabel(&self, value: Value) -> Value {
        let mut text = value.to_string();
        for (digest, label) in &self.labels {
            text = text.replace(digest.as_str(), label);
        }
        serde_json::from_str(&text).unwrap()
    }

    /// Records `reply` as the answer to `what`, and returns it.
    fn record(&mut self, what: &str, reply: Reply) -> Reply {
        let errors = serde_json::from_slice::<Value>(&reply.body)
            .ok()
            .filter(|body| body.get("errors").is_some())
            .map(|mut body| self.relabel(body["errors"].take()));
        self.steps.push(Step {
            what: what.to_owned(),
            status: reply.status,
            errors,
        });
        reply
    }

    /// Records whether skopeo succeeded at `what`, and returns its output.
    fn record_skopeo(&mut self, what: &str, output: Output) -> Output {
        self.steps.push(Step {
            what: what.to_owned(),
            status: if output.success() { 0 } else { 1 },
            errors: None,
        });
        output
    }

    /// Records a fact observed on the registry itself.
    fn record_fact(&mut self, what: &str, fact: Value) {
        let fact = self.relabel(fact);
        self.steps.push(Step {
            what: what.to_owned(),
            status: 0,
            errors: Some(fact),
        });
    }
}

/// Runs `scenario` through every gateway of [`KINDS`] (in parallel, each with
/// its own registry) and asserts that their transcripts are equal.
fn on_every_gateway(policy: &Value, scenario: impl Fn(&mut Gateway, &mut Transcript) + Sync) {
    let transcripts: Vec<(Kind, Transcript)> = std::thread::scope(|scope| {
        let runs: Vec<_> = KINDS
            .iter()
            .map(|&kind| {
                let scenario = &scenario;
                scope.spawn(move || (kind, run(kind, policy, scenario)))
            })
            .collect();
        runs.into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))
            })
            .collect()
    });
    let (first, expected) = &transcripts[0];
    for (kind, transcript) in &transcripts[1..] {
        assert_eq!(
            expected.steps.len(),
            transcript.steps.len(),
            "the transcripts of {first} and {kind} have different lengths"
        );
        for (a, b) in expected.steps.iter().zip(&transcript.steps) {
            assert_eq!(
                a, b,
                "{first} and {kind} answered `{}` differently\n  {first}: {a:?}\n  {kind}: {b:?}",
                a.what
            );
        }
    }
}

/// One run of `scenario` through `kind`; on a failure, prints the end of the
/// gateway's log and the transcript so far.
fn run(
    kind: Kind,
    policy: &Value,
    scenario: &(impl Fn(&mut Gateway, &mut Transcript) + Sync),
) -> Transcript {
    let mut gateway = Gateway::start(kind, policy);
    let mut transcript = Transcript::default();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        scenario(&mut gateway, &mut transcript)
    }));
    if let Err(panic) = outcome {
        let log = gateway.log();
        if let Some(dir) = std::env::var_os("TAGLOCK_TEST_LOGS") {
            let name = format!(
                "{}-{kind:?}.log",
                std::thread::current().name().unwrap_or("scenario")
            );
            let _ = std::fs::write(PathBuf::from(dir).join(name), &log);
        }
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        eprintln!("--- {kind}: the end of its log ---");
        for line in tail.iter().rev() {
            eprintln!("{}", line.chars().take(400).collect::<String>());
        }
        eprintln!("--- {kind}: the scenario failed; its transcript so far:");
        for step in &transcript.steps {
            eprintln!("  {step:?}");
        }
        std::panic::resume_unwind(panic);
    }
    if let Some(tokens) = &gateway.tokens {
        assert!(
            tokens.issued() > 0,
            "{kind}: the gateway never asked for a token"
        );
    }
    transcript
}

#[test]
fn immutable_tags_cannot_be_moved_or_deleted_but_others_can() {
    on_every_gateway(&policy("enforce"), |g, t| {
        let direct = g.direct();
        let alice = g.client("alice");
        let (original, other) = (Image::new("original"), Image::new("other"));
        t.label("original", &original);
        t.label("other", &other);

        // The real client: first push of a protected tag, then an overwrite.
        let first = t.record_skopeo(
            "alice pushes v1.0.0",
            g.push("alice", "acme/web", "v1.0.0", &original),
        );
        assert!(first.success(), "{first}");
        let again = t.record_skopeo(
            "alice overwrites v1.0.0",
            g.push("alice", "acme/web", "v1.0.0", &other),
        );
        assert!(!again.success(), "the overwrite went through");
        assert!(
            unquoted(&again.stderr).contains("tag v1.0.0 of acme/web is immutable"),
            "skopeo does not show the decision: {again}"
        );
        assert_eq!(
            direct.manifest_digest("acme/web", "v1.0.0"),
            Some(original.manifest.digest.clone())
        );

        // Raw HTTP: the overwrite's exact OCI error; the same content again is fine.
        alice.push_blob("acme/web", &other.config);
        alice.push_blob("acme/web", &other.layer);
        let overwrite = t.record(
            "PUT v1.0.0 (other)",
            alice.put_manifest("acme/web", "v1.0.0", &other.manifest),
        );
        assert_denied(&overwrite, "tag v1.0.0 of acme/web is immutable");
        let repush = t.record(
            "PUT v1.0.0 (same)",
            alice.put_manifest("acme/web", "v1.0.0", &original.manifest),
        );
        assert_eq!(repush.status, 201, "{repush}");

        // Tags no rule protects move freely.
        for (label, image) in [("other", &other), ("original", &original)] {
            let moved = t.record(
                &format!("PUT latest ({label})"),
                alice.put_manifest("acme/web", "latest", &image.manifest),
            );
            assert_eq!(moved.status, 201, "{moved}");
        }

        // Deletes: a writer may not delete at all; the repository's admin may,
        // but not a protected tag (by tag or by digest); an untagged digest, yes.
        let writer = t.record(
            "alice DELETEs an untagged digest",
            alice.delete_manifest("acme/web", &other.manifest.digest),
        );
        assert_denied(&writer, "needs admin");
        let bob = g.client("bob");
        let by_tag = t.record("DELETE v1.0.0", bob.delete_manifest("acme/web", "v1.0.0"));
        assert_denied(&by_tag, "v1.0.0");
        let by_digest = t.record(
            "DELETE the digest under v1.0.0",
            bob.delete_manifest("acme/web", &original.manifest.digest),
        );
        assert_denied(&by_digest, "v1.0.0");
        let skopeo_delete = t.record_skopeo(
            "skopeo deletes the digest under v1.0.0",
            g.delete("bob", "acme/web", &original.manifest.digest),
        );
        assert!(!skopeo_delete.success(), "the delete went through");
        assert_eq!(
            direct.manifest_digest("acme/web", "v1.0.0"),
            Some(original.manifest.digest.clone())
        );
        let untagged = t.record(
            "DELETE an untagged digest",
            bob.delete_manifest("acme/web", &other.manifest.digest),
        );
        assert_eq!(untagged.status, 202, "{untagged}");
        assert_eq!(
            direct.manifest_digest("acme/web", &other.manifest.digest),
            None
        );

        // A workspace admin may delete a protected tag's image (admin_delete).
        let admin = t.record(
            "root DELETEs the digest under v1.0.0",
            g.client("root")
                .delete_manifest("acme/web", &original.manifest.digest),
        );
        assert_eq!(admin.status, 202, "{admin}");
        assert_eq!(direct.manifest_digest("acme/web", "v1.0.0"), None);
    });
}

/// What reached the registry as `METHOD PATH STATUS`, once it has logged the
/// `PUT` of `image:tag` (its access log is written after it answers).
fn reached_until_put(registry: &Registry, image: &str, tag: &str) -> Vec<String> {
    let put = format!("/v2/{image}/manifests/{tag}");
    let mut reached = Vec::new();
    wait_until(Duration::from_secs(10), || {
        let requests = registry.requests();
        reached = requests
            .iter()
            .map(|(method, path, status)| format!("{method} {path} {status}"))
            .collect();
        if requests.iter().any(|(m, p, _)| m == "PUT" && *p == put) {
            Ok(())
        } else {
            Err(format!("no PUT {put} yet: {reached:?}"))
        }
    })
    .unwrap();
    reached
}

#[test]
fn a_push_of_an_unprotected_tag_asks_the_registry_nothing_first() {
    // alice writes to acme/web, a record: whether it exists cannot matter;
    // `latest` no rule protects, so nothing is looked up, while `v1.0.0` is
    // read (HEAD) before its push. The registry's access log says what reached it.
    let policy = policy("enforce");
    std::thread::scope(|scope| {
        for kind in [Kind::Serve, Kind::Envoy] {
            let policy = &policy;
            scope.spawn(move || {
                let g = Gateway::start_with(kind, policy, true);
                let alice = g.client("alice");
                let image = Image::new("unprotected");
                alice.push_blob("acme/web", &image.config);
                alice.push_blob("acme/web", &image.layer);
                let latest = alice.put_manifest("acme/web", "latest", &image.manifest);
                assert_eq!(latest.status, 201, "{kind}: {latest}");
                let reached = reached_until_put(&g.registry, "acme/web", "latest");
                let looked_up: Vec<&String> = reached
                    .iter()
                    .filter(|r| {
                        r.starts_with("HEAD /v2/acme/web/manifests/") || r.contains("/tags/list")
                    })
                    .collect();
                assert!(
                    looked_up.is_empty(),
                    "{kind}: uploads and an unprotected push looked up {looked_up:?}"
                );

                let release = alice.put_manifest("acme/web", "v1.0.0", &image.manifest);
                assert_eq!(release.status, 201, "{kind}: {release}");
                let reached = reached_until_put(&g.registry, "acme/web", "v1.0.0");
                let looked_up: Vec<&String> = reached
                    .iter()
                    .filter(|r| {
                        r.starts_with("HEAD /v2/acme/web/manifests/") || r.contains("/tags/list")
                    })
                    .collect();
                assert_eq!(
                    looked_up,
                    ["HEAD /v2/acme/web/manifests/v1.0.0 404"],
                    "{kind}: a protected tag's push reads the tag, nothing else"
                );
            });
        }
    });
}

#[test]
fn anonymous_clients_are_asked_to_log_in_before_anything_is_decided() {
    // Nothing this policy decides depends on who asks, yet both gateways identify
    // their clients, so they challenge the API check and the catalog: clients send
    // credentials only once challenged.
    let policy = json!({
        "version": 1,
        "immutability": {"protect": "some", "rules": [{"name": "semver", "tags": {"regex": "^v"}}]}
    });
    on_every_gateway(&policy, |g, t| {
        for path in ["/v2/", "/v2/_catalog"] {
            let reply = g.anonymous().get(path);
            assert_eq!(reply.status, 401, "{reply}");
            let error = &reply.json()["errors"][0];
            assert!(
                error["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("log in first")),
                "{reply}"
            );
            // The wording names each gateway's own credentials; the rest is the same.
            t.record_fact(
                &format!("anonymous GET {path}"),
                json!({"status": reply.status, "code": error["code"]}),
            );
            let known = g.client("alice").get(path);
            t.record_fact(&format!("alice GET {path}"), json!(known.status));
            assert_eq!(known.status, 200, "{known}");
        }
    });
}

#[test]
fn a_push_of_several_tags_is_all_or_nothing() {
    on_every_gateway(&policy("enforce"), |g, t| {
        let direct = g.direct();
        let alice = g.client("alice");
        let (first, second) = (Image::new("first"), Image::new("second"));
        t.label("first", &first);
        t.label("second", &second);
        let pushed = t.record("PUT v1.0.0", alice.push_image("acme/web", "v1.0.0", &first));
        assert_eq!(pushed.status, 201, "{pushed}");
        alice.push_blob("acme/web", &second.config);
        alice.push_blob("acme/web", &second.layer);

        // One protected tag of the set would move: nothing is written.
        let refused = t.record(
            "PUT by digest ?tag=v1.1.0&tag=v1.0.0",
            alice.put_manifest(
                "acme/web",
                &format!("{}?tag=v1.1.0&tag=v1.0.0", second.manifest.digest),
                &second.manifest,
            ),
        );
        assert_denied(&refused, "tag v1.0.0 of acme/web is immutable");
        assert_eq!(
            direct.manifest_digest("acme/web", "v1.0.0"),
            Some(first.manifest.digest.clone())
        );
        assert_eq!(direct.manifest_digest("acme/web", "v1.1.0"), None);
        assert_eq!(
            direct.manifest_digest("acme/web", &second.manifest.digest),
            None
        );

        // Every tag new: allowed.
        let allowed = t.record(
            "PUT by digest ?tag=v2.0.0&tag=v2.1.0",
            alice.put_manifest(
                "acme/web",
                &format!("{}?tag=v2.0.0&tag=v2.1.0", second.manifest.digest),
                &second.manifest,
            ),
        );
        assert_eq!(allowed.status, 201, "{allowed}");
        assert_eq!(
            direct.manifest_digest("acme/web", &second.manifest.digest),
            Some(second.manifest.digest.clone())
        );

        // The same tag twice is that tag once; a tag that is not a tag is refused.
        let repeated = t.record(
            "PUT by digest ?tag=v3.0.0&tag=v3.0.0",
            alice.put_manifest(
                "acme/web",
                &format!("{}?tag=v3.0.0&tag=v3.0.0", second.manifest.digest),
                &second.manifest,
            ),
        );
        assert_eq!(repeated.status, 201, "{repeated}");
        let bad = t.record(
            "PUT by digest ?tag=bad%20tag",
            alice.put_manifest(
                "acme/web",
                &format!("{}?tag=bad%20tag", second.manifest.digest),
                &second.manifest,
            ),
        );
        assert_eq!(bad.status, 400, "{bad}");
        assert!(message(&bad).contains("invalid tag `bad tag`"), "{bad}");
    });
}

#[test]
fn who_may_push_pull_and_list_follows_the_code_repository() {
    on_every_gateway(&policy("enforce"), |g, t| {
        let direct = g.direct();
        let (web, tools, other) = (Image::new("web"), Image::new("tools"), Image::new("other"));
        for (label, image) in [("web", &web), ("tools", &tools), ("other", &other)] {
            t.label(label, image);
        }

        let bob = t.record(
            "bob (admin) pushes acme/web",
            g.client("bob").push_image("acme/web", "v1.0.0", &web),
        );
        assert_eq!(bob.status, 201, "{bob}");

        // A reader may pull but not push, nor even start an upload.
        let quinn = g.client("quinn");
        let upload = t.record("quinn starts an upload", quinn.start_upload("acme/web"));
        assert_denied(&upload, "quinn");
        let put = t.record(
            "quinn PUTs a manifest",
            quinn.put_manifest("acme/web", "v2.0.0", &other.manifest),
        );
        assert_denied(&put, "quinn");
        assert_eq!(direct.manifest_digest("acme/web", "v2.0.0"), None);
        let pull = t.record(
            "quinn pulls",
            quinn.request(
                "GET",
                "/v2/acme/web/manifests/v1.0.0",
                &[("Accept", MANIFEST)],
                None,
            ),
        );
        assert_eq!(pull.status, 200, "{pull}");
        assert_eq!(
            pull.header("Docker-Content-Digest"),
            Some(web.manifest.digest.as_str())
        );

        // Someone the image's repository does not name may not even pull.
        let mallory = t.record(
            "mallory pulls",
            g.client("mallory").request(
                "GET",
                "/v2/acme/web/manifests/v1.0.0",
                &[("Accept", MANIFEST)],
                None,
            ),
        );
        assert_denied(&mallory, "mallory");

        // Pipelines-only publishing: a developer is refused, the pipeline is not.
        let alice = t.record_skopeo(
            "alice pushes acme/tools",
            g.push("alice", "acme/tools", "v1.0.0", &tools),
        );
        assert!(
            !alice.success(),
            "a developer published a pipelines-only image"
        );
        assert_eq!(direct.manifest_digest("acme/tools", "v1.0.0"), None);
        let ci = t.record_skopeo(
            "ci-tools pushes acme/tools",
            g.push("ci-tools", "acme/tools", "v1.0.0", &tools),
        );
        assert!(ci.success(), "{ci}");
        assert_eq!(
            direct.manifest_digest("acme/tools", "v1.0.0"),
            Some(tools.manifest.digest.clone())
        );

        // A cross-repository mount needs read on the source and write on the target.
        let mount = t.record(
            "quinn mounts from acme/tools",
            quinn.request(
                "POST",
                &format!(
                    "/v2/acme/web/blobs/uploads/?mount={}&from=acme/tools",
                    tools.layer.digest
                ),
                &[("Content-Length", "0")],
                Some(b""),
            ),
        );
        assert_eq!(mount.status, 403, "{mount}");

        // Nobody logged in: asked to log in, nothing written.
        let anonymous = t.record(
            "anonymous PUT",
            g.anonymous()
                .put_manifest("acme/web", "v3.0.0", &other.manifest),
        );
        assert_eq!(anonymous.status, 401, "{anonymous}");
        assert_eq!(
            anonymous.error_code().as_deref(),
            Some("UNAUTHORIZED"),
            "{anonymous}"
        );
        assert_eq!(direct.manifest_digest("acme/web", "v3.0.0"), None);

        // The catalog lists only what the caller may pull.
        let catalog = t.record("quinn lists the catalog", quinn.get("/v2/_catalog"));
        assert_eq!(
            catalog.json()["repositories"],
            json!(["acme/web"]),
            "{catalog}"
        );
        t.record_fact("quinn's catalog", catalog.json());
        let all = t.record(
            "root lists the catalog",
            g.client("root").get("/v2/_catalog"),
        );
        assert_eq!(
            all.json()["repositories"],
            json!(["acme/tools", "acme/web"]),
            "{all}"
        );
        t.record_fact("root's catalog", all.json());
    });
}

#[test]
fn audit_mode_lets_a_would_be_denial_through_and_reports_it() {
    on_every_gateway(&policy("audit"), |g, t| {
        let direct = g.direct();
        let alice = g.client("alice");
        let (first, second) = (Image::new("first"), Image::new("second"));
        t.label("first", &first);
        t.label("second", &second);
        let pushed = t.record("PUT v1.0.0", alice.push_image("acme/web", "v1.0.0", &first));
        assert_eq!(pushed.status, 201, "{pushed}");
        let moved = t.record(
            "PUT v1.0.0 (other)",
            alice.push_image("acme/web", "v1.0.0", &second),
        );
        assert_eq!(moved.status, 201, "audit mode refused: {moved}");
        assert_eq!(
            direct.manifest_digest("acme/web", "v1.0.0"),
            Some(second.manifest.digest.clone())
        );
        let warning = moved.header("Warning").unwrap_or_default().to_owned();
        assert!(
            warning.starts_with("299 - \"tag v1.0.0 of acme/web is immutable"),
            "{moved}"
        );
        t.record_fact("the Warning header", Value::from(warning));
        assert!(
            g.reported_let_through("PUT", "/v2/acme/web/manifests/v1.0.0"),
            "no report of the let-through:\n{}",
            g.log()
        );
    });
}

#[test]
fn concurrent_pushes_to_one_new_protected_tag_store_exactly_one() {
    const PUSHES: usize = 16;
    on_every_gateway(&policy("enforce"), |g, t| {
        let alice = g.client("alice");
        let images: Vec<Image> = (0..PUSHES).map(|n| Image::new("race").variant(n)).collect();
        for image in &images {
            alice.push_blob("acme/web", &image.config);
            alice.push_blob("acme/web", &image.layer);
        }
        let barrier = Arc::new(Barrier::new(PUSHES));
        let statuses: Vec<(u16, Option<String>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = images
                .iter()
                .map(|image| {
                    let (client, barrier) = (alice.clone(), Arc::clone(&barrier));
                    scope.spawn(move || {
                        barrier.wait();
                        let reply = client.put_manifest("acme/web", "v1.0.0", &image.manifest);
                        (reply.status, reply.error_code())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let stored = statuses.iter().filter(|(s, _)| *s == 201).count();
        let denied = statuses
            .iter()
            .filter(|(s, code)| *s == 403 && code.as_deref() == Some("DENIED"))
            .count();
        assert_eq!((stored, denied), (1, PUSHES - 1), "{statuses:?}");
        let winner = g
            .direct()
            .manifest_digest("acme/web", "v1.0.0")
            .expect("the winner is stored");
        assert!(images.iter().any(|i| i.manifest.digest == winner));
        t.record_fact("stored, denied", json!([stored, denied]));
    });
}

#[test]
fn an_upstream_that_is_down_gets_503_and_nothing_is_written() {
    on_every_gateway(&policy("enforce"), |g, t| {
        let alice = g.client("alice");
        let image = Image::new("down");
        t.label("down", &image);
        alice.push_blob("acme/web", &image.config);
        alice.push_blob("acme/web", &image.layer);
        // The registry's storage stays; only the process goes.
        g.registry.stop();
        let push = t.record(
            "PUT v1.0.0 upstream down",
            alice.put_manifest("acme/web", "v1.0.0", &image.manifest),
        );
        assert_eq!(push.status, 503, "{push}");
        assert_eq!(push.error_code().as_deref(), Some("UNAVAILABLE"), "{push}");
        let delete = t.record(
            "DELETE by digest upstream down",
            g.client("bob")
                .delete_manifest("acme/web", &image.manifest.digest),
        );
        assert_denied(&delete, "are unknown");
        g.registry.restart();
        assert_eq!(
            g.direct().manifest_digest("acme/web", "v1.0.0"),
            None,
            "a write landed"
        );
        let after = t.record(
            "PUT v1.0.0 upstream back",
            alice.put_manifest("acme/web", "v1.0.0", &image.manifest),
        );
        assert_eq!(after.status, 201, "{after}");
    });
}

/// A policy with two problems.
fn bad_policy() -> Value {
    let mut policy = policy("enforce");
    policy["immutability"]["rules"][0]["tags"]["regex"] = Value::from("^v(\\d+$");
    policy["immutability"]["rules"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "name": "broken", "tags": { "regex": "^rc-[" } }));
    policy
}

/// The problems a refusal to load prints: each `error[…]` line and the
/// `-->` line that locates it.
fn problems(output: &Output) -> Vec<String> {
    output
        .stderr
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("error[") || line.starts_with("-->"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_bad_policy_is_refused_by_both_gateways_with_every_problem_located() {
    let registry = Registry::start();
    let work = Workdir::new();
    let policy = work.write_json("bad.json", &bad_policy());

    let serve = support::process::run(
        {
            let mut command = std::process::Command::new(TAGLOCK);
            command
                .args([
                    "serve",
                    "--upstream",
                    &registry.url(),
                    "--auth",
                    "none",
                    "--listen",
                    "127.0.0.1:0",
                    "--policy",
                ])
                .arg(&policy);
            command
        },
        None,
        Duration::from_secs(30),
    );
    let (bootstrap, _, _) = envoy::bootstrap(&policy, &registry.host(), &work.path("envoy"), &[]);
    for (who, output) in [
        ("taglock serve", &serve),
        ("taglock envoy bootstrap", &bootstrap),
    ] {
        assert!(!output.success(), "{who} accepted a bad policy: {output}");
        let found = problems(output);
        assert_eq!(
            found.len(),
            4,
            "{who} did not name and locate both problems: {output}"
        );
    }
    assert_eq!(
        problems(&serve),
        problems(&bootstrap),
        "the two refusals differ"
    );
    assert!(
        !work.path("envoy").join("envoy.yaml").exists(),
        "bootstrap wrote a config"
    );
}
