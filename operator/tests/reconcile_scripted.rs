//! `reconcile` against a scripted API server (`scripted`): the order of reads, writes and events
//! of each kind of reconcile.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod scripted;

use std::sync::Arc;
use std::time::Duration;

use ebb_api::ScaledObject;
use http::{Request, Response};
use kube::client::Body;
use kube::runtime::controller::Action;
use serde_json::json;

use scripted::*;

#[tokio::test]
async fn a_new_object_is_labelled_checked_given_an_hpa_and_status_then_its_loop_starts() {
    let so = object(json!({}));
    let calls = vec![
        call("PATCH", SO_PATH, &["fieldManager=ebb-operator%2Flabels"]).body(|b| {
            assert_eq!(
                *b,
                json!({"metadata": {"labels": {"scaledobject.keda.sh/name": "web"}, "finalizers": [], "resourceVersion": "7"}})
            );
        }),
        discovery(),
        call("GET", SCALE_PATH, &[]).reply(200, scale(2)),
        call("PATCH", HPA_PATH, &["fieldManager=ebb-operator%2Fhpa", "force=true"]).body(|b| {
            assert_eq!((b["apiVersion"].as_str(), b["kind"].as_str()), (Some("autoscaling/v2"), Some("HorizontalPodAutoscaler")));
            assert_eq!(b["metadata"]["ownerReferences"][0]["uid"], "uid-1");
            assert_eq!((b["spec"]["minReplicas"].as_i64(), b["spec"]["maxReplicas"].as_i64()), (Some(1), Some(5)));
            assert_eq!(b["spec"]["metrics"][0]["external"]["metric"]["name"], "s0-cron-UTC-08xxx-018xxx");
        }),
        call("PATCH", STATUS_PATH, &["fieldManager=ebb-operator%2Fstatus", "force=true"]).body(|b| {
            assert_eq!(b["status"]["hpaName"], "keda-hpa-web");
            assert_eq!(b["status"]["originalReplicaCount"], 2);
            assert_eq!(b["status"]["scaleTargetKind"], "apps/v1.Deployment");
            assert_eq!(condition(b, "Ready")["status"], "True");
            assert_eq!(condition(b, "Paused")["status"], "False");
        }),
        event("ScaledObjectReady", "ScaledObject is ready for scaling", false),
        event("KEDAScalersStarted", "Started scalers watch: cron", false),
    ];
    let (result, _) = reconcile(&so, calls).await;
    assert_eq!(result.unwrap(), Action::requeue(Duration::from_secs(300)));
}

#[tokio::test]
async fn an_unchanged_object_makes_no_request() {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let (ctx, _leader) = context(kube::Client::new(svc, "default"));
    let object = labelled(json!({}));
    let so: ScaledObject = serde_json::from_value(object.clone()).unwrap();
    let server = tokio::spawn(serve(
        handle,
        object,
        vec![
            discovery(),
            call("GET", SCALE_PATH, &[]).reply(200, scale(2)),
            call("PATCH", HPA_PATH, &[]),
            call("PATCH", STATUS_PATH, &[]),
            event("ScaledObjectReady", "ScaledObject is ready for scaling", false),
            event("KEDAScalersStarted", "Started scalers watch: cron", false),
        ],
    ));
    let so = Arc::new(so);
    ebb_operator::reconcile::reconcile(so.clone(), ctx.clone()).await.unwrap();
    let mut handle = server.await.unwrap();
    // The status write comes back as a change of the object: the next reconcile asks nothing.
    let again = ebb_operator::reconcile::reconcile(so, ctx.clone()).await.unwrap();
    assert!(format!("{again:?}").contains("requeue_after: Some("), "the resync remains: {again:?}");
    let extra = tokio::time::timeout(Duration::from_millis(200), handle.next_request()).await;
    assert!(!matches!(extra, Ok(Some(_))), "the fast path made a request");
    ctx.forget("shop", "web");
}

#[tokio::test]
async fn a_pause_with_replicas_deletes_the_hpa_and_pins_the_count() {
    let so = labelled(json!({"metadata": {"annotations": {"autoscaling.keda.sh/paused-replicas": "3"}}}));
    let calls = vec![
        call("DELETE", HPA_PATH, &[]).reply(404, not_found()),
        discovery(),
        call("PATCH", SCALE_PATH, &["fieldManager=ebb-operator%2Fscale"])
            .body(|b| assert_eq!(*b, json!({"spec": {"replicas": 3}})))
            .reply(200, scale(3)),
        call("PATCH", STATUS_PATH, &["fieldManager=ebb-operator%2Fstatus"]).body(|b| {
            assert_eq!(b["status"]["pausedReplicaCount"], 3);
            let paused = condition(b, "Paused");
            assert_eq!(
                (paused["status"].as_str(), paused["reason"].as_str()),
                (Some("True"), Some("ScaledObjectPaused"))
            );
        }),
        event("ScaledObjectPaused", "ScaledObject is paused", false),
    ];
    let (result, _) = reconcile(&so, calls).await;
    assert_eq!(result.unwrap(), Action::requeue(Duration::from_secs(300)));
}

#[tokio::test]
async fn a_missing_target_fails_the_check_in_status_and_event() {
    let message = "scale target not found: apps/v1.Deployment shop/web not found";
    let calls = vec![
        discovery(),
        call("GET", SCALE_PATH, &[]).reply(404, not_found()),
        call("PATCH", STATUS_PATH, &[]).body(move |b| {
            let ready = condition(b, "Ready");
            assert_eq!(
                (ready["status"].as_str(), ready["reason"].as_str(), ready["message"].as_str()),
                (Some("False"), Some("ScaledObjectCheckFailed"), Some(message))
            );
        }),
        event(
            "ScaledObjectCheckFailed",
            "scale target not found: apps/v1.Deployment shop/web not found",
            true,
        ),
    ];
    let (result, _) = reconcile(&labelled(json!({})), calls).await;
    let err = result.unwrap_err();
    assert_eq!(err.to_string(), message);
    assert_eq!(err.reason(), "ScaledObjectCheckFailed");
}

#[tokio::test]
async fn an_api_failure_during_the_check_writes_nothing_and_is_retried() {
    let unavailable = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
        "reason": "ServiceUnavailable", "message": "try again", "code": 503});
    let calls = vec![discovery(), call("GET", SCALE_PATH, &[]).reply(503, unavailable)];
    let (result, _) = reconcile(&labelled(json!({})), calls).await;
    let err = result.unwrap_err();
    assert!(err.is_api_failure(), "{err}");
    assert_eq!(err.reason(), "KubernetesAPIError");
}

#[tokio::test]
async fn a_deletion_with_restore_sets_the_original_replicas_then_releases_the_finalizer() {
    let so = labelled(json!({
        "metadata": {"deletionTimestamp": "2025-01-01T00:00:00Z", "finalizers": ["finalizer.keda.sh"]},
        "spec": {"advanced": {"restoreToOriginalReplicaCount": true}},
        "status": {"originalReplicaCount": 2},
    }));
    let calls = vec![
        discovery(),
        call("PATCH", SCALE_PATH, &["fieldManager=ebb-operator%2Fscale"])
            .body(|b| assert_eq!(*b, json!({"spec": {"replicas": 2}})))
            .reply(200, scale(2)),
        call("PATCH", SO_PATH, &[])
            .body(|b| assert_eq!(*b, json!({"metadata": {"finalizers": [], "resourceVersion": "7"}}))),
        event("ScaledObjectDeleted", "ScaledObject was deleted", false),
    ];
    let (result, _) = reconcile(&so, calls).await;
    assert_eq!(result.unwrap(), Action::await_change());
}
