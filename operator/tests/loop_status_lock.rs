//! The scale loop against the local control plane with its API writes stalled by fault
//! injection. A live value query (what the internal endpoint answers the metrics API server
//! with, `values::LoopValues`) must not wait for the loop's writes: while the loop's `/scale`
//! write hangs, the query for the object's metric answers at once. A `/scale` or status write
//! that outlasts the write timeout is abandoned, counted in `ebb_scale_write_failures_total` /
//! `ebb_status_write_failures_total` with `reason="timeout"`, and made again by the next poll.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ebb_api::ScaledObject;
use ebb_operator::internal::ValueSource;
use ebb_sandbox::faults::{FaultAction, FaultRule};
use kube::Api;
use kube::runtime::events::Reporter;
use prometheus_client::registry::Registry;
use serde_json::json;
use support::*;

fn delay(method: &str, path: &str, d: Duration) -> FaultRule {
    FaultRule {
        method: Some(method.into()),
        path: path.into(),
        action: FaultAction::Delay(d),
        remaining: Some(1),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_queries_do_not_wait_for_stalled_writes() {
    let (cluster, client) = start_sandbox().await;
    let Some(cp) = cluster.sandbox_for("fault injection").map(|sb| sb.cp.clone()) else {
        return cluster.stop().await;
    };
    let mut registry = Registry::default();
    let (leader_tx, leader_rx) = tokio::sync::watch::channel(true);
    let args = <ebb_operator::Args as clap::Parser>::try_parse_from([
        "ebb-operator",
        "--operator-namespace",
        "default",
        "--write-timeout",
        "2s",
    ])
    .unwrap();
    let metrics = ebb_operator::metrics::Metrics::register(&mut registry);
    let reporter = Reporter { controller: "test".into(), instance: None };
    let leadership = ebb_operator::leader::Leadership::new(leader_rx.clone());
    let ctx = Arc::new(ebb_operator::context(&args, client.clone(), metrics, reporter, leadership).unwrap());
    create_deployment(&client, "dep", 0).await;
    create_so(&client, &scaled_object("so", "dep", json!([open_window(3)]), json!({}))).await;
    // The loop's activation write (0 → 1) hangs for 8 s at the API server.
    cp.faults.add(delay("PATCH", "/deployments/dep/scale", Duration::from_secs(8)));

    let sos: Api<ScaledObject> = Api::default_namespaced(client.clone());
    let so = sos.get("so").await.unwrap();
    ebb_operator::reconcile::reconcile(Arc::new(so), ctx.clone()).await.unwrap();
    let state = ctx.object("default", "so");
    let shared = state.scale_loop.lock().await.as_ref().unwrap().shared.clone();
    let metric = shared.triggers[0].0.metric_name.clone();
    wait_for("the first poll", Duration::from_secs(5), async || shared.cached(&metric).is_some()).await;
    // The poll is now inside its /scale write.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(replicas(&client, "dep").await, 0, "the write is still held");

    let source = ebb_operator::values::LoopValues::new(&ctx, leader_rx.clone());
    let asked = Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(2), source.value("default", "so", &metric)).await;
    let took = asked.elapsed();
    let value =
        answer.unwrap_or_else(|_| panic!("the live query waited for the stalled /scale write ({took:?})"));
    assert_eq!(value.unwrap().value, 1.0, "the cron trigger's value while its window is open");
    assert!(took < Duration::from_secs(1), "the live query took {took:?}");

    // The stalled write is abandoned after the write timeout (2 s), counted, and made again by
    // the next poll; the status write after it hangs past the timeout too and is retried the
    // same way.
    cp.faults.add(delay("PATCH", "/scaledobjects/so/status", Duration::from_secs(4)));
    wait_for("dep scaled to 1", Duration::from_secs(15), async || replicas(&client, "dep").await == 1).await;
    let text = || {
        let mut s = String::new();
        prometheus_client::encoding::text::encode(&mut s, &registry).unwrap();
        s
    };
    wait_for("a status write failure counted", Duration::from_secs(10), async || {
        text().contains("ebb_status_write_failures_total{reason=\"timeout\"} 1")
    })
    .await;
    assert!(text().contains("ebb_scale_write_failures_total{reason=\"timeout\"} 1"), "{}", text());
    wait_for("Active=True written by a later poll", Duration::from_secs(10), async || {
        condition(&client, "so", "Active").await.is_some_and(|(s, _, _)| s == "True")
    })
    .await;

    drop(leader_tx);
    if let Some(l) = state.scale_loop.lock().await.take() {
        drop(l);
    }
    cluster.stop().await;
}
