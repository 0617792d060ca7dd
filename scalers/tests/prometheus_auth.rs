//! Authentication modes against a real Prometheus started with `--web.config.file`: basic auth
//! (bcrypt-hashed password; a wrong one is Unauthorized), and HTTPS requiring client
//! certificates (mode tls, with and without basic on top, the CA, unsafeSsl).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod prometheus_common;

use std::net::{IpAddr, Ipv4Addr};

use ebb_scalers::{Measurement, ScalerError};
use ebb_testbackends::prometheus::{Options, Prometheus, WebConfig};
use prometheus_common::{measure, scaler};
use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, SanType};

const PASSWORD: &str = "correct horse battery";

fn users() -> Vec<(String, String)> {
    vec![("ebb".to_owned(), bcrypt::hash(PASSWORD, 4).unwrap())]
}

fn forty_two(server: &str) -> Vec<(&str, &str)> {
    vec![("serverAddress", server), ("query", "vector(42)"), ("threshold", "10")]
}

const ACTIVE_42: Measurement = Measurement { value: 42.0, active: true };

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth() {
    let web = WebConfig { basic_auth_users: users(), ..WebConfig::default() };
    let prom = Prometheus::start(&Options::scraping(&[]).with_web(web)).unwrap();
    let server = prom.url();
    let md = [forty_two(&server), vec![("authModes", "basic")]].concat();

    let s = scaler(&md, &[("username", "ebb"), ("password", PASSWORD)]);
    assert_eq!(measure(&s).await, Ok(ACTIVE_42), "{}", prom.log_tail());

    let wrong = "not the password";
    let s = scaler(&md, &[("username", "ebb"), ("password", wrong)]);
    match measure(&s).await {
        Err(ScalerError::Unauthorized(m)) => {
            assert!(m.starts_with(&format!("Prometheus at {server} answered 401 Unauthorized")), "{m}");
            assert!(m.contains("check authModes and the TriggerAuthentication"), "{m}");
            assert!(!m.contains(wrong) && !m.contains(PASSWORD), "{m}");
        }
        other => panic!("wrong password: {other:?}"),
    }

    // No authentication configured at all.
    let s = scaler(&forty_two(&server), &[]);
    assert!(matches!(measure(&s).await, Err(ScalerError::Unauthorized(_))));
}

struct Pki {
    ca: String,
    server: (String, String),
    client: (String, String),
}

fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    dns: &str,
    ip: Option<IpAddr>,
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let mut params = CertificateParams::new(vec![dns.to_owned()]).unwrap();
    if let Some(ip) = ip {
        params.subject_alt_names.push(SanType::IpAddress(ip));
    }
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca_params, ca_key);
    let localhost = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    Pki {
        ca,
        server: leaf(&issuer, "localhost", localhost, ExtendedKeyUsagePurpose::ServerAuth),
        client: leaf(&issuer, "ebb-client", None, ExtendedKeyUsagePurpose::ClientAuth),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_over_https() {
    let pki = pki();
    let web = WebConfig {
        tls: Some(pki.server.clone()),
        client_ca: Some(pki.ca.clone()),
        basic_auth_users: users(),
    };
    let prom = Prometheus::start(&Options::scraping(&[]).with_web(web)).unwrap();
    let server = prom.url();
    assert!(server.starts_with("https://127.0.0.1:"), "{server}");
    let (cert, key) = (pki.client.0.as_str(), pki.client.1.as_str());
    let basic = [("username", "ebb"), ("password", PASSWORD)];
    let tls = [("ca", pki.ca.as_str()), ("cert", cert), ("key", key)];

    // tls and basic together: the answer.
    let md = [forty_two(&server), vec![("authModes", "tls,basic")]].concat();
    let s = scaler(&md, &[&tls[..], &basic[..]].concat());
    assert_eq!(measure(&s).await, Ok(ACTIVE_42), "{}", prom.log_tail());
    // By DNS name too (the certificate names both).
    let by_name = prom.url_localhost();
    let md_name = [forty_two(&by_name), vec![("authModes", "tls,basic")]].concat();
    assert_eq!(measure(&scaler(&md_name, &[&tls[..], &basic[..]].concat())).await, Ok(ACTIVE_42));

    // The client certificate alone passes TLS, then basic auth is missing: 401.
    let md_tls = [forty_two(&server), vec![("authModes", "tls")]].concat();
    match measure(&scaler(&md_tls, &tls)).await {
        Err(ScalerError::Unauthorized(m)) => assert!(m.contains("401 Unauthorized"), "{m}"),
        other => panic!("tls without basic: {other:?}"),
    }

    // Without a client certificate the server refuses the connection: Unauthorized when the
    // server's alert reaches the client first; with TLS 1.3 the client may instead see the
    // connection closed under its first request (the handshake already completed on its side).
    let md_basic = [forty_two(&server), vec![("authModes", "basic")]].concat();
    let r = measure(&scaler(&md_basic, &[&basic[..], &[("ca", pki.ca.as_str())][..]].concat())).await;
    match r {
        Err(ScalerError::Unauthorized(m)) => {
            assert!(
                m.starts_with(&format!("Prometheus at {server} rejected the TLS client certificate (")),
                "{m}"
            );
            assert!(m.contains("received fatal alert"), "{m}");
        }
        Err(ScalerError::Unreachable(m)) => {
            assert!(m.starts_with(&format!("request to Prometheus at {server} failed")), "{m}");
            assert!(m.contains("closed"), "{m}");
        }
        other => panic!("no client certificate: {other:?}"),
    }

    // Without the CA the server's certificate is not trusted ...
    let r =
        measure(&scaler(&md, &[("cert", cert), ("key", key), ("username", "ebb"), ("password", PASSWORD)]))
            .await;
    match r {
        Err(ScalerError::Unreachable(m)) => {
            assert!(m.starts_with(&format!("cannot connect to Prometheus at {server}")), "{m}");
            assert!(m.contains("UnknownIssuer"), "{m}");
        }
        other => panic!("untrusted server certificate: {other:?}"),
    }
    // ... unless unsafeSsl skips the check.
    let md_unsafe = [md.clone(), vec![("unsafeSsl", "true")]].concat();
    let s = scaler(&md_unsafe, &[("cert", cert), ("key", key), ("username", "ebb"), ("password", PASSWORD)]);
    assert_eq!(measure(&s).await, Ok(ACTIVE_42));
}
