//! Upstream Kubernetes on loopback, the oracle the end-to-end tests run against: etcd,
//! kube-apiserver and kube-controller-manager built from the Go module pinned in
//! `testbackends/kubernetes/go.mod` by `scripts/backends/kubernetes.sh`, started in a temporary
//! directory with a PKI of their own ([`pki`]), and stopped when the handle is dropped or the test
//! process ends ([`crate::watched`]).
//!
//! What the cluster has and has not:
//! - RBAC authorization; an admin kubeconfig (`system:masters`); API aggregation with the
//!   front-proxy client certificate and the requestheader CA published in
//!   `kube-system/extension-apiserver-authentication`, as in any conformant cluster.
//! - Service ClusterIPs come from a loopback range ([`SERVICE_CIDR`]): the API server dials a
//!   Service's ClusterIP for APIService proxying and webhook calls, and something on this machine
//!   (the sandbox node, or a test) may listen there — no traffic ever leaves loopback.
//! - The controllers of [`CONTROLLERS`] run (Deployments, ReplicaSets, the HPA, garbage
//!   collection, namespaces, endpoints, service accounts, Jobs). No scheduler, kubelet or
//!   kube-proxy: a Pod stays Pending unless a node (see the CLI's sandbox node) binds it.

pub mod crds;
mod pki;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::watched::Watched;

/// The go.mod that pins the versions; the binaries' cache directory is keyed by them.
const GO_MOD: &str = include_str!("../kubernetes/go.mod");
/// ClusterIPs are allocated from here (see the module doc).
pub const SERVICE_CIDR: &str = "127.0.100.0/24";
/// The first ClusterIP, taken by Service `default/kubernetes`.
const KUBERNETES_SERVICE_IP: [u8; 4] = [127, 0, 100, 1];
/// kube-controller-manager's controllers (legacy names, accepted by every release since 1.26).
pub const CONTROLLERS: &str = "deployment,replicaset,horizontalpodautoscaling,garbagecollector,namespace,\
endpoint,endpointslice,serviceaccount,serviceaccount-token,job,cronjob,root-ca-cert-publisher,podgc,\
clusterrole-aggregation,disruption,ttl-after-finished";
/// How long each component may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// Settings of one control plane; [`Default`] is upstream's defaults.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--horizontal-pod-autoscaler-sync-period` (upstream default 15 s).
    pub hpa_sync: Duration,
    /// `--horizontal-pod-autoscaler-downscale-stabilization` (upstream default 5 min).
    pub downscale_stabilization: Duration,
    /// Extra kube-apiserver flags, e.g. `--enable-aggregator-routing=true`.
    pub apiserver_args: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            hpa_sync: Duration::from_secs(15),
            downscale_stabilization: Duration::from_secs(300),
            apiserver_args: Vec::new(),
        }
    }
}

/// A running upstream control plane.
#[derive(Debug)]
pub struct Upstream {
    dir: PathBuf,
    port: u16,
    etcd: Watched,
    apiserver: Watched,
    controller_manager: Watched,
    apiserver_args: Vec<String>,
    cluster_ca: ebb_sandbox::pki::CertAuthority,
    front_proxy_ca: ebb_sandbox::pki::CertAuthority,
}

static SHARED: OnceLock<Result<Upstream, String>> = OnceLock::new();
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// The pinned `(kubernetes, etcd)` versions, as `testbackends/kubernetes/go.mod` requires them.
pub fn versions() -> (String, String) {
    let mut kube = String::new();
    let mut etcd = String::new();
    for line in GO_MOD.lines() {
        let mut words = line.split_whitespace();
        let (first, second) = (words.next(), words.next());
        match (first, second) {
            (Some("k8s.io/kubernetes"), Some(v)) if v.starts_with('v') => kube = v.to_owned(),
            (Some("go.etcd.io/etcd/server/v3"), Some(v)) if v.starts_with('v') => etcd = v.to_owned(),
            _ => {}
        }
    }
    (kube, etcd)
}

/// Where `scripts/backends/kubernetes.sh` puts the binaries (`$EBB_KUBE_CACHE`, default
/// `/var/tmp/ebb-kube`, then `<kubernetes>-etcd-<etcd>/bin`).
pub fn bin_dir() -> PathBuf {
    let root =
        std::env::var_os("EBB_KUBE_CACHE").map_or_else(|| PathBuf::from("/var/tmp/ebb-kube"), PathBuf::from);
    let (kube, etcd) = versions();
    root.join(format!("{kube}-etcd-{etcd}")).join("bin")
}

/// Path of one of the built binaries, or an error saying how to build them.
pub fn binary(name: &str) -> Result<PathBuf, String> {
    let path = bin_dir().join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("{} not found: run `bash scripts/backends/kubernetes.sh` first", path.display()))
    }
}

impl Upstream {
    /// Starts etcd, kube-apiserver and kube-controller-manager and waits until the API server is
    /// ready and the controllers have created the `default` ServiceAccount. Blocks (up to a few
    /// tens of seconds); call it from a blocking context or before the test's runtime starts.
    pub fn start(opts: &Options) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!(
            "ebb-upstream-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let files = pki::write(&dir, KUBERNETES_SERVICE_IP.into())?;
        let (etcd_port, peer_port, port) = (free_port()?, free_port()?, free_port()?);

        let mut etcd = start_etcd(&dir, etcd_port, peer_port)?;
        wait(&mut etcd, "etcd /health", || {
            http_status(([127, 0, 0, 1], etcd_port), "/health").is_ok_and(|s| s == 200)
        })?;

        let apiserver_args = apiserver_args(&dir, &files, etcd_port, port, &opts.apiserver_args);
        let mut apiserver = start_apiserver(&dir, &apiserver_args)?;
        let kubeconfig = dir.join("admin.kubeconfig");
        pki::write_kubeconfig(&kubeconfig, port, &files.ca, &files.admin)?;
        pki::write_kubeconfig(&dir.join("kcm.kubeconfig"), port, &files.ca, &files.controller_manager)?;
        wait_apiserver(&mut apiserver, &kubeconfig)?;
        let mut controller_manager = start_controller_manager(&dir, &files, opts)?;
        let kubectl = binary("kubectl")?;
        wait(&mut controller_manager, "the default ServiceAccount", || {
            Command::new(&kubectl)
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .args(["get", "serviceaccount", "default", "-n", "default", "-o", "name"])
                .output()
                .is_ok_and(|o| o.status.success())
        })?;
        let (cluster_ca, front_proxy_ca) = (files.cluster_ca, files.front_proxy_authority);
        Ok(Self {
            dir,
            port,
            etcd,
            apiserver,
            controller_manager,
            apiserver_args,
            cluster_ca,
            front_proxy_ca,
        })
    }

    /// One control plane for the whole test binary, with [`Options::default`]; tests sharing it
    /// work in namespaces of their own. Panics with the reason if it cannot start.
    pub fn shared() -> &'static Self {
        match SHARED.get_or_init(|| Self::start(&Options::default())) {
            Ok(u) => u,
            Err(e) => panic!("{e}"),
        }
    }

    /// The admin kubeconfig (user `ebb-admin` in group `system:masters`).
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.dir.join("admin.kubeconfig")
    }

    /// The admin kubeconfig's text.
    pub fn kubeconfig(&self) -> Result<String, String> {
        let path = self.kubeconfig_path();
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    }

    /// `https://127.0.0.1:PORT`.
    pub fn server(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The cluster CA (PEM) that signed the API server's serving certificate.
    pub fn ca_pem(&self) -> Result<String, String> {
        let path = self.dir.join("ca.crt");
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    }

    /// The cluster CA: it signed the API server's certificate, and client certificates it issues
    /// authenticate to the API server (CN the user, O entries the groups).
    pub fn cluster_ca(&self) -> &ebb_sandbox::pki::CertAuthority {
        &self.cluster_ca
    }

    /// The front-proxy CA, to issue client certificates such as a forged aggregator's.
    pub fn front_proxy_ca(&self) -> &ebb_sandbox::pki::CertAuthority {
        &self.front_proxy_ca
    }

    /// The front-proxy CA (PEM): aggregated API servers verify the aggregator's client
    /// certificate with it (kube-apiserver also publishes it in
    /// `kube-system/extension-apiserver-authentication`).
    pub fn front_proxy_ca_pem(&self) -> Result<String, String> {
        let path = self.dir.join("front-proxy-ca.crt");
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    }

    /// The directory holding the PKI, kubeconfigs and logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The built kubectl with the admin kubeconfig, ready for arguments.
    pub fn kubectl(&self) -> Result<Command, String> {
        let mut cmd = Command::new(binary("kubectl")?);
        cmd.arg("--kubeconfig").arg(self.kubeconfig_path());
        Ok(cmd)
    }

    /// Runs the built kubectl with `args`; its output whether or not it succeeded.
    pub fn run_kubectl(&self, args: &[&str]) -> Result<Output, String> {
        self.kubectl()?.args(args).output().map_err(|e| format!("cannot run kubectl: {e}"))
    }

    /// [`Upstream::run_kubectl`] with `input` on kubectl's standard input (`apply -f -`).
    pub fn run_kubectl_with_input(&self, args: &[&str], input: &str) -> Result<Output, String> {
        use std::io::Write as _;
        use std::process::Stdio;
        let mut child = self
            .kubectl()?
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run kubectl: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input.as_bytes()).map_err(|e| format!("cannot write to kubectl: {e}"))?;
        }
        child.wait_with_output().map_err(|e| format!("cannot run kubectl: {e}"))
    }

    /// The last `n` lines each component logged, for failure messages.
    pub fn logs(&self, n: usize) -> String {
        [&self.etcd, &self.apiserver, &self.controller_manager]
            .iter()
            .map(|w| format!("--- {} ---\n{}", w.name(), w.log_tail(n)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Stops kube-apiserver (SIGTERM, its graceful shutdown): clients see refused connections
    /// until [`Upstream::start_apiserver`].
    pub fn stop_apiserver(&mut self) {
        self.apiserver.stop(Duration::from_secs(20));
    }

    /// Kills kube-apiserver (SIGKILL), as a crash: open connections break at once.
    pub fn kill_apiserver(&mut self) {
        self.apiserver.kill();
    }

    /// Starts kube-apiserver again on the same port, etcd and PKI, and waits until it is ready.
    pub fn start_apiserver(&mut self) -> Result<(), String> {
        self.apiserver = start_apiserver(&self.dir, &self.apiserver_args)?;
        let kubeconfig = self.kubeconfig_path();
        wait_apiserver(&mut self.apiserver, &kubeconfig)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.controller_manager.stop(Duration::from_secs(10));
        self.apiserver.stop(Duration::from_secs(20));
        self.etcd.stop(Duration::from_secs(10));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_etcd(dir: &Path, port: u16, peer: u16) -> Result<Watched, String> {
    let client = format!("http://127.0.0.1:{port}");
    let peer = format!("http://127.0.0.1:{peer}");
    let args = [
        format!("--data-dir={}", dir.join("etcd").display()),
        format!("--listen-client-urls={client}"),
        format!("--advertise-client-urls={client}"),
        format!("--listen-peer-urls={peer}"),
        format!("--initial-advertise-peer-urls={peer}"),
        format!("--initial-cluster=default={peer}"),
        "--unsafe-no-fsync=true".into(),
        "--log-level=warn".into(),
    ];
    // The whole directory goes once etcd (the last to stop) has ended.
    Watched::spawn("etcd", &binary("etcd")?, &args, &[], &dir.join("etcd.log"), Some(dir))
}

fn apiserver_args(dir: &Path, files: &pki::Files, etcd: u16, port: u16, extra: &[String]) -> Vec<String> {
    let p = |name: &str| dir.join(name).display().to_string();
    let mut args = vec![
        format!("--etcd-servers=http://127.0.0.1:{etcd}"),
        "--bind-address=127.0.0.1".into(),
        "--advertise-address=127.0.0.1".into(),
        format!("--secure-port={port}"),
        format!("--tls-cert-file={}", p(&files.serving.cert)),
        format!("--tls-private-key-file={}", p(&files.serving.key)),
        format!("--client-ca-file={}", p(&files.ca)),
        format!("--service-account-key-file={}", p(&files.service_account_public_key)),
        format!("--service-account-signing-key-file={}", p(&files.service_account_key)),
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
        format!("--service-cluster-ip-range={SERVICE_CIDR}"),
        "--authorization-mode=RBAC".into(),
        "--endpoint-reconciler-type=none".into(),
        format!("--requestheader-client-ca-file={}", p(&files.front_proxy_ca)),
        "--requestheader-allowed-names=front-proxy-client".into(),
        "--requestheader-username-headers=X-Remote-User".into(),
        "--requestheader-group-headers=X-Remote-Group".into(),
        "--requestheader-extra-headers-prefix=X-Remote-Extra-".into(),
        format!("--proxy-client-cert-file={}", p(&files.front_proxy_client.cert)),
        format!("--proxy-client-key-file={}", p(&files.front_proxy_client.key)),
        "--profiling=false".into(),
        "--v=1".into(),
    ];
    args.extend(extra.iter().cloned());
    args
}

fn start_apiserver(dir: &Path, args: &[String]) -> Result<Watched, String> {
    Watched::spawn(
        "kube-apiserver",
        &binary("kube-apiserver")?,
        args,
        &[],
        &dir.join("kube-apiserver.log"),
        None,
    )
}

fn start_controller_manager(dir: &Path, files: &pki::Files, opts: &Options) -> Result<Watched, String> {
    let p = |name: &str| dir.join(name).display().to_string();
    let args = [
        format!("--kubeconfig={}", p("kcm.kubeconfig")),
        "--leader-elect=false".into(),
        "--secure-port=0".into(),
        format!("--controllers={CONTROLLERS}"),
        "--use-service-account-credentials=true".into(),
        format!("--service-account-private-key-file={}", p(&files.service_account_key)),
        format!("--root-ca-file={}", p(&files.ca)),
        format!("--horizontal-pod-autoscaler-sync-period={}ms", opts.hpa_sync.as_millis()),
        format!(
            "--horizontal-pod-autoscaler-downscale-stabilization={}ms",
            opts.downscale_stabilization.as_millis()
        ),
        "--profiling=false".into(),
        "--v=1".into(),
    ];
    Watched::spawn(
        "kube-controller-manager",
        &binary("kube-controller-manager")?,
        &args,
        &[],
        &dir.join("kube-controller-manager.log"),
        None,
    )
}

fn wait_apiserver(apiserver: &mut Watched, kubeconfig: &Path) -> Result<(), String> {
    let kubectl = binary("kubectl")?;
    wait(apiserver, "kube-apiserver /readyz", || {
        Command::new(&kubectl)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["get", "--raw", "/readyz"])
            .output()
            .is_ok_and(|o| o.status.success() && o.stdout.starts_with(b"ok"))
    })
}

/// Polls `ready` every 200 ms until it holds, failing early when `proc` exits.
fn wait(proc: &mut Watched, what: &str, mut ready: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if ready() {
            return Ok(());
        }
        if let Some(reason) = proc.exited() {
            return Err(format!("{reason} before {what} answered:\n{}", proc.log_tail(30)));
        }
        if Instant::now() > deadline {
            return Err(format!("{what} not ready within {READY_TIMEOUT:?}:\n{}", proc.log_tail(30)));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn free_port() -> Result<u16, String> {
    let l =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port on 127.0.0.1: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| format!("no free port on 127.0.0.1: {e}"))
}

/// Status code of a plain-HTTP GET on 127.0.0.1 (`port`, or a whole address).
pub(crate) fn http_status(addr: impl Into<std::net::SocketAddr>, path: &str) -> std::io::Result<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr.into(), Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head)?;
    String::from_utf8_lossy(&head)
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "not HTTP"))
}
