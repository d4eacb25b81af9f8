//! The precompiled-artifact cache: native code compiled from the component,
//! stored so the next process skips Cranelift.
//!
//! Loading native code is `unsafe` (`Component::deserialize` trusts its input), so
//! this cache only loads files it wrote:
//! - the file name is the key: the component's sha256 and a sha256 of wasmtime's
//!   engine compatibility hash (version, target and every codegen setting);
//! - the file starts with a header repeating both keys and the sha256 of the
//!   native payload, checked before anything is deserialized (a foreign, truncated
//!   or corrupted file is ignored and replaced);
//! - the directory is created `0700` and must not be writable by group or others;
//!   files are written `0600` through a temporary file and an atomic rename.
//!
//! Anyone who can write files as the host's own user can already run code as it;
//! the checks above keep out everyone else, stale artifacts and torn writes.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

const MAGIC: &[u8; 16] = b"taglock-cwasm-v1";
const HEADER_LEN: usize = MAGIC.len() + 32 * 3;

/// What happened with the cache when a component was prepared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// No cache directory was configured: compiled in memory.
    Disabled,
    /// A valid artifact was found and loaded; nothing was compiled.
    Hit,
    /// No valid artifact: compiled, and the artifact written for next time.
    Written,
    /// No valid artifact, and it could not be written (the component still works).
    WriteFailed,
    /// The directory is unusable (e.g. writable by others): compiled, cache unused.
    Unusable,
}

/// Feeds wasmtime's compatibility hash into sha256, so the key is stable across
/// processes and Rust versions (unlike `DefaultHasher`).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// A sha256 of everything that decides whether native code fits this engine.
pub(crate) fn engine_key(engine: &Engine) -> [u8; 32] {
    let mut hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.finalize().into()
}

/// The artifact path for a component digest (hex) in `dir`.
pub(crate) fn artifact_path(dir: &Path, component_sha256: &str, engine: &[u8; 32]) -> PathBuf {
    let engine_hex = hex::encode(engine);
    dir.join(format!(
        "{component_sha256}-{}.cwasm",
        engine_hex.get(..16).unwrap_or(&engine_hex)
    ))
}

/// Loads the cached artifact for `component_sha256`, or compiles `bytes` and
/// writes the artifact.
pub(crate) fn load_or_compile(
    engine: &Engine,
    dir: &Path,
    component_sha256: &str,
    bytes: &[u8],
) -> Result<(Component, CacheOutcome), wasmtime::Error> {
    if !prepare_dir(dir) {
        return Ok((Component::new(engine, bytes)?, CacheOutcome::Unusable));
    }
    let key = engine_key(engine);
    let path = artifact_path(dir, component_sha256, &key);
    if let Some(payload) = read_verified(&path, component_sha256, &key) {
        // SAFETY: `payload` is native code this cache wrote with `precompile_component`
        // for this component digest and this engine configuration: the header keys and
        // the payload's sha256 were checked above, and the directory and file are
        // not writable by other users (see the module documentation).
        #[allow(unsafe_code)]
        let loaded = unsafe { Component::deserialize(engine, payload) };
        if let Ok(component) = loaded {
            return Ok((component, CacheOutcome::Hit));
        }
    }
    let native = engine.precompile_component(bytes)?;
    let outcome = match write_artifact(&path, component_sha256, &key, &native) {
        Ok(()) => CacheOutcome::Written,
        Err(_) => CacheOutcome::WriteFailed,
    };
    // SAFETY: `native` was produced just now by this engine's `precompile_component`.
    #[allow(unsafe_code)]
    let component = unsafe { Component::deserialize(engine, &native)? };
    Ok((component, outcome))
}

/// Creates the directory `0700` if needed; refuses one others may write to.
fn prepare_dir(dir: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .is_err()
        {
            return false;
        }
        match std::fs::metadata(dir) {
            Ok(meta) => meta.is_dir() && meta.permissions().mode() & 0o022 == 0,
            Err(_) => false,
        }
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir).is_ok()
    }
}

/// The payload of a valid artifact, or `None` for anything else.
fn read_verified(path: &Path, component_sha256: &str, engine: &[u8; 32]) -> Option<Vec<u8>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::symlink_metadata(path).ok()?;
        if !meta.is_file() || meta.permissions().mode() & 0o022 != 0 {
            return None;
        }
    }
    let mut data = std::fs::read(path).ok()?;
    let header = data.get(..HEADER_LEN)?;
    let (magic, rest) = header.split_at(MAGIC.len());
    let (component, rest) = rest.split_at(32);
    let (engine_key, payload_sha) = rest.split_at(32);
    if magic != MAGIC.as_slice()
        || hex::encode(component) != component_sha256
        || engine_key != engine.as_slice()
    {
        return None;
    }
    let payload = data.get(HEADER_LEN..)?;
    if Sha256::digest(payload).as_slice() != payload_sha {
        return None;
    }
    data.drain(..HEADER_LEN);
    Some(data)
}

fn write_artifact(
    path: &Path,
    component_sha256: &str,
    engine: &[u8; 32],
    native: &[u8],
) -> std::io::Result<()> {
    let component = hex_bytes(component_sha256)
        .ok_or_else(|| std::io::Error::other("component digest is not hex"))?;
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("artifact path has no directory"))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("artifact"),
        std::process::id()
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let result = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(MAGIC)?;
        file.write_all(&component)?;
        file.write_all(engine)?;
        file.write_all(&Sha256::digest(native))?;
        file.write_all(native)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn hex_bytes(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}
