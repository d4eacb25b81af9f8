//! Every list of the core's codes outside the core says exactly what the core says.
//!
//! The codes are declared once, in the core's enums. Copies that other languages
//! need are either generated here (`host-js/codes.d.ts`: this test rewrites it when
//! it is stale, and fails so that the change is seen and committed, as
//! rust-analyzer's source-generating tests do) or checked here: the WIT enums, the
//! tables and lists of `docs/` and the CLI's help. (A tag verdict's words are the
//! core's own `TagTest::why`, which every host shows.) A code added to the core without its docs entry fails here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use policy_core::ActorKind;
use policy_core::document::{IdenticalRepush, Mode, Protect, Publish, ReferrerTags};
use policy_core::{ErrorCode, LintCode, LoadErrorCode, Reason, Role, TagVerdict};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("policy-core sits in the workspace")
        .to_path_buf()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

fn names<T: Copy>(all: &[T], name: fn(T) -> &'static str) -> BTreeSet<String> {
    all.iter().map(|&code| name(code).to_owned()).collect()
}

/// WIT spells every code in kebab-case.
fn kebab(codes: &BTreeSet<String>) -> BTreeSet<String> {
    codes
        .iter()
        .map(|code| code.to_lowercase().replace('_', "-"))
        .collect()
}

/// The cases of `enum {name} { … }` in a WIT file, comments skipped.
fn wit_enum(wit: &str, name: &str) -> BTreeSet<String> {
    let start = wit
        .find(&format!("enum {name} {{"))
        .unwrap_or_else(|| panic!("wit/taglock.wit has no `enum {name}`"));
    let body = &wit[start..];
    let body = &body[body.find('{').unwrap() + 1..body.find('}').unwrap()];
    body.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("//"))
        .map(|line| line.trim_end_matches(',').to_owned())
        .collect()
}

/// The words between backticks in `text`.
fn backticked(text: &str) -> BTreeSet<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The text from the end of `marker` to the first `end` after it.
fn between<'a>(text: &'a str, file: &str, marker: &str, end: &str) -> &'a str {
    let start = text
        .find(marker)
        .unwrap_or_else(|| panic!("{file}: `{marker}` not found"))
        + marker.len();
    let rest = &text[start..];
    &rest[..rest
        .find(end)
        .unwrap_or_else(|| panic!("{file}: no `{end}` after `{marker}`"))]
}

/// The codes in the first column of the Markdown table under `heading`.
fn table_codes(markdown: &str, file: &str, heading: &str) -> BTreeSet<String> {
    let section = between(markdown, file, &format!("\n{heading}\n"), "\n#");
    section
        .lines()
        .filter(|line| line.starts_with("| `"))
        .flat_map(|line| backticked(line.split(" | ").next().unwrap_or_default()))
        .collect()
}

#[track_caller]
fn same(what: &str, copy: BTreeSet<String>, core: &BTreeSet<String>) {
    let missing: Vec<_> = core.difference(&copy).collect();
    let extra: Vec<_> = copy.difference(core).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what} disagrees with the core: missing {missing:?}, not in the core {extra:?}"
    );
}

fn reasons() -> BTreeSet<String> {
    names(Reason::ALL, Reason::as_str)
}
fn error_codes() -> BTreeSet<String> {
    names(ErrorCode::ALL, ErrorCode::as_str)
}
fn load_error_codes() -> BTreeSet<String> {
    names(LoadErrorCode::ALL, LoadErrorCode::as_str)
}
fn lint_codes() -> BTreeSet<String> {
    names(LintCode::ALL, LintCode::as_str)
}
fn verdicts() -> BTreeSet<String> {
    names(TagVerdict::ALL, TagVerdict::as_str)
}

#[test]
fn the_wit_enums_are_the_core_codes() {
    let wit = read("wit/taglock.wit");
    same(
        "WIT `enum reason`",
        wit_enum(&wit, "reason"),
        &kebab(&reasons()),
    );
    same(
        "WIT `enum error-code`",
        wit_enum(&wit, "error-code"),
        &kebab(&error_codes()),
    );
    same(
        "WIT `enum load-error-code`",
        wit_enum(&wit, "load-error-code"),
        &kebab(&load_error_codes()),
    );
    same(
        "WIT `enum tag-verdict`",
        wit_enum(&wit, "tag-verdict"),
        &kebab(&verdicts()),
    );
    let mut host_roles = names(Role::ALL, Role::as_str);
    host_roles.insert("unresolved".to_owned());
    same(
        "WIT `enum host-role` (the roles, and `unresolved`)",
        wit_enum(&wit, "host-role"),
        &host_roles,
    );
    same(
        "WIT `enum actor-kind`",
        wit_enum(&wit, "actor-kind"),
        &names(ActorKind::ALL, ActorKind::as_str),
    );
}

#[test]
fn the_docs_list_every_code() {
    let file = "docs/policy.md";
    let policy = read(file);
    same(
        "docs/policy.md, \"Errors when loading\"",
        table_codes(&policy, file, "## Errors when loading"),
        &load_error_codes(),
    );
    same(
        "docs/policy.md, \"Lints\"",
        table_codes(&policy, file, "## Lints"),
        &lint_codes(),
    );
    let decision_codes = reasons().union(&error_codes()).cloned().collect();
    same(
        "docs/policy.md, \"Decisions\" (`reason` and its OCI codes)",
        backticked(between(&policy, file, "- `reason`: ", "\n- ")),
        &decision_codes,
    );
    same(
        "docs/policy.md, \"Testing a tag\" (`because`)",
        backticked(between(&policy, file, "`because` (", ")")),
        &verdicts(),
    );
    let file = "docs/proxy.md";
    same(
        "docs/proxy.md, the preview's `because`",
        backticked(between(
            &read(file),
            file,
            "`because` is the core's verdict (",
            ";",
        )),
        &verdicts(),
    );
    let file = "tests/conformance/README.md";
    same(
        "tests/conformance/README.md, `because`",
        backticked(between(&read(file), file, "| `because` | yes | why: ", "|")),
        &verdicts(),
    );
}

#[test]
fn the_cli_help_lists_every_verdict() {
    let file = "cli/src/args.rs";
    let help: BTreeSet<String> = between(&read(file), file, "because (", ")")
        .split(',')
        .map(|word| word.trim().to_owned())
        .collect();
    same("`taglock test --help`, because", help, &verdicts());
}

/// One TypeScript union of string literals.
fn union<T: Copy>(doc: &str, name: &str, all: &[T], text: fn(T) -> &'static str) -> String {
    let mut out = format!("/** {doc} */\nexport type {name} =\n");
    for (i, &code) in all.iter().enumerate() {
        let end = if i + 1 == all.len() { ";" } else { "" };
        out.push_str(&format!("  | '{}'{end}\n", text(code)));
    }
    out
}

fn codes_d_ts() -> String {
    [
        "// The core's codes, generated from policy-core's enums by\n\
         // `cargo test -p taglock-policy-core --test code_lists`, which rewrites this\n\
         // file when a code changes. Do not edit.\n"
            .to_owned(),
        union(
            "A decision's stable machine code.",
            "Reason",
            Reason::ALL,
            Reason::as_str,
        ),
        union(
            "The OCI error code a registry returns with a denial.",
            "OciErrorCode",
            ErrorCode::ALL,
            ErrorCode::as_str,
        ),
        union(
            "Why a policy was refused.",
            "LoadErrorCode",
            LoadErrorCode::ALL,
            LoadErrorCode::as_str,
        ),
        union(
            "What a lint warns about.",
            "LintCode",
            LintCode::ALL,
            LintCode::as_str,
        ),
        union(
            "Why a tag is, or is not, protected.",
            "TagVerdict",
            TagVerdict::ALL,
            TagVerdict::as_str,
        ),
        union(
            "`none < read < write < admin`.",
            "Role",
            Role::ALL,
            Role::as_str,
        ),
        union(
            "The kind of actor.",
            "ActorKind",
            ActorKind::ALL,
            ActorKind::as_str,
        ),
        union("Enforcement mode.", "Mode", Mode::ALL, Mode::as_str),
        union(
            "Which tags are protected.",
            "Protect",
            Protect::ALL,
            Protect::as_str,
        ),
        union(
            "What an identical re-push of an immutable tag gets.",
            "IdenticalRepush",
            IdenticalRepush::ALL,
            IdenticalRepush::as_str,
        ),
        union(
            "How legacy referrer tags are treated.",
            "ReferrerTags",
            ReferrerTags::ALL,
            ReferrerTags::as_str,
        ),
        union(
            "Who may publish an image.",
            "Publish",
            Publish::ALL,
            Publish::as_str,
        ),
    ]
    .join("\n")
}

#[test]
fn the_typescript_codes_are_generated_from_the_core() {
    let path = repo().join("host-js/codes.d.ts");
    let fresh = codes_d_ts();
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current != fresh {
        std::fs::write(&path, &fresh).unwrap_or_else(|e| panic!("cannot write {path:?}: {e}"));
        panic!("host-js/codes.d.ts was stale and has been rewritten from the core: commit it");
    }
}
