#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! Runs the built `taglock` binary on every example policy and request file, and on
//! the error paths its exit codes promise.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// What a run printed and how it ended.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|err| panic!("stdout is not JSON ({err}):\n{}", self.stdout))
    }
}

fn taglock(args: &[&str]) -> Run {
    taglock_with_stdin(args, None)
}

fn taglock_with_stdin(args: &[&str], stdin: Option<&str>) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_taglock"));
    command
        .args(args)
        .current_dir(workspace())
        .env_remove("NO_COLOR");
    let output = support::process::run(command, stdin.map(str::as_bytes), Duration::from_secs(120));
    Run {
        code: output.status.code().expect("taglock exits normally"),
        stdout: output.stdout,
        stderr: output.stderr,
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Example policies, relative to the workspace: `examples/<name>.json`.
fn example_policies() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(workspace().join("examples"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| format!("examples/{}", path.file_name().unwrap().to_str().unwrap()))
        .collect();
    names.sort();
    names
}

/// Every request file with the policy it belongs to: `examples/requests/<policy>/*.json`.
fn example_requests() -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for dir in std::fs::read_dir(workspace().join("examples/requests")).unwrap() {
        let dir = dir.unwrap().path();
        let policy = format!(
            "examples/{}.json",
            dir.file_name().unwrap().to_str().unwrap()
        );
        for file in std::fs::read_dir(&dir).unwrap() {
            let file = file.unwrap().path();
            let relative = file.strip_prefix(workspace()).unwrap();
            pairs.push((policy.clone(), relative.to_str().unwrap().to_owned()));
        }
    }
    pairs.sort();
    pairs
}

/// A scratch file under cargo's per-target temporary directory.
fn scratch(name: &str, text: &str) -> String {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

const DECISION_KEYS: [&str; 8] = [
    "allowed",
    "would_deny",
    "reason",
    "message",
    "rule",
    "protected_tags",
    "status",
    "error",
];

fn assert_decision_shape(decision: &Value, context: &str) {
    let object = decision
        .as_object()
        .unwrap_or_else(|| panic!("{context}: a decision is an object: {decision}"));
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut expected = DECISION_KEYS.to_vec();
    expected.sort_unstable();
    assert_eq!(keys, expected, "{context}: decision keys");
    let allowed = decision["allowed"].as_bool().unwrap();
    let status = decision["status"].as_u64().unwrap();
    assert!(decision["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(decision["protected_tags"].is_array());
    if allowed {
        assert_eq!(status, 200, "{context}");
        assert!(decision["error"].is_null(), "{context}");
    } else {
        assert!(matches!(status, 400 | 401 | 403), "{context}");
        let error = &decision["error"]["errors"][0];
        assert_eq!(error["message"], decision["message"], "{context}");
        assert_eq!(error["detail"]["reason"], decision["reason"], "{context}");
        assert_eq!(error["detail"]["rule"], decision["rule"], "{context}");
    }
}

/// `(allowed, reason, rule)` of every single-request example; `None` rule is JSON null.
fn expected(file: &str) -> (bool, &'static str, Option<&'static str>) {
    let name = file.rsplit_once("requests/").unwrap().1;
    match name {
        "bitbucket/push-new-semver.json" => (true, "allowed", None),
        "bitbucket/overwrite-semver.json" => (false, "tag_immutable", Some("semver")),
        "bitbucket/identical-repush.json" => (true, "allowed", None),
        "bitbucket/overwrite-feature-tag.json" => (true, "allowed", None),
        "bitbucket/multi-tag-push.json" => (false, "tag_immutable", Some("prod")),
        "bitbucket/delete-prod-as-writer.json" => (false, "tag_immutable", Some("prod")),
        "bitbucket/delete-prod-as-workspace-admin.json" => (true, "allowed", None),
        "bitbucket/delete-digest-unknown-tags.json" => (false, "tag_immutable", Some("prod")),
        "bitbucket/delete-index-child.json" => (false, "tag_immutable", Some("semver")),
        "stackit/overwrite-latest.json" => (false, "tag_immutable", Some("production")),
        "stackit/overwrite-nightly.json" => (true, "allowed", None),
        "stackit/push-new-tag.json" => (true, "allowed", None),
        "stackit/overwrite-referrer-tag.json" => (true, "allowed", None),
        "stackit/delete-image.json" => (false, "tag_immutable", Some("production")),
        "ecr/overwrite-latest.json" => (true, "allowed", None),
        "ecr/overwrite-release.json" => (false, "tag_immutable", None),
        "ecr/identical-repush.json" => (false, "tag_immutable", None),
        "ecr/overwrite-dev-tag.json" => (true, "allowed", None),
        "ecr/delete-release-tag.json" => (false, "tag_immutable", None),
        "permissions/push-new-tag.json" => (true, "allowed", None),
        "permissions/overwrite-semver.json" => (false, "tag_immutable", Some("semver")),
        "permissions/identical-repush.json" => (true, "allowed", None),
        "permissions/delete-tag-as-writer.json" => (false, "tag_immutable", Some("semver")),
        "permissions/delete-tag-as-workspace-admin.json" => (true, "allowed", None),
        "permissions/delete-feature-tag-as-writer.json" => (true, "allowed", None),
        "permissions/pull-public-image.json" => (true, "allowed", None),
        "permissions/pull-private-image.json" => (false, "permission_denied", None),
        "permissions/pull-anonymous.json" => (false, "authentication_required", None),
        "permissions/pipelines-only-user-push.json" => (false, "pipelines_only", None),
        "permissions/pipelines-only-pipeline-push.json" => (true, "allowed", None),
        "permissions/override-lowers-role.json" => (false, "permission_denied", None),
        "permissions/first-push-pattern-image-writer.json" => (false, "permission_denied", None),
        "permissions/first-push-pattern-image-admin.json" => (true, "allowed", None),
        "permissions/push-unlinked-image.json" => (false, "image_not_linked", None),
        "permissions/mount-from-public-image.json" => (true, "allowed", None),
        "permissions/upload-as-reader.json" => (false, "permission_denied", None),
        "permissions/invalid-tag.json" => (false, "invalid_request", None),
        other => panic!("{other}: add its expected decision to this table"),
    }
}

/// `(allowed, reason)` of each request of the array examples, in order.
fn expected_batch(file: &str) -> Vec<(bool, &'static str)> {
    let name = file.rsplit_once("requests/").unwrap().1;
    match name {
        "bitbucket/batch.json" => vec![
            (true, "allowed"),
            (false, "tag_immutable"),
            (true, "allowed"),
            (true, "allowed"),
        ],
        "stackit/batch.json" => vec![
            (false, "tag_immutable"),
            (true, "allowed"),
            (true, "allowed"),
            (false, "tag_immutable"),
        ],
        "ecr/batch.json" => vec![
            (true, "allowed"),
            (true, "allowed"),
            (false, "tag_immutable"),
            (true, "allowed"),
        ],
        "permissions/batch.json" => vec![
            (true, "allowed"),
            (false, "tag_immutable"),
            (true, "allowed"),
            (false, "pipelines_only"),
            (true, "allowed"),
        ],
        other => panic!("{other}: add its expected decisions to this table"),
    }
}

// ---------------------------------------------------------------- the examples

#[test]
fn every_example_policy_is_valid() {
    let policies = example_policies();
    assert_eq!(
        policies,
        [
            "examples/bitbucket.json",
            "examples/ecr.json",
            "examples/permissions.json",
            "examples/stackit.json"
        ]
    );
    for policy in &policies {
        let run = taglock(&["check", policy]);
        assert_eq!(run.code, 0, "{policy}: {}", run.stderr);
        assert!(
            run.stdout.starts_with(&format!("{policy}: valid (")),
            "{}",
            run.stdout
        );
        assert!(!run.stderr.contains("error"), "{policy}: {}", run.stderr);
    }
}

#[test]
fn example_lints_are_the_deliberate_ones() {
    for (policy, lints) in [
        ("examples/bitbucket.json", vec![]),
        ("examples/ecr.json", vec![]),
        ("examples/permissions.json", vec![]),
        ("examples/stackit.json", vec!["protects-latest"]),
    ] {
        let run = taglock(&["check", policy, "--json"]);
        assert_eq!(run.code, 0, "{policy}: {}", run.stderr);
        let report = run.json();
        assert_eq!(report["valid"], true);
        assert_eq!(report["errors"], serde_json::json!([]));
        let codes: Vec<&str> = report["lints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|lint| lint["code"].as_str().unwrap())
            .collect();
        assert_eq!(codes, lints, "{policy}");
        for code in &lints {
            assert!(
                run.stderr.contains(&format!("warning[{code}]")),
                "{}",
                run.stderr
            );
        }
    }
}

#[test]
fn every_example_request_evaluates_as_documented() {
    let requests = example_requests();
    assert!(requests.len() >= 30, "{} request files", requests.len());
    for (policy, request) in &requests {
        let run = taglock(&["eval", policy, request]);
        assert_eq!(run.code, 0, "{request}: {}", run.stderr);
        assert!(run.stderr.is_empty(), "{request}: {}", run.stderr);
        let output = run.json();
        if request.ends_with("batch.json") {
            let decisions = output.as_array().expect("an array request gives an array");
            let got: Vec<(bool, &str)> = decisions
                .iter()
                .map(|d| {
                    assert_decision_shape(d, request);
                    (
                        d["allowed"].as_bool().unwrap(),
                        d["reason"].as_str().unwrap(),
                    )
                })
                .collect();
            assert_eq!(got, expected_batch(request), "{request}");
        } else {
            assert_decision_shape(&output, request);
            let (allowed, reason, rule) = expected(request);
            assert_eq!(output["allowed"], allowed, "{request}");
            assert_eq!(output["would_deny"], false, "{request}");
            assert_eq!(output["reason"], reason, "{request}");
            assert_eq!(output["rule"].as_str(), rule, "{request}");
        }
    }
}

#[test]
fn selected_decisions_in_full() {
    let overwrite = taglock(&[
        "eval",
        "examples/bitbucket.json",
        "examples/requests/bitbucket/overwrite-semver.json",
    ])
    .json();
    let message = overwrite["message"].as_str().unwrap();
    assert!(
        message.starts_with("tag v1.2.0 of acme/web is immutable (rule \"semver\")"),
        "{message}"
    );
    assert_eq!(overwrite["status"], 403);
    let detail = &overwrite["error"]["errors"][0];
    assert_eq!(detail["code"], "DENIED");
    assert_eq!(detail["detail"]["pattern"], r"^v\d+\.\d+\.\d+$");
    assert_eq!(detail["detail"]["tag"], "v1.2.0");

    let first_push = taglock(&[
        "eval",
        "examples/bitbucket.json",
        "examples/requests/bitbucket/push-new-semver.json",
    ])
    .json();
    assert_eq!(first_push["protected_tags"], serde_json::json!(["v1.3.0"]));

    let anonymous = taglock(&[
        "eval",
        "examples/permissions.json",
        "examples/requests/permissions/pull-anonymous.json",
    ])
    .json();
    assert_eq!(anonymous["status"], 401);
    assert_eq!(anonymous["error"]["errors"][0]["code"], "UNAUTHORIZED");

    let invalid = taglock(&[
        "eval",
        "examples/permissions.json",
        "examples/requests/permissions/invalid-tag.json",
    ])
    .json();
    assert_eq!(invalid["status"], 400);
    assert_eq!(invalid["error"]["errors"][0]["code"], "TAG_INVALID");
}

#[test]
fn compact_output_is_one_line_and_equal_to_the_pretty_one() {
    let args = [
        "eval",
        "examples/permissions.json",
        "examples/requests/permissions/batch.json",
    ];
    let pretty = taglock(&args);
    let compact = taglock(&[args[0], args[1], args[2], "--compact"]);
    assert_eq!(compact.code, 0);
    assert_eq!(compact.stdout.lines().count(), 1);
    assert!(pretty.stdout.lines().count() > 1);
    assert_eq!(compact.json(), pretty.json());
}

#[test]
fn eval_reads_the_request_from_stdin() {
    let request =
        r#"{"operation": "pull", "image": "acme/base", "actor": {"kind": "user", "id": "erin"}}"#;
    let run = taglock_with_stdin(&["eval", "examples/permissions.json", "-"], Some(request));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["reason"], "allowed");

    let empty_array = taglock_with_stdin(&["eval", "examples/ecr.json", "-"], Some("[]"));
    assert_eq!(empty_array.code, 0);
    assert_eq!(empty_array.json(), serde_json::json!([]));
}

// ---------------------------------------------------------------- test

#[test]
fn test_explains_each_tag() {
    let sig = format!("sha256-{}.sig", "a".repeat(64));
    let run = taglock(&[
        "test",
        "examples/bitbucket.json",
        "--image",
        "acme/web",
        "v1.2.3",
        "prod",
        "staging",
        "release-2024",
        "latest",
        "v1.2",
        "bad!tag",
        &sig,
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let tests = run.json();
    let got: Vec<(String, bool, String, Option<String>)> = tests
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["tag"].as_str().unwrap().to_owned(),
                t["protected"].as_bool().unwrap(),
                t["because"].as_str().unwrap().to_owned(),
                t["rule"].as_str().map(str::to_owned),
            )
        })
        .collect();
    let row = |tag: &str, protected, because: &str, rule: Option<&str>| {
        (
            tag.to_owned(),
            protected,
            because.to_owned(),
            rule.map(str::to_owned),
        )
    };
    assert_eq!(
        got,
        vec![
            row("v1.2.3", true, "rule", Some("semver")),
            row("prod", true, "rule", Some("prod")),
            row("staging", true, "rule", Some("staging")),
            row("release-2024", true, "rule", Some("release")),
            row("latest", false, "no-rule", None),
            row("v1.2", false, "no-rule", None),
            row("bad!tag", false, "invalid", None),
            row(&sig, false, "referrer", None),
        ]
    );
    // `prod` matches two rules; the first in document order protects it.
    let prod = &tests[1]["matches"];
    assert_eq!(prod.as_array().unwrap().len(), 2);
    assert!(tests[6]["error"].as_str().unwrap().contains("bad!tag"));
}

#[test]
fn test_prints_an_aligned_table_without_colour_when_piped() {
    let run = taglock(&[
        "test",
        "examples/ecr.json",
        "--image",
        "acme/web",
        "latest",
        "dev-42",
        "2024.05.01",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stdout.contains('\x1b'), "{:?}", run.stdout);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[0], "image acme/web");
    assert_eq!(lines[1], "TAG         PROTECTED  WHY");
    assert_eq!(
        lines[2],
        "latest      no         exempted by exception 1 (latest)"
    );
    assert_eq!(
        lines[3],
        "dev-42      no         exempted by exception 2 (^dev-)"
    );
    assert_eq!(
        lines[4],
        "2024.05.01  yes        all tags are protected (protect: all)"
    );
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
}

#[test]
fn test_reads_tags_from_stdin() {
    let run = taglock_with_stdin(
        &[
            "test",
            "examples/stackit.json",
            "--image",
            "team-a/api",
            "first",
            "-",
            "--json",
        ],
        Some("rc\n\n  nightly  \r\nv1.0.0\n"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let tests = run.json();
    let tags: Vec<(&str, bool)> = tests
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["tag"].as_str().unwrap(),
                t["protected"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        tags,
        vec![
            ("first", true),
            ("rc", false),
            ("nightly", false),
            ("v1.0.0", true)
        ]
    );
}

#[test]
fn test_answers_a_huge_tag_as_invalid_on_every_engine() {
    // 65,536 characters: over the standard library's formatting width limit,
    // which once made the table panic (exit 101).
    let huge = "a".repeat(65_536);
    for engine in ["wasm", "native"] {
        let run = taglock(&[
            "--engine",
            engine,
            "test",
            "examples/ecr.json",
            "--image",
            "acme/web",
            "latest",
            &huge,
        ]);
        assert_eq!(run.code, 0, "{engine}: {}", run.stderr);
        let lines: Vec<&str> = run.stdout.lines().collect();
        assert_eq!(lines.len(), 4, "{engine}");
        assert!(
            lines[3].contains("invalid") && lines[3].contains("a tag has at most 128 characters"),
            "{engine}: {}",
            lines[3]
        );
        assert!(lines[3].contains("… (65536 characters)"), "{engine}");
        assert!(lines[3].len() < 1_000, "{engine}: {}", lines[3].len());
        let json = taglock(&[
            "--engine",
            engine,
            "test",
            "examples/ecr.json",
            "--image",
            "acme/web",
            &huge,
            "--json",
        ]);
        assert_eq!(json.code, 0, "{engine}: {}", json.stderr);
        assert_eq!(json.json()[0]["because"], "invalid", "{engine}");
    }
}

#[test]
fn test_escapes_control_characters_in_tags() {
    let run = taglock_with_stdin(
        &["test", "examples/ecr.json", "--image", "acme/web", "-"],
        Some("v1\x1b[31mred\x07\n"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        !run.stdout.contains('\x1b') && !run.stdout.contains('\x07'),
        "{:?}",
        run.stdout
    );
    assert!(
        run.stdout.contains("v1\\u{1b}[31mred\\u{7}"),
        "{}",
        run.stdout
    );
}

/// `taglock test … -` prints results while standard input is still open: rows
/// (and JSON elements) go out as tags come in, so memory does not grow with them.
#[test]
fn test_streams_tags_from_stdin() {
    use std::io::{BufRead, Write};
    for json in [false, true] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_taglock"));
        command
            .args(["test", "examples/ecr.json", "--image", "acme/web", "-"])
            .args(json.then_some("--json"))
            .current_dir(workspace())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        let mut child = command.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (lines, seen) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                if lines.send(line.unwrap()).is_err() {
                    break;
                }
            }
        });
        // Far more than the table sizes itself from, and than a pipe buffers.
        let tags: String = (0..20_000).map(|i| format!("v1.{i}.0\n")).collect();
        stdin.write_all(tags.as_bytes()).unwrap();
        stdin.flush().unwrap();
        // Standard input is still open: output must already be flowing.
        let wanted = if json {
            "\"tag\": \"v1.19000.0\""
        } else {
            "v1.19000.0"
        };
        let found = loop {
            match seen.recv_timeout(Duration::from_secs(60)) {
                Ok(line) if line.contains(wanted) => break true,
                Ok(_) => {}
                Err(_) => break false,
            }
        };
        drop(stdin);
        assert!(
            found,
            "json={json}: nothing printed before standard input ended"
        );
        let status = child.wait().unwrap();
        assert!(status.success());
        drop(seen);
        reader.join().unwrap();
    }
}

#[test]
fn test_json_output_is_one_array() {
    for tags in [&["latest", "dev-42", "1.0"][..], &["x"][..]] {
        let mut args = vec!["test", "examples/ecr.json", "--image", "acme/web"];
        args.extend(tags);
        args.push("--json");
        let run = taglock(&args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let value = run.json();
        assert_eq!(value.as_array().unwrap().len(), tags.len());
        // The streamed text is laid out as pretty-printing the whole array was.
        assert!(
            run.stdout.starts_with("[\n  {\n    \"tag\": "),
            "{}",
            run.stdout
        );
        assert!(run.stdout.ends_with("\n  }\n]\n"), "{}", run.stdout);
        assert_eq!(run.stdout.matches("\n  },\n  {\n").count(), tags.len() - 1);
    }
    let empty = taglock_with_stdin(
        &[
            "test",
            "examples/ecr.json",
            "--image",
            "acme/web",
            "-",
            "--json",
        ],
        Some(""),
    );
    assert_eq!((empty.code, empty.stdout.as_str()), (0, "[]\n"));
}

#[test]
fn test_refuses_an_invalid_image_name() {
    let run = taglock(&["test", "examples/ecr.json", "--image", "Acme/Web", "v1"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .starts_with("error: invalid image name `Acme/Web`"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
}

// ---------------------------------------------------------------- error paths

const INVALID_POLICY: &str = r#"{
  "version": 1,
  "limits": "bitbucket",
  "immutability": {
    "protect": "some",
    "rules": [
      { "name": "semver", "tags": { "regex": "^v(\\d+" } },
      { "name": "semver", "tags": { "matching": ["v[z-a]"] } },
      { "name": "look", "tags": { "regex": "(?=x)" } }
    ]
  },
  "permissions": { "workspace_admins": ["root"] }
}"#;

const INVALID_CODES: [&str; 5] = [
    "regex-syntax",
    "duplicate-rule-name",
    "glob-syntax",
    "regex-unsupported",
    "invalid-principal",
];

#[test]
fn check_lists_every_problem_of_an_invalid_policy() {
    let policy = scratch("invalid-policy.json", INVALID_POLICY);
    let run = taglock(&["check", &policy]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    for code in INVALID_CODES {
        assert!(
            run.stderr.contains(&format!("error[{code}]")),
            "{code}: {}",
            run.stderr
        );
    }
    assert!(
        run.stderr
            .contains("immutability.rules[0].tags.regex (rule \"semver\"), character 2")
    );
    assert!(
        run.stderr.contains("   | ^v(\\d+\n   |   ^\n"),
        "{}",
        run.stderr
    );
    // The glob's problem is located in the glob, not in its translation.
    assert!(
        run.stderr
            .contains("immutability.rules[1].tags.matching[0] (rule \"semver\"), character 2"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("permissions.workspace_admins[0]"));
    assert!(
        run.stderr
            .contains("is refused (5 problems); nothing was loaded")
    );

    let json = taglock(&["check", &policy, "--json"]);
    assert_eq!(json.code, 1);
    let report = json.json();
    assert_eq!(report["valid"], false);
    assert_eq!(report["lints"], serde_json::json!([]));
    let codes: Vec<&str> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, INVALID_CODES);
    assert_eq!(report["errors"][0]["offset"], 2);
    assert_eq!(report["errors"][0]["rule"], "semver");
    assert_eq!(
        report["errors"][0]["path"],
        "immutability.rules[0].tags.regex"
    );
}

#[test]
fn test_and_eval_refuse_an_invalid_policy_with_exit_1() {
    let policy = scratch("invalid-policy-2.json", INVALID_POLICY);
    for args in [
        vec!["test", policy.as_str(), "--image", "acme/web", "v1"],
        vec![
            "eval",
            policy.as_str(),
            "examples/requests/bitbucket/push-new-semver.json",
        ],
        // The policy is checked before the request is read.
        vec!["eval", policy.as_str(), "examples/requests/missing.json"],
    ] {
        let run = taglock(&args);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty());
        for code in INVALID_CODES {
            assert!(
                run.stderr.contains(&format!("error[{code}]")),
                "{code}: {}",
                run.stderr
            );
        }
    }
}

#[test]
fn a_policy_that_is_not_json_is_invalid_with_its_line_and_column() {
    let policy = scratch(
        "not-json.json",
        "{\n  \"version\": 1,\n  \"mode\": enforce\n}\n",
    );
    let run = taglock(&["check", &policy]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("error[json-syntax]"), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("--> {policy}:3:")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("   |   \"mode\": enforce\n"),
        "{}",
        run.stderr
    );

    let unknown_field = taglock_with_stdin(
        &["check", "-", "--json"],
        Some(r#"{"version": 1, "bogus": 2}"#),
    );
    assert_eq!(unknown_field.code, 1);
    let report = unknown_field.json();
    assert_eq!(report["errors"][0]["code"], "schema");
    assert_eq!(report["errors"][0]["path"], "bogus");
    assert_eq!(report["errors"][0]["line"], 1);
}

#[test]
fn missing_files_are_unusable_input() {
    let run = taglock(&["check", "examples/nope.json"]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        "error: cannot read policy examples/nope.json: No such file or directory\n"
    );
    for args in [
        vec!["test", "examples/nope.json", "--image", "acme/web", "v1"],
        vec![
            "eval",
            "examples/nope.json",
            "examples/requests/ecr/batch.json",
        ],
    ] {
        let run = taglock(&args);
        assert_eq!(run.code, 2, "{args:?}");
        assert!(
            run.stderr.contains("cannot read policy examples/nope.json"),
            "{}",
            run.stderr
        );
    }
    let run = taglock(&["eval", "examples/ecr.json", "examples/requests/nope.json"]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        "error: cannot read request examples/requests/nope.json: No such file or directory\n"
    );
    assert!(run.stdout.is_empty());

    let directory = taglock(&["check", "examples"]);
    assert_eq!(directory.code, 2);
    assert!(
        directory
            .stderr
            .starts_with("error: cannot read policy examples: "),
        "{}",
        directory.stderr
    );
}

#[test]
fn a_request_that_is_not_json_gives_its_line_and_column() {
    let request = scratch(
        "bad-request.json",
        "{\n  \"operation\": \"push\",\n  \"image\": acme\n}",
    );
    let run = taglock(&["eval", "examples/ecr.json", &request]);
    assert_eq!(run.code, 2);
    assert!(run.stdout.is_empty());
    assert!(
        run.stderr
            .starts_with(&format!("error: request {request} is not valid JSON: ")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("(line 3, column 12)"), "{}", run.stderr);

    let truncated = taglock_with_stdin(
        &["eval", "examples/ecr.json", "-"],
        Some("[{\"operation\": "),
    );
    assert_eq!(truncated.code, 2);
    assert!(
        truncated.stderr.contains("<stdin> is not valid JSON"),
        "{}",
        truncated.stderr
    );
    assert!(
        truncated.stderr.contains("(line 1, column"),
        "{}",
        truncated.stderr
    );
}

#[test]
fn a_request_of_the_wrong_shape_gives_its_json_path() {
    for (request, path) in [
        (
            r#"{"operation": "push", "image": "acme/web", "digest": 3}"#,
            "at `digest`",
        ),
        (
            r#"{"operation": "push", "image": "acme/web", "digest": "sha256:x", "tags": [{"nam": "a"}]}"#,
            "at `tags[0]",
        ),
        (
            r#"[{"operation": "pull", "image": "a"}, {"operation": "pul"}]"#,
            "at `[1].operation`",
        ),
        (
            r#"{"operation": "pull", "image": "a", "extra": 1}"#,
            "extra",
        ),
        ("42", "expected a request (an object)"),
    ] {
        let run = taglock_with_stdin(&["eval", "examples/permissions.json", "-"], Some(request));
        assert_eq!(run.code, 2, "{request}");
        assert!(run.stdout.is_empty());
        assert!(
            run.stderr
                .starts_with("error: request <stdin> is not a valid request: "),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains(path), "{path}: {}", run.stderr);
    }
}

#[test]
fn standard_input_is_read_once_at_most() {
    let run = taglock_with_stdin(&["eval", "-", "-"], Some("{}"));
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("only one input can be `-`"),
        "{}",
        run.stderr
    );
    let run = taglock_with_stdin(&["test", "-", "--image", "acme/web", "-"], Some("{}"));
    assert_eq!(run.code, 2);
}

#[test]
fn usage_errors_exit_2_and_help_documents_the_exit_codes() {
    let run = taglock(&["eval", "examples/ecr.json"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("Usage:"), "{}", run.stderr);
    assert_eq!(taglock(&["frobnicate"]).code, 2);
    assert_eq!(taglock(&["test", "examples/ecr.json", "v1"]).code, 2);

    let help = taglock(&["--help"]);
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("Exit codes:"), "{}", help.stdout);
    assert!(help.stdout.contains("taglock eval examples/bitbucket.json"));
    for command in ["check", "test", "eval"] {
        let help = taglock(&[command, "--help"]);
        assert_eq!(help.code, 0);
        assert!(help.stdout.contains("Exit codes:"), "{command}");
        assert!(help.stdout.contains("Examples:"), "{command}");
        assert!(
            help.stdout.contains("  1  the policy is invalid"),
            "{command}"
        );
    }

    let version = taglock(&["--version"]);
    assert_eq!(version.code, 0);
    assert_eq!(
        version.stdout,
        format!("taglock {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn the_help_examples_work() {
    // Every self-contained example command shown in a --help must run as documented.
    let mut ran = 0;
    for help in [&[][..], &["check"], &["test"], &["eval"]] {
        let mut args: Vec<&str> = help.to_vec();
        args.push("--help");
        let text = taglock(&args).stdout;
        for line in text
            .lines()
            .filter_map(|l| l.strip_prefix("  "))
            .filter(|l| l.starts_with("taglock ") && l.contains(" examples/"))
            .filter(|l| !l.contains('|') && !l.contains("policy.json"))
        {
            let args: Vec<&str> = line.split_whitespace().skip(1).collect();
            let run = taglock(&args);
            assert_eq!(run.code, 0, "{line}: {}", run.stderr);
            ran += 1;
        }
    }
    assert!(ran >= 8, "{ran} examples ran");
}

/// The CLI decides with the component by default; `--engine native` must print
/// exactly the same bytes, for every example and every subcommand.
#[test]
fn the_wasm_and_native_engines_print_identical_output() {
    let both = |args: &[&str]| {
        let mut wasm = vec!["--engine", "wasm"];
        wasm.extend_from_slice(args);
        let mut native = vec!["--engine", "native"];
        native.extend_from_slice(args);
        let (wasm, native) = (taglock(&wasm), taglock(&native));
        assert_eq!(wasm.code, native.code, "{args:?}: {}", wasm.stderr);
        assert_eq!(wasm.stdout, native.stdout, "{args:?}");
        assert_eq!(wasm.stderr, native.stderr, "{args:?}");
        wasm
    };
    for (policy, request) in example_requests() {
        let run = both(&["eval", &policy, &request]);
        assert_eq!(run.code, 0, "{policy} {request}: {}", run.stderr);
    }
    for policy in example_policies() {
        both(&["check", &policy]);
        both(&["check", "--json", &policy]);
        for json in [true, false] {
            let mut args = vec!["test", policy.as_str(), "--image", "team-a/web"];
            if json {
                args.push("--json");
            }
            args.extend([
                "v1.2.3", "prod", "preprod", "latest", "rc", "dev-1", "bad tag",
            ]);
            both(&args);
        }
    }
    let invalid = scratch("engines-invalid.json", INVALID_POLICY);
    assert_eq!(both(&["check", &invalid]).code, 1);
}

#[test]
fn the_default_engine_is_the_component() {
    let help = taglock(&["--help"]);
    assert!(help.stdout.contains("--engine"), "{}", help.stdout);
    let bogus = taglock(&["--engine", "bogus", "check", "examples/ecr.json"]);
    assert_eq!(bogus.code, 2, "{}", bogus.stderr);
    assert!(bogus.stderr.contains("wasm"), "{}", bogus.stderr);
}

#[test]
fn concurrent_users_adds_keep_every_entry() {
    let users = Path::new(env!("CARGO_TARGET_TMPDIR")).join("concurrent-users.json");
    let _ = std::fs::remove_file(&users);
    let users = users.to_str().unwrap().to_owned();
    let names: Vec<String> = (0..16).map(|i| format!("user-{i:02}")).collect();
    std::thread::scope(|scope| {
        for name in &names {
            let users = &users;
            scope.spawn(move || {
                let run = taglock_with_stdin(
                    &[
                        "users",
                        "add",
                        users,
                        name,
                        "--password-stdin",
                        "--cost",
                        "4",
                    ],
                    Some("secret\n"),
                );
                assert_eq!(run.code, 0, "{name}: {}", run.stderr);
            });
        }
    });
    let list = taglock(&["users", "list", &users]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    let mut listed: Vec<&str> = list
        .stdout
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    listed.sort_unstable();
    assert_eq!(listed, names, "{}", list.stdout);
}
