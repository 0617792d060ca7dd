//! The certificate material of the operator's certificate management, and every decision about
//! it, without any Kubernetes I/O: making a CA and the leaf certificates (ECDSA P-256) — one per
//! component, each with its own key and identity ([`LeafSpec`]) — reading them back from PEM,
//! deciding whether each leaf is kept or replaced ([`plan_leaf`]), and the staged CA rotation
//! ([`rotation`]: publish the new CA, switch the leaves, retire the old CA).
//!
//! Reading certificates ([`CertInfo`], [`parse_certs`]), PEM encoding, names and validity come
//! from `ebb_plumbing::pki`, shared with the sandbox's CAs. Times are Unix seconds, as X.509
//! validity has a resolution of one second. Nothing here puts key material into an error
//! message.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use ebb_plumbing::pki::{ca_params, distinguished_name, first_cert, set_validity};
use rcgen::{
    CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData,
};

use ebb_plumbing::pki::cert_pem;
pub(crate) use ebb_plumbing::pki::secs;
pub use ebb_plumbing::pki::{CertInfo, parse_certs};

/// How far back `notBefore` is set, so that a peer whose clock is a little behind accepts a
/// certificate issued just now.
const BACKDATE: Duration = Duration::from_secs(60);

/// Common name prefix of the CAs; the issue time is appended so that successive CAs have
/// distinct subjects.
const CA_NAME: &str = "ebb-ca";

/// Why certificate material could not be made.
#[derive(Debug, thiserror::Error)]
#[error("generating {what}: {message}")]
pub struct GenerateError {
    what: &'static str,
    message: String,
}

impl GenerateError {
    fn new(what: &'static str, message: impl fmt::Display) -> Self {
        Self { what, message: message.to_string() }
    }
}

/// Validity settings of the certificates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Lifetime of a serving certificate.
    pub validity: Duration,
    /// A serving certificate with less than this left is replaced.
    pub renew_before: Duration,
    /// Lifetime of a CA.
    pub ca_validity: Duration,
    /// How long a change of the trusted CAs (or of the CA that signs the leaves) must have been
    /// published everywhere before the next step of a CA rotation: longer than the kubelet
    /// takes to update a mounted Secret and the API server to see a new caBundle.
    pub overlap: Duration,
}

impl Timing {
    /// Checks that the settings make sense together; the message names the flags.
    pub fn check(&self) -> Result<(), String> {
        let show = |d: Duration| humantime::format_duration(d).to_string();
        if self.validity.as_secs() < 2 {
            return Err(format!("--certificate-validity ({}) must be at least 2s", show(self.validity)));
        }
        if self.renew_before.as_secs() == 0 || self.renew_before >= self.validity {
            return Err(format!(
                "--certificate-renew-before ({}) must be at least 1s and shorter than --certificate-validity ({})",
                show(self.renew_before),
                show(self.validity)
            ));
        }
        if self.overlap.as_secs() == 0 || self.overlap >= self.renew_before {
            return Err(format!(
                "--ca-rotation-overlap ({}) must be at least 1s and shorter than --certificate-renew-before ({}): \
                 a certificate due for renewal may wait that long for a new CA to be trusted",
                show(self.overlap),
                show(self.renew_before)
            ));
        }
        if self.ca_validity <= self.ca_renew_window() {
            return Err(format!(
                "--ca-validity ({}) must be longer than --certificate-validity plus --certificate-renew-before ({}): \
                 a CA is replaced once it could no longer outlive a new certificate",
                show(self.ca_validity),
                show(self.ca_renew_window())
            ));
        }
        Ok(())
    }

    /// A CA with less than this left is replaced: every certificate it signs must be able to
    /// run its full validity and still be renewed before the CA expires.
    pub fn ca_renew_window(&self) -> Duration {
        self.validity + self.renew_before
    }
}

/// Parses a PEM private key and checks that it belongs to `cert`.
fn matching_key(key_pem: &[u8], cert: &CertInfo) -> Result<KeyPair, String> {
    let text = std::str::from_utf8(key_pem).map_err(|_| "the private key is not PEM text".to_owned())?;
    // rcgen's error names the problem, never the key.
    let key = KeyPair::from_pem(text).map_err(|e| format!("the private key does not parse: {e}"))?;
    if key.subject_public_key_info() != cert.spki {
        return Err("the private key does not belong to the certificate".to_owned());
    }
    Ok(key)
}

/// A CA: its certificate and private key, both PEM.
#[derive(Clone, Debug)]
pub struct Ca {
    pub info: CertInfo,
    pub cert_pem: String,
    /// PKCS#8 PEM. Never logged.
    pub key_pem: String,
}

impl Ca {
    /// Reads a CA from its PEM certificate and key, checking that they belong together and that
    /// the certificate is a CA.
    pub fn parse(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, String> {
        let info = first_cert(cert_pem)?;
        if !info.is_ca {
            return Err("the certificate is not a CA (basicConstraints)".to_owned());
        }
        matching_key(key_pem, &info)?;
        Ok(Self { cert_pem: info.pem(), key_pem: String::from_utf8_lossy(key_pem).into_owned(), info })
    }

    /// A new self-signed CA valid from (about) `now` for `validity`.
    pub fn generate(now: i64, validity: Duration) -> Result<Self, GenerateError> {
        let err = |e: rcgen::Error| GenerateError::new("the CA", e);
        let key = KeyPair::generate().map_err(err)?;
        let params = ca_params(&format!("{CA_NAME}@{now}"), now, BACKDATE, validity);
        let cert = params.self_signed(&key).map_err(err)?;
        let info = CertInfo::from_der(cert.der()).map_err(|e| GenerateError::new("the CA", e))?;
        Ok(Self { cert_pem: info.pem(), key_pem: key.serialize_pem(), info })
    }

    /// Issues the leaf certificate `spec` describes, valid from (about) `now` for `validity`:
    /// its common name and DNS names, and only its own usage (serverAuth or clientAuth).
    pub fn issue(&self, spec: &LeafSpec, now: i64, validity: Duration) -> Result<Leaf, GenerateError> {
        let err = |e: rcgen::Error| GenerateError::new(spec.component.what(), e);
        let ca_key = KeyPair::from_pem(&self.key_pem).map_err(err)?;
        let issuer = Issuer::from_ca_cert_der(&self.info.der.clone().into(), ca_key).map_err(err)?;
        let key = KeyPair::generate().map_err(err)?;
        let mut params = CertificateParams::new(spec.dns_names.clone()).map_err(err)?;
        params.distinguished_name = distinguished_name(&spec.common_name, None);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![match spec.usage {
            Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
            Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, now, BACKDATE, validity);
        let cert = params.signed_by(&key, &issuer).map_err(err)?;
        let info =
            CertInfo::from_der(cert.der()).map_err(|e| GenerateError::new(spec.component.what(), e))?;
        Ok(Leaf { cert_pem: info.pem(), key_pem: key.serialize_pem(), info })
    }
}

/// A leaf certificate (serving or client) and its key, both PEM.
#[derive(Clone, Debug)]
pub struct Leaf {
    pub info: CertInfo,
    pub cert_pem: String,
    /// PKCS#8 PEM. Never logged.
    pub key_pem: String,
}

impl Leaf {
    /// Reads a leaf certificate (the first of `cert_pem`) and checks that `key_pem` is its key.
    pub fn parse(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, String> {
        let info = first_cert(cert_pem)?;
        matching_key(key_pem, &info)?;
        Ok(Self {
            cert_pem: String::from_utf8_lossy(cert_pem).into_owned(),
            key_pem: String::from_utf8_lossy(key_pem).into_owned(),
            info,
        })
    }
}

/// Why a CA or a leaf certificate is (re)issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The Secret does not exist.
    Missing,
    /// The Secret's content does not parse (or the key does not match, or it is not a CA).
    Unparseable(String),
    /// The leaf is not signed by the CA that signs leaves now.
    OtherIssuer,
    /// The leaf's common name or DNS names are not the configured ones.
    DnsNames,
    /// The leaf's extended key usage is not exactly its component's (serverAuth or clientAuth).
    Usage,
    /// The CA has expired.
    Expired,
    /// Less than the renewal window is left.
    Expiring { not_after: i64 },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("the Secret does not exist"),
            Self::Unparseable(why) => write!(f, "its content is unusable: {why}"),
            Self::OtherIssuer => f.write_str("the certificate is not signed by the current CA"),
            Self::DnsNames => f.write_str("the certificate's names differ from the configured ones"),
            Self::Usage => f.write_str("the certificate's key usage is not its component's alone"),
            Self::Expired => f.write_str("the CA has expired"),
            Self::Expiring { not_after } => write!(f, "the certificate expires at {}", rfc3339(*not_after)),
        }
    }
}

impl Reason {
    /// A short machine-friendly word for events and logs.
    pub fn word(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Unparseable(_) => "unusable",
            Self::OtherIssuer => "ca-changed",
            Self::DnsNames => "dns-names-changed",
            Self::Usage => "usage",
            Self::Expired => "expired",
            Self::Expiring { .. } => "renewal",
        }
    }
}

/// RFC 3339 rendering of Unix seconds.
pub fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map(|d| d.to_rfc3339()).unwrap_or_else(|| t.to_string())
}

/// When the CA is due for replacement, Unix seconds.
pub fn ca_renew_at(ca: &CertInfo, timing: &Timing) -> i64 {
    ca.not_after - secs(timing.ca_renew_window())
}

/// When a leaf certificate is due for renewal, Unix seconds.
pub fn leaf_renew_at(cert: &CertInfo, timing: &Timing) -> i64 {
    cert.not_after - secs(timing.renew_before)
}

/// Whether a leaf is kept (Ok) or issued again from `authority.signing` (the reason).
///
/// A leaf signed by a CA that is still trusted but no longer signs (a CA being retired) is
/// kept until the bundle holding the signing CA has been published everywhere for the overlap
/// ([`rotation::Authority::switch_ready`]) — even when due for renewal, as long as it has not
/// expired — so that no program serves a certificate its clients cannot verify yet.
pub fn plan_leaf(
    current: Option<&Result<Leaf, String>>,
    spec: &LeafSpec,
    authority: &rotation::Authority,
    now: i64,
    timing: &Timing,
) -> Result<(), Reason> {
    let leaf = match current {
        None => return Err(Reason::Missing),
        Some(Err(why)) => return Err(Reason::Unparseable(why.clone())),
        Some(Ok(s)) => &s.info,
    };
    let want: BTreeSet<String> = spec.dns_names.iter().cloned().collect();
    if leaf.dns_names != want || leaf.common_name.as_deref() != Some(spec.common_name.as_str()) {
        return Err(Reason::DnsNames);
    }
    let usage_ok = match spec.usage {
        Usage::Server => leaf.server_auth && !leaf.client_auth,
        Usage::Client => leaf.client_auth && !leaf.server_auth,
    };
    if !usage_ok {
        return Err(Reason::Usage);
    }
    let expiring = leaf.not_after - now <= secs(timing.renew_before);
    if leaf.signed_by(&authority.signing.info) {
        return if expiring { Err(Reason::Expiring { not_after: leaf.not_after }) } else { Ok(()) };
    }
    let by_trusted = authority.trusted().into_iter().any(|ca| ca.not_after > now && leaf.signed_by(ca));
    if !by_trusted {
        return Err(Reason::OtherIssuer);
    }
    if leaf.not_after <= now {
        return Err(Reason::Expiring { not_after: leaf.not_after });
    }
    if authority.switch_ready(now, timing) {
        return Err(if expiring {
            Reason::Expiring { not_after: leaf.not_after }
        } else {
            Reason::OtherIssuer
        });
    }
    Ok(())
}

/// The program a leaf certificate belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    /// The operator's internal endpoint (serving).
    Operator,
    /// The admission webhook (serving).
    Webhook,
    /// The metrics API server's external metrics API (serving).
    MetricsApiServer,
    /// The metrics API server as client of the operator's internal endpoint.
    MetricsApiServerClient,
}

impl Component {
    /// Every component, in the order the manager handles them.
    pub const ALL: [Self; 4] =
        [Self::Operator, Self::Webhook, Self::MetricsApiServer, Self::MetricsApiServerClient];

    /// A short name for metrics, logs and events.
    pub fn name(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Webhook => "webhook",
            Self::MetricsApiServer => "metrics-apiserver",
            Self::MetricsApiServerClient => "metrics-apiserver-client",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Self::Operator => "the operator's serving certificate",
            Self::Webhook => "the webhook's serving certificate",
            Self::MetricsApiServer => "the metrics API server's serving certificate",
            Self::MetricsApiServerClient => "the metrics API server's client certificate",
        }
    }
}

/// Server or client authentication: a leaf is valid for one only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    /// extendedKeyUsage serverAuth.
    Server,
    /// extendedKeyUsage clientAuth.
    Client,
}

/// One leaf certificate the manager keeps: whose it is, its Secret and its identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafSpec {
    pub component: Component,
    /// Secret (type kubernetes.io/tls) holding it, in the operator's namespace.
    pub secret: String,
    /// Subject common name.
    pub common_name: String,
    /// DNS subject alternative names.
    pub dns_names: Vec<String>,
    pub usage: Usage,
}

/// The DNS names of a certificate for `services` in `namespace`: per service S, `S`, `S.N`,
/// `S.N.svc` and `S.N.svc.<cluster_domain>`.
pub fn dns_names(services: &[String], namespace: &str, cluster_domain: &str) -> Vec<String> {
    let mut out = Vec::new();
    for s in services.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        for name in [
            s.to_owned(),
            format!("{s}.{namespace}"),
            format!("{s}.{namespace}.svc"),
            format!("{s}.{namespace}.svc.{cluster_domain}"),
        ] {
            if !out.contains(&name) {
                out.push(name);
            }
        }
    }
    out
}

pub mod rotation;

#[cfg(test)]
mod simulation;
#[cfg(test)]
mod tests;
