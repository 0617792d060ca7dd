//! Starts and stops a real Prometheus (Debian's 2.42, installed by
//! `scripts/backends/prometheus.sh`) on a free 127.0.0.1 port with a short scrape interval,
//! optionally behind a web config (TLS, client certificates, basic auth), and a tiny in-process
//! exporter whose exposition text the test sets. Both stop when their handles are dropped.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

/// How to run the test Prometheus.
#[derive(Clone, Debug)]
pub struct Options {
    /// `host:port` targets scraped at `/metrics` by one job.
    pub targets: Vec<String>,
    pub scrape_interval: Duration,
    /// `--web.config.file` contents, if any.
    pub web: Option<WebConfig>,
}

impl Options {
    /// Scrapes `targets` every second, plain HTTP, no authentication.
    pub fn scraping(targets: &[SocketAddr]) -> Self {
        Self {
            targets: targets.iter().map(ToString::to_string).collect(),
            scrape_interval: Duration::from_secs(1),
            web: None,
        }
    }

    pub fn with_web(mut self, web: WebConfig) -> Self {
        self.web = Some(web);
        self
    }
}

/// Prometheus's own web configuration (exporter-toolkit format).
#[derive(Clone, Debug, Default)]
pub struct WebConfig {
    /// Serving certificate and key, PEM: Prometheus then speaks HTTPS only.
    pub tls: Option<(String, String)>,
    /// CA whose client certificates are required (`RequireAndVerifyClientCert`).
    pub client_ca: Option<String>,
    /// User name and bcrypt hash of each basic-auth user.
    pub basic_auth_users: Vec<(String, String)>,
}

/// A running Prometheus; killed (and its data removed) on drop.
#[derive(Debug)]
pub struct Prometheus {
    child: Child,
    options: Options,
    dir: PathBuf,
    addr: SocketAddr,
    https: bool,
    log: Arc<Mutex<Vec<String>>>,
}

const READY_LINE: &str = "Server is ready to receive web requests";
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The binary: `$EBB_PROMETHEUS`, else `prometheus` on PATH.
pub fn binary() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("EBB_PROMETHEUS") {
        return Ok(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join("prometheus"))
        .find(|p| p.is_file())
        .ok_or_else(|| "prometheus not found on PATH; run `bash scripts/backends/prometheus.sh`".to_owned())
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot find a free port: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

fn temp_dir() -> Result<PathBuf, String> {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "ebb-prometheus-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(dir.join("data")).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn config_yaml(o: &Options) -> String {
    let secs = o.scrape_interval.as_secs_f64();
    let mut s = format!(
        "global:\n  scrape_interval: {secs}s\n  scrape_timeout: {secs}s\n  evaluation_interval: {secs}s\nscrape_configs:\n  - job_name: ebb-test\n    static_configs:\n      - targets: ["
    );
    let targets: Vec<String> = o.targets.iter().map(|t| format!("'{t}'")).collect();
    s.push_str(&targets.join(", "));
    s.push_str("]\n");
    s
}

fn web_yaml(dir: &Path, w: &WebConfig) -> Result<String, String> {
    let mut s = String::new();
    if let Some((cert, key)) = &w.tls {
        write(&dir.join("server.crt"), cert)?;
        write(&dir.join("server.key"), key)?;
        s.push_str("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n");
        if let Some(ca) = &w.client_ca {
            write(&dir.join("client-ca.crt"), ca)?;
            s.push_str("  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: client-ca.crt\n");
        }
    }
    if !w.basic_auth_users.is_empty() {
        s.push_str("basic_auth_users:\n");
        for (user, hash) in &w.basic_auth_users {
            let _ = writeln!(s, "  '{user}': '{hash}'");
        }
    }
    Ok(s)
}

impl Prometheus {
    /// Starts Prometheus and waits until it serves requests (at most 30 s).
    pub fn start(o: &Options) -> Result<Self, String> {
        let dir = temp_dir()?;
        let port = free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        Self::spawn(o, dir, addr)
    }

    /// Kills Prometheus (as a crash would) and starts it again on the same address with the same
    /// data directory, waiting until it serves requests.
    pub fn restart(&mut self) -> Result<(), String> {
        self.kill();
        let dir = std::mem::take(&mut self.dir);
        let fresh = Self::spawn(&self.options, dir, self.addr)?;
        // The old handle's process is gone and its directory now belongs to `fresh`: dropping it
        // removes nothing.
        drop(std::mem::replace(self, fresh));
        Ok(())
    }

    /// Kills the process now (SIGKILL); the handle keeps its address for [`Prometheus::restart`].
    pub fn kill(&mut self) {
        let _ = crate::faults::resume(self.child.id());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the process (SIGSTOP): connections are accepted by the kernel, never answered.
    pub fn pause(&self) -> Result<(), String> {
        crate::faults::pause(self.child.id())
    }

    /// Continues a paused process.
    pub fn resume(&self) -> Result<(), String> {
        crate::faults::resume(self.child.id())
    }

    fn spawn(o: &Options, dir: PathBuf, addr: SocketAddr) -> Result<Self, String> {
        let bin = binary()?;
        let config = dir.join("prometheus.yml");
        write(&config, &config_yaml(o))?;
        let mut cmd = Command::new(&bin);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--storage.tsdb.retention.time=1h")
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(w) = &o.web {
            let web = dir.join("web.yml");
            write(&web, &web_yaml(&dir, w)?)?;
            cmd.arg(format!("--web.config.file={}", web.display()));
        }
        let mut child = cmd.spawn().map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = mpsc::channel();
        if let Some(stderr) = child.stderr.take() {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if line.contains(READY_LINE) {
                        let _ = ready_tx.send(());
                    }
                    log.lock().unwrap_or_else(PoisonError::into_inner).push(line);
                }
            });
        }
        let https = o.web.as_ref().is_some_and(|w| w.tls.is_some());
        let mut p = Self { child, options: o.clone(), dir, addr, https, log };
        let auth = o.web.as_ref().is_some_and(|w| !w.basic_auth_users.is_empty());
        p.wait_ready(&ready_rx, !https && !auth)?;
        Ok(p)
    }

    fn wait_ready(&mut self, ready: &mpsc::Receiver<()>, probe: bool) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut logged = false;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("prometheus exited with {status} while starting:\n{}", self.log_tail()));
            }
            logged = logged || ready.recv_timeout(Duration::from_millis(50)).is_ok();
            if logged && (!probe || self.probe_ready()) {
                return Ok(());
            }
        }
        Err(format!("prometheus not ready after {START_TIMEOUT:?}:\n{}", self.log_tail()))
    }

    /// `GET /-/ready` over plain HTTP answers 200.
    fn probe_ready(&self) -> bool {
        let Ok(mut s) = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)) else { return false };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let req = format!("GET /-/ready HTTP/1.0\r\nHost: {}\r\n\r\n", self.addr);
        if s.write_all(req.as_bytes()).is_err() {
            return false;
        }
        let mut head = [0u8; 16];
        s.read(&mut head)
            .is_ok_and(|n| head[..n].starts_with(b"HTTP/1.0 200") || head[..n].starts_with(b"HTTP/1.1 200"))
    }

    /// The last lines Prometheus logged.
    pub fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        log[log.len().saturating_sub(20)..].join("\n")
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (or `https://…` behind TLS): the scaler's `serverAddress`.
    pub fn url(&self) -> String {
        format!("{}://{}", if self.https { "https" } else { "http" }, self.addr)
    }

    /// Same as `url` with `localhost` as host (for certificates issued to a DNS name).
    pub fn url_localhost(&self) -> String {
        format!("{}://localhost:{}", if self.https { "https" } else { "http" }, self.addr.port())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.kill();
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A minimal Prometheus exporter on 127.0.0.1: `GET /metrics` answers the text the test set.
/// Runs on the caller's tokio runtime; stops on drop.
#[derive(Debug)]
pub struct Exporter {
    addr: SocketAddr,
    text: Arc<Mutex<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl Exporter {
    /// Serves `text` (Prometheus text exposition format) until changed with `set`.
    pub async fn start(text: &str) -> Result<Self, String> {
        let listener =
            tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("exporter bind: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let text = Arc::new(Mutex::new(text.to_owned()));
        let shared = Arc::clone(&text);
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let body = shared.lock().unwrap_or_else(PoisonError::into_inner).clone();
                async move { ([("content-type", "text/plain; version=0.0.4")], body) }
            }),
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, text, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the exposition text; Prometheus sees it at its next scrape.
    pub fn set(&self, text: &str) {
        *self.text.lock().unwrap_or_else(PoisonError::into_inner) = text.to_owned();
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.task.abort();
    }
}
