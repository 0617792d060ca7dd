//! End to end (local control plane by default, its HPA controller syncing every second; upstream
//! Kubernetes with its kube-controller-manager with `EBB_E2E_CLUSTER=upstream`): the status
//! conditions that follow other actors than the triggers.
//! - `HPAActive` mirrors the HPA's own `ScalingActive` as the HPA controller writes it —
//!   `ScalingDisabled` while the target is at zero, then whatever the controller reports once
//!   the target runs (`ValidMetricFound`, or `FailedGetExternalMetric` where no external metrics
//!   API answers) — while `Ready` stays `True` (the object itself is valid);
//! - `autoscaling.keda.sh/paused-scale-in` sets `Paused=True` and `keda_scaled_object_paused 1`
//!   with the HPA kept; removing it sets `Paused=False` "pause annotation removed for
//!   ScaledObject" and the gauge back to 0.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::Api;
use serde_json::json;
use support::*;

const NAME: &str = "conds-a";

async fn hpa_active_reason(client: &kube::Client) -> Option<(String, String)> {
    condition(client, NAME, "HPAActive").await.map(|(s, r, _)| (s, r))
}

async fn ready(client: &kube::Client) -> Option<(String, String, String)> {
    condition(client, NAME, "Ready").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hpa_active_mirrors_the_hpa_and_scale_in_pause_reports_paused() {
    let (cluster, client) = start_cluster(Duration::from_secs(1)).await;
    create_deployment(&client, NAME, 0).await;
    let op = start_operator(&client, &[]).await;
    // Inactive (a closed window) at zero replicas; an hour of cooldown once it is activated.
    create_so(&client, &scaled_object(NAME, NAME, json!([closed_window()]), json!({"cooldownPeriod": 3600})))
        .await;
    let want_ready = Some((
        "True".to_owned(),
        "ScaledObjectReady".to_owned(),
        "ScaledObject is defined correctly and is ready for scaling".to_owned(),
    ));

    // Target at zero: the HPA controller says ScalingDisabled.
    let disabled = Some(("False".to_owned(), "ScalingDisabled".to_owned()));
    wait_for("HPAActive False ScalingDisabled", Duration::from_secs(30), async || {
        hpa_active_reason(&client).await == disabled
    })
    .await;
    let hpas: Api<HorizontalPodAutoscaler> = Api::default_namespaced(client.clone());
    let hpa = hpas.get(&format!("keda-hpa-{NAME}")).await.unwrap();
    let hpa_cond =
        hpa.status.unwrap().conditions.unwrap().into_iter().find(|c| c.type_ == "ScalingActive").unwrap();
    let (_, _, message) = condition(&client, NAME, "HPAActive").await.unwrap();
    assert_eq!(Some(message), hpa_cond.message, "the HPA's message is copied");
    assert_eq!(ready(&client).await, want_ready);

    // The window opens, ebb activates the target 0 → 1: the HPA controller now asks for the metric, and says so in its own
    // `ScalingActive` (`ValidMetricFound`, or `FailedGetExternalMetric` where no external metrics
    // API answers); HPAActive follows, whatever it says, and Ready does not.
    patch_so(&client, NAME, json!({"spec": {"triggers": [open_window(30)]}})).await;
    let mut seen = None;
    wait_for("HPAActive to follow ScalingActive past ScalingDisabled", Duration::from_secs(30), async || {
        let hpa = hpas.get(&format!("keda-hpa-{NAME}")).await.unwrap();
        let hpa_cond = hpa
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "ScalingActive");
        let Some(c) = hpa_cond else { return false };
        let want = (c.status, c.reason.unwrap_or_default(), c.message.unwrap_or_default());
        seen = condition(&client, NAME, "HPAActive").await;
        want.1 != "ScalingDisabled" && seen.as_ref() == Some(&want)
    })
    .await;
    eprintln!("HPAActive with the target running: {seen:?}");
    assert_eq!(ready(&client).await, want_ready);

    // Scale-in paused: Paused True, gauge 1, the HPA kept.
    patch_so(
        &client,
        NAME,
        json!({"metadata": {"annotations": {"autoscaling.keda.sh/paused-scale-in": "true"}}}),
    )
    .await;
    let paused =
        Some(("True".to_owned(), "ScaledObjectPaused".to_owned(), "ScaledObject is paused".to_owned()));
    wait_for("Paused True", Duration::from_secs(10), async || {
        condition(&client, NAME, "Paused").await == paused
    })
    .await;
    let metrics = op.metrics().await.unwrap();
    assert_eq!(series(&metrics, "keda_scaled_object_paused", NAME), Some(1.0), "{metrics}");
    assert!(hpas.get_opt(&format!("keda-hpa-{NAME}")).await.unwrap().is_some(), "the HPA stays");

    // Removed: Paused False with KEDA's message, gauge 0.
    patch_so(
        &client,
        NAME,
        json!({"metadata": {"annotations": {"autoscaling.keda.sh/paused-scale-in": null}}}),
    )
    .await;
    let unpaused = Some((
        "False".to_owned(),
        "ScaledObjectUnpaused".to_owned(),
        "pause annotation removed for ScaledObject".to_owned(),
    ));
    wait_for("Paused False", Duration::from_secs(10), async || {
        condition(&client, NAME, "Paused").await == unpaused
    })
    .await;
    let metrics = op.metrics().await.unwrap();
    assert_eq!(series(&metrics, "keda_scaled_object_paused", NAME), Some(0.0), "{metrics}");

    op.stop().await;
    cluster.stop().await;
}
