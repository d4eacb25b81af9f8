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

/// How skopeo proves who it is to the registry it talks to.
#[derive(Debug, Clone, Copy)]
pub enum Login<'a> {
    /// No credentials.
    Anonymous,
    /// HTTP Basic: user name and password.
    Basic(&'a str, &'a str),
    /// A bearer token sent as is (`--registry-token`).
    Token(&'a str),
}

impl Login<'_> {
    /// skopeo's flags for it; `side` is `dest-` for a copy's destination, `` otherwise.
    fn flags(self, side: &str) -> Vec<String> {
        match self {
            Login::Anonymous => vec![format!("--{side}no-creds")],
            Login::Basic(user, password) => vec![format!("--{side}creds={user}:{password}")],
            Login::Token(token) => vec![format!("--{side}registry-token={token}")],
        }
    }
}

impl<'a> From<Creds<'a>> for Login<'a> {
    fn from(creds: Creds<'a>) -> Login<'a> {
        match creds {
            Some((user, password)) => Login::Basic(user, password),
            None => Login::Anonymous,
        }
    }
}

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

/// `skopeo copy --preserve-digests oci:LAYOUT:REFERENCE docker://DEST` where
/// `dest` is `HOST:PORT/IMAGE:TAG`: pushes the layout's image unchanged, so the
/// registry stores the manifest digest the layout holds.
pub fn copy<'a>(layout: &Path, reference: &str, dest: &str, login: impl Into<Login<'a>>) -> Output {
    let mut command = skopeo();
    command
        .args([
            "copy",
            "--quiet",
            "--preserve-digests",
            "--dest-tls-verify=false",
        ])
        .args(login.into().flags("dest-"))
        .arg(format!("oci:{}:{reference}", layout.display()))
        .arg(format!("docker://{dest}"));
    run(command, None, TIMEOUT)
}

/// `skopeo copy --all [--preserve-digests] oci:LAYOUT:REFERENCE docker://DEST`:
/// pushes an image index of the layout with every platform image it lists. With
/// `preserve_digests` the index goes unchanged; without, skopeo may convert it
/// to a Docker manifest list when the registry refuses the OCI index (it takes
/// any refusal of a list for a format problem and tries the other format).
pub fn copy_all<'a>(
    layout: &Path,
    reference: &str,
    dest: &str,
    login: impl Into<Login<'a>>,
    preserve_digests: bool,
) -> Output {
    let mut command = skopeo();
    command.args(["copy", "--quiet", "--all", "--dest-tls-verify=false"]);
    if preserve_digests {
        command.arg("--preserve-digests");
    }
    command
        .args(login.into().flags("dest-"))
        .arg(format!("oci:{}:{reference}", layout.display()))
        .arg(format!("docker://{dest}"));
    run(command, None, TIMEOUT)
}

/// `skopeo inspect --raw docker://REF`'s manifest digest, through `reference`
/// (`HOST:PORT/IMAGE:TAG`); the output's stdout holds the digest on success.
pub fn inspect_digest<'a>(reference: &str, login: impl Into<Login<'a>>) -> Output {
    let mut command = skopeo();
    command
        .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
        .args(login.into().flags(""))
        .arg(format!("docker://{reference}"));
    run(command, None, TIMEOUT)
}

/// `skopeo delete docker://HOST:PORT/IMAGE@DIGEST`.
pub fn delete<'a>(reference: &str, login: impl Into<Login<'a>>) -> Output {
    let mut command = skopeo();
    command
        .args(["delete", "--tls-verify=false"])
        .args(login.into().flags(""))
        .arg(format!("docker://{reference}"));
    run(command, None, TIMEOUT)
}
