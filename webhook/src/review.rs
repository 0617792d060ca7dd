//! The `admission.k8s.io/v1` AdmissionReview wire format: decoding a request body (bounded in
//! size, every failure a one-line message naming what is wrong) and encoding the response with
//! the request's `uid` echoed, `allowed`, a `status` (code, reason, message) when denied, and
//! `warnings`. Only the fields ebb reads are decoded; objects stay raw JSON until a rule needs
//! them typed.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Largest request body accepted, as kube-apiserver's own limit on a request (3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// The review versions understood (both have the same shape).
const VERSIONS: &[&str] = &["admission.k8s.io/v1", "admission.k8s.io/v1beta1"];

/// Group, version and kind of the reviewed object.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Gvk {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
}

/// The part of an AdmissionRequest ebb reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    pub uid: String,
    pub kind: Gvk,
    #[serde(default)]
    pub sub_resource: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    pub operation: String,
    #[serde(default)]
    pub object: Option<Box<RawValue>>,
    #[serde(default)]
    pub old_object: Option<Box<RawValue>>,
    #[serde(default)]
    pub dry_run: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewIn {
    api_version: String,
    kind: String,
    request: Option<Request>,
}

/// A decoded review: its version (echoed in the answer) and the request.
#[derive(Debug)]
pub struct Review {
    pub api_version: String,
    pub request: Request,
}

/// Why a body is not a usable AdmissionReview (answered with HTTP 400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BadReview {
    #[error("request body is {0} bytes; at most {MAX_BODY_BYTES} are accepted")]
    TooLarge(usize),
    #[error("request body is empty; expected an admission.k8s.io/v1 AdmissionReview")]
    Empty,
    #[error("request body is not an AdmissionReview: {0}")]
    Json(String),
    #[error("expected kind AdmissionReview, found {0:?}")]
    Kind(String),
    #[error("unsupported apiVersion {0:?}; expected admission.k8s.io/v1")]
    Version(String),
    #[error("AdmissionReview has no request")]
    NoRequest,
    #[error("AdmissionReview request has an empty uid")]
    NoUid,
}

/// Decodes a request body.
pub fn decode(body: &[u8]) -> Result<Review, BadReview> {
    if body.len() > MAX_BODY_BYTES {
        return Err(BadReview::TooLarge(body.len()));
    }
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Err(BadReview::Empty),
        Some(b'{') => {}
        Some(_) => return Err(BadReview::Json("expected a JSON object".to_owned())),
    }
    let r: ReviewIn = serde_json::from_slice(body).map_err(|e| BadReview::Json(e.to_string()))?;
    if r.kind != "AdmissionReview" {
        return Err(BadReview::Kind(r.kind));
    }
    if !VERSIONS.contains(&r.api_version.as_str()) {
        return Err(BadReview::Version(r.api_version));
    }
    let request = r.request.ok_or(BadReview::NoRequest)?;
    if request.uid.is_empty() {
        return Err(BadReview::NoUid);
    }
    Ok(Review { api_version: r.api_version, request })
}

/// The `status` of a denied request.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Status {
    pub status: &'static str,
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
}

/// An AdmissionResponse.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Response {
    pub uid: String,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Response {
    pub fn allow(uid: &str, warnings: Vec<String>) -> Self {
        Self { uid: uid.to_owned(), allowed: true, status: None, warnings }
    }

    /// Denied with `code` (403 for rule denials, 400 for an unreadable object, 503 while the
    /// index is not synced).
    pub fn deny(uid: &str, code: u16, message: String, warnings: Vec<String>) -> Self {
        let reason = match code {
            400 => "BadRequest",
            503 => "ServiceUnavailable",
            _ => "Forbidden",
        };
        Self {
            uid: uid.to_owned(),
            allowed: false,
            status: Some(Status { status: "Failure", code, reason, message }),
            warnings,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewOut<'a> {
    api_version: &'a str,
    kind: &'static str,
    response: &'a Response,
}

/// The response body for a review of version `api_version`.
pub fn encode(api_version: &str, response: &Response) -> Vec<u8> {
    let out = ReviewOut { api_version, kind: "AdmissionReview", response };
    // Serializing plain strings, numbers and booleans cannot fail; an empty body (which the API
    // server reports as a webhook error) is the harmless fallback.
    serde_json::to_vec(&out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_the_fields_ebb_reads() {
        let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": "u1", "kind": {"group": "keda.sh", "version": "v1alpha1", "kind": "ScaledObject"},
            "resource": {"group": "keda.sh", "version": "v1alpha1", "resource": "scaledobjects"},
            "name": "a", "namespace": "ns", "operation": "CREATE", "userInfo": {"username": "x"},
            "object": {"metadata": {"name": "a"}}, "oldObject": null, "dryRun": true}});
        let r = decode(body.to_string().as_bytes()).unwrap();
        assert_eq!(r.api_version, "admission.k8s.io/v1");
        assert_eq!(r.request.uid, "u1");
        assert_eq!(r.request.kind.kind, "ScaledObject");
        assert_eq!(r.request.operation, "CREATE");
        assert_eq!(r.request.dry_run, Some(true));
        assert_eq!(r.request.object.unwrap().get(), r#"{"metadata":{"name":"a"}}"#);
        assert!(r.request.old_object.is_none());
    }

    #[test]
    fn bad_bodies_are_named() {
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (big, "request body is 3145729 bytes; at most 3145728 are accepted"),
            (b"  ".to_vec(), "request body is empty"),
            (b"{".to_vec(), "request body is not an AdmissionReview: EOF while parsing"),
            (b"[]".to_vec(), "request body is not an AdmissionReview: expected a JSON object"),
            (b"{\"kind\": 1}".to_vec(), "invalid type: integer `1`, expected a string"),
            (br#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod"}"#.to_vec(), "expected kind AdmissionReview, found \"Pod\""),
            (br#"{"apiVersion":"v2","kind":"AdmissionReview"}"#.to_vec(), "unsupported apiVersion \"v2\""),
            (br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(), "AdmissionReview has no request"),
            (
                br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"","kind":{},"operation":"CREATE"}}"#.to_vec(),
                "AdmissionReview request has an empty uid",
            ),
            (
                br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","kind":{}}}"#.to_vec(),
                "missing field `operation`",
            ),
        ];
        for (body, want) in cases {
            let got = decode(&body).unwrap_err().to_string();
            assert!(got.contains(want), "{got:?} should contain {want:?}");
        }
    }

    #[test]
    fn responses_echo_uid_and_carry_status_and_warnings() {
        let r = Response::deny("u9", 403, "no".into(), vec!["w".into()]);
        let v: serde_json::Value = serde_json::from_slice(&encode("admission.k8s.io/v1", &r)).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {
                "uid": "u9", "allowed": false, "warnings": ["w"],
                "status": {"status": "Failure", "code": 403, "reason": "Forbidden", "message": "no"}}})
        );
        let ok: serde_json::Value =
            serde_json::from_slice(&encode("admission.k8s.io/v1", &Response::allow("u", vec![]))).unwrap();
        assert_eq!(ok["response"], json!({"uid": "u", "allowed": true}));
    }
}
