//! The prometheus scaler's HTTP behaviour against small servers in the test process that record
//! what they receive: bearer and custom-header authentication, custom headers, namespace and
//! query parameters, redirects (credentials never reach another host), a server that never
//! answers, and answers that are not Prometheus JSON.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod prometheus_common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ebb_scalers::{Measurement, ScalerError};
use prometheus_common::{measure, scaler};

#[derive(Clone, Debug)]
struct Seen {
    path: String,
    query: String,
    headers: HeaderMap,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// Serves every request with `answer`, recording it first.
async fn serve<F>(answer: F) -> (String, Log)
where
    F: Fn(&Seen) -> Response + Clone + Send + Sync + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let log: Log = Arc::default();
    let rec = Arc::clone(&log);
    let app = axum::Router::new().fallback(move |req: Request| {
        let seen = Seen {
            path: req.uri().path().to_owned(),
            query: req.uri().query().unwrap_or("").to_owned(),
            headers: req.headers().clone(),
        };
        rec.lock().unwrap().push(seen.clone());
        let r = answer(&seen);
        async move { r }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), log)
}

fn vector(v: &str) -> Response {
    let body = format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1700000000,"{v}"]}}]}}}}"#
    );
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn header<'a>(s: &'a Seen, name: &str) -> Option<&'a str> {
    s.headers.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn bearer_custom_headers_namespace_and_query_parameters() {
    let (server, log) = serve(|s| {
        let ok =
            header(s, "authorization") == Some("Bearer tok-xyz") && header(s, "x-api-key") == Some("key-123");
        if ok { vector("7") } else { (StatusCode::FORBIDDEN, "forbidden\n").into_response() }
    })
    .await;
    let prefix = format!("{server}/select/0/prometheus");
    let md = [
        ("serverAddress", prefix.as_str()),
        ("query", "sum(rate(http_requests_total{app=\"web\"}[2m]))"),
        ("threshold", "5"),
        ("namespace", "team-a"),
        ("queryParameters", "dedup=true,partial_response=false"),
        ("customHeaders", "X-Scope-OrgID=tenant-1"),
        ("authModes", "bearer,custom"),
    ];
    let auth =
        [("bearerToken", "tok-xyz"), ("customAuthHeader", "X-Api-Key"), ("customAuthValue", "key-123")];
    assert_eq!(measure(&scaler(&md, &auth)).await, Ok(Measurement { value: 7.0, active: true }));

    let seen = log.lock().unwrap()[0].clone();
    assert_eq!(seen.path, "/select/0/prometheus/api/v1/query");
    let q: Vec<(String, String)> = url_pairs(&seen.query);
    let get = |k: &str| q.iter().find(|(a, _)| a == k).map(|(_, b)| b.as_str());
    assert_eq!(get("query"), Some("sum(rate(http_requests_total{app=\"web\"}[2m]))"));
    assert!(get("time").is_some_and(|t| t.ends_with('Z') && t.contains('T')), "{q:?}");
    assert_eq!(
        (get("namespace"), get("dedup"), get("partial_response")),
        (Some("team-a"), Some("true"), Some("false"))
    );
    assert_eq!(header(&seen, "x-scope-orgid"), Some("tenant-1"));

    // A wrong token: 403 is Unauthorized, and the token is not in the message.
    let s = scaler(
        &md,
        &[("bearerToken", "tok-wrong"), ("customAuthHeader", "X-Api-Key"), ("customAuthValue", "key-123")],
    );
    match measure(&s).await {
        Err(ScalerError::Unauthorized(m)) => {
            assert_eq!(
                m,
                format!(
                    "Prometheus at {prefix} answered 403 Forbidden (text/plain): text (10 bytes, not shown) — check authModes and the TriggerAuthentication"
                )
            );
        }
        other => panic!("{other:?}"),
    }
}

/// Decodes `a=b&c=d` (percent and `+` escapes).
fn url_pairs(q: &str) -> Vec<(String, String)> {
    let u = reqwest::Url::parse(&format!("http://x/?{q}")).unwrap();
    u.query_pairs().map(|(a, b)| (a.into_owned(), b.into_owned())).collect()
}

#[tokio::test]
async fn redirects_never_take_credentials_to_another_host() {
    let (other, other_log) = serve(|_| vector("1")).await;
    let target = other.clone();
    let (server, log) = serve(move |s| match s.path.as_str() {
        "/api/v1/query" => (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, format!("{target}/api/v1/query?{}", s.query))],
        )
            .into_response(),
        "/same/api/v1/query" => {
            (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, format!("/moved/api/v1/query?{}", s.query))])
                .into_response()
        }
        "/moved/api/v1/query" if header(s, "authorization") == Some("Bearer tok-r") => vector("9"),
        _ => StatusCode::UNAUTHORIZED.into_response(),
    })
    .await;

    for (modes, auth) in [
        ("bearer", vec![("bearerToken", "tok-r")]),
        ("custom", vec![("customAuthHeader", "X-Api-Key"), ("customAuthValue", "key-r")]),
        ("basic", vec![("username", "u"), ("password", "pw-r")]),
    ] {
        let md =
            [("serverAddress", server.as_str()), ("query", "up"), ("threshold", "1"), ("authModes", modes)];
        match measure(&scaler(&md, &auth)).await {
            Err(ScalerError::Config(m)) => {
                assert!(
                    m.starts_with(&format!(
                        "Prometheus at {server} answered 307 Temporary Redirect redirecting to {other}; redirects to another host are not followed"
                    )),
                    "{m}"
                );
            }
            r => panic!("{modes}: {r:?}"),
        }
    }
    assert!(
        other_log.lock().unwrap().is_empty(),
        "the other host was contacted: {:?}",
        other_log.lock().unwrap()
    );

    // Within the same origin the redirect is followed, credentials included.
    let same = format!("{server}/same");
    let md = [("serverAddress", same.as_str()), ("query", "up"), ("threshold", "1"), ("authModes", "bearer")];
    assert_eq!(
        measure(&scaler(&md, &[("bearerToken", "tok-r")])).await,
        Ok(Measurement { value: 9.0, active: true })
    );
    assert!(log.lock().unwrap().iter().any(|s| s.path == "/moved/api/v1/query"));
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock); // accepted, never answered
        }
    });
    let server = format!("http://{addr}");
    let s = scaler(
        &[("serverAddress", server.as_str()), ("query", "up"), ("threshold", "1"), ("timeout", "300")],
        &[],
    );
    let t = Instant::now();
    let r = measure(&s).await;
    assert_eq!(r, Err(ScalerError::Timeout(Duration::from_millis(300))));
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(r.unwrap_err().to_string(), "timed out after 300ms");
}

#[tokio::test]
async fn answers_that_are_not_prometheus_json() {
    let html = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><center>nginx</center></body></html>";
    let (server, _) = serve(move |s| match s.path.as_str() {
        "/gateway/api/v1/query" => {
            (StatusCode::BAD_GATEWAY, [(header::CONTENT_TYPE, "text/html")], html).into_response()
        }
        "/login/api/v1/query" => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<html><head><title>Sign in</title></head></html>",
        )
            .into_response(),
        "/broken/api/v1/query" => {
            ([(header::CONTENT_TYPE, "application/json")], r#"{"status":"success","data":"#).into_response()
        }
        "/busy/api/v1/query" => (StatusCode::TOO_MANY_REQUESTS, "slow down").into_response(),
        "/exec/api/v1/query" => (
            StatusCode::UNPROCESSABLE_ENTITY,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"status":"error","errorType":"execution","error":"many-to-many matching not allowed"}"#,
        )
            .into_response(),
        "/echo/api/v1/query" => {
            let auth = header(s, "authorization").unwrap_or("").to_owned();
            (StatusCode::BAD_REQUEST, format!("rejected credentials {auth}")).into_response()
        }
        "/huge/api/v1/query" => vector(&"1".repeat(5 << 20)),
        _ => StatusCode::NOT_FOUND.into_response(),
    })
    .await;
    let run = |path: &'static str, auth: &'static [(&'static str, &'static str)]| {
        let addr = format!("{server}{path}");
        let mut md =
            vec![("serverAddress", addr.clone()), ("query", "up".to_owned()), ("threshold", "1".to_owned())];
        if !auth.is_empty() {
            md.push(("authModes", "bearer".to_owned()));
        }
        let md: Vec<(&str, String)> = md;
        async move {
            let md: Vec<(&str, &str)> = md.iter().map(|(k, v)| (*k, v.as_str())).collect();
            (addr.clone(), measure(&scaler(&md, auth)).await)
        }
    };

    let (addr, r) = run("/gateway", &[]).await;
    assert_eq!(
        r,
        Err(ScalerError::Unreachable(format!(
            "Prometheus at {addr} answered 502 Bad Gateway (text/html): an HTML page ({} bytes, not shown)",
            html.len()
        )))
    );
    let (addr, r) = run("/login", &[]).await;
    assert_eq!(
        r,
        Err(ScalerError::InvalidResponse(format!(
            "the answer is not Prometheus JSON: an HTML page (48 bytes, not shown) (Prometheus at {addr})"
        )))
    );
    let (_, r) = run("/broken", &[]).await;
    assert!(
        matches!(&r, Err(ScalerError::InvalidResponse(m)) if m.starts_with("malformed Prometheus answer: EOF")),
        "{r:?}"
    );
    let (_, r) = run("/busy", &[]).await;
    assert!(matches!(&r, Err(ScalerError::Throttled(m)) if m.contains("429 Too Many Requests")), "{r:?}");
    let (addr, r) = run("/exec", &[]).await;
    assert_eq!(
        r,
        Err(ScalerError::InvalidResponse(format!(
            "Prometheus at {addr} answered 422 Unprocessable Entity: execution: many-to-many matching not allowed"
        )))
    );
    let (_, r) = run("/echo", &[("bearerToken", "tok-echoed-back")]).await;
    match r {
        Err(ScalerError::Config(m)) => {
            assert!(m.ends_with("(text/plain): text (43 bytes, not shown) — the query was rejected"), "{m}");
            assert!(!m.contains("tok-echoed-back") && !m.contains("rejected credentials"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    let (_, r) = run("/huge", &[]).await;
    assert!(matches!(&r, Err(ScalerError::InvalidResponse(m)) if m.contains("larger than 4 MiB")), "{r:?}");
}

/// What an internal service answers never reaches a message (status, Events, the metrics API):
/// a server answering with a marker in its body — as an error page, as plain text, as JSON that
/// is not a Prometheus envelope, as a 2xx body of the wrong shape — yields only the status code
/// and the kind of body.
#[tokio::test]
async fn answer_bodies_are_not_reflected_into_errors() {
    const MARKER: &str = "SECRET-INTERNAL-7f3a";
    let (server, _) = serve(|s| match s.path.as_str() {
        "/e500/api/v1/query" => {
            (StatusCode::INTERNAL_SERVER_ERROR, format!("internal config: password={MARKER}")).into_response()
        }
        "/html/api/v1/query" => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/html")],
            format!("<html><head><title>{MARKER}</title></head><body>{MARKER}</body></html>"),
        )
            .into_response(),
        "/json500/api/v1/query" => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "application/json")],
            format!(r#"{{"error":"{MARKER}","errorType":"{MARKER}"}}"#),
        )
            .into_response(),
        "/text200/api/v1/query" => format!("{MARKER} {MARKER}").into_response(),
        "/json200/api/v1/query" => (
            [(header::CONTENT_TYPE, "application/json")],
            format!(r#"{{"status":"success","data":{{"resultType":"{MARKER}","result":[]}}}}"#),
        )
            .into_response(),
        "/shape200/api/v1/query" => (
            [(header::CONTENT_TYPE, "application/json")],
            format!(r#"{{"status":{{"{MARKER}":1}},"data":1}}"#),
        )
            .into_response(),
        "/sample200/api/v1/query" => vector(MARKER),
        "/series200/api/v1/query" => (
            [(header::CONTENT_TYPE, "application/json")],
            format!(
                r#"{{"status":"success","data":{{"resultType":"vector","result":[
                {{"metric":{{"user":"{MARKER}"}},"value":[1,"1"]}},{{"metric":{{"user":"b"}},"value":[1,"2"]}}]}}}}"#
            ),
        )
            .into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    })
    .await;
    for path in
        ["/e500", "/html", "/json500", "/text200", "/json200", "/shape200", "/sample200", "/series200"]
    {
        let addr = format!("{server}{path}");
        let r = measure(&scaler(&[("serverAddress", &addr), ("query", "up"), ("threshold", "1")], &[])).await;
        let text = match &r {
            Err(e) => e.to_string(),
            Ok(m) => panic!("{path}: {m:?}"),
        };
        assert!(!text.contains(MARKER), "{path}: the answer's text reached the message: {text}");
        assert!(text.contains(&format!("Prometheus at {addr}")), "{path}: {text}");
    }
}
