//! One client request through the filter, as a translation table over the
//! gateway crate (the same steps `taglock serve` takes):
//!
//! 1. request headers: the actor, [`Route::classify`]; a refusal is answered
//!    at once. A manifest push continues its headers and waits for its body
//!    (pausing in the headers callback would starve the body); any other
//!    request pauses here while its facts are gathered.
//! 2. the write lock ([`Route::write_lock`], shared by every worker), then the
//!    look-ups ([`Gathering`]) sent with `dispatch_http_call` on the registry
//!    cluster, at most `facts_concurrency` at once, within `facts_timeout_ms`.
//! 3. the decision: a denial is answered with its OCI error (for a push, Envoy
//!    then resets the upstream stream, so the registry stores nothing); an
//!    allowed request resumes, with the audit-mode `Warning`.
//! 4. the lock is released when the registry's response headers arrive, or
//!    when the stream ends.

use crate::config::Identity;
use crate::host;
use crate::locks::LockError;
use crate::metadata;
use crate::root::{Counter, Shared};
use policy_core::{Actor, Decision};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, LogLevel, MapType};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;
use taglock_gateway::facts::MAX_FACT_BODY;
use taglock_gateway::manifest::MAX_MANIFEST_BYTES;
use taglock_gateway::{
    Answer, AuditRecord, Exchange as Line, Gathered, Gathering, LookupId, Refusal, Reply,
    RequestHead, Route, audit_warning, catalog,
};

/// The challenge of a 401 in JWT mode.
const BEARER_CHALLENGE: &str = "Bearer realm=\"taglock\"";
/// The filter-state property the decision is written to (the access log reads
/// it as `%FILTER_STATE(wasm.taglock_decision:PLAIN)%`).
pub const DECISION_PROPERTY: &str = "taglock_decision";

/// Where a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Headers not seen yet.
    Start,
    /// A manifest push waiting for the end of its body.
    Body,
    /// Facts being gathered (the request is paused).
    Gathering,
    /// Forwarded (or nothing to decide).
    Forwarded,
    /// Answered by the filter.
    Answered,
}

/// One request.
pub struct Exchange {
    shared: Option<Rc<Shared>>,
    stage: Stage,
    method: String,
    path: String,
    route: Option<Route>,
    actor: Actor,
    authorization: Option<String>,
    gathering: Option<Gathering>,
    in_flight: HashMap<u32, LookupId>,
    deadline_ms: u64,
    lock_owner: Option<u64>,
    warning: Option<String>,
    catalog: bool,
    paused: bool,
}

impl Exchange {
    /// A request of a worker configured with `shared` (`None`: the worker has
    /// no usable configuration, and every request is refused).
    pub fn new(shared: Option<Rc<Shared>>) -> Exchange {
        Exchange {
            shared,
            stage: Stage::Start,
            method: String::new(),
            path: String::new(),
            route: None,
            actor: Actor::anonymous(),
            authorization: None,
            gathering: None,
            in_flight: HashMap::new(),
            deadline_ms: 0,
            lock_owner: None,
            warning: None,
            catalog: false,
            paused: false,
        }
    }

    fn challenge(&self) -> Option<&'static str> {
        match self.shared.as_ref().map(|s| &s.config.identity) {
            Some(Identity::Jwt { .. }) => Some(BEARER_CHALLENGE),
            _ => None,
        }
    }

    fn line(&self) -> Line<'_> {
        Line {
            method: &self.method,
            path: &self.path,
        }
    }

    /// Answers with the gateway's refusal: counted, logged, sent.
    fn refuse(&mut self, refusal: Refusal) -> Action {
        if let Some(shared) = &self.shared {
            shared.metrics.count(Counter::Refused);
        }
        let time = crate::clock::rfc3339_millis(host::now_ms());
        let actor = Some(&self.actor);
        let engine = self
            .shared
            .as_ref()
            .map_or("", |shared| shared.config.filter_sha256.as_str());
        let record = AuditRecord::refused(&time, self.line(), actor, &refusal, engine);
        host::log(LogLevel::Warn, &audit_text(&record.to_line()));
        let reply = refusal.reply(self.challenge());
        self.answer(&reply)
    }

    fn answer(&mut self, reply: &Reply) -> Action {
        self.release();
        self.stage = Stage::Answered;
        if let Err(status) = host::send(reply) {
            host::log(
                LogLevel::Error,
                &format!("taglock: cannot answer the client ({status:?}); resetting the stream"),
            );
            let _ = hostcalls::reset_http_request();
        }
        Action::Pause
    }

    fn release(&mut self) {
        if let Some(owner) = self.lock_owner.take() {
            host::release(owner);
        }
    }

    /// The request headers: who asks, which route, and the next step.
    fn headers(&mut self, end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else {
            return self.refuse(Refusal::unavailable(
                "taglock has no usable configuration on this worker; nothing was forwarded",
            ));
        };
        let headers = match hostcalls::get_map(MapType::HttpRequestHeaders) {
            Ok(headers) => headers,
            Err(status) => {
                return self.refuse(Refusal::unavailable(format!(
                    "taglock cannot read the request headers ({status:?})"
                )));
            }
        };
        let value = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        self.method = value(":method").unwrap_or_default().to_owned();
        self.path = value(":path").unwrap_or_default().to_owned();
        self.authorization = value("authorization").map(str::to_owned);
        let content_types: Vec<&str> = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.as_str())
            .collect();
        match &shared.config.identity {
            Identity::Registry => {}
            Identity::Jwt {
                payload_key,
                claims,
            } => match read_actor(payload_key, claims) {
                Ok(actor) => self.actor = actor,
                Err(refusal) => return self.refuse(refusal),
            },
        }
        let (path, query) = match self.path.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (self.path.as_str(), None),
        };
        let route = Route::classify(&RequestHead {
            method: &self.method,
            path,
            query,
            content_types: &content_types,
        });
        let route = match route {
            Ok(route) => route,
            Err(refusal) => return self.refuse(refusal),
        };
        let must_log_in = matches!(shared.config.identity, Identity::Jwt { .. })
            && !self.actor.is_authenticated()
            && shared.policy.checks_permissions();
        match route {
            Route::Base | Route::Catalog if must_log_in => {
                self.refuse(Refusal::unauthorized("log in first: send a bearer token"))
            }
            Route::Base => {
                self.stage = Stage::Forwarded;
                Action::Continue
            }
            Route::Catalog => {
                self.catalog = true;
                self.stage = Stage::Forwarded;
                Action::Continue
            }
            route if route.needs_body() && !end_of_stream => {
                self.route = Some(route);
                self.stage = Stage::Body;
                Action::Continue
            }
            route => {
                let body: &[u8] = &[];
                let body = route.needs_body().then_some(body);
                self.start(&shared, route, body)
            }
        }
    }

    /// Locks, starts the gathering, and sends the first look-ups.
    fn start(&mut self, shared: &Rc<Shared>, route: Route, body: Option<&[u8]>) -> Action {
        match host::acquire(route.write_lock(), shared.config.lock_ttl_ms) {
            Ok(owner) => self.lock_owner = owner,
            Err(err) => {
                if matches!(err, LockError::Busy(_)) {
                    shared.metrics.count(Counter::LockBusy);
                }
                return self.refuse(Refusal::unavailable(err.to_string()));
            }
        }
        let gathering = match Gathering::new(route, self.actor.clone(), body) {
            Ok(gathering) => gathering,
            Err(refusal) => return self.refuse(refusal),
        };
        self.gathering = Some(gathering);
        self.deadline_ms = host::now_ms().saturating_add(shared.config.facts_timeout_ms);
        self.stage = Stage::Gathering;
        self.pump(shared)
    }

    /// Sends look-ups while there is room; decides when the facts are in (or
    /// the time is up). `Pause` while waiting.
    fn pump(&mut self, shared: &Rc<Shared>) -> Action {
        loop {
            let Some(gathering) = self.gathering.as_mut() else {
                return Action::Continue;
            };
            let now = host::now_ms();
            if gathering.is_done() || now >= self.deadline_ms {
                return self.decide(shared);
            }
            if self.in_flight.len() >= shared.config.facts_concurrency {
                return self.pause();
            }
            let Some(lookup) = gathering.next_lookup() else {
                if self.in_flight.is_empty() {
                    return self.decide(shared);
                }
                return self.pause();
            };
            let mut headers: Vec<(&str, &str)> = vec![
                (":method", lookup.method),
                (":path", &lookup.path),
                (":authority", &shared.config.authority),
                (":scheme", "http"),
            ];
            let accept = lookup.accept.join(", ");
            if !accept.is_empty() {
                headers.push(("accept", &accept));
            }
            if let (Identity::Registry, Some(authorization)) =
                (&shared.config.identity, &self.authorization)
            {
                headers.push(("authorization", authorization));
            }
            let timeout = Duration::from_millis(self.deadline_ms.saturating_sub(now).max(1));
            match hostcalls::dispatch_http_call(
                &shared.config.cluster,
                headers,
                None,
                vec![],
                timeout,
            ) {
                Ok(token) => {
                    self.in_flight.insert(token, lookup.id);
                }
                Err(status) => {
                    host::log(
                        LogLevel::Error,
                        &format!(
                            "taglock: cannot call cluster `{}` ({status:?})",
                            shared.config.cluster
                        ),
                    );
                    gathering.answer(
                        lookup.id,
                        Answer::Failed(format!(
                            "the registry cluster cannot be called ({status:?})"
                        )),
                    );
                }
            }
        }
    }

    fn pause(&mut self) -> Action {
        self.paused = true;
        Action::Pause
    }

    /// Finishes the gathering and asks the policy.
    fn decide(&mut self, shared: &Rc<Shared>) -> Action {
        let Some(gathering) = self.gathering.take() else {
            return Action::Continue;
        };
        self.in_flight.clear();
        let gathered = match gathering.finish() {
            Ok(gathered) => gathered,
            Err(refusal) => return self.refuse(refusal),
        };
        let Gathered { request, unknown } = &gathered;
        if let Some(why) = unknown {
            host::log(
                LogLevel::Warn,
                &format!(
                    "taglock: a fact of {} is unknown ({why}); judged fail-closed",
                    request.image()
                ),
            );
        }
        let decision = shared.policy.evaluate(request);
        let time = crate::clock::rfc3339_millis(host::now_ms());
        let record = AuditRecord::decided(
            &time,
            self.line(),
            request,
            &decision,
            unknown.as_deref(),
            &shared.config.filter_sha256,
        );
        let line = record.to_line();
        let _ = hostcalls::set_property(
            vec![DECISION_PROPERTY],
            Some(decision_summary(&decision).as_bytes()),
        );
        if decision.allowed {
            shared.metrics.count(Counter::Allowed);
            host::log(LogLevel::Info, &audit_text(&line));
            if decision.would_deny {
                shared.metrics.count(Counter::WouldDeny);
                host::log(
                    LogLevel::Warn,
                    &format!(
                        "taglock: audit mode let through {} {}: {}",
                        self.method, self.path, decision.message
                    ),
                );
                self.warning = audit_warning(&decision);
            }
            self.stage = Stage::Forwarded;
            if self.paused {
                self.paused = false;
                if let Err(status) = hostcalls::resume_http_request() {
                    host::log(
                        LogLevel::Error,
                        &format!("taglock: cannot resume the request ({status:?})"),
                    );
                }
            }
            return Action::Continue;
        }
        shared.metrics.count(Counter::Denied);
        host::log(LogLevel::Warn, &audit_text(&line));
        let reply = Reply::denial(&decision, self.challenge());
        self.answer(&reply)
    }

    /// A look-up's answer.
    fn call_answered(&mut self, token: u32, body_size: usize) {
        let Some(id) = self.in_flight.remove(&token) else {
            return;
        };
        let Some(shared) = self.shared.clone() else {
            return;
        };
        let answer = read_answer(body_size);
        if let Some(gathering) = self.gathering.as_mut() {
            gathering.answer(id, answer);
        }
        if self.stage == Stage::Gathering {
            self.pump(&shared);
        }
    }

    /// The whole manifest is buffered (at most `limit` bytes are read): decide on it.
    fn manifest_complete(&mut self, limit: usize) -> Action {
        let (Some(shared), Some(route)) = (self.shared.clone(), self.route.take()) else {
            return self.refuse(Refusal::unavailable("taglock lost the request's route"));
        };
        let body = match hostcalls::get_buffer(BufferType::HttpRequestBody, 0, limit) {
            Ok(body) => body.unwrap_or_default(),
            Err(status) => {
                return self.refuse(Refusal::bad_body(format!(
                    "cannot read the manifest ({status:?})"
                )));
            }
        };
        if body.len() > MAX_MANIFEST_BYTES {
            return self.refuse(Refusal::manifest_too_large());
        }
        self.start(&shared, route, Some(&body))
    }

    /// The end of a catalog page: only the images the actor may pull.
    fn catalog_body(&mut self, body_size: usize) {
        let Some(shared) = self.shared.clone() else {
            return;
        };
        let body = match hostcalls::get_buffer(BufferType::HttpResponseBody, 0, body_size) {
            Ok(body) => body.unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        let shown = catalog::visible(&body, &self.actor, |asked| {
            shared.policy.evaluate(asked).allowed
        })
        .unwrap_or_else(|refusal| {
            host::log(
                LogLevel::Warn,
                &format!("taglock: catalog hidden: {refusal}"),
            );
            br#"{"repositories":[]}"#.to_vec()
        });
        if let Err(status) =
            hostcalls::set_buffer(BufferType::HttpResponseBody, 0, body_size, &shown)
        {
            host::log(
                LogLevel::Error,
                &format!("taglock: cannot filter the catalog ({status:?}); resetting"),
            );
            let _ = hostcalls::reset_http_response();
        }
    }
}

/// The actor of a request in JWT mode: the payload `jwt_authn` verified, or
/// anonymous when the request carried no token (`jwt_authn` itself rejects a
/// token that does not verify).
fn read_actor(payload_key: &str, claims: &taglock_gateway::ClaimNames) -> Result<Actor, Refusal> {
    let metadata = hostcalls::get_property(vec!["metadata"]).map_err(|status| {
        Refusal::unavailable(format!(
            "taglock cannot read the stream's metadata ({status:?})"
        ))
    })?;
    let payload = metadata::jwt_payload(metadata.as_deref().unwrap_or_default(), payload_key)
        .map_err(|err| Refusal::unauthorized(err.to_string()))?;
    match payload {
        Some(payload) => claims.actor(&payload),
        None => Ok(Actor::anonymous()),
    }
}

/// What the registry answered a look-up; Envoy's own 503/504 (the callout
/// failed or timed out) and an answer without a status are failures.
fn read_answer(body_size: usize) -> Answer {
    let headers = match hostcalls::get_map(MapType::HttpCallResponseHeaders) {
        Ok(headers) => headers,
        Err(status) => return Answer::Failed(format!("unreadable answer ({status:?})")),
    };
    let status = headers
        .iter()
        .find(|(name, _)| name == ":status")
        .and_then(|(_, value)| value.parse::<u16>().ok());
    let Some(status) = status else {
        return Answer::Failed("the registry did not answer".to_owned());
    };
    if status == 503 || status == 504 {
        return Answer::Failed(format!("the registry call failed with {status}"));
    }
    if body_size > MAX_FACT_BODY {
        return Answer::Failed(format!("an answer of {body_size} bytes is too large"));
    }
    let body = if body_size == 0 {
        Vec::new()
    } else {
        match hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size) {
            Ok(body) => body.unwrap_or_default(),
            Err(status) => return Answer::Failed(format!("unreadable body ({status:?})")),
        }
    };
    Answer::Reply {
        status,
        headers,
        body,
    }
}

/// The decision as the access log shows it: `allowed|denied|would_deny reason rule`.
fn decision_summary(decision: &Decision) -> String {
    let verdict = if !decision.allowed {
        "denied"
    } else if decision.would_deny {
        "would_deny"
    } else {
        "allowed"
    };
    format!(
        "{verdict} {} {}",
        decision.reason.as_str(),
        decision.rule.as_deref().unwrap_or("-")
    )
}

fn audit_text(line: &[u8]) -> String {
    format!(
        "taglock audit: {}",
        String::from_utf8_lossy(line).trim_end()
    )
}

impl Context for Exchange {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        self.call_answered(token_id, body_size);
    }
}

impl HttpContext for Exchange {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        if self.stage != Stage::Start {
            return Action::Continue;
        }
        self.headers(end_of_stream)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        match self.stage {
            Stage::Body => {}
            Stage::Gathering | Stage::Answered => return Action::Pause,
            Stage::Start | Stage::Forwarded => return Action::Continue,
        }
        if body_size > MAX_MANIFEST_BYTES {
            return self.refuse(Refusal::manifest_too_large());
        }
        if !end_of_stream {
            return Action::Pause;
        }
        self.manifest_complete(body_size)
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        // A body that ends with trailers never sees `end_of_stream` in the body
        // callback: the manifest is complete now.
        match self.stage {
            Stage::Body => self.manifest_complete(MAX_MANIFEST_BYTES.saturating_add(1)),
            Stage::Gathering | Stage::Answered => Action::Pause,
            Stage::Start | Stage::Forwarded => Action::Continue,
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.release();
        if self.stage == Stage::Answered {
            return Action::Continue;
        }
        if let Some(warning) = self.warning.take() {
            let _ = hostcalls::add_map_value(MapType::HttpResponseHeaders, "warning", &warning);
        }
        if self.catalog {
            let ok = matches!(
                hostcalls::get_map_value(MapType::HttpResponseHeaders, ":status"),
                Ok(Some(status)) if status == "200"
            );
            self.catalog = ok;
            if ok {
                let _ = hostcalls::remove_map_value(MapType::HttpResponseHeaders, "content-length");
            }
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !self.catalog {
            return Action::Continue;
        }
        if !end_of_stream {
            return Action::Pause;
        }
        self.catalog_body(body_size);
        Action::Continue
    }

    fn on_log(&mut self) {
        self.release();
    }
}
