//! Client identity on top of the chain check: a verifier that admits a client certificate only
//! when it chains to the trusted CAs (webpki, as [`rustls::server::WebPkiClientVerifier`] does,
//! clientAuth usage included) **and** names one of the allowed identities — a DNS subject
//! alternative name or the subject's common name equal to it (ASCII case-insensitive, no
//! wildcards). Several programs may hold certificates from one CA; the chain says only that the
//! CA issued the certificate, the name says to whom.
//!
//! A refused identity ends the handshake with the `access_denied` alert; the names the
//! certificate carries (public data, never key material) are logged.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use x509_parser::extensions::GeneralName;

/// The names a certificate identifies its holder by.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertIdentity {
    /// Common names of the subject.
    pub common_names: Vec<String>,
    /// DNS subject alternative names.
    pub dns_names: Vec<String>,
}

impl CertIdentity {
    /// Reads the names of a DER certificate; `None` when it does not parse.
    pub fn of(der: &[u8]) -> Option<Self> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let common_names =
            cert.subject().iter_common_name().filter_map(|cn| cn.as_str().ok().map(str::to_owned)).collect();
        let mut dns_names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                if let GeneralName::DNSName(n) = name {
                    dns_names.push((*n).to_owned());
                }
            }
        }
        Some(Self { common_names, dns_names })
    }

    /// Whether a DNS name or a common name is exactly `name` (ASCII case-insensitive).
    pub fn is(&self, name: &str) -> bool {
        !name.is_empty()
            && self.dns_names.iter().chain(&self.common_names).any(|n| n.eq_ignore_ascii_case(name))
    }
}

impl std::fmt::Display for CertIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CN {:?}, DNS names {:?}", self.common_names, self.dns_names)
    }
}

/// A client certificate verifier: `inner`'s chain check, then the identity check.
#[derive(Debug)]
pub struct NamedClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    names: Vec<String>,
}

impl NamedClientVerifier {
    /// Admits what `inner` admits and names one of `names`. With no names nobody is admitted.
    pub fn new(inner: Arc<dyn ClientCertVerifier>, names: Vec<String>) -> Self {
        let names = names.into_iter().map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()).collect();
        Self { inner, names }
    }
}

impl ClientCertVerifier for NamedClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self.inner.verify_client_cert(end_entity, intermediates, now)?;
        let identity = CertIdentity::of(end_entity).unwrap_or_default();
        if self.names.iter().any(|n| identity.is(n)) {
            return Ok(verified);
        }
        tracing::warn!(
            "client certificate refused: it names {identity}, none of the admitted identities {:?}",
            self.names
        );
        Err(rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_exactly_and_case_insensitively() {
        let id = CertIdentity {
            common_names: vec!["ebb-metrics-apiserver".into()],
            dns_names: vec!["client.example".into()],
        };
        assert!(id.is("ebb-metrics-apiserver"));
        assert!(id.is("EBB-Metrics-APIServer"));
        assert!(id.is("client.example"));
        for other in ["ebb-metrics", "ebb-metrics-apiserver.keda.svc", "example", ""] {
            assert!(!id.is(other), "{other}");
        }
        let wildcard = CertIdentity { common_names: vec![], dns_names: vec!["*.example".into()] };
        assert!(!wildcard.is("client.example"));
    }

    #[test]
    fn garbage_has_no_identity() {
        assert_eq!(CertIdentity::of(b"not a certificate"), None);
    }
}
