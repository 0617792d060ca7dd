//! Test support (feature `test-support`): runs an ebb server binary as a child process with
//! JSON logs on stderr, learns its admin address from the [`LISTENING_MESSAGE`] log event,
//! sends it SIGTERM and waits for it to exit; and checks a server's command line
//! ([`check_server_flags`]). Its checks panic: it is for tests only.

use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::admin::LISTENING_MESSAGE;
use crate::args::CommonArgs;
use crate::logging::LogFormat;

/// How long [`ServerProcess::start`] waits for the admin server to listen.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// A server binary running as a child process. Killed on drop if still running.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    admin_addr: SocketAddr,
    lines: Receiver<String>,
    log: Vec<String>,
}

impl ServerProcess {
    /// Spawns `command` (which must make the server log JSON, e.g. `--log-format json`)
    /// and waits until its admin server listens.
    pub fn start(mut command: Command) -> io::Result<Self> {
        let mut child = command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn()?;
        let stderr = child.stderr.take().ok_or_else(|| io::Error::other("child stderr was not captured"))?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server =
            ServerProcess { child, admin_addr: SocketAddr::from(([0, 0, 0, 0], 0)), lines, log: Vec::new() };
        let event = server.wait_for_log(STARTUP_TIMEOUT, |event| event["message"] == LISTENING_MESSAGE)?;
        server.admin_addr = event["addr"]
            .as_str()
            .and_then(|addr| addr.parse().ok())
            .ok_or_else(|| io::Error::other(format!("no admin address in listening event {event}")))?;
        Ok(server)
    }

    /// The admin server's bound address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// `http://<admin address><path>`.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin_addr)
    }

    /// Every stderr line received so far.
    pub fn log(&mut self) -> &[String] {
        while let Ok(line) = self.lines.try_recv() {
            self.log.push(line);
        }
        &self.log
    }

    /// Waits up to `timeout` for a JSON log event (received so far or later) matching
    /// `matches`, and returns it.
    pub fn wait_for_log(&mut self, timeout: Duration, matches: impl Fn(&Value) -> bool) -> io::Result<Value> {
        let is_match = |line: &str| serde_json::from_str::<Value>(line).ok().filter(|event| matches(event));
        if let Some(event) = self.log().iter().find_map(|line| is_match(line)) {
            return Ok(event);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = is_match(&line);
                    self.log.push(line);
                    if let Some(event) = found {
                        return Ok(event);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(self.failure(&format!("no matching log event within {timeout:?}")));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait()?;
                    return Err(self.failure(&format!("server exited ({status}) first")));
                }
            }
        }
    }

    /// Sends SIGTERM, as the kubelet does when a pod is deleted.
    pub fn terminate(&self) -> io::Result<()> {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        let pid = i32::try_from(self.child.id()).map_err(io::Error::other)?;
        kill(Pid::from_raw(pid), Signal::SIGTERM).map_err(io::Error::from)
    }

    /// Waits up to `timeout` for the process to exit and returns its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> io::Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(self.failure(&format!("server still running after {timeout:?}")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn failure(&mut self, what: &str) -> io::Error {
        let log = self.log().join("\n");
        io::Error::other(format!("{what}; server log:\n{log}"))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Checks a server's command line `A` (named `name`): clap's own consistency checks (no two
/// flags clash, defaults parse), then parses `--admin-addr 127.0.0.1:18080 --log-format json
/// --log-level debug` followed by `extra` and checks that the common flags reached the
/// [`CommonArgs`] `common` picks out of `A`. Returns the parsed flags for further checks; panics
/// on any failure.
pub fn check_server_flags<A: clap::Parser>(
    name: &str,
    extra: &[&str],
    common: impl Fn(&A) -> &CommonArgs,
) -> A {
    A::command().debug_assert();
    let flags = [name, "--admin-addr", "127.0.0.1:18080", "--log-format", "json", "--log-level", "debug"];
    let args = match A::try_parse_from(flags.iter().chain(extra)) {
        Ok(args) => args,
        Err(e) => panic!("{name} {extra:?}: {e}"),
    };
    let parsed = common(&args);
    assert_eq!(parsed.admin_addr.to_string(), "127.0.0.1:18080");
    assert_eq!(parsed.log_format, LogFormat::Json);
    assert_eq!(parsed.log_level, "debug");
    args
}

/// A log sink for one test: a `tracing_subscriber` writer collecting every line in memory, so a
/// test can install a scoped subscriber and read what was logged ([`LogSink::text`]).
#[derive(Debug, Clone, Default)]
pub struct LogSink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogSink {
    /// A sink and a subscriber writing plain text lines to it, filtered by `filter` (an
    /// `EnvFilter` directive string), installed for this thread until the guard is dropped.
    /// Another test reaching the same log call sites on another thread at the same time can
    /// leave them silent for this subscriber: give such a test a test binary of its own.
    pub fn capture(filter: &str) -> (LogSink, tracing::subscriber::DefaultGuard) {
        let sink = LogSink::default();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(sink.clone())
            .with_ansi(false)
            .finish();
        (sink, tracing::subscriber::set_default(subscriber))
    }

    /// Everything written so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
            .into_owned()
    }
}

impl io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogSink {
    type Writer = LogSink;

    fn make_writer(&'a self) -> LogSink {
        self.clone()
    }
}
