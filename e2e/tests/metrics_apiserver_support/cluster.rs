//! The cluster an end-to-end scenario runs on, chosen by `EBB_E2E_CLUSTER` with the operator's
//! tests' semantics: `local` (or unset) is ebb's in-process control plane
//! (`ebb_sandbox::sandbox::Sandbox`); `upstream` is upstream Kubernetes (etcd, kube-apiserver,
//! kube-controller-manager) started on loopback by `ebb_testbackends::kubernetes`, one per test
//! and one at a time per test binary (APIService and webhook registrations are cluster-wide, and
//! the scenarios' timings must not include another cluster's load).
//!
//! [`Cluster`] owns what the scenarios need from either: the admin client and a kubeconfig for
//! kubectl, creating objects given as JSON, serving certificates for Services and their CA
//! bundle, the aggregator's client certificate, reaching an in-process server through a Service,
//! users with bearer tokens that may or may not read external metrics, and stopping. On upstream
//! a Service is an `ExternalName` naming 127.0.0.1 and the registration carries the server's
//! real port; users are ServiceAccounts with TokenRequest tokens, allowed by a RoleBinding.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ebb_sandbox::pki::{CertAuthority, Leaf};
use ebb_sandbox::sandbox::{Config, FRONT_PROXY_CLIENT, Sandbox};
use ebb_testbackends::kubernetes::{self, Upstream};
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, RoleBinding};
use kube::api::{Api, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::{NS, SERVICE_NS, TempDir, init_logs};

/// Where the scenarios run (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Local,
    Upstream,
}

/// The target `EBB_E2E_CLUSTER` selects; panics on a name these scenarios cannot run on
/// (`kubeconfig`, or the older `EBB_E2E_REAL_CLUSTER=1`: a remote API server cannot reach the
/// programs these scenarios serve on this machine's 127.0.0.1).
pub fn target() -> Target {
    let unsupported = "ebb-e2e serves its programs in-process on 127.0.0.1, which only an API server on \
                       this machine reaches: use EBB_E2E_CLUSTER=local or upstream";
    match std::env::var("EBB_E2E_CLUSTER").as_deref() {
        Ok("upstream") => Target::Upstream,
        Ok("local") => Target::Local,
        Ok("kubeconfig") => panic!("EBB_E2E_CLUSTER=kubeconfig: {unsupported}"),
        Ok(other) => panic!("EBB_E2E_CLUSTER={other:?}: expected local or upstream"),
        Err(_) if std::env::var("EBB_E2E_REAL_CLUSTER").is_ok_and(|v| v == "1") => {
            panic!("EBB_E2E_REAL_CLUSTER=1: {unsupported}")
        }
        Err(_) => Target::Local,
    }
}

/// Whether the scenarios run on a cluster other than the local control plane.
pub fn real_cluster() -> bool {
    target() != Target::Local
}

/// How to start a cluster.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// The HPA controller's sync period.
    pub hpa_sync: Duration,
    /// Run the built-in controllers (the local control plane only; upstream always runs them).
    pub controllers: bool,
}

impl Options {
    pub fn hpa_sync(hpa_sync: Duration) -> Self {
        Self { hpa_sync, controllers: true }
    }
}

/// One upstream cluster at a time per test binary.
static UPSTREAM_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The ClusterRole a user needs to read external metrics (bound per user on upstream).
const READER_ROLE: &str = "ebb-e2e-external-metrics-reader";

enum Plane {
    Local(Box<Sandbox>),
    Upstream(Box<UpstreamPlane>),
}

struct UpstreamPlane {
    up: Upstream,
    /// Signs the serving certificates of the in-process servers the API server calls.
    serving_ca: CertAuthority,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

/// A running cluster with ebb's CRDs (Established) and namespace `keda`.
pub struct Cluster {
    plane: Plane,
    client: kube::Client,
    kubeconfig: PathBuf,
    _dir: TempDir,
}

/// A user with a bearer token.
#[derive(Debug, Clone)]
pub struct User {
    /// The username the API server's TokenReview gives.
    pub name: String,
    pub token: String,
    /// The short name the test gave (the ServiceAccount's and RoleBinding's name on upstream).
    short: String,
}

impl Cluster {
    /// Starts the cluster [`target`] selects, installs the CRDs and creates namespace `keda`.
    pub async fn start(opts: Options) -> Self {
        init_logs();
        let dir = TempDir::new("cluster");
        let cluster = match target() {
            Target::Local => {
                let cfg =
                    Config { hpa_sync: opts.hpa_sync, controllers: opts.controllers, ..Default::default() };
                let sb = Sandbox::start(cfg).await.unwrap();
                for (_, crd) in ebb_api::crds::all() {
                    sb.create(&serde_json::to_value(&crd).unwrap()).unwrap();
                }
                let kubeconfig = dir.path("kubeconfig");
                ebb_sandbox::kubeconfig::write_kubeconfig(&kubeconfig, &sb.kubeconfig()).unwrap();
                let kc = kube::config::Kubeconfig::from_yaml(&sb.kubeconfig()).unwrap();
                let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
                let client = kube::Client::try_from(config).unwrap();
                Self { plane: Plane::Local(Box::new(sb)), client, kubeconfig, _dir: dir }
            }
            Target::Upstream => {
                let turn = UPSTREAM_TURN.lock().await;
                let options = kubernetes::Options { hpa_sync: opts.hpa_sync, ..Default::default() };
                let up = tokio::task::spawn_blocking(move || Upstream::start(&options))
                    .await
                    .unwrap()
                    .unwrap_or_else(|e| panic!("upstream Kubernetes did not start: {e}"));
                let kubeconfig = up.kubeconfig_path();
                let kc = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
                let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
                let client = kube::Client::try_from(config).unwrap();
                println!("cluster: upstream Kubernetes {} at {}", kubernetes::versions().0, up.server());
                kubernetes::crds::install(&client, "ebb-e2e").await.unwrap();
                let serving_ca = CertAuthority::new("ebb-e2e-serving-ca").unwrap();
                let plane = Plane::Upstream(Box::new(UpstreamPlane { up, serving_ca, _turn: turn }));
                Self { plane, client, kubeconfig, _dir: dir }
            }
        };
        let keda = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SERVICE_NS}});
        cluster.create(&keda).await.unwrap();
        cluster
    }

    /// The admin client.
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// Whether this is upstream Kubernetes.
    pub fn is_upstream(&self) -> bool {
        matches!(self.plane, Plane::Upstream(_))
    }

    /// The local control plane, if the scenario runs on it; otherwise prints why `what` is skipped.
    pub fn sandbox_for(&self, what: &str) -> Option<&Sandbox> {
        match &self.plane {
            Plane::Local(sb) => Some(&**sb),
            Plane::Upstream(_) => {
                println!("skipped on a real cluster: {what} needs the local control plane");
                None
            }
        }
    }

    /// An admin kubeconfig file for kubectl.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The kubectl to run: the one on `PATH` for the local control plane, the pinned upstream
    /// release's for upstream.
    pub fn kubectl_program(&self) -> PathBuf {
        match &self.plane {
            Plane::Local(_) => PathBuf::from("kubectl"),
            Plane::Upstream(_) => kubernetes::binary("kubectl").unwrap(),
        }
    }

    /// Creates `obj` (any kind the cluster serves; namespace `default` unless it names one), as
    /// `kubectl create` would; an object that already exists is left as it is. On the local
    /// control plane this bypasses admission; on upstream it is an ordinary admin request.
    pub async fn create(&self, obj: &Value) -> Result<Value, String> {
        match &self.plane {
            Plane::Local(sb) => sb.create(obj).map_err(|e| format!("{e:?}")),
            Plane::Upstream(_) => create_dynamic(&self.client, obj).await,
        }
    }

    /// A serving certificate for Service `namespace/name` (and localhost, 127.0.0.1), signed by
    /// the CA of [`Cluster::ca_pem`].
    pub fn service_cert(&self, namespace: &str, name: &str) -> Leaf {
        match &self.plane {
            Plane::Local(sb) => sb.service_cert(namespace, name).unwrap(),
            Plane::Upstream(u) => {
                let host = format!("{name}.{namespace}.svc");
                u.serving_ca.issue_server(&[&host, "localhost"], &[[127, 0, 0, 1].into()]).unwrap()
            }
        }
    }

    /// The CA bundle (PEM) of the certificates [`Cluster::service_cert`] issues.
    pub fn ca_pem(&self) -> &str {
        match &self.plane {
            Plane::Local(sb) => sb.ca.cert_pem(),
            Plane::Upstream(u) => u.serving_ca.cert_pem(),
        }
    }

    /// The client certificate the aggregator presents to aggregated API servers.
    pub fn front_proxy_client(&self) -> Leaf {
        match &self.plane {
            Plane::Local(sb) => sb.front_proxy_ca.issue_client(FRONT_PROXY_CLIENT, &[]).unwrap(),
            Plane::Upstream(u) => {
                let read = |file: &str| std::fs::read_to_string(u.up.dir().join(file)).unwrap();
                Leaf { cert_pem: read("front-proxy-client.crt"), key_pem: read("front-proxy-client.key") }
            }
        }
    }

    /// The front-proxy CA, able to issue client certificates with other names.
    pub fn front_proxy_ca(&self) -> &CertAuthority {
        match &self.plane {
            Plane::Local(sb) => &sb.front_proxy_ca,
            Plane::Upstream(u) => u.up.front_proxy_ca(),
        }
    }

    /// Makes Service `namespace/name` reach `addr`; returns the port an APIService or webhook
    /// registration must name (443 on the local control plane, `addr`'s on upstream).
    pub async fn expose(&self, namespace: &str, name: &str, addr: SocketAddr) -> u16 {
        match &self.plane {
            Plane::Local(sb) => {
                sb.map_service(namespace, name, addr);
                443
            }
            Plane::Upstream(_) => {
                assert_eq!(addr.ip(), std::net::IpAddr::from([127, 0, 0, 1]), "served on {addr}");
                let svc: Service = serde_json::from_value(json!({"metadata": {"name": name},
                    "spec": {"type": "ExternalName", "externalName": "127.0.0.1"}}))
                .unwrap();
                let services: Api<Service> = Api::namespaced(self.client.clone(), namespace);
                services
                    .patch(name, &PatchParams::apply("ebb-e2e").force(), &Patch::Apply(&svc))
                    .await
                    .unwrap();
                addr.port()
            }
        }
    }

    /// A user `name` with a bearer token, allowed to read external metrics in `default` until
    /// [`Cluster::deny`]. Local: a static token with `groups`. Upstream: ServiceAccount
    /// `default/name` (groups are the ServiceAccount's) with a TokenRequest token and a
    /// RoleBinding to get any external metric.
    pub async fn add_user(&self, name: &str, groups: &[&str]) -> User {
        match &self.plane {
            Plane::Local(sb) => {
                let token = format!("{name}-token");
                sb.add_user(&token, name, groups);
                User { name: name.to_owned(), token, short: name.to_owned() }
            }
            Plane::Upstream(_) => {
                let sas: Api<ServiceAccount> = Api::namespaced(self.client.clone(), NS);
                let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
                sas.create(&PostParams::default(), &sa).await.unwrap();
                let request: TokenRequest =
                    serde_json::from_value(json!({"spec": {"audiences": [], "expirationSeconds": 3600}}))
                        .unwrap();
                let issued = sas.create_token_request(name, &PostParams::default(), &request).await.unwrap();
                let token = issued.status.unwrap().token;
                self.bind_reader(name).await;
                User { name: format!("system:serviceaccount:{NS}:{name}"), token, short: name.to_owned() }
            }
        }
    }

    /// From now on `user` may not read external metrics (nor anything else on the local
    /// control plane, whose deny list is per user).
    pub async fn deny(&self, user: &User) {
        match &self.plane {
            Plane::Local(sb) => sb.cp.auth.deny(&user.short),
            Plane::Upstream(_) => {
                let bindings: Api<RoleBinding> = Api::namespaced(self.client.clone(), NS);
                bindings.delete(&user.short, &DeleteParams::default()).await.unwrap();
            }
        }
    }

    /// A bearer token allowed to read external metrics: the admin's on the local control plane,
    /// a reader ServiceAccount's on upstream (whose admin authenticates with a certificate).
    pub async fn reader_token(&self) -> String {
        match &self.plane {
            Plane::Local(sb) => sb.admin_token.clone(),
            Plane::Upstream(_) => self.add_user("e2e-reader", &[]).await.token,
        }
    }

    /// The last lines each upstream component logged (empty on the local control plane).
    pub fn logs(&self, lines: usize) -> String {
        match &self.plane {
            Plane::Local(_) => String::new(),
            Plane::Upstream(u) => u.up.logs(lines),
        }
    }

    /// Stops the cluster.
    pub async fn stop(self) {
        match self.plane {
            Plane::Local(sb) => sb.stop().await,
            Plane::Upstream(u) => {
                let UpstreamPlane { up, serving_ca, _turn } = *u;
                tokio::task::spawn_blocking(move || drop(up)).await.unwrap();
                drop((serving_ca, _turn));
            }
        }
    }

    /// RoleBinding `name` in `default` of ServiceAccount `name` to [`READER_ROLE`].
    async fn bind_reader(&self, name: &str) {
        let role: ClusterRole = serde_json::from_value(json!({"metadata": {"name": READER_ROLE},
            "rules": [{"apiGroups": ["external.metrics.k8s.io"], "resources": ["*"], "verbs": ["get", "list"]}]}))
        .unwrap();
        let roles: Api<ClusterRole> = Api::all(self.client.clone());
        roles.patch(READER_ROLE, &PatchParams::apply("ebb-e2e").force(), &Patch::Apply(&role)).await.unwrap();
        let binding: RoleBinding = serde_json::from_value(json!({"metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": READER_ROLE},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": NS}]}))
        .unwrap();
        let bindings: Api<RoleBinding> = Api::namespaced(self.client.clone(), NS);
        bindings.create(&PostParams::default(), &binding).await.unwrap();
    }
}

/// Creates `obj` through the kind's resource found by discovery; AlreadyExists is no error.
async fn create_dynamic(client: &kube::Client, obj: &Value) -> Result<Value, String> {
    let api_version = obj["apiVersion"].as_str().unwrap_or_default();
    let kind = obj["kind"].as_str().unwrap_or_default();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (resource, caps) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .map_err(|e| format!("no resource serves {api_version} {kind}: {e}"))?;
    let api: Api<DynamicObject> = match caps.scope {
        kube::discovery::Scope::Namespaced => {
            let ns = obj["metadata"]["namespace"].as_str().unwrap_or(NS);
            Api::namespaced_with(client.clone(), ns, &resource)
        }
        kube::discovery::Scope::Cluster => Api::all_with(client.clone(), &resource),
    };
    let dynamic: DynamicObject = serde_json::from_value(obj.clone()).map_err(|e| e.to_string())?;
    match api.create(&PostParams::default(), &dynamic).await {
        Ok(created) => serde_json::to_value(created).map_err(|e| e.to_string()),
        Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(obj.clone()),
        Err(e) => Err(format!("{e}")),
    }
}
