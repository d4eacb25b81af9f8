//! taglock's conformance runner: one reading of the corpus in this directory
//! (`README.md` defines the case format and the comparison rules) and one runner
//! that every engine plugs into.
//!
//! An engine implements [`Engine`] in the JSON contract of `docs/policy.md`: load
//! a policy text, evaluate a request text, `test_tag`, `lints`. Then
//! - [`run`] checks every case's expectations and the decision invariants;
//! - [`differential`] checks that an engine answers exactly as another one
//!   (in practice [`Native`], the core itself), case by case and field by field.
//!
//! Both return a [`Report`] that lists **every** failure (case, file, section,
//! each mismatch, the actual value); [`Report::assert_passed`] fails a test with it.
//!
//! ```no_run
//! use taglock_conformance::{Corpus, Native, run};
//! let corpus = Corpus::load_default().unwrap_or_else(|err| panic!("{err}"));
//! run(&corpus, &mut Native).assert_passed();
//! ```

mod compare;
mod corpus;
mod native;
pub mod node;

pub use corpus::{Body, Case, Corpus, CorpusError, MIN_CASES, PolicySource};
pub use native::{Native, parse_request, to_json};

use serde_json::{Value, json};
use std::fmt;

/// The outcome of loading a policy: the loaded policy, or its load errors (the
/// JSON contract's located error objects).
pub type Loaded<P> = Result<P, Vec<Value>>;

/// An engine under test, spoken to in the JSON contract of `docs/policy.md`.
///
/// Every method returns `Err(message)` when the engine itself fails (it crashed,
/// timed out, gave a malformed answer, refused a request as unparsable): the
/// runner reports that as a failure of the case, never as a pass.
pub trait Engine {
    /// A loaded policy.
    type Policy;
    /// How reports name this engine.
    fn name(&self) -> String;
    /// Loads a policy text: the policy, or its load errors.
    fn load(&mut self, policy: &str) -> Result<Loaded<Self::Policy>, String>;
    /// Evaluates one request (JSON text); the decision object.
    fn evaluate(&mut self, policy: &Self::Policy, request: &str) -> Result<Value, String>;
    /// `test_tag(image, tag)`; the tag test object.
    fn test_tag(&mut self, policy: &Self::Policy, image: &str, tag: &str) -> Result<Value, String>;
    /// The policy's lints, as objects.
    fn lints(&mut self, policy: &Self::Policy) -> Result<Vec<Value>, String>;
}

/// One failing case.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The case's name.
    pub case: String,
    /// Its file, `cases/<topic>.json`.
    pub file: String,
    /// The section of `docs/policy.md` it pins.
    pub spec: String,
    /// `policy <stem>` or `inline policy`.
    pub policy: String,
    /// Every mismatch, with the actual values.
    pub mismatches: Vec<String>,
}

/// What a run found.
#[derive(Debug, Clone)]
pub struct Report {
    /// What was checked, e.g. `js-package against the corpus`.
    pub title: String,
    /// How many cases ran.
    pub cases: usize,
    /// Every failing case.
    pub failures: Vec<Failure>,
}

impl Report {
    fn new(title: String, corpus: &Corpus) -> Report {
        Report {
            title,
            cases: corpus.cases.len(),
            failures: Vec::new(),
        }
    }

    fn record(&mut self, case: &Case, mismatches: Vec<String>) {
        if !mismatches.is_empty() {
            self.failures.push(Failure {
                case: case.name.clone(),
                file: case.file.clone(),
                spec: case.spec.clone(),
                policy: case.policy.label(),
                mismatches,
            });
        }
    }

    /// Whether every case passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// Fails (panics with the whole report) unless every case passed; prints a
    /// summary line otherwise.
    #[allow(
        clippy::panic,
        reason = "a test assertion: failing the test is its job"
    )]
    pub fn assert_passed(&self) {
        if !self.passed() {
            panic!("{self}");
        }
        eprintln!("{self}");
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.passed() {
            return write!(f, "{}: all {} cases passed", self.title, self.cases);
        }
        write!(
            f,
            "{}: {} of {} cases failed:",
            self.title,
            self.failures.len(),
            self.cases
        )?;
        for failure in &self.failures {
            write!(
                f,
                "\n\n{} ({}, {}, {}):",
                failure.case, failure.file, failure.spec, failure.policy
            )?;
            for mismatch in &failure.mismatches {
                write!(f, "\n    {mismatch}")?;
            }
        }
        Ok(())
    }
}

/// Runs every case through `engine` and checks it against the case's expectations
/// and the invariants of every decision.
pub fn run<E: Engine>(corpus: &Corpus, engine: &mut E) -> Report {
    let mut report = Report::new(format!("{} against the corpus", engine.name()), corpus);
    for case in &corpus.cases {
        let mismatches = check(engine, case);
        report.record(case, mismatches);
    }
    report
}

fn check<E: Engine>(engine: &mut E, case: &Case) -> Vec<String> {
    let loaded = match engine.load(&case.policy.text()) {
        Ok(loaded) => loaded,
        Err(err) => return vec![format!("the engine failed to load the policy: {err}")],
    };
    let policy = match (&case.body, loaded) {
        (Body::Load(expect), Err(errors)) => return compare::load(expect, Some(&errors), &[]),
        (Body::Load(expect), Ok(policy)) => {
            return match engine.lints(&policy) {
                Ok(lints) => compare::load(expect, None, &lints),
                Err(err) => vec![format!("lints failed: {err}")],
            };
        }
        (_, Err(errors)) => return vec![format!("policy does not load: {}", Value::from(errors))],
        (_, Ok(policy)) => policy,
    };
    let mut out = Vec::new();
    match &case.body {
        Body::TestTag { image, tag, expect } => match engine.test_tag(&policy, image, tag) {
            Ok(actual) => with_actual(&mut out, "", compare::tag_test(expect, &actual), &actual),
            Err(err) => out.push(format!("test_tag failed: {err}")),
        },
        Body::Decisions(pairs) => {
            for (index, (request, expect)) in pairs.iter().enumerate() {
                let prefix = if pairs.len() > 1 {
                    format!("request #{index}: ")
                } else {
                    String::new()
                };
                match engine.evaluate(&policy, &request.to_string()) {
                    Ok(actual) => {
                        with_actual(
                            &mut out,
                            &prefix,
                            compare::decision(expect, &actual),
                            &actual,
                        );
                    }
                    Err(err) => out.push(format!("{prefix}evaluate failed: {err}")),
                }
            }
        }
        Body::Load(_) => {}
    }
    out
}

/// Adds mismatches with their prefix, then the actual answer they are about.
fn with_actual(out: &mut Vec<String>, prefix: &str, mismatches: Vec<String>, actual: &Value) {
    if !mismatches.is_empty() {
        out.extend(mismatches.into_iter().map(|m| format!("{prefix}{m}")));
        out.push(format!("{prefix}actual: {actual}"));
    }
}

/// Runs every case through both engines and checks that `candidate` answers
/// exactly as `reference`: the same load errors or lints for every case's policy,
/// the same decision objects, the same tag tests (whole JSON values, messages
/// included). A failure of either engine is a failure too.
pub fn differential<R: Engine, C: Engine>(
    corpus: &Corpus,
    reference: &mut R,
    candidate: &mut C,
) -> Report {
    let (left, right) = (reference.name(), candidate.name());
    let mut report = Report::new(format!("{right} answering as {left}"), corpus);
    for case in &corpus.cases {
        let expected = answers(reference, case);
        let actual = answers(candidate, case);
        let mut mismatches = Vec::new();
        for ((step, want), (_, got)) in expected.iter().zip(&actual) {
            match (want, got) {
                (Ok(want), Ok(got)) if want == got => {}
                _ => mismatches.push(format!(
                    "{step} differs\n      {left}: {}\n      {right}: {}",
                    show(want),
                    show(got)
                )),
            }
        }
        if expected.len() != actual.len() {
            mismatches.push(format!(
                "{left} answered {} steps, {right} {}",
                expected.len(),
                actual.len()
            ));
        }
        report.record(case, mismatches);
    }
    report
}

fn show(answer: &Result<Value, String>) -> String {
    match answer {
        Ok(value) => value.to_string(),
        Err(err) => format!("failed: {err}"),
    }
}

/// Every answer an engine gives for a case, labelled by step: the load (errors or
/// lints), then each decision or the tag test.
fn answers<E: Engine>(engine: &mut E, case: &Case) -> Vec<(String, Result<Value, String>)> {
    let policy = match engine.load(&case.policy.text()) {
        Err(err) => return vec![("load".into(), Err(err))],
        Ok(Err(errors)) => return vec![("load".into(), Ok(json!({ "errors": errors })))],
        Ok(Ok(policy)) => policy,
    };
    let lints = engine.lints(&policy).map(|lints| json!({ "lints": lints }));
    let mut out = vec![("load".to_owned(), lints)];
    match &case.body {
        Body::Load(_) => {}
        Body::TestTag { image, tag, .. } => {
            out.push(("test_tag".into(), engine.test_tag(&policy, image, tag)));
        }
        Body::Decisions(pairs) => {
            for (index, (request, _)) in pairs.iter().enumerate() {
                let answer = engine.evaluate(&policy, &request.to_string());
                out.push((format!("request #{index}"), answer));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
