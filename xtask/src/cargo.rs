//! Running cargo for the WebAssembly builds: one way to compile a library for
//! `wasm32-unknown-unknown`, shared by the component, the web build (both
//! `policy-wasm`) and the Envoy filter (`envoy-filter`).

use anyhow::{Context, Result, bail};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Rust target of every wasm artifact: no WASI, no imports.
pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// The cargo profile of every wasm artifact (root `Cargo.toml`).
pub const WASM_PROFILE: &str = "wasm-release";

/// The package the component and the web build come from, and its library's file stem.
const PACKAGE: &str = "taglock-policy-wasm";
const LIB_NAME: &str = "policy_wasm";

/// The package of the Envoy filter, and its library's file stem.
const FILTER_PACKAGE: &str = "taglock-envoy";
const FILTER_LIB_NAME: &str = "taglock_envoy";

/// Compiles `policy-wasm` with exactly `features` (no default features) to a
/// core wasm module and returns the path cargo wrote it to. `opt_level`, when
/// given, replaces the profile's for `policy-wasm`, the crate whose whole-program
/// (LTO) code generation makes the module.
///
/// `--locked`, and with the source paths remapped: panic locations name
/// `/taglock/…` and `/crates/<crate>-<version>/…` wherever the checkout and the
/// cargo home are, so the bytes are reproducible (and the paths short: each one is
/// a string in the module). `strip` is the profile's unless `keep_sections` asks to
/// keep the custom sections (wasm-bindgen reads `target_features` from them).
pub fn build_wasm_lib(
    root: &Path,
    target_dir: &Path,
    features: &str,
    keep_sections: bool,
    opt_level: Option<&str>,
) -> Result<PathBuf> {
    build(
        root,
        target_dir,
        PACKAGE,
        LIB_NAME,
        Some(features),
        keep_sections,
        opt_level,
    )
}

/// Compiles the Envoy filter (`envoy-filter`, its default features) to a core
/// wasm module and returns the path cargo wrote it to.
pub fn build_filter(root: &Path, target_dir: &Path) -> Result<PathBuf> {
    build(
        root,
        target_dir,
        FILTER_PACKAGE,
        FILTER_LIB_NAME,
        None,
        false,
        None,
    )
}

fn build(
    root: &Path,
    target_dir: &Path,
    package: &str,
    lib_name: &str,
    features: Option<&str>,
    keep_sections: bool,
    opt_level: Option<&str>,
) -> Result<PathBuf> {
    ensure_target()?;
    let mut command = Command::new(cargo());
    command
        .current_dir(root)
        .args(["build", "--locked", "--package", package, "--lib"]);
    if let Some(features) = features {
        command.args(["--no-default-features", "--features", features]);
    }
    command
        .args(["--target", WASM_TARGET, "--profile", WASM_PROFILE])
        .env("CARGO_TARGET_DIR", target_dir)
        .env("CARGO_ENCODED_RUSTFLAGS", rustflags(root).join("\x1f"))
        .env_remove("RUSTFLAGS");
    if keep_sections {
        command.args(["--config", &format!("profile.{WASM_PROFILE}.strip=false")]);
    }
    if let Some(level) = opt_level {
        command.args([
            "--config",
            &format!("profile.{WASM_PROFILE}.package.{package}.opt-level={level}"),
        ]);
    }
    let status = command.status().context("cannot run cargo")?;
    if !status.success() {
        bail!(
            "building {package} (features {}) for {WASM_TARGET} failed",
            features.unwrap_or("default")
        );
    }
    Ok(target_dir
        .join(WASM_TARGET)
        .join(WASM_PROFILE)
        .join(format!("{lib_name}.wasm")))
}

/// The flags of every wasm build: WebAssembly SIMD ([`crate::opt`] says why),
/// the path remapping, then `TAGLOCK_WASM_RUSTFLAGS`.
fn rustflags(root: &Path) -> Vec<String> {
    let mut flags = vec![
        "-Ctarget-feature=+simd128".to_owned(),
        format!("--remap-path-prefix={}=/taglock", root.display()),
    ];
    // Crates from a registry sit in `<cargo home>/registry/src/<index>-<hash>/`.
    let registries = cargo_home().join("registry").join("src");
    let mut indexes: Vec<PathBuf> = std::fs::read_dir(&registries)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    indexes.sort();
    flags.extend(
        indexes
            .iter()
            .map(|index| format!("--remap-path-prefix={}=/crates", index.display())),
    );
    if let Some(extra) = std::env::var_os("TAGLOCK_WASM_RUSTFLAGS") {
        flags.extend(
            extra
                .to_string_lossy()
                .split_whitespace()
                .map(str::to_owned),
        );
    }
    flags
}

/// Adds the wasm target's standard library when rustup manages the toolchain and
/// it is missing.
fn ensure_target() -> Result<()> {
    let output = Command::new("rustc")
        .args(["--print", "target-libdir", "--target", WASM_TARGET])
        .output()
        .context("cannot run rustc")?;
    let libdir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    if output.status.success() && libdir.is_dir() {
        return Ok(());
    }
    let status = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .status()
        .context("cannot run rustup")?;
    if !status.success() {
        bail!("`rustup target add {WASM_TARGET}` failed; run scripts/install-wasm-toolchain.sh");
    }
    Ok(())
}

/// The cargo that runs this task, so the toolchain stays the same.
pub fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// `CARGO_HOME`, else `~/.cargo`.
pub fn cargo_home() -> PathBuf {
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        return PathBuf::from(home);
    }
    std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".cargo"))
        .unwrap_or_else(|| PathBuf::from("/.cargo"))
}

/// The target directory cargo uses: `CARGO_TARGET_DIR`, else `cargo metadata`'s.
pub fn target_dir(root: &Path) -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let dir = PathBuf::from(dir);
        return Ok(if dir.is_absolute() {
            dir
        } else {
            root.join(dir)
        });
    }
    let output = Command::new(cargo())
        .current_dir(root)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .context("cannot run cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    metadata
        .get("target_directory")
        .and_then(serde_json::Value::as_str)
        .map(PathBuf::from)
        .context("cargo metadata gave no target_directory")
}
