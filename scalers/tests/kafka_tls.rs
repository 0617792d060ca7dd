//! The kafka scaler's TLS and SASL against a real broker. tansu's own TLS listener does not
//! complete handshakes in the build used here, so each TLS test puts a small TLS terminator
//! (rustls, certificates from the sandbox's test CA) in front of the broker's plain port and has
//! the broker advertise the terminator's port, so leader and coordinator connections go through
//! TLS too.
//! SASL: tansu with `--authentication` speaks SaslHandshake/SaslAuthenticate but offers no way to
//! create users in memory storage, so a successful SCRAM login cannot be shown against it; the
//! exchange is checked up to the broker's refusal here and against RFC test vectors in the unit
//! tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kafka_support;

use std::sync::Arc;

use chrono::Utc;
use ebb_scalers::kafka::KafkaScaler;
use ebb_scalers::{Scaler, ScalerConfig};
use ebb_testbackends::tansu::{Tansu, TansuOptions};
use kafka_support::{GROUP, TOPIC, config, fixture};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// A CA and certificates it signed.
struct Pki {
    ca_pem: String,
    server: (String, String),
    client: (String, String),
}

fn pki() -> Pki {
    let ca = ebb_sandbox::pki::CertAuthority::new("ebb-test-ca").unwrap();
    let localhost = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    let server = ca.issue_server(&[], &[localhost]).unwrap();
    let client = ca.issue_client("ebb", &[]).unwrap();
    Pki {
        ca_pem: ca.cert_pem().to_owned(),
        server: (server.cert_pem, server.key_pem),
        client: (client.cert_pem, client.key_pem),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Terminates TLS on `listener` and forwards each connection to the broker's plain `upstream`.
fn tls_proxy(listener: TcpListener, upstream: u16, pki: &Pki, require_client_cert: bool) {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pki.server.0.as_bytes()).collect::<Result<_, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_slice(pki.server.1.as_bytes()).unwrap();
    let builder =
        ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions().unwrap();
    let builder = if require_client_cert {
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap()).unwrap();
        builder.with_client_cert_verifier(
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider()).build().unwrap(),
        )
    } else {
        builder.with_no_client_auth()
    };
    let acceptor = TlsAcceptor::from(Arc::new(builder.with_single_cert(chain, key).unwrap()));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let Ok(mut plain) = TcpStream::connect(("127.0.0.1", upstream)).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
}

/// A broker with the standard fixture, reachable through TLS at the returned address.
async fn tls_broker(pki: &Pki, require_client_cert: bool) -> (Tansu, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let t = Tansu::start_with(&TansuOptions { advertised_port: Some(port), ..Default::default() }).unwrap();
    fixture(&t.bootstrap()).await;
    tls_proxy(listener, t.port(), pki, require_client_cert);
    (t, format!("127.0.0.1:{port}"))
}

fn tls_scaler(bootstrap: &str, auth: &[(&str, &str)]) -> KafkaScaler {
    let meta =
        [("bootstrapServers", bootstrap), ("consumerGroup", GROUP), ("topic", TOPIC), ("tls", "enable")];
    KafkaScaler::new(config(&meta, auth))
}

#[tokio::test]
async fn tls_with_the_configured_ca() {
    let pki = pki();
    let (_t, addr) = tls_broker(&pki, false).await;
    let s = tls_scaler(&addr, &[("ca", &pki.ca_pem)]);
    let m = s.measure(Utc::now()).await.unwrap();
    assert_eq!((m.value, m.active), (27.0, true));
    let c = config(
        &[("bootstrapServers", &addr), ("consumerGroup", GROUP), ("tls", "enable")],
        &[("ca", &pki.ca_pem)],
    );
    assert!(c.describe().ends_with("; offsetResetPolicy latest, tls"), "{}", c.describe());
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_unless_unsafe_ssl() {
    let pki = pki();
    let other = self::pki();
    let (_t, addr) = tls_broker(&pki, false).await;
    let e = tls_scaler(&addr, &[("ca", &other.ca_pem)]).measure(Utc::now()).await.unwrap_err();
    assert_eq!(e.reason(), "Unreachable");
    let msg = e.to_string();
    assert!(msg.contains(&format!("{addr}: TLS handshake failed: invalid peer certificate")), "{msg}");
    // unsafeSsl skips verification (and is a separate pool entry).
    let s = tls_scaler(&addr, &[("ca", &other.ca_pem), ("unsafeSsl", "true")]);
    assert_eq!(s.measure(Utc::now()).await.unwrap().value, 27.0);
    let unsafe_meta = config(
        &[("bootstrapServers", &addr), ("consumerGroup", GROUP), ("tls", "enable"), ("unsafeSsl", "true")],
        &[],
    );
    assert!(unsafe_meta.describe().ends_with("tls (unverified)"), "{}", unsafe_meta.describe());
}

#[tokio::test]
async fn client_certificates_for_brokers_that_require_them() {
    let pki = pki();
    let (_t, addr) = tls_broker(&pki, true).await;
    let without = tls_scaler(&addr, &[("ca", &pki.ca_pem)]).measure(Utc::now()).await.unwrap_err();
    assert_eq!(without.reason(), "Unreachable", "{without}");
    let with = tls_scaler(&addr, &[("ca", &pki.ca_pem), ("cert", &pki.client.0), ("key", &pki.client.1)]);
    assert_eq!(with.measure(Utc::now()).await.unwrap().value, 27.0);
}

#[tokio::test]
async fn tls_against_a_plain_listener_fails_quickly_with_a_hint() {
    let t = Tansu::start().unwrap();
    let started = std::time::Instant::now();
    let e = tls_scaler(&t.bootstrap(), &[("unsafeSsl", "true")]).measure(Utc::now()).await.unwrap_err();
    assert_eq!(e.reason(), "Unreachable", "{e}");
    assert!(e.to_string().contains("TLS handshake"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "bounded: {:?}", started.elapsed());
}

#[tokio::test]
async fn sasl_reaches_the_broker_and_a_refusal_is_unauthorized() {
    let t = Tansu::start_with(&TansuOptions { authentication: true, ..Default::default() }).unwrap();
    let b = t.bootstrap();
    for (mode, mech) in [("scram_sha256", "SCRAM-SHA-256"), ("scram_sha512", "SCRAM-SHA-512")] {
        let meta =
            [("bootstrapServers", b.as_str()), ("consumerGroup", GROUP), ("topic", TOPIC), ("sasl", mode)];
        let s = KafkaScaler::new(config(&meta, &[("username", "svc"), ("password", "hunter2")]));
        let e = s.measure(Utc::now()).await.unwrap_err();
        assert_eq!(e.reason(), "Unauthorized", "{mode}: {e}");
        let msg = e.to_string();
        // The handshake succeeded and the broker answered the client-first message with a SCRAM
        // error: it has no such user.
        assert!(msg.contains(&format!("{b}: SASL {mech} failed: server refused: unknown-user")), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
    }
    let meta = [("bootstrapServers", b.as_str()), ("consumerGroup", GROUP), ("sasl", "plaintext")];
    let e = KafkaScaler::new(config(&meta, &[("username", "svc"), ("password", "hunter2")]))
        .measure(Utc::now())
        .await
        .unwrap_err();
    assert_eq!(e.reason(), "Unauthorized", "{e}");
    // tansu drops the connection on a mechanism it does not offer instead of answering.
    assert!(
        e.to_string().contains(&format!(
            "the broker closed the connection during SASL PLAIN authentication ({b}: connection lost"
        )),
        "{e}"
    );
}
