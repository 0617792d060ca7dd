//! PEM and X.509 pieces shared by the programs that make or read certificates (the operator's
//! certificate management, the sandbox's CAs), without any I/O: PEM encoding ([`pem_encode`],
//! [`cert_pem`]); reading the certificates of a PEM text, as DER for rustls ([`cert_ders`]) or
//! as the facts decisions look at ([`CertInfo`], [`parse_certs`], [`first_cert`]); and the
//! rcgen building blocks both issuers use: subject names ([`distinguished_name`]), the validity
//! window ([`set_validity`]) and CA parameters ([`ca_params`]).
//!
//! Times are Unix seconds, as X.509 validity has a resolution of one second. Nothing here puts
//! key material into an error message. Behind the `pki` feature (it pulls rcgen).

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine as _;
use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyUsagePurpose};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;

/// Encodes one DER object as a PEM block with `label` (64-column lines, LF).
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 32);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// Encodes one DER certificate as a `CERTIFICATE` PEM block.
pub fn cert_pem(der: &[u8]) -> String {
    pem_encode("CERTIFICATE", der)
}

/// Every certificate of a PEM text as DER, as rustls takes them; other blocks are skipped.
pub fn cert_ders(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, rustls::pki_types::pem::Error> {
    CertificateDer::pem_slice_iter(pem).collect()
}

/// One parsed certificate: what decisions about it look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    /// DER encoding.
    pub der: Vec<u8>,
    /// `notBefore`, Unix seconds.
    pub not_before: i64,
    /// `notAfter`, Unix seconds.
    pub not_after: i64,
    /// Serial number, hex.
    pub serial: String,
    /// Common name of the subject, if any.
    pub common_name: Option<String>,
    /// DNS subject alternative names.
    pub dns_names: BTreeSet<String>,
    /// Whether basicConstraints marks it as a CA.
    pub is_ca: bool,
    /// Extended key usage serverAuth / clientAuth.
    pub server_auth: bool,
    pub client_auth: bool,
    /// DER of the subject public key info.
    pub spki: Vec<u8>,
}

impl CertInfo {
    /// Parses one DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, String> {
        let (_, cert) =
            x509_parser::parse_x509_certificate(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let mut dns_names = BTreeSet::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                if let GeneralName::DNSName(n) = name {
                    dns_names.insert((*n).to_owned());
                }
            }
        }
        let (server_auth, client_auth) = match cert.extended_key_usage() {
            Ok(Some(eku)) => (eku.value.server_auth || eku.value.any, eku.value.client_auth || eku.value.any),
            _ => (false, false),
        };
        Ok(Self {
            der: der.to_vec(),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            serial: cert.raw_serial_as_string(),
            common_name: cert
                .subject()
                .iter_common_name()
                .next()
                .and_then(|cn| cn.as_str().ok())
                .map(str::to_owned),
            dns_names,
            is_ca: cert.is_ca(),
            server_auth,
            client_auth,
            spki: cert.tbs_certificate.subject_pki.raw.to_vec(),
        })
    }

    /// Whether this certificate's signature verifies with `issuer`'s key and names it as issuer.
    pub fn signed_by(&self, issuer: &CertInfo) -> bool {
        let (Ok((_, child)), Ok((_, parent))) = (
            x509_parser::parse_x509_certificate(&self.der),
            x509_parser::parse_x509_certificate(&issuer.der),
        ) else {
            return false;
        };
        issued_by(&child, &parent)
    }

    /// The certificate as one PEM block.
    pub fn pem(&self) -> String {
        cert_pem(&self.der)
    }
}

fn issued_by(child: &X509Certificate<'_>, parent: &X509Certificate<'_>) -> bool {
    child.issuer() == parent.subject() && child.verify_signature(Some(parent.public_key())).is_ok()
}

/// Every CERTIFICATE block of a PEM text, parsed; other blocks are skipped.
pub fn parse_certs(pem: &[u8]) -> Result<Vec<CertInfo>, String> {
    let mut out = Vec::new();
    for block in Pem::iter_from_buffer(pem) {
        let block: Pem = block.map_err(|e| format!("bad PEM: {e}"))?;
        if block.label == "CERTIFICATE" {
            out.push(CertInfo::from_der(&block.contents)?);
        }
    }
    Ok(out)
}

/// The first certificate of a PEM text.
pub fn first_cert(pem: &[u8]) -> Result<CertInfo, String> {
    parse_certs(pem)?.into_iter().next().ok_or_else(|| "no certificate in the PEM data".to_owned())
}

/// Seconds of a duration as i64 (saturating far beyond any certificate's lifetime).
pub fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2)
}

/// A subject name: one O entry when `organization` is given, then the common name.
pub fn distinguished_name(common_name: &str, organization: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    if let Some(org) = organization {
        dn.push(DnType::OrganizationName, org);
    }
    dn.push(DnType::CommonName, common_name);
    dn
}

/// Sets the validity window: from `backdate` before `now` (so that a peer whose clock is a
/// little behind accepts a certificate issued just now) until `validity` after it.
pub fn set_validity(params: &mut CertificateParams, now: i64, backdate: Duration, validity: Duration) {
    let at =
        |t: i64| time::OffsetDateTime::from_unix_timestamp(t).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    params.not_before = at(now.saturating_sub(secs(backdate)));
    params.not_after = at(now.saturating_add(secs(validity)));
}

/// The parameters of a self-signed CA named `common_name`: basicConstraints CA without a path
/// length limit, key usages keyCertSign, cRLSign and digitalSignature, valid as
/// [`set_validity`] sets it.
pub fn ca_params(common_name: &str, now: i64, backdate: Duration, validity: Duration) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(common_name, None);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    set_validity(&mut params, now, backdate, validity);
    params
}

/// The current time, Unix seconds (0 for a clock before 1970).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7468 §2: base64 lines of exactly 64 characters but the last, label lines around.
    #[test]
    fn pem_lines_are_64_columns() {
        let der: Vec<u8> = (0..=255u8).collect();
        let pem = pem_encode("CERTIFICATE", &der);
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines.first(), Some(&"-----BEGIN CERTIFICATE-----"));
        assert_eq!(lines.last(), Some(&"-----END CERTIFICATE-----"));
        // 256 bytes are 344 base64 characters: five full lines and one of 24.
        let body = &lines[1..lines.len() - 1];
        assert_eq!(body.iter().map(|l| l.len()).collect::<Vec<_>>(), [64, 64, 64, 64, 64, 24]);
        assert!(pem.ends_with("-----\n"));
        assert_eq!(pem_encode("X", &[]), "-----BEGIN X-----\n-----END X-----\n");
    }

    #[test]
    fn certificates_round_trip_through_pem() {
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            ca_params("round-trip", 1_700_000_000, Duration::from_secs(60), Duration::from_secs(86_400));
        let ca = params.self_signed(&key).unwrap();
        let text = format!("{}{}", cert_pem(ca.der()), pem_encode("PRIVATE KEY", b"not a key"));
        let ders = cert_ders(text.as_bytes()).unwrap();
        assert_eq!(ders.len(), 1, "the key block is skipped");
        assert_eq!(ders[0].as_ref(), ca.der().as_ref());
        let info = first_cert(text.as_bytes()).unwrap();
        assert_eq!(info.der, ca.der().to_vec());
        assert_eq!((info.not_before, info.not_after), (1_700_000_000 - 60, 1_700_000_000 + 86_400));
        assert_eq!(info.common_name.as_deref(), Some("round-trip"));
        assert!(info.is_ca && info.signed_by(&info));
        assert_eq!(first_cert(b"").unwrap_err(), "no certificate in the PEM data");
    }

    #[test]
    fn names_put_the_organization_first() {
        let dn = distinguished_name("alice", Some("system:masters"));
        let entries: Vec<_> = dn.iter().map(|(t, _)| t.clone()).collect();
        assert_eq!(entries, [DnType::OrganizationName, DnType::CommonName]);
        assert_eq!(distinguished_name("bob", None).iter().count(), 1);
    }
}
