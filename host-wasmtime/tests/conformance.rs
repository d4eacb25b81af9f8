//! Runs the whole conformance corpus (`tests/conformance/` at the repository root)
//! through the component and diffs every result against the native core: full
//! decision objects (as the JSON contract of `docs/policy.md` and as `policy_core::Decision` values),
//! `test_tag` answers, load errors and lints.
//!
//! The native runner (`policy-core/tests/conformance.rs`) checks the native core
//! against the cases' expectations; this runner checks that the component is
//! indistinguishable from it, so together they pin the component too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use policy_core::{Policy, Request};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use taglock_host_wasmtime::{Host, HostError, WasmPolicy};

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("tests")
        .join("conformance")
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// The policy text of a case, exactly as the README says a host receives it.
fn policy_text(case: &Value, policies: &BTreeMap<String, Value>) -> String {
    match (case.get("policy"), case.get("policy_text")) {
        (Some(Value::String(stem)), None) => policies
            .get(stem)
            .unwrap_or_else(|| panic!("unknown policy `{stem}`"))
            .to_string(),
        (Some(inline @ Value::Object(_)), None) => inline.to_string(),
        (None, Some(Value::String(text))) => text.clone(),
        other => panic!("a case needs `policy` or `policy_text`, got {other:?}"),
    }
}

/// Both engines' answers to loading one policy, compared.
fn load_both(
    text: &str,
    host: &Host,
    failures: &mut Vec<String>,
    name: &str,
) -> Option<(Policy, WasmPolicy)> {
    let native = Policy::from_json(text);
    let wasm = host.load_policy(text);
    match (native, wasm) {
        (Ok(native), Ok(wasm)) => {
            if native.lints() != wasm.lints() {
                failures.push(format!(
                    "{name}: lints differ\n  native: {:?}\n  wasm:   {:?}",
                    native.lints(),
                    wasm.lints()
                ));
            }
            Some((native, wasm))
        }
        (Err(native), Err(HostError::Policy(wasm))) => {
            if native != wasm {
                failures.push(format!(
                    "{name}: load errors differ\n  native: {native:?}\n  wasm:   {wasm:?}"
                ));
            }
            None
        }
        (native, wasm) => {
            failures.push(format!(
                "{name}: load outcome differs\n  native: {:?}\n  wasm:   {:?}",
                native.map(|_| "loaded"),
                wasm.map(|_| "loaded")
            ));
            None
        }
    }
}

fn compare_decision(
    native: &Policy,
    wasm: &WasmPolicy,
    request: &Value,
    failures: &mut Vec<String>,
    name: &str,
) -> bool {
    let request = match Request::from_json(&request.to_string()) {
        Ok(request) => request,
        Err(err) => {
            failures.push(format!("{name}: the request does not parse: {err}"));
            return false;
        }
    };
    let expected = native.evaluate(&request);
    match wasm.evaluate(&request) {
        Ok(actual) => {
            let expected_json = serde_json::to_value(&expected).unwrap();
            let actual_json = serde_json::to_value(&actual).unwrap();
            if expected_json != actual_json || expected != actual {
                failures.push(format!(
                    "{name}: decisions differ\n  native: {expected_json}\n  wasm:   {actual_json}\n  (values: {expected:?} vs {actual:?})"
                ));
            }
            true
        }
        Err(err) => {
            failures.push(format!("{name}: the component failed: {err}"));
            false
        }
    }
}

#[test]
fn corpus_through_the_component_matches_native() {
    let root = corpus_root();
    let policies: BTreeMap<String, Value> = json_files(&root.join("policies"))
        .iter()
        .map(|path| {
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            (stem, read_json(path))
        })
        .collect();
    let host = Host::embedded().expect("the embedded component loads");

    let mut failures = Vec::new();
    let mut names = BTreeSet::new();
    let (mut cases, mut decisions, mut tag_tests, mut loads) = (0usize, 0usize, 0usize, 0usize);
    for file in json_files(&root.join("cases")) {
        let file_name = file.file_name().unwrap().to_string_lossy().into_owned();
        let content = read_json(&file);
        let list = content
            .get("cases")
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("{file_name}: expected {{\"cases\": [...]}}"));
        for case in list {
            cases += 1;
            let name = format!(
                "{file_name}: {}",
                case.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("<unnamed>")
            );
            assert!(names.insert(name.clone()), "duplicate case {name}");
            let text = policy_text(case, &policies);
            let Some((native, wasm)) = load_both(&text, &host, &mut failures, &name) else {
                if case.get("expect_load").is_some() {
                    loads += 1;
                } else {
                    failures.push(format!(
                        "{name}: the policy of a non-load case did not load"
                    ));
                }
                continue;
            };
            if case.get("expect_load").is_some() {
                loads += 1;
            } else if let Some(request) = case.get("request") {
                decisions += usize::from(compare_decision(
                    &native,
                    &wasm,
                    request,
                    &mut failures,
                    &name,
                ));
            } else if let Some(requests) = case.get("requests").and_then(Value::as_array) {
                for (index, request) in requests.iter().enumerate() {
                    let label = format!("{name} [request {index}]");
                    decisions += usize::from(compare_decision(
                        &native,
                        &wasm,
                        request,
                        &mut failures,
                        &label,
                    ));
                }
            } else if let Some(test) = case.get("test_tag") {
                let image = test["image"].as_str().unwrap();
                let tag = test["tag"].as_str().unwrap();
                let expected = native.test_tag(image, tag);
                match wasm.test_tag(image, tag) {
                    Ok(actual) if actual == expected => tag_tests += 1,
                    Ok(actual) => failures.push(format!(
                        "{name}: test_tag differs\n  native: {}\n  wasm:   {}",
                        serde_json::to_string(&expected).unwrap(),
                        serde_json::to_string(&actual).unwrap()
                    )),
                    Err(err) => failures.push(format!("{name}: the component failed: {err}")),
                }
            } else {
                failures.push(format!("{name}: a case kind this runner does not know"));
            }
        }
    }
    println!(
        "{cases} cases: {decisions} decisions, {tag_tests} tag tests, {loads} policy loads compared"
    );
    assert!(
        failures.is_empty(),
        "{} difference(s) between the component and native:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        cases >= 200,
        "only {cases} cases found: is the corpus complete?"
    );
    assert!(decisions > 0 && tag_tests > 0 && loads > 0);
}
