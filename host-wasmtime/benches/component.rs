//! The component against native, and the costs around it: policy load,
//! instantiation, precompiled-artifact load and cold start.
//!
//! `cargo bench -p taglock-host-wasmtime`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use criterion::{Criterion, criterion_group, criterion_main};
use policy_core::{Actor, Policy, PushRequest, Request, TagState};
use std::hint::black_box;
use std::time::Duration;
use taglock_host_wasmtime::{CacheOutcome, Host};

const POLICY: &str = r#"{
  "version": 1,
  "limits": "bitbucket",
  "immutability": {
    "protect": "some",
    "rules": [
      { "name": "semver", "tags": { "regex": "^v\\d+\\.\\d+\\.\\d+$" } },
      { "name": "prod", "tags": { "regex": "^prod$" } },
      { "name": "release", "tags": { "matching": ["release-*"] } }
    ],
    "exceptions": [{ "regex": "^dev-" }, { "matching": ["latest"] }]
  },
  "permissions": {
    "workspace_admins": ["user:root"],
    "repositories": { "web-app": { "admin": ["user:alice"], "write": ["group:devs", "pipeline:web-app"] } },
    "images": [{ "name": "acme/web", "repository": "web-app" }]
  }
}"#;

fn push() -> PushRequest {
    PushRequest {
        image: "acme/web".into(),
        digest: format!("sha256:{}", "a".repeat(64)),
        tags: vec![TagState::existing(
            "v1.2.0",
            format!("sha256:{}", "b".repeat(64)),
        )],
        image_exists: true,
        actor: Actor::user("bob", &["devs"]),
    }
}

fn evaluate(c: &mut Criterion) {
    let host = Host::embedded().unwrap();
    let wasm = host.load_policy(POLICY).unwrap();
    let native = Policy::from_json(POLICY).unwrap();
    let denied = push();
    // A new tag the `semver` rule protects: `allowed-protecting`.
    let mut allowed = push();
    allowed.tags = vec![TagState::new_tag("v1.3.0")];
    // A tag no rule protects: a bare `allowed`.
    let mut unprotected = push();
    unprotected.tags = vec![TagState::new_tag("build-7")];
    for request in [&denied, &allowed, &unprotected] {
        assert_eq!(
            wasm.evaluate_push(request).unwrap(),
            native.evaluate_push(request)
        );
    }
    assert_eq!(native.evaluate_push(&allowed).protected_tags(), ["v1.3.0"]);
    assert!(
        native
            .evaluate_push(&unprotected)
            .protected_tags()
            .is_empty()
    );

    let mut group = c.benchmark_group("evaluate-push");
    group.bench_function("native/denied", |b| {
        b.iter(|| native.evaluate_push(black_box(&denied)))
    });
    group.bench_function("component/denied", |b| {
        b.iter(|| wasm.evaluate_push(black_box(&denied)).unwrap())
    });
    group.bench_function("native/allowed", |b| {
        b.iter(|| native.evaluate_push(black_box(&allowed)))
    });
    group.bench_function("component/allowed", |b| {
        b.iter(|| wasm.evaluate_push(black_box(&allowed)).unwrap())
    });
    group.bench_function("native/allowed-unprotected", |b| {
        b.iter(|| native.evaluate_push(black_box(&unprotected)))
    });
    group.bench_function("component/allowed-unprotected", |b| {
        b.iter(|| wasm.evaluate_push(black_box(&unprotected)).unwrap())
    });
    group.finish();

    let pull = Request::from_json(
        r#"{"operation": "pull", "image": "acme/web", "actor": {"kind": "user", "id": "bob", "groups": ["devs"]}}"#,
    )
    .unwrap();
    let mut group = c.benchmark_group("evaluate-pull");
    group.bench_function("native", |b| b.iter(|| native.evaluate(black_box(&pull))));
    group.bench_function("component", |b| {
        b.iter(|| wasm.evaluate(black_box(&pull)).unwrap())
    });
    group.finish();

    let mut group = c.benchmark_group("test-tag");
    group.bench_function("native", |b| {
        b.iter(|| native.test_tag("acme/web", black_box("v1.2.0")))
    });
    group.bench_function("component", |b| {
        b.iter(|| wasm.test_tag("acme/web", black_box("v1.2.0")).unwrap())
    });
    group.finish();
}

fn load(c: &mut Criterion) {
    let host = Host::embedded().unwrap();
    let mut group = c.benchmark_group("policy-load");
    group.bench_function("native", |b| {
        b.iter(|| Policy::from_json(black_box(POLICY)).unwrap())
    });
    // Instantiate + `load` + `lints`: also the price of an instance per call.
    group.bench_function("component", |b| {
        b.iter(|| host.load_policy(black_box(POLICY)).unwrap())
    });
    group.finish();

    c.bench_function("instantiate-pre", |b| {
        b.iter(|| host.instantiate().unwrap())
    });
}

fn startup(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("taglock-bench-cache-{}", std::process::id()));
    let warm = Host::builder().cache_dir(&dir).build().unwrap();
    assert!(matches!(
        warm.cache_outcome(),
        CacheOutcome::Written | CacheOutcome::Hit
    ));

    let mut group = c.benchmark_group("startup");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("precompiled-artifact", |b| {
        b.iter(|| {
            let host = Host::builder().cache_dir(&dir).build().unwrap();
            assert_eq!(host.cache_outcome(), CacheOutcome::Hit);
            host
        })
    });
    group.bench_function("cold-from-bytes", |b| {
        b.iter(|| Host::builder().build().unwrap())
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, evaluate, load, startup);
criterion_main!(benches);
