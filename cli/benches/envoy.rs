#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! What each gateway adds in front of a real registry (Debian's docker-registry,
//! CNCF distribution 2.8), side by side in one run: the registry direct, plain
//! Envoy (the configuration `taglock envoy bootstrap` writes, without the filter),
//! Envoy with the taglock filter, and `taglock serve`. For a manifest PUT of a
//! new protected tag each time (the gateways read the tag's digest, decide and
//! forward), a manifest PUT of a new tag no rule protects (nothing to read:
//! decided and forwarded) and a manifest GET (a pull: decided, no facts),
//! p50 and p99 over `N` requests per path (default 300; `TAGLOCK_BENCH_REQUESTS`
//! overrides), the four paths interleaved request by request so all see the same
//! machine load. The policy is immutability-only and requests are anonymous, so
//! both gateways do the same work.
//!
//! `cargo bench -p taglock-cli --bench envoy`; needs scripts/install-registry.sh
//! and scripts/install-envoy.sh.

#[path = "../tests/support/mod.rs"]
mod support;

use serde_json::Value;
use std::time::Instant;
use support::envoy::Envoy;
use support::http::{ACCEPT_MANIFESTS, Client};
use support::latency::{added, ms, percentile};
use support::oci::Image;
use support::proxy::{Serve, Workdir};
use support::registry::{Registry, free_port};

fn main() {
    let requests: usize = std::env::var("TAGLOCK_BENCH_REQUESTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);

    let registry = Registry::start();
    let work = Workdir::new();
    let policy = work.write_json(
        "policy.json",
        &serde_json::json!({
            "version": 1,
            "immutability": {
                "protect": "some",
                "rules": [ { "name": "semver", "tags": { "regex": "^v\\d+\\.\\d+\\.\\d+$" } } ]
            }
        }),
    );

    // Envoy with the filter, as bootstrap writes it, then the same configuration
    // without the filter on other ports.
    let out = work.path("envoy");
    let filtered = Envoy::start(&policy, &registry.host(), &out, &[]);
    let plain_config = out.join("plain.yaml");
    let (plain_listen, plain_admin) = (free_port(), free_port());
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("envoy.yaml")).unwrap()).unwrap();
    config["admin"]["address"]["socket_address"]["port_value"] = plain_admin.into();
    config["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"] =
        plain_listen.into();
    support::envoy::http_filters(&mut config)
        .retain(|filter| filter["name"] == "envoy.filters.http.router");
    std::fs::write(&plain_config, serde_json::to_vec(&config).unwrap()).unwrap();
    let plain = Envoy::start_config(
        &plain_config,
        plain_listen,
        plain_admin,
        &out.join("plain.log"),
    );

    let serve = Serve::new(&registry.url(), &policy)
        .arg("--auth")
        .arg("none")
        .start();

    let paths: Vec<(&str, Client, String)> = vec![
        (
            "registry direct",
            registry.client(),
            "bench/direct".to_owned(),
        ),
        ("plain Envoy", plain.client(), "bench/plain".to_owned()),
        (
            "Envoy + taglock filter",
            filtered.client(),
            "bench/filter".to_owned(),
        ),
        ("taglock serve", serve.client(), "bench/serve".to_owned()),
    ];
    let image = Image::new("bench");
    for (_, client, name) in &paths {
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
    let get = |client: &Client, name: &str| {
        let started = Instant::now();
        let reply = client.request(
            "GET",
            &format!("/v2/{name}/manifests/v0.0.0"),
            &[("Accept", ACCEPT_MANIFESTS)],
            None,
        );
        let took = started.elapsed();
        assert_eq!(reply.status, 200, "GET {name}: {reply}");
        took
    };
    // Warm-up: connections, the filter's VMs, the registry's caches.
    for i in 0..20 {
        for (_, client, name) in &paths {
            put(client, name, &format!("v0.0.{i}"));
            get(client, name);
        }
    }
    let mut puts = vec![Vec::with_capacity(requests); paths.len()];
    let mut unprotected = vec![Vec::with_capacity(requests); paths.len()];
    let mut gets = vec![Vec::with_capacity(requests); paths.len()];
    for i in 0..requests {
        let tag = format!("v1.0.{i}");
        let build = format!("build-{i}");
        // Rotate which path goes first, so none always meets a warm cache.
        for k in 0..paths.len() {
            let at = (i + k) % paths.len();
            let (_, client, name) = &paths[at];
            puts[at].push(put(client, name, &tag));
            unprotected[at].push(put(client, name, &build));
            gets[at].push(get(client, name));
        }
    }

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!();
    println!(
        "gateways in front of docker-registry, {requests} requests per path, interleaved \
         ({cores} cores, load average {})",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    for (what, samples) in [
        ("manifest PUT (new protected tag)", &mut puts),
        ("manifest PUT (new unprotected tag)", &mut unprotected),
        ("manifest GET (pull)", &mut gets),
    ] {
        println!();
        println!("| {what} | p50 | added p50 | p99 | added p99 |");
        println!("| --- | ---: | ---: | ---: | ---: |");
        for list in samples.iter_mut() {
            list.sort();
        }
        let (direct50, direct99) = (percentile(&samples[0], 50.0), percentile(&samples[0], 99.0));
        for ((name, _, _), list) in paths.iter().zip(samples.iter()) {
            let (p50, p99) = (percentile(list, 50.0), percentile(list, 99.0));
            println!(
                "| {name} | {} | {} | {} | {} |",
                ms(p50),
                added(direct50, p50),
                ms(p99),
                added(direct99, p99)
            );
        }
    }
    drop(filtered);
    drop(plain);
}
