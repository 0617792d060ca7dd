//! Request-header authentication, the way the Kubernetes aggregator identifies its callers to
//! an aggregated API server: the aggregator connects with its front-proxy client certificate
//! and names the user in `X-Remote-User`, `X-Remote-Group` and `X-Remote-Extra-*`.
//!
//! This module owns the configuration as kube-apiserver publishes it in
//! kube-system/extension-apiserver-authentication ([`RequestHeaderConfig`]), the verification of
//! a presented chain against its CA bundle with the leaf's common name ([`FrontProxy`]), and the
//! pure reading of the identity headers ([`header_identity`]) — which is only ever called for a
//! chain that verified and whose name is allowed.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::HeaderMap;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;

use super::User;

/// ConfigMap keys (as kube-apiserver writes them).
pub const CA_KEY: &str = "requestheader-client-ca-file";
pub const ALLOWED_NAMES_KEY: &str = "requestheader-allowed-names";
pub const USERNAME_HEADERS_KEY: &str = "requestheader-username-headers";
pub const GROUP_HEADERS_KEY: &str = "requestheader-group-headers";
pub const EXTRA_PREFIXES_KEY: &str = "requestheader-extra-headers-prefix";

/// Request-header authentication settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestHeaderConfig {
    /// PEM bundle of the CA that signs front-proxy client certificates; `None` disables
    /// request-header authentication.
    pub ca_pem: Option<String>,
    /// Common names a front-proxy certificate may carry; empty allows any certificate the CA
    /// signed (as Kubernetes does).
    pub allowed_names: Vec<String>,
    /// Headers naming the user, first non-empty wins.
    pub username_headers: Vec<String>,
    /// Headers naming groups, every value counts.
    pub group_headers: Vec<String>,
    /// Prefixes of headers carrying extra attributes.
    pub extra_prefixes: Vec<String>,
}

impl RequestHeaderConfig {
    /// Reads the settings from the ConfigMap's data. List values are JSON arrays; a missing
    /// header list gets the usual `X-Remote-*` default.
    pub fn from_config_map(data: &BTreeMap<String, String>) -> Result<Self, String> {
        let list = |key: &str, default: &[&str]| -> Result<Vec<String>, String> {
            match data.get(key).map(|v| v.trim()) {
                None | Some("") => Ok(default.iter().map(|s| (*s).to_owned()).collect()),
                Some(text) => serde_json::from_str::<Vec<String>>(text)
                    .map_err(|err| format!("{key} is not a JSON list of strings: {err}")),
            }
        };
        let ca_pem = data.get(CA_KEY).filter(|pem| !pem.trim().is_empty()).cloned();
        if let Some(pem) = &ca_pem {
            roots(pem).map_err(|err| format!("{CA_KEY}: {err}"))?;
        }
        Ok(Self {
            ca_pem,
            allowed_names: list(ALLOWED_NAMES_KEY, &[])?,
            username_headers: list(USERNAME_HEADERS_KEY, &["X-Remote-User"])?,
            group_headers: list(GROUP_HEADERS_KEY, &["X-Remote-Group"])?,
            extra_prefixes: list(EXTRA_PREFIXES_KEY, &["X-Remote-Extra-"])?,
        })
    }
}

/// A root store from a PEM bundle (at least one certificate).
pub fn roots(pem: &str) -> Result<RootCertStore, String> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| format!("invalid PEM: {err}"))?;
    if certs.is_empty() {
        return Err("no certificate in the bundle".to_owned());
    }
    let mut store = RootCertStore::empty();
    for cert in certs {
        store.add(cert).map_err(|err| format!("unusable CA certificate: {err}"))?;
    }
    Ok(store)
}

/// Request-header authentication ready to use: the settings and a verifier for their CA.
#[derive(Debug)]
pub struct FrontProxy {
    pub config: RequestHeaderConfig,
    verifier: Arc<dyn ClientCertVerifier>,
}

impl FrontProxy {
    /// `None` when the settings carry no CA.
    pub fn new(config: RequestHeaderConfig) -> Result<Option<Self>, String> {
        let Some(pem) = &config.ca_pem else { return Ok(None) };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots(pem)?), provider)
            .build()
            .map_err(|err| format!("client certificate verifier: {err}"))?;
        Ok(Some(Self { config, verifier }))
    }

    /// The common name of the chain's leaf, if the chain verifies against the CA now.
    pub fn verified_name(&self, chain: &[CertificateDer<'static>]) -> Result<String, String> {
        let (leaf, intermediates) = chain.split_first().ok_or_else(|| "no client certificate".to_owned())?;
        self.verifier
            .verify_client_cert(leaf, intermediates, UnixTime::now())
            .map_err(|err| format!("the client certificate is not signed by the requestheader CA: {err}"))?;
        common_name(leaf)
    }
}

/// The subject common name of a certificate.
pub fn common_name(cert: &CertificateDer<'_>) -> Result<String, String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|err| format!("unreadable client certificate: {err}"))?;
    let cn = parsed
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .ok_or_else(|| "the client certificate has no common name".to_owned())?;
    Ok(cn.to_owned())
}

/// The user a verified front-proxy certificate named `cn` speaks for: `Ok(None)` when no
/// username header is set, an error when `cn` is not an allowed name.
pub fn header_identity(
    cn: &str,
    headers: &HeaderMap,
    cfg: &RequestHeaderConfig,
) -> Result<Option<User>, String> {
    if !cfg.allowed_names.is_empty() && !cfg.allowed_names.iter().any(|n| n == cn) {
        return Err(format!(
            "the client certificate's common name {cn:?} is not an allowed front-proxy name \
             (requestheader-allowed-names: {})",
            cfg.allowed_names.join(", ")
        ));
    }
    let values = |name: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let Some(name) = cfg.username_headers.iter().find_map(|h| values(h).into_iter().next()) else {
        return Ok(None);
    };
    let mut groups: Vec<String> = cfg.group_headers.iter().flat_map(|h| values(h)).collect();
    // Every authenticated user is in system:authenticated, as Kubernetes' own servers add it
    // (the aggregator fetches /openapi/v2 with no group header; RBAC grants it to this group).
    if !groups.iter().any(|g| g == AUTHENTICATED) {
        groups.insert(0, AUTHENTICATED.to_owned());
    }
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (header, value) in headers {
        let header = header.as_str();
        let Some(key) = cfg.extra_prefixes.iter().find_map(|p| strip_prefix_ignore_case(header, p)) else {
            continue;
        };
        let Some(key) = crate::routes::decode(key) else { continue };
        if let Ok(value) = value.to_str() {
            extra.entry(key.to_ascii_lowercase()).or_default().push(value.to_owned());
        }
    }
    Ok(Some(User { name, uid: String::new(), groups, extra }))
}

/// The group of every authenticated user.
const AUTHENTICATED: &str = "system:authenticated";

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..]).filter(|rest| !rest.is_empty())
}

#[cfg(test)]
mod tests;
