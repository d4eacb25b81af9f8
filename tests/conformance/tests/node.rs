//! The conformance corpus through the JS engines, in Node, driven over
//! `host-js/test/conformance-adapter.mjs`: the JS package (the wasm-bindgen build
//! in `host-js/pkg/`, made by `cargo xtask build-wasm`) and the WIT component
//! transpiled by jco (`npm install` in `host-js/`). Each must meet every
//! expectation and answer exactly as the native core. A missing `node`, build or
//! jco fails the test with what to run; nothing is skipped.
#![allow(clippy::panic, missing_docs)]

use std::time::Duration;
use taglock_conformance::node::{Flavour, Node};
use taglock_conformance::{Corpus, Engine, Native, differential, run};

fn check(flavour: Flavour) {
    let corpus = Corpus::load_default().unwrap_or_else(|err| panic!("{err}"));
    let mut node = Node::start(flavour).unwrap_or_else(|err| panic!("{err}"));
    let expectations = run(&corpus, &mut node);
    let as_native = differential(&corpus, &mut Native, &mut node);
    if !expectations.passed() || !as_native.passed() {
        panic!("{expectations}\n\n{as_native}");
    }
    eprintln!("{expectations}\n{as_native}");
}

#[test]
fn js_package_conforms_and_answers_as_native() {
    check(Flavour::Package);
}

#[test]
fn jco_component_conforms_and_answers_as_native() {
    check(Flavour::Component);
}

/// A stand-in adapter: prints `{"ready": "fake"}`, then runs `then` on each line.
fn fake(then: &str) -> Node {
    let script = format!(
        "console.log(JSON.stringify({{ready: 'fake'}})); \
         require('readline').createInterface({{input: process.stdin}}).on('line', (line) => {{ {then} }});"
    );
    let mut command = std::process::Command::new("node");
    command.arg("-e").arg(script);
    Node::spawn(command, "fake", Duration::from_millis(500)).unwrap_or_else(|err| panic!("{err}"))
}

#[test]
fn a_silent_adapter_is_killed_after_the_timeout() {
    let mut node = fake("");
    let err = node.load("{}").err().unwrap_or_default();
    assert!(err.contains("did not answer within 500ms"), "{err}");
    let again = node.lints(&1).err().unwrap_or_default();
    assert!(again.contains("the adapter is dead"), "{again}");
}

#[test]
fn a_malformed_answer_is_a_failure_that_quotes_it() {
    let mut node = fake("console.log('{not json'); console.error('adapter broke');");
    let err = node.load("{}").err().unwrap_or_default();
    assert!(
        err.contains("a malformed answer") && err.contains("{not json"),
        "{err}"
    );
    let mut node =
        fake("const c = JSON.parse(line); console.log(JSON.stringify({id: c.id, ok: 7}));");
    let err = node.lints(&1).err().unwrap_or_default();
    assert!(err.contains("a malformed lints answer: 7"), "{err}");
    let mut node = fake("console.log(JSON.stringify({id: 999, ok: []}));");
    let err = node.lints(&1).err().unwrap_or_default();
    assert!(err.contains("an answer to another command"), "{err}");
}
