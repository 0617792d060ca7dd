//! The systems compared: ebb (its release binaries, started here as child processes out of
//! cluster) and KEDA at a version (built and started by `ebb_testbackends::keda`). Each program
//! is a [`Proc`]: its pid for `/proc`, its Prometheus endpoint, its serving address and the CA
//! of its serving certificate; dropping it stops the program.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::plane::Plane;

/// ebb or KEDA at a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum System {
    Ebb,
    Keda(String),
}

impl System {
    /// `ebb` or `keda-VERSION`.
    pub fn name(&self) -> String {
        match self {
            System::Ebb => "ebb".into(),
            System::Keda(v) => format!("keda-{v}"),
        }
    }

    /// The column heading.
    pub fn title(&self) -> String {
        match self {
            System::Ebb => "ebb".into(),
            System::Keda(v) => format!("KEDA {v}"),
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "ebb" => Ok(System::Ebb),
            other => match other.strip_prefix("keda-") {
                Some(v) if !v.is_empty() => Ok(System::Keda(v.to_owned())),
                _ => Err(format!("unknown system {other:?}: expected ebb or keda-VERSION")),
            },
        }
    }
}

/// A running program of either system.
pub struct Proc {
    pub pid: u32,
    /// `http://127.0.0.1:PORT/metrics`.
    pub metrics_url: String,
    /// The HTTPS port (metrics API server, webhook) or the internal endpoint (operator).
    pub serving: Option<SocketAddr>,
    pub log: PathBuf,
    _guard: Box<dyn std::any::Any + Send>,
}

impl std::fmt::Debug for Proc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proc").field("pid", &self.pid).field("metrics_url", &self.metrics_url).finish()
    }
}

impl Proc {
    pub fn new(
        pid: u32,
        metrics_url: String,
        serving: Option<SocketAddr>,
        log: PathBuf,
        guard: Box<dyn std::any::Any + Send>,
    ) -> Self {
        Self { pid, metrics_url, serving, log, _guard: guard }
    }

    /// The launcher's own handle, when it is a `T`.
    #[cfg_attr(not(feature = "keda"), allow(dead_code))]
    pub fn guard<T: 'static>(&self) -> Option<&T> {
        self._guard.downcast_ref::<T>()
    }

    /// The last lines of the program's log, for error messages.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

/// Client limits given to an operator; `None` = the program's defaults.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    pub qps: Option<f32>,
    pub burst: Option<u32>,
}

/// An ebb child process, killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Where ebb's release binaries are.
#[derive(Debug, Clone)]
pub struct EbbBinaries {
    pub dir: PathBuf,
}

impl EbbBinaries {
    pub fn path(&self, name: &str) -> Result<PathBuf, String> {
        let p = self.dir.join(name);
        if p.is_file() {
            Ok(p)
        } else {
            Err(format!(
                "{} not found: run `cargo build --release -p ebb-operator -p ebb-metrics-apiserver -p ebb-webhook --bins`",
                p.display()
            ))
        }
    }
}

pub fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| format!("no free port: {e}"))
}

fn spawn(program: &Path, args: &[String], kubeconfig: &Path, log: &Path) -> Result<Child, String> {
    let out = std::fs::File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| format!("log {}: {e}", log.display()))?;
    Command::new(program)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("POD_NAMESPACE", "keda")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))
}

/// Waits until `http://127.0.0.1:{admin}/readyz` answers 200 (`limit` at most).
async fn wait_ready(child: &mut Child, admin: u16, log: &Path, limit: Duration) -> Result<(), String> {
    let http = reqwest::Client::new();
    let start = Instant::now();
    loop {
        if let Ok(r) = http.get(format!("http://127.0.0.1:{admin}/readyz")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect();
            return Err(format!("exited ({status}) before ready:\n{}", tail.join("\n")));
        }
        if start.elapsed() > limit {
            return Err(format!("not ready within {limit:?} ({})", log.display()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Files of the ebb operator's internal endpoint (mutual TLS with the metrics API server).
#[derive(Debug, Clone)]
pub struct InternalPki {
    pub ca: PathBuf,
    pub operator_cert: PathBuf,
    pub operator_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl InternalPki {
    pub fn write(dir: &Path) -> Result<Self, String> {
        let ca =
            ebb_sandbox::pki::CertAuthority::new("ebb-bench-internal-ca").map_err(|e| format!("CA: {e}"))?;
        let op =
            ca.issue_server(&["localhost"], &[[127, 0, 0, 1].into()]).map_err(|e| format!("cert: {e}"))?;
        let client = ca.issue_client("ebb-metrics-apiserver", &[]).map_err(|e| format!("cert: {e}"))?;
        let w = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).map_err(|e| format!("cannot write {}: {e}", p.display())).map(|()| p)
        };
        Ok(Self {
            ca: w("internal-ca.crt", ca.cert_pem())?,
            operator_cert: w("operator.crt", &op.cert_pem)?,
            operator_key: w("operator.key", &op.key_pem)?,
            client_cert: w("client.crt", &client.cert_pem)?,
            client_key: w("client.key", &client.key_pem)?,
        })
    }
}

fn arg(p: &Path) -> String {
    p.display().to_string()
}

/// Starts ebb-operator against `plane`, out of cluster, with the flags the end-to-end harness
/// uses there (no leader election, loopback backends allowed); ready = `/readyz` 200.
pub async fn ebb_operator(
    bins: &EbbBinaries,
    plane: &Plane,
    limits: Limits,
    internal: Option<&InternalPki>,
) -> Result<Proc, String> {
    let admin = free_port()?;
    let mut args: Vec<String> = vec![
        "--leader-elect=false".into(),
        "--log-level=warn".into(),
        format!("--admin-addr=127.0.0.1:{admin}"),
        "--operator-namespace=keda".into(),
        "--egress-allow-cidrs=127.0.0.0/8,::1".into(),
    ];
    if let Some(q) = limits.qps {
        args.push(format!("--kube-api-qps={q}"));
    }
    if let Some(b) = limits.burst {
        args.push(format!("--kube-api-burst={b}"));
    }
    let mut serving = None;
    if let Some(pki) = internal {
        let port = free_port()?;
        args.push(format!("--internal-addr=127.0.0.1:{port}"));
        args.push(format!("--internal-cert-file={}", arg(&pki.operator_cert)));
        args.push(format!("--internal-key-file={}", arg(&pki.operator_key)));
        args.push(format!("--internal-client-ca-file={}", arg(&pki.ca)));
        serving = Some(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    let log = plane.dir().join(format!("ebb-operator-{admin}.log"));
    let mut child = spawn(&bins.path("ebb-operator")?, &args, plane.kubeconfig(), &log)?;
    wait_ready(&mut child, admin, &log, Duration::from_secs(60))
        .await
        .map_err(|e| format!("ebb-operator {e}"))?;
    let pid = child.id();
    let metrics = format!("http://127.0.0.1:{admin}/metrics");
    Ok(Proc::new(pid, metrics, serving, log, Box::new(Killed(child))))
}

/// Starts ebb-metrics-apiserver (delegated authentication against `plane`) talking to the
/// operator's internal endpoint at `operator`; serving certificate for Service
/// keda/ebb-metrics-apiserver.
pub async fn ebb_metrics_apiserver(
    bins: &EbbBinaries,
    plane: &Plane,
    pki: &InternalPki,
    operator: SocketAddr,
) -> Result<Proc, String> {
    let (admin, secure) = (free_port()?, free_port()?);
    let (cert, key) = serving_cert(plane, "ebb-metrics-apiserver", "mas")?;
    let args = vec![
        "--log-level=warn".into(),
        format!("--admin-addr=127.0.0.1:{admin}"),
        format!("--secure-addr=127.0.0.1:{secure}"),
        format!("--tls-cert-file={}", arg(&cert)),
        format!("--tls-key-file={}", arg(&key)),
        format!("--operator-url=https://127.0.0.1:{}", operator.port()),
        format!("--operator-ca-file={}", arg(&pki.ca)),
        format!("--operator-cert-file={}", arg(&pki.client_cert)),
        format!("--operator-key-file={}", arg(&pki.client_key)),
    ];
    let log = plane.dir().join(format!("ebb-metrics-apiserver-{admin}.log"));
    let mut child = spawn(&bins.path("ebb-metrics-apiserver")?, &args, plane.kubeconfig(), &log)?;
    wait_ready(&mut child, admin, &log, Duration::from_secs(60))
        .await
        .map_err(|e| format!("ebb-metrics-apiserver {e}"))?;
    let pid = child.id();
    let serving = Some(SocketAddr::from(([127, 0, 0, 1], secure)));
    Ok(Proc::new(pid, format!("http://127.0.0.1:{admin}/metrics"), serving, log, Box::new(Killed(child))))
}

/// Writes a serving certificate for Service `keda/<service>` into the plane's directory as
/// `<prefix>-tls.crt` and `<prefix>-tls.key`; returns both paths.
fn serving_cert(plane: &Plane, service: &str, prefix: &str) -> Result<(PathBuf, PathBuf), String> {
    let leaf = plane.service_cert("keda", service)?;
    let (cert, key) =
        (plane.dir().join(format!("{prefix}-tls.crt")), plane.dir().join(format!("{prefix}-tls.key")));
    std::fs::write(&cert, &leaf.cert_pem).map_err(|e| format!("cannot write {}: {e}", cert.display()))?;
    std::fs::write(&key, &leaf.key_pem).map_err(|e| format!("cannot write {}: {e}", key.display()))?;
    Ok((cert, key))
}

/// Starts ebb-webhook against `plane` (ready once both of its lists are indexed).
pub async fn ebb_webhook(bins: &EbbBinaries, plane: &Plane) -> Result<Proc, String> {
    let (admin, secure) = (free_port()?, free_port()?);
    let (cert, key) = serving_cert(plane, "ebb-webhook", "webhook")?;
    let args = vec![
        "--log-level=warn".into(),
        format!("--admin-addr=127.0.0.1:{admin}"),
        format!("--secure-addr=127.0.0.1:{secure}"),
        format!("--tls-cert-file={}", arg(&cert)),
        format!("--tls-key-file={}", arg(&key)),
    ];
    let log = plane.dir().join(format!("ebb-webhook-{admin}.log"));
    let mut child = spawn(&bins.path("ebb-webhook")?, &args, plane.kubeconfig(), &log)?;
    wait_ready(&mut child, admin, &log, Duration::from_secs(300))
        .await
        .map_err(|e| format!("ebb-webhook {e}"))?;
    let pid = child.id();
    let serving = Some(SocketAddr::from(([127, 0, 0, 1], secure)));
    Ok(Proc::new(pid, format!("http://127.0.0.1:{admin}/metrics"), serving, log, Box::new(Killed(child))))
}
