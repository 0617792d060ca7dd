//! The sandbox node: what a kubelet and kube-proxy do for ebb's own Deployments on the local
//! control plane. Every half second it runs `spec.replicas` Pods of each Deployment whose
//! container runs an ebb program (`launch::PROGRAMS`) as local processes, with the Deployment's
//! arguments, environment and volumes (see `launch`), writes their Pod objects and status,
//! replaces Pods whose template changed, and serves each Service that selects them through a
//! loopback forwarder to its ready Pods (`forward`), registering the Service's address for the
//! control plane's webhook calls and APIService proxying. Other Deployments keep the control
//! plane's simulated status and run nothing.

pub mod forward;
pub mod launch;
pub mod pods;
pub mod remote;
pub mod volumes;

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash as _, Hasher as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ebb_sandbox::control::{ControlPlane, Sub, UserInfo, WriteCtx};
use serde_json::Value;
use tokio::sync::watch;

use self::forward::{Forwarders, PortKey};
use self::pods::{Paths, PodRun};

/// How often the node looks at Deployments, Pods and Services.
const PERIOD: Duration = Duration::from_millis(500);
/// How long a stopping process gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(5);

/// A running node; [`Node::stop`] stops its processes gracefully.
#[derive(Debug)]
pub struct Node {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Node {
    /// Starts the node on `cp`.
    pub fn start(cp: Arc<ControlPlane>, paths: Paths) -> Self {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(cp, paths, stopped));
        Self { stop, task }
    }

    /// Stops every Pod's process (SIGTERM, then SIGKILL after a grace period) and the node.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Where the node reads the Secrets and ConfigMaps its Pods' volumes and environment refer to:
/// the local control plane's store, or a snapshot listed from any API server.
pub trait Objects: Sync {
    /// The object `plural` (core group: `secrets`, `configmaps`) `namespace/name`, if present.
    fn object(&self, plural: &str, namespace: &str, name: &str) -> Option<Value>;
}

impl Objects for ControlPlane {
    fn object(&self, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        self.resource("", "v1", plural).and_then(|r| self.get(&r, namespace, name).ok())
    }
}

struct State {
    cp: Arc<ControlPlane>,
    paths: Paths,
    pods: BTreeMap<(String, String), PodRun>,
    forwarders: Forwarders,
    mapped: BTreeSet<(String, String)>,
    http: reqwest::Client,
}

fn ctx() -> WriteCtx {
    WriteCtx {
        user: UserInfo { username: "system:node:sandbox".into(), groups: vec!["system:nodes".into()] },
        field_manager: "kubelet".into(),
        dry_run: false,
        force: false,
        warnings: Default::default(),
        field_validation: Default::default(),
    }
}

async fn run(cp: Arc<ControlPlane>, paths: Paths, mut stopped: watch::Receiver<bool>) {
    let http = reqwest::Client::builder().timeout(Duration::from_millis(800)).build().unwrap_or_default();
    let mut st = State {
        cp,
        paths,
        pods: BTreeMap::new(),
        forwarders: Forwarders::default(),
        mapped: BTreeSet::new(),
        http,
    };
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            _ = tick.tick() => st.tick().await,
        }
    }
    let stops = std::mem::take(&mut st.pods).into_values().map(|mut p| async move { p.stop(GRACE).await });
    futures::future::join_all(stops).await;
}

fn template_hash(template: &Value) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    template.to_string().hash(&mut h);
    h.finish()
}

fn suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut n = uuid::Uuid::new_v4().as_u128();
    (0..5)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u128) as usize] as char;
            n /= ALPHABET.len() as u128;
            c
        })
        .collect()
}

impl State {
    async fn tick(&mut self) {
        let Some(pod_res) = self.cp.resource("", "v1", "pods") else { return };
        let (deployments, _) = self.cp.store.list("apps", "deployments", None);
        let mut wanted: BTreeMap<(String, String), (u64, i64, Value)> = BTreeMap::new();
        for (key, d) in &deployments {
            let Some(template) = d.pointer("/spec/template") else { continue };
            if template.get("spec").and_then(launch::program).is_none() {
                continue;
            }
            let replicas = d.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
            wanted.insert(
                (key.2.clone(), key.3.clone()),
                (template_hash(template), replicas, template.clone()),
            );
        }
        // Pods deleted through the API (`kubectl delete pod`), of deleted Deployments, of an
        // older template, or beyond the replica count.
        let mut counts: BTreeMap<(String, String), i64> = BTreeMap::new();
        let mut remove = Vec::new();
        for (k, p) in &self.pods {
            if self.cp.get(&pod_res, &p.namespace, &p.name).is_err() {
                remove.push(k.clone());
                continue;
            }
            let dep = (p.namespace.clone(), p.deployment.clone());
            let n = counts.entry(dep.clone()).or_default();
            match wanted.get(&dep) {
                Some((hash, replicas, _)) if *hash == p.template_hash && *n < *replicas => *n += 1,
                _ => remove.push(k.clone()),
            }
        }
        for k in remove {
            if let Some(mut p) = self.pods.remove(&k) {
                p.stop(GRACE).await;
                let _ = self.cp.delete(&pod_res, &p.namespace, &p.name, &Value::Null, &ctx()).await;
                println!("{}/{}: stopped", p.namespace, p.name);
            }
        }
        for ((ns, dep), (hash, replicas, template)) in &wanted {
            let have = counts.get(&(ns.clone(), dep.clone())).copied().unwrap_or(0);
            for _ in have..*replicas {
                let spec = template.get("spec").cloned().unwrap_or(Value::Null);
                let name = format!("{dep}-{:x}-{}", hash & 0xff_ffff_ffff, suffix());
                let pod = PodRun::new(ns, name.clone(), dep, *hash, spec);
                if let Err(e) = pod.prepare(&self.paths) {
                    println!("{ns}/{name}: {e}");
                    continue;
                }
                if let Err(e) = self.cp.create(&pod_res, ns, pod.object(template), &ctx()).await {
                    println!("{ns}/{name}: cannot create the Pod: {}", e.message);
                    continue;
                }
                self.pods.insert((ns.clone(), name), pod);
            }
        }
        // Plan first, so that the forwarders of the Services a process links to exist before
        // it starts.
        let links = pods::plan_all(self.pods.values_mut(), self.cp.as_ref(), &self.paths);
        for k in &links {
            if let Err(e) = self.forwarders.addr(k).await {
                println!("Service {}/{} port {}: {e}", k.0, k.1, k.2);
            }
        }
        for p in self.pods.values_mut() {
            p.step(self.cp.as_ref(), &self.paths, &self.forwarders, &self.http).await;
            if let Some(status) = p.status_change() {
                let written = match self.cp.get(&pod_res, &p.namespace, &p.name) {
                    Ok(mut obj) => {
                        obj["status"] = status;
                        self.cp
                            .update(&pod_res, &p.namespace, &p.name, obj, Sub::Status, &ctx())
                            .await
                            .is_ok()
                    }
                    Err(_) => false,
                };
                if !written {
                    p.status_lost();
                }
            }
        }
        self.services().await;
    }

    /// Endpoints of every Service selecting the node's Pods, their forwarders, and the
    /// control plane's Service addresses.
    async fn services(&mut self) {
        let Some(pod_res) = self.cp.resource("", "v1", "pods") else { return };
        let (services, _) = self.cp.store.list("", "services", None);
        let mut endpoints: BTreeMap<PortKey, Vec<SocketAddr>> = BTreeMap::new();
        // The Pods' labels as stored (the operator's leader label is set through the API).
        let labels: BTreeMap<&str, Value> = self
            .pods
            .values()
            .filter_map(|p| {
                let obj = self.cp.get(&pod_res, &p.namespace, &p.name).ok()?;
                Some((p.name.as_str(), obj.pointer("/metadata/labels")?.clone()))
            })
            .collect();
        for (key, svc) in &services {
            let (ns, name) = (&key.2, &key.3);
            let Some(selector) =
                svc.pointer("/spec/selector").and_then(Value::as_object).filter(|s| !s.is_empty())
            else {
                continue;
            };
            let mut selected = Vec::new();
            for p in self.pods.values().filter(|p| p.namespace == *ns) {
                if labels
                    .get(p.name.as_str())
                    .is_some_and(|l| selector.iter().all(|(k, v)| l.get(k) == Some(v)))
                {
                    selected.push(p);
                }
            }
            if selected.is_empty() && !self.mapped.contains(&(ns.clone(), name.clone())) {
                continue;
            }
            let ports = svc.pointer("/spec/ports").and_then(Value::as_array).cloned().unwrap_or_default();
            let mut main: Option<PortKey> = None;
            for port in &ports {
                let Some(number) =
                    port.get("port").and_then(Value::as_u64).and_then(|n| u16::try_from(n).ok())
                else {
                    continue;
                };
                let pk: PortKey = (ns.clone(), name.clone(), number);
                if main.is_none() || number == 443 {
                    main = Some(pk.clone());
                }
                let target = port.get("targetPort").cloned().unwrap_or(Value::from(number));
                let addrs: Vec<SocketAddr> = selected.iter().filter_map(|p| p.endpoint(&target)).collect();
                if let Err(e) = self.forwarders.addr(&pk).await {
                    println!("Service {ns}/{name} port {number}: {e}");
                }
                endpoints.insert(pk, addrs);
            }
            let Some(main) = main else { continue };
            let up = endpoints.get(&main).is_some_and(|e| !e.is_empty());
            match (up, self.forwarders.get(&main)) {
                (true, Some(addr)) => self.cp.admission.map_service(ns, name, addr),
                _ => self.cp.admission.unmap_service(ns, name),
            }
            self.mapped.insert((ns.clone(), name.clone()));
        }
        let present: BTreeSet<(String, String)> =
            services.iter().map(|(k, _)| (k.2.clone(), k.3.clone())).collect();
        let gone: Vec<(String, String)> = self.mapped.difference(&present).cloned().collect();
        for (ns, name) in gone {
            self.cp.admission.unmap_service(&ns, &name);
            self.mapped.remove(&(ns, name));
        }
        self.forwarders.set_endpoints(endpoints);
    }
}
