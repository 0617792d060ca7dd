//! The HTTPS server over real sockets: a response whose body streams for longer than the idle
//! timeout (a Kubernetes watch, say) is a request in flight until its body ends, as Go's
//! `net/http` counts it, so the idle watchdog leaves the connection alone; a body of known size
//! keeps its `Content-Length`.

use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use ebb_plumbing::limits::ServerLimits;
use ebb_plumbing::tls::{ClientAuth, HttpsServer, ServerFiles};

/// A body of `chunks` lines, one every `every`.
fn slow_body(chunks: usize, every: Duration) -> Body {
    Body::from_stream(futures::stream::unfold(0, move |sent| async move {
        if sent == chunks {
            return None;
        }
        tokio::time::sleep(every).await;
        Some((Ok::<_, std::io::Error>(format!("line {sent}\n")), sent + 1))
    }))
}

#[tokio::test]
async fn a_streaming_response_is_not_idle() {
    let dir = std::env::temp_dir().join(format!("ebb-plumbing-tls-{}", std::process::id()));
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_file, key_file) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
    let files = ServerFiles { cert_file, key_file, client_auth: ClientAuth::None };
    let ca = cert.cert.pem();
    // 8 lines 200 ms apart: 1.6 s, past the idle timeout and its one-second closing grace.
    let limits = ServerLimits { idle_timeout: Duration::from_millis(300), ..ServerLimits::default() };
    let server =
        HttpsServer::bind("127.0.0.1:0".parse().unwrap(), files, "test").await.unwrap().with_limits(limits);
    let addr = server.local_addr();
    let app = axum::Router::new()
        .route("/watch", get(|| async { slow_body(8, Duration::from_millis(200)) }))
        .route("/fixed", get(|| async { "hello" }));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(app, async move {
        let _ = stopped.await;
    }));
    let expected: String = (0..8).map(|i| format!("line {i}\n")).collect();
    for http1 in [true, false] {
        let builder = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap());
        let client =
            if http1 { builder.http1_only() } else { builder.http2_prior_knowledge() }.build().unwrap();
        let url = format!("https://localhost:{}/watch", addr.port());
        let body = client.get(url).send().await.unwrap().text().await;
        assert_eq!(body.as_deref().map_err(|e| format!("{e:?}")), Ok(expected.as_str()), "http1: {http1}");
        // A body of known size keeps its Content-Length (HTTP/1.1: no chunked framing).
        let fixed = client.get(format!("https://localhost:{}/fixed", addr.port())).send().await.unwrap();
        assert_eq!(
            fixed.headers().get("content-length").map(|v| v.as_bytes()),
            Some(&b"5"[..]),
            "http1: {http1}"
        );
        assert_eq!(fixed.text().await.unwrap(), "hello");
    }
    let _ = stop.send(());
    serving.await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}
