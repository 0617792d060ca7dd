//! The cases of the plan table: one per branch of the reconcile, named for what it shows.

use super::*;

pub(super) fn cases() -> Vec<Case> {
    let deleting = |patch: Value| {
        let mut p = json!({"metadata": {"deletionTimestamp": NOW}});
        merge(&mut p, patch);
        object(p)
    };
    let restore = json!({"advanced": {"restoreToOriginalReplicaCount": true}});
    let bad_count = "annotation autoscaling.keda.sh/paused-replicas: \"three\" is not a replica count (expected a whole number from 0 to 2147483647)";
    // What a first reconcile writes: the target, HPA and triggers as scaling() has them, with
    // every condition set now (Active and Fallback not known before the first tick).
    let new_status = scaling_with(json!({"conditions": [
        cond("Ready", "True", "ScaledObjectReady", READY_MSG, NOW),
        cond("Active", "Unknown", "", "", NOW),
        cond("Fallback", "Unknown", "", "", NOW),
        cond("Paused", "False", "ScaledObjectUnpaused", "ScaledObject is not paused", NOW),
    ]}));
    // A first reconcile: label (and `finalizers`), HPA, status, Ready event, loop started.
    let first_reconcile = |finalizers: &[&str]| -> Vec<Step> {
        let metadata = Step::Metadata {
            finalizers: finalizers.iter().map(|f| (*f).to_owned()).collect(),
            resource_version: Some("7".into()),
        };
        let ready = event("ScaledObjectReady", "ScaledObject is ready for scaling");
        [metadata, unpaused(), hpa("keda-hpa-web"), write(new_status.clone()), ready]
            .into_iter()
            .chain(started())
            .chain([done()])
            .collect()
    };
    let paused_status = |count: Value| {
        scaling_with(json!({"conditions": [
            cond("Ready", "True", "ScaledObjectReady", READY_MSG, EARLIER),
            cond("Active", "False", "ScalerNotActive", "Scaling is not performed because triggers are not active", EARLIER),
            cond("Fallback", "False", "NoFallbackFound", "No fallbacks are active on this scaled object", EARLIER),
            cond("Paused", "True", "ScaledObjectPaused", "ScaledObject is paused", NOW),
        ], "pausedReplicaCount": count}))
    };
    vec![
        Case::new(
            "new object: label patch, HPA, status, Ready event, loop started",
            object(json!({"metadata": {"labels": null}})),
            Check::Found(Some(2)),
            first_reconcile(&[]),
            End::Requeue(RESYNC),
        ),
        Case::new(
            "new object with restoreToOriginalReplicaCount: the finalizer is added with the label",
            object(json!({"metadata": {"labels": null}, "spec": restore.clone()})),
            Check::Found(Some(2)),
            first_reconcile(&["finalizer.keda.sh"]),
            End::Requeue(RESYNC),
        ),
        Case::new(
            "restore turned off: the finalizer is removed, other finalizers kept",
            object(json!({"metadata": {"finalizers": ["finalizer.keda.sh", "example.com/keep"]}})),
            Check::Found(Some(4)),
            vec![
                Step::Metadata { finalizers: vec!["example.com/keep".into()], resource_version: Some("7".into()) },
                unpaused(),
                hpa("keda-hpa-web"),
                write(scaling()),
                done(),
            ],
            End::Requeue(RESYNC),
        )
        .known(scaling()),
        Case::new(
            "unchanged: fast path, only the resync remains",
            object(json!({})),
            Check::NotRead,
            vec![],
            End::Requeue(Duration::from_secs(290)),
        )
        .known(scaling())
        .with_last(FP, 10),
        Case::new(
            "resync due: everything is written again, the loop keeps running",
            object(json!({})),
            Check::Found(Some(4)),
            vec![unpaused(), hpa("keda-hpa-web"), write(scaling()), done()],
            End::Requeue(RESYNC),
        )
        .known(scaling())
        .with_last(FP, 300),
        Case::new(
            "spec changed: the loop restarts, the original replica count is kept",
            object(json!({})),
            Check::Found(Some(4)),
            [unpaused(), hpa("keda-hpa-web"), write(scaling())].into_iter().chain(started()).chain([done()]).collect(),
            End::Requeue(RESYNC),
        )
        .known(scaling())
        .loop_running(Some(OLD_FP), Some(OLD_FP))
        .with_last(OLD_FP, 10),
        Case::new(
            "credentials changed during the check: the stopped loop is started again",
            object(json!({})),
            Check::Found(Some(4)),
            [unpaused(), hpa("keda-hpa-web"), write(scaling())].into_iter().chain(started()).chain([done()]).collect(),
            End::Requeue(RESYNC),
        )
        .known(scaling())
        .loop_running(Some(FP), None),
        Case::new(
            "paused: loop stopped, HPA deleted, Paused condition and event",
            object(json!({"metadata": {"annotations": {"autoscaling.keda.sh/paused": "true"}}})),
            Check::NotRead,
            vec![
                Step::StopLoop,
                Step::DeleteHpa { name: "keda-hpa-web".into() },
                write(paused_status(Value::Null)),
                Step::PausedMetric { paused: true },
                event("ScaledObjectPaused", "ScaledObject is paused"),
            ],
            End::Requeue(RESYNC),
        )
        .known(scaling()),
        Case::new(
            "still paused: no second Paused event",
            object(json!({"metadata": {"annotations": {"autoscaling.keda.sh/paused": "true"}}})),
            Check::NotRead,
            vec![
                Step::StopLoop,
                Step::DeleteHpa { name: "keda-hpa-web".into() },
                write(paused_status(Value::Null)),
                Step::PausedMetric { paused: true },
            ],
            End::Requeue(RESYNC),
        )
        .known(paused_status(Value::Null))
        .loop_running(None, None),
        Case::new(
            "paused with paused-replicas: replicas pinned through /scale, count in status",
            object(json!({"metadata": {"annotations": {"autoscaling.keda.sh/paused-replicas": "3"}}})),
            Check::NotRead,
            vec![
                Step::StopLoop,
                Step::DeleteHpa { name: "keda-hpa-web".into() },
                Step::PinReplicas { replicas: 3 },
                write(paused_status(json!(3))),
                Step::PausedMetric { paused: true },
                event("ScaledObjectPaused", "ScaledObject is paused"),
            ],
            End::Requeue(RESYNC),
        )
        .known(scaling()),
        Case::new(
            "bad pause annotation: nothing scales, check failed in status and event, no retry",
            object(json!({"metadata": {"annotations": {"autoscaling.keda.sh/paused-replicas": "three"}}})),
            Check::NotRead,
            vec![
                Step::StopLoop,
                Step::DeleteHpa { name: "keda-hpa-web".into() },
                write(scaling_with(json!({"conditions": [
                    check_failed(bad_count)[0].clone(),
                    check_failed(bad_count)[1].clone(),
                    cond("Fallback", "False", "NoFallbackFound", "No fallbacks are active on this scaled object", EARLIER),
                    cond("Paused", "False", "ScaledObjectUnpaused", "ScaledObject is not paused", EARLIER),
                ]}))),
                warning("ScaledObjectCheckFailed", bad_count),
            ],
            End::Requeue(RESYNC),
        )
        .known(scaling()),
        Case::new(
            "unpause: Unpaused event before the check, HPA back, loop started",
            object(json!({})),
            Check::Found(Some(3)),
            [
                unpaused(),
                event("ScaledObjectUnpaused", "ScaledObject is unpaused"),
                hpa("keda-hpa-web"),
                write(scaling_with(json!({"conditions": [
                    cond("Ready", "True", "ScaledObjectReady", READY_MSG, EARLIER),
                    cond("Active", "False", "ScalerNotActive", "Scaling is not performed because triggers are not active", EARLIER),
                    cond("Fallback", "False", "NoFallbackFound", "No fallbacks are active on this scaled object", EARLIER),
                    cond("Paused", "False", "ScaledObjectUnpaused", "pause annotation removed for ScaledObject", NOW),
                ]}))),
            ]
            .into_iter()
            .chain(started())
            .chain([done()])
            .collect(),
            End::Requeue(RESYNC),
        )
        .known(paused_status(json!(3)))
        .loop_running(None, None),
        Case::new(
            "fallback configured: a trigger error left by the loop gives way to Ready at reconcile",
            object(json!({"spec": {"fallback": {"failureThreshold": 3, "replicas": 2}}})),
            Check::Found(Some(4)),
            vec![
                unpaused(),
                hpa("keda-hpa-web"),
                write(scaling_with(json!({"conditions": [
                    cond("Ready", "True", "ScaledObjectReady", READY_MSG, NOW),
                    cond("Active", "False", "ScalerNotActive", "Scaling is not performed because triggers are not active", EARLIER),
                    cond("Fallback", "True", "FallbackExists", "At least one trigger is falling back on this scaled object", EARLIER),
                    cond("Paused", "False", "ScaledObjectUnpaused", "ScaledObject is not paused", EARLIER),
                ]}))),
                done(),
            ],
            End::Requeue(RESYNC),
        )
        .known(scaling_with(json!({"conditions": [
            cond("Ready", "Unknown", "TriggerError", "Triggers defined in ScaledObject are not working correctly (fallback configured): s0-cron-UTC-08xxx-018xxx: down", EARLIER),
            cond("Active", "False", "ScalerNotActive", "Scaling is not performed because triggers are not active", EARLIER),
            cond("Fallback", "True", "FallbackExists", "At least one trigger is falling back on this scaled object", EARLIER),
            cond("Paused", "False", "ScaledObjectUnpaused", "ScaledObject is not paused", EARLIER),
        ]}))),
        Case::new(
            "ownership transfer: the named HPA is adopted, the old keda-hpa-web deleted",
            object(json!({"metadata": {"annotations": {"scaledobject.keda.sh/transfer-hpa-ownership": "true"}},
                "spec": {"advanced": {"horizontalPodAutoscalerConfig": {"name": "legacy-hpa"}}}})),
            Check::Found(Some(4)),
            [
                unpaused(),
                hpa_annotated("legacy-hpa", json!({"scaledobject.keda.sh/transfer-hpa-ownership": "true"})),
                Step::DeleteHpa { name: "keda-hpa-web".into() },
                write(scaling_with(json!({"hpaName": "legacy-hpa"}))),
            ]
            .into_iter()
            .chain(started())
            .chain([done()])
            .collect(),
            End::Requeue(RESYNC),
        )
        .known(scaling())
        .loop_running(Some(OLD_FP), Some(OLD_FP)),
        Case::new(
            "ownership transfer at creation: the named HPA is adopted, nothing to delete",
            object(json!({"metadata": {"annotations": {"scaledobject.keda.sh/transfer-hpa-ownership": "true"}},
                "spec": {"advanced": {"horizontalPodAutoscalerConfig": {"name": "legacy-hpa"}}}})),
            Check::Found(Some(2)),
            [
                unpaused(),
                hpa_annotated("legacy-hpa", json!({"scaledobject.keda.sh/transfer-hpa-ownership": "true"})),
                write({
                    let mut s = new_status.clone();
                    s["hpaName"] = json!("legacy-hpa");
                    s
                }),
                event("ScaledObjectReady", "ScaledObject is ready for scaling"),
            ]
            .into_iter()
            .chain(started())
            .chain([done()])
            .collect(),
            End::Requeue(RESYNC),
        ),
        Case::new(
            "invalid spec: loop stopped, check failed in status and event, retried",
            object(json!({})),
            Check::Failed(|| {
                let e = |p: &str| ParseError {
                    location: Location::Trigger { index: 0, type_: "cron".into(), parameter: Some(p.into()) },
                    message: "is required".into(),
                    kind: ParseErrorKind::MissingParameter,
                };
                Error::Parse(vec![e("start"), e("end")])
            }),
            {
                let m = "spec.triggers[0] (cron) metadata.start: is required; spec.triggers[0] (cron) metadata.end: is required";
                vec![
                    unpaused(),
                    Step::StopLoop,
                    write(scaling_with(json!({"conditions": [
                        check_failed(m)[0].clone(),
                        check_failed(m)[1].clone(),
                        cond("Fallback", "False", "NoFallbackFound", "No fallbacks are active on this scaled object", EARLIER),
                        cond("Paused", "False", "ScaledObjectUnpaused", "ScaledObject is not paused", EARLIER),
                    ]}))),
                    warning("ScaledObjectCheckFailed", m),
                ]
            },
            End::CheckError,
        )
        .known(scaling()),
        Case::new(
            "target missing: check failed in status and event, retried",
            object(json!({"metadata": {"labels": null}})),
            Check::Failed(|| {
                Error::TargetNotFound(Box::new(TargetNotFound::Missing {
                    kind: "apps/v1.Deployment".into(),
                    namespace: "shop".into(),
                    name: "web".into(),
                    source: api_error(404),
                }))
            }),
            {
                let m = "scale target not found: apps/v1.Deployment shop/web not found";
                vec![
                    Step::Metadata { finalizers: vec![], resource_version: Some("7".into()) },
                    unpaused(),
                    Step::StopLoop,
                    write(json!({"conditions": [
                        check_failed(m)[0].clone(),
                        check_failed(m)[1].clone(),
                        cond("Fallback", "Unknown", "", "", NOW),
                        cond("Paused", "False", "ScaledObjectUnpaused", "ScaledObject is not paused", NOW),
                    ]})),
                    warning("ScaledObjectCheckFailed", m),
                ]
            },
            End::CheckError,
        ),
        Case::new(
            "API failure during the check: loop and status kept, retried",
            object(json!({})),
            Check::Failed(|| Error::Kube(api_error(503))),
            vec![unpaused()],
            End::CheckError,
        )
        .known(scaling()),
        Case::new(
            "no HPA can be built (object without uid): nothing written after the check",
            object(json!({"metadata": {"uid": null}})),
            Check::Found(Some(2)),
            vec![unpaused()],
            End::InvalidHpa(HpaError::MissingUid("web".into())),
        )
        .known(scaling()),
        Case::new(
            "deletion with restore: original replicas restored, finalizer released",
            deleting(json!({"metadata": {"finalizers": ["finalizer.keda.sh", "example.com/keep"]},
                "spec": restore.clone(), "status": {"originalReplicaCount": 2}})),
            Check::NotRead,
            vec![
                Step::Forget,
                Step::RestoreReplicas { replicas: 2 },
                Step::ReleaseFinalizer { finalizers: vec!["example.com/keep".into()], resource_version: Some("7".into()) },
                event("ScaledObjectDeleted", "ScaledObject was deleted"),
            ],
            End::AwaitChange,
        ),
        Case::new(
            "deletion with restore, the count in the status model (the store keeps no status once modelled)",
            deleting(json!({"metadata": {"finalizers": ["finalizer.keda.sh"]}, "spec": restore.clone()})),
            Check::NotRead,
            vec![
                Step::Forget,
                Step::RestoreReplicas { replicas: 3 },
                Step::ReleaseFinalizer { finalizers: vec![], resource_version: Some("7".into()) },
                event("ScaledObjectDeleted", "ScaledObject was deleted"),
            ],
            End::AwaitChange,
        )
        .known(json!({"originalReplicaCount": 3})),
        Case::new(
            "deletion with restore but no original count recorded: finalizer released",
            deleting(json!({"metadata": {"finalizers": ["finalizer.keda.sh"]}, "spec": restore.clone()})),
            Check::NotRead,
            vec![
                Step::Forget,
                Step::ReleaseFinalizer { finalizers: vec![], resource_version: Some("7".into()) },
                event("ScaledObjectDeleted", "ScaledObject was deleted"),
            ],
            End::AwaitChange,
        ),
        Case::new(
            "deletion with the finalizer but restore off: released, replicas left alone",
            deleting(json!({"metadata": {"finalizers": ["finalizer.keda.sh"]}, "status": {"originalReplicaCount": 2}})),
            Check::NotRead,
            vec![
                Step::Forget,
                Step::ReleaseFinalizer { finalizers: vec![], resource_version: Some("7".into()) },
                event("ScaledObjectDeleted", "ScaledObject was deleted"),
            ],
            End::AwaitChange,
        ),
        Case::new(
            "deletion without finalizer: forgotten, nothing written",
            deleting(json!({"spec": restore, "status": {"originalReplicaCount": 2}})),
            Check::NotRead,
            vec![Step::Forget],
            End::AwaitChange,
        )
        .known(scaling()),
    ]
}
