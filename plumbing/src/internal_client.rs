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

use crate::tls::{Stamp, stamp};
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
}

/// Client of the operator's internal metrics service. Cheap to share behind an `Arc`; requests
/// may run concurrently and share HTTP/2 connections.
#[derive(Debug)]
pub struct InternalClient {
    base: String,
    timeout: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    http: reqwest::Client,
    files: Option<TlsFiles>,
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
        let http = http_client(tls, timeout)?;
        Ok(Self { base, timeout, state: Mutex::new(State { http, files: None }) })
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
        let response = self.get(&path).await?;
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
    pub async fn check(&self) -> Result<reqwest::Version, ValueError> {
        let response = self.get(wire::HEALTHZ_PATH).await?;
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

    async fn get(&self, path: &str) -> Result<reqwest::Response, ValueError> {
        let http = self.http();
        http.get(format!("{}{path}", self.base)).send().await.map_err(|err| self.transport_error(&err))
    }

    fn transport_error(&self, err: &reqwest::Error) -> ValueError {
        if err.is_timeout() {
            ValueError::Timeout(format!("no answer from the operator within {:?}", self.timeout))
        } else {
            ValueError::Unreachable(error_chain(err))
        }
    }

    /// The HTTP client to use, rebuilt first if the PEM files it came from changed.
    fn http(&self) -> reqwest::Client {
        let mut state = self.lock();
        let State { http, files } = &mut *state;
        if let Some(files) = files {
            let stamps = files.current_stamps();
            if stamps != files.stamps {
                // Remembered even on failure: a broken set is reported once and retried when
                // the files change again.
                files.stamps = stamps;
                match files.config().and_then(|tls| http_client(tls, self.timeout)) {
                    Ok(rebuilt) => {
                        *http = rebuilt;
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
        http.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is consistent after any panic (it only swaps whole values), so a poisoned
        // lock is used as is.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn http_client(mut tls: ClientConfig, timeout: Duration) -> Result<reqwest::Client, ClientError> {
    if tls.alpn_protocols.is_empty() {
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    }
    Ok(reqwest::Client::builder().use_preconfigured_tls(tls).timeout(timeout).https_only(true).build()?)
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
