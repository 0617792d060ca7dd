//! The admin HTTP server every ebb program runs: `/livez` (process is up), `/readyz`
//! (program can do its job, with a reason when it cannot) and `/metrics` (Prometheus /
//! OpenMetrics text from a `prometheus_client` registry), plus the [`Readiness`] handle the
//! program uses to drive `/readyz`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

/// Content type of `/metrics` responses.
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Message of the log event emitted once the admin server listens; its `addr` field holds
/// the bound address (useful when the configured port is 0).
pub const LISTENING_MESSAGE: &str = "admin server listening";

/// Reason reported by a fresh [`Readiness`] until the program sets it.
pub const STARTING_REASON: &str = "starting";

/// Whether the program is ready to serve, shared between the program and `/readyz`.
/// Clones share the same state.
#[derive(Debug, Clone)]
pub struct Readiness {
    /// `None` when ready, otherwise why not.
    state: Arc<Mutex<Option<Arc<str>>>>,
}

impl Default for Readiness {
    /// Not ready, reason [`STARTING_REASON`].
    fn default() -> Self {
        Readiness::not_ready(STARTING_REASON)
    }
}

impl Readiness {
    /// A handle that starts out not ready for `reason`.
    pub fn not_ready(reason: impl Into<String>) -> Self {
        Readiness { state: Arc::new(Mutex::new(Some(Arc::from(reason.into())))) }
    }

    /// Marks the program ready.
    pub fn set_ready(&self) {
        let previous = self.lock().take();
        if previous.is_some() {
            tracing::info!("ready");
        }
    }

    /// Marks the program not ready; `reason` is what `/readyz` answers.
    pub fn set_not_ready(&self, reason: impl Into<String>) {
        let reason: Arc<str> = Arc::from(reason.into());
        let previous = self.lock().replace(Arc::clone(&reason));
        if previous.as_deref() != Some(&*reason) {
            tracing::warn!(reason = %reason, "not ready");
        }
    }

    /// Whether the program is ready.
    pub fn is_ready(&self) -> bool {
        self.lock().is_none()
    }

    /// `Ok` when ready, otherwise the reason it is not.
    pub fn check(&self) -> Result<(), Arc<str>> {
        match self.lock().as_ref() {
            None => Ok(()),
            Some(reason) => Err(Arc::clone(reason)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<str>>> {
        // The state is a plain value: a panic while holding the lock cannot leave it torn.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Why the admin server could not run.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The listening socket could not be bound.
    #[error("cannot bind the admin server to {addr}: {source}")]
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Accepting or serving connections failed.
    #[error("admin server on {addr} failed: {source}")]
    Serve {
        /// The bound address.
        addr: SocketAddr,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone)]
struct AdminState {
    registry: Arc<Registry>,
    readiness: Readiness,
}

/// The admin routes, for embedding or for tests that drive them without a socket.
pub fn router(registry: Arc<Registry>, readiness: Readiness) -> Router {
    Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(AdminState { registry, readiness })
}

async fn livez() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AdminState>) -> Response {
    match state.readiness.check() {
        Ok(()) => (StatusCode::OK, "ok").into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, reason.to_string()).into_response(),
    }
}

async fn metrics(State(state): State<AdminState>) -> Response {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &state.registry) {
        Ok(()) => ([(CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], body).into_response(),
        Err(_) => {
            tracing::error!("cannot encode metrics");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics").into_response()
        }
    }
}

/// An admin server bound to its address and not yet serving.
#[derive(Debug)]
pub struct AdminServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: Router,
}

impl AdminServer {
    /// Binds `addr` (port 0 picks a free port; see [`AdminServer::local_addr`]).
    pub async fn bind(
        addr: SocketAddr,
        registry: Arc<Registry>,
        readiness: Readiness,
    ) -> Result<Self, AdminError> {
        let bind_error = |source| AdminError::Bind { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        Ok(AdminServer { listener, local_addr, router: router(registry, readiness) })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then stops accepting and lets open requests finish.
    pub async fn serve<F>(self, shutdown: F) -> Result<(), AdminError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let addr = self.local_addr;
        tracing::info!(addr = %addr, "{LISTENING_MESSAGE}");
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|source| AdminError::Serve { addr, source })?;
        tracing::info!(addr = %addr, "admin server stopped");
        Ok(())
    }
}

/// Binds `addr` and serves the admin routes until `shutdown` completes.
pub async fn serve<F>(
    addr: SocketAddr,
    registry: Arc<Registry>,
    readiness: Readiness,
    shutdown: F,
) -> Result<(), AdminError>
where
    F: Future<Output = ()> + Send + 'static,
{
    AdminServer::bind(addr, registry, readiness).await?.serve(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_transitions_are_shared_between_clones() {
        let readiness = Readiness::default();
        let program_side = readiness.clone();
        assert_eq!(readiness.check(), Err(Arc::from(STARTING_REASON)));
        assert!(!readiness.is_ready());

        program_side.set_ready();
        assert!(readiness.is_ready());
        assert_eq!(readiness.check(), Ok(()));

        program_side.set_not_ready("lost the operator");
        assert!(!readiness.is_ready());
        assert_eq!(readiness.check(), Err(Arc::from("lost the operator")));

        program_side.set_not_ready("still lost");
        assert_eq!(readiness.check(), Err(Arc::from("still lost")));
    }

    #[test]
    fn bind_error_names_the_address() {
        let addr: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let err = AdminError::Bind { addr, source: std::io::Error::from(std::io::ErrorKind::AddrInUse) };
        assert!(err.to_string().starts_with("cannot bind the admin server to 127.0.0.1:8080: "));
    }
}
