//! A deliberately naive second implementation of taglock's decision semantics
//! (the model `docs/policy.md` states), used only to
//! check `policy-core` differentially.
//!
//! Nothing here shares code with the core beyond its serde types: names are checked
//! against the OCI grammars written as regexes, globs are matched by a small
//! recursive matcher (not translated to regex), regexes are recompiled on every call,
//! and roles, links and the check order are re-derived in straight-line code.
//! Speed and elegance are non-goals; being obviously right is the goal.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    dead_code,
    clippy::result_large_err
)]

use policy_core::Role;
use policy_core::document::{
    IdenticalRepush, Mode, PermissionsDocument, PolicyDocument, Protect, Publish, ReferrerTags,
    Selector,
};
use policy_core::{Actor, ActorKind, DeleteTarget, Request, TagState};
use regex::bytes::RegexBuilder;
use serde_json::Value;

/// Every field of a decision the differential test compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub allowed: bool,
    pub would_deny: bool,
    pub reason: String,
    pub rule: Option<String>,
    pub protected_tags: Vec<String>,
    pub status: u16,
    /// The OCI error code (`None` when `error` is null).
    pub code: Option<String>,
    pub pattern: Option<String>,
    pub tag: Option<String>,
    pub current_digest: Option<String>,
    /// `detail.via`: absent and empty are the same.
    pub via: Vec<String>,
}

impl Outcome {
    /// Reads the compared fields out of a decision as the core serializes it, checking on the way that the JSON is internally consistent: a denial
    /// has a non-empty message, the OCI error repeats message, reason and rule, and
    /// `status`/`error` agree with `allowed`.
    pub fn from_decision_json(json: &Value) -> Result<Outcome, String> {
        let obj = json.as_object().ok_or("decision is not an object")?;
        let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        let mut expected_keys = vec![
            "allowed",
            "would_deny",
            "reason",
            "message",
            "rule",
            "protected_tags",
            "status",
            "error",
        ];
        expected_keys.sort_unstable();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        if sorted != expected_keys {
            return Err(format!("decision has fields {keys:?}"));
        }
        let allowed = obj["allowed"].as_bool().ok_or("allowed not a bool")?;
        let would_deny = obj["would_deny"].as_bool().ok_or("would_deny not a bool")?;
        let reason = obj["reason"]
            .as_str()
            .ok_or("reason not a string")?
            .to_owned();
        let message = obj["message"].as_str().ok_or("message not a string")?;
        let rule = match &obj["rule"] {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => return Err(format!("rule is {other}")),
        };
        let protected_tags = obj["protected_tags"]
            .as_array()
            .ok_or("protected_tags not an array")?
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or("protected tag not a string")
            })
            .collect::<Result<Vec<_>, _>>()?;
        let status = obj["status"].as_u64().ok_or("status not a number")?;
        let status = u16::try_from(status).map_err(|e| e.to_string())?;
        if reason != "allowed" && message.is_empty() {
            return Err("a denial has an empty message".into());
        }
        if reason == "allowed" && (message.is_empty() || rule.is_some() || would_deny) {
            return Err("an allowed decision has a rule, no message or would_deny".into());
        }
        let mut outcome = Outcome {
            allowed,
            would_deny,
            reason: reason.clone(),
            rule: rule.clone(),
            protected_tags,
            status,
            code: None,
            pattern: None,
            tag: None,
            current_digest: None,
            via: Vec::new(),
        };
        match &obj["error"] {
            Value::Null => {
                if !allowed || status != 200 {
                    return Err("error is null but the request is denied".into());
                }
            }
            Value::Object(body) => {
                if allowed {
                    return Err("an allowed decision carries an error".into());
                }
                let errors = body
                    .get("errors")
                    .and_then(Value::as_array)
                    .ok_or("error.errors missing")?;
                if errors.len() != 1 || body.len() != 1 {
                    return Err("error.errors does not hold exactly one error".into());
                }
                let error = &errors[0];
                if error["message"].as_str() != Some(message) {
                    return Err("error message differs from the decision's".into());
                }
                let detail = error["detail"].as_object().ok_or("detail missing")?;
                if detail["reason"].as_str() != Some(reason.as_str()) {
                    return Err("detail.reason differs from reason".into());
                }
                if detail["rule"].as_str() != rule.as_deref() {
                    return Err("detail.rule differs from rule".into());
                }
                let text = |key: &str| detail.get(key).and_then(Value::as_str).map(str::to_owned);
                outcome.code = error["code"].as_str().map(str::to_owned);
                outcome.pattern = text("pattern");
                outcome.tag = text("tag");
                outcome.current_digest = text("current_digest");
                outcome.via = match detail.get("via") {
                    None => Vec::new(),
                    Some(Value::Array(items)) if !items.is_empty() => items
                        .iter()
                        .map(|v| {
                            v.as_str()
                                .map(str::to_owned)
                                .ok_or("via entry not a string")
                        })
                        .collect::<Result<_, _>>()?,
                    Some(other) => {
                        return Err(format!(
                            "detail.via is {other} (written only when non-empty)"
                        ));
                    }
                };
            }
            other => return Err(format!("error is {other}")),
        }
        Ok(outcome)
    }
}

// ---------------------------------------------------------------------------
// Names: the OCI grammars, written as regexes.

const IMAGE_NAME: &str =
    r"\A[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*\z";
const TAG: &str = r"\A[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}\z";
const DIGEST: &str = r"\A[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+\z";
const SHA256: &str = r"\Asha256:[a-f0-9]{64}\z";
const SHA512: &str = r"\Asha512:[a-f0-9]{128}\z";
const REFERRER: &str = r"\Asha256-[a-f0-9]{64}(?:\.sig|\.att|\.sbom)?\z";

/// Partial (unanchored) match, compiled afresh every call, ASCII classes.
pub fn regex_matches(pattern: &str, haystack: &str) -> bool {
    RegexBuilder::new(pattern)
        .unicode(false)
        .build()
        .expect("reference: pattern compiles")
        .is_match(haystack.as_bytes())
}

pub fn valid_image_name(name: &str) -> bool {
    name.len() <= 255 && regex_matches(IMAGE_NAME, name)
}

pub fn valid_tag(tag: &str) -> bool {
    regex_matches(TAG, tag)
}

pub fn valid_digest(digest: &str) -> bool {
    if !regex_matches(DIGEST, digest) {
        return false;
    }
    if digest.starts_with("sha256:") {
        return regex_matches(SHA256, digest);
    }
    if digest.starts_with("sha512:") {
        return regex_matches(SHA512, digest);
    }
    true
}

pub fn is_referrer_tag(tag: &str) -> bool {
    regex_matches(REFERRER, tag)
}

// ---------------------------------------------------------------------------
// Globs: a recursive matcher over a tiny token tree.

#[derive(Debug, Clone)]
enum Tok {
    Lit(char),
    /// `*`: any run without `/`.
    Star,
    /// `**` (or more stars): anything.
    DoubleStar,
    /// `?`: one character other than `/`.
    Any,
    /// `[...]` / `[!...]`: single characters and ranges.
    Class {
        negated: bool,
        items: Vec<(char, char)>,
    },
    /// `{a,b,...}`.
    Alt(Vec<Vec<Tok>>),
}

fn parse_glob(chars: &[char], i: &mut usize, in_brace: bool) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    while *i < chars.len() {
        let c = chars[*i];
        match c {
            '*' => {
                let mut n = 0;
                while *i < chars.len() && chars[*i] == '*' {
                    n += 1;
                    *i += 1;
                }
                out.push(if n >= 2 { Tok::DoubleStar } else { Tok::Star });
                continue;
            }
            '?' => out.push(Tok::Any),
            '\\' => {
                *i += 1;
                if *i >= chars.len() {
                    return Err("trailing backslash".into());
                }
                out.push(Tok::Lit(chars[*i]));
            }
            '[' => {
                *i += 1;
                let mut negated = false;
                if *i < chars.len() && (chars[*i] == '!' || chars[*i] == '^') {
                    negated = true;
                    *i += 1;
                }
                let first = *i;
                let mut items = Vec::new();
                loop {
                    if *i >= chars.len() {
                        return Err("unclosed class".into());
                    }
                    let mut c = chars[*i];
                    if c == ']' {
                        if *i == first {
                            return Err("empty class".into());
                        }
                        break;
                    }
                    if c == '\\' {
                        *i += 1;
                        if *i >= chars.len() {
                            return Err("trailing backslash".into());
                        }
                        c = chars[*i];
                    }
                    // `x-y` is a range unless the `-` is last.
                    if *i + 2 < chars.len() && chars[*i + 1] == '-' && chars[*i + 2] != ']' {
                        let mut hi = chars[*i + 2];
                        *i += 2;
                        if hi == '\\' {
                            *i += 1;
                            if *i >= chars.len() {
                                return Err("trailing backslash".into());
                            }
                            hi = chars[*i];
                        }
                        if hi < c {
                            return Err("reversed range".into());
                        }
                        items.push((c, hi));
                    } else {
                        items.push((c, c));
                    }
                    *i += 1;
                }
                out.push(Tok::Class { negated, items });
            }
            '{' => {
                *i += 1;
                let mut alternatives = Vec::new();
                loop {
                    alternatives.push(parse_glob(chars, i, true)?);
                    if *i >= chars.len() {
                        return Err("unclosed brace".into());
                    }
                    let stop = chars[*i];
                    *i += 1;
                    if stop == '}' {
                        break;
                    }
                }
                out.push(Tok::Alt(alternatives));
                continue;
            }
            ',' | '}' if in_brace => return Ok(out),
            '}' | ']' => return Err("unmatched closer".into()),
            other => out.push(Tok::Lit(other)),
        }
        *i += 1;
    }
    Ok(out)
}

fn match_toks(toks: &[Tok], name: &[char]) -> bool {
    let Some((first, rest)) = toks.split_first() else {
        return name.is_empty();
    };
    match first {
        Tok::Lit(c) => name.first() == Some(c) && match_toks(rest, &name[1..]),
        Tok::Any => name.first().is_some_and(|&c| c != '/') && match_toks(rest, &name[1..]),
        Tok::Class { negated, items } => match name.first() {
            None => false,
            Some(&c) => {
                let inside = items.iter().any(|&(lo, hi)| lo <= c && c <= hi);
                inside != *negated && match_toks(rest, &name[1..])
            }
        },
        Tok::Star => {
            for k in 0..=name.len() {
                if match_toks(rest, &name[k..]) {
                    return true;
                }
                if k < name.len() && name[k] == '/' {
                    return false;
                }
            }
            false
        }
        Tok::DoubleStar => (0..=name.len()).any(|k| match_toks(rest, &name[k..])),
        Tok::Alt(alternatives) => alternatives.iter().any(|alt| {
            let mut joined = alt.clone();
            joined.extend_from_slice(rest);
            match_toks(&joined, name)
        }),
    }
}

/// Whether `glob` matches the whole of `name`.
pub fn glob_matches(glob: &str, name: &str) -> bool {
    let chars: Vec<char> = glob.chars().collect();
    let mut i = 0;
    let toks = parse_glob(&chars, &mut i, false).expect("reference: glob parses");
    assert_eq!(i, chars.len(), "reference: glob parsed to the end");
    let name: Vec<char> = name.chars().collect();
    match_toks(&toks, &name)
}

/// Whether `glob` is well-formed (for the glob differential property).
pub fn glob_parses(glob: &str) -> bool {
    let chars: Vec<char> = glob.chars().collect();
    let mut i = 0;
    parse_glob(&chars, &mut i, false).is_ok() && i == chars.len()
}

pub fn selector_matches(selector: &Selector, name: &str) -> bool {
    match selector {
        Selector::Regex(pattern) => regex_matches(pattern, name),
        Selector::Matching(globs) => globs.iter().any(|g| glob_matches(g, name)),
        Selector::Excluding(globs) => !globs.iter().any(|g| glob_matches(g, name)),
    }
}

/// The pattern a decision's `detail.pattern` shows for a rule's tag selector.
pub fn selector_display(selector: &Selector) -> String {
    match selector {
        Selector::Regex(pattern) => pattern.clone(),
        Selector::Matching(globs) => globs.join(","),
        Selector::Excluding(globs) => format!("excluding {}", globs.join(",")),
    }
}

// ---------------------------------------------------------------------------
// Immutability.

/// What protects a tag: `protect: all` (`None`), or the index of a rule.
type Protection = Option<usize>;

/// Whether `tag` of `image` is protected, and by what.
pub fn protection(doc: &PolicyDocument, image: &str, tag: &str) -> Option<Protection> {
    let imm = &doc.immutability;
    if imm.protect == Protect::None {
        return None;
    }
    if imm.referrer_tags == ReferrerTags::Mutable && is_referrer_tag(tag) {
        return None;
    }
    let mut by = None;
    if imm.protect == Protect::All {
        by = Some(None);
    } else {
        for (index, rule) in imm.rules.iter().enumerate() {
            let tag_ok = selector_matches(&rule.tags, tag);
            let repo_ok = match &rule.repositories {
                None => true,
                Some(selector) => selector_matches(selector, image),
            };
            if tag_ok && repo_ok {
                by = Some(Some(index));
                break;
            }
        }
    }
    by?;
    for exception in &imm.exceptions {
        if selector_matches(exception, tag) {
            return None;
        }
    }
    by
}

// ---------------------------------------------------------------------------
// Permissions.

fn rank(role: Role) -> u8 {
    match role {
        Role::None => 0,
        Role::Read => 1,
        Role::Write => 2,
        Role::Admin => 3,
    }
}

fn principal_matches(principal: &str, actor: &Actor) -> bool {
    let (kind, id) = principal
        .split_once(':')
        .expect("reference: principal kind");
    match kind {
        "user" => actor.kind == ActorKind::User && actor.id == id,
        "token" => actor.kind == ActorKind::Token && actor.id == id,
        "group" => actor.kind != ActorKind::Anonymous && actor.groups.iter().any(|g| g == id),
        "pipeline" => {
            if actor.kind != ActorKind::Pipeline {
                return false;
            }
            let actor_repo = actor.id.split('/').next().unwrap_or("");
            match id.split_once('/') {
                None => actor_repo == id,
                Some(_) => actor.id == id,
            }
        }
        other => panic!("reference: unknown principal kind {other}"),
    }
}

fn is_workspace_admin(doc: &PolicyDocument, actor: &Actor) -> bool {
    if actor.workspace_admin {
        return true;
    }
    match &doc.permissions {
        None => false,
        Some(p) => p
            .workspace_admins
            .iter()
            .any(|a| principal_matches(a, actor)),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Read,
    Publish { image_exists: bool },
    DeleteTag,
    DeleteContent,
}

/// A denial before audit mode and formatting.
#[derive(Debug, Clone)]
struct Deny {
    reason: &'static str,
    rule: Option<String>,
    pattern: Option<String>,
    tag: Option<String>,
    current_digest: Option<String>,
    /// For a digest delete: the path of the deciding tag.
    via: Vec<String>,
}

impl Deny {
    fn plain(reason: &'static str) -> Deny {
        Deny {
            reason,
            rule: None,
            pattern: None,
            tag: None,
            current_digest: None,
            via: Vec::new(),
        }
    }
}

fn precedence(reason: &str) -> u8 {
    match reason {
        "invalid_request" => 0,
        "authentication_required" => 1,
        "image_not_linked" => 2,
        "permission_denied" => 3,
        "pipelines_only" => 4,
        "tag_immutable" => 5,
        other => panic!("reference: unknown reason {other}"),
    }
}

struct FoundLink<'d> {
    repository: &'d str,
    public: bool,
    publish: Publish,
    overrides: Vec<(&'d str, Role)>,
    record: bool,
}

fn find_link<'d>(perms: &'d PermissionsDocument, image: &str) -> Option<FoundLink<'d>> {
    let make = |entry: &'d policy_core::document::ImageDocument, record| FoundLink {
        repository: &entry.repository,
        public: entry.public,
        publish: entry.publish.unwrap_or(perms.publish),
        overrides: entry
            .overrides
            .iter()
            .map(|(p, r)| (p.as_str(), *r))
            .collect(),
        record,
    };
    for entry in &perms.images {
        if entry.name.as_deref() == Some(image) {
            return Some(make(entry, true));
        }
    }
    for entry in &perms.images {
        if let Some(pattern) = &entry.pattern {
            if glob_matches(pattern, image) {
                return Some(make(entry, false));
            }
        }
    }
    None
}

fn access(doc: &PolicyDocument, image: &str, actor: &Actor, action: Action) -> Option<Deny> {
    if doc.permissions.is_none() && actor.role.is_none() {
        return None;
    }
    let workspace_admin = is_workspace_admin(doc, actor);
    let vouched = doc.permissions.is_none();
    let link = doc.permissions.as_ref().and_then(|p| find_link(p, image));

    let mut role = 0;
    if workspace_admin {
        role = 3;
    } else if let Some(r) = actor.role {
        role = rank(r);
    } else if let (Some(perms), Some(link)) = (&doc.permissions, &link) {
        let mut overridden: Option<u8> = None;
        for (principal, r) in &link.overrides {
            if principal_matches(principal, actor) {
                overridden = Some(overridden.unwrap_or(0).max(rank(*r)));
            }
        }
        if let Some(r) = overridden {
            role = r;
        } else {
            if let Some(grants) = perms.repositories.get(link.repository) {
                for (r, list) in [(3, &grants.admin), (2, &grants.write), (1, &grants.read)] {
                    for principal in list {
                        if principal_matches(principal, actor) && r > role {
                            role = r;
                        }
                    }
                }
            }
            let pipeline_repo = actor.id.split('/').next().unwrap_or("");
            if perms.pipelines_inherit_write
                && actor.kind == ActorKind::Pipeline
                && pipeline_repo == link.repository
                && role < 2
            {
                role = 2;
            }
        }
    }

    let has_record = vouched || link.as_ref().is_some_and(|l| l.record);
    let required = match action {
        Action::Read => 1,
        Action::Publish { image_exists: true } => 2,
        Action::Publish {
            image_exists: false,
        } => {
            if has_record {
                2
            } else {
                3
            }
        }
        Action::DeleteTag => 2,
        Action::DeleteContent => 3,
    };
    let authenticated = actor.kind != ActorKind::Anonymous;
    let public_read =
        action == Action::Read && link.as_ref().is_some_and(|l| l.public) && authenticated;
    let sufficient = role >= required || public_read;

    if !authenticated && !sufficient {
        return Some(Deny::plain("authentication_required"));
    }
    let creating = action
        == Action::Publish {
            image_exists: false,
        };
    if link.is_none() && !vouched && (creating || !workspace_admin) {
        return Some(Deny::plain("image_not_linked"));
    }
    if !sufficient {
        return Some(Deny::plain("permission_denied"));
    }
    let is_publish = matches!(action, Action::Publish { .. });
    let pipelines_only = link
        .as_ref()
        .is_some_and(|l| l.publish == Publish::PipelinesOnly);
    if is_publish && pipelines_only && actor.kind != ActorKind::Pipeline {
        return Some(Deny::plain("pipelines_only"));
    }
    None
}

// ---------------------------------------------------------------------------
// Evaluation.

fn immutable(
    doc: &PolicyDocument,
    by: Protection,
    tag: Option<&str>,
    current: Option<&str>,
) -> Deny {
    let rule = by.map(|index| &doc.immutability.rules[index]);
    Deny {
        reason: "tag_immutable",
        rule: rule.map(|r| r.name.clone()),
        pattern: rule.map(|r| selector_display(&r.tags)),
        tag: tag.map(str::to_owned),
        current_digest: current.map(str::to_owned),
        via: Vec::new(),
    }
}

fn invalid(code: &str, tag: Option<&str>) -> Outcome {
    Outcome {
        allowed: false,
        would_deny: false,
        reason: "invalid_request".into(),
        rule: None,
        protected_tags: Vec::new(),
        status: 400,
        code: Some(code.into()),
        pattern: None,
        tag: tag.map(str::to_owned),
        current_digest: None,
        via: Vec::new(),
    }
}

/// The most digests a tag's `via` may list.
const MAX_VIA: usize = 16;

/// `Err(outcome)` for the first malformed name of a list of tags (name, current
/// digest, then `via`: its length, then each digest).
fn check_tags(tags: &[TagState]) -> Result<(), Outcome> {
    for t in tags {
        if !valid_tag(&t.name) {
            return Err(invalid("TAG_INVALID", Some(&t.name)));
        }
        if let Some(current) = &t.current {
            if !valid_digest(current) {
                return Err(invalid("DIGEST_INVALID", None));
            }
        }
        if t.via.len() > MAX_VIA {
            return Err(invalid("DIGEST_INVALID", None));
        }
        for digest in &t.via {
            if !valid_digest(digest) {
                return Err(invalid("DIGEST_INVALID", None));
            }
        }
    }
    Ok(())
}

fn validate(request: &Request) -> Result<(), Outcome> {
    let image = request.image();
    if !valid_image_name(image) {
        return Err(invalid("NAME_INVALID", None));
    }
    match request {
        Request::Push(r) => {
            if !valid_digest(&r.digest) {
                return Err(invalid("DIGEST_INVALID", None));
            }
            check_tags(&r.tags)
        }
        Request::Delete(r) => {
            match &r.target {
                DeleteTarget::Tag(tag) => {
                    if !valid_tag(tag) {
                        return Err(invalid("TAG_INVALID", Some(tag)));
                    }
                }
                DeleteTarget::Digest(digest) => {
                    if !valid_digest(digest) {
                        return Err(invalid("DIGEST_INVALID", None));
                    }
                }
                DeleteTarget::Image => {}
            }
            match &r.tags {
                Some(tags) => check_tags(tags),
                None => Ok(()),
            }
        }
        Request::Mount(r) => {
            if !valid_image_name(&r.from) {
                return Err(invalid("NAME_INVALID", None));
            }
            Ok(())
        }
        Request::Upload(_) | Request::Pull(_) => Ok(()),
    }
}

fn finish(doc: &PolicyDocument, denial: Option<Deny>, protected_tags: Vec<String>) -> Outcome {
    let Some(d) = denial else {
        return Outcome {
            allowed: true,
            would_deny: false,
            reason: "allowed".into(),
            rule: None,
            protected_tags,
            status: 200,
            code: None,
            pattern: None,
            tag: None,
            current_digest: None,
            via: Vec::new(),
        };
    };
    if doc.mode == Mode::Audit {
        return Outcome {
            allowed: true,
            would_deny: true,
            reason: d.reason.into(),
            rule: d.rule,
            protected_tags,
            status: 200,
            code: None,
            pattern: None,
            tag: None,
            current_digest: None,
            via: Vec::new(),
        };
    }
    let (status, code) = if d.reason == "authentication_required" {
        (401, "UNAUTHORIZED")
    } else {
        (403, "DENIED")
    };
    Outcome {
        allowed: false,
        would_deny: false,
        reason: d.reason.into(),
        rule: d.rule,
        protected_tags: Vec::new(),
        status,
        code: Some(code.into()),
        pattern: d.pattern,
        tag: d.tag,
        current_digest: d.current_digest,
        via: d.via,
    }
}

/// Decides `request` under the policy document `doc` (assumed to load in the core).
pub fn evaluate(doc: &PolicyDocument, request: &Request) -> Outcome {
    if let Err(outcome) = validate(request) {
        return outcome;
    }
    let image = request.image();
    match request {
        Request::Push(r) => {
            let access_denial = access(
                doc,
                image,
                &r.actor,
                Action::Publish {
                    image_exists: r.image_exists,
                },
            );
            let mut protected_tags: Vec<String> = Vec::new();
            let mut immutable_denial = None;
            for t in &r.tags {
                let Some(by) = protection(doc, image, &t.name) else {
                    continue;
                };
                if !protected_tags.contains(&t.name) {
                    protected_tags.push(t.name.clone());
                }
                let exists = t.current.is_some() || t.locked;
                if immutable_denial.is_some() || !exists {
                    continue;
                }
                let identical = t.current.as_deref() == Some(r.digest.as_str());
                if identical && doc.immutability.identical_repush == IdenticalRepush::Allow {
                    continue;
                }
                immutable_denial = Some(immutable(doc, by, Some(&t.name), t.current.as_deref()));
            }
            let denial = if access_denial.is_some() {
                access_denial
            } else {
                immutable_denial
            };
            finish(doc, denial, protected_tags)
        }
        Request::Delete(r) => {
            let action = match r.target {
                DeleteTarget::Tag(_) => Action::DeleteTag,
                DeleteTarget::Digest(_) | DeleteTarget::Image => Action::DeleteContent,
            };
            let access_denial = access(doc, image, &r.actor, action);
            let bypass = doc.immutability.admin_delete && is_workspace_admin(doc, &r.actor);
            let mut immutable_denial = None;
            if !bypass {
                match (&r.target, &r.tags) {
                    (DeleteTarget::Tag(tag), tags) => {
                        if let Some(by) = protection(doc, image, tag) {
                            let mut current = None;
                            for t in tags.iter().flatten() {
                                if &t.name == tag {
                                    current = t.current.clone();
                                    break;
                                }
                            }
                            immutable_denial =
                                Some(immutable(doc, by, Some(tag), current.as_deref()));
                        }
                    }
                    (_, None) => {
                        let imm = &doc.immutability;
                        match imm.protect {
                            Protect::None => {}
                            Protect::All => {
                                immutable_denial = Some(immutable(doc, None, None, None))
                            }
                            Protect::Some => {
                                for (index, rule) in imm.rules.iter().enumerate() {
                                    let applies = match &rule.repositories {
                                        None => true,
                                        Some(s) => selector_matches(s, image),
                                    };
                                    if applies {
                                        immutable_denial =
                                            Some(immutable(doc, Some(index), None, None));
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    (target, Some(tags)) => {
                        for t in tags {
                            if let Some(by) = protection(doc, image, &t.name) {
                                let mut deny =
                                    immutable(doc, by, Some(&t.name), t.current.as_deref());
                                // Only a digest delete reports the path through indexes.
                                if matches!(target, DeleteTarget::Digest(_)) {
                                    deny.via = t.via.clone();
                                }
                                immutable_denial = Some(deny);
                                break;
                            }
                        }
                    }
                }
            }
            let denial = if access_denial.is_some() {
                access_denial
            } else {
                immutable_denial
            };
            finish(doc, denial, Vec::new())
        }
        Request::Upload(r) => {
            let denial = access(
                doc,
                image,
                &r.actor,
                Action::Publish {
                    image_exists: r.image_exists,
                },
            );
            finish(doc, denial, Vec::new())
        }
        Request::Pull(r) => finish(doc, access(doc, image, &r.actor, Action::Read), Vec::new()),
        Request::Mount(r) => {
            let source = access(doc, &r.from, &r.actor, Action::Read);
            let target = access(
                doc,
                image,
                &r.actor,
                Action::Publish {
                    image_exists: r.image_exists,
                },
            );
            let denial = match (source, target) {
                (Some(s), Some(t)) => {
                    if precedence(t.reason) < precedence(s.reason) {
                        Some(t)
                    } else {
                        Some(s)
                    }
                }
                (s, t) => s.or(t),
            };
            finish(doc, denial, Vec::new())
        }
    }
}

// ---------------------------------------------------------------------------
// The pattern tester's view of one tag.

/// What `Policy::test_tag` reports for a valid image and tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagView {
    pub protected: bool,
    pub rule: Option<String>,
    /// Serialized `TagVerdict`: `rule`, `all`, `exception`, `referrer`, `no-rule`, `mode-none`.
    pub because: String,
    /// Every rule (under `some`) whose selectors match, with the matched span.
    pub matches: Vec<(String, usize, usize)>,
    pub exception: Option<usize>,
}

/// The tester's answer: protection as in decisions, plus every matching rule.
pub fn test_tag(doc: &PolicyDocument, image: &str, tag: &str) -> TagView {
    let imm = &doc.immutability;
    let by = protection(doc, image, tag);
    let mut matches = Vec::new();
    if imm.protect == Protect::Some {
        for rule in &imm.rules {
            let applies = match &rule.repositories {
                None => true,
                Some(s) => selector_matches(s, image),
            };
            if !applies || !selector_matches(&rule.tags, tag) {
                continue;
            }
            let (start, end) = match &rule.tags {
                Selector::Regex(p) => {
                    let re = RegexBuilder::new(p).unicode(false).build().unwrap();
                    let m = re.find(tag.as_bytes()).unwrap();
                    (m.start(), m.end())
                }
                _ => (0, tag.len()),
            };
            matches.push((rule.name.clone(), start, end));
        }
    }
    let exception = imm.exceptions.iter().position(|e| selector_matches(e, tag));
    let referrer = imm.referrer_tags == ReferrerTags::Mutable && is_referrer_tag(tag);
    let because = match by {
        Some(None) => "all",
        Some(Some(_)) => "rule",
        None if imm.protect == Protect::None => "mode-none",
        None if referrer => "referrer",
        None if imm.protect == Protect::All => "exception",
        None if exception.is_some() && !matches.is_empty() => "exception",
        None => "no-rule",
    };
    TagView {
        protected: by.is_some(),
        rule: by.flatten().map(|i| imm.rules[i].name.clone()),
        because: because.to_owned(),
        matches,
        exception,
    }
}
