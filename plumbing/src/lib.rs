//! Shared process plumbing for ebb's servers (`ebb-operator`, `ebb-metrics-apiserver`,
//! `ebb-webhook`): the flags every server has, logging setup, the admin HTTP server
//! (`/livez`, `/readyz`, `/metrics`), the `keda_build_info` metric and shutdown on
//! SIGTERM/SIGINT.
//!
//! A server's `run` typically:
//! 1. calls [`logging::init`] with the format and level from [`args::CommonArgs`];
//! 2. installs [`shutdown::Shutdown::on_signal`];
//! 3. builds a `prometheus_client` registry and calls [`build_info::register`];
//! 4. binds an [`admin::AdminServer`] and serves it until shutdown, flipping its
//!    [`admin::Readiness`] as its real work becomes (un)available.

pub mod admin;
pub mod args;
pub mod build_info;
pub mod logging;
pub mod shutdown;
#[cfg(feature = "test-support")]
pub mod testing;
