//! Reading and validating the corpus: the case format of `README.md`, checked once
//! for every engine.

use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// The fewest cases the corpus may hold, so a reader that silently skips files
/// cannot pass.
pub const MIN_CASES: usize = 200;

/// Where a case's policy comes from.
#[derive(Debug, Clone)]
pub enum PolicySource {
    /// `"policy": "<stem>"`: a file in `policies/`.
    Named(String, Value),
    /// `"policy": {...}`.
    Inline(Value),
    /// `"policy_text": "..."`: raw text, possibly not JSON at all.
    Text(String),
}

impl PolicySource {
    /// The policy as text, exactly as an engine receives it.
    pub fn text(&self) -> String {
        match self {
            PolicySource::Named(_, value) | PolicySource::Inline(value) => value.to_string(),
            PolicySource::Text(text) => text.clone(),
        }
    }

    /// How reports name the policy.
    pub fn label(&self) -> String {
        match self {
            PolicySource::Named(stem, _) => format!("policy {stem}"),
            PolicySource::Inline(_) | PolicySource::Text(_) => "inline policy".to_owned(),
        }
    }
}

/// What a case asks, and what it expects.
#[derive(Debug, Clone)]
pub enum Body {
    /// One or more requests, each with its expected decision.
    Decisions(Vec<(Value, Value)>),
    /// `test_tag(image, tag)` and its expected answer.
    TestTag {
        /// The image name.
        image: String,
        /// The tag.
        tag: String,
        /// The expected answer.
        expect: Value,
    },
    /// Loading the policy: validity, errors, lints (`expect_load`).
    Load(Value),
}

/// One validated case.
#[derive(Debug, Clone)]
pub struct Case {
    /// `cases/<topic>.json`.
    pub file: String,
    /// The case's name, unique across the corpus.
    pub name: String,
    /// The section of `docs/policy.md` it pins, `docs/policy.md#<anchor>`.
    pub spec: String,
    /// Its policy.
    pub policy: PolicySource,
    /// What it does and expects.
    pub body: Body,
}

/// The whole corpus, validated.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// Every case, files in name order, cases in file order.
    pub cases: Vec<Case>,
}

/// Everything wrong with the corpus itself (not with an engine).
#[derive(Debug, Clone)]
pub struct CorpusError(pub Vec<String>);

impl fmt::Display for CorpusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the corpus itself is broken:\n  {}", self.0.join("\n  "))
    }
}

impl std::error::Error for CorpusError {}

const CASE_KEYS: &[&str] = &[
    "name",
    "spec",
    "note",
    "policy",
    "policy_text",
    "request",
    "requests",
    "test_tag",
    "expect",
    "expect_load",
];
pub(crate) const DECISION_REQUIRED: &[&str] = &[
    "allowed",
    "would_deny",
    "reason",
    "rule",
    "status",
    "protected_tags",
];
const DECISION_OPTIONAL: &[&str] = &["code", "message_contains", "detail"];
const TAG_REQUIRED: &[&str] = &["protected", "rule", "because", "matches"];
const TAG_OPTIONAL: &[&str] = &["exception"];
const LOAD_KEYS: &[&str] = &["valid", "errors", "lints", "lint_details"];
pub(crate) const LOCATED_KEYS: &[&str] = &["code", "path", "offset", "rule"];

impl Corpus {
    /// The corpus of this repository (`tests/conformance/`, this crate's directory).
    pub fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    /// Reads and validates the corpus of this repository.
    pub fn load_default() -> Result<Corpus, CorpusError> {
        Corpus::load(
            &Corpus::root(),
            &Corpus::root().join("../../docs/policy.md"),
        )
    }

    /// Reads every policy and case file under `root`, checks each case against the
    /// format (unknown keys are errors), that `spec` anchors are headings of
    /// `reference`, that names are unique, that every case kind occurs and that
    /// there are at least [`MIN_CASES`] cases. Returns every problem found.
    pub fn load(root: &Path, reference: &Path) -> Result<Corpus, CorpusError> {
        let mut problems = Vec::new();
        let mut policies = BTreeMap::new();
        for path in json_files(&root.join("policies"), &mut problems) {
            match read_json(&path) {
                Ok(value) => {
                    policies.insert(stem(&path), value);
                }
                Err(err) => problems.push(err),
            }
        }
        let anchors = match fs::read_to_string(reference) {
            Ok(text) => anchors(&text),
            Err(err) => {
                problems.push(format!("cannot read {}: {err}", reference.display()));
                Vec::new()
            }
        };
        let mut cases = Vec::new();
        for path in json_files(&root.join("cases"), &mut problems) {
            let file = format!("cases/{}.json", stem(&path));
            let value = match read_json(&path) {
                Ok(value) => value,
                Err(err) => {
                    problems.push(err);
                    continue;
                }
            };
            let list = match value.as_object() {
                Some(top) if top.len() == 1 => top.get("cases").and_then(Value::as_array),
                _ => None,
            };
            let Some(list) = list else {
                problems.push(format!("{file}: expected {{\"cases\": [...]}}"));
                continue;
            };
            for (index, raw) in list.iter().enumerate() {
                match parse_case(raw, &file, &policies, &anchors) {
                    Ok(case) => cases.push(case),
                    Err(err) => problems.push(format!("{file} case #{index}: {err}")),
                }
            }
        }
        let mut names = BTreeSet::new();
        for case in &cases {
            if !names.insert(case.name.as_str()) {
                problems.push(format!(
                    "duplicate case name `{}` ({})",
                    case.name, case.file
                ));
            }
        }
        if cases.len() < MIN_CASES {
            problems.push(format!(
                "the corpus holds {} cases; it must hold at least {MIN_CASES}",
                cases.len()
            ));
        }
        let kinds = [
            (
                "decision",
                cases.iter().any(|c| matches!(c.body, Body::Decisions(_))),
            ),
            (
                "test_tag",
                cases.iter().any(|c| matches!(c.body, Body::TestTag { .. })),
            ),
            (
                "expect_load",
                cases.iter().any(|c| matches!(c.body, Body::Load(_))),
            ),
        ];
        for (kind, present) in kinds {
            if !present {
                problems.push(format!("the corpus has no {kind} case"));
            }
        }
        if problems.is_empty() {
            Ok(Corpus { cases })
        } else {
            Err(CorpusError(problems))
        }
    }
}

fn json_files(dir: &Path, problems: &mut Vec<String>) -> Vec<PathBuf> {
    let mut files: Vec<_> = match fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect(),
        Err(err) => {
            problems.push(format!("cannot read {}: {err}", dir.display()));
            Vec::new()
        }
    };
    files.sort();
    files
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))
}

fn only_keys(object: &Map<String, Value>, allowed: &[&str], what: &str) -> Result<(), String> {
    match object.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => Err(format!("unknown key `{key}` in {what}")),
        None => Ok(()),
    }
}

fn required(object: &Map<String, Value>, keys: &[&str], what: &str) -> Result<(), String> {
    match keys.iter().find(|k| !object.contains_key(**k)) {
        Some(key) => Err(format!("{what} lacks `{key}`")),
        None => Ok(()),
    }
}

/// The anchors of the headings of a Markdown document, as GitHub makes them
/// (lower case, punctuation dropped, spaces as `-`).
fn anchors(markdown: &str) -> Vec<String> {
    markdown
        .lines()
        .filter_map(|line| line.strip_prefix('#'))
        .map(|heading| {
            heading
                .trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
                .map(|c| if c == ' ' { '-' } else { c })
                .collect()
        })
        .collect()
}

fn parse_case(
    raw: &Value,
    file: &str,
    policies: &BTreeMap<String, Value>,
    anchors: &[String],
) -> Result<Case, String> {
    let object = raw.as_object().ok_or("a case is an object")?;
    only_keys(object, CASE_KEYS, "a case")?;
    let name = object
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or("a case needs a non-empty string `name`")?
        .to_owned();
    let at = |msg: String| format!("`{name}`: {msg}");
    let spec = object
        .get("spec")
        .and_then(Value::as_str)
        .filter(|s| {
            s.strip_prefix("docs/policy.md#")
                .is_some_and(|anchor| anchors.iter().any(|a| a == anchor))
        })
        .ok_or_else(|| {
            at("`spec` must name a section of docs/policy.md that exists, like \"docs/policy.md#selectors\"".into())
        })?
        .to_owned();
    let policy = match (object.get("policy"), object.get("policy_text")) {
        (Some(Value::String(stem)), None) => {
            let value = policies
                .get(stem)
                .ok_or_else(|| at(format!("no policy file policies/{stem}.json")))?;
            PolicySource::Named(stem.clone(), value.clone())
        }
        (Some(value @ Value::Object(_)), None) => PolicySource::Inline(value.clone()),
        (None, Some(Value::String(text))) => PolicySource::Text(text.clone()),
        _ => {
            return Err(at(
                "exactly one of `policy` (a stem or an object) and `policy_text` (a string)".into(),
            ));
        }
    };
    let kinds = ["request", "requests", "test_tag", "expect_load"]
        .iter()
        .filter(|k| object.contains_key(**k))
        .count();
    if kinds != 1 {
        return Err(at(
            "exactly one of `request`, `requests`, `test_tag`, `expect_load`".into(),
        ));
    }
    let expect = object.get("expect");
    let body = if let Some(request) = object.get("request") {
        let expect = expect.ok_or_else(|| at("`request` needs `expect`".into()))?;
        check_decision_expect(expect).map_err(&at)?;
        Body::Decisions(vec![(request.clone(), expect.clone())])
    } else if let Some(requests) = object.get("requests") {
        let requests = requests
            .as_array()
            .filter(|r| !r.is_empty())
            .ok_or_else(|| at("`requests` is a non-empty array".into()))?;
        let expects = expect
            .and_then(Value::as_array)
            .filter(|e| e.len() == requests.len())
            .ok_or_else(|| at("`requests` needs an `expect` array of the same length".into()))?;
        for e in expects {
            check_decision_expect(e).map_err(&at)?;
        }
        Body::Decisions(
            requests
                .iter()
                .cloned()
                .zip(expects.iter().cloned())
                .collect(),
        )
    } else if let Some(test) = object.get("test_tag") {
        let test = test
            .as_object()
            .ok_or_else(|| at("`test_tag` is an object".into()))?;
        only_keys(test, &["image", "tag"], "`test_tag`").map_err(&at)?;
        let field = |k: &str| {
            test.get(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| at(format!("`test_tag.{k}` is a string")))
        };
        let expect = expect.ok_or_else(|| at("`test_tag` needs `expect`".into()))?;
        let e = expect
            .as_object()
            .ok_or_else(|| at("`expect` is an object".into()))?;
        only_keys(e, &[TAG_REQUIRED, TAG_OPTIONAL].concat(), "`expect`").map_err(&at)?;
        required(e, TAG_REQUIRED, "`expect`").map_err(&at)?;
        Body::TestTag {
            image: field("image")?,
            tag: field("tag")?,
            expect: expect.clone(),
        }
    } else {
        if expect.is_some() {
            return Err(at("`expect_load` cases have no `expect`".into()));
        }
        let load = object.get("expect_load").cloned().unwrap_or(Value::Null);
        let e = load
            .as_object()
            .ok_or_else(|| at("`expect_load` is an object".into()))?;
        only_keys(e, LOAD_KEYS, "`expect_load`").map_err(&at)?;
        if !e.get("valid").is_some_and(Value::is_boolean) {
            return Err(at("`expect_load.valid` is a boolean".into()));
        }
        for key in ["errors", "lint_details"] {
            for entry in e.get(key).and_then(Value::as_array).into_iter().flatten() {
                let entry = entry
                    .as_object()
                    .ok_or_else(|| at(format!("`{key}` entries are objects")))?;
                only_keys(entry, LOCATED_KEYS, key).map_err(&at)?;
                required(entry, &["code"], key).map_err(&at)?;
            }
        }
        Body::Load(load)
    };
    Ok(Case {
        file: file.to_owned(),
        name,
        spec,
        policy,
        body,
    })
}

fn check_decision_expect(expect: &Value) -> Result<(), String> {
    let e = expect.as_object().ok_or("`expect` is an object")?;
    only_keys(
        e,
        &[DECISION_REQUIRED, DECISION_OPTIONAL].concat(),
        "`expect`",
    )?;
    required(e, DECISION_REQUIRED, "`expect`")
}
