//! End to end on the local control plane: two operator instances elect a leader on the Lease
//! `default/ebb-operator` with short timings; only the leader reconciles and scales. When the
//! leader crashes (its task aborted, no release of the Lease) the follower takes over within
//! the lease duration plus a retry period and a margin, reconciles a ScaledObject created after
//! the crash and keeps scaling the earlier one, and the recorded `/scale` writes show no
//! flip-flops (a stale loop of the crashed leader would undo the new leader's scale-in).
//!
//! With `--pod-name`, the leader labels its own Pod `ebb.keda.sh/leader=true` (what Service
//! ebb-operator selects): a stale label is removed at start, the follower's Pod stays
//! unlabelled, a graceful stop removes the label before the Lease is released, and the new
//! leader labels its Pod. A Pod that does not exist stops nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use support::*;

const LEASE: [&str; 6] = ["--lease-duration", "2s", "--renew-deadline", "1200ms", "--retry-period", "200ms"];

/// Per Deployment, each spec.replicas value seen (in order, consecutive duplicates folded) with
/// the field manager owning `spec.replicas` at that point.
type Record = Arc<Mutex<BTreeMap<String, Vec<(i32, String)>>>>;

fn replicas_owner(d: &Deployment) -> String {
    d.metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| m.fields_v1.as_ref().is_some_and(|f| f.0.pointer("/f:spec/f:replicas").is_some()))
        .filter_map(|m| m.manager.clone())
        .collect::<Vec<_>>()
        .join(",")
}

fn record_replicas(client: &kube::Client) -> (Record, tokio::task::JoinHandle<()>) {
    let record: Record = Arc::default();
    let deps: Api<Deployment> = Api::default_namespaced(client.clone());
    let r = record.clone();
    let task = tokio::spawn(async move {
        let mut stream = watcher(deps, watcher::Config::default()).applied_objects().boxed();
        while let Some(ev) = stream.next().await {
            let Ok(d) = ev else { continue };
            let name = d.metadata.name.clone().unwrap_or_default();
            let n = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
            let mut map = r.lock().unwrap();
            let seen = map.entry(name).or_default();
            if seen.last().is_none_or(|(last, _)| *last != n) {
                seen.push((n, replicas_owner(&d)));
            }
        }
    });
    (record, task)
}

async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt("ebb-operator")
        .await
        .unwrap()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty())
}

async fn hpa_exists(client: &kube::Client, name: &str) -> bool {
    let hpas: Api<HorizontalPodAutoscaler> = Api::default_namespaced(client.clone());
    hpas.get_opt(&format!("keda-hpa-{name}")).await.unwrap().is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_takes_over_after_the_leader_crashes() {
    let (sb, client) = start_sandbox().await;
    create_deployment(&client, "dep-a", 0).await;
    create_deployment(&client, "dep-b", 0).await;
    let (record, watch_task) = record_replicas(&client);
    let leases: Api<Lease> = Api::default_namespaced(client.clone());

    let mut op1 = start_operator(&client, &LEASE).await;
    wait_for("a leader", Duration::from_secs(10), async || holder(&leases).await.is_some()).await;
    let first = holder(&leases).await.unwrap();
    let op2 = start_operator(&client, &LEASE).await;
    let lease = leases.get("ebb-operator").await.unwrap().spec.unwrap();
    assert_eq!(lease.lease_duration_seconds, Some(2));
    let transitions = lease.lease_transitions.unwrap_or(0);
    // Ten retry periods of the second instance: the first keeps the Lease.
    holds_for("the first instance's lead", Duration::from_secs(2), async || {
        holder(&leases).await.as_deref() == Some(first.as_str())
    })
    .await;

    create_so(&client, &scaled_object("so-a", "dep-a", json!([open_window(2)]), json!({}))).await;
    wait_for("activation of dep-a", Duration::from_secs(10), async || replicas(&client, "dep-a").await == 1)
        .await;
    assert!(hpa_exists(&client, "so-a").await);
    // Exactly one instance reconciles: only the leader has the object's series.
    let (m1, m2) = (op1.metrics().await.unwrap(), op2.metrics().await.unwrap());
    assert_eq!(series(&m1, "keda_scaled_object_paused", "so-a"), Some(0.0), "leader:\n{m1}");
    assert_eq!(series(&m2, "keda_scaled_object_paused", "so-a"), None, "follower:\n{m2}");

    // Crash the leader: no graceful shutdown, no release of the Lease.
    op1.task.abort();
    let crashed = Instant::now();
    assert!((&mut op1.task).await.unwrap_err().is_cancelled());
    assert_eq!(holder(&leases).await.as_deref(), Some(first.as_str()), "a crash releases nothing");
    assert!(op1.metrics().await.is_err(), "the crashed instance's admin server is gone");
    create_so(&client, &scaled_object("so-b", "dep-b", json!([open_window(2)]), json!({}))).await;

    // Lease 2 s + retry 200 ms + 3 s margin.
    let limit = Duration::from_millis(5_200).saturating_sub(crashed.elapsed());
    wait_for("the follower to take over", limit, async || holder(&leases).await.is_some_and(|h| h != first))
        .await;
    let took_over = crashed.elapsed();
    let second = holder(&leases).await.unwrap();
    assert_ne!(second, first, "identities of the two instances differ");
    let lease = leases.get("ebb-operator").await.unwrap().spec.unwrap();
    assert_eq!(lease.lease_transitions.unwrap_or(0), transitions + 1);
    assert!(
        took_over >= Duration::from_millis(1_000),
        "took over after {took_over:?}: before the crashed leader's lease could expire"
    );
    wait_for("the HPA of so-b", Duration::from_secs(10), async || hpa_exists(&client, "so-b").await).await;
    wait_for("activation of dep-b", Duration::from_secs(10), async || replicas(&client, "dep-b").await == 1)
        .await;
    // so-a is reconciled by the new leader too (its first reconcile may follow so-b's).
    wait_for("the new leader to reconcile so-a", Duration::from_secs(10), async || {
        op2.metrics().await.is_ok_and(|m| series(&m, "keda_scaled_object_paused", "so-a") == Some(0.0))
    })
    .await;
    let m2 = op2.metrics().await.unwrap();
    assert_eq!(series(&m2, "keda_scaled_object_paused", "so-a"), Some(0.0), "new leader:\n{m2}");
    assert_eq!(series(&m2, "keda_scaled_object_paused", "so-b"), Some(0.0), "new leader:\n{m2}");

    // The new leader scales so-a in once its window is closed; a loop of the crashed leader
    // still running with the open window would scale it straight back out.
    patch_so(&client, "so-a", json!({"spec": {"triggers": [closed_window()]}})).await;
    wait_for("dep-a scaled in by the new leader", Duration::from_secs(10), async || {
        replicas(&client, "dep-a").await == 0
    })
    .await;
    holds_for("dep-a at 0 and dep-b at 1", Duration::from_secs(4), async || {
        replicas(&client, "dep-a").await == 0 && replicas(&client, "dep-b").await == 1
    })
    .await;

    let seen = record.lock().unwrap().clone();
    let values = |d: &str| seen.get(d).map(|v| v.iter().map(|(n, _)| *n).collect::<Vec<_>>());
    assert_eq!(values("dep-a"), Some(vec![0, 1, 0]), "{seen:?}");
    assert_eq!(values("dep-b"), Some(vec![0, 1]), "{seen:?}");
    for (d, changes) in &seen {
        for (n, owner) in changes.iter().skip(1) {
            // A Scale omits replicas 0, so a write of 0 through /scale leaves the field unowned.
            let expected = if *n == 0 { "" } else { "ebb-operator/scale" };
            assert_eq!(owner, expected, "{d} → {n} written by the scale loop: {seen:?}");
        }
    }

    // A graceful stop releases the Lease.
    op2.stop().await;
    assert_eq!(holder(&leases).await, None, "released on shutdown");
    watch_task.abort();
    sb.stop().await;
    eprintln!("takeover after {took_over:?}");
}

const LEADER_LABEL: &str = ebb_operator::leader::podlabel::LEADER_LABEL;

async fn create_pod(client: &kube::Client, name: &str, labels: serde_json::Value) {
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "operator", "image": "ebb"}]}}))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
}

/// The leader label of Pod `name` (`None`: absent), and the Pod's resourceVersion.
async fn leader_label(pods: &Api<Pod>, name: &str) -> (Option<String>, u64) {
    let pod = pods.get(name).await.unwrap();
    let rv = pod.metadata.resource_version.as_deref().unwrap_or("0").parse().unwrap();
    (pod.metadata.labels.unwrap_or_default().get(LEADER_LABEL).cloned(), rv)
}

/// Each write of the Lease seen: (resourceVersion, holder; empty when released).
type LeaseWrites = Arc<Mutex<Vec<(u64, String)>>>;

fn record_lease(client: &kube::Client) -> (LeaseWrites, tokio::task::JoinHandle<()>) {
    let leases: Api<Lease> = Api::default_namespaced(client.clone());
    let seen: LeaseWrites = Arc::default();
    let out = seen.clone();
    let task = tokio::spawn(async move {
        let mut stream = watcher(leases, watcher::Config::default()).applied_objects().boxed();
        while let Some(ev) = stream.next().await {
            let Ok(lease) = ev else { continue };
            let rv = lease.metadata.resource_version.as_deref().unwrap_or("0").parse().unwrap();
            let holder = lease.spec.and_then(|s| s.holder_identity).unwrap_or_default();
            out.lock().unwrap().push((rv, holder));
        }
    });
    (seen, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_labels_its_pod_and_hands_the_label_over() {
    let (sb, client) = start_sandbox().await;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let leases: Api<Lease> = Api::default_namespaced(client.clone());
    create_pod(&client, "op-a", json!({"app": "ebb-operator"})).await;
    // op-b carries a label left by an earlier process that led.
    create_pod(&client, "op-b", json!({"app": "ebb-operator", LEADER_LABEL: "true"})).await;
    let (lease_writes, lease_task) = record_lease(&client);

    let with_pod = |pod: &'static str| [&LEASE[..], &["--pod-name", pod]].concat();
    let op_a = start_operator(&client, &with_pod("op-a")).await;
    wait_for("the leader to label op-a", Duration::from_secs(10), async || {
        leader_label(&pods, "op-a").await.0.as_deref() == Some("true")
    })
    .await;
    let first = holder(&leases).await.unwrap();
    let op_b = start_operator(&client, &with_pod("op-b")).await;
    wait_for("the follower to remove its stale label", Duration::from_secs(10), async || {
        leader_label(&pods, "op-b").await.0.is_none()
    })
    .await;
    holds_for("op-a labelled, op-b not", Duration::from_secs(2), async || {
        leader_label(&pods, "op-a").await.0.is_some()
            && leader_label(&pods, "op-b").await.0.is_none()
            && holder(&leases).await.as_deref() == Some(first.as_str())
    })
    .await;

    // A graceful stop: the label goes first, then the Lease is released.
    op_a.stop().await;
    let (label, removed_at) = leader_label(&pods, "op-a").await;
    assert_eq!(label, None, "the stopped leader's Pod keeps the label");
    // The release is written before `stop` returns; its watch event may arrive a little later
    // (upstream delivers through its watch cache).
    let released = |w: &[(u64, String)]| w.iter().find(|(_, h)| h.is_empty()).map(|(rv, _)| *rv);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while released(&lease_writes.lock().unwrap()).is_none() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let writes = lease_writes.lock().unwrap().clone();
    let released_at = released(&writes).unwrap_or_else(|| panic!("no release of the Lease seen: {writes:?}"));
    assert!(removed_at < released_at, "label removed at {removed_at}, Lease released at {released_at}");
    let took = wait_for("the new leader to label op-b", Duration::from_secs(5), async || {
        leader_label(&pods, "op-b").await.0.as_deref() == Some("true")
    })
    .await;
    assert!(holder(&leases).await.is_some_and(|h| h != first));
    assert_eq!(leader_label(&pods, "op-a").await.0, None);
    op_b.stop().await;
    assert_eq!(leader_label(&pods, "op-b").await.0, None, "removed on shutdown");
    println!("op-b labelled {took:?} after op-a stopped");

    // A Pod that does not exist: the replica leads anyway and stops in time.
    let op_c = start_operator(&client, &with_pod("no-such-pod")).await;
    wait_for("op-c to lead", Duration::from_secs(10), async || holder(&leases).await.is_some()).await;
    assert!(op_c.metrics().await.is_ok());
    let stopping = Instant::now();
    op_c.stop().await;
    assert!(stopping.elapsed() < Duration::from_secs(3), "stop took {:?}", stopping.elapsed());
    assert_eq!(holder(&leases).await, None, "released on shutdown");
    assert!(pods.get_opt("no-such-pod").await.unwrap().is_none(), "a patch must not create a Pod");

    lease_task.abort();
    sb.stop().await;
}
