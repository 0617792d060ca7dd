//! Conformance of validating admission with kube-apiserver: a webhook served over TLS in the
//! test, registered through a ValidatingWebhookConfiguration made with kube-rs, sees the
//! AdmissionReviews kube-apiserver would send and its answers take effect as they would there
//! (denials, response uid check, dry run, selectors, failurePolicy, timeoutSeconds, caBundle).

#![allow(clippy::unwrap_used)]

mod backend;
mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use ebb_sandbox::pki::CertAuthority;
use ebb_sandbox::sandbox::{Config, Sandbox};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// The test's webhook: `/validate` denies objects labelled `deny: "true"`, `/wrong-uid`
/// allows with a uid of its own, `/slow` allows after three seconds. Every review is kept.
#[derive(Debug, Clone, Default)]
struct Hook {
    reviews: Arc<Mutex<Vec<Value>>>,
}

impl Hook {
    fn reviews(&self) -> Vec<Value> {
        self.reviews.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.reviews.lock().unwrap().len()
    }
}

fn answer(uid: &Value, allowed: bool) -> Json<Value> {
    let mut response = json!({"uid": uid, "allowed": allowed});
    if !allowed {
        response["status"] = json!({"code": 403, "message": "denied by test"});
    }
    Json(json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}))
}

fn webhook_router(hook: Hook) -> Router {
    Router::new()
        .route(
            "/validate",
            post(|State(h): State<Hook>, Json(review): Json<Value>| async move {
                h.reviews.lock().unwrap().push(review.clone());
                let deny = review.pointer("/request/object/metadata/labels/deny") == Some(&json!("true"));
                answer(&review["request"]["uid"], !deny)
            }),
        )
        .route(
            "/wrong-uid",
            post(|State(h): State<Hook>, Json(review): Json<Value>| async move {
                h.reviews.lock().unwrap().push(review);
                answer(&json!("00000000-0000-0000-0000-000000000000"), true)
            }),
        )
        .route(
            "/slow",
            post(|State(h): State<Hook>, Json(review): Json<Value>| async move {
                h.reviews.lock().unwrap().push(review.clone());
                tokio::time::sleep(Duration::from_secs(3)).await;
                answer(&review["request"]["uid"], true)
            }),
        )
        .with_state(hook)
}

/// A sandbox with the webhook served and mapped as Service ebb/webhook.
struct Fixture {
    sb: Sandbox,
    client: kube::Client,
    hook: Hook,
    server: backend::Backend,
}

async fn setup() -> Fixture {
    let (sb, client) = common::start(Config { controllers: false, ..Default::default() }).await;
    let hook = Hook::default();
    let cert = sb.service_cert("ebb", "webhook").unwrap();
    let server = backend::serve(&cert, None, webhook_router(hook.clone())).await;
    sb.map_service("ebb", "webhook", server.addr);
    Fixture { sb, client, hook, server }
}

fn b64(pem: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(pem)
}

/// One webhook on ConfigMap CREATE/UPDATE calling `path` of Service ebb/webhook (port 443),
/// failurePolicy Fail, sideEffects None; `extra` fields are laid over it.
fn webhook(name: &str, path: &str, ca_pem: &str, extra: Value) -> Value {
    let mut w = json!({
        "name": name,
        "clientConfig": {
            "service": {"namespace": "ebb", "name": "webhook", "path": path, "port": 443},
            "caBundle": b64(ca_pem),
        },
        "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}],
        "failurePolicy": "Fail",
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        w[k] = v.clone();
    }
    w
}

async fn register(client: &kube::Client, name: &str, webhooks: Vec<Value>) -> ValidatingWebhookConfiguration {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let cfg = serde_json::from_value(json!({"metadata": {"name": name}, "webhooks": webhooks})).unwrap();
    api.create(&PostParams::default(), &cfg).await.unwrap()
}

type Labels<'a> = &'a [(&'a str, &'a str)];

fn cm(name: &str, labels: Labels) -> ConfigMap {
    let labels: BTreeMap<_, _> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}})).unwrap()
}

/// The API error of a failed call.
fn api_error<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> Box<kube::core::Status> {
    match r {
        Err(kube::Error::Api(s)) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn webhook_allows_denies_and_sees_the_request() {
    let f = setup().await;
    register(
        &f.client,
        "deny-labelled",
        vec![webhook("deny.ebb.test", "/validate", f.sb.ca.cert_pem(), json!({}))],
    )
    .await;
    let cms: Api<ConfigMap> = Api::namespaced(f.client.clone(), "default");

    let created = cms.create(&PostParams::default(), &cm("ok", &[("app", "x")])).await.unwrap();
    assert!(created.metadata.uid.is_some());
    let reviews = f.hook.reviews();
    assert_eq!(reviews.len(), 1);
    let r = &reviews[0];
    assert_eq!(r["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(r["kind"], "AdmissionReview");
    let req = &r["request"];
    assert!(req["uid"].as_str().is_some_and(|u| !u.is_empty()), "{req}");
    assert_eq!(req["kind"], json!({"group": "", "version": "v1", "kind": "ConfigMap"}));
    assert_eq!(req["resource"], json!({"group": "", "version": "v1", "resource": "configmaps"}));
    assert_eq!(req["operation"], "CREATE");
    assert_eq!(req["namespace"], "default");
    assert_eq!(req["name"], "ok");
    assert_eq!(req["object"]["metadata"]["name"], "ok");
    assert_eq!(req["object"]["metadata"]["labels"], json!({"app": "x"}));
    assert_eq!(req["object"]["data"], json!({"k": "v"}));
    assert_eq!(req["userInfo"]["username"], "admin");
    assert!(req["userInfo"]["groups"].as_array().unwrap().contains(&json!("system:masters")));
    assert_eq!(req["dryRun"], false);
    assert!(req.get("oldObject").is_none_or(Value::is_null), "{req}");

    // A denial: the webhook's code and message, worded as kube-apiserver words it.
    let e = api_error(cms.create(&PostParams::default(), &cm("bad", &[("deny", "true")])).await);
    assert_eq!(e.code, 403);
    assert_eq!(e.message, r#"admission webhook "deny.ebb.test" denied the request: denied by test"#);
    assert!(cms.get_opt("bad").await.unwrap().is_none(), "a denied object is not stored");

    // Updates are reviewed with the old object; a denied one leaves the stored object alone.
    let mut changed = created.clone();
    changed.metadata.labels = Some([("deny".to_string(), "true".to_string())].into());
    let e = api_error(cms.replace("ok", &PostParams::default(), &changed).await);
    assert_eq!(e.code, 403);
    let update = f.hook.reviews().pop().unwrap();
    assert_eq!(update["request"]["operation"], "UPDATE");
    assert_eq!(update["request"]["oldObject"]["metadata"]["labels"], json!({"app": "x"}));
    assert_eq!(update["request"]["object"]["metadata"]["labels"], json!({"deny": "true"}));
    assert_eq!(cms.get("ok").await.unwrap().metadata.labels, created.metadata.labels);
    let uids: Vec<_> = f.hook.reviews().iter().map(|r| r["request"]["uid"].clone()).collect();
    assert!(uids.iter().enumerate().all(|(i, u)| !uids[..i].contains(u)), "every review has its own uid");

    // DELETE is not among the rules: not sent.
    let before = f.hook.count();
    cms.delete("ok", &DeleteParams::default()).await.unwrap();
    assert_eq!(f.hook.count(), before);
    // Other resources are not sent either.
    let nss: Api<Namespace> = Api::all(f.client.clone());
    nss.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "n1"}})).unwrap())
        .await
        .unwrap();
    assert_eq!(f.hook.count(), before);
    f.sb.stop().await;
}

#[tokio::test]
async fn dry_run_reaches_side_effect_free_webhooks_and_stores_nothing() {
    let f = setup().await;
    let vwcs: Api<ValidatingWebhookConfiguration> = Api::all(f.client.clone());
    register(&f.client, "dry", vec![webhook("dry.ebb.test", "/validate", f.sb.ca.cert_pem(), json!({}))])
        .await;
    let cms: Api<ConfigMap> = Api::namespaced(f.client.clone(), "default");
    let dry = PostParams { dry_run: true, ..Default::default() };

    let answered = cms.create(&dry, &cm("trial", &[])).await.unwrap();
    assert_eq!(answered.metadata.name.as_deref(), Some("trial"));
    let reviews = f.hook.reviews();
    assert_eq!(reviews.len(), 1);
    assert_eq!(reviews[0]["request"]["dryRun"], true);
    assert!(cms.get_opt("trial").await.unwrap().is_none(), "a dry run stores nothing");
    // A dry run is still denied by the webhook.
    let e = api_error(cms.create(&dry, &cm("trial", &[("deny", "true")])).await);
    assert_eq!(e.code, 403);

    // A webhook that may have side effects is not called for a dry run: the request fails.
    vwcs.delete("dry", &DeleteParams::default()).await.unwrap();
    let risky = webhook("risky.ebb.test", "/validate", f.sb.ca.cert_pem(), json!({"sideEffects": "Some"}));
    register(&f.client, "risky", vec![risky]).await;
    let before = f.hook.count();
    let e = api_error(cms.create(&dry, &cm("trial", &[])).await);
    assert_eq!(e.code, 400);
    assert_eq!(e.message, r#"admission webhook "risky.ebb.test" does not support dry run"#);
    assert_eq!(f.hook.count(), before, "not called");
    cms.create(&PostParams::default(), &cm("real", &[])).await.unwrap();
    assert_eq!(f.hook.count(), before + 1, "called for a real request");
    assert_eq!(f.hook.reviews().last().unwrap()["request"]["dryRun"], false);
    f.sb.stop().await;
}

#[tokio::test]
async fn response_uid_must_echo_the_request() {
    let f = setup().await;
    register(&f.client, "liar", vec![webhook("liar.ebb.test", "/wrong-uid", f.sb.ca.cert_pem(), json!({}))])
        .await;
    let cms: Api<ConfigMap> = Api::namespaced(f.client.clone(), "default");
    let e = api_error(cms.create(&PostParams::default(), &cm("c", &[])).await);
    assert_eq!(e.code, 500);
    assert!(e.message.contains(r#"failed calling webhook "liar.ebb.test""#), "{}", e.message);
    assert!(e.message.contains("expected response.uid="), "{}", e.message);
    assert_eq!(f.hook.count(), 1, "the webhook was called");
    assert!(cms.get_opt("c").await.unwrap().is_none());
    f.sb.stop().await;
}

#[tokio::test]
async fn object_and_namespace_selectors_filter_requests() {
    let f = setup().await;
    let nss: Api<Namespace> = Api::all(f.client.clone());
    for (name, team) in [("team-a", "a"), ("team-b", "b")] {
        let ns = json!({"metadata": {"name": name, "labels": {"team": team}}});
        nss.create(&PostParams::default(), &serde_json::from_value(ns).unwrap()).await.unwrap();
    }
    let selective = webhook(
        "selective.ebb.test",
        "/validate",
        f.sb.ca.cert_pem(),
        json!({"objectSelector": {"matchLabels": {"checked": "yes"}}, "namespaceSelector": {"matchLabels": {"team": "a"}}}),
    );
    // Namespaces also carry kubernetes.io/metadata.name, which selectors may use.
    let by_name = webhook(
        "by-name.ebb.test",
        "/validate",
        f.sb.ca.cert_pem(),
        json!({"namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["team-b"]}]},
               "objectSelector": {"matchExpressions": [{"key": "by-name", "operator": "Exists"}]}}),
    );
    register(&f.client, "selective", vec![selective, by_name]).await;
    let in_a: Api<ConfigMap> = Api::namespaced(f.client.clone(), "team-a");
    let in_b: Api<ConfigMap> = Api::namespaced(f.client.clone(), "team-b");
    let pp = PostParams::default();

    // (namespace, object labels, sent to the webhook)
    let cases: [(&Api<ConfigMap>, &str, Labels, usize); 6] = [
        (&in_a, "checked", &[("checked", "yes")], 1),
        (&in_a, "unchecked", &[("checked", "no")], 0),
        (&in_a, "unlabelled", &[], 0),
        (&in_b, "other-team", &[("checked", "yes")], 0),
        (&in_b, "by-name", &[("by-name", "")], 1),
        (&in_a, "by-name-elsewhere", &[("by-name", "")], 0),
    ];
    for (api, name, labels, sent) in cases {
        let before = f.hook.count();
        api.create(&pp, &cm(name, labels)).await.unwrap();
        assert_eq!(f.hook.count() - before, sent, "{name}");
        if sent == 1 {
            assert_eq!(f.hook.reviews().last().unwrap()["request"]["name"], name);
        }
    }
    // A denial only happens where the webhook is called.
    let e = api_error(in_a.create(&pp, &cm("denied", &[("checked", "yes"), ("deny", "true")])).await);
    assert_eq!(e.code, 403);
    assert!(e.message.starts_with(r#"admission webhook "selective.ebb.test" denied"#), "{}", e.message);
    in_b.create(&pp, &cm("not-asked", &[("checked", "yes"), ("deny", "true")])).await.unwrap();
    in_a.create(&pp, &cm("not-asked", &[("deny", "true")])).await.unwrap();

    // On update the old object counts too: dropping the selected label is still reviewed.
    let mut dropped = in_a.get("checked").await.unwrap();
    dropped.metadata.labels = Some([("deny".to_string(), "true".to_string())].into());
    let before = f.hook.count();
    let e = api_error(in_a.replace("checked", &pp, &dropped).await);
    assert_eq!(e.code, 403);
    assert_eq!(f.hook.count(), before + 1);
    f.sb.stop().await;
}

#[tokio::test]
async fn failure_policy_decides_when_the_webhook_is_down() {
    let f = setup().await;
    register(
        &f.client,
        "strict",
        vec![webhook("strict.ebb.test", "/validate", f.sb.ca.cert_pem(), json!({}))],
    )
    .await;
    let vwcs: Api<ValidatingWebhookConfiguration> = Api::all(f.client.clone());
    let cms: Api<ConfigMap> = Api::namespaced(f.client.clone(), "default");
    cms.create(&PostParams::default(), &cm("while-up", &[])).await.unwrap();
    assert_eq!(f.hook.count(), 1);

    f.server.stop().await;
    let e = api_error(cms.create(&PostParams::default(), &cm("while-down", &[])).await);
    assert_eq!(e.code, 500);
    assert!(e.message.contains(r#"failed calling webhook "strict.ebb.test""#), "{}", e.message);
    assert!(cms.get_opt("while-down").await.unwrap().is_none());

    let ignore = json!({"webhooks": [webhook("strict.ebb.test", "/validate", f.sb.ca.cert_pem(), json!({"failurePolicy": "Ignore"}))]});
    vwcs.patch("strict", &PatchParams::default(), &Patch::Merge(&ignore)).await.unwrap();
    cms.create(&PostParams::default(), &cm("while-down", &[])).await.unwrap();
    assert!(cms.get_opt("while-down").await.unwrap().is_some(), "Ignore lets the request through");
    f.sb.stop().await;
}

#[tokio::test]
async fn timeout_seconds_bounds_the_call() {
    let f = setup().await;
    let slow = |policy: &str| {
        webhook(
            "slow.ebb.test",
            "/slow",
            f.sb.ca.cert_pem(),
            json!({"timeoutSeconds": 1, "failurePolicy": policy}),
        )
    };
    register(&f.client, "slow", vec![slow("Fail")]).await;
    let vwcs: Api<ValidatingWebhookConfiguration> = Api::all(f.client.clone());
    let cms: Api<ConfigMap> = Api::namespaced(f.client.clone(), "default");

    let started = Instant::now();
    let e = api_error(cms.create(&PostParams::default(), &cm("late", &[])).await);
    let took = started.elapsed();
    assert!(took < Duration::from_millis(2500), "the call is cut at timeoutSeconds, took {took:?}");
    assert!(took >= Duration::from_millis(900), "not before timeoutSeconds, took {took:?}");
    assert_eq!(e.code, 500);
    assert!(e.message.contains(r#"failed calling webhook "slow.ebb.test""#), "{}", e.message);
    assert!(e.message.contains("context deadline exceeded"), "{}", e.message);
    assert!(cms.get_opt("late").await.unwrap().is_none());

    vwcs.patch("slow", &PatchParams::default(), &Patch::Merge(&json!({"webhooks": [slow("Ignore")]})))
        .await
        .unwrap();
    let started = Instant::now();
    cms.create(&PostParams::default(), &cm("late", &[])).await.unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_millis(2500), "took {took:?}");
    assert!(cms.get_opt("late").await.unwrap().is_some());
    assert_eq!(f.hook.count(), 2, "both attempts reached the webhook");
    f.sb.stop().await;
}

#[tokio::test]
async fn ca_bundle_is_verified() {
    let f = setup().await;
    let other = CertAuthority::new("not-the-sandbox-ca").unwrap();
    register(
        &f.client,
        "untrusted",
        vec![webhook("untrusted.ebb.test", "/validate", other.cert_pem(), json!({}))],
    )
    .await;
    let cms: Api<ConfigMap> = Api::namespaced(f.client.clone(), "default");
    let e = api_error(cms.create(&PostParams::default(), &cm("c", &[])).await);
    assert_eq!(e.code, 500);
    assert!(e.message.contains(r#"failed calling webhook "untrusted.ebb.test""#), "{}", e.message);
    assert!(e.message.to_lowercase().contains("certificate"), "the TLS failure is named: {}", e.message);
    assert_eq!(f.hook.count(), 0, "no review crosses an unverified connection");
    assert!(cms.get_opt("c").await.unwrap().is_none());
    f.sb.stop().await;
}

#[tokio::test]
async fn service_port_is_the_services_not_the_listeners() {
    let f = setup().await;
    // The Service's port is 8443; the mapping says where its endpoints really listen.
    let mut hook = webhook("port.ebb.test", "/validate", f.sb.ca.cert_pem(), json!({}));
    hook["clientConfig"]["service"]["port"] = json!(8443);
    register(&f.client, "port", vec![hook]).await;
    let cms: Api<ConfigMap> = Api::namespaced(f.client.clone(), "default");
    cms.create(&PostParams::default(), &cm("c", &[])).await.unwrap();
    assert_eq!(f.hook.count(), 1);
    f.sb.stop().await;
}

#[tokio::test]
async fn scale_requests_are_reviewed_as_scale_objects() {
    let f = setup().await;
    let rules = json!({"rules": [{"operations": ["UPDATE"], "apiGroups": ["apps"], "apiVersions": ["v1"], "resources": ["deployments/scale"]}]});
    register(&f.client, "scale", vec![webhook("scale.ebb.test", "/validate", f.sb.ca.cert_pem(), rules)])
        .await;
    let deps: Api<Deployment> = Api::namespaced(f.client.clone(), "default");
    let d = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "main", "image": "x"}]}}}
    }))
    .unwrap();
    deps.create(&PostParams::default(), &d).await.unwrap();
    let replicas = |n: i32| Patch::Merge(json!({"spec": {"replicas": n}}));
    deps.patch("web", &PatchParams::default(), &replicas(2)).await.unwrap();
    assert_eq!(f.hook.count(), 0, "neither the create nor a main-resource update is covered");

    deps.patch_scale("web", &PatchParams::default(), &replicas(3)).await.unwrap();
    let reviews = f.hook.reviews();
    assert_eq!(reviews.len(), 1);
    let req = &reviews[0]["request"];
    assert_eq!(req["kind"], json!({"group": "autoscaling", "version": "v1", "kind": "Scale"}));
    assert_eq!(req["resource"], json!({"group": "apps", "version": "v1", "resource": "deployments"}));
    assert_eq!(req["subResource"], "scale");
    assert_eq!(req["operation"], "UPDATE");
    assert_eq!(req["object"]["kind"], "Scale");
    assert_eq!(req["object"]["spec"]["replicas"], 3);
    assert_eq!(req["oldObject"]["spec"]["replicas"], 2);
    assert_eq!(req["object"]["metadata"]["name"], "web");
    f.sb.stop().await;
}
