//! KEDA itself, run out of cluster next to ebb for the side-by-side benchmarks: its operator,
//! metrics adapter and admission webhook, built from the Go module pinned in
//! `bench/keda/v<VERSION>/go.mod` by `bench/keda/build.sh` (cached in
//! `/var/tmp/ebb-keda/<VERSION>`), started against a given kubeconfig with a temporary directory
//! and certificates of their own, and stopped when their handle is dropped or the test process
//! ends ([`crate::watched`]). Not used by the test command: only the benchmark driver and the
//! `#[ignore]`d test `tests/keda.rs` build KEDA.
//!
//! How each program runs here (the flags are KEDA's own; see `bench/keda/README.md`):
//! - every listener is on 127.0.0.1 with a free port, except the adapter's `/metrics`, which
//!   KEDA always binds on all interfaces (`--port`);
//! - leader election is off (one replica of each);
//! - the operator's gRPC metrics service and the adapter talk over mutual TLS with certificates
//!   issued here by one CA per operator (the adapter's client certificate comes from it too);
//! - the adapter authenticates and authorizes callers through the cluster
//!   (`--authentication-kubeconfig`, `--authorization-kubeconfig`), as any aggregated API server.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use ebb_sandbox::pki::{CertAuthority, Leaf};

use crate::kubernetes::http_status;
use crate::watched::Watched;

/// The release the project started from.
pub const SEED_VERSION: &str = "2.16.0";
/// The newest release the Go module proxy serves (it needs Go 1.27.4, which the go command
/// fetches by itself).
pub const NEWEST_VERSION: &str = "2.21.1";
/// Service names the serving certificates are valid for (`<name>.<namespace>.svc`).
pub const ADAPTER_SERVICE: &str = "keda-metrics-apiserver";
/// The webhook's Service name, as in KEDA's manifests.
pub const WEBHOOK_SERVICE: &str = "keda-admission-webhooks";
/// How long each program may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// The built programs of one KEDA release and its CRDs.
#[derive(Debug, Clone)]
pub struct Build {
    /// The release, without a leading `v`.
    pub version: String,
    /// `cmd/operator` (KEDA calls the binary `keda`).
    pub operator: PathBuf,
    /// `cmd/adapter` (`keda-adapter`).
    pub adapter: PathBuf,
    /// `cmd/webhooks` (`keda-admission-webhooks`).
    pub webhook: PathBuf,
    /// `config/crd/bases/*.yaml` of the same release.
    pub crds: Vec<PathBuf>,
}

/// Where `bench/keda/build.sh` puts a release (`$EBB_KEDA_CACHE`, default `/var/tmp/ebb-keda`).
pub fn cache_dir(version: &str) -> PathBuf {
    let root =
        std::env::var_os("EBB_KEDA_CACHE").map_or_else(|| PathBuf::from("/var/tmp/ebb-keda"), PathBuf::from);
    root.join(version.trim_start_matches('v'))
}

/// Runs `bench/keda/build.sh VERSION` (idempotent; the first run builds for minutes) and
/// returns the paths of the programs and CRDs.
pub fn build(version: &str) -> Result<Build, String> {
    let version = version.trim_start_matches('v');
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let script = workspace.join("bench/keda/build.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(version)
        .current_dir(&workspace)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} {version} failed ({}):\n{}{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let root = cache_dir(version);
    let bin = root.join("bin");
    let mut crds: Vec<PathBuf> = std::fs::read_dir(root.join("crds"))
        .map_err(|e| format!("cannot list {}: {e}", root.join("crds").display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    crds.sort();
    Ok(Build {
        version: version.to_owned(),
        operator: bin.join("keda"),
        adapter: bin.join("keda-adapter"),
        webhook: bin.join("keda-admission-webhooks"),
        crds,
    })
}

/// Applies KEDA's own CRDs (server-side: the ScaledObject CRD is too large for the
/// last-applied annotation) and waits until each is Established.
pub fn install_crds(kubeconfig: &Path, build: &Build) -> Result<(), String> {
    if build.crds.is_empty() {
        return Err(format!("KEDA {}: no CRDs in the build", build.version));
    }
    for crd in &build.crds {
        let file = crd.display().to_string();
        kubectl(kubeconfig, &["apply", "--server-side", "--force-conflicts", "-f", &file], None)?;
        kubectl(kubeconfig, &["wait", "--for=condition=Established", "--timeout=60s", "-f", &file], None)?;
    }
    Ok(())
}

/// Settings of one KEDA program.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The cluster to talk to.
    pub kubeconfig: PathBuf,
    /// KEDA's own namespace (created if missing), e.g. `keda`; empty means `keda`.
    pub namespace: String,
    /// Namespaces to watch, comma-separated; empty = all.
    pub watch_namespace: String,
    /// `--kube-api-qps` (None: KEDA's default, 20).
    pub kube_api_qps: Option<f32>,
    /// `--kube-api-burst` (None: KEDA's default, 30).
    pub kube_api_burst: Option<u32>,
    /// More flags, appended last.
    pub extra_args: Vec<String>,
}

impl Options {
    fn namespace(&self) -> &str {
        if self.namespace.is_empty() { "keda" } else { &self.namespace }
    }
}

/// One running KEDA program; stopped on drop.
#[derive(Debug)]
pub struct Running {
    proc: Watched,
    pid: u32,
    metrics: SocketAddr,
    serving: Option<SocketAddr>,
    namespace: String,
    ca: Option<Arc<CertAuthority>>,
    log: PathBuf,
}

impl Running {
    /// The KEDA process itself (not its watchdog), e.g. for `/proc/PID/status`.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its Prometheus endpoint, `http://127.0.0.1:PORT/metrics`.
    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.metrics)
    }

    /// Adapter and webhook: their HTTPS address; operator: its gRPC metrics service.
    pub fn serving_addr(&self) -> Option<SocketAddr> {
        self.serving
    }

    /// The CA of the serving certificate (every program's certificates come from one CA).
    pub fn ca_pem(&self) -> Option<String> {
        self.ca.as_ref().map(|ca| ca.cert_pem().to_owned())
    }

    /// The program's output.
    pub fn log_path(&self) -> PathBuf {
        self.log.clone()
    }

    /// The last `n` lines of its output.
    pub fn log_tail(&self, n: usize) -> String {
        self.proc.log_tail(n)
    }

    /// VmRSS of the process in KiB, from `/proc/PID/status`.
    pub fn rss_kib(&self) -> Result<u64, String> {
        let path = format!("/proc/{}/status", self.pid);
        let status = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .ok_or_else(|| format!("no VmRSS in {path}"))
    }
}

/// Starts KEDA's operator and returns once its `/readyz` answers and its gRPC metrics service
/// accepts connections.
pub fn start_operator(build: &Build, opts: &Options) -> Result<Running, String> {
    let dir = temp_dir("operator")?;
    ensure_namespace(&opts.kubeconfig, opts.namespace())?;
    let ca = Arc::new(CertAuthority::new("keda-bench-ca").map_err(|e| format!("operator CA: {e}"))?);
    let localhost = [IpAddr::V4(Ipv4Addr::LOCALHOST)];
    let ns = opts.namespace();
    let names = [format!("keda-operator.{ns}.svc"), "localhost".to_owned()];
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let serving = ca.issue_server(&names, &localhost).map_err(|e| format!("operator certificate: {e}"))?;
    let certs = dir.join("certs");
    write_cert_dir(&certs, ca.cert_pem(), &serving)?;
    let (metrics, probe, grpc) = (free_addr()?, free_addr()?, free_addr()?);
    let mut args = vec![
        format!("--metrics-bind-address={metrics}"),
        format!("--health-probe-bind-address={probe}"),
        format!("--metrics-service-bind-address={grpc}"),
        format!("--cert-dir={}", certs.display()),
        "--leader-elect=false".to_owned(),
        "--enable-cert-rotation=false".to_owned(),
        format!("--ca-dir={}", certs.display()),
    ];
    push_common(&mut args, opts);
    let mut running =
        spawn("keda-operator", &build.operator, &args, opts, &dir, metrics, Some(grpc), Some(ca))?;
    wait(&mut running, "the operator's /readyz", || http_status(probe, "/readyz").is_ok_and(|s| s == 200))?;
    wait(&mut running, "the operator's gRPC port", || TcpStream::connect(grpc).is_ok())?;
    Ok(running)
}

/// Starts KEDA's metrics adapter, talking to `operator` over gRPC (mutual TLS with the
/// operator's CA); returns once its `/readyz` answers over HTTPS.
pub fn start_adapter(build: &Build, opts: &Options, operator: &Running) -> Result<Running, String> {
    let (Some(grpc), Some(ca)) = (operator.serving, operator.ca.clone()) else {
        return Err("start_adapter: the given Running is not an operator (no gRPC address or CA)".into());
    };
    let dir = temp_dir("adapter")?;
    ensure_namespace(&opts.kubeconfig, opts.namespace())?;
    let ns = opts.namespace();
    // --cert-dir holds the gRPC client identity (KEDA reads tls.crt/tls.key/ca.crt there).
    let client =
        ca.issue_client("keda-metrics-apiserver", &[]).map_err(|e| format!("adapter client: {e}"))?;
    let grpc_dir = dir.join("grpc");
    write_cert_dir(&grpc_dir, ca.cert_pem(), &client)?;
    let names =
        [format!("{ADAPTER_SERVICE}.{ns}.svc"), format!("{ADAPTER_SERVICE}.{ns}"), "localhost".to_owned()];
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let serving = ca
        .issue_server(&names, &[IpAddr::V4(Ipv4Addr::LOCALHOST)])
        .map_err(|e| format!("adapter certificate: {e}"))?;
    let tls = dir.join("serving");
    write_cert_dir(&tls, ca.cert_pem(), &serving)?;
    let (metrics, secure) = (free_addr()?, free_addr()?);
    let kubeconfig = opts.kubeconfig.display().to_string();
    let mut args = vec![
        format!("--secure-port={}", secure.port()),
        "--bind-address=127.0.0.1".to_owned(),
        format!("--tls-cert-file={}", tls.join("tls.crt").display()),
        format!("--tls-private-key-file={}", tls.join("tls.key").display()),
        format!("--cert-dir={}", grpc_dir.display()),
        format!("--metrics-service-address={grpc}"),
        format!("--port={}", metrics.port()),
        format!("--lister-kubeconfig={kubeconfig}"),
        format!("--authentication-kubeconfig={kubeconfig}"),
        format!("--authorization-kubeconfig={kubeconfig}"),
    ];
    push_common(&mut args, opts);
    let mut running =
        spawn("keda-adapter", &build.adapter, &args, opts, &dir, metrics, Some(secure), Some(ca))?;
    let ca_pem = running.ca_pem().unwrap_or_default();
    wait(&mut running, "the adapter's /readyz", || {
        https(secure, &ca_pem, "GET", "/readyz", None).is_ok_and(|(s, _)| s == 200)
    })?;
    Ok(running)
}

/// Registers APIService `v1beta1.external.metrics.k8s.io` for Service
/// `<namespace>/keda-metrics-apiserver`, an ExternalName Service for 127.0.0.1 at the adapter's
/// port (the upstream control plane's aggregator dials it there and checks the certificate
/// against `keda-metrics-apiserver.<namespace>.svc`), and waits until it is Available.
pub fn register_apiservice(kubeconfig: &Path, adapter: &Running) -> Result<(), String> {
    let (Some(addr), Some(ca)) = (adapter.serving, adapter.ca_pem()) else {
        return Err("register_apiservice: the given Running is not an adapter".into());
    };
    let ns = &adapter.namespace;
    let objects = format!(
        r#"{{"apiVersion": "v1", "kind": "List", "items": [
  {{"apiVersion": "v1", "kind": "Service", "metadata": {{"name": "{ADAPTER_SERVICE}", "namespace": "{ns}"}},
   "spec": {{"type": "ExternalName", "externalName": "127.0.0.1"}}}},
  {{"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
   "metadata": {{"name": "v1beta1.external.metrics.k8s.io"}},
   "spec": {{"group": "external.metrics.k8s.io", "version": "v1beta1",
     "service": {{"namespace": "{ns}", "name": "{ADAPTER_SERVICE}", "port": {port}}},
     "caBundle": "{bundle}", "groupPriorityMinimum": 100, "versionPriority": 100}}}}]}}"#,
        port = addr.port(),
        bundle = base64::engine::general_purpose::STANDARD.encode(ca.as_bytes()),
    );
    kubectl(kubeconfig, &["apply", "--server-side", "--force-conflicts", "-f", "-"], Some(&objects))?;
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let out = kubectl(
            kubeconfig,
            &[
                "get",
                "apiservice",
                "v1beta1.external.metrics.k8s.io",
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Available\")].status} {.status.conditions[?(@.type==\"Available\")].message}",
            ],
            None,
        )?;
        if out.starts_with("True") {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("APIService v1beta1.external.metrics.k8s.io not Available: {out}"));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Starts KEDA's admission webhook with a serving certificate for `localhost`, 127.0.0.1 and
/// `keda-admission-webhooks.<namespace>.svc`; returns once its `/readyz` answers and its
/// HTTPS port accepts connections. POST an AdmissionReview to
/// `https://{serving_addr}/validate-keda-sh-v1alpha1-scaledobject`.
pub fn start_webhook(build: &Build, opts: &Options) -> Result<Running, String> {
    let dir = temp_dir("webhook")?;
    ensure_namespace(&opts.kubeconfig, opts.namespace())?;
    let ns = opts.namespace();
    let ca = Arc::new(CertAuthority::new("keda-bench-webhook-ca").map_err(|e| format!("webhook CA: {e}"))?);
    let names = [format!("{WEBHOOK_SERVICE}.{ns}.svc"), "localhost".to_owned()];
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let serving = ca
        .issue_server(&names, &[IpAddr::V4(Ipv4Addr::LOCALHOST)])
        .map_err(|e| format!("webhook certificate: {e}"))?;
    let certs = dir.join("certs");
    write_cert_dir(&certs, ca.cert_pem(), &serving)?;
    let (metrics, probe, port) = (free_addr()?, free_addr()?, free_addr()?);
    let mut args = vec![
        format!("--metrics-bind-address={metrics}"),
        format!("--health-probe-bind-address={probe}"),
        format!("--port={}", port.port()),
        format!("--cert-dir={}", certs.display()),
    ];
    push_common(&mut args, opts);
    let mut running =
        spawn("keda-webhook", &build.webhook, &args, opts, &dir, metrics, Some(port), Some(ca))?;
    wait(&mut running, "the webhook's /readyz", || http_status(probe, "/readyz").is_ok_and(|s| s == 200))?;
    wait(&mut running, "the webhook's HTTPS port", || TcpStream::connect(port).is_ok())?;
    Ok(running)
}

/// One HTTPS request to 127.0.0.1 (`addr`), the server's certificate checked against `ca_pem`
/// for the name `localhost`; returns the status and body. HTTP/1.0, so the body is never chunked.
pub fn https(
    addr: SocketAddr,
    ca_pem: &str,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> Result<(u16, String), String> {
    let config = ebb_sandbox::pki::client_config(ca_pem.as_bytes(), None).map_err(|e| format!("TLS: {e}"))?;
    let name = rustls::pki_types::ServerName::try_from("localhost").map_err(|e| format!("TLS: {e}"))?;
    let conn = rustls::ClientConnection::new(config, name).map_err(|e| format!("TLS: {e}"))?;
    let sock =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| format!("{addr}: {e}"))?;
    sock.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| format!("{addr}: {e}"))?;
    let mut tls = rustls::StreamOwned::new(conn, sock);
    let body = body.unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).and_then(|()| tls.write_all(body)).map_err(|e| format!("{addr}: {e}"))?;
    let mut got = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        match tls.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            // A server closing without close_notify still sent a whole HTTP/1.0 response.
            Err(_) if !got.is_empty() => break,
            Err(e) => return Err(format!("{addr}: {e}")),
        }
    }
    let text = String::from_utf8_lossy(&got);
    let status =
        text.get(9..12).and_then(|c| c.parse().ok()).ok_or_else(|| format!("{addr}: not HTTP: {text}"))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

/// Runs kubectl with `kubeconfig`; returns stdout, or an error with stderr.
pub fn kubectl(kubeconfig: &Path, args: &[&str], input: Option<&str>) -> Result<String, String> {
    let mut cmd = Command::new(crate::kubernetes::binary("kubectl")?);
    cmd.arg("--kubeconfig").arg(kubeconfig).args(args);
    cmd.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cannot run kubectl: {e}"))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(text.as_bytes()).map_err(|e| format!("kubectl stdin: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("kubectl: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("kubectl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn ensure_namespace(kubeconfig: &Path, ns: &str) -> Result<(), String> {
    if kubectl(kubeconfig, &["get", "namespace", ns, "-o", "name"], None).is_ok() {
        return Ok(());
    }
    match kubectl(kubeconfig, &["create", "namespace", ns], None) {
        Err(e) if !e.contains("AlreadyExists") => Err(e),
        _ => Ok(()),
    }
}

fn push_common(args: &mut Vec<String>, opts: &Options) {
    if let Some(qps) = opts.kube_api_qps {
        args.push(format!("--kube-api-qps={qps}"));
    }
    if let Some(burst) = opts.kube_api_burst {
        args.push(format!("--kube-api-burst={burst}"));
    }
    args.extend(opts.extra_args.iter().cloned());
}

#[allow(clippy::too_many_arguments)]
fn spawn(
    name: &str,
    program: &Path,
    args: &[String],
    opts: &Options,
    dir: &Path,
    metrics: SocketAddr,
    serving: Option<SocketAddr>,
    ca: Option<Arc<CertAuthority>>,
) -> Result<Running, String> {
    if !program.is_file() {
        return Err(format!("{} not found: run `bash bench/keda/build.sh VERSION` first", program.display()));
    }
    let kubeconfig = opts.kubeconfig.display().to_string();
    let ns = opts.namespace();
    let env = [
        ("KUBECONFIG", kubeconfig.as_str()),
        ("WATCH_NAMESPACE", opts.watch_namespace.as_str()),
        ("POD_NAMESPACE", ns),
        ("KEDA_CLUSTER_OBJECT_NAMESPACE", ns),
        ("POD_NAME", name),
    ];
    let log = dir.join(format!("{name}.log"));
    let mut proc = Watched::spawn(name, program, args, &env, &log, Some(dir))?;
    // The watchdog runs the program as its child: find the program by its unique directory.
    let marker = dir.display().to_string();
    let started = Instant::now();
    let pid = loop {
        if let Some(pid) = find_pid(program, &marker) {
            break pid;
        }
        if let Some(reason) = proc.exited() {
            return Err(format!("{reason}:\n{}", proc.log_tail(30)));
        }
        if started.elapsed() > Duration::from_secs(10) {
            return Err(format!("{name}: no process for {} found", program.display()));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(Running { proc, pid, metrics, serving, namespace: ns.to_owned(), ca, log })
}

/// The pid whose command line starts with `program` and mentions `marker`.
fn find_pid(program: &Path, marker: &str) -> Option<u32> {
    let want = program.as_os_str().as_encoded_bytes();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        let mut parts = cmdline.split(|b| *b == 0);
        let first = parts.next()?;
        let mentions = parts.any(|a| a.windows(marker.len()).any(|w| w == marker.as_bytes()));
        (first == want && mentions).then_some(pid)
    })
}

fn temp_dir(what: &str) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!(
        "ebb-keda-{what}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// `ca.crt`, `tls.crt`, `tls.key`: the layout KEDA reads from its `--cert-dir`.
fn write_cert_dir(dir: &Path, ca_pem: &str, leaf: &Leaf) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for (name, text) in
        [("ca.crt", ca_pem), ("tls.crt", leaf.cert_pem.as_str()), ("tls.key", leaf.key_pem.as_str())]
    {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Polls `ready` every 200 ms until it holds, failing early when the program exits.
fn wait(running: &mut Running, what: &str, mut ready: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if ready() {
            return Ok(());
        }
        if let Some(reason) = running.proc.exited() {
            return Err(format!("{reason} before {what} answered:\n{}", running.proc.log_tail(40)));
        }
        if Instant::now() > deadline {
            return Err(format!("{what} not ready within {READY_TIMEOUT:?}:\n{}", running.proc.log_tail(40)));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn free_addr() -> Result<SocketAddr, String> {
    let l =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port on 127.0.0.1: {e}"))?;
    l.local_addr().map_err(|e| format!("no free port on 127.0.0.1: {e}"))
}
