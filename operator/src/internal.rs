//! The operator's internal metrics service: the mutual-TLS endpoint through which
//! `ebb-metrics-apiserver` asks the operator for metric values. The operator owns every scaler
//! and every connection to a metric source; the metrics-apiserver never talks to a source and
//! only forwards the HPA controller's questions here.
//!
//! # Protocol
//!
//! HTTP/2 (HTTP/1.1 also offered through ALPN) over TLS. Every connection must present a client
//! certificate signed by the configured client CA and naming the metrics API server
//! (`--internal-client-name`, a DNS subject alternative name or the common name); a connection
//! without one, with one from another CA, or with one naming another identity (say, the
//! webhook's, issued by the same CA) is refused during the handshake, before any HTTP is spoken.
//! Wire types are in [`ebb_api::internal`].
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
//! # Bounded work per question
//!
//! Whoever may read external metrics can make the HPA side ask for a value as often as they
//! like, and without `useCachedMetrics` each answer is a live query to the metric source. The
//! service therefore asks the source at most once per metric per [`LIVE_QUERY_MIN_INTERVAL`]:
//! identical questions arriving while one is being answered wait for that answer, and within the
//! interval after it they get the same answer again (marked `cache`). See [`Coalesced`].
//!
//! # Certificates
//!
//! The serving certificate, its key and the client CA bundle are PEM files. Before each new
//! connection their modification times, sizes and inodes are compared with those last loaded;
//! when one changed, all three are read again and the new configuration serves the following
//! handshakes (established connections keep theirs). A set of files that does not load (say, a
//! certificate already replaced whose key is not yet) is logged and the previous configuration
//! stays in use until the files change again. No restart is needed for a rotation.
//!
//! [`start`] (what the program uses) does not need the files to be there at start: with
//! `--manage-certificates` they come from a Secret the operator itself creates, and the
//! kubelet projects it into the pod some time later. While a file is missing, [`start`] waits
//! (checking every second, one log line naming what it waits for) and serves once the files
//! load. Files that exist but do not load (a corrupted Secret the certificate management is
//! about to replace) are waited on too: the problem is logged as a warning each time the
//! files change, and the rest of the operator keeps running. Only a listen address that cannot
//! be bound fails the start.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path as UrlPath, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ebb_api::internal::{self as wire, MetricValue, ValueError};
use ebb_plumbing::tls::{ClientAuth, HttpsServer, ServerFiles};

/// Why the internal metrics service could not start (files named in the message).
pub type InternalError = ebb_plumbing::tls::TlsError;

/// Longest a value query may take before the answer is 504 `Timeout`. Value sources are expected
/// to enforce their own, shorter, live-query timeout; this bounds a source that does not.
pub const VALUE_DEADLINE: Duration = Duration::from_secs(30);

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
    /// Identities a client certificate must name (a DNS subject alternative name or the common
    /// name, see [`ebb_plumbing::tls::identity`]): the metrics API server's. A certificate that
    /// chains to the CA but names something else (another program's) is refused.
    pub client_names: Vec<String>,
}

/// A bound, not yet serving, internal metrics service.
#[derive(Debug)]
pub struct InternalServer {
    server: HttpsServer,
}

impl InternalServer {
    /// Loads the certificate, key and client CA (failing fast on bad files) and binds the address.
    pub async fn bind(cfg: InternalServerConfig) -> Result<Self, InternalError> {
        let files = ServerFiles {
            cert_file: cfg.cert_file,
            key_file: cfg.key_file,
            client_auth: ClientAuth::RequiredNamed { ca: cfg.client_ca_file, names: cfg.client_names },
        };
        Ok(Self { server: HttpsServer::bind(cfg.addr, files, "internal metrics service").await? })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Serves until `shutdown` completes, then lets open connections finish their requests (for
    /// at most a few seconds) and returns.
    pub async fn serve(
        self,
        source: Arc<dyn ValueSource>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), InternalError> {
        self.server.serve(router(source), shutdown).await;
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

/// How often [`start`] looks at missing or unloadable files again.
const FILE_POLL: Duration = Duration::from_secs(1);

/// Starts the service on its own task: binds now when the files load; otherwise waits for them
/// (see the module documentation) and binds then. Fails only when the address cannot be bound
/// at start. The task ends when `shutdown` completes.
pub async fn start(
    cfg: InternalServerConfig,
    source: Arc<dyn ValueSource>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<tokio::task::JoinHandle<()>, InternalError> {
    let first = match InternalServer::bind(cfg.clone()).await {
        Ok(server) => Some(server),
        Err(err @ InternalError::Bind { .. }) => return Err(err),
        Err(err) => {
            report_unloadable(&cfg, &err);
            None
        }
    };
    Ok(tokio::spawn(async move {
        let mut shutdown = Box::pin(shutdown);
        let server = match first {
            Some(server) => server,
            None => {
                let waiting = wait_for_files(cfg);
                tokio::select! {
                    () = &mut shutdown => return,
                    server = waiting => match server {
                        Ok(server) => server,
                        Err(err) => return tracing::error!("internal metrics service failed: {err}"),
                    },
                }
            }
        };
        if let Err(err) = server.serve(source, shutdown).await {
            tracing::error!("internal metrics service failed: {err}");
        }
    }))
}

/// The files of `cfg` that do not exist.
fn missing_files(cfg: &InternalServerConfig) -> Vec<String> {
    [&cfg.cert_file, &cfg.key_file, &cfg.client_ca_file]
        .into_iter()
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect()
}

/// Logs why the files do not load yet.
fn report_unloadable(cfg: &InternalServerConfig, err: &InternalError) {
    let missing = missing_files(cfg);
    if missing.is_empty() {
        tracing::warn!(
            "internal metrics service: the TLS files do not load ({err}); waiting for them to change"
        );
    } else {
        tracing::info!(
            "internal metrics service: waiting for {} (the certificate Secret may not exist yet)",
            missing.join(", ")
        );
    }
}

/// Retries binding every [`FILE_POLL`] until the files load; reports a new problem only when
/// the files changed since the last report.
async fn wait_for_files(cfg: InternalServerConfig) -> Result<InternalServer, InternalError> {
    let stamps = |cfg: &InternalServerConfig| {
        [&cfg.cert_file, &cfg.key_file, &cfg.client_ca_file].map(|p| ebb_plumbing::tls::stamp(p))
    };
    let mut reported = stamps(&cfg);
    loop {
        tokio::time::sleep(FILE_POLL).await;
        let now = stamps(&cfg);
        if now == reported {
            continue;
        }
        match InternalServer::bind(cfg.clone()).await {
            Ok(server) => {
                tracing::info!("internal metrics service: TLS files loaded");
                return Ok(server);
            }
            Err(err @ InternalError::Bind { .. }) => return Err(err),
            Err(err) => {
                report_unloadable(&cfg, &err);
                reported = now;
            }
        }
    }
}

/// The HTTP routes of the service, without TLS (the TLS layer is [`InternalServer`]'s). Value
/// queries go through [`Coalesced`] with [`LIVE_QUERY_MIN_INTERVAL`].
pub fn router(source: Arc<dyn ValueSource>) -> axum::Router {
    let source: Arc<dyn ValueSource> = Arc::new(Coalesced::new(source, LIVE_QUERY_MIN_INTERVAL));
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

mod coalesce;
pub use coalesce::{Coalesced, LIVE_QUERY_MIN_INTERVAL};

#[cfg(test)]
mod tests;
