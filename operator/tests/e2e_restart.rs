//! Real faults on upstream Kubernetes (`EBB_E2E_CLUSTER=upstream`; skipped elsewhere, saying
//! so): kube-apiserver crashes (SIGKILL) while the operator runs and comes back after several
//! seconds on the same port and etcd. The operator must ride it out: keep running, step down
//! if its Lease cannot be renewed in time, lead again once the API answers, and act on a change
//! made after the restart within a few polls.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_rides_out_an_api_server_restart() {
    let Some((mut up, cluster, client)) = start_own_upstream("restarting kube-apiserver").await else {
        return;
    };
    create_deployment(&client, "web", 0).await;
    let op = start_operator(&client, &[]).await;
    create_so(&client, &scaled_object("web", "web", json!([open_window(3)]), json!({}))).await;
    wait_for("activation 0→1", Duration::from_secs(15), async || replicas(&client, "web").await == 1).await;

    let outage = Duration::from_secs(6);
    let stopped = Instant::now();
    tokio::task::block_in_place(|| up.kill_apiserver());
    assert!(client.apiserver_version().await.is_err(), "kube-apiserver is down");
    tokio::time::sleep(outage.saturating_sub(stopped.elapsed())).await;
    tokio::task::block_in_place(|| up.start_apiserver()).unwrap();
    let down_for = stopped.elapsed();
    assert!(!op.task.is_finished(), "the operator exited during the outage");

    // A change made after the restart is acted on: the window closes, the target goes to 0
    // after the 2 s cooldown. The ScaledObject watch reconnects with kube-runtime's default
    // backoff (0.8 s doubling to 30 s, as client-go's reflectors), so after a crash of several
    // seconds this has taken about 30 s.
    patch_so(&client, "web", json!({"spec": {"triggers": [closed_window()]}})).await;
    let took = wait_for("deactivation 1→0 after the restart", Duration::from_secs(60), async || {
        replicas(&client, "web").await == 0
    })
    .await;
    let ready = condition(&client, "web", "Ready").await.unwrap();
    assert_eq!(ready.0, "True", "{ready:?}");
    let metrics = op.metrics().await.unwrap();
    assert_eq!(series(&metrics, "keda_scaled_object_paused", "web"), Some(0.0), "{metrics}");
    println!(
        "kube-apiserver down for {down_for:?}; scaled to 0 {took:?} after the patch that followed the restart"
    );
    op.stop().await;
    cluster.stop().await;
    drop(up);
}
