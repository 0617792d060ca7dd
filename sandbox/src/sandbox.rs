//! Starting a control plane: a CA and serving certificate for 127.0.0.1, a front-proxy CA and
//! client certificate for aggregation (published in kube-system/extension-apiserver-authentication
//! as kube-apiserver publishes them), an admin token, the HTTPS listener (HTTP/1.1 and HTTP/2),
//! the built-in controllers, and a kubeconfig for kubectl and kube-rs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::control::{ControlPlane, UserInfo, system_ctx};
use crate::pki::{CertAuthority, Leaf};
use crate::server::{AppState, router};

/// Name the front-proxy client certificate carries (the allowed name for requestheader auth).
pub const FRONT_PROXY_CLIENT: &str = "front-proxy-client";

/// How to start a control plane.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen (port 0 picks a free port).
    pub addr: SocketAddr,
    /// Watch history kept for resumption.
    pub history: usize,
    /// Delay before Deployment/StatefulSet status follows spec.replicas.
    pub ready_delay: Duration,
    /// HPA controller sync period.
    pub hpa_sync: Duration,
    /// Run the built-in controllers.
    pub controllers: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            history: 10_000,
            ready_delay: Duration::from_millis(200),
            hpa_sync: Duration::from_secs(15),
            controllers: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot create certificates: {0}")]
    Pki(#[from] crate::pki::PkiError),
    #[error("cannot build an HTTP client: {0}")]
    Client(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
}

/// A running control plane.
#[derive(Debug)]
pub struct Sandbox {
    pub cp: Arc<ControlPlane>,
    pub addr: SocketAddr,
    /// CA that signed the serving certificate (also used to issue certificates for tests).
    pub ca: CertAuthority,
    /// CA of the front-proxy client certificate.
    pub front_proxy_ca: CertAuthority,
    /// Bearer token of the `admin` user (group system:masters).
    pub admin_token: String,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Sandbox {
    /// Starts serving and returns once the listener is bound.
    pub async fn start(cfg: Config) -> Result<Self, SandboxError> {
        let ca = CertAuthority::new("ebb-sandbox-ca")?;
        let serving =
            ca.issue_server(&["localhost", "kubernetes", "kubernetes.default.svc"], &[cfg.addr.ip()])?;
        let front_proxy_ca = CertAuthority::new("ebb-sandbox-front-proxy-ca")?;
        let front_proxy = front_proxy_ca.issue_client(FRONT_PROXY_CLIENT, &[])?;
        let cp = ControlPlane::new(cfg.history);
        let admin_token = uuid::Uuid::new_v4().simple().to_string();
        cp.auth.add_token(
            &admin_token,
            UserInfo {
                username: "admin".into(),
                groups: vec!["system:masters".into(), "system:authenticated".into()],
            },
        );
        publish_authentication_config(&cp, &ca, &front_proxy_ca);

        let listener = TcpListener::bind(cfg.addr)
            .await
            .map_err(|source| SandboxError::Listen { addr: cfg.addr, source })?;
        let addr = listener.local_addr().map_err(|source| SandboxError::Listen { addr: cfg.addr, source })?;
        let tls = crate::pki::server_config(&serving, None)?;
        let front_proxy = Arc::new(front_proxy);
        let state =
            AppState { cp: cp.clone(), address: addr.to_string(), front_proxy: Some(front_proxy.clone()) };
        let (stop, stopped) = watch::channel(false);
        let mut tasks =
            vec![tokio::spawn(crate::serve::serve_tls(listener, tls, router(state), stopped.clone()))];
        if cfg.controllers {
            tasks.push(tokio::spawn(crate::controllers::deployments::run(
                cp.clone(),
                cfg.ready_delay,
                stopped.clone(),
            )));
            tasks.push(tokio::spawn(crate::controllers::apiservices::run(
                cp.clone(),
                front_proxy.clone(),
                stopped.clone(),
            )));
            let token = uuid::Uuid::new_v4().simple().to_string();
            let user = UserInfo {
                username: "system:kube-controller-manager".into(),
                groups: vec!["system:authenticated".into()],
            };
            cp.auth.add_token(&token, user);
            let source = external_metrics_client(&format!("https://{addr}"), ca.cert_pem(), &token)?;
            tasks.push(tokio::spawn(crate::controllers::hpa::run(
                cp.clone(),
                cfg.hpa_sync,
                source,
                stopped.clone(),
            )));
        }
        Ok(Self { cp, addr, ca, front_proxy_ca, admin_token, stop, tasks })
    }

    /// `https://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// A kubeconfig for the admin user.
    pub fn kubeconfig(&self) -> String {
        crate::kubeconfig::kubeconfig_yaml(
            &self.url(),
            self.ca.cert_pem(),
            &self.admin_token,
            "ebb-sandbox",
            None,
        )
    }

    /// Adds a bearer token for another user.
    pub fn add_user(&self, token: &str, username: &str, groups: &[&str]) {
        self.cp.auth.add_token(
            token,
            UserInfo { username: username.into(), groups: groups.iter().map(|g| (*g).to_owned()).collect() },
        );
    }

    /// Maps a Service to a local address for admission webhooks and aggregated APIs.
    pub fn map_service(&self, namespace: &str, name: &str, addr: SocketAddr) {
        self.cp.admission.map_service(namespace, name, addr);
    }

    /// Issues a serving certificate for a Service (`name.namespace.svc`) signed by the sandbox CA.
    pub fn service_cert(&self, namespace: &str, name: &str) -> Result<Leaf, SandboxError> {
        let host = format!("{name}.{namespace}.svc");
        Ok(self.ca.issue_server(&[&host, "localhost"], &[std::net::IpAddr::from([127, 0, 0, 1])])?)
    }

    /// Creates any object the control plane serves (as the system, bypassing admission), as
    /// `kubectl create` would; an object that already exists is left as it is.
    pub fn create(&self, obj: &serde_json::Value) -> Result<serde_json::Value, crate::status::ApiError> {
        let api_version = obj.get("apiVersion").and_then(serde_json::Value::as_str).unwrap_or_default();
        let kind = obj.get("kind").and_then(serde_json::Value::as_str).unwrap_or_default();
        let res = self.cp.registry().by_kind(api_version, kind).cloned().ok_or_else(|| {
            crate::status::ApiError::new(404, "NotFound", format!("no resource serves {api_version} {kind}"))
        })?;
        let ns = crate::meta::namespace(obj).unwrap_or("default").to_owned();
        self.cp.create_sync(&res, &ns, obj.clone(), &system_ctx())
    }

    /// Stops serving and the controllers.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// kube-system/extension-apiserver-authentication, as aggregated API servers read it.
fn publish_authentication_config(cp: &ControlPlane, ca: &CertAuthority, front_proxy_ca: &CertAuthority) {
    let Some(res) = cp.resource("", "v1", "configmaps") else { return };
    let cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "extension-apiserver-authentication", "namespace": "kube-system"},
        "data": {
            "client-ca-file": ca.cert_pem(),
            "requestheader-client-ca-file": front_proxy_ca.cert_pem(),
            "requestheader-allowed-names": json!([FRONT_PROXY_CLIENT]).to_string(),
            "requestheader-username-headers": json!(["X-Remote-User"]).to_string(),
            "requestheader-group-headers": json!(["X-Remote-Group"]).to_string(),
            "requestheader-extra-headers-prefix": json!(["X-Remote-Extra-"]).to_string(),
        }
    });
    if let Err(e) = cp.create_sync(&res, "kube-system", cm, &system_ctx()) {
        tracing::warn!("cannot publish extension-apiserver-authentication: {e}");
    }
}

/// The HPA controller's view of the external metrics API: a client of this control plane, so
/// queries go through discovery of the APIService and the aggregation proxy like upstream.
fn external_metrics_client(
    url: &str,
    ca_pem: &str,
    token: &str,
) -> Result<crate::controllers::hpa::MetricsSource, SandboxError> {
    let tls = crate::pki::client_config(ca_pem.as_bytes(), None)?;
    let client = reqwest::Client::builder()
        .use_preconfigured_tls((*tls).clone())
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| SandboxError::Client(e.to_string()))?;
    let url = url.to_owned();
    let token = token.to_owned();
    Ok(Arc::new(move |ns: String, metric: String, selector: String| {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        Box::pin(async move {
            // client-go lowercases the resource segment of a request path, so upstream's HPA
            // asks for the metric name in lower case whatever the HPA spec says.
            let resource = metric.to_lowercase();
            let path = format!("{url}/apis/external.metrics.k8s.io/v1beta1/namespaces/{ns}/{resource}");
            let resp = client
                .get(&path)
                .query(&[("labelSelector", selector.as_str())])
                .bearer_auth(&token)
                .send()
                .await
                .map_err(|e| format!("unable to get external metric {ns}/{metric}: {e}"))?;
            let status = resp.status();
            let body: serde_json::Value =
                resp.json().await.map_err(|e| format!("unable to decode external metric {metric}: {e}"))?;
            if !status.is_success() {
                return Err(format!(
                    "unable to get external metric {ns}/{metric}: {}",
                    body["message"].as_str().unwrap_or_default()
                ));
            }
            let items = body["items"].as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                return Err(format!("no values for external metric {metric}"));
            }
            let mut sum = 0.0;
            for i in items {
                let v = i["value"].as_str().unwrap_or_default();
                sum += ebb_api::quantity::parse(v).map_err(|e| e.to_string())?;
            }
            Ok(sum)
        }) as futures::future::BoxFuture<'static, Result<f64, String>>
    }))
}
