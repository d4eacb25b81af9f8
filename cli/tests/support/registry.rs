//! A real CNCF distribution registry (Debian's `docker-registry`) on 127.0.0.1:
//! a free port, a temporary storage directory, deletes enabled, quiet logs. It can
//! be stopped and started again on the same port and storage, as when an upstream
//! goes down in the middle of a test. [`Registry::start_with_htpasswd`] makes
//! it ask for HTTP Basic credentials, [`Registry::start_with_token`] for bearer
//! tokens of a test's [`Issuer`](super::token::Issuer).
//! [`Registry::start_with_access_log`] makes it log every request, so a test can
//! see what reached it (a mount, the PATCHes of a chunked upload).

use super::http::Client;
use super::process::{Guard, wait_until};
use std::fs::File;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

pub const BINARY: &str = "/usr/bin/docker-registry";

/// A running (or stopped) registry; killed on drop, its storage deleted.
pub struct Registry {
    // Declared first, so dropped first: the process dies before its storage goes.
    process: Option<Guard>,
    port: u16,
    dir: tempfile::TempDir,
    /// How it authenticates clients.
    auth: Auth,
    /// Whether it logs every request it answers (see [`Registry::requests`]).
    access_log: bool,
}

/// How a registry authenticates its clients.
#[derive(Clone)]
enum Auth {
    /// It does not.
    None,
    /// HTTP Basic against this htpasswd file.
    Htpasswd(PathBuf),
    /// Bearer tokens from `realm`, signed under the certificate `pem`.
    Token { realm: String, pem: String },
}

impl Registry {
    /// Starts a registry on a free loopback port and waits until `/v2/` answers.
    pub fn start() -> Registry {
        Registry::start_with(Auth::None, false)
    }

    /// Starts a registry like [`Registry::start`] that also logs every request it
    /// answers, so a test can see what reached it ([`Registry::requests`]).
    pub fn start_with_access_log() -> Registry {
        Registry::start_with(Auth::None, true)
    }

    /// Starts a registry that asks for HTTP Basic credentials checked against
    /// `htpasswd` (bcrypt entries, `user:hash` lines).
    pub fn start_with_htpasswd(htpasswd: &std::path::Path) -> Registry {
        Registry::start_with(Auth::Htpasswd(htpasswd.to_path_buf()), false)
    }

    /// Starts a registry that asks for bearer tokens from `issuer` (distribution's
    /// `auth: token`, service [`SERVICE`](super::token::SERVICE)), trusting the
    /// certificate the issuer signs under.
    pub fn start_with_token(issuer: &super::token::Issuer) -> Registry {
        Registry::start_with(
            Auth::Token {
                realm: issuer.realm(),
                pem: issuer.cert_pem(),
            },
            false,
        )
    }

    fn start_with(auth: Auth, access_log: bool) -> Registry {
        super::require_tool(BINARY);
        let dir = tempfile::Builder::new()
            .prefix("taglock-registry-")
            .tempdir()
            .unwrap();
        std::fs::create_dir(dir.path().join("storage")).unwrap();
        let mut dir = Some(dir);
        let mut last = String::new();
        // The port is free when chosen, but another process may take it before the
        // registry binds it: try a few.
        for _ in 0..5 {
            let mut registry = Registry {
                process: None,
                port: free_port(),
                dir: dir.take().unwrap(),
                auth: auth.clone(),
                access_log,
            };
            match registry.spawn() {
                Ok(()) => return registry,
                Err(err) => {
                    last = err;
                    dir = Some(registry.take_dir());
                }
            }
        }
        panic!("docker-registry did not start: {last}");
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT`, as skopeo names the registry.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A client talking to the registry directly, around any proxy.
    pub fn client(&self) -> Client {
        Client::new(&self.url())
    }

    /// The registry's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Guard::id)
    }

    /// Kills the registry and waits until it is gone; its storage stays.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
        let url = format!("{}/v2/", self.url());
        wait_until(Duration::from_secs(10), || {
            match Client::new(&self.url()).try_request("GET", "/v2/", &[], None) {
                Err(_) => Ok(()),
                Ok(reply) => Err(format!("{url} still answers {}", reply.status)),
            }
        })
        .unwrap();
    }

    /// Starts the registry again on the same port and storage.
    pub fn restart(&mut self) {
        assert!(self.process.is_none(), "restart of a running registry");
        self.spawn()
            .unwrap_or_else(|err| panic!("docker-registry did not restart: {err}"));
    }

    /// The registry's own log (errors only).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Every request the registry answered so far, in order, as
    /// `(method, path and query, status)`, read from its access log; empty unless
    /// started with [`Registry::start_with_access_log`].
    pub fn requests(&self) -> Vec<(String, String, u16)> {
        let log = std::fs::read(self.dir.path().join("registry.log")).unwrap_or_default();
        String::from_utf8_lossy(&log)
            .lines()
            .filter_map(|line| {
                // `… "METHOD PATH HTTP/1.1" STATUS SIZE "referer" "agent"`
                let (_, rest) = line.split_once('"')?;
                let (request, rest) = rest.split_once('"')?;
                let mut request = request.split(' ');
                let (method, path) = (request.next()?, request.next()?);
                let status = rest.split_whitespace().next()?.parse().ok()?;
                Some((method.to_owned(), path.to_owned(), status))
            })
            .collect()
    }

    fn take_dir(self) -> tempfile::TempDir {
        let Registry { dir, process, .. } = self;
        drop(process);
        dir
    }

    fn spawn(&mut self) -> Result<(), String> {
        let config = self.dir.path().join("config.yml");
        if let Auth::Token { pem, .. } = &self.auth {
            std::fs::write(self.dir.path().join("token-bundle.pem"), pem).unwrap();
        }
        std::fs::write(&config, self.config()).unwrap();
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join("registry.log"))
            .unwrap();
        let child = Command::new(BINARY)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .map_err(|err| format!("cannot run {BINARY}: {err}"))?;
        let mut process = Guard::new(child);
        let client = self.client();
        // With authentication, a 401 to an anonymous client is an answer.
        let ready_status = if matches!(self.auth, Auth::None) {
            200
        } else {
            401
        };
        let ready = wait_until(Duration::from_secs(20), || {
            if let Some(status) = process.exited() {
                return Err(format!("exited with {status}"));
            }
            match client.try_request("GET", "/v2/", &[], None) {
                Ok(reply) if reply.status == ready_status => Ok(()),
                Ok(reply) => Err(format!("/v2/ answered {reply}")),
                Err(err) => Err(err),
            }
        });
        match ready {
            Ok(()) => {
                self.process = Some(process);
                Ok(())
            }
            Err(reason) => Err(format!("{reason}\n--- registry log ---\n{}", self.log())),
        }
    }

    fn config(&self) -> String {
        let storage: PathBuf = self.dir.path().join("storage");
        let auth = match &self.auth {
            Auth::None => String::new(),
            Auth::Htpasswd(path) => format!(
                "auth:\n  htpasswd:\n    realm: taglock-test\n    path: {}\n",
                path.display()
            ),
            Auth::Token { realm, .. } => format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                super::token::SERVICE,
                super::token::ISSUER,
                self.dir.path().join("token-bundle.pem").display()
            ),
        };
        let config = format!(
            "version: 0.1\n\
             log:\n  level: error\n  accesslog:\n    disabled: {}\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{}\n  secret: taglock-test-only\n",
            !self.access_log,
            storage.display(),
            self.port
        );
        config + &auth
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
