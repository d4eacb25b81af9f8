#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! Delivering the filter to Istio: `taglock envoy push` against a real CNCF
//! distribution registry on 127.0.0.1 (the artifact read back over the
//! distribution API), and `taglock envoy wasmplugin`'s resource checked
//! against Istio's `WasmPlugin` CRD schema by `@kubernetes-models/istio`
//! (`host-js/test/istio/validate-wasmplugin.mjs`). No Kubernetes cluster or
//! Istio runs here.
//!
//! Needs `scripts/install-registry.sh`, Node and `npm ci` in `host-js/`;
//! fails, never skips, without them.

mod support;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::process::{Output, run};
use support::proxy::{Workdir, taglock};
use support::registry::{Registry, free_port};

const CONFIG_MEDIA_TYPE: &str = "application/vnd.module.wasm.config.v1+json";
const WASM_MEDIA_TYPE: &str = "application/vnd.module.wasm.content.layer.v1+wasm";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// The filter the `taglock` binary embeds.
fn embedded_filter() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("envoy/taglock_envoy.wasm")).unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn push(reference: &str) -> Output {
    taglock(
        &["envoy", "push", reference, "--timeout", "30"],
        Duration::from_secs(120),
    )
}

/// Pushes the filter to `registry` as `taglock/envoy:v1`; returns the printed digest.
fn pushed(registry: &Registry) -> String {
    let out = push(&format!("{}/taglock/envoy:v1", registry.host()));
    assert!(out.success(), "push failed: {out}\n{}", registry.log());
    let digest = out.stdout.trim().to_owned();
    assert_eq!(
        out.stdout,
        format!("{digest}\n"),
        "stdout is the digest alone"
    );
    digest
}

#[test]
fn push_stores_the_filter_as_the_two_layer_wasm_artifact_istio_pulls() {
    let registry = Registry::start();
    let digest = pushed(&registry);

    let client = registry.client();
    let reply = client.request(
        "GET",
        "/v2/taglock/envoy/manifests/v1",
        &[("Accept", OCI_MANIFEST)],
        None,
    );
    assert_eq!(reply.status, 200, "{reply}");
    assert_eq!(reply.header("docker-content-digest"), Some(digest.as_str()));
    assert_eq!(sha256(&reply.body), digest, "the digest is the manifest's");
    let manifest = reply.json();
    assert_eq!(manifest["mediaType"], OCI_MANIFEST);
    assert_eq!(manifest["config"]["mediaType"], CONFIG_MEDIA_TYPE);
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2, "exactly two layers: {manifest}");
    let types: Vec<&str> = layers
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap())
        .collect();
    assert_eq!(types, [CONFIG_MEDIA_TYPE, WASM_MEDIA_TYPE]);

    let wasm_digest = layers[1]["digest"].as_str().unwrap();
    let module = client.get(&format!("/v2/taglock/envoy/blobs/{wasm_digest}"));
    assert_eq!(module.status, 200, "{module}");
    assert!(
        module.body == embedded_filter(),
        "the wasm layer is not the embedded filter"
    );
    let config = client.get(&format!(
        "/v2/taglock/envoy/blobs/{}",
        manifest["config"]["digest"].as_str().unwrap()
    ));
    assert_eq!(config.status, 200, "{config}");
    assert_eq!(config.json()["type"], "envoy_proxy");

    // Again: the blobs are there already, the manifest and its digest the same.
    assert_eq!(pushed(&registry), digest);
}

#[test]
fn push_sends_basic_credentials_to_a_registry_that_asks_for_them() {
    let work = Workdir::new();
    let htpasswd = work.path("htpasswd");
    std::fs::write(
        &htpasswd,
        format!("ci:{}\n", bcrypt::hash("s3cret pass", 4).unwrap()),
    )
    .unwrap();
    let registry = Registry::start_with_htpasswd(&htpasswd);
    let reference = format!("{}/taglock/envoy:v1", registry.host());

    let anonymous = push(&reference);
    assert!(!anonymous.success(), "{anonymous}");
    assert!(anonymous.stdout.is_empty(), "{anonymous}");
    assert!(
        anonymous.stderr.contains("asks for credentials"),
        "{anonymous}"
    );

    let wrong = work.path("wrong");
    std::fs::write(&wrong, "not it\n").unwrap();
    let refused = taglock(
        &[
            "envoy",
            "push",
            &reference,
            "--user",
            "ci",
            "--password-file",
            wrong.to_str().unwrap(),
        ],
        Duration::from_secs(120),
    );
    assert!(!refused.success(), "{refused}");
    assert!(refused.stderr.contains("were refused"), "{refused}");

    let password = work.path("password");
    std::fs::write(&password, "s3cret pass\n").unwrap();
    let out = taglock(
        &[
            "envoy",
            "push",
            &reference,
            "--user",
            "ci",
            "--password-file",
            password.to_str().unwrap(),
        ],
        Duration::from_secs(120),
    );
    assert!(out.success(), "{out}\n{}", registry.log());
    let digest = out.stdout.trim();
    let reply = registry.client().login("ci", "s3cret pass").request(
        "HEAD",
        "/v2/taglock/envoy/manifests/v1",
        &[("Accept", OCI_MANIFEST)],
        None,
    );
    assert_eq!(reply.status, 200, "{reply}");
    assert_eq!(reply.header("docker-content-digest"), Some(digest));
}

#[test]
fn push_to_a_registry_that_does_not_answer_fails_within_its_bound() {
    let out = push(&format!("127.0.0.1:{}/taglock/envoy:v1", free_port()));
    assert!(!out.success(), "{out}");
    assert!(out.stdout.is_empty(), "{out}");
    assert!(out.stderr.contains("127.0.0.1"), "{out}");
    let bad = push("127.0.0.1:5000/Taglock/envoy");
    assert!(!bad.success() && bad.stdout.is_empty(), "{bad}");
}

fn wasmplugin(work: &Workdir, policy: &Value, digest: &str, extra: &[&str]) -> Output {
    let policy = work.write_json("policy.json", policy);
    let mut args = vec![
        "envoy",
        "wasmplugin",
        "--policy",
        policy.to_str().unwrap(),
        "--url",
        "oci://registry.example/taglock/envoy:v1",
        "--sha256",
        digest,
        "--upstream",
        "registry.registry.svc.cluster.local:5000",
        "--namespace",
        "registry",
        "--selector",
        "app=registry-gateway",
    ];
    args.extend_from_slice(extra);
    taglock(&args, Duration::from_secs(60))
}

fn policy() -> Value {
    json!({
        "version": 1,
        "immutability": {
            "protect": "some",
            "rules": [ { "name": "semver", "tags": { "regex": "^v\\d+\\.\\d+\\.\\d+$" } } ]
        }
    })
}

#[test]
fn wasmplugin_refuses_an_invalid_policy_and_prints_nothing() {
    let work = Workdir::new();
    let out = wasmplugin(
        &work,
        &json!({ "version": 1, "immutability": { "protect": "sometimes" } }),
        &"ab".repeat(32),
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(out.stdout.is_empty(), "{out}");
    assert!(out.stderr.contains("policy.json:"), "not located: {out}");
}

/// `node host-js/test/istio/validate-wasmplugin.mjs < resource`.
fn validate_with_istio_schema(resource: &[u8]) -> Output {
    support::require_tool("node");
    let host_js = Path::new(env!("CARGO_MANIFEST_DIR")).join("../host-js");
    let package: PathBuf = host_js.join("node_modules/@kubernetes-models/istio/package.json");
    assert!(
        package.is_file(),
        "@kubernetes-models/istio is not installed: run `npm ci` in host-js/ first"
    );
    let mut command = Command::new("node");
    command
        .current_dir(&host_js)
        .arg("test/istio/validate-wasmplugin.mjs");
    run(command, Some(resource), Duration::from_secs(60))
}

/// A field of the resource, and how to break it.
type Breakage = (&'static str, fn(&mut Value));

#[test]
fn the_wasmplugin_validates_against_istios_crd_schema_and_a_broken_one_does_not() {
    let registry = Registry::start();
    let digest = pushed(&registry);
    let work = Workdir::new();
    let out = wasmplugin(
        &work,
        &policy(),
        &digest,
        &["--jwt-issuer", "https://issuer.example"],
    );
    assert!(out.success(), "{out}");
    let resource: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        format!("sha256:{}", resource["spec"]["sha256"].as_str().unwrap()),
        digest
    );
    assert_eq!(resource["spec"]["failStrategy"], "FAIL_CLOSE");
    let valid = validate_with_istio_schema(out.stdout.as_bytes());
    assert!(valid.success(), "Istio's schema refused it: {valid}");

    // Each of these breaks the schema; the validator must say so.
    let breakages: [Breakage; 4] = [
        ("failStrategy", |r| {
            r["spec"]["failStrategy"] = json!("FAIL_SOMETIMES")
        }),
        ("phase", |r| r["spec"]["phase"] = json!("LAST")),
        ("sha256", |r| {
            r["spec"]["sha256"] = json!("sha256:not-a-digest");
        }),
        ("kind", |r| r["kind"] = json!("WasmPlugins")),
    ];
    for (field, break_it) in breakages {
        let mut broken = resource.clone();
        break_it(&mut broken);
        let refused = validate_with_istio_schema(broken.to_string().as_bytes());
        assert_eq!(refused.status.code(), Some(1), "{field}: {refused}");
        assert!(refused.stderr.contains(field), "{field}: {refused}");
    }
}

/// Sets the filter's plugin configuration in a bootstrap's Envoy configuration.
fn set_plugin_config(config: &mut Value, plugin: &Value) {
    *support::envoy::plugin_configuration(config) = json!(plugin.to_string());
}

#[test]
fn the_filter_in_a_real_envoy_loads_the_wasmplugins_plugin_configuration() {
    // Istio hands `pluginConfig` to the filter as a JSON string, as bootstrap
    // does: put the WasmPlugin's into a bootstrap configuration and let Envoy
    // load the filter with it (`envoy --mode validate` runs its configure).
    let work = Workdir::new();
    let out = wasmplugin(
        &work,
        &policy(),
        &"ab".repeat(32),
        &["--jwt-issuer", "https://issuer.example"],
    );
    assert!(out.success(), "{out}");
    let resource: Value = serde_json::from_str(&out.stdout).unwrap();
    let plugin = &resource["spec"]["pluginConfig"];
    let dir = work.path("envoy");
    let (bootstrap, _, _) =
        support::envoy::bootstrap(&work.path("policy.json"), "127.0.0.1:5000", &dir, &[]);
    assert!(bootstrap.success(), "{bootstrap}");
    let path = dir.join("envoy.yaml");
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();

    set_plugin_config(&mut config, plugin);
    std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
    let loaded = support::envoy::validate(&path);
    assert!(
        loaded.success(),
        "Envoy refused the WasmPlugin's configuration: {loaded}"
    );

    let mut broken = plugin.clone();
    broken["facts_timeout_ms"] = json!(0);
    set_plugin_config(&mut config, &broken);
    std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
    let refused = support::envoy::validate(&path);
    assert!(
        !refused.success(),
        "Envoy loaded a broken configuration: {refused}"
    );
}
