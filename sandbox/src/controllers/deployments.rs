//! The workload controller: after a configurable delay, a Deployment's or StatefulSet's status
//! (replicas, readyReplicas, availableReplicas, updatedReplicas, observedGeneration and the
//! Available condition) follows its spec.replicas — pods start instantly and are always ready.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;

use crate::control::{ControlPlane, Sub, WriteCtx, now_rfc3339, system_ctx};
use crate::store::EventType;

const KINDS: [&str; 2] = ["deployments", "statefulsets"];

/// Runs until `stop` turns true.
pub async fn run(cp: Arc<ControlPlane>, delay: Duration, mut stop: watch::Receiver<bool>) {
    let mut rx = cp.store.subscribe();
    // Objects created before the controller started.
    for (k, _) in cp.store.all() {
        if k.0 == "apps" && KINDS.contains(&k.1.as_str()) {
            schedule(cp.clone(), k.1, k.2, k.3, delay);
        }
    }
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            ev = rx.recv() => match ev {
                Ok(ev) if ev.key.0 == "apps" && KINDS.contains(&ev.key.1.as_str()) && ev.type_ != EventType::Deleted => {
                    if needs_sync(&ev.object) {
                        schedule(cp.clone(), ev.key.1.clone(), ev.key.2.clone(), ev.key.3.clone(), delay);
                    }
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    for (k, o) in cp.store.all() {
                        if k.0 == "apps" && KINDS.contains(&k.1.as_str()) && needs_sync(&o) {
                            schedule(cp.clone(), k.1, k.2, k.3, delay);
                        }
                    }
                }
                Err(_) => return,
            },
        }
    }
}

fn desired(obj: &Value) -> i64 {
    obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)
}

fn needs_sync(obj: &Value) -> bool {
    let s = obj.get("status");
    let field = |f: &str| s.and_then(|s| s.get(f)).and_then(Value::as_i64).unwrap_or(0);
    let generation = obj.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
    field("replicas") != desired(obj)
        || field("readyReplicas") != desired(obj)
        || field("observedGeneration") != generation
}

fn schedule(cp: Arc<ControlPlane>, plural: String, ns: String, name: String, delay: Duration) {
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let Some(res) = cp.resource("apps", "v1", &plural) else { return };
        let Ok(obj) = cp.get(&res, &ns, &name) else { return };
        if !needs_sync(&obj) {
            return;
        }
        let n = desired(&obj);
        let mut status = json!({
            "observedGeneration": obj.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
            "replicas": n, "readyReplicas": n, "availableReplicas": n, "updatedReplicas": n,
        });
        if plural == "deployments" {
            status["conditions"] = json!([{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                "message": "Deployment has minimum availability.", "lastUpdateTime": now_rfc3339(), "lastTransitionTime": now_rfc3339()}]);
        } else {
            status["currentReplicas"] = json!(n);
        }
        let mut body = obj.clone();
        body["status"] = status;
        let ctx = WriteCtx { field_manager: "kube-controller-manager".into(), ..system_ctx() };
        if let Err(e) = cp.update(&res, &ns, &name, body, Sub::Status, &ctx).await {
            tracing::debug!(name, "status update failed, will retry on the next change: {e}");
            if e.code == 409 {
                schedule(cp.clone(), plural, ns, name, delay);
            }
        }
    });
}
