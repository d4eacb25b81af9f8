//! Runs the conformance corpus (`tests/conformance/` at the repository root)
//! through the embedded component with the shared runner (`taglock-conformance`):
//! every case's expectations, and every answer (decisions, `test_tag`, load
//! errors, lints) equal to the native core's, field by field.
#![allow(clippy::panic, missing_docs)]

use serde_json::Value;
use taglock_conformance::{
    Corpus, Engine, Loaded, Native, differential, parse_request, run, to_json,
};
use taglock_host_wasmtime::{Host, HostError, WasmPolicy};

/// The component in wasmtime, as the runner's engine. Requests are parsed by the
/// core's `Request::from_json`, as a registry host does before calling the component.
struct Component(Host);

impl Engine for Component {
    type Policy = WasmPolicy;

    fn name(&self) -> String {
        "wasmtime component".into()
    }

    fn load(&mut self, policy: &str) -> Result<Loaded<WasmPolicy>, String> {
        match self.0.load_policy(policy) {
            Ok(policy) => Ok(Ok(policy)),
            Err(HostError::Policy(errors)) => errors
                .iter()
                .map(to_json)
                .collect::<Result<_, _>>()
                .map(Err),
            Err(err) => Err(err.to_string()),
        }
    }

    fn evaluate(&mut self, policy: &WasmPolicy, request: &str) -> Result<Value, String> {
        let decision = policy
            .evaluate(&parse_request(request)?)
            .map_err(|err| err.to_string())?;
        to_json(decision)
    }

    fn test_tag(&mut self, policy: &WasmPolicy, image: &str, tag: &str) -> Result<Value, String> {
        to_json(policy.test_tag(image, tag).map_err(|err| err.to_string())?)
    }

    fn lints(&mut self, policy: &WasmPolicy) -> Result<Vec<Value>, String> {
        policy.lints().iter().map(to_json).collect()
    }
}

fn setup() -> (Corpus, Component) {
    let corpus = Corpus::load_default().unwrap_or_else(|err| panic!("{err}"));
    let host = Host::embedded().unwrap_or_else(|err| panic!("the embedded component loads: {err}"));
    (corpus, Component(host))
}

#[test]
fn corpus_through_the_component() {
    let (corpus, mut component) = setup();
    run(&corpus, &mut component).assert_passed();
}

#[test]
fn corpus_through_the_component_matches_native() {
    let (corpus, mut component) = setup();
    differential(&corpus, &mut Native, &mut component).assert_passed();
}
