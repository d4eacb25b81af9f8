//! taglock against peer policy engines on the same workloads.
//!
//! Four engines decide the same requests:
//!
//! - **taglock native**: `policy_core::Policy::evaluate`;
//! - **taglock component**: the embedded WebAssembly component through
//!   `taglock_host_wasmtime` (`WasmPolicy::evaluate`);
//! - **Cedar** (`cedar-policy`): the policies translated by hand into
//!   `peers/*.cedar`, requests turned into Cedar principal/action/resource/context
//!   and entities (`cedar` module);
//! - **Rego** (`regorus`): taglock's decision logic in `peers/taglock.rego`, each
//!   policy translated into data modules `peers/*.rego`, the taglock request JSON
//!   as `input` (`rego` module).
//!
//! Three workloads ([`workloads`]): Harbor-max (15 glob rules with repository
//! selectors), Bitbucket-max (7 regex rules), and Permissions (grants to users,
//! groups and pipelines, no immutability rules). Every request of every workload
//! is decided by every engine and checked against taglock native by
//! [`check_agreement`] before anything is timed.
//!
//! The timing loop is `benches/peers.rs`:
//! `cargo bench --manifest-path benches/peers/Cargo.toml`.

pub mod cedar;
pub mod rego;

use policy_core::{Actor, Policy, PullRequest, PushRequest, Request, TagState};
use taglock_host_wasmtime::{Host, WasmPolicy};

/// Bitbucket-max: the file `policy-core/benches/decide.rs` measures too.
pub const BITBUCKET_MAX: &str =
    include_str!("../../../policy-core/benches/policies/bitbucket-max.json");

/// Harbor-max: the file `policy-core/benches/decide.rs` measures too.
pub const HARBOR_MAX: &str = include_str!("../../../policy-core/benches/policies/harbor-max.json");

/// Permissions workload: the `permissions` section of Bitbucket-max alone
/// (no immutability rules: `protect` defaults to `none`).
pub fn permissions_policy() -> String {
    let mut value: serde_json::Value =
        serde_json::from_str(BITBUCKET_MAX).expect("BITBUCKET_MAX is JSON");
    if let Some(object) = value.as_object_mut() {
        object.remove("immutability");
        object.remove("limits");
    }
    value.to_string()
}

/// The logic module every Rego workload loads.
pub const REGO_LOGIC: &str = include_str!("../peers/taglock.rego");

/// One policy, in every engine's language.
pub struct Translation {
    /// Cedar policy text (concatenated files).
    pub cedar: String,
    /// Rego modules (file name, text) besides [`REGO_LOGIC`].
    pub rego: Vec<(&'static str, &'static str)>,
}

/// One request of a workload.
pub struct Case {
    /// Short name in the tables.
    pub name: &'static str,
    /// The request, as taglock decides it.
    pub request: Request,
}

/// One workload: a policy and its request mix.
pub struct Workload {
    /// Name in the tables.
    pub name: &'static str,
    /// taglock policy JSON.
    pub taglock: String,
    /// The same policy for the peers.
    pub translation: Translation,
    /// The request mix (timed).
    pub cases: Vec<Case>,
    /// More requests, decided and compared but not timed: they widen the check
    /// of the translations beyond the timed mix.
    pub probes: Vec<Request>,
}

fn digest(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

fn push(image: &str, tag: TagState, image_exists: bool, actor: Actor) -> Case {
    Case {
        name: "",
        request: Request::Push(PushRequest {
            image: image.to_owned(),
            digest: digest('a'),
            tags: vec![tag],
            image_exists,
            actor,
        }),
    }
}

fn pull(image: &str, actor: Actor) -> Case {
    Case {
        name: "",
        request: Request::Pull(PullRequest {
            image: image.to_owned(),
            actor,
        }),
    }
}

fn named(name: &'static str, case: Case) -> Case {
    Case { name, ..case }
}

/// The immutability mix on one image: a writer pushes a new protected tag, then
/// overwrites it, overwrites an unprotected tag; a reader pulls, an outsider
/// does not.
fn immutability_cases(image: &str, protected: &str, unprotected: &str) -> Vec<Case> {
    let writer = || Actor::user("dev-1", &["devs"]);
    vec![
        named(
            "push new tag (allow)",
            push(image, TagState::new_tag(protected), true, writer()),
        ),
        named(
            "overwrite protected (deny)",
            push(
                image,
                TagState::existing(protected, digest('b')),
                true,
                writer(),
            ),
        ),
        named(
            "overwrite unprotected (allow)",
            push(
                image,
                TagState::existing(unprotected, digest('b')),
                true,
                writer(),
            ),
        ),
        named(
            "pull, group read (allow)",
            pull(image, Actor::user("quinn", &["staff", "qa"])),
        ),
        named(
            "pull, no role (deny)",
            pull(image, Actor::user("mallory", &["staff"])),
        ),
    ]
}

fn permissions_cases() -> Vec<Case> {
    let exists = |name| TagState::existing(name, digest('b'));
    vec![
        named(
            "pull, group read (allow)",
            pull("acme/web", Actor::user("quinn", &["staff", "qa"])),
        ),
        named(
            "pull, no role (deny)",
            pull("acme/web", Actor::user("mallory", &["staff"])),
        ),
        named(
            "pull, public (allow)",
            pull("acme/tools/cli", Actor::user("mallory", &["staff"])),
        ),
        named(
            "push, group write (allow)",
            push(
                "acme/web",
                exists("latest"),
                true,
                Actor::user("dev-1", &["devs"]),
            ),
        ),
        named(
            "push, override read (deny)",
            push(
                "acme/web",
                exists("latest"),
                true,
                Actor::user("bob", &["devs"]),
            ),
        ),
        named(
            "push, pipelines-only user (deny)",
            push(
                "acme/web-worker",
                exists("latest"),
                true,
                Actor::user("alice", &[]),
            ),
        ),
        named(
            "push, pipeline (allow)",
            push(
                "acme/web-worker",
                exists("latest"),
                true,
                Actor::pipeline("web-app", Some("prod")),
            ),
        ),
        named(
            "first push, pattern, writer (deny)",
            push(
                "acme/tools/new",
                TagState::new_tag("v1"),
                false,
                Actor::user("pat", &["platform"]),
            ),
        ),
    ]
}

/// Overwrites of many tags in every repository a Harbor-max rule names (except
/// `infra/charts/*`, whose `?` globs Cedar cannot express), by an actor the
/// permissions let through, so the rules decide.
fn harbor_rule_probes() -> Vec<Request> {
    let images = [
        "team-a/x",
        "team-a/x/y",
        "team-b/x",
        "team-c/x",
        "team-c/x/y",
        "platform/base/x",
        "platform/base/x/y",
        "platform/tools/a/b",
        "mirror/a/b",
        "data/models/m",
        "data/models/m/n",
        "data/jobs/j/k",
        "security/s",
        "mobile/ios/app",
        "mobile/android/app",
        "mobile/web/app",
        "mobile/ios/a/b",
        "edge/eu/prod",
        "edge/eu/x/prod",
        "edge/eu/dev",
        "legacy/a",
        "archive/b/c",
        "apps/a",
        "apps/a/b",
        "other/x",
    ];
    let tags = [
        "v1.2.3",
        "v1.2",
        "v1",
        "va.b.c",
        "release-1",
        "release-x",
        "rc-1",
        "test-2",
        "nightly",
        "nightly-7",
        "dev-3",
        "latest",
        "1.2",
        "1.2.3",
        "12.34",
        "a.b",
        "1.x",
        "stable",
        "prod",
        "staging",
        "prod-1",
        "staging-2",
        "model-v2",
        "model-x",
        "pr-5",
        "latest-stable",
        "build-9",
        "build-x",
        "store-1",
        "x",
        "v12.3.4x",
        "vx1.2.3",
    ];
    let mut probes = Vec::new();
    for image in images {
        // Root (a workspace admin) may push anywhere but into pipelines-only data/**.
        let actor = if image.starts_with("data/") {
            Actor::pipeline("data", Some("prod"))
        } else {
            Actor::user("root", &[])
        };
        for tag in tags {
            probes.push(
                push(
                    image,
                    TagState::existing(tag, digest('b')),
                    true,
                    actor.clone(),
                )
                .request,
            );
        }
    }
    probes
}

/// Overwrites of tags around each Bitbucket-max regex, by a repository admin.
fn bitbucket_rule_probes() -> Vec<Request> {
    let tags = [
        "prod",
        "production",
        "xprod",
        "v1.2.3",
        "v10.20.30",
        "v1.2.3.4",
        "v1.2",
        "v.1.2",
        "v1..2",
        "v1.2.",
        "va.b.c",
        "V1.2.3",
        "release-",
        "release-x.y",
        "releasex",
        "staging",
        "staging2",
        "hotfix-1",
        "hotfix-",
        "hotfix-1a",
        "hotfix-a1",
        "v1.2.3-rc.4",
        "v1.2.3-rc.4x",
        "v1.2.3-rc.",
        "v1.2-rc.1",
        "v1.2.3-rc1",
        "v1.2.3-rcx.1",
        "v1.2.3-rc.4.5",
        "v1.2.3-rc.4-rc.5",
        "v1.2.3_rc.4",
        "stable-abc",
        "stable-",
        "stable-ABC",
        "stable-a1",
        "stable-a-b",
        "latest",
        "build-7",
    ];
    tags.iter()
        .map(|tag| {
            push(
                "acme/web",
                TagState::existing(*tag, digest('b')),
                true,
                Actor::user("alice", &[]),
            )
            .request
        })
        .collect()
}

/// Pull, push and first push by many actors into images of every kind of link.
fn permission_probes(actors: &[Actor], images: &[&str]) -> Vec<Request> {
    let mut probes = Vec::new();
    for actor in actors {
        for image in images {
            probes.push(pull(image, actor.clone()).request);
            for exists in [true, false] {
                probes.push(push(image, TagState::new_tag("t1"), exists, actor.clone()).request);
            }
        }
    }
    probes
}

fn bitbucket_permission_probes() -> Vec<Request> {
    permission_probes(
        &[
            Actor::user("root", &[]),
            Actor::user("alice", &[]),
            Actor::user("bob", &["devs"]),
            Actor::user("bob", &[]),
            Actor::user("dev-1", &["devs"]),
            Actor::user("quinn", &["qa"]),
            Actor::user("sam", &["support", "platform"]),
            Actor::user("mallory", &[]),
            Actor::user("dora", &[]),
            Actor::user("pat", &["platform"]),
            Actor::pipeline("web-app", Some("prod")),
            Actor::pipeline("web-app", None),
            Actor::pipeline("tools", Some("prod")),
            Actor::pipeline("tools", Some("dev")),
            Actor::pipeline("other", None),
        ],
        &[
            "acme/web",
            "acme/web-worker",
            "acme/tools/cli",
            "acme/tools/a/b",
            "acme/other",
        ],
    )
}

fn harbor_permission_probes() -> Vec<Request> {
    permission_probes(
        &[
            Actor::user("root", &[]),
            Actor::user("alice", &[]),
            Actor::user("erin", &[]),
            Actor::user("dora", &[]),
            Actor::user("dev-1", &["devs"]),
            Actor::user("quinn", &["qa"]),
            Actor::user("ana", &["analysts"]),
            Actor::user("dan", &["data"]),
            Actor::user("pat", &["platform"]),
            Actor::user("mallory", &[]),
            Actor::pipeline("apps", None),
            Actor::pipeline("data", Some("prod")),
            Actor::pipeline("data", Some("dev")),
            Actor::pipeline("platform", Some("ci")),
        ],
        &[
            "apps/web/frontend",
            "platform/base/x",
            "data/jobs/etl",
            "other/x",
        ],
    )
}

/// The three workloads.
pub fn workloads() -> Vec<Workload> {
    vec![
        Workload {
            name: "Harbor-max",
            taglock: HARBOR_MAX.to_owned(),
            translation: Translation {
                cedar: [
                    include_str!("../peers/harbor-permissions.cedar"),
                    include_str!("../peers/harbor-rules.cedar"),
                ]
                .concat(),
                rego: vec![
                    (
                        "harbor-permissions.rego",
                        include_str!("../peers/harbor-permissions.rego"),
                    ),
                    (
                        "harbor-rules.rego",
                        include_str!("../peers/harbor-rules.rego"),
                    ),
                ],
            },
            cases: immutability_cases("apps/web/frontend", "v1.4.2", "build-7"),
            probes: [harbor_rule_probes(), harbor_permission_probes()].concat(),
        },
        Workload {
            name: "Bitbucket-max",
            taglock: BITBUCKET_MAX.to_owned(),
            translation: Translation {
                cedar: [
                    include_str!("../peers/bitbucket-permissions.cedar"),
                    include_str!("../peers/bitbucket-rules.cedar"),
                ]
                .concat(),
                rego: vec![
                    (
                        "bitbucket-permissions.rego",
                        include_str!("../peers/bitbucket-permissions.rego"),
                    ),
                    (
                        "bitbucket-rules.rego",
                        include_str!("../peers/bitbucket-rules.rego"),
                    ),
                ],
            },
            cases: immutability_cases("acme/web", "v1.4.2", "build-7"),
            probes: bitbucket_rule_probes(),
        },
        Workload {
            name: "Permissions",
            taglock: permissions_policy(),
            translation: Translation {
                cedar: include_str!("../peers/bitbucket-permissions.cedar").to_owned(),
                rego: vec![
                    (
                        "bitbucket-permissions.rego",
                        include_str!("../peers/bitbucket-permissions.rego"),
                    ),
                    (
                        "permissions-rules.rego",
                        include_str!("../peers/permissions-rules.rego"),
                    ),
                ],
            },
            cases: permissions_cases(),
            probes: bitbucket_permission_probes(),
        },
    ]
}

/// The four engines, in table order.
pub const ENGINES: [&str; 4] = ["taglock native", "taglock component", "cedar", "regorus"];

/// One workload loaded into every engine, with every request prepared for each.
pub struct Loaded {
    /// taglock native.
    pub native: Policy,
    /// taglock component.
    pub component: WasmPolicy,
    /// Cedar.
    pub cedar: cedar::CedarPolicy,
    /// Rego.
    pub rego: rego::RegoPolicy,
    /// Requests for Cedar, one per case.
    pub cedar_requests: Vec<cedar::CedarRequest>,
    /// Inputs for Rego, one per case.
    pub rego_inputs: Vec<regorus::Value>,
}

impl Loaded {
    /// Loads `workload` into every engine (`host`: the component's host).
    pub fn new(host: &Host, workload: &Workload) -> Self {
        let native = Policy::from_json(&workload.taglock).expect("taglock policy loads");
        let component = host
            .load_policy(&workload.taglock)
            .expect("component loads the policy");
        let cedar = cedar::CedarPolicy::load(&workload.translation.cedar);
        let rego = rego::RegoPolicy::load(&workload.translation.rego);
        let cedar_requests = workload
            .cases
            .iter()
            .map(|case| cedar::CedarRequest::new(&case.request))
            .collect();
        let rego_inputs = workload
            .cases
            .iter()
            .map(|case| rego::input(&case.request))
            .collect();
        Self {
            native,
            component,
            cedar,
            rego,
            cedar_requests,
            rego_inputs,
        }
    }

    /// Case `index` decided by engine `engine` (an index into [`ENGINES`]).
    pub fn decide(&mut self, workload: &Workload, engine: usize, index: usize) -> bool {
        let request = &workload.cases[index].request;
        match engine {
            2 => self.cedar.decide(&self.cedar_requests[index]),
            3 => self.rego.decide(&self.rego_inputs[index]),
            _ => self.decide_request(engine, request),
        }
    }

    /// Any request decided by engine `engine`, translated on the spot for the peers.
    pub fn decide_request(&mut self, engine: usize, request: &Request) -> bool {
        match engine {
            0 => self.native.evaluate(request).allowed(),
            1 => self
                .component
                .evaluate(request)
                .expect("component decides")
                .allowed(),
            2 => self.cedar.decide(&cedar::CedarRequest::new(request)),
            _ => self.rego.decide(&rego::input(request)),
        }
    }
}

/// Asserts that every engine decides every case of `workload` as taglock native
/// does (allow/deny), and that taglock native decides as the case name says.
///
/// # Panics
/// On the first disagreement, naming the workload, the case and the engine.
pub fn check_agreement(loaded: &mut Loaded, workload: &Workload) {
    for (index, case) in workload.cases.iter().enumerate() {
        let expected = loaded.decide(workload, 0, index);
        let named = if case.name.contains("(allow)") {
            Some(true)
        } else if case.name.contains("(deny)") {
            Some(false)
        } else {
            None
        };
        if let Some(named) = named {
            assert_eq!(
                expected, named,
                "{}: taglock native decides \"{}\" as {}, the case says otherwise",
                workload.name, case.name, expected
            );
        }
        for (engine, engine_name) in ENGINES.iter().enumerate().skip(1) {
            let got = loaded.decide(workload, engine, index);
            assert_eq!(
                got,
                expected,
                "{}: \"{}\": {engine_name} says {}, taglock native says {}",
                workload.name,
                case.name,
                if got { "allow" } else { "deny" },
                if expected { "allow" } else { "deny" },
            );
        }
    }
}

/// Decides every probe of `workload` with every engine; returns how many
/// requests were compared and how many of them were allowed.
///
/// # Panics
/// On the first disagreement with taglock native.
pub fn check_probes(loaded: &mut Loaded, workload: &Workload) -> (usize, usize) {
    let mut allowed = 0;
    for request in &workload.probes {
        let expected = loaded.decide_request(0, request);
        allowed += usize::from(expected);
        for (engine, engine_name) in ENGINES.iter().enumerate().skip(1) {
            let got = loaded.decide_request(engine, request);
            assert_eq!(
                got, expected,
                "{}: probe {request:?}: {engine_name} says {got}, taglock native says {expected}",
                workload.name
            );
        }
    }
    (workload.probes.len(), allowed)
}
