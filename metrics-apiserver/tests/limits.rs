//! What unauthenticated clients can hold on the secure port, against the server as `run`
//! builds it (flags parsed, delegated authentication) with a stand-in Kubernetes API that
//! publishes the front-proxy settings, answers SubjectAccessReviews (allowed) and
//! TokenReviews (one known token, every other rejected), and counts the TokenReviews it gets.
//!
//! - Slow clients: TLS connections that send half a request head and stall, TCP connections
//!   that never start their TLS handshake and HTTP/2 connections that open no stream are
//!   closed by the server after the configured timeouts.
//! - At the connection cap a new connection waits (its TLS handshake does not start) while the
//!   aggregator's open connection keeps being served, and it is served once a slot frees.
//! - A flood of random bearer tokens costs at most the configured TokenReview budget (the rest
//!   is answered 429 with Retry-After, or 401), and a front-proxy request in the middle of it
//!   is answered promptly.
//! - Rejected tokens do not push accepted ones out of the cache.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::routing::{get, post};
use clap::Parser;
use ebb_metrics_apiserver::{Args, MetricsApiServer};
use ebb_plumbing::shutdown::{self, ShutdownTrigger};
use ebb_sandbox::pki::{CertAuthority, Leaf};
use futures::StreamExt as _;
use rustls::pki_types::ServerName;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const GOOD_TOKEN: &str = "good-token-0123456789";
const DISCOVERY: &str = "/apis/external.metrics.k8s.io/v1beta1";

/// The stand-in Kubernetes API's state.
struct FakeApi {
    front_proxy_ca: String,
    token_reviews: AtomicUsize,
}

async fn config_map(State(api): State<Arc<FakeApi>>) -> Json<Value> {
    Json(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "extension-apiserver-authentication", "namespace": "kube-system"},
        "data": {
            "requestheader-client-ca-file": api.front_proxy_ca,
            "requestheader-allowed-names": "[\"front-proxy-client\"]",
            "requestheader-username-headers": "[\"X-Remote-User\"]",
            "requestheader-group-headers": "[\"X-Remote-Group\"]",
            "requestheader-extra-headers-prefix": "[\"X-Remote-Extra-\"]"
        }
    }))
}

async fn token_review(State(api): State<Arc<FakeApi>>, Json(mut review): Json<Value>) -> Json<Value> {
    api.token_reviews.fetch_add(1, Ordering::SeqCst);
    // A review takes a little while, as a real one does.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let token = review.pointer("/spec/token").and_then(Value::as_str).unwrap_or_default();
    review["status"] = if token == GOOD_TOKEN {
        json!({"authenticated": true, "user": {"username": "alice", "groups": ["system:authenticated"]}})
    } else {
        json!({"authenticated": false, "error": "invalid bearer token"})
    };
    Json(review)
}

async fn access_review(Json(mut review): Json<Value>) -> Json<Value> {
    review["status"] = json!({"allowed": true});
    Json(review)
}

/// A running metrics API server and what talks to it.
struct Harness {
    secure: SocketAddr,
    admin: SocketAddr,
    api: Arc<FakeApi>,
    ca_pem: String,
    front_proxy: Leaf,
    dir: PathBuf,
    trigger: ShutdownTrigger,
    task: tokio::task::JoinHandle<()>,
}

impl Harness {
    /// Starts the stand-in API and the server with `flags` added to the required ones.
    async fn start(tag: &str, flags: &[&str]) -> Self {
        let dir = std::env::temp_dir().join(format!("ebb-mas-limits-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = CertAuthority::new("serving-ca").unwrap();
        let serving = ca.issue_server(&["localhost"], &[[127, 0, 0, 1].into()]).unwrap();
        let client = ca.issue_client("ebb-metrics-apiserver", &[]).unwrap();
        let fp_ca = CertAuthority::new("front-proxy-ca").unwrap();
        let front_proxy = fp_ca.issue_client("front-proxy-client", &[]).unwrap();
        for (name, text) in [
            ("tls.crt", &serving.cert_pem),
            ("tls.key", &serving.key_pem),
            ("client.crt", &client.cert_pem),
            ("client.key", &client.key_pem),
            ("ca.crt", &ca.cert_pem().to_owned()),
        ] {
            std::fs::write(dir.join(name), text).unwrap();
        }

        let api = Arc::new(FakeApi { front_proxy_ca: fp_ca.cert_pem().to_owned(), token_reviews: 0.into() });
        let router = axum::Router::new()
            .route(
                "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication",
                get(config_map),
            )
            .route("/apis/authentication.k8s.io/v1/tokenreviews", post(token_review))
            .route("/apis/authorization.k8s.io/v1/subjectaccessreviews", post(access_review))
            .with_state(api.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        let kube = kube::Client::try_from(kube::Config::new(api_url.parse().unwrap())).unwrap();

        let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut argv = vec![
            "ebb-metrics-apiserver".to_owned(),
            "--admin-addr=127.0.0.1:0".to_owned(),
            "--secure-addr=127.0.0.1:0".to_owned(),
            format!("--tls-cert-file={}", path("tls.crt")),
            format!("--tls-key-file={}", path("tls.key")),
            format!("--operator-url=https://127.0.0.1:{closed}"),
            format!("--operator-ca-file={}", path("ca.crt")),
            format!("--operator-cert-file={}", path("client.crt")),
            format!("--operator-key-file={}", path("client.key")),
            format!("--state-dir={}", path("state")),
        ];
        argv.extend(flags.iter().map(|f| (*f).to_owned()));
        let args = Args::try_parse_from(argv).unwrap();
        let server = MetricsApiServer::bind(&args, Some(kube)).await.unwrap();
        let (secure, admin) = (server.secure_addr(), server.admin_addr());
        let (trigger, shutdown) = shutdown::channel();
        let task = tokio::spawn(async move { server.serve(shutdown).await.unwrap() });
        Self { secure, admin, api, ca_pem: ca.cert_pem().to_owned(), front_proxy, dir, trigger, task }
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.secure.port())
    }

    fn reviews(&self) -> usize {
        self.api.token_reviews.load(Ordering::SeqCst)
    }

    /// A client trusting the serving CA, with the front-proxy certificate when `aggregator`.
    fn client(&self, aggregator: bool) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).unwrap())
            .tls_built_in_root_certs(false)
            .resolve("localhost", self.secure);
        if aggregator {
            let pem = format!("{}{}", self.front_proxy.cert_pem, self.front_proxy.key_pem);
            builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
        }
        builder.build().unwrap()
    }

    /// A discovery request as the aggregator makes it for the HPA controller.
    async fn aggregator_get(&self, client: &reqwest::Client) -> reqwest::StatusCode {
        client
            .get(self.url(DISCOVERY))
            .header("X-Remote-User", "system:serviceaccount:kube-system:horizontal-pod-autoscaler")
            .header("X-Remote-Group", "system:serviceaccounts")
            .send()
            .await
            .unwrap()
            .status()
    }

    /// A TLS connection (ALPN `alpn`) that has completed its handshake.
    async fn tls(&self, alpn: &[u8]) -> tokio_rustls::client::TlsStream<TcpStream> {
        let tcp = TcpStream::connect(self.secure).await.unwrap();
        tls_handshake(&self.ca_pem, alpn, tcp).await.unwrap()
    }

    async fn metrics(&self) -> String {
        let url = format!("http://{}/metrics", self.admin);
        reqwest::get(url).await.unwrap().text().await.unwrap()
    }

    async fn stop(self) {
        self.trigger.trigger();
        let _ = tokio::time::timeout(Duration::from_secs(15), self.task).await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn tls_handshake(
    ca_pem: &str,
    alpn: &[u8],
    tcp: TcpStream,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await
}

/// Whether the server closed the connection: a read gives end of stream or an error within
/// `wait` (bytes the server sent before closing, such as HTTP/2 frames, are skipped).
async fn closed_by_server(stream: &mut (impl tokio::io::AsyncRead + Unpin), wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline.into(), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_are_cut_off_by_the_timeouts() {
    let h = Harness::start(
        "slow",
        &["--tls-handshake-timeout=1s", "--header-read-timeout=500ms", "--idle-timeout=1s"],
    )
    .await;
    // Half a request head, never finished.
    let mut heads = Vec::new();
    for _ in 0..16 {
        let mut tls = h.tls(b"http/1.1").await;
        tls.write_all(b"GET /apis HTTP/1.1\r\nHost: localhost\r\nX-Slow: ").await.unwrap();
        tls.flush().await.unwrap();
        heads.push(tls);
    }
    // TCP connections that never start their TLS handshake.
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(TcpStream::connect(h.secure).await.unwrap());
    }
    // HTTP/2: the preface and an empty SETTINGS frame, then no stream ever.
    let mut idle_h2 = h.tls(b"h2").await;
    idle_h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00").await.unwrap();
    idle_h2.flush().await.unwrap();

    let started = Instant::now();
    let mut open = 0;
    for tls in &mut heads {
        open += usize::from(!closed_by_server(tls, Duration::from_secs(3)).await);
    }
    assert_eq!(
        open,
        0,
        "{open} of 16 connections with half a request head still open after {:?}",
        started.elapsed()
    );
    for tcp in &mut silent {
        assert!(
            closed_by_server(tcp, Duration::from_secs(2)).await,
            "a connection without TLS handshake is still open"
        );
    }
    assert!(
        closed_by_server(&mut idle_h2, Duration::from_secs(3)).await,
        "an HTTP/2 connection without streams is still open after {:?}",
        started.elapsed()
    );
    // The server still serves.
    assert_eq!(h.aggregator_get(&h.client(true)).await, reqwest::StatusCode::OK);
    let metrics = h.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l
                .starts_with("ebb_metrics_apiserver_connections_closed_total{reason=\"handshake_timeout\"}")),
        "{metrics}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_newcomers_wait_and_the_aggregator_is_served() {
    let h = Harness::start("cap", &["--max-connections=4", "--tls-handshake-timeout=30s"]).await;
    let aggregator = h.client(true);
    assert_eq!(h.aggregator_get(&aggregator).await, reqwest::StatusCode::OK);
    // Three more connections that send nothing fill the cap with the aggregator's.
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(TcpStream::connect(h.secure).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The fifth connection's TLS handshake does not start while the cap is reached.
    let ca_pem = h.ca_pem.clone();
    let tcp = TcpStream::connect(h.secure).await.unwrap();
    let mut fifth = tokio::spawn(async move { tls_handshake(&ca_pem, b"http/1.1", tcp).await });
    assert!(
        tokio::time::timeout(Duration::from_secs(1), &mut fifth).await.is_err(),
        "a fifth connection was served with --max-connections=4"
    );
    // The aggregator's open connection keeps being served meanwhile.
    let started = Instant::now();
    assert_eq!(h.aggregator_get(&aggregator).await, reqwest::StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(2), "aggregator answered after {:?}", started.elapsed());
    // A slot frees: the waiting connection is served.
    drop(silent.pop());
    let handshake = tokio::time::timeout(Duration::from_secs(5), fifth).await;
    assert!(matches!(handshake, Ok(Ok(Ok(_)))), "the waiting connection was not served once a slot freed");
    let metrics = h.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("ebb_metrics_apiserver_connection_cap_reached_total ")
                && !l.ends_with(" 0")),
        "{metrics}"
    );
    drop(aggregator);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_random_tokens_costs_at_most_the_review_budget() {
    let (rate, burst) = (20.0, 20.0);
    let h = Harness::start(
        "flood",
        &["--token-review-rate=20", "--token-review-burst=20", "--token-review-concurrency=4"],
    )
    .await;
    let flood_client = h.client(false);
    let url = h.url(DISCOVERY);
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let flood = {
        let done = done.clone();
        tokio::spawn(async move {
            futures::stream::iter(0..1000)
                .map(|i| {
                    let (client, url, done) = (flood_client.clone(), url.clone(), done.clone());
                    async move {
                        let token = format!("random-{i}-{}", std::process::id());
                        let response = client.get(&url).bearer_auth(token).send().await.unwrap();
                        done.fetch_add(1, Ordering::SeqCst);
                        let retry_after = response.headers().get("retry-after").cloned();
                        (response.status().as_u16(), retry_after)
                    }
                })
                .buffer_unordered(64)
                .collect::<Vec<_>>()
                .await
        })
    };
    // In the middle of the flood, the aggregator's request.
    while done.load(Ordering::SeqCst) < 200 && !flood.is_finished() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let aggregator = h.client(true);
    let asked = Instant::now();
    assert_eq!(h.aggregator_get(&aggregator).await, reqwest::StatusCode::OK);
    let waited = asked.elapsed();
    let answers = flood.await.unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    assert!(waited < Duration::from_secs(2), "the front-proxy request took {waited:?} during the flood");

    let reviews = h.reviews();
    let budget = (burst + rate * elapsed).ceil() as usize;
    assert!(
        reviews <= budget,
        "{reviews} TokenReviews for 1000 random tokens in {elapsed:.2}s (budget {budget}: burst 20 + 20/s)"
    );
    let limited: Vec<_> = answers.iter().filter(|(code, _)| *code == 429).collect();
    eprintln!(
        "1000 random tokens in {elapsed:.2}s: {reviews} TokenReviews (budget {budget}), {} answered 429; \
         front-proxy request answered in {waited:?}",
        limited.len()
    );
    assert!(answers.iter().all(|(code, _)| *code == 401 || *code == 429), "{answers:?}");
    assert!(!limited.is_empty());
    assert!(
        limited.iter().all(|(_, retry)| retry.as_ref().is_some_and(|v| v
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1))
    );
    let metrics = h.metrics().await;
    assert!(
        metrics.lines().any(|l| l
            .starts_with("ebb_metrics_apiserver_auth_reviews_total{review=\"token\",result=\"limited\"}")),
        "{metrics}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_tokens_do_not_push_accepted_ones_out() {
    let h = Harness::start(
        "evict",
        &["--auth-cache-size=16", "--token-review-rate=1000", "--token-review-burst=1000"],
    )
    .await;
    let client = h.client(false);
    let get = |token: String| {
        let request = client.get(h.url(DISCOVERY)).bearer_auth(token);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(get(GOOD_TOKEN.to_owned()).await, 200);
    assert_eq!(h.reviews(), 1);
    for i in 0..100 {
        assert_eq!(get(format!("bad-{i}")).await, 401);
    }
    // The same bad token again: refused from the negative cache.
    assert_eq!(get("bad-99".to_owned()).await, 401);
    assert_eq!(h.reviews(), 101);
    // The accepted token is still cached: no new review.
    assert_eq!(get(GOOD_TOKEN.to_owned()).await, 200);
    assert_eq!(h.reviews(), 101, "the accepted token was reviewed again after 100 rejected ones");
    h.stop().await;
}
