//! Tasks that end with their owner: [`AbortOnDropHandle`] (from tokio-util) aborts a spawned
//! task when dropped, so background work started by a server's `serve` never outlives it.

pub use tokio_util::task::AbortOnDropHandle;
