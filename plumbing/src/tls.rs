//! TLS for ebb's servers: PEM loading with errors that name the file, file stamps for reload
//! detection, the one rustls server configuration every server uses ([`server_config`]), a
//! server configuration that reloads its certificate, key and client CA from disk when they
//! change (no restart), and an HTTPS server (HTTP/2 and HTTP/1.1 through ALPN) that serves an
//! axum router — from those files or from a configuration held in memory — and hands each
//! request the peer's client certificate chain.
//!
//! The server bounds what clients can hold ([`crate::limits::ServerLimits`]): a cap on open
//! connections (beyond it new ones wait in the listen backlog), TLS handshake, HTTP/1
//! header-read and idle timeouts, and HTTP/2 stream and keep-alive bounds; one connection's
//! handling is in `conn`.
//!
//! # Reload
//!
//! Before each new connection the files' modification times, sizes and inodes are compared with
//! those last loaded; when one changed, all are read again and the new configuration serves the
//! following handshakes (established connections keep theirs). A set of files that does not load
//! (say, a certificate already replaced whose key is not yet) is logged once and the previous
//! configuration stays in use until the files change again.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

pub mod identity;

use crate::limits::{ConnectionMetrics, ServerLimits};
use conn::Conn;

mod conn;

/// How long open connections get to finish their requests after shutdown is requested, unless
/// the server says otherwise ([`HttpsServer::with_shutdown_grace`]).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Reaching the connection cap is logged at most this often.
const CAP_WARNING_PERIOD: Duration = Duration::from_secs(60);
/// Pause after a failed `accept` (for example, out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Why TLS material could not be loaded or a TLS server could not start.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate, key or CA file could not be read.
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// A file's PEM content could not be decoded.
    #[error("decoding PEM in {path}: {source}")]
    Pem { path: PathBuf, source: rustls::pki_types::pem::Error },
    /// A certificate file or CA bundle holds no certificate.
    #[error("{0} holds no certificate")]
    NoCertificate(PathBuf),
    /// The key file holds no private key.
    #[error("{0} holds no private key")]
    NoPrivateKey(PathBuf),
    /// rustls refused the certificate, the key (for example, one not matching the certificate)
    /// or a CA certificate.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The client certificate verifier could not be built from the CA bundle.
    #[error("client certificate verifier: {0}")]
    ClientVerifier(#[from] rustls::server::VerifierBuilderError),
    /// The listen address could not be bound.
    #[error("binding {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

/// What identifies one version of a file: modification time, size and inode (a file replaced by
/// renaming, as the kubelet does for Secret volumes, gets a new inode). `None` when unreadable.
pub type Stamp = Option<(SystemTime, u64, u64)>;

/// The current [`Stamp`] of `path`.
pub fn stamp(path: &Path) -> Stamp {
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

/// Reads a file, naming it in the error.
pub fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_owned(), source })
}

/// Every certificate in a PEM file (at least one).
pub fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem { path: path.to_owned(), source })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(path.to_owned()));
    }
    Ok(certs)
}

/// The first private key in a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|err| match err {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoPrivateKey(path.to_owned()),
        source => TlsError::Pem { path: path.to_owned(), source },
    })
}

/// A root store holding every certificate of a PEM bundle.
pub fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for cert in certs(path)? {
        store.add(cert)?;
    }
    Ok(store)
}

/// Whether and how a server asks for client certificates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificates are asked for.
    None,
    /// A client certificate chaining to the CA bundle is required; others are refused in the
    /// handshake (mutual TLS).
    Required(PathBuf),
    /// A client certificate is asked for and, when sent, must chain to the CA bundle; clients
    /// may also connect without one (and authenticate otherwise, e.g. with a bearer token).
    Optional(PathBuf),
    /// As [`ClientAuth::Required`], and the certificate must also name one of `names` (a DNS
    /// subject alternative name or its common name; see [`identity`]). Others are refused in
    /// the handshake with `access_denied`.
    RequiredNamed { ca: PathBuf, names: Vec<String> },
}

/// The files a TLS server is configured from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerFiles {
    /// Serving certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// Private key of the serving certificate.
    pub key_file: PathBuf,
    /// Client certificate policy.
    pub client_auth: ClientAuth,
}

impl ServerFiles {
    fn paths(&self) -> Vec<&Path> {
        let mut paths = vec![self.cert_file.as_path(), self.key_file.as_path()];
        if let ClientAuth::Required(ca) | ClientAuth::Optional(ca) | ClientAuth::RequiredNamed { ca, .. } =
            &self.client_auth
        {
            paths.push(ca);
        }
        paths
    }

    /// A TLS acceptor from the files' current contents (see [`server_config`]).
    pub fn acceptor(&self) -> Result<TlsAcceptor, TlsError> {
        let chain = certs(&self.cert_file)?;
        let key = private_key(&self.key_file)?;
        let clients = match &self.client_auth {
            ClientAuth::None => ClientRoots::None,
            ClientAuth::Required(ca) => ClientRoots::Required(roots(ca)?),
            ClientAuth::Optional(ca) => ClientRoots::Optional(roots(ca)?),
            ClientAuth::RequiredNamed { ca, names } => {
                ClientRoots::RequiredNamed { roots: roots(ca)?, names: names.clone() }
            }
        };
        Ok(TlsAcceptor::from(Arc::new(server_config(chain, key, clients)?)))
    }
}

/// [`ClientAuth`] with the CA bundle already loaded.
#[derive(Debug)]
pub enum ClientRoots {
    /// No client certificates are asked for.
    None,
    /// A client certificate chaining to these roots is required.
    Required(RootCertStore),
    /// A client certificate is asked for and, when sent, must chain to these roots.
    Optional(RootCertStore),
    /// As `Required`, and the certificate must also name one of `names`.
    RequiredNamed { roots: RootCertStore, names: Vec<String> },
}

/// A server configuration serving `chain` with `key`: TLS 1.2 and 1.3 with the ring provider
/// (passed explicitly: nothing depends on a process-wide default provider), client certificates
/// as `clients` says, ALPN `h2` then `http/1.1`.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    clients: ClientRoots,
) -> Result<rustls::ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let verifier =
        |roots: RootCertStore| WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
    let builder = match clients {
        ClientRoots::None => builder.with_no_client_auth(),
        ClientRoots::Required(roots) => builder.with_client_cert_verifier(verifier(roots).build()?),
        ClientRoots::RequiredNamed { roots, names } => builder.with_client_cert_verifier(Arc::new(
            identity::NamedClientVerifier::new(verifier(roots).build()?, names),
        )),
        ClientRoots::Optional(roots) => {
            builder.with_client_cert_verifier(verifier(roots).allow_unauthenticated().build()?)
        }
    };
    let mut config = builder.with_single_cert(chain, key)?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// ALPN protocols a server offers, most preferred first.
pub const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// A TLS acceptor kept in step with its files.
pub struct ReloadingAcceptor {
    files: ServerFiles,
    stamps: Vec<Stamp>,
    acceptor: TlsAcceptor,
    name: &'static str,
}

impl std::fmt::Debug for ReloadingAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingAcceptor").field("files", &self.files).field("name", &self.name).finish()
    }
}

impl ReloadingAcceptor {
    /// Loads the files now (failing fast on bad ones). `name` is the server's name in logs.
    pub fn load(files: ServerFiles, name: &'static str) -> Result<Self, TlsError> {
        let stamps = files.paths().into_iter().map(stamp).collect();
        let acceptor = files.acceptor()?;
        Ok(Self { files, stamps, acceptor, name })
    }

    /// The acceptor for the next connection, reloading the files first if any changed.
    pub fn current(&mut self) -> TlsAcceptor {
        let stamps: Vec<Stamp> = self.files.paths().into_iter().map(stamp).collect();
        if stamps != self.stamps {
            // Remembered even when loading fails, so that a broken set of files is reported once
            // and retried when it changes again, not on every connection.
            self.stamps = stamps;
            match self.files.acceptor() {
                Ok(acceptor) => {
                    self.acceptor = acceptor;
                    let cert = self.files.cert_file.display();
                    tracing::info!(%cert, "{}: TLS files reloaded", self.name);
                }
                Err(err) => {
                    tracing::warn!("{}: keeping the previous TLS configuration: {err}", self.name);
                }
            }
        }
        self.acceptor.clone()
    }
}

/// The client certificate chain a connection presented (leaf first; empty when none), put into
/// every request's extensions by [`HttpsServer`].
#[derive(Clone, Debug, Default)]
pub struct PeerCertificates(pub Arc<Vec<CertificateDer<'static>>>);

/// Where a server's TLS configuration comes from.
enum TlsSource {
    /// Files, reloaded when they change.
    Files(ReloadingAcceptor),
    /// A configuration held in memory for the server's life.
    Fixed(TlsAcceptor),
}

impl std::fmt::Debug for TlsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Files(files) => f.debug_tuple("Files").field(files).finish(),
            Self::Fixed(_) => f.write_str("Fixed"),
        }
    }
}

impl TlsSource {
    fn current(&mut self) -> TlsAcceptor {
        match self {
            Self::Files(files) => files.current(),
            Self::Fixed(acceptor) => acceptor.clone(),
        }
    }
}

/// A bound, not yet serving, HTTPS server.
#[derive(Debug)]
pub struct HttpsServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    name: &'static str,
    tls: TlsSource,
    limits: ServerLimits,
    metrics: ConnectionMetrics,
    shutdown_grace: Duration,
}

impl HttpsServer {
    /// Loads the TLS files (failing fast on bad ones) and binds `addr`; the default
    /// [`ServerLimits`] apply until [`HttpsServer::with_limits`].
    pub async fn bind(addr: SocketAddr, files: ServerFiles, name: &'static str) -> Result<Self, TlsError> {
        let tls = TlsSource::Files(ReloadingAcceptor::load(files, name)?);
        let listener = TcpListener::bind(addr).await.map_err(|source| TlsError::Bind { addr, source })?;
        Self::new(listener, tls, name).map_err(|source| TlsError::Bind { addr, source })
    }

    /// A server on an already bound `listener` with a configuration held in memory (see
    /// [`server_config`]); otherwise as [`HttpsServer::bind`].
    pub fn with_config(
        listener: TcpListener,
        config: Arc<rustls::ServerConfig>,
        name: &'static str,
    ) -> std::io::Result<Self> {
        Self::new(listener, TlsSource::Fixed(TlsAcceptor::from(config)), name)
    }

    fn new(listener: TcpListener, tls: TlsSource, name: &'static str) -> std::io::Result<Self> {
        Ok(Self {
            local_addr: listener.local_addr()?,
            listener,
            name,
            tls,
            limits: ServerLimits::default(),
            metrics: ConnectionMetrics::default(),
            shutdown_grace: SHUTDOWN_GRACE,
        })
    }

    /// The same server with other client limits.
    pub fn with_limits(mut self, limits: ServerLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The same server counting its connections in `metrics` (registered by the caller).
    pub fn with_metrics(mut self, metrics: ConnectionMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// The same server giving open connections `grace` (instead of 10 s) to finish their
    /// requests after shutdown is requested; those still open then are closed.
    pub fn with_shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves `app` until `shutdown` completes, then lets open connections finish their requests
    /// (for at most the shutdown grace) and returns. Each request carries [`PeerCertificates`].
    pub async fn serve(self, app: axum::Router, shutdown: impl Future<Output = ()> + Send + 'static) {
        let Self { listener, local_addr, name, mut tls, limits, metrics, shutdown_grace } = self;
        tracing::info!(addr = %local_addr, max_connections = limits.max_connections, "{name} listening (TLS)");
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut connections = JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        let slots = Arc::new(Semaphore::new(limits.max_connections.clamp(1, Semaphore::MAX_PERMITS)));
        let (mut slot, mut warned) = (None, None);
        loop {
            if slot.is_none() {
                slot = slots.clone().try_acquire_owned().ok();
                if slot.is_none() {
                    metrics.cap_reached();
                    if warned.is_none_or(|at: std::time::Instant| at.elapsed() >= CAP_WARNING_PERIOD) {
                        warned = Some(std::time::Instant::now());
                        tracing::warn!(
                            "{name}: {} connections open, the cap (--max-connections); new connections wait \
                             until one closes",
                            limits.max_connections
                        );
                    }
                }
            }
            tokio::select! {
                () = &mut shutdown => break,
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                // At the cap nothing is accepted: new connections wait in the listen backlog.
                freed = slots.clone().acquire_owned(), if slot.is_none() => slot = freed.ok(),
                accepted = listener.accept(), if slot.is_some() => match accepted {
                    Ok((tcp, peer)) => {
                        let Some(slot) = slot.take() else { continue };
                        let acceptor = tls.current();
                        let conn = Conn { name, limits, metrics: metrics.clone(), stop: stop_rx.clone(), slot };
                        connections.spawn(conn.serve(tcp, peer, acceptor, app.clone()));
                    }
                    Err(err) => {
                        tracing::warn!("{name}: accept failed: {err}");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
            }
        }
        drop(listener);
        // Ignoring the send error is right: it only fails when no connection is left to tell.
        let _ = stop_tx.send(true);
        let drained =
            tokio::time::timeout(shutdown_grace, async { while connections.join_next().await.is_some() {} })
                .await;
        if drained.is_err() {
            tracing::warn!("{name}: closing {} connection(s) still open", connections.len());
            connections.abort_all();
        }
        tracing::info!(addr = %local_addr, "{name} stopped");
    }
}
