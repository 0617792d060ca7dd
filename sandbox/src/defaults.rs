//! Defaulting of built-in kinds the way kube-apiserver fills absent fields, limited to what
//! ebb and kubectl read back: Deployment/StatefulSet replicas and strategy, HPA minReplicas,
//! Namespace phase.

use serde_json::{Value, json};

use crate::resources::Resource;

/// Fills defaults in place.
pub fn apply(res: &Resource, obj: &mut Value) {
    if res.custom {
        return;
    }
    match (res.group.as_str(), res.kind.as_str()) {
        ("apps", "Deployment") | ("apps", "StatefulSet") => {
            let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else { return };
            spec.entry("replicas").or_insert(json!(1));
            spec.entry("revisionHistoryLimit").or_insert(json!(10));
            if res.kind == "Deployment" {
                spec.entry("progressDeadlineSeconds").or_insert(json!(600));
                spec.entry("strategy").or_insert(json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}));
            } else {
                spec.entry("podManagementPolicy").or_insert(json!("OrderedReady"));
                spec.entry("updateStrategy")
                    .or_insert(json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}));
            }
        }
        ("autoscaling", "HorizontalPodAutoscaler") => {
            let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else { return };
            spec.entry("minReplicas").or_insert(json!(1));
        }
        ("", "Namespace") => {
            if let Some(o) = obj.as_object_mut() {
                let status = o.entry("status").or_insert(json!({}));
                if let Some(s) = status.as_object_mut() {
                    s.entry("phase").or_insert(json!("Active"));
                }
                let spec = o.entry("spec").or_insert(json!({}));
                if let Some(s) = spec.as_object_mut() {
                    s.entry("finalizers").or_insert(json!(["kubernetes"]));
                }
            }
        }
        ("", "Secret") => {
            if let Some(o) = obj.as_object_mut() {
                o.entry("type").or_insert(json!("Opaque"));
                // stringData is write-only: merged into data (base64) as kube-apiserver does.
                if let Some(sd) = o.remove("stringData") {
                    use base64::Engine;
                    let data = o.entry("data").or_insert(json!({}));
                    if let (Some(d), Some(sd)) = (data.as_object_mut(), sd.as_object()) {
                        for (k, v) in sd {
                            let enc = base64::engine::general_purpose::STANDARD
                                .encode(v.as_str().unwrap_or_default());
                            d.insert(k.clone(), Value::String(enc));
                        }
                    }
                }
            }
        }
        _ => {}
    }
}
