#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! What `taglock serve` costs in front of a real registry (Debian's
//! docker-registry, CNCF distribution 2.8) on this machine:
//!
//! - the latency it adds to a manifest PUT (a new protected tag each time, so the
//!   proxy gathers the tag's current digest from the upstream, decides, locks,
//!   forwards and writes an audit line) and to a 10 MiB blob upload (POST + one
//!   monolithic PUT), against the registry direct, p50 and p99 over `N` requests
//!   each (default 500; `TAGLOCK_BENCH_REQUESTS` overrides), direct and proxied
//!   interleaved in the same run so both see the same machine load;
//! - the proxy's peak resident memory (VmHWM) under 64 concurrent 10 MiB uploads.
//!
//! `cargo bench -p taglock-cli --bench proxy`; needs scripts/install-registry.sh.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use support::http::Client;
use support::latency::{added, ms, percentile};
use support::oci::{Blob, Image, LAYER};
use support::proxy::{Serve, Workdir};
use support::registry::Registry;

const BLOB_SIZE: usize = 10 * 1024 * 1024;
const CONCURRENT_UPLOADS: usize = 64;

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is accepted and ignored.
    let requests: usize = std::env::var("TAGLOCK_BENCH_REQUESTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(500);

    let registry = Registry::start();
    let work = Workdir::new();
    let policy = work.write_json(
        "policy.json",
        &serde_json::json!({
            "version": 1,
            "immutability": {
                "protect": "some",
                "rules": [ { "name": "semver", "tags": { "regex": "^v\\d+\\.\\d+\\.\\d+$" } } ]
            },
            "permissions": {
                "repositories": { "bench": { "write": ["group:devs"] } },
                "images": [ { "name": "bench/proxied", "repository": "bench" } ]
            }
        }),
    );
    let users = work.path("users.json");
    // The default cost would be 10; the proxy remembers verified credentials, so
    // the cost only shows in the first request.
    work.add_user(&users, "alice", "alice-secret", &["--group", "devs"]);
    let audit = work.path("audit.jsonl");
    let proxy = Serve::new(&registry.url(), &policy)
        .users(&users)
        .audit_log(&audit)
        .start();
    let direct = registry.client();
    let proxied = proxy.client().login("alice", "alice-secret");

    let rss_idle = status_kib(proxy.pid(), "VmRSS");

    // Manifest PUT: the same small image under a new protected tag each time.
    let image = Image::new("bench");
    for (client, name) in [(&direct, "bench/direct"), (&proxied, "bench/proxied")] {
        client.push_blob(name, &image.config);
        client.push_blob(name, &image.layer);
    }
    let put = |client: &Client, name: &str, tag: &str| {
        let started = Instant::now();
        let reply = client.put_manifest(name, tag, &image.manifest);
        let took = started.elapsed();
        assert_eq!(reply.status, 201, "PUT {name}:{tag}: {reply}");
        took
    };
    for i in 0..20 {
        put(&direct, "bench/direct", &format!("v0.0.{i}"));
        put(&proxied, "bench/proxied", &format!("v0.0.{i}"));
    }
    let (mut put_direct, mut put_proxied, mut head_direct) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..requests {
        let tag = format!("v1.0.{i}");
        // What the proxy asks the upstream before it decides: the tag's digest.
        let started = Instant::now();
        assert_eq!(direct.manifest_digest("bench/direct", &tag), None);
        head_direct.push(started.elapsed());
        // Alternate which goes first, so neither always meets a warm cache.
        if i % 2 == 0 {
            put_direct.push(put(&direct, "bench/direct", &tag));
            put_proxied.push(put(&proxied, "bench/proxied", &tag));
        } else {
            put_proxied.push(put(&proxied, "bench/proxied", &tag));
            put_direct.push(put(&direct, "bench/direct", &tag));
        }
    }

    // 10 MiB blob upload: POST a session, PUT the whole blob.
    let blob = Arc::new(big_blob());
    let upload = |client: &Client, name: &str| {
        let started = Instant::now();
        let reply = client.upload_blob(name, &blob);
        let took = started.elapsed();
        assert_eq!(reply.status, 201, "upload to {name}: {reply}");
        took
    };
    for _ in 0..5 {
        upload(&direct, "bench/direct");
        upload(&proxied, "bench/proxied");
    }
    let (mut blob_direct, mut blob_proxied) = (Vec::new(), Vec::new());
    for i in 0..requests {
        if i % 2 == 0 {
            blob_direct.push(upload(&direct, "bench/direct"));
            blob_proxied.push(upload(&proxied, "bench/proxied"));
        } else {
            blob_proxied.push(upload(&proxied, "bench/proxied"));
            blob_direct.push(upload(&direct, "bench/direct"));
        }
    }
    let rss_before_burst = status_kib(proxy.pid(), "VmRSS");
    let hwm_before_burst = status_kib(proxy.pid(), "VmHWM");

    // 64 concurrent 10 MiB uploads through the proxy.
    let start = Arc::new(Barrier::new(CONCURRENT_UPLOADS));
    let burst_started = Instant::now();
    let threads: Vec<_> = (0..CONCURRENT_UPLOADS)
        .map(|_| {
            let (client, blob, start) = (proxied.clone(), blob.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let reply = client.upload_blob("bench/proxied", &blob);
                assert_eq!(reply.status, 201, "{reply}");
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let burst = burst_started.elapsed();
    let hwm = status_kib(proxy.pid(), "VmHWM");

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!();
    println!(
        "taglock serve vs docker-registry direct, {requests} requests each, interleaved \
         ({cores} cores, load average {})",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!();
    println!(
        "| request | direct p50 | proxied p50 | added p50 | direct p99 | proxied p99 | added p99 |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    row(
        "manifest PUT (new protected tag)",
        &mut put_direct,
        &mut put_proxied,
    );
    head_direct.sort();
    println!(
        "| manifest HEAD of a missing tag (the proxy's fact request), direct only | {} | | | {} | | |",
        ms(percentile(&head_direct, 50.0)),
        ms(percentile(&head_direct, 99.0))
    );
    row(
        "10 MiB blob upload (POST + PUT)",
        &mut blob_direct,
        &mut blob_proxied,
    );
    println!();
    println!("| proxy memory | |");
    println!("| --- | ---: |");
    println!("| RSS after start | {} |", mib(rss_idle));
    println!(
        "| RSS after the latency runs | {} (peak so far {}) |",
        mib(rss_before_burst),
        mib(hwm_before_burst)
    );
    println!(
        "| peak RSS (VmHWM) with {CONCURRENT_UPLOADS} concurrent 10 MiB uploads | {} (burst took {:.2} s) |",
        mib(hwm),
        burst.as_secs_f64()
    );
}

fn row(what: &str, direct: &mut [Duration], proxied: &mut [Duration]) {
    direct.sort();
    proxied.sort();
    let (d50, p50) = (percentile(direct, 50.0), percentile(proxied, 50.0));
    let (d99, p99) = (percentile(direct, 99.0), percentile(proxied, 99.0));
    println!(
        "| {what} | {} | {} | {} | {} | {} | {} |",
        ms(d50),
        ms(p50),
        added(d50, p50),
        ms(d99),
        ms(p99),
        added(d99, p99)
    );
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// A field of /proc/PID/status, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// 10 MiB that do not compress to nothing (xorshift bytes).
fn big_blob() -> Blob {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut bytes = Vec::with_capacity(BLOB_SIZE);
    while bytes.len() < BLOB_SIZE {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(BLOB_SIZE);
    Blob::new(LAYER, bytes)
}
