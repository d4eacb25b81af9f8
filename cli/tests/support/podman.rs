//! podman and buildah, two more real clients built on containers/image (like
//! skopeo), without a daemon: each [`Storage`] is a private vfs image storage in a
//! temporary directory; an OCI layout is pulled into it (`podman pull oci:…`) and
//! pushed from there over plain HTTP to a registry on 127.0.0.1.

use super::oci::Image;
use super::process::{Output, run};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(120);

/// Which client pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Podman,
    Buildah,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Podman => "podman",
            Tool::Buildah => "buildah",
        }
    }
}

/// A private image storage (vfs driver, no daemon, no overlay mounts) and the OCI
/// layouts loaded into it, in one temporary directory deleted on drop.
pub struct Storage {
    dir: tempfile::TempDir,
}

static SERIAL: AtomicU64 = AtomicU64::new(0);

impl Storage {
    pub fn new() -> Storage {
        // podman names an image pulled from `oci:DIR` after DIR, and an image name
        // must be lowercase: the directory's name is made of lowercase and digits.
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
        let dir = tempfile::Builder::new()
            .prefix(&format!("taglock-podman-{}-{serial}", std::process::id()))
            .rand_bytes(0)
            .tempdir()
            .unwrap();
        Storage { dir }
    }

    /// `TOOL --root … --runroot … --storage-driver vfs`, with no proxy between it
    /// and 127.0.0.1.
    fn command(&self, tool: Tool) -> Command {
        super::require_tool(tool.name());
        let mut command = Command::new(tool.name());
        command
            .arg("--root")
            .arg(self.dir.path().join("root"))
            .arg("--runroot")
            .arg(self.dir.path().join("run"))
            .args(["--storage-driver", "vfs"])
            .env("TMPDIR", self.dir.path())
            .env_remove("http_proxy")
            .env_remove("HTTP_PROXY")
            .env_remove("https_proxy")
            .env_remove("HTTPS_PROXY");
        command
    }

    /// Writes `image` as an OCI layout and pulls it into this storage (`podman pull
    /// oci:LAYOUT:latest`); returns the local image id. Fails the test when the
    /// pull fails.
    pub fn load(&self, image: &Image) -> String {
        let layout: PathBuf = self
            .dir
            .path()
            .join(format!("layout-{}", &image.manifest.digest[7..23]));
        image.write_layout(&layout, "latest");
        let mut command = self.command(Tool::Podman);
        command
            .args(["pull", "--quiet"])
            .arg(format!("oci:{}:latest", layout.display()));
        let output = run(command, None, TIMEOUT);
        assert!(
            output.success(),
            "podman pull of {}: {output}",
            layout.display()
        );
        output.stdout.trim().to_owned()
    }

    /// `TOOL push --tls-verify=false [--creds U:P] --digestfile FILE ID docker://DEST`
    /// where `dest` is `HOST:PORT/IMAGE:TAG`; returns how it ended and the pushed
    /// manifest's digest (podman and buildah compress the layer, so it is not the
    /// layout's).
    pub fn push(
        &self,
        tool: Tool,
        id: &str,
        dest: &str,
        creds: Option<(&str, &str)>,
    ) -> (Output, Option<String>) {
        let digest_file = self.dir.path().join("digest");
        let _ = std::fs::remove_file(&digest_file);
        let mut command = self.command(tool);
        command
            .args(["push", "--tls-verify=false"])
            .arg("--digestfile")
            .arg(&digest_file);
        if tool == Tool::Podman {
            command.arg("--quiet");
        }
        if let Some((user, password)) = creds {
            command.arg(format!("--creds={user}:{password}"));
        }
        command.arg(id).arg(format!("docker://{dest}"));
        let output = run(command, None, TIMEOUT);
        let digest = std::fs::read_to_string(&digest_file)
            .ok()
            .map(|d| d.trim().to_owned());
        (output, digest)
    }
}

impl Default for Storage {
    fn default() -> Self {
        Storage::new()
    }
}
