//! The operator's Prometheus metrics, under the names and label sets KEDA's operator exports so
//! that KEDA's Grafana dashboard and alert rules work unchanged: per-trigger value, poll latency,
//! activity and error count; per-ScaledObject error count and paused flag; scale-loop lateness (per object, and ebb's histogram over all objects);
//! and the registration gauges (ScaledObjects per namespace, triggers per type); and ebb's
//! counters of failed scale-loop writes (`ebb_status_write_failures_total`,
//! `ebb_scale_write_failures_total`, labelled only by a bounded reason).
//!
//! Label values are only names, indexes and types taken from the ScaledObject — never trigger
//! metadata, so no secret can reach a label. [`Metrics::forget`] drops every series of a deleted
//! ScaledObject so nothing stale is exported.
//!
//! The scale loop records a poll and its lateness on every tick of every object; the
//! per-object series are one compact record per object, encoded at scrape time
//! ([`objects`]), so recording allocates nothing once the object's record exists.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Value of the `type` label on per-trigger and scale-loop series (KEDA also has `scaledjob`).
const SCALED_OBJECT_TYPE: &str = "scaledobject";
/// Value of the `type` label on `keda_resource_registered_total` for ScaledObjects.
const SCALED_OBJECT_RESOURCE: &str = "scaled_object";
/// Namespace label used when an object's namespace is empty.
const DEFAULT_NAMESPACE: &str = "default";

/// Labels of the per-trigger series: `namespace, metric, scaledObject, scaler, triggerIndex,
/// type`. `scaler` carries the trigger type, `type` the kind of scaled resource. Label values
/// are `Arc<str>` here and below: they are built at scrape time from the strings the object's
/// record already holds.
#[allow(non_snake_case)]
#[derive(Debug, EncodeLabelSet)]
struct ScalerLabels {
    namespace: Arc<str>,
    metric: Arc<str>,
    scaledObject: Arc<str>,
    scaler: Arc<str>,
    triggerIndex: Arc<str>,
    r#type: Arc<str>,
}

/// Labels of the per-ScaledObject series.
#[allow(non_snake_case)]
#[derive(Debug, EncodeLabelSet)]
struct ObjectLabels {
    namespace: Arc<str>,
    scaledObject: Arc<str>,
}

/// Labels of `keda_internal_scale_loop_latency_seconds`.
#[derive(Debug, EncodeLabelSet)]
struct LoopLabels {
    namespace: Arc<str>,
    r#type: Arc<str>,
    resource: Arc<str>,
}

/// Labels of `keda_resource_registered_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabels {
    r#type: String,
    namespace: String,
}

/// Labels of `keda_trigger_registered_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TriggerLabels {
    r#type: String,
}

/// Labels of the write-failure counters: a bounded reason (see [`WRITE_FAILURE_REASONS`]).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// Every `reason` the write-failure counters use.
pub const WRITE_FAILURE_REASONS: [&str; 8] =
    ["timeout", "not_leader", "conflict", "throttled", "server_error", "rejected", "transport", "invalid"];

/// Registration counts that the metric families cannot answer themselves.
#[derive(Debug, Default)]
struct State {
    /// ScaledObjects registered per namespace.
    registered: HashMap<String, i64>,
    /// Triggers registered per trigger type.
    trigger_types: HashMap<String, i64>,
}

#[derive(Debug)]
struct Inner {
    /// The per-ScaledObject series.
    objects: Arc<objects::Objects>,
    lateness: Histogram,
    resources: Family<ResourceLabels, Gauge>,
    trigger_types: Family<TriggerLabels, Gauge>,
    status_write_failures: Family<ReasonLabels, Counter>,
    scale_write_failures: Family<ReasonLabels, Counter>,
    state: Mutex<State>,
}

/// Lower bound of the first bucket of `ebb_scale_loop_lateness_seconds`.
pub const LATENESS_FIRST_BUCKET: f64 = 0.0001;
/// Ratio between consecutive bucket bounds.
pub const LATENESS_FACTOR: f64 = 1.25;
/// Number of buckets (the last finite bound is about 8.7 s).
pub const LATENESS_BUCKETS: u16 = 52;

/// Handle on the operator's metrics; cheap to clone, all clones share the same series.
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl Metrics {
    /// Creates the metric families and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let inner = Inner {
            objects: Arc::default(),
            // 100 µs to about 9 s in steps of 25 %, so percentiles read from it are close.
            lateness: Histogram::new(exponential_buckets(
                LATENESS_FIRST_BUCKET,
                LATENESS_FACTOR,
                LATENESS_BUCKETS,
            )),
            resources: Family::default(),
            trigger_types: Family::default(),
            status_write_failures: Family::default(),
            scale_write_failures: Family::default(),
            state: Mutex::new(State::default()),
        };
        // KEDA's per-ScaledObject families, encoded from one record per object at scrape time.
        registry.register_collector(Box::new(inner.objects.clone()));
        registry.register(
            "ebb_scale_loop_lateness_seconds",
            "How late each scale-loop tick started compared with its schedule, over all ScaledObjects",
            inner.lateness.clone(),
        );
        registry.register(
            "keda_resource_registered_total",
            "The number of custom resources per namespace and resource type handled by the operator",
            inner.resources.clone(),
        );
        registry.register(
            "keda_trigger_registered_total",
            "The number of triggers per trigger type handled by the operator",
            inner.trigger_types.clone(),
        );
        registry.register(
            "ebb_status_write_failures",
            "ScaledObject status writes of the scale loop that failed or timed out, by reason",
            inner.status_write_failures.clone(),
        );
        registry.register(
            "ebb_scale_write_failures",
            "Replica count reads and writes through /scale by the scale loop that failed, timed out or were refused (not leading), by reason",
            inner.scale_write_failures.clone(),
        );
        Self { inner: Arc::new(inner) }
    }

    /// Counts a failed status write; `reason` is one of [`WRITE_FAILURE_REASONS`].
    pub fn status_write_failed(&self, reason: &'static str) {
        self.inner.status_write_failures.get_or_create(&ReasonLabels { reason: bounded(reason) }).inc();
    }

    /// Counts a failed `/scale` read or write; `reason` is one of [`WRITE_FAILURE_REASONS`].
    pub fn scale_write_failed(&self, reason: &'static str) {
        self.inner.scale_write_failures.get_or_create(&ReasonLabels { reason: bounded(reason) }).inc();
    }

    /// Records one poll of trigger `trigger_index` of ScaledObject `ns/so`. `value: None` means
    /// the poll failed: the trigger's and the object's error counters go up and the value
    /// series is dropped (no stale value); otherwise the value is set and both error counters
    /// are created at 0 so `rate()` works from the start.
    #[allow(clippy::too_many_arguments)]
    pub fn record_poll(
        &self,
        ns: &str,
        so: &str,
        trigger_index: usize,
        trigger_type: &str,
        metric: &str,
        value: Option<f64>,
        active: bool,
        latency: Duration,
    ) {
        self.inner.objects.poll(
            ns,
            so,
            trigger_index,
            trigger_type,
            metric,
            value,
            active,
            latency.as_secs_f64(),
        );
    }

    /// Records how late the scale loop of `ns/so` ran compared with its schedule.
    pub fn record_loop_lateness(&self, ns: &str, so: &str, late: Duration) {
        self.inner.objects.lateness(ns, so, late.as_secs_f64());
        self.inner.lateness.observe(late.as_secs_f64());
    }

    /// Sets whether `ns/so` is paused.
    pub fn set_paused(&self, ns: &str, so: &str, paused: bool) {
        self.inner.objects.paused(ns, so, paused);
    }

    /// Counts an error handling `ns/so` outside a trigger poll (reconcile, scale update, …).
    pub fn object_error(&self, ns: &str, so: &str) {
        self.inner.objects.error(ns, so);
    }

    /// Registration gauges: a ScaledObject with these trigger types was added in `ns`.
    pub fn object_added(&self, ns: &str, trigger_types: &[&str]) {
        self.update_registration(ns, trigger_types, 1);
    }

    /// Registration gauges: a ScaledObject with these trigger types was removed from `ns`.
    pub fn object_removed(&self, ns: &str, trigger_types: &[&str]) {
        self.update_registration(ns, trigger_types, -1);
    }

    /// Drops the per-trigger series of `ns/so` whose trigger index is `count` or more (the
    /// object now has `count` triggers).
    pub fn retain_triggers(&self, ns: &str, so: &str, count: usize) {
        self.inner.objects.retain_triggers(ns, so, count);
    }

    /// Drops every series of a deleted ScaledObject (registration gauges are left to
    /// [`Metrics::object_removed`]).
    pub fn forget(&self, ns: &str, so: &str) {
        self.inner.objects.forget(ns, so);
    }

    fn update_registration(&self, ns: &str, trigger_types: &[&str], delta: i64) {
        let mut state = self.state();
        let ns = namespace_label(ns).to_string();
        let resource = ResourceLabels { r#type: SCALED_OBJECT_RESOURCE.to_string(), namespace: ns.clone() };
        set_count(&mut state.registered, ns, delta, &self.inner.resources, &resource);
        for ty in trigger_types.iter().filter(|t| !t.is_empty()) {
            let labels = TriggerLabels { r#type: (*ty).to_string() };
            set_count(&mut state.trigger_types, (*ty).to_string(), delta, &self.inner.trigger_types, &labels);
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Applies `delta` to the count under `key` (never below 0) and mirrors it into the gauge; a
/// count of 0 removes the series.
fn set_count<L>(
    counts: &mut HashMap<String, i64>,
    key: String,
    delta: i64,
    family: &Family<L, Gauge>,
    labels: &L,
) where
    L: Clone + std::hash::Hash + Eq + EncodeLabelSet + std::fmt::Debug,
{
    let count = counts.entry(key.clone()).or_default();
    *count = (*count + delta).max(0);
    if *count == 0 {
        counts.remove(&key);
        family.remove(labels);
    } else {
        family.get_or_create(labels).set(*count);
    }
}

/// A reason outside the known set is counted as `invalid`, so the label set stays bounded.
fn bounded(reason: &'static str) -> &'static str {
    if WRITE_FAILURE_REASONS.contains(&reason) { reason } else { "invalid" }
}

fn namespace_label(ns: &str) -> &str {
    if ns.is_empty() { DEFAULT_NAMESPACE } else { ns }
}

mod objects;
#[cfg(test)]
mod tests;
