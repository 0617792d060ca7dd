//! The `bearer` token provider against hostile or unusual OAuth token endpoints on 127.0.0.1:
//! an endpoint that only takes the client credentials in the form body (ebb retries with them
//! there after a 401, as Go's OAuth2 client does), an oversized answer, and an answer without
//! an access token. Errors never contain the client secret.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kafka_support;

use ebb_scalers::kafka::wire::oauth;
use ebb_testbackends::http_stub::{self, Answer, Request};
use kafka_support::try_config;

const SECRET: &str = "body-Only-Secret-55d1";

/// A token endpoint answering every request with `answer(request)`; returns its URL.
async fn endpoint(answer: fn(&Request) -> Answer) -> String {
    let base = http_stub::serve(move |req| answer(&req)).await.unwrap();
    format!("{base}/token")
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
        if req.body.contains(&format!("client_id=id&client_secret={}", SECRET))
            && req.header("authorization").is_none()
        {
            Answer::json(200, r#"{"access_token":"from-body","expires_in":"120"}"#)
        } else {
            Answer::json(401, r#"{"error":"invalid_client"}"#)
        }
    })
    .await;
    assert_eq!(&*fetch(&url).await.unwrap(), "from-body");
}

#[tokio::test]
async fn oversized_or_tokenless_answers_are_clear_errors_without_the_secret() {
    let url =
        endpoint(|_| Answer::json(200, format!(r#"{{"access_token":"{}"}}"#, "a".repeat(100_000)))).await;
    let e = fetch(&url).await.unwrap_err();
    assert!(e.contains("larger than") && e.contains(&url) && !e.contains(SECRET), "{e}");
    let url = endpoint(|_| Answer::json(200, "<html>login</html>")).await;
    let e = fetch(&url).await.unwrap_err();
    assert!(e.contains("without an access_token") && !e.contains(SECRET), "{e}");
    let url = endpoint(|_| Answer::json(500, r#"{"error":"server_error"}"#)).await;
    let e = fetch(&url).await.unwrap_err();
    assert!(e.contains("HTTP 500") && e.contains("server_error") && !e.contains(SECRET), "{e}");
}
