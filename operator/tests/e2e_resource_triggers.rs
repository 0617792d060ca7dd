//! End to end (local control plane by default, upstream Kubernetes with
//! `EBB_E2E_CLUSTER=upstream`): a Deployment whose container requests cpu, scaled by a `cpu`
//! trigger beside a `cron` one. The HPA read back from the API server carries the cpu trigger
//! as a `Resource` metric with KEDA's `Utilization` target and the cron trigger as an External
//! metric, in KEDA's order (by type: `External` before `Resource`); the status lists `cpu` in
//! `resourceMetricNames` and only the cron metric in `externalMetricNames` (the HPA measures
//! cpu, ebb never polls it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_trigger_becomes_a_resource_metric_of_the_hpa() {
    let (cluster, client) = start_sandbox().await;
    let deps: Api<Deployment> = Api::default_namespaced(client.clone());
    let dep: Deployment = serde_json::from_value(json!({"metadata": {"name": "res-a", "labels": {"app": "res-a"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "res-a"}},
            "template": {"metadata": {"labels": {"app": "res-a"}}, "spec": {"containers": [
                {"name": "app", "image": "x", "resources": {"requests": {"cpu": "500m", "memory": "128Mi"}}}]}}}}))
    .unwrap();
    deps.create(&PostParams::default(), &dep).await.unwrap();
    let op = start_operator(&client, &[]).await;

    let cron = closed_window();
    let cpu = json!({"type": "cpu", "metricType": "Utilization", "metadata": {"value": "50"}});
    let so = scaled_object("res-a", "res-a", json!([cpu, cron]), json!({"minReplicaCount": 1}));
    create_so(&client, &so).await;

    let hpas: Api<HorizontalPodAutoscaler> = Api::default_namespaced(client.clone());
    let mut metrics = Value::Null;
    wait_for("the HPA of res-a", Duration::from_secs(10), async || {
        metrics = hpas
            .get_opt("keda-hpa-res-a")
            .await
            .unwrap()
            .map_or(Value::Null, |h| json!(h.spec.unwrap().metrics));
        metrics.is_array()
    })
    .await;
    let start = cron["metadata"]["start"].as_str().unwrap().split(' ').next().unwrap().to_owned();
    let end = cron["metadata"]["end"].as_str().unwrap().split(' ').next().unwrap().to_owned();
    let cron_metric = format!("s1-cron-UTC-{start}xxxx-{end}xxxx");
    assert_eq!(
        metrics,
        json!([
            {"type": "External", "external": {
                "metric": {"name": cron_metric, "selector": {"matchLabels": {"scaledobject.keda.sh/name": "res-a"}}},
                "target": {"type": "AverageValue", "averageValue": "1"}}},
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
        ])
    );

    let mut status = Value::Null;
    wait_for("resourceMetricNames in the status", Duration::from_secs(10), async || {
        status = json!(get_so(&client, "res-a").await.and_then(|s| s.status));
        status["resourceMetricNames"] == json!(["cpu"])
    })
    .await;
    assert_eq!(status["externalMetricNames"], json!([cron_metric]));

    op.stop().await;
    cluster.stop().await;
}
