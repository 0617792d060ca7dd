//! `meta.k8s.io/v1` Status bodies: every refusal of the server (bad selector, unknown
//! ScaledObject or metric, missing credentials, denied access, operator unreachable, …) is one
//! [`ApiStatus`] with the HTTP code, the Kubernetes reason that goes with it and a message that
//! says what to check. kubectl and the HPA controller print the message as it is.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A failed request as Kubernetes reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiStatus {
    /// HTTP status code.
    pub code: u16,
    /// Kubernetes `StatusReason` (`NotFound`, `Forbidden`, …).
    pub reason: &'static str,
    /// What went wrong and what to check. Never carries a credential.
    pub message: String,
    /// Seconds the client should wait before trying again (`Retry-After`, and
    /// `details.retryAfterSeconds` in the body), for 429.
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    metadata: Empty,
    status: &'static str,
    message: &'a str,
    reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Details>,
    code: u16,
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct Details {
    #[serde(rename = "retryAfterSeconds")]
    retry_after_seconds: u64,
}

impl ApiStatus {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self { code, reason, message: message.into(), retry_after: None }
    }

    /// 400 `BadRequest`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 401 `Unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, "Unauthorized", message)
    }

    /// 403 `Forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    /// 404 `NotFound`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "NotFound", message)
    }

    /// 405 `MethodNotAllowed`.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    /// 429 `TooManyRequests`, to be tried again after `retry_after` seconds.
    pub fn too_many_requests(message: impl Into<String>, retry_after: u64) -> Self {
        Self { retry_after: Some(retry_after), ..Self::new(429, "TooManyRequests", message) }
    }

    /// 500 `InternalError`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// 503 `ServiceUnavailable`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    /// 504 `Timeout`.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(504, "Timeout", message)
    }

    /// The JSON body: `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
    /// "message":…,"reason":…,"code":…}`.
    pub fn body(&self) -> Vec<u8> {
        let body = Body {
            kind: "Status",
            api_version: "v1",
            metadata: Empty {},
            status: "Failure",
            message: &self.message,
            reason: self.reason,
            details: self.retry_after.map(|retry_after_seconds| Details { retry_after_seconds }),
            code: self.code,
        };
        // Serializing plain strings and numbers cannot fail; an empty body would still carry
        // the status code.
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

impl std::fmt::Display for ApiStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.code, self.reason, self.message)
    }
}

impl IntoResponse for ApiStatus {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (code, self.body()).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if self.code == 401 {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"kubernetes\""));
        }
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_bodies_carry_code_reason_and_message() {
        let cases = [
            (ApiStatus::bad_request("no selector"), 400, "BadRequest"),
            (ApiStatus::unauthorized("who are you"), 401, "Unauthorized"),
            (ApiStatus::forbidden("not you"), 403, "Forbidden"),
            (ApiStatus::not_found("nothing here"), 404, "NotFound"),
            (ApiStatus::method_not_allowed("POST"), 405, "MethodNotAllowed"),
            (ApiStatus::internal("oops"), 500, "InternalError"),
            (ApiStatus::unavailable("operator down"), 503, "ServiceUnavailable"),
            (ApiStatus::timeout("slow"), 504, "Timeout"),
        ];
        for (status, code, reason) in cases {
            let json: serde_json::Value = serde_json::from_slice(&status.body()).unwrap();
            assert_eq!(
                json,
                serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": status.message, "reason": reason, "code": code}),
            );
            assert_eq!(status.code, code);
        }
    }

    #[test]
    fn too_many_requests_says_when_to_come_back() {
        let status = ApiStatus::too_many_requests("slow down", 3);
        let json: serde_json::Value = serde_json::from_slice(&status.body()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "slow down", "reason": "TooManyRequests", "details": {"retryAfterSeconds": 3},
                "code": 429}),
        );
        let response = status.into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
    }

    #[test]
    fn messages_are_escaped() {
        let status = ApiStatus::not_found("metric \"s0-a\" has a \\ and a\nnewline");
        let json: serde_json::Value = serde_json::from_slice(&status.body()).unwrap();
        assert_eq!(json["message"], "metric \"s0-a\" has a \\ and a\nnewline");
    }

    #[test]
    fn responses_are_json_with_the_code() {
        let response = ApiStatus::unauthorized("x").into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
        let response = ApiStatus::forbidden("x").into_response();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(!response.headers().contains_key(header::WWW_AUTHENTICATE));
    }
}
