//! The people and the policy of the gateway scenarios, shared by the suites that
//! run them (`serve.rs` through `taglock serve`, `gateways.rs` through both
//! gateways): `semver` tags are immutable and a workspace admin may delete them;
//! `acme/web` belongs to the code repository `web-app` (bob admin, group devs
//! write, group qa read), `acme/tools` to `tools`, which only its pipelines
//! publish.

use super::proxy::Workdir;
use serde_json::{Value, json};
use std::path::Path;

/// The scenarios' policy in `mode` (`enforce` or `audit`).
pub fn policy(mode: &str) -> Value {
    json!({
        "version": 1,
        "mode": mode,
        "immutability": {
            "protect": "some",
            "rules": [ { "name": "semver", "tags": { "regex": "^v\\d+\\.\\d+\\.\\d+$" } } ],
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
    })
}

/// Someone who makes requests in the scenarios.
pub struct Person {
    /// The login (user id), or the CI job's name for a pipeline.
    pub name: &'static str,
    /// The groups.
    pub groups: &'static [&'static str],
    /// A workspace admin.
    pub workspace_admin: bool,
    /// A CI pipeline of this code repository.
    pub pipeline_of: Option<&'static str>,
}

/// Everyone in the scenarios.
pub const PEOPLE: &[Person] = &[
    Person {
        name: "root",
        groups: &[],
        workspace_admin: true,
        pipeline_of: None,
    },
    Person {
        name: "alice",
        groups: &["devs"],
        workspace_admin: false,
        pipeline_of: None,
    },
    Person {
        name: "bob",
        groups: &[],
        workspace_admin: false,
        pipeline_of: None,
    },
    Person {
        name: "quinn",
        groups: &["qa"],
        workspace_admin: false,
        pipeline_of: None,
    },
    Person {
        name: "mallory",
        groups: &[],
        workspace_admin: false,
        pipeline_of: None,
    },
    Person {
        name: "ci-tools",
        groups: &[],
        workspace_admin: false,
        pipeline_of: Some("tools"),
    },
];

/// The person called `name`.
pub fn person(name: &str) -> &'static Person {
    PEOPLE
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no person {name} in the scenarios"))
}

/// Everyone's password: `<name>-secret`.
pub fn password(name: &str) -> String {
    format!("{name}-secret")
}

/// Writes everyone into the users file `users` of `taglock serve`.
pub fn write_users(work: &Workdir, users: &Path) {
    for p in PEOPLE {
        let mut extra = Vec::new();
        for group in p.groups {
            extra.extend(["--group", group]);
        }
        if p.workspace_admin {
            extra.push("--workspace-admin");
        }
        if let Some(repository) = p.pipeline_of {
            extra.extend(["--kind", "pipeline", "--repository", repository]);
        }
        work.add_user(users, p.name, &password(p.name), &extra);
    }
}
