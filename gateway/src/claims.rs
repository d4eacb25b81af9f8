//! The actor of a verified token: which claims of a JWT payload (already
//! verified by the host — Envoy's `jwt_authn`, say) name the actor's id, kind,
//! groups, pipeline repository and environment, and workspace-admin flag.
//!
//! Claims the mapping does not name are ignored; a named claim of the wrong
//! type, or a kind the core does not know, refuses the request (401), so an
//! identity provider's surprise never becomes a more powerful actor.

use crate::reply::Refusal;
use policy_core::{Actor, ActorKind};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The most groups taken from a token; more refuse the request.
pub const MAX_GROUPS: usize = 256;

/// Which claims give the actor. Every field names a top-level claim of the payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClaimNames {
    /// The actor's id (a user or token id). Default `sub`.
    pub id: String,
    /// The actor's kind, `user`, `pipeline` or `token`; absent claim: the
    /// actor is a pipeline when [`repository`](ClaimNames::repository) is
    /// present, else a user. `None`: never read.
    pub kind: Option<String>,
    /// The groups, a list of strings or one comma-separated string. `None`: never read.
    pub groups: Option<String>,
    /// The code repository of a pipeline (e.g. a CI token's `repository`). When
    /// present in the payload, the actor is the pipeline of that repository.
    pub repository: Option<String>,
    /// The deployment environment of a pipeline.
    pub environment: Option<String>,
    /// A boolean claim: the actor is a workspace admin.
    pub workspace_admin: Option<String>,
}

impl Default for ClaimNames {
    fn default() -> ClaimNames {
        ClaimNames {
            id: "sub".to_owned(),
            kind: None,
            groups: Some("groups".to_owned()),
            repository: None,
            environment: None,
            workspace_admin: None,
        }
    }
}

impl ClaimNames {
    /// The actor a verified payload names. A payload without the id claim (and
    /// without a repository claim) is refused: a verified token always names someone.
    pub fn actor(&self, payload: &Map<String, Value>) -> Result<Actor, Refusal> {
        let text = |name: &Option<String>| -> Result<Option<String>, Refusal> {
            let Some(name) = name else { return Ok(None) };
            match payload.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
                Some(_) => Err(bad(name, "a non-empty string")),
            }
        };
        let repository = text(&self.repository)?;
        let environment = text(&self.environment)?;
        let kind = match text(&self.kind)?.as_deref() {
            None if repository.is_some() => ActorKind::Pipeline,
            None | Some("user") => ActorKind::User,
            Some("pipeline") => ActorKind::Pipeline,
            Some("token") => ActorKind::Token,
            Some(other) => {
                return Err(Refusal::unauthorized(format!(
                    "the token's kind `{other}` is not user, pipeline or token"
                )));
            }
        };
        let id = if kind == ActorKind::Pipeline {
            let Some(repository) = repository.or(text(&Some(self.id.clone()))?) else {
                return Err(bad(
                    self.repository.as_deref().unwrap_or(&self.id),
                    "the pipeline's repository",
                ));
            };
            match environment {
                Some(environment) => format!("{repository}/{environment}"),
                None => repository,
            }
        } else {
            text(&Some(self.id.clone()))?.ok_or_else(|| bad(&self.id, "the actor's id"))?
        };
        let groups = match self.groups.as_ref().and_then(|name| payload.get(name)) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(list)) => list
                .split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(str::to_owned)
                .collect(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad(self.groups.as_deref().unwrap_or_default(), "strings"))?,
            Some(_) => {
                return Err(bad(
                    self.groups.as_deref().unwrap_or_default(),
                    "a list of strings",
                ));
            }
        };
        if groups.len() > MAX_GROUPS {
            return Err(Refusal::unauthorized(format!(
                "the token names more than {MAX_GROUPS} groups"
            )));
        }
        let workspace_admin = match self
            .workspace_admin
            .as_ref()
            .and_then(|name| payload.get(name))
        {
            None | Some(Value::Null) => false,
            Some(Value::Bool(admin)) => *admin,
            Some(_) => {
                return Err(bad(
                    self.workspace_admin.as_deref().unwrap_or_default(),
                    "a boolean",
                ));
            }
        };
        Ok(Actor {
            kind,
            id,
            groups,
            workspace_admin,
            role: None,
        })
    }
}

fn bad(claim: &str, expected: &str) -> Refusal {
    Refusal::unauthorized(format!("the token's claim `{claim}` must be {expected}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payload(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn users_with_groups() {
        let names = ClaimNames::default();
        let actor = names
            .actor(&payload(json!({"sub": "alice", "groups": ["dev", "ops"]})))
            .unwrap();
        assert_eq!(actor, Actor::user("alice", &["dev", "ops"]));
        let actor = names
            .actor(&payload(json!({"sub": "bob", "groups": "a, b"})))
            .unwrap();
        assert_eq!(actor.groups, ["a", "b"]);
    }

    #[test]
    fn pipelines_from_the_repository_claim() {
        let names = ClaimNames {
            repository: Some("repository".into()),
            environment: Some("environment".into()),
            workspace_admin: Some("admin".into()),
            ..ClaimNames::default()
        };
        let actor = names
            .actor(&payload(
                json!({"sub": "x", "repository": "web-app", "environment": "prod"}),
            ))
            .unwrap();
        assert_eq!(actor, Actor::pipeline("web-app", Some("prod")));
        let admin = names
            .actor(&payload(json!({"sub": "root", "admin": true})))
            .unwrap();
        assert!(admin.workspace_admin);
        assert_eq!(admin.kind, ActorKind::User);
    }

    #[test]
    fn surprises_are_refused() {
        let names = ClaimNames {
            kind: Some("kind".into()),
            workspace_admin: Some("admin".into()),
            ..ClaimNames::default()
        };
        for bad in [
            json!({}),
            json!({"sub": 7}),
            json!({"sub": ""}),
            json!({"sub": "a", "kind": "root"}),
            json!({"sub": "a", "groups": [1]}),
            json!({"sub": "a", "groups": {"x": 1}}),
            json!({"sub": "a", "admin": "yes"}),
            json!({"sub": "a", "groups": vec!["g"; MAX_GROUPS + 1]}),
        ] {
            let refusal = names.actor(&payload(bad.clone())).unwrap_err();
            assert_eq!(refusal.status, 401, "{bad}");
        }
        let token = names
            .actor(&payload(json!({"sub": "ci", "kind": "token"})))
            .unwrap();
        assert_eq!(token.kind, ActorKind::Token);
    }
}
