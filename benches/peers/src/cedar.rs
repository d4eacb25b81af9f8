//! taglock requests as Cedar requests and entities.

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid,
    PolicySet, Request, RestrictedExpression,
};
use policy_core::{Actor, ActorKind, Request as TaglockRequest};
use std::collections::{HashMap, HashSet};
use std::str::FromStr;

/// A parsed Cedar policy set and its authorizer.
pub struct CedarPolicy {
    policies: PolicySet,
    authorizer: Authorizer,
}

impl CedarPolicy {
    /// Parses `text` (the "load" the tables time).
    ///
    /// # Panics
    /// When the text does not parse.
    pub fn load(text: &str) -> Self {
        let policies = PolicySet::from_str(text).unwrap_or_else(|e| panic!("Cedar policy: {e:?}"));
        Self {
            policies,
            authorizer: Authorizer::new(),
        }
    }

    /// Whether Cedar allows `request`.
    pub fn decide(&self, request: &CedarRequest) -> bool {
        self.authorizer
            .is_authorized(&request.request, &self.policies, &request.entities)
            .decision()
            == Decision::Allow
    }
}

/// One taglock request as Cedar sees it: the request and the entities it
/// names (the actor with its groups as parents, the image).
pub struct CedarRequest {
    request: Request,
    entities: Entities,
}

fn uid(kind: &str, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(
        EntityTypeName::from_str(kind).expect("entity type name"),
        EntityId::new(id),
    )
}

fn string(value: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(value.to_owned())
}

fn actor_entity(actor: &Actor) -> Entity {
    let parents: HashSet<EntityUid> = actor.groups.iter().map(|g| uid("Group", g)).collect();
    let mut attrs = HashMap::new();
    let kind = match actor.kind {
        ActorKind::Pipeline => {
            let (repository, environment) = actor.pipeline_parts();
            attrs.insert("repository".to_owned(), string(repository));
            if let Some(environment) = environment {
                attrs.insert("environment".to_owned(), string(environment));
            }
            "Pipeline"
        }
        ActorKind::User => "User",
        // Not reached by the workloads (their Cedar translation has no tokens or
        // anonymous actors).
        ActorKind::Token => "Token",
        ActorKind::Anonymous => "Anonymous",
    };
    Entity::new(uid(kind, &actor.id), attrs, parents).expect("actor entity")
}

fn image_entity(image: &str, exists: bool) -> Entity {
    let attrs = HashMap::from([
        ("name".to_owned(), string(image)),
        ("exists".to_owned(), RestrictedExpression::new_bool(exists)),
    ]);
    Entity::new(uid("Image", image), attrs, HashSet::new()).expect("image entity")
}

impl CedarRequest {
    /// Translates a pull or a one-tag push.
    ///
    /// # Panics
    /// On other requests, and on pushes of several tags (Cedar has no quantifier
    /// over a set: a multi-tag push would be one authorization per tag).
    pub fn new(request: &TaglockRequest) -> Self {
        let (actor, image, exists, action, context) = match request {
            TaglockRequest::Pull(pull) => (&pull.actor, &pull.image, true, "pull", Vec::new()),
            TaglockRequest::Push(push) => {
                assert_eq!(push.tags.len(), 1, "one tag per Cedar push request");
                let tag = &push.tags[0];
                let mut context = vec![
                    ("digest".to_owned(), string(&push.digest)),
                    ("tag".to_owned(), string(&tag.name)),
                ];
                if let Some(current) = &tag.current {
                    context.push(("current".to_owned(), string(current)));
                }
                (&push.actor, &push.image, push.image_exists, "push", context)
            }
            other => panic!("no Cedar translation for {other:?}"),
        };
        let principal = actor_entity(actor);
        let resource = image_entity(image, exists);
        let request = Request::new(
            principal.uid(),
            uid("Action", action),
            resource.uid(),
            Context::from_pairs(context).expect("context"),
            None,
        )
        .expect("Cedar request");
        let groups = actor.groups.iter().map(|g| {
            Entity::new(uid("Group", g), HashMap::new(), HashSet::new()).expect("group entity")
        });
        let entities = Entities::from_entities(
            groups.chain([principal, resource]).collect::<Vec<_>>(),
            None,
        )
        .expect("entities");
        Self { request, entities }
    }
}
