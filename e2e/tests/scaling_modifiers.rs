//! `advanced.scalingModifiers` on the cluster `EBB_E2E_CLUSTER` selects, with the operator and
//! the metrics-apiserver as the `v1beta1.external.metrics.k8s.io` APIService: KEDA's documented
//! average example (tests/fixtures/scaling-modifiers/average.yaml, two cron triggers whose
//! values the test controls) gets an HPA with the single `composite-metric`, whose value read
//! through the aggregator is the formula on the triggers' values, and which the HPA scales on.
//! The conditional example (conditional.yaml) serves each branch of its ternary on known cron
//! values, and the `fallback.behavior: scalingModifiers` chain (fallback-chain.yaml, prometheus
//! triggers on a real Prometheus whose series the test removes, the last one on a closed port)
//! falls through `best_metric ?? slower_metric ?? metric_backup ?? 8` as its triggers fail. The
//! expected values are computed here by hand, not by ebb's evaluator.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "metrics_apiserver_support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::time::Duration;

use chrono::{Timelike, Utc};
use ebb_testbackends::prometheus::{Exporter, Options, Prometheus};
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
    let Stack { cluster, client, pki: _, operator, server } = start_stack("modifiers").await;

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

/// Cron windows of every trigger of `so` open now for 10 minutes, so each trigger's value is its
/// desiredReplicas throughout the test.
fn open_cron_windows(so: &mut Value) {
    let m = Utc::now().minute();
    for t in so["spec"]["triggers"].as_array_mut().unwrap() {
        t["metadata"]["start"] = json!(format!("{m:02} * * * *"));
        t["metadata"]["end"] = json!(format!("{:02} * * * *", (m + 10) % 60));
    }
}

async fn create(client: &kube::Client, so: Value) {
    let so: ebb_api::ScaledObject = serde_json::from_value(so).unwrap();
    let sos: Api<ebb_api::ScaledObject> = Api::namespaced(client.clone(), NS);
    sos.create(&PostParams::default(), &so).await.unwrap();
}

/// One read of `composite-metric` of ScaledObject `so` through the aggregator: the served
/// quantity, or the error kubectl printed.
async fn served(cluster: &Cluster, so: &str) -> Result<String, String> {
    let (ok, out, err) = kubectl(cluster, &["get", "--raw", &value_path("composite-metric", so)]).await;
    if !ok {
        return Err(err.trim().to_owned());
    }
    let list: Value = serde_json::from_str(&out).map_err(|e| format!("{e}: {out}"))?;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{out}");
    assert_eq!(list["items"][0]["metricName"], "composite-metric", "{out}");
    Ok(list["items"][0]["value"].as_str().unwrap_or_default().to_owned())
}

/// Reads `composite-metric` of `so` until it is `want`; returns what was served meanwhile (values
/// and errors, consecutive repeats collapsed).
async fn wait_served(
    cluster: &Cluster,
    so: &str,
    want: &str,
    limit: Duration,
) -> Vec<Result<String, String>> {
    let mut seen: Vec<Result<String, String>> = Vec::new();
    let found = wait_until(limit, async || {
        let got = served(cluster, so).await;
        let done = got.as_deref() == Ok(want);
        if seen.last() != Some(&got) {
            seen.push(got);
        }
        done
    })
    .await;
    assert!(
        found.is_some(),
        "{so}: composite-metric never served {want}; served meanwhile: {seen:?}\n{}",
        cluster.logs(20)
    );
    seen
}

/// A quantity as the metrics API writes a whole number of replicas' worth (the hand-computed
/// values here are whole numbers).
fn quantity(v: f64) -> String {
    assert_eq!(v.fract(), 0.0);
    format!("{v}")
}

/// The number of consecutive failures recorded for the trigger at `index` (metric `s{index}-…`).
async fn failures(client: &kube::Client, so: &str, index: usize) -> i32 {
    let sos: Api<ebb_api::ScaledObject> = Api::namespaced(client.clone(), NS);
    let status = sos.get(so).await.unwrap().status.unwrap_or_default();
    let prefix = format!("s{index}-");
    status
        .health
        .iter()
        .find(|(k, _)| k.starts_with(&prefix))
        .and_then(|(_, h)| h.number_of_failures)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conditional_and_fallback_chain_examples_serve_their_formulas() {
    // best_metric and slower_metric read series of a real Prometheus; the test removes them to
    // make those triggers fail (an empty result is an error with ignoreNullValues false).
    let exporter =
        Exporter::start("# TYPE ebb_best gauge\nebb_best 6\n# TYPE ebb_slower gauge\nebb_slower 3\n")
            .await
            .unwrap();
    let opts = Options { scrape_interval: Duration::from_secs(1), ..Options::scraping(&[exporter.addr()]) };
    let prom = tokio::task::block_in_place(|| Prometheus::start(&opts)).unwrap();
    let query = format!("{}/api/v1/query?query=ebb_best", prom.url());
    wait_for("Prometheus to have scraped the series", Duration::from_secs(30), async || {
        let body = match reqwest::get(&query).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => return false,
        };
        body.contains("\"ebb_best\"")
    })
    .await;

    let Stack { cluster, client, pki: _, operator, server } = start_stack("modifiers-examples").await;

    // The conditional example `trig_one < 2 ? trig_one+trig_two >= 2 ? 5 : 10 : 0`, once per
    // branch: (1, 3) → 1 < 2 and 4 ≥ 2 → 5; (1, 0) → 1 < 2 but 1 < 2 → 10; (2, 3) → 2 < 2 is
    // false → 0. A trigger reads 0 outside its cron window, so `None` closes trig_two's window.
    let branches = [
        ("modifiers-conditional", "web-conditional", 1, Some(3), "5"),
        ("modifiers-conditional-ten", "web-conditional-ten", 1, None, "10"),
        ("modifiers-conditional-else", "web-conditional-else", 2, Some(3), "0"),
    ];
    for (name, target, one, two, _) in branches {
        create_deployment(&client, target, 1).await;
        let mut so = fixture("conditional.yaml");
        assert_eq!(
            so["spec"]["advanced"]["scalingModifiers"]["formula"],
            "trig_one < 2 ? trig_one+trig_two >= 2 ? 5 : 10 : 0"
        );
        so["metadata"]["namespace"] = json!(NS);
        so["metadata"]["name"] = json!(name);
        so["spec"]["scaleTargetRef"]["name"] = json!(target);
        so["spec"]["pollingInterval"] = json!(1);
        so["spec"]["triggers"][0]["metadata"]["desiredReplicas"] = json!(format!("{one}"));
        so["spec"]["triggers"][1]["metadata"]["desiredReplicas"] = json!(format!("{}", two.unwrap_or(3)));
        open_cron_windows(&mut so);
        if two.is_none() {
            let m = Utc::now().minute();
            let md = &mut so["spec"]["triggers"][1]["metadata"];
            md["start"] = json!(format!("{:02} * * * *", (m + 30) % 60));
            md["end"] = json!(format!("{:02} * * * *", (m + 40) % 60));
        }
        create(&client, so).await;
    }
    for (name, _, one, two, want) in branches {
        assert_eq!(metric_name(&client, name).await, "composite-metric");
        wait_served(&cluster, name, want, Duration::from_secs(30)).await;
        println!("{name}: trig_one={one} trig_two={} → composite-metric {want}", two.unwrap_or(0));
    }

    // The fallback chain. Every trigger is the fixture's with its source made controllable:
    // best_metric and slower_metric on the test's Prometheus, metric_backup on a closed port (it
    // fails from the start, and is nil once past failureThreshold).
    let name = "modifiers-fallback-chain";
    create_deployment(&client, "web-fallback", 1).await;
    let mut so = fixture("fallback-chain.yaml");
    assert_eq!(
        so["spec"]["advanced"]["scalingModifiers"]["formula"],
        "best_metric ?? slower_metric ?? metric_backup ?? 8"
    );
    assert_eq!(so["spec"]["fallback"]["behavior"], "scalingModifiers");
    let threshold = so["spec"]["fallback"]["failureThreshold"].as_i64().unwrap() as i32;
    so["metadata"]["namespace"] = json!(NS);
    so["spec"]["pollingInterval"] = json!(1);
    let closed = format!("http://127.0.0.1:{}", free_port());
    for (i, (server, query)) in
        [(prom.url(), "ebb_best"), (prom.url(), "ebb_slower"), (closed, "ebb_backup")].into_iter().enumerate()
    {
        let md = &mut so["spec"]["triggers"][i]["metadata"];
        md["serverAddress"] = json!(server);
        md["query"] = json!(query);
        md["ignoreNullValues"] = json!("false");
    }
    create(&client, so).await;
    assert_eq!(metric_name(&client, name).await, "composite-metric");

    // All sources but the backup answer: best_metric = 6.
    let seen = wait_served(&cluster, name, &quantity(6.0), Duration::from_secs(60)).await;
    println!("{name}: best_metric=6 slower_metric=3 metric_backup failing → served {seen:?}");
    assert!(!seen.iter().any(|s| s.as_deref() == Ok("8")), "best_metric was nil: {seen:?}");
    assert!(failures(&client, name, 2).await >= threshold, "metric_backup is past the threshold");

    // best_metric fails: an error while its failures are below the threshold, then nil, so the
    // chain serves slower_metric = 3.
    exporter.set("# TYPE ebb_slower gauge\nebb_slower 3\n");
    let seen = wait_served(&cluster, name, &quantity(3.0), Duration::from_secs(60)).await;
    println!("{name}: best_metric failing → served {seen:?}");
    assert!(seen.iter().any(Result::is_err), "no error before the threshold: {seen:?}");
    assert!(!seen.iter().any(|s| s.as_deref() == Ok("8")), "skipped slower_metric: {seen:?}");
    assert!(failures(&client, name, 0).await >= threshold, "best_metric below the threshold yet nil");

    // slower_metric fails too: every trigger is nil and the chain ends on its literal 8 (not
    // fallback.replicas, which apply only when the formula yields nil).
    exporter.set("");
    let seen = wait_served(&cluster, name, &quantity(8.0), Duration::from_secs(60)).await;
    println!("{name}: every trigger failing → served {seen:?}");
    assert!(seen.iter().any(Result::is_err), "no error before the threshold: {seen:?}");
    assert!(failures(&client, name, 1).await >= threshold, "slower_metric below the threshold yet nil");
    // It stays there.
    for _ in 0..5 {
        assert_eq!(served(&cluster, name).await.as_deref(), Ok("8"));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    server.stop().await;
    operator.stop().await;
    cluster.stop().await;
    drop(prom);
}
