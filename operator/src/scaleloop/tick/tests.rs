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
        "triggersActivity": {METRIC: {"isActive": false}},
    })
}

/// A condition as the table expects it: (type, status, reason).
type Cond = (&'static str, &'static str, &'static str);
const READY: Cond = ("Ready", "True", "ScaledObjectReady");
const TRIGGER_ERROR: Cond = ("Ready", "False", "TriggerError");
const TRIGGER_ERROR_UNKNOWN: Cond = ("Ready", "Unknown", "TriggerError");
const ACTIVE: Cond = ("Active", "True", "ScalerActive");
const INACTIVE: Cond = ("Active", "False", "ScalerNotActive");
const NO_FALLBACK: Cond = ("Fallback", "False", "NoFallbackFound");
const FALLBACK: Cond = ("Fallback", "True", "FallbackExists");

/// [`settled`] with `lastActiveTime` at `t`.
fn last_active_at(t: &str) -> Value {
    let mut s = settled();
    s["lastActiveTime"] = json!(t);
    s
}

/// One row of the table: the object, what its triggers measured, the target's current replicas,
/// the status before the tick (settled unless given) and what KEDA's rules say must follow.
struct Case {
    name: &'static str,
    so: ScaledObject,
    measured: Vec<Measured>,
    current: Option<i32>,
    previous: Value,
    unwritten: bool,
    want: Want,
}

impl Case {
    fn new(
        name: &'static str,
        so: ScaledObject,
        measured: Vec<Measured>,
        current: Option<i32>,
        want: Want,
    ) -> Case {
        Case { name, so, measured, current, previous: settled(), unwritten: false, want }
    }

    fn previous(self, previous: Value) -> Case {
        Case { previous, ..self }
    }

    /// An earlier change of the model was never written.
    fn unwritten(self) -> Case {
        Case { unwritten: true, ..self }
    }
}

#[derive(Default)]
struct Want {
    /// (from, to, event reason)
    scale: Option<(i32, i32, Option<&'static str>)>,
    fallback_event: Option<(EventType, &'static str, &'static str)>,
    write_status: bool,
    status_changed: bool,
    /// type → (status, reason); unchecked when empty.
    conditions: Vec<Cond>,
    /// (numberOfFailures, status) of the metric.
    health: Option<(i32, &'static str)>,
    /// RFC 3339; `None`: absent.
    last_active: Option<&'static str>,
    failed: usize,
}

fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "activation 0 → 1 (min 0)",
            so(json!({"minReplicaCount": 0, "maxReplicaCount": 10}), json!({})),
            vec![ok(true)],
            Some(0),
            Want {
                scale: Some((0, 1, Some("KEDAScaleTargetActivated"))),
                write_status: true,
                status_changed: true,
                conditions: vec![READY, ACTIVE, NO_FALLBACK],
                health: Some((0, "Happy")),
                last_active: Some(NOW),
                ..Want::default()
            },
        )
        .previous(json!({})),
        Case::new(
            "activation from idle goes to max(minReplicaCount, 1)",
            so(json!({"minReplicaCount": 3, "idleReplicaCount": 0, "maxReplicaCount": 10}), json!({})),
            vec![ok(true)],
            Some(0),
            Want {
                scale: Some((0, 3, Some("KEDAScaleTargetActivated"))),
                write_status: true,
                status_changed: true,
                last_active: Some(NOW),
                ..Want::default()
            },
        ),
        Case::new(
            "active at 3: the HPA scales, ebb writes nothing but lastActiveTime",
            so(json!({"minReplicaCount": 0, "maxReplicaCount": 10}), json!({})),
            vec![ok(true)],
            Some(3),
            Want {
                write_status: true,
                status_changed: true,
                conditions: vec![READY, ACTIVE, NO_FALLBACK],
                last_active: Some(NOW),
                ..Want::default()
            },
        ),
        Case::new(
            "scale to zero once cooldownPeriod has passed since the last active tick",
            so(json!({"minReplicaCount": 0, "cooldownPeriod": 300}), json!({})),
            vec![ok(false)],
            Some(3),
            Want {
                scale: Some((3, 0, Some("KEDAScaleTargetDeactivated"))),
                last_active: Some("2025-01-01T11:54:59Z"),
                ..Want::default()
            },
        )
        .previous(last_active_at("2025-01-01T11:54:59Z")),
        Case::new(
            "no scale to zero within cooldownPeriod",
            so(json!({"minReplicaCount": 0, "cooldownPeriod": 300}), json!({})),
            vec![ok(false)],
            Some(3),
            Want { last_active: Some("2025-01-01T11:56:00Z"), ..Want::default() },
        )
        .previous(last_active_at("2025-01-01T11:56:00Z")),
        Case::new(
            "a failing source never scales to zero",
            so(json!({"minReplicaCount": 0, "cooldownPeriod": 300}), json!({})),
            vec![failed()],
            Some(3),
            Want {
                write_status: true,
                status_changed: true,
                conditions: vec![TRIGGER_ERROR, INACTIVE, NO_FALLBACK],
                health: Some((1, "Failing")),
                last_active: Some("2025-01-01T10:00:00Z"),
                failed: 1,
                ..Want::default()
            },
        )
        .previous(last_active_at("2025-01-01T10:00:00Z")),
        Case::new(
            "fallback activated at failureThreshold: Warning event, Fallback True",
            so(json!({"minReplicaCount": 1, "fallback": {"failureThreshold": 3, "replicas": 5}}), json!({})),
            vec![failed()],
            Some(2),
            Want {
                fallback_event: Some((
                    EventType::Warning,
                    "ScaledObjectFallbackActivated",
                    "Fallback activated",
                )),
                write_status: true,
                status_changed: true,
                conditions: vec![TRIGGER_ERROR_UNKNOWN, INACTIVE, FALLBACK],
                health: Some((3, "Failing")),
                failed: 1,
                ..Want::default()
            },
        )
        .previous({
            let mut s = settled();
            s["health"][METRIC] = json!({"numberOfFailures": 2, "status": "Failing"});
            s
        }),
        Case::new(
            "fallback deactivated by a good tick: Normal event, health reset",
            so(json!({"minReplicaCount": 1, "fallback": {"failureThreshold": 3, "replicas": 5}}), json!({})),
            vec![ok(false)],
            Some(5),
            Want {
                fallback_event: Some((
                    EventType::Normal,
                    "ScaledObjectFallbackDeactivated",
                    "Fallback deactivated",
                )),
                write_status: true,
                status_changed: true,
                conditions: vec![READY, INACTIVE, NO_FALLBACK],
                health: Some((0, "Happy")),
                ..Want::default()
            },
        )
        .previous(json!({
            "conditions": [
                cond("Ready", "Unknown", "TriggerError"),
                cond("Active", "False", "ScalerNotActive"),
                cond("Fallback", "True", "FallbackExists"),
            ],
            "health": {METRIC: {"numberOfFailures": 4, "status": "Failing"}},
        })),
        Case::new(
            "fallback from zero: failing past the threshold at 0 replicas scales to fallback.replicas",
            so(json!({"minReplicaCount": 0, "fallback": {"failureThreshold": 1, "replicas": 4}}), json!({})),
            vec![failed()],
            Some(0),
            Want {
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
        ),
        Case::new(
            "force-activation annotation activates an inactive object",
            so(json!({"minReplicaCount": 0}), json!({"autoscaling.keda.sh/force-activation": "True"})),
            vec![ok(false)],
            Some(0),
            Want {
                scale: Some((0, 1, Some("KEDAScaleTargetActivated"))),
                write_status: true,
                status_changed: true,
                conditions: vec![READY, ACTIVE, NO_FALLBACK],
                last_active: Some(NOW),
                ..Want::default()
            },
        ),
        Case::new(
            "status unchanged: no write",
            so(json!({"minReplicaCount": 1}), json!({})),
            vec![ok(false)],
            Some(1),
            Want {
                conditions: vec![READY, INACTIVE, NO_FALLBACK],
                health: Some((0, "Happy")),
                ..Want::default()
            },
        ),
        Case::new(
            "status unchanged but an earlier write failed: written again",
            so(json!({"minReplicaCount": 1}), json!({})),
            vec![ok(false)],
            Some(1),
            Want { write_status: true, ..Want::default() },
        )
        .unwritten(),
        Case::new(
            "replicas unknown: failures counted in the model, nothing decided or written",
            so(json!({"minReplicaCount": 0}), json!({})),
            vec![failed()],
            None,
            Want {
                status_changed: true,
                conditions: vec![READY, INACTIVE, NO_FALLBACK],
                health: Some((1, "Failing")),
                ..Want::default()
            },
        )
        .unwritten(),
        Case::new(
            "below minReplicaCount without a trigger active: raised to min, no event",
            so(json!({"minReplicaCount": 2}), json!({})),
            vec![ok(false)],
            Some(1),
            Want { scale: Some((1, 2, None)), ..Want::default() },
        ),
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
            composite_active: None,
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
        composite_active: None,
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
        composite_active: None,
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

#[test]
fn only_cpu_memory_triggers_are_always_active() {
    // KEDA: an object whose triggers are all cpu/memory is active; the HPA scales it between
    // minReplicaCount (≥ 1) and maxReplicaCount, and nothing is polled.
    let mut so = so(json!({"minReplicaCount": 1, "maxReplicaCount": 10}), json!({}));
    so.spec.triggers = serde_json::from_value(
        json!([{"type": "cpu", "metricType": "Utilization", "metadata": {"value": "50"}}]),
    )
    .unwrap();
    let previous = status(settled());
    let got = plan(&TickInput {
        so: &so,
        measured: &[],
        current: Some(1),
        previous: &previous,
        unwritten: false,
        now: now(),
        composite_active: None,
    });
    assert!(got.active);
    assert!(got.scale.is_none());
    let active = got.status.conditions.iter().find(|c| c.type_ == "Active").unwrap();
    assert_eq!(active.status, "True");
}
