//! The scripted API server the reconcile tests run against: the operator's context is built on a
//! kube client whose every request is checked against the next expected call (method, path,
//! query, body essentials) and answered from the script, so the order of reads, writes and events
//! is pinned down. A request the script does not expect fails the test.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use ebb_api::ScaledObject;
use ebb_operator::context::Ctx;
use ebb_operator::error::Error;
use http::{Request, Response};
use kube::client::Body;
use kube::runtime::controller::Action;
use kube::runtime::events::Reporter;
use serde_json::{Value, json};

pub type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// One expected request and its answer.
pub struct Call {
    method: &'static str,
    path: &'static str,
    /// Each must appear in the query string.
    query: &'static [&'static str],
    /// Checks the request body (JSON, `Null` when empty).
    body: Box<dyn Fn(&Value) + Send>,
    status: u16,
    /// The answer's body; `None`: the ScaledObject for its own paths, else the request's body
    /// (as a server-side apply or a create answers with the object).
    reply: Option<Value>,
}

pub fn call(method: &'static str, path: &'static str, query: &'static [&'static str]) -> Call {
    Call { method, path, query, body: Box::new(|_| {}), status: 200, reply: None }
}

impl Call {
    pub fn body(mut self, check: impl Fn(&Value) + Send + 'static) -> Self {
        self.body = Box::new(check);
        self
    }

    pub fn reply(mut self, status: u16, reply: Value) -> Self {
        self.status = status;
        self.reply = Some(reply);
        self
    }
}

pub const SO_PATH: &str = "/apis/keda.sh/v1alpha1/namespaces/shop/scaledobjects/web";
pub const STATUS_PATH: &str = "/apis/keda.sh/v1alpha1/namespaces/shop/scaledobjects/web/status";
pub const HPA_PATH: &str = "/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers/keda-hpa-web";
pub const SCALE_PATH: &str = "/apis/apps/v1/namespaces/shop/deployments/web/scale";
pub const EVENTS_PATH: &str = "/apis/events.k8s.io/v1/namespaces/shop/events";

/// Answers the calls in order, asserting each request; hands the mock back for a last check.
pub async fn serve(mut handle: Handle, so: Value, calls: Vec<Call>) -> Handle {
    for (i, c) in calls.into_iter().enumerate() {
        let next = tokio::time::timeout(Duration::from_secs(10), handle.next_request()).await;
        let (req, send) = next
            .unwrap_or_else(|_| panic!("call {i}: expected {} {}, none came", c.method, c.path))
            .unwrap_or_else(|| panic!("call {i}: the client is gone"));
        let what = format!("call {i}: {} {}", req.method(), req.uri());
        assert_eq!((req.method().as_str(), req.uri().path()), (c.method, c.path), "{what}");
        let query = req.uri().query().unwrap_or_default().to_owned();
        for q in c.query {
            assert!(query.contains(q), "{what}: query should contain {q}");
        }
        let content_type =
            req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let bytes = req.into_body().collect_bytes().await.unwrap();
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
        if c.method == "PATCH" {
            assert!(content_type.contains("patch"), "{what}: content type {content_type}");
        }
        (c.body)(&body);
        let own = if c.path.starts_with(SO_PATH) { &so } else { &body };
        let answer = Response::builder()
            .status(c.status)
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(c.reply.as_ref().unwrap_or(own)).unwrap()))
            .unwrap();
        send.send_response(answer);
    }
    handle
}

/// The operator's context on the scripted client, leading.
pub fn context(client: kube::Client) -> (Arc<Ctx>, tokio::sync::watch::Sender<bool>) {
    let args = <ebb_operator::Args as clap::Parser>::try_parse_from(["ebb-operator"]).unwrap();
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = ebb_operator::metrics::Metrics::register(&mut registry);
    let reporter = Reporter { controller: "ebb-operator".into(), instance: Some("test".into()) };
    let (tx, rx) = tokio::sync::watch::channel(true);
    let leadership = ebb_operator::leader::Leadership::new(rx);
    (Arc::new(ebb_operator::context(&args, client, metrics, reporter, leadership).unwrap()), tx)
}

/// Runs `reconcile` for `so` against `calls`; afterwards no further request may come.
pub async fn reconcile(so: &Value, calls: Vec<Call>) -> (Result<Action, Error>, Arc<Ctx>) {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let (ctx, leader) = context(kube::Client::new(svc, "default"));
    let server = tokio::spawn(serve(handle, so.clone(), calls));
    let so: ScaledObject = serde_json::from_value(so.clone()).unwrap();
    let result = tokio::time::timeout(
        Duration::from_secs(20),
        ebb_operator::reconcile::reconcile(Arc::new(so), ctx.clone()),
    )
    .await
    .expect("reconcile finished");
    let mut handle = match server.await {
        Ok(h) => h,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    // Stop the loop a reconcile may have started, then check that nothing else was asked.
    ctx.forget("shop", "web");
    let extra = tokio::time::timeout(Duration::from_millis(200), handle.next_request()).await;
    if let Ok(Some((req, _))) = extra {
        panic!("unexpected request after the script: {} {}", req.method(), req.uri());
    }
    drop(leader);
    (result, ctx)
}

/// `shop/web`, a cron ScaledObject (polling hourly, so its loop does not tick during the test).
pub fn object(patch: Value) -> Value {
    let mut so = json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": "web", "namespace": "shop", "uid": "uid-1", "resourceVersion": "7"},
        "spec": {"scaleTargetRef": {"name": "web"}, "maxReplicaCount": 5, "pollingInterval": 3600,
            "triggers": [{"type": "cron", "metadata": {"timezone": "UTC", "start": "0 8 * * *",
                "end": "0 18 * * *", "desiredReplicas": "3"}}]}});
    for (k, v) in patch.as_object().unwrap() {
        for (k2, v2) in v.as_object().unwrap() {
            so[k][k2] = v2.clone();
        }
    }
    so
}

pub fn labelled(patch: Value) -> Value {
    let mut so = object(patch);
    so["metadata"]["labels"] = json!({"scaledobject.keda.sh/name": "web"});
    so
}

pub fn discovery() -> Call {
    call("GET", "/apis/apps/v1", &[]).reply(
        200,
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1", "resources": [
            {"name": "deployments", "singularName": "deployment", "namespaced": true, "kind": "Deployment",
             "verbs": ["get", "list", "watch", "patch"]},
            {"name": "deployments/scale", "singularName": "", "namespaced": true, "group": "autoscaling",
             "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}]}),
    )
}

pub fn scale(replicas: i32) -> Value {
    json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"replicas": replicas}, "status": {"replicas": replicas}})
}

pub fn not_found() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
        "message": "not found", "code": 404})
}

/// Event `reason` (`Normal` unless `warning`) with `note` on ScaledObject web.
pub fn event(reason: &'static str, note: &'static str, warning: bool) -> Call {
    call("POST", EVENTS_PATH, &[]).body(move |b| {
        assert_eq!(b["reason"], reason, "{b}");
        assert_eq!(b["note"], note, "{b}");
        assert_eq!(b["type"], if warning { "Warning" } else { "Normal" }, "{b}");
        assert_eq!(
            (b["regarding"]["kind"].as_str(), b["regarding"]["name"].as_str()),
            (Some("ScaledObject"), Some("web"))
        );
    })
}

pub fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == type_).unwrap()
}
