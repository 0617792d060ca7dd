//! End to end on the local control plane: the leader keeps its Lease while the API client the
//! controller uses has no tokens left. The built `ebb-operator` binary runs with `--kube-api-qps 1
//! --kube-api-burst 1` and twenty ScaledObjects waiting to be reconciled, so about a hundred
//! requests queue behind the token bucket for minutes. Lease renewals must not wait in that
//! queue: by Kubernetes' Lease semantics the Lease stays valid only until `renewTime +
//! leaseDurationSeconds`, and a leader whose renewals queue behind its own traffic would let it
//! expire (and step down after the renew deadline), letting another replica take over while its
//! queued writes are still to be sent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use ebb_api::ScaledObject;
use ebb_plumbing::testing::ServerProcess;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde_json::json;
use support::*;

const OBJECTS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_is_renewed_on_time_while_the_api_budget_is_exhausted() {
    let (cluster, client) = start_sandbox().await;
    let Some(kc) =
        cluster.sandbox_for("the operator's client from a kubeconfig file").map(|sb| sb.kubeconfig())
    else {
        return cluster.stop().await;
    };
    let kubeconfig = std::env::temp_dir().join(format!("ebb-lease-kc-{}", std::process::id()));
    ebb_sandbox::kubeconfig::write_kubeconfig(&kubeconfig, &kc).unwrap();

    for i in 0..OBJECTS {
        let so = scaled_object(&format!("so-{i}"), &format!("dep-{i}"), json!([closed_window()]), json!({}));
        create_deployment(&client, &format!("dep-{i}"), 0).await;
        create_so(&client, &so).await;
    }
    // EBB_OPERATOR_BIN: another build of the program (e.g. an earlier one, to compare).
    let bin = std::env::var("EBB_OPERATOR_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_ebb-operator").into());
    let mut command = std::process::Command::new(bin);
    command.env_remove("RUST_LOG").env("KUBECONFIG", &kubeconfig).args([
        "--log-format",
        "json",
        "--admin-addr",
        "127.0.0.1:0",
        "--operator-namespace",
        "default",
        "--kube-api-qps",
        "1",
        "--kube-api-burst",
        "1",
        "--lease-duration",
        "2s",
        "--renew-deadline",
        "1200ms",
        "--retry-period",
        "200ms",
    ]);
    let operator = ServerProcess::start(command).unwrap();

    let leases: Api<Lease> = Api::default_namespaced(client.clone());
    wait_for("a leader", Duration::from_secs(10), async || {
        leases.get_opt("ebb-operator").await.unwrap().is_some()
    })
    .await;
    let holder = |l: &Lease| l.spec.as_ref().and_then(|s| s.holder_identity.clone()).unwrap_or_default();
    let first = leases.get("ebb-operator").await.unwrap();
    let leader = holder(&first);
    assert!(!leader.is_empty());

    // Sample the Lease for 8 s (four lease durations): always held by the first leader and
    // valid at the moment it is read.
    let started = Instant::now();
    let mut renewals = std::collections::BTreeSet::new();
    let mut worst = Duration::ZERO;
    while started.elapsed() < Duration::from_secs(8) {
        let lease = leases.get("ebb-operator").await.unwrap();
        let spec = lease.spec.clone().unwrap();
        assert_eq!(holder(&lease), leader, "the Lease changed hands after {:?}", started.elapsed());
        let renewed = spec.renew_time.unwrap().0;
        let age = k8s_openapi::jiff::Timestamp::now().duration_since(renewed);
        let age = Duration::try_from(age).unwrap_or_default();
        worst = worst.max(age);
        renewals.insert(renewed);
        let valid_for = Duration::from_secs(u64::try_from(spec.lease_duration_seconds.unwrap()).unwrap());
        assert!(
            age < valid_for,
            "after {:?} the Lease was last renewed {age:?} ago: expired (lease duration {valid_for:?})",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The budget really was exhausted: most objects are still waiting for their reconcile.
    let sos: Api<ScaledObject> = Api::default_namespaced(client.clone());
    let reconciled =
        sos.list(&Default::default()).await.unwrap().items.iter().filter(|s| s.status.is_some()).count();
    assert!(reconciled < OBJECTS / 2, "{reconciled} of {OBJECTS} reconciled: the client was not throttled");
    assert!(renewals.len() >= 10, "only {} renewals seen in 8 s", renewals.len());
    eprintln!(
        "{} renewals in 8 s, oldest renewal seen {worst:?}, {reconciled} objects reconciled",
        renewals.len()
    );

    drop(operator);
    let _ = std::fs::remove_file(&kubeconfig);
    cluster.stop().await;
}
