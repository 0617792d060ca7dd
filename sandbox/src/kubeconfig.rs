//! Kubeconfig files for the local control plane.
//!
//! Owns rendering a single-cluster, single-user kubeconfig (bearer-token user, CA embedded as
//! `certificate-authority-data`) that kubectl and kube-rs both load, and writing it to disk
//! readable by its owner only.

use std::io::Write as _;
use std::path::Path;

use base64::Engine as _;

/// Quotes a string as a YAML double-quoted scalar (JSON string syntax is a subset of it).
fn quoted(value: &str) -> String {
    serde_json::Value::String(value.to_owned()).to_string()
}

/// Renders a kubeconfig whose cluster, user and context are all named `context_name`, with
/// that context current. `ca_pem` is the PEM of the CA that signed the server's certificate;
/// `namespace`, when given, becomes the context's default namespace.
pub fn kubeconfig_yaml(
    server_url: &str,
    ca_pem: &str,
    token: &str,
    context_name: &str,
    namespace: Option<&str>,
) -> String {
    let name = quoted(context_name);
    let ca_data = base64::engine::general_purpose::STANDARD.encode(ca_pem.as_bytes());
    let mut out = String::new();
    out.push_str("apiVersion: v1\n");
    out.push_str("kind: Config\n");
    out.push_str("preferences: {}\n");
    out.push_str("clusters:\n");
    out.push_str(&format!("- name: {name}\n"));
    out.push_str("  cluster:\n");
    out.push_str(&format!("    server: {}\n", quoted(server_url)));
    out.push_str(&format!("    certificate-authority-data: {}\n", quoted(&ca_data)));
    out.push_str("users:\n");
    out.push_str(&format!("- name: {name}\n"));
    out.push_str("  user:\n");
    out.push_str(&format!("    token: {}\n", quoted(token)));
    out.push_str("contexts:\n");
    out.push_str(&format!("- name: {name}\n"));
    out.push_str("  context:\n");
    out.push_str(&format!("    cluster: {name}\n"));
    out.push_str(&format!("    user: {name}\n"));
    if let Some(ns) = namespace {
        out.push_str(&format!("    namespace: {}\n", quoted(ns)));
    }
    out.push_str(&format!("current-context: {name}\n"));
    out
}

/// Writes `yaml` to `path`, creating or truncating it, with permissions 0600 (owner read and
/// write only) also when the file already existed with wider ones.
pub fn write_kubeconfig(path: &Path, yaml: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(yaml.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests;
