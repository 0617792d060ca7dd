//! Conformance of API aggregation with kube-aggregator, and of the delegated authentication
//! and authorization reviews an aggregated API server relies on: a fake external metrics API
//! served over TLS in the test is registered with an APIService and reached through the
//! control plane with kube-rs, and reports what arrived (identity headers, credentials, the
//! client certificate).

#![allow(clippy::unwrap_used)]

mod backend;
mod common;

use base64::Engine;
use ebb_sandbox::pki::CertAuthority;
use ebb_sandbox::sandbox::{Config, FRONT_PROXY_CLIENT, Sandbox};
use k8s_openapi::api::authentication::v1::TokenReview;
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use backend::{MetricRequest, Metrics};

const APISERVICE: &str = "v1beta1.external.metrics.k8s.io";
const METRIC_PATH: &str = "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/s0-queue";

/// A kube-rs client of the sandbox with `token`, without kube-rs's retries of 503 answers (so
/// an unavailable APIService is seen at once).
async fn client_with(sb: &Sandbox, token: &str) -> kube::Client {
    let yaml =
        ebb_sandbox::kubeconfig::kubeconfig_yaml(&sb.url(), sb.ca.cert_pem(), token, "ebb-sandbox", None);
    let kc = kube::config::Kubeconfig::from_yaml(&yaml).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
    config.default_retry = false;
    kube::Client::try_from(config).unwrap()
}

/// A sandbox and the fake metrics server (verifying front-proxy client certificates), mapped as
/// Service keda/ebb-metrics-apiserver but not yet registered.
async fn setup() -> (Sandbox, kube::Client, Metrics, backend::Backend) {
    let (sb, _) = common::start(Config { controllers: false, ..Default::default() }).await;
    let client = client_with(&sb, &sb.admin_token).await;
    let metrics = Metrics::default();
    metrics.set(42.0);
    let cert = sb.service_cert("keda", "ebb-metrics-apiserver").unwrap();
    let server =
        backend::serve(&cert, Some(sb.front_proxy_ca.cert_pem()), backend::metrics_router(metrics.clone()))
            .await;
    sb.map_service("keda", "ebb-metrics-apiserver", server.addr);
    (sb, client, metrics, server)
}

fn api_error(r: Result<Value, kube::Error>) -> Box<kube::core::Status> {
    match r {
        Err(kube::Error::Api(s)) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn discovery_lists_the_group_and_requests_are_proxied() {
    let (sb, client, metrics, _server) = setup().await;
    let listed = |groups: &k8s_openapi::apimachinery::pkg::apis::meta::v1::APIGroupList| {
        groups.groups.iter().any(|g| g.name == "external.metrics.k8s.io")
    };
    assert!(!listed(&client.list_api_groups().await.unwrap()));
    let e = api_error(backend::get_json(&client, METRIC_PATH).await);
    assert_eq!(e.code, 404, "nothing serves the group before the APIService");

    backend::register_external_metrics(&client, sb.ca.cert_pem()).await;
    let groups = client.list_api_groups().await.unwrap();
    let group = groups.groups.iter().find(|g| g.name == "external.metrics.k8s.io").unwrap();
    assert_eq!(group.versions[0].group_version, "external.metrics.k8s.io/v1beta1");
    assert_eq!(group.preferred_version.as_ref().unwrap().version, "v1beta1");
    let doc = backend::get_json(&client, "/apis/external.metrics.k8s.io").await.unwrap();
    assert_eq!(doc["kind"], "APIGroup");
    assert_eq!(doc["versions"][0]["version"], "v1beta1");

    // The group/version document comes from the backend.
    let resources = client.list_api_group_resources("external.metrics.k8s.io/v1beta1").await.unwrap();
    assert_eq!(resources.group_version, "external.metrics.k8s.io/v1beta1");
    assert_eq!(resources.resources[0].name, "externalmetrics");
    assert_eq!(resources.resources[0].kind, "ExternalMetricValueList");

    // A metric read reaches it with path and query intact.
    let list = backend::get_json(&client, &format!("{METRIC_PATH}?labelSelector=app%3Dx")).await.unwrap();
    assert_eq!(list["kind"], "ExternalMetricValueList");
    assert_eq!(list["items"][0]["metricName"], "s0-queue");
    assert_eq!(list["items"][0]["value"], "42");
    assert_eq!(list["items"][0]["metricLabels"]["selector"], "app=x");
    assert_eq!(list["items"][0]["metricLabels"]["namespace"], "default");
    assert_eq!(metrics.requests().len(), 1);
    // The backend's own errors come back as they are.
    let e = api_error(backend::get_json(&client, "/apis/external.metrics.k8s.io/v1beta1/nothing").await);
    assert_eq!(e.code, 404);
    assert_eq!(e.message, "the metrics server has nothing at /apis/external.metrics.k8s.io/v1beta1/nothing");
    sb.stop().await;
}

#[tokio::test]
async fn backends_see_the_front_proxy_and_the_callers_identity() {
    let (sb, client, metrics, _server) = setup().await;
    backend::register_external_metrics(&client, sb.ca.cert_pem()).await;
    let list = backend::get_json(&client, METRIC_PATH).await.unwrap();
    let labels = &list["items"][0]["metricLabels"];
    assert_eq!(labels["remote-user"], "admin");
    assert_eq!(labels["client-cn"], FRONT_PROXY_CLIENT);
    assert_eq!(labels["authorization"], "absent");
    let seen = metrics.requests().pop().unwrap();
    assert_eq!(
        seen,
        MetricRequest {
            namespace: "default".into(),
            metric: "s0-queue".into(),
            selector: String::new(),
            remote_user: Some("admin".into()),
            remote_groups: vec!["system:masters".into(), "system:authenticated".into()],
            authorization: false,
            client_cn: Some(FRONT_PROXY_CLIENT.into()),
        }
    );

    // Another user; identity headers the caller sets itself are not passed on.
    sb.add_user("alice-token", "alice", &["devs", "system:authenticated"]);
    let alice = client_with(&sb, "alice-token").await;
    let req = axum::http::Request::get(METRIC_PATH)
        .header("X-Remote-User", "root")
        .header("X-Remote-Group", "system:masters")
        .header("Impersonate-User", "root")
        .body(Vec::new())
        .unwrap();
    alice.request_text(req).await.unwrap();
    let seen = metrics.requests().pop().unwrap();
    assert_eq!(seen.remote_user.as_deref(), Some("alice"));
    assert_eq!(seen.remote_groups, ["devs", "system:authenticated"]);
    assert!(!seen.authorization);
    assert_eq!(seen.client_cn.as_deref(), Some(FRONT_PROXY_CLIENT));

    // Unauthenticated callers do not get through.
    let nobody = client_with(&sb, "no-such-token").await;
    let before = metrics.requests().len();
    let e = api_error(backend::get_json(&nobody, METRIC_PATH).await);
    assert_eq!(e.code, 401);
    assert_eq!(metrics.requests().len(), before);
    sb.stop().await;
}

#[tokio::test]
async fn extension_apiserver_authentication_is_published() {
    let (sb, client) = common::start(Config { controllers: false, ..Default::default() }).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-system");
    let data = cms.get("extension-apiserver-authentication").await.unwrap().data.unwrap();
    assert_eq!(data["requestheader-client-ca-file"], sb.front_proxy_ca.cert_pem());
    assert_eq!(data["client-ca-file"], sb.ca.cert_pem());
    let list = |k: &str| serde_json::from_str::<Vec<String>>(&data[k]).unwrap();
    assert_eq!(list("requestheader-allowed-names"), [FRONT_PROXY_CLIENT]);
    assert_eq!(list("requestheader-username-headers"), ["X-Remote-User"]);
    assert_eq!(list("requestheader-group-headers"), ["X-Remote-Group"]);
    assert_eq!(list("requestheader-extra-headers-prefix"), ["X-Remote-Extra-"]);
    sb.stop().await;
}

#[tokio::test]
async fn unavailable_backends_answer_503_naming_the_apiservice() {
    let (sb, client, metrics, server) = setup().await;
    backend::register_external_metrics(&client, sb.ca.cert_pem()).await;
    backend::get_json(&client, METRIC_PATH).await.unwrap();

    // A caBundle that did not sign the backend's certificate.
    let other = CertAuthority::new("not-the-sandbox-ca").unwrap();
    let apiservices: Api<DynamicObject> = Api::all_with(client.clone(), &backend::apiservice_resource());
    let set_ca = |pem: &str| {
        Patch::Merge(json!({"spec": {"caBundle": base64::engine::general_purpose::STANDARD.encode(pem)}}))
    };
    apiservices.patch(APISERVICE, &PatchParams::default(), &set_ca(other.cert_pem())).await.unwrap();
    let before = metrics.requests().len();
    let e = api_error(backend::get_json(&client, METRIC_PATH).await);
    assert_eq!(e.code, 503);
    assert!(e.message.contains(APISERVICE), "{}", e.message);
    assert!(e.message.to_lowercase().contains("certificate"), "the TLS failure is named: {}", e.message);
    assert_eq!(metrics.requests().len(), before, "nothing crosses an unverified connection");
    apiservices.patch(APISERVICE, &PatchParams::default(), &set_ca(sb.ca.cert_pem())).await.unwrap();
    backend::get_json(&client, METRIC_PATH).await.unwrap();

    // The backend stops: 503, while discovery still lists the group.
    server.stop().await;
    let e = api_error(backend::get_json(&client, METRIC_PATH).await);
    assert_eq!(e.code, 503);
    assert_eq!(e.reason, "ServiceUnavailable");
    assert!(e.message.contains(APISERVICE), "{}", e.message);
    let e = api_error(backend::get_json(&client, "/apis/external.metrics.k8s.io/v1beta1").await);
    assert_eq!(e.code, 503);
    let groups = client.list_api_groups().await.unwrap();
    assert!(groups.groups.iter().any(|g| g.name == "external.metrics.k8s.io"));
    sb.stop().await;
}

#[tokio::test]
async fn the_service_port_is_the_services_not_the_listeners() {
    let (sb, client, metrics, _server) = setup().await;
    backend::register_external_metrics(&client, sb.ca.cert_pem()).await;
    let apiservices: Api<DynamicObject> = Api::all_with(client.clone(), &backend::apiservice_resource());
    let port = Patch::Merge(json!({"spec": {"service": {"port": 8443}}}));
    apiservices.patch(APISERVICE, &PatchParams::default(), &port).await.unwrap();
    backend::get_json(&client, METRIC_PATH).await.unwrap();
    assert_eq!(metrics.requests().len(), 1);
    sb.stop().await;
}

#[tokio::test]
async fn an_unmapped_service_answers_503() {
    let (sb, _) = common::start(Config { controllers: false, ..Default::default() }).await;
    let client = client_with(&sb, &sb.admin_token).await;
    backend::register_external_metrics(&client, sb.ca.cert_pem()).await;
    let e = api_error(backend::get_json(&client, METRIC_PATH).await);
    assert_eq!(e.code, 503);
    assert!(e.message.contains(APISERVICE), "{}", e.message);
    assert!(e.message.contains("keda/ebb-metrics-apiserver"), "{}", e.message);
    sb.stop().await;
}

#[tokio::test]
async fn token_and_subject_access_reviews() {
    let (sb, client) = common::start(Config { controllers: false, ..Default::default() }).await;
    let tokens: Api<TokenReview> = Api::all(client.clone());
    let review = |token: &str| -> TokenReview {
        serde_json::from_value(json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}))
            .unwrap()
    };
    let admin = tokens.create(&PostParams::default(), &review(&sb.admin_token)).await.unwrap();
    let status = admin.status.unwrap();
    assert_eq!(status.authenticated, Some(true));
    let user = status.user.unwrap();
    assert_eq!(user.username.as_deref(), Some("admin"));
    assert!(user.groups.unwrap().contains(&"system:masters".to_string()));
    let bogus = tokens.create(&PostParams::default(), &review("not-a-token")).await.unwrap();
    let status = bogus.status.unwrap();
    assert_eq!(status.authenticated, Some(false));
    assert!(status.user.is_none_or(|u| u.username.is_none()));

    sb.cp.auth.deny("bob");
    let access: Api<SubjectAccessReview> = Api::all(client.clone());
    let sar = |user: &str| -> SubjectAccessReview {
        serde_json::from_value(json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": user, "groups": ["system:authenticated"],
                "resourceAttributes": {"group": "external.metrics.k8s.io", "version": "v1beta1", "resource": "s0-queue", "namespace": "default", "verb": "get"}}}))
        .unwrap()
    };
    for (user, allowed) in [("bob", false), ("alice", true)] {
        let answered = access.create(&PostParams::default(), &sar(user)).await.unwrap();
        assert_eq!(answered.status.unwrap().allowed, allowed, "{user}");
    }
    sb.stop().await;
}

/// The APIService's `Available` condition, polled until `want` (status, reason) or 10 s.
async fn wait_available(client: &kube::Client, want: (&str, &str)) -> Value {
    let gvk = kube::api::GroupVersionKind::gvk("apiregistration.k8s.io", "v1", "APIService");
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &kube::api::ApiResource::from_gvk(&gvk));
    let mut last = Value::Null;
    for _ in 0..100 {
        let o = serde_json::to_value(api.get(APISERVICE).await.unwrap()).unwrap();
        last = o.pointer("/status/conditions/0").cloned().unwrap_or(Value::Null);
        if last["type"] == "Available" && last["status"] == want.0 && last["reason"] == want.1 {
            return last;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("APIService condition never became {want:?}; last {last}");
}

#[tokio::test]
async fn available_condition_follows_the_backend() {
    let (sb, _) = common::start(Config::default()).await;
    let client = client_with(&sb, &sb.admin_token).await;
    let cert = sb.service_cert("keda", "ebb-metrics-apiserver").unwrap();
    let server = backend::serve(
        &cert,
        Some(sb.front_proxy_ca.cert_pem()),
        backend::metrics_router(Metrics::default()),
    )
    .await;
    backend::register_external_metrics(&client, sb.ca.cert_pem()).await;
    let c = wait_available(&client, ("False", "MissingEndpoints")).await;
    assert!(c["message"].as_str().unwrap().contains("keda/ebb-metrics-apiserver"), "{c}");
    sb.map_service("keda", "ebb-metrics-apiserver", server.addr);
    let c = wait_available(&client, ("True", "Passed")).await;
    let since = c["lastTransitionTime"].clone();
    // Nothing listens there any more: the discovery check fails (a second later, so the
    // transition time, in whole seconds, must change).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    sb.map_service("keda", "ebb-metrics-apiserver", closed);
    let c = wait_available(&client, ("False", "FailedDiscoveryCheck")).await;
    assert_ne!(c["lastTransitionTime"], since, "a new status is a transition");
    sb.cp.admission.unmap_service("keda", "ebb-metrics-apiserver");
    wait_available(&client, ("False", "MissingEndpoints")).await;
    sb.stop().await;
}
