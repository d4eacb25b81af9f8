//! What each fuzz target checks, as plain functions of the input bytes: the
//! libFuzzer binaries (`fuzz_targets/`, built and run by `cargo xtask fuzz`) call
//! them, and `tests/regressions.rs` replays every committed input through them on
//! every `cargo test`, so an input that once failed keeps being checked.
//!
//! A check fails by panicking (an assertion), which is how libFuzzer learns of a
//! finding; everything else about bad input must be an error value, never a
//! panic, a hang or an unbounded allocation.
//!
//! | target | input | checks |
//! | --- | --- | --- |
//! | `policy_load` | policy JSON | loads or is refused with at least one located error; a loaded policy decides the same twice |
//! | `request_json` | request JSON | parsed or refused; a parsed request is decided without panic, identically twice, under two policies |
//! | `gateway` | a request head and a script of upstream answers | classified or refused; the facts gathering stays within its bounds whatever the upstream answers, and its request is decided |
//! | `differential` | policy JSON, a NUL byte, request JSON | the component loads and decides exactly as the native core |

// A check fails by panicking: that is how libFuzzer (and the regression test)
// learn of a finding.
#![allow(clippy::panic)]

use policy_core::{Actor, Decision, Policy, Request};
use std::sync::OnceLock;
use taglock_gateway::facts::{MAX_INDEX_DEPTH, MAX_INDEXES_READ, MAX_TAGS_PER_DIGEST_DELETE};
use taglock_gateway::listing::MAX_PAGES;
use taglock_gateway::route::MAX_TAGS_PER_PUSH;
use taglock_gateway::{AllFacts, Answer, Gathering, RequestHead, Route};
use taglock_host_wasmtime::{Host, HostError};

/// The names of the targets, as `cargo xtask fuzz` and the regression test
/// know them (one directory each under `fuzz/regressions/`).
pub const TARGETS: &[&str] = &["policy_load", "request_json", "gateway", "differential"];

/// Runs target `name` on `data`; `false` for an unknown name.
pub fn run(name: &str, data: &[u8]) -> bool {
    match name {
        "policy_load" => policy_load(data),
        "request_json" => request_json(data),
        "gateway" => gateway(data),
        "differential" => differential(data),
        _ => return false,
    }
    true
}

/// A policy with every kind of rule and permission, to decide fuzzed requests
/// under.
const RICH_POLICY: &str = r#"{
  "version": 1,
  "immutability": {
    "protect": "some",
    "rules": [
      { "name": "semver", "tags": { "regex": "^v\\d+\\.\\d+\\.\\d+$" }, "exceptions": ["v0.0.0"] },
      { "name": "prod", "tags": { "glob": "prod*" }, "repositories": { "glob": "acme/*" } }
    ],
    "admin_delete": true
  },
  "permissions": {
    "workspace_admins": ["user:root"],
    "repositories": {
      "web-app": { "admin": ["user:bob"], "write": ["group:devs"], "read": ["group:qa"] },
      "tools": { "write": ["group:devs"] }
    },
    "images": [
      { "name": "acme/web", "repository": "web-app" },
      { "name": "acme/tools", "repository": "tools", "publish": "pipelines-only" }
    ],
    "pipelines_inherit_write": true
  }
}"#;

/// The same policy in audit mode: denials become `would_deny`.
fn policies() -> &'static [Policy] {
    static POLICIES: OnceLock<Vec<Policy>> = OnceLock::new();
    POLICIES.get_or_init(|| {
        let audit =
            RICH_POLICY.replacen(r#""version": 1,"#, r#""version": 1, "mode": "audit","#, 1);
        [RICH_POLICY, audit.as_str()]
            .iter()
            .filter_map(|text| Policy::from_json(text).ok())
            .collect()
    })
}

/// Decides `request` twice under `policy`: the same decision both times, and a
/// status a host can send.
fn decide(policy: &Policy, request: &Request) -> Decision {
    let decision = policy.evaluate(request);
    assert_eq!(decision, policy.evaluate(request), "a decision is stable");
    assert!(
        matches!(decision.status(), 200 | 400 | 401 | 403),
        "unexpected status {}",
        decision.status()
    );
    decision
}

/// Requests every loaded policy is asked.
fn probes() -> Vec<Request> {
    let text = r#"[
      {"operation":"push","image":"acme/web","digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
       "tags":[{"name":"v1.2.0","current":"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"},{"name":"latest"}],
       "image_exists":true,"actor":{"kind":"user","id":"alice","groups":["devs"]}},
      {"operation":"delete","image":"acme/web","target":{"digest":"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"},
       "tags":null,"actor":{"kind":"user","id":"bob"}},
      {"operation":"pull","image":"acme/tools","actor":{"kind":"anonymous"}}
    ]"#;
    policy_core::requests_from_json(text)
        .map(|(requests, _)| requests)
        .unwrap_or_default()
}

/// `policy_load`: any text as a policy.
pub fn policy_load(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Policy::from_json(text) {
        Ok(policy) => {
            for request in probes() {
                decide(&policy, &request);
            }
            for tag in ["v1.2.0", "latest", "prod", "", "x"] {
                let first = policy.test_tag("acme/web", tag);
                assert_eq!(first, policy.test_tag("acme/web", tag));
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "a refused policy says why");
            assert!(!errors.to_string().is_empty());
        }
    }
}

/// `request_json`: any text as a request (or a list of requests).
pub fn request_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut requests = Vec::new();
    if let Ok(request) = Request::from_json(text) {
        requests.push(request);
    }
    if let Ok((many, _)) = policy_core::requests_from_json(text) {
        requests.extend(many);
    }
    for request in &requests {
        for policy in policies() {
            let decision = decide(policy, request);
            let json = serde_json::to_value(&decision);
            assert!(json.is_ok_and(|json| json.is_object()));
        }
    }
}

/// Reads the fuzzer's bytes one choice at a time; past the end, every choice is 0.
struct Script<'a> {
    bytes: &'a [u8],
}

impl Script<'_> {
    fn byte(&mut self) -> u8 {
        let (first, rest) = self
            .bytes
            .split_first()
            .map_or((0, &[][..]), |(f, r)| (*f, r));
        self.bytes = rest;
        first
    }

    /// One of `choices` (the first one past the end of the script).
    fn pick<T: Copy>(&mut self, choices: &[T], otherwise: T) -> T {
        let at = usize::from(self.byte()) % choices.len().max(1);
        choices.get(at).copied().unwrap_or(otherwise)
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.bytes.len());
        let (taken, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        taken
    }

    fn line(&mut self) -> String {
        let end = self
            .bytes
            .iter()
            .position(|b| *b == b'\n')
            .unwrap_or(self.bytes.len());
        let line = String::from_utf8_lossy(self.take(end)).into_owned();
        self.byte();
        line
    }
}

const DIGESTS: &[&str] = &[
    "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
    "garbage",
];

/// One upstream answer, chosen by the script.
fn answer(script: &mut Script<'_>, method: &str) -> Answer {
    let status = script.pick(&[200, 200, 200, 404, 500, 401, 0], 200);
    if status == 0 {
        return Answer::Failed("connection reset".into());
    }
    let mut headers = Vec::new();
    for _ in 0..script.byte() % 3 {
        let digest = script.pick(DIGESTS, "garbage");
        headers.push(("Docker-Content-Digest".to_owned(), digest.to_owned()));
    }
    let media_types = [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "text/html",
    ];
    headers.push((
        "Content-Type".to_owned(),
        script.pick(&media_types, "text/html").to_owned(),
    ));
    if script.byte() % 4 == 0 {
        headers.push((
            "Link".to_owned(),
            "</v2/acme/web/tags/list?last=x&n=1000>; rel=\"next\"".to_owned(),
        ));
    }
    let body = if method == "HEAD" {
        Vec::new()
    } else {
        let len = usize::from(script.byte());
        script.take(len).to_vec()
    };
    Answer::Reply {
        status,
        headers,
        body,
    }
}

/// The most look-ups one gathering can ask for: every page, every tag, every
/// index, plus the pushes' and the existence checks.
const MAX_LOOKUPS: usize =
    MAX_PAGES + MAX_TAGS_PER_DIGEST_DELETE + MAX_INDEXES_READ + MAX_TAGS_PER_PUSH + 2;

/// `gateway`: a request head (method, path, query, Content-Type: one line
/// each, `-` for none), then a script the fake upstream answers from; for a push,
/// the rest of the input is also its manifest.
pub fn gateway(data: &[u8]) {
    let mut script = Script { bytes: data };
    let method = script.line();
    let path = script.line();
    let query = script.line();
    let content_type = script.line();
    let content_types: Vec<&str> = if content_type == "-" {
        Vec::new()
    } else {
        vec![content_type.as_str()]
    };
    let head = RequestHead {
        method: &method,
        path: &path,
        query: (query != "-").then_some(query.as_str()),
        content_types: &content_types,
    };
    let Ok(route) = Route::classify(&head) else {
        return;
    };
    if let Route::PushManifest { tags, .. } = &route {
        assert!(tags.len() <= MAX_TAGS_PER_PUSH, "the tag cap holds");
    }
    let body = script.bytes;
    let needs_body = route.needs_body();
    let actor = Actor::user("alice", &["devs"]);
    let Ok(mut gathering) = Gathering::new(route, actor, needs_body.then_some(body), &AllFacts)
    else {
        return;
    };
    let cut_short = script.byte() % 8 == 0;
    let mut asked = 0usize;
    // Some answers are held back and given later, in another order, as a host
    // answering concurrently does; cut short, the held ones never come.
    let mut held = Vec::new();
    loop {
        if let Some(lookup) = gathering.next_lookup() {
            asked += 1;
            assert!(
                asked <= MAX_LOOKUPS,
                "a gathering asks a bounded number of look-ups"
            );
            assert!(
                lookup.path.starts_with("/v2/"),
                "look-ups stay on the registry API"
            );
            let answer = answer(&mut script, lookup.method);
            if script.byte() % 5 == 0 {
                held.push((lookup.id, answer));
            } else {
                gathering.answer(lookup.id, answer);
            }
            continue;
        }
        match held.pop() {
            Some((id, answer)) if !cut_short => gathering.answer(id, answer),
            _ => break,
        }
    }
    assert!(
        cut_short || gathering.is_done(),
        "every look-up answered means done"
    );
    let Ok(gathered) = gathering.finish() else {
        return;
    };
    if let Request::Delete(delete) = &gathered.request
        && let Some(tags) = &delete.tags
    {
        assert!(tags.len() <= MAX_TAGS_PER_DIGEST_DELETE);
        assert!(tags.iter().all(|tag| tag.via.len() <= MAX_INDEX_DEPTH));
        assert!(
            gathered.unknown.is_none(),
            "known tags have no unknown reason"
        );
    }
    for policy in policies() {
        decide(policy, &gathered.request);
    }
}

/// The component host, started once per process.
fn host() -> Option<&'static Host> {
    static HOST: OnceLock<Option<Host>> = OnceLock::new();
    HOST.get_or_init(|| Host::embedded().ok()).as_ref()
}

/// `differential`: policy JSON, a NUL byte, request JSON; both engines must
/// agree on the load and on every decision.
pub fn differential(data: &[u8]) {
    let split = data.iter().position(|b| *b == 0).unwrap_or(data.len());
    let (policy, request) = data.split_at(split);
    let request = request.get(1..).unwrap_or_default();
    let (Ok(policy), Ok(request)) = (std::str::from_utf8(policy), std::str::from_utf8(request))
    else {
        return;
    };
    let host = host();
    assert!(host.is_some(), "the embedded component starts");
    let Some(host) = host else { return };
    let native = Policy::from_json(policy);
    let wasm = host.load_policy(policy);
    let (native, wasm) = match (native, wasm) {
        (Ok(native), Ok(wasm)) => (native, wasm),
        (Err(native), Err(HostError::Policy(wasm))) => {
            assert_eq!(native, wasm, "both engines refuse a policy alike");
            return;
        }
        (native, wasm) => {
            let (native, wasm) = (native.map(|_| ()), wasm.map(|_| ()));
            panic!("load outcome differs: native {native:?}, component {wasm:?}");
        }
    };
    assert_eq!(native.lints(), wasm.lints(), "both engines lint alike");
    let mut requests = probes();
    if let Ok(request) = Request::from_json(request) {
        requests.push(request);
    }
    for request in &requests {
        let expected = native.evaluate(request);
        match wasm.evaluate(request) {
            Ok(actual) => assert_eq!(actual, expected, "both engines decide alike"),
            Err(err) => panic!("the component could not decide: {err}"),
        }
    }
    for tag in ["v1.2.0", "latest", "prod"] {
        match wasm.test_tag("acme/web", tag) {
            Ok(actual) => assert_eq!(actual, native.test_tag("acme/web", tag)),
            Err(err) => panic!("the component could not test a tag: {err}"),
        }
    }
}
