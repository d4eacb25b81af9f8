//! Principals named by grants: `user:<id>`, `group:<name>`, `token:<id>`,
//! `pipeline:<repository>[/<environment>]`.

use crate::request::{Actor, ActorKind};
use std::fmt;

/// Someone a grant or an override names, parsed once at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// `user:<id>`: a user actor with that id.
    User(String),
    /// `group:<name>`: any actor listing that group.
    Group(String),
    /// `token:<id>`: a token actor with that id.
    Token(String),
    /// `pipeline:<repository>`: every pipeline of the repository, whatever its environment;
    /// `pipeline:<repository>/<environment>`: that deployment environment only.
    Pipeline {
        /// The code repository the pipeline runs for.
        repository: String,
        /// The deployment environment, when the grant names one.
        environment: Option<String>,
    },
}

/// Why a principal string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrincipalError {
    /// The `kind:` prefix is missing or unknown.
    #[error("principal `{0}` must start with `user:`, `group:`, `token:` or `pipeline:`")]
    UnknownKind(String),
    /// Nothing follows the prefix.
    #[error("principal `{0}` names nobody: write an id after the `:`")]
    Empty(String),
}

impl Principal {
    /// Parses `kind:id` (`group:devs`; `devs` alone is refused).
    pub fn parse(text: &str) -> Result<Principal, PrincipalError> {
        let Some((kind, id)) = text.split_once(':') else {
            return Err(PrincipalError::UnknownKind(text.to_owned()));
        };
        if id.is_empty() {
            return Err(PrincipalError::Empty(text.to_owned()));
        }
        let id = id.to_owned();
        Ok(match kind {
            "user" => Principal::User(id),
            "group" => Principal::Group(id),
            "token" => Principal::Token(id),
            "pipeline" => match id.split_once('/') {
                Some((repository, environment))
                    if !repository.is_empty() && !environment.is_empty() =>
                {
                    Principal::Pipeline {
                        repository: repository.to_owned(),
                        environment: Some(environment.to_owned()),
                    }
                }
                Some(_) => return Err(PrincipalError::Empty(text.to_owned())),
                None => Principal::Pipeline {
                    repository: id,
                    environment: None,
                },
            },
            _ => return Err(PrincipalError::UnknownKind(text.to_owned())),
        })
    }

    /// Whether this principal names `actor`.
    pub fn matches(&self, actor: &Actor) -> bool {
        match (self, actor.kind) {
            (Principal::User(id), ActorKind::User) | (Principal::Token(id), ActorKind::Token) => {
                *id == actor.id
            }
            (Principal::Group(group), kind) => {
                kind != ActorKind::Anonymous && actor.groups.iter().any(|g| g == group)
            }
            (
                Principal::Pipeline {
                    repository,
                    environment,
                },
                ActorKind::Pipeline,
            ) => {
                let (actor_repository, actor_environment) = actor.pipeline_parts();
                actor_repository == repository
                    && environment
                        .as_ref()
                        .is_none_or(|env| Some(env.as_str()) == actor_environment)
            }
            _ => false,
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::User(id) => write!(f, "user:{id}"),
            Principal::Group(name) => write!(f, "group:{name}"),
            Principal::Token(id) => write!(f, "token:{id}"),
            Principal::Pipeline {
                repository,
                environment: None,
            } => write!(f, "pipeline:{repository}"),
            Principal::Pipeline {
                repository,
                environment: Some(env),
            } => {
                write!(f, "pipeline:{repository}/{env}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Principal;

    #[test]
    fn a_principal_is_kind_colon_id() {
        assert_eq!(
            Principal::parse("group:devs"),
            Ok(Principal::Group("devs".into()))
        );
        assert!(Principal::parse("devs").is_err());
        assert!(Principal::parse("group:").is_err());
    }
}
