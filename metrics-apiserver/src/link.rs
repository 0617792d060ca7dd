//! The link to the operator's internal metrics service (mutual TLS, HTTP/2; see
//! `ebb_plumbing::internal_client`): a health check every `check_interval` that drives
//! readiness and the `ebb_metrics_apiserver_operator_link_up` gauge, and value queries that
//! fail fast while the link is down.
//!
//! - The URL names a Service that routes to the leading operator replica only. A value query
//!   answered `NotLeader`, or failing to connect or to keep its connection, is asked again on a
//!   fresh connection (up to [`VALUE_ATTEMPTS`] times, pauses from [`RETRY_BACKOFF`] on, within
//!   the query's timeout), so a connection made before a leader change does not stay with the
//!   former leader.
//! - While the last check failed, every value request is answered 503 at once, naming the
//!   operator's URL and the failure; a request in flight when the link goes down is answered 503
//!   at that moment rather than waiting for its own timeout. A request that finds the operator
//!   unreachable marks the link down at once (the next check brings it back).
//! - Identical value requests in flight at the same time share one query to the operator, so a
//!   burst of HPA queries (or several HPAs on one ScaledObject) costs the operator one answer.
//! - An answer the operator gave from its scale-loop cache (`source: cache`, triggers with
//!   `useCachedMetrics`) is reused for `value_cache_ttl` (default 1 s, well under any polling
//!   interval's effect on the HPA); live answers are never reused. This is the only state kept,
//!   it expires on its own, and replicas stay interchangeable.
//! - With a sharded operator ([`OperatorLink::with_router`]), queries and health checks go to
//!   the holders of the shard Leases instead of the URL's address ([`crate::shards`]).

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ebb_api::internal::{MetricValue, ValueError, ValueOrigin};
use ebb_plumbing::admin::Readiness;
use ebb_plumbing::internal_client::{ClientError, InternalClient};
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::watch;

use crate::cache::{Flights, TtlCache};
use crate::metrics::Metrics;
use crate::shards::ShardRouter;
use crate::status::ApiStatus;
use crate::values;

/// Cached answers kept at most (one per ScaledObject metric asked for recently).
const VALUE_CACHE_SIZE: usize = 10_000;

/// Tries of one value query (the first included).
pub const VALUE_ATTEMPTS: u32 = 3;
/// Pause before the first retry of a value query; doubled before the next.
pub const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// Where the operator is and how to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkConfig {
    /// `https://host:port` of the operator's internal metrics service.
    pub url: String,
    /// CA bundle the operator's serving certificate must chain to.
    pub ca_file: PathBuf,
    /// Client certificate presented to the operator.
    pub cert_file: PathBuf,
    /// Key of the client certificate.
    pub key_file: PathBuf,
    /// Bound on one value query.
    pub timeout: Duration,
    /// Period of the health check.
    pub check_interval: Duration,
    /// How long an answer the operator gave from its cache is reused (zero: never).
    pub value_cache_ttl: Duration,
    /// `HOST:PORT` to connect to instead of the URL's host (whose name the certificate must
    /// still carry).
    pub connect_to: Option<String>,
}

impl LinkConfig {
    /// Bound on one health check: four periods, between half a second and two seconds.
    pub fn check_timeout(&self) -> Duration {
        (self.check_interval * 4).clamp(Duration::from_millis(500), Duration::from_secs(2))
    }
}

/// What the last health check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// Not checked yet.
    Starting,
    /// The operator answered.
    Up,
    /// The operator did not answer; why.
    Down(Arc<str>),
}

type Key = (String, String, String);

/// The link to the operator. Share it behind an `Arc`.
#[derive(Debug)]
pub struct OperatorLink {
    url: String,
    check_interval: Duration,
    values: InternalClient,
    health: InternalClient,
    state: watch::Sender<LinkState>,
    readiness: Readiness,
    up: Gauge,
    metrics: Metrics,
    flights: Flights<Key, Result<MetricValue, ValueError>>,
    recent: TtlCache<Key, MetricValue>,
    router: Option<Arc<ShardRouter>>,
}

impl OperatorLink {
    /// Loads the certificates (failing fast on bad files). Not ready until the first check
    /// passes.
    pub fn new(cfg: &LinkConfig, readiness: Readiness, metrics: Metrics) -> Result<Self, ClientError> {
        let client = |timeout| {
            let client =
                InternalClient::from_files(&cfg.url, &cfg.ca_file, &cfg.cert_file, &cfg.key_file, timeout)?;
            match &cfg.connect_to {
                Some(addr) => client.connect_to(addr),
                None => Ok(client),
            }
        };
        let values = client(cfg.timeout)?.with_retries(VALUE_ATTEMPTS, RETRY_BACKOFF);
        let health = client(cfg.check_timeout())?;
        readiness.set_not_ready(format!(
            "waiting for the first answer of the operator's internal metrics service at {}",
            cfg.url
        ));
        let up = metrics.link_up.clone();
        up.set(0);
        Ok(Self {
            url: values.base_url().to_owned(),
            check_interval: cfg.check_interval,
            values,
            health,
            state: watch::Sender::new(LinkState::Starting),
            readiness,
            up,
            metrics,
            flights: Flights::default(),
            recent: TtlCache::new(cfg.value_cache_ttl, VALUE_CACHE_SIZE),
            router: None,
        })
    }

    /// This link, asking the holder of each object's shard (a sharded operator).
    pub fn with_router(mut self, router: Arc<ShardRouter>) -> Self {
        self.router = Some(router);
        self
    }

    /// The shard router, with a sharded operator.
    pub fn router(&self) -> Option<Arc<ShardRouter>> {
        self.router.clone()
    }

    /// The operator's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The current state.
    pub fn state(&self) -> LinkState {
        self.state.borrow().clone()
    }

    /// Checks the link every `check_interval` until `shutdown` completes.
    pub async fn watch_health(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        let mut tick = tokio::time::interval(self.check_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = tick.tick() => {}
            }
            let checked = tokio::select! {
                () = &mut shutdown => return,
                checked = self.check() => checked,
            };
            match checked {
                Ok(_) => self.set_state(LinkState::Up),
                Err(err) => self.set_state(LinkState::Down(Arc::from(reason(&err)))),
            }
        }
    }

    async fn check(&self) -> Result<(), ValueError> {
        match &self.router {
            Some(router) => router.check().await,
            None => self.health.check().await.map(|_| ()),
        }
    }

    fn set_state(&self, new: LinkState) {
        let old = self.state.send_replace(new.clone());
        match (&old, &new) {
            (LinkState::Up, LinkState::Up) | (LinkState::Down(_), LinkState::Down(_)) => {}
            (_, LinkState::Up) => {
                tracing::info!(operator = %self.url, "link to the operator's internal metrics service is up");
            }
            (_, LinkState::Down(why)) => {
                tracing::warn!(operator = %self.url, "link to the operator's internal metrics service is down: {why}");
            }
            (_, LinkState::Starting) => {}
        }
        match &new {
            LinkState::Up => {
                self.up.set(1);
                self.readiness.set_ready();
            }
            LinkState::Down(why) => {
                self.up.set(0);
                self.readiness.set_not_ready(format!(
                    "the operator's internal metrics service at {} is unreachable: {why}",
                    self.url
                ));
            }
            LinkState::Starting => {}
        }
    }

    /// The value of `metric` of ScaledObject `namespace/scaled_object`, or the Status to
    /// answer instead.
    pub async fn value(
        self: &Arc<Self>,
        namespace: &str,
        scaled_object: &str,
        metric: &str,
    ) -> Result<MetricValue, ApiStatus> {
        let mut state = self.state.subscribe();
        if let Some(why) = down_reason(&state.borrow_and_update()) {
            return Err(values::link_down(&self.url, &why));
        }
        let key = (namespace.to_owned(), scaled_object.to_owned(), metric.to_owned());
        if let Some(value) = self.recent.get(&key, Instant::now()) {
            return Ok(value);
        }
        let pending = self.query(key);
        let result = tokio::select! {
            result = pending => result,
            down = state.wait_for(|s| *s != LinkState::Up) => {
                let why = match down {
                    Ok(s) => down_reason(&s).unwrap_or_else(|| Arc::from("link lost")),
                    Err(_) => Arc::from("the server is stopping"),
                };
                return Err(values::link_down(&self.url, &why));
            }
        };
        match result {
            Ok(value) => Ok(value),
            Err(ValueError::Unreachable(why)) => {
                let why: Arc<str> = Arc::from(why);
                self.set_state(LinkState::Down(why.clone()));
                Err(values::link_down(&self.url, &why))
            }
            Err(err) => Err(values::value_error(&err, namespace, metric, scaled_object, &self.url)),
        }
    }

    /// The query in flight for `key`, or a new one (see [`Flights`]); a cache-origin answer is
    /// remembered before the query leaves the table.
    fn query(self: &Arc<Self>, key: Key) -> impl Future<Output = Result<MetricValue, ValueError>> + use<> {
        let link = Arc::clone(self);
        let task_key = key.clone();
        let flight = self.flights.join(key, move || async move {
            let (namespace, scaled_object, metric) = &task_key;
            let result = match &link.router {
                Some(router) => router.metric_value(namespace, scaled_object, metric).await,
                None => link.values.metric_value(namespace, scaled_object, metric).await,
            };
            link.metrics.operator_query(result.is_ok());
            if let Ok(value) = &result
                && value.source == ValueOrigin::Cache
            {
                link.recent.insert(task_key.clone(), value.clone(), Instant::now());
            }
            result
        });
        async move {
            flight
                .await
                .unwrap_or_else(|| Err(ValueError::Internal("the value query was cancelled".to_owned())))
        }
    }
}

fn down_reason(state: &LinkState) -> Option<Arc<str>> {
    match state {
        LinkState::Up => None,
        LinkState::Starting => Some(Arc::from("not checked yet")),
        LinkState::Down(why) => Some(why.clone()),
    }
}

/// A health-check failure in a few words (without the variant's own prefix).
fn reason(err: &ValueError) -> String {
    match err {
        ValueError::Unreachable(why) | ValueError::Timeout(why) => why.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_timeout_is_bounded() {
        let cfg = |ms| LinkConfig {
            url: "https://x:1".into(),
            ca_file: "ca".into(),
            cert_file: "c".into(),
            key_file: "k".into(),
            timeout: Duration::from_secs(5),
            check_interval: Duration::from_millis(ms),
            value_cache_ttl: Duration::from_secs(1),
            connect_to: None,
        };
        assert_eq!(cfg(250).check_timeout(), Duration::from_secs(1));
        assert_eq!(cfg(10).check_timeout(), Duration::from_millis(500));
        assert_eq!(cfg(5000).check_timeout(), Duration::from_secs(2));
    }

    #[test]
    fn down_reasons() {
        assert_eq!(down_reason(&LinkState::Up), None);
        assert_eq!(down_reason(&LinkState::Starting).as_deref(), Some("not checked yet"));
        assert_eq!(down_reason(&LinkState::Down(Arc::from("refused"))).as_deref(), Some("refused"));
        assert_eq!(reason(&ValueError::Unreachable("refused".into())), "refused");
        assert_eq!(reason(&ValueError::NotLeader), ebb_api::internal::NOT_LEADER_MESSAGE);
    }
}
