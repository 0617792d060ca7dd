//! `ebb-metrics-apiserver`: the `v1beta1.external.metrics.k8s.io` APIService answering HPA
//! queries with values from the operator. This module owns the program's flags ([`Args`]) and
//! its lifecycle ([`run`]: logging, signals, the Kubernetes client, then [`MetricsApiServer`]).
//!
//! - [`server`]: binding, serving and request handling of the secure endpoint
//! - [`routes`], [`discovery`], [`selector`], [`values`], [`status`]: what each request asks
//!   for and what it gets (pure)
//! - [`auth`]: front-proxy certificates, TokenReview, SubjectAccessReview
//! - [`link`]: the mutual-TLS link to the operator, its health and readiness
//! - [`shards`]: with a sharded operator, which replica holds the object's shard
//! - [`metrics`]: the Prometheus series on the admin port

pub mod auth;
pub mod cache;
pub mod discovery;
pub mod link;
pub mod metrics;
pub mod routes;
pub mod selector;
pub mod server;
pub mod shards;
pub mod status;
pub mod values;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ebb_plumbing::args::{CommonArgs, ServingArgs};
use ebb_plumbing::shutdown::Shutdown;

pub use server::MetricsApiServer;

/// Program name, used in logs and as the `name` label of `keda_build_info`.
pub const NAME: &str = "ebb-metrics-apiserver";

/// Program version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Command-line flags; each can also be set through the environment variable named in
/// `--help`.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = NAME, version, about = "ebb metrics API server: serves external.metrics.k8s.io to the HPA controller with values from the operator")]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,

    #[command(flatten)]
    pub serving: ServingArgs,

    /// Address of the TLS endpoint serving external.metrics.k8s.io/v1beta1.
    #[arg(long, env = "EBB_SECURE_ADDR", default_value = "0.0.0.0:6443")]
    pub secure_addr: SocketAddr,

    /// Serving certificate chain (PEM), reloaded when the file changes.
    #[arg(long, env = "EBB_TLS_CERT_FILE", default_value = "/certs/tls.crt")]
    pub tls_cert_file: PathBuf,

    /// Private key of the serving certificate (PEM), reloaded with it.
    #[arg(long, env = "EBB_TLS_KEY_FILE", default_value = "/certs/tls.key")]
    pub tls_key_file: PathBuf,

    /// URL of the operator's internal metrics service.
    #[arg(long, env = "EBB_OPERATOR_URL", default_value = "https://ebb-operator.keda.svc:9666")]
    pub operator_url: String,

    /// Connect to this HOST:PORT instead of the address --operator-url's host resolves to; the
    /// operator's certificate is still verified for the URL's host name (e.g. where Service
    /// names do not resolve).
    #[arg(long, env = "EBB_OPERATOR_CONNECT_TO")]
    pub operator_connect_to: Option<String>,

    /// Number of shards of the operator (its `--shards`). Above 1, each value query goes to the
    /// replica holding the object's shard Lease, at the address annotated there, instead of
    /// --operator-url's address (whose host name certificates are still verified for).
    #[arg(long, env = "EBB_OPERATOR_SHARDS", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub operator_shards: u32,

    /// Namespace of the operator's shard Leases (with --operator-shards above 1).
    #[arg(long, env = "EBB_OPERATOR_LEASE_NAMESPACE", default_value = "keda")]
    pub operator_lease_namespace: String,

    /// The operator's --lease-name (its shard Leases are `<name>-shard-<k>`).
    #[arg(long, env = "EBB_OPERATOR_LEASE_NAME", default_value = "ebb-operator")]
    pub operator_lease_name: String,

    /// CA bundle the operator's serving certificate must chain to.
    #[arg(long, env = "EBB_OPERATOR_CA_FILE", default_value = "/certs/ca.crt")]
    pub operator_ca_file: PathBuf,

    /// Client certificate presented to the operator.
    #[arg(long, env = "EBB_OPERATOR_CERT_FILE", default_value = "/client-certs/tls.crt")]
    pub operator_cert_file: PathBuf,

    /// Key of the client certificate presented to the operator.
    #[arg(long, env = "EBB_OPERATOR_KEY_FILE", default_value = "/client-certs/tls.key")]
    pub operator_key_file: PathBuf,

    /// Bound on one value query to the operator.
    #[arg(long, env = "EBB_OPERATOR_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub operator_timeout: Duration,

    /// Period of the operator health check that drives readiness.
    #[arg(long, env = "EBB_OPERATOR_CHECK_INTERVAL", default_value = "250ms", value_parser = humantime::parse_duration)]
    pub operator_check_interval: Duration,

    /// How long an answer the operator gave from its scale-loop cache (useCachedMetrics) is
    /// reused; live answers never are. 0s turns reuse off.
    #[arg(long, env = "EBB_VALUE_CACHE_TTL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub value_cache_ttl: Duration,

    /// Let every request through without authentication or authorization. Local use only.
    #[arg(long, env = "EBB_INSECURE_SKIP_AUTH", default_value_t = false)]
    pub insecure_skip_auth: bool,

    /// How long TokenReview and SubjectAccessReview answers are reused.
    #[arg(long, env = "EBB_AUTH_CACHE_TTL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub auth_cache_ttl: Duration,

    /// Answers kept at most per kind of review.
    #[arg(long, env = "EBB_AUTH_CACHE_SIZE", default_value_t = 4096)]
    pub auth_cache_size: usize,

    /// How long a bearer token a TokenReview rejected is refused without asking again.
    #[arg(long, env = "EBB_AUTH_NEGATIVE_CACHE_TTL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub auth_negative_cache_ttl: Duration,

    /// Rejected tokens remembered at most (kept apart from accepted ones, so a flood of bad
    /// tokens cannot push good ones out).
    #[arg(long, env = "EBB_AUTH_NEGATIVE_CACHE_SIZE", default_value_t = 4096)]
    pub auth_negative_cache_size: usize,

    /// TokenReviews per second (sustained) for bearer tokens no cache knows; beyond it such
    /// requests are answered 429 with Retry-After, without a review.
    #[arg(long, env = "EBB_TOKEN_REVIEW_RATE", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub token_review_rate: u32,

    /// TokenReviews that may be sent at once above the sustained rate (the token bucket's size).
    #[arg(long, env = "EBB_TOKEN_REVIEW_BURST", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub token_review_burst: u32,

    /// TokenReviews in flight at most; beyond it requests with an unknown token get 429.
    #[arg(long, env = "EBB_TOKEN_REVIEW_CONCURRENCY", default_value_t = 4,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub token_review_concurrency: usize,

    /// Bound on one TokenReview, SubjectAccessReview or ConfigMap read.
    #[arg(long, env = "EBB_AUTH_REVIEW_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub auth_review_timeout: Duration,

    /// Period of re-reading kube-system/extension-apiserver-authentication.
    #[arg(long, env = "EBB_AUTH_CONFIG_REFRESH", default_value = "10s", value_parser = humantime::parse_duration)]
    pub auth_config_refresh: Duration,

    /// Directory for the requestheader CA file the TLS endpoint reads (default: a fresh
    /// private directory under the system temp dir, removed at exit).
    #[arg(long, env = "EBB_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
}

/// Sets up logging and signal handling, then runs until SIGTERM or SIGINT.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let shutdown = ebb_plumbing::server::start(&args.common)?;
    let client = if args.insecure_skip_auth && args.operator_shards <= 1 {
        None
    } else {
        Some(kube::Client::try_default().await.map_err(|e| {
            anyhow::anyhow!("cannot build a Kubernetes client (KUBECONFIG or in-cluster): {e}")
        })?)
    };
    serve(args, client, shutdown).await
}

/// Runs the program until `shutdown` is requested; logging must already be set up. `client` is
/// needed unless `--insecure-skip-auth`.
pub async fn serve(args: Args, client: Option<kube::Client>, shutdown: Shutdown) -> anyhow::Result<()> {
    MetricsApiServer::bind(&args, client).await?.serve(shutdown).await
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[test]
    fn flags_are_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn common_flags_parse() {
        // --admin-addr 127.0.0.1:18080, --log-format json and --log-level debug reach args.common.
        ebb_plumbing::testing::check_server_flags::<Args>(NAME, &[], |args| &args.common);
    }

    #[test]
    fn defaults() {
        let args = Args::try_parse_from([NAME]).unwrap();
        assert_eq!(args.secure_addr, "0.0.0.0:6443".parse::<SocketAddr>().unwrap());
        assert_eq!(args.operator_url, "https://ebb-operator.keda.svc:9666");
        assert_eq!(args.operator_connect_to, None);
        let shards =
            (args.operator_shards, args.operator_lease_namespace.as_str(), args.operator_lease_name.as_str());
        assert_eq!(shards, (1, "keda", "ebb-operator"), "one shard: the Service path, as before");
        assert_eq!(args.operator_check_interval, Duration::from_millis(250));
        assert_eq!(args.auth_cache_ttl, Duration::from_secs(10));
        assert_eq!(args.value_cache_ttl, Duration::from_secs(1));
        assert!(!args.insecure_skip_auth);
        assert_eq!(args.tls_cert_file, PathBuf::from("/certs/tls.crt"));
        assert_eq!(args.serving.limits(), ebb_plumbing::limits::ServerLimits::default());
        let reviews = (
            args.auth_negative_cache_ttl,
            args.auth_negative_cache_size,
            args.token_review_rate,
            args.token_review_burst,
            args.token_review_concurrency,
        );
        assert_eq!(reviews, (Duration::from_secs(5), 4096, 10, 20, 4));
    }

    #[test]
    fn flags_parse() {
        let args = Args::try_parse_from([
            NAME,
            "--secure-addr",
            "127.0.0.1:7443",
            "--operator-url",
            "https://127.0.0.1:9666",
            "--operator-connect-to",
            "127.0.0.1:19666",
            "--operator-timeout",
            "2s",
            "--operator-check-interval",
            "100ms",
            "--insecure-skip-auth",
            "--auth-cache-ttl",
            "1s",
            "--auth-cache-size",
            "16",
        ])
        .unwrap();
        assert_eq!(args.secure_addr, "127.0.0.1:7443".parse::<SocketAddr>().unwrap());
        assert_eq!(args.operator_timeout, Duration::from_secs(2));
        assert_eq!(args.operator_connect_to.as_deref(), Some("127.0.0.1:19666"));
        assert_eq!(args.operator_check_interval, Duration::from_millis(100));
        assert!(args.insecure_skip_auth);
        assert_eq!(args.auth_cache_ttl, Duration::from_secs(1));
        assert_eq!(args.auth_cache_size, 16);
        assert!(Args::try_parse_from([NAME, "--secure-addr", "nowhere"]).is_err());
        assert!(Args::try_parse_from([NAME, "--operator-timeout", "soon"]).is_err());
        let args = Args::try_parse_from([
            NAME,
            "--max-connections=8",
            "--header-read-timeout=1s",
            "--token-review-rate=2",
            "--token-review-burst=3",
            "--token-review-concurrency=1",
            "--auth-negative-cache-ttl=1s",
        ])
        .unwrap();
        assert_eq!(args.serving.max_connections, 8);
        assert_eq!(args.serving.header_read_timeout, Duration::from_secs(1));
        assert_eq!(
            (args.token_review_rate, args.token_review_burst, args.token_review_concurrency),
            (2, 3, 1)
        );
        assert_eq!(args.auth_negative_cache_ttl, Duration::from_secs(1));
        for zero in ["--token-review-rate=0", "--token-review-burst=0", "--token-review-concurrency=0"] {
            assert!(Args::try_parse_from([NAME, zero]).is_err(), "{zero}");
        }
    }
}
