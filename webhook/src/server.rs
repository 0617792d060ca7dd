//! The HTTPS endpoint the API server calls: `POST /validate` (every kind ebb validates goes to
//! the same path; the review says which kind it is). The body is read up to
//! [`MAX_BODY_BYTES`](crate::review::MAX_BODY_BYTES); a longer or unreadable body, like one that is
//! not an AdmissionReview, is answered with 400 and a one-line message.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::admission::{Reply, Webhook};
use crate::review::MAX_BODY_BYTES;

/// Path of the validating endpoint.
pub const VALIDATE_PATH: &str = "/validate";

/// The webhook's routes.
pub fn router(webhook: Arc<Webhook>) -> Router {
    Router::new().route(VALIDATE_PATH, post(validate)).with_state(webhook)
}

async fn validate(State(webhook): State<Arc<Webhook>>, body: Body) -> Response {
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(e) => {
            let msg = format!("request body unreadable or larger than {MAX_BODY_BYTES} bytes: {e}");
            return (StatusCode::BAD_REQUEST, msg).into_response();
        }
    };
    into_response(webhook.review(&bytes).await)
}

fn into_response(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = if reply.is_json() { "application/json" } else { "text/plain; charset=utf-8" };
    (status, [(CONTENT_TYPE, content_type)], reply.body).into_response()
}
