//! The simulation engine: replays ebb's scale loop (a poll every `pollingInterval`, the shared
//! activation decision) and the HPA controller (a sync every 15 s, the shared replica
//! calculator) over simulated time, in event order, and samples the state every `--step`.
//! Pods become ready at once; the HPA queries metrics live (or from the last poll when the
//! trigger sets `useCachedMetrics`). With `advanced.scalingModifiers` the formula's value
//! (`composite-metric`, sampled in each row) decides activity against `activationTarget` and is
//! the HPA's one metric.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, FixedOffset, Utc};
use ebb_api::MetricTargetType;
use ebb_scalers::decision::{Guards, LoopSpec, PollOutcome, decide};
use ebb_scalers::hpa::{HpaCalculator, MetricSample};
use ebb_scalers::validate::modifiers::{COMPOSITE_METRIC_NAME, Composite};
use ebb_scalers::{Scaler, TriggerSpec};
use serde::Serialize;

use super::series::Series;

/// The HPA controller's sync period.
pub const HPA_SYNC: i64 = 15;

/// Where a trigger's values come from during a simulation.
#[derive(Debug)]
pub enum Source {
    /// A scaler evaluated at simulated time (cron).
    Scaler(Arc<dyn Scaler>),
    /// Values from a `--series` file.
    Series(Series),
}

/// A trigger and its source.
#[derive(Debug)]
pub struct SimTrigger {
    pub spec: TriggerSpec,
    pub source: Source,
}

/// Everything one simulation needs.
#[derive(Debug)]
pub struct Input {
    pub triggers: Vec<SimTrigger>,
    pub loop_spec: LoopSpec,
    pub polling: Duration,
    pub hpa: HpaCalculator,
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub step: Duration,
    pub initial_replicas: i32,
    /// Offset used for times written into reasons.
    pub display_offset: FixedOffset,
    /// `paused-scale-in` / `paused-scale-out`.
    pub guards: Guards,
    /// `paused` / `paused-replicas`: no loop and no HPA.
    pub paused: Option<Paused>,
    /// `advanced.scalingModifiers`, compiled.
    pub composite: Option<Composite>,
}

/// The formula over the triggers' `values` (by trigger name); `None` when a named trigger has
/// no value or the formula fails or yields nil.
fn composite_value(c: &Composite, triggers: &[SimTrigger], values: &[Option<f64>]) -> Option<f64> {
    let vars: BTreeMap<String, Option<f64>> =
        triggers.iter().zip(values).filter_map(|(t, v)| Some((t.spec.name.clone()?, *v))).collect();
    if c.formula.variables().iter().any(|(n, _)| vars.get(n).copied().flatten().is_none()) {
        return None;
    }
    c.formula.eval(&vars).ok().flatten()
}

/// A paused object: the pinned count (if any) is written once; nothing else scales it.
#[derive(Debug, Clone)]
pub struct Paused {
    pub pinned: Option<i32>,
    pub reason: String,
}

/// One sampled row of the timeline.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Step {
    pub time: DateTime<Utc>,
    pub replicas: i32,
    pub active: bool,
    pub reason: String,
    /// Metric name → value at this instant (`null` when the source failed).
    pub metrics: BTreeMap<String, Option<f64>>,
}

async fn value_at(t: &SimTrigger, at: DateTime<Utc>) -> (Option<f64>, bool) {
    match &t.source {
        Source::Series(s) => match s.at(at) {
            Some(v) => {
                let v = ebb_api::quantity::sanitize(v);
                (Some(v), v > t.spec.activation_target())
            }
            None => (None, false),
        },
        Source::Scaler(s) => match s.measure(at).await {
            Ok(m) => (Some(m.value), m.active),
            Err(_) => (None, false),
        },
    }
}

/// Runs the simulation and returns one step per `--step` from `from` to `until` inclusive.
pub async fn run(mut input: Input) -> Vec<Step> {
    let hpa_sync = Duration::seconds(HPA_SYNC);
    let mut replicas = input.initial_replicas;
    let mut last_active: Option<DateTime<Utc>> = None;
    let mut active = false;
    let mut polled: Vec<Option<f64>> = vec![None; input.triggers.len()];
    let mut notes: Vec<String> = Vec::new();
    let mut poll_reason = String::from("not polled yet");
    let (mut next_poll, mut next_hpa, mut next_row) = (input.from, input.from, input.from);
    let mut steps = Vec::new();
    let offset = input.display_offset;
    let hms = |t: DateTime<Utc>| t.with_timezone(&offset).format("%H:%M:%S").to_string();
    loop {
        let t = next_poll.min(next_hpa).min(next_row);
        if t > input.until {
            break;
        }
        if let Some(p) = &input.paused
            && t == next_poll
        {
            for (i, trig) in input.triggers.iter().enumerate() {
                let (v, a) = value_at(trig, t).await;
                polled[i] = v;
                active |= a;
            }
            if let Some(n) = p.pinned.filter(|n| *n != replicas) {
                notes.push(format!("{} ebb {} → {n} ({})", hms(t), replicas, p.reason));
                replicas = n;
            }
            poll_reason = p.reason.clone();
            // Nothing else happens while paused: no more polls, no HPA.
            next_poll = input.until + Duration::seconds(1);
            next_hpa = next_poll;
        }
        if t == next_poll {
            let mut outcome = PollOutcome::default();
            for (i, trig) in input.triggers.iter().enumerate() {
                let (v, a) = value_at(trig, t).await;
                polled[i] = v;
                outcome.active |= a;
                outcome.any_error |= v.is_none();
            }
            if let Some(c) = &input.composite {
                outcome.active =
                    composite_value(c, &input.triggers, &polled).is_some_and(|v| v > c.activation_target);
            }
            active = outcome.active;
            let d = decide(&input.loop_spec, last_active, t, replicas, outcome, input.guards);
            last_active = d.last_active;
            if let Some(w) = d.write {
                let event = d.event.map(|e| format!(" ({e})")).unwrap_or_default();
                notes.push(format!("{} ebb {}{event}", hms(t), d.reason));
                replicas = w;
            }
            poll_reason = match d.hold_until {
                Some(u) => format!("{} until {}", d.reason, hms(u)),
                None => d.reason,
            };
            next_poll = t + input.polling;
        }
        if t == next_hpa {
            if replicas > 0 {
                let mut samples = Vec::with_capacity(input.triggers.len());
                for (i, trig) in input.triggers.iter().enumerate() {
                    let v = if trig.spec.use_cached_metrics { polled[i] } else { value_at(trig, t).await.0 };
                    let name = trig.spec.metric_name.clone();
                    samples.push(match trig.spec.metric_type {
                        MetricTargetType::Value => MetricSample::value(name, trig.spec.target(), v),
                        _ => MetricSample::average_value(name, trig.spec.target(), v),
                    });
                }
                if let Some(c) = &input.composite {
                    let values: Vec<Option<f64>> = samples.iter().map(|s| s.value).collect();
                    let v = composite_value(c, &input.triggers, &values);
                    let name = COMPOSITE_METRIC_NAME.to_owned();
                    samples = vec![match c.metric_type {
                        MetricTargetType::Value => MetricSample::value(name, c.target, v),
                        _ => MetricSample::average_value(name, c.target, v),
                    }];
                }
                let rec = input.hpa.sync(t, replicas, replicas, &samples);
                if rec.desired != replicas {
                    notes.push(format!("{} HPA {} → {} ({})", hms(t), replicas, rec.desired, rec.reason));
                    replicas = rec.desired;
                }
            }
            next_hpa = t + hpa_sync;
        }
        if t == next_row {
            let mut metrics = BTreeMap::new();
            let mut now_values = Vec::with_capacity(input.triggers.len());
            for trig in &input.triggers {
                let v = value_at(trig, t).await.0;
                now_values.push(v);
                metrics.insert(trig.spec.metric_name.clone(), v);
            }
            if let Some(c) = &input.composite {
                metrics.insert(
                    COMPOSITE_METRIC_NAME.to_owned(),
                    composite_value(c, &input.triggers, &now_values),
                );
            }
            let reason = if notes.is_empty() { poll_reason.clone() } else { notes.join("; ") };
            notes.clear();
            steps.push(Step { time: t, replicas, active, reason, metrics });
            next_row = t + input.step;
        }
    }
    steps
}
