//! One connection of an [`super::HttpsServer`], under the server's [`ServerLimits`]: the TLS
//! handshake within `tls_handshake_timeout`; HTTP/2 or HTTP/1.1 as ALPN chose (detected from the
//! first bytes only when the client offered no ALPN); hyper's own bounds — an HTTP/1 request
//! head within `header_read_timeout` (hyper needs a timer for it, so one is always set), HTTP/2
//! concurrent streams and keep-alive pings; a watchdog closing the connection once no request
//! has been in flight for `idle_timeout` (a request is in flight until its response body has
//! been sent, so a streamed body such as a watch keeps the connection busy); and a graceful
//! close on shutdown. The connection holds its slot of the server's connection cap until it
//! ends.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Extension;
use axum::body::Body;
use axum::body::Bytes;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio_rustls::TlsAcceptor;

use super::PeerCertificates;
use crate::limits::{Activity, Closed, ConnectionMetrics, RequestGuard, ServerLimits};

/// How long an idle connection gets to close gracefully (HTTP/2 GOAWAY) before it is dropped.
const IDLE_CLOSE_GRACE: Duration = Duration::from_secs(1);
/// How often a busy connection is looked at again by the idle watchdog.
const BUSY_RECHECK: Duration = Duration::from_secs(1);

/// What a connection needs from its server.
pub(super) struct Conn {
    pub name: &'static str,
    pub limits: ServerLimits,
    pub metrics: ConnectionMetrics,
    pub stop: watch::Receiver<bool>,
    /// The connection's slot under the cap, given back when the connection ends.
    pub slot: OwnedSemaphorePermit,
}

/// An open connection as the metrics see it; ends (and frees its slot) when dropped, also when
/// the connection's task is aborted.
struct Open {
    metrics: ConnectionMetrics,
    _slot: OwnedSemaphorePermit,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.metrics.ended();
    }
}

impl Conn {
    /// Handshakes `tcp` and serves `app` on it until it closes, idles out or shutdown is
    /// requested.
    pub(super) async fn serve(
        self,
        tcp: TcpStream,
        peer: SocketAddr,
        acceptor: TlsAcceptor,
        app: axum::Router,
    ) {
        let Conn { name, limits, metrics, mut stop, slot } = self;
        metrics.opened();
        let _open = Open { metrics: metrics.clone(), _slot: slot };
        let stream = match tokio::time::timeout(limits.tls_handshake_timeout, acceptor.accept(tcp)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(err)) if err.kind() == std::io::ErrorKind::UnexpectedEof => {
                tracing::debug!(%peer, "{name}: peer closed during the TLS handshake");
                return;
            }
            Ok(Err(err)) => {
                metrics.closed(Closed::HandshakeFailed);
                tracing::warn!(%peer, "{name}: TLS handshake refused: {err}");
                return;
            }
            Err(_) => {
                metrics.closed(Closed::HandshakeTimeout);
                tracing::debug!(%peer, "{name}: TLS handshake timed out");
                return;
            }
        };
        let session = stream.get_ref().1;
        let chain = session.peer_certificates().map(<[_]>::to_vec).unwrap_or_default();
        let alpn = session.alpn_protocol().map(<[u8]>::to_vec);
        let activity = Activity::new(Instant::now());
        let tracked = activity.clone();
        let app = app.layer(Extension(PeerCertificates(Arc::new(chain)))).layer(axum::middleware::from_fn(
            move |request: Request, next: Next| {
                let guard = tracked.begin();
                async move { in_flight_until_body_ends(next.run(request).await, guard) }
            },
        ));
        let builder = http_builder(&limits, alpn.as_deref());
        let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
        tokio::pin!(conn);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(err) = result {
                    if is_timeout(err.as_ref()) {
                        metrics.closed(Closed::Timeout);
                    }
                    tracing::debug!(%peer, "{name}: connection ended: {err}");
                }
            }
            () = idle(&activity, limits.idle_timeout) => {
                metrics.closed(Closed::Idle);
                tracing::debug!(%peer, "{name}: closing a connection idle for {:?}", limits.idle_timeout);
                conn.as_mut().graceful_shutdown();
                // Whatever the client does now, the connection goes: at once when it does not
                // finish closing within the grace.
                let _ = tokio::time::timeout(IDLE_CLOSE_GRACE, conn.as_mut()).await;
            }
            () = stopped(&mut stop) => {
                conn.as_mut().graceful_shutdown();
                // Errors while draining are not worth reporting: the server is going away.
                let _ = conn.await;
            }
        }
    }
}

/// The response with `guard` held by its body: the request counts as in flight until the body
/// has been sent (or dropped), so a long streamed body — a watch — is not taken for idleness.
fn in_flight_until_body_ends(response: Response, guard: RequestGuard) -> Response {
    response.map(|inner| Body::new(InFlightBody { inner, _guard: guard }))
}

/// A response body holding its request's [`RequestGuard`]; frames, end and size (hence the
/// `Content-Length` of a body of known size) are the inner body's.
struct InFlightBody {
    inner: Body,
    _guard: RequestGuard,
}

impl http_body::Body for InFlightBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The HTTP side of a connection: the protocol ALPN agreed on (or detection when none was),
/// with a timer so that hyper's timeouts work at all.
fn http_builder(limits: &ServerLimits, alpn: Option<&[u8]>) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.http2_max_concurrent_streams)
        .keep_alive_interval(limits.http2_keepalive_interval)
        .keep_alive_timeout(limits.http2_keepalive_timeout);
    match alpn {
        Some(b"h2") => builder.http2_only(),
        Some(b"http/1.1") => builder.http1_only(),
        _ => builder,
    }
}

/// Whether a connection error is one of hyper's timeouts (request head, keep-alive ping).
fn is_timeout(err: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
    err.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_timeout)
}

/// Completes once the connection has had no request in flight for `idle`.
async fn idle(activity: &Activity, idle: Duration) {
    loop {
        match activity.idle_deadline(idle) {
            Some(deadline) if deadline <= Instant::now() => return,
            Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
            None => tokio::time::sleep(BUSY_RECHECK.min(idle)).await,
        }
    }
}

/// Completes once shutdown is requested (or the server is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // An error means the sender is gone, which also means stop.
    let _ = stop.wait_for(|stop| *stop).await;
}
