//! Keeping the front-proxy settings in step with kube-system/extension-apiserver-authentication:
//! read at startup ([`fetch`]), then re-read every refresh period ([`refresh`]). The
//! requestheader CA is also written to a file in the state directory ([`write_atomically`]) —
//! the TLS acceptor asks clients for certificates signed by the CAs in that file and reloads it
//! when it changes, while requests are checked against the in-memory copy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;

use super::Authenticator;
use super::front_proxy::RequestHeaderConfig;

/// Namespace of the ConfigMap kube-apiserver publishes.
pub const NAMESPACE: &str = "kube-system";
/// Name of the ConfigMap kube-apiserver publishes.
pub const NAME: &str = "extension-apiserver-authentication";
/// File name of the requestheader CA bundle in the state directory.
pub const CA_FILE_NAME: &str = "requestheader-client-ca.crt";

/// Reads the settings from the cluster.
pub async fn fetch(client: &kube::Client, timeout: Duration) -> Result<RequestHeaderConfig, String> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    let cm = match tokio::time::timeout(timeout, api.get(NAME)).await {
        Ok(Ok(cm)) => cm,
        Ok(Err(err)) => {
            return Err(format!(
                "cannot read ConfigMap {NAMESPACE}/{NAME} (this server's service account needs the \
                 extension-apiserver-authentication-reader Role in {NAMESPACE}): {err}"
            ));
        }
        Err(_) => {
            return Err(format!("reading ConfigMap {NAMESPACE}/{NAME} got no answer within {timeout:?}"));
        }
    };
    let data: BTreeMap<String, String> = cm.data.unwrap_or_default();
    RequestHeaderConfig::from_config_map(&data).map_err(|err| format!("ConfigMap {NAMESPACE}/{NAME}: {err}"))
}

/// Writes `contents` to `path` through a temporary file and a rename, so a reader sees the old
/// or the new file, never half of one.
pub fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path)
}

/// Where the refresh loop keeps the CA file the TLS acceptor reads; `None` when the acceptor
/// asks for no client certificates (no CA at startup).
#[derive(Clone)]
pub struct Refresh {
    pub client: kube::Client,
    pub period: Duration,
    pub timeout: Duration,
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for Refresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refresh")
            .field("period", &self.period)
            .field("timeout", &self.timeout)
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

/// Re-reads the settings every period until `shutdown`, installing and writing changes. A
/// failed read keeps the previous settings (logged once until it works again).
pub async fn refresh(
    auth: Arc<Authenticator>,
    cfg: Refresh,
    mut current: RequestHeaderConfig,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut shutdown = std::pin::pin!(shutdown);
    let mut failing = false;
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(cfg.period) => {}
        }
        let fresh = match fetch(&cfg.client, cfg.timeout).await {
            Ok(fresh) => {
                if failing {
                    tracing::info!("{NAMESPACE}/{NAME} readable again");
                    failing = false;
                }
                fresh
            }
            Err(err) => {
                if !failing {
                    tracing::warn!("keeping the previous front-proxy settings: {err}");
                    failing = true;
                }
                continue;
            }
        };
        if fresh == current {
            continue;
        }
        apply(&auth, &cfg, &fresh);
        current = fresh;
    }
}

fn apply(auth: &Authenticator, cfg: &Refresh, fresh: &RequestHeaderConfig) {
    match auth.set_request_header(fresh.clone()) {
        Ok(true) => tracing::info!(
            allowed_names = ?fresh.allowed_names,
            "front-proxy settings changed in {NAMESPACE}/{NAME}"
        ),
        Ok(false) => tracing::warn!(
            "{NAMESPACE}/{NAME} has no requestheader-client-ca-file any more: client certificates are refused"
        ),
        Err(err) => {
            tracing::warn!("ignoring the new front-proxy settings: {err}");
            return;
        }
    }
    match (&cfg.ca_file, &fresh.ca_pem) {
        (Some(path), Some(pem)) => {
            if let Err(err) = write_atomically(path, pem.as_bytes()) {
                tracing::warn!(path = %path.display(), "cannot write the requestheader CA for TLS: {err}");
            }
        }
        (None, Some(_)) => tracing::warn!(
            "{NAMESPACE}/{NAME} now has a requestheader CA but the TLS endpoint started without one: \
             restart to accept the aggregator's client certificate"
        ),
        (_, None) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_the_file() {
        let dir = std::env::temp_dir().join(format!("ebb-mas-write-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(CA_FILE_NAME);
        write_atomically(&path, b"one").unwrap();
        let before = ebb_plumbing::tls::stamp(&path);
        write_atomically(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_ne!(ebb_plumbing::tls::stamp(&path), before, "a reload must see the change");
        assert!(!path.with_extension("tmp").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
