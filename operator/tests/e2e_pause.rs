//! End to end on the local control plane: pausing a ScaledObject (`autoscaling.keda.sh/paused`,
//! `autoscaling.keda.sh/paused-replicas`) deletes its HPA, stops its scale loop (replicas stay
//! across a cron window boundary), sets `Paused=True`, records `ScaledObjectPaused` and
//! `keda_scaled_object_paused 1`; unpausing brings the HPA and scaling back. Deleting a
//! ScaledObject removes its HPA (owner reference) and stops its loop, and with
//! `restoreToOriginalReplicaCount` (and only then) a finalizer puts the target back to the
//! replicas it had before ebb.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use chrono::{Timelike, Utc};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::{Api, DeleteParams};
use serde_json::json;
use support::*;

const PAUSED: &str = "autoscaling.keda.sh/paused";
const PAUSED_REPLICAS: &str = "autoscaling.keda.sh/paused-replicas";

async fn hpa_exists(client: &kube::Client, name: &str) -> bool {
    let hpas: Api<HorizontalPodAutoscaler> = Api::default_namespaced(client.clone());
    hpas.get_opt(&format!("keda-hpa-{name}")).await.unwrap().is_some()
}

async fn paused_is(client: &kube::Client, name: &str, status: &str, reason: &str) -> bool {
    condition(client, name, "Paused").await.is_some_and(|(s, r, _)| s == status && r == reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_replicas_across_a_window_boundary_and_unpause_resumes() {
    let (sb, client) = start_sandbox().await;
    create_deployment(&client, "pause-a", 0).await;
    let op = start_operator(&client, &[]).await;

    // Either the window is open now and closes at the next minute boundary, or it is closed now
    // and opens there; both give the loop something to do at the boundary while paused.
    let (trigger, open_now) = loop {
        let now = Utc::now();
        let (m, s) = (now.minute(), now.second());
        if s < 45 {
            break (cron(m, m + 1), true);
        }
        if s < 54 {
            break (cron(m + 1, m + 2), false);
        }
        tokio::time::sleep(Duration::from_secs(u64::from(61 - s))).await;
    };
    let boundary = Instant::now() + Duration::from_secs_f64(secs_to_next_minute());
    create_so(&client, &scaled_object("pause-a", "pause-a", json!([trigger]), json!({}))).await;
    wait_for("the HPA", Duration::from_secs(10), async || hpa_exists(&client, "pause-a").await).await;
    let held = if open_now {
        wait_for("activation 0→1", Duration::from_secs(10), async || {
            replicas(&client, "pause-a").await == 1
        })
        .await;
        1
    } else {
        0
    };

    patch_so(&client, "pause-a", json!({"metadata": {"annotations": {PAUSED: "true"}}})).await;
    wait_for("the HPA to be deleted", Duration::from_secs(10), async || {
        !hpa_exists(&client, "pause-a").await
    })
    .await;
    wait_for("Paused=True", Duration::from_secs(10), async || {
        paused_is(&client, "pause-a", "True", "ScaledObjectPaused").await
    })
    .await;
    assert!(
        Instant::now() + Duration::from_millis(500) < boundary,
        "paused too late: the window boundary is already here"
    );
    wait_for("the ScaledObjectPaused event", Duration::from_secs(10), async || {
        count_events(&client, "pause-a", "ScaledObjectPaused").await == 1
    })
    .await;
    let metrics = op.metrics().await.unwrap();
    assert_eq!(series(&metrics, "keda_scaled_object_paused", "pause-a"), Some(1.0), "{metrics}");
    assert_eq!(replicas(&client, "pause-a").await, held);

    // Through the boundary and well past the 2 s cooldown, nothing scales the target.
    let period = boundary.saturating_duration_since(Instant::now()) + Duration::from_secs(6);
    holds_for("replicas held while paused", period, async || replicas(&client, "pause-a").await == held)
        .await;
    assert!(Instant::now() > boundary + Duration::from_secs(5));
    assert!(paused_is(&client, "pause-a", "True", "ScaledObjectPaused").await);
    assert!(!hpa_exists(&client, "pause-a").await, "no HPA while paused");

    // Unpausing: HPA back, Paused=False, event, and the loop acts on the window's new state.
    patch_so(&client, "pause-a", json!({"metadata": {"annotations": {PAUSED: null}}})).await;
    wait_for("the HPA again", Duration::from_secs(10), async || hpa_exists(&client, "pause-a").await).await;
    wait_for("Paused=False", Duration::from_secs(10), async || {
        paused_is(&client, "pause-a", "False", "ScaledObjectUnpaused").await
    })
    .await;
    wait_for("scaling to resume", Duration::from_secs(10), async || {
        replicas(&client, "pause-a").await == 1 - held
    })
    .await;
    assert_eq!(count_events(&client, "pause-a", "ScaledObjectUnpaused").await, 1);
    let metrics = op.metrics().await.unwrap();
    assert_eq!(series(&metrics, "keda_scaled_object_paused", "pause-a"), Some(0.0), "{metrics}");
    op.stop().await;
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_replicas_pin_the_target_and_unpausing_resumes_scaling() {
    let (sb, client) = start_sandbox().await;
    create_deployment(&client, "pinned", 0).await;
    let op = start_operator(&client, &[]).await;
    create_so(&client, &scaled_object("pinned", "pinned", json!([open_window(2)]), json!({}))).await;
    wait_for("activation 0→1", Duration::from_secs(10), async || replicas(&client, "pinned").await == 1)
        .await;
    assert!(hpa_exists(&client, "pinned").await);

    patch_so(&client, "pinned", json!({"metadata": {"annotations": {PAUSED_REPLICAS: "3"}}})).await;
    wait_for("the target pinned at 3", Duration::from_secs(10), async || {
        replicas(&client, "pinned").await == 3
    })
    .await;
    wait_for("status.pausedReplicaCount 3 and Paused=True", Duration::from_secs(10), async || {
        get_so(&client, "pinned").await.unwrap().status.and_then(|s| s.paused_replica_count) == Some(3)
            && paused_is(&client, "pinned", "True", "ScaledObjectPaused").await
    })
    .await;
    assert!(!hpa_exists(&client, "pinned").await, "no HPA while paused");
    assert_eq!(count_events(&client, "pinned", "ScaledObjectPaused").await, 1);
    let metrics = op.metrics().await.unwrap();
    assert_eq!(series(&metrics, "keda_scaled_object_paused", "pinned"), Some(1.0), "{metrics}");
    // The loop is stopped: a change by hand stays (a running loop would activate 0→1 at once).
    set_replicas(&client, "pinned", 0).await;
    holds_for("a manual scale to 0 while paused", Duration::from_secs(3), async || {
        replicas(&client, "pinned").await == 0
    })
    .await;
    set_replicas(&client, "pinned", 3).await;

    patch_so(&client, "pinned", json!({"metadata": {"annotations": {PAUSED_REPLICAS: null}}})).await;
    wait_for("the HPA again", Duration::from_secs(10), async || hpa_exists(&client, "pinned").await).await;
    wait_for("Paused=False", Duration::from_secs(10), async || {
        paused_is(&client, "pinned", "False", "ScaledObjectUnpaused").await
    })
    .await;
    let (_, _, message) = condition(&client, "pinned", "Paused").await.unwrap();
    assert_eq!(message, "pause annotation removed for ScaledObject");
    // Status is written by server-side apply: a field the operator stops applying is removed
    // by the API server through its record of the field manager's ownership. Where the server
    // keeps no record of status ownership (the local control plane drops it), the stale value
    // stays, so the check needs the record.
    let so = get_so(&client, "pinned").await.unwrap();
    let status_owned = so
        .metadata
        .managed_fields
        .unwrap_or_default()
        .iter()
        .any(|m| m.manager.as_deref() == Some("ebb-operator/status"));
    if status_owned {
        assert_eq!(so.status.unwrap().paused_replica_count, None);
    } else {
        eprintln!(
            "the API server keeps no status ownership: not checking that pausedReplicaCount is cleared"
        );
    }
    wait_for("the ScaledObjectUnpaused event", Duration::from_secs(5), async || {
        count_events(&client, "pinned", "ScaledObjectUnpaused").await == 1
    })
    .await;
    let metrics = op.metrics().await.unwrap();
    assert_eq!(series(&metrics, "keda_scaled_object_paused", "pinned"), Some(0.0), "{metrics}");
    // Active at 3: the HPA's range, the loop leaves it; at 0 the loop activates again.
    assert_eq!(replicas(&client, "pinned").await, 3);
    set_replicas(&client, "pinned", 0).await;
    wait_for("re-activation 0→1 after unpausing", Duration::from_secs(5), async || {
        replicas(&client, "pinned").await == 1
    })
    .await;
    op.stop().await;
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_to_original_replica_count_on_delete() {
    let (sb, client) = start_sandbox().await;
    create_deployment(&client, "restore", 2).await;
    let op = start_operator(&client, &[]).await;
    let so = scaled_object(
        "restore",
        "restore",
        json!([closed_window()]),
        json!({"advanced": {"restoreToOriginalReplicaCount": true}}),
    );
    create_so(&client, &so).await;
    wait_for("the finalizer", Duration::from_secs(10), async || {
        get_so(&client, "restore").await.unwrap().metadata.finalizers.unwrap_or_default()
            == ["finalizer.keda.sh"]
    })
    .await;
    wait_for("status.originalReplicaCount 2", Duration::from_secs(10), async || {
        get_so(&client, "restore").await.unwrap().status.and_then(|s| s.original_replica_count) == Some(2)
    })
    .await;
    // The window is closed: the loop scales 2 → 0 (no cooldown to wait for: never active).
    wait_for("deactivation 2→0", Duration::from_secs(10), async || replicas(&client, "restore").await == 0)
        .await;
    assert!(hpa_exists(&client, "restore").await);

    let sos: Api<ebb_api::ScaledObject> = Api::default_namespaced(client.clone());
    sos.delete("restore", &DeleteParams::default()).await.unwrap();
    wait_for("the ScaledObject to be gone", Duration::from_secs(10), async || {
        get_so(&client, "restore").await.is_none()
    })
    .await;
    assert_eq!(replicas(&client, "restore").await, 2, "back to the replicas before ebb");
    let gone =
        wait_for("the HPA to be gone", gc_limit(), async || !hpa_exists(&client, "restore").await).await;
    eprintln!("HPA collected {gone:?} after the ScaledObject");
    assert_eq!(count_events(&client, "restore", "ScaledObjectDeleted").await, 1);
    // No loop is left to scale the target back to 0.
    holds_for("the restored replicas", Duration::from_secs(3), async || {
        replicas(&client, "restore").await == 2
    })
    .await;
    op.stop().await;
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_removes_the_hpa_and_stops_the_loop() {
    let (sb, client) = start_sandbox().await;
    create_deployment(&client, "plain", 0).await;
    let op = start_operator(&client, &[]).await;
    create_so(&client, &scaled_object("plain", "plain", json!([open_window(2)]), json!({}))).await;
    wait_for("activation 0→1", Duration::from_secs(10), async || replicas(&client, "plain").await == 1).await;
    let so = get_so(&client, "plain").await.unwrap();
    assert_eq!(
        so.metadata.labels.unwrap_or_default().get("scaledobject.keda.sh/name").map(String::as_str),
        Some("plain")
    );
    assert_eq!(
        so.metadata.finalizers.unwrap_or_default(),
        Vec::<String>::new(),
        "no finalizer without restore"
    );
    let hpas: Api<HorizontalPodAutoscaler> = Api::default_namespaced(client.clone());
    let owners = hpas.get("keda-hpa-plain").await.unwrap().metadata.owner_references.unwrap();
    assert_eq!(owners.len(), 1);
    assert_eq!((owners[0].kind.as_str(), owners[0].name.as_str()), ("ScaledObject", "plain"));
    assert_eq!(Some(&owners[0].uid), so.metadata.uid.as_ref());
    assert_eq!(owners[0].controller, Some(true));
    let metrics = op.metrics().await.unwrap();
    assert_eq!(series(&metrics, "keda_scaled_object_paused", "plain"), Some(0.0), "{metrics}");

    let sos: Api<ebb_api::ScaledObject> = Api::default_namespaced(client.clone());
    sos.delete("plain", &DeleteParams::default()).await.unwrap();
    wait_for("the ScaledObject to be gone", Duration::from_secs(5), async || {
        get_so(&client, "plain").await.is_none()
    })
    .await;
    let gone =
        wait_for("the HPA to be collected", gc_limit(), async || !hpa_exists(&client, "plain").await).await;
    eprintln!("HPA collected {gone:?} after the ScaledObject");
    assert_eq!(replicas(&client, "plain").await, 1, "without restore the target keeps its replicas");
    wait_for("the object's series to be dropped", Duration::from_secs(5), async || {
        series(&op.metrics().await.unwrap(), "keda_scaled_object_paused", "plain").is_none()
    })
    .await;
    // The window is still open: a running loop would activate 0→1 within a second.
    set_replicas(&client, "plain", 0).await;
    holds_for("a manual scale to 0 after deletion", Duration::from_secs(4), async || {
        replicas(&client, "plain").await == 0
    })
    .await;
    op.stop().await;
    sb.stop().await;
}
