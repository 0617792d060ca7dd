//! The link to the operator against a stand-in speaking the internal protocol over mutual TLS
//! (counting the queries it answers): live answers are asked for every time, answers from the
//! operator's cache are reused for the TTL, identical requests in flight share one query, the
//! operator's refusals become the right Status, and a stopped operator turns the link down and
//! every request into an immediate 503.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ebb_api::internal::{self as wire, MetricValue, ValueError, ValueOrigin};
use ebb_metrics_apiserver::link::{LinkConfig, LinkState, OperatorLink};
use ebb_metrics_apiserver::metrics::Metrics;
use ebb_plumbing::admin::Readiness;
use ebb_plumbing::tls::{ClientAuth, HttpsServer, ServerFiles};
use ebb_sandbox::pki::CertAuthority;

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Answers by metric name: `live-*` and `cache-*` with 3 (after 300 ms for `*-slow`),
/// `missing` with NotFound, `follower` with NotLeader.
async fn answer(
    State(count): State<Arc<AtomicUsize>>,
    UrlPath((ns, name, metric)): UrlPath<(String, String, String)>,
) -> Response {
    count.fetch_add(1, Ordering::SeqCst);
    if metric.ends_with("-slow") {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let error =
        |err: ValueError| (StatusCode::from_u16(err.status()).unwrap(), Json(err.to_body())).into_response();
    match metric.as_str() {
        "missing" => error(ValueError::unknown_metric(&ns, &name, &metric, &["live-a"])),
        "follower" => error(ValueError::NotLeader),
        m => {
            let source = if m.starts_with("cache-") { ValueOrigin::Cache } else { ValueOrigin::Live };
            Json(MetricValue { metric_name: metric, value: 3.0, timestamp: chrono::Utc::now(), source })
                .into_response()
        }
    }
}

struct Operator {
    count: Arc<AtomicUsize>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

async fn start_operator(dir: &Dir, port: u16) -> Operator {
    let files = ServerFiles {
        cert_file: dir.0.join("operator.crt"),
        key_file: dir.0.join("operator.key"),
        client_auth: ClientAuth::Required(dir.0.join("ca.crt")),
    };
    let server = HttpsServer::bind(([127, 0, 0, 1], port).into(), files, "operator stand-in").await.unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new()
        .route(wire::METRIC_ROUTE, get(answer))
        .route(wire::HEALTHZ_PATH, get(|| async { wire::HEALTHZ_BODY }))
        .with_state(count.clone());
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(server.serve(app, async move {
        let _ = stopped.wait_for(|s| *s).await;
    }));
    Operator { count, stop, task }
}

fn pki(tag: &str) -> Dir {
    let dir = Dir(std::env::temp_dir().join(format!("ebb-mas-link-{tag}-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let ca = CertAuthority::new("link-ca").unwrap();
    let server = ca.issue_server(&["localhost"], &[[127, 0, 0, 1].into()]).unwrap();
    let client = ca.issue_client("ebb-metrics-apiserver", &[]).unwrap();
    for (name, text) in [
        ("ca.crt", ca.cert_pem()),
        ("operator.crt", &server.cert_pem),
        ("operator.key", &server.key_pem),
        ("client.crt", &client.cert_pem),
        ("client.key", &client.key_pem),
    ] {
        std::fs::write(dir.0.join(name), text).unwrap();
    }
    dir
}

async fn wait_state(link: &OperatorLink, up: bool) -> Duration {
    let started = Instant::now();
    while (link.state() == LinkState::Up) != up {
        assert!(started.elapsed() < Duration::from_secs(5), "link state stuck at {:?}", link.state());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_are_shared_cached_answers_reused_and_outages_answered_at_once() {
    let dir = pki("main");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let operator = start_operator(&dir, port).await;
    let cfg = LinkConfig {
        url: format!("https://127.0.0.1:{port}"),
        ca_file: dir.0.join("ca.crt"),
        cert_file: dir.0.join("client.crt"),
        key_file: dir.0.join("client.key"),
        timeout: Duration::from_secs(5),
        check_interval: Duration::from_millis(100),
        value_cache_ttl: Duration::from_millis(400),
        connect_to: None,
    };
    let readiness = Readiness::default();
    let link = Arc::new(OperatorLink::new(&cfg, readiness.clone(), Metrics::unregistered()).unwrap());
    assert!(!readiness.is_ready());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let health = tokio::spawn(link.clone().watch_health(async {
        let _ = stopped.await;
    }));
    wait_state(&link, true).await;
    assert!(readiness.is_ready());
    let asked = || operator.count.load(Ordering::SeqCst);

    // Live answers: asked every time.
    for i in 1..=3 {
        let value = link.value("default", "web", "live-a").await.unwrap();
        assert_eq!((value.value, value.source), (3.0, ValueOrigin::Live));
        assert_eq!(asked(), i);
    }
    // Cache-origin answers: reused for the TTL, then asked again.
    link.value("default", "web", "cache-a").await.unwrap();
    assert_eq!(asked(), 4);
    link.value("default", "web", "cache-a").await.unwrap();
    link.value("default", "web", "cache-a").await.unwrap();
    assert_eq!(asked(), 4, "reused within the TTL");
    link.value("default", "other", "cache-a").await.unwrap();
    assert_eq!(asked(), 5, "another ScaledObject is another answer");
    tokio::time::sleep(Duration::from_millis(450)).await;
    link.value("default", "web", "cache-a").await.unwrap();
    assert_eq!(asked(), 6, "asked again after the TTL");

    // Identical requests in flight share one query; different ones do not.
    let before = asked();
    let burst: Vec<_> = (0..20)
        .map(|i| {
            let link = link.clone();
            let metric = if i % 2 == 0 { "live-slow" } else { "live-b-slow" };
            tokio::spawn(async move { link.value("default", "web", metric).await })
        })
        .collect();
    for request in burst {
        assert_eq!(request.await.unwrap().unwrap().value, 3.0);
    }
    assert_eq!(asked() - before, 2, "20 requests for 2 metrics in flight together: 2 queries");

    // The operator's refusals.
    let err = link.value("default", "web", "missing").await.unwrap_err();
    assert_eq!(err.code, 404);
    assert!(err.message.contains("has no metric missing; it has: live-a"), "{err}");
    let err = link.value("default", "web", "follower").await.unwrap_err();
    assert_eq!(err.code, 503);
    assert!(err.message.contains("is not the leader"), "{err}");

    // The operator stops: the link goes down within a few periods, requests fail at once, and
    // readiness says why.
    operator.stop.send_replace(true);
    operator.task.await.unwrap();
    let down = wait_state(&link, false).await;
    assert!(down < Duration::from_secs(1), "{down:?}");
    let reason = readiness.check().unwrap_err();
    assert!(reason.contains(&cfg.url), "{reason}");
    let started = Instant::now();
    let err = link.value("default", "web", "cache-a").await.unwrap_err();
    assert_eq!(err.code, 503);
    assert!(started.elapsed() < Duration::from_millis(50), "{:?}", started.elapsed());
    assert!(err.message.contains("is unreachable"), "{err}");

    // Back on the same port: up again, values again.
    let operator = start_operator(&dir, port).await;
    let up = wait_state(&link, true).await;
    assert!(up < Duration::from_secs(1), "{up:?}");
    link.value("default", "web", "live-a").await.unwrap();
    assert_eq!(operator.count.load(Ordering::SeqCst), 1);

    stop.send(()).unwrap();
    health.await.unwrap();
    operator.stop.send_replace(true);
    operator.task.await.unwrap();
}
