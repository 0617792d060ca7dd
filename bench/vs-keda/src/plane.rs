//! The control plane one measurement runs on: upstream Kubernetes (etcd, kube-apiserver,
//! kube-controller-manager from `ebb_testbackends::kubernetes`) or ebb's local control plane
//! (`ebb_sandbox`, in this process). A fresh one per system and measurement, because ebb and
//! KEDA each install CustomResourceDefinitions named `scaledobjects.keda.sh` and so on.
//!
//! Both are driven through the same admin client and kubeconfig file. What differs is how a
//! server on 127.0.0.1 is reached by the API server (an `ExternalName` Service on upstream with
//! the server's real port; a mapped Service on the local plane with port 443), which CA signs
//! those servers' certificates, and how a user with a bearer token is made.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ebb_sandbox::pki::{CertAuthority, Leaf};
use ebb_sandbox::sandbox::{Config, Sandbox};
use ebb_testbackends::kubernetes::{self, Upstream};
use serde_json::{Value, json};

use crate::kubeapi;

/// Which control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PlaneKind {
    Upstream,
    Local,
}

impl PlaneKind {
    pub fn name(self) -> &'static str {
        match self {
            PlaneKind::Upstream => "upstream",
            PlaneKind::Local => "local",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "upstream" => Ok(PlaneKind::Upstream),
            "local" => Ok(PlaneKind::Local),
            other => Err(format!("unknown control plane {other:?}: expected upstream or local")),
        }
    }
}

enum Inner {
    Local(Box<Sandbox>),
    Upstream(Box<Upstream>),
}

/// A running control plane with namespace `keda` and an admin client.
pub struct Plane {
    pub kind: PlaneKind,
    inner: Inner,
    pub client: kube::Client,
    kubeconfig: PathBuf,
    dir: PathBuf,
    /// Signs serving certificates of servers the upstream API server calls.
    serving_ca: CertAuthority,
}

impl std::fmt::Debug for Plane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plane").field("kind", &self.kind).field("dir", &self.dir).finish()
    }
}

/// The HPA controller's sync period: long, so the controller's periodic metric reads (which
/// fail without a registered metrics API, and write Events) are not part of what is measured.
const HPA_SYNC: Duration = Duration::from_secs(3600);

impl Plane {
    /// Starts a control plane of `kind`; files go to `dir` (created).
    pub async fn start(kind: PlaneKind, dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let kubeconfig = dir.join("admin.kubeconfig");
        let serving_ca = CertAuthority::new("ebb-bench-serving-ca").map_err(|e| format!("CA: {e}"))?;
        let (inner, client) = match kind {
            PlaneKind::Local => {
                let cfg = Config { hpa_sync: HPA_SYNC, history: 100_000, ..Default::default() };
                let sb = Sandbox::start(cfg).await.map_err(|e| format!("local control plane: {e}"))?;
                ebb_sandbox::kubeconfig::write_kubeconfig(&kubeconfig, &sb.kubeconfig())
                    .map_err(|e| format!("cannot write {}: {e}", kubeconfig.display()))?;
                let client = kubeapi::client(&kubeconfig).await?;
                (Inner::Local(Box::new(sb)), client)
            }
            PlaneKind::Upstream => {
                let options = kubernetes::Options { hpa_sync: HPA_SYNC, ..Default::default() };
                let up = tokio::task::spawn_blocking(move || Upstream::start(&options))
                    .await
                    .map_err(|e| format!("upstream start task: {e}"))?
                    .map_err(|e| format!("upstream Kubernetes did not start: {e}"))?;
                std::fs::copy(up.kubeconfig_path(), &kubeconfig)
                    .map_err(|e| format!("cannot copy the admin kubeconfig: {e}"))?;
                let client = kubeapi::client(&kubeconfig).await?;
                (Inner::Upstream(Box::new(up)), client)
            }
        };
        let plane = Self { kind, inner, client, kubeconfig, dir: dir.to_owned(), serving_ca };
        plane.create_namespace("keda").await?;
        Ok(plane)
    }

    /// Installs ebb's CRDs (as the end-to-end harness does) and waits until they are Established.
    pub async fn install_ebb_crds(&self) -> Result<(), String> {
        match &self.inner {
            Inner::Local(sb) => {
                for (_, crd) in ebb_api::crds::all() {
                    let v = serde_json::to_value(&crd).map_err(|e| format!("CRD to JSON: {e}"))?;
                    sb.create(&v).map_err(|e| format!("cannot create a CRD: {e:?}"))?;
                }
                Ok(())
            }
            Inner::Upstream(_) => kubernetes::crds::install(&self.client, "ebb-bench").await,
        }
    }

    /// Creates a CustomResourceDefinition given as JSON (on the local control plane directly in
    /// its store, as the end-to-end harness does).
    #[cfg_attr(not(feature = "keda"), allow(dead_code))]
    pub async fn create_crd(&self, crd: &Value) -> Result<(), String> {
        match &self.inner {
            Inner::Local(sb) => sb.create(crd).map(drop).map_err(|e| format!("cannot create a CRD: {e:?}")),
            Inner::Upstream(_) => kubeapi::create(&self.client, crd).await.map(drop),
        }
    }

    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `https://127.0.0.1:PORT` of the API server.
    pub fn server(&self) -> String {
        match &self.inner {
            Inner::Local(sb) => sb.url(),
            Inner::Upstream(up) => up.server(),
        }
    }

    pub async fn create_namespace(&self, name: &str) -> Result<(), String> {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        match kubeapi::create(&self.client, &ns).await {
            Ok(_) => Ok(()),
            Err(e) if e.contains("AlreadyExists") || e.contains("409") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A serving certificate for Service `namespace/name`, `localhost` and 127.0.0.1.
    pub fn service_cert(&self, namespace: &str, name: &str) -> Result<Leaf, String> {
        match &self.inner {
            Inner::Local(sb) => sb.service_cert(namespace, name).map_err(|e| format!("certificate: {e}")),
            Inner::Upstream(_) => {
                let host = format!("{name}.{namespace}.svc");
                self.serving_ca
                    .issue_server(&[&host, "localhost"], &[[127, 0, 0, 1].into()])
                    .map_err(|e| format!("certificate: {e}"))
            }
        }
    }

    /// The CA bundle of [`Plane::service_cert`]'s certificates.
    pub fn service_ca_pem(&self) -> &str {
        match &self.inner {
            Inner::Local(sb) => sb.ca.cert_pem(),
            Inner::Upstream(_) => self.serving_ca.cert_pem(),
        }
    }

    /// Makes Service `namespace/name` reach `addr`; returns the port a registration must name.
    pub async fn expose(&self, namespace: &str, name: &str, addr: SocketAddr) -> Result<u16, String> {
        match &self.inner {
            Inner::Local(sb) => {
                sb.map_service(namespace, name, addr);
                Ok(443)
            }
            Inner::Upstream(_) => {
                let svc = json!({"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": name, "namespace": namespace},
                    "spec": {"type": "ExternalName", "externalName": "127.0.0.1"}});
                kubeapi::create(&self.client, &svc).await?;
                Ok(addr.port())
            }
        }
    }

    /// A bearer token allowed to get and list external metrics in every namespace.
    pub async fn reader_token(&self) -> Result<String, String> {
        match &self.inner {
            Inner::Local(sb) => Ok(sb.admin_token.clone()),
            Inner::Upstream(_) => {
                let c = &self.client;
                kubeapi::create(
                    c,
                    &json!({"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": "bench-reader", "namespace": "default"}}),
                )
                .await?;
                kubeapi::create(c, &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                    "metadata": {"name": "bench-external-metrics-reader"},
                    "rules": [{"apiGroups": ["external.metrics.k8s.io"], "resources": ["*"], "verbs": ["get", "list"]}]}))
                .await?;
                kubeapi::create(c, &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                    "metadata": {"name": "bench-external-metrics-reader"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "bench-external-metrics-reader"},
                    "subjects": [{"kind": "ServiceAccount", "name": "bench-reader", "namespace": "default"}]}))
                .await?;
                let issued = kubeapi::post(
                    c,
                    "/api/v1/namespaces/default/serviceaccounts/bench-reader/token",
                    &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                        "spec": {"expirationSeconds": 7200}}),
                )
                .await?;
                issued["status"]["token"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("TokenRequest answered without a token: {issued}"))
            }
        }
    }

    /// Registers APIService v1beta1.external.metrics.k8s.io for Service `namespace/name` (port
    /// `port`, CA bundle `ca_pem`) and, on upstream, waits until it is Available.
    pub async fn register_apiservice(
        &self,
        namespace: &str,
        name: &str,
        port: u16,
        ca_pem: &str,
    ) -> Result<(), String> {
        use base64::Engine as _;
        let encode = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let obj = json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": "v1beta1.external.metrics.k8s.io"},
            "spec": {"group": "external.metrics.k8s.io", "version": "v1beta1",
                "service": {"namespace": namespace, "name": name, "port": port},
                "caBundle": encode(ca_pem.as_bytes()),
                "groupPriorityMinimum": 100, "versionPriority": 100}});
        kubeapi::create(&self.client, &obj).await?;
        if self.kind == PlaneKind::Upstream {
            wait_apiservice_available(&self.client).await?;
        }
        Ok(())
    }

    /// Stops the control plane.
    pub async fn stop(self) {
        match self.inner {
            Inner::Local(sb) => sb.stop().await,
            Inner::Upstream(up) => {
                let _ = tokio::task::spawn_blocking(move || drop(up)).await;
            }
        }
    }
}

/// Waits (30 s at most) until the aggregator reports APIService
/// v1beta1.external.metrics.k8s.io Available.
pub async fn wait_apiservice_available(client: &kube::Client) -> Result<(), String> {
    let path = "/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.external.metrics.k8s.io";
    let started = std::time::Instant::now();
    loop {
        let got: Value = kubeapi::get(client, path).await?;
        let conditions = &got["status"]["conditions"];
        let mut all = conditions.as_array().into_iter().flatten();
        if all.any(|c| c["type"] == "Available" && c["status"] == "True") {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(30) {
            return Err(format!("APIService not Available within 30 s: {conditions}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
