//! The root context of each worker: loads the configuration and the policy,
//! defines the counters, creates one [`Exchange`] per request, and, while
//! requests wait for write locks, ticks to retry them ([`crate::wait`]).

use crate::config::PluginConfig;
use crate::exchange::Exchange;
use crate::host;
use crate::upstream::UpstreamAuth;
use crate::wait::{self, SharedRoom};
use crate::waiters::Waiters;
use policy_core::Policy;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel, MetricType};
use std::cell::RefCell;
use std::rc::Rc;

/// What every request of a worker shares: the configuration, the policy and
/// the counters.
#[derive(Debug)]
pub struct Shared {
    /// The configuration.
    pub config: PluginConfig,
    /// The policy.
    pub policy: Policy,
    /// The counters.
    pub metrics: Metrics,
    /// The filter's own credentials for the registry, and the worker's tokens.
    pub upstream: Option<RefCell<UpstreamAuth>>,
}

/// Counter ids (Envoy shows them as `wasmcustom.taglock_*`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Metrics {
    allowed: Option<u32>,
    denied: Option<u32>,
    would_deny: Option<u32>,
    refused: Option<u32>,
    lock_busy: Option<u32>,
}

/// Which counter.
#[derive(Debug, Clone, Copy)]
pub enum Counter {
    /// A decision let the request through.
    Allowed,
    /// A decision denied it.
    Denied,
    /// Audit mode let through what enforce mode would deny.
    WouldDeny,
    /// The gateway refused it on its own (no decision).
    Refused,
    /// A write lock was busy: a write refused after waiting, or at once
    /// (waiting list full, or `lock_timeout_ms` 0).
    LockBusy,
}

impl Metrics {
    fn define() -> Metrics {
        let define = |name: &str| hostcalls::define_metric(MetricType::Counter, name).ok();
        Metrics {
            allowed: define("taglock_decisions_allowed"),
            denied: define("taglock_decisions_denied"),
            would_deny: define("taglock_decisions_would_deny"),
            refused: define("taglock_refusals"),
            lock_busy: define("taglock_lock_busy"),
        }
    }

    /// Adds one to `counter`.
    pub fn count(&self, counter: Counter) {
        let id = match counter {
            Counter::Allowed => self.allowed,
            Counter::Denied => self.denied,
            Counter::WouldDeny => self.would_deny,
            Counter::Refused => self.refused,
            Counter::LockBusy => self.lock_busy,
        };
        if let Some(id) = id {
            let _ = hostcalls::increment_metric(id, 1);
        }
    }
}

/// The root context.
pub struct Root {
    id: u32,
    shared: Option<Rc<Shared>>,
    room: SharedRoom,
}

impl Root {
    /// The root context `id` of a worker.
    pub fn new(id: u32) -> Root {
        Root {
            id,
            shared: None,
            room: SharedRoom::default(),
        }
    }
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        wait::call_answered(&self.room, token_id, body_size);
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = match hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX) {
            Ok(Some(bytes)) => bytes,
            Ok(None) | Err(_) => {
                host::log(
                    LogLevel::Critical,
                    "taglock: the plugin has no configuration",
                );
                return false;
            }
        };
        let config = match PluginConfig::parse(&bytes) {
            Ok(config) => config,
            Err(err) => {
                host::log(LogLevel::Critical, &format!("taglock: {err}"));
                return false;
            }
        };
        let policy = match Policy::from_json(&config.policy) {
            Ok(policy) => policy,
            Err(errors) => {
                for error in &errors {
                    host::log(LogLevel::Critical, &format!("taglock: policy: {error}"));
                }
                host::log(LogLevel::Critical, &format!("taglock: {errors}"));
                return false;
            }
        };
        for lint in policy.lints() {
            host::log(LogLevel::Warn, &format!("taglock: policy: {lint}"));
        }
        if let Err(status) = host::init_locks() {
            host::log(
                LogLevel::Critical,
                &format!("taglock: cannot create the write lock table: {status:?}"),
            );
            return false;
        }
        if let Ok(mut room) = self.room.try_borrow_mut() {
            room.waiters = Waiters::new(config.lock_waiters);
        }
        let upstream = match &config.upstream {
            Some(credentials) => {
                match UpstreamAuth::new(credentials, &config.cluster, &config.authority) {
                    Ok(auth) => Some(RefCell::new(auth)),
                    Err(why) => {
                        host::log(LogLevel::Critical, &format!("taglock: {why}"));
                        return false;
                    }
                }
            }
            None => None,
        };
        self.shared = Some(Rc::new(Shared {
            config,
            policy,
            metrics: Metrics::define(),
            upstream,
        }));
        true
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Exchange::new(
            self.shared.clone(),
            self.room.clone(),
            context_id,
        )))
    }

    fn on_tick(&mut self) {
        match &self.shared {
            Some(shared) => wait::tick(&self.room, self.id, shared.config.lock_ttl_ms),
            None => host::tick(false),
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
