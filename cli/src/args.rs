//! The command line: subcommands, their arguments, and the help text.

use crate::engine::EngineKind;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// The exit codes of the whole command (each subcommand's help narrows them).
macro_rules! exit_codes {
    () => {
        "\
Exit codes:
  0  success: the policy is valid (check), or the evaluation ran (test, eval),
     whatever it decided
  1  the policy is invalid (every problem is listed on stderr)
  2  unusable input: a file that cannot be read (or is not UTF-8 text), a request
     that is not JSON or not a request, an invalid image name, or a usage error"
    };
}

const AFTER_HELP: &str = concat!(
    "\
Examples:
  taglock check examples/bitbucket.json
  taglock test examples/bitbucket.json --image acme/web v1.2.3 prod latest
  taglock eval examples/bitbucket.json examples/requests/bitbucket/overwrite-semver.json

Standard output carries the result (a summary, a table or JSON); standard error
carries diagnostics. Colour only on a terminal, and never when NO_COLOR is set.

",
    exit_codes!()
);

const CHECK_AFTER_HELP: &str = "\
Examples:
  taglock check examples/stackit.json
  taglock check policy.json --json | jq '.lints[].code'
  cat policy.json | taglock check -

Problems are printed on stderr, each with its JSON path, rule, the character in
the pattern or the line and column in the file. Warnings (lints) never make a
policy invalid; they are printed either way. With --json, stdout holds
{\"valid\": bool, \"errors\": [...], \"lints\": [...]}.

Exit codes:
  0  the policy is valid (it may have warnings)
  1  the policy is invalid
  2  the policy cannot be read";

const TEST_AFTER_HELP: &str = "\
Examples:
  taglock test examples/bitbucket.json --image acme/web v1.2.3 prod staging latest
  taglock test examples/ecr.json --image acme/web dev-42 latest 2024-05-01 --json
  skopeo list-tags docker://registry.example/acme/web | jq -r '.Tags[]' \\
    | taglock test policy.json --image acme/web -

A TAG of `-` reads tags from standard input, one per line. A malformed tag is
reported in its row (with the reason) and does not stop the others. With --json,
stdout holds an array with one object per tag: tag, error, protected, rule,
because (rule, all, exception, referrer, no-rule, mode-none, invalid), matches
and exception.

Exit codes:
  0  the tags were tested
  1  the policy is invalid
  2  the policy or standard input cannot be read, or the image name is invalid";

const EVAL_AFTER_HELP: &str = "\
Examples:
  taglock eval examples/permissions.json examples/requests/permissions/push-new-tag.json
  taglock eval examples/ecr.json examples/requests/ecr/batch.json --compact
  echo '{\"operation\": \"pull\", \"image\": \"acme/web\"}' | taglock eval examples/permissions.json -

A request object gives one decision object; an array of requests gives an array
of decisions, in order. Decisions are printed exactly as every taglock host
returns them: allowed, would_deny, reason, message, rule, protected_tags, status,
error. The policy is read and checked before the request.

Exit codes:
  0  the evaluation ran, whether it allowed or denied
  1  the policy is invalid
  2  the policy or request cannot be read, the request is not JSON (line and
     column given) or not a request (its JSON path given)";

/// taglock: immutable tags and repository-linked permissions for OCI registries.
#[derive(Debug, Parser)]
#[command(
    name = "taglock",
    version,
    about = "taglock: immutable tags and repository-linked permissions for OCI registries",
    long_about = "taglock decides, for every write an OCI registry receives, whether it is \
allowed: tag immutability (a released tag can never be moved or silently deleted) and \
permissions inherited from the code repository an image belongs to.\n\n\
This command validates and lints policies, shows which tags a policy protects, and \
evaluates requests exactly as every taglock host does.",
    after_help = AFTER_HELP,
    propagate_version = true
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Which engine decides: `wasm`, the decision component every registry and the
    /// proxy run (default), or `native`, the same core linked into this binary.
    /// Their output is identical.
    #[arg(long, value_enum, global = true, default_value_t = EngineKind::Wasm)]
    pub engine: EngineKind,
}

/// The subcommands; each lives in the module of the same name.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate and lint a policy.
    #[command(after_help = CHECK_AFTER_HELP)]
    Check(CheckArgs),
    /// Show, for each tag of an image, whether the policy protects it and why.
    #[command(after_help = TEST_AFTER_HELP)]
    Test(TestArgs),
    /// Decide a request (or an array of requests) and print the decision JSON.
    #[command(after_help = EVAL_AFTER_HELP)]
    Eval(EvalArgs),
}

/// `taglock check POLICY [--json]`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The policy JSON file (`-` for standard input).
    #[arg(value_name = "POLICY")]
    pub policy: PathBuf,
    /// Print {"valid", "errors", "lints"} as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `taglock test POLICY --image NAME TAG... [--json]`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// The policy JSON file (`-` for standard input).
    #[arg(value_name = "POLICY")]
    pub policy: PathBuf,
    /// The image the tags belong to, e.g. acme/web (rules may select repositories).
    #[arg(long, value_name = "NAME")]
    pub image: String,
    /// Tags to test; `-` reads more from standard input, one per line.
    #[arg(value_name = "TAG", required = true, num_args = 1..)]
    pub tags: Vec<String>,
    /// Print one JSON object per tag (an array) on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `taglock eval POLICY REQUEST [--compact]`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The policy JSON file (`-` for standard input, if REQUEST is a file).
    #[arg(value_name = "POLICY")]
    pub policy: PathBuf,
    /// A JSON request object or array of requests (`-` for standard input).
    #[arg(value_name = "REQUEST")]
    pub request: PathBuf,
    /// Print each decision on one line instead of pretty-printed.
    #[arg(long)]
    pub compact: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_help_lists_the_exit_codes() {
        assert!(AFTER_HELP.ends_with(exit_codes!()));
        for text in [CHECK_AFTER_HELP, TEST_AFTER_HELP, EVAL_AFTER_HELP] {
            assert!(text.contains("Exit codes:\n  0  "));
            assert!(text.contains("\n  1  the policy is invalid"));
            assert!(text.contains("\n  2  "));
        }
    }

    #[test]
    fn tags_may_start_with_a_dash_only_as_stdin() {
        let cli =
            Cli::try_parse_from(["taglock", "test", "p.json", "--image", "acme/web", "-"]).unwrap();
        match cli.command {
            Command::Test(args) => assert_eq!(args.tags, vec!["-"]),
            other => panic!("parsed as {other:?}"),
        }
    }
}
