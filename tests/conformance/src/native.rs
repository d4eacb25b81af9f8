//! The native core as an [`Engine`]: the reference every other engine is compared
//! with.

use crate::{Engine, Loaded};
use policy_core::{Policy, Request};
use serde::Serialize;
use serde_json::Value;

/// `policy-core` called directly.
#[derive(Debug, Clone, Copy, Default)]
pub struct Native;

/// An engine's answer in the JSON contract: `value` serialized (every Rust
/// adapter's way of answering).
pub fn to_json(value: impl Serialize) -> Result<Value, String> {
    serde_json::to_value(value).map_err(|err| format!("cannot serialize: {err}"))
}

/// A case's request text as the core's typed request, as a Rust host reads it
/// before asking its engine.
pub fn parse_request(text: &str) -> Result<Request, String> {
    Request::from_json(text).map_err(|err| format!("the request does not parse: {err}"))
}

impl Engine for Native {
    type Policy = Policy;

    fn name(&self) -> String {
        "native".into()
    }

    fn load(&mut self, policy: &str) -> Result<Loaded<Policy>, String> {
        match Policy::from_json(policy) {
            Ok(policy) => Ok(Ok(policy)),
            Err(errors) => errors
                .iter()
                .map(to_json)
                .collect::<Result<_, _>>()
                .map(Err),
        }
    }

    fn evaluate(&mut self, policy: &Policy, request: &str) -> Result<Value, String> {
        to_json(policy.evaluate(&parse_request(request)?))
    }

    fn test_tag(&mut self, policy: &Policy, image: &str, tag: &str) -> Result<Value, String> {
        to_json(policy.test_tag(image, tag))
    }

    fn lints(&mut self, policy: &Policy) -> Result<Vec<Value>, String> {
        policy.lints().iter().map(to_json).collect()
    }
}
