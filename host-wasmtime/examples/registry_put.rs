//! A registry's manifest-PUT handler deciding through the taglock component.
//!
//! `cargo run -p taglock-host-wasmtime --example registry_put`
//!
//! The registry keeps its own state (which tag points where, which tags it has
//! recorded as locked); for each `PUT /v2/<name>/manifests/<reference>` it gathers
//! those facts into a typed `PushRequest`, asks the component, and either stores
//! the manifest or answers with the OCI error body. A failed decision (timeout,
//! trap) is answered 503: fail closed, never a silent allow.
#![allow(clippy::print_stdout)]

use policy_core::{Actor, Decision, PushRequest, TagState};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use taglock_host_wasmtime::{Host, WasmPolicy};

const POLICY: &str = r#"{
  "version": 1,
  "immutability": {
    "protect": "some",
    "rules": [{ "name": "semver", "tags": { "regex": "^v\\d+\\.\\d+\\.\\d+$" } }],
    "exceptions": [{ "matching": ["latest"] }]
  },
  "permissions": {
    "workspace_admins": ["user:root"],
    "repositories": { "web-app": { "write": ["group:devs", "pipeline:web-app"] } },
    "images": [{ "name": "acme/web", "repository": "web-app" }]
  }
}"#;

/// What the registry stores: tags per image, and the tags it recorded as locked.
#[derive(Default)]
struct Registry {
    tags: BTreeMap<(String, String), String>,
    locked: BTreeSet<(String, String)>,
}

/// An HTTP response, reduced to what this example prints.
struct Response {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

/// The handler state: the policy loaded once into the component, shared by all
/// request threads (it is `Send + Sync`).
struct Handler {
    policy: Arc<WasmPolicy>,
    registry: Mutex<Registry>,
}

impl Handler {
    /// `PUT /v2/<image>/manifests/<reference>[?tag=..]` with a body of digest `digest`.
    fn put_manifest(
        &self,
        image: &str,
        reference: &str,
        extra_tags: &[&str],
        digest: &str,
        actor: Actor,
    ) -> Response {
        let mut registry = self
            .registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // 1. Gather the facts: which tags the push sets, and where they point now.
        let mut tags: Vec<&str> = extra_tags.to_vec();
        if !reference.starts_with("sha256:") {
            tags.insert(0, reference);
        }
        let request = PushRequest {
            image: image.to_owned(),
            digest: digest.to_owned(),
            tags: tags
                .iter()
                .map(|tag| {
                    let key = (image.to_owned(), (*tag).to_owned());
                    TagState {
                        name: (*tag).to_owned(),
                        current: registry.tags.get(&key).cloned(),
                        locked: registry.locked.contains(&key),
                        via: Vec::new(),
                    }
                })
                .collect(),
            image_exists: registry.tags.keys().any(|(i, _)| i == image),
            actor,
        };
        // 2. Decide. An error means "no decision": refuse, retryable.
        let decision: Decision = match self.policy.evaluate_push(&request) {
            Ok(decision) => decision,
            Err(err) => {
                return Response {
                    status: err.http_status(),
                    headers: vec![("Retry-After", "1".to_owned())],
                    body: format!(r#"{{"errors":[{{"code":"UNAVAILABLE","message":"{err}"}}]}}"#),
                };
            }
        };
        // 3. Answer: the OCI error body on a denial, the manifest stored otherwise.
        if !decision.allowed() {
            let body = serde_json::to_string(&decision.error()).unwrap_or_default();
            return Response {
                status: decision.status(),
                headers: Vec::new(),
                body,
            };
        }
        let mut headers = vec![("Docker-Content-Digest", digest.to_owned())];
        if decision.would_deny() {
            headers.push(("Warning", format!("299 - \"{}\"", decision.message())));
        }
        for tag in &tags {
            registry
                .tags
                .insert((image.to_owned(), (*tag).to_owned()), digest.to_owned());
        }
        // A registry that records locks stores the tags the decision says are now protected.
        for tag in decision.protected_tags() {
            registry.locked.insert((image.to_owned(), tag.clone()));
        }
        Response {
            status: 201,
            headers,
            body: String::new(),
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let host = Host::embedded()?;
    println!("component sha256:{}", host.component_sha256());
    let policy = host.load_policy(POLICY)?;
    for lint in policy.lints() {
        println!("lint: {lint}");
    }
    let handler = Handler {
        policy: Arc::new(policy),
        registry: Mutex::new(Registry::default()),
    };

    let a = format!("sha256:{}", "a".repeat(64));
    let b = format!("sha256:{}", "b".repeat(64));
    let dev = || Actor::user("alice", &["devs"]);
    let steps: [(&str, &str, &[&str], &str, Actor); 6] = [
        ("first push of v1.0.0", "v1.0.0", &["latest"], &a, dev()),
        ("CI retry, same digest", "v1.0.0", &[], &a, dev()),
        ("overwrite v1.0.0", "v1.0.0", &[], &b, dev()),
        ("move latest", "latest", &[], &b, dev()),
        ("anonymous push", "v2.0.0", &[], &b, Actor::anonymous()),
        ("push to an unlinked image", "v1.0.0", &[], &a, dev()),
    ];
    for (index, (what, reference, extra, digest, actor)) in steps.into_iter().enumerate() {
        let image = if index == 5 {
            "acme/unlinked"
        } else {
            "acme/web"
        };
        let response = handler.put_manifest(image, reference, extra, digest, actor);
        println!("\n# {what}: PUT /v2/{image}/manifests/{reference}");
        println!("HTTP {}", response.status);
        for (name, value) in &response.headers {
            println!("{name}: {value}");
        }
        if !response.body.is_empty() {
            println!("{}", response.body);
        }
    }
    Ok(())
}
