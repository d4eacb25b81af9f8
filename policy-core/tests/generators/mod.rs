//! The generators of policies, requests and hostile JSON that every property and
//! differential test draws from: `policy-core/tests/properties.rs` (the core against
//! the reference model), `policy-core/tests/json_paths.rs` (located JSON errors) and
//! `host-wasmtime/tests/differential.rs` (the component against the native core)
//! include this one file with `#[path]`, so the engines are compared on the same
//! inputs the core is verified on.
//!
//! Every generated policy loads (`properties.rs` asserts it); refused policies come
//! from breaking one with [`replace_node`] and [`json_ish`].

#![allow(dead_code, clippy::indexing_slicing, missing_docs)]

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------
// Pools of realistic and hostile values.

pub fn hex64(c: char) -> String {
    c.to_string().repeat(64)
}

pub fn digest(c: char) -> String {
    format!("sha256:{}", hex64(c))
}

pub const REGEXES: &[&str] = &[
    r"^v\d+\.\d+\.\d+$",
    "prod",
    "^release-.*$",
    "^(staging|prod)$",
    "rc",
    r"^v1\.",
    "v1.2",
    r"^sha256-",
    r"\w+-\d",
    "^latest$",
    r"\bprod\b",
    "(?i)PROD",
    "^[[:alpha:]]+$",
    ".",
    "^$",
];

pub const GLOBS: &[&str] = &[
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
    "nightly",
    "*-rc{1,2}",
    "staging",
    "prod",
    "sha256-*",
];

pub const REPO_GLOBS: &[&str] = &[
    "team-a/**",
    "acme/*",
    "acme/tools/**",
    "**/web",
    "{acme,team-a}/web",
    "*",
    "acme/**",
];

pub const REPO_REGEXES: &[&str] = &["^acme/", "web$", "^team-[ab]/"];

/// Tags of the OCI grammar, realistic ones first.
pub fn valid_tags() -> Vec<String> {
    let mut tags: Vec<String> = [
        "v1.2.3",
        "v1.2",
        "v10.0.1",
        "v1x2",
        "prod",
        "preprod",
        "production",
        "PROD",
        "release-1.0",
        "release-",
        "staging",
        "rc1",
        "rc-2",
        "test-x",
        "latest",
        "dev-1",
        "nightly",
        "x-rc1",
        "abc",
        "_x",
        "9",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    tags.push(format!("sha256-{}", hex64('a')));
    tags.push(format!("sha256-{}.sig", hex64('b')));
    tags.push(format!("sha256-{}.sbom", hex64('0')));
    tags.push(format!("sha256-{}.foo", hex64('a')));
    tags.push("sha256-abc".to_owned());
    tags
}

/// Strings outside the tag grammar.
pub fn invalid_tags() -> Vec<String> {
    let mut tags: Vec<String> = [".hidden", "-x", "a/b", "", "v1 2", "é", "tag:1"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    tags.push("a".repeat(129));
    tags
}

/// Every tag of the pools, valid and invalid.
pub fn tags_pool() -> Vec<String> {
    let mut tags = valid_tags();
    tags.extend(invalid_tags());
    tags
}

pub fn images_pool() -> Vec<&'static str> {
    vec![
        "acme/web",
        "acme/api",
        "acme/tools/cli",
        "acme/tools/x/y",
        "team-a/web",
        "team-a/web/api",
        "team-b/svc",
        "other",
        "acme/web-app",
        "a__b/c.d",
        // Invalid names.
        "Acme/web",
        "acme//web",
        "",
        "acme/web/",
        "-x",
        "a___b",
        "acme/we b",
    ]
}

pub fn digests_pool() -> Vec<String> {
    vec![
        digest('a'),
        digest('b'),
        digest('c'),
        format!("sha512:{}", "e".repeat(128)),
        "multihash+base58:QmRZxt2b1FVZPNqd8hsiyk".to_owned(),
        // Invalid digests.
        "sha256:ABC".to_owned(),
        format!("sha256:{}", "a".repeat(63)),
        "md5".to_owned(),
        format!("SHA256:{}", hex64('a')),
    ]
}

pub const PRINCIPALS: &[&str] = &[
    "user:alice",
    "user:bob",
    "user:root",
    "group:devs",
    "group:qa",
    "group:admins",
    "token:ci",
    "pipeline:web-app",
    "pipeline:web-app/prod",
    "pipeline:tools",
];

// ---------------------------------------------------------------------------
// Policy generators.

pub fn tag_selector() -> impl Strategy<Value = Value> {
    let globs = || prop::sample::subsequence(GLOBS.to_vec(), 1..=3);
    prop_oneof![
        3 => prop::sample::select(REGEXES.to_vec()).prop_map(|r| json!({ "regex": r })),
        2 => globs().prop_map(|g| json!({ "matching": g })),
        1 => globs().prop_map(|g| json!({ "excluding": g })),
    ]
}

pub fn repo_selector() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        3 => Just(None),
        2 => prop::sample::subsequence(REPO_GLOBS.to_vec(), 1..=2)
            .prop_map(|g| Some(json!({ "matching": g }))),
        1 => prop::sample::select(REPO_GLOBS.to_vec())
            .prop_map(|g| Some(json!({ "excluding": [g] }))),
        1 => prop::sample::select(REPO_REGEXES.to_vec()).prop_map(|r| Some(json!({ "regex": r }))),
    ]
}

/// One rule without its name (named by position later).
pub fn rule_body() -> impl Strategy<Value = (Value, Option<Value>)> {
    (tag_selector(), repo_selector())
}

pub fn named_rules(bodies: Vec<(Value, Option<Value>)>, prefix: &str) -> Vec<Value> {
    bodies
        .into_iter()
        .enumerate()
        .map(|(i, (tags, repositories))| {
            let mut rule = json!({ "name": format!("{prefix}{i}"), "tags": tags });
            if let Some(repositories) = repositories {
                rule["repositories"] = repositories;
            }
            rule
        })
        .collect()
}

pub fn exception() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(vec!["^dev-", "rc", "latest", r"^v\d+\.\d+\.\d+-"])
            .prop_map(|r| json!({ "regex": r })),
        prop::sample::subsequence(vec!["latest", "{rc,test}*", "dev-*", "sha256-*"], 1..=2)
            .prop_map(|g| json!({ "matching": g })),
        Just(json!({ "excluding": ["v*"] })),
    ]
}

pub fn optional<T: std::fmt::Debug + Clone + 'static>(
    values: Vec<T>,
) -> impl Strategy<Value = Option<T>> {
    prop::option::of(prop::sample::select(values))
}

/// Inserts `value` under `key` when present.
pub fn put(object: &mut Value, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        object[key] = value;
    }
}

pub fn immutability() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["none", "all", "some", "some", "some"]),
        prop::collection::vec(rule_body(), 0..=7),
        prop::collection::vec(exception(), 0..=2),
        optional(vec!["allow", "deny"]),
        prop::option::of(any::<bool>()),
        optional(vec!["mutable", "protected"]),
    )
        .prop_map(
            |(protect, rules, exceptions, repush, admin_delete, referrer)| {
                let mut imm = json!({
                    "protect": protect,
                    "rules": named_rules(rules, "r"),
                    "exceptions": exceptions,
                });
                put(&mut imm, "identical_repush", repush.map(Value::from));
                put(&mut imm, "admin_delete", admin_delete.map(Value::from));
                put(&mut imm, "referrer_tags", referrer.map(Value::from));
                imm
            },
        )
}

pub fn grants() -> impl Strategy<Value = Value> {
    let some = || prop::sample::subsequence(PRINCIPALS.to_vec(), 0..=3);
    (some(), some(), some())
        .prop_map(|(admin, write, read)| json!({ "admin": admin, "write": write, "read": read }))
}

/// The candidate image entries: records and patterns.
pub const IMAGE_ENTRIES: &[(&str, &str, &str)] = &[
    ("name", "acme/web", "web-app"),
    ("name", "acme/api", "web-app"),
    ("name", "team-a/web", "tools"),
    ("pattern", "acme/tools/**", "tools"),
    ("pattern", "acme/*", "web-app"),
    ("pattern", "team-a/**", "web-app"),
    ("pattern", "acme/{api,web-app}", "ghost"),
    ("pattern", "**", "tools"),
];

pub fn image_entry(index: usize) -> impl Strategy<Value = Value> {
    let (field, value, repository) = IMAGE_ENTRIES[index];
    (
        prop::option::of(any::<bool>()),
        optional(vec!["anyone", "pipelines-only", "pipelines-only"]),
        prop::collection::btree_map(
            prop::sample::select(PRINCIPALS.to_vec()),
            prop::sample::select(vec!["none", "read", "write", "admin"]),
            0..=2,
        ),
    )
        .prop_map(move |(public, publish, overrides)| {
            let mut entry = json!({ field: value, "repository": repository });
            put(&mut entry, "public", public.map(Value::from));
            put(&mut entry, "publish", publish.map(Value::from));
            if !overrides.is_empty() {
                entry["overrides"] = json!(overrides);
            }
            entry
        })
}

pub fn permissions() -> impl Strategy<Value = Value> {
    let entries: Vec<_> = (0..IMAGE_ENTRIES.len()).map(image_entry).collect();
    (
        prop::sample::subsequence(
            vec![
                "user:root",
                "group:admins",
                "token:ci",
                "pipeline:tools/prod",
            ],
            0..=2,
        ),
        grants(),
        grants(),
        entries,
        prop::sample::subsequence((0..IMAGE_ENTRIES.len()).collect::<Vec<_>>(), 0..=5)
            .prop_shuffle(),
        prop::option::of(any::<bool>()),
        optional(vec!["anyone", "pipelines-only"]),
    )
        .prop_map(|(admins, web, tools, entries, chosen, inherit, publish)| {
            let images: Vec<Value> = chosen.iter().map(|&i| entries[i].clone()).collect();
            let mut perms = json!({
                "workspace_admins": admins,
                "repositories": { "web-app": web, "tools": tools },
                "images": images,
            });
            put(
                &mut perms,
                "pipelines_inherit_write",
                inherit.map(Value::from),
            );
            put(&mut perms, "publish", publish.map(Value::from));
            perms
        })
}

pub fn policy() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["enforce", "enforce", "enforce", "audit"]),
        optional(vec!["bitbucket", "harbor"]),
        immutability(),
        prop::option::weighted(0.4, permissions()),
    )
        .prop_map(|(mode, limits, immutability, permissions)| {
            let mut policy = json!({ "version": 1, "mode": mode, "immutability": immutability });
            put(&mut policy, "limits", limits.map(Value::from));
            put(&mut policy, "permissions", permissions);
            policy
        })
}

// ---------------------------------------------------------------------------
// Request generators.

pub fn actor() -> impl Strategy<Value = Option<Value>> {
    let kinded = prop_oneof![
        3 => prop::sample::select(vec!["alice", "bob", "carol", "root"]).prop_map(|id| ("user", id)),
        3 => prop::sample::select(vec!["web-app", "web-app/prod", "web-app/staging", "web-app/prod/eu", "tools", "tools/prod"])
            .prop_map(|id| ("pipeline", id)),
        1 => prop::sample::select(vec!["ci", "deploy"]).prop_map(|id| ("token", id)),
        2 => prop::sample::select(vec!["", "alice"]).prop_map(|id| ("anonymous", id)),
    ];
    let actor = (
        kinded,
        prop::sample::subsequence(vec!["devs", "qa", "admins"], 0..=2),
        prop::option::weighted(0.15, any::<bool>()),
        prop::option::weighted(
            0.15,
            prop::sample::select(vec!["none", "read", "write", "admin"]),
        ),
    )
        .prop_map(|((kind, id), groups, workspace_admin, role)| {
            let mut actor = json!({ "kind": kind });
            if !id.is_empty() {
                actor["id"] = json!(id);
            }
            if !groups.is_empty() {
                actor["groups"] = json!(groups);
            }
            put(
                &mut actor,
                "workspace_admin",
                workspace_admin.map(Value::from),
            );
            put(&mut actor, "role", role.map(Value::from));
            actor
        });
    prop::option::weighted(0.9, actor)
}

/// Mostly valid digests, so that the interesting checks are reached.
pub fn some_digest() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(vec![digest('a'), digest('b')]),
        1 => prop::sample::select(digests_pool()),
    ]
}

pub fn some_tag() -> impl Strategy<Value = String> {
    prop_oneof![12 => prop::sample::select(valid_tags()), 1 => prop::sample::select(tags_pool())]
}

pub fn some_image() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(images_pool()[..10].to_vec()),
        1 => prop::sample::select(images_pool()),
    ]
    .prop_map(str::to_owned)
}

/// A tag's `via`, sometimes: mostly short valid paths through indexes, some with a
/// malformed digest, some around the bound of 16 entries.
pub fn via() -> impl Strategy<Value = Option<Value>> {
    let indexes = || prop::sample::select(vec![digest('a'), digest('b'), digest('d')]);
    prop::option::weighted(
        0.3,
        prop_oneof![
            6 => prop::collection::vec(indexes(), 1..=3),
            1 => prop::collection::vec(some_digest(), 0..=2),
            1 => prop::collection::vec(indexes(), 15..=17),
        ]
        .prop_map(|path| json!(path)),
    )
}

pub fn tag_state() -> impl Strategy<Value = Value> {
    (
        some_tag(),
        prop::option::of(some_digest()),
        prop::option::weighted(0.3, any::<bool>()),
        via(),
    )
        .prop_map(|(name, current, locked, via)| {
            let mut state = json!({ "name": name });
            put(&mut state, "current", current.map(Value::from));
            put(&mut state, "locked", locked.map(Value::from));
            put(&mut state, "via", via);
            state
        })
}

pub fn push_request() -> impl Strategy<Value = Value> {
    (
        some_image(),
        some_digest(),
        prop::collection::vec(tag_state(), 0..=3),
        prop::option::of(any::<bool>()),
        actor(),
    )
        .prop_map(|(image, digest, tags, image_exists, actor)| {
            let mut r =
                json!({ "operation": "push", "image": image, "digest": digest, "tags": tags });
            put(&mut r, "image_exists", image_exists.map(Value::from));
            put(&mut r, "actor", actor);
            r
        })
}

pub fn request() -> impl Strategy<Value = Value> {
    let exists = || prop::option::of(any::<bool>());
    let push = push_request();
    let target = prop_oneof![
        some_tag().prop_map(|t| json!({ "tag": t })),
        some_digest().prop_map(|d| json!({ "digest": d })),
        Just(json!("image")),
    ];
    let delete = (
        some_image(),
        target,
        prop_oneof![
            Just(None),
            Just(Some(Value::Null)),
            prop::collection::vec(tag_state(), 0..=3).prop_map(|t| Some(json!(t))),
        ],
        actor(),
    )
        .prop_map(|(image, target, tags, actor)| {
            let mut r = json!({ "operation": "delete", "image": image, "target": target });
            // A tag delete usually lists the tag itself.
            if let (Some(Value::Array(list)), Some(tag)) = (&tags, target.get("tag")) {
                if list.is_empty() {
                    r["tags"] = json!([{ "name": tag, "current": digest('c') }]);
                }
            }
            if r.get("tags").is_none() {
                put(&mut r, "tags", tags);
            }
            put(&mut r, "actor", actor);
            r
        });
    let upload = (some_image(), exists(), actor()).prop_map(|(image, image_exists, actor)| {
        let mut r = json!({ "operation": "upload", "image": image });
        put(&mut r, "image_exists", image_exists.map(Value::from));
        put(&mut r, "actor", actor);
        r
    });
    let pull = (some_image(), actor()).prop_map(|(image, actor)| {
        let mut r = json!({ "operation": "pull", "image": image });
        put(&mut r, "actor", actor);
        r
    });
    let mount = (some_image(), some_image(), exists(), actor()).prop_map(
        |(image, from, image_exists, actor)| {
            let mut r = json!({ "operation": "mount", "image": image, "from": from });
            put(&mut r, "image_exists", image_exists.map(Value::from));
            put(&mut r, "actor", actor);
            r
        },
    );
    prop_oneof![4 => push, 3 => delete, 1 => upload, 1 => pull, 1 => mount]
}

pub fn cases(default: u32) -> u32 {
    std::env::var("TAGLOCK_PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

pub fn config(default: u32) -> Config {
    Config {
        cases: cases(default),
        failure_persistence: None,
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------
// No panics on arbitrary input.

pub const FIELD_NAMES: &[&str] = &[
    "version",
    "mode",
    "limits",
    "immutability",
    "protect",
    "rules",
    "exceptions",
    "name",
    "tags",
    "repositories",
    "regex",
    "matching",
    "excluding",
    "permissions",
    "images",
    "pattern",
    "operation",
    "image",
    "digest",
    "target",
    "actor",
    "kind",
    "id",
    "groups",
    "role",
    "current",
    "locked",
    "via",
    "from",
    "image_exists",
    "max_rules",
    "max_pattern_length",
];

pub fn json_ish() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        prop::sample::select(vec![
            "push",
            "delete",
            "upload",
            "pull",
            "mount",
            "some",
            "all",
            "none",
            "audit",
            "user",
            "pipeline",
            "anonymous",
            "image",
            "acme/web",
            "v1.2.3",
            "admin",
            "(",
            "[",
            "{",
            "**",
            "\\",
            "bitbucket",
        ])
        .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    prop::sample::select(FIELD_NAMES.to_vec()).prop_map(str::to_owned),
                    "\\PC{0,6}"
                ],
                inner,
                0..6,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Replaces the `pick`-th node (pre-order) of `value` by `with`.
pub fn replace_node(value: &mut Value, pick: &mut usize, with: &Value) -> bool {
    if *pick == 0 {
        *value = with.clone();
        return true;
    }
    *pick -= 1;
    match value {
        Value::Array(items) => items.iter_mut().any(|v| replace_node(v, pick, with)),
        Value::Object(map) => map.values_mut().any(|v| replace_node(v, pick, with)),
        _ => false,
    }
}
