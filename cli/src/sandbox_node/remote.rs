//! The sandbox node against any API server (upstream kube-apiserver built for the tests): what a
//! kubelet and kube-proxy do, through the API only. Pods come from the cluster's own controllers
//! (Deployment → ReplicaSet → Pod); the node binds every unscheduled Pod to itself ([`NODE`]),
//! runs those whose container is an ebb program as local processes (the same planning, volumes
//! and readiness as on the local control plane, see `pods`), marks every other Pod Running and
//! Ready so the HPA counts real ready Pods, and finishes Pods being deleted. Each process gets a
//! kubeconfig with its service account's token (TokenRequest), so the cluster's RBAC applies to
//! it exactly as in a cluster. Service ClusterIPs are loopback addresses on that control plane:
//! the node listens on each `ClusterIP:port` and forwards to the ready Pods the Service selects,
//! which is how the API server reaches ebb's webhook and metrics API server.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use base64::Engine as _;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::forward::{Forwarders, PortKey};
use super::launch;
use super::pods::{Paths, PodRun};
use super::{GRACE, Objects, PERIOD};

/// The Node every Pod is bound to.
pub const NODE: &str = "ebb-sandbox-node";
/// How long a service-account token is used before a new one is requested.
const TOKEN_REFRESH: Duration = Duration::from_secs(30 * 60);

/// How processes reach the API server: its URL and the CA (PEM) that signed its certificate.
#[derive(Debug, Clone)]
pub struct ApiAccess {
    pub server: String,
    pub ca_pem: String,
}

/// A running remote node; [`RemoteNode::stop`] stops its processes gracefully.
#[derive(Debug)]
pub struct RemoteNode {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RemoteNode {
    /// Starts the node on the cluster `client` talks to.
    pub fn start(client: kube::Client, access: ApiAccess, paths: Paths) -> Self {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(client, access, paths, stopped));
        Self { stop, task }
    }

    /// Stops every Pod's process (SIGTERM, then SIGKILL after a grace period) and the node.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Secrets and ConfigMaps listed at the start of a pass.
#[derive(Default)]
struct Snapshot(BTreeMap<(String, String, String), Value>);

impl Objects for Snapshot {
    fn object(&self, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        self.0.get(&(plural.to_owned(), namespace.to_owned(), name.to_owned())).cloned()
    }
}

struct State {
    client: kube::Client,
    access: ApiAccess,
    paths: Paths,
    pods: BTreeMap<(String, String), PodRun>,
    /// Pods not running an ebb program that were marked Ready.
    marked: BTreeSet<(String, String)>,
    forwarders: Forwarders,
    http: reqwest::Client,
    next_ip: u32,
    tokens: BTreeMap<(String, String), Instant>,
    node_ready: bool,
}

async fn run(client: kube::Client, access: ApiAccess, paths: Paths, mut stopped: watch::Receiver<bool>) {
    let http = reqwest::Client::builder().timeout(Duration::from_millis(800)).build().unwrap_or_default();
    let mut st = State {
        client,
        access,
        paths,
        pods: BTreeMap::new(),
        marked: BTreeSet::new(),
        forwarders: Forwarders::default(),
        http,
        next_ip: 0,
        tokens: BTreeMap::new(),
        node_ready: false,
    };
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            _ = tick.tick() => {
                if let Err(e) = st.tick().await {
                    println!("node: {e}");
                }
            }
        }
    }
    let stops = std::mem::take(&mut st.pods).into_values().map(|mut p| async move { p.stop(GRACE).await });
    futures::future::join_all(stops).await;
}

/// The Pod spec without the service-account token volume the API server's admission adds: the
/// node gives the process a kubeconfig with the token instead.
fn without_api_access(spec: &Value) -> Value {
    let mut spec = spec.clone();
    let token_volumes: BTreeSet<String> = spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| {
            v.pointer("/projected/sources")
                .and_then(Value::as_array)
                .is_some_and(|s| s.iter().any(|s| s.get("serviceAccountToken").is_some()))
        })
        .filter_map(|v| v["name"].as_str().map(str::to_owned))
        .collect();
    if let Some(vs) = spec["volumes"].as_array_mut() {
        vs.retain(|v| v["name"].as_str().is_none_or(|n| !token_volumes.contains(n)));
    }
    for c in spec["containers"].as_array_mut().into_iter().flatten() {
        if let Some(ms) = c["volumeMounts"].as_array_mut() {
            ms.retain(|m| m["name"].as_str().is_none_or(|n| !token_volumes.contains(n)));
        }
    }
    spec
}

fn err(what: &str, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

impl State {
    async fn tick(&mut self) -> Result<(), String> {
        if !self.node_ready {
            self.register_node().await?;
            self.node_ready = true;
        }
        let pods: Api<Pod> = Api::all(self.client.clone());
        let listed = pods.list(&ListParams::default()).await.map_err(|e| err("cannot list Pods", e))?;
        let mut present = BTreeSet::new();
        let mut labels: BTreeMap<(String, String), Value> = BTreeMap::new();
        for pod in listed.items {
            let obj = serde_json::to_value(&pod).map_err(|e| err("Pod", e))?;
            let ns =
                obj.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default().to_owned();
            let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned();
            let key = (ns.clone(), name.clone());
            let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
            if obj.pointer("/metadata/deletionTimestamp").is_some() {
                self.finish(&ns, &name).await;
                continue;
            }
            present.insert(key.clone());
            labels.insert(key.clone(), obj.pointer("/metadata/labels").cloned().unwrap_or(Value::Null));
            if spec.get("nodeName").and_then(Value::as_str).is_none_or(str::is_empty) {
                self.bind(&ns, &name).await?;
            }
            if launch::program(&spec).is_none() {
                if !self.marked.contains(&key) {
                    self.mark_ready(&ns, &name, &spec).await?;
                    self.marked.insert(key);
                }
                continue;
            }
            if !self.pods.contains_key(&key) {
                let hash = obj
                    .pointer("/metadata/labels/pod-template-hash")
                    .and_then(Value::as_str)
                    .and_then(|h| u64::from_str_radix(h, 16).ok())
                    .unwrap_or(0);
                let owner =
                    obj.pointer("/metadata/ownerReferences/0/name").and_then(Value::as_str).unwrap_or(&name);
                let mut run = PodRun::new(&ns, name.clone(), owner, hash, without_api_access(&spec));
                self.next_ip = self.next_ip % 250 + 1;
                run.pod_ip = format!("192.0.2.{}", self.next_ip);
                run.prepare(&self.paths)?;
                println!("{ns}/{name}: scheduled on {NODE}");
                self.pods.insert(key, run);
            }
        }
        self.marked.retain(|k| present.contains(k));
        let gone: Vec<_> = self.pods.keys().filter(|k| !present.contains(*k)).cloned().collect();
        for k in gone {
            if let Some(mut p) = self.pods.remove(&k) {
                p.stop(GRACE).await;
                println!("{}/{}: stopped", k.0, k.1);
            }
        }
        let snapshot = self.snapshot().await?;
        let services: Api<Service> = Api::all(self.client.clone());
        let services: Vec<Value> = services
            .list(&ListParams::default())
            .await
            .map_err(|e| err("cannot list Services", e))?
            .items
            .iter()
            .filter_map(|s| serde_json::to_value(s).ok())
            .collect();
        let links = super::pods::plan_all(self.pods.values_mut(), &snapshot, &self.paths);
        for k in &links {
            self.listen(&services, k).await;
        }
        let keys: Vec<_> = self.pods.keys().cloned().collect();
        for key in keys {
            let sa = self.pods[&key].spec["serviceAccountName"].as_str().unwrap_or("default").to_owned();
            match self.kubeconfig(&key.0, &sa).await {
                Ok(path) => {
                    if let Some(p) = self.pods.get_mut(&key) {
                        p.kubeconfig = Some(path);
                    }
                }
                Err(e) => println!("{}/{}: {e}", key.0, key.1),
            }
            let Some(p) = self.pods.get_mut(&key) else { continue };
            p.step(&snapshot, &self.paths, &self.forwarders, &self.http).await;
            if let Some(status) = p.status_change() {
                let api: Api<Pod> = Api::namespaced(self.client.clone(), &key.0);
                let patch = Patch::Merge(json!({"status": status}));
                if let Err(e) = api.patch_status(&key.1, &PatchParams::default(), &patch).await {
                    println!("{}/{}: cannot write status: {e}", key.0, key.1);
                    p.status_lost();
                }
            }
        }
        self.endpoints(&services, &labels).await;
        Ok(())
    }

    /// The Node object, Ready, with loopback as its address.
    async fn register_node(&self) -> Result<(), String> {
        let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(self.client.clone());
        if nodes.get_opt(NODE).await.map_err(|e| err("cannot read the Node", e))?.is_none() {
            let node = serde_json::from_value(json!({"metadata": {"name": NODE,
                "labels": {"kubernetes.io/hostname": NODE, "kubernetes.io/os": "linux"}}}))
            .map_err(|e| err("Node", e))?;
            nodes
                .create(&PostParams::default(), &node)
                .await
                .map_err(|e| err("cannot create the Node", e))?;
        }
        let status = json!({"status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "ebb's sandbox node runs Pods as local processes"}],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": NODE}],
            "capacity": {"pods": "1000", "cpu": "64", "memory": "256Gi"},
            "allocatable": {"pods": "1000", "cpu": "64", "memory": "256Gi"}}});
        nodes
            .patch_status(NODE, &PatchParams::default(), &Patch::Merge(status))
            .await
            .map_err(|e| err("cannot write the Node's status", e))?;
        Ok(())
    }

    async fn bind(&self, ns: &str, name: &str) -> Result<(), String> {
        let body = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
            "target": {"apiVersion": "v1", "kind": "Node", "name": NODE}});
        let req = http::Request::post(format!("/api/v1/namespaces/{ns}/pods/{name}/binding"))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).map_err(|e| err("Binding", e))?)
            .map_err(|e| err("Binding", e))?;
        match self.client.request_text(req).await {
            Ok(_) => Ok(()),
            // Bound meanwhile (a Pod is bound once).
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
            Err(e) => Err(err(&format!("cannot bind Pod {ns}/{name}"), e)),
        }
    }

    /// A Pod the node does not run: Running and Ready, as if its containers had started.
    async fn mark_ready(&mut self, ns: &str, name: &str, spec: &Value) -> Result<(), String> {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let statuses: Vec<Value> = spec["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                json!({"name": c["name"], "image": c["image"], "imageID": "", "ready": true,
                "restartCount": 0, "started": true, "state": {"running": {"startedAt": now}}})
            })
            .collect();
        self.next_ip = self.next_ip % 250 + 1;
        let ip = format!("192.0.2.{}", self.next_ip);
        let status = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
            "hostIP": "127.0.0.1", "startTime": now,
            "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Initialized", "status": "True"},
                {"type": "ContainersReady", "status": "True"}, {"type": "Ready", "status": "True"}],
            "containerStatuses": statuses}});
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(status))
            .await
            .map_err(|e| err(&format!("cannot mark Pod {ns}/{name} ready"), e))?;
        Ok(())
    }

    /// A Pod being deleted: its process stops, then the Pod goes (as a kubelet confirms).
    async fn finish(&mut self, ns: &str, name: &str) {
        let key = (ns.to_owned(), name.to_owned());
        if let Some(mut p) = self.pods.remove(&key) {
            p.stop(GRACE).await;
            println!("{ns}/{name}: stopped");
        }
        self.marked.remove(&key);
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let _ = api.delete(name, &DeleteParams { grace_period_seconds: Some(0), ..Default::default() }).await;
    }

    /// Secrets and ConfigMaps of the namespaces the node runs Pods in.
    async fn snapshot(&self) -> Result<Snapshot, String> {
        let namespaces: BTreeSet<&str> = self.pods.keys().map(|(ns, _)| ns.as_str()).collect();
        let mut snap = Snapshot::default();
        for ns in namespaces {
            let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(self.client.clone(), ns);
            for s in secrets.list(&ListParams::default()).await.map_err(|e| err("cannot list Secrets", e))? {
                let v = serde_json::to_value(&s).map_err(|e| err("Secret", e))?;
                let name = s.metadata.name.unwrap_or_default();
                snap.0.insert(("secrets".into(), ns.to_owned(), name), v);
            }
            let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(self.client.clone(), ns);
            for c in cms.list(&ListParams::default()).await.map_err(|e| err("cannot list ConfigMaps", e))? {
                let v = serde_json::to_value(&c).map_err(|e| err("ConfigMap", e))?;
                let name = c.metadata.name.unwrap_or_default();
                snap.0.insert(("configmaps".into(), ns.to_owned(), name), v);
            }
        }
        Ok(snap)
    }

    /// The kubeconfig of service account `ns/sa`, with a token requested for it (renewed every
    /// half hour).
    async fn kubeconfig(&mut self, ns: &str, sa: &str) -> Result<std::path::PathBuf, String> {
        let path = self.paths.dir.join("tokens").join(format!("{ns}_{sa}.kubeconfig"));
        let key = (ns.to_owned(), sa.to_owned());
        if self.tokens.get(&key).is_some_and(|at| at.elapsed() < TOKEN_REFRESH) && path.exists() {
            return Ok(path);
        }
        let body = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600}});
        let req = http::Request::post(format!("/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token"))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).map_err(|e| err("TokenRequest", e))?)
            .map_err(|e| err("TokenRequest", e))?;
        let answer: Value = self
            .client
            .request(req)
            .await
            .map_err(|e| err(&format!("cannot get a token for ServiceAccount {ns}/{sa}"), e))?;
        let token = answer.pointer("/status/token").and_then(Value::as_str).unwrap_or_default();
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.access.ca_pem);
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: cluster\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\nusers:\n- name: {sa}\n  user:\n    token: {token}\ncontexts:\n- name: pod\n  context:\n    cluster: cluster\n    user: {sa}\n    namespace: {ns}\ncurrent-context: pod\n",
            self.access.server
        );
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).map_err(|e| err(&d.display().to_string(), e))?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).map_err(|e| err(&tmp.display().to_string(), e))?;
        std::fs::rename(&tmp, &path).map_err(|e| err(&path.display().to_string(), e))?;
        self.tokens.insert(key, Instant::now());
        Ok(path)
    }

    /// Starts the forwarder of Service port `k` on its ClusterIP.
    async fn listen(&mut self, services: &[Value], k: &PortKey) {
        let ip = services
            .iter()
            .find(|s| {
                s.pointer("/metadata/namespace").and_then(Value::as_str) == Some(k.0.as_str())
                    && s.pointer("/metadata/name").and_then(Value::as_str) == Some(k.1.as_str())
            })
            .and_then(|s| s.pointer("/spec/clusterIP")?.as_str()?.parse::<IpAddr>().ok());
        let Some(ip) = ip.filter(IpAddr::is_loopback) else { return };
        if let Err(e) = self.forwarders.listen_at(k, SocketAddr::new(ip, k.2)).await {
            println!("Service {}/{} port {}: {e}", k.0, k.1, k.2);
        }
    }

    /// Each Service port selecting the node's Pods forwards to the ready ones.
    async fn endpoints(&mut self, services: &[Value], labels: &BTreeMap<(String, String), Value>) {
        let mut endpoints: BTreeMap<PortKey, Vec<SocketAddr>> = BTreeMap::new();
        for svc in services {
            let ns = svc.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default();
            let name = svc.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
            let Some(selector) =
                svc.pointer("/spec/selector").and_then(Value::as_object).filter(|s| !s.is_empty())
            else {
                continue;
            };
            let selected: Vec<&PodRun> = self
                .pods
                .iter()
                .filter(|((pns, pname), _)| {
                    pns == ns
                        && labels
                            .get(&(pns.clone(), pname.clone()))
                            .is_some_and(|l| selector.iter().all(|(k, v)| l.get(k) == Some(v)))
                })
                .map(|(_, p)| p)
                .collect();
            if selected.is_empty() {
                continue;
            }
            for port in svc.pointer("/spec/ports").and_then(Value::as_array).into_iter().flatten() {
                let Some(number) =
                    port.get("port").and_then(Value::as_u64).and_then(|n| u16::try_from(n).ok())
                else {
                    continue;
                };
                let target = port.get("targetPort").cloned().unwrap_or(Value::from(number));
                let addrs: Vec<SocketAddr> = selected.iter().filter_map(|p| p.endpoint(&target)).collect();
                endpoints.insert((ns.to_owned(), name.to_owned(), number), addrs);
            }
        }
        let keys: Vec<PortKey> = endpoints.keys().cloned().collect();
        for k in &keys {
            self.listen(services, k).await;
        }
        self.forwarders.set_endpoints(endpoints);
    }
}
