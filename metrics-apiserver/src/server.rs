//! The running server: [`MetricsApiServer::bind`] loads every certificate and the front-proxy
//! settings and binds both ports (failing fast, with the file or address named), then
//! [`MetricsApiServer::serve`] runs the secure endpoint, the admin server, the operator health
//! check and the settings refresh until shutdown. [`router`] is the secure endpoint's HTTP
//! side: health probes unauthenticated, everything else through [`Authenticator::check`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ebb_plumbing::admin::{AdminServer, Readiness};
use ebb_plumbing::limits::ConnectionMetrics;
use ebb_plumbing::server::Server;
use ebb_plumbing::shutdown::Shutdown;
use ebb_plumbing::task::AbortOnDropHandle;
use ebb_plumbing::tls::{ClientAuth, HttpsServer, PeerCertificates, ServerFiles};

use crate::auth::config::{self, CA_FILE_NAME, Refresh};
use crate::auth::front_proxy::RequestHeaderConfig;
use crate::auth::reviews::{ReviewConfig, Reviews};
use crate::auth::{Attributes, Authenticator};
use crate::discovery::Documents;
use crate::link::{LinkConfig, OperatorLink};
use crate::metrics::Metrics;
use crate::routes::{self, Route};
use crate::status::ApiStatus;
use crate::{Args, NAME, VERSION, selector, values};

/// How many times the front-proxy settings are read at startup before giving up, and the pause
/// between tries.
const STARTUP_TRIES: u32 = 5;
const STARTUP_PAUSE: Duration = Duration::from_secs(1);

/// What request handling needs.
#[derive(Debug)]
pub struct App {
    pub docs: Documents,
    pub auth: Arc<Authenticator>,
    pub link: Arc<OperatorLink>,
    pub readiness: Readiness,
    pub metrics: Metrics,
}

/// The secure endpoint's routes.
pub fn router(app: Arc<App>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(app)
}

async fn handle(State(app): State<Arc<App>>, request: Request) -> Response {
    let started = Instant::now();
    let (parts, _body) = request.into_parts();
    let route = routes::route(parts.uri.path());
    let label = route.label();
    let response = app.answer(route, &parts).await;
    app.metrics.observe(label, response.status().as_u16(), started.elapsed());
    response
}

fn json(body: impl Into<Bytes>) -> Response {
    let mut response = Response::new(Body::from(body.into()));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn text(code: StatusCode, body: String) -> Response {
    (code, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

impl App {
    async fn answer(&self, route: Route, parts: &Parts) -> Response {
        if parts.method != Method::GET && parts.method != Method::HEAD {
            return ApiStatus::method_not_allowed(format!(
                "{} is not supported: this API is read-only (GET)",
                parts.method
            ))
            .into_response();
        }
        match route {
            Route::Livez => return text(StatusCode::OK, "ok".to_owned()),
            Route::Readyz | Route::Healthz => {
                return match self.readiness.check() {
                    Ok(()) => text(StatusCode::OK, "ok".to_owned()),
                    Err(reason) => text(StatusCode::SERVICE_UNAVAILABLE, reason.to_string()),
                };
            }
            _ => {}
        }
        let attrs = Attributes::of(&route, parts.uri.path());
        let peer = parts.extensions.get::<PeerCertificates>();
        if let Err(status) = self.auth.check(peer, &parts.headers, &attrs).await {
            tracing::debug!(path = parts.uri.path(), "refused: {status}");
            return status.into_response();
        }
        match route {
            Route::GroupList => json(self.docs.group_list.clone()),
            Route::Group => json(self.docs.group.clone()),
            Route::ResourceList => json(self.docs.resource_list.clone()),
            Route::OpenApiV2 => json(self.docs.openapi_v2.clone()),
            Route::OpenApiV3Index => json(self.docs.openapi_v3_index.clone()),
            Route::OpenApiV3 => json(self.docs.openapi_v3.clone()),
            Route::Value { namespace, metric } => self.value(&namespace, &metric, parts.uri.query()).await,
            Route::NotFound(message) => ApiStatus::not_found(message).into_response(),
            Route::Livez | Route::Readyz | Route::Healthz => {
                ApiStatus::internal("unreachable").into_response()
            }
        }
    }

    async fn value(&self, namespace: &str, metric: &str, query: Option<&str>) -> Response {
        let selector = selector::label_selector(query);
        let scaled_object = match selector::scaled_object(selector.as_deref()) {
            Ok(name) => name,
            Err(err) => return ApiStatus::bad_request(err.to_string()).into_response(),
        };
        match self.link.value(namespace, &scaled_object, metric).await {
            Ok(value) => json(values::value_list(metric, &scaled_object, &value)),
            Err(status) => {
                tracing::debug!(%namespace, %metric, %scaled_object, "no value: {status}");
                status.into_response()
            }
        }
    }
}

/// A directory for files the server writes (the requestheader CA bundle); removed on drop when
/// the server made it.
#[derive(Debug)]
struct StateDir {
    path: PathBuf,
    remove: bool,
}

impl StateDir {
    fn new(given: Option<PathBuf>) -> anyhow::Result<Self> {
        if let Some(path) = given {
            std::fs::create_dir_all(&path)
                .with_context(|| format!("creating state directory {}", path.display()))?;
            return Ok(Self { path, remove: false });
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        let path = std::env::temp_dir().join(format!("{NAME}-{}-{nanos:x}", std::process::id()));
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&path).with_context(|| format!("creating state directory {}", path.display()))?;
        Ok(Self { path, remove: true })
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        if self.remove {
            // Best effort: a leftover directory in the temp dir is harmless.
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Both ports bound, nothing served yet.
#[derive(Debug)]
pub struct MetricsApiServer {
    admin: AdminServer,
    https: HttpsServer,
    app: Arc<App>,
    refresh: Option<(Refresh, RequestHeaderConfig)>,
    state_dir: Option<StateDir>,
}

impl MetricsApiServer {
    /// Loads certificates and settings and binds both ports. `kube` is needed unless
    /// `--insecure-skip-auth`.
    pub async fn bind(args: &Args, kube: Option<kube::Client>) -> anyhow::Result<Self> {
        let Server { mut registry, readiness, .. } = Server::new(NAME, VERSION);
        let metrics = Metrics::register(&mut registry);
        let connections = ConnectionMetrics::register(&mut registry, "ebb_metrics_apiserver");
        let link_cfg = LinkConfig {
            url: args.operator_url.clone(),
            ca_file: args.operator_ca_file.clone(),
            cert_file: args.operator_cert_file.clone(),
            key_file: args.operator_key_file.clone(),
            timeout: args.operator_timeout,
            check_interval: args.operator_check_interval,
            value_cache_ttl: args.value_cache_ttl,
            connect_to: args.operator_connect_to.clone(),
        };
        let mut link = OperatorLink::new(&link_cfg, readiness.clone(), metrics.clone())
            .context("the client of the operator's internal metrics service")?;
        if args.operator_shards > 1 {
            let client = kube.clone().context("--operator-shards above 1 needs a Kubernetes client")?;
            let cfg = crate::shards::RouterConfig {
                shards: args.operator_shards,
                lease_namespace: args.operator_lease_namespace.clone(),
                lease_name: args.operator_lease_name.clone(),
                url: args.operator_url.clone(),
                ca_file: args.operator_ca_file.clone(),
                cert_file: args.operator_cert_file.clone(),
                key_file: args.operator_key_file.clone(),
                timeout: args.operator_timeout,
                backoff: crate::link::RETRY_BACKOFF,
            };
            link = link.with_router(Arc::new(crate::shards::ShardRouter::new(client, cfg)));
        }
        let mut refresh = None;
        let mut state_dir = None;
        let (auth, client_auth) = if args.insecure_skip_auth {
            tracing::warn!(
                secure_addr = %args.secure_addr,
                "AUTHENTICATION AND AUTHORIZATION ARE OFF (--insecure-skip-auth): anyone who reaches the \
                 secure port reads every metric value. For local use only; never run this in a cluster."
            );
            (Authenticator::disabled(), ClientAuth::None)
        } else {
            let client = kube
                .context("a Kubernetes client is needed to check callers (or pass --insecure-skip-auth)")?;
            let reviews = Reviews::new(
                client.clone(),
                ReviewConfig {
                    ttl: args.auth_cache_ttl,
                    capacity: args.auth_cache_size,
                    timeout: args.auth_review_timeout,
                    negative_ttl: args.auth_negative_cache_ttl,
                    negative_capacity: args.auth_negative_cache_size,
                    token_rate: args.token_review_rate,
                    token_burst: args.token_review_burst,
                    token_concurrency: args.token_review_concurrency,
                },
                metrics.clone(),
            );
            let auth = Authenticator::delegated(reviews);
            let settings = startup_settings(&client, args.auth_review_timeout).await?;
            let has_ca = auth.set_request_header(settings.clone()).map_err(anyhow::Error::msg)?;
            let (client_auth, ca_file) = match (&settings.ca_pem, has_ca) {
                (Some(pem), true) => {
                    let dir = StateDir::new(args.state_dir.clone())?;
                    let path = dir.path.join(CA_FILE_NAME);
                    config::write_atomically(&path, pem.as_bytes())
                        .with_context(|| format!("writing {}", path.display()))?;
                    state_dir = Some(dir);
                    (ClientAuth::Optional(path.clone()), Some(path))
                }
                _ => {
                    tracing::warn!(
                        "{}/{} has no requestheader-client-ca-file: the aggregator cannot authenticate; only \
                         bearer tokens are accepted",
                        config::NAMESPACE,
                        config::NAME
                    );
                    (ClientAuth::None, None)
                }
            };
            refresh = Some((
                Refresh {
                    client,
                    period: args.auth_config_refresh,
                    timeout: args.auth_review_timeout,
                    ca_file,
                },
                settings,
            ));
            (auth, client_auth)
        };
        let admin = AdminServer::bind(args.common.admin_addr, Arc::new(registry), readiness.clone()).await?;
        let files = ServerFiles {
            cert_file: args.tls_cert_file.clone(),
            key_file: args.tls_key_file.clone(),
            client_auth,
        };
        let https = HttpsServer::bind(args.secure_addr, files, "metrics API server")
            .await?
            .with_limits(args.serving.limits())
            .with_metrics(connections);
        let app = Arc::new(App {
            docs: Documents::new(VERSION),
            auth: Arc::new(auth),
            link: Arc::new(link),
            readiness,
            metrics,
        });
        Ok(Self { admin, https, app, refresh, state_dir })
    }

    /// Address of the secure (TLS) endpoint.
    pub fn secure_addr(&self) -> SocketAddr {
        self.https.local_addr()
    }

    /// Address of the admin server.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.local_addr()
    }

    /// Serves until `shutdown`, then lets open requests finish and returns.
    pub async fn serve(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let Self { admin, https, app, refresh, state_dir } = self;
        let mut tasks =
            vec![AbortOnDropHandle::new(tokio::spawn(app.link.clone().watch_health(shutdown.wait())))];
        if let Some(router) = app.link.router() {
            tasks.push(AbortOnDropHandle::new(tokio::spawn(
                router.run(Duration::from_secs(1), shutdown.wait()),
            )));
        }
        if let Some((cfg, current)) = refresh {
            tasks.push(AbortOnDropHandle::new(tokio::spawn(config::refresh(
                app.auth.clone(),
                cfg,
                current,
                shutdown.wait(),
            ))));
        }
        tracing::info!(
            operator = app.link.url(),
            auth = app.auth.enabled(),
            "serving external.metrics.k8s.io/v1beta1"
        );
        let secure = https.serve(router(app), shutdown.wait());
        let (admin, ()) = tokio::join!(admin.serve(shutdown.wait()), secure);
        drop(tasks);
        drop(state_dir);
        admin?;
        tracing::info!("{NAME} stopped");
        Ok(())
    }
}

/// The front-proxy settings at startup, retried a few times (the API server may still be
/// coming up).
async fn startup_settings(client: &kube::Client, timeout: Duration) -> anyhow::Result<RequestHeaderConfig> {
    let mut tries = 0;
    loop {
        tries += 1;
        match config::fetch(client, timeout).await {
            Ok(settings) => return Ok(settings),
            Err(err) if tries >= STARTUP_TRIES => anyhow::bail!("{err}"),
            Err(err) => {
                tracing::warn!("front-proxy settings (try {tries} of {STARTUP_TRIES}): {err}");
                tokio::time::sleep(STARTUP_PAUSE).await;
            }
        }
    }
}
