//! The APIService availability controller: every second each APIService's `Available`
//! condition follows what a discovery request to its backend answers, as kube-aggregator's
//! does. A local APIService (no `spec.service`) is available; one whose Service has no mapped
//! endpoints is `MissingEndpoints`; a backend that cannot be reached over TLS with the
//! `caBundle`, or answers discovery with anything but 2xx, 401 or 403, is `FailedDiscoveryCheck`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;

use crate::control::{ControlPlane, Sub, WriteCtx, now_rfc3339, system_ctx};
use crate::pki::Leaf;
use crate::proxy::BackendError;

/// How often every APIService is checked.
const PERIOD: Duration = Duration::from_secs(1);
/// How long one discovery check may take.
const TIMEOUT: Duration = Duration::from_secs(3);

/// The `Available` condition's status, reason and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Availability {
    pub available: bool,
    pub reason: &'static str,
    pub message: String,
}

/// Runs until `stop` turns true.
pub async fn run(cp: Arc<ControlPlane>, front_proxy: Arc<Leaf>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        let (items, _) = cp.store.list("apiregistration.k8s.io", "apiservices", None);
        for (_, obj) in items {
            let availability = check(&cp, &obj, &front_proxy).await;
            if let Err(e) = record(&cp, &obj, &availability).await {
                tracing::debug!("APIService status update failed, retried next period: {e}");
            }
        }
    }
}

/// Checks one APIService now.
pub async fn check(cp: &ControlPlane, apiservice: &Value, front_proxy: &Leaf) -> Availability {
    let (client, host) = match crate::proxy::backend(cp, apiservice, Some(front_proxy), TIMEOUT) {
        Ok(c) => c,
        Err(BackendError::NoService) => {
            return Availability {
                available: true,
                reason: "Local",
                message: "Local APIServices are always available".into(),
            };
        }
        Err(e @ BackendError::NoEndpoints { .. }) => {
            return Availability { available: false, reason: "MissingEndpoints", message: e.to_string() };
        }
        Err(e @ BackendError::Tls(_)) => {
            return Availability { available: false, reason: "FailedDiscoveryCheck", message: e.to_string() };
        }
    };
    let s = |p: &str| apiservice.pointer(p).and_then(Value::as_str).unwrap_or_default().to_owned();
    let url = format!("https://{host}/apis/{}/{}", s("/spec/group"), s("/spec/version"));
    match client.get(&url).send().await {
        Ok(r) if r.status().is_success() || matches!(r.status().as_u16(), 401 | 403) => {
            Availability { available: true, reason: "Passed", message: "all checks passed".into() }
        }
        Ok(r) => Availability {
            available: false,
            reason: "FailedDiscoveryCheck",
            message: format!("failing or missing response from {url}: bad status from {url}: {}", r.status()),
        },
        Err(e) => Availability {
            available: false,
            reason: "FailedDiscoveryCheck",
            message: format!("failing or missing response from {url}: {}", crate::admission::error_chain(&e)),
        },
    }
}

/// Writes the condition when it differs from the stored one (the transition time changes only
/// with the status).
async fn record(cp: &ControlPlane, obj: &Value, a: &Availability) -> Result<(), crate::status::ApiError> {
    let status = if a.available { "True" } else { "False" };
    let current = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Available"));
    if let Some(c) = current
        && c["status"] == status
        && c["reason"] == a.reason
        && c["message"] == a.message.as_str()
    {
        return Ok(());
    }
    let since = match current {
        Some(c) if c["status"] == status => c["lastTransitionTime"].clone(),
        _ => json!(now_rfc3339()),
    };
    let Some(res) = cp.resource("apiregistration.k8s.io", "v1", "apiservices") else { return Ok(()) };
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let mut body = obj.clone();
    body["status"] = json!({"conditions": [{"type": "Available", "status": status, "reason": a.reason,
        "message": a.message, "lastTransitionTime": since}]});
    let ctx = WriteCtx { field_manager: "kube-aggregator".into(), ..system_ctx() };
    cp.update(&res, "", name, body, Sub::Status, &ctx).await.map(|_| ())
}
