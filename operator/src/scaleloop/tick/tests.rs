//! Table tests of the pure tick step. The expected values are KEDA's documented behaviour
//! (the reference's §2: activation to `max(min, 1)`, deactivation after `cooldownPeriod`,
//! failures counted per metric toward `fallback.failureThreshold`, a failing source never
//! scaling to zero; KEDA's condition reasons and event reasons), written out as literals.

use std::collections::BTreeMap;

use ebb_api::{ScaledObject, ScaledObjectStatus};
use kube::runtime::events::EventType;
use serde_json::{Value, json};

use super::*;

const NOW: &str = "2025-01-01T12:00:00Z";
const METRIC: &str = "s0-prometheus";

fn now() -> DateTime<Utc> {
    NOW.parse().unwrap()
}

fn so(spec: Value, annotations: Value) -> ScaledObject {
    let mut spec = spec;
    spec["scaleTargetRef"] = json!({"name": "app"});
    spec["triggers"] = json!([{"type": "prometheus", "metadata": {}}]);
    serde_json::from_value(json!({
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {
            "name": "so", "namespace": "apps",
            "creationTimestamp": "2025-01-01T00:00:00Z",
            "annotations": annotations,
        },
        "spec": spec,
    }))
    .unwrap()
}

fn status(v: Value) -> ScaledObjectStatus {
    serde_json::from_value(v).unwrap()
}

fn ok(active: bool) -> Measured {
    Measured { metric: METRIC.into(), result: Ok(active) }
}

fn failed() -> Measured {
    Measured {
        metric: METRIC.into(),
        result: Err(TriggerFailure { message: "no answer within 3s".into(), reason: "Timeout" }),
    }
}

fn cond(type_: &str, status: &str, reason: &str) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "lastTransitionTime": "2025-01-01T11:00:00Z"})
}

/// A status as a tick of an inactive, healthy object without fallback leaves it.
fn settled() -> Value {
    json!({
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "ScaledObjectReady",
             "message": "ScaledObject is defined correctly and is ready for scaling",
             "lastTransitionTime": "2025-01-01T11:00:00Z"},
            {"type": "Active", "status": "False", "reason": "ScalerNotActive",
             "message": "Scaling is not performed because triggers are not active",
             "lastTransitionTime": "2025-01-01T11:00:00Z"},
            {"type": "Fallback", "status": "False", "reason": "NoFallbackFound",
             "message": "No fallbacks are active on this scaled object",
             "lastTransitionTime": "2025-01-01T11:00:00Z"},
        ],
        "health": {METRIC: {"numberOfFailures": 0, "status": "Happy"}},
    })
}

struct Case {
    name: &'static str,
    so: ScaledObject,
    measured: Vec<Measured>,
    current: Option<i32>,
    previous: Value,
    unwritten: bool,
    want: Want,
}

#[derive(Default)]
struct Want {
    /// (from, to, event reason)
    scale: Option<(i32, i32, Option<&'static str>)>,
    fallback_event: Option<(EventType, &'static str, &'static str)>,
    write_status: bool,
    status_changed: bool,
    /// type → (status, reason); unchecked when empty.
    conditions: Vec<(&'static str, &'static str, &'static str)>,
    /// (numberOfFailures, status) of the metric.
    health: Option<(i32, &'static str)>,
    /// RFC 3339; `None`: absent.
    last_active: Option<&'static str>,
    failed: usize,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "activation 0 → 1 (min 0)",
            so: so(json!({"minReplicaCount": 0, "maxReplicaCount": 10}), json!({})),
            measured: vec![ok(true)],
            current: Some(0),
            previous: json!({}),
            unwritten: false,
            want: Want {
                scale: Some((0, 1, Some("KEDAScaleTargetActivated"))),
                write_status: true,
                status_changed: true,
                conditions: vec![
                    ("Ready", "True", "ScaledObjectReady"),
                    ("Active", "True", "ScalerActive"),
                    ("Fallback", "False", "NoFallbackFound"),
                ],
                health: Some((0, "Happy")),
                last_active: Some(NOW),
                ..Want::default()
            },
        },
        Case {
            name: "activation from idle goes to max(minReplicaCount, 1)",
            so: so(json!({"minReplicaCount": 3, "idleReplicaCount": 0, "maxReplicaCount": 10}), json!({})),
            measured: vec![ok(true)],
            current: Some(0),
            previous: settled(),
            unwritten: false,
            want: Want {
                scale: Some((0, 3, Some("KEDAScaleTargetActivated"))),
                write_status: true,
                status_changed: true,
                last_active: Some(NOW),
                ..Want::default()
            },
        },
        Case {
            name: "active at 3: the HPA scales, ebb writes nothing but lastActiveTime",
            so: so(json!({"minReplicaCount": 0, "maxReplicaCount": 10}), json!({})),
            measured: vec![ok(true)],
            current: Some(3),
            previous: settled(),
            unwritten: false,
            want: Want {
                write_status: true,
                status_changed: true,
                conditions: vec![
                    ("Ready", "True", "ScaledObjectReady"),
                    ("Active", "True", "ScalerActive"),
                    ("Fallback", "False", "NoFallbackFound"),
                ],
                last_active: Some(NOW),
                ..Want::default()
            },
        },
        Case {
            name: "scale to zero once cooldownPeriod has passed since the last active tick",
            so: so(json!({"minReplicaCount": 0, "cooldownPeriod": 300}), json!({})),
            measured: vec![ok(false)],
            current: Some(3),
            previous: {
                let mut s = settled();
                s["lastActiveTime"] = json!("2025-01-01T11:54:59Z");
                s
            },
            unwritten: false,
            want: Want {
                scale: Some((3, 0, Some("KEDAScaleTargetDeactivated"))),
                last_active: Some("2025-01-01T11:54:59Z"),
                ..Want::default()
            },
        },
        Case {
            name: "no scale to zero within cooldownPeriod",
            so: so(json!({"minReplicaCount": 0, "cooldownPeriod": 300}), json!({})),
            measured: vec![ok(false)],
            current: Some(3),
            previous: {
                let mut s = settled();
                s["lastActiveTime"] = json!("2025-01-01T11:56:00Z");
                s
            },
            unwritten: false,
            want: Want { last_active: Some("2025-01-01T11:56:00Z"), ..Want::default() },
        },
        Case {
            name: "a failing source never scales to zero",
            so: so(json!({"minReplicaCount": 0, "cooldownPeriod": 300}), json!({})),
            measured: vec![failed()],
            current: Some(3),
            previous: {
                let mut s = settled();
                s["lastActiveTime"] = json!("2025-01-01T10:00:00Z");
                s
            },
            unwritten: false,
            want: Want {
                write_status: true,
                status_changed: true,
                conditions: vec![
                    ("Ready", "False", "TriggerError"),
                    ("Active", "False", "ScalerNotActive"),
                    ("Fallback", "False", "NoFallbackFound"),
                ],
                health: Some((1, "Failing")),
                last_active: Some("2025-01-01T10:00:00Z"),
                failed: 1,
                ..Want::default()
            },
        },
        Case {
            name: "fallback activated at failureThreshold: Warning event, Fallback True",
            so: so(
                json!({"minReplicaCount": 1, "fallback": {"failureThreshold": 3, "replicas": 5}}),
                json!({}),
            ),
            measured: vec![failed()],
            current: Some(2),
            previous: {
                let mut s = settled();
                s["health"][METRIC] = json!({"numberOfFailures": 2, "status": "Failing"});
                s
            },
            unwritten: false,
            want: Want {
                fallback_event: Some((
                    EventType::Warning,
                    "ScaledObjectFallbackActivated",
                    "Fallback activated",
                )),
                write_status: true,
                status_changed: true,
                conditions: vec![
                    ("Ready", "Unknown", "TriggerError"),
                    ("Active", "False", "ScalerNotActive"),
                    ("Fallback", "True", "FallbackExists"),
                ],
                health: Some((3, "Failing")),
                failed: 1,
                ..Want::default()
            },
        },
        Case {
            name: "fallback deactivated by a good tick: Normal event, health reset",
            so: so(
                json!({"minReplicaCount": 1, "fallback": {"failureThreshold": 3, "replicas": 5}}),
                json!({}),
            ),
            measured: vec![ok(false)],
            current: Some(5),
            previous: json!({
                "conditions": [
                    cond("Ready", "Unknown", "TriggerError"),
                    cond("Active", "False", "ScalerNotActive"),
                    cond("Fallback", "True", "FallbackExists"),
                ],
                "health": {METRIC: {"numberOfFailures": 4, "status": "Failing"}},
            }),
            unwritten: false,
            want: Want {
                fallback_event: Some((
                    EventType::Normal,
                    "ScaledObjectFallbackDeactivated",
                    "Fallback deactivated",
                )),
                write_status: true,
                status_changed: true,
                conditions: vec![
                    ("Ready", "True", "ScaledObjectReady"),
                    ("Active", "False", "ScalerNotActive"),
                    ("Fallback", "False", "NoFallbackFound"),
                ],
                health: Some((0, "Happy")),
                ..Want::default()
            },
        },
        Case {
            name: "fallback from zero: failing past the threshold at 0 replicas scales to fallback.replicas",
            so: so(
                json!({"minReplicaCount": 0, "fallback": {"failureThreshold": 1, "replicas": 4}}),
                json!({}),
            ),
            measured: vec![failed()],
            current: Some(0),
            previous: settled(),
            unwritten: false,
            want: Want {
                scale: Some((0, 4, None)),
                fallback_event: Some((
                    EventType::Warning,
                    "ScaledObjectFallbackActivated",
                    "Fallback activated",
                )),
                write_status: true,
                status_changed: true,
                health: Some((1, "Failing")),
                failed: 1,
                ..Want::default()
            },
        },
        Case {
            name: "force-activation annotation activates an inactive object",
            so: so(json!({"minReplicaCount": 0}), json!({"autoscaling.keda.sh/force-activation": "True"})),
            measured: vec![ok(false)],
            current: Some(0),
            previous: settled(),
            unwritten: false,
            want: Want {
                scale: Some((0, 1, Some("KEDAScaleTargetActivated"))),
                write_status: true,
                status_changed: true,
                conditions: vec![
                    ("Ready", "True", "ScaledObjectReady"),
                    ("Active", "True", "ScalerActive"),
                    ("Fallback", "False", "NoFallbackFound"),
                ],
                last_active: Some(NOW),
                ..Want::default()
            },
        },
        Case {
            name: "status unchanged: no write",
            so: so(json!({"minReplicaCount": 1}), json!({})),
            measured: vec![ok(false)],
            current: Some(1),
            previous: settled(),
            unwritten: false,
            want: Want {
                conditions: vec![
                    ("Ready", "True", "ScaledObjectReady"),
                    ("Active", "False", "ScalerNotActive"),
                    ("Fallback", "False", "NoFallbackFound"),
                ],
                health: Some((0, "Happy")),
                ..Want::default()
            },
        },
        Case {
            name: "status unchanged but an earlier write failed: written again",
            so: so(json!({"minReplicaCount": 1}), json!({})),
            measured: vec![ok(false)],
            current: Some(1),
            previous: settled(),
            unwritten: true,
            want: Want { write_status: true, ..Want::default() },
        },
        Case {
            name: "replicas unknown: failures counted in the model, nothing decided or written",
            so: so(json!({"minReplicaCount": 0}), json!({})),
            measured: vec![failed()],
            current: None,
            previous: settled(),
            unwritten: true,
            want: Want {
                status_changed: true,
                conditions: vec![
                    ("Ready", "True", "ScaledObjectReady"),
                    ("Active", "False", "ScalerNotActive"),
                    ("Fallback", "False", "NoFallbackFound"),
                ],
                health: Some((1, "Failing")),
                ..Want::default()
            },
        },
        Case {
            name: "below minReplicaCount without a trigger active: raised to min, no event",
            so: so(json!({"minReplicaCount": 2}), json!({})),
            measured: vec![ok(false)],
            current: Some(1),
            previous: settled(),
            unwritten: false,
            want: Want { scale: Some((1, 2, None)), ..Want::default() },
        },
    ]
}

#[test]
fn tick_effects_follow_keda() {
    for case in cases() {
        let previous = status(case.previous.clone());
        let input = TickInput {
            so: &case.so,
            measured: &case.measured,
            current: case.current,
            previous: &previous,
            unwritten: case.unwritten,
            now: now(),
        };
        let got = plan(&input);
        let name = case.name;
        let want = &case.want;
        let scale = got.scale.as_ref().map(|w| (w.from, w.to, w.event));
        assert_eq!(scale, want.scale, "{name}: scale write");
        let fallback = got.fallback_event.as_ref().map(|e| (e.type_, e.reason, e.note.as_str()));
        assert_eq!(fallback, want.fallback_event, "{name}: fallback event");
        assert_eq!(got.write_status, want.write_status, "{name}: status write");
        assert_eq!(got.status_changed, want.status_changed, "{name}: status changed");
        assert_eq!(got.failed.len(), want.failed, "{name}: failed triggers counted");
        if !want.conditions.is_empty() {
            let conds: BTreeMap<&str, (&str, &str)> = got
                .status
                .conditions
                .iter()
                .map(|c| (c.type_.as_str(), (c.status.as_str(), c.reason.as_deref().unwrap_or_default())))
                .collect();
            let expected: BTreeMap<&str, (&str, &str)> =
                want.conditions.iter().map(|(t, s, r)| (*t, (*s, *r))).collect();
            assert_eq!(conds, expected, "{name}: conditions");
        }
        if let Some((failures, state)) = want.health {
            let h = serde_json::to_value(&got.status.health[METRIC]).unwrap();
            assert_eq!(h, json!({"numberOfFailures": failures, "status": state}), "{name}: health");
        }
        let last_active = got.status.last_active_time.as_ref().map(crate::time::from_k8s);
        let expected = want.last_active.map(|t| t.parse::<DateTime<Utc>>().unwrap());
        assert_eq!(last_active, expected, "{name}: lastActiveTime");
    }
}

#[test]
fn the_scale_write_carries_the_decision_and_the_log_values() {
    let so = so(json!({"minReplicaCount": 0, "maxReplicaCount": 10}), json!({}));
    let previous = status(json!({}));
    let measured = [ok(true)];
    let got = plan(&TickInput {
        so: &so,
        measured: &measured,
        current: Some(0),
        previous: &previous,
        unwritten: false,
        now: now(),
    });
    let w = got.scale.clone().unwrap();
    assert_eq!(w.reason, "active: scaling 0 → 1");
    assert!(got.active);
    assert_eq!((got.current, got.desired()), (Some(0), Some(1)));
    assert_eq!(got.decision.as_deref(), Some("active: scaling 0 → 1"));
}

#[test]
fn failed_triggers_name_their_metric_and_error_and_ready_says_why() {
    let so = so(json!({"minReplicaCount": 1}), json!({}));
    let previous = status(settled());
    let measured = [failed()];
    let got = plan(&TickInput {
        so: &so,
        measured: &measured,
        current: Some(1),
        previous: &previous,
        unwritten: false,
        now: now(),
    });
    assert_eq!(got.failed, [(METRIC.to_owned(), "no answer within 3s".to_owned())]);
    let ready = got.status.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(
        ready.message.as_deref(),
        Some(
            "Triggers defined in ScaledObject are not working correctly: s0-prometheus: no answer within 3s (Timeout)"
        )
    );
}

#[test]
fn condition_timestamps_alone_are_no_change() {
    let a = status(settled());
    let mut b = a.clone();
    for c in &mut b.conditions {
        c.last_transition_time = Some(crate::time::to_k8s(now()));
    }
    assert!(same_status(&a, &b));
    b.conditions[0].status = "False".into();
    assert!(!same_status(&a, &b));
}
