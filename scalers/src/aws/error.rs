//! Turns AWS SDK errors into `ScalerError`s: the message names the queue or metric, the operation
//! and the AWS error code (`AWS.SimpleQueueService.NonExistentQueue`, `AccessDenied`, …); the
//! variant is one of the bounded reasons NotFound / Unauthorized / Throttled / Unreachable /
//! Config / InvalidResponse, or EgressDenied when the operator's egress policy refused the
//! endpoint. Secret values of the trigger's credentials are scrubbed from the text, and the text
//! of an answer is shown only in the shape of an AWS error (see `describe_service_error`).

use std::error::Error as StdError;

use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};

use super::client::ClientKey;
use super::credentials::AwsCredentials;
use crate::error::ScalerError;

/// Bounded category of an AWS failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    NotFound,
    Unauthorized,
    Throttled,
    Unreachable,
    Config,
    InvalidResponse,
}

impl Kind {
    fn error(self, message: String) -> ScalerError {
        match self {
            Self::NotFound => ScalerError::NotFound(message),
            Self::Unauthorized => ScalerError::Unauthorized(message),
            Self::Throttled => ScalerError::Throttled(message),
            Self::Unreachable => ScalerError::Unreachable(message),
            Self::Config => ScalerError::Config(message),
            Self::InvalidResponse => ScalerError::InvalidResponse(message),
        }
    }
}

const NOT_FOUND: &[&str] =
    &["AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "ResourceNotFound"];
const UNAUTHORIZED: &[&str] = &[
    "AccessDenied",
    "AuthFailure",
    "ExpiredToken",
    "IncompleteSignature",
    "InvalidAccessKeyId",
    "InvalidClientTokenId",
    "InvalidSignature",
    "MissingAuthenticationToken",
    "NotAuthorized",
    "OptInRequired",
    "RequestExpired",
    "SignatureDoesNotMatch",
    "UnauthorizedOperation",
    "UnrecognizedClient",
];
const THROTTLED: &[&str] = &[
    "Throttl",
    "RequestLimitExceeded",
    "TooManyRequests",
    "SlowDown",
    "ProvisionedThroughputExceeded",
    "BandwidthLimitExceeded",
];
const UNAVAILABLE: &[&str] =
    &["ServiceUnavailable", "InternalFailure", "InternalError", "InternalServerError"];
const CONFIG: &[&str] = &[
    "InvalidParameter",
    "InvalidAddress",
    "InvalidAttributeName",
    "MissingParameter",
    "Validation",
    "InvalidQueryParameter",
    "InvalidAction",
];

/// The category of a service error from its code and HTTP status. Codes are matched by their
/// stem (`ThrottlingException`, `Throttling`, `RequestThrottled` are all throttling).
pub fn classify(code: &str, status: Option<u16>) -> Kind {
    let has = |stems: &[&str]| stems.iter().any(|s| code.contains(s));
    if has(NOT_FOUND) {
        Kind::NotFound
    } else if has(THROTTLED) {
        Kind::Throttled
    } else if has(UNAUTHORIZED) {
        Kind::Unauthorized
    } else if has(UNAVAILABLE) {
        Kind::Unreachable
    } else if has(CONFIG) {
        Kind::Config
    } else {
        match status {
            Some(401 | 403) => Kind::Unauthorized,
            Some(404) => Kind::NotFound,
            Some(429) => Kind::Throttled,
            Some(500..=599) => Kind::Unreachable,
            _ => Kind::InvalidResponse,
        }
    }
}

/// Describes a failed call. `what` names the queue or metric, `op` the AWS operation.
pub fn from_sdk<E>(what: &str, op: &str, client: &ClientKey, err: &SdkError<E>) -> ScalerError
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    if let Some(denied) = crate::egress::find_denied(err) {
        return denied.clone().into();
    }
    let (kind, detail) = match err {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            // Some servers send an error body the SDK does not parse (moto's auth errors nest
            // <Error> in <Errors>); read the code and message from the XML then.
            let body = se.raw().body().bytes().map(String::from_utf8_lossy).unwrap_or_default();
            let code = se.err().code().or_else(|| xml_field(&body, "Code")).unwrap_or("UnknownError");
            let message = se.err().message().or_else(|| xml_field(&body, "Message")).unwrap_or("no message");
            let trusted = client.endpoint.is_none();
            (classify(code, Some(status)), describe_service_error(code, message, status, trusted))
        }
        SdkError::ConstructionFailure(_) => {
            let text = chain(err);
            (if mentions_credentials(&text) { Kind::Unauthorized } else { Kind::Config }, text)
        }
        SdkError::TimeoutError(_) => (Kind::Unreachable, format!("no answer in time: {}", chain(err))),
        SdkError::DispatchFailure(d) => {
            let text = chain(err);
            let kind = if !(d.is_io() || d.is_timeout()) && mentions_credentials(&text) {
                Kind::Unauthorized
            } else {
                Kind::Unreachable
            };
            (kind, text)
        }
        SdkError::ResponseError(r) => {
            // The decoder's error may quote the body: only the status is shown.
            let status = r.raw().status().as_u16();
            (Kind::InvalidResponse, format!("unreadable answer (HTTP {status}); it is not an AWS answer"))
        }
        _ => (Kind::InvalidResponse, chain(err)),
    };
    let text = crate::error::one_line(&format!("{what}: {op}: {detail}"), MAX_MESSAGE_CHARS);
    kind.error(scrub(text, &client.credentials))
}

/// Longest message, in characters.
const MAX_MESSAGE_CHARS: usize = 500;
/// Longest service message shown, in characters.
const MAX_SERVICE_MESSAGE_CHARS: usize = 200;

/// `code: message (HTTP status)` for an error answer. From AWS's own endpoints (`trusted`) the
/// answer is shown, on one line and shortened. `awsEndpoint` can point anywhere, so from there
/// the answer's text is shown only in the shape of an AWS error: the code and message only for a
/// code AWS defines (one of the lists above), otherwise the status alone.
pub(crate) fn describe_service_error(code: &str, message: &str, status: u16, trusted: bool) -> String {
    let token = !code.is_empty()
        && code.len() <= 64
        && code.chars().all(|c| c.is_ascii_alphanumeric() || "._:-".contains(c));
    let known = [NOT_FOUND, UNAUTHORIZED, THROTTLED, UNAVAILABLE, CONFIG]
        .iter()
        .any(|stems| stems.iter().any(|s| code.contains(s)));
    if token && (known || trusted) {
        let message = crate::error::one_line(message, MAX_SERVICE_MESSAGE_CHARS);
        format!("{code}: {message} (HTTP {status})")
    } else {
        format!("an error answer with a code ebb does not know (HTTP {status}; its text is not shown)")
    }
}

/// The text of the first `<name>` element of an XML body.
fn xml_field<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    let start = body.find(&format!("<{name}>"))? + name.len() + 2;
    let len = body[start..].find(&format!("</{name}>"))?;
    Some(body[start..start + len].trim()).filter(|v| !v.is_empty())
}

/// The error and its sources, `: `-joined (without the Debug dump `DisplayErrorContext` appends).
fn chain<E: StdError + 'static>(err: &SdkError<E>) -> String {
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

fn mentions_credentials(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    ["credential", "identity", "assumerole"].iter().any(|w| t.contains(w))
}

/// Replaces any secret of `creds` that appears in `text` (defence in depth: AWS messages are
/// not expected to echo secrets).
pub fn scrub(mut text: String, creds: &AwsCredentials) -> String {
    let mut c = creds;
    loop {
        match c {
            AwsCredentials::Static { access_key_id: _, secret_access_key, session_token } => {
                for s in std::iter::once(secret_access_key).chain(session_token.iter()) {
                    if !s.expose().is_empty() && text.contains(s.expose()) {
                        text = text.replace(s.expose(), "<redacted>");
                    }
                }
                return text;
            }
            AwsCredentials::AssumeRole { base, .. } => c = base,
            AwsCredentials::Operator => return text,
        }
    }
}
