//! Client of the operator's internal metrics service (protocol: `ebb_api::internal` and the
//! operator's `internal` module): asks for one metric value of one ScaledObject over HTTP/2 and
//! mutual TLS, and turns every answer — including failing to get one — into a
//! [`MetricValue`] or a [`ValueError`].
//!
//! The TLS side is a plain rustls [`ClientConfig`]: built by the caller ([`InternalClient::new`]),
//! from PEM text ([`InternalClient::from_pem`]), or from PEM files ([`InternalClient::from_files`]).
//! A client made from files compares the files' modification times, sizes and inodes before
//! each request and rebuilds its connection pool when they changed, so rotated client
//! certificates and CA bundles take effect without a restart; if the new files do not load, the
//! previous configuration stays in use and the failure is logged.
//!
//! The client certificate is the metrics API server's own (clientAuth only, naming the identity
//! the operator's `--internal-client-name` admits, `ebb-metrics-apiserver` by default); the
//! operator refuses any other certificate of the same CA — say, a serving certificate — with
//! the `access_denied` alert, reported as [`ValueError::Unreachable`] naming it.
//!
//! Failover: the service's URL names a Service that routes to the leading operator replica only,
//! but an HTTP/2 connection made before a leader change stays with the replica it reached. So a
//! client with retries ([`InternalClient::with_retries`]) answering `NotLeader`, or failing to
//! connect or to keep its connection (refused, reset, TLS), drops its connection pool and asks
//! again on a fresh connection after a short pause, all within one request's timeout. A failed
//! health check drops the pool too.
//!
//! [`InternalClient::connect_to`] makes the client connect to another address than the URL's
//! host resolves to, while still verifying the server's certificate for the URL's host name.

use crate::backoff::Backoff;
use crate::tls::{Stamp, stamp};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ebb_api::internal::{self as wire, MetricValue, ValueError};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

/// Why an [`InternalClient`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The base URL is not an `https://` URL.
    #[error("invalid operator URL {url:?}: {message}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// A PEM file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// PEM text could not be decoded.
    #[error("decoding the {what}: {source}")]
    Pem {
        /// Which input (`CA bundle`, `client certificate`, `client key`).
        what: &'static str,
        /// The decoding error.
        source: rustls::pki_types::pem::Error,
    },
    /// The CA bundle or the client certificate holds no certificate.
    #[error("the {0} holds no certificate")]
    NoCertificate(&'static str),
    /// The client key PEM holds no private key.
    #[error("the client key holds no private key")]
    NoPrivateKey,
    /// rustls refused a certificate or the key.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    /// The address to connect to instead of the URL's host is not `HOST:PORT`, or cannot stand
    /// in for the URL's host.
    #[error("invalid connect-to address {value:?}: {message}")]
    InvalidConnectTo {
        /// The address given.
        value: String,
        /// What is wrong with it.
        message: String,
    },
}

/// Client of the operator's internal metrics service. Cheap to share behind an `Arc`; requests
/// may run concurrently and share HTTP/2 connections.
#[derive(Debug)]
pub struct InternalClient {
    /// The service's URL as given (named in messages).
    base: String,
    /// Where requests go: `base`, with the connect-to port when there is one.
    target: String,
    timeout: Duration,
    connect_to: Option<Arc<ConnectTo>>,
    retries: Retries,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    http: reqwest::Client,
    /// The TLS configuration `http` was built with (ALPN set), to build a fresh pool from.
    tls: ClientConfig,
    /// Counts the pools built; a failed request drops its pool only if it is still current.
    generation: u64,
    files: Option<TlsFiles>,
}

/// How often a value query is tried, and the pause before the first retry (doubled for each
/// further one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Retries {
    attempts: u32,
    backoff: Duration,
}

/// The PEM files a client was made from, and what they looked like when last loaded.
#[derive(Debug, Clone)]
struct TlsFiles {
    ca_file: PathBuf,
    cert_file: PathBuf,
    key_file: PathBuf,
    stamps: [Stamp; 3],
}

impl TlsFiles {
    fn current_stamps(&self) -> [Stamp; 3] {
        [stamp(&self.ca_file), stamp(&self.cert_file), stamp(&self.key_file)]
    }

    fn config(&self) -> Result<ClientConfig, ClientError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| ClientError::Read { path: path.to_owned(), source })
        };
        tls_config(&read(&self.ca_file)?, &read(&self.cert_file)?, &read(&self.key_file)?)
    }
}

impl InternalClient {
    /// A client of the service at `base_url` (`https://host:port`) using `tls` as is, except
    /// that ALPN `h2`, `http/1.1` is offered when `tls` sets no ALPN protocol. `timeout` bounds
    /// each request, connecting included.
    pub fn new(base_url: &str, tls: ClientConfig, timeout: Duration) -> Result<Self, ClientError> {
        let base = base_url.trim_end_matches('/').to_owned();
        let url = reqwest::Url::parse(&base)
            .map_err(|err| ClientError::InvalidUrl { url: base_url.to_owned(), message: err.to_string() })?;
        if url.scheme() != "https" || url.host().is_none() {
            return Err(ClientError::InvalidUrl {
                url: base_url.to_owned(),
                message: "expected https://<host>[:<port>]".to_owned(),
            });
        }
        let tls = with_alpn(tls);
        let http = http_client(tls.clone(), timeout, None)?;
        Ok(Self {
            target: base.clone(),
            base,
            timeout,
            connect_to: None,
            retries: Retries { attempts: 1, backoff: Duration::ZERO },
            state: Mutex::new(State { http, tls, generation: 0, files: None }),
        })
    }

    /// This client, trying a value query up to `attempts` times (at least once) within its
    /// timeout: again after `NotLeader` or a failure to connect or to keep the connection, each
    /// time on a fresh connection, after `backoff` (doubled for each further retry).
    pub fn with_retries(mut self, attempts: u32, backoff: Duration) -> Self {
        self.retries = Retries { attempts: attempts.max(1), backoff };
        self
    }

    /// This client, connecting to `addr` (`HOST:PORT`: an IP address and port, or a host name
    /// resolved at each connection, and port) instead of the address the URL's host resolves
    /// to. The server's certificate is still verified for the URL's host name, which must be a
    /// name, not an IP address.
    pub fn connect_to(mut self, addr: &str) -> Result<Self, ClientError> {
        let invalid = |message: &str| ClientError::InvalidConnectTo {
            value: addr.to_owned(),
            message: message.to_owned(),
        };
        let target = ConnectTo::parse(addr).map_err(|m| invalid(&m))?;
        let mut url = reqwest::Url::parse(&self.base).map_err(|e| invalid(&e.to_string()))?;
        if url.domain().is_none() {
            return Err(invalid(&format!(
                "the operator URL {} names an IP address; connecting elsewhere needs a host name to verify",
                self.base
            )));
        }
        // The connector puts the URL's port on every resolved address: requests carry the
        // connect-to port (the host name, and so the certificate check, stay).
        url.set_port(Some(target.port)).map_err(|()| invalid("the URL cannot carry a port"))?;
        self.target = url.as_str().trim_end_matches('/').to_owned();
        let target = Arc::new(target);
        {
            let mut state = self.lock();
            state.http = http_client(state.tls.clone(), self.timeout, Some(target.clone()))?;
            state.generation += 1;
        }
        self.connect_to = Some(target);
        Ok(self)
    }

    /// A client trusting the CA certificates in `ca_pem` and presenting the certificate chain
    /// `cert_pem` with the private key `key_pem`.
    pub fn from_pem(
        base_url: &str,
        ca_pem: &[u8],
        cert_pem: &[u8],
        key_pem: &[u8],
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        Self::new(base_url, tls_config(ca_pem, cert_pem, key_pem)?, timeout)
    }

    /// Like [`InternalClient::from_pem`], reading the PEM files, and reloading them whenever
    /// they change.
    pub fn from_files(
        base_url: &str,
        ca_file: impl Into<PathBuf>,
        cert_file: impl Into<PathBuf>,
        key_file: impl Into<PathBuf>,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let mut files = TlsFiles {
            ca_file: ca_file.into(),
            cert_file: cert_file.into(),
            key_file: key_file.into(),
            stamps: [None, None, None],
        };
        files.stamps = files.current_stamps();
        let client = Self::new(base_url, files.config()?, timeout)?;
        client.lock().files = Some(files);
        Ok(client)
    }

    /// The service's base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The value of `metric` of the ScaledObject `namespace/scaled_object`.
    pub async fn metric_value(
        &self,
        namespace: &str,
        scaled_object: &str,
        metric: &str,
    ) -> Result<MetricValue, ValueError> {
        let Some(path) = wire::metric_path(namespace, scaled_object, metric) else {
            return Err(ValueError::NotFound(format!(
                "no ScaledObject or metric can be named {namespace:?}/{scaled_object:?}/{metric:?}"
            )));
        };
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut backoff = Backoff::new(self.retries.backoff, Duration::MAX);
        let mut attempt = 1;
        loop {
            let (http, generation) = self.http();
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            let result = tokio::time::timeout(remaining, self.value_once(&http, &path, metric))
                .await
                .unwrap_or_else(|_| Err(self.timeout_error()));
            let Err(err @ (ValueError::NotLeader | ValueError::Unreachable(_))) = &result else {
                return result;
            };
            // Another replica may lead by now, or the connection is gone: a fresh one.
            self.reconnect(generation);
            let pause = backoff.next_pause();
            if attempt >= self.retries.attempts
                || pause >= deadline.saturating_duration_since(tokio::time::Instant::now())
            {
                return result;
            }
            tracing::debug!(operator = %self.base, attempt, "asking again on a fresh connection: {err}");
            tokio::time::sleep(pause).await;
            attempt += 1;
        }
    }

    /// One value query on `http`.
    async fn value_once(
        &self,
        http: &reqwest::Client,
        path: &str,
        metric: &str,
    ) -> Result<MetricValue, ValueError> {
        let response = self.get(http, path).await?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|err| self.transport_error(&err))?;
        if status != 200 {
            return Err(ValueError::from_response(status, &body));
        }
        let value: MetricValue = serde_json::from_slice(&body).map_err(|err| ValueError::Unexpected {
            status,
            message: format!("invalid metric value: {err}"),
        })?;
        if value.metric_name != metric {
            return Err(ValueError::Unexpected {
                status,
                message: format!("asked for metric {metric}, got {}", value.metric_name),
            });
        }
        Ok(value)
    }

    /// Checks the link: `GET /healthz` must answer 200 `ok`. Returns the HTTP version the
    /// connection speaks (HTTP/2 unless the server refused it).
    /// A check that fails for want of an answer drops the connection pool: the next one
    /// connects afresh.
    pub async fn check(&self) -> Result<reqwest::Version, ValueError> {
        let (http, generation) = self.http();
        let result = self.check_once(&http).await;
        if let Err(ValueError::Unreachable(_) | ValueError::Timeout(_)) = &result {
            self.reconnect(generation);
        }
        result
    }

    async fn check_once(&self, http: &reqwest::Client) -> Result<reqwest::Version, ValueError> {
        let response = self.get(http, wire::HEALTHZ_PATH).await?;
        let status = response.status().as_u16();
        let version = response.version();
        let body = response.bytes().await.map_err(|err| self.transport_error(&err))?;
        if status != 200 || body.as_ref() != wire::HEALTHZ_BODY.as_bytes() {
            return Err(ValueError::Unexpected {
                status,
                message: format!("health check answered {:?}", String::from_utf8_lossy(&body)),
            });
        }
        Ok(version)
    }

    /// Whether the link to the operator works ([`InternalClient::check`] succeeds).
    pub async fn healthy(&self) -> bool {
        match self.check().await {
            Ok(_) => true,
            Err(err) => {
                tracing::debug!(operator = %self.base, "internal metrics link check failed: {err}");
                false
            }
        }
    }

    async fn get(&self, http: &reqwest::Client, path: &str) -> Result<reqwest::Response, ValueError> {
        http.get(format!("{}{path}", self.target)).send().await.map_err(|err| self.transport_error(&err))
    }

    fn transport_error(&self, err: &reqwest::Error) -> ValueError {
        if err.is_timeout() { self.timeout_error() } else { ValueError::Unreachable(error_chain(err)) }
    }

    fn timeout_error(&self) -> ValueError {
        ValueError::Timeout(format!("no answer from the operator within {:?}", self.timeout))
    }

    /// Drops the connection pool (requests in flight keep their connection) unless it was
    /// rebuilt since `generation` was handed out.
    fn reconnect(&self, generation: u64) {
        let mut state = self.lock();
        if state.generation != generation {
            return;
        }
        match http_client(state.tls.clone(), self.timeout, self.connect_to.clone()) {
            Ok(http) => {
                state.http = http;
                state.generation += 1;
            }
            Err(err) => tracing::warn!(operator = %self.base, "cannot build a fresh connection pool: {err}"),
        }
    }

    /// The HTTP client to use and its generation, rebuilt first if the PEM files it came from
    /// changed.
    fn http(&self) -> (reqwest::Client, u64) {
        let mut state = self.lock();
        let State { http, tls, generation, files } = &mut *state;
        if let Some(files) = files {
            let stamps = files.current_stamps();
            if stamps != files.stamps {
                // Remembered even on failure: a broken set is reported once and retried when
                // the files change again.
                files.stamps = stamps;
                let rebuild = files.config().map(with_alpn).and_then(|new_tls| {
                    let rebuilt = http_client(new_tls.clone(), self.timeout, self.connect_to.clone())?;
                    Ok((new_tls, rebuilt))
                });
                match rebuild {
                    Ok((new_tls, rebuilt)) => {
                        *http = rebuilt;
                        *tls = new_tls;
                        *generation += 1;
                        let cert = files.cert_file.display();
                        tracing::info!(%cert, "internal metrics client: TLS files reloaded");
                    }
                    Err(err) => {
                        tracing::warn!(
                            "internal metrics client: keeping the previous TLS configuration: {err}"
                        );
                    }
                }
            }
        }
        (http.clone(), *generation)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is consistent after any panic (it only swaps whole values), so a poisoned
        // lock is used as is.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// `tls` offering ALPN `h2`, `http/1.1` unless it sets protocols of its own.
fn with_alpn(mut tls: ClientConfig) -> ClientConfig {
    if tls.alpn_protocols.is_empty() {
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    }
    tls
}

fn http_client(
    tls: ClientConfig,
    timeout: Duration,
    connect_to: Option<Arc<ConnectTo>>,
) -> Result<reqwest::Client, ClientError> {
    let mut builder = reqwest::Client::builder().use_preconfigured_tls(tls).timeout(timeout).https_only(true);
    if let Some(target) = connect_to {
        builder = builder.dns_resolver(target);
    }
    Ok(builder.build()?)
}

/// Where to connect instead of the URL's host: every name the client resolves (it only ever
/// asks for the URL's host) resolves to this host's addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ConnectTo {
    host: String,
    port: u16,
}

impl ConnectTo {
    /// `HOST:PORT`, `IPv4:PORT` or `[IPv6]:PORT`, with a port other than 0.
    fn parse(addr: &str) -> Result<Self, String> {
        if let Ok(sa) = addr.parse::<SocketAddr>() {
            if sa.port() == 0 {
                return Err("the port must not be 0".to_owned());
            }
            return Ok(Self { host: sa.ip().to_string(), port: sa.port() });
        }
        let Some((host, port)) = addr.rsplit_once(':') else {
            return Err("expected HOST:PORT".to_owned());
        };
        let port = port.parse::<u16>().ok().filter(|p| *p != 0);
        let Some(port) = port else {
            return Err("expected HOST:PORT with a port from 1 to 65535".to_owned());
        };
        if host.is_empty() || host.contains([':', '/', '[', ']', ' ']) {
            return Err("expected HOST:PORT (an IPv6 address goes in brackets)".to_owned());
        }
        Ok(Self { host: host.to_owned(), port })
    }
}

impl reqwest::dns::Resolve for ConnectTo {
    fn resolve(&self, _name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let (host, port) = (self.host.clone(), self.port);
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port)).await?.collect();
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A rustls client configuration (ring provider, passed explicitly) trusting exactly the CA
/// certificates in `ca_pem` and presenting the chain `cert_pem` with the key `key_pem`. No ALPN
/// protocol is set ([`InternalClient::new`] adds `h2`, `http/1.1`).
pub fn tls_config(ca_pem: &[u8], cert_pem: &[u8], key_pem: &[u8]) -> Result<ClientConfig, ClientError> {
    let mut roots = RootCertStore::empty();
    for cert in pem_certs(ca_pem, "CA bundle")? {
        roots.add(cert)?;
    }
    let chain = pem_certs(cert_pem, "client certificate")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|err| match err {
        rustls::pki_types::pem::Error::NoItemsFound => ClientError::NoPrivateKey,
        source => ClientError::Pem { what: "client key", source },
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?)
}

fn pem_certs(pem: &[u8], what: &'static str) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| ClientError::Pem { what, source })?;
    if certs.is_empty() {
        return Err(ClientError::NoCertificate(what));
    }
    Ok(certs)
}

/// An error and its causes, `: `-separated (reqwest's own message omits the TLS cause).
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_to_addresses_parse() {
        let ok = |s: &str| ConnectTo::parse(s).map(|c| (c.host, c.port));
        assert_eq!(ok("127.0.0.1:9666"), Ok(("127.0.0.1".to_owned(), 9666)));
        assert_eq!(ok("[::1]:443"), Ok(("::1".to_owned(), 443)));
        assert_eq!(ok("operator.local:9666"), Ok(("operator.local".to_owned(), 9666)));
        for bad in ["127.0.0.1", "host:", ":9666", "host:0", "host:70000", "::1:9666", "a b:1", "127.0.0.1:0"]
        {
            assert!(ConnectTo::parse(bad).is_err(), "{bad}");
        }
    }
}
