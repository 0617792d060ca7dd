//! The benchmark's own Kubernetes calls, the same on both control planes: an admin client from a
//! kubeconfig file, create (POST) any object given as JSON, create many at once with bounded
//! concurrency, and watches that timestamp what the benchmark waits for (HPAs appearing,
//! Deployments scaled from zero).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::watcher;
use serde_json::Value;

/// An admin client from the kubeconfig at `path`.
pub async fn client(path: &Path) -> Result<kube::Client, String> {
    let kc = kube::config::Kubeconfig::read_from(path)
        .map_err(|e| format!("kubeconfig {}: {e}", path.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .map_err(|e| format!("kubeconfig {}: {e}", path.display()))?;
    let mut config = config;
    config.read_timeout = Some(Duration::from_secs(120));
    kube::Client::try_from(config).map_err(|e| format!("client for {}: {e}", path.display()))
}

/// Kinds without a namespace among those the benchmark creates.
const CLUSTER_SCOPED: &[&str] =
    &["Namespace", "ClusterRole", "ClusterRoleBinding", "APIService", "CustomResourceDefinition"];

/// The collection URL of `obj` (from its apiVersion, kind and namespace; plural = lowercase kind
/// + "s", which holds for every kind the benchmark creates).
pub fn collection_path(obj: &Value) -> Result<String, String> {
    let api_version = obj["apiVersion"].as_str().ok_or("object without apiVersion")?;
    let kind = obj["kind"].as_str().ok_or("object without kind")?;
    let root = if api_version.contains('/') {
        format!("/apis/{api_version}")
    } else {
        format!("/api/{api_version}")
    };
    let plural = format!("{}s", kind.to_lowercase());
    if CLUSTER_SCOPED.contains(&kind) {
        Ok(format!("{root}/{plural}"))
    } else {
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or("default");
        Ok(format!("{root}/namespaces/{ns}/{plural}"))
    }
}

/// POSTs `body` to `path`; the created object.
pub async fn post(client: &kube::Client, path: &str, body: &Value) -> Result<Value, String> {
    let bytes = serde_json::to_vec(body).map_err(|e| format!("JSON: {e}"))?;
    let req = http::Request::post(path)
        .header("content-type", "application/json")
        .body(bytes)
        .map_err(|e| format!("request {path}: {e}"))?;
    client.request::<Value>(req).await.map_err(|e| format!("POST {path}: {e}"))
}

/// GETs `path` as JSON.
pub async fn get(client: &kube::Client, path: &str) -> Result<Value, String> {
    let req = http::Request::get(path).body(Vec::new()).map_err(|e| format!("request {path}: {e}"))?;
    client.request::<Value>(req).await.map_err(|e| format!("GET {path}: {e}"))
}

/// Creates `obj`.
pub async fn create(client: &kube::Client, obj: &Value) -> Result<Value, String> {
    post(client, &collection_path(obj)?, obj).await
}

/// Creates every object, `concurrency` requests in flight; the first error ends it.
pub async fn create_all(client: &kube::Client, objs: Vec<Value>, concurrency: usize) -> Result<(), String> {
    futures::stream::iter(objs)
        .map(|o| async move { create(client, &o).await.map(drop) })
        .buffer_unordered(concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await
        .map(drop)
}

/// Names (`namespace/name`) of the HPAs that exist, kept by a metadata watch.
#[derive(Debug, Clone, Default)]
pub struct HpaSet {
    names: Arc<Mutex<HashSet<String>>>,
}

impl HpaSet {
    /// Starts watching HPAs in every namespace; the task ends with `handle`.
    pub fn watch(client: &kube::Client) -> (Self, tokio::task::JoinHandle<()>) {
        let set = Self::default();
        let names = set.names.clone();
        let api: Api<PartialObjectMeta<HorizontalPodAutoscaler>> = Api::all(client.clone());
        let handle = tokio::spawn(async move {
            let mut events = watcher::watcher(api, watcher::Config::default()).boxed();
            while let Some(event) = events.next().await {
                let Ok(event) = event else { continue };
                let mut names = names.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                match event {
                    watcher::Event::Apply(m) | watcher::Event::InitApply(m) => {
                        names.insert(key(&m.metadata));
                    }
                    watcher::Event::Delete(m) => {
                        names.remove(&key(&m.metadata));
                    }
                    watcher::Event::Init | watcher::Event::InitDone => {}
                }
            }
        });
        (set, handle)
    }

    pub fn count(&self) -> usize {
        self.names.lock().map_or(0, |n| n.len())
    }

    /// Waits until at least `n` HPAs exist; how long that took, or an error after `limit`.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Result<Duration, String> {
        let start = Instant::now();
        while self.count() < n {
            if start.elapsed() > limit {
                return Err(format!("only {} of {n} HPAs after {limit:?}", self.count()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(start.elapsed())
    }
}

fn key(meta: &kube::api::ObjectMeta) -> String {
    format!("{}/{}", meta.namespace.as_deref().unwrap_or(""), meta.name.as_deref().unwrap_or(""))
}

/// When each Deployment was first seen with `spec.replicas ≥ 1`, kept by a watch.
#[derive(Debug, Clone, Default)]
pub struct ScaledUp {
    first: Arc<Mutex<HashMap<String, Instant>>>,
}

impl ScaledUp {
    /// Starts watching Deployments in every namespace; the task ends with `handle`.
    pub fn watch(client: &kube::Client) -> (Self, tokio::task::JoinHandle<()>) {
        let this = Self::default();
        let first = this.first.clone();
        let api: Api<Deployment> = Api::all(client.clone());
        let handle = tokio::spawn(async move {
            let mut events = watcher::watcher(api, watcher::Config::default()).boxed();
            while let Some(event) = events.next().await {
                let now = Instant::now();
                let Ok(watcher::Event::Apply(d) | watcher::Event::InitApply(d)) = event else { continue };
                let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                if replicas >= 1 {
                    let mut first = first.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    first.entry(key(&d.metadata)).or_insert(now);
                }
            }
        });
        (this, handle)
    }

    /// When `namespace/name` was first seen scaled up.
    pub fn seen(&self, key: &str) -> Option<Instant> {
        self.first.lock().ok()?.get(key).copied()
    }

    pub fn count(&self) -> usize {
        self.first.lock().map_or(0, |f| f.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn collection_paths() {
        let so =
            json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"namespace": "a"}});
        assert_eq!(collection_path(&so).unwrap(), "/apis/keda.sh/v1alpha1/namespaces/a/scaledobjects");
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}});
        assert_eq!(collection_path(&ns).unwrap(), "/api/v1/namespaces");
        let dep = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {}});
        assert_eq!(collection_path(&dep).unwrap(), "/apis/apps/v1/namespaces/default/deployments");
        assert!(collection_path(&json!({})).is_err());
    }
}
