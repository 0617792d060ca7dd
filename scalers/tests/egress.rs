//! The egress policy enforced by the scalers at connect time, in a process of its own (the
//! policy is process-wide): every test here runs under the default deny list with 127.0.0.2
//! allowed and a stand-in API server on 127.0.0.2. A denied destination is never contacted —
//! each stand-in server counts the connections it accepts — whether the trigger names it by
//! address or by a name that resolves to it (`localhost`), for prometheus (`serverAddress`),
//! AWS (`awsEndpoint`) and kafka (`bootstrapServers`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::Utc;
use ebb_api::MetadataValue;
use ebb_scalers::egress::{self, Policy};
use ebb_scalers::params::Params;
use ebb_scalers::{ParseContext, ScalerConfig, ScalerError, measure_with_timeout, registry};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::OnceCell;

/// A listener that counts the connections it accepts and answers every HTTP request with a
/// Prometheus vector of 7.
struct Counting {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

async fn counting(ip: &str) -> Counting {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let n = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            n.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let body = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"7"]}]}}"#;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(answer.as_bytes()).await;
            });
        }
    });
    Counting { addr, accepted }
}

/// The stand-in API server (on the allowed 127.0.0.2), installed in the policy once.
async fn setup() -> &'static Counting {
    static API: OnceCell<Counting> = OnceCell::const_new();
    API.get_or_init(|| async {
        let api = counting("127.0.0.2").await;
        egress::install(Some(
            Policy::default_deny().allow(["127.0.0.2/32".parse().unwrap()]).api_server(api.addr),
        ));
        api
    })
    .await
}

fn config(type_: &str, meta: &[(&str, &str)], auth: &[(&str, &str)]) -> Arc<dyn ScalerConfig> {
    let m: BTreeMap<String, MetadataValue> =
        meta.iter().map(|(k, v)| ((*k).to_owned(), MetadataValue::from(*v))).collect();
    let mut ctx = ParseContext::default();
    ctx.auth.insert(0, auth.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect());
    let def = registry::lookup(0, type_).unwrap();
    (def.parse)(&Params::new(0, type_, def.params, &m, &ctx)).unwrap()
}

async fn measure(cfg: &Arc<dyn ScalerConfig>) -> Result<f64, ScalerError> {
    let s = cfg.build()?;
    measure_with_timeout(&s, Utc::now(), Duration::from_secs(5)).await.map(|m| m.value)
}

async fn prometheus(server: &str) -> Result<f64, ScalerError> {
    measure(&config("prometheus", &[("serverAddress", server), ("query", "up"), ("threshold", "1")], &[]))
        .await
}

fn assert_denied(r: &Result<f64, ScalerError>, starts: &str) {
    match r {
        Err(e @ ScalerError::Denied(m)) => {
            assert!(m.contains(starts), "{m}");
            assert!(m.contains("is denied by the operator's egress policy"), "{m}");
            assert_eq!(e.reason(), "EgressDenied");
        }
        other => panic!("expected a denial containing {starts:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn prometheus_on_loopback_or_metadata_is_never_contacted() {
    setup().await;
    let local = counting("127.0.0.1").await;
    let port = local.addr.port();
    let r = prometheus(&format!("http://127.0.0.1:{port}")).await;
    assert_denied(&r, "address 127.0.0.1 (from serverAddress)");
    // A name resolving to loopback is caught on the resolved address.
    let r = prometheus(&format!("http://localhost:{port}")).await;
    assert_denied(&r, "(from serverAddress)");
    let r = prometheus(&format!("http://[::ffff:127.0.0.1]:{port}")).await;
    assert_denied(&r, "address 127.0.0.1 (from serverAddress)");
    assert_eq!(local.accepted.load(Ordering::SeqCst), 0, "a denied server was contacted");
    // The metadata service: denied before any connection attempt (no time-out).
    let r = prometheus("http://169.254.169.254/latest/meta-data").await;
    assert_denied(&r, "address 169.254.169.254 (from serverAddress)");
    assert!(r.unwrap_err().to_string().contains("169.254.0.0/16"));
    let r = prometheus("http://kubernetes.default.svc").await;
    assert_denied(&r, "host kubernetes.default.svc (from serverAddress)");
}

#[tokio::test]
async fn allowed_addresses_work_and_the_api_server_is_denied_even_there() {
    let api = setup().await;
    let allowed = counting("127.0.0.2").await;
    assert_eq!(prometheus(&format!("http://{}", allowed.addr)).await, Ok(7.0));
    assert_eq!(allowed.accepted.load(Ordering::SeqCst), 1);
    let r = prometheus(&format!("http://{}", api.addr)).await;
    assert_denied(&r, &format!("address {} (from serverAddress)", api.addr));
    assert!(r.unwrap_err().to_string().contains("Kubernetes API server"));
    assert_eq!(api.accepted.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn aws_endpoint_on_loopback_is_never_contacted() {
    setup().await;
    let local = counting("127.0.0.1").await;
    let auth = [("awsAccessKeyID", "AKIAEGRESSTEST000001"), ("awsSecretAccessKey", "egress-secret")];
    for endpoint in
        [format!("http://127.0.0.1:{}", local.addr.port()), format!("http://localhost:{}", local.addr.port())]
    {
        let sqs = config(
            "aws-sqs-queue",
            &[
                ("queueURL", "https://sqs.us-east-1.amazonaws.com/000000000000/q"),
                ("awsRegion", "us-east-1"),
                ("awsEndpoint", &endpoint),
            ],
            &auth,
        );
        assert_denied(&measure(&sqs).await, "(from awsEndpoint)");
        let cw = config(
            "aws-cloudwatch",
            &[
                ("namespace", "AWS/SQS"),
                ("metricName", "ApproximateNumberOfMessagesVisible"),
                ("dimensionName", "QueueName"),
                ("dimensionValue", "q"),
                ("targetMetricValue", "5"),
                ("minMetricValue", "0"),
                ("awsRegion", "us-east-1"),
                ("awsEndpoint", &endpoint),
            ],
            &auth,
        );
        assert_denied(&measure(&cw).await, "(from awsEndpoint)");
    }
    assert_eq!(local.accepted.load(Ordering::SeqCst), 0, "a denied endpoint was contacted");
}

#[tokio::test]
async fn kafka_brokers_on_loopback_are_never_contacted() {
    setup().await;
    let local = counting("127.0.0.1").await;
    for bootstrap in [local.addr.to_string(), format!("localhost:{}", local.addr.port())] {
        let cfg = config(
            "kafka",
            &[
                ("bootstrapServers", &bootstrap),
                ("consumerGroup", "g"),
                ("topic", "t"),
                ("lagThreshold", "5"),
            ],
            &[],
        );
        let r = measure(&cfg).await;
        let text = format!("{r:?}");
        assert!(text.contains("is denied by the operator's egress policy"), "{text}");
        assert!(text.contains("(from bootstrapServers"), "{text}");
    }
    assert_eq!(local.accepted.load(Ordering::SeqCst), 0, "a denied broker was contacted");
}
