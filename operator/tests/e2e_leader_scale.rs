//! End to end on the local control plane with a real Prometheus: a replica that loses the Lease
//! in the middle of a poll must not scale afterwards. The leader's loop for `so-a` is waiting on
//! a Prometheus stopped with SIGSTOP (a slow scaler) while another object's reconcile is held by
//! a delayed HPA write; then another identity takes the Lease. Once Prometheus answers, the old
//! leader's poll would decide to activate `dep-a` (its query returns 5, above the activation
//! threshold 0) — but a replica that no longer leads must write nothing: `dep-a` stays at 0 and
//! no `/scale` write of the operator's field manager reaches the API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use ebb_sandbox::faults::{FaultAction, FaultRule};
use ebb_testbackends::prometheus::{Options, Prometheus};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, PostParams};
use serde_json::json;
use support::*;

const LEASE: [&str; 6] = ["--lease-duration", "2s", "--renew-deadline", "1200ms", "--retry-period", "200ms"];

fn scale_writer(d: &Deployment) -> bool {
    d.metadata.managed_fields.iter().flatten().any(|m| m.manager.as_deref() == Some("ebb-operator/scale"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_lost_the_lease_mid_poll_does_not_scale() {
    let (cluster, client) = start_sandbox().await;
    let Some(faults) = cluster.sandbox_for("fault injection").map(|sb| sb.cp.clone()) else {
        return cluster.stop().await;
    };
    let prom =
        tokio::task::spawn_blocking(|| Prometheus::start(&Options::scraping(&[]))).await.unwrap().unwrap();
    create_deployment(&client, "dep-a", 0).await;
    create_deployment(&client, "dep-b", 0).await;
    let leases: Api<Lease> = Api::default_namespaced(client.clone());
    let deps: Api<Deployment> = Api::default_namespaced(client.clone());

    let extra = [&LEASE[..], &["--scaler-timeout", "60s"]].concat();
    let op = start_operator(&client, &extra).await;
    wait_for("a leader", Duration::from_secs(10), async || {
        leases
            .get_opt("ebb-operator")
            .await
            .unwrap()
            .is_some_and(|l| l.spec.and_then(|s| s.holder_identity).is_some_and(|h| !h.is_empty()))
    })
    .await;

    // so-a's polls hang on the stopped Prometheus.
    prom.pause().unwrap();
    let trigger = json!([{"type": "prometheus", "metadata": {"serverAddress": prom.url(), "query": "vector(5)",
        "threshold": "1"}}]);
    create_so(&client, &scaled_object("so-a", "dep-a", trigger, json!({}))).await;
    wait_for("so-a reconciled", Duration::from_secs(10), async || {
        condition(&client, "so-a", "Ready").await.is_some()
    })
    .await;
    // Its first tick (pollingInterval 1 s) has started and waits for Prometheus.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // so-b's reconcile is running, held by a delayed HPA write.
    faults.faults.add(FaultRule {
        method: Some("PATCH".into()),
        path: "/horizontalpodautoscalers/keda-hpa-so-b".into(),
        action: FaultAction::Delay(Duration::from_secs(8)),
        remaining: Some(1),
    });
    create_so(&client, &scaled_object("so-b", "dep-b", json!([closed_window()]), json!({}))).await;
    wait_for("so-b's reconcile to reach its HPA", Duration::from_secs(10), async || {
        get_so(&client, "so-b").await.and_then(|so| so.metadata.labels).is_some_and(|l| !l.is_empty())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Another identity takes the Lease.
    let mut lease = leases.get("ebb-operator").await.unwrap();
    let spec = lease.spec.as_mut().unwrap();
    spec.holder_identity = Some("intruder".into());
    spec.renew_time = Some(MicroTime(k8s_openapi::jiff::Timestamp::now()));
    spec.lease_duration_seconds = Some(600);
    leases.replace("ebb-operator", &PostParams::default(), &lease).await.unwrap();
    // Two renewal attempts of the old leader: it has seen the new holder.
    tokio::time::sleep(Duration::from_millis(600)).await;

    // Prometheus answers the pending poll.
    prom.resume().unwrap();
    holds_for("dep-a at 0, never written by the operator", Duration::from_secs(6), async || {
        let d = deps.get("dep-a").await.unwrap();
        d.spec.as_ref().and_then(|s| s.replicas) == Some(0) && !scale_writer(&d)
    })
    .await;

    op.stop().await;
    drop(prom);
    cluster.stop().await;
}
