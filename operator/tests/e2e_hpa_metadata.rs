//! End to end (local control plane by default, upstream Kubernetes with
//! `EBB_E2E_CLUSTER=upstream`): the HPA carries the ScaledObject's labels and annotations as KEDA
//! copies them, and what a later ScaledObject no longer yields — a label newly listed in
//! `scaledobject.keda.sh/hpa-excluded-labels`, a removed annotation — is removed from the HPA by
//! the API server's server-side apply, because the operator's field manager owned it — at once,
//! though only the ScaledObject's metadata changed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::Api;
use serde_json::{Value, json};
use support::*;

const EXCLUDED: &str = "scaledobject.keda.sh/hpa-excluded-labels";

/// `(labels, annotations)` of HPA `keda-hpa-<name>`, `null` for an absent map or HPA.
async fn hpa_metadata(client: &kube::Client, name: &str) -> (Value, Value) {
    let hpas: Api<HorizontalPodAutoscaler> = Api::default_namespaced(client.clone());
    let Some(h) = hpas.get_opt(&format!("keda-hpa-{name}")).await.unwrap() else {
        return (Value::Null, Value::Null);
    };
    (json!(h.metadata.labels), json!(h.metadata.annotations))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hpa_labels_and_annotations_follow_the_scaled_object() {
    let (cluster, client) = start_sandbox().await;
    create_deployment(&client, "meta-a", 0).await;
    let op = start_operator(&client, &[]).await;

    let mut so = scaled_object("meta-a", "meta-a", json!([closed_window()]), json!({}));
    so.metadata.labels =
        serde_json::from_value(json!({"team": "payments", "tanka.dev/environment": "bf50"})).unwrap();
    so.metadata.annotations = serde_json::from_value(json!({"example.com/owner": "team-a"})).unwrap();
    create_so(&client, &so).await;
    let mut got = (Value::Null, Value::Null);
    wait_for("the HPA with the ScaledObject's labels and annotations", Duration::from_secs(10), async || {
        got = hpa_metadata(&client, "meta-a").await;
        got.0["team"] == "payments"
            && got.0["tanka.dev/environment"] == "bf50"
            && got.0["scaledobject.keda.sh/name"] == "meta-a"
            && got.1 == json!({"example.com/owner": "team-a"})
    })
    .await;

    // The label is excluded and the annotation removed, nothing else: a metadata-only change
    // reaches the HPA without waiting for the periodic resync.
    patch_so(
        &client,
        "meta-a",
        json!({"metadata": {"annotations": {EXCLUDED: "tanka.dev/environment", "example.com/owner": null}}}),
    )
    .await;
    wait_for(
        "the excluded label and the removed annotation to leave the HPA",
        Duration::from_secs(10),
        async || {
            got = hpa_metadata(&client, "meta-a").await;
            got.0.get("tanka.dev/environment").is_none()
                && got.0["team"] == "payments"
                && got.0["scaledobject.keda.sh/name"] == "meta-a"
                && got.1 == json!({EXCLUDED: "tanka.dev/environment"})
        },
    )
    .await;

    op.stop().await;
    cluster.stop().await;
}
