//! End to end (local control plane by default): a real external scaler
//! (`ebb_testbackends::external_scaler`, gRPC on 127.0.0.1) behind an `external-push` trigger
//! with `pollingInterval: 60`. A push on its `StreamIsActive` stream scales the Deployment 0→1
//! within seconds, long before the next poll. The HPA's metric is named from the scaler's
//! `GetMetricSpec` as KEDA names it (`s0-<metricName>`, its target size as AverageValue); a
//! scaler unreachable at reconcile fails the check (Ready=False naming the trigger and the
//! address, no HPA) until it answers. The ignored `push_vs_poll_latency` measures the
//! time from the push to the Deployment's replicas changing (seen by a watch), median and p99
//! over 50 trials, next to the same setup with `external` polled every second.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use ebb_testbackends::external_scaler::ExternalScaler;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::Api;
use kube::runtime::watcher;
use serde_json::json;
use support::*;
use tokio::sync::watch;

fn trigger(type_: &str, srv: &ExternalScaler) -> serde_json::Value {
    json!([{"type": type_, "metadata": {"scalerAddress": srv.address(), "queueName": "jobs"}}])
}

/// `(instant seen, spec.replicas)` of Deployment `name`, from a watch.
fn watch_replicas(client: &kube::Client, name: &str) -> watch::Receiver<(Instant, i32)> {
    let (tx, rx) = watch::channel((Instant::now(), -1));
    let deps: Api<Deployment> = Api::default_namespaced(client.clone());
    let name = name.to_owned();
    tokio::spawn(async move {
        let mut s = std::pin::pin!(watcher(deps, watcher::Config::default()));
        while let Some(ev) = s.next().await {
            let (watcher::Event::Apply(d) | watcher::Event::InitApply(d)) = (match ev {
                Ok(e) => e,
                Err(_) => continue,
            }) else {
                continue;
            };
            if d.metadata.name.as_deref() == Some(name.as_str()) {
                let n = d.spec.and_then(|s| s.replicas).unwrap_or(0);
                tx.send_if_modified(|cur| {
                    let changed = cur.1 != n;
                    if changed {
                        *cur = (Instant::now(), n);
                    }
                    changed
                });
            }
        }
    });
    rx
}

/// Waits until the watched replicas are `n`; the instant the watch saw it.
async fn seen(rx: &mut watch::Receiver<(Instant, i32)>, n: i32, limit: Duration) -> Instant {
    let r = tokio::time::timeout(limit, rx.wait_for(|(_, r)| *r == n)).await;
    r.expect("timed out waiting for the replicas").unwrap().0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_scales_from_zero_before_the_next_poll() {
    let (cluster, client) = start_sandbox().await;
    let srv = ExternalScaler::start(None).await.unwrap();
    srv.set_value(0.0, false);
    create_deployment(&client, "push-a", 0).await;
    let mut replicas = watch_replicas(&client, "push-a");
    let op = start_operator(&client, &[]).await;
    let so =
        scaled_object("push-a", "push-a", trigger("external-push", &srv), json!({"pollingInterval": 60}));
    create_so(&client, &so).await;
    wait_for("the push stream", Duration::from_secs(10), async || srv.state().streams_opened >= 1).await;
    let r = srv.state().last_ref.unwrap();
    assert_eq!(r.name, "push-a");
    assert_eq!(r.scaler_metadata.get("queueName").map(String::as_str), Some("jobs"));

    srv.set_value(5.0, false);
    let (pushed, receivers) = srv.push(true);
    assert_eq!(receivers, 1);
    let at = seen(&mut replicas, 1, Duration::from_secs(10)).await;
    let latency = at.duration_since(pushed);
    assert!(latency < Duration::from_secs(5), "push → /scale took {latency:?}");

    // Named as KEDA names it: `s<index>-<GetMetricSpec's metricName>`, its target size (10).
    let metric = get_so(&client, "push-a").await.unwrap().status.unwrap().external_metric_names;
    assert_eq!(metric, ["s0-queue"]);
    assert_eq!(hpa_metric(&client, "push-a").await, Some(("s0-queue".to_owned(), Quantity("10".into()))));
    op.stop().await;
    cluster.stop().await;
}

/// The external metric of the object's HPA: its name and AverageValue target.
async fn hpa_metric(client: &kube::Client, so: &str) -> Option<(String, Quantity)> {
    let hpas: Api<HorizontalPodAutoscaler> = Api::default_namespaced(client.clone());
    let hpa = hpas.get_opt(&format!("keda-hpa-{so}")).await.unwrap()?;
    let ext = hpa.spec?.metrics?.into_iter().find_map(|m| m.external)?;
    Some((ext.metric.name, ext.target.average_value?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_scaler_fails_the_check_until_it_answers() {
    let (cluster, client) = start_sandbox().await;
    let srv = ExternalScaler::start(None).await.unwrap();
    let at = srv.addr;
    drop(srv);
    create_deployment(&client, "ext-down", 0).await;
    let op = start_operator(&client, &[]).await;
    let triggers = json!([{"type": "external", "metadata": {"scalerAddress": at.to_string()}}]);
    create_so(&client, &scaled_object("ext-down", "ext-down", triggers, json!({"pollingInterval": 1}))).await;
    wait_for("Ready=False naming the trigger and the scaler", Duration::from_secs(30), async || {
        condition(&client, "ext-down", "Ready").await.is_some_and(|(s, r, m)| {
            s == "False"
                && r == "ScaledObjectCheckFailed"
                && m.contains("spec.triggers[0] (external)")
                && m.contains(&at.to_string())
        })
    })
    .await;
    // No HPA with a made-up metric name.
    assert_eq!(hpa_metric(&client, "ext-down").await, None);

    // The scaler comes up on the same address: the retried reconcile names the metric from it.
    let srv = ExternalScaler::start_on(at, None).await.unwrap();
    srv.set(|s| {
        s.specs = vec![ebb_testbackends::external_scaler::MetricSpec {
            metric_name: "backlog".into(),
            target_size: 0,
            target_size_float: 2.5,
        }]
    });
    wait_for("the HPA", Duration::from_secs(90), async || hpa_metric(&client, "ext-down").await.is_some())
        .await;
    assert_eq!(
        hpa_metric(&client, "ext-down").await,
        Some(("s0-backlog".to_owned(), Quantity("2500m".into())))
    );
    wait_for("Ready=True", Duration::from_secs(30), async || {
        condition(&client, "ext-down", "Ready").await.is_some_and(|(s, _, _)| s == "True")
    })
    .await;
    let st = get_so(&client, "ext-down").await.unwrap().status.unwrap();
    assert_eq!(st.external_metric_names, ["s0-backlog"]);
    wait_for("the loop's health entry", Duration::from_secs(30), async || {
        get_so(&client, "ext-down").await.unwrap().status.unwrap().health.contains_key("s0-backlog")
    })
    .await;

    // The scaler goes away and the spec changes (a full reconcile, which asks GetMetricSpec
    // again): the last good answer is kept, so the metric is neither renamed nor removed.
    drop(srv);
    patch_so(&client, "ext-down", json!({"spec": {"pollingInterval": 2}})).await;
    // (Ready may turn False `TriggerError` from the loop's failing polls, not from the check.)
    holds_for("the check passing and the HPA metric", Duration::from_secs(6), async || {
        let ready = condition(&client, "ext-down", "Ready").await;
        let st = get_so(&client, "ext-down").await.unwrap().status.unwrap();
        ready.is_some_and(|(_, r, _)| r != "ScaledObjectCheckFailed")
            && st.external_metric_names == ["s0-backlog"]
            && hpa_metric(&client, "ext-down").await.is_some_and(|(n, _)| n == "s0-backlog")
    })
    .await;
    op.stop().await;
    cluster.stop().await;
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn trials(client: &kube::Client, type_: &str, n: usize) -> Vec<Duration> {
    let srv = ExternalScaler::start(None).await.unwrap();
    srv.set_value(5.0, false);
    let name = format!("lat-{type_}");
    create_deployment(client, &name, 0).await;
    let mut replicas = watch_replicas(client, &name);
    let interval = if type_ == "external-push" { 60 } else { 1 };
    let so = scaled_object(
        &name,
        &name,
        trigger(type_, &srv),
        json!({"pollingInterval": interval, "cooldownPeriod": 3600}),
    );
    create_so(client, &so).await;
    if type_ == "external-push" {
        wait_for("the push stream", Duration::from_secs(10), async || srv.state().streams_opened >= 1).await;
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        // Inactive, and the Deployment back at 0 once no tick can still act on the old answer.
        srv.push(false);
        tokio::time::sleep(Duration::from_millis(if interval == 1 { 1200 } else { 300 })).await;
        set_replicas(client, &name, 0).await;
        seen(&mut replicas, 0, Duration::from_secs(10)).await;
        // Spread the pushes over the polling phase.
        tokio::time::sleep(Duration::from_millis(100 + (i as u64 * 37) % 500)).await;
        let (pushed, _) = srv.push(true);
        let at = seen(&mut replicas, 1, Duration::from_secs(10)).await;
        out.push(at.duration_since(pushed));
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture (bench/external-push/run.sh)"]
async fn push_vs_poll_latency() {
    let (cluster, client) = start_sandbox().await;
    let op = start_operator(&client, &[]).await;
    let n = std::env::var("EBB_BENCH_TRIALS").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    for type_ in ["external-push", "external"] {
        let d = trials(&client, type_, n).await;
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        support::skipped(&format!(
            "{type_:>13} ({}): push → /scale seen, {n} trials: median {:.1} ms, p99 {:.1} ms, min {:.1} ms, max {:.1} ms",
            if type_ == "external" { "pollingInterval 1 s" } else { "pollingInterval 60 s" },
            ms(percentile(&d, 0.5)),
            ms(percentile(&d, 0.99)),
            ms(d[0]),
            ms(d[d.len() - 1]),
        ));
    }
    op.stop().await;
    cluster.stop().await;
}
