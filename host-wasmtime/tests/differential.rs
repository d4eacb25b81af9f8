//! Generated (policy, requests) pairs through both engines, compared field by
//! field: the component must decide exactly as the native core, on valid and on
//! hostile input alike. `TAGLOCK_PROPTEST_CASES=N` raises the case count.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use policy_core::{Policy, Request};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::Config;
use serde_json::{Value, json};
use std::sync::OnceLock;
use taglock_host_wasmtime::{Host, HostError};

fn host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(|| Host::embedded().expect("the embedded component loads"))
}

fn digest(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

const REGEXES: &[&str] = &[
    r"^v\d+\.\d+\.\d+$",
    "prod",
    "^release-.*$",
    "^(staging|prod)$",
    "rc",
    "v1.2",
    r"\w+-\d",
    "^latest$",
    "(?i)PROD",
    ".",
    "^$",
];
/// Patterns every engine must refuse, picked rarely so that most policies load.
const BAD_REGEXES: &[&str] = &["(a", "x{99999}", r"(\w)\1", "(?=x)"];
const BAD_GLOBS: &[&str] = &["[", "{a,", "a\\"];
const GLOBS: &[&str] = &[
    "v*.*.*",
    "{rc,test}*",
    "release-*",
    "latest",
    "*",
    "**",
    "v?.*",
    "[a-c]*",
    "[!0-9]*",
    "dev-*",
    "*-rc{1,2}",
    "sha256-*",
];
const REPO_GLOBS: &[&str] = &["team-a/**", "acme/*", "acme/tools/**", "**/web", "*"];
const PRINCIPALS: &[&str] = &[
    "user:alice",
    "user:root",
    "group:devs",
    "group:qa",
    "token:ci",
    "pipeline:web-app",
    "pipeline:web-app/prod",
    "pipeline:tools",
    "nobody",
    "user:",
];
const TAGS: &[&str] = &[
    "v1.2.3",
    "v1.2",
    "v1x2",
    "prod",
    "preprod",
    "release-1.0",
    "staging",
    "rc1",
    "latest",
    "dev-1",
    "nightly",
    "x-rc1",
    "_x",
    ".hidden",
    "-x",
    "a/b",
    "",
    "v1 2",
    "é",
    "sha256-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.sig",
];
const IMAGES: &[&str] = &[
    "acme/web",
    "acme/api",
    "acme/tools/cli",
    "team-a/web",
    "team-b/svc",
    "other",
    "Acme/web",
    "acme//web",
    "",
    "acme/web/",
];

fn selector(patterns: &'static [&'static str]) -> impl Strategy<Value = Value> {
    prop_oneof![
        12 => prop::sample::select(REGEXES.to_vec()).prop_map(|r| json!({ "regex": r })),
        12 => prop::sample::subsequence(patterns.to_vec(), 1..=3).prop_map(|g| json!({ "matching": g })),
        6 => prop::sample::subsequence(patterns.to_vec(), 1..=2).prop_map(|g| json!({ "excluding": g })),
        1 => prop::sample::select(BAD_REGEXES.to_vec()).prop_map(|r| json!({ "regex": r })),
        1 => prop::sample::select(BAD_GLOBS.to_vec()).prop_map(|g| json!({ "matching": [g] })),
    ]
}

fn policy() -> impl Strategy<Value = Value> {
    let rule = (selector(GLOBS), prop::option::of(selector(REPO_GLOBS)));
    let grants = || prop::sample::subsequence(PRINCIPALS.to_vec(), 0..=3);
    let images = prop::sample::subsequence(
        vec![
            json!({ "name": "acme/web", "repository": "web-app", "public": true }),
            json!({ "name": "acme/api", "repository": "web-app", "publish": "pipelines-only",
                    "overrides": { "user:alice": "read" } }),
            json!({ "pattern": "acme/tools/**", "repository": "tools" }),
            json!({ "pattern": "team-a/**", "repository": "web-app" }),
        ],
        0..=4,
    );
    (
        prop::sample::select(vec!["enforce", "audit"]),
        prop::sample::select(vec!["none", "all", "some", "some"]),
        prop::collection::vec(rule, 0..=5),
        prop::collection::vec(selector(GLOBS), 0..=2),
        prop::sample::select(vec!["allow", "deny"]),
        any::<bool>(),
        prop::option::weighted(0.5, (grants(), grants(), grants(), images, any::<bool>())),
    )
        .prop_map(|(mode, protect, rules, exceptions, repush, admin_delete, perms)| {
            let rules: Vec<Value> = rules
                .into_iter()
                .enumerate()
                .map(|(i, (tags, repositories))| {
                    let mut rule = json!({ "name": format!("r{i}"), "tags": tags });
                    if let Some(repositories) = repositories {
                        rule["repositories"] = repositories;
                    }
                    rule
                })
                .collect();
            let mut policy = json!({
                "version": 1, "mode": mode,
                "immutability": { "protect": protect, "rules": rules, "exceptions": exceptions,
                                  "identical_repush": repush, "admin_delete": admin_delete },
            });
            if let Some((admin, write, read, images, inherit)) = perms {
                policy["permissions"] = json!({
                    "workspace_admins": ["user:root"],
                    "repositories": { "web-app": { "admin": admin, "write": write, "read": read } },
                    "images": images,
                    "pipelines_inherit_write": inherit,
                });
            }
            policy
        })
}

fn actor() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec![
            ("user", "alice"),
            ("user", "root"),
            ("pipeline", "web-app/prod"),
            ("pipeline", "tools"),
            ("token", "ci"),
            ("anonymous", ""),
        ]),
        prop::sample::subsequence(vec!["devs", "qa"], 0..=2),
        any::<bool>(),
        prop::option::weighted(
            0.2,
            prop::sample::select(vec!["none", "read", "write", "admin"]),
        ),
    )
        .prop_map(|((kind, id), groups, workspace_admin, role)| {
            let mut actor =
                json!({ "kind": kind, "groups": groups, "workspace_admin": workspace_admin });
            if !id.is_empty() {
                actor["id"] = json!(id);
            }
            if let Some(role) = role {
                actor["role"] = json!(role);
            }
            actor
        })
}

fn some_digest() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(vec![digest('a'), digest('b')]),
        1 => prop::sample::select(vec!["sha256:ABC".to_owned(), "md5".to_owned()]),
    ]
}

fn tag_state() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(TAGS.to_vec()),
        prop::option::of(some_digest()),
        any::<bool>(),
    )
        .prop_map(
            |(name, current, locked)| json!({ "name": name, "current": current, "locked": locked }),
        )
}

fn request() -> impl Strategy<Value = Value> {
    let image = || prop::sample::select(IMAGES.to_vec());
    let tags = || prop::collection::vec(tag_state(), 0..=3);
    prop_oneof![
        4 => (image(), some_digest(), tags(), any::<bool>(), actor()).prop_map(
            |(image, digest, tags, exists, actor)| json!({ "operation": "push", "image": image,
                "digest": digest, "tags": tags, "image_exists": exists, "actor": actor })),
        3 => (image(), prop_oneof![
                prop::sample::select(TAGS.to_vec()).prop_map(|t| json!({ "tag": t })),
                some_digest().prop_map(|d| json!({ "digest": d })),
                Just(json!("image")),
            ], prop::option::of(tags()), actor()).prop_map(
            |(image, target, tags, actor)| json!({ "operation": "delete", "image": image,
                "target": target, "tags": tags, "actor": actor })),
        1 => (image(), any::<bool>(), actor()).prop_map(|(image, exists, actor)| json!({
                "operation": "upload", "image": image, "image_exists": exists, "actor": actor })),
        1 => (image(), actor()).prop_map(|(image, actor)| json!({
                "operation": "pull", "image": image, "actor": actor })),
        1 => (image(), image(), any::<bool>(), actor()).prop_map(|(image, from, exists, actor)| json!({
                "operation": "mount", "image": image, "from": from, "image_exists": exists, "actor": actor })),
    ]
}

fn config(default: u32) -> Config {
    let cases = std::env::var("TAGLOCK_PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config(192))]

    #[test]
    fn component_decides_like_native(
        policy in policy(),
        requests in prop::collection::vec(request(), 1..=8),
        probes in prop::collection::vec((prop::sample::select(IMAGES.to_vec()), prop::sample::select(TAGS.to_vec())), 1..=4),
    ) {
        let text = policy.to_string();
        let native = Policy::from_json(&text);
        let wasm = host().load_policy(&text);
        let (native, wasm) = match (native, wasm) {
            (Ok(native), Ok(wasm)) => (native, wasm),
            (Err(native), Err(HostError::Policy(wasm))) => {
                prop_assert_eq!(native, wasm);
                return Ok(());
            }
            (native, wasm) => {
                return Err(TestCaseError::fail(format!(
                    "load outcome differs: native {:?}, wasm {:?}", native.map(|_| ()), wasm.map(|_| ()))));
            }
        };
        prop_assert_eq!(native.lints(), wasm.lints());
        for request in requests {
            let request = Request::from_value(request).unwrap();
            let expected = native.evaluate(&request);
            let actual = wasm.evaluate(&request).unwrap();
            prop_assert_eq!(actual.allowed, expected.allowed);
            prop_assert_eq!(actual.would_deny, expected.would_deny);
            prop_assert_eq!(actual.reason, expected.reason);
            prop_assert_eq!(&actual.message, &expected.message);
            prop_assert_eq!(&actual.rule, &expected.rule);
            prop_assert_eq!(&actual.protected_tags, &expected.protected_tags);
            prop_assert_eq!(actual.status(), expected.status());
            prop_assert_eq!(&actual.detail, &expected.detail);
            prop_assert_eq!(actual.to_json_value(), expected.to_json_value());
            prop_assert_eq!(actual, expected);
        }
        for (image, tag) in probes {
            prop_assert_eq!(wasm.test_tag(image, tag).unwrap(), native.test_tag(image, tag));
        }
    }

    /// Arbitrary text as a policy: both engines refuse it (or accept it) alike.
    #[test]
    fn arbitrary_policy_text_is_refused_alike(text in "\\PC{0,80}") {
        match (Policy::from_json(&text), host().load_policy(&text)) {
            (Ok(_), Ok(_)) => {}
            (Err(native), Err(HostError::Policy(wasm))) => prop_assert_eq!(native, wasm),
            (native, wasm) => {
                return Err(TestCaseError::fail(format!(
                    "load outcome differs: native {:?}, wasm {:?}", native.map(|_| ()), wasm.map(|_| ()))));
            }
        }
    }
}

/// Guards the generator itself: most generated policies must load, or the
/// decision comparison above would be testing little.
#[test]
fn most_generated_policies_load() {
    // A fixed seed: this guards the generator, so it must not depend on luck.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut loaded, mut total) = (0, 0);
    for _ in 0..200 {
        let policy = policy().new_tree(&mut runner).unwrap().current();
        total += 1;
        loaded += usize::from(Policy::from_json(&policy.to_string()).is_ok());
    }
    assert!(
        loaded * 2 > total,
        "only {loaded} of {total} generated policies load"
    );
}
