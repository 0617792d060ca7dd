//! AWS Signature Version 4 for the prometheus scaler on Amazon Managed Service for Prometheus:
//! with `awsRegion` set, every query is signed for service `aps` with the trigger's AWS identity
//! (static keys, an assumed role or `podIdentity` provider aws, as for the other AWS triggers —
//! see `crate::aws::credentials`). Signing is the AWS SDK's (`aws-sigv4`); this module decides
//! when it applies, fetches and caches the credentials, and encodes the query string the way
//! SigV4 canonicalizes it, so the signed and the sent query are the same bytes. Credentials
//! never reach a message: errors name the trigger's server, region and the credential source.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use reqwest::header::{HeaderName, HeaderValue};

use crate::aws::{AwsClients, AwsCredentials, ClientKey, credentials};
use crate::error::{ParseError, ParseErrorKind, ScalerError};
use crate::params::Params;

/// The signing name of Amazon Managed Service for Prometheus.
pub const SERVICE: &str = "aps";
/// Credentials closer than this to their expiry are fetched again.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);

/// A trigger's SigV4 settings: region and identity (no secret in `Debug`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigV4Config {
    pub region: String,
    pub credentials: AwsCredentials,
}

impl SigV4Config {
    /// The static keys, so text that came from the server can be scrubbed of them.
    pub fn secret_values(&self) -> Vec<String> {
        fn walk(c: &AwsCredentials, out: &mut Vec<String>) {
            match c {
                AwsCredentials::Operator => {}
                AwsCredentials::Static { access_key_id, secret_access_key, session_token } => {
                    out.push(access_key_id.expose().to_owned());
                    out.push(secret_access_key.expose().to_owned());
                    out.extend(session_token.as_ref().map(|t| t.expose().to_owned()));
                }
                AwsCredentials::AssumeRole { base, .. } => walk(base, out),
            }
        }
        let mut out = Vec::new();
        walk(&self.credentials, &mut out);
        out.retain(|s| s.len() >= 4);
        out
    }
}

/// Reads `awsRegion` and the AWS identity. SigV4 applies when `awsRegion` is set; AWS
/// credentials without `awsRegion` are an error rather than silently unused.
pub fn parse(p: &Params<'_>) -> Result<Option<SigV4Config>, ParseError> {
    let Some(region) = p.text("awsRegion")? else {
        let aws_identity = p.pod_identity().is_some_and(|pi| pi.provider == "aws")
            || p.text("awsAccessKeyID")?.is_some()
            || p.text("awsRoleArn")?.is_some();
        if aws_identity {
            return Err(p.error(
                "awsRegion",
                ParseErrorKind::MissingParameter,
                "AWS credentials are given, so requests are signed with SigV4 for Amazon Managed Service \
                 for Prometheus: set awsRegion to the workspace's region (such as \"us-east-1\")",
            ));
        }
        return Ok(None);
    };
    crate::aws::check_region(p, &region)?;
    let credentials = credentials::resolve(p)?;
    Ok(Some(SigV4Config { region, credentials }))
}

/// Where a live signer takes its credentials from.
enum Source {
    Static(Credentials),
    Sdk(Arc<AwsClients>),
}

/// Signs one trigger's queries; holds the credentials of identities that expire.
pub struct Signer {
    region: String,
    source: Source,
    describe: String,
    cached: Mutex<Option<Credentials>>,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("region", &self.region)
            .field("credentials", &self.describe)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// No I/O: credentials of the SDK's chain or of STS are fetched on first use.
    pub fn new(config: &SigV4Config) -> Self {
        let source = match &config.credentials {
            AwsCredentials::Static { access_key_id, secret_access_key, session_token } => {
                Source::Static(Credentials::new(
                    access_key_id.expose(),
                    secret_access_key.expose(),
                    session_token.as_ref().map(|t| t.expose().to_owned()),
                    None,
                    "ebb-trigger-authentication",
                ))
            }
            other => Source::Sdk(AwsClients::shared(ClientKey {
                region: config.region.clone(),
                endpoint: None,
                credentials: other.clone(),
            })),
        };
        Self {
            region: config.region.clone(),
            source,
            describe: config.credentials.describe(),
            cached: Mutex::new(None),
        }
    }

    async fn credentials(&self, server: &str) -> Result<Credentials, ScalerError> {
        let clients = match &self.source {
            Source::Static(c) => return Ok(c.clone()),
            Source::Sdk(clients) => clients,
        };
        let fresh =
            |c: &Credentials| c.expiry().is_some_and(|e| e > SystemTime::now() + REFRESH_BEFORE_EXPIRY);
        if let Some(c) = self.cached.lock().unwrap_or_else(PoisonError::into_inner).as_ref()
            && fresh(c)
        {
            return Ok(c.clone());
        }
        let provider = clients.credentials_provider().await.ok_or_else(|| {
            ScalerError::Config(format!(
                "no AWS credentials provider for signing requests to Prometheus at {server} ({})",
                self.describe
            ))
        })?;
        let creds = provider.provide_credentials().await.map_err(|e| {
            ScalerError::Unauthorized(format!(
                "cannot obtain AWS credentials ({}) to sign requests to Prometheus at {server}: {}",
                self.describe,
                crate::prometheus::response::shorten(&e.to_string())
            ))
        })?;
        *self.cached.lock().unwrap_or_else(PoisonError::into_inner) = Some(creds.clone());
        Ok(creds)
    }

    /// Adds the SigV4 headers (`authorization`, `x-amz-date`, `x-amz-security-token`) to a
    /// bodyless request whose query string is already in SigV4 form (see [`encode_query`]).
    pub async fn sign(&self, request: &mut reqwest::Request, server: &str) -> Result<(), ScalerError> {
        let creds = self.credentials(server).await?;
        let identity = creds.into();
        let failed = |what: &str| {
            ScalerError::Config(format!(
                "cannot sign the request to Prometheus at {server} with AWS SigV4 (region {}): {what}",
                self.region
            ))
        };
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(SERVICE)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|_| failed("incomplete signing parameters"))?
            .into();
        let signable = SignableRequest::new(
            request.method().as_str(),
            request.url().as_str(),
            std::iter::empty(),
            SignableBody::Bytes(&[]),
        )
        .map_err(|_| failed("the request address cannot be signed"))?;
        let (instructions, _signature) =
            sign(signable, &params).map_err(|_| failed("signing failed"))?.into_parts();
        let (headers, _) = instructions.into_parts();
        for h in headers {
            let name = HeaderName::from_bytes(h.name().as_bytes())
                .map_err(|_| failed("the signature header is not a header name"))?;
            let mut value = HeaderValue::from_str(h.value())
                .map_err(|_| failed("the signature is not a header value"))?;
            value.set_sensitive(h.sensitive() || name == reqwest::header::AUTHORIZATION);
            request.headers_mut().insert(name, value);
        }
        Ok(())
    }
}

/// The query string in SigV4's canonical encoding: every byte except `A-Z a-z 0-9 - _ . ~`
/// percent-encoded (a space is `%20`, never `+`), pairs in the order given.
pub fn encode_query(params: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(&crate::encode::unreserved(k));
        out.push('=');
        out.push_str(&crate::encode::unreserved(v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_encoding_is_sigv4_canonical() {
        assert_eq!(
            encode_query(&[("query", "sum(rate(x{job=\"a b\"}[2m]))"), ("time", "2026-01-01T00:00:00.000Z")]),
            "query=sum%28rate%28x%7Bjob%3D%22a%20b%22%7D%5B2m%5D%29%29&time=2026-01-01T00%3A00%3A00.000Z"
        );
        assert_eq!(encode_query(&[("a", "~-_.+/é")]), "a=~-_.%2B%2F%C3%A9");
    }
}
