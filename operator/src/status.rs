//! ScaledObject status (pure): the `Ready`, `Active`, `Fallback` and `Paused` conditions with
//! KEDA's reasons and messages, the `triggersTypes` / `authenticationsTypes` summaries and the
//! server-side apply body for the status subresource (field manager `ebb-operator/status`).

use ebb_api::constants::API_VERSION;
use ebb_api::{Condition, ScaledObject, ScaledObjectStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

pub const READY: &str = "Ready";
pub const ACTIVE: &str = "Active";
pub const FALLBACK: &str = "Fallback";
pub const PAUSED: &str = "Paused";

pub const TRUE: &str = "True";
pub const FALSE: &str = "False";
pub const UNKNOWN: &str = "Unknown";

/// Condition reasons (KEDA's).
pub mod reason {
    pub const READY: &str = "ScaledObjectReady";
    pub const CHECK_FAILED: &str = "ScaledObjectCheckFailed";
    pub const TRIGGER_ERROR: &str = "TriggerError";
    pub const PARTIAL_TRIGGER_ERROR: &str = "PartialTriggerError";
    pub const UNKNOWN_STATE: &str = "UnknownState";
    pub const SCALER_ACTIVE: &str = "ScalerActive";
    pub const SCALER_NOT_ACTIVE: &str = "ScalerNotActive";
    pub const FALLBACK_EXISTS: &str = "FallbackExists";
    pub const NO_FALLBACK_FOUND: &str = "NoFallbackFound";
    pub const PAUSED: &str = "ScaledObjectPaused";
    pub const UNPAUSED: &str = "ScaledObjectUnpaused";
}

/// Condition messages (KEDA's, except `NOT_PAUSED`).
pub mod message {
    pub const READY: &str = "ScaledObject is defined correctly and is ready for scaling";
    pub const TRIGGER_ERROR: &str = "Triggers defined in ScaledObject are not working correctly";
    pub const PARTIAL_TRIGGER_ERROR: &str = "Some triggers defined in ScaledObject are not working correctly";
    pub const CHECK_FAILED_ACTIVE: &str = "ScaledObject check failed";
    pub const SCALER_ACTIVE: &str = "Scaling is performed because triggers are active";
    pub const SCALER_NOT_ACTIVE: &str = "Scaling is not performed because triggers are not active";
    pub const FALLBACK_EXISTS: &str = "At least one trigger is falling back on this scaled object";
    pub const NO_FALLBACK_FOUND: &str = "No fallbacks are active on this scaled object";
    pub const PAUSED: &str = "ScaledObject is paused";
    pub const UNPAUSED: &str = "pause annotation removed for ScaledObject";
    pub const NOT_PAUSED: &str = "ScaledObject is not paused";
}

/// Sets the condition of type `type_` (replacing it, or appending it when absent). The
/// `lastTransitionTime` is kept when the status does not change, and set to `now` otherwise (or
/// when the condition had none). An empty reason or message is left out.
pub fn set_condition(
    conds: &mut Vec<Condition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Time,
) {
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    // An unchanged field is left as it is (no new string: loops set conditions every tick).
    let set = |field: &mut Option<String>, value: &str| {
        if field.as_deref() != (!value.is_empty()).then_some(value) {
            *field = opt(value);
        }
    };
    match conds.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != status || c.last_transition_time.is_none() {
                c.last_transition_time = Some(now);
            }
            if c.status != status {
                c.status = status.to_owned();
            }
            set(&mut c.reason, reason);
            set(&mut c.message, message);
        }
        None => conds.push(Condition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            reason: opt(reason),
            message: opt(message),
            last_transition_time: Some(now),
        }),
    }
}

/// The conditions of a new object: `Ready`, `Active`, `Fallback`, `Paused`, all `Unknown`.
pub fn initial_conditions(now: Time) -> Vec<Condition> {
    [READY, ACTIVE, FALLBACK, PAUSED]
        .into_iter()
        .map(|t| Condition {
            type_: t.to_owned(),
            status: UNKNOWN.to_owned(),
            reason: None,
            message: None,
            last_transition_time: Some(now.clone()),
        })
        .collect()
}

/// Longest error text of one trigger in the `Ready` message, in characters.
pub const MAX_TRIGGER_ERROR_CHARS: usize = 500;

/// `Ready` from one poll's trigger outcomes (metric name, error text):
/// - every trigger ok (or none polled yet) → `True` `ScaledObjectReady`;
/// - every trigger failed and no fallback → `False` `TriggerError`;
/// - every trigger failed with fallback configured → `Unknown` `TriggerError` (the object is still
///   scaled, to the fallback replicas);
/// - some failed → `Unknown` `PartialTriggerError`.
///
/// Error messages name each failing metric and its error, each error on one line and cut to
/// [`MAX_TRIGGER_ERROR_CHARS`] (scaler errors carry no answer bodies; this bounds the rest).
pub fn ready_from_triggers(
    conds: &mut Vec<Condition>,
    outcomes: &[(String, Result<(), String>)],
    fallback_configured: bool,
    now: Time,
) {
    let failed: Vec<String> = outcomes
        .iter()
        .filter_map(|(m, r)| {
            r.as_ref()
                .err()
                .map(|e| format!("{m}: {}", ebb_scalers::error::one_line(e, MAX_TRIGGER_ERROR_CHARS)))
        })
        .collect();
    if failed.is_empty() {
        set_ready(conds, now);
        return;
    }
    let detail = failed.join("; ");
    if failed.len() < outcomes.len() {
        let msg = format!("{}: {detail}", message::PARTIAL_TRIGGER_ERROR);
        set_condition(conds, READY, UNKNOWN, reason::PARTIAL_TRIGGER_ERROR, &msg, now);
    } else if fallback_configured {
        let msg = format!("{} (fallback configured): {detail}", message::TRIGGER_ERROR);
        set_condition(conds, READY, UNKNOWN, reason::TRIGGER_ERROR, &msg, now);
    } else {
        let msg = format!("{}: {detail}", message::TRIGGER_ERROR);
        set_condition(conds, READY, FALSE, reason::TRIGGER_ERROR, &msg, now);
    }
}

/// `Ready` `True` `ScaledObjectReady`: the object is defined correctly and ready for scaling.
pub fn set_ready(conds: &mut Vec<Condition>, now: Time) {
    set_condition(conds, READY, TRUE, reason::READY, message::READY, now);
}

/// The object is invalid or its target unusable: `Ready` `False` `ScaledObjectCheckFailed` with
/// `message`, and `Active` `Unknown` `UnknownState`, as KEDA reports a failed check.
pub fn check_failed(conds: &mut Vec<Condition>, message: &str, now: Time) {
    set_condition(conds, READY, FALSE, reason::CHECK_FAILED, message, now.clone());
    set_condition(conds, ACTIVE, UNKNOWN, reason::UNKNOWN_STATE, message::CHECK_FAILED_ACTIVE, now);
}

/// `Active`: `True` `ScalerActive` or `False` `ScalerNotActive`.
pub fn set_active(conds: &mut Vec<Condition>, active: bool, now: Time) {
    if active {
        set_condition(conds, ACTIVE, TRUE, reason::SCALER_ACTIVE, message::SCALER_ACTIVE, now);
    } else {
        set_condition(conds, ACTIVE, FALSE, reason::SCALER_NOT_ACTIVE, message::SCALER_NOT_ACTIVE, now);
    }
}

/// `Fallback`: `True` `FallbackExists` or `False` `NoFallbackFound`.
pub fn set_fallback(conds: &mut Vec<Condition>, active: bool, now: Time) {
    if active {
        set_condition(conds, FALLBACK, TRUE, reason::FALLBACK_EXISTS, message::FALLBACK_EXISTS, now);
    } else {
        set_condition(conds, FALLBACK, FALSE, reason::NO_FALLBACK_FOUND, message::NO_FALLBACK_FOUND, now);
    }
}

/// `Paused`: `True` `ScaledObjectPaused`, or `False` `ScaledObjectUnpaused` (with KEDA's
/// "pause annotation removed" message right after a pause, "ScaledObject is not paused" otherwise).
pub fn set_paused(conds: &mut Vec<Condition>, paused: bool, now: Time) {
    if paused {
        set_condition(conds, PAUSED, TRUE, reason::PAUSED, message::PAUSED, now);
        return;
    }
    let was_paused = is_true(conds, PAUSED);
    let keep_message = conds
        .iter()
        .any(|c| c.type_ == PAUSED && c.status == FALSE && c.message.as_deref() == Some(message::UNPAUSED));
    let msg = if was_paused || keep_message { message::UNPAUSED } else { message::NOT_PAUSED };
    set_condition(conds, PAUSED, FALSE, reason::UNPAUSED, msg, now);
}

/// Whether the condition of type `type_` is `True`.
pub fn is_true(conds: &[Condition], type_: &str) -> bool {
    conds.iter().any(|c| c.type_ == type_ && c.status == TRUE)
}

/// `status.triggersTypes`: the trigger types, each once, in trigger order, comma-joined.
pub fn triggers_types(so: &ScaledObject) -> Option<String> {
    join_unique(so.spec.triggers.iter().map(|t| t.type_.as_str()))
}

/// `status.compositeScalerName`: `composite-metric` when `advanced.scalingModifiers` sets a
/// usable formula (KEDA keeps the triggers' names in `externalMetricNames` too).
pub fn composite_scaler_name(so: &ScaledObject) -> Option<String> {
    matches!(ebb_scalers::validate::modifiers::composite(so), Ok(Some(_)))
        .then(|| ebb_scalers::validate::modifiers::COMPOSITE_METRIC_NAME.to_owned())
}

/// `status.resourceMetricNames`: as KEDA fills it, the resource (`cpu`, `memory`) of each
/// trigger that became a `Resource` metric of the HPA, in trigger order; a trigger with
/// `containerName` (a `ContainerResource` metric) is not listed.
pub fn resource_metric_names(so: &ScaledObject) -> Vec<String> {
    ebb_scalers::resource::resource_triggers(so)
        .into_iter()
        .filter(|t| t.container.is_none())
        .map(|t| t.resource)
        .collect()
}

/// `status.authenticationsTypes`: the names of the referenced (Cluster)TriggerAuthentications,
/// each once, in trigger order, comma-joined; absent when no trigger references one.
pub fn authentications_types(so: &ScaledObject) -> Option<String> {
    join_unique(
        so.spec.triggers.iter().filter_map(|t| t.authentication_ref.as_ref()).map(|a| a.name.as_str()),
    )
}

fn join_unique<'a>(items: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut seen: Vec<&str> = Vec::new();
    for i in items.filter(|i| !i.is_empty()) {
        if !seen.contains(&i) {
            seen.push(i);
        }
    }
    (!seen.is_empty()).then(|| seen.join(","))
}

/// The server-side apply body for the status subresource (field manager `ebb-operator/status`).
pub fn status_patch(so_name: &str, namespace: &str, status: &ScaledObjectStatus) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": API_VERSION,
        "kind": "ScaledObject",
        "metadata": { "name": so_name, "namespace": namespace },
        "status": status,
    })
}

#[cfg(test)]
mod tests;
