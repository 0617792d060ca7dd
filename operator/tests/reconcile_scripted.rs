//! `reconcile` against a scripted API server: the operator's context is built on a kube client
//! whose every request is checked against the next expected call (method, path, query, body
//! essentials) and answered from the script, so the order of reads, writes and events is pinned
//! down. A request the script does not expect fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use ebb_api::ScaledObject;
use ebb_operator::context::Ctx;
use ebb_operator::error::Error;
use ebb_plumbing::testing::LogSink;
use http::{Request, Response};
use kube::client::Body;
use kube::runtime::controller::Action;
use kube::runtime::events::Reporter;
use serde_json::{Value, json};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// One expected request and its answer.
struct Call {
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

fn call(method: &'static str, path: &'static str, query: &'static [&'static str]) -> Call {
    Call { method, path, query, body: Box::new(|_| {}), status: 200, reply: None }
}

impl Call {
    fn body(mut self, check: impl Fn(&Value) + Send + 'static) -> Self {
        self.body = Box::new(check);
        self
    }

    fn reply(mut self, status: u16, reply: Value) -> Self {
        self.status = status;
        self.reply = Some(reply);
        self
    }
}

const SO_PATH: &str = "/apis/keda.sh/v1alpha1/namespaces/shop/scaledobjects/web";
const STATUS_PATH: &str = "/apis/keda.sh/v1alpha1/namespaces/shop/scaledobjects/web/status";
const HPA_PATH: &str = "/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers/keda-hpa-web";
const SCALE_PATH: &str = "/apis/apps/v1/namespaces/shop/deployments/web/scale";
const EVENTS_PATH: &str = "/apis/events.k8s.io/v1/namespaces/shop/events";

/// Answers the calls in order, asserting each request; hands the mock back for a last check.
async fn serve(mut handle: Handle, so: Value, calls: Vec<Call>) -> Handle {
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
fn context(client: kube::Client) -> (Arc<Ctx>, tokio::sync::watch::Sender<bool>) {
    let args = <ebb_operator::Args as clap::Parser>::try_parse_from(["ebb-operator"]).unwrap();
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = ebb_operator::metrics::Metrics::register(&mut registry);
    let reporter = Reporter { controller: "ebb-operator".into(), instance: Some("test".into()) };
    let (tx, rx) = tokio::sync::watch::channel(true);
    let leadership = ebb_operator::leader::Leadership::new(rx);
    (Arc::new(ebb_operator::context(&args, client, metrics, reporter, leadership).unwrap()), tx)
}

/// Runs `reconcile` for `so` against `calls`; afterwards no further request may come.
async fn reconcile(so: &Value, calls: Vec<Call>) -> (Result<Action, Error>, Arc<Ctx>) {
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
fn object(patch: Value) -> Value {
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

fn labelled(patch: Value) -> Value {
    let mut so = object(patch);
    so["metadata"]["labels"] = json!({"scaledobject.keda.sh/name": "web"});
    so
}

fn discovery() -> Call {
    call("GET", "/apis/apps/v1", &[]).reply(
        200,
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1", "resources": [
            {"name": "deployments", "singularName": "deployment", "namespaced": true, "kind": "Deployment",
             "verbs": ["get", "list", "watch", "patch"]},
            {"name": "deployments/scale", "singularName": "", "namespaced": true, "group": "autoscaling",
             "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}]}),
    )
}

fn scale(replicas: i32) -> Value {
    json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"replicas": replicas}, "status": {"replicas": replicas}})
}

fn not_found() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
        "message": "not found", "code": 404})
}

/// Event `reason` (`Normal` unless `warning`) with `note` on ScaledObject web.
fn event(reason: &'static str, note: &'static str, warning: bool) -> Call {
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

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == type_).unwrap()
}

#[tokio::test]
async fn a_new_object_is_labelled_checked_given_an_hpa_and_status_then_its_loop_starts() {
    let so = object(json!({}));
    let calls = vec![
        call("PATCH", SO_PATH, &["fieldManager=ebb-operator%2Flabels"]).body(|b| {
            assert_eq!(
                *b,
                json!({"metadata": {"labels": {"scaledobject.keda.sh/name": "web"}, "finalizers": [], "resourceVersion": "7"}})
            );
        }),
        discovery(),
        call("GET", SCALE_PATH, &[]).reply(200, scale(2)),
        call("PATCH", HPA_PATH, &["fieldManager=ebb-operator%2Fhpa", "force=true"]).body(|b| {
            assert_eq!((b["apiVersion"].as_str(), b["kind"].as_str()), (Some("autoscaling/v2"), Some("HorizontalPodAutoscaler")));
            assert_eq!(b["metadata"]["ownerReferences"][0]["uid"], "uid-1");
            assert_eq!((b["spec"]["minReplicas"].as_i64(), b["spec"]["maxReplicas"].as_i64()), (Some(1), Some(5)));
            assert_eq!(b["spec"]["metrics"][0]["external"]["metric"]["name"], "s0-cron-UTC-08xxx-018xxx");
        }),
        call("PATCH", STATUS_PATH, &["fieldManager=ebb-operator%2Fstatus", "force=true"]).body(|b| {
            assert_eq!(b["status"]["hpaName"], "keda-hpa-web");
            assert_eq!(b["status"]["originalReplicaCount"], 2);
            assert_eq!(b["status"]["scaleTargetKind"], "apps/v1.Deployment");
            assert_eq!(condition(b, "Ready")["status"], "True");
            assert_eq!(condition(b, "Paused")["status"], "False");
        }),
        event("ScaledObjectReady", "ScaledObject is ready for scaling", false),
        event("KEDAScalersStarted", "Started scalers watch: cron", false),
    ];
    let (result, _) = reconcile(&so, calls).await;
    assert_eq!(result.unwrap(), Action::requeue(Duration::from_secs(300)));
}

#[tokio::test]
async fn an_unchanged_object_makes_no_request() {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let (ctx, _leader) = context(kube::Client::new(svc, "default"));
    let object = labelled(json!({}));
    let so: ScaledObject = serde_json::from_value(object.clone()).unwrap();
    let server = tokio::spawn(serve(
        handle,
        object,
        vec![
            discovery(),
            call("GET", SCALE_PATH, &[]).reply(200, scale(2)),
            call("PATCH", HPA_PATH, &[]),
            call("PATCH", STATUS_PATH, &[]),
            event("ScaledObjectReady", "ScaledObject is ready for scaling", false),
            event("KEDAScalersStarted", "Started scalers watch: cron", false),
        ],
    ));
    let so = Arc::new(so);
    ebb_operator::reconcile::reconcile(so.clone(), ctx.clone()).await.unwrap();
    let mut handle = server.await.unwrap();
    // The status write comes back as a change of the object: the next reconcile asks nothing.
    let again = ebb_operator::reconcile::reconcile(so, ctx.clone()).await.unwrap();
    assert!(format!("{again:?}").contains("requeue_after: Some("), "the resync remains: {again:?}");
    let extra = tokio::time::timeout(Duration::from_millis(200), handle.next_request()).await;
    assert!(!matches!(extra, Ok(Some(_))), "the fast path made a request");
    ctx.forget("shop", "web");
}

#[tokio::test]
async fn a_pause_with_replicas_deletes_the_hpa_and_pins_the_count() {
    let so = labelled(json!({"metadata": {"annotations": {"autoscaling.keda.sh/paused-replicas": "3"}}}));
    let calls = vec![
        call("DELETE", HPA_PATH, &[]).reply(404, not_found()),
        discovery(),
        call("PATCH", SCALE_PATH, &["fieldManager=ebb-operator%2Fscale"])
            .body(|b| assert_eq!(*b, json!({"spec": {"replicas": 3}})))
            .reply(200, scale(3)),
        call("PATCH", STATUS_PATH, &["fieldManager=ebb-operator%2Fstatus"]).body(|b| {
            assert_eq!(b["status"]["pausedReplicaCount"], 3);
            let paused = condition(b, "Paused");
            assert_eq!(
                (paused["status"].as_str(), paused["reason"].as_str()),
                (Some("True"), Some("ScaledObjectPaused"))
            );
        }),
        event("ScaledObjectPaused", "ScaledObject is paused", false),
    ];
    let (result, _) = reconcile(&so, calls).await;
    assert_eq!(result.unwrap(), Action::requeue(Duration::from_secs(300)));
}

#[tokio::test]
async fn a_missing_target_fails_the_check_in_status_and_event() {
    let message = "scale target not found: apps/v1.Deployment shop/web not found";
    let calls = vec![
        discovery(),
        call("GET", SCALE_PATH, &[]).reply(404, not_found()),
        call("PATCH", STATUS_PATH, &[]).body(move |b| {
            let ready = condition(b, "Ready");
            assert_eq!(
                (ready["status"].as_str(), ready["reason"].as_str(), ready["message"].as_str()),
                (Some("False"), Some("ScaledObjectCheckFailed"), Some(message))
            );
        }),
        event(
            "ScaledObjectCheckFailed",
            "scale target not found: apps/v1.Deployment shop/web not found",
            true,
        ),
    ];
    let (result, _) = reconcile(&labelled(json!({})), calls).await;
    let err = result.unwrap_err();
    assert_eq!(err.to_string(), message);
    assert_eq!(err.reason(), "ScaledObjectCheckFailed");
}

#[tokio::test]
async fn an_api_failure_during_the_check_writes_nothing_and_is_retried() {
    let unavailable = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
        "reason": "ServiceUnavailable", "message": "try again", "code": 503});
    let calls = vec![discovery(), call("GET", SCALE_PATH, &[]).reply(503, unavailable)];
    let (result, _) = reconcile(&labelled(json!({})), calls).await;
    let err = result.unwrap_err();
    assert!(err.is_api_failure(), "{err}");
    assert_eq!(err.reason(), "KubernetesAPIError");
}

#[tokio::test]
async fn a_deletion_with_restore_sets_the_original_replicas_then_releases_the_finalizer() {
    let so = labelled(json!({
        "metadata": {"deletionTimestamp": "2025-01-01T00:00:00Z", "finalizers": ["finalizer.keda.sh"]},
        "spec": {"advanced": {"restoreToOriginalReplicaCount": true}},
        "status": {"originalReplicaCount": 2},
    }));
    let calls = vec![
        discovery(),
        call("PATCH", SCALE_PATH, &["fieldManager=ebb-operator%2Fscale"])
            .body(|b| assert_eq!(*b, json!({"spec": {"replicas": 2}})))
            .reply(200, scale(2)),
        call("PATCH", SO_PATH, &[])
            .body(|b| assert_eq!(*b, json!({"metadata": {"finalizers": [], "resourceVersion": "7"}}))),
        event("ScaledObjectDeleted", "ScaledObject was deleted", false),
    ];
    let (result, _) = reconcile(&so, calls).await;
    assert_eq!(result.unwrap(), Action::await_change());
}

#[tokio::test]
async fn a_reconcile_logs_what_it_did_in_the_objects_span() {
    for (filter, shown) in [("^web$", true), ("^other$", false)] {
        let (logs, _guard) =
            LogSink::capture(&format!("ebb_operator[reconcile{{scaled_object={filter}}}]=debug"));
        let so = labelled(json!({"metadata": {"annotations": {"autoscaling.keda.sh/paused": "true"}}}));
        let calls = vec![
            call("DELETE", HPA_PATH, &[]).reply(404, not_found()),
            call("PATCH", STATUS_PATH, &[]),
            event("ScaledObjectPaused", "ScaledObject is paused", false),
        ];
        reconcile(&so, calls).await.0.unwrap();
        let text = logs.text();
        if !shown {
            assert!(text.is_empty(), "another object's reconcile is filtered out:\n{text}");
            continue;
        }
        let line = text.lines().find(|l| l.contains("reconciled")).unwrap_or_else(|| panic!("{text}"));
        assert!(line.contains(r#"reconcile{namespace="shop" scaled_object="web"}"#), "{line}");
        assert!(
            line.contains(
                "stop-loop, delete-hpa keda-hpa-web, status, paused-metric true, event ScaledObjectPaused"
            ),
            "{line}"
        );
    }
}
