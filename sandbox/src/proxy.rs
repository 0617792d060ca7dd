//! API aggregation: requests under a group/version claimed by an APIService with a service are
//! proxied to that service over TLS, verifying the APIService's caBundle, presenting the
//! front-proxy client certificate and passing the authenticated user in X-Remote-User /
//! X-Remote-Group (the caller's own Authorization header is not forwarded), as kube-aggregator
//! does. Services resolve to loopback addresses through the admission service mapping.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Response, StatusCode, Uri, header};
use base64::Engine;
use serde_json::Value;

use crate::control::UserInfo;
use crate::server::AppState;
use crate::status::ApiError;

/// Proxies one request to the APIService's backend.
#[allow(clippy::too_many_arguments)]
pub async fn forward(
    state: &AppState,
    apiservice: &Value,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
    user: &UserInfo,
) -> Result<Response<Body>, ApiError> {
    let name = apiservice.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let unavailable =
        |why: String| ApiError::service_unavailable(format!("the APIService {name:?} is unavailable: {why}"));
    let (client, host) =
        backend(&state.cp, apiservice, state.front_proxy.as_deref(), Duration::from_secs(30))
            .map_err(|e| unavailable(e.to_string()))?;
    let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    // The mapped address stands for the Service's endpoints whatever `spec.service.port` says;
    // a port in the URL would replace the mapped one, so the URL carries none.
    let url = format!("https://{host}{path_and_query}");
    let mut req = client.request(method.clone(), &url).body(body);
    for (k, v) in headers {
        if !forwarded(k) {
            continue;
        }
        req = req.header(k, v);
    }
    req = req.header("X-Remote-User", &user.username);
    for g in &user.groups {
        req = req.header("X-Remote-Group", g);
    }
    let resp = req.send().await.map_err(|e| {
        unavailable(format!("error trying to reach service: {}", crate::admission::error_chain(&e)))
    })?;
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut out = Response::builder().status(status);
    for (k, v) in resp.headers() {
        if k != header::TRANSFER_ENCODING && k != header::CONNECTION && k != header::CONTENT_LENGTH {
            out = out.header(k.as_str(), v.as_bytes());
        }
    }
    let bytes = resp.bytes().await.map_err(|e| {
        unavailable(format!("error reading the response: {}", crate::admission::error_chain(&e)))
    })?;
    out.body(Body::from(bytes)).map_err(|e| ApiError::internal(e.to_string()))
}

/// Why an APIService's backend cannot be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendError {
    /// No `spec.service`.
    NoService,
    /// The Service has no endpoints (nothing mapped to it).
    NoEndpoints { namespace: String, name: String },
    /// caBundle, client certificate or client setup.
    Tls(String),
}

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoService => f.write_str("no service"),
            Self::NoEndpoints { namespace, name } => {
                write!(f, "service \"{namespace}/{name}\" has no endpoints in the sandbox")
            }
            Self::Tls(why) => f.write_str(why),
        }
    }
}

/// A client for the APIService's backend Service — its host name resolving to the mapped
/// address, verifying `caBundle` (or nothing, with `insecureSkipTLSVerify`) and presenting the
/// front-proxy client certificate — and that host name (`name.namespace.svc`).
pub fn backend(
    cp: &crate::control::ControlPlane,
    apiservice: &Value,
    front_proxy: Option<&crate::pki::Leaf>,
    timeout: Duration,
) -> Result<(reqwest::Client, String), BackendError> {
    let svc = apiservice.pointer("/spec/service").filter(|s| !s.is_null()).ok_or(BackendError::NoService)?;
    let ns = svc.get("namespace").and_then(Value::as_str).unwrap_or_default();
    let svc_name = svc.get("name").and_then(Value::as_str).unwrap_or_default();
    let addr = cp
        .admission
        .service_addr(ns, svc_name)
        .ok_or_else(|| BackendError::NoEndpoints { namespace: ns.to_owned(), name: svc_name.to_owned() })?;
    let insecure = apiservice.pointer("/spec/insecureSkipTLSVerify").and_then(Value::as_bool) == Some(true);
    let ca = match apiservice.pointer("/spec/caBundle").and_then(Value::as_str).filter(|b| !b.is_empty()) {
        Some(b) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .map_err(|e| BackendError::Tls(format!("caBundle is not base64: {e}")))?,
        None if insecure => Vec::new(),
        None => return Err(BackendError::Tls("no caBundle and insecureSkipTLSVerify is not set".into())),
    };
    let host = format!("{svc_name}.{ns}.svc");
    let mut builder = reqwest::Client::builder().resolve(&host, addr).timeout(timeout);
    if insecure {
        builder = builder.danger_accept_invalid_certs(true);
        if let Some(fp) = front_proxy {
            let id = reqwest::Identity::from_pem(format!("{}{}", fp.cert_pem, fp.key_pem).as_bytes())
                .map_err(|e| BackendError::Tls(e.to_string()))?;
            builder = builder.identity(id);
        }
    } else {
        let tls =
            crate::pki::client_config(&ca, front_proxy).map_err(|e| BackendError::Tls(e.to_string()))?;
        builder = builder.use_preconfigured_tls((*tls).clone());
    }
    Ok((builder.build().map_err(|e| BackendError::Tls(e.to_string()))?, host))
}

/// Whether a request header goes on to the backend: not the caller's credentials (the backend
/// trusts the front-proxy certificate and X-Remote-* instead), not identity headers the caller
/// set itself, and not hop-by-hop or framing headers.
fn forwarded(name: &header::HeaderName) -> bool {
    let n = name.as_str();
    !(n.starts_with("x-remote-")
        || n.starts_with("impersonate-")
        || n.starts_with("proxy-")
        || [
            header::AUTHORIZATION,
            header::HOST,
            header::CONNECTION,
            header::CONTENT_LENGTH,
            header::TRANSFER_ENCODING,
            header::TE,
            header::UPGRADE,
        ]
        .contains(name)
        || n == "keep-alive")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_end_to_end_headers_are_forwarded() {
        let cases = [
            ("accept", true),
            ("content-type", true),
            ("user-agent", true),
            ("authorization", false),
            ("x-remote-user", false),
            ("x-remote-group", false),
            ("x-remote-extra-scopes", false),
            ("impersonate-user", false),
            ("connection", false),
            ("keep-alive", false),
            ("transfer-encoding", false),
            ("content-length", false),
            ("host", false),
        ];
        for (name, want) in cases {
            assert_eq!(forwarded(&header::HeaderName::from_static(name)), want, "{name}");
        }
    }
}
