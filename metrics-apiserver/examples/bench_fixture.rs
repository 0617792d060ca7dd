//! Fixture of the metrics-apiserver benchmark (`bench/metrics-apiserver/run.sh`): writes
//! certificates into the directory given as the only argument, starts a local control plane
//! (TokenReview, SubjectAccessReview and kube-system/extension-apiserver-authentication for the
//! server's delegated authentication; kubeconfig in `<dir>/kubeconfig`, bearer token of user
//! `bench` in `<dir>/token`), and a stand-in for the operator's internal metrics service
//! speaking its protocol over mutual TLS (port in `<dir>/operator-port`) that answers every
//! metric with the value 3 from its cache, as the operator answers `useCachedMetrics` triggers.
//! Prints `ready` once everything listens, then runs until SIGTERM/SIGINT.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use axum::Json;
use axum::extract::Path as UrlPath;
use axum::routing::get;
use ebb_api::internal::{self as wire, MetricValue, ValueOrigin};
use ebb_plumbing::tls::{ClientAuth, HttpsServer, ServerFiles};
use ebb_sandbox::pki::CertAuthority;
use ebb_sandbox::sandbox::{Config, Sandbox};

const TOKEN: &str = "bench-token-0123456789abcdef";

fn write(dir: &Path, name: &str, text: &str) -> anyhow::Result<()> {
    std::fs::write(dir.join(name), text).with_context(|| format!("writing {}", dir.join(name).display()))
}

async fn value(UrlPath((_ns, _name, metric)): UrlPath<(String, String, String)>) -> Json<MetricValue> {
    Json(MetricValue {
        metric_name: metric,
        value: 3.0,
        timestamp: chrono::Utc::now(),
        source: ValueOrigin::Cache,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = PathBuf::from(std::env::args().nth(1).context("usage: bench_fixture <directory>")?);
    std::fs::create_dir_all(&dir)?;

    let sb = Sandbox::start(Config { controllers: false, ..Default::default() }).await?;
    sb.add_user(TOKEN, "bench", &["system:authenticated"]);
    ebb_sandbox::kubeconfig::write_kubeconfig(&dir.join("kubeconfig"), &sb.kubeconfig())?;
    write(&dir, "token", TOKEN)?;

    let ca = CertAuthority::new("bench-ca")?;
    let localhost = [std::net::IpAddr::from([127, 0, 0, 1])];
    let serving = ca.issue_server(&["localhost"], &localhost)?;
    let operator = ca.issue_server(&["localhost"], &localhost)?;
    let client = ca.issue_client("ebb-metrics-apiserver", &[])?;
    write(&dir, "ca.crt", ca.cert_pem())?;
    write(&dir, "tls.crt", &serving.cert_pem)?;
    write(&dir, "tls.key", &serving.key_pem)?;
    write(&dir, "operator.crt", &operator.cert_pem)?;
    write(&dir, "operator.key", &operator.key_pem)?;
    write(&dir, "client.crt", &client.cert_pem)?;
    write(&dir, "client.key", &client.key_pem)?;

    let files = ServerFiles {
        cert_file: dir.join("operator.crt"),
        key_file: dir.join("operator.key"),
        client_auth: ClientAuth::Required(dir.join("ca.crt")),
    };
    let server = HttpsServer::bind("127.0.0.1:0".parse()?, files, "fake operator").await?;
    write(&dir, "operator-port", &server.local_addr().port().to_string())?;
    let app = axum::Router::new()
        .route(wire::METRIC_ROUTE, get(value))
        .route(wire::HEALTHZ_PATH, get(|| async { wire::HEALTHZ_BODY }));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stop = Arc::new(stop_tx);
    let serving = tokio::spawn(server.serve(app, async move {
        let mut rx = stop_rx;
        let _ = rx.wait_for(|s| *s).await;
    }));
    println!("ready");

    ebb_plumbing::shutdown::signal()?.await;
    stop.send_replace(true);
    let _ = serving.await;
    sb.stop().await;
    Ok(())
}
