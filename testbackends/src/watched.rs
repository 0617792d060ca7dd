//! Child processes that cannot outlive the test process: [`Watched::spawn`] runs a program under
//! a small shell watchdog that stops it (SIGTERM) as soon as the test process is gone, so a
//! backend kept in a `static` (never dropped) or a test killed mid-run leaves nothing behind.
//! Output goes to a log file whose tail [`Watched::log_tail`] returns for error messages. The
//! watchdog leads a process group of its own, so [`Watched::kill`] ends the program at once, as
//! a crash would, and nothing outlives a stop that ran out of patience.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The watchdog: `$1` is the test process, `$2` a path removed once the program has ended (or
/// empty), the rest the program and its arguments.
const WATCHDOG: &str = r#"
p=$1; cleanup=$2; shift 2
"$@" & m=$!
finish() { kill "$m" 2>/dev/null; wait "$m"; [ -n "$cleanup" ] && rm -rf "$cleanup"; exit 0; }
trap finish TERM INT
while kill -0 "$p" 2>/dev/null && kill -0 "$m" 2>/dev/null; do sleep 0.5; done
finish
"#;

/// A program running under the watchdog.
#[derive(Debug)]
pub struct Watched {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Watched {
    /// Starts `program` with `args` and environment `env`, its output appended to `log`. When the
    /// program has ended (stopped by [`Watched::stop`], by the test process going away, or by
    /// itself) the watchdog removes `cleanup`, if given.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(&str, &str)],
        log: &Path,
        cleanup: Option<&Path>,
    ) -> Result<Self, String> {
        let out = File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| format!("cannot reuse {}: {e}", log.display()))?;
        let mut cmd = Command::new("sh");
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd.arg("-c")
            .arg(WATCHDOG)
            .arg("ebb-watchdog")
            .arg(std::process::id().to_string())
            .arg(cleanup.map(Path::as_os_str).unwrap_or_default())
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        Ok(Self { name: name.to_owned(), child, log: log.to_owned() })
    }

    /// The name given at [`Watched::spawn`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `Some(reason)` once the program (or its watchdog) has exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("{} exited ({status})", self.name)),
            Ok(None) => None,
            Err(e) => Some(format!("{}: cannot wait: {e}", self.name)),
        }
    }

    /// The last `n` lines the program wrote.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Stops the program: SIGTERM to the watchdog (which stops the program and waits for it),
    /// then SIGKILL to both after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
    }

    /// Ends the program and its watchdog at once (SIGKILL to their process group), as a crash.
    pub fn kill(&mut self) {
        let group = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.stop(Duration::from_secs(10));
        }
    }
}
