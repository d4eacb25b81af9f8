#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! Decision and load benchmarks for the two largest policies the limit profiles
//! allow: "Bitbucket-max" (7 regex rules, `limits: bitbucket`) and "Harbor-max"
//! (15 glob rules with repository selectors, `limits: harbor`), both with a
//! permissions section so every decision also resolves the actor's role.
//!
//! Requests are built outside the timed closures; only `policy.evaluate(&request)`
//! (or `Policy::from_json`, `policy.test_tag`) is timed. Each case's outcome is
//! asserted once before timing, so a benchmark cannot silently measure the wrong path.
//!
//! Run: `cargo bench -p taglock-policy-core --bench decide`
//! (criterion flags after `--`, e.g. `-- --measurement-time 5 bitbucket`).
//! Results and targets: `docs/benchmarks.md`.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use policy_core::document::{self, PolicyDocument};
use policy_core::{
    Actor, DeleteRequest, DeleteTarget, Policy, PullRequest, PushRequest, Request, TagState, names,
};
use std::hint::black_box;
use std::time::Duration;

/// Bitbucket-max: `protect: some`, the 7 regex rules Bitbucket allows, two repositories.
const BITBUCKET_MAX: &str = include_str!("policies/bitbucket-max.json");

/// Harbor-max: `protect: some`, the 15 glob rules Harbor allows, each scoped to
/// repositories (Harbor projects), three linked repositories.
const HARBOR_MAX: &str = include_str!("policies/harbor-max.json");

fn digest(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

/// One policy under test and the image/tags its cases use.
struct Setup {
    /// Group name in criterion's output.
    name: &'static str,
    /// Policy JSON.
    text: &'static str,
    /// Image the requests address (linked, actor has write/admin through grants).
    image: &'static str,
    /// A tag protected by a rule (the rule the decisions name).
    protected: &'static str,
    /// The rule that protects `protected`.
    rule: &'static str,
    /// Two more tags for the 3-tag push.
    extra_tags: [&'static str; 2],
    /// A tag no rule protects (for the 19 other tags of the digest delete).
    unprotected_prefix: &'static str,
}

const SETUPS: [Setup; 2] = [
    Setup {
        name: "bitbucket-max",
        text: BITBUCKET_MAX,
        image: "acme/web",
        protected: "v1.4.2",
        rule: "semver",
        extra_tags: ["v1.4", "latest"],
        unprotected_prefix: "build-",
    },
    Setup {
        name: "harbor-max",
        text: HARBOR_MAX,
        // Linked by the first image pattern; protected by the 15th (last) rule, so
        // every rule's tag selector, and the repository selectors of the rules
        // whose tag globs also match, run first.
        image: "apps/web/frontend",
        protected: "v1.4.2",
        rule: "apps-release",
        extra_tags: ["v1.4", "latest"],
        unprotected_prefix: "build-",
    },
];

fn developer() -> Actor {
    Actor::user("dev-1", &["devs"])
}

fn push(image: &str, tags: Vec<TagState>) -> Request {
    Request::Push(PushRequest {
        image: image.to_owned(),
        digest: digest('a'),
        tags,
        image_exists: true,
        actor: developer(),
    })
}

fn check(policy: &Policy, request: &Request, reason: &str, rule: Option<&str>) {
    let decision = policy.evaluate(request);
    assert_eq!(
        decision.reason().as_str(),
        reason,
        "unexpected decision: {}",
        decision.message()
    );
    assert_eq!(decision.rule(), rule, "{}", decision.message());
}

fn bench_policy(c: &mut Criterion, setup: &Setup) {
    let policy = Policy::from_json(setup.text).expect("benchmark policy loads");
    let image = setup.image;
    let tag = setup.protected;
    let mut group = c.benchmark_group(setup.name);

    let cases: Vec<(&str, Request, &str, Option<&str>)> = vec![
        (
            "push_new_tag",
            push(image, vec![TagState::new_tag(tag)]),
            "allowed",
            None,
        ),
        (
            "push_overwrite_denied",
            push(image, vec![TagState::existing(tag, digest('b'))]),
            "tag_immutable",
            Some(setup.rule),
        ),
        (
            "push_identical_repush",
            push(image, vec![TagState::existing(tag, digest('a'))]),
            "allowed",
            None,
        ),
        (
            "push_3_tags",
            push(
                image,
                vec![
                    TagState::new_tag(tag),
                    TagState::new_tag(setup.extra_tags[0]),
                    TagState::new_tag(setup.extra_tags[1]),
                ],
            ),
            "allowed",
            None,
        ),
        (
            // 19 unprotected tags and one protected one at the end; a repository
            // admin (grant) deletes, so the immutability check decides.
            "delete_digest_20_tags",
            Request::Delete(DeleteRequest {
                image: image.to_owned(),
                target: DeleteTarget::Digest(digest('a')),
                tags: Some(
                    (1..20)
                        .map(|n| {
                            TagState::existing(
                                format!("{}{n}", setup.unprotected_prefix),
                                digest('a'),
                            )
                        })
                        .chain(std::iter::once(TagState::existing(tag, digest('a'))))
                        .collect(),
                ),
                actor: Actor::user("alice", &["devs"]),
            }),
            "tag_immutable",
            Some(setup.rule),
        ),
        (
            // Read through a group grant (`group:qa`), the user named in no grant.
            "pull_group_grant",
            Request::Pull(PullRequest {
                image: image.to_owned(),
                actor: Actor::user("quinn", &["staff", "qa"]),
            }),
            "allowed",
            None,
        ),
    ];

    for (name, request, reason, rule) in &cases {
        check(&policy, request, reason, *rule);
        group.bench_function(*name, |b| {
            b.iter(|| black_box(&policy).evaluate(black_box(request)));
        });
    }

    let tested = policy.test_tag(image, tag);
    assert!(tested.protected);
    assert_eq!(tested.rule.as_deref(), Some(setup.rule));
    group.bench_function("test_tag", |b| {
        b.iter(|| black_box(&policy).test_tag(black_box(image), black_box(tag)));
    });

    group.bench_function("load_json", |b| {
        b.iter(|| Policy::from_json(black_box(setup.text)));
    });
    group.finish();
}

fn decide(c: &mut Criterion) {
    for setup in &SETUPS {
        bench_policy(c, setup);
    }
}

/// The same JSON with the `permissions` section removed (immutability only).
fn without_permissions(text: &str) -> String {
    let mut value: serde_json::Value = serde_json::from_str(text).unwrap();
    value.as_object_mut().unwrap().remove("permissions");
    value.to_string()
}

/// Where the time of a decision and of a load goes: the pieces the core is made
/// of, timed alone through the public API (see `docs/benchmarks.md`).
fn parts(c: &mut Criterion) {
    let tag = "v1.4.2";
    let bb_image = SETUPS[0].image;
    let hb_image = SETUPS[1].image;
    let pushed = digest('a');
    let current = digest('b');
    let mut group = c.benchmark_group("parts");

    // Request validation (the OCI grammars), done before any matcher runs.
    group.bench_function("validate_image_digest_tag", |b| {
        b.iter(|| {
            (
                names::check_image_name(black_box(hb_image)),
                names::check_digest(black_box(&pushed)),
                names::check_tag(black_box(tag)),
            )
        });
    });
    group.bench_function("validate_image", |b| {
        b.iter(|| names::check_image_name(black_box(hb_image)));
    });
    group.bench_function("validate_digest", |b| {
        b.iter(|| names::check_digest(black_box(&pushed)));
    });
    group.bench_function("validate_tag", |b| {
        b.iter(|| names::check_tag(black_box(tag)));
    });

    // One rule alone: the matcher and the verdict around it (`test_tag`).
    let one_rule = |selector: &str| {
        Policy::from_json(&format!(
            r#"{{"version": 1, "immutability": {{"protect": "some",
                "rules": [{{"name": "r", "tags": {selector}}}]}}}}"#
        ))
        .unwrap()
    };
    for (name, selector, protected) in [
        (
            "one_regex_rule_hit",
            r#"{"regex": "^v\\d+\\.\\d+\\.\\d+$"}"#,
            true,
        ),
        ("one_regex_rule_miss", r#"{"regex": "^prod$"}"#, false),
        ("one_glob_rule_hit", r#"{"matching": ["v*.*.*"]}"#, true),
        (
            "one_glob_rule_miss",
            r#"{"matching": ["release-*"]}"#,
            false,
        ),
    ] {
        let policy = one_rule(selector);
        assert_eq!(
            policy.test_tag(bb_image, tag).protected,
            protected,
            "{name}"
        );
        group.bench_function(name, |b| {
            b.iter(|| black_box(&policy).test_tag(black_box(bb_image), black_box(tag)));
        });
    }

    // Allocation and formatting the decisions do.
    group.bench_function("string_clone_tag", |b| {
        b.iter(|| black_box(tag).to_owned());
    });
    group.bench_function("short_digest", |b| {
        b.iter(|| names::short_digest(black_box(&current)));
    });
    group.bench_function("format_overwrite_message", |b| {
        b.iter(|| {
            let why = format!("rule \"{}\"", black_box("semver"));
            format!(
                "tag {} of {} is immutable ({why}) and already points to {}; push a new tag instead",
                black_box(tag),
                black_box(bb_image),
                names::short_digest(black_box(&current))
            )
        });
    });

    // The same push against lighter policies: what permissions and rules cost.
    let new_tag = push(bb_image, vec![TagState::new_tag(tag)]);
    let variants = [
        (
            "push_new_tag_bitbucket_no_permissions",
            without_permissions(BITBUCKET_MAX),
        ),
        (
            "push_new_tag_harbor_no_permissions",
            without_permissions(HARBOR_MAX),
        ),
        (
            "push_new_tag_protect_none_no_permissions",
            r#"{"version": 1}"#.to_owned(),
        ),
    ];
    for (name, text) in &variants {
        let policy = Policy::from_json(text).unwrap();
        let request = if name.contains("harbor") {
            push(hb_image, vec![TagState::new_tag(tag)])
        } else {
            new_tag.clone()
        };
        check(&policy, &request, "allowed", None);
        group.bench_function(*name, |b| {
            b.iter(|| black_box(&policy).evaluate(black_box(&request)));
        });
    }

    // Load, split: JSON → document, document → compiled policy (+ lints), one pattern.
    for (name, text) in [("bitbucket", BITBUCKET_MAX), ("harbor", HARBOR_MAX)] {
        group.bench_function(format!("load_parse_only_{name}"), |b| {
            b.iter(|| policy_core::from_json::<PolicyDocument>(black_box(text)));
        });
        let document: PolicyDocument = policy_core::from_json(text).unwrap();
        group.bench_function(format!("load_compile_document_{name}"), |b| {
            b.iter_batched(|| document.clone(), Policy::load, BatchSize::SmallInput);
        });
    }
    // Compiling one pattern: a one-rule document, loaded (lints included).
    let one_rule_document = |selector: document::Selector| {
        let mut document: PolicyDocument = policy_core::from_json(r#"{"version": 1}"#).unwrap();
        document.immutability.protect = document::Protect::Some;
        document.immutability.rules.push(document::RuleDocument {
            name: "r".to_owned(),
            tags: selector,
            repositories: None,
        });
        document
    };
    let semver = one_rule_document(document::Selector::Regex(r"^v\d+\.\d+\.\d+$".to_owned()));
    group.bench_function("load_one_regex_rule", |b| {
        b.iter_batched(|| semver.clone(), Policy::load, BatchSize::SmallInput);
    });
    let glob = one_rule_document(document::Selector::Matching(vec![
        "v*.*.*".to_owned(),
        "release-*".to_owned(),
        "{prod,staging}".to_owned(),
    ]));
    group.bench_function("load_one_glob_rule", |b| {
        b.iter_batched(|| glob.clone(), Policy::load, BatchSize::SmallInput);
    });
    group.finish();
}

/// Short runs: the whole suite (41 benchmarks) finishes in about 3.5 minutes on a shared
/// 2-core machine. Command-line flags (`--measurement-time`, …) still override.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = decide, parts
}
criterion_main!(benches);
