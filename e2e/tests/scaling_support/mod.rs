//! Shared by the event-source scaling scenarios (SQS, Kafka): the whole stack started in-process
//! (the cluster `support` selects, with a fast HPA sync; operator; metrics-apiserver registered
//! through the aggregator), seed fixtures loaded as JSON, objects created as `kubectl create` would, a
//! recorder of a Deployment's replica timeline, and percentiles. Uses `support` (the
//! metrics-apiserver scenarios' setup), which the including test file declares.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::support::{self, NS};

/// One scenario at a time per test binary: the figures of one must not include the load of another.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The cluster, the operator and the registered metrics-apiserver.
pub struct Stack {
    pub cluster: support::Cluster,
    pub client: kube::Client,
    pub pki: support::Pki,
    op: support::Operator,
    server: support::MetricsServer,
}

impl Stack {
    /// Starts everything with the HPA controller syncing every `hpa_sync`.
    pub async fn start(tag: &str, hpa_sync: Duration) -> Self {
        let (cluster, client) = support::start_cluster(hpa_sync).await;
        let pki = support::Pki::new(&cluster, tag);
        let port = support::free_port();
        let op = support::start_operator(&client, &pki, port);
        let server = support::start_metrics_apiserver(&client, &pki, port, &[]).await;
        support::register(&cluster, &server).await;
        Self { cluster, client, pki, op, server }
    }

    /// Creates `obj` (any kind the cluster serves) in namespace `default`.
    pub async fn create(&self, mut obj: Value) {
        obj["metadata"]["namespace"] = json!(NS);
        self.cluster.create(&obj).await.unwrap_or_else(|e| panic!("cannot create {obj}: {e}"));
    }

    pub async fn stop(self) {
        self.server.stop().await;
        self.op.stop().await;
        self.cluster.stop().await;
        drop(self.pki);
    }
}

/// A seed fixture of `tests/fixtures/seed/` as JSON.
pub fn seed(file: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/seed").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap()
}

/// Secret `name` with string `data` (stored base64 as the API server does).
pub fn secret(name: &str, data: &[(&str, &str)]) -> Value {
    use base64::Engine as _;
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(base64::engine::general_purpose::STANDARD.encode(v))))
        .collect();
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": data})
}

/// Polls spec.replicas of a Deployment every 20 ms and keeps each change with its time since the
/// recorder started.
pub struct Timeline {
    started: Instant,
    changes: Arc<Mutex<Vec<(Duration, i32)>>>,
    task: JoinHandle<()>,
}

impl Timeline {
    pub fn start(client: &kube::Client, deployment: &str) -> Self {
        let started = Instant::now();
        let changes = Arc::new(Mutex::new(Vec::new()));
        let deps: Api<Deployment> = Api::namespaced(client.clone(), NS);
        let (name, sink) = (deployment.to_owned(), changes.clone());
        let task = tokio::spawn(async move {
            loop {
                if let Ok(d) = deps.get(&name).await {
                    let n = d.spec.and_then(|s| s.replicas).unwrap_or(0);
                    let mut seen = sink.lock().unwrap();
                    if seen.last().is_none_or(|(_, last)| *last != n) {
                        seen.push((started.elapsed(), n));
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Self { started, changes, task }
    }

    /// The replica counts seen, in order, without times.
    pub fn counts(&self) -> Vec<i32> {
        self.changes.lock().unwrap().iter().map(|(_, n)| *n).collect()
    }

    /// Time since the recorder started.
    pub fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// `t=1.234s 0 → t=2.345s 1 → ...`
    pub fn render(&self) -> String {
        let seen = self.changes.lock().unwrap();
        let parts: Vec<String> = seen.iter().map(|(t, n)| format!("t={:.3}s {n}", t.as_secs_f64())).collect();
        parts.join(" → ")
    }
}

impl Drop for Timeline {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The `p`-th percentile (0..=100, nearest rank) of `values`.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
