//! Defaulting of built-in kinds the way kube-apiserver fills absent fields, limited to what
//! ebb and kubectl read back: Deployment/StatefulSet replicas, strategy and Pod template (the
//! fields upstream defaults in every Pod spec and container), HPA minReplicas, Namespace phase.

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
            if let Some(pod) = spec.get_mut("template").and_then(|t| t.get_mut("spec")) {
                pod_spec(pod);
            }
            if res.kind == "Deployment" {
                spec.entry("progressDeadlineSeconds").or_insert(json!(600));
                let strategy = spec.entry("strategy").or_insert(json!({}));
                if let Some(st) = strategy.as_object_mut() {
                    let rolling = st.entry("type").or_insert(json!("RollingUpdate")) == "RollingUpdate";
                    if rolling {
                        let ru = st.entry("rollingUpdate").or_insert(json!({}));
                        if let Some(ru) = ru.as_object_mut() {
                            ru.entry("maxSurge").or_insert(json!("25%"));
                            ru.entry("maxUnavailable").or_insert(json!("25%"));
                        }
                    }
                }
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

/// What kube-apiserver fills in every Pod spec (of a Pod or a workload's template) and in each of
/// its containers.
fn pod_spec(pod: &mut Value) {
    let Some(p) = pod.as_object_mut() else { return };
    p.entry("restartPolicy").or_insert(json!("Always"));
    p.entry("terminationGracePeriodSeconds").or_insert(json!(30));
    p.entry("dnsPolicy").or_insert(json!("ClusterFirst"));
    p.entry("securityContext").or_insert(json!({}));
    p.entry("schedulerName").or_insert(json!("default-scheduler"));
    for list in ["containers", "initContainers"] {
        for c in p.get_mut(list).and_then(Value::as_array_mut).into_iter().flatten() {
            let Some(c) = c.as_object_mut() else { continue };
            let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
            // Always for `:latest` or no tag (a digest counts as a tag), else IfNotPresent.
            let last = image.rsplit('/').next().unwrap_or_default();
            let policy = if image.contains('@') || last.contains(':') && !last.ends_with(":latest") {
                "IfNotPresent"
            } else {
                "Always"
            };
            c.entry("imagePullPolicy").or_insert(json!(policy));
            c.entry("terminationMessagePath").or_insert(json!("/dev/termination-log"));
            c.entry("terminationMessagePolicy").or_insert(json!("File"));
            c.entry("resources").or_insert(json!({}));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(image: &str) -> Value {
        json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}, "strategy": {}}})
    }

    fn pull_policy(image: &str) -> Value {
        let registry = crate::resources::Registry::builtin();
        let res = registry.by_kind("apps/v1", "Deployment").unwrap().clone();
        let mut d = deployment(image);
        apply(&res, &mut d);
        d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"].clone()
    }

    #[test]
    fn image_pull_policy_follows_the_tag_as_upstream_documents() {
        assert_eq!(pull_policy("nginx"), "Always");
        assert_eq!(pull_policy("nginx:latest"), "Always");
        assert_eq!(pull_policy("nginx:1.27"), "IfNotPresent");
        assert_eq!(pull_policy("registry:5000/nginx"), "Always");
        assert_eq!(pull_policy("nginx@sha256:abc"), "IfNotPresent");
    }
}
