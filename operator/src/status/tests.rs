use ebb_api::{AuthenticationRef, HealthStatus, HealthStatusType, ScaleTrigger, ScaledObjectStatus};
use serde_json::json;

use super::*;

fn t(secs: i64) -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000 + secs).unwrap())
}

fn get<'a>(conds: &'a [Condition], type_: &str) -> &'a Condition {
    conds.iter().find(|c| c.type_ == type_).unwrap()
}

/// (status, reason, message) of one condition.
type Srm = (String, Option<String>, Option<String>);

fn srm(conds: &[Condition], type_: &str) -> Srm {
    let c = get(conds, type_);
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

fn triple(s: &str, r: &str, m: &str) -> Srm {
    (s.to_owned(), Some(r.to_owned()), Some(m.to_owned()))
}

#[test]
fn initial_conditions_are_all_unknown_in_keda_order() {
    let c = initial_conditions(t(0));
    let got: Vec<(&str, &str)> = c.iter().map(|c| (c.type_.as_str(), c.status.as_str())).collect();
    assert_eq!(
        got,
        [("Ready", "Unknown"), ("Active", "Unknown"), ("Fallback", "Unknown"), ("Paused", "Unknown")]
    );
    assert!(
        c.iter().all(|c| c.reason.is_none() && c.message.is_none() && c.last_transition_time == Some(t(0)))
    );
}

#[test]
fn transition_time_moves_only_when_status_changes() {
    let mut c = initial_conditions(t(0));
    // (time, status, reason) → expected lastTransitionTime
    let steps = [
        (10, TRUE, "A", 10),
        (20, TRUE, "B", 10),
        (30, FALSE, "C", 30),
        (40, FALSE, "C", 30),
        (50, UNKNOWN, "D", 50),
        (60, TRUE, "A", 60),
    ];
    for (at, status, reason, want) in steps {
        set_condition(&mut c, ACTIVE, status, reason, "m", t(at));
        let a = get(&c, ACTIVE);
        assert_eq!((a.status.as_str(), a.reason.as_deref()), (status, Some(reason)), "at {at}");
        assert_eq!(a.last_transition_time, Some(t(want)), "at {at}");
    }
    assert_eq!(c.len(), 4, "replaced, not appended");
    assert_eq!(get(&c, READY).last_transition_time, Some(t(0)), "other conditions untouched");
}

#[test]
fn set_condition_appends_missing_types_and_fills_missing_times() {
    let mut c = vec![Condition { type_: READY.into(), status: TRUE.into(), ..Default::default() }];
    set_condition(&mut c, READY, TRUE, "R", "", t(5));
    assert_eq!(c[0].last_transition_time, Some(t(5)));
    assert_eq!(c[0].message, None, "empty message left out");
    set_condition(&mut c, PAUSED, FALSE, "P", "m", t(6));
    assert_eq!(c.len(), 2);
    assert_eq!(c[1].type_, PAUSED);
    assert_eq!(c[1].last_transition_time, Some(t(6)));
}

#[test]
fn ready_from_trigger_outcomes() {
    let ok = |m: &str| (m.to_owned(), Ok(()));
    let err = |m: &str, e: &str| (m.to_owned(), Err(e.to_owned()));
    let cases = vec![
        (
            vec![],
            false,
            triple(TRUE, "ScaledObjectReady", "ScaledObject is defined correctly and is ready for scaling"),
        ),
        (
            vec![ok("s0-cron"), ok("s1-prometheus")],
            false,
            triple(TRUE, "ScaledObjectReady", "ScaledObject is defined correctly and is ready for scaling"),
        ),
        (
            vec![err("s0-prometheus", "connection refused"), err("s1-kafka-t", "timed out after 3s")],
            false,
            triple(
                FALSE,
                "TriggerError",
                "Triggers defined in ScaledObject are not working correctly: s0-prometheus: connection refused; s1-kafka-t: timed out after 3s",
            ),
        ),
        (
            vec![err("s0-prometheus", "connection refused")],
            true,
            triple(
                UNKNOWN,
                "TriggerError",
                "Triggers defined in ScaledObject are not working correctly (fallback configured): s0-prometheus: connection refused",
            ),
        ),
        (
            vec![ok("s0-cron"), err("s1-prometheus", "HTTP 500")],
            false,
            triple(
                UNKNOWN,
                "PartialTriggerError",
                "Some triggers defined in ScaledObject are not working correctly: s1-prometheus: HTTP 500",
            ),
        ),
        (
            vec![ok("s0-cron"), err("s1-prometheus", "HTTP 500")],
            true,
            triple(
                UNKNOWN,
                "PartialTriggerError",
                "Some triggers defined in ScaledObject are not working correctly: s1-prometheus: HTTP 500",
            ),
        ),
    ];
    for (outcomes, fallback, want) in cases {
        let mut c = initial_conditions(t(0));
        ready_from_triggers(&mut c, &outcomes, fallback, t(1));
        assert_eq!(srm(&c, READY), want, "{outcomes:?} fallback {fallback}");
    }
}

#[test]
fn check_failed_sets_ready_false_and_active_unknown() {
    let mut c = initial_conditions(t(0));
    set_active(&mut c, true, t(1));
    check_failed(&mut c, "scaleTargetRef: deployments.apps \"web\" not found", t(2));
    assert_eq!(
        srm(&c, READY),
        triple(FALSE, "ScaledObjectCheckFailed", "scaleTargetRef: deployments.apps \"web\" not found")
    );
    assert_eq!(srm(&c, ACTIVE), triple(UNKNOWN, "UnknownState", "ScaledObject check failed"));
    assert_eq!(get(&c, READY).last_transition_time, Some(t(2)));
}

#[test]
fn active_fallback_and_paused_use_keda_reasons() {
    type Setter = fn(&mut Vec<Condition>, bool, Time);
    let cases: [(Setter, &str, bool, Srm); 4] = [
        (
            set_active,
            ACTIVE,
            true,
            triple(TRUE, "ScalerActive", "Scaling is performed because triggers are active"),
        ),
        (
            set_active,
            ACTIVE,
            false,
            triple(FALSE, "ScalerNotActive", "Scaling is not performed because triggers are not active"),
        ),
        (
            set_fallback,
            FALLBACK,
            true,
            triple(TRUE, "FallbackExists", "At least one trigger is falling back on this scaled object"),
        ),
        (
            set_fallback,
            FALLBACK,
            false,
            triple(FALSE, "NoFallbackFound", "No fallbacks are active on this scaled object"),
        ),
    ];
    for (set, type_, on, want) in cases {
        let mut c = initial_conditions(t(0));
        set(&mut c, on, t(1));
        assert_eq!(srm(&c, type_), want, "{type_} {on}");
    }
}

#[test]
fn paused_then_unpaused_messages() {
    let mut c = initial_conditions(t(0));
    set_paused(&mut c, false, t(1));
    assert_eq!(srm(&c, PAUSED), triple(FALSE, "ScaledObjectUnpaused", "ScaledObject is not paused"));
    set_paused(&mut c, true, t(2));
    assert_eq!(srm(&c, PAUSED), triple(TRUE, "ScaledObjectPaused", "ScaledObject is paused"));
    assert_eq!(get(&c, PAUSED).last_transition_time, Some(t(2)));
    set_paused(&mut c, false, t(3));
    assert_eq!(
        srm(&c, PAUSED),
        triple(FALSE, "ScaledObjectUnpaused", "pause annotation removed for ScaledObject")
    );
    set_paused(&mut c, false, t(4));
    assert_eq!(
        srm(&c, PAUSED),
        triple(FALSE, "ScaledObjectUnpaused", "pause annotation removed for ScaledObject")
    );
    assert_eq!(get(&c, PAUSED).last_transition_time, Some(t(3)));
}

fn trigger(type_: &str, auth: Option<&str>) -> ScaleTrigger {
    ScaleTrigger {
        type_: type_.into(),
        authentication_ref: auth.map(|a| AuthenticationRef { name: a.into(), kind: None }),
        ..Default::default()
    }
}

#[test]
fn trigger_and_authentication_summaries() {
    let cases: Vec<(Vec<ScaleTrigger>, Option<&str>, Option<&str>)> = vec![
        (vec![trigger("cron", None)], Some("cron"), None),
        (
            vec![
                trigger("prometheus", Some("prom-auth")),
                trigger("aws-sqs-queue", Some("aws")),
                trigger("prometheus", Some("prom-auth")),
                trigger("cron", None),
                trigger("kafka", Some("aws")),
            ],
            Some("prometheus,aws-sqs-queue,cron,kafka"),
            Some("prom-auth,aws"),
        ),
        (vec![], None, None),
    ];
    for (triggers, want_t, want_a) in cases {
        let mut so = ScaledObject::new("so", Default::default());
        so.spec.triggers = triggers;
        assert_eq!(triggers_types(&so).as_deref(), want_t);
        assert_eq!(authentications_types(&so).as_deref(), want_a);
    }
}

#[test]
fn status_patch_is_a_complete_apply_body() {
    let mut status = ScaledObjectStatus { hpa_name: Some("keda-hpa-w".into()), ..Default::default() };
    status.health.insert(
        "s0-cron".into(),
        HealthStatus { number_of_failures: Some(2), status: Some(HealthStatusType::Failing) },
    );
    set_active(&mut status.conditions, false, t(0));
    let got = status_patch("w", "apps", &status);
    assert_eq!(
        got,
        json!({
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": "w", "namespace": "apps"},
            "status": {
                "hpaName": "keda-hpa-w",
                "health": {"s0-cron": {"numberOfFailures": 2, "status": "Failing"}},
                "conditions": [{
                    "type": "Active",
                    "status": "False",
                    "reason": "ScalerNotActive",
                    "message": "Scaling is not performed because triggers are not active",
                    "lastTransitionTime": "2023-11-14T22:13:20Z",
                }],
            },
        })
    );
}

/// Whatever a scaler's error says, the condition message stays bounded and on one line.
#[test]
fn trigger_errors_in_ready_are_bounded_one_line() {
    let long = format!("first line\n{}", "x".repeat(10_000));
    let outcomes: Vec<(String, Result<(), String>)> =
        (0..3).map(|i| (format!("s{i}-prometheus"), Err(long.clone()))).collect();
    let mut c = initial_conditions(t(0));
    ready_from_triggers(&mut c, &outcomes, false, t(1));
    let msg = get(&c, READY).message.clone().unwrap();
    assert!(msg.chars().count() <= 3 * (MAX_TRIGGER_ERROR_CHARS + 40) + 100, "{} chars", msg.chars().count());
    assert!(!msg.contains('\n'), "{msg}");
    assert!(msg.contains("s2-prometheus: first line xxx"), "{msg}");
}
