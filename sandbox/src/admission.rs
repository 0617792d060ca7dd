//! Validating admission: every create, update and delete of a resource matched by a
//! ValidatingWebhookConfiguration rule is sent as an admission.k8s.io/v1 AdmissionReview over
//! TLS (verifying the webhook's caBundle) to its service or URL, honouring matchPolicy-free
//! rule matching (operations, apiGroups, apiVersions, resources incl. `*`, `x/sub`, `*/sub`,
//! `x/*`, scope), namespaceSelector, objectSelector (new or old object), matchConditions (the
//! subset [`match_conditions`] evaluates), sideEffects for
//! dry-run requests, timeoutSeconds, the response uid check and failurePolicy; `/scale`
//! requests are reviewed with autoscaling/v1 Scale objects, and a denial is answered as
//! kube-apiserver words it. Services resolve to loopback addresses through a mapping given to
//! the control plane.

mod match_conditions;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::RwLock;
use std::time::Duration;

use base64::Engine;
use ebb_api::label_selector::LabelSelector;
use serde_json::{Value, json};

use crate::control::{ControlPlane, UserInfo, WriteCtx};
use crate::meta;
use crate::resources::Resource;
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

    /// Removes the mapping of the Service `namespace/name` (it has no endpoints any more).
    pub fn unmap_service(&self, namespace: &str, name: &str) {
        self.services
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&format!("{namespace}/{name}"));
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
        ctx: &WriteCtx,
    ) -> Result<(), ApiError> {
        let (user, dry_run) = (&ctx.user, ctx.dry_run);
        let (configs, _) =
            cp.store.list("admissionregistration.k8s.io", "validatingwebhookconfigurations", None);
        if configs.is_empty() {
            return Ok(());
        }
        // Requests on /scale are reviewed with autoscaling/v1 Scale objects.
        let view = |o: Option<&Value>| -> Option<Value> {
            let o = o?;
            if subresource == "scale" && res.scale.is_some() {
                crate::control::to_scale(res, o).ok()
            } else {
                Some(o.clone())
            }
        };
        let (new_view, old_view) = (view(new), view(old));
        let (new, old) = (new_view.as_ref(), old_view.as_ref());
        for (_, cfg) in configs {
            let cfg_name = meta::name(&cfg).unwrap_or_default().to_owned();
            for hook in cfg.get("webhooks").and_then(Value::as_array).into_iter().flatten() {
                if !matches_rules(hook, res, op, subresource)
                    || !self.matches_selectors(cp, hook, res, ns, new, old)?
                {
                    continue;
                }
                let hook_name = hook.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
                let fail_open = hook.get("failurePolicy").and_then(Value::as_str) == Some("Ignore");
                match match_conditions::matches(hook, user, new) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) if fail_open => {
                        tracing::warn!(webhook = hook_name, config = cfg_name, "skipping: {e}");
                        continue;
                    }
                    Err(e) => {
                        return Err(ApiError::internal(format!(
                            "Internal error occurred: failed calling webhook {hook_name:?}: {e}"
                        )));
                    }
                }
                if dry_run && !supports_dry_run(hook) {
                    return Err(ApiError::bad_request(format!(
                        "admission webhook {hook_name:?} does not support dry run"
                    )));
                }
                let review = review_request(res, op, subresource, ns, name, new, old, user, dry_run);
                match self.call(hook, &review).await {
                    Ok(resp) => {
                        let allowed =
                            resp.pointer("/response/allowed").and_then(Value::as_bool).unwrap_or(false);
                        if !allowed {
                            return Err(denial(&hook_name, resp.pointer("/response/status")));
                        }
                        for w in
                            resp.pointer("/response/warnings").and_then(Value::as_array).into_iter().flatten()
                        {
                            if let Some(w) = w.as_str() {
                                ctx.warnings.push(w.to_owned());
                            }
                        }
                    }
                    Err(e) if fail_open => {
                        tracing::warn!(webhook = hook_name, config = cfg_name, "failing open: {e}");
                    }
                    Err(e) => {
                        return Err(ApiError::internal(format!(
                            "Internal error occurred: failed calling webhook {hook_name:?}: failed to call webhook: {e}"
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// objectSelector matches the new or the old object; namespaceSelector matches the labels
    /// of the request's namespace (of the object itself for a Namespace) and is not consulted
    /// for other cluster-scoped resources.
    fn matches_selectors(
        &self,
        cp: &ControlPlane,
        hook: &Value,
        res: &Resource,
        ns: &str,
        new: Option<&Value>,
        old: Option<&Value>,
    ) -> Result<bool, ApiError> {
        if let Some(sel) = hook.get("objectSelector") {
            let s = LabelSelector::from_object(sel)
                .map_err(|e| ApiError::internal(format!("invalid objectSelector: {e}")))?;
            if !s.is_empty() && ![new, old].into_iter().flatten().any(|o| s.matches(&meta::labels(o))) {
                return Ok(false);
            }
        }
        let is_namespace = res.group.is_empty() && res.plural == "namespaces";
        if let (Some(sel), true) = (hook.get("namespaceSelector"), res.namespaced || is_namespace) {
            let s = LabelSelector::from_object(sel)
                .map_err(|e| ApiError::internal(format!("invalid namespaceSelector: {e}")))?;
            if s.is_empty() {
                return Ok(true);
            }
            let mut labels = if is_namespace {
                new.or(old).map(meta::labels).unwrap_or_default()
            } else {
                let key = (String::new(), "namespaces".to_owned(), String::new(), ns.to_owned());
                cp.store.get(&key).map(|n| meta::labels(&n)).unwrap_or_default()
            };
            let ns_name = if is_namespace { new.or(old).and_then(meta::name).unwrap_or(ns) } else { ns };
            labels.entry("kubernetes.io/metadata.name".into()).or_insert_with(|| ns_name.to_owned());
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
            let addr = self
                .service_addr(ns, name)
                .ok_or_else(|| format!("service \"{ns}/{name}\" has no endpoints in the sandbox"))?;
            let host = format!("{name}.{ns}.svc");
            builder = builder.resolve(&host, addr);
            // The mapped address stands for the Service's endpoints whatever `port` says; a port
            // in the URL would replace the mapped one, so the URL carries none.
            format!("https://{host}{path}")
        } else {
            cc.get("url").and_then(Value::as_str).ok_or("clientConfig needs service or url")?.to_owned()
        };
        let client = builder.build().map_err(|e| e.to_string())?;
        let resp = client.post(&url).json(review).send().await.map_err(|e| {
            if e.is_timeout() {
                format!("Post {url:?}: context deadline exceeded")
            } else {
                format!("Post {url:?}: {}", error_chain(&e))
            }
        })?;
        if !resp.status().is_success() {
            return Err(format!("Post {url:?}: unexpected status {}", resp.status()));
        }
        let v: Value = resp
            .json()
            .await
            .map_err(|e| format!("cannot decode the AdmissionReview response: {}", error_chain(&e)))?;
        if v.get("response").is_none_or(Value::is_null) {
            return Err("webhook response was absent".into());
        }
        let uid = review.pointer("/request/uid").and_then(Value::as_str).unwrap_or_default();
        let got = v.pointer("/response/uid").and_then(Value::as_str).unwrap_or_default();
        if got != uid {
            return Err(format!("expected response.uid={uid:?}, got {got:?}"));
        }
        Ok(v)
    }
}

/// An error with its causes, `outer: inner: innermost` (reqwest's own text names only the
/// outermost layer, leaving out what TLS or the connection said).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

/// Whether a webhook may be called for a dry-run request: its sideEffects must be `None` or
/// `NoneOnDryRun`.
fn supports_dry_run(hook: &Value) -> bool {
    matches!(hook.get("sideEffects").and_then(Value::as_str), Some("None" | "NoneOnDryRun"))
}

/// The error a denial turns into: the webhook's status with its code (raised to 400 when it is
/// not an error code), its reason, and a message naming the webhook.
fn denial(hook_name: &str, status: Option<&Value>) -> ApiError {
    let empty = json!({});
    let status = status.filter(|s| s.is_object()).unwrap_or(&empty);
    let code = status
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| *c >= 400)
        .unwrap_or(400);
    let reason = status.get("reason").and_then(Value::as_str).unwrap_or_default();
    let msg = status.get("message").and_then(Value::as_str).unwrap_or_default();
    let denied_by = format!("admission webhook {hook_name:?} denied the request");
    let text = if !msg.is_empty() {
        format!("{denied_by}: {msg}")
    } else if !reason.is_empty() {
        format!("{denied_by}: {reason}")
    } else {
        format!("{denied_by} without explanation")
    };
    ApiError::new(code, status_reason(reason), text)
}

/// The `metav1.StatusReason` values, so a webhook's reason can be passed on (an unknown one is
/// dropped).
fn status_reason(reason: &str) -> &'static str {
    const REASONS: [&str; 19] = [
        "Unauthorized",
        "Forbidden",
        "NotFound",
        "AlreadyExists",
        "Conflict",
        "Gone",
        "Invalid",
        "ServerTimeout",
        "StoreReadError",
        "Timeout",
        "TooManyRequests",
        "BadRequest",
        "MethodNotAllowed",
        "NotAcceptable",
        "RequestEntityTooLarge",
        "UnsupportedMediaType",
        "InternalError",
        "Expired",
        "ServiceUnavailable",
    ];
    REASONS.into_iter().find(|r| *r == reason).unwrap_or("")
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
    hook.get("rules").and_then(Value::as_array).into_iter().flatten().any(|rule| {
        let ops = list(rule.get("operations"));
        let groups = list(rule.get("apiGroups"));
        let versions = list(rule.get("apiVersions"));
        let resources = list(rule.get("resources"));
        let scope = rule.get("scope").and_then(Value::as_str).unwrap_or("*");
        let any = |xs: &[String], x: &str| xs.iter().any(|e| e == "*" || e == x);
        // `x` covers the resource x only, `x/y` its subresource y; `*` stands for any on
        // either side of the slash (so `*` alone means every resource but no subresource).
        let res_ok = resources.iter().any(|r| {
            let (r_res, r_sub) = r.split_once('/').unwrap_or((r.as_str(), ""));
            (r_res == "*" || r_res == res.plural) && (r_sub == "*" || r_sub == subresource)
        });
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
    let gvk = if subresource == "scale" && res.scale.is_some() {
        json!({"group": "autoscaling", "version": "v1", "kind": "Scale"})
    } else {
        json!({"group": res.group, "version": res.version, "kind": res.kind})
    };
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
        // `*` alone covers no subresource; `*/x`, `x/*` and `*/*` do.
        let rule = |r: &str| json!({"rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": [r]}]});
        let cases = [
            ("*", "", true),
            ("*", "status", false),
            ("*/*", "", true),
            ("*/*", "scale", true),
            ("*/scale", "scale", true),
            ("*/scale", "status", false),
            ("*/scale", "", false),
            ("deployments/*", "status", true),
            ("deployments/status", "status", true),
            ("deployments/status", "", false),
            ("statefulsets/*", "status", false),
        ];
        for (r, sub, want) in cases {
            assert_eq!(matches_rules(&rule(r), deploy, Operation::Update, sub), want, "{r} vs {sub:?}");
        }
    }

    #[test]
    fn denials_carry_the_webhooks_status() {
        let cases = [
            (
                json!({"code": 403, "message": "no"}),
                403,
                "",
                "admission webhook \"w.x\" denied the request: no",
            ),
            (
                json!({"code": 422, "reason": "Invalid", "message": "bad"}),
                422,
                "Invalid",
                "admission webhook \"w.x\" denied the request: bad",
            ),
            (
                json!({"reason": "Forbidden"}),
                400,
                "Forbidden",
                "admission webhook \"w.x\" denied the request: Forbidden",
            ),
            (
                json!({"code": 200}),
                400,
                "",
                "admission webhook \"w.x\" denied the request without explanation",
            ),
            (
                json!({"reason": "Whatever"}),
                400,
                "",
                "admission webhook \"w.x\" denied the request: Whatever",
            ),
        ];
        for (status, code, reason, message) in cases {
            let e = denial("w.x", Some(&status));
            assert_eq!((e.code, e.reason, e.message.as_str()), (code, reason, message), "{status}");
        }
        assert_eq!(denial("w.x", None).code, 400);
    }

    #[test]
    fn dry_run_needs_side_effect_free_webhooks() {
        for (side_effects, ok) in [
            (json!("None"), true),
            (json!("NoneOnDryRun"), true),
            (json!("Some"), false),
            (json!(null), false),
        ] {
            assert_eq!(supports_dry_run(&json!({"sideEffects": side_effects})), ok, "{side_effects}");
        }
    }

    #[test]
    fn error_chains_name_every_cause() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("error sending request")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = Outer(std::io::Error::other("invalid peer certificate: UnknownIssuer"));
        assert_eq!(error_chain(&e), "error sending request: invalid peer certificate: UnknownIssuer");
    }
}
