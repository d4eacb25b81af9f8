//! Generated (policy, requests) pairs through both engines, compared field by
//! field: the component must decide exactly as the native core, on valid and on
//! hostile input alike. The inputs come from the generators the core's property
//! tests use (`policy-core/tests/generators/`), and policies broken by one node
//! compare load errors. `TAGLOCK_PROPTEST_CASES=N` raises the case count.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

#[path = "../../policy-core/tests/generators/mod.rs"]
mod generators;

use generators::{config, json_ish, policy, replace_node, request, some_image, some_tag};
use policy_core::{Policy, Request};
use proptest::prelude::*;
use proptest::strategy::{Strategy, ValueTree};
use serde_json::Value;
use std::sync::OnceLock;
use taglock_host_wasmtime::{Host, HostError};

fn host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(|| Host::embedded().expect("the embedded component loads"))
}

proptest! {
    #![proptest_config(config(192))]

    #[test]
    fn component_decides_like_native(
        policy in maybe_broken_policy(),
        requests in prop::collection::vec(request(), 1..=16),
        probes in prop::collection::vec((some_image(), some_tag()), 1..=4),
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
            let request = Request::from_json(&request.to_string()).unwrap();
            let expected = native.evaluate(&request);
            let actual = wasm.evaluate(&request).unwrap();
            prop_assert_eq!(actual.allowed(), expected.allowed());
            prop_assert_eq!(actual.would_deny(), expected.would_deny());
            prop_assert_eq!(actual.reason(), expected.reason());
            prop_assert_eq!(&actual.message(), &expected.message());
            prop_assert_eq!(&actual.rule(), &expected.rule());
            prop_assert_eq!(&actual.protected_tags(), &expected.protected_tags());
            prop_assert_eq!(actual.status(), expected.status());
            prop_assert_eq!(&actual.detail(), &expected.detail());
            prop_assert_eq!(serde_json::to_value(&actual).unwrap(), serde_json::to_value(&expected).unwrap());
            prop_assert_eq!(actual, expected);
            // Which facts the decision depends on: the same answers.
            match &request {
                Request::Push(push) => {
                    prop_assert_eq!(wasm.push_needs(push).unwrap(), native.push_needs(push));
                }
                Request::Upload(upload) => prop_assert_eq!(
                    wasm.existence_matters(&upload.image, &upload.actor).unwrap(),
                    native.existence_matters(&upload.image, &upload.actor)
                ),
                Request::Mount(mount) => prop_assert_eq!(
                    wasm.existence_matters(&mount.image, &mount.actor).unwrap(),
                    native.existence_matters(&mount.image, &mount.actor)
                ),
                Request::Delete(_) | Request::Pull(_) => {}
            }
        }
        for (image, tag) in probes {
            prop_assert_eq!(wasm.test_tag(&image, &tag).unwrap(), native.test_tag(&image, &tag));
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

/// A generated policy, or (one time in four) one with a node replaced by
/// arbitrary JSON, which mostly fails to load: both engines must refuse it with
/// the same located errors.
fn maybe_broken_policy() -> impl Strategy<Value = Value> {
    (
        policy(),
        prop::option::weighted(0.25, (json_ish(), any::<usize>())),
    )
        .prop_map(|(mut policy, broken)| {
            if let Some((noise, pick)) = broken {
                let mut pick = pick % 64;
                replace_node(&mut policy, &mut pick, &noise);
            }
            policy
        })
}

/// Guards the generator itself: both outcomes of a load must be common, or the
/// comparison above would be testing little of one of them.
#[test]
fn generated_policies_load_and_fail_to_load() {
    // A fixed seed: this guards the generator, so it must not depend on luck.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut loaded, mut total) = (0, 0);
    for _ in 0..400 {
        let policy = maybe_broken_policy()
            .new_tree(&mut runner)
            .unwrap()
            .current();
        total += 1;
        loaded += usize::from(Policy::from_json(&policy.to_string()).is_ok());
    }
    assert!(
        loaded * 2 > total && (total - loaded) * 10 > total,
        "{loaded} of {total} generated policies load"
    );
}
