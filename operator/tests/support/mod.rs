//! Shared setup of the operator's end-to-end tests: a local control plane with the CRDs
//! installed and a kube client for it, Deployments and cron ScaledObjects, the operator run
//! in-process (with its admin address learnt from its "admin server listening" log event),
//! bounded waits, readers for status conditions, events and `/metrics`, and a stand-in
//! Prometheus that records each request's Authorization header.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use chrono::{Timelike, Utc};
use ebb_api::ScaledObject;
use ebb_plumbing::shutdown::ShutdownTrigger;
use ebb_sandbox::sandbox::{Config, Sandbox};
use ebb_testbackends::kubernetes::Upstream;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// The cluster the tests run on, chosen by `EBB_E2E_CLUSTER`: `local` (default) is ebb's local
/// control plane; `upstream` is upstream Kubernetes (etcd, kube-apiserver,
/// kube-controller-manager) started on loopback by `ebb_testbackends::kubernetes`, one per test
/// binary; `kubeconfig` (or the older `EBB_E2E_REAL_CLUSTER=1`) is the cluster `KUBECONFIG`
/// names. On any cluster but the local one each test works in a namespace of its own (the
/// client's default namespace), deleted by [`Cluster::stop`]; tests that need the local control
/// plane's fault injection or direct store access are skipped there, saying so.
pub struct Cluster {
    pub sandbox: Option<Sandbox>,
    namespace: Option<String>,
    client: kube::Client,
}

/// Where the e2e tests run (see [`Cluster`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Local,
    Upstream,
    Kubeconfig,
}

/// The target `EBB_E2E_CLUSTER` (or `EBB_E2E_REAL_CLUSTER=1`) selects; panics on an unknown name.
pub fn target() -> Target {
    match std::env::var("EBB_E2E_CLUSTER").as_deref() {
        Ok("upstream") => Target::Upstream,
        Ok("kubeconfig") => Target::Kubeconfig,
        Ok("local") => Target::Local,
        Ok(other) => panic!("EBB_E2E_CLUSTER={other:?}: expected local, upstream or kubeconfig"),
        Err(_) if std::env::var("EBB_E2E_REAL_CLUSTER").is_ok_and(|v| v == "1") => Target::Kubeconfig,
        Err(_) => Target::Local,
    }
}

/// Whether the e2e tests run on a cluster other than the local control plane.
pub fn real_cluster() -> bool {
    target() != Target::Local
}

impl Cluster {
    /// The local control plane, if the tests run on it; otherwise prints why `what` is skipped.
    pub fn sandbox_for(&self, what: &str) -> Option<&Sandbox> {
        if self.sandbox.is_none() {
            skipped(&format!("skipped on a real cluster: {what} needs the local control plane"));
        }
        self.sandbox.as_ref()
    }

    /// Stops the local control plane, or deletes the test's namespace on a real cluster.
    pub async fn stop(self) {
        if let Some(sb) = self.sandbox {
            sb.stop().await;
        } else if let Some(ns) = self.namespace {
            let nss: Api<Namespace> = Api::all(self.client.clone());
            let _ = nss.delete(&ns, &Default::default()).await;
        }
    }
}

/// A cluster with the CRDs installed and an admin client whose default namespace is the one
/// the test works in. On the local control plane the HPA controller syncs every `hpa_sync`.
pub async fn start_cluster(hpa_sync: Duration) -> (Cluster, kube::Client) {
    if real_cluster() {
        let config = real_cluster_config().await;
        return on_real_cluster(config).await;
    }
    let sb = Sandbox::start(Config { hpa_sync, ..Default::default() }).await.unwrap();
    for (_, crd) in ebb_api::crds::all() {
        sb.create(&serde_json::to_value(&crd).unwrap()).unwrap();
    }
    let kc = kube::config::Kubeconfig::from_yaml(&sb.kubeconfig()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
    let client = kube::Client::try_from(config).unwrap();
    (Cluster { sandbox: Some(sb), namespace: None, client: client.clone() }, client)
}

/// The CRDs applied (and Established) on the cluster of `config`, and a namespace of the test's
/// own there, the client's default namespace.
async fn on_real_cluster(mut config: kube::Config) -> (Cluster, kube::Client) {
    let client = kube::Client::try_from(config.clone()).unwrap();
    ebb_testbackends::kubernetes::crds::install(&client, "ebb-e2e").await.unwrap();
    let ns = format!("ebb-e2e-{}-{}", std::process::id(), NEXT_NS.fetch_add(1, Ordering::Relaxed));
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap())
        .await
        .unwrap();
    config.default_namespace = ns.clone();
    let client = kube::Client::try_from(config).unwrap();
    (Cluster { sandbox: None, namespace: Some(ns), client: client.clone() }, client)
}

/// Says why a scenario is skipped, on the real stderr: the test harness captures `println!`
/// and `eprintln!` of passing tests, and a skip must show in the test command's output.
pub fn skipped(why: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{why}");
}

/// An upstream control plane of the test's own (not shared: the test may stop and restart its
/// components), ready as [`start_cluster`] makes it; `None`, saying why, unless
/// `EBB_E2E_CLUSTER=upstream`.
pub async fn start_own_upstream(what: &str) -> Option<(Upstream, Cluster, kube::Client)> {
    if target() != Target::Upstream {
        skipped(&format!("skipped: {what} needs upstream Kubernetes (EBB_E2E_CLUSTER=upstream)"));
        return None;
    }
    let up = tokio::task::spawn_blocking(|| Upstream::start(&Default::default())).await.unwrap().unwrap();
    let kc = kube::config::Kubeconfig::read_from(up.kubeconfig_path()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
    let (cluster, client) = on_real_cluster(config).await;
    Some((up, cluster, client))
}

/// The admin client configuration of the upstream control plane (started on first use) or of
/// `KUBECONFIG`.
async fn real_cluster_config() -> kube::Config {
    if target() == Target::Upstream {
        let path = tokio::task::spawn_blocking(|| Upstream::shared().kubeconfig_path()).await.unwrap();
        let kc = kube::config::Kubeconfig::read_from(&path).unwrap();
        return kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
    }
    kube::Config::infer().await.expect("EBB_E2E_CLUSTER=kubeconfig needs KUBECONFIG")
}

/// How long garbage collection of an owner's dependents may take. Upstream's garbage collector
/// learns of a CRD created after it started only at its 30 s discovery resync, and the tests
/// install the CRDs when they start; the local control plane collects at once.
pub fn gc_limit() -> Duration {
    if real_cluster() { Duration::from_secs(75) } else { Duration::from_secs(5) }
}

static NEXT_NS: AtomicUsize = AtomicUsize::new(0);

/// [`start_cluster`] with the HPA controller's sync period at an hour (its first pass runs before
/// any HPA exists), so every replica change comes from the operator or the test.
pub async fn start_sandbox() -> (Cluster, kube::Client) {
    start_cluster(Duration::from_secs(3600)).await
}

/// Creates Deployment `name` with `replicas`.
pub async fn create_deployment(client: &kube::Client, name: &str, replicas: i32) {
    let deps: Api<Deployment> = Api::default_namespaced(client.clone());
    let dep: Deployment = serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "app", "image": "x"}]}}}}))
    .unwrap();
    deps.create(&PostParams::default(), &dep).await.unwrap();
}

/// spec.replicas of Deployment `name`.
pub async fn replicas(client: &kube::Client, name: &str) -> i32 {
    let deps: Api<Deployment> = Api::default_namespaced(client.clone());
    deps.get(name).await.unwrap().spec.unwrap().replicas.unwrap_or(0)
}

/// Sets spec.replicas of Deployment `name` by hand (field manager `e2e-test`).
pub async fn set_replicas(client: &kube::Client, name: &str, n: i32) {
    let deps: Api<Deployment> = Api::default_namespaced(client.clone());
    let pp = PatchParams { field_manager: Some("e2e-test".into()), ..Default::default() };
    deps.patch(name, &pp, &Patch::Merge(json!({"spec": {"replicas": n}}))).await.unwrap();
}

/// Cron trigger metadata (UTC) with minute fields `start` and `end` (taken modulo 60).
pub fn cron(start: u32, end: u32) -> Value {
    json!({"type": "cron", "metadata": {"timezone": "UTC", "start": format!("{:02} * * * *", start % 60),
        "end": format!("{:02} * * * *", end % 60), "desiredReplicas": "1"}})
}

/// A window open from the current minute for `minutes` minutes (at least `minutes - 1` minutes
/// from now).
pub fn open_window(minutes: u32) -> Value {
    let m = Utc::now().minute();
    cron(m, m + minutes)
}

/// A window that is closed now and for the next half hour.
pub fn closed_window() -> Value {
    let m = Utc::now().minute();
    cron(m + 30, m + 31)
}

/// A ScaledObject on Deployment `target` with `triggers`; `extra` is merged into its spec.
pub fn scaled_object(name: &str, target: &str, triggers: Value, extra: Value) -> ScaledObject {
    let mut spec = json!({"minReplicaCount": 0, "maxReplicaCount": 5, "pollingInterval": 1, "cooldownPeriod": 2,
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
        "triggers": triggers});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": name}, "spec": spec}))
    .unwrap()
}

pub async fn create_so(client: &kube::Client, so: &ScaledObject) {
    let sos: Api<ScaledObject> = Api::default_namespaced(client.clone());
    sos.create(&PostParams::default(), so).await.unwrap();
}

pub async fn get_so(client: &kube::Client, name: &str) -> Option<ScaledObject> {
    let sos: Api<ScaledObject> = Api::default_namespaced(client.clone());
    sos.get_opt(name).await.unwrap()
}

/// Merge-patches ScaledObject `name`.
pub async fn patch_so(client: &kube::Client, name: &str, patch: Value) {
    let sos: Api<ScaledObject> = Api::default_namespaced(client.clone());
    sos.patch(name, &PatchParams::default(), &Patch::Merge(patch)).await.unwrap();
}

/// `(status, reason, message)` of condition `type_` of ScaledObject `name`.
pub async fn condition(client: &kube::Client, name: &str, type_: &str) -> Option<(String, String, String)> {
    let so = get_so(client, name).await?;
    so.status?
        .conditions
        .into_iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status, c.reason.unwrap_or_default(), c.message.unwrap_or_default()))
}

/// `(type, reason, note)` of the events regarding object `name`, oldest first.
pub async fn events(client: &kube::Client, name: &str) -> Vec<(String, String, String)> {
    let evs: Api<Event> = Api::default_namespaced(client.clone());
    let mut list: Vec<Event> = evs
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .collect();
    list.sort_by_key(|e| e.metadata.creation_timestamp.as_ref().map(|t| t.0));
    list.into_iter()
        .map(|e| (e.type_.unwrap_or_default(), e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
        .collect()
}

/// How many events with `reason` regard object `name`.
pub async fn count_events(client: &kube::Client, name: &str, reason: &str) -> usize {
    events(client, name).await.iter().filter(|(_, r, _)| r == reason).count()
}

/// Polls `f` every 200 ms until it holds; panics after `limit`.
pub async fn wait_for(what: &str, limit: Duration, mut f: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    while started.elapsed() < limit {
        if f().await {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

/// Checks every 200 ms for `period` that `f` holds; panics at the first time it does not.
pub async fn holds_for(what: &str, period: Duration, mut f: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while started.elapsed() < period {
        assert!(f().await, "{what} stopped holding after {:?}", started.elapsed());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Seconds until the next minute boundary (UTC).
pub fn secs_to_next_minute() -> f64 {
    let now = Utc::now();
    60.0 - f64::from(now.second()) - f64::from(now.nanosecond().min(999_999_999)) / 1e9
}

/// A running in-process operator.
pub struct Operator {
    pub task: JoinHandle<anyhow::Result<()>>,
    pub trigger: ShutdownTrigger,
    pub admin: SocketAddr,
}

impl Operator {
    /// Requests shutdown and waits (bounded) for `serve` to return.
    pub async fn stop(self) {
        self.trigger.trigger();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }

    /// The admin server's `/metrics` text.
    pub async fn metrics(&self) -> Result<String, reqwest::Error> {
        reqwest::get(format!("http://{}/metrics", self.admin)).await?.text().await
    }
}

/// Admin addresses from "admin server listening" log events, in order.
static LISTENING: Mutex<Vec<SocketAddr>> = Mutex::new(Vec::new());
/// Serializes operator starts so each start owns the next listening event.
static STARTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Starts `ebb_operator::serve` in a task with `--admin-addr 127.0.0.1:0 --operator-namespace
/// <the test's namespace>` and `extra` flags, and waits for its admin server to listen.
pub async fn start_operator(client: &kube::Client, extra: &[&str]) -> Operator {
    install_log_capture();
    let ns = client.default_namespace().to_owned();
    // The test backends listen on loopback, which the egress policy refuses by default.
    let mut argv = vec![
        "ebb-operator",
        "--admin-addr",
        "127.0.0.1:0",
        "--operator-namespace",
        &ns,
        "--egress-allow-cidrs=127.0.0.0/8,::1",
    ];
    if real_cluster() {
        // Tests run in parallel on one cluster: each operator minds its own test's namespace.
        argv.extend(["--watch-namespace", &ns]);
    }
    argv.extend_from_slice(extra);
    let args = <ebb_operator::Args as clap::Parser>::try_parse_from(argv).unwrap();
    let _one_at_a_time = STARTING.lock().await;
    let before = LISTENING.lock().unwrap().len();
    let (trigger, shutdown) = ebb_plumbing::shutdown::channel();
    let task = tokio::spawn(ebb_operator::serve(args, client.clone(), shutdown));
    let mut admin = None;
    wait_for("the operator's admin server", Duration::from_secs(10), async || {
        admin = LISTENING.lock().unwrap().get(before).copied();
        admin.is_some()
    })
    .await;
    Operator { task, trigger, admin: admin.unwrap() }
}

/// Value of the series of `family` whose labels include `scaledObject="so"`, if present.
pub fn series(metrics: &str, family: &str, so: &str) -> Option<f64> {
    let label = format!("scaledObject=\"{so}\"");
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{family}{{")) && l.contains(&label))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

/// A process-wide tracing subscriber that records the admin server's listening address and
/// prints warnings and errors (captured by the test harness, shown on failure).
fn install_log_capture() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = tracing::subscriber::set_global_default(Capture);
    });
}

struct Capture;

#[derive(Default)]
struct Fields {
    message: String,
    addr: Option<String>,
    rest: String,
}

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "addr" => self.addr = Some(format!("{value:?}")),
            other => self.rest.push_str(&format!(" {other}={value:?}")),
        }
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, m: &tracing::Metadata<'_>) -> bool {
        m.is_event()
            && (m.target().starts_with("ebb_plumbing::admin")
                || (m.target().starts_with("ebb_") && *m.level() <= tracing::Level::WARN))
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut f = Fields::default();
        event.record(&mut f);
        if f.message == ebb_plumbing::admin::LISTENING_MESSAGE
            && let Some(addr) = f.addr.as_deref().and_then(|a| a.parse().ok())
        {
            LISTENING.lock().unwrap().push(addr);
        }
        if *event.metadata().level() <= tracing::Level::WARN {
            eprintln!("{} {}: {}{}", event.metadata().level(), event.metadata().target(), f.message, f.rest);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// A stand-in for Prometheus answering every instant query with `5`, recording the
/// Authorization header of each request.
pub async fn fake_prometheus() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let base = ebb_testbackends::http_stub::serve(move |req| {
        record.lock().unwrap().push(req.header("authorization").unwrap_or("").to_owned());
        ebb_testbackends::http_stub::Answer::json(
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1.0,"5"]}]}}"#,
        )
    })
    .await
    .unwrap();
    (base.trim_start_matches("http://").parse().unwrap(), seen)
}
