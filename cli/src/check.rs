//! `taglock check`: validate and lint a policy.

use crate::args::CheckArgs;
use crate::diagnostics;
use crate::engine::{self, Engine, EngineKind, LoadFailure};
use crate::input::{PolicyInput, Source};
use crate::outcome::Outcome;
use crate::output::{self, plural};
use crate::style::Style;
use policy_core::Limits;
use policy_core::document::Protect;
use policy_core::{Lint, LoadError, PolicyDocument};
use serde::Serialize;

/// `--json` output: the policy's validity, its problems and its warnings.
#[derive(Debug, Serialize)]
struct Report<'a> {
    valid: bool,
    errors: &'a [LoadError],
    lints: &'a [Lint],
}

/// Validates and lints the policy: diagnostics on stderr, the verdict on stdout.
pub fn run(args: &CheckArgs, engine: EngineKind) -> anyhow::Result<Outcome> {
    let input = PolicyInput::read(&Source::new(&args.policy))?;
    let loaded = match Engine::load(engine, &input.text) {
        Ok(policy) => Ok(policy),
        Err(LoadFailure::Invalid(errors)) => Err(errors),
        Err(LoadFailure::Unavailable(err)) => return Err(err),
    };
    let err_style = Style::stderr();
    let (errors, lints, summary): (&[LoadError], &[Lint], _) = match &loaded {
        Ok(policy) => {
            output::stderr(&diagnostics::warnings(&input, policy.lints(), err_style));
            let document = engine::document(&input.text)?;
            (
                &[],
                policy.lints(),
                Some(summary(&input, &document, policy.lints(), Style::stdout())),
            )
        }
        Err(errors) => {
            output::stderr(&diagnostics::refused(&input, errors, err_style));
            (errors.as_slice(), &[], None)
        }
    };
    if args.json {
        let report = Report {
            valid: loaded.is_ok(),
            errors,
            lints,
        };
        output::stdout(&output::json(&report, false)?)?;
    } else if let Some(summary) = summary {
        output::stdout(&summary)?;
    }
    Ok(if loaded.is_ok() {
        Outcome::Success
    } else {
        Outcome::InvalidPolicy
    })
}

/// `examples/bitbucket.json: valid (protect some, 4 rules, …); 0 warnings`.
fn summary(input: &PolicyInput, document: &PolicyDocument, lints: &[Lint], style: Style) -> String {
    let protect = match document.immutability.protect {
        Protect::None => "protect none",
        Protect::All => "protect all",
        Protect::Some => "protect some",
    };
    let mut facts = vec![protect.to_owned()];
    if document.immutability.protect == Protect::Some {
        facts.push(plural(document.immutability.rules.len(), "rule"));
    }
    let exceptions = document.immutability.exceptions.len();
    if exceptions > 0 {
        facts.push(plural(exceptions, "exception"));
    }
    let limits = Limits::from(document.limits);
    facts.push(format!(
        "limits {} rules / {} characters",
        limits.max_rules, limits.max_pattern_length
    ));
    facts.push(
        match document.mode {
            policy_core::document::Mode::Enforce => "mode enforce",
            policy_core::document::Mode::Audit => "mode audit",
        }
        .to_owned(),
    );
    facts.push(
        if document.permissions.is_some() {
            "permissions checked"
        } else {
            "no permissions section"
        }
        .to_owned(),
    );
    let lints = lints.len();
    let warnings = plural(lints, "warning");
    format!(
        "{}: {} ({}); {}\n",
        input.label,
        style.good("valid"),
        facts.join(", "),
        if lints == 0 {
            warnings
        } else {
            style.warning(&warnings)
        }
    )
}
