//! SASL OAUTHBEARER with the AWS MSK IAM token provider, end to end through ebb's connection
//! code against a fake broker on 127.0.0.1 (tansu has no SASL): the trigger's parse
//! (`sasl: oauthbearer`, `saslTokenProvider: aws_msk_iam`, `awsRegion`, static keys from the
//! TriggerAuthentication), SaslHandshake naming OAUTHBEARER, and one SaslAuthenticate carrying
//! the RFC 7628 initial response whose bearer token is the presigned MSK IAM URL for the region
//! and key. A refusal is an authentication error that names the broker and shows no secret. What
//! ebb refuses by name: saslTokenProvider bearer, a missing awsRegion.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kafka_support;

use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::{Bytes, BytesMut};
use ebb_scalers::kafka::wire::{Connection, Opener, WireError};
use ebb_testbackends::http_stub::{self, Answer};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{
    ApiVersionsResponse, RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use kafka_support::try_config;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

#[derive(Default)]
struct Seen {
    mechanism: Option<String>,
    auth: Option<Bytes>,
}

fn respond<R: Encodable + HeaderVersion>(correlation: i32, version: i16, r: &R) -> Vec<u8> {
    let mut buf = BytesMut::new();
    let mut h = ResponseHeader::default();
    h.correlation_id = correlation;
    h.encode(&mut buf, R::header_version(version)).unwrap();
    r.encode(&mut buf, version).unwrap();
    let mut f = (buf.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(&buf);
    f
}

/// A broker for one connection that records the SASL exchange and answers `auth_error`.
async fn sasl_broker(seen: Arc<Mutex<Seen>>, auth_error: i16) -> String {
    kafka_support::fake_broker(move |body, _| {
        let key = i16::from_be_bytes([body[0], body[1]]);
        let version = i16::from_be_bytes([body[2], body[3]]);
        let mut buf = Bytes::from(body);
        let out = match key {
            18 => {
                let h = RequestHeader::decode(&mut buf, 1).unwrap();
                let mut resp = ApiVersionsResponse::default();
                for (key, max) in [(18, 3), (17, 1), (36, 2)] {
                    let mut k = ApiVersion::default();
                    k.api_key = key;
                    k.max_version = max;
                    resp.api_keys.push(k);
                }
                respond(h.correlation_id, version, &resp)
            }
            17 => {
                let h =
                    RequestHeader::decode(&mut buf, SaslHandshakeRequest::header_version(version)).unwrap();
                let r = SaslHandshakeRequest::decode(&mut buf, version).unwrap();
                seen.lock().unwrap().mechanism = Some(r.mechanism.to_string());
                let mut resp = SaslHandshakeResponse::default();
                resp.mechanisms = vec![StrBytes::from_static_str("OAUTHBEARER")];
                respond(h.correlation_id, version, &resp)
            }
            36 => {
                let h = RequestHeader::decode(&mut buf, SaslAuthenticateRequest::header_version(version))
                    .unwrap();
                let r = SaslAuthenticateRequest::decode(&mut buf, version).unwrap();
                seen.lock().unwrap().auth = Some(r.auth_bytes);
                let mut resp = SaslAuthenticateResponse::default();
                resp.error_code = auth_error;
                if auth_error != 0 {
                    resp.error_message = Some(StrBytes::from_static_str("{\"status\":\"invalid_token\"}"));
                }
                respond(h.correlation_id, version, &resp)
            }
            _ => return None,
        };
        Some(out)
    })
    .await
}

fn msk_config(addr: &str) -> ebb_scalers::kafka::KafkaConfig {
    try_config(
        &[
            ("bootstrapServers", addr),
            ("consumerGroup", "g"),
            ("topic", "t"),
            ("sasl", "oauthbearer"),
            ("saslTokenProvider", "aws_msk_iam"),
            ("awsRegion", "eu-west-1"),
        ],
        &[("awsAccessKeyID", "AKIDEXAMPLE"), ("awsSecretAccessKey", SECRET)],
    )
    .unwrap()
}

#[tokio::test]
async fn oauthbearer_sends_the_msk_iam_token_in_an_rfc7628_initial_response() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let addr = sasl_broker(seen.clone(), 0).await;
    let c = msk_config(&addr);
    let sasl = c.security.sasl.clone().unwrap();
    assert!(!format!("{sasl:?} {c:?}").contains(SECRET), "no secret in Debug");
    let opener = Opener { tls: None, sasl: Some(sasl) };
    Connection::open(&addr, &opener, Arc::default()).await.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.mechanism.as_deref(), Some("OAUTHBEARER"));
    let auth = String::from_utf8(seen.auth.clone().unwrap().to_vec()).unwrap();
    let token = auth
        .strip_prefix("n,,\u{1}auth=Bearer ")
        .and_then(|t| t.strip_suffix("\u{1}\u{1}"))
        .unwrap_or_else(|| panic!("not an RFC 7628 initial response: {auth:?}"));
    let url = String::from_utf8(URL_SAFE_NO_PAD.decode(token).unwrap()).unwrap();
    assert!(
        url.starts_with("https://kafka.eu-west-1.amazonaws.com/?Action=kafka-cluster%3AConnect&"),
        "{url}"
    );
    assert!(url.contains("X-Amz-Credential=AKIDEXAMPLE%2F"), "{url}");
    assert!(url.contains("%2Feu-west-1%2Fkafka-cluster%2Faws4_request"), "{url}");
    assert!(!url.contains(SECRET) && !url.contains("wJalrXUtnFEMI"), "the secret key is never sent");
}

#[tokio::test]
async fn a_refused_token_is_an_auth_error_naming_the_broker_without_secrets() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let addr = sasl_broker(seen.clone(), 58).await;
    let c = msk_config(&addr);
    let opener = Opener { tls: None, sasl: c.security.sasl.clone() };
    let e = Connection::open(&addr, &opener, Arc::default()).await.unwrap_err();
    let WireError::Auth(m) = &e else { panic!("expected an auth error, got {e:?}") };
    assert!(m.contains(&addr) && m.contains("OAUTHBEARER") && m.contains("invalid_token"), "{m}");
    let token = String::from_utf8(seen.lock().unwrap().auth.clone().unwrap().to_vec()).unwrap();
    assert!(!m.contains(SECRET) && !m.contains(token.trim_end_matches('\u{1}')), "{m}");
}

#[test]
fn unknown_token_providers_and_missing_parameters_are_refused_by_name() {
    let base = [("bootstrapServers", "k:9092"), ("consumerGroup", "g"), ("sasl", "oauthbearer")];
    let keys = [("awsAccessKeyID", "AKIDEXAMPLE"), ("awsSecretAccessKey", SECRET)];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut v = base.to_vec();
        v.extend_from_slice(extra);
        try_config(&v, &keys).unwrap_err()
    };
    let e = with(&[]);
    assert!(e.contains("oauthTokenEndpointUri"), "bearer is the default provider: {e}");
    let e = with(&[("saslTokenProvider", "bearer"), ("awsRegion", "eu-west-1")]);
    assert!(e.contains("oauthTokenEndpointUri"), "{e}");
    let e = with(&[("saslTokenProvider", "kerberos")]);
    assert!(e.contains("expected bearer or aws_msk_iam"), "{e}");
    let e = with(&[("saslTokenProvider", "aws_msk_iam")]);
    assert!(e.contains("awsRegion"), "{e}");
    assert!(!e.contains(SECRET));
}

const CLIENT_ID: &str = "ebb-client";
const CLIENT_SECRET: &str = "s3cret-client-Secret-7f2a";
/// A client the token endpoint accepts but gives an already expired token.
const EXPIRED_CLIENT: &str = "expired-client";

#[derive(Default)]
struct TokenLog {
    requests: u32,
    problems: Vec<String>,
}

fn b64url(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(s)
}

/// An unsecured JWT (`alg: none`, empty signature) for `sub`, expiring `exp_in` s from now.
fn unsecured_jwt(sub: &str, exp_in: i64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let header = b64url(r#"{"alg":"none"}"#);
    let payload =
        b64url(&format!(r#"{{"sub":"{sub}","iat":{now},"exp":{},"scope":"kafka lag"}}"#, now + exp_in));
    format!("{header}.{payload}.")
}

/// A local OAuth2 token endpoint (`POST /token`, client-credentials grant): it checks the
/// grant type, the scope `kafka lag` and the client's id and secret (HTTP Basic, RFC 6749
/// §2.3.1) and answers an unsecured JWT for the client, or 401 `invalid_client`.
async fn token_endpoint(log: Arc<Mutex<TokenLog>>) -> String {
    let base = http_stub::serve(move |req| {
        let mut problems = Vec::new();
        if req.method != "POST" || req.uri != "/token" {
            problems.push(format!("request line: {} {}", req.method, req.uri));
        }
        let form = req.form();
        if !form.contains(&("grant_type", "client_credentials")) {
            problems.push(format!("grant_type missing: {}", req.body));
        }
        if !form.contains(&("scope", "kafka%20lag")) {
            problems.push(format!("scope is not \"kafka lag\": {}", req.body));
        }
        let who = req
            .header("authorization")
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .and_then(|b| String::from_utf8(b).ok());
        let token = |exp_in| {
            format!(
                r#"{{"access_token":"{}","token_type":"bearer","expires_in":3600}}"#,
                unsecured_jwt("ebb", exp_in)
            )
        };
        let answer = match who.as_deref() {
            Some(w) if w == format!("{CLIENT_ID}:{CLIENT_SECRET}") => Answer::json(200, token(3600)),
            Some(w) if w == format!("{EXPIRED_CLIENT}:{CLIENT_SECRET}") => Answer::json(200, token(-3600)),
            _ => Answer::json(
                401,
                r#"{"error":"invalid_client","error_description":"client authentication failed"}"#,
            ),
        };
        let mut log = log.lock().unwrap();
        log.requests += 1;
        log.problems.extend(problems);
        answer
    })
    .await
    .unwrap();
    format!("{base}/token")
}

fn bearer_config(bootstrap: &str, endpoint: &str, id: &str, secret: &str) -> ebb_scalers::kafka::KafkaConfig {
    try_config(
        &[
            ("bootstrapServers", bootstrap),
            ("consumerGroup", kafka_support::GROUP),
            ("topic", kafka_support::TOPIC),
        ],
        &[
            ("sasl", "oauthbearer"),
            ("oauthTokenEndpointUri", endpoint),
            ("scopes", "kafka, lag"),
            ("oauthExtensions", "traceId=ebb-test,team=lag"),
            ("username", id),
            ("password", secret),
        ],
    )
    .unwrap()
}

/// The standard fixture's topic and records on the broker's plain listener. A new topic's
/// partition leaders come up one by one after the listener, and a produce to a partition without
/// its leader yet is refused (error 6, not leader) while the others in the same request are
/// written; so each partition is written by a request of its own, retried until its first record
/// is taken (a refused request wrote nothing to that partition).
async fn real_fixture(plain: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut a = ebb_testbackends::apache_kafka::Admin::connect(plain).await.unwrap();
    a.create_topic(kafka_support::TOPIC, 3).await.unwrap();
    for &(partition, count) in kafka_support::PRODUCED.iter() {
        loop {
            match a.produce(kafka_support::TOPIC, &[(partition, count)]).await {
                Ok(next) => {
                    assert_eq!(next, std::collections::BTreeMap::from([(partition, i64::from(count))]));
                    break;
                }
                Err(e) if std::time::Instant::now() < deadline => {
                    eprintln!("produce: {e}; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                    a = ebb_testbackends::apache_kafka::Admin::connect(plain).await.unwrap();
                }
                Err(e) => panic!("produce: {e}"),
            }
        }
    }
}

/// The standard fixture's group offsets, retried until the group coordinator (created by the
/// scaler's FindCoordinator) has loaded.
async fn real_commit(plain: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut a = ebb_testbackends::apache_kafka::Admin::connect(plain).await.unwrap();
    loop {
        match a.commit(kafka_support::GROUP, kafka_support::TOPIC, &kafka_support::COMMITTED).await {
            Ok(()) => break,
            Err(e) if std::time::Instant::now() < deadline => {
                eprintln!("commit: {e}; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                a = ebb_testbackends::apache_kafka::Admin::connect(plain).await.unwrap();
            }
            Err(e) => panic!("commit: {e}"),
        }
    }
}

/// Against a real Apache Kafka node (ebb-testbackends::apache_kafka) whose SASL_PLAINTEXT
/// listener takes OAUTHBEARER with Kafka's default unsecured JWT validator:
/// - `bearer`: ebb fetches an unsigned JWT from a local token endpoint with the client-credentials
///   grant, logs in with it and the SASL extensions, and reads the fixture's lag (6 + 1 + 20 = 27,
///   p1 never committed counting 1 as KEDA does); a second measurement reuses the cached token;
/// - a wrong client secret: the endpoint's 401 becomes an error naming the endpoint, not the secret;
/// - an expired token: the broker refuses it, and ebb reports the broker's `invalid_token` status;
/// - `aws_msk_iam`: the broker parses ebb's initial response and refuses the token (not a JWT).
#[tokio::test]
async fn a_real_broker_logs_in_with_a_bearer_token_and_refuses_bad_ones() {
    use ebb_scalers::{Measurement, Scaler};
    let broker = ebb_testbackends::apache_kafka::ApacheKafka::start().unwrap();
    let (sasl, plain) = (broker.sasl_bootstrap(), broker.plain_bootstrap());
    real_fixture(&plain).await;
    let log = Arc::new(Mutex::new(TokenLog::default()));
    let endpoint = token_endpoint(log.clone()).await;

    let s = ebb_scalers::kafka::KafkaScaler::new(bearer_config(&sasl, &endpoint, CLIENT_ID, CLIENT_SECRET));
    let m = s.measure(chrono::Utc::now()).await.unwrap_or_else(|e| panic!("{e}\n{}", broker.log_tail()));
    assert_eq!(m, Measurement { value: 3.0, active: true }, "no commits yet, latest: 1 per partition");
    real_commit(&plain).await;
    let m = s.measure(chrono::Utc::now()).await.unwrap_or_else(|e| panic!("{e}\n{}", broker.log_tail()));
    assert_eq!(m, Measurement { value: 27.0, active: true });
    assert!(log.lock().unwrap().problems.is_empty(), "{:?}", log.lock().unwrap().problems);
    let fetched = log.lock().unwrap().requests;
    assert!(fetched >= 1);
    // A new connection logs in with the cached token.
    let c = bearer_config(&sasl, &endpoint, CLIENT_ID, CLIENT_SECRET);
    let opener = Opener { tls: None, sasl: c.security.sasl.clone() };
    Connection::open(&sasl, &opener, Arc::default()).await.unwrap();
    assert_eq!(log.lock().unwrap().requests, fetched, "the cached token is reused");

    let wrong = "wrong-Secret-91c3";
    let c = bearer_config(&sasl, &endpoint, CLIENT_ID, wrong);
    let opener = Opener { tls: None, sasl: c.security.sasl.clone() };
    let e = Connection::open(&sasl, &opener, Arc::default()).await.unwrap_err();
    let WireError::Auth(m) = &e else { panic!("expected an auth error, got {e:?}") };
    assert!(
        m.contains(&endpoint) && m.contains("refused the client credentials") && m.contains("401"),
        "{m}"
    );
    assert!(m.contains("invalid_client") && !m.contains(wrong) && !m.contains(CLIENT_SECRET), "{m}");

    let c = bearer_config(&sasl, &endpoint, EXPIRED_CLIENT, CLIENT_SECRET);
    let opener = Opener { tls: None, sasl: c.security.sasl.clone() };
    let e = Connection::open(&sasl, &opener, Arc::default()).await.unwrap_err();
    let WireError::Auth(m) = &e else { panic!("expected an auth error, got {e:?}") };
    assert!(
        m.contains(&sasl) && m.contains("refused the SASL OAUTHBEARER token") && m.contains("invalid_token"),
        "{m}"
    );
    assert!(!m.contains(CLIENT_SECRET) && !m.contains("eyJ"), "no secret, no token: {m}");

    let c = msk_config(&sasl);
    let opener = Opener { tls: None, sasl: c.security.sasl.clone() };
    let e = Connection::open(&sasl, &opener, Arc::default()).await.unwrap_err();
    let WireError::Auth(m) = &e else { panic!("expected an auth error, got {e:?}") };
    assert!(m.contains("refused the SASL OAUTHBEARER token") && m.contains("invalid_token"), "{m}");
    assert!(!m.contains(SECRET), "{m}");
    assert!(log.lock().unwrap().problems.is_empty(), "{:?}", log.lock().unwrap().problems);
}
