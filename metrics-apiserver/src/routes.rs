//! Routing, as a pure function of the request path: which document or value a path asks for
//! ([`route`]), with percent-decoded namespace and metric segments, and a bounded label for each
//! kind of route (used in metrics). The server answers GET (and HEAD) only.

use crate::discovery::GROUP_VERSION;

/// What a request path asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `/livez`: the process is up.
    Livez,
    /// `/readyz`: the link to the operator works.
    Readyz,
    /// `/healthz`: same as `/readyz` (older probes).
    Healthz,
    /// `/apis`
    GroupList,
    /// `/apis/external.metrics.k8s.io`
    Group,
    /// `/apis/external.metrics.k8s.io/v1beta1`
    ResourceList,
    /// `/openapi/v2`
    OpenApiV2,
    /// `/openapi/v3`
    OpenApiV3Index,
    /// `/openapi/v3/apis/external.metrics.k8s.io/v1beta1`
    OpenApiV3,
    /// `/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/{metric}`
    Value { namespace: String, metric: String },
    /// Anything else; the message says what was expected.
    NotFound(String),
}

impl Route {
    /// Bounded label of the route kind, for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Route::Livez | Route::Readyz | Route::Healthz => "health",
            Route::GroupList | Route::Group | Route::ResourceList => "discovery",
            Route::OpenApiV2 | Route::OpenApiV3Index | Route::OpenApiV3 => "openapi",
            Route::Value { .. } => "externalmetrics",
            Route::NotFound(_) => "other",
        }
    }

    /// Whether the route is a health probe, answered without authentication (as Kubernetes
    /// allows `/livez`, `/readyz` and `/healthz` to anyone).
    pub fn is_health(&self) -> bool {
        matches!(self, Route::Livez | Route::Readyz | Route::Healthz)
    }
}

const VALUES_PREFIX: &str = "/apis/external.metrics.k8s.io/v1beta1/";

/// The route of `path` (without query string).
pub fn route(path: &str) -> Route {
    let trimmed = if path.len() > 1 { path.strip_suffix('/').unwrap_or(path) } else { path };
    match trimmed {
        "/livez" => return Route::Livez,
        "/readyz" => return Route::Readyz,
        "/healthz" => return Route::Healthz,
        "/apis" => return Route::GroupList,
        "/apis/external.metrics.k8s.io" => return Route::Group,
        "/apis/external.metrics.k8s.io/v1beta1" => return Route::ResourceList,
        "/openapi/v2" => return Route::OpenApiV2,
        "/openapi/v3" => return Route::OpenApiV3Index,
        "/openapi/v3/apis/external.metrics.k8s.io/v1beta1" => return Route::OpenApiV3,
        _ => {}
    }
    let Some(rest) = path.strip_prefix(VALUES_PREFIX) else {
        return Route::NotFound(format!(
            "this server only serves {GROUP_VERSION}: no such path {path}; metric values are at \
             {VALUES_PREFIX}namespaces/<namespace>/<metric>?labelSelector=scaledobject.keda.sh/name=<name>"
        ));
    };
    let segments: Vec<&str> = rest.split('/').collect();
    match segments.as_slice() {
        ["namespaces", namespace, metric] if !namespace.is_empty() && !metric.is_empty() => {
            match (decode(namespace), decode(metric)) {
                (Some(namespace), Some(metric)) => Route::Value { namespace, metric },
                _ => Route::NotFound(format!("invalid percent-encoding in path {path}")),
            }
        }
        ["namespaces", namespace] | ["namespaces", namespace, ""] => Route::NotFound(format!(
            "no metric named in path {path}: use {VALUES_PREFIX}namespaces/{namespace}/<metric>"
        )),
        [metric] if !metric.is_empty() => Route::NotFound(format!(
            "external metrics are namespaced: use {VALUES_PREFIX}namespaces/<namespace>/{metric}"
        )),
        _ => Route::NotFound(format!(
            "no such path {path}: metric values are at {VALUES_PREFIX}namespaces/<namespace>/<metric>"
        )),
    }
}

/// Percent-decodes one path segment; `None` when an escape is malformed or the result is not
/// UTF-8.
pub fn decode(segment: &str) -> Option<String> {
    if !segment.contains('%') {
        return Some(segment.to_owned());
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(ns: &str, metric: &str) -> Route {
        Route::Value { namespace: ns.into(), metric: metric.into() }
    }

    #[test]
    fn routes_table() {
        let cases = [
            ("/livez", Route::Livez),
            ("/readyz", Route::Readyz),
            ("/healthz", Route::Healthz),
            ("/apis", Route::GroupList),
            ("/apis/", Route::GroupList),
            ("/apis/external.metrics.k8s.io", Route::Group),
            ("/apis/external.metrics.k8s.io/v1beta1", Route::ResourceList),
            ("/apis/external.metrics.k8s.io/v1beta1/", Route::ResourceList),
            ("/openapi/v2", Route::OpenApiV2),
            ("/openapi/v3", Route::OpenApiV3Index),
            ("/openapi/v3/apis/external.metrics.k8s.io/v1beta1", Route::OpenApiV3),
            (
                "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/s0-cron-UTC-05xxxx-10xxxx",
                value("default", "s0-cron-UTC-05xxxx-10xxxx"),
            ),
            (
                "/apis/external.metrics.k8s.io/v1beta1/namespaces/prod/s0-cron-Asia-Seoul-00%2C15%2C30%2C45xxxx-05%2C20%2C35%2C50xxxx",
                value("prod", "s0-cron-Asia-Seoul-00,15,30,45xxxx-05,20,35,50xxxx"),
            ),
            (
                "/apis/external.metrics.k8s.io/v1beta1/namespaces/prod/s0-cron-Asia-Seoul-00,15,30,45xxxx-05,20,35,50xxxx",
                value("prod", "s0-cron-Asia-Seoul-00,15,30,45xxxx-05,20,35,50xxxx"),
            ),
        ];
        for (path, want) in cases {
            assert_eq!(route(path), want, "{path}");
        }
    }

    #[test]
    fn unknown_paths_say_what_is_served() {
        let cases = [
            ("/", "this server only serves external.metrics.k8s.io/v1beta1"),
            ("/api/v1/pods", "no such path /api/v1/pods"),
            ("/apis/custom.metrics.k8s.io/v1beta1", "this server only serves"),
            ("/apis/external.metrics.k8s.io/v1beta2", "this server only serves"),
            ("/apis/external.metrics.k8s.io/v1beta1/s0-queue", "external metrics are namespaced"),
            ("/apis/external.metrics.k8s.io/v1beta1/namespaces/default", "no metric named in path"),
            ("/apis/external.metrics.k8s.io/v1beta1/namespaces/default/", "no metric named in path"),
            ("/apis/external.metrics.k8s.io/v1beta1/namespaces/default/m/extra", "no such path"),
            ("/apis/external.metrics.k8s.io/v1beta1/namespaces//m", "no such path"),
            ("/apis/external.metrics.k8s.io/v1beta1/namespaces/default/bad%2", "invalid percent-encoding"),
            ("/apis/external.metrics.k8s.io/v1beta1/namespaces/default/bad%ff", "invalid percent-encoding"),
        ];
        for (path, message) in cases {
            match route(path) {
                Route::NotFound(m) => assert!(m.contains(message), "{path}: {m}"),
                other => panic!("{path}: {other:?}"),
            }
        }
    }

    #[test]
    fn labels_are_bounded() {
        assert_eq!(route("/livez").label(), "health");
        assert_eq!(route("/apis").label(), "discovery");
        assert_eq!(route("/openapi/v2").label(), "openapi");
        assert_eq!(route("/apis/external.metrics.k8s.io/v1beta1/namespaces/a/b").label(), "externalmetrics");
        assert_eq!(route("/x").label(), "other");
        assert!(route("/readyz").is_health());
        assert!(!route("/apis").is_health());
    }

    #[test]
    fn decoding() {
        assert_eq!(decode("a%20b").as_deref(), Some("a b"));
        assert_eq!(decode("%C3%A9").as_deref(), Some("é"));
        assert_eq!(decode("plain").as_deref(), Some("plain"));
        assert_eq!(decode("%zz"), None);
        assert_eq!(decode("%4"), None);
    }
}
