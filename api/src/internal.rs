//! Wire types of the internal metrics link: the HTTP/2, mutual-TLS endpoint through which
//! `ebb-metrics-apiserver` asks `ebb-operator` for metric values. The operator owns every scaler
//! and every connection to a metric source; the metrics-apiserver only forwards questions here.
//!
//! The server is the operator's internal metrics service; the client is the metrics-apiserver's
//! link to it. This module holds what both sides must agree on, as plain data and pure functions:
//!
//! - `GET /v1/namespaces/{ns}/scaledobjects/{name}/metrics/{metric}` answers 200 with a
//!   [`MetricValue`] (whose `metricName` is the metric asked for), or 404 `NotFound`,
//!   503 `NotLeader`, 504 `Timeout`, 502 `ScalerError` or 500 `Internal`.
//! - `GET /healthz` answers 200 `ok`.
//!
//! Every error body is an [`ErrorBody`] (`{"reason": "...", "error": "..."}`); the status code
//! and the reason always agree ([`ErrorReason::status`]). [`ValueError`] is the typed form of
//! those errors plus the two failures only a client can observe (the operator could not be
//! reached, or answered outside this protocol). Path segments are percent-encoded
//! ([`metric_path`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Path of the liveness probe of the link.
pub const HEALTHZ_PATH: &str = "/healthz";

/// Body of a successful `GET /healthz`.
pub const HEALTHZ_BODY: &str = "ok";

/// Route template of the metric value endpoint (axum syntax).
pub const METRIC_ROUTE: &str = "/v1/namespaces/{namespace}/scaledobjects/{name}/metrics/{metric}";

/// Message carried by every `NotLeader` answer.
pub const NOT_LEADER_MESSAGE: &str = "this operator replica is not the leader; ask the leader";

/// One metric value of one ScaledObject, as the operator reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricValue {
    /// The external metric name (`s<index>-<scaler part>`).
    pub metric_name: String,
    /// The measured value. Always finite.
    pub value: f64,
    /// When the value was measured (RFC 3339 on the wire).
    pub timestamp: DateTime<Utc>,
    /// Whether the value came from the scale loop's cache or from a query made for this request.
    pub source: ValueOrigin,
}

/// Where a [`MetricValue`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueOrigin {
    /// The value the scale loop measured at its last poll (`useCachedMetrics: true`).
    Cache,
    /// A value queried from the metric source to answer this request.
    Live,
}

/// Machine-readable reason of an error answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorReason {
    /// The ScaledObject, or the metric on it, is unknown to the operator (404).
    NotFound,
    /// The replica asked is not the leader and holds no scalers (503).
    NotLeader,
    /// The live query did not finish in time (504).
    Timeout,
    /// The scaler failed to produce a value (502).
    ScalerError,
    /// The operator failed for a reason of its own (500).
    Internal,
}

impl ErrorReason {
    /// The HTTP status code that goes with this reason.
    pub fn status(self) -> u16 {
        match self {
            Self::NotFound => 404,
            Self::NotLeader => 503,
            Self::Timeout => 504,
            Self::ScalerError => 502,
            Self::Internal => 500,
        }
    }
}

/// The JSON body of every error answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Why the request failed.
    pub reason: ErrorReason,
    /// A human-readable message. Never carries credentials.
    #[serde(default)]
    pub error: String,
}

/// Why no metric value could be had.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// The ScaledObject or the metric is unknown; the message says which.
    #[error("{0}")]
    NotFound(String),
    /// The replica asked is not the leader.
    #[error("{}", NOT_LEADER_MESSAGE)]
    NotLeader,
    /// The live query timed out.
    #[error("{0}")]
    Timeout(String),
    /// The scaler reported an error (its message, with no secrets in it).
    #[error("{0}")]
    Scaler(String),
    /// The operator failed for a reason of its own.
    #[error("operator internal error: {0}")]
    Internal(String),
    /// Client side only: the operator could not be reached (connection, TLS handshake, or the
    /// request failing on the way).
    #[error("operator unreachable: {0}")]
    Unreachable(String),
    /// Client side only: the operator answered outside this protocol.
    #[error("unexpected answer from the operator (HTTP {status}): {message}")]
    Unexpected {
        /// The HTTP status received.
        status: u16,
        /// What was wrong with the answer.
        message: String,
    },
}

impl ValueError {
    /// `ScaledObject <ns>/<name> is unknown to the operator`.
    pub fn unknown_scaled_object(namespace: &str, name: &str) -> Self {
        Self::NotFound(format!("ScaledObject {namespace}/{name} is unknown to the operator"))
    }

    /// `ScaledObject <ns>/<name> has no metric <metric>; it has: a, b` (`it has none` when empty).
    pub fn unknown_metric<S: AsRef<str>>(namespace: &str, name: &str, metric: &str, known: &[S]) -> Self {
        let known = if known.is_empty() {
            "it has none".to_owned()
        } else {
            let names: Vec<&str> = known.iter().map(AsRef::as_ref).collect();
            format!("it has: {}", names.join(", "))
        };
        Self::NotFound(format!("ScaledObject {namespace}/{name} has no metric {metric}; {known}"))
    }

    /// The reason and message a server answers with. The client-only variants are reported as
    /// `Internal`, since a value source has no business returning them.
    pub fn to_body(&self) -> ErrorBody {
        let reason = match self {
            Self::NotFound(_) => ErrorReason::NotFound,
            Self::NotLeader => ErrorReason::NotLeader,
            Self::Timeout(_) => ErrorReason::Timeout,
            Self::Scaler(_) => ErrorReason::ScalerError,
            Self::Internal(_) | Self::Unreachable(_) | Self::Unexpected { .. } => ErrorReason::Internal,
        };
        let error = match self {
            Self::NotFound(m) | Self::Timeout(m) | Self::Scaler(m) | Self::Internal(m) => m.clone(),
            other => other.to_string(),
        };
        ErrorBody { reason, error }
    }

    /// The HTTP status a server answers this error with.
    pub fn status(&self) -> u16 {
        self.to_body().reason.status()
    }

    /// Reads an error answer back: the body's reason decides the variant, provided it agrees
    /// with the status; anything else is [`ValueError::Unexpected`].
    pub fn from_response(status: u16, body: &[u8]) -> Self {
        let unexpected = |message: String| Self::Unexpected { status, message };
        let parsed: ErrorBody = match serde_json::from_slice(body) {
            Ok(parsed) => parsed,
            Err(_) => return unexpected(snippet(body)),
        };
        if parsed.reason.status() != status {
            return unexpected(format!("reason {:?} does not go with this status", parsed.reason));
        }
        match parsed.reason {
            ErrorReason::NotFound => Self::NotFound(parsed.error),
            ErrorReason::NotLeader => Self::NotLeader,
            ErrorReason::Timeout => Self::Timeout(parsed.error),
            ErrorReason::ScalerError => Self::Scaler(parsed.error),
            ErrorReason::Internal => Self::Internal(parsed.error),
        }
    }
}

/// At most 200 characters of a body that is not an [`ErrorBody`], for error messages.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None if text.is_empty() => "empty body".to_owned(),
        None => text.to_owned(),
    }
}

/// The request path for one metric value, each segment percent-encoded. `None` when a segment
/// is empty, `.` or `..`: no ScaledObject, namespace or metric can carry such a name, and such a
/// segment would not survive URL normalization.
pub fn metric_path(namespace: &str, scaled_object: &str, metric: &str) -> Option<String> {
    let segments = [namespace, scaled_object, metric];
    if segments.iter().any(|s| s.is_empty() || *s == "." || *s == "..") {
        return None;
    }
    Some(format!(
        "/v1/namespaces/{}/scaledobjects/{}/metrics/{}",
        encode_segment(namespace),
        encode_segment(scaled_object),
        encode_segment(metric)
    ))
}

/// Percent-encodes every byte outside RFC 3986's unreserved set.
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_value_wire_form() {
        let value = MetricValue {
            metric_name: "s0-cron-Etc-UTC-0xxxx-5xxxx".into(),
            value: 2.5,
            timestamp: DateTime::parse_from_rfc3339("2025-03-01T12:00:00Z").unwrap().with_timezone(&Utc),
            source: ValueOrigin::Cache,
        };
        let json = serde_json::to_value(&value).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "metricName": "s0-cron-Etc-UTC-0xxxx-5xxxx",
                "value": 2.5,
                "timestamp": "2025-03-01T12:00:00Z",
                "source": "cache",
            })
        );
        let back: MetricValue = serde_json::from_value(json).unwrap();
        assert_eq!(back, value);
        let live: ValueOrigin = serde_json::from_str("\"live\"").unwrap();
        assert_eq!(live, ValueOrigin::Live);
    }

    #[test]
    fn errors_round_trip_through_status_and_body() {
        let cases = [
            (ValueError::NotFound("ScaledObject a/b is unknown to the operator".into()), 404, "NotFound"),
            (ValueError::NotLeader, 503, "NotLeader"),
            (ValueError::Timeout("live query timed out after 3s".into()), 504, "Timeout"),
            (ValueError::Scaler("connection refused".into()), 502, "ScalerError"),
            (ValueError::Internal("task panicked".into()), 500, "Internal"),
        ];
        for (err, status, reason) in cases {
            assert_eq!(err.status(), status, "{err:?}");
            let body = serde_json::to_vec(&err.to_body()).unwrap();
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(json["reason"], reason, "{err:?}");
            assert_eq!(ValueError::from_response(status, &body), err);
        }
        let not_leader = serde_json::to_value(ValueError::NotLeader.to_body()).unwrap();
        assert_eq!(not_leader["error"], NOT_LEADER_MESSAGE);
    }

    #[test]
    fn client_only_variants_are_served_as_internal() {
        let err = ValueError::Unreachable("connection refused".into());
        assert_eq!(err.status(), 500);
        assert_eq!(err.to_body().reason, ErrorReason::Internal);
        assert_eq!(err.to_body().error, "operator unreachable: connection refused");
    }

    #[test]
    fn answers_outside_the_protocol_are_unexpected() {
        let cases: [(u16, &[u8], &str); 4] = [
            (503, b"upstream connect error", "upstream connect error"),
            (500, b"", "empty body"),
            (404, br#"{"reason":"NotLeader","error":"x"}"#, "reason NotLeader does not go with this status"),
            (418, br#"{"reason":"Teapot"}"#, r#"{"reason":"Teapot"}"#),
        ];
        for (status, body, message) in cases {
            assert_eq!(
                ValueError::from_response(status, body),
                ValueError::Unexpected { status, message: message.to_owned() }
            );
        }
    }

    #[test]
    fn timeout_without_message_is_accepted() {
        assert_eq!(
            ValueError::from_response(504, br#"{"reason":"Timeout"}"#),
            ValueError::Timeout(String::new())
        );
    }

    #[test]
    fn not_found_messages_name_what_is_missing() {
        assert_eq!(
            ValueError::unknown_metric("default", "web", "s1-foo", &["s0-cron-a", "s2-cpu"]).to_string(),
            "ScaledObject default/web has no metric s1-foo; it has: s0-cron-a, s2-cpu"
        );
        assert_eq!(
            ValueError::unknown_metric::<&str>("default", "web", "s1-foo", &[]).to_string(),
            "ScaledObject default/web has no metric s1-foo; it has none"
        );
        assert_eq!(
            ValueError::unknown_scaled_object("prod", "api").to_string(),
            "ScaledObject prod/api is unknown to the operator"
        );
    }

    #[test]
    fn metric_paths_are_percent_encoded() {
        assert_eq!(
            metric_path("default", "web", "s0-cron-Asia-Seoul-00,15xxxx-05,20xxxx").as_deref(),
            Some(
                "/v1/namespaces/default/scaledobjects/web/metrics/s0-cron-Asia-Seoul-00%2C15xxxx-05%2C20xxxx"
            )
        );
        assert_eq!(
            metric_path("a b", "x/y", "m?#é").as_deref(),
            Some("/v1/namespaces/a%20b/scaledobjects/x%2Fy/metrics/m%3F%23%C3%A9")
        );
        for (ns, so, metric) in [("", "web", "m"), ("default", ".", "m"), ("default", "web", "..")] {
            assert_eq!(metric_path(ns, so, metric), None, "{ns:?} {so:?} {metric:?}");
        }
    }
}
