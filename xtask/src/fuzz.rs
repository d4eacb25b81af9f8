//! `cargo xtask fuzz [--seconds N] [TARGET…]`: builds the fuzz targets of
//! `fuzz/` with libFuzzer and runs each for a bounded time, on the stable
//! toolchain.
//!
//! cargo-fuzz needs nightly (for sanitizers); coverage-guided fuzzing does not:
//! rustc's stable `-C passes=sancov-module` and `-C llvm-args=-sanitizer-coverage-*`
//! give libFuzzer its feedback. Those flags go only to taglock's own crates (the
//! code under test): this binary is itself the `RUSTC_WRAPPER` that adds them.
//! The build uses the `test` profile and the workspace's target directory, so
//! wasmtime and the other dependencies are the very artifacts `cargo test`
//! built; only taglock's crates are compiled again, instrumented and optimised,
//! and policy-core's `fuzzing` feature (enabled by the fuzz crate's `libfuzzer`
//! feature) gives them their own artifacts, apart from the ordinary ones.
//!
//! Inputs: each target's growing corpus in `<target-dir>/fuzz/corpus/<target>/`
//! (kept between runs), the committed regressions in `fuzz/regressions/<target>/`,
//! and seeds made from the conformance corpus and the examples. A failing input is
//! written to `<target-dir>/fuzz/artifacts/<target>/`; once fixed, commit it to
//! `fuzz/regressions/<target>/`, where every `cargo test` replays it.

use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable that turns this binary into the rustc wrapper.
const WRAPPER_ENV: &str = "TAGLOCK_XTASK_SANCOV_WRAPPER";

/// The crates instrumented for coverage: taglock's own.
const INSTRUMENTED: &[&str] = &[
    "policy_core",
    "taglock_gateway",
    "taglock_fuzz",
    "fuzz_policy_load",
    "fuzz_request_json",
    "fuzz_gateway",
    "fuzz_differential",
];

/// What libFuzzer needs from rustc, all stable flags.
const SANCOV_FLAGS: &[&str] = &[
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
    "-Cllvm-args=-sanitizer-coverage-trace-compares",
    "-Copt-level=2",
    "-Cdebug-assertions",
    "-Coverflow-checks",
    "--cfg=fuzzing",
];

/// The default run per target when `--seconds` is not given.
const DEFAULT_SECONDS: u64 = 30;

/// Bounds of one run: per input (a slower input is a finding), memory, input size.
const PER_INPUT_TIMEOUT_SECONDS: u64 = 10;
const RSS_LIMIT_MB: u64 = 4096;
const MAX_INPUT_BYTES: u64 = 64 * 1024;

/// When this process runs as the rustc wrapper, runs rustc (with the coverage
/// flags for an instrumented crate) and returns its exit code.
pub fn as_wrapper() -> Option<i32> {
    std::env::var_os(WRAPPER_ENV)?;
    let mut args = std::env::args_os().skip(1);
    let rustc = args.next()?;
    let args: Vec<OsString> = args.collect();
    let crate_name = args
        .iter()
        .position(|arg| arg == "--crate-name")
        .and_then(|at| args.get(at + 1))
        .map(|name| name.to_string_lossy().into_owned());
    let mut command = Command::new(rustc);
    command.args(&args);
    if crate_name.is_some_and(|name| INSTRUMENTED.contains(&name.as_str())) {
        command.args(SANCOV_FLAGS);
    }
    Some(match command.status() {
        Ok(status) => status.code().unwrap_or(1),
        Err(err) => {
            eprintln!("xtask: cannot run rustc: {err}");
            1
        }
    })
}

/// `cargo xtask fuzz`.
pub fn run(root: &Path, target_dir: &Path, args: &[String]) -> Result<()> {
    let mut seconds = DEFAULT_SECONDS;
    let mut targets: Vec<String> = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                let value = args.next().context("--seconds needs a number")?;
                seconds = value
                    .parse()
                    .with_context(|| format!("--seconds: `{value}` is not a number"))?;
            }
            name if !name.starts_with('-') => targets.push(name.to_owned()),
            other => {
                bail!("unknown option `{other}` for fuzz (expected `--seconds N` or target names)")
            }
        }
    }
    let known = known_targets(root)?;
    if targets.is_empty() {
        targets = known.clone();
    }
    for target in &targets {
        if !known.contains(target) {
            bail!("no fuzz target `{target}` (known: {})", known.join(", "));
        }
    }

    let fuzz_dir = target_dir.join("fuzz");
    build(root, target_dir)?;
    let seeds = fuzz_dir.join("seeds");
    write_seeds(root, &seeds)?;
    let mut failed = Vec::new();
    for target in &targets {
        println!("==> fuzz {target} for {seconds} s");
        let binary = target_dir.join("debug").join(format!("fuzz_{target}"));
        if !fuzz(root, &binary, &fuzz_dir, &seeds, target, seconds)? {
            failed.push(target.clone());
        }
    }
    if !failed.is_empty() {
        bail!(
            "fuzzing found failing inputs for {} (in {}); fix them, then commit each to fuzz/regressions/<target>/",
            failed.join(", "),
            fuzz_dir.join("artifacts").display()
        );
    }
    Ok(())
}

/// The targets, one directory each under `fuzz/regressions/`.
fn known_targets(root: &Path) -> Result<Vec<String>> {
    let dir = root.join("fuzz").join("regressions");
    let mut names = Vec::new();
    for entry in
        std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?
    {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Builds every target binary (`fuzz_<target>`) into `<target-dir>/debug/`.
fn build(root: &Path, target_dir: &Path) -> Result<()> {
    let wrapper = std::env::current_exe().context("cannot find the xtask binary")?;
    let status = Command::new(super::cargo::cargo())
        .current_dir(root)
        .args(["build", "--locked", "--profile", "test"])
        .args(["--package", "taglock-fuzz"])
        .args(["--features", "libfuzzer", "--bins"])
        .env("CARGO_TARGET_DIR", target_dir)
        .env("RUSTC_WRAPPER", &wrapper)
        .env(WRAPPER_ENV, "1")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("building the fuzz targets failed");
    }
    Ok(())
}

/// Runs one target; `false` when libFuzzer found a failing input.
fn fuzz(
    root: &Path,
    binary: &Path,
    fuzz_dir: &Path,
    seeds: &Path,
    target: &str,
    seconds: u64,
) -> Result<bool> {
    let corpus = fuzz_dir.join("corpus").join(target);
    let artifacts = fuzz_dir.join("artifacts").join(target);
    std::fs::create_dir_all(&corpus)?;
    std::fs::create_dir_all(&artifacts)?;
    let mut command = Command::new(binary);
    command
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-timeout={PER_INPUT_TIMEOUT_SECONDS}"))
        .arg(format!("-rss_limit_mb={RSS_LIMIT_MB}"))
        .arg(format!("-max_len={MAX_INPUT_BYTES}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg("-print_final_stats=1")
        .arg(&corpus)
        .arg(root.join("fuzz").join("regressions").join(target));
    let target_seeds = seeds.join(target);
    if target_seeds.is_dir() {
        command.arg(target_seeds);
    }
    let status = command
        .status()
        .with_context(|| format!("cannot run the fuzz target {target}"))?;
    Ok(status.success())
}

/// Seeds from what the repository already holds: the conformance corpus's
/// policies and requests, and the examples.
fn write_seeds(root: &Path, seeds: &Path) -> Result<()> {
    let mut policies: Vec<String> = Vec::new();
    for dir in [
        root.join("tests/conformance/policies"),
        root.join("examples"),
    ] {
        for path in json_files(&dir)? {
            policies.push(std::fs::read_to_string(&path)?);
        }
    }
    let mut requests: Vec<String> = Vec::new();
    for path in json_files(&root.join("tests/conformance/cases"))? {
        let cases: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        for case in cases
            .get("cases")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(request) = case.get("request") {
                requests.push(request.to_string());
            }
            if let Some(policy) = case.get("policy").filter(|p| p.is_object()) {
                policies.push(policy.to_string());
            }
        }
    }
    let write = |target: &str, items: &mut dyn Iterator<Item = Vec<u8>>| -> Result<()> {
        let dir = seeds.join(target);
        std::fs::create_dir_all(&dir)?;
        for (n, item) in items.enumerate() {
            std::fs::write(dir.join(format!("seed-{n:05}")), item)?;
        }
        Ok(())
    };
    write(
        "policy_load",
        &mut policies.iter().map(|p| p.clone().into_bytes()),
    )?;
    write(
        "request_json",
        &mut requests.iter().map(|r| r.clone().into_bytes()),
    )?;
    write(
        "differential",
        &mut policies.iter().zip(requests.iter().cycle()).map(|(p, r)| {
            let mut bytes = p.clone().into_bytes();
            bytes.push(0);
            bytes.extend_from_slice(r.as_bytes());
            bytes
        }),
    )?;
    Ok(())
}

/// The `.json` files of `dir`, sorted.
fn json_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
