use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use serde_yaml::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::*;
use crate::pki::{CertAuthority, server_config};

const CA_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

fn get<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(value, |v, key| match v {
        Value::Sequence(items) => &items[key.parse::<usize>().unwrap()],
        other => &other[*key],
    })
}

fn string(value: &Value, path: &[&str]) -> String {
    get(value, path).as_str().unwrap_or_else(|| panic!("{path:?} is not a string")).to_owned()
}

#[test]
fn structure_as_yaml() {
    let yaml = kubeconfig_yaml("https://127.0.0.1:6443", CA_PEM, "secret-token", "ebb-sandbox", Some("keda"));
    let doc: Value = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(string(&doc, &["apiVersion"]), "v1");
    assert_eq!(string(&doc, &["kind"]), "Config");
    assert_eq!(string(&doc, &["current-context"]), "ebb-sandbox");
    for list in ["clusters", "users", "contexts"] {
        assert_eq!(get(&doc, &[list]).as_sequence().unwrap().len(), 1, "{list}");
        assert_eq!(string(&doc, &[list, "0", "name"]), "ebb-sandbox", "{list}");
    }
    assert_eq!(string(&doc, &["clusters", "0", "cluster", "server"]), "https://127.0.0.1:6443");
    let ca_data = string(&doc, &["clusters", "0", "cluster", "certificate-authority-data"]);
    let decoded = base64::engine::general_purpose::STANDARD.decode(ca_data).unwrap();
    assert_eq!(decoded, CA_PEM.as_bytes());
    assert_eq!(string(&doc, &["users", "0", "user", "token"]), "secret-token");
    assert_eq!(string(&doc, &["contexts", "0", "context", "cluster"]), "ebb-sandbox");
    assert_eq!(string(&doc, &["contexts", "0", "context", "user"]), "ebb-sandbox");
    assert_eq!(string(&doc, &["contexts", "0", "context", "namespace"]), "keda");

    let without_ns = kubeconfig_yaml("https://h:1", CA_PEM, "t", "c", None);
    let doc: Value = serde_yaml::from_str(&without_ns).unwrap();
    assert_eq!(get(&doc, &["contexts", "0", "context", "namespace"]), &Value::Null);
}

#[test]
fn awkward_values_survive_quoting() {
    let cases = [
        ("plain", "abc.def-123"),
        ("yaml indicators", "- &a *b !c #d: e, [f] {g} |h >i 'j' %k @l `m"),
        ("quotes and escapes", "say \"hi\" \\ back\\slash"),
        ("looks like other types", "null"),
        ("number", "0600"),
        ("unicode and controls", "ünï\tcode\u{1}"),
        ("empty", ""),
    ];
    for (label, value) in cases {
        let yaml = kubeconfig_yaml(value, CA_PEM, value, value, Some(value));
        let doc: Value = serde_yaml::from_str(&yaml).unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(string(&doc, &["clusters", "0", "cluster", "server"]), value, "{label}");
        assert_eq!(string(&doc, &["users", "0", "user", "token"]), value, "{label}");
        assert_eq!(string(&doc, &["current-context"]), value, "{label}");
        assert_eq!(string(&doc, &["contexts", "0", "context", "namespace"]), value, "{label}");
    }
}

#[tokio::test]
async fn kube_rs_loads_it() {
    let yaml = kubeconfig_yaml("https://127.0.0.1:6443", CA_PEM, "secret-token", "ebb-sandbox", Some("keda"));
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&yaml).unwrap();
    assert_eq!(kubeconfig.current_context.as_deref(), Some("ebb-sandbox"));
    let cluster = kubeconfig.clusters[0].cluster.as_ref().unwrap();
    assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:6443"));
    let context = kubeconfig.contexts[0].context.as_ref().unwrap();
    assert_eq!(context.cluster, "ebb-sandbox");
    assert_eq!(context.user.as_deref(), Some("ebb-sandbox"));
    assert_eq!(kubeconfig.auth_infos[0].name, "ebb-sandbox");
    assert!(kubeconfig.auth_infos[0].auth_info.as_ref().unwrap().token.is_some());

    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
    assert_eq!(config.cluster_url.to_string(), "https://127.0.0.1:6443/");
    assert_eq!(config.default_namespace, "keda");
    // kube-rs decodes the PEM bundle to DER certificates.
    assert_eq!(config.root_cert.as_ref().map(Vec::len), Some(1));
}

/// Requests seen by [`serve_version`]: request line and Authorization header.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// Serves HTTP/1.1 over TLS on loopback, answering every request with a /version body, for
/// at most `connections` connections.
async fn serve_version(ca: &CertAuthority, connections: usize) -> (SocketAddr, Seen) {
    let leaf = ca.issue_server(&["localhost"], &[IpAddr::V4(Ipv4Addr::LOCALHOST)]).unwrap();
    // This stand-in speaks HTTP/1.1 only, so it must not agree to h2.
    let mut config = (*server_config(&leaf, None).unwrap()).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let record = seen.clone();
    tokio::spawn(async move {
        for _ in 0..connections {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                continue;
            };
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match tls.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&request).into_owned();
            let line = text.lines().next().unwrap_or_default().to_owned();
            let auth = text.lines().find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("authorization").then(|| value.trim().to_owned())
            });
            record.lock().unwrap().push((line, auth));
            let body = r#"{"major":"1","minor":"33","gitVersion":"v1.33.0","gitCommit":"abc","gitTreeState":"clean","buildDate":"2025-01-01T00:00:00Z","goVersion":"go1.24","compiler":"gc","platform":"linux/amd64"}"#;
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tls.write_all(response.as_bytes()).await;
            let _ = tls.shutdown().await;
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn kube_client_talks_to_a_server_using_it() {
    let ca = CertAuthority::new("ebb-sandbox-ca").unwrap();
    let (addr, seen) = serve_version(&ca, 4).await;
    for host in ["127.0.0.1", "localhost"] {
        let url = format!("https://{host}:{}", addr.port());
        let yaml = kubeconfig_yaml(&url, ca.cert_pem(), "tok-123", "ebb", Some("keda"));
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&yaml).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
        let client = kube::Client::try_from(config).unwrap();
        let info = client.apiserver_version().await.unwrap();
        assert_eq!((info.major.as_str(), info.minor.as_str()), ("1", "33"), "{host}");
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    for (line, auth) in seen {
        assert_eq!(line, "GET /version HTTP/1.1");
        assert_eq!(auth.as_deref(), Some("Bearer tok-123"));
    }

    // The same server is refused when the kubeconfig names another CA.
    let other = CertAuthority::new("ebb-sandbox-ca").unwrap();
    let url = format!("https://127.0.0.1:{}", addr.port());
    let yaml = kubeconfig_yaml(&url, other.cert_pem(), "tok-123", "ebb", None);
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&yaml).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
    let client = kube::Client::try_from(config).unwrap();
    assert!(client.apiserver_version().await.is_err());
}

#[tokio::test]
async fn kubectl_talks_to_a_server_using_it() {
    let Ok(probe) = tokio::process::Command::new("kubectl").args(["version", "--client"]).output().await
    else {
        eprintln!("kubectl not found; skipping");
        return;
    };
    assert!(probe.status.success());
    let ca = CertAuthority::new("ebb-sandbox-ca").unwrap();
    let (addr, seen) = serve_version(&ca, 4).await;
    let dir = std::env::temp_dir().join(format!("ebb-kubeconfig-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config");
    let url = format!("https://127.0.0.1:{}", addr.port());
    let yaml = kubeconfig_yaml(&url, ca.cert_pem(), "tok-456", "ebb", Some("keda"));
    write_kubeconfig(&path, &yaml).unwrap();

    let view = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&path)
        .args(["config", "view", "--minify", "-o", "jsonpath={.contexts[0].context.namespace}"])
        .output()
        .await
        .unwrap();
    assert!(view.status.success(), "{}", String::from_utf8_lossy(&view.stderr));
    assert_eq!(String::from_utf8_lossy(&view.stdout), "keda");

    let raw = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&path)
        .args(["get", "--raw", "/version", "--request-timeout=20s"])
        .output()
        .await
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(raw.status.success(), "{}", String::from_utf8_lossy(&raw.stderr));
    let body: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(body["gitVersion"], "v1.33.0");
    let seen = seen.lock().unwrap().clone();
    // kubectl may ask for the version more than once (some builds pick a client by it).
    assert!(!seen.is_empty());
    for (line, auth) in seen {
        assert!(line.starts_with("GET /version"), "{line}");
        assert_eq!(auth.as_deref(), Some("Bearer tok-456"));
    }
}

#[cfg(unix)]
#[test]
fn written_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = std::env::temp_dir().join(format!("ebb-kubeconfig-mode-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config");
    // A pre-existing, world-readable, longer file is tightened and fully replaced.
    std::fs::write(&path, "x".repeat(10_000)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let yaml = kubeconfig_yaml("https://127.0.0.1:1", CA_PEM, "t", "c", None);
    for _ in 0..2 {
        write_kubeconfig(&path, &yaml).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), yaml);
    }
    std::fs::remove_file(&path).unwrap();
    // A fresh file is created with 0600 too.
    write_kubeconfig(&path, &yaml).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(write_kubeconfig(&dir.join("missing").join("config"), &yaml).is_err());
}
