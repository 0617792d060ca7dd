//! The prometheus scaler: runs one PromQL instant query (`GET <serverAddress>/api/v1/query`) per
//! measurement and serves its single value; target `threshold`, active above
//! `activationThreshold`. Owns the trigger's parameters and their parsing; the authentication
//! modes live in `auth`, AWS SigV4 signing for Amazon Managed Service for Prometheus (with
//! `awsRegion`) in `sigv4`, the shared HTTP clients in `pool`, the request and its error mapping
//! in `query`, and the pure decoding of Prometheus's answer in `response`. A `timeout` set on the
//! trigger bounds its whole measurement, replacing the caller's default bound.

pub mod auth;
pub mod pool;
pub mod query;
pub mod response;
pub mod sigv4;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};

use crate::error::{ParseError, ParseErrorKind, ScalerError};
use crate::params::{ParamKind, ParamSpec, Params};
use crate::scaler::{DEFAULT_TIMEOUT, Scaler};
use crate::trigger::ScalerConfig;
use auth::Auth;

/// Parameters of the prometheus trigger (metadata first, then the TriggerAuthentication).
pub const PARAMS: &[ParamSpec] = &[
    ParamSpec::new("serverAddress", ParamKind::Text).required(),
    ParamSpec::new("query", ParamKind::Text).required(),
    ParamSpec::new("threshold", ParamKind::Float { min: f64::MIN }).required(),
    ParamSpec::new("activationThreshold", ParamKind::Float { min: f64::MIN }).default("0"),
    ParamSpec::new("namespace", ParamKind::Text),
    ParamSpec::new("queryParameters", ParamKind::Text),
    ParamSpec::new("customHeaders", ParamKind::Text),
    ParamSpec::new("ignoreNullValues", ParamKind::Bool).default("true"),
    ParamSpec::new("unsafeSsl", ParamKind::Bool).default("false"),
    ParamSpec::new("timeout", ParamKind::Text),
    ParamSpec::new("authModes", ParamKind::Text).from_auth(),
    ParamSpec::new("authMode", ParamKind::Text).from_auth(),
    ParamSpec::new("metricName", ParamKind::Text)
        .deprecated("ignored; the metric name is generated as s<index>-prometheus"),
    ParamSpec::new("bearerToken", ParamKind::Text).secret(),
    ParamSpec::new("token", ParamKind::Text).secret(),
    ParamSpec::new("username", ParamKind::Text).secret(),
    ParamSpec::new("password", ParamKind::Text).secret(),
    ParamSpec::new("ca", ParamKind::Text).secret(),
    ParamSpec::new("cert", ParamKind::Text).secret(),
    ParamSpec::new("key", ParamKind::Text).secret(),
    ParamSpec::new("customAuthHeader", ParamKind::Text).secret(),
    ParamSpec::new("customAuthValue", ParamKind::Text).secret(),
    // Amazon Managed Service for Prometheus: SigV4 (service aps) when awsRegion is set.
    crate::aws::AWS_REGION,
    crate::aws::IDENTITY_OWNER,
    crate::aws::AWS_ROLE_ARN,
    crate::aws::AWS_ACCESS_KEY_ID,
    crate::aws::AWS_SECRET_ACCESS_KEY,
    crate::aws::AWS_SESSION_TOKEN,
];

/// A validated prometheus trigger. Its `Debug` form carries no credentials.
#[derive(Clone)]
pub struct PrometheusConfig {
    /// `serverAddress`, parsed; never carries user info.
    pub server: Url,
    pub query: String,
    pub threshold: f64,
    pub activation_threshold: f64,
    pub namespace: Option<String>,
    pub query_parameters: Vec<(String, String)>,
    pub custom_headers: Vec<(HeaderName, HeaderValue)>,
    pub ignore_null_values: bool,
    pub unsafe_ssl: bool,
    /// Bound on one query: `timeout`, else [`DEFAULT_TIMEOUT`].
    pub timeout: Duration,
    /// Whether `timeout` was set on the trigger; it then also replaces the caller's bound on a
    /// measurement (see [`crate::Scaler::timeout`]), even when longer.
    pub timeout_set: bool,
    pub auth: Auth,
    /// AWS SigV4 signing (Amazon Managed Service for Prometheus), with `awsRegion`.
    pub sigv4: Option<sigv4::SigV4Config>,
}

impl fmt::Debug for PrometheusConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrometheusConfig")
            .field("server", &self.server_display())
            .field("query", &self.query)
            .field("threshold", &self.threshold)
            .field("activation_threshold", &self.activation_threshold)
            .field("namespace", &self.namespace)
            .field("query_parameters", &self.query_parameters.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("custom_headers", &self.custom_headers.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("ignore_null_values", &self.ignore_null_values)
            .field("unsafe_ssl", &self.unsafe_ssl)
            .field("timeout", &self.timeout)
            .field("timeout_set", &self.timeout_set)
            .field("auth", &self.auth)
            .field("sigv4", &self.sigv4)
            .finish()
    }
}

/// Registry entry point.
pub fn parse(p: &Params<'_>) -> Result<Arc<dyn ScalerConfig>, ParseError> {
    Ok(Arc::new(parse_config(p)?))
}

/// Parses and validates every parameter (pure: no I/O).
pub fn parse_config(p: &Params<'_>) -> Result<PrometheusConfig, ParseError> {
    let server = parse_server(p)?;
    let query = p.required_text("query")?;
    let threshold = p.required_float("threshold")?;
    if threshold <= 0.0 {
        return Err(p.error(
            "threshold",
            ParseErrorKind::InvalidParameter,
            format!("must be greater than 0 (it is the target value per replica), found {threshold}"),
        ));
    }
    let activation_threshold = p.required_float("activationThreshold")?;
    let namespace = p.text("namespace")?;
    let query_parameters = match p.text("queryParameters")? {
        Some(raw) => {
            key_values(&raw).map_err(|m| p.error("queryParameters", ParseErrorKind::InvalidParameter, m))?
        }
        None => Vec::new(),
    };
    if let Some((k, _)) = query_parameters.iter().find(|(k, _)| k == "query" || k == "time") {
        return Err(p.error(
            "queryParameters",
            ParseErrorKind::InvalidParameter,
            format!("{k:?} is set by the scaler itself and cannot be overridden"),
        ));
    }
    let custom_headers = match p.text("customHeaders")? {
        Some(raw) => {
            headers(&raw).map_err(|m| p.error("customHeaders", ParseErrorKind::InvalidParameter, m))?
        }
        None => Vec::new(),
    };
    let (timeout, timeout_set) = match p.text("timeout")? {
        Some(raw) => {
            (parse_timeout(&raw).map_err(|m| p.error("timeout", ParseErrorKind::InvalidParameter, m))?, true)
        }
        None => (DEFAULT_TIMEOUT, false),
    };
    let auth = auth::parse(p)?;
    let sigv4 = sigv4::parse(p)?;
    if sigv4.is_some()
        && (!matches!(auth.credentials, auth::Credentials::None)
            || auth.custom_header_name() == Some(&AUTHORIZATION))
    {
        return Err(p.error(
            "awsRegion",
            ParseErrorKind::InvalidParameter,
            "awsRegion signs requests with AWS SigV4, which sets the Authorization header; it cannot be \
             combined with authModes basic, bearer or a custom Authorization header",
        ));
    }
    if let Some(name) = auth.custom_header_name()
        && custom_headers.iter().any(|(h, _)| h == name)
    {
        return Err(p.error(
            "customHeaders",
            ParseErrorKind::InvalidParameter,
            format!("header {:?} is also set by authModes custom; set it in one place only", name.as_str()),
        ));
    }
    Ok(PrometheusConfig {
        server,
        query,
        threshold,
        activation_threshold,
        namespace,
        query_parameters,
        custom_headers,
        ignore_null_values: p.required_bool("ignoreNullValues")?,
        unsafe_ssl: p.required_bool("unsafeSsl")?,
        timeout,
        timeout_set,
        auth,
        sigv4,
    })
}

fn parse_server(p: &Params<'_>) -> Result<Url, ParseError> {
    let raw = p.required_text("serverAddress")?;
    let bad = |m: String| p.error("serverAddress", ParseErrorKind::InvalidParameter, m);
    let url = Url::parse(&raw).map_err(|e| {
        bad(format!("expected an http:// or https:// URL such as \"http://prometheus:9090\" ({e})"))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(bad(format!(
            "expected an http:// or https:// URL with a host, such as \"http://prometheus:9090\", found scheme {:?}",
            url.scheme()
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Never echo the address: it holds a credential.
        return Err(bad(
            "must not contain a user name or password; put credentials in a TriggerAuthentication (authModes: basic)"
                .to_owned(),
        ));
    }
    if url.fragment().is_some() {
        return Err(bad("must not contain a #fragment".to_owned()));
    }
    Ok(url)
}

/// Parses `k1=v1,k2=v2` (KEDA's list form): entries separated by commas, the first `=` splits.
pub fn key_values(raw: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (i, entry) in raw.split(',').map(str::trim).enumerate() {
        if entry.is_empty() {
            continue;
        }
        match entry.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => out.push((k.trim().to_owned(), v.trim().to_owned())),
            _ => {
                return Err(format!(
                    "entry {} ({entry:?}) is not key=value; expected a comma-separated list such as \"key-1=value-1,key-2=value-2\"",
                    i + 1
                ));
            }
        }
    }
    if out.is_empty() {
        return Err("empty list; expected \"key-1=value-1,key-2=value-2\"".to_owned());
    }
    Ok(out)
}

fn headers(raw: &str) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let mut out = Vec::new();
    for (k, v) in key_values(raw)? {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| format!("{k:?} is not a valid HTTP header name"))?;
        if name == AUTHORIZATION {
            return Err("the Authorization header carries a credential: set it through a TriggerAuthentication with authModes bearer, basic or custom, not in the ScaledObject".to_owned());
        }
        let value = HeaderValue::from_str(&v)
            .map_err(|_| format!("the value of header {k:?} is not a valid HTTP header value"))?;
        out.push((name, value));
    }
    Ok(out)
}

/// `timeout`: whole milliseconds (KEDA's form, e.g. "1000") or a duration with a unit ("2s", "500ms").
pub fn parse_timeout(raw: &str) -> Result<Duration, String> {
    let d = if raw.bytes().all(|b| b.is_ascii_digit()) {
        raw.parse::<u64>().map(Duration::from_millis).map_err(|_| "expected milliseconds".to_owned())?
    } else {
        humantime::parse_duration(raw).map_err(|_| {
            format!(
                "expected milliseconds (\"1000\") or a duration such as \"2s\" or \"500ms\", found {raw:?}"
            )
        })?
    };
    if d.is_zero() {
        return Err("must be greater than 0".to_owned());
    }
    Ok(d)
}

impl PrometheusConfig {
    /// The server address as shown in messages: scheme, host, port and path (no query string).
    pub fn server_display(&self) -> String {
        let mut u = self.server.clone();
        u.set_query(None);
        u.as_str().trim_end_matches('/').to_owned()
    }

    /// The instant-query endpoint under `serverAddress` (which may carry a path prefix).
    pub fn query_url(&self) -> Url {
        let mut u = self.server.clone();
        let path = format!("{}/api/v1/query", self.server.path().trim_end_matches('/'));
        u.set_path(&path);
        u
    }

    /// The connection-pool key: servers sharing origin and TLS settings share one HTTP client.
    pub fn pool_key(&self) -> pool::PoolKey {
        pool::PoolKey {
            origin: self.server.origin().ascii_serialization(),
            port: self.server.port_or_known_default().unwrap_or(0),
            unsafe_ssl: self.unsafe_ssl,
            ca: self.auth.tls.ca.clone(),
            identity: self.auth.tls.identity.clone(),
        }
    }
}

impl ScalerConfig for PrometheusConfig {
    fn metric_part(&self) -> String {
        "prometheus".to_owned()
    }
    fn target(&self) -> f64 {
        self.threshold
    }
    fn activation_target(&self) -> f64 {
        self.activation_threshold
    }
    fn build(&self) -> Result<Arc<dyn Scaler>, ScalerError> {
        Ok(Arc::new(query::PrometheusScaler::new(self.clone())?))
    }
    fn describe(&self) -> String {
        let q: String = self.query.split_whitespace().collect::<Vec<_>>().join(" ");
        let q = if q.chars().count() > 120 {
            format!("{}…", q.chars().take(120).collect::<String>())
        } else {
            q
        };
        let mut s = format!("query {q:?} on {}", self.server_display());
        if !self.auth.modes.is_empty() {
            let modes: Vec<&str> = self.auth.modes.iter().map(|m| m.as_str()).collect();
            s.push_str(&format!(" (auth: {})", modes.join(",")));
        }
        if let Some(aws) = &self.sigv4 {
            s.push_str(&format!(" (AWS SigV4, region {}, {})", aws.region, aws.credentials.describe()));
        }
        s
    }
}

#[cfg(test)]
mod tests;
