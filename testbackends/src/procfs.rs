//! What this machine says about a process, for the benchmarks: resident memory from `/proc/PID/status` and CPU time
//! from `/proc/PID/stat`, plus the load average written next to every figure (the machine is
//! shared; lateness and CPU depend on it, RSS does not).

use std::time::Instant;

/// Clock ticks per second of `/proc/PID/stat` (`USER_HZ`, 100 on every Linux architecture this
/// benchmark runs on).
const TICKS_PER_SECOND: f64 = 100.0;

/// A field of `/proc/PID/status` in KiB (`VmRSS:`, `VmHWM:`, `RssAnon:`); 0 when unreadable.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Resident memory in MiB.
pub fn rss_mib(pid: u32) -> f64 {
    status_kib(pid, "VmRSS:") as f64 / 1024.0
}

/// CPU seconds (user + system) the process has used; `None` when it is gone.
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_secs(&stat)
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line, in seconds. The command name
/// (field 2) may hold spaces and parentheses, so fields are counted after its last `)`.
pub fn parse_cpu_secs(stat: &str) -> Option<f64> {
    let (_, after) = stat.rsplit_once(')')?;
    let f: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SECOND)
}

/// The 1-, 5- and 15-minute load averages, as `/proc/loadavg` writes them.
pub fn loadavg() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// CPU use of a process over a window, as a percentage of one core.
#[derive(Debug)]
pub struct CpuWindow {
    pid: u32,
    start: Instant,
    cpu0: f64,
}

impl CpuWindow {
    pub fn start(pid: u32) -> Result<Self, String> {
        let cpu0 = cpu_secs(pid).ok_or_else(|| format!("process {pid} is gone"))?;
        Ok(Self { pid, start: Instant::now(), cpu0 })
    }

    /// % of one core since [`CpuWindow::start`].
    pub fn percent(&self) -> Result<f64, String> {
        let cpu = cpu_secs(self.pid).ok_or_else(|| format!("process {} is gone", self.pid))?;
        let wall = self.start.elapsed().as_secs_f64();
        Ok(if wall > 0.0 { (cpu - self.cpu0) / wall * 100.0 } else { 0.0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_fields_are_counted_after_the_command_name() {
        // proc(5): pid (comm) state ppid ... utime stime; a comm with a space and a parenthesis.
        let line = "42 (a (b) c) S 1 42 42 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 4 0 100 1000 10";
        assert_eq!(parse_cpu_secs(line), Some(3.0));
        assert_eq!(parse_cpu_secs("garbage"), None);
    }
}
