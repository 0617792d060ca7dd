//! The operator's own certificate management (`--manage-certificates`): a private CA in one
//! Secret, the serving certificate of ebb's three programs (with the CA bundle) in another, the
//! bundle injected into the external metrics APIService and the ValidatingWebhookConfiguration,
//! and renewal before expiry. This module owns the flags ([`CertificateArgs`]), their checked
//! form ([`CertConfig`]), the expiry metric and the loop ([`CertManager::run`]); the material and
//! the decisions are in [`pki`], the Secrets in `secrets`, the injection in [`inject`].
//!
//! Every replica runs the loop, leader or not: the webhook needs its certificate before any
//! leader exists. Writes use optimistic concurrency, so replicas agree instead of fighting, and
//! nothing is written when nothing changed.
//!
//! # Timing
//!
//! A pass runs at start, then at the earliest of: the serving certificate's renewal time
//! (`notAfter - renew-before`), the CA's replacement time (`notAfter - (validity +
//! renew-before)`), and the resync period (10 s), which also re-injects a bundle someone
//! overwrote and notices objects created after the operator started. A failed pass is retried
//! with exponential backoff (1 s doubling up to 30 s) and logged without secrets.

pub mod inject;
pub mod pki;
mod secrets;

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kube::Client;
use kube::runtime::events::Recorder;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub use secrets::{CA_CRT, CA_KEY, TLS_CRT, TLS_KEY};

/// Default resync period of the certificate loop.
pub const DEFAULT_RESYNC: Duration = Duration::from_secs(10);
/// Default longest pause between retries of a failed pass.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Shortest pause between passes, so that a due time in the past cannot make the loop spin.
const MIN_PAUSE: Duration = Duration::from_millis(200);

/// Flags of the certificate management, flattened into [`crate::Args`].
#[derive(Debug, Clone, clap::Args)]
pub struct CertificateArgs {
    /// Create and rotate the CA and serving certificate Secrets and inject the CA bundle into the
    /// APIService and the ValidatingWebhookConfiguration.
    #[arg(long, env = "EBB_MANAGE_CERTIFICATES", default_value_t = false, num_args = 0..=1,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub manage_certificates: bool,
    /// Secret (type kubernetes.io/tls, in --operator-namespace) with tls.crt, tls.key and ca.crt
    /// (the CA bundle).
    #[arg(long, env = "EBB_CERTIFICATE_SECRET", default_value = "ebb-certs")]
    pub certificate_secret: String,
    /// Secret (type Opaque, in --operator-namespace) with the CA: ca.crt and ca.key.
    #[arg(long, env = "EBB_CA_SECRET", default_value = "ebb-ca")]
    pub ca_secret: String,
    /// Services (in --operator-namespace) the certificate is for; each gives the DNS names S,
    /// S.NS, S.NS.svc and S.NS.svc.<cluster domain>.
    #[arg(
        long,
        env = "EBB_CERTIFICATE_SERVICES",
        value_delimiter = ',',
        default_value = "ebb-operator,ebb-webhook,ebb-metrics-apiserver"
    )]
    pub certificate_services: Vec<String>,
    /// Cluster DNS domain of the certificate's fully qualified names.
    #[arg(long, env = "EBB_CLUSTER_DOMAIN", default_value = "cluster.local")]
    pub cluster_domain: String,
    /// APIService whose spec.caBundle gets the CA bundle (empty: none).
    #[arg(long, env = "EBB_APISERVICE", default_value = "v1beta1.external.metrics.k8s.io")]
    pub apiservice: String,
    /// ValidatingWebhookConfiguration whose webhooks get the CA bundle (empty: none).
    #[arg(long, env = "EBB_WEBHOOK_CONFIGURATION", default_value = "keda-admission")]
    pub webhook_configuration: String,
    /// Lifetime of the serving certificate.
    #[arg(long, env = "EBB_CERTIFICATE_VALIDITY", default_value = "8760h", value_parser = humantime::parse_duration)]
    pub certificate_validity: Duration,
    /// The serving certificate is renewed when less than this is left.
    #[arg(long, env = "EBB_CERTIFICATE_RENEW_BEFORE", default_value = "720h", value_parser = humantime::parse_duration)]
    pub certificate_renew_before: Duration,
    /// Lifetime of the CA; it is replaced when less than validity + renew-before is left.
    #[arg(long, env = "EBB_CA_VALIDITY", default_value = "87600h", value_parser = humantime::parse_duration)]
    pub ca_validity: Duration,
}

/// The checked settings of the certificate loop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertConfig {
    /// Namespace of both Secrets.
    pub namespace: String,
    /// Name of the serving certificate Secret.
    pub certificate_secret: String,
    /// Name of the CA Secret.
    pub ca_secret: String,
    /// DNS names of the serving certificate.
    pub dns_names: Vec<String>,
    /// APIService to inject into.
    pub apiservice: Option<String>,
    /// ValidatingWebhookConfiguration to inject into.
    pub webhook_configuration: Option<String>,
    /// Validity settings.
    pub timing: pki::Timing,
    /// Longest time between passes.
    pub resync: Duration,
    /// Longest pause between retries of a failed pass.
    pub max_backoff: Duration,
}

impl CertConfig {
    /// Checks the flags; the message names the flag that is wrong.
    pub fn from_args(args: &CertificateArgs, namespace: &str) -> Result<Self, String> {
        let timing = pki::Timing {
            validity: args.certificate_validity,
            renew_before: args.certificate_renew_before,
            ca_validity: args.ca_validity,
        };
        timing.check()?;
        for (flag, value) in [
            ("--certificate-secret", &args.certificate_secret),
            ("--ca-secret", &args.ca_secret),
            ("--cluster-domain", &args.cluster_domain),
            ("--operator-namespace", &namespace.to_owned()),
        ] {
            if value.trim().is_empty() {
                return Err(format!("{flag} must not be empty when --manage-certificates is on"));
            }
        }
        if args.certificate_secret == args.ca_secret {
            return Err(format!(
                "--certificate-secret and --ca-secret must differ (both are {:?})",
                args.ca_secret
            ));
        }
        let dns_names = pki::dns_names(&args.certificate_services, namespace, args.cluster_domain.trim());
        if dns_names.is_empty() {
            return Err("--certificate-services names no service".to_owned());
        }
        let optional = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        Ok(Self {
            namespace: namespace.to_owned(),
            certificate_secret: args.certificate_secret.clone(),
            ca_secret: args.ca_secret.clone(),
            dns_names,
            apiservice: optional(&args.apiservice),
            webhook_configuration: optional(&args.webhook_configuration),
            timing,
            resync: DEFAULT_RESYNC,
            max_backoff: DEFAULT_MAX_BACKOFF,
        })
    }
}

/// Why a pass of the certificate loop failed. Messages name the object, never key material.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// An API request failed.
    #[error("{action} {object}: {source}")]
    Kube { action: &'static str, object: String, source: kube::Error },
    /// Certificate generation failed.
    #[error(transparent)]
    Generate(#[from] pki::GenerateError),
    /// Other writers kept changing the object.
    #[error("{0} kept changing while being written; trying again later")]
    Conflicts(String),
}

impl CertError {
    fn kube(action: &'static str, object: String, source: kube::Error) -> Self {
        Self::Kube { action, object, source }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CertLabels {
    certificate: String,
}

/// `ebb_certificate_expiry_timestamp_seconds{certificate="serving"|"ca"}`: notAfter of the
/// current certificates.
#[derive(Clone, Debug, Default)]
pub struct CertMetrics {
    expiry: Family<CertLabels, Gauge>,
}

impl CertMetrics {
    /// Registers the gauge.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "ebb_certificate_expiry_timestamp_seconds",
            "Expiry (notAfter, Unix seconds) of the certificates the operator manages",
            m.expiry.clone(),
        );
        m
    }

    fn set(&self, which: &str, not_after: i64) {
        self.expiry.get_or_create(&CertLabels { certificate: which.to_owned() }).set(not_after);
    }
}

/// What one pass settled on.
#[derive(Clone, Debug)]
pub struct Pass {
    /// The CA bundle published (PEM).
    pub bundle: String,
    /// Serial of the serving certificate in use (hex).
    pub serving_serial: String,
    /// Serial of the current CA (hex).
    pub ca_serial: String,
    /// When the next pass is due.
    pub next: SystemTime,
}

/// The certificate loop of one replica.
pub struct CertManager {
    client: Client,
    cfg: CertConfig,
    recorder: Option<Recorder>,
    metrics: Option<CertMetrics>,
    /// Injection targets reported missing, so that "waiting" is logged once.
    missing: Vec<inject::Target>,
}

impl std::fmt::Debug for CertManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertManager").field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

impl CertManager {
    /// A manager for `cfg`; events and metrics are optional.
    pub fn new(client: Client, cfg: CertConfig) -> Self {
        Self { client, cfg, recorder: None, metrics: None, missing: Vec::new() }
    }

    /// Records an event on a Secret whenever a certificate is issued.
    pub fn with_recorder(mut self, recorder: Recorder) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// Exports the certificates' expiry.
    pub fn with_metrics(mut self, metrics: CertMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Runs passes until `shutdown` completes.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        let min_backoff = Duration::from_secs(1).min(self.cfg.max_backoff);
        let mut backoff = min_backoff;
        tracing::info!(
            secret = %format!("{}/{}", self.cfg.namespace, self.cfg.certificate_secret),
            ca_secret = %format!("{}/{}", self.cfg.namespace, self.cfg.ca_secret),
            "certificate management started"
        );
        loop {
            let pause = match self.pass().await {
                Ok(pass) => {
                    backoff = min_backoff;
                    pass.next.duration_since(SystemTime::now()).unwrap_or_default().max(MIN_PAUSE)
                }
                Err(e) => {
                    tracing::warn!(
                        "certificate management: {e}; retrying in {}",
                        humantime::format_duration(backoff)
                    );
                    let pause = backoff;
                    backoff = (backoff * 2).min(self.cfg.max_backoff);
                    pause
                }
            };
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One pass: the CA, the serving certificate, then the injections.
    pub async fn pass(&mut self) -> Result<Pass, CertError> {
        let now = unix_now();
        let ca = self.ensure_ca(now).await?;
        let state = self.ensure_serving(&ca, now).await?;
        if let Some(m) = &self.metrics {
            m.set("ca", ca.info.not_after);
            m.set("serving", state.serving.info.not_after);
        }
        let targets = [
            (inject::Target::ApiService, self.cfg.apiservice.clone()),
            (inject::Target::ValidatingWebhookConfiguration, self.cfg.webhook_configuration.clone()),
        ];
        for (target, name) in targets {
            let Some(name) = name else { continue };
            let found = inject::inject(&self.client, target, &name, &state.bundle).await.map_err(|e| {
                CertError::kube("injecting the CA bundle into", format!("{} {name}", target.kind()), e)
            })?;
            let reported = self.missing.contains(&target);
            match found {
                inject::Injected::Missing if !reported => {
                    tracing::info!(kind = target.kind(), %name, "not there yet; its caBundle is set once it exists");
                    self.missing.push(target);
                }
                inject::Injected::Missing => {}
                _ => self.missing.retain(|t| *t != target),
            }
        }
        let due = pki::serving_renew_at(&state.serving.info, &self.cfg.timing)
            .min(pki::ca_renew_at(&ca.info, &self.cfg.timing));
        let due = UNIX_EPOCH + Duration::from_secs(u64::try_from(due).unwrap_or(0));
        Ok(Pass {
            bundle: state.bundle,
            serving_serial: state.serving.info.serial,
            ca_serial: ca.info.serial,
            next: due.min(SystemTime::now() + self.cfg.resync),
        })
    }
}

/// The current time in Unix seconds.
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use clap::Parser;

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Cmd {
        #[command(flatten)]
        certs: CertificateArgs,
    }

    fn parse(args: &[&str]) -> Result<CertConfig, String> {
        let cmd = Cmd::try_parse_from(std::iter::once("x").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        CertConfig::from_args(&cmd.certs, "keda")
    }

    #[test]
    fn defaults() {
        let cmd = Cmd::try_parse_from(["x"]).unwrap();
        assert!(!cmd.certs.manage_certificates);
        let cfg = CertConfig::from_args(&cmd.certs, "keda").unwrap();
        assert_eq!(cfg.certificate_secret, "ebb-certs");
        assert_eq!(cfg.ca_secret, "ebb-ca");
        assert_eq!(cfg.dns_names.len(), 12);
        assert!(cfg.dns_names.contains(&"ebb-webhook.keda.svc.cluster.local".to_owned()));
        assert_eq!(cfg.apiservice.as_deref(), Some("v1beta1.external.metrics.k8s.io"));
        assert_eq!(cfg.webhook_configuration.as_deref(), Some("keda-admission"));
        assert_eq!(cfg.timing.validity, Duration::from_secs(365 * 86400));
        assert_eq!(cfg.timing.renew_before, Duration::from_secs(30 * 86400));
        assert_eq!(cfg.timing.ca_validity, Duration::from_secs(3650 * 86400));
    }

    #[test]
    fn flag_forms() {
        assert!(Cmd::try_parse_from(["x", "--manage-certificates"]).unwrap().certs.manage_certificates);
        assert!(Cmd::try_parse_from(["x", "--manage-certificates=true"]).unwrap().certs.manage_certificates);
        assert!(
            !Cmd::try_parse_from(["x", "--manage-certificates=false"]).unwrap().certs.manage_certificates
        );
        let cfg = parse(&["--certificate-services", "a,b", "--apiservice=", "--webhook-configuration", ""])
            .unwrap();
        assert_eq!(cfg.dns_names.len(), 8);
        assert_eq!((cfg.apiservice, cfg.webhook_configuration), (None, None));
    }

    #[test]
    fn nonsense_is_rejected_with_the_flag_named() {
        let err = parse(&["--certificate-validity", "24h", "--certificate-renew-before", "24h"]).unwrap_err();
        assert!(err.contains("--certificate-renew-before"), "{err}");
        let err = parse(&["--ca-validity", "8000h"]).unwrap_err();
        assert!(err.contains("--ca-validity"), "{err}");
        let err = parse(&["--certificate-services", ","]).unwrap_err();
        assert!(err.contains("--certificate-services"), "{err}");
        let err = parse(&["--ca-secret", "ebb-certs"]).unwrap_err();
        assert!(err.contains("must differ"), "{err}");
        assert!(parse(&["--certificate-validity", "soon"]).is_err());
    }
}
