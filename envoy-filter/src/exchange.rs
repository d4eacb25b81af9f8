//! One client request through the filter, as a translation table over the
//! gateway crate (the same steps `taglock serve` takes):
//!
//! 1. request headers: the actor, [`Route::classify`]; a refusal is answered
//!    at once. A manifest push continues its headers and waits for its body
//!    (pausing in the headers callback would starve the body); any other
//!    request pauses here while its facts are gathered.
//! 2. the write lock ([`Route::write_lock`], shared by every worker); a busy
//!    lock pauses the request on the worker's waiting list
//!    ([`crate::waiters`]), retried by the root context's tick for at most
//!    `lock_timeout_ms` (then 503). Once the lock is held, the look-ups
//!    ([`Gathering`]) are sent with `dispatch_http_call` on the registry
//!    cluster, at most `facts_concurrency` at once, within `facts_timeout_ms`.
//! 3. the decision: a denial is answered with its OCI error (for a push, Envoy
//!    then resets the upstream stream, so the registry stores nothing); an
//!    allowed request resumes, with the audit-mode `Warning`.
//! 4. the lock is released when the registry's response headers arrive, or
//!    when the stream ends (which also takes a waiting request off the list).
//!
//! [`Exchange`] is what Envoy's SDK holds; the request itself is a [`Flow`]
//! the root context can reach too (see [`crate::wait`]).

use crate::config::Identity;
use crate::host;
use crate::locks::{LockError, LockKey, describe};
use crate::metadata;
use crate::root::{Counter, Shared};
use crate::upstream::{Sent, Sign, TokenCall};
use crate::wait::SharedRoom;
use crate::waiters::{Turn, Waiter};
use policy_core::{Actor, Decision};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, LogLevel, MapType};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;
use taglock_gateway::facts::MAX_FACT_BODY;
use taglock_gateway::manifest::MAX_MANIFEST_BYTES;
use taglock_gateway::upstream_auth::MAX_TOKEN_RESPONSE_BYTES;
use taglock_gateway::{
    Answer, AuditRecord, Credentials, Exchange as Line, Gathered, Gathering, Lookup, LookupId,
    Refusal, Reply, RequestHead, Route, audit_warning, catalog,
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
    /// Waiting for the filter's own token (or probe) before the request can
    /// be forwarded with the filter's credentials (the request is paused).
    Signing,
    /// Waiting for a busy write lock (the request is paused).
    Waiting,
    /// Facts being gathered (the request is paused).
    Gathering,
    /// Forwarded (or nothing to decide).
    Forwarded,
    /// Answered by the filter.
    Answered,
}

/// One request, as the SDK holds it: a handle on its [`Flow`].
pub struct Exchange {
    context: u32,
    room: SharedRoom,
    flow: Rc<RefCell<Flow>>,
}

/// A call the filter sent for a request.
enum Call {
    /// A look-up, with the filter's `Authorization` it carried (if any);
    /// `retried` once after a `401`.
    Lookup {
        lookup: Lookup,
        sent: Option<Sent>,
        retried: bool,
    },
    /// A token from the realm, for a look-up (`Some`) or for the forward.
    Token {
        call: TokenCall,
        then: Option<Lookup>,
    },
    /// `GET /v2/` with Basic, to learn how the registry authenticates before
    /// the first forward.
    Probe,
}

/// One request's state and steps.
pub struct Flow {
    shared: Option<Rc<Shared>>,
    context: u32,
    room: SharedRoom,
    /// What a waiting request resumes with: its route and its manifest.
    pending: Option<(Route, Option<Vec<u8>>)>,
    keys: Vec<LockKey>,
    stage: Stage,
    method: String,
    path: String,
    route: Option<Route>,
    actor: Actor,
    authorization: Option<String>,
    gathering: Option<Gathering>,
    in_flight: HashMap<u32, Call>,
    /// The route and `end_of_stream` of a request waiting for its signature.
    held: Option<(Route, bool)>,
    /// The filter's `Authorization` put on the forwarded request.
    injected: Option<Sent>,
    deadline_ms: u64,
    lock_owner: Option<u64>,
    warning: Option<String>,
    catalog: bool,
    paused: bool,
}

impl Exchange {
    /// Request `context` of a worker configured with `shared` (`None`: the
    /// worker has no usable configuration, and every request is refused),
    /// registered in the worker's `room`.
    pub fn new(shared: Option<Rc<Shared>>, room: SharedRoom, context: u32) -> Exchange {
        let flow = Rc::new(RefCell::new(Flow::new(shared, room.clone(), context)));
        if let Ok(mut room) = room.try_borrow_mut() {
            room.enter(context, &flow);
        }
        Exchange {
            context,
            room,
            flow,
        }
    }

    /// Runs `step` on the flow; `otherwise` if it is busy (never, as Envoy
    /// does not call a request back while it runs).
    fn with<T>(&self, otherwise: T, step: impl FnOnce(&mut Flow) -> T) -> T {
        match self.flow.try_borrow_mut() {
            Ok(mut flow) => step(&mut flow),
            Err(_) => otherwise,
        }
    }

    /// The stream ended: no more waiting, and no lock left held.
    fn end(&self) {
        if let Ok(mut room) = self.room.try_borrow_mut() {
            room.stop_waiting(self.context);
        }
        self.with((), Flow::release);
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        if let Ok(mut room) = self.room.try_borrow_mut() {
            room.leave(self.context);
        }
        self.with((), Flow::release);
    }
}

impl Flow {
    fn new(shared: Option<Rc<Shared>>, room: SharedRoom, context: u32) -> Flow {
        Flow {
            shared,
            context,
            room,
            pending: None,
            keys: Vec::new(),
            stage: Stage::Start,
            method: String::new(),
            path: String::new(),
            route: None,
            actor: Actor::anonymous(),
            authorization: None,
            gathering: None,
            in_flight: HashMap::new(),
            held: None,
            injected: None,
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
        let time = humantime::format_rfc3339_millis(host::now()).to_string();
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
        let jwt = matches!(shared.config.identity, Identity::Jwt { .. });
        let credentials = if jwt {
            Credentials::BearerToken
        } else {
            Credentials::None
        };
        if let Some(refusal) = route.login_required(&self.actor, credentials) {
            return self.refuse(refusal);
        }
        if jwt && shared.upstream.is_some() {
            // Forwarded with the filter's own credentials: signed first (a
            // token may have to be fetched while the headers can still change).
            self.held = Some((route, end_of_stream));
            return self.sign_forward(&shared, true);
        }
        self.proceed(&shared, route, end_of_stream)
    }

    /// After the headers (and their signature): forwards, waits for the
    /// manifest, or locks and gathers.
    fn proceed(&mut self, shared: &Rc<Shared>, route: Route, end_of_stream: bool) -> Action {
        match route {
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
                self.start(shared, route, body)
            }
        }
    }

    /// Signs the forwarded request with the filter's credentials: at once
    /// (Basic, a cached token), or after a token call or a probe (`Pause`).
    fn sign_forward(&mut self, shared: &Rc<Shared>, probe: bool) -> Action {
        let sign = match &shared.upstream {
            Some(auth) => match auth.try_borrow() {
                Ok(auth) => auth
                    .sign(&self.method, &self.path, host::now_ms(), probe)
                    .map_err(|err| err.to_string()),
                Err(_) => Err("the credentials are busy".to_owned()),
            },
            None => Err("no upstream credentials".to_owned()),
        };
        match sign {
            Ok(Sign::Ready(sent)) => self.signed(shared, sent),
            Ok(Sign::Token(call)) => {
                if self.send_token(shared, call, None) {
                    self.stage = Stage::Signing;
                    self.pause()
                } else {
                    Action::Pause
                }
            }
            Ok(Sign::Probe) => self.probe(shared),
            Err(why) => self.unsigned(&why),
        }
    }

    /// The forward cannot carry the filter's credentials: 503.
    fn unsigned(&mut self, why: &str) -> Action {
        host::log(
            LogLevel::Warn,
            &format!("taglock: cannot authenticate to the registry: {why}"),
        );
        self.refuse(Refusal::unavailable(format!(
            "taglock cannot authenticate to the registry ({why}); nothing was forwarded"
        )))
    }

    /// Puts `sent` on the request and goes on with it (resuming it if it
    /// was paused for the signature).
    fn signed(&mut self, shared: &Rc<Shared>, sent: Sent) -> Action {
        if let Err(status) = hostcalls::set_map_value(
            MapType::HttpRequestHeaders,
            "authorization",
            Some(&sent.value),
        ) {
            return self.unsigned(&format!("the header cannot be set ({status:?})"));
        }
        self.injected = Some(sent);
        let Some((route, end_of_stream)) = self.held.take() else {
            return self.unsigned("the request's route was lost");
        };
        self.stage = Stage::Start;
        let action = self.proceed(shared, route, end_of_stream);
        if self.paused && action == Action::Continue {
            self.paused = false;
            if let Err(status) = hostcalls::resume_http_request() {
                host::log(
                    LogLevel::Error,
                    &format!("taglock: cannot resume the request ({status:?})"),
                );
            }
        }
        action
    }

    /// Sends `GET /v2/` with Basic to learn how the registry authenticates.
    fn probe(&mut self, shared: &Rc<Shared>) -> Action {
        let basic = shared.upstream.as_ref().and_then(|auth| {
            auth.try_borrow()
                .ok()
                .map(|auth| auth.basic_authorization())
        });
        let Some(basic) = basic else {
            return self.unsigned("the credentials are busy");
        };
        let headers = vec![
            (":method", "GET"),
            (":path", "/v2/"),
            (":authority", shared.config.authority.as_str()),
            (":scheme", "http"),
            ("authorization", basic.as_str()),
        ];
        let timeout = Duration::from_millis(shared.config.facts_timeout_ms);
        match hostcalls::dispatch_http_call(&shared.config.cluster, headers, None, vec![], timeout)
        {
            Ok(token) => {
                self.sent(token, Call::Probe);
                self.stage = Stage::Signing;
                self.pause()
            }
            Err(status) => self.unsigned(&format!(
                "the registry cluster cannot be called ({status:?})"
            )),
        }
    }

    fn sent(&mut self, token: u32, call: Call) {
        self.in_flight.insert(token, call);
        if let Ok(mut room) = self.room.try_borrow_mut() {
            room.call_sent(token, self.context);
        }
    }

    /// Asks the realm for a token with the filter's Basic; `false` when it
    /// cannot be sent (the look-up failed, or the request was refused).
    fn send_token(&mut self, shared: &Rc<Shared>, call: TokenCall, then: Option<Lookup>) -> bool {
        let basic = shared
            .upstream
            .as_ref()
            .and_then(|auth| {
                auth.try_borrow()
                    .ok()
                    .map(|auth| auth.basic_authorization())
            })
            .unwrap_or_default();
        let headers = vec![
            (":method", "GET"),
            (":path", call.path.as_str()),
            (":authority", call.authority.as_str()),
            (":scheme", call.scheme.as_str()),
            ("accept", "application/json"),
            ("authorization", basic.as_str()),
        ];
        let left = if self.deadline_ms > 0 && self.gathering.is_some() {
            self.deadline_ms.saturating_sub(host::now_ms()).max(1)
        } else {
            shared.config.facts_timeout_ms
        };
        match hostcalls::dispatch_http_call(
            &call.cluster,
            headers,
            None,
            vec![],
            Duration::from_millis(left),
        ) {
            Ok(token) => {
                self.sent(token, Call::Token { call, then });
                true
            }
            Err(status) => {
                let why = format!("cluster `{}` cannot be called ({status:?})", call.cluster);
                match then {
                    Some(lookup) => {
                        host::log(LogLevel::Error, &format!("taglock: {why}"));
                        self.fail_lookup(lookup.id, why);
                    }
                    None => {
                        self.unsigned(&why);
                    }
                }
                false
            }
        }
    }

    fn fail_lookup(&mut self, id: LookupId, why: String) {
        if let Some(gathering) = self.gathering.as_mut() {
            gathering.answer(id, Answer::Failed(why));
        }
    }

    /// Sends look-up `lookup` with the filter's credentials (or, in registry
    /// mode without them, the client's).
    fn send_lookup(&mut self, shared: &Rc<Shared>, lookup: Lookup, retried: bool) {
        let mut sent = None;
        if let Some(auth) = &shared.upstream {
            let sign = match auth.try_borrow() {
                Ok(auth) => auth
                    .sign(lookup.method, &lookup.path, host::now_ms(), false)
                    .map_err(|err| err.to_string()),
                Err(_) => Err("the credentials are busy".to_owned()),
            };
            match sign {
                Ok(Sign::Ready(ready)) => sent = Some(ready),
                Ok(Sign::Token(call)) if !retried => {
                    self.send_token(shared, call, Some(lookup));
                    return;
                }
                Ok(Sign::Token(_) | Sign::Probe) => {}
                Err(why) => {
                    self.fail_lookup(lookup.id, why);
                    return;
                }
            }
        }
        let authorization = match (&sent, &shared.config.identity, &self.authorization) {
            (Some(sent), _, _) => Some(sent.value.as_str()),
            (None, Identity::Registry, Some(client)) => Some(client.as_str()),
            _ => None,
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
        if let Some(authorization) = authorization {
            headers.push(("authorization", authorization));
        }
        let now = host::now_ms();
        let timeout = Duration::from_millis(self.deadline_ms.saturating_sub(now).max(1));
        match hostcalls::dispatch_http_call(&shared.config.cluster, headers, None, vec![], timeout)
        {
            Ok(token) => self.sent(
                token,
                Call::Lookup {
                    lookup,
                    sent,
                    retried,
                },
            ),
            Err(status) => {
                host::log(
                    LogLevel::Error,
                    &format!(
                        "taglock: cannot call cluster `{}` ({status:?})",
                        shared.config.cluster
                    ),
                );
                self.fail_lookup(
                    lookup.id,
                    format!("the registry cluster cannot be called ({status:?})"),
                );
            }
        }
    }

    /// Locks (or waits for the lock), then gathers.
    fn start(&mut self, shared: &Rc<Shared>, route: Route, body: Option<&[u8]>) -> Action {
        let keys = LockKey::of(route.write_lock());
        // Behind a waiter of this worker for the same lock: queue, do not overtake.
        let behind = !keys.is_empty()
            && self
                .room
                .try_borrow()
                .is_ok_and(|room| room.waiters.blocks(&keys));
        if !behind {
            match host::acquire(&keys, shared.config.lock_ttl_ms) {
                Ok(owner) => {
                    self.lock_owner = owner;
                    return self.gather(shared, route, body);
                }
                Err(LockError::Busy(_) | LockError::Full) => {}
                Err(err) => return self.lock_refused(shared, err),
            }
        }
        self.wait(shared, route, body, keys)
    }

    /// Pauses on the worker's waiting list until the lock is free or
    /// `lock_timeout_ms` has passed.
    fn wait(
        &mut self,
        shared: &Rc<Shared>,
        route: Route,
        body: Option<&[u8]>,
        keys: Vec<LockKey>,
    ) -> Action {
        let timeout_ms = shared.config.lock_timeout_ms;
        if timeout_ms == 0 {
            let busy = LockError::TimedOut(describe(&keys), Duration::ZERO);
            return self.lock_refused(shared, busy);
        }
        let waiter = Waiter {
            context: self.context,
            keys: keys.clone(),
            deadline_ms: host::now_ms().saturating_add(timeout_ms),
        };
        let first = match self.room.try_borrow_mut() {
            Ok(mut room) => {
                let first = room.waiters.is_empty();
                room.waiters.push(waiter).map(|()| first)
            }
            Err(_) => Err(LockError::Table("the waiting list is busy".to_owned())),
        };
        match first {
            Ok(true) => host::tick(true),
            Ok(false) => {}
            Err(err) => return self.lock_refused(shared, err),
        }
        self.keys = keys;
        self.pending = Some((route, body.map(<[u8]>::to_vec)));
        self.stage = Stage::Waiting;
        self.pause()
    }

    /// The root context's tick ended this request's wait (the effective
    /// context is this request's): gather with the lock, or refuse.
    pub(crate) fn waited(&mut self, turn: Turn) {
        let (Some(shared), Some((route, body)), Stage::Waiting) =
            (self.shared.clone(), self.pending.take(), self.stage)
        else {
            if let Turn::Acquired(Some(owner)) = turn {
                host::release(owner);
            }
            return;
        };
        match turn {
            Turn::Acquired(owner) => {
                self.lock_owner = owner;
                self.gather(&shared, route, body.as_deref());
            }
            Turn::TimedOut => {
                let timeout = Duration::from_millis(shared.config.lock_timeout_ms);
                let busy = LockError::TimedOut(describe(&self.keys), timeout);
                self.lock_refused(&shared, busy);
            }
            Turn::Failed(err) => {
                self.lock_refused(&shared, err);
            }
        }
    }

    /// Refuses a write whose lock could not be had (503, counted as busy
    /// unless the lock table itself failed).
    fn lock_refused(&mut self, shared: &Rc<Shared>, err: LockError) -> Action {
        if !matches!(err, LockError::Table(_)) {
            shared.metrics.count(Counter::LockBusy);
        }
        self.refuse(Refusal::unavailable(err.to_string()))
    }

    /// With the lock held: starts the gathering and sends the first look-ups.
    fn gather(&mut self, shared: &Rc<Shared>, route: Route, body: Option<&[u8]>) -> Action {
        // The worker's policy decides, so it says which facts are needed.
        let gathering = match Gathering::new(route, self.actor.clone(), body, &shared.policy) {
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
            self.send_lookup(shared, lookup, false);
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
        let time = humantime::format_rfc3339_millis(host::now()).to_string();
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
        if decision.allowed() {
            shared.metrics.count(Counter::Allowed);
            host::log(LogLevel::Info, &audit_text(&line));
            if decision.would_deny() {
                shared.metrics.count(Counter::WouldDeny);
                host::log(
                    LogLevel::Warn,
                    &format!(
                        "taglock: audit mode let through {} {}: {}",
                        self.method,
                        self.path,
                        decision.message()
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

    /// A call's answer: a look-up's, a token's or the probe's.
    pub(crate) fn call_answered(&mut self, token: u32, body_size: usize) {
        let Some(call) = self.in_flight.remove(&token) else {
            return;
        };
        let Some(shared) = self.shared.clone() else {
            return;
        };
        match call {
            Call::Lookup {
                lookup,
                sent,
                retried,
            } => self.lookup_answered(&shared, lookup, sent, retried, body_size),
            Call::Token { call, then } => self.token_answered(&shared, &call, then, body_size),
            Call::Probe => {
                let (status, challenge) = call_status();
                if let Some(auth) = &shared.upstream
                    && let Ok(mut auth) = auth.try_borrow_mut()
                {
                    auth.probed(status.unwrap_or(0), challenge.as_deref());
                }
                if self.stage == Stage::Signing {
                    self.sign_forward(&shared, false);
                }
                return;
            }
        }
        if self.stage == Stage::Gathering {
            self.pump(&shared);
        }
    }

    fn lookup_answered(
        &mut self,
        shared: &Rc<Shared>,
        lookup: Lookup,
        sent: Option<Sent>,
        retried: bool,
        body_size: usize,
    ) {
        let answer = read_answer(body_size);
        let challenged = match (&answer, &sent, &shared.upstream) {
            (
                Answer::Reply {
                    status: 401,
                    headers,
                    ..
                },
                Some(sent),
                Some(auth),
            ) if !retried => {
                let challenge = headers
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case("www-authenticate"))
                    .map(|(_, value)| value.as_str());
                match auth.try_borrow_mut() {
                    Ok(mut auth) => auth
                        .challenged(challenge, lookup.method, &lookup.path, sent, host::now_ms())
                        .map_err(|err| err.to_string()),
                    Err(_) => Err("the credentials are busy".to_owned()),
                }
            }
            _ => Ok(None),
        };
        match challenged {
            Ok(Some(Sign::Ready(_))) => self.send_lookup(shared, lookup, true),
            Ok(Some(Sign::Token(call))) => {
                self.send_token(shared, call, Some(lookup));
            }
            Ok(Some(Sign::Probe) | None) => {
                if let Some(gathering) = self.gathering.as_mut() {
                    gathering.answer(lookup.id, answer);
                }
            }
            Err(why) => {
                host::log(
                    LogLevel::Warn,
                    &format!("taglock: cannot authenticate a look-up to the registry: {why}"),
                );
                self.fail_lookup(
                    lookup.id,
                    format!("the registry wants credentials taglock cannot give: {why}"),
                );
            }
        }
    }

    fn token_answered(
        &mut self,
        shared: &Rc<Shared>,
        call: &TokenCall,
        then: Option<Lookup>,
        body_size: usize,
    ) {
        let (status, _) = call_status();
        let body = if body_size == 0 || body_size > MAX_TOKEN_RESPONSE_BYTES {
            Vec::new()
        } else {
            hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
                .ok()
                .flatten()
                .unwrap_or_default()
        };
        let got = match (status, &shared.upstream) {
            (Some(status), Some(auth)) => match auth.try_borrow_mut() {
                Ok(mut auth) => auth
                    .token_answered(call, status, &body, host::now(), host::now_ms())
                    .map_err(|err| err.to_string()),
                Err(_) => Err("the credentials are busy".to_owned()),
            },
            _ => Err(format!("the token realm `{}` did not answer", call.realm)),
        };
        match (then, got) {
            (Some(lookup), Ok(_)) => self.send_lookup(shared, lookup, true),
            (Some(lookup), Err(why)) => {
                host::log(LogLevel::Warn, &format!("taglock: {why}"));
                self.fail_lookup(lookup.id, why);
            }
            (None, Ok(sent)) if self.stage == Stage::Signing => {
                self.signed(shared, sent);
            }
            (None, Ok(_)) => {}
            (None, Err(why)) => {
                if self.stage == Stage::Signing {
                    self.unsigned(&why);
                }
            }
        }
    }

    /// The registry answered a request the filter signed: a `401` drops the
    /// token it refused and teaches a Bearer challenge for the next requests
    /// (a forward cannot be replayed).
    fn forward_answered(&self, sent: &Sent) {
        let status = hostcalls::get_map_value(MapType::HttpResponseHeaders, ":status");
        if !matches!(status, Ok(Some(status)) if status == "401") {
            return;
        }
        let challenge = hostcalls::get_map_value(MapType::HttpResponseHeaders, "www-authenticate")
            .ok()
            .flatten();
        if let Some(auth) = self.shared.as_ref().and_then(|s| s.upstream.as_ref())
            && let Ok(mut auth) = auth.try_borrow_mut()
        {
            let learned = auth.challenged(
                challenge.as_deref(),
                &self.method,
                &self.path,
                sent,
                host::now_ms(),
            );
            if let Err(err) = learned {
                host::log(
                    LogLevel::Warn,
                    &format!("taglock: the registry refused the filter's credentials: {err}"),
                );
            }
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
            shared.policy.evaluate(asked).allowed()
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
/// The status and `WWW-Authenticate` of a call's answer.
fn call_status() -> (Option<u16>, Option<String>) {
    let headers = hostcalls::get_map(MapType::HttpCallResponseHeaders).unwrap_or_default();
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    (
        find(":status").and_then(|s| s.parse().ok()),
        find("www-authenticate"),
    )
}

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
    let verdict = if !decision.allowed() {
        "denied"
    } else if decision.would_deny() {
        "would_deny"
    } else {
        "allowed"
    };
    format!(
        "{verdict} {} {}",
        decision.reason().as_str(),
        decision.rule().unwrap_or("-")
    )
}

fn audit_text(line: &[u8]) -> String {
    format!(
        "taglock audit: {}",
        String::from_utf8_lossy(line).trim_end()
    )
}

/// The request's callbacks, as Envoy calls them.
impl Flow {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        if self.stage != Stage::Start {
            return Action::Continue;
        }
        self.headers(end_of_stream)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        match self.stage {
            Stage::Body => {}
            Stage::Signing | Stage::Waiting | Stage::Gathering | Stage::Answered => {
                return Action::Pause;
            }
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
            Stage::Signing | Stage::Waiting | Stage::Gathering | Stage::Answered => Action::Pause,
            Stage::Start | Stage::Forwarded => Action::Continue,
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.release();
        if self.stage == Stage::Answered {
            return Action::Continue;
        }
        if let Some(sent) = self.injected.take() {
            self.forward_answered(&sent);
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
}

impl Context for Exchange {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        if let Ok(mut room) = self.room.try_borrow_mut() {
            room.call_done(token_id);
        }
        self.with((), |flow| flow.call_answered(token_id, body_size));
    }

    fn on_done(&mut self) -> bool {
        self.end();
        true
    }
}

impl HttpContext for Exchange {
    fn on_http_request_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action {
        self.with(Action::Pause, |flow| {
            flow.on_http_request_headers(num_headers, end_of_stream)
        })
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.with(Action::Pause, |flow| {
            flow.on_http_request_body(body_size, end_of_stream)
        })
    }

    fn on_http_request_trailers(&mut self, num_trailers: usize) -> Action {
        self.with(Action::Pause, |flow| {
            flow.on_http_request_trailers(num_trailers)
        })
    }

    fn on_http_response_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action {
        self.with(Action::Continue, |flow| {
            flow.on_http_response_headers(num_headers, end_of_stream)
        })
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.with(Action::Continue, |flow| {
            flow.on_http_response_body(body_size, end_of_stream)
        })
    }

    fn on_log(&mut self) {
        self.end();
    }
}
