//! The `taglock` command: validate and lint policies, show which tags they
//! protect, and evaluate requests — a thin adapter over `policy_core`, which makes
//! every decision. One module per subcommand.

mod args;
mod check;
mod diagnostics;
mod engine;
mod envoy_cmd;
mod eval;
mod input;
mod outcome;
mod output;
mod preview;
mod serve;
mod style;
mod test_cmd;
mod users_cmd;
mod wasm_push;

use args::{Cli, Command};
use clap::Parser;
use outcome::Outcome;
use std::process::ExitCode;
use style::Style;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Check(args) => check::run(args, cli.engine),
        Command::Test(args) => test_cmd::run(args, cli.engine),
        Command::Eval(args) => eval::run(args, cli.engine),
        Command::Serve(args) => serve::run(args, cli.engine),
        Command::Preview(args) => preview::run(args, cli.engine),
        Command::Users(args) => users_cmd::run(args),
        Command::Envoy(args) => envoy_cmd::run(args),
    };
    match result {
        Ok(outcome) => outcome.into(),
        Err(err) => {
            let style = Style::stderr();
            output::stderr(&format!(
                "{}: {}\n",
                style.error("error"),
                style::escaped(&output::chain(&err))
            ));
            Outcome::UnusableInput.into()
        }
    }
}
