//! The `external` and `external-push` scalers: KEDA's external scaler protocol (gRPC service
//! `externalscaler.ExternalScaler`, see [`proto`]). Owns the triggers' parameters and their
//! parsing, and the measurement: `GetMetricSpec` gives the metric name and target size
//! ([`spec`]), `GetMetrics` the value (summed over the values returned), `IsActive` the activity.
//! As in KEDA, `GetMetricSpec` is asked when the HPA is built (the reconcile records the answer
//! in the trigger, [`crate::TriggerSpec::set_external`]): the metric is `s<index>-<name>` with
//! the scaler's target size as target, and the served value is `GetMetrics`' raw value for that
//! name. A trigger with no recorded answer (tools that build the HPA without a scaler) is
//! `s<index>-external` with target 1, served as value ÷ target size, asking `GetMetricSpec` at
//! each measurement. `external-push` also keeps a `StreamIsActive` stream open ([`push`]); each
//! pushed activity wakes the object's scale loop at once and is that tick's activity (a metrics
//! API query in between leaves it in place, [`Scaler::query`]).

pub mod client;
pub mod proto;
pub mod push;
pub mod spec;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::{ParseError, ParseErrorKind, ScalerError};
use crate::kafka::config::TlsSettings;
use crate::params::{PASS_THROUGH, ParamKind, ParamSpec, Params};
use crate::scaler::{DEFAULT_TIMEOUT, Measurement, Scaler};
use crate::trigger::ScalerConfig;
use client::{Client, Dial};
use proto::ScaledObjectRef;

/// Parameters of both triggers; every metadata key is also passed to the scaler.
pub const PARAMS: &[ParamSpec] = &[
    ParamSpec::new("scalerAddress", ParamKind::Text).required(),
    ParamSpec::new("caCert", ParamKind::Text).from_auth(),
    ParamSpec::new("tlsClientCert", ParamKind::Text).from_auth(),
    ParamSpec::new("tlsClientKey", ParamKind::Text).secret(),
    ParamSpec::new("tlsCertFile", ParamKind::Text),
    ParamSpec::new("enableTLS", ParamKind::Bool).default("false"),
    ParamSpec::new("unsafeSsl", ParamKind::Bool).default("false"),
    ParamSpec::new(PASS_THROUGH, ParamKind::Text),
];

/// Most metric values summed from one `GetMetrics` answer.
pub const MAX_METRIC_VALUES: usize = 100;
/// Longest metric name taken from the scaler.
pub const MAX_METRIC_NAME: usize = 253;
/// Most metadata entries passed to the scaler.
pub const MAX_METADATA: usize = 256;

/// A validated external trigger. Debug shows no key.
#[derive(Clone)]
pub struct ExternalConfig {
    /// `external-push` when true.
    pub push: bool,
    /// `host:port`.
    pub address: String,
    pub tls: Option<TlsSettings>,
    /// The trigger's metadata, sent as `ScaledObjectRef.scalerMetadata`.
    pub metadata: HashMap<String, String>,
    /// `GetMetricSpec`'s answer for the object, once recorded.
    resolved: Option<spec::Resolved>,
}

impl fmt::Debug for ExternalConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExternalConfig")
            .field("push", &self.push)
            .field("address", &self.address)
            .field("tls", &self.tls)
            .field("metadata", &self.metadata.keys().collect::<Vec<_>>())
            .field("resolved", &self.resolved)
            .finish_non_exhaustive()
    }
}

impl Clone for TlsSettings {
    fn clone(&self) -> Self {
        Self {
            ca: self.ca.clone(),
            client: self.client.as_ref().map(|(c, k)| (c.clone(), k.clone_key())),
            unsafe_ssl: self.unsafe_ssl,
        }
    }
}

/// Registry entry point for `external`.
pub fn parse(p: &Params<'_>) -> Result<Arc<dyn ScalerConfig>, ParseError> {
    Ok(Arc::new(parse_config(p, false)?))
}

/// Registry entry point for `external-push`.
pub fn parse_push(p: &Params<'_>) -> Result<Arc<dyn ScalerConfig>, ParseError> {
    Ok(Arc::new(parse_config(p, true)?))
}

fn invalid(p: &Params<'_>, name: &str, m: impl Into<String>) -> ParseError {
    p.error(name, ParseErrorKind::InvalidParameter, m)
}

/// Parses and validates every parameter (pure: no I/O).
pub fn parse_config(p: &Params<'_>, push: bool) -> Result<ExternalConfig, ParseError> {
    let address = p.required_text("scalerAddress")?.trim().to_owned();
    check_address(&address).map_err(|m| invalid(p, "scalerAddress", m))?;
    if p.text("tlsCertFile")?.is_some() {
        return Err(invalid(
            p,
            "tlsCertFile",
            "files of the operator's file system are not read; put the CA certificate (PEM) in caCert, from a TriggerAuthentication",
        ));
    }
    let (ca, client) = crate::pem_params::read(
        p,
        crate::pem_params::PemNames { ca: "caCert", cert: "tlsClientCert", key: "tlsClientKey" },
    )?;
    let unsafe_ssl = p.required_bool("unsafeSsl")?;
    let enable = p.required_bool("enableTLS")?;
    let tls = (enable || ca.is_some() || client.is_some()).then_some(TlsSettings { ca, client, unsafe_ssl });
    if let Some(t) = &tls {
        crate::kafka::wire::tls::client_config(t, false).map_err(|e| invalid(p, "tlsClientCert", e))?;
        crate::kafka::wire::tls::server_name(&address).map_err(|e| invalid(p, "scalerAddress", e))?;
    }
    let metadata: HashMap<String, String> = p
        .metadata()
        // A credential written in metadata is ignored (and warned about), not passed on.
        .filter(|(k, _)| !PARAMS.iter().any(|s| s.secret && s.name == *k))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .take(MAX_METADATA + 1)
        .collect();
    if metadata.len() > MAX_METADATA {
        return Err(p.trigger_error(format!("more than {MAX_METADATA} metadata entries")));
    }
    Ok(ExternalConfig { push, address, tls, metadata, resolved: None })
}

/// `host:port`: a DNS name, an IPv4 address or a bracketed IPv6 address, and a port.
pub fn check_address(a: &str) -> Result<(), String> {
    let shape = "expected host:port, such as \"external-scaler.default.svc:8080\"";
    let (host, port) = a.rsplit_once(':').ok_or_else(|| format!("{shape}: no port"))?;
    if port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(format!("{shape}: the port is not a number from 1 to 65535"));
    }
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    let ok = match bare {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => {
            !host.is_empty()
                && host.len() <= 253
                && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
        }
    };
    if !ok {
        return Err(format!("{shape}: the host is not a DNS name or an IP address"));
    }
    Ok(())
}

/// Printable, one line, at most `max` characters: for text the scaler controls.
pub fn sanitize(s: &str, max: usize) -> String {
    let mut out: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).take(max).collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

impl ExternalConfig {
    fn dial(&self, system_roots: bool) -> Result<Dial, ScalerError> {
        let tls = match &self.tls {
            None => None,
            Some(t) => {
                let mut c = (*crate::kafka::wire::tls::client_config(t, system_roots)
                    .map_err(ScalerError::Config)?)
                .clone();
                c.alpn_protocols = vec![b"h2".to_vec()];
                Some(Arc::new(c))
            }
        };
        Ok(Dial { address: self.address.clone(), tls })
    }
}

impl ScalerConfig for ExternalConfig {
    fn metric_part(&self) -> String {
        match &self.resolved {
            Some(r) => spec::hpa_part(&r.spec.name),
            None if self.push => "external-push".to_owned(),
            None => "external".to_owned(),
        }
    }
    fn target(&self) -> f64 {
        self.resolved.as_ref().map_or(1.0, |r| r.spec.target)
    }
    fn activation_target(&self) -> f64 {
        0.0
    }
    fn build(&self) -> Result<Arc<dyn Scaler>, ScalerError> {
        let object = OnceLock::new();
        if let Some(r) = &self.resolved {
            let _ = object.set((r.namespace.clone(), r.name.clone()));
        }
        Ok(Arc::new(ExternalScaler {
            client: Arc::new(Client::new(self.dial(true)?)),
            metadata: self.metadata.clone(),
            object,
            spec: self.resolved.as_ref().map(|r| r.spec.clone()),
            push: self.push.then(push::Push::default),
        }))
    }
    fn as_external(&self) -> Option<&ExternalConfig> {
        Some(self)
    }
    fn describe(&self) -> String {
        let kind = if self.push { "external-push" } else { "external" };
        let tls = match &self.tls {
            None => "",
            Some(t) if t.unsafe_ssl => " over tls (unverified)",
            Some(_) => " over tls",
        };
        format!("{kind} scaler at {}{tls}", self.address)
    }
}

/// A live external scaler.
#[derive(Debug)]
pub struct ExternalScaler {
    client: Arc<Client>,
    metadata: HashMap<String, String>,
    /// The ScaledObject's namespace and name, known once recorded or a scale loop attaches.
    object: OnceLock<(String, String)>,
    /// The metric recorded from `GetMetricSpec` (else asked at each measurement).
    spec: Option<spec::MetricSpec>,
    push: Option<push::Push>,
}

/// What one measurement read from the scaler, before normalization.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub metric_name: String,
    pub target: f64,
    pub value: f64,
    pub active: bool,
}

impl ExternalScaler {
    fn object_ref(&self) -> ScaledObjectRef {
        let (namespace, name) = self.object.get().cloned().unwrap_or_default();
        ScaledObjectRef { namespace, name, scaler_metadata: self.metadata.clone() }
    }

    /// `GetMetricSpec` (unless recorded), then `GetMetrics` and `IsActive` (or the pending
    /// pushed activity, which `take` consumes: only the loop's tick takes it).
    pub async fn read(&self, take: bool) -> Result<Reading, ScalerError> {
        let bad = |m: String| {
            ScalerError::InvalidResponse(format!("external scaler {}: {m}", self.client.address()))
        };
        let object = self.object_ref();
        let spec = match &self.spec {
            Some(s) => s.clone(),
            None => {
                let answer = tokio::time::timeout(DEFAULT_TIMEOUT, self.client.metric_spec(&object))
                    .await
                    .map_err(|_| ScalerError::Timeout(DEFAULT_TIMEOUT))??;
                spec::first_spec(self.client.address(), &answer)?
            }
        };
        let pushed = self.push.as_ref().and_then(|p| if take { p.take() } else { p.peek() });
        let metrics = tokio::time::timeout(DEFAULT_TIMEOUT, self.client.metrics(&object, &spec.name));
        let (values, active) = match pushed {
            Some(a) => (metrics.await, Ok(Ok(a))),
            None => {
                tokio::join!(metrics, tokio::time::timeout(DEFAULT_TIMEOUT, self.client.is_active(&object)))
            }
        };
        let values = values.map_err(|_| ScalerError::Timeout(DEFAULT_TIMEOUT))??;
        let active = active.map_err(|_| ScalerError::Timeout(DEFAULT_TIMEOUT))??;
        if values.metric_values.len() > MAX_METRIC_VALUES {
            return Err(bad(format!("GetMetrics returned more than {MAX_METRIC_VALUES} values")));
        }
        let mut value = 0.0;
        for v in &values.metric_values {
            let x = v.value();
            if !x.is_finite() {
                return Err(bad(format!("GetMetrics: value {x} is not a finite number")));
            }
            value += x;
        }
        Ok(Reading { metric_name: spec.name, target: spec.target, value, active })
    }

    fn measurement(&self, r: &Reading) -> Measurement {
        // Recorded: the HPA's target is the scaler's, so the value is served as it is.
        let value = if self.spec.is_some() { r.value } else { r.value / r.target };
        Measurement { value: ebb_api::quantity::sanitize(value), active: r.active }
    }
}

#[async_trait]
impl Scaler for ExternalScaler {
    async fn measure(&self, _now: DateTime<Utc>) -> Result<Measurement, ScalerError> {
        let r = self.read(true).await?;
        Ok(self.measurement(&r))
    }

    async fn query(&self, _now: DateTime<Utc>) -> Result<Measurement, ScalerError> {
        let r = self.read(false).await?;
        Ok(self.measurement(&r))
    }

    fn attach(&self, namespace: &str, name: &str, wake: Arc<tokio::sync::Notify>) {
        let _ = self.object.set((namespace.to_owned(), name.to_owned()));
        if let Some(p) = &self.push {
            p.start(self.client.clone(), self.object_ref(), wake);
        }
    }
}

/// A poisoned lock still holds a usable value (a bool or a handle).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
