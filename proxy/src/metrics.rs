//! Prometheus metrics of the proxy (`GET /metrics`, text exposition format).

use policy_core::{Decision, Request};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Duration;

/// Labels of `taglock_decisions_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    operation: &'static str,
    reason: &'static str,
    /// `allow`, `deny`, or `would_deny` (audit mode).
    outcome: &'static str,
}

/// Labels of `taglock_upstream_duration_seconds`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    /// `facts` (the proxy's own reads) or `forward` (the client's request).
    kind: &'static str,
}

/// Labels of `taglock_policy_reloads_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    result: &'static str,
}

/// Labels of `taglock_errors_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    /// The OCI error code the proxy answered with on its own behalf.
    code: &'static str,
}

/// Labels of `taglock_connection_timeouts_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TimeoutLabels {
    /// `header` (the request header did not arrive in time) or `idle` (no next
    /// request on a kept-alive connection).
    phase: &'static str,
}

/// Every metric the proxy exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    decisions: Family<DecisionLabels, Counter>,
    decision_seconds: Histogram,
    upstream_seconds: Family<UpstreamLabels, Histogram>,
    reloads: Family<ReloadLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    connections_open: Gauge,
    connections_max: Gauge,
    connection_limit_reached: Counter,
    connection_timeouts: Family<TimeoutLabels, Counter>,
}

/// Why the proxy closed a client connection on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionTimeout {
    /// The request header did not arrive within `header_read_timeout`.
    Header,
    /// A kept-alive connection sent no next request within `idle_timeout`.
    Idle,
}

/// Which upstream exchange a latency belongs to.
#[derive(Debug, Clone, Copy)]
pub enum UpstreamKind {
    /// Reading facts (tag digests, tag lists) for a decision.
    Facts,
    /// Forwarding the client's request.
    Forward,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric under the `taglock_` prefix.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("taglock");
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "decisions",
            "Decisions made, by operation, reason and outcome",
            decisions.clone(),
        );
        // 1 µs … ~16 ms: a decision through the component takes microseconds.
        let decision_seconds = Histogram::new(exponential_buckets(1e-6, 2.0, 15));
        registry.register(
            "decision_duration_seconds",
            "Time to evaluate one request in the decision component",
            decision_seconds.clone(),
        );
        // 100 µs … ~26 s.
        let upstream_seconds = Family::<UpstreamLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(1e-4, 2.0, 19))) as fn() -> Histogram,
        );
        registry.register(
            "upstream_duration_seconds",
            "Time until the upstream registry answered, by kind of exchange",
            upstream_seconds.clone(),
        );
        let reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "policy_reloads",
            "Policy reloads, by result (loaded or refused)",
            reloads.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "proxy_errors",
            "Requests the proxy answered itself with an error, by OCI code",
            errors.clone(),
        );
        let connections_open = Gauge::default();
        registry.register(
            "connections_open",
            "Client connections open now",
            connections_open.clone(),
        );
        let connections_max = Gauge::default();
        registry.register(
            "connections_max",
            "Client connections served at once at most (max_connections)",
            connections_max.clone(),
        );
        let connection_limit_reached = Counter::default();
        registry.register(
            "connection_limit_reached",
            "Times every connection slot was taken, so new connections waited to be accepted",
            connection_limit_reached.clone(),
        );
        let connection_timeouts = Family::<TimeoutLabels, Counter>::default();
        registry.register(
            "connection_timeouts",
            "Client connections closed by the proxy, by phase (header or idle)",
            connection_timeouts.clone(),
        );
        Metrics {
            registry,
            decisions,
            decision_seconds,
            upstream_seconds: upstream_seconds.clone(),
            reloads,
            errors,
            connections_open,
            connections_max,
            connection_limit_reached,
            connection_timeouts,
        }
    }

    /// Records the connection cap in force.
    pub fn connections_max(&self, max: usize) {
        self.connections_max
            .set(i64::try_from(max).unwrap_or(i64::MAX));
    }

    /// Counts a client connection accepted.
    pub fn connection_opened(&self) {
        self.connections_open.inc();
    }

    /// Counts a client connection gone.
    pub fn connection_closed(&self) {
        self.connections_open.dec();
    }

    /// Counts a moment when every connection slot was taken.
    pub fn connection_limit_reached(&self) {
        self.connection_limit_reached.inc();
    }

    /// Counts a connection the proxy closed because it was too slow or idle.
    pub fn connection_timeout(&self, timeout: ConnectionTimeout) {
        let phase = match timeout {
            ConnectionTimeout::Header => "header",
            ConnectionTimeout::Idle => "idle",
        };
        self.connection_timeouts
            .get_or_create(&TimeoutLabels { phase })
            .inc();
    }

    /// Counts one decision and its evaluation time.
    pub fn decision(&self, request: &Request, decision: &Decision, took: Duration) {
        let outcome = match (decision.allowed(), decision.would_deny()) {
            (true, true) => "would_deny",
            (true, false) => "allow",
            (false, _) => "deny",
        };
        self.decisions
            .get_or_create(&DecisionLabels {
                operation: operation(request),
                reason: decision.reason().as_str(),
                outcome,
            })
            .inc();
        self.decision_seconds.observe(took.as_secs_f64());
    }

    /// Records how long the upstream took.
    pub fn upstream(&self, kind: UpstreamKind, took: Duration) {
        let kind = match kind {
            UpstreamKind::Facts => "facts",
            UpstreamKind::Forward => "forward",
        };
        self.upstream_seconds
            .get_or_create(&UpstreamLabels { kind })
            .observe(took.as_secs_f64());
    }

    /// Counts a policy reload.
    pub fn reload(&self, loaded: bool) {
        let result = if loaded { "loaded" } else { "refused" };
        self.reloads.get_or_create(&ReloadLabels { result }).inc();
    }

    /// Counts an error the proxy answered itself.
    pub fn error(&self, code: &'static str) {
        self.errors.get_or_create(&ErrorLabels { code }).inc();
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// The operation's name as the request JSON spells it.
pub fn operation(request: &Request) -> &'static str {
    match request {
        Request::Push(_) => "push",
        Request::Delete(_) => "delete",
        Request::Upload(_) => "upload",
        Request::Pull(_) => "pull",
        Request::Mount(_) => "mount",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use policy_core::{Actor, PullRequest};

    #[test]
    fn decisions_and_latencies_show_in_the_exposition() {
        let metrics = Metrics::new();
        let policy = policy_core::Policy::from_json(r#"{"version": 1}"#).unwrap();
        let request = Request::Pull(PullRequest {
            image: "acme/web".into(),
            actor: Actor::anonymous(),
        });
        let decision = policy.evaluate(&request);
        metrics.decision(&request, &decision, Duration::from_micros(3));
        metrics.upstream(UpstreamKind::Facts, Duration::from_millis(1));
        metrics.reload(false);
        metrics.error("UNAVAILABLE");
        metrics.connections_max(32);
        metrics.connection_opened();
        metrics.connection_opened();
        metrics.connection_closed();
        metrics.connection_limit_reached();
        metrics.connection_timeout(ConnectionTimeout::Header);
        let text = metrics.render();
        let reason = decision.reason().as_str();
        assert!(
            text.contains(&format!(
                "taglock_decisions_total{{operation=\"pull\",reason=\"{reason}\",outcome=\""
            )),
            "{text}"
        );
        assert!(
            text.contains("taglock_decision_duration_seconds_count 1"),
            "{text}"
        );
        assert!(
            text.contains("taglock_upstream_duration_seconds_count{kind=\"facts\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("taglock_policy_reloads_total{result=\"refused\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("taglock_proxy_errors_total{code=\"UNAVAILABLE\"} 1"),
            "{text}"
        );
        assert!(text.contains("taglock_connections_open 1\n"), "{text}");
        assert!(text.contains("taglock_connections_max 32\n"), "{text}");
        assert!(
            text.contains("taglock_connection_limit_reached_total 1\n"),
            "{text}"
        );
        assert!(
            text.contains("taglock_connection_timeouts_total{phase=\"header\"} 1"),
            "{text}"
        );
    }
}
