//! The web build: `policy-wasm` with its `web` feature, for `wasm32-unknown-unknown`,
//! through `wasm-bindgen --target web`, into `host-js/pkg/` (the JS package and the
//! browser pattern tester load it from there).
//!
//! `wasm-bindgen`'s CLI must be exactly the version of the `wasm-bindgen` crate in
//! `Cargo.lock` (the two share a private ABI), so the build installs that version
//! when the one on `PATH` differs.

use anyhow::{Context, Result, bail};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The base name of the files wasm-bindgen writes (`taglock_policy.js`, `taglock_policy_bg.wasm`).
const OUT_NAME: &str = "taglock_policy";
/// The size budget of the web build's `.wasm` (issue: at most 300 KB).
pub const WASM_BUDGET_BYTES: u64 = 300 * 1024;

/// Builds the web flavour of `policy-wasm` in `target_dir`, writes wasm-bindgen's
/// output to `out_dir`, copies it into `host-js/pkg/`, and returns the files in
/// `out_dir`. Warns when the `.wasm` exceeds [`WASM_BUDGET_BYTES`].
pub fn build(workspace_root: &Path, target_dir: &Path, out_dir: &Path) -> Result<Vec<PathBuf>> {
    let wasm_bindgen = ensure_wasm_bindgen(workspace_root)?;
    // Unstripped, so wasm-bindgen sees the `target_features` section (reference
    // types, multi-value); wasm-bindgen then drops the name and producers sections.
    let raw = crate::cargo::build_wasm_lib(workspace_root, target_dir, "web", true, None)?;

    // `out_dir` may hold other builds' artifacts: only this build's files are replaced.
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let artifacts = [
        out_dir.join(format!("{OUT_NAME}.js")),
        out_dir.join(format!("{OUT_NAME}_bg.wasm")),
    ];
    for artifact in &artifacts {
        if artifact.exists() {
            std::fs::remove_file(artifact)
                .with_context(|| format!("cannot remove {}", artifact.display()))?;
        }
    }
    // `wasm-opt` before wasm-bindgen, not after: binaryen 108 rewrites the externref
    // table wasm-bindgen emits into a funcref table, which no JS engine accepts.
    let optimized = raw.with_extension("opt.wasm");
    crate::opt::optimize(&raw, &optimized)?;
    run(Command::new(&wasm_bindgen)
        .arg(&optimized)
        .args(["--target", "web", "--out-name", OUT_NAME])
        .args(["--weak-refs", "--no-typescript"])
        .args(["--remove-name-section", "--remove-producers-section"])
        .arg("--out-dir")
        .arg(out_dir))?;

    let wasm = out_dir.join(format!("{OUT_NAME}_bg.wasm"));
    let size = std::fs::metadata(&wasm)
        .with_context(|| format!("wasm-bindgen wrote no {}", wasm.display()))?
        .len();
    eprintln!("web build: {} is {size} bytes", wasm.display());
    if size > WASM_BUDGET_BYTES {
        // Reported, not fatal: the size is policy-core's (regex front end, serde),
        // and meeting the budget would mean replacing those crates; the decision
        // and the measured floor are in docs/benchmarks.md.
        eprintln!(
            "warning: {size} bytes is over the web build's budget of {WASM_BUDGET_BYTES} bytes"
        );
    }

    let pkg = workspace_root.join("host-js").join("pkg");
    if pkg.exists() {
        std::fs::remove_dir_all(&pkg).with_context(|| format!("cannot clear {}", pkg.display()))?;
    }
    std::fs::create_dir_all(&pkg).with_context(|| format!("cannot create {}", pkg.display()))?;
    for artifact in &artifacts {
        if let Some(name) = artifact.file_name() {
            std::fs::copy(artifact, pkg.join(name)).with_context(|| {
                format!("cannot copy {} into {}", artifact.display(), pkg.display())
            })?;
        }
    }
    Ok(artifacts.to_vec())
}

/// The `wasm-bindgen` crate version `Cargo.lock` pins.
pub fn locked_wasm_bindgen_version(workspace_root: &Path) -> Result<String> {
    let lock_path = workspace_root.join("Cargo.lock");
    let lock = std::fs::read_to_string(&lock_path)
        .with_context(|| format!("cannot read {}", lock_path.display()))?;
    let mut lines = lock.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if line != r#"name = "wasm-bindgen""# {
            continue;
        }
        let version = lines
            .next()
            .and_then(|l| l.strip_prefix("version = \""))
            .and_then(|l| l.strip_suffix('"'));
        if let Some(version) = version {
            return Ok(version.to_owned());
        }
    }
    bail!(
        "{} has no wasm-bindgen package; is policy-wasm's `web` feature declared?",
        lock_path.display()
    )
}

/// Returns a `wasm-bindgen` CLI of exactly the locked version, installing it with
/// `cargo install` when the one found is missing or another version.
fn ensure_wasm_bindgen(workspace_root: &Path) -> Result<PathBuf> {
    let wanted = locked_wasm_bindgen_version(workspace_root)?;
    let candidates = [
        PathBuf::from("wasm-bindgen"),
        cargo_bin_dir().join("wasm-bindgen"),
    ];
    for candidate in &candidates {
        if cli_version(candidate).as_deref() == Some(wanted.as_str()) {
            return Ok(candidate.clone());
        }
    }
    eprintln!("installing wasm-bindgen-cli {wanted} (the version Cargo.lock pins)");
    run(Command::new(crate::cargo::cargo()).args([
        "install",
        "wasm-bindgen-cli",
        "--version",
        &wanted,
    ]))?;
    let installed = cargo_bin_dir().join("wasm-bindgen");
    match cli_version(&installed) {
        Some(version) if version == wanted => Ok(installed),
        other => bail!(
            "after `cargo install wasm-bindgen-cli --version {wanted}`, {} reports {other:?}",
            installed.display()
        ),
    }
}

/// `wasm-bindgen 0.2.130` → `0.2.130`; `None` when the program cannot run.
fn cli_version(program: &Path) -> Option<String> {
    let output = Command::new(program).arg("--version").output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    text.split_whitespace().nth(1).map(str::to_owned)
}

/// Where `cargo install` puts binaries.
fn cargo_bin_dir() -> PathBuf {
    crate::cargo::cargo_home().join("bin")
}

fn run(command: &mut Command) -> Result<()> {
    let program = command.get_program().to_owned();
    let args: Vec<&OsStr> = command.get_args().collect();
    let described = format!("{} {}", program.to_string_lossy(), join(&args));
    let status = command
        .status()
        .with_context(|| format!("cannot run `{described}`"))?;
    if !status.success() {
        bail!("`{described}` failed ({status})");
    }
    Ok(())
}

fn join(args: &[&OsStr]) -> String {
    args.iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}
