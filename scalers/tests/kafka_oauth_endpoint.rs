//! The `bearer` token provider against hostile or unusual OAuth token endpoints on 127.0.0.1:
//! an endpoint that only takes the client credentials in the form body (ebb retries with them
//! there after a 401, as Go's OAuth2 client does), an oversized answer, and an answer without
//! an access token. Errors never contain the client secret.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kafka_support;

use ebb_scalers::kafka::wire::oauth;
use kafka_support::try_config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const SECRET: &str = "body-Only-Secret-55d1";

/// Serves every request with `answer(request text)` → (status line, body).
async fn endpoint(answer: fn(&str) -> (&'static str, String)) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else { return };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = s.read(&mut chunk).await else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0usize);
                        if body.len() >= len {
                            break;
                        }
                    }
                }
                let (status, body) = answer(&String::from_utf8_lossy(&buf));
                let resp = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}/token")
}

async fn fetch(url: &str) -> Result<std::sync::Arc<str>, String> {
    let c = try_config(
        &[("bootstrapServers", "k:9092"), ("consumerGroup", "g")],
        &[("sasl", "oauthbearer"), ("oauthTokenEndpointUri", url), ("username", "id"), ("password", SECRET)],
    )
    .unwrap();
    let sasl = c.security.sasl.clone().unwrap();
    oauth::token(sasl.oauth.as_ref().unwrap(), &sasl).await
}

#[tokio::test]
async fn credentials_go_in_the_form_body_when_the_endpoint_refuses_basic_authentication() {
    let url = endpoint(|req| {
        if req.contains(&format!("client_id=id&client_secret={}", SECRET))
            && !req.contains("uthorization: Basic")
        {
            ("200 OK", r#"{"access_token":"from-body","expires_in":"120"}"#.to_owned())
        } else {
            ("401 Unauthorized", r#"{"error":"invalid_client"}"#.to_owned())
        }
    })
    .await;
    assert_eq!(&*fetch(&url).await.unwrap(), "from-body");
}

#[tokio::test]
async fn oversized_or_tokenless_answers_are_clear_errors_without_the_secret() {
    let url = endpoint(|_| ("200 OK", format!(r#"{{"access_token":"{}"}}"#, "a".repeat(100_000)))).await;
    let e = fetch(&url).await.unwrap_err();
    assert!(e.contains("larger than") && e.contains(&url) && !e.contains(SECRET), "{e}");
    let url = endpoint(|_| ("200 OK", "<html>login</html>".to_owned())).await;
    let e = fetch(&url).await.unwrap_err();
    assert!(e.contains("without an access_token") && !e.contains(SECRET), "{e}");
    let url = endpoint(|_| ("500 Internal Server Error", r#"{"error":"server_error"}"#.to_owned())).await;
    let e = fetch(&url).await.unwrap_err();
    assert!(e.contains("HTTP 500") && e.contains("server_error") && !e.contains(SECRET), "{e}");
}
