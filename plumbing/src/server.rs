//! The lifecycle every ebb server shares: logging and signal handling from the common flags
//! ([`start`]), then a `prometheus_client` registry with `keda_build_info`, a readiness handle
//! and the admin server run until shutdown ([`Server`]). A program registers its own metrics
//! on [`Server::registry`] and flips [`Server::readiness`] as its real work comes and goes.

use std::net::SocketAddr;
use std::sync::Arc;

use prometheus_client::registry::Registry;
use thiserror::Error;

use crate::admin::{AdminError, AdminServer, Readiness};
use crate::args::CommonArgs;
use crate::build_info::{self, BuildInfo};
use crate::logging::{self, LogError};
use crate::shutdown::Shutdown;

/// Why a server could not start or stopped with an error.
#[derive(Debug, Error)]
pub enum ServerError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    #[error(transparent)]
    Admin(#[from] AdminError),
}

/// Sets up logging from the common flags and returns the shutdown handle for SIGTERM/SIGINT.
pub fn start(common: &CommonArgs) -> Result<Shutdown, ServerError> {
    logging::init(common.log_format, &common.log_level)?;
    Shutdown::on_signal().map_err(ServerError::Signals)
}

/// A server's shared state before it starts serving.
#[derive(Debug)]
pub struct Server {
    pub name: &'static str,
    pub registry: Registry,
    pub readiness: Readiness,
}

impl Server {
    /// A fresh registry holding `keda_build_info` for `name`/`version`; not ready yet.
    pub fn new(name: &'static str, version: &'static str) -> Self {
        tracing::info!(version, "starting {name}");
        let mut registry = Registry::default();
        build_info::register(&mut registry, &BuildInfo::new(name, version));
        Self { name, registry, readiness: Readiness::default() }
    }

    /// Binds the admin server, runs `ready` (which may set readiness), serves until
    /// `shutdown` and logs the stop.
    pub async fn serve_admin(
        self,
        admin_addr: SocketAddr,
        shutdown: &Shutdown,
        ready: impl FnOnce(&Readiness),
    ) -> Result<(), ServerError> {
        let admin = AdminServer::bind(admin_addr, Arc::new(self.registry), self.readiness.clone()).await?;
        ready(&self.readiness);
        admin.serve(shutdown.wait()).await?;
        tracing::info!("{} stopped", self.name);
        Ok(())
    }
}
