#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! `taglock serve` in front of a real CNCF distribution registry, driven by the
//! real client (skopeo) and by a raw HTTP client: the main scenario of the proxy.
//! Each test runs its own registry and proxy, so the tests run in parallel.
//! docker-registry and skopeo must be installed (scripts/install-registry.sh); a
//! test fails, never skips, when they are not.

mod support;

use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::{Arc, Barrier};
use std::time::Duration;
use support::http::Client;
use support::oci::Image;
use support::process::{Output, wait_until};
use support::proxy::{Proxy, Serve, Workdir, taglock};
use support::registry::Registry;
use support::scenario::{self, password, policy};
use support::skopeo;
use support::verdict;

/// A registry, the proxy in front of it, and the test's files. Fields drop in
/// order: the proxy, then the registry, then the files.
struct Stack {
    proxy: Proxy,
    registry: Registry,
    audit: PathBuf,
    work: Workdir,
}

impl Stack {
    fn start(mode: &str) -> Stack {
        Stack::start_with(mode, |_, _| {})
    }

    /// Like [`Stack::start`], with `configure` adding to the proxy's command line.
    fn start_with(mode: &str, configure: impl FnOnce(&Workdir, &mut Serve)) -> Stack {
        let registry = Registry::start();
        let work = Workdir::new();
        let policy = work.write_json("policy.json", &policy(mode));
        let users = work.path("users.json");
        scenario::write_users(&work, &users);
        let audit = work.path("audit.jsonl");
        let mut serve = Serve::new(&registry.url(), &policy);
        serve.users(&users).audit_log(&audit);
        configure(&work, &mut serve);
        let proxy = serve.start();
        Stack {
            proxy,
            registry,
            audit,
            work,
        }
    }

    /// A raw client of the proxy logged in as `user`.
    fn client(&self, user: &str) -> Client {
        self.proxy.client().login(user, &password(user))
    }

    /// A raw client of the registry, around the proxy.
    fn direct(&self) -> Client {
        self.registry.client()
    }

    /// `skopeo copy` of `content` to `image:tag` through the proxy as `user`.
    fn push(&self, user: &str, image: &str, tag: &str, content: &Image) -> Output {
        let layout = self
            .work
            .path(&format!("layout-{}", &content.manifest.digest[7..23]));
        content.write_layout(&layout, "latest");
        let pw = password(user);
        skopeo::copy(
            &layout,
            "latest",
            &format!("{}/{image}:{tag}", self.proxy.host()),
            Some((user, pw.as_str())),
        )
    }

    /// `skopeo delete` of `image@digest` through the proxy as `user`.
    fn delete(&self, user: &str, image: &str, digest: &str) -> Output {
        let pw = password(user);
        skopeo::delete(
            &format!("{}/{image}@{digest}", self.proxy.host()),
            Some((user, pw.as_str())),
        )
    }

    /// Waits (bounded) for an audit line that `matches`, and returns it.
    fn audit_line(&self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let mut found = None;
        let waited = wait_until(Duration::from_secs(10), || {
            let text = std::fs::read_to_string(&self.audit).unwrap_or_default();
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let entry: Value = serde_json::from_str(line)
                    .unwrap_or_else(|err| panic!("audit line is not JSON ({err}): {line}"));
                if matches(&entry) {
                    found = Some(entry);
                    return Ok(());
                }
            }
            Err(text)
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
}

/// `sha256:` and the first 12 hex digits, as the decision messages print a digest.
fn short(digest: &str) -> String {
    format!("{}…", &digest[..19])
}

fn assert_refused(output: &Output, sentence: &str) {
    verdict::assert_refused("skopeo", output, sentence);
}

fn assert_succeeded(output: &Output) {
    assert!(output.success(), "skopeo failed: {output}");
}

#[test]
fn protected_tag_first_push_overwrite_repush_and_digest_delete() {
    let stack = Stack::start("enforce");
    let direct = stack.direct();
    let original = Image::new("original");
    let other = Image::new("other");

    // First push of a protected tag.
    assert_succeeded(&stack.push("alice", "acme/web", "v1.0.0", &original));
    assert_eq!(
        direct.manifest_digest("acme/web", "v1.0.0").as_deref(),
        Some(original.manifest.digest.as_str())
    );

    // An overwrite with another image is refused with the decision's sentence, and the
    // registry itself still serves the original.
    let refused = stack.push("alice", "acme/web", "v1.0.0", &other);
    assert_refused(
        &refused,
        &format!(
            "tag v1.0.0 of acme/web is immutable (rule \"semver\") and already points to {}; push a new tag instead",
            short(&original.manifest.digest)
        ),
    );
    assert_eq!(
        direct.manifest_digest("acme/web", "v1.0.0").as_deref(),
        Some(original.manifest.digest.as_str())
    );
    assert_eq!(
        direct.manifest_digest("acme/web", &other.manifest.digest),
        None,
        "the refused manifest reached the registry"
    );
    let line = stack.audit_line("the refused overwrite", |e| {
        e["decision"]["reason"] == "tag_immutable" && e["method"] == "PUT"
    });
    assert_eq!(line["path"], "/v2/acme/web/manifests/v1.0.0", "{line}");
    assert_eq!(line["actor"]["kind"], "user", "{line}");
    assert_eq!(line["actor"]["id"], "alice", "{line}");
    assert_eq!(line["rule"], "semver", "{line}");
    assert_eq!(line["decision"]["allowed"], false, "{line}");
    assert_eq!(line["decision"]["status"], 403, "{line}");
    assert_eq!(line["request"]["operation"], "push", "{line}");
    assert_eq!(
        line["request"]["digest"],
        other.manifest.digest.as_str(),
        "{line}"
    );
    assert_eq!(
        line["request"]["tags"][0]["current"],
        original.manifest.digest.as_str(),
        "{line}"
    );
    let sha = line["component_sha256"].as_str().unwrap_or_default();
    assert!(
        sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
        "{line}"
    );
    assert!(
        line["time"]
            .as_str()
            .is_some_and(|t| t.len() >= 20 && t.contains('T')),
        "{line}"
    );

    // The identical re-push (a CI retry) is a no-op that succeeds.
    assert_succeeded(&stack.push("alice", "acme/web", "v1.0.0", &original));
    assert_eq!(
        direct.manifest_digest("acme/web", "v1.0.0").as_deref(),
        Some(original.manifest.digest.as_str())
    );

    // A digest delete under the protected tag: a writer lacks admin, a repository
    // admin meets immutability, a workspace admin may.
    let digest = original.manifest.digest.as_str();
    assert_refused(
        &stack.delete("alice", "acme/web", digest),
        "user alice needs admin on repository web-app",
    );
    assert_refused(
        &stack.delete("bob", "acme/web", digest),
        &format!(
            "manifest {} of acme/web is referenced by immutable tag v1.0.0 (rule \"semver\"); only a workspace admin may delete it",
            short(digest)
        ),
    );
    assert_eq!(
        direct.manifest_digest("acme/web", "v1.0.0").as_deref(),
        Some(digest)
    );
    assert_succeeded(&stack.delete("root", "acme/web", digest));
    assert_eq!(direct.manifest_digest("acme/web", digest), None);
    assert_eq!(direct.manifest_digest("acme/web", "v1.0.0"), None);
}

#[test]
fn reader_push_and_pipelines_only_image() {
    let stack = Stack::start("enforce");
    let direct = stack.direct();
    let content = Image::new("reader");

    // A reader may not push.
    assert_refused(
        &stack.push("quinn", "acme/web", "v1.0.0", &content),
        "user quinn needs write on repository web-app",
    );
    assert_eq!(direct.manifest_digest("acme/web", "v1.0.0"), None);

    // A pipelines-only image refuses a user with write, and takes its pipeline.
    let tools = Image::new("tools");
    assert_refused(
        &stack.push("alice", "acme/tools", "v1.0.0", &tools),
        "image acme/tools accepts pushes from pipelines only; user alice must publish it through a pipeline of tools",
    );
    assert_eq!(direct.manifest_digest("acme/tools", "v1.0.0"), None);
    assert_succeeded(&stack.push("ci-tools", "acme/tools", "v1.0.0", &tools));
    assert_eq!(
        direct.manifest_digest("acme/tools", "v1.0.0").as_deref(),
        Some(tools.manifest.digest.as_str())
    );
    let line = stack.audit_line("the pipeline's push", |e| {
        e["method"] == "PUT" && e["path"] == "/v2/acme/tools/manifests/v1.0.0"
    });
    assert_eq!(line["actor"]["kind"], "pipeline", "{line}");
    assert_eq!(line["actor"]["id"], "tools", "{line}");
    assert_eq!(line["decision"]["allowed"], true, "{line}");
    assert_eq!(
        line["decision"]["protected_tags"],
        json!(["v1.0.0"]),
        "{line}"
    );
}

#[test]
fn audit_mode_forwards_the_overwrite_and_logs_would_deny() {
    let stack = Stack::start("audit");
    let direct = stack.direct();
    let first = Image::new("audit-first");
    let second = Image::new("audit-second");

    assert_succeeded(&stack.push("alice", "acme/web", "v1.0.0", &first));
    assert_succeeded(&stack.push("alice", "acme/web", "v1.0.0", &second));
    assert_eq!(
        direct.manifest_digest("acme/web", "v1.0.0").as_deref(),
        Some(second.manifest.digest.as_str()),
        "audit mode must forward the overwrite"
    );
    let line = stack.audit_line("the would-deny overwrite", |e| {
        e["decision"]["would_deny"] == true
    });
    assert_eq!(line["decision"]["allowed"], true, "{line}");
    assert_eq!(line["decision"]["reason"], "tag_immutable", "{line}");
    assert_eq!(line["path"], "/v2/acme/web/manifests/v1.0.0", "{line}");
    assert_eq!(line["actor"]["id"], "alice", "{line}");

    // The response of a would-deny write carries the OCI warning.
    let third = second.variant(3);
    let reply = stack
        .client("alice")
        .put_manifest("acme/web", "v1.0.0", &third.manifest);
    assert_eq!(reply.status, 201, "{reply}");
    let warning = reply.header("Warning").unwrap_or_default();
    assert!(
        warning.starts_with("299 - \"tag v1.0.0 of acme/web is immutable (rule \\\"semver\\\")")
            || warning.starts_with("299 - \"tag v1.0.0 of acme/web is immutable (rule \"semver\")"),
        "no audit warning: {reply}"
    );
    assert_eq!(
        direct.manifest_digest("acme/web", "v1.0.0").as_deref(),
        Some(third.manifest.digest.as_str())
    );
}

#[test]
fn concurrent_pushes_to_one_new_protected_tag_store_exactly_one() {
    const PUSHES: usize = 32;
    let stack = Stack::start("enforce");
    let alice = stack.client("alice");
    let base = Image::new("race");
    alice.push_blob("acme/web", &base.config);
    alice.push_blob("acme/web", &base.layer);
    let variants: Vec<Image> = (0..PUSHES).map(|n| base.variant(n)).collect();

    let start = Arc::new(Barrier::new(PUSHES));
    let replies: Vec<_> = variants
        .iter()
        .map(|variant| {
            let (alice, start, manifest) = (alice.clone(), start.clone(), variant.manifest.clone());
            std::thread::spawn(move || {
                start.wait();
                alice.put_manifest("acme/web", "v2.0.0", &manifest)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();

    let winners: Vec<usize> = (0..PUSHES).filter(|&i| replies[i].status == 201).collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one push may set a new protected tag: {:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    for (i, reply) in replies.iter().enumerate() {
        if i == winners[0] {
            continue;
        }
        assert_eq!(reply.status, 403, "{reply}");
        assert_eq!(reply.error_code().as_deref(), Some("DENIED"), "{reply}");
        assert!(
            reply.text().contains("tag v2.0.0 of acme/web is immutable"),
            "{reply}"
        );
    }
    let direct = stack.direct();
    let winner = &variants[winners[0]].manifest.digest;
    assert_eq!(
        direct.manifest_digest("acme/web", "v2.0.0").as_ref(),
        Some(winner)
    );
    for (i, variant) in variants.iter().enumerate() {
        if i != winners[0] {
            assert_eq!(
                direct.manifest_digest("acme/web", &variant.manifest.digest),
                None,
                "a refused manifest reached the registry"
            );
        }
    }
}

#[test]
fn upstream_down_answers_503_and_writes_nothing() {
    let mut stack = Stack::start("enforce");
    let alice = stack.client("alice");
    let content = Image::new("down");
    alice.push_blob("acme/web", &content.config);
    alice.push_blob("acme/web", &content.layer);
    assert_eq!(stack.proxy.client().get("/readyz").status, 200);

    stack.registry.stop();
    let reply = alice.put_manifest("acme/web", "v3.0.0", &content.manifest);
    assert_eq!(reply.status, 503, "{reply}");
    assert_eq!(
        reply.error_code().as_deref(),
        Some("UNAVAILABLE"),
        "{reply}"
    );
    let reply = alice.start_upload("acme/web");
    assert_eq!(reply.status, 503, "{reply}");
    wait_until(Duration::from_secs(15), || {
        let reply = stack.proxy.client().get("/readyz");
        if reply.status == 200 {
            Err(format!(
                "/readyz still answers 200 with the upstream down: {reply}"
            ))
        } else {
            Ok(())
        }
    })
    .unwrap();

    stack.registry.restart();
    let direct = stack.direct();
    assert_eq!(direct.manifest_digest("acme/web", "v3.0.0"), None);
    assert_eq!(
        direct.manifest_digest("acme/web", &content.manifest.digest),
        None
    );
    assert_eq!(direct.tags("acme/web"), Vec::<String>::new());

    // Back up: the proxy serves again.
    wait_until(Duration::from_secs(15), || {
        let reply = stack.proxy.client().get("/readyz");
        if reply.status == 200 {
            Ok(())
        } else {
            Err(format!("/readyz after the upstream came back: {reply}"))
        }
    })
    .unwrap();
    let reply = alice.put_manifest("acme/web", "v3.0.0", &content.manifest);
    assert_eq!(reply.status, 201, "{reply}");
    assert_eq!(
        direct.manifest_digest("acme/web", "v3.0.0").as_ref(),
        Some(&content.manifest.digest)
    );
}

#[test]
fn preview_lists_the_protected_tags_of_the_live_registry() {
    let registry = Registry::start();
    let direct = registry.client();
    let web = Image::new("preview-web");
    let api = Image::new("preview-api");
    for tag in ["v1.0.0", "v1.2.3", "v1.2", "latest", "prod", "preprod"] {
        let reply = direct.push_image("acme/web", tag, &web);
        assert_eq!(reply.status, 201, "{reply}");
    }
    for tag in ["v2.0.0", "dev"] {
        let reply = direct.push_image("acme/api", tag, &api);
        assert_eq!(reply.status, 201, "{reply}");
    }
    let work = Workdir::new();
    let policy = work.write_json(
        "policy.json",
        &json!({
            "version": 1,
            "immutability": {
                "protect": "some",
                "rules": [
                    { "name": "semver", "tags": { "regex": "^v\\d+\\.\\d+\\.\\d+$" } },
                    { "name": "prod", "tags": { "regex": "^prod$" } },
                    { "name": "release", "tags": { "regex": "^release-\\d+$" } }
                ]
            }
        }),
    );
    let policy = policy.to_str().unwrap();
    let url = registry.url();

    let output = taglock(
        &["preview", "--registry", &url, "--policy", policy, "--json"],
        Duration::from_secs(60),
    );
    assert!(output.success(), "taglock preview: {output}");
    let report: Value = serde_json::from_str(&output.stdout)
        .unwrap_or_else(|err| panic!("preview --json is not JSON ({err}): {output}"));
    let expect_web = [
        ("latest", None),
        ("preprod", None),
        ("prod", Some("prod")),
        ("v1.0.0", Some("semver")),
        ("v1.2", None),
        ("v1.2.3", Some("semver")),
    ];
    let expect_api = [("dev", None), ("v2.0.0", Some("semver"))];
    assert_eq!(
        preview_tags(&report, "acme/web"),
        expect_web.map(|(t, r)| (t.to_owned(), r.map(str::to_owned))),
        "{report:#}"
    );
    assert_eq!(
        preview_tags(&report, "acme/api"),
        expect_api.map(|(t, r)| (t.to_owned(), r.map(str::to_owned))),
        "{report:#}"
    );
    let protected = |name: &str| {
        report["rules"]
            .as_array()
            .and_then(|rules| rules.iter().find(|r| r["name"] == name))
            .map(|r| r["protected"].clone())
    };
    assert_eq!(protected("semver"), Some(json!(3)), "{report:#}");
    assert_eq!(protected("prod"), Some(json!(1)), "{report:#}");
    assert_eq!(report["unused_rules"], json!(["release"]), "{report:#}");

    // --image narrows the walk to the named images.
    let output = taglock(
        &[
            "preview",
            "--registry",
            &url,
            "--policy",
            policy,
            "--image",
            "acme/api",
            "--json",
        ],
        Duration::from_secs(60),
    );
    assert!(output.success(), "taglock preview --image: {output}");
    let report: Value = serde_json::from_str(&output.stdout).unwrap();
    let images: Vec<&str> = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["image"].as_str())
        .collect();
    assert_eq!(images, ["acme/api"], "{report:#}");
    assert_eq!(
        preview_tags(&report, "acme/api"),
        expect_api.map(|(t, r)| (t.to_owned(), r.map(str::to_owned))),
        "{report:#}"
    );
}

/// `(tag, Some(rule) when protected)` for every tag preview lists of `image`,
/// sorted by tag.
fn preview_tags(report: &Value, image: &str) -> Vec<(String, Option<String>)> {
    let entry = report["images"]
        .as_array()
        .and_then(|images| images.iter().find(|i| i["image"] == image))
        .unwrap_or_else(|| panic!("preview does not list {image}: {report:#}"));
    let mut tags: Vec<(String, Option<String>)> = entry["tags"]
        .as_array()
        .unwrap_or_else(|| panic!("no tags for {image}: {report:#}"))
        .iter()
        .map(|t| {
            let protected = t["protected"]
                .as_bool()
                .unwrap_or_else(|| panic!("tag without `protected`: {t}"));
            let rule = protected.then(|| t["rule"].as_str().unwrap_or("").to_owned());
            (t["tag"].as_str().unwrap().to_owned(), rule)
        })
        .collect();
    tags.sort();
    tags
}

/// A line of the `--ui` test page's script, repeated to make a file worth compressing.
const UI_SCRIPT: &str =
    "export const verdicts = tags.map((tag) => policy.testTags(image, [tag]));\n";

#[test]
fn login_challenge_health_endpoints_ui_and_oversize_manifest() {
    let stack = Stack::start_with("enforce", |work, serve| {
        let ui = work.path("ui");
        std::fs::create_dir_all(ui.join("tester")).unwrap();
        std::fs::write(
            ui.join("tester/index.html"),
            "<title>pattern tester</title>",
        )
        .unwrap();
        std::fs::write(ui.join("tester/app.js"), UI_SCRIPT.repeat(200)).unwrap();
        serve.arg("--ui").arg(ui);
    });
    let anonymous = stack.proxy.client();

    // Anonymous /v2/ is challenged, so clients log in; good credentials pass, bad
    // ones do not.
    let reply = anonymous.get("/v2/");
    assert_eq!(reply.status, 401, "{reply}");
    let challenge = reply.header("WWW-Authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Basic") && challenge.contains("realm=\"taglock\""),
        "{reply}"
    );
    assert_eq!(stack.client("alice").get("/v2/").status, 200);
    let wrong = anonymous.login("alice", "not-her-password").get("/v2/");
    assert_eq!(wrong.status, 401, "{wrong}");
    let pull = anonymous.get("/v2/acme/web/tags/list");
    assert_eq!(pull.status, 401, "{pull}");
    assert!(pull.header("WWW-Authenticate").is_some(), "{pull}");

    assert_eq!(anonymous.get("/healthz").status, 200);
    assert_eq!(anonymous.get("/readyz").status, 200);
    let metrics = anonymous.get("/metrics");
    assert_eq!(metrics.status, 200, "{metrics}");
    assert!(
        metrics.text().contains("# TYPE"),
        "not Prometheus text: {metrics}"
    );
    // --ui serves a static directory at /ui/ (the demo's pattern tester).
    let page = anonymous.get("/ui/tester/index.html");
    assert_eq!(page.status, 200, "{page}");
    assert_eq!(page.text(), "<title>pattern tester</title>");
    // Compressed for a client that asks, byte for byte the file once inflated;
    // as is for one that does not; registry answers are never re-encoded.
    let script = UI_SCRIPT.repeat(200);
    let gzip = [("Accept-Encoding", "gzip")];
    let packed = anonymous.request("GET", "/ui/tester/app.js", &gzip, None);
    assert_eq!(packed.status, 200, "{packed}");
    assert_eq!(packed.header("Content-Encoding"), Some("gzip"), "{packed}");
    assert!(
        packed.body.len() < script.len() / 10,
        "{} bytes",
        packed.body.len()
    );
    let mut inflated = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(packed.body.as_slice()),
        &mut inflated,
    )
    .unwrap();
    assert_eq!(inflated, script);
    let plain = anonymous.get("/ui/tester/app.js");
    assert_eq!(plain.header("Content-Encoding"), None, "{plain}");
    assert_eq!(plain.text(), script);
    let alice = stack.client("alice");
    let listing = alice.request("GET", "/v2/_catalog", &gzip, None);
    assert_eq!(listing.status, 200, "{listing}");
    assert_eq!(listing.header("Content-Encoding"), None, "{listing}");

    // A manifest over 4 MiB is refused before anything reaches the registry.
    let alice = stack.client("alice");
    let content = Image::new("big");
    alice.push_blob("acme/web", &content.config);
    alice.push_blob("acme/web", &content.layer);
    let big = content.padded(4 * 1024 * 1024 + 1);
    let put = |chunked: bool| {
        alice.raw_exchange(
            "PUT",
            "/v2/acme/web/manifests/v4.0.0",
            &[("Content-Type", big.manifest.media_type)],
            big.manifest.bytes.clone(),
            chunked,
        )
    };
    // With the length declared, and with none (chunked): the proxy counts.
    for chunked in [false, true] {
        let reply = put(chunked);
        assert_eq!(reply.status, 413, "chunked: {chunked}: {reply}");
        assert_eq!(
            reply.error_code().as_deref(),
            Some("SIZE_INVALID"),
            "{reply}"
        );
    }
    let direct = stack.direct();
    assert_eq!(direct.manifest_digest("acme/web", "v4.0.0"), None);
    assert_eq!(
        direct.manifest_digest("acme/web", &big.manifest.digest),
        None
    );
    // The limit is not lower than 4 MiB.
    let limit = content.padded(4 * 1024 * 1024);
    let reply = alice.put_manifest("acme/web", "v4.0.1", &limit.manifest);
    assert_eq!(reply.status, 201, "{reply}");
}

#[test]
fn policy_reload_refuses_a_bad_policy_and_applies_a_good_one() {
    let stack = Stack::start("enforce");
    let alice = stack.client("alice");
    let first = Image::new("reload");
    let second = first.variant(1);
    let reply = alice.push_image("acme/web", "v1.0.0", &first);
    assert_eq!(reply.status, 201, "{reply}");
    let overwrite = || alice.put_manifest("acme/web", "v1.0.0", &second.manifest);
    assert_eq!(overwrite().status, 403);

    let policy = stack.work.path("policy.json");
    let hangup = || {
        let mut kill = std::process::Command::new("kill");
        kill.arg("-HUP").arg(stack.proxy.pid().to_string());
        let output = support::process::run(kill, None, Duration::from_secs(10));
        assert!(output.success(), "kill -HUP: {output}");
    };
    let logged = |text: &str| {
        wait_until(Duration::from_secs(15), || {
            if stack.proxy.stderr().contains(text) {
                Ok(())
            } else {
                Err(stack.proxy.stderr())
            }
        })
        .unwrap_or_else(|stderr| panic!("the proxy never logged {text:?}:\n{stderr}"));
    };

    // A broken policy is refused; the old one keeps deciding.
    std::fs::write(&policy, "{ \"version\": 1, \"mode\": ").unwrap();
    hangup();
    logged("new policy refused");
    let reply = overwrite();
    assert_eq!(reply.status, 403, "{reply}");

    // A good one replaces it: with nothing protected, the overwrite goes through.
    let mut open = self::policy("enforce");
    open["immutability"] = json!({ "protect": "none" });
    stack.work.write_json("policy.json", &open);
    hangup();
    logged("policy reloaded");
    let reply = overwrite();
    assert_eq!(reply.status, 201, "{reply}");
    assert_eq!(
        stack
            .direct()
            .manifest_digest("acme/web", "v1.0.0")
            .as_ref(),
        Some(&second.manifest.digest)
    );
}

#[test]
fn catalog_lists_only_the_images_the_actor_may_read() {
    let stack = Stack::start("enforce");
    let direct = stack.direct();
    let content = Image::new("catalog");
    for image in ["acme/web", "acme/tools", "other/secret"] {
        let reply = direct.push_image(image, "v1.0.0", &content);
        assert_eq!(reply.status, 201, "{reply}");
    }
    let catalog = |user: &str| {
        let reply = stack.client(user).get("/v2/_catalog");
        assert_eq!(reply.status, 200, "{reply}");
        let mut names: Vec<String> = reply.json()["repositories"]
            .as_array()
            .unwrap_or_else(|| panic!("no repositories: {reply}"))
            .iter()
            .map(|n| n.as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(catalog("quinn"), ["acme/web"]);
    assert_eq!(catalog("alice"), ["acme/tools", "acme/web"]);
    assert_eq!(catalog("ci-tools"), ["acme/tools"]);
    // A workspace admin reads every image, linked or not.
    assert_eq!(catalog("root"), ["acme/tools", "acme/web", "other/secret"]);
    // The registry itself holds all three.
    let reply = direct.get("/v2/_catalog");
    assert_eq!(reply.json()["repositories"].as_array().unwrap().len(), 3);
}
