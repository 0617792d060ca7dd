//! The link to the operator across leader changes and with `--operator-connect-to`, against
//! operator stand-ins speaking the internal protocol over mutual TLS behind a TCP proxy that
//! plays the leader-only Service: a new connection goes to the proxy's current upstream, an
//! established one stays with the upstream it reached (as connections through a Service do).
//!
//! - A connection made to the former leader (which now answers NotLeader) is dropped and the
//!   query asked again on a fresh connection, which reaches the new leader.
//! - A leader that is gone (connections cut, new ones refused for a while) is retried on fresh
//!   connections within the query's timeout; past the retries the answer is 503 at once.
//! - `--operator-connect-to`: the URL's host (`ebb-operator.keda.svc`) does not resolve; the
//!   link connects to the given address and verifies the certificate for the URL's host name,
//!   in process and through the built binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
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
use ebb_plumbing::testing::ServerProcess;
use ebb_plumbing::tls::{ClientAuth, HttpsServer, ServerFiles};
use ebb_sandbox::pki::CertAuthority;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const SERVICE_HOST: &str = "ebb-operator.keda.svc";

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A CA, an operator certificate for localhost, 127.0.0.1 and [`SERVICE_HOST`], and a client
/// certificate.
fn pki(tag: &str) -> Dir {
    let dir = Dir(std::env::temp_dir().join(format!("ebb-mas-failover-{tag}-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let ca = CertAuthority::new("failover-ca").unwrap();
    let server = ca.issue_server(&["localhost", SERVICE_HOST], &[[127, 0, 0, 1].into()]).unwrap();
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

/// An operator replica stand-in: answers values (3) while `leading`, NotLeader otherwise.
#[derive(Default)]
struct Replica {
    leading: AtomicBool,
    values: AtomicUsize,
    not_leader: AtomicUsize,
}

async fn answer(
    State(replica): State<Arc<Replica>>,
    UrlPath((_ns, _name, metric)): UrlPath<(String, String, String)>,
) -> Response {
    if !replica.leading.load(Ordering::SeqCst) {
        replica.not_leader.fetch_add(1, Ordering::SeqCst);
        let err = ValueError::NotLeader;
        return (StatusCode::from_u16(err.status()).unwrap(), Json(err.to_body())).into_response();
    }
    replica.values.fetch_add(1, Ordering::SeqCst);
    Json(MetricValue {
        metric_name: metric,
        value: 3.0,
        timestamp: chrono::Utc::now(),
        source: ValueOrigin::Live,
    })
    .into_response()
}

struct Operator {
    port: u16,
    replica: Arc<Replica>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Operator {
    async fn start(dir: &Dir, leading: bool) -> Self {
        let files = ServerFiles {
            cert_file: dir.0.join("operator.crt"),
            key_file: dir.0.join("operator.key"),
            client_auth: ClientAuth::Required(dir.0.join("ca.crt")),
        };
        let server = HttpsServer::bind(([127, 0, 0, 1], 0).into(), files, "operator stand-in").await.unwrap();
        let port = server.local_addr().port();
        let replica = Arc::new(Replica::default());
        replica.leading.store(leading, Ordering::SeqCst);
        let app = axum::Router::new()
            .route(wire::METRIC_ROUTE, get(answer))
            .route(wire::HEALTHZ_PATH, get(|| async { wire::HEALTHZ_BODY }))
            .with_state(replica.clone());
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(server.serve(app, async move {
            let _ = stopped.wait_for(|s| *s).await;
        }));
        Operator { port, replica, stop, task }
    }

    fn lead(&self, leading: bool) {
        self.replica.leading.store(leading, Ordering::SeqCst);
    }

    fn count(&self) -> (usize, usize) {
        (self.replica.values.load(Ordering::SeqCst), self.replica.not_leader.load(Ordering::SeqCst))
    }

    async fn stop(self) {
        self.stop.send_replace(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

/// The Service: new connections go to `upstream` unless `refuse` says to close the next ones at
/// once; `cut` ends every connection open so far.
struct Proxy {
    port: u16,
    upstream: Arc<AtomicU16>,
    refuse: Arc<AtomicUsize>,
    cut: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let upstream = Arc::new(AtomicU16::new(upstream));
        let refuse = Arc::new(AtomicUsize::new(0));
        let (cut, _) = watch::channel(0u64);
        let (to, no, cuts) = (upstream.clone(), refuse.clone(), cut.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { return };
                let refused =
                    no.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
                if refused {
                    continue;
                }
                let port = to.load(Ordering::SeqCst);
                let mut cut = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", port)).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy { port, upstream, refuse, cut, task }
    }

    /// New connections go to `port` from now on.
    fn route_to(&self, port: u16) {
        self.upstream.store(port, Ordering::SeqCst);
    }

    /// Ends every open connection.
    fn cut_all(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn link_config(dir: &Dir, url: String, connect_to: Option<String>) -> LinkConfig {
    LinkConfig {
        url,
        ca_file: dir.0.join("ca.crt"),
        cert_file: dir.0.join("client.crt"),
        key_file: dir.0.join("client.key"),
        timeout: Duration::from_secs(5),
        // Checked once at start, then not again during a test: the value path alone is seen.
        check_interval: Duration::from_secs(60),
        value_cache_ttl: Duration::ZERO,
        connect_to,
    }
}

/// A link checking its health until the returned sender is dropped.
fn start_link(cfg: &LinkConfig) -> (Arc<OperatorLink>, tokio::sync::oneshot::Sender<()>) {
    let link = Arc::new(OperatorLink::new(cfg, Readiness::default(), Metrics::unregistered()).unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(link.clone().watch_health(async {
        let _ = stopped.await;
    }));
    (link, stop)
}

/// Waits until the link's state is no longer `Starting`.
async fn first_check(link: &OperatorLink) -> LinkState {
    let started = Instant::now();
    while link.state() == LinkState::Starting {
        assert!(started.elapsed() < Duration::from_secs(5), "no health check in 5 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    link.state()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_to_the_former_leader_moves_to_the_new_one() {
    let dir = pki("moves");
    let a = Operator::start(&dir, true).await;
    let b = Operator::start(&dir, false).await;
    let service = Proxy::start(a.port).await;
    let (link, _health) = start_link(&link_config(&dir, format!("https://127.0.0.1:{}", service.port), None));
    assert_eq!(first_check(&link).await, LinkState::Up);
    assert_eq!(link.value("default", "web", "live-a").await.unwrap().value, 3.0);
    assert_eq!(a.count(), (1, 0));

    // Leader change: the Service routes new connections to b; the link's connection stays on a.
    a.lead(false);
    b.lead(true);
    service.route_to(b.port);
    let started = Instant::now();
    let value = link.value("default", "web", "live-a").await.unwrap();
    assert_eq!(value.value, 3.0);
    assert_eq!((a.count(), b.count()), ((1, 1), (1, 0)), "one NotLeader from a, then b answered");
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    // The link stays with b.
    for _ in 0..3 {
        link.value("default", "web", "live-a").await.unwrap();
    }
    assert_eq!((a.count(), b.count()), ((1, 1), (4, 0)));

    // No leader anywhere: after the retries, 503 saying so.
    b.lead(false);
    let started = Instant::now();
    let err = link.value("default", "web", "live-a").await.unwrap_err();
    assert_eq!(err.code, 503);
    assert!(err.message.contains("is not the leader"), "{err}");
    assert_eq!(b.count().1, 3, "asked three times");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(2), "{took:?}");

    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_is_gone_is_retried_on_fresh_connections() {
    let dir = pki("gone");
    let a = Operator::start(&dir, true).await;
    let b = Operator::start(&dir, true).await;
    let service = Proxy::start(a.port).await;
    let (link, _health) = start_link(&link_config(&dir, format!("https://127.0.0.1:{}", service.port), None));
    assert_eq!(first_check(&link).await, LinkState::Up);
    link.value("default", "web", "live-a").await.unwrap();

    // a goes: its connections end, and the Service refuses the next two before b is ready.
    a.stop().await;
    service.cut_all();
    service.refuse.store(2, Ordering::SeqCst);
    service.route_to(b.port);
    let value = link.value("default", "web", "live-a").await.unwrap();
    assert_eq!(value.value, 3.0);
    assert_eq!(b.count(), (1, 0));
    assert_eq!(service.refuse.load(Ordering::SeqCst), 0, "both refusals were met");
    assert_eq!(link.state(), LinkState::Up);

    // More refusals than tries: 503 within the retries' pauses, and the link is down.
    b.stop().await;
    service.cut_all();
    service.refuse.store(10, Ordering::SeqCst);
    let started = Instant::now();
    let err = link.value("default", "web", "live-a").await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.code, 503);
    assert!(err.message.contains("is unreachable"), "{err}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert!(matches!(link.state(), LinkState::Down(_)), "{:?}", link.state());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_to_reaches_the_operator_and_verifies_the_service_name() {
    let dir = pki("connect-to");
    let op = Operator::start(&dir, true).await;
    let service_url = format!("https://{SERVICE_HOST}:9666");

    // Without connect-to the Service name does not resolve here.
    let (link, _h1) = start_link(&link_config(&dir, service_url.clone(), None));
    let LinkState::Down(why) = first_check(&link).await else { panic!("{:?}", link.state()) };
    assert!(why.contains("error sending request"), "{why}");

    // With it: values flow, by IP address or by host name.
    for target in [format!("127.0.0.1:{}", op.port), format!("localhost:{}", op.port)] {
        let (link, _h) = start_link(&link_config(&dir, service_url.clone(), Some(target.clone())));
        assert_eq!(first_check(&link).await, LinkState::Up, "{target}");
        assert_eq!(link.value("default", "web", "live-a").await.unwrap().value, 3.0);
        assert_eq!(link.url(), service_url, "messages name the URL as given");
    }
    assert_eq!(op.count(), (2, 0));

    // The certificate is checked against the URL's host name, not the address connected to.
    let other =
        link_config(&dir, "https://ebb-other.keda.svc:9666".into(), Some(format!("127.0.0.1:{}", op.port)));
    let (link, _h2) = start_link(&other);
    let LinkState::Down(why) = first_check(&link).await else { panic!("{:?}", link.state()) };
    assert!(why.contains(r#"certificate not valid for name "ebb-other.keda.svc""#), "{why}");
    assert_eq!(op.count(), (2, 0));

    // Addresses that cannot work are refused up front.
    for (url, addr, fragment) in [
        (service_url.as_str(), "127.0.0.1", "expected HOST:PORT"),
        (service_url.as_str(), "ebb:0", "port from 1 to 65535"),
        ("https://127.0.0.1:9666", "127.0.0.1:9667", "names an IP address"),
    ] {
        let cfg = link_config(&dir, url.into(), Some(addr.into()));
        let err = OperatorLink::new(&cfg, Readiness::default(), Metrics::unregistered()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(addr) && text.contains(fragment), "{url} via {addr}: {text}");
    }
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_connects_to_the_given_address() {
    let dir = pki("binary");
    let op = Operator::start(&dir, true).await;
    let path = |name: &str| dir.0.join(name).to_str().unwrap().to_owned();
    let mut command = Command::new(env!("CARGO_BIN_EXE_ebb-metrics-apiserver"));
    command.env_remove("RUST_LOG").env("EBB_OPERATOR_CONNECT_TO", format!("127.0.0.1:{}", op.port));
    command.args([
        "--admin-addr",
        "127.0.0.1:0",
        "--secure-addr",
        "127.0.0.1:0",
        "--log-format",
        "json",
        "--insecure-skip-auth",
        "--tls-cert-file",
        &path("operator.crt"),
        "--tls-key-file",
        &path("operator.key"),
        "--operator-url",
        &format!("https://{SERVICE_HOST}:9666"),
        "--operator-ca-file",
        &path("ca.crt"),
        "--operator-cert-file",
        &path("client.crt"),
        "--operator-key-file",
        &path("client.key"),
    ]);
    let mut server = ServerProcess::start(command).unwrap();
    let listening = server
        .wait_for_log(Duration::from_secs(20), |e| e["message"] == "metrics API server listening (TLS)")
        .unwrap();
    let secure: std::net::SocketAddr = listening["addr"].as_str().unwrap().parse().unwrap();
    let admin = reqwest::Client::new();
    let started = Instant::now();
    while admin.get(server.admin_url("/readyz")).send().await.unwrap().status() != 200 {
        assert!(started.elapsed() < Duration::from_secs(10), "not ready in 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ca = std::fs::read(dir.0.join("ca.crt")).unwrap();
    let tls = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    let body: serde_json::Value = tls
        .get(format!(
            "https://localhost:{}/apis/external.metrics.k8s.io/v1beta1/namespaces/default/live-a?labelSelector=scaledobject.keda.sh%2Fname%3Dweb",
            secure.port()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["items"][0]["value"], "3", "{body}");
    assert_eq!(op.count().0, 1);

    drop((tls, admin));
    server.terminate().unwrap();
    assert!(server.wait_exit(Duration::from_secs(20)).unwrap().success());
    op.stop().await;
}
