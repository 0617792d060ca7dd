//! The admission webhook of the differential suite, served over TLS to both control planes: it
//! denies objects labelled `deny: "true"` with a message, allows `warn: "true"` ones with a
//! warning, and answers `/slow` after three seconds. Registered per plane as
//! ValidatingWebhookConfiguration `differential` for ConfigMaps selected by label: `webhook: on`
//! (failurePolicy Fail), `slow: fail` (timeout 1 s, Fail), `slow: ignore` (timeout 1 s, Ignore).

use std::time::Duration;

use axum::Router;
use axum::routing::post;
use base64::Engine as _;
use ebb_sandbox::pki::CertAuthority;
use ebb_sandbox::sandbox::Sandbox;
use ebb_testbackends::kubernetes::Upstream;
use serde_json::{Value, json};

use crate::backend;

pub const NAMESPACE: &str = "differential-hooks";
const SERVICE: &str = "hook";

fn review(review: &Value) -> Value {
    let labels = &review["request"]["object"]["metadata"]["labels"];
    let mut response = json!({"uid": review["request"]["uid"], "allowed": labels["deny"] != "true"});
    if labels["deny"] == "true" {
        response["status"] = json!({"code": 403, "message": "denied by the differential webhook"});
    }
    if labels["warn"] == "true" {
        response["warnings"] = json!(["the differential webhook warns"]);
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
}

fn router() -> Router {
    Router::new()
        .route("/review", post(|axum::Json(r): axum::Json<Value>| async move { axum::Json(review(&r)) }))
        .route(
            "/slow",
            post(|axum::Json(r): axum::Json<Value>| async move {
                tokio::time::sleep(Duration::from_secs(3)).await;
                axum::Json(review(&r))
            }),
        )
}

/// The webhook configuration and its Service for a plane whose API server reaches the webhook
/// on Service port `port`, trusting `ca_pem`.
fn manifests(service: Value, port: u16, ca_pem: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let hook = |name: &str, path: &str, label: (&str, &str), timeout: u32, policy: &str| {
        json!({"name": name, "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "failurePolicy": policy, "timeoutSeconds": timeout,
            "objectSelector": {"matchLabels": {label.0: label.1}},
            "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}],
            "clientConfig": {"caBundle": ca, "service": {"namespace": NAMESPACE, "name": SERVICE, "path": path, "port": port}}})
    };
    let config = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "differential"},
        "webhooks": [hook("review.differential.test", "/review", ("webhook", "on"), 10, "Fail"),
            hook("slow-fail.differential.test", "/slow", ("slow", "fail"), 1, "Fail"),
            hook("slow-ignore.differential.test", "/slow", ("slow", "ignore"), 1, "Ignore")]});
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}});
    [ns, service, config].iter().map(Value::to_string).collect::<Vec<_>>().join("\n---\n")
}

/// Serves the webhook for the local control plane (its Service mapped to the server) and
/// returns what to apply there.
pub async fn for_local(sb: &Sandbox) -> (backend::Backend, String) {
    let cert = sb.service_cert(NAMESPACE, SERVICE).unwrap();
    let server = backend::serve(&cert, None, router()).await;
    sb.map_service(NAMESPACE, SERVICE, server.addr);
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": SERVICE, "namespace": NAMESPACE},
        "spec": {"ports": [{"port": 443}]}});
    (server, manifests(service, 443, sb.ca.cert_pem()))
}

/// Serves the webhook for upstream: an ExternalName Service naming 127.0.0.1, the server's
/// port in the webhook's client configuration.
pub async fn for_upstream(_up: &Upstream) -> (backend::Backend, String) {
    let ca = CertAuthority::new("differential-webhook-ca").unwrap();
    let cert = ca.issue_server(&[&format!("{SERVICE}.{NAMESPACE}.svc")], &[]).unwrap();
    let server = backend::serve(&cert, None, router()).await;
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": SERVICE, "namespace": NAMESPACE},
        "spec": {"type": "ExternalName", "externalName": "127.0.0.1"}});
    let port = server.addr.port();
    (server, manifests(service, port, ca.cert_pem()))
}
