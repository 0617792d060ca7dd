//! The per-ScaledObject series — `keda_scaler_metrics_value`, `keda_scaler_metrics_latency_seconds`,
//! `keda_scaler_active`, `keda_scaler_detail_errors`, `keda_scaled_object_errors`,
//! `keda_scaled_object_paused` and `keda_internal_scale_loop_latency_seconds` — kept as one
//! compact record per object and written out at scrape time (a [`Collector`]).
//!
//! Seven metric families with one series each per object cost a hash-table slot per family, a
//! label set per slot and a heap cell per value: about 2 KB per ScaledObject, the largest share of
//! the operator's memory after the objects themselves. Here an object costs one record: its two
//! label strings (the namespace's shared by every object in it) and, per trigger, its type,
//! metric name and last values. A scrape copies the records under the lock and encodes the copy
//! outside it, so a scale-loop tick never waits for the encoder.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use super::{LoopLabels, ObjectLabels, SCALED_OBJECT_TYPE, ScalerLabels, namespace_label};

/// The series of every ScaledObject, by namespace label, then name.
#[derive(Debug, Default)]
pub(super) struct Objects {
    by_namespace: Mutex<ByNamespace>,
}

/// Records by namespace label, then ScaledObject name (looked up by `&str`).
type ByNamespace = HashMap<Arc<str>, HashMap<Arc<str>, Record>>;

/// One ScaledObject's series.
#[derive(Debug, Clone, Default)]
struct Record {
    /// By trigger index, ascending.
    triggers: Vec<Trigger>,
    /// `keda_scaled_object_errors`, once a poll or an error was recorded.
    errors: Option<u64>,
    /// `keda_scaled_object_paused`, once set.
    paused: Option<bool>,
    /// `keda_internal_scale_loop_latency_seconds`, once recorded.
    lateness: Option<f64>,
}

/// One trigger's series.
#[derive(Debug, Clone)]
struct Trigger {
    index: usize,
    scaler: Arc<str>,
    metric: Arc<str>,
    /// `None` after a failed poll: no stale value is exported.
    value: Option<f64>,
    latency: f64,
    active: bool,
    errors: u64,
}

impl Objects {
    /// Records one poll (see [`super::Metrics::record_poll`]).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn poll(
        &self,
        ns: &str,
        so: &str,
        index: usize,
        scaler: &str,
        metric: &str,
        value: Option<f64>,
        active: bool,
        latency: f64,
    ) {
        self.with(ns, so, |r| {
            let at = match r.triggers.binary_search_by_key(&index, |t| t.index) {
                // The trigger at this index changed (type or metric name): its series start over.
                Ok(i) if &*r.triggers[i].scaler != scaler || &*r.triggers[i].metric != metric => {
                    r.triggers[i] = Trigger::new(index, scaler, metric);
                    i
                }
                Ok(i) => i,
                Err(i) => {
                    r.triggers.insert(i, Trigger::new(index, scaler, metric));
                    i
                }
            };
            let t = &mut r.triggers[at];
            t.latency = latency;
            t.active = active;
            t.value = value;
            let failed = u64::from(value.is_none());
            t.errors += failed;
            r.errors = Some(r.errors.unwrap_or(0) + failed);
        });
    }

    /// Sets the loop's lateness in seconds.
    pub(super) fn lateness(&self, ns: &str, so: &str, seconds: f64) {
        self.with(ns, so, |r| r.lateness = Some(seconds));
    }

    /// Sets whether the object is paused.
    pub(super) fn paused(&self, ns: &str, so: &str, paused: bool) {
        self.with(ns, so, |r| r.paused = Some(paused));
    }

    /// Counts an error of the object outside a trigger poll.
    pub(super) fn error(&self, ns: &str, so: &str) {
        self.with(ns, so, |r| r.errors = Some(r.errors.unwrap_or(0) + 1));
    }

    /// Drops the series of triggers at index `count` and above, if the object has a record.
    pub(super) fn retain_triggers(&self, ns: &str, so: &str, count: usize) {
        let mut all = self.lock();
        if let Some(r) = all.get_mut(namespace_label(ns)).and_then(|o| o.get_mut(so)) {
            r.triggers.retain(|t| t.index < count);
        }
    }

    /// Drops every series of the object.
    pub(super) fn forget(&self, ns: &str, so: &str) {
        let mut all = self.lock();
        let ns = namespace_label(ns);
        if let Some(objects) = all.get_mut(ns) {
            objects.remove(so);
            if objects.is_empty() {
                all.remove(ns);
            }
        }
    }

    /// Changes the object's record, created empty on first use (the only time this allocates).
    fn with(&self, ns: &str, so: &str, change: impl FnOnce(&mut Record)) {
        let mut all = self.lock();
        let ns = namespace_label(ns);
        if !all.contains_key(ns) {
            all.insert(ns.into(), HashMap::new());
        }
        let Some(objects) = all.get_mut(ns) else { return };
        match objects.get_mut(so) {
            Some(r) => change(r),
            None => {
                let mut r = Record::default();
                change(&mut r);
                objects.insert(so.into(), r);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, ByNamespace> {
        self.by_namespace.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A copy of every record with its namespace and name labels, taken under the lock.
    fn snapshot(&self) -> Vec<(Arc<str>, Arc<str>, Record)> {
        let all = self.lock();
        all.iter()
            .flat_map(|(ns, objects)| objects.iter().map(move |(so, r)| (ns.clone(), so.clone(), r.clone())))
            .collect()
    }
}

impl Trigger {
    fn new(index: usize, scaler: &str, metric: &str) -> Self {
        Self {
            index,
            scaler: scaler.into(),
            metric: metric.into(),
            value: None,
            latency: 0.0,
            active: false,
            errors: 0,
        }
    }
}

/// What one series of a family carries.
enum Sample {
    Float(f64),
    Int(i64),
    Count(u64),
}

impl Sample {
    fn encode(&self, m: &mut MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        match self {
            Self::Float(v) => m.encode_gauge(v),
            Self::Int(v) => m.encode_gauge(v),
            Self::Count(v) => m.encode_counter::<NoLabelSet, _, f64>(v, None),
        }
    }
}

/// Writes one family (nothing when it has no series, as an empty family is left out).
fn family<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    metric_type: MetricType,
    series: Vec<(L, Sample)>,
) -> Result<(), std::fmt::Error> {
    if series.is_empty() {
        return Ok(());
    }
    let mut m = encoder.encode_descriptor(name, help, None, metric_type)?;
    for (labels, sample) in &series {
        sample.encode(&mut m.encode_family(labels)?)?;
    }
    Ok(())
}

impl Collector for Objects {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let records = self.snapshot();
        let type_: Arc<str> = SCALED_OBJECT_TYPE.into();
        let scaler_series = |sample: &dyn Fn(&Trigger) -> Option<Sample>| -> Vec<(ScalerLabels, Sample)> {
            records
                .iter()
                .flat_map(|(ns, so, r)| r.triggers.iter().map(move |t| (ns, so, t)))
                .filter_map(|(ns, so, t)| {
                    let labels = ScalerLabels {
                        namespace: ns.clone(),
                        metric: t.metric.clone(),
                        scaledObject: so.clone(),
                        scaler: t.scaler.clone(),
                        triggerIndex: t.index.to_string().into(),
                        r#type: type_.clone(),
                    };
                    Some((labels, sample(t)?))
                })
                .collect()
        };
        let object_series = |sample: &dyn Fn(&Record) -> Option<Sample>| -> Vec<(ObjectLabels, Sample)> {
            records
                .iter()
                .filter_map(|(ns, so, r)| {
                    Some((ObjectLabels { namespace: ns.clone(), scaledObject: so.clone() }, sample(r)?))
                })
                .collect()
        };
        family(
            &mut encoder,
            "keda_scaler_metrics_value",
            "The current value of each trigger's metric, as the HPA uses it to compute the target average",
            MetricType::Gauge,
            scaler_series(&|t| t.value.map(Sample::Float)),
        )?;
        family(
            &mut encoder,
            "keda_scaler_metrics_latency_seconds",
            "The latency of the last poll of each trigger's metric, in seconds",
            MetricType::Gauge,
            scaler_series(&|t| Some(Sample::Float(t.latency))),
        )?;
        family(
            &mut encoder,
            "keda_scaler_active",
            "Whether a trigger is active (1) or not (0)",
            MetricType::Gauge,
            scaler_series(&|t| Some(Sample::Int(i64::from(t.active)))),
        )?;
        // Counters: the encoder appends `_total` to the sample name.
        family(
            &mut encoder,
            "keda_scaler_detail_errors",
            "The number of errors polling each trigger",
            MetricType::Counter,
            scaler_series(&|t| Some(Sample::Count(t.errors))),
        )?;
        family(
            &mut encoder,
            "keda_scaled_object_errors",
            "The number of errors for each ScaledObject",
            MetricType::Counter,
            object_series(&|r| r.errors.map(Sample::Count)),
        )?;
        family(
            &mut encoder,
            "keda_scaled_object_paused",
            "Whether a ScaledObject is paused (1) or not (0)",
            MetricType::Gauge,
            object_series(&|r| r.paused.map(|p| Sample::Int(i64::from(p)))),
        )?;
        let lateness = records
            .iter()
            .filter_map(|(ns, so, r)| {
                let labels =
                    LoopLabels { namespace: ns.clone(), r#type: type_.clone(), resource: so.clone() };
                Some((labels, Sample::Float(r.lateness?)))
            })
            .collect();
        family(
            &mut encoder,
            "keda_internal_scale_loop_latency_seconds",
            "How late the scale loop ran compared with its schedule, in seconds",
            MetricType::Gauge,
            lateness,
        )
    }
}
