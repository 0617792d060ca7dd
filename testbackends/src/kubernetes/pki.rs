//! The upstream control plane's PKI, written as files into its directory: the cluster CA with
//! the API server's serving certificate and the client certificates of the admin and of
//! kube-controller-manager; the front-proxy CA with the client certificate the aggregator presents
//! to aggregated API servers; the service-account signing key. Kubeconfigs refer to the files.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use ebb_sandbox::pki::{CertAuthority, Leaf};

/// A certificate and its key, as file names inside the control plane's directory.
#[derive(Debug, Clone)]
pub struct Pair {
    pub cert: String,
    pub key: String,
}

/// Every file [`write`] made, by role (names relative to the directory), and the two CAs, which
/// tests may use to issue more certificates (their keys are never written).
#[derive(Debug)]
pub struct Files {
    pub cluster_ca: CertAuthority,
    pub front_proxy_authority: CertAuthority,
    pub ca: String,
    pub serving: Pair,
    pub admin: Pair,
    pub controller_manager: Pair,
    pub front_proxy_ca: String,
    pub front_proxy_client: Pair,
    pub service_account_key: String,
    pub service_account_public_key: String,
}

/// Makes the PKI in `dir`; `service_ip` (the `kubernetes` Service's ClusterIP) is a subject
/// alternative name of the serving certificate, as are 127.0.0.1 and the Service's DNS names.
pub fn write(dir: &Path, service_ip: Ipv4Addr) -> Result<Files, String> {
    let ca = CertAuthority::new("ebb-upstream-ca").map_err(err)?;
    let front_proxy = CertAuthority::new("ebb-upstream-front-proxy-ca").map_err(err)?;
    let serving = ca
        .issue_server(
            &[
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
            &[IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V4(service_ip)],
        )
        .map_err(err)?;
    let admin = ca.issue_client("ebb-admin", &["system:masters"]).map_err(err)?;
    let kcm = ca.issue_client("system:kube-controller-manager", &[]).map_err(err)?;
    let front_proxy_client = front_proxy.issue_client("front-proxy-client", &[]).map_err(err)?;
    let sa_key = rcgen::KeyPair::generate().map_err(|e| format!("service-account key: {e}"))?;

    put(dir, "ca.crt", ca.cert_pem())?;
    put(dir, "front-proxy-ca.crt", front_proxy.cert_pem())?;
    put(dir, "sa.key", &sa_key.serialize_pem())?;
    put(dir, "sa.pub", &sa_key.public_key_pem())?;
    Ok(Files {
        cluster_ca: ca,
        front_proxy_authority: front_proxy,
        ca: "ca.crt".into(),
        serving: pair(dir, "apiserver", &serving)?,
        admin: pair(dir, "admin", &admin)?,
        controller_manager: pair(dir, "kube-controller-manager", &kcm)?,
        front_proxy_ca: "front-proxy-ca.crt".into(),
        front_proxy_client: pair(dir, "front-proxy-client", &front_proxy_client)?,
        service_account_key: "sa.key".into(),
        service_account_public_key: "sa.pub".into(),
    })
}

/// Writes a kubeconfig for the API server on `port` that authenticates with `user`'s certificate.
pub fn write_kubeconfig(path: &Path, port: u16, ca: &str, user: &Pair) -> Result<(), String> {
    let dir = path.parent().ok_or_else(|| format!("{} has no directory", path.display()))?;
    let abs = |name: &str| dir.join(name).display().to_string();
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: upstream
  cluster:
    server: https://127.0.0.1:{port}
    certificate-authority: {ca}
users:
- name: user
  user:
    client-certificate: {cert}
    client-key: {key}
contexts:
- name: upstream
  context:
    cluster: upstream
    user: user
    namespace: default
current-context: upstream
",
        ca = abs(ca),
        cert = abs(&user.cert),
        key = abs(&user.key),
    );
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn pair(dir: &Path, name: &str, leaf: &Leaf) -> Result<Pair, String> {
    let p = Pair { cert: format!("{name}.crt"), key: format!("{name}.key") };
    put(dir, &p.cert, &leaf.cert_pem)?;
    put(dir, &p.key, &leaf.key_pem)?;
    Ok(p)
}

fn put(dir: &Path, name: &str, text: &str) -> Result<(), String> {
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn err(e: impl std::fmt::Display) -> String {
    format!("upstream PKI: {e}")
}
