//! One client request, as a translation table over the gateway crate: the route
//! it addresses, the actor, the facts from the upstream, the decision of the
//! component, and then either the OCI error of the refusal or the upstream's
//! own answer.
//!
//! Writes hold their locks (`locks.rs`) from the facts until the upstream has
//! really finished the write — past the client's own wait, when the upstream
//! is slow — and nothing is forwarded unless the component allowed it.

use crate::audit::AuditRecord;
use crate::identity::AuthMode;
use crate::locks::{DeleteGuard, PushGuard};
use crate::metrics::UpstreamKind;
use crate::oci::{self, CHALLENGE};
use crate::server::AppState;
use crate::upstream::strip_hop_by_hop;
use axum::body::Body;
use axum::extract::State;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use policy_core::{Actor, Decision, PushNeeds, PushRequest};
use std::sync::Arc;
use std::time::Instant;
use taglock_gateway::manifest::MAX_MANIFEST_BYTES;
use taglock_gateway::{
    Exchange, Gathered, Gathering, Needs, Reference, Refusal, Reply, RequestHead, Route, WriteLock,
    audit_warning, catalog,
};
use taglock_host_wasmtime::WasmPolicy;

/// The most a catalog page from the upstream may hold.
const MAX_CATALOG_BYTES: usize = 16 << 20;

/// How much of an oversize manifest is read and dropped before the 413, so that
/// a client that sends its whole body before reading the answer still gets it.
const MAX_DRAINED_BYTES: u64 = 64 << 20;

/// The response that ends a request early: a denial, or a refusal of the proxy.
type Refused = Box<Response<Body>>;

/// The locks a write holds until the upstream has finished it.
enum Held {
    Nothing,
    Push(#[allow(dead_code)] PushGuard),
    Delete(#[allow(dead_code)] DeleteGuard),
}

/// The fallback handler: every request that is not `/healthz`, `/readyz`,
/// `/metrics` or the UI.
pub(crate) async fn proxy(
    State(state): State<Arc<AppState>>,
    request: Request<Body>,
) -> Response<Body> {
    let method = request.method().to_string();
    let path = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_owned(),
        |p| p.as_str().to_owned(),
    );
    let exchange = Exchange {
        method: &method,
        path: &path,
    };
    // Who asks comes first, so that even a request refused for its form is
    // audited with its actor.
    let actor = match state.identity.authenticate(request.headers()).await {
        Ok(actor) => actor,
        Err(refusal) => return state.refuse(exchange, None, refusal),
    };
    let route = match classify(&request) {
        Ok(route) => route,
        Err(refusal) => return state.refuse(exchange, Some(&actor), refusal),
    };
    let pass = state.identity.pass_through(request.headers());
    if let Some(refusal) = route.login_required(&actor, state.identity.mode().credentials()) {
        return state.refuse(exchange, Some(&actor), refusal);
    }
    match route {
        Route::Base => {
            state
                .forward(exchange, &actor, request, pass, None, Held::Nothing)
                .await
        }
        Route::Catalog => catalog(&state, exchange, request, actor, pass).await,
        route => decide(&state, exchange, request, route, actor, pass).await,
    }
}

/// The route of a request, as the gateway reads its head.
fn classify(request: &Request<Body>) -> Result<Route, Refusal> {
    let content_types = request
        .headers()
        .get_all(header::CONTENT_TYPE)
        .iter()
        .map(|value| value.to_str())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| Refusal::undecidable("the Content-Type header is not text"))?;
    Route::classify(&RequestHead {
        method: request.method().as_str(),
        path: request.uri().path(),
        query: request.uri().query(),
        content_types: &content_types,
    })
}

/// Every request that needs a decision: read the manifest of a push, lock what
/// the write touches, gather the facts, decide, forward.
async fn decide(
    state: &AppState,
    exchange: Exchange<'_>,
    request: Request<Body>,
    route: Route,
    actor: Actor,
    pass: Option<HeaderValue>,
) -> Response<Body> {
    let (mut parts, body) = request.into_parts();
    let (manifest, body) = if route.needs_body() {
        // A manifest is small: its body gets the bound of a request header, so a
        // client sending it byte by byte cannot hold its connection slot.
        let bound = state.config.header_read_timeout;
        match tokio::time::timeout(bound, read_manifest(&parts.headers, body)).await {
            Ok(Ok(manifest)) => (Some(manifest), None),
            Ok(Err(refusal)) => return state.refuse(exchange, Some(&actor), refusal),
            Err(_) => {
                return state.refuse(exchange, Some(&actor), Refusal::manifest_too_slow(bound));
            }
        }
    } else {
        (None, Some(body))
    };
    let held = match state.lock(&route).await {
        Ok(held) => held,
        Err(refusal) => return state.refuse(exchange, Some(&actor), refusal),
    };
    let digest_delete = matches!(
        route,
        Route::DeleteManifest {
            reference: Reference::Digest(_),
            ..
        }
    );
    // One policy from the facts to the decision: the facts left out are those
    // this policy's decision does not depend on, even if another is loaded
    // meanwhile.
    let policy = state.policy.load_full();
    let needs = ComponentNeeds(&policy);
    let gathering = match Gathering::new(route, actor.clone(), manifest.as_deref(), &needs) {
        Ok(gathering) => gathering,
        Err(refusal) => return state.refuse(exchange, Some(&actor), refusal),
    };
    let gathered = match state.gather(gathering, digest_delete, pass.as_ref()).await {
        Ok(gathered) => gathered,
        Err(refusal) => return state.refuse(exchange, Some(&actor), refusal),
    };
    let decision = match state.decide(exchange, &gathered, &policy) {
        Ok(decision) => decision,
        Err(refused) => return *refused,
    };
    let body = match (manifest, body) {
        (Some(manifest), _) => {
            parts.headers.remove(header::TRANSFER_ENCODING);
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(manifest.len()));
            Body::from(manifest)
        }
        (None, Some(body)) => body,
        (None, None) => Body::empty(),
    };
    state
        .forward(
            exchange,
            &actor,
            Request::from_parts(parts, body),
            pass,
            Some(&decision),
            held,
        )
        .await
}

/// Which facts the component says a write's decision depends on. A call that
/// fails says nothing, so the gathering asks for every fact (and the decision,
/// asked of the same component, fails closed on its own if it fails too).
struct ComponentNeeds<'a>(&'a WasmPolicy);

impl Needs for ComponentNeeds<'_> {
    fn push_needs(&self, request: &PushRequest) -> Option<PushNeeds> {
        self.0
            .push_needs(request)
            .inspect_err(|err| tracing::warn!("the component could not say which facts a push needs ({err}); gathering every one"))
            .ok()
    }

    fn existence_matters(&self, image: &str, actor: &Actor) -> Option<bool> {
        self.0
            .existence_matters(image, actor)
            .inspect_err(|err| {
                tracing::warn!(
                    "the component could not say whether {image} existing matters ({err}); asking"
                )
            })
            .ok()
    }
}

/// `GET /v2/_catalog`: the upstream's page, keeping only the images the actor may
/// pull (the upstream's `Link` to the next page is kept, so a filtered page may
/// be shorter than `n`).
async fn catalog(
    state: &AppState,
    exchange: Exchange<'_>,
    request: Request<Body>,
    actor: Actor,
    pass: Option<HeaderValue>,
) -> Response<Body> {
    let response = state
        .forward(exchange, &actor, request, pass, None, Held::Nothing)
        .await;
    if response.status() != StatusCode::OK {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match Limited::new(body, MAX_CATALOG_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => {
            return state.refuse(
                exchange,
                Some(&actor),
                Refusal::unavailable(format!("cannot read the upstream's catalog: {err}")),
            );
        }
    };
    let policy = state.policy.load();
    let shown = catalog::visible(&bytes, &actor, |asked| {
        policy
            .evaluate(asked)
            .is_ok_and(|decision| decision.allowed())
    });
    let body = match shown {
        Ok(body) => body,
        Err(refusal) => return state.refuse(exchange, Some(&actor), refusal),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body))
}

/// The manifest body, at most [`MAX_MANIFEST_BYTES`]. A larger one is read on
/// (and dropped) up to [`MAX_DRAINED_BYTES`], then refused.
async fn read_manifest(headers: &HeaderMap, mut body: Body) -> Result<Bytes, Refusal> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_DRAINED_BYTES) {
        return Err(Refusal::manifest_too_large());
    }
    let mut manifest = BytesMut::new();
    let mut seen: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|err| Refusal::bad_body(format!("cannot read the manifest: {err}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len() as u64);
        if seen <= MAX_MANIFEST_BYTES as u64 {
            manifest.extend_from_slice(&data);
        } else if seen > MAX_DRAINED_BYTES {
            break;
        }
    }
    if seen > MAX_MANIFEST_BYTES as u64 {
        return Err(Refusal::manifest_too_large());
    }
    Ok(manifest.freeze())
}

impl AppState {
    /// Takes the locks the route's write needs.
    async fn lock(&self, route: &Route) -> Result<Held, Refusal> {
        let timeout = self.config.lock_timeout;
        let busy =
            |busy: crate::locks::LockTimeout| Refusal::unavailable(format!("{busy}; try again"));
        Ok(match route.write_lock() {
            WriteLock::None => Held::Nothing,
            WriteLock::Tags { image, tags } => {
                let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
                Held::Push(self.locks.push(image, &tags, timeout).await.map_err(busy)?)
            }
            WriteLock::Image { image } => {
                Held::Delete(self.locks.delete(image, timeout).await.map_err(busy)?)
            }
        })
    }

    /// Sends the gathering's look-ups to the upstream (with the client's `pass`
    /// credentials in pass-through mode), at most
    /// `facts_concurrency` at a time, within the facts' time bound (the tags
    /// timeout for a digest delete, the upstream timeout otherwise).
    async fn gather(
        &self,
        mut gathering: Gathering,
        digest_delete: bool,
        pass: Option<&HeaderValue>,
    ) -> Result<Gathered, Refusal> {
        let started = Instant::now();
        let bound = if digest_delete {
            self.config.tags_timeout
        } else {
            self.config.upstream_timeout
        };
        let concurrency = self.config.facts_concurrency.max(1);
        let mut asked = false;
        let walk = async {
            let mut in_flight = FuturesUnordered::new();
            loop {
                while in_flight.len() < concurrency {
                    let Some(lookup) = gathering.next_lookup() else {
                        break;
                    };
                    asked = true;
                    in_flight.push(self.upstream.lookup(lookup, pass.cloned()));
                }
                if gathering.is_done() {
                    break;
                }
                let Some((id, answer)) = in_flight.next().await else {
                    break;
                };
                gathering.answer(id, answer);
            }
        };
        if tokio::time::timeout(bound, walk).await.is_err() {
            tracing::warn!("gathering the facts took over {bound:?}");
        }
        // A decision that depends on no fact asked the upstream nothing.
        if asked {
            self.metrics
                .upstream(UpstreamKind::Facts, started.elapsed());
        }
        let gathered = gathering.finish();
        match &gathered {
            Ok(Gathered {
                request,
                unknown: Some(why),
            }) => tracing::warn!(
                image = request.image(),
                "a fact is unknown ({why}); the request is judged fail-closed"
            ),
            Err(refusal) => tracing::warn!(
                "facts unavailable: {refusal} ({})",
                refusal.cause.as_deref().unwrap_or("no cause recorded")
            ),
            Ok(_) => {}
        }
        gathered
    }

    /// Asks the component (`policy`, the one the facts were gathered for) and
    /// records the decision; a denial (or no decision at all) becomes the
    /// response.
    fn decide(
        &self,
        exchange: Exchange<'_>,
        gathered: &Gathered,
        policy: &WasmPolicy,
    ) -> Result<Decision, Refused> {
        let request = &gathered.request;
        let started = Instant::now();
        let evaluated = policy.evaluate(request);
        let took = started.elapsed();
        let decision = match evaluated {
            Ok(decision) => decision,
            Err(err) => {
                tracing::error!(
                    image = request.image(),
                    "the decision component failed: {err}"
                );
                return Err(Box::new(self.refuse(
                    exchange,
                    Some(request.actor()),
                    Refusal::unavailable(format!(
                        "taglock could not decide this request ({err}); nothing was forwarded"
                    )),
                )));
            }
        };
        self.metrics.decision(request, &decision, took);
        if let Some(audit) = &self.audit {
            let time = crate::audit::now();
            let record = AuditRecord::decided(
                &time,
                exchange,
                request,
                &decision,
                gathered.unknown.as_deref(),
                self.host.component_sha256(),
            );
            if let Err(err) = audit.append(&record) {
                tracing::error!("{err}");
                // A write nobody can account for is not let through; reads go on.
                if !matches!(request, policy_core::Request::Pull(_)) {
                    return Err(Box::new(self.refuse(
                        exchange,
                        Some(request.actor()),
                        Refusal::unavailable(
                            "taglock cannot write its audit log, so it refuses writes until it can",
                        ),
                    )));
                }
            }
        }
        if decision.would_deny() {
            tracing::warn!(
                image = request.image(),
                reason = decision.reason().as_str(),
                "audit mode let through: {}",
                decision.message()
            );
        }
        if decision.allowed() {
            return Ok(decision);
        }
        tracing::info!(
            image = request.image(),
            actor = request.actor().id.as_str(),
            reason = decision.reason().as_str(),
            "denied: {}",
            decision.message()
        );
        Err(Box::new(oci::response(Reply::denial(
            &decision,
            Some(CHALLENGE),
        ))))
    }

    /// Sends the (allowed) request upstream and relays the answer, with relative
    /// upload locations and, in audit mode, the `Warning` of the would-be denial.
    ///
    /// The exchange runs in a task of its own that holds `held` until the
    /// upstream has answered: when the client's wait (`forward_timeout`) ends
    /// first, the client gets a 503 saying the write may still land, and the
    /// tag stays locked until it has (or the connection has failed), so no
    /// later write can be checked against a state the first one then changes.
    async fn forward(
        &self,
        exchange: Exchange<'_>,
        actor: &Actor,
        request: Request<Body>,
        pass: Option<HeaderValue>,
        decision: Option<&Decision>,
        held: Held,
    ) -> Response<Body> {
        let started = Instant::now();
        let upstream = self.upstream.clone();
        let is_write = !matches!(held, Held::Nothing);
        let mut exchange_task = tokio::spawn(async move {
            let answer = upstream.forward(request, pass).await;
            drop(held);
            answer
        });
        let waited =
            tokio::time::timeout(self.upstream.forward_timeout(), &mut exchange_task).await;
        self.metrics
            .upstream(UpstreamKind::Forward, started.elapsed());
        let result = match waited {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(crate::upstream::UpstreamError::Unreachable(
                join.to_string(),
            )),
            Err(_) if is_write => {
                tracing::warn!(
                    "the upstream did not answer a write within {:?}; its locks stay held until it does",
                    self.upstream.forward_timeout()
                );
                return self.refuse(
                    exchange,
                    Some(actor),
                    Refusal::upstream_no_answer(format!(
                        "no answer to a write within {:?}",
                        self.upstream.forward_timeout()
                    )),
                );
            }
            Err(_) => {
                exchange_task.abort();
                Err(crate::upstream::UpstreamError::Timeout(
                    self.upstream.forward_timeout(),
                ))
            }
        };
        let response = match result {
            Ok(response) => response,
            Err(err) => {
                tracing::warn!("forwarding failed: {err}");
                let refusal = match err {
                    // The connection never opened: nothing reached the upstream.
                    crate::upstream::UpstreamError::Connect(cause) => {
                        Refusal::upstream_unavailable(cause)
                    }
                    other => Refusal::upstream_no_answer(other.to_string()),
                };
                return self.refuse(exchange, Some(actor), refusal);
            }
        };
        let (mut parts, body) = response.into_parts();
        if parts.status == StatusCode::UNAUTHORIZED && self.identity.mode() != AuthMode::None {
            tracing::error!("the upstream refused the proxy's credentials");
            return self.refuse(
                exchange,
                Some(actor),
                Refusal::unavailable(
                    "the upstream registry refused taglock's own credentials (check --upstream-user and --upstream-password-file)",
                ),
            );
        }
        strip_hop_by_hop(&mut parts.headers);
        let relative = parts
            .headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|location| self.upstream.relative_location(location));
        if let Some(location) = relative.and_then(|l| HeaderValue::from_str(&l).ok()) {
            parts.headers.insert(header::LOCATION, location);
        }
        if let Some(warning) = decision
            .and_then(audit_warning)
            .and_then(|w| HeaderValue::from_str(&w).ok())
        {
            parts.headers.append(header::WARNING, warning);
        }
        Response::from_parts(parts, Body::new(body))
    }

    /// A refusal of the proxy's own: counted, audited, answered.
    pub(crate) fn refuse(
        &self,
        exchange: Exchange<'_>,
        actor: Option<&Actor>,
        refusal: Refusal,
    ) -> Response<Body> {
        self.metrics.error(refusal.code.as_str());
        if let Some(audit) = &self.audit {
            let time = crate::audit::now();
            let record = AuditRecord::refused(
                &time,
                exchange,
                actor,
                &refusal,
                self.host.component_sha256(),
            );
            if let Err(err) = audit.append(&record) {
                tracing::error!("{err}");
            }
        }
        oci::response(refusal.reply(Some(CHALLENGE)))
    }
}
