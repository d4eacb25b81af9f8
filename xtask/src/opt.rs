//! The size pass every wasm artifact goes through: binaryen's `wasm-opt -Oz`.
//!
//! It removes ~15 % of what rustc and LLVM leave (duplicate functions, dead
//! stores, locals, block structure), without changing behaviour; `--converge`
//! repeats the passes while they still shrink the module. The output
//! depends on the binaryen version as much as on the input, so the version is
//! pinned: [`WASM_OPT_VERSION`] is the one `scripts/install-wasm-toolchain.sh`
//! installs (Debian 12's `binaryen` package); other versions on `PATH` are passed
//! over, and with none at that version the build fails rather than silently
//! producing other bytes than the committed component.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The binaryen release whose `wasm-opt` the artifacts are built with.
pub const WASM_OPT_VERSION: &str = "108";

/// The WebAssembly features the artifacts are built with (the stripped module
/// carries no `target_features` section to detect them from): those rustc
/// enables by default for `wasm32-unknown-unknown`, and SIMD (`simd128`, which
/// the cargo builds turn on). Every runtime taglock runs on has SIMD (wasmtime;
/// V8 in Envoy, Node and Chromium), and with it each artifact is 5–7 KB smaller
/// (wider loads and stores for copies and comparisons) at the same speed.
/// `wasm-opt` uses no feature outside this list.
const FEATURES: &[&str] = &[
    "--enable-bulk-memory",
    "--enable-mutable-globals",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-multivalue",
    "--enable-reference-types",
    "--enable-simd",
];

/// Lets binaryen fold a constant added to an address into the load's or store's
/// offset (~1 % of the module: 4 KB of the component). Sound for these modules:
/// the fold differs only when the addition wraps around 2^32, which no Rust
/// pointer arithmetic does (objects never straddle the end of the address space);
/// and the low 1 KiB the flag names holds no data: rustc's linker puts the 1 MiB
/// stack first (the modules' stack pointer starts at 1 MiB, their data above it),
/// so those addresses are only the last 1 KiB of a stack about to overflow.
const LOW_MEMORY_UNUSED: &str = "--low-memory-unused";

/// Optimises `input` for size into `output` (they may be the same file).
/// Custom sections, among them the component-type section wit-bindgen embeds,
/// are kept.
pub fn optimize(input: &Path, output: &Path) -> Result<()> {
    let wasm_opt = find_wasm_opt()?;
    let status = Command::new(&wasm_opt)
        .args(["-Oz", "--converge"])
        .args(FEATURES)
        .arg(LOW_MEMORY_UNUSED)
        .arg(input)
        .arg("-o")
        .arg(output)
        .status()
        .with_context(|| format!("cannot run {}", wasm_opt.display()))?;
    if !status.success() {
        bail!(
            "`wasm-opt -Oz --converge {}` failed ({status})",
            input.display()
        );
    }
    Ok(())
}

/// The first `wasm-opt` on `PATH` that is binaryen [`WASM_OPT_VERSION`]; others are
/// skipped (npm puts binaryen's own, newer `wasm-opt` first when `npm test` runs
/// the build), and none at that version is an error.
fn find_wasm_opt() -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut found = Vec::new();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join("wasm-opt");
        if !candidate.is_file() {
            continue;
        }
        match version(&candidate) {
            Some(version) if version == WASM_OPT_VERSION => return Ok(candidate),
            Some(version) => found.push(format!("{} (binaryen {version})", candidate.display())),
            None => found.push(format!("{} (no version)", candidate.display())),
        }
    }
    if found.is_empty() {
        bail!(
            "wasm-opt (binaryen {WASM_OPT_VERSION}) is not installed; run scripts/install-wasm-toolchain.sh"
        );
    }
    bail!(
        "no wasm-opt of binaryen {WASM_OPT_VERSION} on PATH (another version gives other bytes); \
         found {}; run scripts/install-wasm-toolchain.sh",
        found.join(", ")
    )
}

/// `wasm-opt version 108` (Debian) or `wasm-opt version 108 (version_108)` → `108`.
fn version(program: &Path) -> Option<String> {
    let output = Command::new(program).arg("--version").output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.split_whitespace().nth(2).map(str::to_owned)
}
