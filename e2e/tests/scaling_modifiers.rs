//! `advanced.scalingModifiers` on the cluster `EBB_E2E_CLUSTER` selects, with the operator and
//! the metrics-apiserver as the `v1beta1.external.metrics.k8s.io` APIService: KEDA's documented
//! average example (tests/fixtures/scaling-modifiers/average.yaml, two cron triggers whose
//! values the test controls) gets an HPA with the single `composite-metric`, whose value read
//! through the aggregator is the formula on the triggers' values, and which the HPA scales on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "metrics_apiserver_support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::time::Duration;

use chrono::{Timelike, Utc};
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use support::*;

fn fixture(name: &str) -> Value {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/scaling-modifiers").join(name);
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_composite_metric_is_the_formula_through_the_aggregator() {
    let (cluster, client) = start_cluster(Duration::from_secs(1)).await;
    let pki = Pki::new(&cluster, "modifiers");
    let port = free_port();
    let operator = start_operator(&client, &pki, port);
    let server = start_metrics_apiserver(&client, &pki, port, &[]).await;
    register(&cluster, &server).await;
    wait_for("the metrics-apiserver to be ready", Duration::from_secs(10), async || {
        server.admin_get("/readyz").await.0 == 200
    })
    .await;

    // The documentation's example; both cron windows open now for 10 minutes, so trig_one is 4
    // and trig_two is 7 throughout.
    create_deployment(&client, "web", 1).await;
    let mut so = fixture("average.yaml");
    so["metadata"]["namespace"] = json!(NS);
    let m = Utc::now().minute();
    for t in so["spec"]["triggers"].as_array_mut().unwrap() {
        t["metadata"]["start"] = json!(format!("{m:02} * * * *"));
        t["metadata"]["end"] = json!(format!("{:02} * * * *", (m + 10) % 60));
    }
    let name = so["metadata"]["name"].as_str().unwrap().to_owned();
    let so: ebb_api::ScaledObject = serde_json::from_value(so).unwrap();
    let sos: Api<ebb_api::ScaledObject> = Api::namespaced(client.clone(), NS);
    sos.create(&PostParams::default(), &so).await.unwrap();

    // One External metric, KEDA's composite, with the modifiers' target.
    let metric = metric_name(&client, &name).await;
    assert_eq!(metric, "composite-metric");
    let hpas: Api<k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler> =
        Api::namespaced(client.clone(), NS);
    let hpa = hpas.get(&format!("keda-hpa-{name}")).await.unwrap();
    let metrics = serde_json::to_value(hpa.spec.unwrap().metrics.unwrap()).unwrap();
    assert_eq!(
        metrics,
        json!([{"type": "External", "external": {
            "metric": {"name": "composite-metric",
                "selector": {"matchLabels": {"scaledobject.keda.sh/name": name}}},
            "target": {"type": "AverageValue", "averageValue": "2"}}}])
    );
    let mut status = None;
    wait_for("status.compositeScalerName", Duration::from_secs(20), async || {
        status = sos.get(&name).await.unwrap().status;
        status.as_ref().is_some_and(|s| s.composite_scaler_name.is_some())
    })
    .await;
    let status = status.unwrap();
    assert_eq!(status.composite_scaler_name.as_deref(), Some("composite-metric"));
    assert_eq!(status.external_metric_names.len(), 2, "{:?}", status.external_metric_names);

    // (4 + 7) / 2 = 5.5, served as 5500m through the aggregator.
    let path = value_path(&metric, &name);
    let mut out = String::new();
    wait_for("the composite value through the aggregator", Duration::from_secs(30), async || {
        let (ok, o, _) = kubectl(&cluster, &["get", "--raw", &path]).await;
        out = o;
        ok
    })
    .await;
    println!("$ kubectl get --raw \"{path}\"\n{out}");
    let list: Value = serde_json::from_str(&out).unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{out}");
    assert_eq!(items[0]["metricName"], "composite-metric");
    assert_eq!(items[0]["value"], "5500m");

    // The HPA scales on it: ceil(5.5 / 2) = 3 replicas.
    if wait_until(Duration::from_secs(60), async || replicas(&client, "web").await == 3).await.is_none() {
        panic!(
            "the HPA did not scale web to 3; its state: {}\n{}",
            hpa_state(&client, &name).await,
            cluster.logs(20)
        );
    }

    server.stop().await;
    operator.stop().await;
    cluster.stop().await;
}
