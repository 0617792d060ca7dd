//! In-process backends for the conformance tests, served over TLS as in-cluster Services would
//! be: an axum router behind tokio-rustls and hyper-util that can read the client certificate
//! presented to it, a fake external.metrics.k8s.io API server that reports what reached it, and
//! the APIService that makes the control plane aggregate it.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json, Router};
use base64::Engine;
use ebb_sandbox::pki::{Leaf, peer_identity, server_config};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

/// The verified client certificate's user and groups, when one was presented.
#[derive(Debug, Clone, Default)]
pub struct Peer(pub Option<(String, Vec<String>)>);

/// A running TLS backend; stopping it (or dropping it) closes the listener and every
/// connection.
#[derive(Debug)]
pub struct Backend {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Backend {
    pub async fn stop(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `app` over TLS with `leaf` on a free loopback port. With `client_ca`, client
/// certificates signed by it are verified and handed to handlers as [`Peer`].
pub async fn serve(leaf: &Leaf, client_ca: Option<&str>, app: Router) -> Backend {
    let tls = server_config(leaf, client_ca).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(tls);
    let task = tokio::spawn(async move {
        // Owned here, so aborting this task aborts every connection as well.
        let mut conns = JoinSet::new();
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            while conns.try_join_next().is_some() {}
            let acceptor = acceptor.clone();
            let app = app.clone();
            conns.spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else { return };
                let peer = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .and_then(|cert| peer_identity(cert).ok());
                let service = TowerToHyperService::new(app.layer(Extension(Peer(peer))));
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Backend { addr, task }
}

/// Decodes one `%XX`-escaped query component (`+` is a space).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%' && i + 2 < b.len())
            .then(|| std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()))
            .flatten();
        match hex {
            Some(x) => {
                out.push(x);
                i += 3;
            }
            None => {
                out.push(if b[i] == b'+' { b' ' } else { b[i] });
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of one query parameter.
pub fn query_param(uri: &Uri, key: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (percent_decode(k) == key).then(|| percent_decode(v))
    })
}

/// One request that reached the fake metrics server, as it saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRequest {
    pub namespace: String,
    pub metric: String,
    pub selector: String,
    pub remote_user: Option<String>,
    pub remote_groups: Vec<String>,
    pub authorization: bool,
    pub client_cn: Option<String>,
}

/// What the fake metrics server answers, shared with the test driving it.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// The value every known metric has.
    pub value: Arc<Mutex<f64>>,
    /// Values for one namespace, taking precedence over `value`.
    pub in_namespace: Arc<Mutex<std::collections::BTreeMap<String, f64>>>,
    /// Answer 500 to metric reads.
    pub fail: Arc<AtomicBool>,
    /// Every metric read, in order.
    pub requests: Arc<Mutex<Vec<MetricRequest>>>,
    /// When set, the only (metric, selector) pair that exists; others are 404.
    pub only: Option<(String, String)>,
}

impl Metrics {
    pub fn set(&self, v: f64) {
        *self.value.lock().unwrap() = v;
    }

    /// Sets the value every metric of namespace `ns` has.
    pub fn set_in(&self, ns: &str, v: f64) {
        self.in_namespace.lock().unwrap().insert(ns.to_owned(), v);
    }

    pub fn set_failing(&self, fail: bool) {
        self.fail.store(fail, Ordering::SeqCst);
    }

    pub fn requests(&self) -> Vec<MetricRequest> {
        self.requests.lock().unwrap().clone()
    }
}

pub const GROUP_VERSION: &str = "external.metrics.k8s.io/v1beta1";

fn status(code: StatusCode, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "code": code.as_u16()});
    (code, Json(body)).into_response()
}

/// The external metrics API: discovery of its one resource, and metric reads answering an
/// ExternalMetricValueList whose labels echo what the request carried.
pub fn metrics_router(m: Metrics) -> Router {
    Router::new()
        .route(
            "/apis/external.metrics.k8s.io/v1beta1",
            axum::routing::get(|| async {
                Json(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GROUP_VERSION,
                    "resources": [{"name": "externalmetrics", "singularName": "", "namespaced": true,
                        "kind": "ExternalMetricValueList", "verbs": ["get"]}]}))
            }),
        )
        .route("/apis/external.metrics.k8s.io/v1beta1/namespaces/{ns}/{metric}", axum::routing::get(metric))
        .fallback(|uri: Uri| async move {
            status(StatusCode::NOT_FOUND, &format!("the metrics server has nothing at {}", uri.path()))
        })
        .with_state(m)
}

async fn metric(
    State(m): State<Metrics>,
    Path((ns, name)): Path<(String, String)>,
    Extension(peer): Extension<Peer>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let seen = MetricRequest {
        namespace: ns.clone(),
        metric: name.clone(),
        selector: query_param(&uri, "labelSelector").unwrap_or_default(),
        remote_user: header("x-remote-user"),
        remote_groups: headers
            .get_all("x-remote-group")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect(),
        authorization: headers.contains_key("authorization"),
        client_cn: peer.0.map(|(user, _)| user),
    };
    m.requests.lock().unwrap().push(seen.clone());
    if m.fail.load(Ordering::SeqCst) {
        return status(StatusCode::INTERNAL_SERVER_ERROR, "the metric source is down");
    }
    if let Some((metric, selector)) = &m.only
        && (*metric != name || *selector != seen.selector)
    {
        return status(StatusCode::NOT_FOUND, &format!("no metric {name} for selector {:?}", seen.selector));
    }
    let value = m.in_namespace.lock().unwrap().get(&ns).copied().unwrap_or(*m.value.lock().unwrap());
    Json(json!({
        "kind": "ExternalMetricValueList", "apiVersion": GROUP_VERSION, "metadata": {},
        "items": [{
            "metricName": name,
            "metricLabels": {
                "namespace": seen.namespace,
                "selector": seen.selector,
                "remote-user": seen.remote_user.unwrap_or_default(),
                "remote-groups": seen.remote_groups.join(","),
                "authorization": if seen.authorization { "present" } else { "absent" },
                "client-cn": seen.client_cn.unwrap_or_default(),
            },
            "timestamp": "2026-01-01T00:00:00Z",
            "value": format!("{value}"),
        }]
    }))
    .into_response()
}

/// The APIService kind, which k8s-openapi does not carry.
pub fn apiservice_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apiregistration.k8s.io", "v1", "APIService"),
        "apiservices",
    )
}

/// Serves `metrics` as the local control plane's external metrics API: TLS for Service
/// keda/ebb-metrics-apiserver (front-proxy client certificates verified), the Service mapped to
/// it and the APIService registered.
pub async fn serve_external_metrics(
    sb: &ebb_sandbox::sandbox::Sandbox,
    client: &kube::Client,
    metrics: Metrics,
) -> Backend {
    let cert = sb.service_cert("keda", "ebb-metrics-apiserver").unwrap();
    let server = serve(&cert, Some(sb.front_proxy_ca.cert_pem()), metrics_router(metrics)).await;
    sb.map_service("keda", "ebb-metrics-apiserver", server.addr);
    register_external_metrics(client, sb.ca.cert_pem()).await;
    server
}

/// Registers `v1beta1.external.metrics.k8s.io` for Service keda/ebb-metrics-apiserver:443,
/// trusting `ca_pem`.
pub async fn register_external_metrics(client: &kube::Client, ca_pem: &str) -> DynamicObject {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &apiservice_resource());
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": "v1beta1.external.metrics.k8s.io"},
        "spec": {
            "group": "external.metrics.k8s.io", "version": "v1beta1",
            "service": {"namespace": "keda", "name": "ebb-metrics-apiserver", "port": 443},
            "caBundle": base64::engine::general_purpose::STANDARD.encode(ca_pem),
            "groupPriorityMinimum": 100, "versionPriority": 100,
        }
    }))
    .unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap()
}

/// GET of a raw path through the client, answering the parsed JSON or the API error.
pub async fn get_json(client: &kube::Client, path: &str) -> Result<Value, kube::Error> {
    let req = axum::http::Request::get(path).body(Vec::new()).unwrap();
    let text = client.request_text(req).await?;
    Ok(serde_json::from_str(&text).unwrap())
}
