#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! The taglock filter inside a real Envoy logging in to its registry with its
//! own credentials (`taglock envoy bootstrap --upstream-user
//! --upstream-password-file`), in JWT identity mode: in front of a distribution
//! registry with HTTP Basic (htpasswd) and in front of one with token
//! authentication (the test token issuer). The filter's look-ups and the
//! requests it forwards carry its credentials; its protections hold; wrong
//! credentials fail closed (503) and change nothing; neither the password nor
//! a token is ever in Envoy's log. Envoy, docker-registry must be installed; a
//! test fails, never skips, when they are not.

mod support;

use serde_json::{Value, json};
use std::path::PathBuf;
use support::envoy::Envoy;
use support::http::Client;
use support::jwt::{self, claims};
use support::oci::Image;
use support::proxy::Workdir;
use support::registry::Registry;
use support::token::{Issuer, User};

/// The filter's own account at the registry.
const FILTER_USER: &str = "taglock-envoy";
const FILTER_PASSWORD: &str = "envoy-upstream-secret";

/// `semver` tags are immutable; nobody may delete them.
fn policy() -> Value {
    json!({
        "version": 1,
        "mode": "enforce",
        "immutability": {
            "protect": "some",
            "rules": [ { "name": "semver", "tags": { "regex": "^v\\d+\\.\\d+\\.\\d+$" } } ],
            "admin_delete": false
        }
    })
}

/// How the registry behind Envoy authenticates.
enum Upstream {
    Token,
    Htpasswd,
}

/// A registry, Envoy in front of it, and the files. Fields drop in order.
struct Stack {
    envoy: Envoy,
    registry: Registry,
    issuer: Option<Issuer>,
    jwt: jwt::Issuer,
    out: PathBuf,
    _work: Workdir,
}

impl Stack {
    /// Envoy (JWT identity) in front of `upstream`, logging in with `password`.
    fn start(upstream: Upstream, password: &str) -> Stack {
        let work = Workdir::new();
        let (registry, issuer) = match upstream {
            Upstream::Token => {
                let issuer = Issuer::start(vec![
                    User::everywhere(FILTER_USER, FILTER_PASSWORD, &["pull", "push", "delete"]),
                    User::everywhere("reader", "reader-secret", &["pull"]),
                ]);
                (Registry::start_with_token(&issuer), Some(issuer))
            }
            Upstream::Htpasswd => {
                let htpasswd = work.path("htpasswd");
                std::fs::write(
                    &htpasswd,
                    format!(
                        "{FILTER_USER}:{}\n",
                        bcrypt::hash(FILTER_PASSWORD, 4).unwrap()
                    ),
                )
                .unwrap();
                (Registry::start_with_htpasswd(&htpasswd), None)
            }
        };
        let jwt = jwt::Issuer::new("test-key");
        let jwks = work.write_json("jwks.json", &jwt.jwks());
        let policy = work.write_json("policy.json", &policy());
        let password_file = work.path("upstream-password");
        std::fs::write(&password_file, format!("{password}\n")).unwrap();
        let out = work.path("envoy");
        let realm = issuer.as_ref().map(Issuer::realm);
        let mut extra = vec![
            "--jwt-issuer".to_owned(),
            jwt::ISSUER.to_owned(),
            "--jwt-jwks".to_owned(),
            jwks.to_str().unwrap().to_owned(),
            "--jwt-audience".to_owned(),
            jwt::AUDIENCE.to_owned(),
            "--upstream-user".to_owned(),
            FILTER_USER.to_owned(),
            "--upstream-password-file".to_owned(),
            password_file.to_str().unwrap().to_owned(),
        ];
        if let Some(realm) = realm {
            // The issuer listens on another port than the registry: Envoy needs
            // a cluster for it, which bootstrap adds for a named realm.
            extra.push("--upstream-token-realm".to_owned());
            extra.push(realm);
        }
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let envoy = Envoy::start(&policy, &registry.host(), &out, &extra);
        Stack {
            envoy,
            registry,
            issuer,
            jwt,
            out,
            _work: work,
        }
    }

    /// A client of the registry around Envoy, allowed to pull `image`.
    fn direct(&self, image: &str) -> Client {
        match &self.issuer {
            Some(issuer) => {
                let token = issuer.token("reader", &[&format!("repository:{image}:pull")]);
                self.registry.client().bearer(&token)
            }
            None => self.registry.client().login(FILTER_USER, FILTER_PASSWORD),
        }
    }

    /// Envoy's client with a verified JWT.
    fn client(&self) -> Client {
        self.envoy
            .client()
            .bearer(&self.jwt.token(&claims("alice", &["writers"])))
    }

    /// Whether a secret of the filter's shows in Envoy's log or stdout.
    fn assert_no_secret_logged(&self) {
        let log = self.envoy.log();
        let basic = base64_basic(FILTER_USER, FILTER_PASSWORD);
        assert!(!log.contains(FILTER_PASSWORD), "the password is in the log");
        assert!(
            !log.contains(&basic),
            "the Basic credentials are in the log"
        );
        for token in self.issuer.iter().flat_map(Issuer::tokens) {
            assert!(!log.contains(&token), "a token is in the log");
        }
    }
}

/// `user:password` in base64, as HTTP Basic sends it.
fn base64_basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

/// What both registries must show through Envoy.
fn protections_hold(stack: &Stack) {
    let original = Image::new("original");
    let other = Image::new("other");
    let client = stack.client();

    let pushed = client.push_image("acme/web", "v1.0.0", &original);
    assert_eq!(pushed.status, 201, "push: {pushed}\n{}", stack.envoy.log());
    let direct = stack.direct("acme/web");
    assert_eq!(
        direct.manifest_digest("acme/web", "v1.0.0").as_deref(),
        Some(original.manifest.digest.as_str())
    );

    // The overwrite is refused by the decision (the filter read the tag's
    // digest with its own credentials), and the registry is unchanged.
    let refused = client.push_image("acme/web", "v1.0.0", &other);
    assert_eq!(refused.status, 403, "{refused}\n{}", stack.envoy.log());
    assert_eq!(refused.error_code().as_deref(), Some("DENIED"), "{refused}");
    assert_eq!(
        direct.manifest_digest("acme/web", "v1.0.0").as_deref(),
        Some(original.manifest.digest.as_str())
    );
    assert_eq!(
        direct.manifest_digest("acme/web", &other.manifest.digest),
        None
    );

    // A delete by digest of the protected manifest is refused too.
    let deleted = client.delete_manifest("acme/web", &original.manifest.digest);
    assert_eq!(deleted.status, 403, "{deleted}");
    assert_eq!(deleted.error_code().as_deref(), Some("DENIED"), "{deleted}");
    assert_eq!(
        direct.manifest_digest("acme/web", "v1.0.0").as_deref(),
        Some(original.manifest.digest.as_str())
    );

    // An unprotected tag moves; a pull works.
    let latest = client.push_image("acme/web", "latest", &other);
    assert_eq!(latest.status, 201, "{latest}");
    assert_eq!(
        direct.manifest_digest("acme/web", "latest").as_deref(),
        Some(other.manifest.digest.as_str())
    );
    assert_eq!(
        client.manifest_digest("acme/web", "v1.0.0").as_deref(),
        Some(original.manifest.digest.as_str())
    );
    stack.assert_no_secret_logged();
}

#[cfg(unix)]
fn assert_private(stack: &Stack) {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(stack.out.join("envoy.yaml"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "envoy.yaml holds the password");
}

#[cfg(not(unix))]
fn assert_private(_stack: &Stack) {}

#[test]
fn behind_htpasswd_the_filter_logs_in_with_basic() {
    let stack = Stack::start(Upstream::Htpasswd, FILTER_PASSWORD);
    assert_private(&stack);
    protections_hold(&stack);
}

#[test]
fn behind_a_token_registry_the_filter_gets_tokens_from_the_realm() {
    let stack = Stack::start(Upstream::Token, FILTER_PASSWORD);
    protections_hold(&stack);
    let issuer = stack.issuer.as_ref().unwrap();
    let seen = issuer.seen();
    assert!(issuer.issued() > 0, "no token was issued");
    assert!(
        seen.iter()
            .all(|s| s.user.as_deref() == Some(FILTER_USER) && s.issued),
        "{seen:?}"
    );
    // Every token is for the request's own repository.
    assert!(
        seen.iter()
            .all(|s| s.scope.is_empty() || s.scope.contains("repository:acme/web:")),
        "{seen:?}"
    );
}

fn wrong_credentials_fail_closed(upstream: Upstream) {
    let stack = Stack::start(upstream, "not-the-password");
    let image = Image::new("refused");
    let put = stack
        .client()
        .put_manifest("acme/web", "v1.0.0", &image.manifest);
    assert_eq!(put.status, 503, "{put}\n{}", stack.envoy.log());
    assert_eq!(put.error_code().as_deref(), Some("UNAVAILABLE"), "{put}");
    assert_eq!(
        stack
            .direct("acme/web")
            .manifest_digest("acme/web", "v1.0.0"),
        None
    );
    let log = stack.envoy.log();
    assert!(
        !log.contains("not-the-password"),
        "the password is in the log"
    );
    assert!(
        !log.contains(&base64_basic(FILTER_USER, "not-the-password")),
        "the Basic credentials are in the log"
    );
}

#[test]
fn wrong_credentials_fail_closed_behind_htpasswd() {
    wrong_credentials_fail_closed(Upstream::Htpasswd);
}

#[test]
fn wrong_credentials_fail_closed_behind_a_token_registry() {
    wrong_credentials_fail_closed(Upstream::Token);
}
