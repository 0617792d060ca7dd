//! `HPAActive` from an HPA's `ScalingActive` condition, with HPA statuses as kube-controller-
//! manager writes them (reasons `ValidMetricFound`, `FailedGetExternalMetric`,
//! `ScalingDisabled`), written out by hand.

use serde_json::{Value, json};

use super::*;

fn hpa(conditions: Value) -> OwnedHpa {
    serde_json::from_value(json!({
        "metadata": {"name": "keda-hpa-web", "namespace": "shop"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 5},
        "status": {"desiredReplicas": 1, "conditions": conditions},
    }))
    .unwrap()
}

fn hpa_cond(type_: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": message,
        "lastTransitionTime": "2025-01-01T00:00:00Z"})
}

fn time(s: &str) -> Time {
    serde_json::from_value(json!(s)).unwrap()
}

const FAILED_MSG: &str = "the HPA was unable to compute the replica count: unable to get external metric shop/s0-prometheus/&LabelSelector{MatchLabels:map[string]string{scaledobject.keda.sh/name: web,},MatchExpressions:[]LabelSelectorRequirement{},}: unable to fetch metrics from external metrics API: the server is currently unable to handle the request";

#[test]
fn scaling_active_is_read_from_the_hpa() {
    let h = hpa(json!([
        hpa_cond("AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size"),
        hpa_cond("ScalingActive", "False", "FailedGetExternalMetric", FAILED_MSG),
    ]));
    assert_eq!(
        scaling_active(&h),
        Some(ScalingActive {
            status: "False".into(),
            reason: "FailedGetExternalMetric".into(),
            message: FAILED_MSG.into(),
        })
    );
    // No status, no conditions, or no ScalingActive: nothing to mirror.
    let mut bare = h.clone();
    bare.status = None;
    assert_eq!(scaling_active(&bare), None);
    assert_eq!(
        scaling_active(&hpa(json!([hpa_cond("AbleToScale", "True", "SucceededRescale", "ok")]))),
        None
    );
    // A status that is not a condition status reads as Unknown; a long message is cut.
    let odd = hpa(json!([hpa_cond("ScalingActive", "Maybe", "X", &"m".repeat(2000))]));
    let got = scaling_active(&odd).unwrap();
    assert_eq!(got.status, "Unknown");
    assert_eq!(got.message, format!("{}…", "m".repeat(MAX_MESSAGE_CHARS)));
}

#[test]
fn mirror_copies_the_hpa_condition_and_removes_it_without_one() {
    let disabled = ScalingActive {
        status: "False".into(),
        reason: "ScalingDisabled".into(),
        message: "scaling is disabled since the replica count of the target is zero".into(),
    };
    let mut conds = crate::status::initial_conditions(time("2025-01-01T00:00:00Z"));
    assert!(differs(&conds, Some(&disabled)));
    assert!(!differs(&conds, None));
    mirror(&mut conds, Some(&disabled), time("2025-01-01T00:01:00Z"));
    let c = conds.iter().find(|c| c.type_ == "HPAActive").unwrap();
    assert_eq!(
        serde_json::to_value(c).unwrap(),
        json!({"type": "HPAActive", "status": "False", "reason": "ScalingDisabled",
            "message": "scaling is disabled since the replica count of the target is zero",
            "lastTransitionTime": "2025-01-01T00:01:00Z"})
    );
    assert!(!differs(&conds, Some(&disabled)));
    // Ready and the others are left alone.
    assert_eq!(conds.len(), 5);
    assert!(conds.iter().filter(|c| c.type_ != "HPAActive").all(|c| c.status == "Unknown"));

    let valid = ScalingActive {
        status: "True".into(),
        reason: "ValidMetricFound".into(),
        message: "the HPA was able to successfully calculate a replica count from external metric s0-prometheus(&LabelSelector{MatchLabels:map[string]string{scaledobject.keda.sh/name: web,},MatchExpressions:[]LabelSelectorRequirement{},})".into(),
    };
    assert!(differs(&conds, Some(&valid)));
    mirror(&mut conds, Some(&valid), time("2025-01-01T00:02:00Z"));
    let c = conds.iter().find(|c| c.type_ == "HPAActive").unwrap();
    assert_eq!((c.status.as_str(), c.reason.as_deref()), ("True", Some("ValidMetricFound")));
    assert_eq!(c.last_transition_time, Some(time("2025-01-01T00:02:00Z")));

    // The HPA is gone (paused): the condition goes too.
    assert!(differs(&conds, None));
    mirror(&mut conds, None, time("2025-01-01T00:03:00Z"));
    assert!(conds.iter().all(|c| c.type_ != "HPAActive"));
}
