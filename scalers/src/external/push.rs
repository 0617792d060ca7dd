//! `external-push`: keeps the scaler's `StreamIsActive` stream open for as long as the scale
//! loop runs (the task ends with the scaler, [`AbortOnDropHandle`]), reopening it with backoff
//! when it ends or fails. Each pushed activity is kept for the next tick (which takes it; a
//! metrics API query only peeks) and wakes the loop;
//! wake-ups are spaced by [`MIN_WAKE_SPACING`] so a scaler pushing in a loop cannot make the
//! operator tick without pause.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ebb_plumbing::backoff::Backoff;
use ebb_plumbing::task::AbortOnDropHandle;
use tokio::sync::Notify;

use super::client::Client;
use super::lock;
use super::proto::ScaledObjectRef;

/// Shortest time between two wake-ups of the loop by pushes.
pub const MIN_WAKE_SPACING: Duration = Duration::from_millis(100);
/// First pause before reopening an ended stream; doubled up to [`MAX_RECONNECT`].
pub const FIRST_RECONNECT: Duration = Duration::from_millis(200);
pub const MAX_RECONNECT: Duration = Duration::from_secs(30);

/// The stream task and the last pushed activity not yet used by a tick.
#[derive(Debug, Default)]
pub struct Push {
    pending: Arc<Mutex<Option<bool>>>,
    task: Mutex<Option<AbortOnDropHandle<()>>>,
}

impl Push {
    /// The pushed activity not yet used, if any (and forgets it).
    pub fn take(&self) -> Option<bool> {
        lock(&self.pending).take()
    }

    /// The pushed activity not yet used, if any (kept for the tick).
    pub fn peek(&self) -> Option<bool> {
        *lock(&self.pending)
    }

    /// Starts the stream task (once; later calls keep the running one).
    pub fn start(&self, client: Arc<Client>, object: ScaledObjectRef, wake: Arc<Notify>) {
        let mut task = lock(&self.task);
        if task.is_none() {
            let pending = self.pending.clone();
            *task = Some(AbortOnDropHandle::new(tokio::spawn(stream(client, object, pending, wake))));
        }
    }
}

async fn stream(
    client: Arc<Client>,
    object: ScaledObjectRef,
    pending: Arc<Mutex<Option<bool>>>,
    wake: Arc<Notify>,
) {
    let mut backoff = Backoff::new(FIRST_RECONNECT, MAX_RECONNECT);
    let mut last_wake: Option<tokio::time::Instant> = None;
    loop {
        match client.stream_is_active(&object).await {
            Ok(mut s) => loop {
                match s.message().await {
                    Ok(Some(m)) => {
                        backoff.reset();
                        *lock(&pending) = Some(m.result);
                        if let Some(at) = last_wake {
                            tokio::time::sleep_until(at + MIN_WAKE_SPACING).await;
                        }
                        last_wake = Some(tokio::time::Instant::now());
                        wake.notify_one();
                    }
                    Ok(None) => {
                        tracing::debug!(address = client.address(), "external-push: stream ended; reopening");
                        break;
                    }
                    Err(st) => {
                        let e = super::client::status_error(client.address(), "StreamIsActive", &st);
                        tracing::debug!("external-push: stream failed, reopening: {e}");
                        break;
                    }
                }
            },
            Err(e) => tracing::debug!("external-push: cannot open the stream: {e}"),
        }
        tokio::time::sleep(backoff.next_pause()).await;
    }
}
