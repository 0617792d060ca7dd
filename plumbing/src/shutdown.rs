//! Graceful shutdown: a future completing on SIGTERM or SIGINT, and a cloneable
//! [`Shutdown`] handle that every task of a server can wait on.

use std::fmt;
use std::future::Future;

use tokio::sync::watch;

/// The signal that asked the process to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// SIGTERM, as sent by the kubelet when a pod is deleted.
    Terminate,
    /// SIGINT (Ctrl-C).
    Interrupt,
}

impl Signal {
    /// The conventional signal name, e.g. `SIGTERM`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Terminate => "SIGTERM",
            Signal::Interrupt => "SIGINT",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Installs handlers for SIGTERM and SIGINT and returns a future completing with the first
/// of them to arrive. The handlers are installed before this function returns, so a signal
/// delivered between the call and the first poll is not lost (and does not kill the
/// process). Must be called from within a Tokio runtime.
#[cfg(unix)]
pub fn signal() -> std::io::Result<impl Future<Output = Signal> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => Signal::Terminate,
            _ = interrupt.recv() => Signal::Interrupt,
        }
    })
}

/// Returns a future completing on Ctrl-C (the only signal available off Unix).
#[cfg(not(unix))]
pub fn signal() -> std::io::Result<impl Future<Output = Signal> + Send + 'static> {
    Ok(async {
        match tokio::signal::ctrl_c().await {
            Ok(()) => Signal::Interrupt,
            Err(_) => std::future::pending().await,
        }
    })
}

/// Requests shutdown of every [`Shutdown`] made by the same [`channel`] call.
#[derive(Debug)]
pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
}

impl ShutdownTrigger {
    /// Requests shutdown. Idempotent.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }
}

/// A cheap-to-clone handle whose [`Shutdown::wait`] completes once shutdown was requested,
/// or once every [`ShutdownTrigger`] is gone (nobody could request it any more).
#[derive(Debug, Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// Creates a trigger and the handle it controls.
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger { tx }, Shutdown { rx })
}

impl Shutdown {
    /// A handle triggered by the first SIGTERM or SIGINT; the signal is logged.
    /// Must be called from within a Tokio runtime.
    pub fn on_signal() -> std::io::Result<Self> {
        let received = signal()?;
        let (trigger, shutdown) = channel();
        tokio::spawn(async move {
            let signal = received.await;
            tracing::info!(%signal, "shutdown requested");
            trigger.trigger();
        });
        Ok(shutdown)
    }

    /// Whether shutdown was requested already.
    pub fn is_requested(&self) -> bool {
        *self.rx.borrow()
    }

    /// A future completing once shutdown is requested. It owns its state, so it can be
    /// handed to a spawned task or to a server's graceful-shutdown hook.
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.rx.clone();
        async move {
            // `Err` means every trigger was dropped: treat that as shutdown too.
            let _ = rx.wait_for(|requested| *requested).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const LONG: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn trigger_wakes_every_clone() {
        let (trigger, shutdown) = channel();
        let other = shutdown.clone();
        let waiter = tokio::spawn(other.wait());
        assert!(!shutdown.is_requested());
        // Not yet triggered: waiting must not complete.
        assert!(tokio::time::timeout(Duration::from_millis(50), shutdown.wait()).await.is_err());
        trigger.trigger();
        tokio::time::timeout(LONG, shutdown.wait()).await.unwrap();
        tokio::time::timeout(LONG, waiter).await.unwrap().unwrap();
        assert!(shutdown.is_requested());
    }

    #[tokio::test]
    async fn wait_after_trigger_completes_immediately() {
        let (trigger, shutdown) = channel();
        trigger.trigger();
        trigger.trigger();
        tokio::time::timeout(LONG, shutdown.wait()).await.unwrap();
    }

    #[tokio::test]
    async fn dropping_the_trigger_counts_as_shutdown() {
        let (trigger, shutdown) = channel();
        drop(trigger);
        tokio::time::timeout(LONG, shutdown.wait()).await.unwrap();
        assert!(!shutdown.is_requested());
    }

    #[test]
    fn signal_names() {
        assert_eq!(Signal::Terminate.to_string(), "SIGTERM");
        assert_eq!(Signal::Interrupt.to_string(), "SIGINT");
    }
}
