//! One tick of the scale loop as a pure step: what the triggers measured, the target's current
//! replicas, the object and its status model before the tick, and the time → [`TickEffects`],
//! everything the tick then does as a plain value (the new status model and whether to write it,
//! the `/scale` write with its event, the fallback event, the trigger errors to count). No I/O:
//! measuring is in [`super::measure`], performing the effects in [`super::apply`].
//!
//! Rules (KEDA's, see the decision in `ebb_scalers::decision`): each metric's failures are
//! counted once per tick in `status.health`; the object is active when a trigger is (or
//! `autoscaling.keda.sh/force-activation` is set, or every trigger is cpu/memory, which the HPA
//! measures); `lastActiveTime` moves only on active ticks;
//! `Ready`, `Active`, `Fallback` and `triggersActivity` follow the tick. A tick that could not read the current
//! replicas still counts failures but decides, writes and records nothing else. The status is
//! written when it changed (ignoring condition timestamps) or an earlier change is unwritten.

use chrono::{DateTime, Utc};
use ebb_api::constants::ANNOTATION_FORCE_ACTIVATION;
use ebb_api::{ScaledObject, ScaledObjectStatus};
use ebb_scalers::decision::{LoopSpec, PollOutcome, decide};
use kube::runtime::events::EventType;

use crate::status;
use crate::time;

/// What one trigger's query gave.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    /// The trigger's metric name.
    pub metric: String,
    /// Whether the trigger is active, or why it could not be measured.
    pub result: Result<bool, TriggerFailure>,
}

/// A failed trigger query.
#[derive(Clone, Debug, PartialEq)]
pub struct TriggerFailure {
    /// The scaler's error (no credentials, no answer bodies).
    pub message: String,
    /// Its bounded reason (`Timeout`, `Unreachable` …).
    pub reason: &'static str,
}

/// Everything a tick decides from.
#[derive(Clone, Copy, Debug)]
pub struct TickInput<'a> {
    /// The object the loop runs for (spec, annotations, creation time).
    pub so: &'a ScaledObject,
    pub measured: &'a [Measured],
    /// The target's current replicas; `None` when they could not be read.
    pub current: Option<i32>,
    /// The status model before the tick.
    pub previous: &'a ScaledObjectStatus,
    /// Whether an earlier change of the model was not written (a failed write).
    pub unwritten: bool,
    pub now: DateTime<Utc>,
    /// With `advanced.scalingModifiers`: whether the composite value is above
    /// `activationTarget`, which then decides the object's activity instead of the triggers'.
    pub composite_active: Option<bool>,
}

/// A `/scale` write the tick asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScaleWrite {
    pub from: i32,
    pub to: i32,
    /// Why, in one line (for the event's note).
    pub reason: String,
    /// The event reason recorded once the write succeeded, if any.
    pub event: Option<&'static str>,
}

/// An event to record on the ScaledObject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TickEvent {
    pub type_: EventType,
    pub reason: &'static str,
    pub note: String,
}

/// What a tick does, as a value.
#[derive(Clone, Debug, PartialEq)]
pub struct TickEffects {
    /// The status model after the tick (stored whether or not it is written).
    pub status: ScaledObjectStatus,
    /// Whether the model differs from before (condition timestamps aside): a change to count.
    pub status_changed: bool,
    /// Whether to write the model (changed now or earlier and unwritten, replicas known).
    pub write_status: bool,
    /// Whether the object is active this tick.
    pub active: bool,
    /// The target's replicas this tick decided from, when known.
    pub current: Option<i32>,
    /// The decision's one-line explanation, when the replicas were known.
    pub decision: Option<String>,
    pub scale: Option<ScaleWrite>,
    /// `ScaledObjectFallbackActivated` / `…Deactivated` when fallback changed this tick.
    pub fallback_event: Option<TickEvent>,
    /// Failed triggers (metric, error) to count and log; only when the replicas were known.
    pub failed: Vec<(String, String)>,
}

impl TickEffects {
    /// The replicas the tick leaves the target at (the write's, else the current ones).
    pub fn desired(&self) -> Option<i32> {
        self.scale.as_ref().map(|w| w.to).or(self.current)
    }
}

/// The pure step of a tick.
pub fn plan(input: &TickInput<'_>) -> TickEffects {
    let TickInput { so, measured, current, previous, unwritten, now, composite_active } = *input;
    let mut status = previous.clone();
    for m in measured {
        crate::fallback::record(&mut status.health, &m.metric, m.result.is_ok());
    }
    set_triggers_activity(&mut status.triggers_activity, measured);
    let outcome = PollOutcome {
        // An object with only cpu/memory triggers is always active, as in KEDA: the HPA scales
        // it between its bounds and nothing here measures it.
        active: composite_active.unwrap_or_else(|| measured.iter().any(|m| m.result == Ok(true)))
            || forced(so)
            || ebb_scalers::resource::only_resource_triggers(so),
        any_error: measured.iter().any(|m| m.result.is_err()),
        fallback_active: measured
            .iter()
            .any(|m| crate::fallback::active(&so.spec, &status.health, &m.metric)),
    };
    let decision = current.map(|current| {
        let created = so.metadata.creation_timestamp.as_ref().map(time::from_k8s).unwrap_or(now);
        let loop_spec = LoopSpec::from_spec(&so.spec, created);
        let last_active = status.last_active_time.as_ref().map(time::from_k8s);
        let d = decide(&loop_spec, last_active, now, current, outcome, crate::hpa::loop_guards(so));
        // lastActiveTime moves only on active ticks (and at most once per tick).
        if d.last_active != last_active {
            status.last_active_time = d.last_active.map(time::to_k8s);
        }
        let t = time::to_k8s(now);
        // Only a failed trigger's outcome says anything (all measured → `Ready`), so without a
        // failure no list is built.
        let triggers: Vec<(String, Result<(), String>)> = if outcome.any_error {
            measured
                .iter()
                .map(|m| {
                    let r =
                        m.result.as_ref().map(|_| ()).map_err(|f| format!("{} ({})", f.message, f.reason));
                    (m.metric.clone(), r)
                })
                .collect()
        } else {
            Vec::new()
        };
        status::ready_from_triggers(&mut status.conditions, &triggers, so.spec.fallback.is_some(), t.clone());
        status::set_active(&mut status.conditions, outcome.active, t.clone());
        status::set_fallback(&mut status.conditions, outcome.fallback_active, t);
        (current, d)
    });
    let status_changed = !same_status(previous, &status);
    let mut effects = TickEffects {
        write_status: (status_changed || unwritten) && decision.is_some(),
        status,
        status_changed,
        active: outcome.active,
        current,
        decision: None,
        scale: None,
        fallback_event: None,
        failed: Vec::new(),
    };
    let Some((current, d)) = decision else { return effects };
    effects.scale =
        d.write.map(|to| ScaleWrite { from: current, to, reason: d.reason.clone(), event: d.event });
    effects.decision = Some(d.reason);
    let was_fallback = status::is_true(&previous.conditions, status::FALLBACK);
    if outcome.fallback_active != was_fallback {
        effects.fallback_event = Some(if outcome.fallback_active {
            TickEvent {
                type_: EventType::Warning,
                reason: "ScaledObjectFallbackActivated",
                note: "Fallback activated".into(),
            }
        } else {
            TickEvent {
                type_: EventType::Normal,
                reason: "ScaledObjectFallbackDeactivated",
                note: "Fallback deactivated".into(),
            }
        });
    }
    effects.failed = measured
        .iter()
        .filter_map(|m| m.result.as_ref().err().map(|f| (m.metric.clone(), f.message.clone())))
        .collect();
    effects
}

/// Sets `status.triggersActivity` to [`triggers_activity`], in place (no allocation) when it
/// already has exactly the measured metric names.
fn set_triggers_activity(
    current: &mut ebb_api::SortedMap<String, ebb_api::TriggerActivityStatus>,
    measured: &[Measured],
) {
    let same_names =
        current.len() == measured.len() && measured.iter().all(|m| current.contains_key(&m.metric));
    if !same_names {
        *current = triggers_activity(measured);
        return;
    }
    for m in measured {
        if let Some(a) = current.get_mut(&m.metric) {
            a.is_active = m.result == Ok(true);
        }
    }
}

/// `status.triggersActivity`: each measured trigger's metric name → whether it is active (one
/// that could not be measured is not), rebuilt every tick so names no longer polled drop out.
fn triggers_activity(measured: &[Measured]) -> ebb_api::SortedMap<String, ebb_api::TriggerActivityStatus> {
    measured
        .iter()
        .map(|m| (m.metric.clone(), ebb_api::TriggerActivityStatus { is_active: m.result == Ok(true) }))
        .collect()
}

/// `autoscaling.keda.sh/force-activation: "true"` (any case).
fn forced(so: &ScaledObject) -> bool {
    so.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_FORCE_ACTIVATION))
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// Equal ignoring condition timestamps (a tick that changes nothing writes nothing). Compares
/// in place, without copies: it runs on every tick of every object.
pub fn same_status(a: &ScaledObjectStatus, b: &ScaledObjectStatus) -> bool {
    // Destructured without `..`: a new status field must be added here to compile.
    let ScaledObjectStatus {
        scale_target_kind,
        scale_target_gvkr,
        original_replica_count,
        last_active_time,
        external_metric_names,
        resource_metric_names,
        composite_scaler_name,
        conditions,
        health,
        paused_replica_count,
        hpa_name,
        triggers_types,
        authentications_types,
        triggers_activity,
    } = a;
    let same_condition = |x: &ebb_api::Condition, y: &ebb_api::Condition| {
        let ebb_api::Condition { type_, status, reason, message, last_transition_time: _ } = x;
        *type_ == y.type_ && *status == y.status && *reason == y.reason && *message == y.message
    };
    *scale_target_kind == b.scale_target_kind
        && *scale_target_gvkr == b.scale_target_gvkr
        && *original_replica_count == b.original_replica_count
        && *last_active_time == b.last_active_time
        && *external_metric_names == b.external_metric_names
        && *resource_metric_names == b.resource_metric_names
        && *composite_scaler_name == b.composite_scaler_name
        && conditions.len() == b.conditions.len()
        && conditions.iter().zip(&b.conditions).all(|(x, y)| same_condition(x, y))
        && *health == b.health
        && *paused_replica_count == b.paused_replica_count
        && *hpa_name == b.hpa_name
        && *triggers_types == b.triggers_types
        && *authentications_types == b.authentications_types
        && *triggers_activity == b.triggers_activity
}

#[cfg(test)]
mod activity_tests;
#[cfg(test)]
mod tests;
