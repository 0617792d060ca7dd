//! Scale-in and scale-out pauses in the plan: as in KEDA, `autoscaling.keda.sh/paused-scale-in`
//! or `…/paused-scale-out` (any value but a Go "false") sets `Paused` `True`
//! `ScaledObjectPaused` "ScaledObject is paused" and `keda_scaled_object_paused` to 1, while the
//! HPA stays with the paused direction disabled and the loop keeps running; removing the
//! annotation sets `Paused` `False` `ScaledObjectUnpaused` "pause annotation removed for
//! ScaledObject".

use super::*;

/// The HPA of [`hpa_annotated`] with `behavior` (KEDA's `selectPolicy: Disabled` per direction).
fn hpa_with_behavior(annotations: Value, behavior: Value) -> Step {
    let Step::ApplyHpa(h) = hpa_annotated("keda-hpa-web", annotations) else { unreachable!() };
    let mut v = serde_json::to_value(*h).unwrap();
    v["spec"]["behavior"] = behavior;
    Step::ApplyHpa(Box::new(serde_json::from_value(v).unwrap()))
}

fn with_paused(paused: Value) -> Value {
    scaling_with(json!({"conditions": [
        cond("Ready", "True", "ScaledObjectReady", READY_MSG, EARLIER),
        cond("Active", "False", "ScalerNotActive", "Scaling is not performed because triggers are not active", EARLIER),
        cond("Fallback", "False", "NoFallbackFound", "No fallbacks are active on this scaled object", EARLIER),
        paused,
    ]}))
}

fn cases() -> Vec<Case> {
    let paused_now = with_paused(cond("Paused", "True", "ScaledObjectPaused", "ScaledObject is paused", NOW));
    let paused_earlier =
        with_paused(cond("Paused", "True", "ScaledObjectPaused", "ScaledObject is paused", EARLIER));
    let scale_in = json!({"autoscaling.keda.sh/paused-scale-in": "true"});
    let scale_out = json!({"autoscaling.keda.sh/paused-scale-out": "yes"});
    let disabled = json!({"selectPolicy": "Disabled"});
    vec![
        Case::new(
            "paused-scale-in: Paused True, gauge 1, event; HPA kept with scale-down disabled, loop kept",
            object(json!({"metadata": {"annotations": scale_in.clone()}})),
            Check::Found(Some(4)),
            vec![
                Step::PausedMetric { paused: true },
                event("ScaledObjectPaused", "ScaledObject is paused"),
                hpa_with_behavior(scale_in.clone(), json!({"scaleDown": disabled.clone()})),
                write(paused_now.clone()),
                done(),
            ],
            End::Requeue(RESYNC),
        )
        .known(scaling())
        .with_last(OLD_FP, 10),
        Case::new(
            "paused-scale-out with a non-boolean value counts as paused; no second event",
            object(json!({"metadata": {"annotations": scale_out.clone()}})),
            Check::Found(Some(4)),
            vec![
                Step::PausedMetric { paused: true },
                hpa_with_behavior(scale_out.clone(), json!({"scaleUp": disabled.clone()})),
                write(paused_earlier.clone()),
                done(),
            ],
            End::Requeue(RESYNC),
        )
        .known(paused_earlier.clone())
        .with_last(OLD_FP, 10),
        Case::new(
            "paused-scale-in: false is not a pause",
            object(json!({"metadata": {"annotations": {"autoscaling.keda.sh/paused-scale-in": "false"}}})),
            Check::Found(Some(4)),
            vec![
                unpaused(),
                hpa_annotated("keda-hpa-web", json!({"autoscaling.keda.sh/paused-scale-in": "false"})),
                write(scaling()),
                done(),
            ],
            End::Requeue(RESYNC),
        )
        .known(scaling())
        .with_last(OLD_FP, 10),
        Case::new(
            "paused-scale-in removed: Paused False with KEDA's message, gauge 0, Unpaused event",
            object(json!({})),
            Check::Found(Some(4)),
            vec![
                unpaused(),
                event("ScaledObjectUnpaused", "ScaledObject is unpaused"),
                hpa("keda-hpa-web"),
                write(with_paused(cond(
                    "Paused",
                    "False",
                    "ScaledObjectUnpaused",
                    "pause annotation removed for ScaledObject",
                    NOW,
                ))),
                done(),
            ],
            End::Requeue(RESYNC),
        )
        .known(paused_earlier)
        .with_last(OLD_FP, 10),
    ]
}

#[test]
fn paused_directions_table() {
    for case in cases() {
        let (steps, end) = run(&case);
        assert_eq!(end, case.end, "{}: end", case.name);
        assert_eq!(steps.len(), case.steps.len(), "{}: steps {steps:#?}", case.name);
        for (i, (got, want)) in steps.iter().zip(&case.steps).enumerate() {
            assert_eq!(got, want, "{}: step {i}", case.name);
        }
    }
}
