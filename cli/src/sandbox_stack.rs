//! The ebb stack of `ebb sandbox`: certificates for the three programs (serving certificates for
//! the `keda/ebb-metrics-apiserver` and `keda/ebb-webhook` Services signed by the control plane's
//! CA, and a private CA for the operator's internal mutual-TLS endpoint), the environment each
//! program is started with, and the APIService and ValidatingWebhookConfiguration taken from
//! `deploy/` with their `caBundle` set to the control plane's CA and their Services mapped to the
//! programs' local ports.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use base64::Engine;
use ebb_sandbox::pki::CertAuthority;
use ebb_sandbox::sandbox::Sandbox;
use serde_json::Value;

use crate::error::CliError;

/// The APIService of `deploy/` (the installation's source of truth).
const APISERVICE: &str = include_str!("../../deploy/base/metrics-apiserver/apiservice.yaml");
/// The ValidatingWebhookConfiguration of `deploy/`.
const WEBHOOK_CONFIG: &str = include_str!("../../deploy/base/webhook/validatingwebhookconfiguration.yaml");

/// Namespace of the programs' Services.
pub const NAMESPACE: &str = "keda";

fn err(what: &str) -> impl Fn(String) -> CliError + '_ {
    move |e| CliError::Output(format!("{what}: {e}"))
}

/// Local addresses and files of the stack.
#[derive(Debug)]
pub struct Stack {
    pub internal: SocketAddr,
    pub metrics: SocketAddr,
    pub webhook: SocketAddr,
    dir: PathBuf,
}

fn free_addr() -> Result<SocketAddr, CliError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| err("cannot find a free port")(e.to_string()))?;
    l.local_addr().map_err(|e| err("cannot find a free port")(e.to_string()))
}

impl Stack {
    /// Issues every certificate into `dir` and picks the local ports.
    pub fn new(sb: &Sandbox, dir: &Path) -> Result<Self, CliError> {
        let write = |name: &str, text: &str| {
            std::fs::write(dir.join(name), text)
                .map_err(|e| err(&dir.join(name).display().to_string())(e.to_string()))
        };
        let pki = |e: ebb_sandbox::pki::PkiError| err("cannot issue certificates")(e.to_string());
        let internal_ca = CertAuthority::new("ebb-internal-ca").map_err(pki)?;
        let operator = internal_ca.issue_server(&["localhost"], &[[127, 0, 0, 1].into()]).map_err(pki)?;
        let client = internal_ca.issue_client("ebb-metrics-apiserver", &[]).map_err(pki)?;
        write("internal-ca.crt", internal_ca.cert_pem())?;
        write("operator.crt", &operator.cert_pem)?;
        write("operator.key", &operator.key_pem)?;
        write("internal-client.crt", &client.cert_pem)?;
        write("internal-client.key", &client.key_pem)?;
        for service in ["ebb-metrics-apiserver", "ebb-webhook"] {
            let leaf = sb
                .service_cert(NAMESPACE, service)
                .map_err(|e| err("cannot issue certificates")(e.to_string()))?;
            write(&format!("{service}.crt"), &leaf.cert_pem)?;
            write(&format!("{service}.key"), &leaf.key_pem)?;
        }
        Ok(Self { internal: free_addr()?, metrics: free_addr()?, webhook: free_addr()?, dir: dir.to_owned() })
    }

    fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// Environment of program `name` beyond its admin address and KUBECONFIG.
    pub fn env(&self, name: &str) -> Vec<(&'static str, String)> {
        match name {
            "ebb-operator" => vec![
                ("POD_NAMESPACE", NAMESPACE.to_owned()),
                ("EBB_INTERNAL_ADDR", self.internal.to_string()),
                ("EBB_INTERNAL_CERT_FILE", self.file("operator.crt")),
                ("EBB_INTERNAL_KEY_FILE", self.file("operator.key")),
                ("EBB_INTERNAL_CLIENT_CA_FILE", self.file("internal-ca.crt")),
            ],
            "ebb-metrics-apiserver" => vec![
                ("EBB_SECURE_ADDR", self.metrics.to_string()),
                ("EBB_TLS_CERT_FILE", self.file("ebb-metrics-apiserver.crt")),
                ("EBB_TLS_KEY_FILE", self.file("ebb-metrics-apiserver.key")),
                ("EBB_OPERATOR_URL", format!("https://{}", self.internal)),
                ("EBB_OPERATOR_CA_FILE", self.file("internal-ca.crt")),
                ("EBB_OPERATOR_CERT_FILE", self.file("internal-client.crt")),
                ("EBB_OPERATOR_KEY_FILE", self.file("internal-client.key")),
                ("EBB_STATE_DIR", self.dir.display().to_string()),
            ],
            "ebb-webhook" => vec![
                ("EBB_SECURE_ADDR", self.webhook.to_string()),
                ("EBB_TLS_CERT_FILE", self.file("ebb-webhook.crt")),
                ("EBB_TLS_KEY_FILE", self.file("ebb-webhook.key")),
            ],
            _ => Vec::new(),
        }
    }

    /// Maps the Services to the local ports and creates the APIService and the webhook
    /// configuration of `deploy/`, trusting the control plane's CA.
    pub fn register(&self, sb: &Sandbox) -> Result<(), CliError> {
        sb.map_service(NAMESPACE, "ebb-metrics-apiserver", self.metrics);
        sb.map_service(NAMESPACE, "ebb-webhook", self.webhook);
        let ca = base64::engine::general_purpose::STANDARD.encode(sb.ca.cert_pem());
        let mut apiservice: Value =
            serde_yaml::from_str(APISERVICE).map_err(|e| err("deploy APIService")(e.to_string()))?;
        apiservice["spec"]["caBundle"] = Value::String(ca.clone());
        if let Some(spec) = apiservice["spec"].as_object_mut() {
            spec.remove("insecureSkipTLSVerify");
        }
        sb.create(&apiservice).map_err(|e| err("cannot register the APIService")(e.message))?;
        let mut webhooks: Value = serde_yaml::from_str(WEBHOOK_CONFIG)
            .map_err(|e| err("deploy webhook configuration")(e.to_string()))?;
        for hook in webhooks["webhooks"].as_array_mut().into_iter().flatten() {
            hook["clientConfig"]["caBundle"] = Value::String(ca.clone());
        }
        sb.create(&webhooks).map_err(|e| err("cannot install the webhook configuration")(e.message))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deploy_objects_parse_and_name_the_services() {
        let a: Value = serde_yaml::from_str(APISERVICE).unwrap();
        assert_eq!(a["metadata"]["name"], "v1beta1.external.metrics.k8s.io");
        assert_eq!(a["spec"]["service"]["name"], "ebb-metrics-apiserver");
        let w: Value = serde_yaml::from_str(WEBHOOK_CONFIG).unwrap();
        let hooks = w["webhooks"].as_array().unwrap();
        assert!(!hooks.is_empty());
        assert!(hooks.iter().all(|h| h["clientConfig"]["service"]["name"] == "ebb-webhook"));
    }
}
