//! What one client that is not the API server can do to the webhook: its endpoint takes
//! unauthenticated reviews, so a forged review's namespace must not grow the metrics, and a
//! denial must not name objects the caller may not see. The router is served in-process on
//! loopback (plain HTTP: TLS changes nothing here).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use ebb_webhook::admission::Webhook;
use ebb_webhook::index::{Index, Snapshot, SoIndex, SoKeys, Workload};
use ebb_webhook::metrics::Metrics;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};

fn so(ns: &str, name: &str, target: &str) -> Value {
    json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"scaleTargetRef": {"name": target}, "minReplicaCount": 0, "maxReplicaCount": 5,
            "triggers": [{"type": "cron", "metadata": {"timezone": "UTC", "start": "0 8 * * *",
                "end": "0 9 * * *", "desiredReplicas": "1"}}]}})
}

fn review(ns: &str, object: Value) -> Value {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u-1", "kind": {"group": "keda.sh", "version": "v1alpha1", "kind": "ScaledObject"},
        "resource": {"group": "keda.sh", "version": "v1alpha1", "resource": "scaledobjects"},
        "name": object["metadata"]["name"], "namespace": ns, "operation": "CREATE",
        "userInfo": {"username": "mallory"}, "object": object}})
}

/// A webhook whose index knows ScaledObjects in namespaces `team-a` and `team-b`, serving its
/// router on loopback; returns the base URL, the registry and the server task.
async fn serve() -> (String, Arc<Registry>, tokio::task::JoinHandle<()>) {
    let mut sos = SoIndex::default();
    sos.apply(
        "team-a",
        "orders",
        SoKeys { target: Workload::new("apps/v1", "Deployment", "web"), hpa: "keda-hpa-orders".into() },
    );
    sos.apply(
        "team-b",
        "billing",
        SoKeys { target: Workload::new("apps/v1", "Deployment", "api"), hpa: "keda-hpa-billing".into() },
    );
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let webhook = Arc::new(Webhook::new(
        Arc::new(Index::new(Snapshot::synced(sos, Default::default()))),
        metrics,
        None,
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}{}", listener.local_addr().unwrap(), ebb_webhook::server::VALIDATE_PATH);
    let task = tokio::spawn(async move {
        axum::serve(listener, ebb_webhook::server::router(webhook)).await.unwrap();
    });
    (url, Arc::new(registry), task)
}

fn exposition(registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text
}

fn series(text: &str) -> usize {
    text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_namespaces_do_not_grow_the_metrics() {
    let (url, registry, task) = serve().await;
    let http = reqwest::Client::new();
    const N: usize = 10_000;
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..N {
        // xorshift: a different namespace per review, some denied (bad spec), most allowed.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let ns = format!("forged-{seed:016x}");
        let mut object = so(&ns, "x", "web");
        if i % 3 == 0 {
            object["spec"]["minReplicaCount"] = json!(9);
        }
        let r = http.post(&url).json(&review(&ns, object)).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    // Genuine reviews in known namespaces keep their own label.
    for ns in ["team-a", "team-b"] {
        let r = http.post(&url).json(&review(ns, so(ns, "new", "other"))).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let text = exposition(&registry);
    // Known namespaces (2) × actions (1) for validations, plus the reasons seen
    // (invalid-spec) × namespaces, plus a constant for the catch-all value.
    let n = series(&text);
    assert!(n <= 2 + 2 + 4, "{n} series after {N} forged reviews:\n{}", &text[..text.len().min(2000)]);
    assert!(text.contains("namespace=\"team-a\""), "{text}");
    assert!(!text.contains("forged-"), "a forged namespace became a label:\n{}", &text[..2000]);
    task.abort();
}

#[tokio::test]
async fn denials_do_not_name_objects_of_a_claimed_namespace() {
    let (url, _registry, task) = serve().await;
    let http = reqwest::Client::new();
    // Anyone who can reach the port can claim to be in team-b and probe its workloads.
    let r: Value = http
        .post(&url)
        .json(&review("team-b", so("team-b", "probe", "api")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["response"]["allowed"], false);
    let msg = r["response"]["status"]["message"].as_str().unwrap();
    assert!(msg.contains("Deployment/api"), "{msg}");
    assert!(!msg.contains("billing"), "the denial names another object: {msg}");
    task.abort();
}
