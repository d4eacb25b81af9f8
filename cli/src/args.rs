//! The command line: subcommands, their arguments, and the help text.

use crate::engine::EngineKind;
use clap::{Args, Parser, Subcommand, ValueEnum};
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
because (rule, all, exception, referrer, no-rule, mode-none, invalid), matches,
exception and why (the WHY column's words).

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

const USERS_AFTER_HELP: &str = "\
Examples:
  taglock users add users.json alice --group devs
  printf '%s\\n' \"$CI_PASSWORD\" | taglock users add users.json ci-web --password-stdin \\
    --kind pipeline --repository web-app --environment production
  taglock users list users.json
  taglock users remove users.json alice

The users file is what `taglock serve` checks HTTP Basic logins against: each
entry a name, a bcrypt hash of the password, and the actor the login becomes
(kind, groups, pipeline repository and environment, workspace admin). Passwords
and hashes are never printed.

Exit codes:
  0  done
  2  unusable input: the users file cannot be read or is not a valid users file
     (every problem is listed), the password cannot be read or the two typed
     differ, a name that is not in the file (remove), or a usage error";

const USERS_ADD_AFTER_HELP: &str = "\
Examples:
  taglock users add users.json alice --group devs --group qa
  taglock users add users.json root --workspace-admin --password-file root.pw
  printf '%s\\n' \"$CI_PASSWORD\" | taglock users add users.json ci-web --password-stdin \\
    --kind pipeline --repository web-app --environment production

Without --password-stdin or --password-file the password is asked twice on the
terminal, without echo. A password from standard input or a file is one line (a
final line break is dropped; more lines are refused) of 1 to 71 bytes, which
bcrypt uses whole. FILE is created (mode 0600) if it does not exist; an entry of
the same name is replaced (stderr says so). The file is replaced atomically, so
a running `taglock serve` never reads half of it.

Exit codes:
  0  the entry was written
  2  unusable input: FILE cannot be read or is not a valid users file, the
     password cannot be read, is empty or too long, the two typed differ, or
     the options do not fit the kind (a pipeline needs --repository; only a
     pipeline has --repository and --environment)";

const USERS_REMOVE_AFTER_HELP: &str = "\
Examples:
  taglock users remove users.json alice

Exit codes:
  0  the entry was removed
  2  unusable input: FILE cannot be read or is not a valid users file, or it has
     no entry of that name";

const USERS_LIST_AFTER_HELP: &str = "\
Examples:
  taglock users list users.json

Prints one row per entry: name, kind, the principal the policy's grants name
(user:alice, pipeline:web-app/production, token:deploy), groups and whether it
is a workspace admin. Never the password hash.

Exit codes:
  0  the entries were listed
  2  unusable input: FILE cannot be read or is not a valid users file";

const PREVIEW_AFTER_HELP: &str = "\
Examples:
  taglock preview --registry http://127.0.0.1:5000 --policy examples/bitbucket.json
  taglock preview --registry https://registry.example --policy policy.json \\
    --image acme/web --image acme/api --user admin --password-file admin.pw
  taglock preview --registry http://127.0.0.1:5000 --policy policy.json --json \\
    | jq '.unused_rules'

Walks the registry's catalog (GET /v2/_catalog) or only the --image names, and
each image's tags (GET /v2/<name>/tags/list), following the Link header's pages,
at most --concurrency images at a time. Every tag is tested with the policy,
exactly as `taglock test` does: a table per image (tag, protected, why), then
each rule with the number of existing tags it protects, and the rules that
protect none. With --json, stdout holds {\"images\": [{\"image\", \"tags\":
[{\"tag\", \"protected\", \"rule\", \"because\"}]}], \"rules\": [{\"name\",
\"protected\"}], \"unused_rules\": [...]}. A progress bar is drawn on stderr only
when it is a terminal. Credentials are HTTP Basic; nothing is written.

Exit codes:
  0  the preview ran, whatever it found
  1  the policy is invalid
  2  unusable input: the policy or password file cannot be read, an invalid
     --image or --registry, or the registry unreachable, not answering in time,
     refusing the login or answering what the OCI API does not define (the
     message names the URL and what failed)";

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
    /// Run the enforcing reverse proxy in front of an OCI registry.
    #[command(after_help = crate::serve::SERVE_AFTER_HELP)]
    Serve(Box<crate::serve::ServeArgs>),
    /// Show which tags already in a live registry a policy would protect.
    #[command(after_help = PREVIEW_AFTER_HELP)]
    Preview(PreviewArgs),
    /// Manage the users file `taglock serve` checks HTTP Basic logins against.
    #[command(after_help = USERS_AFTER_HELP)]
    Users(UsersArgs),
    /// Run taglock inside Envoy: write an Envoy configuration with the proxy-wasm filter.
    Envoy(crate::envoy_cmd::EnvoyArgs),
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

/// `taglock preview --registry URL --policy FILE [options]`.
#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// The registry's base URL, e.g. http://127.0.0.1:5000 (http or https).
    #[arg(long, value_name = "URL")]
    pub registry: String,
    /// The policy JSON file (`-` for standard input).
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// Only this image, not the whole catalog (repeatable).
    #[arg(long = "image", value_name = "NAME")]
    pub images: Vec<String>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// How many images are listed at once.
    #[arg(long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Seconds each registry request may take (connecting, answering, reading).
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
    /// Log in to the registry with HTTP Basic as this user.
    #[arg(long, value_name = "U", requires = "password_file")]
    pub user: Option<String>,
    /// The password of --user: the first line of this file.
    #[arg(long, value_name = "F", requires = "user")]
    pub password_file: Option<PathBuf>,
}

/// `taglock users add|remove|list`.
#[derive(Debug, Args)]
pub struct UsersArgs {
    /// What to do with the users file.
    #[command(subcommand)]
    pub command: UsersCommand,
}

/// The `users` subcommands.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add an entry, or replace the entry of the same name (creates FILE).
    #[command(after_help = USERS_ADD_AFTER_HELP)]
    Add(UsersAddArgs),
    /// Remove an entry.
    #[command(after_help = USERS_REMOVE_AFTER_HELP)]
    Remove(UsersRemoveArgs),
    /// List the entries (never their password hashes).
    #[command(after_help = USERS_LIST_AFTER_HELP)]
    List(UsersListArgs),
}

/// What kind of actor a login becomes (`--kind`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    /// A person; the policy's grants name it `user:<name>`.
    #[default]
    User,
    /// A CI identity of a code repository: `pipeline:<repository>[/<environment>]`.
    Pipeline,
    /// An access token: `token:<name>`.
    Token,
}

/// `taglock users add FILE NAME [options]`.
#[derive(Debug, Args)]
pub struct UsersAddArgs {
    /// The users file (created if missing).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The login name (no `:`).
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Read the password from standard input (one line; a final line break is dropped).
    #[arg(long, conflicts_with = "password_file")]
    pub password_stdin: bool,
    /// Read the password from this file (one line; a final line break is dropped).
    #[arg(long, value_name = "F")]
    pub password_file: Option<PathBuf>,
    /// A group the login belongs to (repeatable); grants to `group:<G>` apply.
    #[arg(long = "group", value_name = "G")]
    pub groups: Vec<String>,
    /// What kind of actor the login becomes.
    #[arg(long, value_enum, default_value_t = KindArg::User)]
    pub kind: KindArg,
    /// For a pipeline (required): the code repository it runs for.
    #[arg(long, value_name = "R")]
    pub repository: Option<String>,
    /// For a pipeline (optional): the deployment environment it runs in.
    #[arg(long, value_name = "E")]
    pub environment: Option<String>,
    /// The login is a workspace admin (admin on every repository).
    #[arg(long)]
    pub workspace_admin: bool,
    /// bcrypt cost, 4 to 31; each step doubles the work of every login.
    #[arg(long, value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(4..=31))]
    pub cost: u32,
}

/// `taglock users remove FILE NAME`.
#[derive(Debug, Args)]
pub struct UsersRemoveArgs {
    /// The users file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The login name to remove.
    #[arg(value_name = "NAME")]
    pub name: String,
}

/// `taglock users list FILE`.
#[derive(Debug, Args)]
pub struct UsersListArgs {
    /// The users file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
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
        for text in [
            CHECK_AFTER_HELP,
            TEST_AFTER_HELP,
            EVAL_AFTER_HELP,
            PREVIEW_AFTER_HELP,
        ] {
            assert!(text.contains("Exit codes:\n  0  "));
            assert!(text.contains("\n  1  the policy is invalid"));
            assert!(text.contains("\n  2  "));
        }
        for text in [
            USERS_AFTER_HELP,
            USERS_ADD_AFTER_HELP,
            USERS_REMOVE_AFTER_HELP,
            USERS_LIST_AFTER_HELP,
        ] {
            assert!(text.contains("Examples:\n  taglock users "), "{text}");
            assert!(text.contains("Exit codes:\n  0  "), "{text}");
            assert!(text.contains("\n  2  unusable input"), "{text}");
            assert!(!text.contains("\n  1  "), "{text}");
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
