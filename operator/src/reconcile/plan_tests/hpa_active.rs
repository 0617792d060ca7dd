//! `HPAActive` in the plan: the HPA's `ScalingActive` (from the controller's watch of its HPAs)
//! is mirrored into the status; a change of it alone is written by the fast path without
//! reading the target; an unknown watch leaves the condition alone; no HPA removes it. `Ready`
//! is not touched by the HPA's condition.

use super::*;

const FAILED: (&str, &str, &str) = (
    "False",
    "FailedGetExternalMetric",
    "the HPA was unable to compute the replica count: unable to get external metric shop/s0-cron-UTC-08xxx-018xxx: unable to fetch metrics from external metrics API",
);
const VALID: (&str, &str, &str) = (
    "True",
    "ValidMetricFound",
    "the HPA was able to successfully calculate a replica count from external metric s0-cron-UTC-08xxx-018xxx",
);

/// `scaling()` with `HPAActive` appended as `(status, reason, message)` at `at`.
fn with_hpa_active((status, reason, message): (&str, &str, &str), at: &str) -> Value {
    let mut s = scaling();
    s["conditions"].as_array_mut().unwrap().push(cond("HPAActive", status, reason, message, at));
    s
}

fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "HPA ScalingActive changed, nothing else: only the status is written, Ready untouched",
            object(json!({})),
            Check::NotRead,
            vec![write(with_hpa_active(FAILED, NOW))],
            End::Requeue(Duration::from_secs(290)),
        )
        .known(scaling())
        .with_last(FP, 10)
        .with_hpa(Some(FAILED)),
        Case::new(
            "HPA ScalingActive False → True: the condition follows, with a new transition time",
            object(json!({})),
            Check::NotRead,
            vec![write(with_hpa_active(VALID, NOW))],
            End::Requeue(Duration::from_secs(290)),
        )
        .known(with_hpa_active(FAILED, EARLIER))
        .with_last(FP, 10)
        .with_hpa(Some(VALID)),
        Case::new(
            "HPA ScalingActive as mirrored: fast path",
            object(json!({})),
            Check::NotRead,
            vec![],
            End::Requeue(Duration::from_secs(290)),
        )
        .known(with_hpa_active(VALID, EARLIER))
        .with_last(FP, 10)
        .with_hpa(Some(VALID)),
        Case::new(
            "the HPA watch does not know yet: HPAActive left as it is",
            object(json!({})),
            Check::NotRead,
            vec![],
            End::Requeue(Duration::from_secs(290)),
        )
        .known(with_hpa_active(VALID, EARLIER))
        .with_last(FP, 10),
        Case::new(
            "full reconcile: the HPA's condition is mirrored with the rest",
            object(json!({})),
            Check::Found(Some(4)),
            vec![unpaused(), hpa("keda-hpa-web"), write(with_hpa_active(FAILED, NOW)), done()],
            End::Requeue(RESYNC),
        )
        .known(scaling())
        .with_last(FP, 300)
        .with_hpa(Some(FAILED)),
        Case::new(
            "paused: the HPA is gone, so is HPAActive",
            object(json!({"metadata": {"annotations": {"autoscaling.keda.sh/paused": "true"}}})),
            Check::NotRead,
            vec![
                Step::StopLoop,
                Step::DeleteHpa { name: "keda-hpa-web".into() },
                write(scaling_with(json!({"conditions": [
                    cond("Ready", "True", "ScaledObjectReady", READY_MSG, EARLIER),
                    cond("Active", "False", "ScalerNotActive", "Scaling is not performed because triggers are not active", EARLIER),
                    cond("Fallback", "False", "NoFallbackFound", "No fallbacks are active on this scaled object", EARLIER),
                    cond("Paused", "True", "ScaledObjectPaused", "ScaledObject is paused", EARLIER),
                ]}))),
                Step::PausedMetric { paused: true },
            ],
            End::Requeue(RESYNC),
        )
        .known(scaling_with(json!({"conditions": [
            cond("Ready", "True", "ScaledObjectReady", READY_MSG, EARLIER),
            cond("Active", "False", "ScalerNotActive", "Scaling is not performed because triggers are not active", EARLIER),
            cond("Fallback", "False", "NoFallbackFound", "No fallbacks are active on this scaled object", EARLIER),
            cond("Paused", "True", "ScaledObjectPaused", "ScaledObject is paused", EARLIER),
            cond("HPAActive", "True", "ValidMetricFound", VALID.2, EARLIER),
        ]})))
        .with_last(OLD_FP, 10)
        .with_hpa(None),
    ]
}

#[test]
fn hpa_active_table() {
    for case in cases() {
        let (steps, end) = run(&case);
        assert_eq!(end, case.end, "{}: end", case.name);
        assert_eq!(steps.len(), case.steps.len(), "{}: steps {steps:#?}", case.name);
        for (i, (got, want)) in steps.iter().zip(&case.steps).enumerate() {
            assert_eq!(got, want, "{}: step {i}", case.name);
        }
    }
}
