//! Who is asking: HTTP Basic against the users file, headers set by a trusted
//! authenticating proxy in front, or nobody (pass-through, the registry does its
//! own authentication).

use crate::users::UsersFile;
use arc_swap::ArcSwap;
use base64::Engine as _;
use http::header::{self, HeaderMap, HeaderValue};
use policy_core::{Actor, ActorKind};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use taglock_gateway::Credentials;
use taglock_gateway::Refusal as ProxyError;

/// How the proxy learns the actor of a request: `--auth` on the command line,
/// `auth` in the config file. The first paragraph of each variant's comment is
/// its `taglock serve --help` text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMode {
    /// HTTP Basic against the --users file.
    ///
    /// Checked with bcrypt; verified credentials are remembered.
    Basic,
    /// X-Taglock-User / -Kind / -Groups / -Workspace-Admin from a trusted auth proxy in front.
    ///
    /// `X-Taglock-User`, `X-Taglock-Kind`, `X-Taglock-Groups` and
    /// `X-Taglock-Workspace-Admin`, set by an authenticating proxy in front that
    /// removes any such header the client sent. Never use it on a listener
    /// clients reach directly.
    TrustedHeaders,
    /// Everyone is anonymous to the policy; clients' credentials go to the upstream.
    ///
    /// The client's own `Authorization` goes to the upstream unchanged (for
    /// policies without `permissions`, where the registry authenticates).
    None,
}

impl AuthMode {
    /// The name used on the command line and in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::Basic => "basic",
            AuthMode::TrustedHeaders => "trusted-headers",
            AuthMode::None => "none",
        }
    }

    /// The credentials clients are told to send when asked to log in.
    pub fn credentials(self) -> Credentials {
        match self {
            AuthMode::Basic | AuthMode::TrustedHeaders => Credentials::Password,
            AuthMode::None => Credentials::None,
        }
    }
}

/// How many verified credentials are remembered (bcrypt is slow on purpose;
/// clients send the same credentials with every request of a push).
const VERIFIED_CACHE: usize = 10_000;

/// The users file and the credentials already checked against it.
#[derive(Debug)]
struct Directory {
    users: UsersFile,
    verified: Mutex<HashMap<[u8; 32], Actor>>,
}

/// Authenticates requests; the users file can be replaced while serving.
#[derive(Debug)]
pub struct Identity {
    mode: AuthMode,
    directory: ArcSwap<Directory>,
}

impl Identity {
    /// An authenticator in `mode`; `users` is only consulted in [`AuthMode::Basic`].
    pub fn new(mode: AuthMode, users: UsersFile) -> Identity {
        Identity {
            mode,
            directory: ArcSwap::from_pointee(Directory::new(users)),
        }
    }

    /// The mode in use.
    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// Replaces the users file (e.g. after SIGHUP); forgets verified credentials.
    pub fn replace_users(&self, users: UsersFile) {
        self.directory.store(Arc::new(Directory::new(users)));
    }

    /// The actor of a request: anonymous when it carries no identity, an error
    /// (401 with a challenge) when it carries one that does not check out.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Actor, ProxyError> {
        match self.mode {
            AuthMode::None => Ok(Actor::anonymous()),
            AuthMode::TrustedHeaders => trusted_actor(headers),
            AuthMode::Basic => self.basic(headers).await,
        }
    }

    /// In [`AuthMode::None`], the client's `Authorization` header, which goes to
    /// the upstream unchanged; in the other modes it was meant for the proxy.
    pub fn pass_through(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        match self.mode {
            AuthMode::None => headers.get(header::AUTHORIZATION).cloned(),
            AuthMode::Basic | AuthMode::TrustedHeaders => None,
        }
    }

    async fn basic(&self, headers: &HeaderMap) -> Result<Actor, ProxyError> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Ok(Actor::anonymous());
        };
        let (name, password) = parse_basic(value).ok_or_else(|| {
            ProxyError::unauthorized("taglock accepts HTTP Basic credentials only (docker login / --creds user:password)")
        })?;
        let key = credential_key(&name, &password);
        let directory = self.directory.load_full();
        if let Some(actor) = directory.cached(&key) {
            return Ok(actor);
        }
        let lookup = Arc::clone(&directory);
        let checked = tokio::task::spawn_blocking(move || {
            lookup
                .users
                .verify(&name, &password)
                .map(|entry| entry.actor())
        })
        .await
        .map_err(|_| ProxyError::unavailable("the credential check failed; try again"))?;
        let actor =
            checked.ok_or_else(|| ProxyError::unauthorized("invalid username or password"))?;
        directory.remember(key, actor.clone());
        Ok(actor)
    }
}

impl Directory {
    fn new(users: UsersFile) -> Directory {
        Directory {
            users,
            verified: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, key: &[u8; 32]) -> Option<Actor> {
        let verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        verified.get(key).cloned()
    }

    fn remember(&self, key: [u8; 32], actor: Actor) {
        let mut verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        if verified.len() >= VERIFIED_CACHE {
            verified.clear();
        }
        verified.insert(key, actor);
    }
}

/// The cache key of a credential: a hash, so no password is kept in memory.
fn credential_key(name: &str, password: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([0]);
    hasher.update(password.as_bytes());
    hasher.finalize().into()
}

/// `Basic base64(name:password)` → (name, password).
fn parse_basic(value: &HeaderValue) -> Option<(String, String)> {
    let text = value.to_str().ok()?;
    let (scheme, encoded) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (name, password) = decoded.split_once(':')?;
    Some((name.to_owned(), password.to_owned()))
}

/// The actor an authenticating proxy in front vouches for.
fn trusted_actor(headers: &HeaderMap) -> Result<Actor, ProxyError> {
    let text = |name: &str| -> Result<Option<&str>, ProxyError> {
        headers
            .get(name)
            .map(|v| {
                v.to_str()
                    .map(str::trim)
                    .map_err(|_| ProxyError::unauthorized(format!("header {name} is not text")))
            })
            .transpose()
    };
    let Some(id) = text("x-taglock-user")?.filter(|id| !id.is_empty()) else {
        return Ok(Actor::anonymous());
    };
    let kind = match text("x-taglock-kind")? {
        None | Some("user") => ActorKind::User,
        Some("pipeline") => ActorKind::Pipeline,
        Some("token") => ActorKind::Token,
        Some(other) => {
            return Err(ProxyError::unauthorized(format!(
                "X-Taglock-Kind `{other}` is not user, pipeline or token"
            )));
        }
    };
    let groups = text("x-taglock-groups")?
        .map(|g| {
            g.split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let workspace_admin = match text("x-taglock-workspace-admin")? {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ProxyError::unauthorized(format!(
                "X-Taglock-Workspace-Admin `{other}` is not true or false"
            )));
        }
    };
    Ok(Actor {
        kind,
        id: id.to_owned(),
        groups,
        workspace_admin,
        role: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::UserEntry;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn basic(user: &str, password: &str) -> String {
        crate::upstream::basic_authorization(user, password)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    }

    fn users() -> UsersFile {
        let mut users = UsersFile::default();
        users.upsert(UserEntry::new("alice", "pw", 4).unwrap());
        users
    }

    #[tokio::test]
    async fn basic_credentials_are_checked_and_remembered() {
        let identity = Identity::new(AuthMode::Basic, users());
        let good = headers(&[("authorization", &basic("alice", "pw"))]);
        let actor = identity.authenticate(&good).await.unwrap();
        assert_eq!((actor.kind, actor.id.as_str()), (ActorKind::User, "alice"));
        assert_eq!(identity.directory.load().verified.lock().unwrap().len(), 1);
        assert_eq!(identity.authenticate(&good).await.unwrap(), actor);

        for bad in [
            basic("alice", "wrong"),
            basic("bob", "pw"),
            "Bearer abc".to_owned(),
            "Basic !!".to_owned(),
        ] {
            let err = identity
                .authenticate(&headers(&[("authorization", &bad)]))
                .await
                .unwrap_err();
            assert_eq!(err.status, http::StatusCode::UNAUTHORIZED, "{bad}");
        }
        assert_eq!(
            identity.authenticate(&HeaderMap::new()).await.unwrap(),
            Actor::anonymous()
        );
        assert_eq!(identity.pass_through(&good), None);
    }

    #[tokio::test]
    async fn replacing_the_users_file_forgets_old_credentials() {
        let identity = Identity::new(AuthMode::Basic, users());
        let good = headers(&[("authorization", &basic("alice", "pw"))]);
        identity.authenticate(&good).await.unwrap();
        identity.replace_users(UsersFile::default());
        assert!(identity.authenticate(&good).await.is_err());
    }

    #[tokio::test]
    async fn trusted_headers() {
        let identity = Identity::new(AuthMode::TrustedHeaders, UsersFile::default());
        let actor = identity
            .authenticate(&headers(&[
                ("x-taglock-user", "web-app/production"),
                ("x-taglock-kind", "pipeline"),
                ("x-taglock-groups", "ci, deployers,"),
                ("x-taglock-workspace-admin", "false"),
            ]))
            .await
            .unwrap();
        assert_eq!(actor.kind, ActorKind::Pipeline);
        assert_eq!(actor.pipeline_parts(), ("web-app", Some("production")));
        assert_eq!(actor.groups, ["ci", "deployers"]);
        let admin = identity
            .authenticate(&headers(&[
                ("x-taglock-user", "root"),
                ("x-taglock-workspace-admin", "true"),
            ]))
            .await
            .unwrap();
        assert!(admin.workspace_admin);
        assert!(
            identity
                .authenticate(&headers(&[
                    ("x-taglock-user", "x"),
                    ("x-taglock-kind", "robot")
                ]))
                .await
                .is_err()
        );
        // A Basic header means nothing in this mode.
        let anonymous = identity
            .authenticate(&headers(&[("authorization", &basic("alice", "pw"))]))
            .await
            .unwrap();
        assert_eq!(anonymous, Actor::anonymous());
    }

    #[tokio::test]
    async fn pass_through_mode_is_anonymous_and_forwards_the_client_credentials() {
        let identity = Identity::new(AuthMode::None, UsersFile::default());
        let request = headers(&[("authorization", "Bearer upstream-token")]);
        assert_eq!(
            identity.authenticate(&request).await.unwrap(),
            Actor::anonymous()
        );
        assert_eq!(
            identity.pass_through(&request).unwrap(),
            "Bearer upstream-token"
        );
    }
}
