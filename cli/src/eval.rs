//! `taglock eval`: decide requests and print the decisions exactly as every host does.

use crate::args::EvalArgs;
use crate::engine::{Engine, EngineKind};
use crate::input::{self, PolicyInput, Source};
use crate::outcome::Outcome;
use crate::output;
use anyhow::anyhow;
use policy_core::{Decision, JsonError, requests_from_json};

/// Loads the policy, reads the request(s), prints the decision JSON on stdout.
pub fn run(args: &EvalArgs, engine: EngineKind) -> anyhow::Result<Outcome> {
    let policy_source = Source::new(&args.policy);
    let request_source = Source::new(&args.request);
    input::one_stdin(&[&policy_source, &request_source])?;
    let input = PolicyInput::read(&policy_source)?;
    let Some(policy) = Engine::load_valid(engine, &input)? else {
        return Ok(Outcome::InvalidPolicy);
    };
    let text = request_source.read_text("request")?;
    let (requests, was_array) =
        requests_from_json(&text).map_err(|err| unusable(&request_source, &err))?;
    let decisions = requests
        .iter()
        .map(|r| policy.evaluate(r))
        .collect::<anyhow::Result<Vec<Decision>>>()?;
    let json = match (was_array, decisions.as_slice()) {
        (false, [decision]) => output::json(decision, args.compact)?,
        _ => output::json(&decisions, args.compact)?,
    };
    output::stdout(&json)?;
    Ok(Outcome::Success)
}

/// A request that is not JSON (located by line and column) or not a request
/// (located by JSON path).
fn unusable(source: &Source, err: &JsonError) -> anyhow::Error {
    let label = source.label();
    if err.syntax {
        // A syntax error's path is meaningless; its line and column are what matter.
        anyhow!(
            "request {label} is not valid JSON: {} (line {}, column {})",
            err.message,
            err.line,
            err.column
        )
    } else {
        anyhow!("request {label} is not a valid request: {err}")
    }
}
