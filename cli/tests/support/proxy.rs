//! `taglock serve` as a child process in front of an upstream registry, and the
//! files it reads (policy, users) written into a temporary directory.

use super::http::Client;
use super::process::{Guard, Output, run};
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The `taglock` binary cargo built for these tests.
pub const TAGLOCK: &str = env!("CARGO_BIN_EXE_taglock");

/// How long `taglock serve` may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A temporary directory for a test's policy, users file and audit log.
pub struct Workdir {
    dir: tempfile::TempDir,
}

impl Workdir {
    pub fn new() -> Workdir {
        Workdir {
            dir: tempfile::Builder::new()
                .prefix("taglock-serve-")
                .tempdir()
                .unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `policy` as `name` and returns its path.
    pub fn write_json(&self, name: &str, value: &serde_json::Value) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
        path
    }

    /// `taglock users add USERS NAME --password-stdin --cost 4 EXTRA...`: adds a
    /// user (bcrypt cost 4 keeps tests fast) to the users file, creating it.
    pub fn add_user(&self, users: &Path, name: &str, password: &str, extra: &[&str]) {
        let mut command = Command::new(TAGLOCK);
        command
            .arg("users")
            .arg("add")
            .arg(users)
            .arg(name)
            .args(["--password-stdin", "--cost", "4"])
            .args(extra);
        let output = run(
            command,
            Some(format!("{password}\n").as_bytes()),
            Duration::from_secs(30),
        );
        assert!(output.success(), "taglock users add {name}: {output}");
    }
}

impl Default for Workdir {
    fn default() -> Self {
        Workdir::new()
    }
}

/// The command line of one `taglock serve`.
pub struct Serve {
    args: Vec<OsString>,
    soft_open_files: Option<u64>,
}

impl Serve {
    /// `taglock serve --upstream UPSTREAM --policy POLICY --listen 127.0.0.1:0`.
    pub fn new(upstream: &str, policy: &Path) -> Serve {
        let mut serve = Serve {
            args: Vec::new(),
            soft_open_files: None,
        };
        serve
            .arg("--upstream")
            .arg(upstream)
            .arg("--policy")
            .arg(policy)
            .arg("--listen")
            .arg("127.0.0.1:0");
        serve
    }

    pub fn arg(&mut self, arg: impl Into<OsString>) -> &mut Serve {
        self.args.push(arg.into());
        self
    }

    pub fn users(&mut self, path: &Path) -> &mut Serve {
        self.arg("--users").arg(path)
    }

    pub fn audit_log(&mut self, path: &Path) -> &mut Serve {
        self.arg("--audit-log").arg(path)
    }

    /// Starts the proxy with its soft open-files limit lowered to `limit` (by a
    /// shell's `ulimit -Sn`, then `exec`, so the process id stays the proxy's).
    pub fn soft_open_files(&mut self, limit: u64) -> &mut Serve {
        self.soft_open_files = Some(limit);
        self
    }

    /// Starts the proxy and waits (bounded) for its listening line on stdout.
    pub fn start(&self) -> Proxy {
        let logs = tempfile::Builder::new()
            .prefix("taglock-proxy-")
            .tempdir()
            .unwrap();
        let stderr_path = logs.path().join("stderr.log");
        let mut command = match self.soft_open_files {
            Some(limit) => {
                let mut shell = Command::new("sh");
                shell
                    .arg("-c")
                    .arg(format!("ulimit -Sn {limit} && exec \"$0\" \"$@\""))
                    .arg(TAGLOCK);
                shell
            }
            None => Command::new(TAGLOCK),
        };
        let child = command
            .arg("serve")
            .args(&self.args)
            .env_remove("http_proxy")
            .env_remove("HTTP_PROXY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot run {TAGLOCK} serve: {err}"));
        let mut process = Guard::new(child);
        let stdout = process.take_stdout();
        let (lines, received) = mpsc::channel();
        // Reads stdout to its end, so the proxy never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = lines.send(line);
            }
        });
        let stderr = || std::fs::read_to_string(&stderr_path).unwrap_or_default();
        let deadline = std::time::Instant::now() + START_TIMEOUT;
        let url = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match received.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix("taglock serve: listening on ") {
                        break url.trim().to_owned();
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "taglock serve printed no listening line within {START_TIMEOUT:?}\n\
                     --- stderr ---\n{}",
                    stderr()
                ),
                Err(mpsc::RecvTimeoutError::Disconnected) => panic!(
                    "taglock serve exited ({:?}) before listening\n--- stderr ---\n{}",
                    process.exited(),
                    stderr()
                ),
            }
        };
        assert!(
            url.starts_with("http://127.0.0.1:") || url.starts_with("https://127.0.0.1:"),
            "taglock serve listens on {url}, not on loopback"
        );
        Proxy {
            process,
            url,
            stderr_path,
            _logs: logs,
        }
    }
}

/// A running `taglock serve`, killed on drop.
pub struct Proxy {
    process: Guard,
    url: String,
    stderr_path: PathBuf,
    _logs: tempfile::TempDir,
}

impl Proxy {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `127.0.0.1:PORT`, as skopeo names the registry.
    pub fn host(&self) -> &str {
        self.url
            .trim_start_matches("https://")
            .trim_start_matches("http://")
    }

    /// An anonymous client of the proxy.
    pub fn client(&self) -> Client {
        Client::new(&self.url)
    }

    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// What the proxy logged so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

/// Runs `taglock ARGS` to completion (bounded).
pub fn taglock(args: &[&str], timeout: Duration) -> Output {
    let mut command = Command::new(TAGLOCK);
    command.args(args);
    run(command, None, timeout)
}
