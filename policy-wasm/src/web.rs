//! The web build: `policy-core` behind wasm-bindgen, for the JS package and the
//! browser pattern tester (`host-js/`).
//!
//! A translation table and nothing more: JSON text in, `policy-core` decides, JSON
//! text out. Text keeps the boundary small (no per-field glue, no second schema) and
//! lets `policy-core`'s own parsers locate every error by JSON path. Failures are
//! thrown to JS as a JSON string `{"message": …, "errors"|"error": …}` that
//! `host-js/index.js` turns into its typed errors; nothing here can trap the instance.

use policy_core::Limits;
use policy_core::document::{
    IdenticalRepush, ImmutabilityDocument, LimitsSpec, Mode, Protect, Publish, ReferrerTags,
    Selector,
};
use policy_core::{Decision, JsonError, LoadErrors, Policy, Request};
use serde::Serialize;
use wasm_bindgen::prelude::wasm_bindgen;

/// A loaded policy owned by JS: patterns compiled once, evaluated many times.
#[wasm_bindgen]
pub struct WasmPolicy {
    policy: Policy,
}

#[wasm_bindgen]
impl WasmPolicy {
    /// Parses, validates and compiles policy JSON. A refused policy throws
    /// `{"message": "policy refused: …", "errors": [LoadError, …]}` (as JSON text).
    pub fn load(text: &str) -> Result<WasmPolicy, String> {
        Policy::from_json(text)
            .map(|policy| WasmPolicy { policy })
            .map_err(|errors| load_errors(&errors))
    }

    /// Decides one request (JSON text) and returns the decision as JSON
    /// text. A request that is not a request throws
    /// `{"message": …, "error": {path, line, column, message, syntax}}`.
    pub fn evaluate(&self, request: &str) -> Result<String, String> {
        let request = Request::from_json(request).map_err(|err| json_error(&err))?;
        Ok(to_text(&self.policy.evaluate(&request)))
    }

    /// Decides a JSON array of requests, in order; returns the array of decisions.
    /// Error paths start with the request's index, e.g. `[3].tags[0].name`.
    #[wasm_bindgen(js_name = evaluateAll)]
    pub fn evaluate_all(&self, requests: &str) -> Result<String, String> {
        let (requests, _) =
            policy_core::requests_from_json(requests).map_err(|err| json_error(&err))?;
        let decisions: Vec<Decision> = requests
            .iter()
            .map(|request| self.policy.evaluate(request))
            .collect();
        Ok(to_text(&decisions))
    }

    /// Tests every tag of `tags` against `image`: a JSON array of `TagTest`
    /// (protected or not, by which rule, every matching rule with its span).
    #[wasm_bindgen(js_name = testTags)]
    pub fn test_tags(&self, image: &str, tags: Vec<String>) -> String {
        let tests: Vec<_> = tags
            .iter()
            .map(|tag| self.policy.test_tag(image, tag))
            .collect();
        to_text(&tests)
    }

    /// The policy's lints as a JSON array of `Lint`.
    pub fn lints(&self) -> String {
        to_text(self.policy.lints())
    }

    /// The document the policy was loaded from, with defaults filled in, as JSON.
    pub fn document(&self) -> String {
        to_text(self.policy.document())
    }

    /// The limits the policy was validated against: `{"max_rules", "max_pattern_length"}`.
    pub fn limits(&self) -> String {
        to_text(&self.policy.limits())
    }
}

/// The numbers behind a `limits` value (`"bitbucket"`, `"harbor"` or custom), as
/// `{"max_rules", "max_pattern_length"}` JSON, so a UI can show live counters
/// before the policy loads.
#[wasm_bindgen(js_name = limitsFor)]
pub fn limits_for(spec: &str) -> Result<String, String> {
    let spec: LimitsSpec = policy_core::from_json(spec).map_err(|err| json_error(&err))?;
    Ok(to_text(&Limits::from(spec)))
}

/// What every optional setting of a policy document is when it is absent, as JSON
/// (`{"mode", "limits", "immutability": {"protect", "identical_repush",
/// "admin_delete", "referrer_tags"}, "permissions": {"publish"}}`): the core's own
/// defaults, so that a UI shows them without restating them.
#[wasm_bindgen(js_name = documentDefaults)]
pub fn document_defaults() -> String {
    let immutability = ImmutabilityDocument::default();
    to_text(&Defaults {
        mode: Mode::default(),
        limits: LimitsSpec::default(),
        immutability: ImmutabilityDefaults {
            protect: immutability.protect,
            identical_repush: immutability.identical_repush,
            admin_delete: immutability.admin_delete,
            referrer_tags: immutability.referrer_tags,
        },
        permissions: PermissionsDefaults {
            publish: Publish::default(),
        },
    })
}

/// What [`document_defaults`] answers.
#[derive(Serialize)]
struct Defaults {
    mode: Mode,
    limits: LimitsSpec,
    immutability: ImmutabilityDefaults,
    permissions: PermissionsDefaults,
}

#[derive(Serialize)]
struct ImmutabilityDefaults {
    protect: Protect,
    identical_repush: IdenticalRepush,
    admin_delete: bool,
    referrer_tags: ReferrerTags,
}

#[derive(Serialize)]
struct PermissionsDefaults {
    publish: Publish,
}

/// How many characters a selector (`{"regex": …}`, `{"matching": […]}` or
/// `{"excluding": […]}`) counts against `max_pattern_length`.
#[wasm_bindgen(js_name = patternLength)]
pub fn pattern_length(selector: &str) -> Result<usize, String> {
    let selector: Selector = policy_core::from_json(selector).map_err(|err| json_error(&err))?;
    Ok(selector.pattern_length())
}

/// What `load` throws for a refused policy.
#[derive(Serialize)]
struct Refused<'a> {
    message: String,
    errors: &'a LoadErrors,
}

/// What a call throws for input that is not the JSON it expects.
#[derive(Serialize)]
struct Unreadable<'a> {
    message: String,
    error: &'a JsonError,
}

fn load_errors(errors: &LoadErrors) -> String {
    to_text(&Refused {
        message: errors.to_string(),
        errors,
    })
}

fn json_error(error: &JsonError) -> String {
    to_text(&Unreadable {
        message: error.to_string(),
        error,
    })
}

/// Serializes core output in its declared field order (a decision prints exactly as
/// the CLI prints it); these types always serialize, so the fallback is never seen.
fn to_text<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}
