//! Serving the control plane's axum router over TLS until told to stop, through ebb's one HTTPS
//! server (`ebb_plumbing::tls::HttpsServer`): HTTP/1.1 and HTTP/2 (ALPN), one task per
//! connection, with its TLS handshake, request-head and idle timeouts and its connection cap
//! (the default `ebb_plumbing::limits::ServerLimits`). A request is in flight until its response
//! body ends, so watches keep their connections. On stop, open connections are closed at once:
//! the control plane is going away.

use std::sync::Arc;
use std::time::Duration;

use ebb_plumbing::tls::HttpsServer;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The server's name in logs.
const NAME: &str = "sandbox API server";

/// Accepts connections until `stop` turns true (or its sender is dropped).
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: axum::Router,
    mut stop: watch::Receiver<bool>,
) {
    let server = match HttpsServer::with_config(listener, tls, NAME) {
        Ok(server) => server.with_shutdown_grace(Duration::ZERO),
        Err(e) => {
            tracing::warn!("{NAME}: the listener has no local address: {e}");
            return;
        }
    };
    server
        .serve(app, async move {
            // An error means the sender is gone, which also means stop.
            let _ = stop.wait_for(|stop| *stop).await;
        })
        .await;
}
