//! skopeo, the real OCI client, against a registry on 127.0.0.1 over plain HTTP.
//! Each call returns how skopeo ended and what it printed, so a test can read the
//! denial sentence the developer would see at the terminal.

use super::process::{Output, run};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(120);

/// User name and password.
pub type Creds<'a> = Option<(&'a str, &'a str)>;

fn skopeo() -> Command {
    super::require_tool("skopeo");
    let mut command = Command::new("skopeo");
    // No signature policy file is needed for loopback test registries, and no
    // proxy may stand between skopeo and 127.0.0.1.
    command
        .arg("--insecure-policy")
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("https_proxy")
        .env_remove("HTTPS_PROXY");
    command
}

fn creds(flag: &str, creds: Creds<'_>) -> Vec<String> {
    match creds {
        Some((user, password)) => vec![format!("{flag}={user}:{password}")],
        None => vec![flag.replace("creds", "no-creds")],
    }
}

/// `skopeo copy --preserve-digests oci:LAYOUT:REFERENCE docker://DEST` where
/// `dest` is `HOST:PORT/IMAGE:TAG`: pushes the layout's image unchanged, so the
/// registry stores the manifest digest the layout holds.
pub fn copy(layout: &Path, reference: &str, dest: &str, login: Creds<'_>) -> Output {
    let mut command = skopeo();
    command
        .args([
            "copy",
            "--quiet",
            "--preserve-digests",
            "--dest-tls-verify=false",
        ])
        .args(creds("--dest-creds", login))
        .arg(format!("oci:{}:{reference}", layout.display()))
        .arg(format!("docker://{dest}"));
    run(command, None, TIMEOUT)
}

/// `skopeo inspect --raw docker://REF`'s manifest digest, through `reference`
/// (`HOST:PORT/IMAGE:TAG`); the output's stdout holds the digest on success.
pub fn inspect_digest(reference: &str, login: Creds<'_>) -> Output {
    let mut command = skopeo();
    command
        .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
        .args(creds("--creds", login))
        .arg(format!("docker://{reference}"));
    run(command, None, TIMEOUT)
}

/// `skopeo delete docker://HOST:PORT/IMAGE@DIGEST`.
pub fn delete(reference: &str, login: Creds<'_>) -> Output {
    let mut command = skopeo();
    command
        .args(["delete", "--tls-verify=false"])
        .args(creds("--creds", login))
        .arg(format!("docker://{reference}"));
    run(command, None, TIMEOUT)
}
