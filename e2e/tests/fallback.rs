//! Fallback end to end, with a real Prometheus as the metric source and the HPA reading through
//! the aggregator and ebb's metrics API server: while the source answers, the HPA follows the
//! metric; when every poll fails, the HPA lands on `fallback.replicas` exactly when the
//! failureThreshold-th failure is counted (not earlier), Fallback=True with an event; when the
//! source recovers, Fallback=False. A failing source never scales a target to zero.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "metrics_apiserver_support/mod.rs"]
mod support;

use std::time::Duration;

use ebb_api::ScaledObject;
use ebb_testbackends::prometheus::{Exporter, Options, Prometheus};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use support::*;

const METRICS: &str = "# TYPE ebb_queue gauge\nebb_queue 10\n# TYPE ebb_keep gauge\nebb_keep 3\n";

async fn create_so(client: &kube::Client, name: &str, spec: serde_json::Value) {
    let so: ScaledObject =
        serde_json::from_value(json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": NS}, "spec": spec}))
        .unwrap();
    Api::<ScaledObject>::namespaced(client.clone(), NS).create(&PostParams::default(), &so).await.unwrap();
}

/// (failures counted for the first metric, Fallback condition status) of ScaledObject `name`.
async fn fallback_state(client: &kube::Client, name: &str) -> (i32, Option<String>) {
    let so = Api::<ScaledObject>::namespaced(client.clone(), NS).get(name).await.unwrap();
    let status = so.status.unwrap_or_default();
    let failures = status.health.values().next().and_then(|h| h.number_of_failures).unwrap_or(0);
    let fallback = status.conditions.iter().find(|c| c.type_ == "Fallback").map(|c| c.status.clone());
    (failures, fallback)
}

async fn event_reasons(client: &kube::Client, name: &str) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(client.clone(), NS);
    let list = events.list(&ListParams::default()).await.unwrap();
    list.items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .filter_map(|e| e.reason)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_source_lands_on_fallback_replicas_at_the_threshold_and_recovers() {
    init_logs();
    let exporter = Exporter::start(METRICS).await.unwrap();
    let opts = Options { scrape_interval: Duration::from_secs(1), ..Options::scraping(&[exporter.addr()]) };
    let prom = tokio::task::block_in_place(|| Prometheus::start(&opts)).unwrap();

    let Stack { cluster, client, pki: _, operator: op, server } = start_stack("fallback").await;

    create_deployment(&client, "worker", 0).await;
    create_deployment(&client, "keeper", 0).await;
    let trigger = |query: &str| {
        json!([{"type": "prometheus", "metadata": {"serverAddress": prom.url(), "query": query,
            "threshold": "5", "ignoreNullValues": "false"}}])
    };
    // worker: 10 / 5 → 2 replicas while healthy; fallback 4 after 3 failures. No downscale
    // stabilization, so recovery is visible at once.
    create_so(&client, "worker", json!({"scaleTargetRef": {"name": "worker"}, "minReplicaCount": 0,
        "maxReplicaCount": 10, "pollingInterval": 1, "cooldownPeriod": 5,
        "fallback": {"failureThreshold": 3, "replicas": 4},
        "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}}},
        "triggers": trigger("ebb_queue")}))
    .await;
    // keeper: active (3 > 0) at 1 replica, no fallback, a short cooldown.
    create_so(
        &client,
        "keeper",
        json!({"scaleTargetRef": {"name": "keeper"}, "minReplicaCount": 0,
        "maxReplicaCount": 3, "pollingInterval": 1, "cooldownPeriod": 2, "triggers": trigger("ebb_keep")}),
    )
    .await;

    wait_for("worker at 2 replicas through the HPA", Duration::from_secs(60), async || {
        replicas(&client, "worker").await == 2
    })
    .await;
    wait_for("keeper at 1 replica", Duration::from_secs(30), async || replicas(&client, "keeper").await == 1)
        .await;
    assert_eq!(fallback_state(&client, "worker").await, (0, Some("False".into())));

    // The source fails on every poll: both series disappear (empty result, ignoreNullValues false).
    exporter.set("");
    let mut seen = Vec::new();
    wait_for("Fallback=True", Duration::from_secs(30), async || {
        let (failures, fallback) = fallback_state(&client, "worker").await;
        let n = replicas(&client, "worker").await;
        seen.push((failures, fallback.clone(), n));
        fallback.as_deref() == Some("True")
    })
    .await;
    seen.dedup();
    println!("while failing, (failures counted, Fallback condition, worker replicas): {seen:?}");
    // Never earlier than the third failure: below it the condition stayed False and the HPA kept 2.
    for (failures, fallback, n) in &seen {
        if *failures < 3 {
            assert_ne!(fallback.as_deref(), Some("True"), "fallback before the threshold: {seen:?}");
            assert_eq!(*n, 2, "replicas changed before the threshold: {seen:?}");
        }
    }
    assert!(seen.iter().any(|(f, _, _)| (1..3).contains(f)), "failures were counted one by one: {seen:?}");
    let (failures, _) = fallback_state(&client, "worker").await;
    assert!(failures >= 3, "Fallback=True with {failures} failures");
    wait_for("the HPA on fallback.replicas = 4", Duration::from_secs(30), async || {
        replicas(&client, "worker").await == 4
    })
    .await;
    assert!(event_reasons(&client, "worker").await.iter().any(|r| r == "ScaledObjectFallbackActivated"));

    // A failing source never scales to zero: keeper stays at 1 well past its cooldown.
    for _ in 0..16 {
        assert_eq!(replicas(&client, "keeper").await, 1, "a failing source scaled keeper to zero");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Recovery.
    exporter.set(METRICS);
    wait_for("Fallback=False after recovery", Duration::from_secs(30), async || {
        fallback_state(&client, "worker").await == (0, Some("False".into()))
    })
    .await;
    assert!(event_reasons(&client, "worker").await.iter().any(|r| r == "ScaledObjectFallbackDeactivated"));
    wait_for("worker back at 2 replicas", Duration::from_secs(30), async || {
        replicas(&client, "worker").await == 2
    })
    .await;

    server.stop().await;
    op.stop().await;
    cluster.stop().await;
}
