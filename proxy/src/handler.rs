//! One client request, as a translation table: the endpoint it addresses, the
//! actor, the facts from the upstream, the decision of the component, and then
//! either the OCI error of the denial or the upstream's own answer.
//!
//! Writes hold their locks (`locks.rs`) from the facts until the upstream has
//! answered, and nothing is forwarded unless the component allowed it.

use crate::audit::AuditRecord;
use crate::facts;
use crate::identity::AuthMode;
use crate::metrics::UpstreamKind;
use crate::oci::{self, MAX_MANIFEST_BYTES, ProxyError};
use crate::route::{Reference, Route};
use crate::server::AppState;
use crate::upstream::strip_hop_by_hop;
use axum::body::Body;
use axum::extract::State;
use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use policy_core::{
    Actor, Decision, DeleteRequest, DeleteTarget, MountRequest, PullRequest, PushRequest,
    Request as PolicyRequest, UploadRequest,
};
use std::sync::Arc;
use std::time::Instant;

/// The most a catalog page from the upstream may hold.
const MAX_CATALOG_BYTES: usize = 16 << 20;

/// The response that ends a request early: a denial, or an error of the proxy.
type Refused = Box<Response<Body>>;

/// What the audit log says of the client's request.
struct Exchange {
    method: String,
    path: String,
}

/// The fallback handler: every request that is not `/healthz`, `/readyz`,
/// `/metrics` or the UI.
pub(crate) async fn proxy(
    State(state): State<Arc<AppState>>,
    request: Request<Body>,
) -> Response<Body> {
    let exchange = Exchange {
        method: request.method().to_string(),
        path: request.uri().path_and_query().map_or_else(
            || request.uri().path().to_owned(),
            |p| p.as_str().to_owned(),
        ),
    };
    let route = Route::parse(
        request.method(),
        request.uri().path(),
        request.uri().query(),
    );
    let actor = match state.identity.authenticate(request.headers()).await {
        Ok(actor) => actor,
        Err(err) => return state.refuse(err),
    };
    let pass = state.identity.pass_through(request.headers());
    let must_log_in = !actor.is_authenticated() && state.identity.mode() != AuthMode::None;
    match route {
        Route::Unsupported => state.refuse(ProxyError::unsupported(format!(
            "taglock does not forward {} {}",
            exchange.method,
            request.uri().path()
        ))),
        Route::DeleteBlob { .. } => state.refuse(ProxyError::unsupported(
            "taglock does not forward blob deletes: delete the manifest, and let the registry's garbage collection remove blobs nothing references",
        )),
        Route::Base | Route::Catalog if must_log_in => {
            state.refuse(ProxyError::unauthorized("log in first (docker login, or skopeo --creds)"))
        }
        Route::Base => state.forward(request, pass, None).await,
        Route::Catalog => catalog(&state, request, actor, pass).await,
        Route::Read { image } => {
            let asked = PolicyRequest::Pull(PullRequest { image, actor });
            state.relay(&exchange, request, pass, &asked).await
        }
        Route::Upload { image } => {
            let image_exists = match state.facts(facts::image_exists(&state.upstream, &image)).await {
                Ok(exists) => exists,
                Err(denied) => return *denied,
            };
            let asked = PolicyRequest::Upload(UploadRequest {
                image,
                image_exists,
                actor,
            });
            state.relay(&exchange, request, pass, &asked).await
        }
        Route::Mount { image, from } => {
            let image_exists = match state.facts(facts::image_exists(&state.upstream, &image)).await {
                Ok(exists) => exists,
                Err(denied) => return *denied,
            };
            let asked = PolicyRequest::Mount(MountRequest {
                image,
                from,
                image_exists,
                actor,
            });
            state.relay(&exchange, request, pass, &asked).await
        }
        Route::PushManifest {
            image,
            reference,
            extra_tags,
        } => push(&state, &exchange, request, actor, pass, image, reference, extra_tags).await,
        Route::DeleteManifest { image, reference } => {
            delete(&state, &exchange, request, actor, pass, image, reference).await
        }
    }
}

/// `PUT /v2/<name>/manifests/<reference>[?tag=…]`: buffer the manifest to know its
/// digest, lock the tags, read their current digests, decide, forward.
#[allow(clippy::too_many_arguments)]
async fn push(
    state: &AppState,
    exchange: &Exchange,
    request: Request<Body>,
    actor: Actor,
    pass: Option<HeaderValue>,
    image: String,
    reference: Reference,
    extra_tags: Vec<String>,
) -> Response<Body> {
    let (mut parts, body) = request.into_parts();
    let manifest = match read_manifest(&parts.headers, body).await {
        Ok(manifest) => manifest,
        Err(err) => return state.refuse(err),
    };
    let named = match &reference {
        Reference::Digest(digest) => Some(digest.as_str()),
        Reference::Tag(_) => None,
    };
    let digest = oci::manifest_digest(&manifest, named);
    if let Some(named) = named.filter(|named| *named != digest) {
        return state.refuse(ProxyError::digest_mismatch(named, &digest));
    }
    let mut tags = Vec::with_capacity(1 + extra_tags.len());
    if let Reference::Tag(tag) = reference {
        tags.push(tag);
    }
    for tag in extra_tags {
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    let tag_names: Vec<&str> = tags.iter().map(String::as_str).collect();
    let _held = match state
        .locks
        .push(&image, &tag_names, state.config.lock_timeout)
        .await
    {
        Ok(guard) => guard,
        Err(busy) => return state.refuse(ProxyError::unavailable(format!("{busy}; try again"))),
    };
    let pushed = facts::push(
        &state.upstream,
        &image,
        &tags,
        state.config.facts_concurrency,
    );
    let found = match state.facts(pushed).await {
        Ok(found) => found,
        Err(denied) => return *denied,
    };
    let asked = PolicyRequest::Push(PushRequest {
        image,
        digest,
        tags: found.tags,
        image_exists: found.image_exists,
        actor,
    });
    let decision = match state.decide(exchange, &asked) {
        Ok(decision) => decision,
        Err(denied) => return *denied,
    };
    parts.headers.remove(header::TRANSFER_ENCODING);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(manifest.len()));
    state
        .forward(
            Request::from_parts(parts, Body::from(manifest)),
            pass,
            Some(&decision),
        )
        .await
}

/// `DELETE /v2/<name>/manifests/<reference>`: lock the image, read what the delete
/// removes (a tag's digest, or every tag at a digest), decide, forward.
async fn delete(
    state: &AppState,
    exchange: &Exchange,
    request: Request<Body>,
    actor: Actor,
    pass: Option<HeaderValue>,
    image: String,
    reference: Reference,
) -> Response<Body> {
    let _held = match state.locks.delete(&image, state.config.lock_timeout).await {
        Ok(guard) => guard,
        Err(busy) => return state.refuse(ProxyError::unavailable(format!("{busy}; try again"))),
    };
    let (target, tags) = match reference {
        Reference::Tag(tag) => match state
            .facts(facts::tag_delete(&state.upstream, &image, &tag))
            .await
        {
            Ok(current) => (DeleteTarget::Tag(tag), Some(vec![current])),
            Err(denied) => return *denied,
        },
        Reference::Digest(digest) => {
            let started = Instant::now();
            let tags = facts::digest_delete(
                &state.upstream,
                &image,
                &digest,
                state.config.facts_concurrency,
                state.config.tags_timeout,
            )
            .await;
            state
                .metrics
                .upstream(UpstreamKind::Facts, started.elapsed());
            (DeleteTarget::Digest(digest), tags)
        }
    };
    let asked = PolicyRequest::Delete(DeleteRequest {
        image,
        target,
        tags,
        actor,
    });
    state.relay(exchange, request, pass, &asked).await
}

/// `GET /v2/_catalog`: the upstream's page, keeping only the images the actor may
/// pull (the upstream's `Link` to the next page is kept, so a filtered page may
/// be shorter than `n`).
async fn catalog(
    state: &AppState,
    request: Request<Body>,
    actor: Actor,
    pass: Option<HeaderValue>,
) -> Response<Body> {
    #[derive(serde::Deserialize)]
    struct Page {
        #[serde(default)]
        repositories: Vec<String>,
    }
    let response = state.forward(request, pass, None).await;
    if response.status() != StatusCode::OK {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match Limited::new(body, MAX_CATALOG_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => {
            return state.refuse(ProxyError::unavailable(format!(
                "cannot read the upstream's catalog: {err}"
            )));
        }
    };
    let page: Page = match serde_json::from_slice(&bytes) {
        Ok(page) => page,
        Err(err) => {
            return state.refuse(ProxyError::unavailable(format!(
                "the upstream's catalog is not JSON: {err}"
            )));
        }
    };
    let policy = state.policy.load();
    let mut asked = PullRequest {
        image: String::new(),
        actor,
    };
    let mut visible = Vec::with_capacity(page.repositories.len());
    for image in page.repositories {
        asked.image = image;
        // An image the component cannot decide on stays hidden (fail closed).
        if policy
            .evaluate_pull(&asked)
            .is_ok_and(|decision| decision.allowed)
        {
            visible.push(std::mem::take(&mut asked.image));
        }
    }
    let body = serde_json::json!({ "repositories": visible }).to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body))
}

/// How much of an oversize manifest is read and dropped before the 413, so that
/// a client that sends its whole body before reading the answer still gets it.
const MAX_DRAINED_BYTES: u64 = 64 << 20;

/// The manifest body, at most [`MAX_MANIFEST_BYTES`]. A larger one is read on
/// (and dropped) up to [`MAX_DRAINED_BYTES`], then refused.
async fn read_manifest(headers: &HeaderMap, mut body: Body) -> Result<Bytes, ProxyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_DRAINED_BYTES) {
        return Err(ProxyError::manifest_too_large());
    }
    let mut manifest = BytesMut::new();
    let mut seen: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|err| ProxyError::bad_body(format!("cannot read the manifest: {err}")))?;
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
        return Err(ProxyError::manifest_too_large());
    }
    Ok(manifest.freeze())
}

impl AppState {
    /// Decides `asked`; forwards the client's request only if it is allowed.
    async fn relay(
        &self,
        exchange: &Exchange,
        request: Request<Body>,
        pass: Option<HeaderValue>,
        asked: &PolicyRequest,
    ) -> Response<Body> {
        match self.decide(exchange, asked) {
            Ok(decision) => self.forward(request, pass, Some(&decision)).await,
            Err(denied) => *denied,
        }
    }

    /// Asks the component; a denial (or no decision at all) becomes the response.
    fn decide(&self, exchange: &Exchange, request: &PolicyRequest) -> Result<Decision, Refused> {
        let policy = self.policy.load();
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
                return Err(Box::new(self.refuse(ProxyError::unavailable(format!(
                    "taglock could not decide this request ({err}); nothing was forwarded"
                )))));
            }
        };
        self.metrics.decision(request, &decision, took);
        if let Some(audit) = &self.audit {
            let record = AuditRecord {
                time: AuditRecord::now(),
                method: &exchange.method,
                path: &exchange.path,
                actor: request.actor(),
                request,
                decision: &decision,
                rule: decision.rule.as_deref(),
                component_sha256: self.host.component_sha256(),
            };
            if let Err(err) = audit.append(&record) {
                tracing::error!("{err}");
                // A write nobody can account for is not let through; reads go on.
                if !matches!(request, PolicyRequest::Pull(_)) {
                    return Err(Box::new(self.refuse(ProxyError::unavailable(
                        "taglock cannot write its audit log, so it refuses writes until it can",
                    ))));
                }
            }
        }
        if decision.would_deny {
            tracing::warn!(
                image = request.image(),
                reason = decision.reason.as_str(),
                "audit mode let through: {}",
                decision.message
            );
        }
        if decision.allowed {
            return Ok(decision);
        }
        tracing::info!(
            image = request.image(),
            actor = request.actor().id.as_str(),
            reason = decision.reason.as_str(),
            "denied: {}",
            decision.message
        );
        let status = StatusCode::from_u16(decision.status()).unwrap_or(StatusCode::FORBIDDEN);
        Err(Box::new(oci::json_response(
            status,
            &decision.error(),
            status == StatusCode::UNAUTHORIZED,
        )))
    }

    /// Reads facts from the upstream, timed; unreachable means 503, nothing forwarded.
    async fn facts<T, E: std::fmt::Display>(
        &self,
        reading: impl Future<Output = Result<T, E>>,
    ) -> Result<T, Refused> {
        let started = Instant::now();
        let result = reading.await;
        self.metrics
            .upstream(UpstreamKind::Facts, started.elapsed());
        result.map_err(|err| {
            tracing::warn!("facts unavailable: {err}");
            Box::new(self.refuse(ProxyError::unavailable(format!(
                "taglock could not check this request with the upstream registry ({err}); nothing was written"
            ))))
        })
    }

    /// Sends the (allowed) request upstream and relays the answer, with relative
    /// upload locations and, in audit mode, the `Warning` of the would-be denial.
    async fn forward(
        &self,
        request: Request<Body>,
        pass: Option<HeaderValue>,
        decision: Option<&Decision>,
    ) -> Response<Body> {
        let started = Instant::now();
        let result = self.upstream.forward(request, pass).await;
        self.metrics
            .upstream(UpstreamKind::Forward, started.elapsed());
        let response = match result {
            Ok(response) => response,
            Err(err) => {
                tracing::warn!("forwarding failed: {err}");
                return self.refuse(ProxyError::unavailable(format!(
                    "the upstream registry did not take the request ({err})"
                )));
            }
        };
        let (mut parts, body) = response.into_parts();
        if parts.status == StatusCode::UNAUTHORIZED && self.identity.mode() != AuthMode::None {
            tracing::error!("the upstream refused the proxy's credentials");
            return self.refuse(ProxyError::unavailable(
                "the upstream registry refused taglock's own credentials (check --upstream-user and --upstream-password-file)",
            ));
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
            .filter(|d| d.would_deny)
            .and_then(|d| oci::warning_value(&d.message))
        {
            parts.headers.append(header::WARNING, warning);
        }
        Response::from_parts(parts, Body::new(body))
    }

    /// An error of the proxy's own, counted.
    pub(crate) fn refuse(&self, err: ProxyError) -> Response<Body> {
        self.metrics.error(err.code);
        err.into_response()
    }
}
