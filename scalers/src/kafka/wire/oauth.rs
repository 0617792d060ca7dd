//! The OAuth2 token for SASL OAUTHBEARER with `saslTokenProvider: bearer`: the client-credentials
//! grant (RFC 6749 §4.4) against `oauthTokenEndpointUri`, client id and secret from `username`
//! and `password` (sent with HTTP Basic authentication, then, if the endpoint refuses that, in
//! the form body, as Go's OAuth2 client does), `scopes` joined by spaces. Tokens are cached per
//! endpoint and credentials until shortly before `expires_in`; a token the broker refused is
//! dropped from the cache. Also the RFC 7628 §3.1 initial client response with SASL extensions.
//!
//! The HTTP client dials only what the egress policy allows (`crate::egress`), follows no
//! redirects, reads at most [`MAX_RESPONSE`] bytes, and gives up after [`TIMEOUT`]. Nothing here
//! is logged; errors name the endpoint (without user info or query) and never contain the secret
//! or a token.

use crate::encode::unreserved;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use super::scram::quote_peer;
use crate::egress;
use crate::kafka::config::{OAuthBearerSettings, SaslSettings};

/// Largest token endpoint response read.
pub const MAX_RESPONSE: usize = 64 * 1024;
/// Deadline of one token request.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// A cached token is renewed this long before it expires (at most half its lifetime).
pub const RENEW_BEFORE: Duration = Duration::from_secs(30);

struct Cached {
    token: Arc<str>,
    renew_at: Instant,
}

static CACHE: LazyLock<Mutex<HashMap<String, Cached>>> = LazyLock::new(Mutex::default);

/// RFC 7628 §3.1 initial client response: `n,,` (no authorization identity), then
/// `auth=Bearer <token>` and each `key=value` extension between 0x01 separators, ended by two
/// 0x01.
pub fn initial_response(token: &str, extensions: &[(String, String)]) -> Vec<u8> {
    let mut s = format!("n,,\u{1}auth=Bearer {token}\u{1}");
    for (k, v) in extensions {
        s.push_str(k);
        s.push('=');
        s.push_str(v);
        s.push('\u{1}');
    }
    s.push('\u{1}');
    s.into_bytes()
}

/// Checks one SASL extension as RFC 7628 §3.1 defines it: the key letters only (and not
/// `auth`, which carries the token), the value printable ASCII, space, tab, CR or LF.
pub fn check_extension(key: &str, value: &str) -> Result<(), String> {
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(format!("extension key {key:?} must be ASCII letters only"));
    }
    if key == "auth" {
        return Err("extension key \"auth\" is reserved for the token".to_owned());
    }
    if !value.bytes().all(|b| matches!(b, 0x21..=0x7e | b' ' | b'\t' | b'\r' | b'\n')) {
        return Err(format!("the value of extension {key:?} must be printable ASCII"));
    }
    Ok(())
}

fn cache_key(o: &OAuthBearerSettings, sasl: &SaslSettings) -> String {
    let mut h = Sha256::new();
    for part in [o.token_url.as_str(), &sasl.username, &sasl.password, &o.scopes.join(" ")] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The token for `sasl`: the cached one while it is fresh, else a new one from the endpoint.
pub async fn token(o: &OAuthBearerSettings, sasl: &SaslSettings) -> Result<Arc<str>, String> {
    let key = cache_key(o, sasl);
    {
        let cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = cache.get(&key).filter(|c| Instant::now() < c.renew_at) {
            return Ok(c.token.clone());
        }
    }
    let (token, lifetime) = fetch(o, &sasl.username, &sasl.password).await?;
    let token: Arc<str> = Arc::from(token);
    let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    match lifetime {
        Some(life) => {
            let renew_at = Instant::now() + life.saturating_sub(RENEW_BEFORE.min(life / 2));
            cache.insert(key, Cached { token: token.clone(), renew_at });
        }
        None => {
            cache.remove(&key);
        }
    }
    Ok(token)
}

/// Drops the cached token of `sasl` (the broker refused it).
pub fn forget(o: &OAuthBearerSettings, sasl: &SaslSettings) {
    CACHE.lock().unwrap_or_else(PoisonError::into_inner).remove(&cache_key(o, sasl));
}

/// The endpoint as errors name it: scheme, host, port and path (no user info, no query).
pub fn describe(url: &reqwest::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

enum Attempt {
    Token(String, Option<Duration>),
    /// The endpoint refused the client credentials (HTTP 400 or 401): worth retrying with the
    /// other way of sending them.
    Refused(String),
}

async fn fetch(
    o: &OAuthBearerSettings,
    id: &str,
    secret: &str,
) -> Result<(String, Option<Duration>), String> {
    let url = &o.token_url;
    let port = url.port_or_known_default().unwrap_or(443);
    egress::check_url(url, "oauthTokenEndpointUri").map_err(|e| e.to_string())?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(egress::Resolver::new(port, "oauthTokenEndpointUri")))
        .timeout(TIMEOUT)
        .user_agent(concat!("ebb/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|_| "cannot build the HTTP client for oauthTokenEndpointUri".to_owned())?;
    let mut body = "grant_type=client_credentials".to_owned();
    if !o.scopes.is_empty() {
        body.push_str("&scope=");
        body.push_str(&unreserved(&o.scopes.join(" ")));
    }
    let basic = STANDARD.encode(format!("{}:{}", unreserved(id), unreserved(secret)));
    let first = attempt(&client, url, body.clone(), Some(format!("Basic {basic}"))).await?;
    let second = match first {
        Attempt::Token(t, life) => return Ok((t, life)),
        Attempt::Refused(why) => {
            let in_body = format!("{body}&client_id={}&client_secret={}", unreserved(id), unreserved(secret));
            match attempt(&client, url, in_body, None).await? {
                Attempt::Token(t, life) => return Ok((t, life)),
                Attempt::Refused(again) => (why, again),
            }
        }
    };
    Err(format!(
        "the OAuth token endpoint {} refused the client credentials of client {} (username/password) ({}; with them in the form body: {})",
        describe(url),
        quote_peer(id),
        second.0,
        second.1
    ))
}

async fn attempt(
    client: &reqwest::Client,
    url: &reqwest::Url,
    body: String,
    authorization: Option<String>,
) -> Result<Attempt, String> {
    let mut req = client
        .post(url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(reqwest::header::ACCEPT, "application/json")
        .body(body);
    if let Some(a) = authorization {
        req = req.header(reqwest::header::AUTHORIZATION, a);
    }
    let endpoint = describe(url);
    let mut resp = req.send().await.map_err(|e| {
        if let Some(d) = egress::find_denied(&e) {
            return d.to_string();
        }
        let kind = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "cannot connect"
        } else {
            "failed"
        };
        format!("the OAuth token request to {endpoint} {kind}")
    })?;
    let status = resp.status();
    let mut bytes = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|_| format!("the OAuth token response of {endpoint} broke off (HTTP {status})"))?
    {
        if bytes.len() + chunk.len() > MAX_RESPONSE {
            return Err(format!(
                "the OAuth token response of {endpoint} is larger than {MAX_RESPONSE} bytes"
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    let json: Option<serde_json::Value> = serde_json::from_slice(&bytes).ok();
    let field = |name: &str| json.as_ref().and_then(|j| j.get(name)).and_then(serde_json::Value::as_str);
    if !status.is_success() {
        let why = match (field("error"), field("error_description")) {
            (Some(e), Some(d)) => format!("HTTP {}: {}: {}", status.as_u16(), quote_peer(e), quote_peer(d)),
            (Some(e), None) => format!("HTTP {}: {}", status.as_u16(), quote_peer(e)),
            _ => format!("HTTP {}", status.as_u16()),
        };
        if matches!(status.as_u16(), 400 | 401) {
            return Ok(Attempt::Refused(why));
        }
        return Err(format!("the OAuth token endpoint {endpoint} answered {why}"));
    }
    let token = field("access_token").filter(|t| !t.is_empty()).ok_or_else(|| {
        format!("the OAuth token endpoint {endpoint} answered without an access_token (JSON expected)")
    })?;
    if token.bytes().any(|b| !(0x21..=0x7e).contains(&b)) {
        return Err(format!(
            "the access_token from {endpoint} is not a bearer token (printable ASCII expected)"
        ));
    }
    let life = json.as_ref().and_then(|j| j.get("expires_in")).and_then(|v| {
        v.as_u64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok())).map(Duration::from_secs)
    });
    Ok(Attempt::Token(token.to_owned(), life.filter(|l| !l.is_zero())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_initial_response_carries_the_token_and_extensions_between_0x01_separators() {
        // RFC 7628 §3.1: gs2-header "n,," kvsep auth-kv *(kvsep key=value) kvsep kvsep.
        let ext =
            vec![("logicalCluster".to_owned(), "lkc-1".to_owned()), ("pool".to_owned(), "a b".to_owned())];
        assert_eq!(
            initial_response("t0k", &ext),
            b"n,,\x01auth=Bearer t0k\x01logicalCluster=lkc-1\x01pool=a b\x01\x01".to_vec()
        );
        assert_eq!(initial_response("t0k", &[]), b"n,,\x01auth=Bearer t0k\x01\x01".to_vec());
    }

    #[test]
    fn extensions_follow_rfc7628_key_and_value_syntax() {
        assert!(check_extension("logicalCluster", "lkc-1").is_ok());
        assert!(check_extension("auth", "x").unwrap_err().contains("reserved"));
        assert!(check_extension("a1", "x").is_err());
        assert!(check_extension("", "x").is_err());
        assert!(check_extension("k", "a\u{1}b").is_err());
        assert!(check_extension("k", "é").is_err());
    }

    #[test]
    fn an_endpoint_is_described_without_user_info_or_query() {
        let u =
            reqwest::Url::parse("https://id:s3cret@idp.example:8443/token?client_secret=s3cret#f").unwrap();
        assert_eq!(describe(&u), "https://idp.example:8443/token");
    }
}
