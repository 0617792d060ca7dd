//! Process faults for the fault suite: pause a backend as a hung process would (SIGSTOP, so its
//! listening socket still accepts connections that are never answered) and resume it (SIGCONT).
//! A crash is each backend's own `kill`; a restart on the same address is its `restart`.

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// Stops process `pid` (SIGSTOP): it keeps its sockets but answers nothing.
pub fn pause(pid: u32) -> Result<(), String> {
    signal(pid, Signal::SIGSTOP, false)
}

/// Continues a paused process `pid` (SIGCONT).
pub fn resume(pid: u32) -> Result<(), String> {
    signal(pid, Signal::SIGCONT, false)
}

/// Stops every process of group `pgid` (SIGSTOP).
pub fn pause_group(pgid: u32) -> Result<(), String> {
    signal(pgid, Signal::SIGSTOP, true)
}

/// Continues every process of group `pgid` (SIGCONT).
pub fn resume_group(pgid: u32) -> Result<(), String> {
    signal(pgid, Signal::SIGCONT, true)
}

fn signal(id: u32, sig: Signal, group: bool) -> Result<(), String> {
    let raw = i32::try_from(id).map_err(|_| format!("process id {id} out of range"))?;
    let pid = Pid::from_raw(raw);
    let sent = if group { killpg(pid, sig) } else { kill(pid, sig) };
    sent.map_err(|e| format!("cannot send {sig} to {} {id}: {e}", if group { "group" } else { "process" }))
}
