//! One Pod of the sandbox node: its process (started from the program built next to `ebb`,
//! restarted with a growing back-off when it exits), its projected volumes, its readiness
//! (the container's readiness probe), and the status written to its Pod object.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::Objects;
use super::forward::Forwarders;
use super::launch::{self, Launch, Lookup, PodRef};
use super::volumes;

/// Longest pause between restarts.
const MAX_BACKOFF: Duration = Duration::from_secs(20);

/// Plans every Pod (see [`PodRun::plan`]); the Service ports their programs link to, whose
/// forwarders must exist before the programs start.
pub fn plan_all<'a>(
    pods: impl Iterator<Item = &'a mut PodRun>,
    objects: &dyn Objects,
    paths: &Paths,
) -> std::collections::BTreeSet<super::forward::PortKey> {
    let mut links = std::collections::BTreeSet::new();
    for p in pods {
        p.plan(objects, paths);
        if let Some(l) = p.launch.as_ref().and_then(|l| l.link.as_ref()) {
            links.insert((l.namespace.clone(), l.service.clone(), l.port));
        }
    }
    links
}

/// Where the node finds programs and keeps Pods' files.
#[derive(Debug, Clone)]
pub struct Paths {
    /// Directory holding the built programs (next to `ebb`).
    pub bin_dir: PathBuf,
    /// Pods' directories, logs and volumes.
    pub dir: PathBuf,
    /// Kubeconfig the programs use.
    pub kubeconfig: PathBuf,
}

/// A Pod the node runs.
#[derive(Debug)]
pub struct PodRun {
    pub namespace: String,
    pub name: String,
    pub deployment: String,
    pub template_hash: u64,
    pub spec: Value,
    pub launch: Option<Launch>,
    child: Option<tokio::process::Child>,
    pub ready: bool,
    waiting: Option<(String, String)>,
    pub restarts: u32,
    retry_at: Option<Instant>,
    started_at: Option<String>,
    last_status: Value,
    /// The address written as the Pod's IP (loopback on the local control plane; upstream
    /// refuses loopback endpoint addresses, so the remote node gives each Pod a TEST-NET-1 one,
    /// which nothing dials: Services are reached through the node's forwarders).
    pub pod_ip: String,
    /// A kubeconfig of the Pod's own (its service account's token) instead of `Paths::kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
}

struct StoreLookup<'a>(&'a dyn Objects, &'a str);

impl Lookup for StoreLookup<'_> {
    /// Read as a volume of the object would show it (Secret data decoded).
    fn value(&self, secret: bool, name: &str, key: &str) -> Option<String> {
        let name = name.to_owned();
        let source = if secret {
            launch::Source::Secret { name, items: Vec::new(), optional: true }
        } else {
            launch::Source::ConfigMap { name, items: Vec::new(), optional: true }
        };
        let bytes = volumes::files(self.0, self.1, &source).ok()??.remove(key)?;
        String::from_utf8(bytes).ok()
    }
}

/// Ports for Pods come from 20000–29999, below the kernel's ephemeral range, so that a port
/// found free is not taken by an outgoing connection or a `:0` listener before the program
/// binds it. Each process starts at its own offset; ports are handed out in turn.
const PORTS: std::ops::Range<u32> = 20000..30000;

fn free_addr() -> Result<std::net::SocketAddr, String> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let span = PORTS.end - PORTS.start;
    let offset = (std::process::id() % 100) * (span / 100);
    for _ in 0..span {
        let port = PORTS.start + (offset + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port as u16));
        if std::net::TcpListener::bind(addr).is_ok() {
            return Ok(addr);
        }
    }
    Err(format!("no free port in 127.0.0.1:{}-{}", PORTS.start, PORTS.end - 1))
}

impl PodRun {
    pub fn new(namespace: &str, name: String, deployment: &str, template_hash: u64, spec: Value) -> Self {
        Self {
            namespace: namespace.to_owned(),
            name,
            deployment: deployment.to_owned(),
            template_hash,
            spec,
            launch: None,
            child: None,
            ready: false,
            waiting: Some(("ContainerCreating".into(), String::new())),
            restarts: 0,
            retry_at: None,
            started_at: None,
            last_status: Value::Null,
            pod_ip: "127.0.0.1".into(),
            kubeconfig: None,
        }
    }

    fn dir(&self, paths: &Paths) -> PathBuf {
        paths.dir.join("pods").join(format!("{}_{}", self.namespace, self.name))
    }

    /// The log file of the Pod's process.
    pub fn log(&self, paths: &Paths) -> PathBuf {
        paths.dir.join("logs").join(format!("{}_{}.log", self.namespace, self.name))
    }

    fn wait(&mut self, reason: &str, message: String) {
        self.ready = false;
        self.waiting = Some((reason.to_owned(), message));
    }

    /// Notices an exit, and plans the process when it is not planned (first start, or a restart
    /// after an exit: fresh ports, current Secret and ConfigMap values).
    pub fn plan(&mut self, cp: &dyn Objects, paths: &Paths) {
        if let Some(child) = &mut self.child
            && let Ok(Some(status)) = child.try_wait()
        {
            self.child = None;
            self.restarts += 1;
            let pause = Duration::from_secs(1 << self.restarts.min(5)).min(MAX_BACKOFF);
            self.retry_at = Some(Instant::now() + pause);
            let log = self.log(paths);
            println!(
                "{}/{}: exited ({status}); restarting in {pause:?} (log {})",
                self.namespace,
                self.name,
                log.display()
            );
            self.wait("CrashLoopBackOff", format!("{status}; see {}", log.display()));
            self.launch = None;
        }
        if self.launch.is_none() {
            let sa =
                self.spec.get("serviceAccountName").and_then(Value::as_str).unwrap_or("default").to_owned();
            let pod = PodRef { namespace: &self.namespace, name: &self.name, service_account: &sa };
            match launch::plan(
                &self.spec,
                &pod,
                &self.dir(paths),
                &StoreLookup(cp, &self.namespace),
                &mut free_addr,
            ) {
                Ok(l) => self.launch = Some(l),
                Err(e) => self.wait("CreateContainerConfigError", e),
            }
        }
    }

    /// After [`Self::plan`]: keeps volumes current, (re)starts the process when due, probes
    /// readiness. Services the process links to have their forwarders in `forwarders`.
    pub async fn step(
        &mut self,
        cp: &dyn Objects,
        paths: &Paths,
        forwarders: &Forwarders,
        http: &reqwest::Client,
    ) {
        let Some(l) = self.launch.clone() else { return };
        for v in &l.volumes {
            match volumes::files(cp, &self.namespace, &v.source) {
                Ok(Some(files)) => {
                    if let Err(e) = volumes::write(v, &files) {
                        return self.wait("ContainerCreating", e);
                    }
                }
                Ok(None) => {
                    if self.child.is_none() {
                        let what = match &v.source {
                            launch::Source::Secret { name, .. } => format!("secret {name:?}"),
                            launch::Source::ConfigMap { name, .. } => format!("configmap {name:?}"),
                            launch::Source::EmptyDir => String::new(),
                        };
                        return self.wait(
                            "ContainerCreating",
                            format!("MountVolume.SetUp failed for volume {:?}: {what} not found", v.name),
                        );
                    }
                }
                Err(e) => return self.wait("ContainerCreating", e),
            }
        }
        if self.child.is_none() && self.retry_at.is_none_or(|t| Instant::now() >= t) {
            match self.spawn(&l, paths, forwarders) {
                Ok(child) => {
                    self.child = Some(child);
                    self.waiting = None;
                    self.started_at =
                        Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
                    println!(
                        "{}/{}: started {} (log {})",
                        self.namespace,
                        self.name,
                        l.program,
                        self.log(paths).display()
                    );
                }
                Err(e) => {
                    self.retry_at = Some(Instant::now() + Duration::from_secs(2));
                    return self.wait("RunContainerError", e);
                }
            }
        }
        if self.child.is_some() {
            self.ready = match &l.readiness {
                Some((path, addr)) => http
                    .get(format!("http://{addr}{path}"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success()),
                None => true,
            };
        }
    }

    fn spawn(
        &self,
        l: &Launch,
        paths: &Paths,
        forwarders: &Forwarders,
    ) -> Result<tokio::process::Child, String> {
        let exe = paths.bin_dir.join(&l.program);
        if !exe.exists() {
            return Err(format!(
                "{} is not built next to ebb in {} (run `cargo build --workspace`)",
                l.program,
                paths.bin_dir.display()
            ));
        }
        let log_path = self.log(paths);
        if let Some(d) = log_path.parent() {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("{}: {e}", log_path.display()))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = tokio::process::Command::new(&exe);
        cmd.args(&l.args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOSTNAME", &self.name)
            .env("KUBECONFIG", self.kubeconfig.as_ref().unwrap_or(&paths.kubeconfig))
            .envs(l.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(self.dir(paths))
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(log2)
            .kill_on_drop(true);
        if let Some(link) = &l.link {
            let key = (link.namespace.clone(), link.service.clone(), link.port);
            let addr = forwarders
                .get(&key)
                .ok_or_else(|| format!("no forwarder for Service {}/{}", link.namespace, link.service))?;
            cmd.env(link.env, addr.to_string());
        }
        cmd.spawn().map_err(|e| format!("cannot start {}: {e}", exe.display()))
    }

    /// Asks the process to stop (SIGTERM), waits up to `grace`, then kills it.
    pub async fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else { return };
        if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
        }
        if tokio::time::timeout(grace, child.wait()).await.is_err() {
            let _ = child.kill().await;
        }
        self.ready = false;
    }

    /// The Pod object to create.
    pub fn object(&self, template: &Value) -> Value {
        let mut labels = template.pointer("/metadata/labels").cloned().unwrap_or_else(|| json!({}));
        labels["pod-template-hash"] = json!(format!("{:x}", self.template_hash & 0xff_ffff_ffff));
        let mut spec = self.spec.clone();
        spec["nodeName"] = json!("sandbox");
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": self.name, "namespace": self.namespace, "labels": labels,
                "annotations": template.pointer("/metadata/annotations").cloned().unwrap_or_else(|| json!({}))},
            "spec": spec})
    }

    /// The Pod's status now; `None` when it is what was last written.
    pub fn status_change(&mut self) -> Option<Value> {
        let cname = self.spec.pointer("/containers/0/name").cloned().unwrap_or_else(|| json!("main"));
        let state = match (&self.waiting, &self.started_at) {
            (Some((reason, message)), _) => json!({"waiting": {"reason": reason, "message": message}}),
            (None, Some(at)) => json!({"running": {"startedAt": at}}),
            (None, None) => json!({"waiting": {"reason": "ContainerCreating"}}),
        };
        let ready = if self.ready { "True" } else { "False" };
        let status = json!({
            "phase": if self.child.is_some() { "Running" } else { "Pending" },
            "podIP": self.pod_ip, "podIPs": [{"ip": self.pod_ip}], "hostIP": "127.0.0.1",
            "conditions": [{"type": "Ready", "status": ready}, {"type": "ContainersReady", "status": ready}],
            "containerStatuses": [{"name": cname, "ready": self.ready, "restartCount": self.restarts,
                "started": self.child.is_some(), "state": state}],
        });
        (status != self.last_status).then(|| {
            self.last_status = status.clone();
            status
        })
    }

    /// Where a Service port whose `targetPort` is `target` (a number or a port name) reaches
    /// this Pod: its local address, while the Pod is ready.
    pub fn endpoint(&self, target: &Value) -> Option<std::net::SocketAddr> {
        if !self.ready {
            return None;
        }
        let l = self.launch.as_ref()?;
        let container = match target {
            Value::String(n) => l.port_names.get(n).copied(),
            v => v.as_i64(),
        }?;
        l.ports.get(&container).copied()
    }

    /// Forgets the written status, so the next [`Self::status_change`] rewrites it.
    pub fn status_lost(&mut self) {
        self.last_status = Value::Null;
    }

    /// The Pod's local directory exists for its volumes.
    pub fn prepare(&self, paths: &Paths) -> Result<(), String> {
        let d = self.dir(paths);
        std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))
    }
}
