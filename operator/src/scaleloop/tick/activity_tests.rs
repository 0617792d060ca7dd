//! `status.triggersActivity` after a tick (KEDA 2.20): one entry per measured trigger's metric
//! name, `isActive` as the trigger answered (a trigger that could not be measured is not active),
//! names no longer measured dropped; a tick that changes no activity changes nothing. Figures
//! written by hand.

use ebb_api::{ScaledObject, ScaledObjectStatus};
use serde_json::{Value, json};

use super::*;

fn so() -> ScaledObject {
    serde_json::from_value(json!({
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": "so", "namespace": "apps", "creationTimestamp": "2025-01-01T00:00:00Z"},
        "spec": {"scaleTargetRef": {"name": "app"}, "minReplicaCount": 1, "maxReplicaCount": 10,
            "triggers": [{"type": "prometheus", "metadata": {}}, {"type": "prometheus", "metadata": {}}]},
    }))
    .unwrap()
}

fn measured(metric: &str, result: Result<bool, ()>) -> Measured {
    Measured {
        metric: metric.into(),
        result: result
            .map_err(|()| TriggerFailure { message: "no answer within 3s".into(), reason: "Timeout" }),
    }
}

fn tick(previous: Value, measured: &[Measured]) -> TickEffects {
    let so = so();
    let previous: ScaledObjectStatus = serde_json::from_value(previous).unwrap();
    plan(&TickInput {
        so: &so,
        measured,
        current: Some(1),
        previous: &previous,
        unwritten: false,
        now: "2025-01-01T12:00:00Z".parse().unwrap(),
        composite_active: None,
    })
}

fn activity(effects: &TickEffects) -> Value {
    serde_json::to_value(&effects.status).unwrap()["triggersActivity"].clone()
}

#[test]
fn triggers_activity_follows_each_trigger() {
    // First tick: s0 active, s1 not.
    let first = tick(json!({}), &[measured("s0-prometheus", Ok(true)), measured("s1-prometheus", Ok(false))]);
    assert_eq!(
        activity(&first),
        json!({"s0-prometheus": {"isActive": true}, "s1-prometheus": {"isActive": false}})
    );
    assert!(first.write_status);

    // s1 fails: not active; s0 goes quiet.
    let previous = serde_json::to_value(&first.status).unwrap();
    let second =
        tick(previous.clone(), &[measured("s0-prometheus", Ok(false)), measured("s1-prometheus", Err(()))]);
    assert_eq!(
        activity(&second),
        json!({"s0-prometheus": {"isActive": false}, "s1-prometheus": {"isActive": false}})
    );

    // Both answer, inactive; then the same again: nothing changes (health reset on the first).
    let recovered = tick(
        serde_json::to_value(&second.status).unwrap(),
        &[measured("s0-prometheus", Ok(false)), measured("s1-prometheus", Ok(false))],
    );
    let settled = serde_json::to_value(&recovered.status).unwrap();
    let third =
        tick(settled.clone(), &[measured("s0-prometheus", Ok(false)), measured("s1-prometheus", Ok(false))]);
    assert_eq!(activity(&third), activity(&second));
    assert!(!third.status_changed, "unchanged activity is no change");

    // A trigger removed from the spec: its stale name is dropped.
    let fourth = tick(settled, &[measured("s0-prometheus", Ok(true))]);
    assert_eq!(activity(&fourth), json!({"s0-prometheus": {"isActive": true}}));
}

#[test]
fn triggers_activity_is_written_as_keda_names_it() {
    let mut status = ScaledObjectStatus::default();
    status.triggers_activity.insert("s0-cron".into(), ebb_api::TriggerActivityStatus { is_active: true });
    assert_eq!(
        serde_json::to_value(&status).unwrap(),
        json!({"triggersActivity": {"s0-cron": {"isActive": true}}})
    );
    // Absent when empty (`omitempty`).
    assert_eq!(serde_json::to_value(ScaledObjectStatus::default()).unwrap(), json!({}));
}
