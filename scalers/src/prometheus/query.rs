//! The live prometheus scaler: sends the instant query through the shared client, reads a bounded
//! body and turns every failure into a `ScalerError` that names the server (connection refused →
//! Unreachable, 401/403 → Unauthorized, time-outs → Timeout, a rejected query → Config, odd
//! answers → InvalidResponse, a destination the egress policy forbids → Denied). A message never
//! carries the answer's body (see `response`): status code, media type and the kind of body only;
//! what remains from elsewhere is shortened and scrubbed of the trigger's credentials.

use std::error::Error as _;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION};

use super::PrometheusConfig;
use super::auth::Credentials;
use super::pool;
use super::response::{self, DecodeError, Decoded};
use super::sigv4::{self, Signer};
use crate::egress;
use crate::error::ScalerError;
use crate::scaler::{Measurement, Scaler};

/// Largest answer read; a single value needs a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 4 << 20;

/// One trigger's connection to Prometheus (the HTTP client itself is shared, see `pool`).
pub struct PrometheusScaler {
    config: PrometheusConfig,
    client: Arc<reqwest::Client>,
    server: String,
    secrets: Vec<String>,
    /// With `awsRegion`: signs every query with AWS SigV4.
    signer: Option<Signer>,
}

impl std::fmt::Debug for PrometheusScaler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusScaler").field("config", &self.config).finish_non_exhaustive()
    }
}

impl PrometheusScaler {
    /// Takes the shared client for the trigger's server and TLS settings (no network I/O).
    pub fn new(config: PrometheusConfig) -> Result<Self, ScalerError> {
        let client = pool::client(&config.pool_key())?;
        let server = config.server_display();
        let mut secrets = config.auth.secret_values();
        secrets.extend(config.sigv4.iter().flat_map(|a| a.secret_values()));
        let signer = config.sigv4.as_ref().map(Signer::new);
        Ok(Self { config, client, server, secrets, signer })
    }

    /// The shared HTTP client this scaler uses.
    pub fn client(&self) -> &Arc<reqwest::Client> {
        &self.client
    }

    /// Runs the query at `now` and returns the value after `ignoreNullValues` is applied.
    pub async fn value(&self, now: DateTime<Utc>) -> Result<f64, ScalerError> {
        let c = &self.config;
        // IP literals are dialled without resolution: check them here (names are checked by
        // the pooled client's resolver on every address it resolves).
        egress::check_url(&c.server, "serverAddress")?;
        let time = now.to_rfc3339_opts(SecondsFormat::Millis, true);
        let mut params: Vec<(&str, &str)> = vec![("query", &c.query), ("time", &time)];
        if let Some(ns) = &c.namespace {
            params.push(("namespace", ns));
        }
        params.extend(c.query_parameters.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut req = if self.signer.is_some() {
            // Sent exactly as SigV4 canonicalizes it, so the signed and the sent query agree.
            let mut url = c.query_url();
            url.set_query(Some(&sigv4::encode_query(&params)));
            self.client.get(url)
        } else {
            self.client.get(c.query_url()).query(&params)
        };
        req = req.timeout(c.timeout);
        for (k, v) in &c.custom_headers {
            req = req.header(k, v);
        }
        req = match &c.auth.credentials {
            Credentials::None => req,
            Credentials::Bearer(t) => req.bearer_auth(t),
            Credentials::Basic { username, password } => req.basic_auth(username, password.as_ref()),
        };
        if let Some((k, v)) = &c.auth.custom {
            req = req.header(k, v);
        }
        let mut request = req.build().map_err(|e| self.transport_error(&e))?;
        if let Some(signer) = &self.signer {
            signer.sign(&mut request, &self.server).await?;
        }
        let resp = self.client.execute(request).await.map_err(|e| self.transport_error(&e))?;
        let status = resp.status();
        if status.is_redirection() {
            return Err(self.redirect_error(&resp));
        }
        let content_type =
            resp.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let body = self.read_body(resp).await?;
        if !status.is_success() {
            return Err(self.status_error(status, &content_type, &body));
        }
        match response::decode(&body) {
            Ok(Decoded::Value(v)) if v.is_finite() => Ok(v),
            Ok(Decoded::Value(v)) if c.ignore_null_values => {
                tracing::debug!(server = %self.server, value = %v, "prometheus query returned a non-finite value; reporting 0 (ignoreNullValues)");
                Ok(0.0)
            }
            Ok(Decoded::Value(v)) => Err(ScalerError::InvalidResponse(format!(
                "the query on Prometheus at {} returned {v}; ignoreNullValues is false, so this is an error \
                 rather than 0",
                self.server
            ))),
            Ok(Decoded::Empty) if c.ignore_null_values => Ok(0.0),
            Ok(Decoded::Empty) => Err(ScalerError::InvalidResponse(format!(
                "the query on Prometheus at {} returned no data (empty result); ignoreNullValues is false, \
                 so this is an error rather than 0 — check the query's selectors and that its targets are scraped",
                self.server
            ))),
            Err(e) => Err(self.decode_error(&e)),
        }
    }

    async fn read_body(&self, mut resp: reqwest::Response) -> Result<Vec<u8>, ScalerError> {
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.transport_error(&e))? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(ScalerError::InvalidResponse(format!(
                    "the answer of Prometheus at {} is larger than {} MiB; the query returns far more than one \
                     value — aggregate it, for example with sum()",
                    self.server,
                    MAX_BODY_BYTES >> 20
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn transport_error(&self, e: &reqwest::Error) -> ScalerError {
        if e.is_timeout() {
            return ScalerError::Timeout(self.config.timeout);
        }
        if let Some(denied) = egress::find_denied(e) {
            return denied.clone().into();
        }
        let cause = self.scrub(&cause_chain(e));
        if CLIENT_CERT_ALERTS.iter().any(|a| cause.contains(a)) {
            return ScalerError::Unauthorized(format!(
                "Prometheus at {} rejected the TLS client certificate ({cause}) — check authModes tls and cert/key in the TriggerAuthentication",
                self.server
            ));
        }
        if e.is_connect() {
            ScalerError::Unreachable(format!("cannot connect to Prometheus at {}: {cause}", self.server))
        } else if e.is_redirect() {
            ScalerError::InvalidResponse(format!(
                "Prometheus at {} redirected too often: {cause}",
                self.server
            ))
        } else {
            ScalerError::Unreachable(format!("request to Prometheus at {} failed: {cause}", self.server))
        }
    }

    fn redirect_error(&self, resp: &reqwest::Response) -> ScalerError {
        let target = resp
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| resp.url().join(l).ok())
            .map_or_else(|| "an unknown location".to_owned(), |u| u.origin().ascii_serialization());
        ScalerError::Config(format!(
            "Prometheus at {} answered {} redirecting to {target}; redirects to another host are not followed, \
             so credentials are never sent there — set serverAddress to the final address",
            self.server,
            resp.status()
        ))
    }

    fn status_error(&self, status: StatusCode, content_type: &str, body: &[u8]) -> ScalerError {
        let text = self.scrub(&response::error_text(body));
        let ct = match media_type(content_type) {
            Some(t) if t != "application/json" => format!(" ({t})"),
            _ => String::new(),
        };
        let msg = format!("Prometheus at {} answered {status}{ct}: {text}", self.server);
        match status.as_u16() {
            400 => ScalerError::Config(format!("{msg} — the query was rejected")),
            401 | 403 => match &sigv4_identity(self) {
                Some((region, identity)) => ScalerError::Unauthorized(format!(
                    "{msg} — the request was signed with AWS SigV4 (service {}, region {region}, {identity}); \
                     check awsRegion, the AWS credentials in the TriggerAuthentication and the identity's \
                     aps:QueryMetrics permission",
                    sigv4::SERVICE
                )),
                None => ScalerError::Unauthorized(format!(
                    "{msg} — check authModes and the TriggerAuthentication"
                )),
            },
            404 => ScalerError::NotFound(format!(
                "{msg} — check serverAddress (the query API is <serverAddress>/api/v1/query)"
            )),
            429 => ScalerError::Throttled(msg),
            502..=504 => ScalerError::Unreachable(msg),
            _ => ScalerError::InvalidResponse(msg),
        }
    }

    fn decode_error(&self, e: &DecodeError) -> ScalerError {
        let msg = self.scrub(&format!("{e} (Prometheus at {})", self.server));
        ScalerError::InvalidResponse(msg)
    }

    /// Removes any credential of this trigger from text that came from elsewhere.
    fn scrub(&self, text: &str) -> String {
        self.secrets.iter().fold(text.to_owned(), |t, s| t.replace(s.as_str(), "<redacted>"))
    }
}

/// Region and identity description of a SigV4-signing trigger.
fn sigv4_identity(s: &PrometheusScaler) -> Option<(String, String)> {
    s.config.sigv4.as_ref().map(|a| (a.region.clone(), a.credentials.describe()))
}

/// The media type of a `Content-Type` header when it has the shape of one (`text/html`), so
/// that nothing else from the header reaches a message.
fn media_type(content_type: &str) -> Option<&str> {
    let t = content_type.split(';').next()?.trim();
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.chars().all(|c| c.is_ascii_alphanumeric() || "!#$&^_.+-".contains(c))
    };
    t.split_once('/').is_some_and(|(a, b)| token(a) && token(b)).then_some(t)
}

/// TLS alerts by which a server refuses the client's certificate (or its absence), as rustls
/// reports them.
const CLIENT_CERT_ALERTS: &[&str] = &[
    "received fatal alert: BadCertificate",
    "received fatal alert: CertificateRequired",
    "received fatal alert: UnknownCA",
    "received fatal alert: CertificateUnknown",
    "received fatal alert: AccessDenied",
];

/// `error sending request: client error (Connect): tcp connect error: Connection refused`, with
/// repeated links dropped; reqwest's URL (which holds the query string) is left out.
fn cause_chain(e: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    if parts.is_empty() { "request failed".to_owned() } else { response::shorten(&parts.join(": ")) }
}

#[async_trait]
impl Scaler for PrometheusScaler {
    async fn measure(&self, now: DateTime<Utc>) -> Result<Measurement, ScalerError> {
        let v = self.value(now).await?;
        Ok(Measurement::from_value(v, self.config.activation_threshold))
    }

    fn timeout(&self) -> Option<std::time::Duration> {
        self.config.timeout_set.then_some(self.config.timeout)
    }
}
