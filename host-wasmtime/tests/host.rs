//! The host's guarantees: digest pinning, CPU and memory bounds that fail closed
//! and leave the host working, the artifact cache, and sharing across threads.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use policy_core::{Actor, Policy, PushRequest, Request, TagState};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use taglock_host_wasmtime::{
    CacheOutcome, EMBEDDED_COMPONENT, EMBEDDED_SHA256, Host, HostError, Limits, digest,
};

const POLICY: &str = r#"{
  "version": 1,
  "immutability": {
    "protect": "some",
    "rules": [{ "name": "semver", "tags": { "regex": "^v\\d+\\.\\d+\\.\\d+$" } }]
  }
}"#;

fn host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(|| Host::embedded().unwrap())
}

fn overwrite(tag: &str) -> PushRequest {
    PushRequest {
        image: "acme/web".into(),
        digest: format!("sha256:{}", "a".repeat(64)),
        tags: vec![TagState::existing(
            tag,
            format!("sha256:{}", "b".repeat(64)),
        )],
        image_exists: true,
        actor: Actor::user("alice", &["devs"]),
    }
}

#[test]
fn embedded_component_matches_its_recorded_digest() {
    assert_eq!(digest::sha256_hex(EMBEDDED_COMPONENT), EMBEDDED_SHA256);
    assert_eq!(host().component_sha256(), EMBEDDED_SHA256);
    assert!(EMBEDDED_COMPONENT.len() > 1000);
}

#[test]
fn a_digest_mismatch_is_refused() {
    let wrong = format!("sha256:{}", "0".repeat(64));
    let err = Host::builder()
        .component_bytes(EMBEDDED_COMPONENT, &wrong)
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, HostError::DigestMismatch { expected, actual }
            if *expected == "0".repeat(64) && actual == EMBEDDED_SHA256),
        "{err}"
    );

    // One flipped byte: refused before it is compiled.
    let mut tampered = EMBEDDED_COMPONENT.to_vec();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    let err = Host::builder()
        .component_bytes(tampered, EMBEDDED_SHA256)
        .build()
        .unwrap_err();
    assert!(matches!(err, HostError::DigestMismatch { .. }), "{err}");

    let err = Host::builder()
        .component_bytes(EMBEDDED_COMPONENT, "sha256:abc")
        .build()
        .unwrap_err();
    assert!(matches!(err, HostError::InvalidDigest(_)), "{err}");
}

#[test]
fn a_component_from_a_path_with_the_right_digest_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("taglock_policy.wasm");
    std::fs::write(&path, EMBEDDED_COMPONENT).unwrap();
    let host = Host::builder()
        .component_path(&path, &format!("sha256:{EMBEDDED_SHA256}"))
        .build()
        .unwrap();
    let policy = host.load_policy(POLICY).unwrap();
    assert!(
        !policy
            .evaluate_push(&overwrite("v1.2.0"))
            .unwrap()
            .allowed()
    );

    let missing = Host::builder()
        .component_path(dir.path().join("missing.wasm"), EMBEDDED_SHA256)
        .build()
        .unwrap_err();
    assert!(matches!(missing, HostError::Read { .. }), "{missing}");
}

#[test]
fn a_refused_policy_lists_every_located_problem() {
    let text = r#"{"version": 1, "immutability": {"protect": "some", "rules": [
        {"name": "a", "tags": {"regex": "(x"}}, {"name": "a", "tags": {"matching": ["["]}}]}}"#;
    let HostError::Policy(errors) = host().load_policy(text).unwrap_err() else {
        panic!("expected a policy error");
    };
    assert_eq!(errors, Policy::from_json(text).unwrap_err());
    assert!(errors.len() >= 3, "{errors}");
}

#[test]
fn a_timeout_is_a_typed_error_never_a_decision() {
    let strict = Host::builder()
        .limits(Limits {
            timeout: Duration::ZERO,
            load_timeout: Duration::ZERO,
            ..Limits::default()
        })
        .build()
        .unwrap();
    let err = strict.load_policy(POLICY).unwrap_err();
    assert!(matches!(err, HostError::LoadTimeout(_)), "{err}");
    assert_eq!(err.http_status(), 503);
    // The failure stays with that call: the same host fails the same way again
    // (no poisoned state, no panic), and other hosts are unaffected.
    assert!(matches!(
        strict.load_policy(POLICY),
        Err(HostError::LoadTimeout(_))
    ));
    assert!(host().load_policy(POLICY).is_ok());

    // A decision that runs out of its own budget is a timeout too.
    let no_decisions = Host::builder()
        .limits(Limits {
            timeout: Duration::ZERO,
            ..Limits::default()
        })
        .build()
        .unwrap();
    let policy = no_decisions.load_policy(POLICY).unwrap();
    let err = policy.test_tag("acme/web", "v1.2.0").unwrap_err();
    assert!(matches!(err, HostError::Timeout(_)), "{err}");
}

/// The largest policy the engine accepts: the most rules and exceptions the
/// limits allow, each a pattern that needs a real regex build, within the
/// policy's pattern weight budget.
fn largest_policy() -> String {
    let rule = |i: usize| {
        format!(
            r#"{{"name": "rule-{i}", "tags": {{"regex": "^v{i}(-[a-z]+)?\\.\\d+\\.\\d+(\\+[a-z0-9.]+)?$"}}, "repositories": {{"matching": ["team-{i}/**", "{{a,b}}-{i}-*"]}}}}"#
        )
    };
    let exception = |i: usize| format!(r#"{{"regex": "^dev-{i}[a-f0-9]{{7,40}}$"}}"#);
    format!(
        r#"{{"version": 1, "limits": {{"max_rules": 1000, "max_pattern_length": 4096}},
            "immutability": {{"protect": "some", "rules": [{}], "exceptions": [{}]}}}}"#,
        (0..1000).map(rule).collect::<Vec<_>>().join(","),
        (0..1000).map(exception).collect::<Vec<_>>().join(",")
    )
}

#[test]
fn loading_has_its_own_budget_apart_from_decisions() {
    // Decisions get 1 ms; loading this policy takes far longer, and must not be
    // refused for it (it once was, at random, under the 100 ms decision budget).
    let text = largest_policy();
    let native = Policy::from_json(&text).unwrap();
    let host = Host::builder()
        .limits(Limits {
            timeout: Duration::from_millis(1),
            ..Limits::default()
        })
        .build()
        .unwrap();
    let policy = host.load_policy(&text).unwrap();
    assert_eq!(policy.lints(), native.lints());
    // Decisions still run under their own budget (the default one here).
    let policy = default_host_policy(&text);
    assert_eq!(
        policy.test_tag("team-7/web", "v7.1.2").unwrap(),
        native.test_tag("team-7/web", "v7.1.2")
    );
}

fn default_host_policy(text: &str) -> taglock_host_wasmtime::WasmPolicy {
    host().load_policy(text).unwrap()
}

#[test]
fn a_memory_limit_is_a_typed_error_and_the_policy_keeps_working() {
    let host = Host::builder()
        .limits(Limits {
            max_memory: 4 << 20,
            ..Limits::default()
        })
        .build()
        .unwrap();
    let policy = host.load_policy(POLICY).unwrap();
    let native = Policy::from_json(POLICY).unwrap();

    let mut huge = overwrite("v1.2.0");
    huge.image = "a".repeat(8 << 20);
    let err = policy.evaluate_push(&huge).unwrap_err();
    assert!(
        matches!(err, HostError::MemoryLimit(limit) if limit == 4 << 20),
        "{err}"
    );

    // The instance that hit the limit was dropped; the next call gets a fresh one.
    for tag in ["v1.2.0", "latest", "v2.0.0"] {
        let request = overwrite(tag);
        assert_eq!(
            policy.evaluate_push(&request).unwrap(),
            native.evaluate_push(&request)
        );
    }
}

#[test]
fn a_policy_is_shared_across_threads() {
    let policy = Arc::new(host().load_policy(POLICY).unwrap());
    let native = Arc::new(Policy::from_json(POLICY).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let policy = Arc::clone(&policy);
            let native = Arc::clone(&native);
            std::thread::spawn(move || {
                for i in 0..200 {
                    let request = Request::Push(overwrite(&format!("v{t}.{i}.0")));
                    assert_eq!(
                        policy.evaluate(&request).unwrap(),
                        native.evaluate(&request)
                    );
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

#[cfg(unix)]
#[test]
fn the_artifact_cache_loads_only_what_it_wrote() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let build = || Host::builder().cache_dir(&cache).build().unwrap();

    let first = build();
    assert_eq!(first.cache_outcome(), CacheOutcome::Written);
    let second = build();
    assert_eq!(second.cache_outcome(), CacheOutcome::Hit);
    let policy = second.load_policy(POLICY).unwrap();
    assert!(
        !policy
            .evaluate_push(&overwrite("v1.2.0"))
            .unwrap()
            .allowed()
    );

    let artifacts: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    let artifact = &artifacts[0];
    let name = artifact.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with(EMBEDDED_SHA256), "{name}");

    // A corrupted artifact is not loaded; it is replaced.
    let mut bytes = std::fs::read(artifact).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(artifact, &bytes).unwrap();
    assert_eq!(build().cache_outcome(), CacheOutcome::Written);
    assert_eq!(build().cache_outcome(), CacheOutcome::Hit);

    // A foreign file under the right name is not loaded either.
    std::fs::write(artifact, b"\x7fELF not ours").unwrap();
    assert_eq!(build().cache_outcome(), CacheOutcome::Written);

    // An artifact others may write to is not trusted.
    std::fs::set_permissions(artifact, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert_eq!(build().cache_outcome(), CacheOutcome::Written);

    // Nor is a directory others may write to.
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    assert_eq!(build().cache_outcome(), CacheOutcome::Unusable);
}

#[test]
fn a_policy_at_the_weight_budget_loads_in_the_component_as_natively() {
    // 37 patterns of 28,287 units: just under MAX_POLICY_WEIGHT. It fits the
    // component's default memory and load budget, and a 38th is refused alike.
    let rules = |n: usize| {
        let rules: Vec<String> = (0..n)
            .map(|i| {
                format!(r#"{{"name": "r{i}", "tags": {{"regex": "^(?:[a-z]{{100}}){{140}}$"}}}}"#)
            })
            .collect();
        format!(
            r#"{{"version": 1, "limits": {{"max_rules": 1000, "max_pattern_length": 4096}},
                "immutability": {{"protect": "some", "rules": [{}]}}}}"#,
            rules.join(",")
        )
    };
    let fits = rules(37);
    let policy = host().load_policy(&fits).unwrap();
    let native = Policy::from_json(&fits).unwrap();
    let tag = "a".repeat(128);
    assert_eq!(
        policy.test_tag("acme/web", &tag).unwrap(),
        native.test_tag("acme/web", &tag)
    );
    let over = rules(38);
    let Err(HostError::Policy(errors)) = host().load_policy(&over) else {
        panic!("expected a policy error");
    };
    assert_eq!(errors, Policy::from_json(&over).unwrap_err());
    assert_eq!(errors.len(), 1, "{errors}");
}
