//! The AWS MSK IAM token for SASL OAUTHBEARER (`saslTokenProvider: aws_msk_iam`), as AWS's MSK
//! IAM SASL signers define it: the URL `https://kafka.<region>.amazonaws.com/?Action=kafka-cluster%3AConnect`
//! presigned with SigV4 in the query string (service `kafka-cluster`, valid 900 s), a
//! `User-Agent` parameter appended after signing, and the whole URL encoded base64url without
//! padding. The signing itself is the AWS SDK's (`aws-sigv4`). Also the RFC 7628 initial client
//! response that carries a bearer token. Pure: credentials and the clock are passed in; nothing
//! here is logged, and errors never contain the credentials or the token.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign};
use aws_sigv4::sign::v4;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The SigV4 signing name of MSK IAM authentication.
pub const SERVICE: &str = "kafka-cluster";
/// How long a token is valid.
pub const EXPIRES_IN: Duration = Duration::from_secs(900);
/// The `User-Agent` query parameter appended to the presigned URL.
pub const USER_AGENT: &str = "ebb-kafka-msk-iam";

/// The presigned URL (before base64url) for `region` at `now`.
pub fn presigned_url(region: &str, creds: &Credentials, now: SystemTime) -> Result<String, String> {
    if region.is_empty() || !region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(format!("awsRegion {region:?} is not an AWS region name"));
    }
    let base = format!("https://kafka.{region}.amazonaws.com/?Action=kafka-cluster%3AConnect");
    let identity = creds.clone().into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(EXPIRES_IN);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SERVICE)
        .time(now)
        .settings(settings)
        .build()
        .map_err(|_| "incomplete SigV4 signing parameters".to_owned())?
        .into();
    let request = SignableRequest::new("GET", &base, std::iter::empty(), SignableBody::Bytes(&[]))
        .map_err(|_| "the MSK IAM URL cannot be signed".to_owned())?;
    let (instructions, _) = sign(request, &params)
        .map_err(|_| "SigV4 signing of the MSK IAM URL failed".to_owned())?
        .into_parts();
    let mut url = base;
    for (name, value) in instructions.params() {
        url.push('&');
        url.push_str(&crate::encode::unreserved(name));
        url.push('=');
        url.push_str(&crate::encode::unreserved(value));
    }
    url.push_str("&User-Agent=");
    url.push_str(&crate::encode::unreserved(USER_AGENT));
    Ok(url)
}

/// The MSK IAM OAUTHBEARER token: the presigned URL, base64url without padding.
pub fn token(region: &str, creds: &Credentials, now: SystemTime) -> Result<String, String> {
    Ok(URL_SAFE_NO_PAD.encode(presigned_url(region, creds, now)?))
}

/// RFC 7628 §3.1 initial client response carrying `token`: `n,,` (no authorization identity),
/// then `auth=Bearer <token>` between 0x01 separators, ended by two 0x01.
pub fn initial_response(token: &str) -> Vec<u8> {
    super::oauth::initial_response(token, &[])
}
