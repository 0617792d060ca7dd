//! Bounds on what clients of an HTTPS server ([`crate::tls::HttpsServer`]) can hold: how many
//! connections are open at once, how long a TLS handshake, an HTTP/1 request head and an idle
//! connection may take, and how many HTTP/2 streams one connection may run ([`ServerLimits`]);
//! the per-connection bookkeeping that finds idle connections ([`Activity`]); and the optional
//! Prometheus series a program can register to watch them ([`ConnectionMetrics`]).
//!
//! # At the connection cap
//!
//! A server with `max_connections` open connections stops calling `accept` until one closes:
//! new connections wait in the kernel's listen backlog (their TCP handshake completes, their TLS
//! handshake does not start), and are served in order as slots free. Connections already open —
//! such as the HTTP/2 connection the Kubernetes aggregator keeps and multiplexes every request
//! over — keep being served. Slots held by clients that send nothing are freed by the handshake,
//! header-read and idle timeouts, so a flood of idle connections delays newcomers by at most
//! those timeouts instead of holding the port forever.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Default cap on open connections per server.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default bound on a TLS handshake.
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default bound on receiving an HTTP/1 request head (request line and headers).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a connection may stay open with no request in flight.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Default bound on concurrent HTTP/2 streams per connection (Go's `net/http` default, which
/// kube-apiserver's clients expect).
pub const DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS: u32 = 250;
/// Default period of HTTP/2 keep-alive pings.
pub const DEFAULT_HTTP2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// Default wait for a keep-alive ping's answer before the connection is closed.
pub const DEFAULT_HTTP2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Bounds applied by an HTTPS server to its clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerLimits {
    /// Connections open at once; beyond it new ones wait in the listen backlog (at least 1).
    pub max_connections: usize,
    /// Bound on the TLS handshake of a new connection.
    pub tls_handshake_timeout: Duration,
    /// Bound on receiving an HTTP/1 request head, from the moment the server waits for it.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight for this long is closed.
    pub idle_timeout: Duration,
    /// Concurrent streams an HTTP/2 client may open on one connection.
    pub http2_max_concurrent_streams: u32,
    /// Period of HTTP/2 keep-alive pings (dead peers are found and dropped).
    pub http2_keepalive_interval: Duration,
    /// Wait for a keep-alive ping's answer.
    pub http2_keepalive_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            tls_handshake_timeout: DEFAULT_TLS_HANDSHAKE_TIMEOUT,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            http2_max_concurrent_streams: DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS,
            http2_keepalive_interval: DEFAULT_HTTP2_KEEPALIVE_INTERVAL,
            http2_keepalive_timeout: DEFAULT_HTTP2_KEEPALIVE_TIMEOUT,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// Why a connection was closed by the server rather than by its client (a fixed set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closed {
    /// The TLS handshake did not finish within the handshake timeout.
    HandshakeTimeout,
    /// The TLS handshake failed (bad client certificate, not TLS, …).
    HandshakeFailed,
    /// No request in flight for the idle timeout.
    Idle,
    /// One of the HTTP timeouts: an HTTP/1 request head not received within the header-read
    /// timeout, or an HTTP/2 keep-alive ping not answered.
    Timeout,
}

impl Closed {
    fn label(self) -> &'static str {
        match self {
            Closed::HandshakeTimeout => "handshake_timeout",
            Closed::HandshakeFailed => "handshake_failed",
            Closed::Idle => "idle",
            Closed::Timeout => "timeout",
        }
    }
}

/// Connection series of one server; clones share them. Register with
/// [`ConnectionMetrics::register`] under a program prefix.
#[derive(Clone, Debug, Default)]
pub struct ConnectionMetrics {
    open: Gauge,
    at_capacity: Counter,
    closed: Family<ReasonLabels, Counter>,
}

impl ConnectionMetrics {
    /// Registers `<prefix>_connections` (gauge: open now), `<prefix>_connection_cap_reached_total`
    /// (times the server stopped accepting because the cap was reached) and
    /// `<prefix>_connections_closed_total{reason}` (closed by the server: `handshake_timeout`,
    /// `handshake_failed`, `idle`, `timeout`).
    pub fn register(registry: &mut Registry, prefix: &str) -> Self {
        let metrics = Self::default();
        registry.register(
            format!("{prefix}_connections"),
            "Connections open on the TLS port",
            metrics.open.clone(),
        );
        registry.register(
            format!("{prefix}_connection_cap_reached"),
            "Times the TLS port reached its connection cap and new connections had to wait",
            metrics.at_capacity.clone(),
        );
        registry.register(
            format!("{prefix}_connections_closed"),
            "Connections the server closed on its own, by reason",
            metrics.closed.clone(),
        );
        metrics
    }

    pub(crate) fn opened(&self) {
        self.open.inc();
    }

    pub(crate) fn ended(&self) {
        self.open.dec();
    }

    pub(crate) fn cap_reached(&self) {
        self.at_capacity.inc();
    }

    pub(crate) fn closed(&self, why: Closed) {
        self.closed.get_or_create(&ReasonLabels { reason: why.label() }).inc();
    }
}

/// What one connection is doing: requests in flight and when the last one ended, so that an
/// idle connection can be found. Shared between the connection's requests and its watchdog.
#[derive(Debug)]
pub struct Activity {
    started: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds after `started` at which the last request ended (or the connection opened).
    last_done_ms: AtomicU64,
}

impl Activity {
    /// A connection that opened at `now` and has served nothing yet.
    pub fn new(now: Instant) -> Arc<Self> {
        Arc::new(Self { started: now, in_flight: AtomicUsize::new(0), last_done_ms: AtomicU64::new(0) })
    }

    /// Marks a request as started; it counts as in flight until the guard is dropped (also
    /// when the request is cancelled).
    pub fn begin(self: &Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        RequestGuard(self.clone())
    }

    /// When the connection becomes idle long enough to be closed: `None` while a request is
    /// in flight, else the last request's end (or the connection's start) plus `idle`.
    pub fn idle_deadline(&self, idle: Duration) -> Option<Instant> {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let last = Duration::from_millis(self.last_done_ms.load(Ordering::SeqCst));
        Some(self.started + last + idle)
    }
}

/// A request in flight on a connection (see [`Activity::begin`]).
#[derive(Debug)]
pub struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let elapsed = u64::try_from(self.0.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.last_done_ms.fetch_max(elapsed, Ordering::SeqCst);
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_deadline_follows_requests() {
        let t0 = Instant::now();
        let activity = Activity::new(t0);
        let idle = Duration::from_secs(5);
        assert_eq!(activity.idle_deadline(idle), Some(t0 + idle));
        let a = activity.begin();
        let b = activity.begin();
        assert_eq!(activity.idle_deadline(idle), None);
        drop(a);
        assert_eq!(activity.idle_deadline(idle), None, "one request is still in flight");
        std::thread::sleep(Duration::from_millis(20));
        drop(b);
        let deadline = activity.idle_deadline(idle).unwrap();
        assert!(deadline >= t0 + idle + Duration::from_millis(20), "counted from the last request's end");
    }

    #[test]
    fn metrics_are_named_with_the_prefix() {
        let mut registry = Registry::default();
        let metrics = ConnectionMetrics::register(&mut registry, "ebb_test");
        metrics.opened();
        metrics.opened();
        metrics.ended();
        metrics.cap_reached();
        metrics.closed(Closed::Idle);
        metrics.closed(Closed::HandshakeTimeout);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "ebb_test_connections 1",
            "ebb_test_connection_cap_reached_total 1",
            "ebb_test_connections_closed_total{reason=\"idle\"} 1",
            "ebb_test_connections_closed_total{reason=\"handshake_timeout\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }
}
