//! The server's Prometheus metrics (exported on the admin port's `/metrics` next to
//! `keda_build_info`). Every label value is from a fixed set — never a namespace, metric name,
//! user or token.
//!
//! | name | type | labels |
//! |---|---|---|
//! | `ebb_metrics_apiserver_requests_total` | counter | `route` (externalmetrics, discovery, openapi, health, other), `code` |
//! | `ebb_metrics_apiserver_request_duration_seconds` | histogram | `route` |
//! | `ebb_metrics_apiserver_operator_link_up` | gauge | — (1 while the operator answers its health check) |
//! | `ebb_metrics_apiserver_operator_queries_total` | counter | `result` (ok, error): value queries sent to the operator (after sharing and reuse) |
//! | `ebb_metrics_apiserver_auth_reviews_total` | counter | `review` (token, access), `result` (cached, allowed, denied, error, limited: a token refused without review, past the review budget) |
//! | `ebb_metrics_apiserver_connections` | gauge | — (open on the secure port) |
//! | `ebb_metrics_apiserver_connection_cap_reached_total` | counter | — (times new connections had to wait for a slot) |
//! | `ebb_metrics_apiserver_connections_closed_total` | counter | `reason` (handshake_timeout, handshake_failed, idle, timeout) |
//!
//! The connection series are `ebb_plumbing::limits::ConnectionMetrics`, registered next to these.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueryLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReviewLabels {
    review: &'static str,
    result: &'static str,
}

fn latency_histogram() -> Histogram {
    // 100 µs … ~15 s.
    Histogram::new(exponential_buckets(0.0001, 2.5, 14))
}

/// Handles to the metrics; clones share the series.
#[derive(Clone, Debug)]
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    reviews: Family<ReviewLabels, Counter>,
    queries: Family<QueryLabels, Counter>,
    /// 1 while the operator answers its health check.
    pub link_up: Gauge,
}

impl Metrics {
    /// Creates the metrics and registers them on `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::unregistered();
        registry.register(
            "ebb_metrics_apiserver_requests",
            "Requests answered on the secure port, by route and HTTP status code",
            metrics.requests.clone(),
        );
        registry.register(
            "ebb_metrics_apiserver_request_duration_seconds",
            "Time to answer a request on the secure port, by route",
            metrics.duration.clone(),
        );
        registry.register(
            "ebb_metrics_apiserver_operator_link_up",
            "1 while the operator's internal metrics service answers its health check, else 0",
            metrics.link_up.clone(),
        );
        registry.register(
            "ebb_metrics_apiserver_operator_queries",
            "Value queries sent to the operator (identical requests in flight share one; cached answers are reused)",
            metrics.queries.clone(),
        );
        registry.register(
            "ebb_metrics_apiserver_auth_reviews",
            "Authentication (token) and authorization (access) decisions, by how they were reached",
            metrics.reviews.clone(),
        );
        metrics
    }

    /// Metrics registered nowhere (for tests and tools).
    pub fn unregistered() -> Self {
        Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(latency_histogram),
            reviews: Family::default(),
            queries: Family::default(),
            link_up: Gauge::default(),
        }
    }

    /// Counts one answered request.
    pub fn observe(&self, route: &'static str, code: u16, elapsed: Duration) {
        self.requests.get_or_create(&RequestLabels { route, code }).inc();
        self.duration.get_or_create(&RouteLabels { route }).observe(elapsed.as_secs_f64());
    }

    /// Counts one value query sent to the operator.
    pub fn operator_query(&self, ok: bool) {
        self.queries.get_or_create(&QueryLabels { result: if ok { "ok" } else { "error" } }).inc();
    }

    /// Counts one review decision.
    pub fn review(&self, review: &'static str, result: &'static str) {
        self.reviews.get_or_create(&ReviewLabels { review, result }).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_named_as_documented() {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        metrics.observe("externalmetrics", 200, Duration::from_micros(300));
        metrics.observe("externalmetrics", 200, Duration::from_millis(3));
        metrics.observe("discovery", 401, Duration::from_micros(50));
        metrics.review("access", "cached");
        metrics.review("token", "limited");
        metrics.link_up.set(1);
        metrics.operator_query(true);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "ebb_metrics_apiserver_requests_total{route=\"externalmetrics\",code=\"200\"} 2",
            "ebb_metrics_apiserver_requests_total{route=\"discovery\",code=\"401\"} 1",
            "ebb_metrics_apiserver_request_duration_seconds_count{route=\"externalmetrics\"} 2",
            "ebb_metrics_apiserver_request_duration_seconds_bucket{le=\"0.000625\",route=\"externalmetrics\"} 1",
            "ebb_metrics_apiserver_operator_link_up 1",
            "ebb_metrics_apiserver_auth_reviews_total{review=\"access\",result=\"cached\"} 1",
            "ebb_metrics_apiserver_auth_reviews_total{review=\"token\",result=\"limited\"} 1",
            "ebb_metrics_apiserver_operator_queries_total{result=\"ok\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }
}
