//! The `external` and `external-push` scalers against a real gRPC external scaler
//! (`ebb_testbackends::external_scaler`, whose messages are written independently from KEDA's
//! `externalscaler.proto`): values, targets and activity as KEDA reads them, the metadata passed
//! through, TLS with a test CA, hostile answers, the egress policy, and the push stream (wake-up,
//! reopening after the server ends it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Once};
use std::time::Duration;

use ebb_api::MetadataValue;
use ebb_scalers::egress::{self, Policy};
use ebb_scalers::external::{self, PARAMS};
use ebb_scalers::{Measurement, ParseContext, Scaler, ScalerError};
use ebb_testbackends::external_scaler::{ExternalScaler, MetricSpec, MetricValue};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::Notify;

fn policy() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| egress::install(Some(Policy::default_deny().allow(["127.0.0.1/32".parse().unwrap()]))));
}

fn scaler_with(
    type_: &str,
    meta: &[(&str, &str)],
    auth: &[(&str, &str)],
) -> Result<(Arc<dyn Scaler>, Arc<Notify>), String> {
    policy();
    let m: BTreeMap<String, MetadataValue> =
        meta.iter().map(|(k, v)| ((*k).to_owned(), MetadataValue::from(*v))).collect();
    let mut ctx = ParseContext::default();
    ctx.auth.insert(0, auth.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect());
    let p = ebb_scalers::params::Params::new(0, type_, PARAMS, &m, &ctx);
    let c = external::parse_config(&p, type_ == "external-push").map_err(|e| e.to_string())?;
    let s = ebb_scalers::trigger::ScalerConfig::build(&c).map_err(|e| e.to_string())?;
    let wake = Arc::new(Notify::new());
    s.attach("orders", "worker", wake.clone());
    Ok((s, wake))
}

fn scaler(addr: &str) -> Arc<dyn Scaler> {
    scaler_with("external", &[("scalerAddress", addr), ("queueName", "jobs")], &[]).unwrap().0
}

async fn measure(s: &Arc<dyn Scaler>) -> Result<Measurement, ScalerError> {
    s.measure(chrono::Utc::now()).await
}

#[tokio::test]
async fn value_target_and_activity_as_keda_reads_them() {
    let srv = ExternalScaler::start(None).await.unwrap();
    let s = scaler(&srv.address());
    srv.set_value(25.0, true);
    // 25 against a target size of 10 per replica: served as 2.5 against the HPA target of 1.
    assert_eq!(measure(&s).await.unwrap(), Measurement { value: 2.5, active: true });
    let st = srv.state();
    let r = st.last_ref.unwrap();
    assert_eq!((r.namespace.as_str(), r.name.as_str()), ("orders", "worker"));
    // The whole metadata object is passed through.
    assert_eq!(r.scaler_metadata.get("queueName").map(String::as_str), Some("jobs"));
    assert_eq!(r.scaler_metadata.get("scalerAddress"), Some(&srv.address()));
    assert_eq!(st.last_metric_name.as_deref(), Some("queue"));

    // Integer fields when the float ones are unset; every returned value counts.
    srv.set(|s| {
        s.specs = vec![MetricSpec { metric_name: "queue".into(), target_size: 4, target_size_float: 0.0 }];
        s.values = vec![
            MetricValue { metric_name: "queue".into(), metric_value: 3, metric_value_float: 0.0 },
            MetricValue { metric_name: "queue".into(), metric_value: 7, metric_value_float: 0.0 },
        ];
        s.active = false;
    });
    assert_eq!(measure(&s).await.unwrap(), Measurement { value: 2.5, active: false });
    assert_eq!(srv.state().calls.get("IsActive"), Some(&2));
}

#[tokio::test]
async fn hostile_answers_are_errors_not_panics() {
    let srv = ExternalScaler::start(None).await.unwrap();
    let s = scaler(&srv.address());
    type Case = (&'static str, Box<dyn Fn(&mut ebb_testbackends::external_scaler::State)>);
    let cases: Vec<Case> = vec![
        ("no metric spec", Box::new(|s| s.specs.clear())),
        (
            "target size 0",
            Box::new(|s| {
                s.specs = vec![MetricSpec { metric_name: "q".into(), target_size: 0, target_size_float: 0.0 }]
            }),
        ),
        (
            "negative target",
            Box::new(|s| {
                s.specs =
                    vec![MetricSpec { metric_name: "q".into(), target_size: 1, target_size_float: -2.0 }]
            }),
        ),
        (
            "NaN value",
            Box::new(|s| {
                s.values = vec![MetricValue {
                    metric_name: "q".into(),
                    metric_value: 0,
                    metric_value_float: f64::NAN,
                }]
            }),
        ),
        (
            "too many values",
            Box::new(|s| {
                s.values =
                    vec![
                        MetricValue { metric_name: "q".into(), metric_value: 1, metric_value_float: 0.0 };
                        101
                    ]
            }),
        ),
        (
            "oversized answer",
            Box::new(|s| {
                s.specs = vec![MetricSpec {
                    metric_name: "q".repeat(70_000),
                    target_size: 1,
                    target_size_float: 0.0,
                }]
            }),
        ),
        (
            "overlong metric name",
            Box::new(|s| {
                s.specs =
                    vec![MetricSpec { metric_name: "q".repeat(300), target_size: 1, target_size_float: 0.0 }]
            }),
        ),
    ];
    for (what, f) in cases {
        srv.set(|s| {
            s.specs =
                vec![MetricSpec { metric_name: "queue".into(), target_size: 10, target_size_float: 0.0 }];
            s.values =
                vec![MetricValue { metric_name: "queue".into(), metric_value: 1, metric_value_float: 0.0 }];
        });
        srv.set(|s| f(s));
        let e = measure(&s).await.expect_err(what);
        assert!(e.to_string().len() < 1200, "{what}: unbounded message");
        assert!(
            !e.to_string().contains("qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"),
            "{what}: {e}"
        );
    }
}

#[tokio::test]
async fn unreachable_and_egress_denied() {
    let srv = ExternalScaler::start(None).await.unwrap();
    let port = srv.addr.port();
    drop(srv);
    let e = measure(&scaler(&format!("127.0.0.1:{port}"))).await.unwrap_err();
    assert_eq!(e.reason(), "Unreachable", "{e}");
    let e = measure(&scaler(&format!("127.0.0.2:{port}"))).await.unwrap_err();
    assert_eq!(e.reason(), "EgressDenied", "{e}");
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate it signed.
fn pki() -> (String, (String, String), (String, String)) {
    let ca = ebb_sandbox::pki::CertAuthority::new("ebb-test-ca").unwrap();
    let localhost = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    let server = ca.issue_server(&[], &[localhost]).unwrap();
    let client = ca.issue_client("ebb", &[]).unwrap();
    (ca.cert_pem().to_owned(), (server.cert_pem, server.key_pem), (client.cert_pem, client.key_pem))
}

fn server_tls(ca: &str, cert: &(String, String), require_client: bool) -> rustls::ServerConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert.0.as_bytes()).collect::<Result<_, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_slice(cert.1.as_bytes()).unwrap();
    let b = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let b = if require_client {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap()).unwrap();
        b.with_client_cert_verifier(
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap(),
        )
    } else {
        b.with_no_client_auth()
    };
    b.with_single_cert(chain, key).unwrap()
}

#[tokio::test]
async fn tls_with_a_test_ca_and_client_certificates() {
    let (ca, server, client) = pki();
    let srv = ExternalScaler::start(Some(server_tls(&ca, &server, true))).await.unwrap();
    srv.set_value(30.0, true);
    let addr = srv.address();
    let meta = [("scalerAddress", addr.as_str())];
    let auth =
        [("caCert", ca.as_str()), ("tlsClientCert", client.0.as_str()), ("tlsClientKey", client.1.as_str())];
    let (s, _) = scaler_with("external", &meta, &auth).unwrap();
    assert_eq!(measure(&s).await.unwrap(), Measurement { value: 3.0, active: true });

    // Without the client certificate the server refuses the handshake.
    let (s, _) = scaler_with("external", &meta, &[("caCert", ca.as_str())]).unwrap();
    let e = measure(&s).await.unwrap_err();
    assert_eq!(e.reason(), "Unreachable", "{e}");

    // A server certificate from another CA is refused; unsafeSsl accepts it.
    let (other_ca, other_server, _) = pki();
    let srv2 = ExternalScaler::start(Some(server_tls(&other_ca, &other_server, false))).await.unwrap();
    srv2.set_value(10.0, false);
    let addr2 = srv2.address();
    let (s, _) =
        scaler_with("external", &[("scalerAddress", addr2.as_str())], &[("caCert", ca.as_str())]).unwrap();
    let e = measure(&s).await.unwrap_err();
    assert_eq!(e.reason(), "Unreachable", "{e}");
    let (s, _) = scaler_with(
        "external",
        &[("scalerAddress", addr2.as_str()), ("unsafeSsl", "true"), ("enableTLS", "true")],
        &[],
    )
    .unwrap();
    assert_eq!(measure(&s).await.unwrap(), Measurement { value: 1.0, active: false });
}

async fn notified(wake: &Notify) -> bool {
    tokio::time::timeout(Duration::from_secs(5), wake.notified()).await.is_ok()
}

async fn until(what: &str, f: impl Fn() -> bool) {
    for _ in 0..100 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn push_wakes_and_the_stream_is_reopened() {
    let srv = ExternalScaler::start(None).await.unwrap();
    srv.set_value(5.0, false);
    let addr = srv.address();
    let (s, wake) = scaler_with("external-push", &[("scalerAddress", addr.as_str())], &[]).unwrap();
    until("the stream to open", || srv.state().streams_opened == 1).await;
    assert_eq!(srv.state().last_ref.unwrap().name, "worker");

    let (_, receivers) = srv.push(true);
    assert_eq!(receivers, 1);
    assert!(notified(&wake).await, "a push wakes the loop");
    // The pushed activity is that tick's, even if IsActive now says otherwise; then IsActive again.
    srv.set(|s| s.active = false);
    assert_eq!(measure(&s).await.unwrap(), Measurement { value: 0.5, active: true });
    assert_eq!(measure(&s).await.unwrap(), Measurement { value: 0.5, active: false });

    // The server ends the stream: the scaler reopens it (with backoff) and pushes arrive again.
    srv.end_streams();
    until("the stream to reopen", || srv.state().streams_opened == 2).await;
    srv.push(true);
    assert!(notified(&wake).await, "a push on the reopened stream wakes the loop");

    // The server goes away and comes back on the same port.
    let at = srv.addr;
    drop(srv);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let srv = ExternalScaler::start_on(at, None).await.unwrap();
    until("the stream to reopen on the new server", || srv.state().streams_opened == 1).await;
    srv.push(true);
    assert!(notified(&wake).await, "a push from the restarted server wakes the loop");

    // Dropping the scaler ends the stream task.
    drop(s);
    until("the stream to close", || srv.push(false).1 == 0).await;
}

#[tokio::test]
async fn a_live_query_after_a_push_leaves_the_activity_to_the_tick() {
    let srv = ExternalScaler::start(None).await.unwrap();
    srv.set_value(5.0, false);
    let addr = srv.address();
    let (s, wake) = scaler_with("external-push", &[("scalerAddress", addr.as_str())], &[]).unwrap();
    until("the stream to open", || srv.state().streams_opened == 1).await;
    srv.push(true);
    assert!(notified(&wake).await, "a push wakes the loop");
    srv.set(|s| s.active = false);
    // The metrics API's live query (useCachedMetrics: false) runs before the woken tick.
    let live = ebb_scalers::query_with_timeout(&s, chrono::Utc::now(), Duration::from_secs(3)).await;
    assert_eq!(live.unwrap().value, 0.5);
    // The tick still sees the pushed activity, not IsActive's answer.
    assert_eq!(measure(&s).await.unwrap(), Measurement { value: 0.5, active: true });
}

fn trigger(type_: &str, addr: &str) -> ebb_scalers::TriggerSpec {
    policy();
    let m: BTreeMap<String, MetadataValue> = [("scalerAddress", addr), ("queueName", "jobs")]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), MetadataValue::from(*v)))
        .collect();
    let ctx = ParseContext::default();
    let p = ebb_scalers::params::Params::new(2, type_, PARAMS, &m, &ctx);
    let c = external::parse_config(&p, type_ == "external-push").unwrap();
    ebb_scalers::TriggerSpec::new(2, type_, None, Default::default(), false, Arc::new(c))
}

#[tokio::test]
async fn get_metric_spec_names_the_metric_as_keda_does() {
    let srv = ExternalScaler::start(None).await.unwrap();
    srv.set(|s| {
        s.specs =
            vec![MetricSpec { metric_name: "queue_length".into(), target_size: 0, target_size_float: 4.0 }]
    });
    srv.set_value(25.0, true);
    let mut t = trigger("external", &srv.address());
    assert_eq!((t.metric_name.as_str(), t.target()), ("s2-external", 1.0));
    let c = t.external().unwrap().clone();
    let spec = c.metric_spec("orders", "worker", Duration::from_secs(3)).await.unwrap();
    assert_eq!(spec, external::spec::MetricSpec { name: "queue_length".into(), target: 4.0 });
    let r = srv.state().last_ref.unwrap();
    assert_eq!((r.namespace.as_str(), r.name.as_str()), ("orders", "worker"));
    assert_eq!(r.scaler_metadata.get("queueName").map(String::as_str), Some("jobs"));
    t.set_external(external::spec::Resolved { spec, namespace: "orders".into(), name: "worker".into() });
    // KEDA's `s<index>-<metricName>` with the scaler's target size; the raw value is served.
    assert_eq!((t.metric_name.as_str(), t.target()), ("s2-queue_length", 4.0));
    let s = ebb_trigger_build(&t);
    let calls = srv.state().calls.get("GetMetricSpec").copied();
    assert_eq!(measure(&s).await.unwrap(), Measurement { value: 25.0, active: true });
    let st = srv.state();
    // The object is known without a loop attaching; GetMetrics is asked for the scaler's name.
    let r = st.last_ref.unwrap();
    assert_eq!((r.namespace.as_str(), r.name.as_str()), ("orders", "worker"));
    assert_eq!(st.last_metric_name.as_deref(), Some("queue_length"));
    assert_eq!(st.calls.get("GetMetricSpec").copied(), calls, "measuring does not ask GetMetricSpec again");

    // A hostile name cannot break the HPA's metric path or a label.
    srv.set(|s| {
        s.specs =
            vec![MetricSpec { metric_name: "a/b\"} x=\n".into(), target_size: 2, target_size_float: 0.0 }]
    });
    let spec = c.metric_spec("orders", "worker", Duration::from_secs(3)).await.unwrap();
    let mut t = trigger("external-push", &srv.address());
    t.set_external(external::spec::Resolved { spec, namespace: "orders".into(), name: "worker".into() });
    assert_eq!(t.metric_name, "s2-a-b---x--");
}

fn ebb_trigger_build(t: &ebb_scalers::TriggerSpec) -> Arc<dyn Scaler> {
    t.config.build().unwrap()
}

#[tokio::test]
async fn get_metric_spec_failures_name_the_scaler() {
    let srv = ExternalScaler::start(None).await.unwrap();
    let port = srv.addr.port();
    drop(srv);
    let t = trigger("external", &format!("127.0.0.1:{port}"));
    let e = t.external().unwrap().metric_spec("orders", "worker", Duration::from_secs(3)).await.unwrap_err();
    assert_eq!(e.reason(), "Unreachable", "{e}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    let t = trigger("external", &format!("127.0.0.2:{port}"));
    let e = t.external().unwrap().metric_spec("orders", "worker", Duration::from_secs(3)).await.unwrap_err();
    assert_eq!(e.reason(), "EgressDenied", "{e}");
    // A listener that never answers: bounded by the timeout given.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let t = trigger("external", &silent.local_addr().unwrap().to_string());
    let e =
        t.external().unwrap().metric_spec("orders", "worker", Duration::from_millis(300)).await.unwrap_err();
    assert_eq!(e, ScalerError::Timeout(Duration::from_millis(300)));
    let srv = ExternalScaler::start(None).await.unwrap();
    srv.set(|s| s.specs.clear());
    let t = trigger("external", &srv.address());
    let e = t.external().unwrap().metric_spec("orders", "worker", Duration::from_secs(3)).await.unwrap_err();
    assert!(e.to_string().contains("no metric spec"), "{e}");
}
