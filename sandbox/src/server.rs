//! The HTTP front of the control plane: authentication (bearer tokens), fault injection,
//! content negotiation (JSON, YAML, protobuf bodies; JSON and Table responses), dispatch of
//! each verb to the control plane, watches, and proxying of aggregated APIs.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Response, StatusCode, Uri, header};
use serde_json::Value;

use crate::api_path::{ObjectPath, Target, parse};
use crate::control::{ControlPlane, ListOptions, PatchType, Sub, UserInfo, WriteCtx};
use crate::faults::FaultAction;
use crate::resources::Resource;
use crate::status::ApiError;
use crate::{discovery, proxy, watch};

/// Shared state of the HTTP front.
#[derive(Debug, Clone)]
pub struct AppState {
    pub cp: Arc<ControlPlane>,
    /// `host:port` published in `/api`.
    pub address: String,
    /// Client certificate presented to aggregated API servers, with its CA.
    pub front_proxy: Option<Arc<crate::pki::Leaf>>,
}

pub fn router(state: AppState) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(state)
}

pub(crate) fn json_response(code: u16, v: &Value) -> Response<Body> {
    let body = serde_json::to_vec(v).unwrap_or_default();
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap_or_default()
}

pub(crate) fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.to_status())
}

fn query_map(uri: &Uri) -> std::collections::BTreeMap<String, String> {
    uri.query()
        .map(|q| {
            q.split('&')
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(x) = hex {
                out.push(x);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<UserInfo, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match token {
        Some(t) => state.cp.auth.authenticate(t).ok_or_else(ApiError::unauthorized),
        None => Err(ApiError::unauthorized()),
    }
}

async fn handle(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let path = uri.path().to_owned();
    let mut drop_watch = false;
    for action in state.cp.faults.take(method.as_str(), &path) {
        match action {
            FaultAction::Fail(code) => {
                let e = ApiError::new(
                    code,
                    if code == 429 { "TooManyRequests" } else { "InternalError" },
                    "injected fault",
                );
                let mut r = error_response(&e);
                if code == 429 {
                    r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
                }
                return r;
            }
            FaultAction::Delay(d) => tokio::time::sleep(d).await,
            FaultAction::DropWatch => drop_watch = true,
        }
    }
    let target = parse(&path);
    if target == Target::Health {
        return Response::new(Body::from("ok"));
    }
    let user = match authenticate(&state, &headers) {
        Ok(u) => u,
        Err(e) => return error_response(&e),
    };
    match dispatch(&state, target, &method, &uri, &headers, body, user, drop_watch).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

#[allow(clippy::too_many_arguments)]
async fn dispatch(
    state: &AppState,
    target: Target,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
    user: UserInfo,
    drop_watch: bool,
) -> Result<Response<Body>, ApiError> {
    let cp = &state.cp;
    // Aggregated APIs first: anything under a group/version an APIService claims.
    let gv = match &target {
        Target::Resources { group, version } => Some((group.clone(), version.clone())),
        Target::Object(o) => Some((o.group.clone(), o.version.clone())),
        _ => None,
    };
    if let Some((g, v)) = gv.filter(|(g, _)| !g.is_empty())
        && let Some(svc) = discovery::apiservice_for(cp, &g, &v)
    {
        return proxy::forward(state, &svc, method, uri, headers, body, &user).await;
    }
    let get_only = |v: Option<Value>| -> Result<Response<Body>, ApiError> {
        if method != Method::GET {
            return Err(ApiError::method_not_allowed(format!("{method} is not supported on {}", uri.path())));
        }
        v.map(|v| json_response(200, &v))
            .ok_or_else(|| ApiError::new(404, "NotFound", "the server could not find the requested resource"))
    };
    match target {
        Target::Version => get_only(Some(discovery::version())),
        Target::CoreVersions => get_only(Some(discovery::core_versions(&state.address))),
        Target::Groups => get_only(Some(discovery::groups(cp))),
        Target::Group(g) => get_only(discovery::group(cp, &g)),
        Target::Resources { group, version } => get_only(discovery::resources(cp, &group, &version)),
        Target::OpenApiIndex => get_only(Some(crate::openapi::index(cp))),
        Target::OpenApi(path) => get_only(crate::openapi::document(cp, &path)),
        Target::Health => Ok(Response::new(Body::from("ok"))),
        Target::NotFound => {
            Err(ApiError::new(404, "NotFound", "the server could not find the requested resource"))
        }
        Target::Object(o) => object(state, o, method, uri, headers, body, user, drop_watch).await,
    }
}

fn decode_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
    if ct.starts_with(crate::proto::PROTOBUF_CONTENT_TYPE) {
        return crate::proto::decode(body).map_err(|e| ApiError::unsupported_media_type(e.to_string()));
    }
    if body.is_empty() {
        return Ok(Value::Null);
    }
    if ct.contains("yaml") {
        return serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding JSON: {e}")))
}

fn patch_type(headers: &HeaderMap) -> Result<PatchType, ApiError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let base = ct.split(';').next().unwrap_or_default().trim();
    match base {
        "application/merge-patch+json" => Ok(PatchType::Merge),
        "application/json-patch+json" => Ok(PatchType::Json),
        "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
        "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(PatchType::Apply),
        other => Err(ApiError::unsupported_media_type(format!(
            "the body of the request was in an unknown format {other:?} - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json"
        ))),
    }
}

fn wants_table(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("as=Table"))
}

/// Default field manager: the `fieldManager` parameter, else the user agent's product name,
/// as kube-apiserver derives it.
fn field_manager(q: &std::collections::BTreeMap<String, String>, headers: &HeaderMap) -> String {
    if let Some(m) = q.get("fieldManager").filter(|m| !m.is_empty()) {
        return m.clone();
    }
    let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("unknown");
    ua.split('/').next().unwrap_or("unknown").to_owned()
}

#[allow(clippy::too_many_arguments)]
async fn object(
    state: &AppState,
    o: ObjectPath,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
    user: UserInfo,
    drop_watch: bool,
) -> Result<Response<Body>, ApiError> {
    let cp = &state.cp;
    let res: Resource = cp
        .resource(&o.group, &o.version, &o.plural)
        .ok_or_else(|| ApiError::new(404, "NotFound", "the server could not find the requested resource"))?;
    let q = query_map(uri);
    let ns = o.namespace.clone().unwrap_or_default();
    let sub = match o.sub.as_deref() {
        None => Sub::Main,
        Some("status") if res.status => Sub::Status,
        Some("scale") if res.scale.is_some() => Sub::Scale,
        Some(other) => {
            return Err(ApiError::new(
                404,
                "NotFound",
                format!("the server could not find the requested resource ({other})"),
            ));
        }
    };
    let ctx = WriteCtx {
        user,
        field_manager: field_manager(&q, headers),
        dry_run: q.get("dryRun").is_some_and(|v| v == "All"),
        force: q.get("force").is_some_and(|v| v == "true"),
        warnings: Default::default(),
        field_validation: crate::control::FieldValidation::parse(
            q.get("fieldValidation").map(String::as_str),
        )
        .ok_or_else(|| ApiError::bad_request("fieldValidation must be one of Ignore, Warn or Strict"))?,
    };
    let list_opts = ListOptions {
        label_selector: q.get("labelSelector").cloned(),
        field_selector: q.get("fieldSelector").cloned(),
        limit: q.get("limit").and_then(|l| l.parse().ok()),
        continue_: q.get("continue").cloned(),
    };
    let ns_opt = o.namespace.as_deref();
    let is_watch = q.get("watch").is_some_and(|w| w == "true" || w == "1");
    let out = match (method.clone(), o.name.as_deref()) {
        (Method::GET, None) if is_watch => {
            crate::list_options::validate(&q, true)?;
            Ok(watch::serve(cp.clone(), res, ns_opt.map(str::to_owned), list_opts, &q, drop_watch))
        }
        (Method::GET, None) => {
            crate::list_options::validate(&q, false)?;
            let list = cp.list(&res, ns_opt, &list_opts)?;
            if wants_table(headers) {
                return Ok(json_response(
                    200,
                    &crate::table::for_list(&res, &list, q.get("includeObject").map(String::as_str)),
                ));
            }
            Ok(json_response(200, &list))
        }
        (Method::GET, Some(name)) => {
            let obj = cp.get_sub(&res, &ns, name, sub)?;
            if wants_table(headers) && sub == Sub::Main {
                let list = serde_json::json!({"metadata": {"resourceVersion": crate::meta::resource_version(&obj).unwrap_or_default()}, "items": [obj]});
                return Ok(json_response(
                    200,
                    &crate::table::for_list(&res, &list, q.get("includeObject").map(String::as_str)),
                ));
            }
            Ok(json_response(200, &obj))
        }
        (Method::POST, None) => {
            let obj = cp.create(&res, &ns, decode_body(headers, &body)?, &ctx).await?;
            Ok(json_response(201, &obj))
        }
        (Method::PUT, Some(name)) => {
            let obj = cp.update(&res, &ns, name, decode_body(headers, &body)?, sub, &ctx).await?;
            Ok(json_response(200, &obj))
        }
        (Method::PATCH, Some(name)) => {
            let pt = patch_type(headers)?;
            if pt == PatchType::Apply && q.get("fieldManager").is_none_or(|m| m.is_empty()) {
                return Err(ApiError::bad_request("PATCH, fieldManager is required for apply requests"));
            }
            let patch = if pt == PatchType::Apply {
                serde_yaml::from_slice::<Value>(&body)
                    .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
            } else {
                serde_json::from_slice::<Value>(&body)
                    .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?
            };
            let existed = cp.get(&res, &ns, name).is_ok();
            let obj = cp.patch(&res, &ns, name, pt, patch, sub, &ctx).await?;
            Ok(json_response(if existed { 200 } else { 201 }, &obj))
        }
        (Method::DELETE, Some(name)) => {
            let opts = if body.is_empty() { Value::Null } else { decode_body(headers, &body)? };
            let mut opts = if opts.is_object() { opts } else { serde_json::json!({}) };
            if let Some(p) = q.get("propagationPolicy") {
                opts["propagationPolicy"] = Value::String(p.clone());
            }
            let out = cp.delete(&res, &ns, name, &opts, &ctx).await?;
            Ok(json_response(200, &out))
        }
        (Method::DELETE, None) => {
            let list = cp.list(&res, ns_opt, &list_opts)?;
            for item in list["items"].as_array().into_iter().flatten() {
                let (n, ins) = (
                    crate::meta::name(item).unwrap_or_default(),
                    crate::meta::namespace(item).unwrap_or_default(),
                );
                cp.delete(&res, ins, n, &serde_json::json!({}), &ctx).await?;
            }
            Ok(json_response(200, &list))
        }
        (m, _) => Err(ApiError::method_not_allowed(format!("{m} is not supported on {}", uri.path()))),
    };
    let mut resp = out?;
    for w in ctx.warnings.take() {
        if let Ok(v) = header::HeaderValue::from_str(&warning_header(&w)) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    Ok(resp)
}

/// A `Warning` header value as kube-apiserver sends it: code 299, no agent, the text quoted
/// (control characters and non-ASCII replaced, as header values allow neither).
pub fn warning_header(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| match c {
            '"' => "\\\"".to_owned(),
            '\\' => "\\\\".to_owned(),
            c if c.is_ascii_graphic() || c == ' ' => c.to_string(),
            _ => "?".to_owned(),
        })
        .collect();
    format!("299 - \"{clean}\"")
}

#[cfg(test)]
mod tests {
    #[test]
    fn warnings_are_quoted_header_values() {
        assert_eq!(super::warning_header("plain"), r#"299 - "plain""#);
        assert_eq!(super::warning_header("a \"b\" c\\d\né"), r#"299 - "a \"b\" c\\d??""#);
    }
}
