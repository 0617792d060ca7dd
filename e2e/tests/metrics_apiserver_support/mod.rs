//! Shared setup of the metrics-apiserver scenarios: the cluster ([`cluster`]: ebb's local
//! control plane, or upstream Kubernetes with `EBB_E2E_CLUSTER=upstream`) with the CRDs, the
//! operator run in-process with its internal mTLS service on a known port, the metrics-apiserver
//! run in-process with serving certificates for Service keda/ebb-metrics-apiserver, the
//! APIService registration, Deployments and cron ScaledObjects, HTTPS clients for the secure
//! port (with or without a client certificate), kubectl, bounded waits and the fd count.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use chrono::{Timelike, Utc};
use ebb_plumbing::shutdown::ShutdownTrigger;
use ebb_sandbox::pki::{CertAuthority, Leaf};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DynamicObject, PostParams};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

pub mod cluster;

pub use cluster::{Cluster, Options};

pub const NS: &str = "default";
pub const SERVICE_NS: &str = "keda";
pub const SERVICE: &str = "ebb-metrics-apiserver";

/// Prints warnings of every ebb crate (shown by the harness when a test fails).
pub fn init_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("warn,ebb_metrics_apiserver=info")
            .with_test_writer()
            .try_init();
    });
}

/// A cluster with ebb's CRDs (HPA controller every `hpa_sync`) and its admin client.
pub async fn start_cluster(hpa_sync: Duration) -> (Cluster, kube::Client) {
    let cluster = Cluster::start(Options::hpa_sync(hpa_sync)).await;
    let client = cluster.client();
    (cluster, client)
}

/// A fresh directory for a test's files, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let dir = std::env::temp_dir().join(format!("ebb-e2e-{tag}-{}-{nanos:x}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn arg(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_owned()
    }

    /// Writes `text` to `name` through a rename (as the kubelet updates Secret volumes).
    pub fn write(&self, name: &str, text: &str) {
        let tmp = self.path(&format!("{name}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.path(name)).unwrap();
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Certificates of one test: the internal link's CA, the operator's serving certificate and
/// the metrics-apiserver's client certificate for it, and the metrics-apiserver's serving
/// certificate for keda/ebb-metrics-apiserver signed by the cluster's serving CA.
pub struct Pki {
    pub dir: TempDir,
    pub internal_ca: CertAuthority,
}

impl Pki {
    pub fn new(cluster: &Cluster, tag: &str) -> Self {
        let dir = TempDir::new(tag);
        let internal_ca = CertAuthority::new("ebb-internal-ca").unwrap();
        let operator = internal_ca.issue_server(&["localhost"], &[[127, 0, 0, 1].into()]).unwrap();
        let client = internal_ca.issue_client(SERVICE, &[]).unwrap();
        let serving = cluster.service_cert(SERVICE_NS, SERVICE);
        dir.write("internal-ca.crt", internal_ca.cert_pem());
        dir.write("operator.crt", &operator.cert_pem);
        dir.write("operator.key", &operator.key_pem);
        dir.write("client.crt", &client.cert_pem);
        dir.write("client.key", &client.key_pem);
        dir.write("tls.crt", &serving.cert_pem);
        dir.write("tls.key", &serving.key_pem);
        Self { dir, internal_ca }
    }

    /// Replaces the serving certificate files (key first, then certificate).
    pub fn rotate_serving(&self, leaf: &Leaf) {
        self.dir.write("tls.key", &leaf.key_pem);
        self.dir.write("tls.crt", &leaf.cert_pem);
    }
}

/// A port free right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running in-process operator.
pub struct Operator {
    pub task: JoinHandle<Result<(), String>>,
    pub trigger: ShutdownTrigger,
}

impl Operator {
    /// Requests shutdown and waits (bounded) for `serve` to return; panics if it failed or
    /// panicked.
    pub async fn stop(self) {
        self.trigger.trigger();
        let result = tokio::time::timeout(Duration::from_secs(15), self.task).await;
        result.expect("the operator stops in time").expect("the operator did not panic").unwrap();
    }
}

/// The path an HPA reads through, started and ready: the cluster (HPA sync every second), the
/// operator with its internal service, and the metrics-apiserver registered as the
/// `v1beta1.external.metrics.k8s.io` APIService and answering `/readyz`.
pub struct Stack {
    pub cluster: Cluster,
    pub client: kube::Client,
    pub pki: Pki,
    pub operator: Operator,
    pub server: MetricsServer,
}

/// Starts a [`Stack`]; `tag` names its certificates' directory.
pub async fn start_stack(tag: &str) -> Stack {
    let (cluster, client) = start_cluster(Duration::from_secs(1)).await;
    let pki = Pki::new(&cluster, tag);
    let port = free_port();
    let operator = start_operator(&client, &pki, port);
    let server = start_metrics_apiserver(&client, &pki, port, &[]).await;
    register(&cluster, &server).await;
    wait_for("the metrics-apiserver to be ready", Duration::from_secs(10), async || {
        server.admin_get("/readyz").await.0 == 200
    })
    .await;
    Stack { cluster, client, pki, operator, server }
}

/// Starts the operator with its internal service on 127.0.0.1:`port`.
pub fn start_operator(client: &kube::Client, pki: &Pki, port: u16) -> Operator {
    let args = <ebb_operator::Args as clap::Parser>::try_parse_from([
        "ebb-operator".to_owned(),
        "--admin-addr".into(),
        "127.0.0.1:0".into(),
        "--operator-namespace".into(),
        NS.into(),
        "--internal-addr".into(),
        format!("127.0.0.1:{port}"),
        "--internal-cert-file".into(),
        pki.dir.arg("operator.crt"),
        "--internal-key-file".into(),
        pki.dir.arg("operator.key"),
        "--internal-client-ca-file".into(),
        pki.dir.arg("internal-ca.crt"),
        // The test backends listen on loopback, which the egress policy refuses by default.
        "--egress-allow-cidrs=127.0.0.0/8,::1".into(),
    ])
    .unwrap();
    let (trigger, shutdown) = ebb_plumbing::shutdown::channel();
    let client = client.clone();
    let task = tokio::spawn(async move {
        ebb_operator::serve(args, client, shutdown).await.map_err(|e| format!("{e:#}"))
    });
    Operator { task, trigger }
}

/// A running in-process metrics-apiserver.
pub struct MetricsServer {
    pub secure: SocketAddr,
    pub admin: SocketAddr,
    pub task: JoinHandle<Result<(), String>>,
    pub trigger: ShutdownTrigger,
}

impl MetricsServer {
    pub async fn stop(self) {
        self.trigger.trigger();
        let result = tokio::time::timeout(Duration::from_secs(15), self.task).await;
        result.expect("the server stops in time").expect("the server did not panic").unwrap();
    }

    /// `https://localhost:<port><path>` of the secure port.
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.secure.port())
    }

    /// GET `path` on the admin port: status and body.
    pub async fn admin_get(&self, path: &str) -> (u16, String) {
        let r = reqwest::get(format!("http://{}{path}", self.admin)).await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

/// Starts the metrics-apiserver against the operator at 127.0.0.1:`operator_port` with `extra`
/// flags, checking callers with `client` (unless `--insecure-skip-auth` is among `extra`).
pub async fn start_metrics_apiserver(
    client: &kube::Client,
    pki: &Pki,
    operator_port: u16,
    extra: &[&str],
) -> MetricsServer {
    let mut argv = vec![
        "ebb-metrics-apiserver".to_owned(),
        "--admin-addr".into(),
        "127.0.0.1:0".into(),
        "--secure-addr".into(),
        "127.0.0.1:0".into(),
        "--tls-cert-file".into(),
        pki.dir.arg("tls.crt"),
        "--tls-key-file".into(),
        pki.dir.arg("tls.key"),
        "--operator-url".into(),
        format!("https://127.0.0.1:{operator_port}"),
        "--operator-ca-file".into(),
        pki.dir.arg("internal-ca.crt"),
        "--operator-cert-file".into(),
        pki.dir.arg("client.crt"),
        "--operator-key-file".into(),
        pki.dir.arg("client.key"),
    ];
    argv.extend(extra.iter().map(|s| (*s).to_owned()));
    let args = <ebb_metrics_apiserver::Args as clap::Parser>::try_parse_from(argv).unwrap();
    let server = ebb_metrics_apiserver::MetricsApiServer::bind(&args, Some(client.clone())).await.unwrap();
    let (secure, admin) = (server.secure_addr(), server.admin_addr());
    let (trigger, shutdown) = ebb_plumbing::shutdown::channel();
    let task = tokio::spawn(async move { server.serve(shutdown).await.map_err(|e| format!("{e:#}")) });
    MetricsServer { secure, admin, task, trigger }
}

/// Registers APIService v1beta1.external.metrics.k8s.io for Service keda/ebb-metrics-apiserver
/// (caBundle: the cluster's serving CA) and maps the Service to `server`'s secure port. On
/// upstream, waits until the aggregator reports the APIService Available.
pub async fn register(cluster: &Cluster, server: &MetricsServer) {
    let port = cluster.expose(SERVICE_NS, SERVICE, server.secure).await;
    let client = cluster.client();
    let resource = kube::discovery::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("apiregistration.k8s.io", "v1", "APIService"),
        "apiservices",
    );
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": "v1beta1.external.metrics.k8s.io"},
        "spec": {
            "group": "external.metrics.k8s.io", "version": "v1beta1",
            "service": {"namespace": SERVICE_NS, "name": SERVICE, "port": port},
            "caBundle": k8s_openapi::ByteString(cluster.ca_pem().as_bytes().to_vec()),
            "groupPriorityMinimum": 100, "versionPriority": 100,
        }
    }))
    .unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap();
    if cluster.is_upstream() {
        let started = Instant::now();
        loop {
            let got = api.get("v1beta1.external.metrics.k8s.io").await.unwrap();
            let conditions = &got.data["status"]["conditions"];
            let mut all = conditions.as_array().into_iter().flatten();
            if all.any(|c| c["type"] == "Available" && c["status"] == "True") {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "APIService not Available: {conditions}\n{}",
                cluster.logs(20)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Creates Deployment `name` with `replicas`.
pub async fn create_deployment(client: &kube::Client, name: &str, replicas: i32) {
    let deps: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let dep: Deployment = serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "app", "image": "x"}]}}}}))
    .unwrap();
    deps.create(&PostParams::default(), &dep).await.unwrap();
}

/// spec.replicas of Deployment `name`.
pub async fn replicas(client: &kube::Client, name: &str) -> i32 {
    let deps: Api<Deployment> = Api::namespaced(client.clone(), NS);
    deps.get(name).await.unwrap().spec.unwrap().replicas.unwrap_or(0)
}

/// Creates ScaledObject `name` on Deployment `target`: one cron trigger (UTC) whose window
/// opened this minute and lasts `minutes`, asking for `desired` replicas; min 1, max 5.
pub async fn create_cron_so(client: &kube::Client, name: &str, target: &str, desired: u32, minutes: u32) {
    let m = Utc::now().minute();
    let trigger = json!({"type": "cron", "metadata": {"timezone": "UTC",
        "start": format!("{:02} * * * *", m), "end": format!("{:02} * * * *", (m + minutes) % 60),
        "desiredReplicas": desired.to_string()}});
    let so: ebb_api::ScaledObject =
        serde_json::from_value(json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"minReplicaCount": 1, "maxReplicaCount": 5, "pollingInterval": 1, "cooldownPeriod": 300,
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "triggers": [trigger]}}))
        .unwrap();
    let sos: Api<ebb_api::ScaledObject> = Api::namespaced(client.clone(), NS);
    sos.create(&PostParams::default(), &so).await.unwrap();
}

/// The external metric name the operator put on the HPA of ScaledObject `so`.
pub async fn metric_name(client: &kube::Client, so: &str) -> String {
    let hpas: Api<k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler> =
        Api::namespaced(client.clone(), NS);
    let mut name = None;
    wait_for("the operator's HPA", Duration::from_secs(20), async || {
        name = hpas
            .get_opt(&format!("keda-hpa-{so}"))
            .await
            .unwrap()
            .and_then(|h| h.spec?.metrics?.first()?.external.as_ref().map(|e| e.metric.name.clone()));
        name.is_some()
    })
    .await;
    name.unwrap()
}

/// The value path of `metric` for ScaledObject `so`, selector percent-encoded as kubectl users
/// write it.
pub fn value_path(metric: &str, so: &str) -> String {
    format!(
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/{NS}/{metric}?labelSelector=scaledobject.keda.sh%2Fname%3D{so}"
    )
}

/// An HTTPS client trusting the cluster's serving CA, optionally presenting `identity` (a leaf).
pub fn https_client(cluster: &Cluster, identity: Option<&Leaf>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cluster.ca_pem().as_bytes()).unwrap())
        .tls_built_in_root_certs(false)
        .tls_info(true)
        .timeout(Duration::from_secs(10));
    if let Some(leaf) = identity {
        let pem = format!("{}{}", leaf.cert_pem, leaf.key_pem);
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

/// The answer of a request: status and JSON body (`Null` when not JSON).
pub async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Runs the real kubectl with the cluster's admin kubeconfig: success, stdout, stderr.
pub async fn kubectl(cluster: &Cluster, args: &[&str]) -> (bool, String, String) {
    let kubeconfig = cluster.kubeconfig_path().to_owned();
    let program = cluster.kubectl_program();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(&program)
            .env("KUBECONFIG", &kubeconfig)
            .args(&args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("kubectl must be installed (scripts/test installs it)");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

/// Polls `f` every 50 ms until it holds; panics after `limit`. Returns how long it took.
pub async fn wait_for(what: &str, limit: Duration, f: impl AsyncFnMut() -> bool) -> Duration {
    wait_until(limit, f).await.unwrap_or_else(|| panic!("timed out after {limit:?} waiting for {what}"))
}

/// Polls `f` every 50 ms until it holds: how long it took, or `None` after `limit`.
pub async fn wait_until(limit: Duration, mut f: impl AsyncFnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if f().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// The HPA of ScaledObject `so` (spec.metrics and status) as JSON, for failure messages.
pub async fn hpa_state(client: &kube::Client, so: &str) -> String {
    let hpas: Api<k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler> =
        Api::namespaced(client.clone(), NS);
    match hpas.get_opt(&format!("keda-hpa-{so}")).await {
        Ok(Some(h)) => {
            let metrics = h.spec.map(|s| s.metrics);
            json!({"metrics": metrics, "status": h.status}).to_string()
        }
        Ok(None) => format!("no HPA keda-hpa-{so}"),
        Err(e) => format!("cannot read HPA keda-hpa-{so}: {e}"),
    }
}

/// Open file descriptors of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

/// A TCP proxy to `upstream` that can be frozen: while frozen it keeps every connection open
/// and accepts new ones but forwards nothing, as a hung process would.
pub struct FreezingProxy {
    pub port: u16,
    frozen: tokio::sync::watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl FreezingProxy {
    pub async fn start(upstream: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (frozen, watch) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((inbound, _)) = listener.accept().await {
                let watch = watch.clone();
                connections.spawn(async move {
                    let Ok(outbound) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await else {
                        return;
                    };
                    let (in_read, in_write) = inbound.into_split();
                    let (out_read, out_write) = outbound.into_split();
                    tokio::join!(pump(in_read, out_write, watch.clone()), pump(out_read, in_write, watch));
                });
            }
        });
        Self { port, frozen, task }
    }

    pub fn freeze(&self, frozen: bool) {
        self.frozen.send_replace(frozen);
    }
}

impl Drop for FreezingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if frozen.wait_for(|f| !*f).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Bytes read just before a freeze are held until it thaws.
        if frozen.wait_for(|f| !*f).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
