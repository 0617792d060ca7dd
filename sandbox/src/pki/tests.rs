use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use x509_parser::extensions::GeneralName;

use super::*;

const LOCALHOST_V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// What the server side of a completed exchange observed.
#[derive(Debug)]
struct Observed {
    /// User and groups of the client certificate, if one was presented.
    identity: Option<(String, Vec<String>)>,
    /// The ALPN protocol agreed on, if any.
    alpn: Option<Vec<u8>>,
}

/// Runs one TLS connection over loopback TCP: the client sends "ping", the server answers
/// "pong". Returns what the server saw, or the first error of either side.
async fn exchange(
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    server_name: &str,
) -> Result<Observed, String> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server_task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let mut tls =
            TlsAcceptor::from(server).accept(tcp).await.map_err(|e| format!("server handshake: {e}"))?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await.map_err(|e| format!("server read: {e}"))?;
        assert_eq!(&buf, b"ping");
        tls.write_all(b"pong").await.map_err(|e| e.to_string())?;
        tls.shutdown().await.map_err(|e| e.to_string())?;
        let (_, conn) = tls.get_ref();
        let identity = match conn.peer_certificates() {
            Some([first, ..]) => Some(peer_identity(first).map_err(|e| e.to_string())?),
            _ => None,
        };
        Ok::<_, String>(Observed { identity, alpn: conn.alpn_protocol().map(<[u8]>::to_vec) })
    });
    let client_result = async {
        let name = ServerName::try_from(server_name.to_owned()).map_err(|e| e.to_string())?;
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let mut tls = TlsConnector::from(client)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("client handshake: {e}"))?;
        tls.write_all(b"ping").await.map_err(|e| e.to_string())?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await.map_err(|e| format!("client read: {e}"))?;
        assert_eq!(&buf, b"pong");
        Ok::<_, String>(())
    }
    .await;
    match client_result {
        Ok(()) => server_task.await.unwrap(),
        Err(client_err) => {
            server_task.abort();
            Err(client_err)
        }
    }
}

/// Checks an exchange outcome: `None` expects success, `Some(text)` an error containing it.
fn check(label: &str, result: &Result<Observed, String>, expected_error: Option<&str>) {
    match (result, expected_error) {
        (Ok(_), None) => {}
        (Err(err), Some(text)) => assert!(err.contains(text), "{label}: {err}"),
        (other, _) => panic!("{label}: expected {expected_error:?}, got {other:?}"),
    }
}

fn localhost_leaf(ca: &CertAuthority) -> Leaf {
    ca.issue_server(&["localhost", "ebb-webhook.keda.svc"], &[LOCALHOST_V4]).unwrap()
}

#[tokio::test]
async fn handshake_needs_the_issuing_ca() {
    let ca = CertAuthority::new("ebb-sandbox-ca").unwrap();
    let other = CertAuthority::new("ebb-sandbox-ca").unwrap();
    let server = server_config(&localhost_leaf(&ca), None).unwrap();
    let stranger = CertAuthority::new("someone-else").unwrap();
    let both = format!("{}{}", other.cert_pem(), ca.cert_pem());
    let cases: [(&str, &str, Option<&str>); 4] = [
        ("issuing CA", ca.cert_pem(), None),
        ("unrelated CA with the same name", other.cert_pem(), Some("BadSignature")),
        ("unrelated CA", stranger.cert_pem(), Some("UnknownIssuer")),
        ("bundle holding both", &both, None),
    ];
    for (label, bundle, expected_error) in cases {
        let client = client_config(bundle.as_bytes(), None).unwrap();
        let result = exchange(server.clone(), client, "localhost").await;
        check(label, &result, expected_error);
        if let Ok(observed) = result {
            assert_eq!(observed.identity, None, "{label}");
        }
    }
}

#[tokio::test]
async fn server_name_must_be_a_subject_alt_name() {
    let ca = CertAuthority::new("ca").unwrap();
    let server = server_config(&localhost_leaf(&ca), None).unwrap();
    let client = client_config(ca.cert_pem().as_bytes(), None).unwrap();
    let not_valid = Some("certificate not valid for name");
    let cases = [
        ("localhost", None),
        ("ebb-webhook.keda.svc", None),
        ("127.0.0.1", None),
        ("ebb-webhook.other.svc", not_valid),
        ("127.0.0.2", not_valid),
        ("::1", not_valid),
    ];
    for (name, expected_error) in cases {
        let result = exchange(server.clone(), client.clone(), name).await;
        check(name, &result, expected_error);
    }
}

#[tokio::test]
async fn server_sees_client_certificate_identity() {
    let serving_ca = CertAuthority::new("serving-ca").unwrap();
    let client_ca = CertAuthority::new("front-proxy-ca").unwrap();
    let server = server_config(&localhost_leaf(&serving_ca), Some(client_ca.cert_pem())).unwrap();
    let cases: [(&str, &[&str]); 4] = [
        ("front-proxy-client", &[]),
        ("alice", &["system:masters"]),
        (
            "system:serviceaccount:keda:ebb-operator",
            &["system:serviceaccounts", "system:serviceaccounts:keda", "system:authenticated"],
        ),
        ("bob", &["dev", "dev"]),
    ];
    for (user, groups) in cases {
        let leaf = client_ca.issue_client(user, groups).unwrap();
        let client = client_config(serving_ca.cert_pem().as_bytes(), Some(&leaf)).unwrap();
        let observed = exchange(server.clone(), client, "localhost").await.unwrap();
        let expected_groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
        assert_eq!(observed.identity, Some((user.to_owned(), expected_groups)), "{user}");
    }
    // Client authentication is optional: no certificate is accepted too.
    let anonymous = client_config(serving_ca.cert_pem().as_bytes(), None).unwrap();
    let observed = exchange(server.clone(), anonymous, "localhost").await.unwrap();
    assert_eq!(observed.identity, None);
}

#[tokio::test]
async fn client_certificate_from_another_ca_is_rejected() {
    let serving_ca = CertAuthority::new("serving-ca").unwrap();
    let client_ca = CertAuthority::new("client-ca").unwrap();
    let stranger_ca = CertAuthority::new("client-ca").unwrap();
    let server = server_config(&localhost_leaf(&serving_ca), Some(client_ca.cert_pem())).unwrap();
    // Under TLS 1.3 the client learns of the rejection when it next reads.
    let rejected = Some("DecryptError");
    for (label, issuer, groups, expected_error) in [
        ("trusted, one group", &client_ca, &["g1"][..], None),
        ("trusted, rewritten subject", &client_ca, &["g1", "g2"][..], None),
        ("untrusted, one group", &stranger_ca, &["g1"][..], rejected),
        ("untrusted, rewritten subject", &stranger_ca, &["g1", "g2"][..], rejected),
    ] {
        let leaf = issuer.issue_client("mallory", groups).unwrap();
        let client = client_config(serving_ca.cert_pem().as_bytes(), Some(&leaf)).unwrap();
        let result = exchange(server.clone(), client, "localhost").await;
        check(label, &result, expected_error);
    }
}

#[tokio::test]
async fn certificates_are_used_only_for_their_purpose() {
    let ca = CertAuthority::new("ca").unwrap();
    // A client certificate cannot serve, even for a name it could match.
    let client_leaf = ca.issue_client("localhost", &[]).unwrap();
    let server = server_config(&client_leaf, None).unwrap();
    let client = client_config(ca.cert_pem().as_bytes(), None).unwrap();
    let result = exchange(server, client, "localhost").await;
    check("client cert serving", &result, Some("extended key usage for server"));
    // A serving certificate cannot authenticate a client.
    let server = server_config(&localhost_leaf(&ca), Some(ca.cert_pem())).unwrap();
    let serving_as_client = localhost_leaf(&ca);
    let client = client_config(ca.cert_pem().as_bytes(), Some(&serving_as_client)).unwrap();
    let result = exchange(server, client, "localhost").await;
    check("serving cert as client", &result, Some("UnsupportedCertificate"));
}

#[tokio::test]
async fn server_offers_h2_and_http1() {
    let ca = CertAuthority::new("ca").unwrap();
    let server = server_config(&localhost_leaf(&ca), None).unwrap();
    type Protocols<'a> = &'a [&'a [u8]];
    let cases: [(Protocols, Option<&[u8]>); 4] = [
        (&[b"h2", b"http/1.1"], Some(b"h2")),
        (&[b"http/1.1", b"h2"], Some(b"h2")),
        (&[b"http/1.1"], Some(b"http/1.1")),
        (&[], None),
    ];
    for (offered, expected) in cases {
        let mut client = (*client_config(ca.cert_pem().as_bytes(), None).unwrap()).clone();
        client.alpn_protocols = offered.iter().map(|p| p.to_vec()).collect();
        let observed = exchange(server.clone(), Arc::new(client), "localhost").await.unwrap();
        assert_eq!(observed.alpn.as_deref(), expected, "{offered:?}");
    }
}

#[test]
fn serving_certificate_contents() {
    let ca = CertAuthority::new("ebb-ca").unwrap();
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let leaf = ca.issue_server(&["localhost", "ebb-webhook.keda.svc"], &[LOCALHOST_V4, v6]).unwrap();
    let der = leaf.cert_der().unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    for name in &san.value.general_names {
        match name {
            GeneralName::DNSName(d) => dns.push((*d).to_owned()),
            GeneralName::IPAddress(raw) => ips.push(raw.to_vec()),
            other => panic!("unexpected SAN {other:?}"),
        }
    }
    assert_eq!(dns, ["localhost", "ebb-webhook.keda.svc"]);
    assert_eq!(ips, [vec![127, 0, 0, 1], Ipv6Addr::LOCALHOST.octets().to_vec()]);
    assert_eq!(peer_identity(&der).unwrap(), ("localhost".to_owned(), vec![]));
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && !eku.client_auth);
    assert!(!cert.is_ca());
    assert_eq!(cert.issuer().iter_common_name().next().unwrap().as_str(), Ok("ebb-ca"));
    let validity = cert.validity();
    let days = (validity.not_after.timestamp() - validity.not_before.timestamp()) / 86_400;
    assert_eq!(days, 365, "one year plus the one-hour backdating");
    assert!(validity.not_before.timestamp() < time::OffsetDateTime::now_utc().unix_timestamp());

    // IP-only certificates take the first IP as common name.
    let ip_only = ca.issue_server(&[], &[LOCALHOST_V4]).unwrap();
    let (user, _) = peer_identity(&ip_only.cert_der().unwrap()).unwrap();
    assert_eq!(user, "127.0.0.1");
}

#[test]
fn ca_certificate_contents() {
    let ca = CertAuthority::new("front-proxy-ca").unwrap();
    let der = first_cert(ca.cert_pem().as_bytes()).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert!(cert.is_ca());
    assert_eq!(cert.subject(), cert.issuer());
    assert_eq!(peer_identity(&der).unwrap().0, "front-proxy-ca");
    let validity = cert.validity();
    let days = (validity.not_after.timestamp() - validity.not_before.timestamp()) / 86_400;
    assert_eq!(days, 3650);
}

#[test]
fn rewritten_subject_keeps_everything_else() {
    let ca = CertAuthority::new("ca").unwrap();
    let groups = ["a", "b", "ünïcödé group", &"x".repeat(300)];
    let leaf = ca.issue_client("carol", &groups).unwrap();
    assert!(leaf.cert_pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
    assert!(leaf.cert_pem.lines().all(|l| l.len() <= 64));
    let der = leaf.cert_der().unwrap();
    assert_eq!(
        peer_identity(&der).unwrap(),
        ("carol".to_owned(), groups.iter().map(|g| g.to_string()).collect())
    );
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);
    assert_eq!(cert.issuer().iter_common_name().next().unwrap().as_str(), Ok("ca"));
    // The new signature verifies against the CA's public key.
    let ca_der = first_cert(ca.cert_pem().as_bytes()).unwrap();
    let (_, ca_cert) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
    let spki = ca_cert.public_key();
    assert_eq!(cert.signature_algorithm.algorithm, x509_parser::oid_registry::OID_SIG_ECDSA_WITH_SHA256);
    let sig = cert.signature_value.as_ref();
    let key = spki.subject_public_key.as_ref();
    assert!(verify_p256(key, cert.tbs_certificate.as_ref(), sig));
    let mut tampered = cert.tbs_certificate.as_ref().to_vec();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(!verify_p256(key, &tampered, sig));
}

/// Verifies an ECDSA P-256/SHA-256 signature with the ring provider's algorithms.
fn verify_p256(public_key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let (_, algs) = rustls::crypto::ring::default_provider()
        .signature_verification_algorithms
        .mapping
        .iter()
        .find(|(scheme, _)| *scheme == rustls::SignatureScheme::ECDSA_NISTP256_SHA256)
        .unwrap();
    algs[0].verify_signature(public_key, msg, sig).is_ok()
}

#[test]
fn der_lengths_round_trip() {
    for len in [0usize, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x1_0000] {
        let content = vec![0xab; len];
        let encoded = der::tlv(0x04, &content);
        let header = match len {
            0..=0x7f => 2,
            0x80..=0xff => 3,
            0x100..=0xffff => 4,
            _ => 5,
        };
        assert_eq!(encoded.len(), header + len, "length {len}");
        let wrapped = der::tlv(der::SEQUENCE, &encoded);
        assert_eq!(&wrapped[wrapped.len() - encoded.len()..], &encoded[..]);
    }
}

#[test]
fn rejects_bad_input() {
    let ca = CertAuthority::new("ca").unwrap();
    assert!(matches!(ca.issue_server(&[], &[]), Err(PkiError::NoSubjectAltNames)));
    assert!(matches!(
        ca.issue_server(&["bad\u{e9}.example"], &[]),
        Err(PkiError::InvalidDnsName(name)) if name == "bad\u{e9}.example"
    ));
    assert!(matches!(ca.issue_client("", &["g"]), Err(PkiError::EmptyCommonName)));
    let key_only = ca.issue_client("u", &[]).unwrap().key_pem;
    for bundle in ["", "not pem at all", key_only.as_str()] {
        assert!(matches!(client_config(bundle.as_bytes(), None), Err(PkiError::EmptyBundle)), "{bundle:?}");
    }
    let broken = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
    assert!(matches!(client_config(broken.as_bytes(), None), Err(PkiError::Pem(_))));
    let mut no_key = localhost_leaf(&ca);
    no_key.key_pem = String::new();
    assert!(matches!(server_config(&no_key, None), Err(PkiError::NoPrivateKey)));
    assert!(matches!(server_config(&localhost_leaf(&ca), Some("")), Err(PkiError::EmptyBundle)));
    assert!(matches!(peer_identity(b"\x30\x00"), Err(PkiError::Certificate(_))));
    let debug = format!("{:?}", localhost_leaf(&ca));
    assert!(debug.contains("<redacted>") && !debug.contains("PRIVATE KEY"));
}
