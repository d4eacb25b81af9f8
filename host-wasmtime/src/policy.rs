//! [`WasmPolicy`]: a policy loaded into the component, evaluated from any thread.
//!
//! Instance strategy: a store holds one instance of the component with the policy
//! loaded in it. A loaded policy keeps a small pool of such stores; a call takes
//! one (or creates it), evaluates, and puts it back. So each thread in practice
//! reuses one instance, with no per-call instantiation and no per-call policy
//! compile; a store that trapped is dropped, never reused. See the README for the
//! measurements behind this choice.

use crate::bindings::{self, LoweredPush, Strings, Taglock, wit};
use crate::error::HostError;
use crate::host::Host;
use crate::runtime;
use policy_core::{
    Actor, Decision, DeleteRequest, Lint, LoadErrors, MountRequest, Operation, PullRequest,
    PushNeeds, PushRequest, Request, TagState, TagTest, UploadRequest,
};
use std::sync::{Mutex, PoisonError};
use wasmtime::{ResourceLimiter, Store, Trap};

/// Per-store data: the memory limiter.
pub(crate) struct StoreState {
    max_memory: usize,
    /// Set when the limiter refused a growth, to tell that trap from others.
    memory_refused: bool,
}

impl ResourceLimiter for StoreState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.max_memory;
        if !allowed {
            self.memory_refused = true;
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }

    // The component holds a few core instances (the module and the canonical-ABI
    // glue that wit-component generates); these caps only stop runaway growth.
    fn instances(&self) -> usize {
        16
    }

    fn tables(&self) -> usize {
        16
    }

    fn memories(&self) -> usize {
        4
    }
}

/// What an evaluation answered, lifted.
enum Answer {
    /// Allowed; the mask of the `allowed-protecting` verdict (0 for `allowed`).
    Allowed(u64),
    /// `detailed`, with what `last-decision` gave.
    Detailed(Option<wit::Decision>),
    /// `unreadable`: nothing was decided.
    Unreadable,
}

/// One store with one instance of the component, the policy loaded in it (an
/// instance holds one policy).
struct Instance {
    store: Store<StoreState>,
    bindings: Taglock,
}

/// A policy loaded into the decision component. `Send + Sync`: share it (e.g. in
/// an `Arc`) across a registry's request threads.
///
/// Every method returns `Err` instead of a decision when the component could not
/// decide (timeout, memory limit, trap). Fail closed: answer such a request with
/// [`HostError::http_status`], never let it through.
pub struct WasmPolicy {
    host: Host,
    json: Box<str>,
    lints: Vec<Lint>,
    /// Boxed: an instance moves out of the pool and back on every call, and the
    /// bindings it holds are a few hundred bytes (copying them was 2 % of a pull).
    #[allow(clippy::vec_box)]
    idle: Mutex<Vec<Box<Instance>>>,
}

impl std::fmt::Debug for WasmPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmPolicy")
            .field("host", &self.host)
            .field("lints", &self.lints)
            .finish_non_exhaustive()
    }
}

impl WasmPolicy {
    pub(crate) fn load(host: Host, json: &str) -> Result<WasmPolicy, HostError> {
        let mut instance = instantiate(&host)?;
        load_into(&host, &mut instance, json)?.map_err(HostError::Policy)?;
        let lints = call(&host, &mut instance, Budget::Load, |bindings, store| {
            bindings.taglock_policy_engine().call_lints(store)
        })?;
        Ok(WasmPolicy {
            host,
            json: json.into(),
            lints: bindings::lints(lints)?,
            idle: Mutex::new(vec![Box::new(instance)]),
        })
    }

    /// The warnings computed when the policy was loaded (see `docs/policy.md`, "Lints").
    pub fn lints(&self) -> &[Lint] {
        &self.lints
    }

    /// The host this policy runs on.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// Decides any request.
    pub fn evaluate(&self, request: &Request) -> Result<Decision, HostError> {
        match request {
            Request::Push(r) => self.evaluate_push(r),
            Request::Delete(r) => self.evaluate_delete(r),
            Request::Upload(r) => self.evaluate_upload(r),
            Request::Pull(r) => self.evaluate_pull(r),
            Request::Mount(r) => self.evaluate_mount(r),
        }
    }

    /// Decides a manifest push.
    pub fn evaluate_push(&self, request: &PushRequest) -> Result<Decision, HostError> {
        let lowered = LoweredPush::new(request)?;
        self.decide(Operation::Push, &request.tags, |b, store| {
            lowered
                .with_record(|record| b.taglock_policy_engine().call_evaluate_push(store, record))
        })
    }

    /// Decides a tag, manifest or image delete.
    pub fn evaluate_delete(&self, request: &DeleteRequest) -> Result<Decision, HostError> {
        let mut strings = Strings::new();
        let image = strings.span(&request.image)?;
        let target = strings.delete_target(&request.target)?;
        let tags = request
            .tags
            .as_deref()
            .map(|tags| strings.tags(tags))
            .transpose()?;
        let actor = strings.actor(&request.actor)?;
        let tags = tags.map(|tags| strings.tag_records(&tags));
        let lowered = wit::DeleteRequest {
            text: strings.text(),
            image,
            target,
            tags: tags.as_deref(),
            actor: strings.actor_record(actor),
        };
        self.decide(Operation::Delete, &[], |b, store| {
            b.taglock_policy_engine()
                .call_evaluate_delete(store, lowered)
        })
    }

    /// Decides a blob upload session.
    pub fn evaluate_upload(&self, request: &UploadRequest) -> Result<Decision, HostError> {
        let mut strings = Strings::new();
        let image = strings.span(&request.image)?;
        let actor = strings.actor(&request.actor)?;
        let lowered = wit::UploadRequest {
            text: strings.text(),
            image,
            image_exists: request.image_exists,
            actor: strings.actor_record(actor),
        };
        self.decide(Operation::Upload, &[], |b, store| {
            b.taglock_policy_engine()
                .call_evaluate_upload(store, lowered)
        })
    }

    /// Decides a read.
    pub fn evaluate_pull(&self, request: &PullRequest) -> Result<Decision, HostError> {
        let mut strings = Strings::new();
        let image = strings.span(&request.image)?;
        let actor = strings.actor(&request.actor)?;
        let lowered = wit::PullRequest {
            text: strings.text(),
            image,
            actor: strings.actor_record(actor),
        };
        self.decide(Operation::Pull, &[], |b, store| {
            b.taglock_policy_engine().call_evaluate_pull(store, lowered)
        })
    }

    /// Decides a cross-repository blob mount.
    pub fn evaluate_mount(&self, request: &MountRequest) -> Result<Decision, HostError> {
        let mut strings = Strings::new();
        let image = strings.span(&request.image)?;
        let from = strings.span(&request.from)?;
        let actor = strings.actor(&request.actor)?;
        let lowered = wit::MountRequest {
            text: strings.text(),
            image,
            from,
            image_exists: request.image_exists,
            actor: strings.actor_record(actor),
        };
        self.decide(Operation::Mount, &[], |b, store| {
            b.taglock_policy_engine()
                .call_evaluate_mount(store, lowered)
        })
    }

    /// Tests one tag of one image against the immutability rules.
    pub fn test_tag(&self, image: &str, tag: &str) -> Result<TagTest, HostError> {
        self.with_instance(|b, store| b.taglock_policy_engine().call_test_tag(store, image, tag))
            .map(bindings::tag_test)
    }

    /// Which facts a push's decision depends on (see
    /// [`policy_core::Policy::push_needs`]). An answer that does not fit the
    /// request (one entry per tag) is an error.
    pub fn push_needs(&self, request: &PushRequest) -> Result<PushNeeds, HostError> {
        let lowered = LoweredPush::new(request)?;
        let needs = self.with_instance(|b, store| {
            lowered.with_record(|record| b.taglock_policy_engine().call_push_needs(store, record))
        })?;
        bindings::push_needs(needs, request.tags.len()).map_err(HostError::InvalidResponse)
    }

    /// Whether a write of `actor` to `image` is decided differently when the
    /// image exists and when it does not (see
    /// [`policy_core::Policy::existence_matters`]).
    pub fn existence_matters(&self, image: &str, actor: &Actor) -> Result<bool, HostError> {
        let mut strings = Strings::new();
        let image = strings.span(image)?;
        let actor = strings.actor(actor)?;
        // Asked as an upload: a write with no tags, whose `image-exists` is not read.
        let lowered = wit::UploadRequest {
            text: strings.text(),
            image,
            image_exists: false,
            actor: strings.actor_record(actor),
        };
        self.with_instance(|b, store| {
            b.taglock_policy_engine()
                .call_existence_matters(store, lowered)
        })
    }

    /// Runs one `evaluate-*` call for a request that pushed `tags` (none for other
    /// operations) and, when its verdict is `detailed`, reads the decision with
    /// `last-decision` on the same instance; an allowed verdict becomes the core's
    /// [`Decision::allow`].
    fn decide(
        &self,
        operation: Operation,
        tags: &[TagState],
        f: impl FnOnce(&Taglock, &mut Store<StoreState>) -> wasmtime::Result<wit::Verdict>,
    ) -> Result<Decision, HostError> {
        let answer = self.with_instance(|b, store| {
            Ok(match f(b, store)? {
                wit::Verdict::Allowed => Answer::Allowed(0),
                wit::Verdict::AllowedProtecting(mask) => Answer::Allowed(mask),
                wit::Verdict::Detailed => {
                    Answer::Detailed(b.taglock_policy_engine().call_last_decision(store)?)
                }
                wit::Verdict::Unreadable => Answer::Unreadable,
            })
        })?;
        let invalid = HostError::InvalidResponse;
        match answer {
            Answer::Allowed(mask) => bindings::protected_tags(mask, tags)
                .map(|protected| Decision::allow(operation, protected))
                .map_err(invalid),
            Answer::Detailed(Some(decision)) => bindings::decision(decision).map_err(invalid),
            Answer::Detailed(None) => Err(invalid(
                "a `detailed` verdict with no decision behind it".to_owned(),
            )),
            Answer::Unreadable => Err(HostError::Unreadable(
                "a span outside the request's strings".to_owned(),
            )),
        }
    }

    /// Runs `f` on an idle instance (or a new one), bounded by the host's limits.
    /// The instance goes back to the pool only if the call succeeded.
    fn with_instance<R>(
        &self,
        f: impl FnOnce(&Taglock, &mut Store<StoreState>) -> wasmtime::Result<R>,
    ) -> Result<R, HostError> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut instance = match idle {
            Some(instance) => instance,
            None => self.new_instance()?,
        };
        let result = call(&self.host, &mut instance, Budget::Decision, f)?;
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.host.inner.limits.max_idle_instances {
            idle.push(instance);
        }
        Ok(result)
    }

    /// A fresh instance with this policy loaded (it loaded before, so it loads again).
    fn new_instance(&self) -> Result<Box<Instance>, HostError> {
        let mut instance = instantiate(&self.host)?;
        load_into(&self.host, &mut instance, &self.json)?.map_err(|errors| {
            HostError::InvalidResponse(format!("a policy that loaded before was refused: {errors}"))
        })?;
        Ok(Box::new(instance))
    }
}

/// Instantiates and drops an instance (see [`Host::instantiate`]).
pub(crate) fn probe(host: &Host) -> Result<(), HostError> {
    instantiate(host).map(drop)
}

/// A new store and instance, with the limits set.
fn instantiate(host: &Host) -> Result<Instance, HostError> {
    let limits = host.inner.limits;
    let mut store = Store::new(
        &host.inner.engine,
        StoreState {
            max_memory: limits.max_memory,
            memory_refused: false,
        },
    );
    store.limiter(|state| state as &mut dyn ResourceLimiter);
    // Instantiating is part of loading: the load budget applies.
    store.set_epoch_deadline(runtime::deadline_ticks(limits.load_timeout));
    store.epoch_deadline_trap();
    let bindings = host
        .inner
        .pre
        .instantiate(&mut store)
        .map_err(|err| classify(err, &store, host, Budget::Load))?;
    Ok(Instance { store, bindings })
}

/// Loads the policy into `instance`: the outer `Result` is the call, the inner
/// one the policy's verdict.
fn load_into(
    host: &Host,
    instance: &mut Instance,
    json: &str,
) -> Result<Result<(), LoadErrors>, HostError> {
    let loaded = call(host, instance, Budget::Load, |bindings, store| {
        bindings.taglock_policy_engine().call_load(store, json)
    })?;
    match loaded {
        Ok(()) => Ok(Ok(())),
        Err(errors) => bindings::load_errors(errors)
            .map(Err)
            .map_err(HostError::InvalidResponse),
    }
}

/// Which CPU budget a call runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Budget {
    /// [`crate::Limits::timeout`]: a decision.
    Decision,
    /// [`crate::Limits::load_timeout`]: loading a policy.
    Load,
}

/// Calls into the instance with a fresh CPU budget; classifies failures.
fn call<R>(
    host: &Host,
    instance: &mut Instance,
    budget: Budget,
    f: impl FnOnce(&Taglock, &mut Store<StoreState>) -> wasmtime::Result<R>,
) -> Result<R, HostError> {
    let limits = host.inner.limits;
    let timeout = match budget {
        Budget::Decision => limits.timeout,
        Budget::Load => limits.load_timeout,
    };
    let store = &mut instance.store;
    store.set_epoch_deadline(runtime::deadline_ticks(timeout));
    store.data_mut().memory_refused = false;
    f(&instance.bindings, store).map_err(|err| classify(err, store, host, budget))
}

/// Turns a wasmtime error into the typed error a registry can act on.
fn classify(
    err: wasmtime::Error,
    store: &Store<StoreState>,
    host: &Host,
    budget: Budget,
) -> HostError {
    let limits = host.inner.limits;
    if store.data().memory_refused {
        return HostError::MemoryLimit(limits.max_memory);
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) if budget == Budget::Load => {
            HostError::LoadTimeout(limits.load_timeout)
        }
        Some(Trap::Interrupt) => HostError::Timeout(limits.timeout),
        Some(trap) => HostError::Trap(trap.to_string()),
        None => HostError::Trap(format!("{err:#}")),
    }
}

#[cfg(test)]
mod tests {
    use super::{Budget, Instance, call, instantiate, load_into};
    use crate::bindings::{LoweredPush, wit};
    use crate::{Host, HostError};
    use policy_core::{Actor, PushRequest, TagState};

    /// An overwrite of tag `v1`, lowered.
    fn overwrite() -> LoweredPush {
        let digest = |c: &str| format!("sha256:{}", c.repeat(64));
        LoweredPush::new(&PushRequest {
            image: "acme/web".into(),
            digest: digest("a"),
            tags: vec![TagState::existing("v1", digest("b"))],
            image_exists: true,
            actor: Actor::user("alice", &[]),
        })
        .unwrap()
    }

    fn evaluate(
        host: &Host,
        instance: &mut Instance,
        push: &LoweredPush,
    ) -> Result<wit::Verdict, HostError> {
        call(host, instance, Budget::Decision, |bindings, store| {
            push.with_record(|record| {
                bindings
                    .taglock_policy_engine()
                    .call_evaluate_push(store, record)
            })
        })
    }

    /// The interface's contract: an instance decides nothing before a policy
    /// has loaded into it. The call traps (an error, never a verdict), and the
    /// same request is decided once a policy is in.
    #[test]
    fn an_instance_without_a_policy_traps_instead_of_deciding() {
        let host = Host::embedded().unwrap();
        let lowered = overwrite();
        let mut instance = instantiate(&host).unwrap();
        let evaluate = |instance: &mut _| evaluate(&host, instance, &lowered);
        assert!(
            matches!(evaluate(&mut instance), Err(HostError::Trap(_))),
            "an evaluation before `load` must trap"
        );
        // A trapped instance is never reused: a fresh one, with a policy.
        let mut instance = instantiate(&host).unwrap();
        load_into(&host, &mut instance, r#"{"version": 1}"#)
            .unwrap()
            .unwrap();
        assert!(evaluate(&mut instance).is_ok());
    }

    /// A refused policy leaves the instance's policy as it was (the
    /// interface's `load`): the overwrite stays denied under `protect: all`.
    #[test]
    fn a_refused_load_keeps_the_policy_loaded_before() {
        let host = Host::embedded().unwrap();
        let push = overwrite();
        let mut instance = instantiate(&host).unwrap();
        load_into(
            &host,
            &mut instance,
            r#"{"version": 1, "immutability": {"protect": "all"}}"#,
        )
        .unwrap()
        .unwrap();
        let denied = |verdict| matches!(verdict, Ok(wit::Verdict::Detailed));
        assert!(denied(evaluate(&host, &mut instance, &push)));
        let refused = load_into(&host, &mut instance, r#"{"version": 99}"#).unwrap();
        assert!(refused.is_err(), "an unsupported version loads");
        assert!(denied(evaluate(&host, &mut instance, &push)));
        // And a policy that does load replaces it.
        load_into(&host, &mut instance, r#"{"version": 1}"#)
            .unwrap()
            .unwrap();
        assert!(matches!(
            evaluate(&host, &mut instance, &push),
            Ok(wit::Verdict::Allowed)
        ));
    }
}
