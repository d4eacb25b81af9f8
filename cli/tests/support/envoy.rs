//! Envoy with the taglock filter, configured by `taglock envoy bootstrap`, on
//! 127.0.0.1 ports: started with `--use-dynamic-base-id` (so Envoys running at
//! once never share memory), killed on drop, every wait bounded.

use super::http::Client;
use super::process::{Guard, Output, run, wait_until};
use super::proxy::TAGLOCK;
use super::registry::free_port;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// How long Envoy may take to be ready (it compiles the filter with v8).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The Envoy binary: `$TAGLOCK_ENVOY`, else where `scripts/install-envoy.sh`
/// puts it. Fails, never skips, when it is missing.
pub fn binary() -> PathBuf {
    let path = std::env::var_os("TAGLOCK_ENVOY").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/envoy/envoy/_bin/envoy"),
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "Envoy is not installed at {}: run scripts/install-envoy.sh (or scripts/setup.sh) first",
        path.display()
    );
    path
}

/// `taglock envoy bootstrap --policy POLICY --upstream UPSTREAM … --out DIR EXTRA…`
/// with fresh loopback ports; returns the run and the ports (listen, admin).
pub fn bootstrap(policy: &Path, upstream: &str, out: &Path, extra: &[&str]) -> (Output, u16, u16) {
    let (listen, admin) = (free_port(), free_port());
    let mut command = Command::new(TAGLOCK);
    command
        .args(["envoy", "bootstrap", "--policy"])
        .arg(policy)
        .args(["--upstream", upstream])
        .args(["--listen", &format!("127.0.0.1:{listen}")])
        .args(["--admin", &format!("127.0.0.1:{admin}")])
        .arg("--out")
        .arg(out)
        .args(extra);
    (run(command, None, Duration::from_secs(60)), listen, admin)
}

/// `envoy --mode validate -c CONFIG`.
pub fn validate(config: &Path) -> Output {
    let mut command = Command::new(binary());
    command
        .args(["--mode", "validate", "--use-dynamic-base-id", "-c"])
        .arg(config);
    run(command, None, START_TIMEOUT)
}

/// A running Envoy.
pub struct Envoy {
    process: Guard,
    listen: u16,
    admin: Client,
    log: PathBuf,
}

impl Envoy {
    /// Bootstraps into `out` and starts Envoy; fails the test when either fails.
    /// The ports are free when chosen, but another process of the tests may
    /// take one before Envoy binds it (then Envoy exits, or another server
    /// answers its admin port): a few tries, each with fresh ports.
    pub fn start(policy: &Path, upstream: &str, out: &Path, extra: &[&str]) -> Envoy {
        let mut last = String::new();
        for _ in 0..3 {
            let (output, listen, admin) = bootstrap(policy, upstream, out, extra);
            assert!(output.success(), "bootstrap failed: {output:?}");
            match Envoy::try_start_config(
                &out.join("envoy.yaml"),
                listen,
                admin,
                &out.join("envoy.log"),
            ) {
                Ok(envoy) => return envoy,
                Err(why) => last = why,
            }
        }
        panic!("envoy did not become ready: {last}");
    }

    /// Starts Envoy with `config`, which listens on `listen` with its admin on
    /// `admin`, logging to `log`; fails the test when it does not become ready.
    pub fn start_config(config: &Path, listen: u16, admin: u16, log: &Path) -> Envoy {
        Envoy::try_start_config(config, listen, admin, log)
            .unwrap_or_else(|why| panic!("envoy did not become ready: {why}"))
    }

    /// Like [`Envoy::start_config`], with why it did not start as the error
    /// (and Envoy's log).
    fn try_start_config(
        config: &Path,
        listen: u16,
        admin: u16,
        log: &Path,
    ) -> Result<Envoy, String> {
        let log = log.to_owned();
        let file = std::fs::File::create(&log).unwrap();
        let mut process = Guard::new(
            Command::new(binary())
                .args(["--use-dynamic-base-id", "--concurrency", "2", "-c"])
                .arg(config)
                .args(["--log-level", "info", "--component-log-level", "wasm:info"])
                // The access log (stdout) is flushed every 200 ms, not every 10 s.
                .args(["--file-flush-interval-msec", "200"])
                .stdin(Stdio::null())
                .stdout(file.try_clone().unwrap())
                .stderr(file)
                .spawn()
                .unwrap(),
        );
        let admin = Client::new(&format!("http://127.0.0.1:{admin}"));
        let ready = wait_until(START_TIMEOUT, || {
            if let Some(status) = process.exited() {
                return Err(format!("envoy exited: {status}"));
            }
            let reply = admin.try_request("GET", "/ready", &[], None)?;
            if reply.status == 200 {
                Ok(())
            } else {
                Err(reply.to_string())
            }
        });
        if let Err(why) = ready {
            return Err(format!(
                "{why}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ));
        }
        Ok(Envoy {
            process,
            listen,
            admin,
            log,
        })
    }

    /// `127.0.0.1:PORT`, as skopeo names the registry behind Envoy.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.listen)
    }

    /// A client talking to Envoy.
    pub fn client(&self) -> Client {
        Client::new(&format!("http://{}", self.host()))
    }

    /// What Envoy logged so far (its own log, the filter's and the access log).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (at most 10 s) until the log holds `text`; the log so far either way.
    pub fn log_with(&self, text: &str) -> String {
        let mut log = String::new();
        let _ = wait_until(Duration::from_secs(10), || {
            log = self.log();
            if log.contains(text) {
                Ok(())
            } else {
                Err(String::new())
            }
        });
        log
    }

    /// The value of counter `name` on the admin interface (`/stats`), 0 when absent.
    pub fn counter(&self, name: &str) -> u64 {
        let stats = self.admin.get("/stats").text();
        stats
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Envoy's process id.
    pub fn pid(&self) -> u32 {
        self.process.id()
    }
}

/// The HTTP filters of the listener of a bootstrap's configuration.
pub fn http_filters(config: &mut Value) -> &mut Vec<Value> {
    config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["http_filters"]
        .as_array_mut()
        .expect("a bootstrap's configuration has HTTP filters")
}

/// The taglock filter's plugin configuration (JSON text) in a bootstrap's
/// configuration.
pub fn plugin_configuration(config: &mut Value) -> &mut Value {
    let wasm = http_filters(config)
        .iter_mut()
        .find(|f| f["name"] == "envoy.filters.http.wasm")
        .expect("a bootstrap's configuration has the taglock filter");
    &mut wasm["typed_config"]["config"]["configuration"]["value"]
}
