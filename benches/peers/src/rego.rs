//! taglock requests as Rego input, decided by regorus.

use policy_core::{ActorKind, Request};
use regorus::{Engine, Value};
use serde_json::json;

/// A regorus engine with taglock's logic and one translated policy loaded.
pub struct RegoPolicy {
    engine: Engine,
}

/// The rule every decision evaluates.
const ENTRY: &str = "data.taglock.allow";

/// The constants every policy module defines (`package policy`).
const DATA: [&str; 6] = [
    "workspace_admins",
    "repositories",
    "records",
    "patterns",
    "pipelines_inherit_write",
    "rules",
];

impl RegoPolicy {
    /// Loads the translated policy: the policy modules (`package policy`, all
    /// constants) are evaluated once into `data.policy`, then the logic module is
    /// parsed and prepared with that data — Rego's usual split of logic (Rego)
    /// and configuration (data), so the constants are not re-evaluated on every
    /// decision. This is the "load" the tables time (the first evaluation, which
    /// prepares the rules, included).
    ///
    /// # Panics
    /// When a module does not parse or the entry point does not evaluate.
    pub fn load(modules: &[(&str, &str)]) -> Self {
        let mut constants = Engine::new();
        for (name, text) in modules {
            constants
                .add_policy((*name).to_owned(), (*text).to_owned())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let mut policy = serde_json::Map::new();
        for name in DATA {
            let value = constants
                .eval_rule(format!("data.policy.{name}"))
                .unwrap_or_else(|e| panic!("data.policy.{name}: {e}"));
            let json = value
                .to_json_str()
                .unwrap_or_else(|e| panic!("data.policy.{name}: {e}"));
            let json: serde_json::Value = serde_json::from_str(&json).expect("regorus writes JSON");
            policy.insert((*name).to_owned(), json);
        }
        let data = json!({ "policy": policy }).to_string();

        let mut engine = Engine::new();
        engine
            .add_data(Value::from_json_str(&data).expect("data JSON"))
            .unwrap_or_else(|e| panic!("data: {e}"));
        engine
            .add_policy("taglock.rego".to_owned(), crate::REGO_LOGIC.to_owned())
            .unwrap_or_else(|e| panic!("taglock.rego: {e}"));
        let mut policy = Self { engine };
        // Prepares the engine (rule analysis happens on the first evaluation).
        policy.decide(&Value::from_json_str(r#"{"operation": "none"}"#).expect("input"));
        policy
    }

    /// Whether the policy allows `input` (from [`input`]).
    ///
    /// # Panics
    /// When the evaluation fails or does not produce a boolean.
    pub fn decide(&mut self, input: &Value) -> bool {
        self.engine.set_input(input.clone());
        match self.engine.eval_rule(ENTRY.to_owned()) {
            Ok(Value::Bool(allowed)) => allowed,
            other => panic!("{ENTRY}: {other:?}"),
        }
    }
}

/// The taglock request JSON, as `input`.
///
/// # Panics
/// On requests other than pull and push.
pub fn input(request: &Request) -> Value {
    let actor = |actor: &policy_core::Actor| {
        let kind = match actor.kind {
            ActorKind::User => "user",
            ActorKind::Pipeline => "pipeline",
            ActorKind::Token => "token",
            ActorKind::Anonymous => "anonymous",
        };
        json!({ "kind": kind, "id": actor.id, "groups": actor.groups })
    };
    let value = match request {
        Request::Pull(pull) => json!({
            "operation": "pull",
            "image": pull.image,
            "actor": actor(&pull.actor),
        }),
        Request::Push(push) => json!({
            "operation": "push",
            "image": push.image,
            "digest": push.digest,
            "tags": push.tags.iter().map(|t| match &t.current {
                Some(current) => json!({ "name": t.name, "current": current }),
                None => json!({ "name": t.name }),
            }).collect::<Vec<_>>(),
            "image_exists": push.image_exists,
            "actor": actor(&push.actor),
        }),
        other => panic!("no Rego translation for {other:?}"),
    };
    Value::from_json_str(&value.to_string()).expect("input JSON")
}
