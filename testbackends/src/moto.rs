//! moto (an SQS, CloudWatch and STS server) for the AWS scalers' tests: [`Moto::start`] runs
//! `moto_server -H 127.0.0.1 -p PORT` from the test virtualenv (`$EBB_TEST_VENV`, default
//! `/var/tmp/ebb-test-venv`) or PATH, waits until `GET /moto-api/` answers 200, and kills it when
//! the handle is dropped. [`Moto::shared`] is one server per test binary; a small shell watchdog
//! stops it when the test process exits (statics are never dropped).

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long moto may take to answer its first request.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The shell watchdog: starts moto, then stops it when the test process (`$2`) is gone, and
/// removes the log file (`$3`) afterwards.
const WATCHDOG: &str = r#"
"$0" -H 127.0.0.1 -p "$1" & m=$!
trap 'kill $m 2>/dev/null; wait $m; rm -f "$3"; exit 0' TERM INT
while kill -0 "$2" 2>/dev/null && kill -0 "$m" 2>/dev/null; do sleep 0.5; done
kill "$m" 2>/dev/null
wait "$m"
rm -f "$3"
"#;

/// A running moto server.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    port: u16,
    log: PathBuf,
}

static SHARED: OnceLock<Result<Moto, String>> = OnceLock::new();

impl Moto {
    /// Starts a moto server of its own (default settings).
    pub fn start() -> Result<Self, String> {
        Self::start_with_env(&[])
    }

    /// Starts a moto server with extra environment, e.g. `INITIAL_NO_AUTH_ACTION_COUNT=0`, which
    /// makes moto check credentials like AWS does.
    pub fn start_with_env(env: &[(&str, &str)]) -> Result<Self, String> {
        Self::spawn(free_port()?, env)
    }

    /// Kills moto (as a crash would) and starts it again on the same port, with the
    /// environment `env`. Its state is in memory: queues, messages and metrics are gone.
    pub fn restart(&mut self, env: &[(&str, &str)]) -> Result<(), String> {
        self.kill();
        let fresh = Self::spawn(self.port, env)?;
        let mut old = std::mem::replace(self, fresh);
        // Same port, same log path: the old handle must not remove the new server's log.
        old.log = PathBuf::new();
        Ok(())
    }

    /// Kills moto and its watchdog at once (SIGKILL to their process group).
    pub fn kill(&mut self) {
        let _ = crate::faults::resume_group(self.child.id());
        let group = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }

    /// Stops moto (SIGSTOP to its process group): connections are accepted, never answered.
    pub fn pause(&self) -> Result<(), String> {
        crate::faults::pause_group(self.child.id())
    }

    /// Continues a paused moto.
    pub fn resume(&self) -> Result<(), String> {
        crate::faults::resume_group(self.child.id())
    }

    fn spawn(port: u16, env: &[(&str, &str)]) -> Result<Self, String> {
        let bin = binary()?;
        let log = std::env::temp_dir().join(format!("ebb-moto-{}-{port}.log", std::process::id()));
        let out = File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| format!("cannot reuse {}: {e}", log.display()))?;
        let mut cmd = Command::new("sh");
        // A process group of its own, so a pause or a crash reaches moto and its watchdog alike.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd.arg("-c")
            .arg(WATCHDOG)
            .arg(&bin)
            .arg(port.to_string())
            .arg(std::process::id().to_string())
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .env("PYTHONUNBUFFERED", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let mut moto = Self { child, port, log };
        moto.wait_ready()?;
        Ok(moto)
    }

    /// One server for the whole test binary. Tests sharing it use distinct queue and metric
    /// names (or call [`Moto::reset`] when they own the whole state).
    pub fn shared() -> &'static Self {
        match SHARED.get_or_init(Self::start) {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`, for `awsEndpoint` / the SDK's `endpoint_url`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Clears every resource moto holds.
    pub fn reset(&self) -> Result<(), String> {
        match request(self.port, "POST", "/moto-api/reset") {
            Ok(200) => Ok(()),
            Ok(s) => Err(format!("moto reset answered HTTP {s}")),
            Err(e) => Err(format!("moto reset failed: {e}")),
        }
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(200) = request(self.port, "GET", "/moto-api/") {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "moto_server exited ({status}) before it was ready:\n{}",
                    self.log_tail()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "moto_server did not answer GET /moto-api/ within {READY_TIMEOUT:?}:\n{}",
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = crate::faults::resume_group(self.child.id());
        // SIGTERM lets the watchdog stop moto; then make sure the shell is gone too.
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// `moto_server` from the test virtualenv, else from PATH.
fn binary() -> Result<PathBuf, String> {
    let venv = std::env::var_os("EBB_TEST_VENV")
        .map_or_else(|| PathBuf::from("/var/tmp/ebb-test-venv"), PathBuf::from);
    let in_venv = venv.join("bin/moto_server");
    if in_venv.is_file() {
        return Ok(in_venv);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("moto_server"))
        .find(|p| p.is_file());
    on_path.ok_or_else(|| {
        format!(
            "moto_server not found in {} nor on PATH: run `bash scripts/backends/moto.sh` first",
            in_venv.display()
        )
    })
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port on 127.0.0.1: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| format!("no free port on 127.0.0.1: {e}"))
}

/// A bodyless HTTP/1.1 request; returns the status code.
fn request(port: u16, method: &str, path: &str) -> std::io::Result<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head)?;
    let text = String::from_utf8_lossy(&head);
    text.get(9..12)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not HTTP: {text:?}")))
}
