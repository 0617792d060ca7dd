//! The operator's own certificate management (`--manage-certificates`): a private CA in one
//! Secret; one leaf certificate per component, each with its own key, identity and Secret (the
//! operator's internal endpoint, the webhook, the metrics API server's serving certificate and
//! its client certificate for the internal endpoint), each Secret with the CA bundle; the bundle
//! injected into the external metrics APIService and the ValidatingWebhookConfiguration;
//! renewal before expiry and a staged CA rotation ([`pki::rotation`]). This module owns the
//! flags ([`CertificateArgs`]), their checked form ([`CertConfig`], whose `leaves` is the plan
//! of what is issued where), the expiry metric and the loop ([`CertManager::run`]); the material
//! and the decisions are in [`pki`], the Secrets in `secrets`, the injection in [`inject`].
//!
//! Every replica runs the loop, leader or not: the webhook needs its certificate before any
//! leader exists. Writes use optimistic concurrency, so replicas agree instead of fighting, and
//! nothing is written when nothing changed.
//!
//! # Timing
//!
//! A pass runs at start, then at the earliest of: a leaf's renewal time (`notAfter -
//! renew-before`), the CA's replacement time (`notAfter - (validity + renew-before)`), the next
//! step of a CA rotation in progress, and the resync period (10 s), which also re-injects a
//! bundle someone overwrote and notices objects created after the operator started. A failed pass is retried
//! with exponential backoff (1 s doubling up to 30 s) and logged without secrets.

pub mod inject;
pub mod pki;
mod secrets;

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ebb_plumbing::backoff::Backoff;
use ebb_plumbing::pki::unix_now;
use kube::Client;
use kube::runtime::events::Recorder;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub use secrets::{CA_CRT, CA_KEY, TLS_CRT, TLS_KEY};

use pki::{Component, LeafSpec, Usage};

/// Default identity of the metrics API server's client certificate.
pub const DEFAULT_CLIENT_NAME: &str = "ebb-metrics-apiserver";

/// Default resync period of the certificate loop.
pub const DEFAULT_RESYNC: Duration = Duration::from_secs(10);
/// Default longest pause between retries of a failed pass.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(30);
/// First pause after a failed pass; doubled after each further failure up to the configured
/// maximum (`max_backoff`).
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
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
    /// Secret (type Opaque, in --operator-namespace) with the CA: ca.crt and ca.key, and during
    /// a rotation next.crt, next.key and retired.crt.
    #[arg(long, env = "EBB_CA_SECRET", default_value = "ebb-ca")]
    pub ca_secret: String,
    /// Secret (type kubernetes.io/tls, in --operator-namespace: tls.crt, tls.key, ca.crt) of the
    /// operator's internal endpoint; mounted by the operator only.
    #[arg(long, env = "EBB_OPERATOR_CERTIFICATE_SECRET", default_value = "ebb-operator-tls")]
    pub operator_certificate_secret: String,
    /// Secret of the webhook's serving certificate; mounted by the webhook only.
    #[arg(long, env = "EBB_WEBHOOK_CERTIFICATE_SECRET", default_value = "ebb-webhook-tls")]
    pub webhook_certificate_secret: String,
    /// Secret of the metrics API server's serving certificate; mounted by it only.
    #[arg(
        long,
        env = "EBB_METRICS_APISERVER_CERTIFICATE_SECRET",
        default_value = "ebb-metrics-apiserver-tls"
    )]
    pub metrics_apiserver_certificate_secret: String,
    /// Secret of the metrics API server's client certificate (presented to the operator's
    /// internal endpoint); mounted by the metrics API server only.
    #[arg(
        long,
        env = "EBB_METRICS_APISERVER_CLIENT_SECRET",
        default_value = "ebb-metrics-apiserver-client-tls"
    )]
    pub metrics_apiserver_client_secret: String,
    /// Service (in --operator-namespace) of the operator's internal endpoint; its serving
    /// certificate gets the DNS names S, S.NS, S.NS.svc and S.NS.svc.<cluster domain>.
    #[arg(long, env = "EBB_OPERATOR_SERVICE", default_value = "ebb-operator")]
    pub operator_service: String,
    /// Service of the webhook (DNS names as for --operator-service).
    #[arg(long, env = "EBB_WEBHOOK_SERVICE", default_value = "ebb-webhook")]
    pub webhook_service: String,
    /// Service of the metrics API server (DNS names as for --operator-service).
    #[arg(long, env = "EBB_METRICS_APISERVER_SERVICE", default_value = "ebb-metrics-apiserver")]
    pub metrics_apiserver_service: String,
    /// Identity of the metrics API server's client certificate: the internal endpoint admits
    /// only client certificates naming it (a DNS subject alternative name or the common name
    /// equal to it), and with --manage-certificates the client certificate is issued for it.
    /// Several, comma-separated, are all admitted (the first is issued).
    #[arg(
        long,
        env = "EBB_INTERNAL_CLIENT_NAME",
        value_delimiter = ',',
        default_value = "ebb-metrics-apiserver"
    )]
    pub internal_client_name: Vec<String>,
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
    /// A CA rotation waits this long after the new CA bundle is written everywhere before the
    /// leaves switch to the new CA, and as long again after the switch before the old CA leaves
    /// the bundle: longer than the kubelet takes to update mounted Secrets.
    #[arg(long, env = "EBB_CA_ROTATION_OVERLAP", default_value = "5m", value_parser = humantime::parse_duration)]
    pub ca_rotation_overlap: Duration,
}

/// The identities `--internal-client-name` names (blank entries dropped); an error when none.
pub fn internal_client_names(args: &CertificateArgs) -> Result<Vec<String>, String> {
    let names: Vec<String> =
        args.internal_client_name.iter().map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()).collect();
    if names.is_empty() {
        return Err("--internal-client-name must name at least one identity".to_owned());
    }
    Ok(names)
}

/// The checked settings of the certificate loop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertConfig {
    /// Namespace of the Secrets.
    pub namespace: String,
    /// Name of the CA Secret.
    pub ca_secret: String,
    /// The leaf certificates: one per component, each in its own Secret.
    pub leaves: Vec<LeafSpec>,
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
            overlap: args.ca_rotation_overlap,
        };
        timing.check()?;
        let secrets = [
            ("--ca-secret", &args.ca_secret),
            ("--operator-certificate-secret", &args.operator_certificate_secret),
            ("--webhook-certificate-secret", &args.webhook_certificate_secret),
            ("--metrics-apiserver-certificate-secret", &args.metrics_apiserver_certificate_secret),
            ("--metrics-apiserver-client-secret", &args.metrics_apiserver_client_secret),
        ];
        let others = [
            ("--operator-service", &args.operator_service),
            ("--webhook-service", &args.webhook_service),
            ("--metrics-apiserver-service", &args.metrics_apiserver_service),
            ("--cluster-domain", &args.cluster_domain),
            ("--operator-namespace", &namespace.to_owned()),
        ];
        for (flag, value) in secrets.iter().chain(&others) {
            if value.trim().is_empty() {
                return Err(format!("{flag} must not be empty when --manage-certificates is on"));
            }
        }
        for (i, (flag, value)) in secrets.iter().enumerate() {
            if let Some((other, _)) = secrets[..i].iter().find(|(_, v)| v.trim() == value.trim()) {
                return Err(format!(
                    "{other} and {flag} must differ (both are {value:?}): each certificate has its own Secret"
                ));
            }
        }
        let client = internal_client_names(args)?.remove(0);
        let domain = args.cluster_domain.trim();
        let server = |component, secret: &String, service: &String| LeafSpec {
            component,
            secret: secret.trim().to_owned(),
            common_name: service.trim().to_owned(),
            dns_names: pki::dns_names(std::slice::from_ref(service), namespace, domain),
            usage: Usage::Server,
        };
        let leaves = vec![
            server(Component::Operator, &args.operator_certificate_secret, &args.operator_service),
            server(Component::Webhook, &args.webhook_certificate_secret, &args.webhook_service),
            server(
                Component::MetricsApiServer,
                &args.metrics_apiserver_certificate_secret,
                &args.metrics_apiserver_service,
            ),
            LeafSpec {
                component: Component::MetricsApiServerClient,
                secret: args.metrics_apiserver_client_secret.trim().to_owned(),
                common_name: client.clone(),
                dns_names: vec![client],
                usage: Usage::Client,
            },
        ];
        let optional = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        Ok(Self {
            namespace: namespace.to_owned(),
            ca_secret: args.ca_secret.trim().to_owned(),
            leaves,
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

/// `ebb_certificate_expiry_timestamp_seconds{certificate="ca"|"operator"|"webhook"|
/// "metrics-apiserver"|"metrics-apiserver-client"}`: notAfter of the signing CA and of each leaf.
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
    /// Serial of each leaf in use (hex), by component.
    pub serials: std::collections::BTreeMap<Component, String>,
    /// Serial of the signing CA (hex).
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
        let mut backoff = Backoff::new(FIRST_BACKOFF, self.cfg.max_backoff);
        tracing::info!(
            secrets = %self.cfg.leaves.iter().map(|l| l.secret.as_str()).collect::<Vec<_>>().join(","),
            ca_secret = %format!("{}/{}", self.cfg.namespace, self.cfg.ca_secret),
            "certificate management started"
        );
        loop {
            let pause = match self.pass().await {
                Ok(pass) => {
                    backoff.reset();
                    pass.next.duration_since(SystemTime::now()).unwrap_or_default().max(MIN_PAUSE)
                }
                Err(e) => {
                    let pause = backoff.next_pause();
                    tracing::warn!(
                        "certificate management: {e}; retrying in {}",
                        humantime::format_duration(pause)
                    );
                    pause
                }
            };
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One pass: the CA's step, each leaf, the injections, then what was seen recorded (see
    /// [`pki::rotation`]).
    pub async fn pass(&mut self) -> Result<Pass, CertError> {
        let now = unix_now();
        let (authority, ca_secret) = self.ensure_authority(now).await?;
        let bundle = authority.bundle();
        let mut serials = std::collections::BTreeMap::new();
        let mut seen =
            pki::rotation::Observed { bundles_everywhere: true, leaves_signed: true, leaf_switched: false };
        let mut due = pki::ca_renew_at(&authority.signing.info, &self.cfg.timing);
        for spec in self.cfg.leaves.clone() {
            let state = self.ensure_leaf(&spec, &authority, &bundle, now).await?;
            seen.leaves_signed &= state.leaf.info.signed_by(&authority.signing.info);
            seen.leaf_switched |= state.switched;
            due = due.min(pki::leaf_renew_at(&state.leaf.info, &self.cfg.timing));
            if let Some(m) = &self.metrics {
                m.set(spec.component.name(), state.leaf.info.not_after);
            }
            serials.insert(spec.component, state.leaf.info.serial);
        }
        if let Some(m) = &self.metrics {
            m.set("ca", authority.signing.info.not_after);
        }
        let targets = [
            (inject::Target::ApiService, self.cfg.apiservice.clone()),
            (inject::Target::ValidatingWebhookConfiguration, self.cfg.webhook_configuration.clone()),
        ];
        for (target, name) in targets {
            let Some(name) = name else { continue };
            let found = inject::inject(&self.client, target, &name, &bundle).await.map_err(|e| {
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
        // Everything this pass wrote now carries the bundle and leaves from the signing CA.
        let authority = match pki::rotation::record(&authority, seen, now) {
            Some(recorded) => self.record(recorded, ca_secret).await?,
            None => authority,
        };
        if let Some(step) = authority.next_step_at(&self.cfg.timing) {
            due = due.min(step);
        }
        let due = UNIX_EPOCH + Duration::from_secs(u64::try_from(due).unwrap_or(0));
        Ok(Pass {
            bundle,
            serials,
            ca_serial: authority.signing.info.serial,
            next: due.min(SystemTime::now() + self.cfg.resync),
        })
    }
}

#[cfg(test)]
mod tests;
