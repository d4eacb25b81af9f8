#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! `taglock serve` under hostile clients and a hostile file system, against a
//! real CNCF distribution registry: more idle and slow connections than it
//! serves at once (it keeps serving), a slowloris client and an idle kept-alive
//! connection (both closed), its open-files limit, and an audit log that is
//! rotated, deleted, reopened on SIGHUP and made unwritable.

mod support;

use serde_json::{Value, json};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::http::Client;
use support::oci::Image;
use support::process::wait_until;
use support::proxy::{Proxy, Serve, Workdir};
use support::registry::Registry;

/// alice (group devs) writes `acme/web`; nothing is immutable.
fn policy() -> Value {
    json!({
        "version": 1,
        "immutability": { "protect": "none" },
        "permissions": {
            "repositories": { "web-app": { "admin": ["user:alice"], "write": ["group:devs"] } },
            "images": [ { "name": "acme/web", "repository": "web-app" } ]
        }
    })
}

/// A registry and `taglock serve` in front of it, with one user, alice
/// (password `pw`). Fields drop in order: the proxy, the registry, the files.
struct Stack {
    proxy: Proxy,
    registry: Registry,
    work: Workdir,
}

impl Stack {
    fn start(configure: impl FnOnce(&Workdir, &mut Serve)) -> Stack {
        let registry = Registry::start();
        let work = Workdir::new();
        let policy_path = work.write_json("policy.json", &policy());
        let users = work.path("users.json");
        work.add_user(&users, "alice", "pw", &["--group", "devs"]);
        let mut serve = Serve::new(&registry.url(), &policy_path);
        serve.users(&users);
        configure(&work, &mut serve);
        let proxy = serve.start();
        Stack {
            proxy,
            registry,
            work,
        }
    }

    /// A new client (its own connections) of the proxy, logged in as alice.
    fn alice(&self) -> Client {
        Client::new(self.proxy.url()).login("alice", "pw")
    }

    /// The value of one sample of `/metrics`, 0 when absent.
    fn metric(&self, sample: &str) -> u64 {
        let text = Client::new(self.proxy.url()).get("/metrics").text();
        text.lines()
            .find_map(|line| line.strip_prefix(sample)?.trim().parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    }

    fn fail(&self, what: &str) -> ! {
        panic!("{what}\n--- proxy log ---\n{}", self.proxy.stderr())
    }
}

/// How many file descriptors process `pid` has open.
fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Waits (bounded) until the peer closes `stream`; `Err` when it stayed open.
fn wait_closed(stream: &mut TcpStream, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    let mut buffer = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("still open after {within:?}"));
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(err) if err.kind() == ErrorKind::ConnectionReset => return Ok(()),
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(err) => return Err(err.to_string()),
        }
    }
}

#[test]
fn more_idle_and_slow_connections_than_the_cap_do_not_stop_the_proxy() {
    let stack = Stack::start(|_, serve| {
        serve
            .arg("--max-connections")
            .arg("32")
            .arg("--header-read-timeout")
            .arg("1s");
    });
    let image = Image::new("bounds");
    assert_eq!(
        stack.alice().push_image("acme/web", "v1", &image).status,
        201
    );
    let pid = stack.proxy.pid();
    let before = open_descriptors(pid);

    // 200 connections from one client: half send nothing, half a partial request line.
    let mut flood: Vec<TcpStream> = (0..200)
        .map(|i| {
            let mut stream = TcpStream::connect(stack.proxy.host()).unwrap();
            if i % 2 == 1 {
                stream.write_all(b"GET /v2/ HT").unwrap();
            }
            stream
        })
        .collect();
    // The proxy holds at most 32 of them (each a descriptor) at any moment.
    let mut most = 0;
    for _ in 0..30 {
        most = most.max(open_descriptors(pid).saturating_sub(before));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        most <= 32 + 4,
        "the proxy held {most} more descriptors than before the flood, past the cap of 32"
    );

    // The header timeout frees the slots: health and a pull still answer.
    let health = Client::new(stack.proxy.url()).get("/healthz");
    assert_eq!(health.status, 200, "{health}");
    assert_eq!(
        stack.alice().manifest_digest("acme/web", "v1"),
        Some(image.manifest.digest.clone())
    );
    // Every connection of the flood was closed by the proxy.
    for (i, stream) in flood.iter_mut().enumerate() {
        if let Err(err) = wait_closed(stream, Duration::from_secs(60)) {
            stack.fail(&format!("flood connection {i}: {err}"));
        }
    }
    // Each connection the proxy accepted was closed by its header timeout. The
    // 32 slots and the 128 places of the listen queue were surely accepted; the
    // kernel may have dropped the handshake of the rest (a full queue), and such
    // a connection ends without the proxy ever seeing it.
    let timeouts = || stack.metric("taglock_connection_timeouts_total{phase=\"header\"}");
    let counted = wait_until(Duration::from_secs(10), || {
        let n = timeouts();
        if n >= 160 {
            Ok(())
        } else {
            Err(format!("{n} header timeouts counted"))
        }
    });
    if let Err(err) = counted {
        stack.fail(&err);
    }
    assert!(stack.metric("taglock_connection_limit_reached_total") >= 1);
    assert_eq!(stack.metric("taglock_connections_max"), 32);
    let open = stack.metric("taglock_connections_open");
    assert!((1..=32).contains(&open), "{open} connections open");
}

#[test]
fn slowloris_and_idle_connections_are_closed_and_the_open_files_limit_raised() {
    let stack = Stack::start(|_, serve| {
        serve
            .arg("--header-read-timeout")
            .arg("1s")
            .arg("--idle-timeout")
            .arg("2s")
            .soft_open_files(256);
    });

    // The soft limit was raised to the hard one at start.
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", stack.proxy.pid())).unwrap();
    let open_files: Vec<&str> = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(open_files[3], open_files[4], "soft and hard: {limits}");
    assert_ne!(open_files[3], "256", "{limits}");

    // A slowloris client: one header byte every 250 ms of a header that never ends.
    let mut slow = TcpStream::connect(stack.proxy.host()).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_millis(250)))
        .unwrap();
    let started = Instant::now();
    let closed = loop {
        if started.elapsed() > Duration::from_secs(30) {
            break false;
        }
        if slow.write_all(b"a").is_err() {
            break true;
        }
        match slow.read(&mut [0u8; 1024]) {
            Ok(0) => break true,
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break true,
            Ok(_) => stack.fail("the proxy answered a header that never ended"),
        }
    };
    if !closed {
        stack.fail("a slowloris connection was still open after 30 s");
    }
    assert_eq!(
        stack.metric("taglock_connection_timeouts_total{phase=\"header\"}"),
        1
    );

    // A kept-alive connection that asks once and then waits: closed as idle,
    // not by the header timeout that applies from a request's first byte.
    let mut kept = TcpStream::connect(stack.proxy.host()).unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    kept.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 1024];
    while !answer.ends_with(b"ok\n") {
        let n = kept.read(&mut buffer).unwrap();
        assert!(n > 0, "closed before answering");
        answer.extend_from_slice(&buffer[..n]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 200"));
    if let Err(err) = wait_closed(&mut kept, Duration::from_secs(30)) {
        stack.fail(&format!("the idle kept-alive connection: {err}"));
    }
    assert_eq!(
        stack.metric("taglock_connection_timeouts_total{phase=\"idle\"}"),
        1
    );
    assert_eq!(
        stack.metric("taglock_connection_timeouts_total{phase=\"header\"}"),
        1
    );
}

/// The paths of the manifest records in the audit log at `path`.
fn audited_manifests(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|line| {
            serde_json::from_str::<Value>(line)
                .unwrap_or_else(|err| panic!("audit line is not JSON ({err}): {line}"))
        })
        .filter_map(|record| record["path"].as_str().map(str::to_owned))
        .filter(|path| path.contains("/manifests/"))
        .collect()
}

#[test]
fn the_audit_log_follows_rotation_and_deletion_and_sighup_reopens_it() {
    let stack = Stack::start(|work, serve| {
        let logs = work.path("logs");
        std::fs::create_dir(&logs).unwrap();
        serve
            .audit_log(&logs.join("audit.jsonl"))
            .arg("--reload-interval")
            .arg("0s");
    });
    let logs: PathBuf = stack.work.path("logs");
    let audit = logs.join("audit.jsonl");
    let alice = stack.alice();
    let push = |tag: &str| {
        let pushed = alice.push_image("acme/web", tag, &Image::new(tag));
        if pushed.status != 201 {
            stack.fail(&format!("push of {tag}: {pushed}"));
        }
    };
    let manifest = |tag: &str| format!("/v2/acme/web/manifests/{tag}");

    push("v1");
    assert_eq!(audited_manifests(&audit), [manifest("v1")]);

    // Rotated by renaming: the next record goes to a new file at the path.
    let first = logs.join("audit.jsonl.1");
    std::fs::rename(&audit, &first).unwrap();
    push("v2");
    assert_eq!(audited_manifests(&first), [manifest("v1")]);
    assert_eq!(audited_manifests(&audit), [manifest("v2")]);

    // Deleted: created again.
    std::fs::remove_file(&audit).unwrap();
    push("v3");
    assert_eq!(audited_manifests(&audit), [manifest("v3")]);

    // SIGHUP (as logrotate's postrotate sends) reopens the path at once.
    let second = logs.join("audit.jsonl.2");
    std::fs::rename(&audit, &second).unwrap();
    let sent = std::process::Command::new("kill")
        .args(["-HUP", &stack.proxy.pid().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    if wait_until(Duration::from_secs(20), || {
        if audit.exists() {
            Ok(())
        } else {
            Err("no file".into())
        }
    })
    .is_err()
    {
        stack.fail("SIGHUP did not reopen the audit log");
    }
    push("v4");
    assert_eq!(audited_manifests(&second), [manifest("v3")]);
    assert_eq!(audited_manifests(&audit), [manifest("v4")]);

    // Nowhere to write the record: writes are refused, reads go on.
    std::fs::remove_dir_all(&logs).unwrap();
    let refused = alice.put_manifest("acme/web", "v5", &Image::new("v4").manifest);
    assert_eq!(refused.status, 503, "{refused}");
    assert_eq!(
        stack.registry.client().manifest_digest("acme/web", "v5"),
        None
    );
    assert!(alice.manifest_digest("acme/web", "v4").is_some());
}
