//! A programmable HTTP/1.1 endpoint on 127.0.0.1 for tests of the scalers' HTTP clients (OAuth
//! token endpoints, slow or hostile servers): every request, read whole, is handed to the test's
//! function, and its [`Answer`] is sent back, after the answer's delay. Served by axum, so the
//! tests exercise the clients against a real HTTP server rather than hand-parsed bytes. The
//! server runs until the test's runtime ends.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::http::{Response, StatusCode, header};

/// One request as the stub received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query, as sent (`/token?x=1`).
    pub uri: String,
    /// Header names in lower case, values as sent (non-UTF-8 values are left out).
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Request {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    /// The body's `key=value` pairs (`application/x-www-form-urlencoded`), values as sent.
    pub fn form(&self) -> Vec<(&str, &str)> {
        self.body.split('&').filter_map(|kv| kv.split_once('=')).collect()
    }
}

/// What the stub answers: a status, a JSON body, and how long to wait first.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub delay: Duration,
}

impl Answer {
    /// `status` with `body` (served as `application/json`), at once.
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Self { status, body: body.into(), delay: Duration::ZERO }
    }

    /// The same answer after `delay`.
    pub fn after(self, delay: Duration) -> Self {
        Self { delay, ..self }
    }
}

/// Largest request body the stub reads.
const MAX_BODY: usize = 1 << 20;

/// Starts the stub; returns its base URL (`http://127.0.0.1:PORT`).
pub async fn serve<F>(answer: F) -> std::io::Result<String>
where
    F: Fn(Request) -> Answer + Send + Sync + 'static,
{
    let answer = Arc::new(answer);
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let answer = answer.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = to_bytes(body, MAX_BODY).await.map(|b| String::from_utf8_lossy(&b).into_owned());
            let request = Request {
                method: parts.method.to_string(),
                uri: parts.uri.to_string(),
                headers: parts
                    .headers
                    .iter()
                    .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                    .collect(),
                body: body.unwrap_or_default(),
            };
            let a = answer(request);
            tokio::time::sleep(a.delay).await;
            let mut resp = Response::new(Body::from(a.body));
            *resp.status_mut() = StatusCode::from_u16(a.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
            resp
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}"))
}
