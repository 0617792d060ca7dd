use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use chrono::{DateTime, Utc};
use ebb_api::internal::ValueOrigin;
use ebb_sandbox::pki::{self, CertAuthority, Leaf};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::*;
use ebb_plumbing::internal_client::{InternalClient, tls_config};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

fn timestamp() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-03-01T12:00:00Z").unwrap().with_timezone(&Utc)
}

/// A value source answering from a fixed table, counting the queries it gets.
#[derive(Default)]
struct FakeSource {
    not_leader: AtomicBool,
    calls: AtomicUsize,
}

#[async_trait::async_trait]
impl ValueSource for FakeSource {
    async fn value(&self, namespace: &str, name: &str, metric: &str) -> Result<MetricValue, ValueError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let value = |value: f64, source: ValueOrigin| {
            Ok(MetricValue { metric_name: metric.to_owned(), value, timestamp: timestamp(), source })
        };
        match (namespace, name, metric) {
            ("default", "web", "s0-cron-Etc-UTC-0,30xxxx-5xxxx") => value(3.0, ValueOrigin::Cache),
            ("default", "web", "s1-prometheus") => value(41.5, ValueOrigin::Live),
            ("default", "web", other) => Err(ValueError::unknown_metric(
                "default",
                "web",
                other,
                &["s0-cron-Etc-UTC-0,30xxxx-5xxxx", "s1-prometheus"],
            )),
            ("default", "timeout", _) => Err(ValueError::Timeout("live query timed out after 2s".into())),
            ("default", "broken", _) => Err(ValueError::Scaler("prometheus query failed: HTTP 500".into())),
            ("default", "nan", _) => value(f64::NAN, ValueOrigin::Live),
            ("default", "slow", _) => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                value(1.0, ValueOrigin::Live)
            }
            ("default", "panics", _) => panic!("scaler bug"),
            _ => Err(ValueError::unknown_scaled_object(namespace, name)),
        }
    }

    fn is_leader(&self) -> bool {
        !self.not_leader.load(Ordering::SeqCst)
    }
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("ebb-internal-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// Writes `name` by renaming a temporary file over it, as the kubelet updates Secret volumes.
    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        let tmp = self.0.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, contents).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running server with its CAs, files and value source.
struct Fixture {
    dir: TempDir,
    server_ca: CertAuthority,
    client_ca: CertAuthority,
    source: Arc<FakeSource>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), InternalError>>,
}

fn serving_leaf(ca: &CertAuthority, common_name: &str) -> Leaf {
    ca.issue_server(&[common_name, "localhost"], &[LOCALHOST]).unwrap()
}

impl Fixture {
    async fn start() -> Self {
        let dir = TempDir::new();
        let server_ca = CertAuthority::new("ebb-internal-server-ca").unwrap();
        let client_ca = CertAuthority::new("ebb-internal-client-ca").unwrap();
        let leaf = serving_leaf(&server_ca, "ebb-operator.keda.svc");
        let cfg = InternalServerConfig {
            addr: SocketAddr::new(LOCALHOST, 0),
            cert_file: dir.write("tls.crt", &leaf.cert_pem),
            key_file: dir.write("tls.key", &leaf.key_pem),
            client_ca_file: dir.write("client-ca.crt", client_ca.cert_pem()),
            client_names: vec!["ebb-metrics-apiserver".to_owned()],
        };
        let server = InternalServer::bind(cfg).await.unwrap();
        let addr = server.local_addr();
        let source = Arc::new(FakeSource::default());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(source.clone(), async move {
            let _ = stopped.await;
        }));
        Self { dir, server_ca, client_ca, source, addr, stop: Some(stop), task }
    }

    fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// A client presenting a certificate issued by `ca` for `common_name`.
    fn client_from(&self, ca: &CertAuthority, common_name: &str) -> InternalClient {
        let leaf = ca.issue_client(common_name, &[]).unwrap();
        InternalClient::from_pem(
            &self.url(),
            self.server_ca.cert_pem().as_bytes(),
            leaf.cert_pem.as_bytes(),
            leaf.key_pem.as_bytes(),
            CLIENT_TIMEOUT,
        )
        .unwrap()
    }

    fn client(&self) -> InternalClient {
        self.client_from(&self.client_ca, "ebb-metrics-apiserver")
    }

    /// A TLS 1.x + HTTP/1.1 request on a new raw connection: the certificate the server
    /// presented and the raw response, or the I/O error (a refused handshake).
    async fn raw_get(
        &self,
        client: Option<&Leaf>,
        path: &str,
    ) -> std::io::Result<(CertificateDer<'static>, String)> {
        let config = pki::client_config(self.server_ca.cert_pem().as_bytes(), client).unwrap();
        let tcp = TcpStream::connect(self.addr).await?;
        let mut tls = tokio_rustls::TlsConnector::from(config)
            .connect(ServerName::IpAddress(LOCALHOST.into()), tcp)
            .await?;
        let presented = tls.get_ref().1.peer_certificates().unwrap()[0].clone().into_owned();
        let request = format!("GET {path} HTTP/1.1\r\nhost: operator\r\nconnection: close\r\n\r\n");
        tls.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        tls.read_to_end(&mut response).await?;
        Ok((presented, String::from_utf8(response).unwrap()))
    }

    /// The CN of the certificate a new connection is served.
    async fn presented_cn(&self) -> (String, CertificateDer<'static>) {
        let client = self.client_ca.issue_client("ebb-metrics-apiserver", &[]).unwrap();
        let (cert, response) = self.raw_get(Some(&client), "/healthz").await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        (pki::peer_identity(&cert).unwrap().0, cert)
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).unwrap();
        }
        let result = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
        assert!(matches!(result, Ok(Ok(Ok(())))), "server did not stop cleanly: {result:?}");
    }
}

#[tokio::test]
async fn client_with_a_valid_certificate_gets_values_over_http2() {
    let fx = Fixture::start().await;
    let client = fx.client();
    assert_eq!(client.check().await.unwrap(), reqwest::Version::HTTP_2);
    assert!(client.healthy().await);

    let cases = [
        ("s0-cron-Etc-UTC-0,30xxxx-5xxxx", 3.0, ValueOrigin::Cache),
        ("s1-prometheus", 41.5, ValueOrigin::Live),
    ];
    for (metric, value, source) in cases {
        let got = client.metric_value("default", "web", metric).await.unwrap();
        assert_eq!(
            got,
            MetricValue { metric_name: metric.to_owned(), value, timestamp: timestamp(), source }
        );
    }
    assert_eq!(fx.source.calls.load(Ordering::SeqCst), 2);
    fx.stop().await;
}

#[tokio::test]
async fn wire_form_of_a_value_is_the_documented_json() {
    let fx = Fixture::start().await;
    let client = fx.client_ca.issue_client("ebb-metrics-apiserver", &[]).unwrap();
    let (_, response) = fx
        .raw_get(Some(&client), "/v1/namespaces/default/scaledobjects/web/metrics/s1-prometheus")
        .await
        .unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "metricName": "s1-prometheus",
            "value": 41.5,
            "timestamp": "2025-03-01T12:00:00Z",
            "source": "live",
        })
    );
    fx.stop().await;
}

#[tokio::test]
async fn errors_map_back_through_the_client() {
    let fx = Fixture::start().await;
    let client = fx.client();
    let cases = [
        (
            "web",
            "s1-foo",
            ValueError::NotFound(
                "ScaledObject default/web has no metric s1-foo; \
                 it has: s0-cron-Etc-UTC-0,30xxxx-5xxxx, s1-prometheus"
                    .into(),
            ),
        ),
        ("gone", "s0-cpu", ValueError::unknown_scaled_object("default", "gone")),
        ("timeout", "s0-x", ValueError::Timeout("live query timed out after 2s".into())),
        ("broken", "s0-x", ValueError::Scaler("prometheus query failed: HTTP 500".into())),
        (
            "nan",
            "s0-x",
            ValueError::Scaler("the scaler produced a non-finite value (NaN) for metric s0-x".into()),
        ),
    ];
    for (name, metric, want) in cases {
        assert_eq!(client.metric_value("default", name, metric).await, Err(want), "{name}/{metric}");
    }
    let panicked = client.metric_value("default", "panics", "s0-x").await;
    assert!(
        matches!(&panicked, Err(ValueError::Internal(message)) if message.contains("panicked")),
        "{panicked:?}"
    );
    fx.stop().await;
}

#[tokio::test]
async fn a_replica_that_is_not_leader_answers_not_leader_without_asking_the_source() {
    let fx = Fixture::start().await;
    fx.source.not_leader.store(true, Ordering::SeqCst);
    let client = fx.client();
    assert_eq!(client.metric_value("default", "web", "s1-prometheus").await, Err(ValueError::NotLeader));
    assert!(client.healthy().await, "/healthz answers whether leader or not");
    assert_eq!(fx.source.calls.load(Ordering::SeqCst), 0);

    let client_leaf = fx.client_ca.issue_client("ebb-metrics-apiserver", &[]).unwrap();
    let (_, response) = fx
        .raw_get(Some(&client_leaf), "/v1/namespaces/default/scaledobjects/web/metrics/s1-prometheus")
        .await
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    let body: serde_json::Value = serde_json::from_str(response.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "reason": "NotLeader",
            "error": "this operator replica is not the leader; ask the leader",
        })
    );
    fx.stop().await;
}

#[tokio::test]
async fn a_slow_source_times_out_at_the_client() {
    let fx = Fixture::start().await;
    let leaf = fx.client_ca.issue_client("ebb-metrics-apiserver", &[]).unwrap();
    let client = InternalClient::from_pem(
        &fx.url(),
        fx.server_ca.cert_pem().as_bytes(),
        leaf.cert_pem.as_bytes(),
        leaf.key_pem.as_bytes(),
        Duration::from_millis(300),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let got = client.metric_value("default", "slow", "s0-x").await;
    assert!(matches!(&got, Err(ValueError::Timeout(message)) if message.contains("300ms")), "{got:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    fx.stop().await;
}

#[tokio::test]
async fn unknown_paths_answer_not_found() {
    let fx = Fixture::start().await;
    let leaf = fx.client_ca.issue_client("ebb-metrics-apiserver", &[]).unwrap();
    let (_, response) = fx.raw_get(Some(&leaf), "/v2/whatever").await.unwrap();
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");
    assert!(response.contains(r#""reason":"NotFound""#), "{response}");
    assert!(response.contains("no such endpoint: GET /v2/whatever"), "{response}");
    fx.stop().await;
}

#[tokio::test]
async fn handshake_without_a_client_certificate_is_refused() {
    let fx = Fixture::start().await;
    let err = fx.raw_get(None, "/healthz").await.unwrap_err();
    assert_eq!(err.to_string(), "received fatal alert: CertificateRequired");

    let config = pki::client_config(fx.server_ca.cert_pem().as_bytes(), None).unwrap();
    let client = InternalClient::new(&fx.url(), Arc::unwrap_or_clone(config), CLIENT_TIMEOUT).unwrap();
    assert!(!client.healthy().await);
    let got = client.metric_value("default", "web", "s1-prometheus").await;
    assert!(matches!(got, Err(ValueError::Unreachable(_))), "{got:?}");
    assert_eq!(fx.source.calls.load(Ordering::SeqCst), 0);
    fx.stop().await;
}

#[tokio::test]
async fn handshake_with_a_certificate_from_another_ca_is_refused() {
    let fx = Fixture::start().await;
    // A CA with another name is unknown; one impersonating the right CA's name fails the
    // signature check.
    let cases = [("rogue-ca", "UnknownCA"), ("ebb-internal-client-ca", "DecryptError")];
    for (ca_name, alert) in cases {
        let rogue_ca = CertAuthority::new(ca_name).unwrap();
        let rogue = rogue_ca.issue_client("ebb-metrics-apiserver", &[]).unwrap();
        let err = fx.raw_get(Some(&rogue), "/healthz").await.unwrap_err();
        assert_eq!(err.to_string(), format!("received fatal alert: {alert}"), "{ca_name}");

        let client = fx.client_from(&rogue_ca, "ebb-metrics-apiserver");
        assert!(!client.healthy().await, "{ca_name}");
        let got = client.metric_value("default", "web", "s1-prometheus").await;
        assert!(matches!(&got, Err(ValueError::Unreachable(message)) if message.contains(alert)), "{got:?}");
    }
    assert_eq!(fx.source.calls.load(Ordering::SeqCst), 0);
    fx.stop().await;
}

#[tokio::test]
async fn rotated_serving_certificate_is_used_by_new_connections_without_restart() {
    let fx = Fixture::start().await;
    let (cn, before) = fx.presented_cn().await;
    assert_eq!(cn, "ebb-operator.keda.svc");
    let old_client = fx.client();
    assert_eq!(old_client.check().await.unwrap(), reqwest::Version::HTTP_2);

    let rotated = serving_leaf(&fx.server_ca, "ebb-operator-rotated.keda.svc");
    // Certificate first: until its key arrives the pair does not load and the old one stays.
    fx.dir.write("tls.crt", &rotated.cert_pem);
    let (cn, during) = fx.presented_cn().await;
    assert_eq!((cn.as_str(), &during), ("ebb-operator.keda.svc", &before));

    fx.dir.write("tls.key", &rotated.key_pem);
    let (cn, after) = fx.presented_cn().await;
    assert_eq!(cn, "ebb-operator-rotated.keda.svc");
    assert_eq!(after, rotated.cert_der().unwrap());
    assert_ne!(after, before);

    // Both an established HTTP/2 connection and a new client keep working.
    assert!(old_client.healthy().await);
    assert_eq!(fx.client().metric_value("default", "web", "s1-prometheus").await.unwrap().value, 41.5);
    assert!(!fx.task.is_finished());
    fx.stop().await;
}

#[tokio::test]
async fn rotated_client_ca_takes_effect_for_new_connections() {
    let fx = Fixture::start().await;
    let next_ca = CertAuthority::new("ebb-internal-client-ca-2").unwrap();
    let old_leaf = fx.client_ca.issue_client("ebb-metrics-apiserver", &[]).unwrap();
    let new_leaf = next_ca.issue_client("ebb-metrics-apiserver", &[]).unwrap();
    assert!(fx.raw_get(Some(&old_leaf), "/healthz").await.is_ok());
    assert!(fx.raw_get(Some(&new_leaf), "/healthz").await.is_err());

    fx.dir.write("client-ca.crt", next_ca.cert_pem());
    assert!(fx.raw_get(Some(&new_leaf), "/healthz").await.is_ok());
    let err = fx.raw_get(Some(&old_leaf), "/healthz").await.unwrap_err();
    assert!(err.to_string().contains("UnknownCA"), "{err}");
    fx.stop().await;
}

#[tokio::test]
async fn client_made_from_files_reloads_its_certificate() {
    let fx = Fixture::start().await;
    let client_dir = TempDir::new();
    let rogue = CertAuthority::new("rogue").unwrap().issue_client("ebb-metrics-apiserver", &[]).unwrap();
    let client = InternalClient::from_files(
        &fx.url(),
        client_dir.write("ca.crt", fx.server_ca.cert_pem()),
        client_dir.write("tls.crt", &rogue.cert_pem),
        client_dir.write("tls.key", &rogue.key_pem),
        CLIENT_TIMEOUT,
    )
    .unwrap();
    assert!(!client.healthy().await);

    let good = fx.client_ca.issue_client("ebb-metrics-apiserver", &[]).unwrap();
    client_dir.write("tls.crt", &good.cert_pem);
    client_dir.write("tls.key", &good.key_pem);
    assert_eq!(client.metric_value("default", "web", "s1-prometheus").await.unwrap().value, 41.5);
    fx.stop().await;
}

#[tokio::test]
async fn startup_fails_on_unusable_files() {
    let dir = TempDir::new();
    let ca = CertAuthority::new("ca").unwrap();
    let leaf = serving_leaf(&ca, "ebb-operator.keda.svc");
    let other = serving_leaf(&ca, "other");
    type Check = fn(&InternalError) -> bool;
    let cases: [(&str, &str, &str, Check); 4] = [
        (&leaf.cert_pem, &other.key_pem, ca.cert_pem(), |e| matches!(e, InternalError::Tls(_))),
        (&leaf.cert_pem, "", ca.cert_pem(), |e| matches!(e, InternalError::NoPrivateKey(_))),
        (&leaf.key_pem, &leaf.key_pem, ca.cert_pem(), |e| matches!(e, InternalError::NoCertificate(_))),
        (&leaf.cert_pem, &leaf.key_pem, "not pem", |e| matches!(e, InternalError::NoCertificate(_))),
    ];
    for (i, (cert, key, client_ca, expected)) in cases.into_iter().enumerate() {
        let cfg = InternalServerConfig {
            addr: SocketAddr::new(LOCALHOST, 0),
            cert_file: dir.write("tls.crt", cert),
            key_file: dir.write("tls.key", key),
            client_ca_file: dir.write("ca.crt", client_ca),
            client_names: vec!["ebb-metrics-apiserver".to_owned()],
        };
        let err = InternalServer::bind(cfg).await.unwrap_err();
        assert!(expected(&err), "case {i}: {err}");
    }
    let missing = InternalServerConfig {
        addr: SocketAddr::new(LOCALHOST, 0),
        cert_file: dir.0.join("absent.crt"),
        key_file: dir.0.join("absent.key"),
        client_ca_file: dir.0.join("absent-ca.crt"),
        client_names: vec!["ebb-metrics-apiserver".to_owned()],
    };
    let err = InternalServer::bind(missing).await.unwrap_err();
    assert!(matches!(&err, InternalError::Read { path, .. } if path.ends_with("absent.crt")), "{err}");
}

#[tokio::test]
async fn client_rejects_non_https_urls_and_bad_pem() {
    let ca = CertAuthority::new("ca").unwrap();
    let leaf = ca.issue_client("c", &[]).unwrap();
    let tls =
        tls_config(ca.cert_pem().as_bytes(), leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes()).unwrap();
    for url in ["http://127.0.0.1:9666", "not a url", "https://"] {
        let err = InternalClient::new(url, tls.clone(), CLIENT_TIMEOUT).unwrap_err();
        assert!(matches!(err, ebb_plumbing::internal_client::ClientError::InvalidUrl { .. }), "{url}: {err}");
    }
    let err = tls_config(b"", leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes()).unwrap_err();
    assert!(matches!(err, ebb_plumbing::internal_client::ClientError::NoCertificate("CA bundle")), "{err}");
    let err = tls_config(ca.cert_pem().as_bytes(), leaf.cert_pem.as_bytes(), b"").unwrap_err();
    assert!(matches!(err, ebb_plumbing::internal_client::ClientError::NoPrivateKey), "{err}");
    let client = InternalClient::new("https://127.0.0.1:9666/", tls, CLIENT_TIMEOUT).unwrap();
    assert_eq!(client.base_url(), "https://127.0.0.1:9666");
}

#[tokio::test]
async fn a_certificate_from_the_same_ca_naming_another_component_is_refused() {
    let fx = Fixture::start().await;
    // The webhook's or the operator's identity, signed by the very CA the endpoint trusts: the
    // chain is fine, the identity is not the metrics API server's.
    for other in ["ebb-webhook", "ebb-webhook.keda.svc", "ebb-operator", "ebb-metrics-apiserver-x"] {
        let leaf = fx.client_ca.issue_client(other, &[]).unwrap();
        let err = fx.raw_get(Some(&leaf), "/healthz").await.unwrap_err();
        assert_eq!(err.to_string(), "received fatal alert: AccessDenied", "{other}");
        let client = fx.client_from(&fx.client_ca, other);
        let got = client.metric_value("default", "web", "s1-prometheus").await;
        assert!(
            matches!(&got, Err(ValueError::Unreachable(message)) if message.contains("AccessDenied")),
            "{other}: {got:?}"
        );
    }
    assert_eq!(fx.source.calls.load(Ordering::SeqCst), 0);
    // The configured identity is admitted.
    assert_eq!(fx.client().metric_value("default", "web", "s1-prometheus").await.unwrap().value, 41.5);
    fx.stop().await;
}

/// Amplification: however many identical questions arrive at once, the value source (and so the
/// metric source behind it) is asked once.
#[tokio::test]
async fn concurrent_identical_questions_ask_the_source_once() {
    let fx = Fixture::start().await;
    let client = Arc::new(fx.client());
    let asks: Vec<_> = (0..100)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.metric_value("default", "web", "s1-prometheus").await })
        })
        .collect();
    for a in asks {
        assert_eq!(a.await.unwrap().unwrap().value, 41.5);
    }
    let calls = fx.source.calls.load(Ordering::SeqCst);
    assert!(calls <= 1, "100 concurrent questions asked the source {calls} times");
    fx.stop().await;
}
