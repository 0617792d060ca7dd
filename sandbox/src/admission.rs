//! Validating admission: every create, update and delete of a resource matched by a
//! ValidatingWebhookConfiguration rule is sent as an admission.k8s.io/v1 AdmissionReview over
//! TLS (verifying the webhook's caBundle) to its service or URL, honouring matchPolicy-free
//! rule matching (operations, apiGroups, apiVersions, resources incl. `*` and `x/status`,
//! scope), namespaceSelector, objectSelector, timeoutSeconds and failurePolicy, and a denial
//! is answered as kube-apiserver words it. Services resolve to loopback ports through a
//! mapping given to the control plane.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::RwLock;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use crate::control::{ControlPlane, UserInfo};
use crate::meta;
use crate::resources::Resource;
use crate::selectors::LabelSelector;
use crate::status::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "CREATE",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
        }
    }
}

/// Admission configuration: where services live.
#[derive(Debug, Default)]
pub struct Admission {
    services: RwLock<BTreeMap<String, SocketAddr>>,
}

impl Admission {
    /// Maps the Service `namespace/name` to a local address.
    pub fn map_service(&self, namespace: &str, name: &str, addr: SocketAddr) {
        self.services
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(format!("{namespace}/{name}"), addr);
    }

    pub fn service_addr(&self, namespace: &str, name: &str) -> Option<SocketAddr> {
        self.services
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&format!("{namespace}/{name}"))
            .copied()
    }

    /// Runs every matching validating webhook; the first denial wins.
    #[allow(clippy::too_many_arguments)]
    pub async fn admit(
        &self,
        cp: &ControlPlane,
        res: &Resource,
        op: Operation,
        subresource: &str,
        ns: &str,
        name: &str,
        new: Option<&Value>,
        old: Option<&Value>,
        user: &UserInfo,
        dry_run: bool,
    ) -> Result<(), ApiError> {
        let (configs, _) =
            cp.store.list("admissionregistration.k8s.io", "validatingwebhookconfigurations", None);
        if configs.is_empty() {
            return Ok(());
        }
        for (_, cfg) in configs {
            let cfg_name = meta::name(&cfg).unwrap_or_default().to_owned();
            for hook in cfg.get("webhooks").and_then(Value::as_array).into_iter().flatten() {
                if !matches_rules(hook, res, op, subresource)
                    || !self.matches_selectors(cp, hook, res, ns, new.or(old))?
                {
                    continue;
                }
                let review = review_request(res, op, subresource, ns, name, new, old, user, dry_run);
                let hook_name = hook.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
                let fail_open = hook.get("failurePolicy").and_then(Value::as_str) == Some("Ignore");
                match self.call(hook, &review).await {
                    Ok(resp) => {
                        let allowed =
                            resp.pointer("/response/allowed").and_then(Value::as_bool).unwrap_or(false);
                        if !allowed {
                            let status =
                                resp.pointer("/response/status").cloned().unwrap_or_else(|| json!({}));
                            let code = status
                                .get("code")
                                .and_then(Value::as_u64)
                                .and_then(|c| u16::try_from(c).ok())
                                .unwrap_or(403);
                            let msg = status.get("message").and_then(Value::as_str).unwrap_or_default();
                            let text = if msg.is_empty() {
                                format!(
                                    "admission webhook {hook_name:?} denied the request without explanation"
                                )
                            } else {
                                format!("admission webhook {hook_name:?} denied the request: {msg}")
                            };
                            let reason = if code == 403 { "Forbidden" } else { "Invalid" };
                            return Err(ApiError::new(code, reason, text));
                        }
                    }
                    Err(e) if fail_open => {
                        tracing::warn!(webhook = hook_name, config = cfg_name, "failing open: {e}");
                    }
                    Err(e) => {
                        return Err(ApiError::internal(format!(
                            "Internal error occurred: failed calling webhook {hook_name:?}: {e}"
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    fn matches_selectors(
        &self,
        cp: &ControlPlane,
        hook: &Value,
        res: &Resource,
        ns: &str,
        obj: Option<&Value>,
    ) -> Result<bool, ApiError> {
        if let Some(sel) = hook.get("objectSelector") {
            let s = LabelSelector::from_object(sel)
                .map_err(|e| ApiError::internal(format!("invalid objectSelector: {e}")))?;
            if !s.matches(&obj.map(meta::labels).unwrap_or_default()) {
                return Ok(false);
            }
        }
        if let (Some(sel), true) = (hook.get("namespaceSelector"), res.namespaced) {
            let s = LabelSelector::from_object(sel)
                .map_err(|e| ApiError::internal(format!("invalid namespaceSelector: {e}")))?;
            let key = (String::new(), "namespaces".to_owned(), String::new(), ns.to_owned());
            let mut labels = cp.store.get(&key).map(|n| meta::labels(&n)).unwrap_or_default();
            labels.entry("kubernetes.io/metadata.name".into()).or_insert_with(|| ns.to_owned());
            if !s.matches(&labels) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// POSTs the review and returns the response review.
    async fn call(&self, hook: &Value, review: &Value) -> Result<Value, String> {
        let cc = hook.get("clientConfig").ok_or("webhook has no clientConfig")?;
        let ca = match cc.get("caBundle").and_then(Value::as_str) {
            Some(b) => base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|e| format!("caBundle is not base64: {e}"))?,
            None => return Err("webhook has no caBundle; the sandbox trusts no other CA".into()),
        };
        let tls = crate::pki::client_config(&ca, None).map_err(|e| e.to_string())?;
        let timeout = Duration::from_secs(
            hook.get("timeoutSeconds").and_then(Value::as_u64).unwrap_or(10).clamp(1, 30),
        );
        let mut builder = reqwest::Client::builder().use_preconfigured_tls((*tls).clone()).timeout(timeout);
        let url = if let Some(svc) = cc.get("service") {
            let ns = svc.get("namespace").and_then(Value::as_str).unwrap_or_default();
            let name = svc.get("name").and_then(Value::as_str).unwrap_or_default();
            let path = svc.get("path").and_then(Value::as_str).unwrap_or("/");
            let port = svc.get("port").and_then(Value::as_u64).unwrap_or(443);
            let addr = self
                .service_addr(ns, name)
                .ok_or_else(|| format!("service \"{ns}/{name}\" has no endpoints in the sandbox"))?;
            let host = format!("{name}.{ns}.svc");
            builder = builder.resolve(&host, addr);
            format!("https://{host}:{port}{path}")
        } else {
            cc.get("url").and_then(Value::as_str).ok_or("clientConfig needs service or url")?.to_owned()
        };
        let client = builder.build().map_err(|e| e.to_string())?;
        let resp = client.post(&url).json(review).send().await.map_err(|e| {
            if e.is_timeout() {
                format!("Post {url:?}: context deadline exceeded")
            } else {
                format!("Post {url:?}: {e}")
            }
        })?;
        if !resp.status().is_success() {
            return Err(format!("Post {url:?}: unexpected status {}", resp.status()));
        }
        let v: Value =
            resp.json().await.map_err(|e| format!("cannot decode the AdmissionReview response: {e}"))?;
        let uid = review.pointer("/request/uid");
        if v.pointer("/response/uid") != uid {
            return Err("the AdmissionReview response uid does not match the request".into());
        }
        Ok(v)
    }
}

/// Whether one of the webhook's rules covers this request.
fn matches_rules(hook: &Value, res: &Resource, op: Operation, subresource: &str) -> bool {
    let list = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect()
    };
    let resource =
        if subresource.is_empty() { res.plural.clone() } else { format!("{}/{subresource}", res.plural) };
    hook.get("rules").and_then(Value::as_array).into_iter().flatten().any(|rule| {
        let ops = list(rule.get("operations"));
        let groups = list(rule.get("apiGroups"));
        let versions = list(rule.get("apiVersions"));
        let resources = list(rule.get("resources"));
        let scope = rule.get("scope").and_then(Value::as_str).unwrap_or("*");
        let any = |xs: &[String], x: &str| xs.iter().any(|e| e == "*" || e == x);
        let res_ok = resources.iter().any(|r| {
            r == "*"
                || *r == resource
                || (r == "*/*")
                || (subresource.is_empty() && r == &res.plural)
                || r.strip_suffix("/*") == Some(res.plural.as_str())
        }) && (subresource.is_empty() || resources.iter().any(|r| r.contains('/')));
        let scope_ok = match scope {
            "Namespaced" => res.namespaced,
            "Cluster" => !res.namespaced,
            _ => true,
        };
        any(&ops, op.as_str())
            && any(&groups, &res.group)
            && any(&versions, &res.version)
            && res_ok
            && scope_ok
    })
}

#[allow(clippy::too_many_arguments)]
fn review_request(
    res: &Resource,
    op: Operation,
    subresource: &str,
    ns: &str,
    name: &str,
    new: Option<&Value>,
    old: Option<&Value>,
    user: &UserInfo,
    dry_run: bool,
) -> Value {
    let gvk = json!({"group": res.group, "version": res.version, "kind": res.kind});
    let gvr = json!({"group": res.group, "version": res.version, "resource": res.plural});
    let options = match op {
        Operation::Create => json!({"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}),
        Operation::Update => json!({"apiVersion": "meta.k8s.io/v1", "kind": "UpdateOptions"}),
        Operation::Delete => json!({"apiVersion": "meta.k8s.io/v1", "kind": "DeleteOptions"}),
    };
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uuid::Uuid::new_v4().to_string(),
            "kind": gvk, "resource": gvr,
            "requestKind": gvk, "requestResource": gvr,
            "subResource": if subresource.is_empty() { Value::Null } else { Value::String(subresource.to_owned()) },
            "name": name,
            "namespace": if res.namespaced { Value::String(ns.to_owned()) } else { Value::Null },
            "operation": op.as_str(),
            "userInfo": {"username": user.username, "groups": user.groups},
            "object": new.cloned().unwrap_or(Value::Null),
            "oldObject": old.cloned().unwrap_or(Value::Null),
            "dryRun": dry_run,
            "options": options,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;

    #[test]
    fn rules_match_like_kube() {
        let reg = Registry::builtin();
        let deploy = reg.get("apps", "v1", "deployments").unwrap();
        let hook = json!({"rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": ["apps"], "apiVersions": ["v1"], "resources": ["deployments"], "scope": "Namespaced"}]});
        assert!(matches_rules(&hook, deploy, Operation::Create, ""));
        assert!(!matches_rules(&hook, deploy, Operation::Delete, ""));
        assert!(!matches_rules(&hook, deploy, Operation::Update, "status"), "status needs an explicit rule");
        let star = json!({"rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}]});
        assert!(matches_rules(&star, deploy, Operation::Delete, ""));
        let ns = reg.get("", "v1", "namespaces").unwrap();
        assert!(!matches_rules(&hook, ns, Operation::Create, ""));
    }
}
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String { e.to_string() }
