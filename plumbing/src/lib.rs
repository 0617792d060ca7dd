//! Shared process plumbing for ebb's servers (`ebb-operator`, `ebb-metrics-apiserver`,
//! `ebb-webhook`): the flags every server has, logging setup, the admin HTTP server
//! (`/livez`, `/readyz`, `/metrics`), the `keda_build_info` metric and shutdown on
//! SIGTERM/SIGINT, TLS serving (certificates reloaded from files, or an in-memory
//! configuration), retry backoff, tasks aborted with their owner, (feature `pki`) PEM/X.509
//! helpers for the programs that make certificates, and (feature `internal-client`) the client of
//! the operator's internal metrics service.
//!
//! A server's `run` calls [`server::start`] (logging, signals), builds a [`server::Server`]
//! (registry with `keda_build_info`, readiness) and serves its admin port until shutdown,
//! flipping readiness as its real work becomes (un)available.

pub mod admin;
pub mod args;
pub mod backoff;
pub mod build_info;
#[cfg(feature = "internal-client")]
pub mod internal_client;
pub mod limits;
pub mod logging;
#[cfg(feature = "pki")]
pub mod pki;
pub mod server;
pub mod shutdown;
pub mod task;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod tls;
