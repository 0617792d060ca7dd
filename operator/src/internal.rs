//! The operator's internal metrics service: the mutual-TLS endpoint through which
//! `ebb-metrics-apiserver` asks the operator for metric values. The operator owns every scaler
//! and every connection to a metric source; the metrics-apiserver never talks to a source and
//! only forwards the HPA controller's questions here.
//!
//! # Protocol
//!
//! HTTP/2 (HTTP/1.1 also offered through ALPN) over TLS. Every connection must present a client
//! certificate signed by the configured client CA; a connection without one, or with one from
//! another CA, is refused during the handshake, before any HTTP is spoken. Wire types are in
//! [`ebb_api::internal`].
//!
//! - `GET /v1/namespaces/{ns}/scaledobjects/{name}/metrics/{metric}` (segments percent-encoded)
//!   - 200 `{"metricName", "value": <f64>, "timestamp": <RFC 3339>, "source": "cache"|"live"}`
//!   - 404 `{"reason": "NotFound", "error": "..."}`: the ScaledObject or the metric is unknown;
//!     the message says which, and lists the metrics the object has
//!   - 503 `{"reason": "NotLeader", "error": "this operator replica is not the leader; ask the
//!     leader"}`: this replica does not run the scale loop
//!   - 504 `{"reason": "Timeout", "error": "..."}`: the live query did not finish in time
//!   - 502 `{"reason": "ScalerError", "error": "..."}`: the scaler's error (the value source keeps
//!     credentials out of it); a non-finite value is reported this way too
//!   - 500 `{"reason": "Internal", "error": "..."}`: the value source failed on its own
//! - `GET /healthz` → 200 `ok`, leader or not (the metrics-apiserver's link check).
//! - Anything else → 404 `NotFound`.
//!
//! # Certificates
//!
//! The serving certificate, its key and the client CA bundle are PEM files. Before each new
//! connection their modification times, sizes and inodes are compared with those last loaded;
//! when one changed, all three are read again and the new configuration serves the following
//! handshakes (established connections keep theirs). A set of files that does not load (say, a
//! certificate already replaced whose key is not yet) is logged and the previous configuration
//! stays in use until the files change again. No restart is needed for a rotation.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::{Path as UrlPath, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ebb_api::internal::{self as wire, MetricValue, ValueError};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// Longest a value query may take before the answer is 504 `Timeout`. Value sources are expected
/// to enforce their own, shorter, live-query timeout; this bounds a source that does not.
pub const VALUE_DEADLINE: Duration = Duration::from_secs(30);
/// Longest a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections get to finish their requests after shutdown is requested.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Pause after a failed `accept` (for example, out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Where metric values come from: the operator's scale loop and scaler cache.
#[async_trait::async_trait]
pub trait ValueSource: Send + Sync + 'static {
    /// The current value of `metric` of the ScaledObject `namespace/scaled_object`, from the
    /// cache or measured live. Errors carry no credentials.
    async fn value(
        &self,
        namespace: &str,
        scaled_object: &str,
        metric: &str,
    ) -> Result<MetricValue, ValueError>;

    /// Whether this replica is the leader (and so runs the scalers). Non-leaders answer 503.
    fn is_leader(&self) -> bool;
}

/// Where the internal metrics service listens and which PEM files it serves with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InternalServerConfig {
    /// Listen address (port 0 picks a free port; see [`InternalServer::local_addr`]).
    pub addr: SocketAddr,
    /// Serving certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// Private key of the serving certificate (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// CA bundle that client certificates must chain to.
    pub client_ca_file: PathBuf,
}

/// Why the internal metrics service could not start.
#[derive(Debug, thiserror::Error)]
pub enum InternalError {
    /// A certificate, key or CA file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file's PEM content could not be decoded.
    #[error("decoding PEM in {path}: {source}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// The decoding error.
        source: rustls::pki_types::pem::Error,
    },
    /// A certificate file or CA bundle holds no certificate.
    #[error("{0} holds no certificate")]
    NoCertificate(PathBuf),
    /// The key file holds no private key.
    #[error("{0} holds no private key")]
    NoPrivateKey(PathBuf),
    /// rustls refused the certificate, the key (for example, one not matching the
    /// certificate) or a CA certificate.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The client certificate verifier could not be built from the CA bundle.
    #[error("client certificate verifier: {0}")]
    ClientVerifier(#[from] rustls::server::VerifierBuilderError),
    /// The listen address could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A bound, not yet serving, internal metrics service.
#[derive(Debug)]
pub struct InternalServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: TlsFiles,
}

impl InternalServer {
    /// Loads the certificate, key and client CA (failing fast on bad files) and binds the address.
    pub async fn bind(cfg: InternalServerConfig) -> Result<Self, InternalError> {
        let tls = TlsFiles::load(cfg.cert_file, cfg.key_file, cfg.client_ca_file)?;
        let listener = TcpListener::bind(cfg.addr)
            .await
            .map_err(|source| InternalError::Bind { addr: cfg.addr, source })?;
        let local_addr =
            listener.local_addr().map_err(|source| InternalError::Bind { addr: cfg.addr, source })?;
        Ok(Self { listener, local_addr, tls })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then lets open connections finish their requests (for
    /// at most a few seconds) and returns.
    pub async fn serve(
        self,
        source: Arc<dyn ValueSource>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), InternalError> {
        let Self { listener, local_addr, mut tls } = self;
        tracing::info!(addr = %local_addr, "internal metrics service listening (mTLS)");
        let app = router(source);
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut connections = JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                accepted = listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        tls.refresh();
                        let acceptor = tls.acceptor.clone();
                        connections.spawn(connection(tcp, peer, acceptor, app.clone(), stop_rx.clone()));
                    }
                    Err(err) => {
                        tracing::warn!("internal metrics service: accept failed: {err}");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
            }
        }
        drop(listener);
        // Ignoring the send error is right: it only fails when no connection is left to tell.
        let _ = stop_tx.send(true);
        let drained =
            tokio::time::timeout(SHUTDOWN_GRACE, async { while connections.join_next().await.is_some() {} })
                .await;
        if drained.is_err() {
            tracing::warn!(
                "internal metrics service: closing {} connection(s) still open",
                connections.len()
            );
            connections.abort_all();
        }
        tracing::info!(addr = %local_addr, "internal metrics service stopped");
        Ok(())
    }
}

/// Binds `cfg.addr` and serves until `shutdown` completes.
pub async fn serve(
    cfg: InternalServerConfig,
    source: Arc<dyn ValueSource>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), InternalError> {
    InternalServer::bind(cfg).await?.serve(source, shutdown).await
}

/// The HTTP routes of the service, without TLS (the TLS layer is [`InternalServer`]'s).
pub fn router(source: Arc<dyn ValueSource>) -> axum::Router {
    axum::Router::new()
        .route(wire::METRIC_ROUTE, get(metric_value))
        .route(wire::HEALTHZ_PATH, get(|| async { wire::HEALTHZ_BODY }))
        .fallback(unknown_route)
        .with_state(source)
}

async fn metric_value(
    State(source): State<Arc<dyn ValueSource>>,
    UrlPath((namespace, name, metric)): UrlPath<(String, String, String)>,
) -> Response {
    if !source.is_leader() {
        return error_response(&ValueError::NotLeader);
    }
    // The query runs on its own task so that a panicking source becomes a 500 answer, and a
    // query whose requester went away still ends at the deadline.
    let query = {
        let (namespace, name, metric) = (namespace.clone(), name.clone(), metric.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(VALUE_DEADLINE, source.value(&namespace, &name, &metric)).await {
                Ok(result) => result,
                Err(_) => Err(ValueError::Timeout(format!(
                    "no value for metric {metric} of ScaledObject {namespace}/{name} within {}s",
                    VALUE_DEADLINE.as_secs()
                ))),
            }
        })
    };
    let result = match query.await {
        Ok(result) => result,
        Err(err) => Err(ValueError::Internal(format!("the value query failed: {err}"))),
    };
    match result {
        Ok(value) if !value.value.is_finite() => error_response(&ValueError::Scaler(format!(
            "the scaler produced a non-finite value ({}) for metric {metric}",
            value.value
        ))),
        Ok(value) => {
            tracing::debug!(
                %namespace, %name, %metric, value = value.value, source = ?value.source,
                "metric value served"
            );
            (StatusCode::OK, Json(value)).into_response()
        }
        Err(err) => {
            tracing::debug!(%namespace, %name, %metric, "metric value refused: {err}");
            error_response(&err)
        }
    }
}

async fn unknown_route(method: Method, uri: Uri) -> Response {
    error_response(&ValueError::NotFound(format!("no such endpoint: {method} {}", uri.path())))
}

fn error_response(err: &ValueError) -> Response {
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(err.to_body())).into_response()
}

/// Handshakes one connection and serves it until it closes or shutdown is requested.
async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    app: axum::Router,
    mut stop: watch::Receiver<bool>,
) {
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(err)) if err.kind() == std::io::ErrorKind::UnexpectedEof => {
            tracing::debug!(%peer, "internal metrics service: peer closed during the TLS handshake");
            return;
        }
        Ok(Err(err)) => {
            tracing::warn!(%peer, "internal metrics service: TLS handshake refused: {err}");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "internal metrics service: TLS handshake timed out");
            return;
        }
    };
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(err) = result {
                tracing::debug!(%peer, "internal metrics service: connection ended: {err}");
            }
        }
        () = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            // Errors while draining are not worth reporting: the service is going away.
            let _ = conn.await;
        }
    }
}

/// Completes once shutdown is requested (or the server is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // An error means the sender is gone, which also means stop.
    let _ = stop.wait_for(|stop| *stop).await;
}

/// What identifies one version of a file: modification time, size and inode (a file replaced
/// by renaming, as the kubelet does for Secret volumes, gets a new inode).
pub(crate) type Stamp = Option<(SystemTime, u64, u64)>;

pub(crate) fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len(), inode(&meta)))
}

#[cfg(unix)]
fn inode(meta: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

#[cfg(not(unix))]
fn inode(_: &std::fs::Metadata) -> u64 {
    0
}

/// The serving certificate, key and client CA files, and the TLS acceptor built from their
/// last loaded versions.
struct TlsFiles {
    cert_file: PathBuf,
    key_file: PathBuf,
    ca_file: PathBuf,
    stamps: [Stamp; 3],
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsFiles")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("ca_file", &self.ca_file)
            .field("stamps", &self.stamps)
            .finish_non_exhaustive()
    }
}

impl TlsFiles {
    fn load(cert_file: PathBuf, key_file: PathBuf, ca_file: PathBuf) -> Result<Self, InternalError> {
        let stamps = [stamp(&cert_file), stamp(&key_file), stamp(&ca_file)];
        let acceptor = acceptor(&cert_file, &key_file, &ca_file)?;
        Ok(Self { cert_file, key_file, ca_file, stamps, acceptor })
    }

    /// Reloads the files if any changed since they were last looked at. Returns whether the
    /// acceptor was replaced.
    fn refresh(&mut self) -> bool {
        let stamps = [stamp(&self.cert_file), stamp(&self.key_file), stamp(&self.ca_file)];
        if stamps == self.stamps {
            return false;
        }
        // Remembered even when loading fails, so that a broken set of files is reported once
        // and retried when it changes again, not on every connection.
        self.stamps = stamps;
        match acceptor(&self.cert_file, &self.key_file, &self.ca_file) {
            Ok(acceptor) => {
                self.acceptor = acceptor;
                let cert = self.cert_file.display();
                tracing::info!(%cert, "internal metrics service: TLS files reloaded");
                true
            }
            Err(err) => {
                tracing::warn!("internal metrics service: keeping the previous TLS configuration: {err}");
                false
            }
        }
    }
}

/// A TLS acceptor serving `cert_file`/`key_file`, requiring client certificates that chain to
/// `ca_file`, offering ALPN `h2` then `http/1.1`, with the ring provider.
fn acceptor(cert_file: &Path, key_file: &Path, ca_file: &Path) -> Result<TlsAcceptor, InternalError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certs(cert_file)?;
    let key = private_key(key_file)?;
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca_file)?), provider.clone()).build()?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn read(path: &Path) -> Result<Vec<u8>, InternalError> {
    std::fs::read(path).map_err(|source| InternalError::Read { path: path.to_owned(), source })
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, InternalError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| InternalError::Pem { path: path.to_owned(), source })?;
    if certs.is_empty() {
        return Err(InternalError::NoCertificate(path.to_owned()));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, InternalError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|err| match err {
        rustls::pki_types::pem::Error::NoItemsFound => InternalError::NoPrivateKey(path.to_owned()),
        source => InternalError::Pem { path: path.to_owned(), source },
    })
}

fn roots(path: &Path) -> Result<RootCertStore, InternalError> {
    let mut store = RootCertStore::empty();
    for cert in certs(path)? {
        store.add(cert)?;
    }
    Ok(store)
}

#[cfg(test)]
mod tests;
