//! Property tests of `Policy::push_needs` and `Policy::existence_matters`: a fact
//! they say the decision does not depend on can be anything, and the decision is
//! the same. This is what lets a gateway leave out its look-ups.
//!
//! Facts are drawn from their domain, as a host gathers them: a tag's current
//! digest is a valid digest or none (a host never hands the core a malformed
//! one), existence true or false. `TAGLOCK_PROPTEST_CASES=N` raises the case
//! count.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

#[path = "generators/mod.rs"]
mod generators;

use generators::{config, digest, policy, push_request, request};
use policy_core::{Policy, Request, names};
use proptest::prelude::*;
use serde_json::Value;

fn load(policy: &Value) -> Policy {
    Policy::from_json(&policy.to_string())
        .unwrap_or_else(|e| panic!("generated policy does not load: {e:?}\n{policy:#}"))
}

fn parse(request: &Value) -> Request {
    Request::from_json(&request.to_string())
        .unwrap_or_else(|e| panic!("generated request does not parse: {e}\n{request:#}"))
}

/// A value a host could have gathered for a tag's current digest.
fn gathered_digest() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop::sample::select(vec![
        digest('a'),
        digest('b'),
        digest('c'),
        format!("sha512:{}", "e".repeat(128)),
    ]))
}

proptest! {
    #![proptest_config(config(2048))]

    /// A push decided with every fact `push_needs` leaves out set to anything is
    /// decided exactly as with the real facts.
    #[test]
    fn a_push_decided_without_the_facts_it_does_not_need_is_the_same(
        policy in policy(),
        request in push_request(),
        fill in prop::collection::vec(gathered_digest(), 3),
        exists in any::<bool>(),
    ) {
        let loaded = load(&policy);
        let Request::Push(mut real) = parse(&request) else {
            panic!("not a push: {request}");
        };
        // The real facts, in their domain.
        for tag in &mut real.tags {
            if tag.current.as_deref().is_some_and(|d| names::check_digest(d).is_err()) {
                tag.current = Some(digest('d'));
            }
        }
        let needs = loaded.push_needs(&real);
        prop_assert_eq!(needs.current.len(), real.tags.len());
        let mut blind = real.clone();
        if !needs.image_exists {
            blind.image_exists = exists;
        }
        for ((tag, needed), fill) in blind.tags.iter_mut().zip(&needs.current).zip(&fill) {
            if !needed {
                tag.current = fill.clone();
            }
        }
        prop_assert_eq!(
            loaded.evaluate_push(&real),
            loaded.evaluate_push(&blind),
            "needs: {:?}\npolicy: {}\nrequest: {:?}\nblind: {:?}",
            needs, policy, real, blind
        );
        // The needs are those of the request's names and actor only.
        prop_assert_eq!(loaded.push_needs(&blind), needs);
    }

    /// An upload or mount whose image's existence does not matter is decided
    /// the same either way.
    #[test]
    fn a_write_whose_existence_does_not_matter_is_decided_the_same_either_way(
        policy in policy(),
        request in request(),
    ) {
        let loaded = load(&policy);
        let mut flipped = parse(&request);
        let real = flipped.clone();
        let matters = match &mut flipped {
            Request::Upload(upload) => {
                upload.image_exists = !upload.image_exists;
                loaded.existence_matters(&upload.image, &upload.actor)
            }
            Request::Mount(mount) => {
                mount.image_exists = !mount.image_exists;
                loaded.existence_matters(&mount.image, &mount.actor)
            }
            Request::Push(push) => {
                push.image_exists = !push.image_exists;
                loaded.existence_matters(&push.image, &push.actor)
            }
            Request::Delete(_) | Request::Pull(_) => return Ok(()),
        };
        if !matters {
            prop_assert_eq!(
                loaded.evaluate(&real),
                loaded.evaluate(&flipped),
                "policy: {}\nrequest: {:?}",
                policy,
                real
            );
        }
    }
}
