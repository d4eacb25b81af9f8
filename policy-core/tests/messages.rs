//! The exact words of each denial. Messages are what a developer reads when a
//! push is refused, so their wording is pinned here, one case per way a request
//! is refused (the conformance corpus checks only that they name the right
//! things).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use policy_core::{Policy, Request};

const POLICY: &str = r#"{
  "version": 1,
  "immutability": {
    "protect": "some",
    "rules": [{ "name": "semver", "tags": { "regex": "^v\\d+$" } }]
  },
  "permissions": {
    "workspace_admins": ["user:root"],
    "repositories": {
      "web-app": { "admin": ["user:alice"], "write": ["group:devs", "pipeline:web-app/prod"], "read": ["user:bob", "token:ci"] },
      "api": { "admin": ["user:alice"], "write": ["user:carol", "pipeline:api"] }
    },
    "images": [
      { "name": "acme/web", "repository": "web-app" },
      { "name": "acme/api", "repository": "api", "publish": "pipelines-only" },
      { "pattern": "acme/new/**", "repository": "web-app" }
    ]
  }
}"#;

const ALL: &str =
    r#"{ "version": 1, "immutability": { "protect": "all", "identical_repush": "deny" } }"#;

const ALL_NO_ADMIN_DELETE: &str =
    r#"{ "version": 1, "immutability": { "protect": "all", "admin_delete": false } }"#;

fn message(policy: &str, request: &str) -> String {
    let policy = Policy::from_json(policy).unwrap();
    let decision = policy.evaluate(&Request::from_json(request).unwrap());
    assert!(!decision.allowed(), "allowed: {request}");
    decision.message().to_owned()
}

fn digest(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

#[test]
fn permission_denials_are_worded_exactly() {
    let cases = [
        (
            r#"{"operation": "pull", "image": "acme/web", "actor": {"kind": "user", "id": "zed"}}"#,
            "user zed needs read on repository web-app to pull acme/web, but has none",
        ),
        (
            r#"{"operation": "push", "image": "acme/web", "digest": "DIGEST", "tags": [{"name": "dev"}], "image_exists": true, "actor": {"kind": "token", "id": "ci"}}"#,
            "token ci needs write on repository web-app to push to acme/web, but has read",
        ),
        (
            r#"{"operation": "push", "image": "acme/new/tool", "digest": "DIGEST", "tags": [], "image_exists": false, "actor": {"kind": "pipeline", "id": "web-app/prod"}}"#,
            "pipeline web-app/prod needs admin on repository web-app to push to acme/new/tool, but has write (image acme/new/tool has no record yet: a repository admin pushes it first, or adds a record so writers can)",
        ),
        (
            r#"{"operation": "pull", "image": "acme/web", "actor": {"kind": "anonymous"}}"#,
            "authentication required to pull acme/web: log in (docker login) and retry",
        ),
        (
            r#"{"operation": "push", "image": "other/thing", "digest": "DIGEST", "tags": [], "image_exists": true, "actor": {"kind": "user", "id": "alice"}}"#,
            "image other/thing is not linked to a repository; a workspace admin must link it in the policy before anyone can push to it",
        ),
        (
            r#"{"operation": "push", "image": "acme/api", "digest": "DIGEST", "tags": [], "image_exists": true, "actor": {"kind": "user", "id": "carol"}}"#,
            "image acme/api accepts pushes from pipelines only; user carol must publish it through a pipeline of api",
        ),
        (
            r#"{"operation": "mount", "image": "acme/api", "from": "acme/web", "image_exists": true, "actor": {"kind": "user", "id": "carol"}}"#,
            "user carol needs read on repository web-app to mount blobs from acme/web, but has none",
        ),
    ];
    for (request, expected) in cases {
        let request = request.replace("DIGEST", &digest('a'));
        assert_eq!(message(POLICY, &request), expected, "{request}");
    }
}

#[test]
fn overwrite_denials_are_worded_exactly() {
    let push = |tag: &str, current: Option<String>, locked: bool| {
        let current = current.map_or("null".to_owned(), |c| format!("\"{c}\""));
        format!(
            r#"{{"operation": "push", "image": "acme/web", "digest": "{new}", "tags": [{{"name": "{tag}", "current": {current}, "locked": {locked}}}], "image_exists": true, "actor": {{"kind": "user", "id": "alice"}}}}"#,
            new = digest('a'),
        )
    };
    let cases = [
        (
            POLICY,
            push("v1", Some(digest('b')), false),
            "tag v1 of acme/web is immutable (rule \"semver\") and already points to sha256:bbbbbbbbbbbb…; push a new tag instead",
        ),
        (
            POLICY,
            push("v2", None, true),
            "tag v2 of acme/web is immutable (rule \"semver\") and was locked when first pushed; push a new tag instead",
        ),
        (
            ALL,
            push("latest", Some(digest('a')), false),
            "tag latest of acme/web is immutable (all tags are protected) and this policy refuses even an identical re-push of sha256:aaaaaaaaaaaa…; push a new tag instead",
        ),
    ];
    for (policy, request, expected) in cases {
        assert_eq!(message(policy, &request), expected, "{request}");
    }
}

#[test]
fn delete_denials_are_worded_exactly() {
    let (a, b, c) = (digest('a'), digest('b'), digest('c'));
    let delete = |target: &str, tags: &str| {
        format!(
            r#"{{"operation": "delete", "image": "acme/web", "target": {target}, "tags": {tags}, "actor": {{"kind": "user", "id": "alice"}}}}"#
        )
    };
    let tail = "only a workspace admin may delete it";
    let cases = [
        (
            POLICY,
            delete(r#"{"tag": "v1"}"#, &format!(r#"[{{"name": "v1", "current": "{a}"}}]"#)),
            format!("tag v1 of acme/web is immutable (rule \"semver\"); {tail}"),
        ),
        (
            POLICY,
            delete(&format!(r#"{{"digest": "{a}"}}"#), "null"),
            format!(
                "the tags of manifest sha256:aaaaaaaaaaaa… of acme/web are unknown and rule \"semver\" could protect them, so the delete is refused (fail closed); {tail}"
            ),
        ),
        (
            ALL,
            delete(r#""image""#, "null"),
            format!(
                "the tags of image acme/web are unknown and protect: all could protect them, so the delete is refused (fail closed); {tail}"
            ),
        ),
        (
            POLICY,
            delete(
                &format!(r#"{{"digest": "{a}"}}"#),
                &format!(r#"[{{"name": "dev", "current": "{a}"}}, {{"name": "v2", "current": "{a}"}}]"#),
            ),
            format!("manifest sha256:aaaaaaaaaaaa… of acme/web is referenced by immutable tag v2 (rule \"semver\"); {tail}"),
        ),
        (
            POLICY,
            delete(
                &format!(r#"{{"digest": "{a}"}}"#),
                &format!(r#"[{{"name": "v3", "current": "{b}", "via": ["{b}"]}}]"#),
            ),
            format!("manifest sha256:aaaaaaaaaaaa… of acme/web is reachable from immutable tag v3 (rule \"semver\") through index sha256:bbbbbbbbbbbb…; {tail}"),
        ),
        (
            POLICY,
            delete(
                &format!(r#"{{"digest": "{a}"}}"#),
                &format!(r#"[{{"name": "v3", "current": "{b}", "via": ["{b}", "{c}"]}}]"#),
            ),
            format!("manifest sha256:aaaaaaaaaaaa… of acme/web is reachable from immutable tag v3 (rule \"semver\") through indexes sha256:bbbbbbbbbbbb… → sha256:cccccccccccc…; {tail}"),
        ),
        (
            ALL_NO_ADMIN_DELETE,
            delete(r#""image""#, &format!(r#"[{{"name": "latest", "current": "{a}"}}]"#)),
            "image acme/web holds immutable tag latest (all tags are protected); nobody may delete it (admin_delete is off)".to_owned(),
        ),
    ];
    for (policy, request, expected) in cases {
        assert_eq!(message(policy, &request), expected, "{request}");
    }
    let too_long = format!(
        r#"[{{"name": "v4", "current": "{a}", "via": [{}]}}]"#,
        vec![format!("\"{b}\""); 17].join(", ")
    );
    assert_eq!(
        message(
            POLICY,
            &delete(&format!(r#"{{"digest": "{a}"}}"#), &too_long)
        ),
        "invalid `via` of tag v4: 17 digests, more than the 16 a tag may list"
    );
}
