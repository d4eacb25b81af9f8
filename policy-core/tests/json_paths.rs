//! `policy_core::json` locates errors by walking the text up to the error's
//! position instead of wrapping every deserializer in `serde_path_to_error`
//! (which costs ~60 KB of WebAssembly). This holds the walk to the crate's answers:
//! broken variants of every policy in the corpus and the examples, and generated
//! policies with one node replaced, must give the same error — path, line, column,
//! message, syntax flag — both ways, for every type the hosts parse from text.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

#[path = "generators/mod.rs"]
mod generators;

use policy_core::JsonError;
use policy_core::document::{LimitsSpec, PolicyDocument, Selector};
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// `policy_core::from_json` as it was, on `serde_path_to_error`.
fn reference<T: DeserializeOwned>(text: &str) -> Result<T, JsonError> {
    fn located(path: String, err: &serde_json::Error) -> JsonError {
        let text = err.to_string();
        let message = match text.rfind(" at line ") {
            Some(cut) if err.line() > 0 => text[..cut].to_owned(),
            _ => text,
        };
        JsonError {
            path,
            line: err.line(),
            column: err.column(),
            message,
            syntax: matches!(
                err.classify(),
                serde_json::error::Category::Syntax | serde_json::error::Category::Eof
            ),
        }
    }
    let clean = |path: String| {
        if path == "." || path == "?" {
            String::new()
        } else {
            path
        }
    };
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        located(clean(path), &err.into_inner())
    })?;
    deserializer
        .end()
        .map_err(|err| located(String::new(), &err))?;
    Ok(value)
}

/// The same error both ways, for every type parsed from text.
fn same_errors(text: &str) -> Result<(), TestCaseError> {
    fn one<T: DeserializeOwned + std::fmt::Debug>(text: &str) -> Result<(), TestCaseError> {
        let new = policy_core::from_json::<T>(text).err();
        let old = reference::<T>(text).err();
        prop_assert_eq!(&new, &old, "{} on {:?}", std::any::type_name::<T>(), text);
        Ok(())
    }
    one::<PolicyDocument>(text)?;
    one::<Value>(text)?;
    one::<LimitsSpec>(text)?;
    one::<Selector>(text)?;
    Ok(())
}

/// Every policy text in the corpus and the examples, compact and pretty.
fn seeds() -> Vec<String> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut texts = Vec::new();
    for dir in ["tests/conformance/policies", "examples"] {
        let mut paths: Vec<_> = std::fs::read_dir(format!("{root}/{dir}"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        for path in paths {
            texts.push(std::fs::read_to_string(path).unwrap());
        }
    }
    let cases = std::fs::read_to_string(format!("{root}/tests/conformance/cases/load-errors.json"))
        .unwrap();
    let cases: Value = serde_json::from_str(&cases).unwrap();
    for case in cases["cases"].as_array().unwrap() {
        if let Some(text) = case["policy_text"].as_str() {
            texts.push(text.to_owned());
        }
        if case["policy"].is_object() {
            texts.push(case["policy"].to_string());
        }
    }
    let mut all = Vec::new();
    for text in texts {
        if let Ok(value) = serde_json::from_str::<Value>(&text) {
            all.push(value.to_string());
            all.push(serde_json::to_string_pretty(&value).unwrap());
        }
        all.push(text);
    }
    all
}

/// Snippets a broken document might hold at any place.
const SNIPPETS: &[&str] = &[
    ",",
    ":",
    "}",
    "]",
    "{",
    "[",
    "\"",
    "\"x\"",
    "\"x\":",
    "\"name\": \"a\",",
    "1",
    "-",
    "01",
    "1.5",
    "1e999",
    "-0",
    "tru",
    "true",
    "null",
    "nul",
    "\\",
    "\\u00e9",
    "\\q",
    "\n",
    " ",
    "\"unknown\": 1,",
    "{}",
    "[]",
    "[1,]",
    "{\"a\":1,}",
    "\u{1}",
    "é",
    "x",
    "\"protect\": \"x\",",
    "\"regex\": \"a\",",
    "\"matching\": [],",
    "\"version\": 1,",
];

/// Applies one edit at a char boundary of `text`.
fn edit(text: &str, at: usize, delete: usize, insert: &str) -> String {
    let mut boundaries: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    boundaries.push(text.len());
    let start = boundaries[at % boundaries.len()];
    let end = boundaries
        .iter()
        .copied()
        .find(|&b| b >= start + delete)
        .unwrap_or(text.len());
    format!("{}{}{}", &text[..start], insert, &text[end..])
}

fn config(default: u32) -> proptest::test_runner::Config {
    let cases = std::env::var("TAGLOCK_PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default);
    proptest::test_runner::Config {
        cases,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    }
}

#[test]
fn seeds_give_the_same_errors() {
    for text in seeds() {
        same_errors(&text).unwrap();
        // Every prefix: the truncations of a document reach every EOF error.
        for (cut, _) in text.char_indices() {
            same_errors(&text[..cut]).unwrap();
        }
    }
}

proptest! {
    #![proptest_config(config(4096))]

    /// A corpus policy with one to three edits.
    #[test]
    fn edited_seeds_give_the_same_errors(
        seed in any::<prop::sample::Index>(),
        edits in prop::collection::vec(
            (any::<usize>(), 0usize..4, prop::sample::select(SNIPPETS.to_vec())),
            1..=3,
        ),
    ) {
        let seeds = seeds();
        let mut text = seed.get(&seeds).clone();
        for (at, delete, insert) in edits {
            text = edit(&text, at, delete, insert);
        }
        same_errors(&text)?;
    }

    /// A generated policy with one node replaced by arbitrary JSON, compact and
    /// pretty, with or without one more edit.
    #[test]
    fn broken_generated_policies_give_the_same_errors(
        policy in generators::policy(),
        noise in generators::json_ish(),
        pick in any::<usize>(),
        at in any::<usize>(),
        insert in prop::sample::select(SNIPPETS.to_vec()),
    ) {
        let mut broken = policy.clone();
        let mut pick = pick % 64;
        generators::replace_node(&mut broken, &mut pick, &noise);
        for text in [broken.to_string(), serde_json::to_string_pretty(&broken).unwrap()] {
            same_errors(&text)?;
            same_errors(&edit(&text, at, 0, insert))?;
        }
    }
}
