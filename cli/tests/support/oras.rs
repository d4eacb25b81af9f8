//! oras-py (PyPI's `oras`, installed by scripts/install-clients.sh into
//! `target/oras/` or `$TAGLOCK_ORAS_DIR`), a real ORAS client, driven through the
//! small script `oras_client.py` beside this file with Debian's Python: artifact
//! push (with a `subject`, annotations, and chunked uploads) and pull.

use super::process::{Output, run};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(120);

/// Where oras-py is installed: `$TAGLOCK_ORAS_DIR`, else `target/oras/`.
fn dir() -> PathBuf {
    let dir = std::env::var_os("TAGLOCK_ORAS_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/oras"),
        PathBuf::from,
    );
    assert!(
        dir.join("oras").join("client.py").is_file(),
        "oras-py is not installed at {}: run scripts/install-clients.sh (or scripts/setup.sh) first",
        dir.display()
    );
    dir
}

/// Debian's Python, which sees python3-requests and python3-jsonschema.
const PYTHON: &str = "/usr/bin/python3";

fn oras() -> Command {
    super::require_tool(PYTHON);
    let mut command = Command::new(PYTHON);
    command
        .env("PYTHONPATH", dir())
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("https_proxy")
        .env_remove("HTTPS_PROXY")
        .env("NO_PROXY", "127.0.0.1")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/oras_client.py"));
    command
}

/// What [`push`] sends besides the file.
#[derive(Default)]
pub struct Push<'a> {
    /// The artifact type (the config's media type).
    pub artifact_type: Option<&'a str>,
    /// The manifest the artifact refers to: digest, size, media type.
    pub subject: Option<(&'a str, usize, &'a str)>,
    /// Manifest annotations.
    pub annotations: &'a [(&'a str, &'a str)],
    /// Upload the file in PATCH chunks of this many bytes (Content-Range).
    pub chunk_size: Option<usize>,
}

/// Pushes `file` as an artifact of one layer of `media_type` to `target`
/// (`HOST:PORT/IMAGE:TAG`); on success stdout holds the manifest's digest.
pub fn push(target: &str, file: &Path, media_type: &str, options: &Push<'_>) -> Output {
    let mut command = oras();
    command.arg("push").arg(target).arg(file).arg(media_type);
    if let Some(artifact_type) = options.artifact_type {
        command.args(["--artifact-type", artifact_type]);
    }
    if let Some((digest, size, media_type)) = options.subject {
        command
            .arg("--subject")
            .arg(digest)
            .arg(size.to_string())
            .arg(media_type);
    }
    for (key, value) in options.annotations {
        command.arg("--annotation").arg(format!("{key}={value}"));
    }
    if let Some(size) = options.chunk_size {
        command.arg("--chunk-size").arg(size.to_string());
    }
    run(command, None, TIMEOUT)
}

/// Pulls the artifact at `target` into `outdir`; on success stdout lists the files.
pub fn pull(target: &str, outdir: &Path) -> Output {
    let mut command = oras();
    command.arg("pull").arg(target).arg(outdir);
    run(command, None, TIMEOUT)
}
