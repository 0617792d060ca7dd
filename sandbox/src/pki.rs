//! Certificates and TLS configuration for the local control plane.
//!
//! Owns the sandbox's certificate authorities ([`CertAuthority`]), the leaf certificates they
//! issue ([`Leaf`]: serving certificates with DNS/IP subject alternative names, and client
//! certificates whose CN is the user and whose O entries are the groups, as Kubernetes reads
//! them), the rustls server and client configurations built from them, and
//! [`peer_identity`], which reads the user and groups back from a presented client certificate.
//!
//! PEM encoding and reading, subject names, validity windows, CA parameters and the rustls
//! server configuration come from `ebb_plumbing` (shared with the operator and ebb's servers).
//! Every rustls configuration is built with the `ring` crypto provider passed explicitly, so
//! nothing depends on a process-wide default provider being installed.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ebb_plumbing::pki::{ca_params, cert_ders, cert_pem, distinguished_name, set_validity, unix_now};
use ebb_plumbing::tls::{ClientRoots, TlsError};
use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// Seconds in a day.
const DAY: u64 = 86_400;
/// How long a certificate authority stays valid.
const CA_VALIDITY: Duration = Duration::from_secs(3650 * DAY);
/// How long an issued leaf certificate stays valid.
const LEAF_VALIDITY: Duration = Duration::from_secs(365 * DAY);
/// Certificates start being valid this long before they are made, to tolerate clock skew.
const BACKDATE: Duration = Duration::from_secs(3600);

/// Errors raised while making certificates or TLS configurations.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Key generation or certificate signing failed.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls rejected a certificate, key or configuration.
    #[error("TLS configuration failed: {0}")]
    Tls(#[from] rustls::Error),
    /// The client-certificate verifier could not be built.
    #[error("client certificate verifier: {0}")]
    ClientVerifier(#[from] rustls::server::VerifierBuilderError),
    /// PEM text could not be decoded.
    #[error("invalid PEM: {0}")]
    Pem(#[from] rustls::pki_types::pem::Error),
    /// A CA bundle held no certificate.
    #[error("the CA bundle holds no certificate")]
    EmptyBundle,
    /// A PEM text meant to hold a private key held none.
    #[error("no private key found in PEM")]
    NoPrivateKey,
    /// A serving certificate was requested with neither DNS names nor IP addresses.
    #[error("a serving certificate needs at least one DNS name or IP address")]
    NoSubjectAltNames,
    /// A DNS name cannot be used as a subject alternative name.
    #[error("invalid DNS name {0:?}")]
    InvalidDnsName(String),
    /// A client certificate was requested with an empty common name.
    #[error("a client certificate needs a non-empty common name")]
    EmptyCommonName,
    /// A certificate could not be parsed or rewritten.
    #[error("malformed certificate: {0}")]
    Certificate(String),
    /// A certificate's subject carries no common name.
    #[error("the certificate subject has no common name")]
    NoCommonName,
}

/// A certificate authority: a self-signed CA certificate and its key, able to issue leaves.
pub struct CertAuthority {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for CertAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertAuthority").field("cert_pem", &self.cert_pem).finish_non_exhaustive()
    }
}

/// An issued certificate with its private key, both PEM-encoded (key in PKCS#8).
#[derive(Clone, PartialEq, Eq)]
pub struct Leaf {
    /// The certificate, PEM-encoded.
    pub cert_pem: String,
    /// The private key, PEM-encoded PKCS#8.
    pub key_pem: String,
}

impl fmt::Debug for Leaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leaf").field("cert_pem", &self.cert_pem).field("key_pem", &"<redacted>").finish()
    }
}

impl Leaf {
    /// The certificate in DER form.
    pub fn cert_der(&self) -> Result<CertificateDer<'static>, PkiError> {
        first_cert(self.cert_pem.as_bytes())
    }
}

impl CertAuthority {
    /// Creates a new CA (ECDSA P-256, valid ten years) with the given common name.
    pub fn new(common_name: &str) -> Result<Self, PkiError> {
        let key = KeyPair::generate()?;
        let params = ca_params(common_name, unix_now(), BACKDATE, CA_VALIDITY);
        let cert = params.self_signed(&key)?;
        Ok(Self { cert_pem: cert.pem(), issuer: Issuer::new(params, key) })
    }

    /// The CA certificate, PEM-encoded (what goes into a `caBundle` or a kubeconfig).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues a serving certificate for the given DNS names and IPs (for example `localhost`,
    /// `ebb-webhook.keda.svc` and 127.0.0.1), valid one year.
    pub fn issue_server(&self, dns_names: &[&str], ips: &[IpAddr]) -> Result<Leaf, PkiError> {
        if dns_names.is_empty() && ips.is_empty() {
            return Err(PkiError::NoSubjectAltNames);
        }
        let mut sans = Vec::with_capacity(dns_names.len() + ips.len());
        for dns in dns_names {
            let ia5 = (*dns).try_into().map_err(|_| PkiError::InvalidDnsName((*dns).to_owned()))?;
            sans.push(SanType::DnsName(ia5));
        }
        sans.extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
        let common_name = match (dns_names.first(), ips.first()) {
            (Some(dns), _) => (*dns).to_owned(),
            (None, Some(ip)) => ip.to_string(),
            (None, None) => return Err(PkiError::NoSubjectAltNames),
        };
        let mut params = leaf_params(&common_name, None, ExtendedKeyUsagePurpose::ServerAuth);
        params.subject_alt_names = sans;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Leaf { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }

    /// Issues a client certificate with CN = `common_name` (the user) and one O entry per
    /// organization (the groups), valid one year. Used for users and for the front-proxy
    /// client certificate presented to aggregated API servers.
    pub fn issue_client(&self, common_name: &str, organizations: &[&str]) -> Result<Leaf, PkiError> {
        if common_name.is_empty() {
            return Err(PkiError::EmptyCommonName);
        }
        let params =
            leaf_params(common_name, organizations.first().copied(), ExtendedKeyUsagePurpose::ClientAuth);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let der = if organizations.len() > 1 {
            // rcgen keeps one value per attribute type; Kubernetes reads every O entry as a
            // group, so the subject is rewritten and the certificate signed again.
            let subject = encode_name(common_name, organizations);
            der::replace_subject(cert.der(), &subject, self.issuer.key())?
        } else {
            cert.der().to_vec()
        };
        Ok(Leaf { cert_pem: cert_pem(&der), key_pem: key.serialize_pem() })
    }
}

fn leaf_params(
    common_name: &str,
    organization: Option<&str>,
    usage: ExtendedKeyUsagePurpose,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    // rcgen builds the subject with CN and at most one O.
    params.distinguished_name = distinguished_name(common_name, organization);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, unix_now(), BACKDATE, LEAF_VALIDITY);
    params
}

/// DER-encodes an X.501 Name: one RDN per organization, then the common name.
fn encode_name(common_name: &str, organizations: &[&str]) -> Vec<u8> {
    // id-at-organizationName 2.5.4.10 and id-at-commonName 2.5.4.3.
    const OID_O: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x0a];
    const OID_CN: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x03];
    let rdn = |oid: &[u8], value: &str| {
        let mut atv = oid.to_vec();
        atv.extend(der::tlv(der::UTF8_STRING, value.as_bytes()));
        der::tlv(der::SET, &der::tlv(der::SEQUENCE, &atv))
    };
    let mut rdns = Vec::new();
    for org in organizations {
        rdns.extend(rdn(OID_O, org));
    }
    rdns.extend(rdn(OID_CN, common_name));
    der::tlv(der::SEQUENCE, &rdns)
}

/// Minimal DER reading and writing, enough to swap the subject of a certificate.
mod der {
    use super::PkiError;
    use rcgen::SigningKey;

    pub(super) const SEQUENCE: u8 = 0x30;
    pub(super) const SET: u8 = 0x31;
    pub(super) const UTF8_STRING: u8 = 0x0c;
    const BIT_STRING: u8 = 0x03;
    const VERSION_TAG: u8 = 0xa0;

    fn malformed(what: &str) -> PkiError {
        PkiError::Certificate(what.to_owned())
    }

    /// Encodes one tag-length-value element.
    pub(super) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let len = content.len();
        let mut out = vec![tag];
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
        out.extend_from_slice(content);
        out
    }

    /// One element read from a buffer: its tag, whole encoding and content.
    struct Element<'a> {
        tag: u8,
        whole: &'a [u8],
        content: &'a [u8],
    }

    /// Reads the element at the start of `buf`, returning it and what follows.
    fn read(buf: &[u8]) -> Result<(Element<'_>, &[u8]), PkiError> {
        let (&tag, rest) = buf.split_first().ok_or_else(|| malformed("truncated"))?;
        if tag & 0x1f == 0x1f {
            return Err(malformed("multi-byte tags are not supported"));
        }
        let (&first, rest) = rest.split_first().ok_or_else(|| malformed("truncated"))?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return Err(malformed("bad length"));
            }
            let (len_bytes, rest) = rest.split_at(n);
            let len = len_bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, rest)
        };
        if rest.len() < len {
            return Err(malformed("truncated"));
        }
        let header = buf.len() - rest.len();
        let (content, after) = rest.split_at(len);
        let element = Element { tag, whole: &buf[..header + len], content };
        Ok((element, after))
    }

    /// Splits the content of a constructed element into its children.
    fn children(mut content: &[u8]) -> Result<Vec<Element<'_>>, PkiError> {
        let mut out = Vec::new();
        while !content.is_empty() {
            let (element, rest) = read(content)?;
            out.push(element);
            content = rest;
        }
        Ok(out)
    }

    /// Returns `cert` with its subject replaced by `subject` (a DER Name), signed again with
    /// `key`, which must be the key of the certificate's issuer.
    pub(super) fn replace_subject(
        cert: &[u8],
        subject: &[u8],
        key: &impl SigningKey,
    ) -> Result<Vec<u8>, PkiError> {
        let (outer, trailing) = read(cert)?;
        if outer.tag != SEQUENCE || !trailing.is_empty() {
            return Err(malformed("not a certificate"));
        }
        let parts = children(outer.content)?;
        let [tbs, algorithm, _signature] = parts.as_slice() else {
            return Err(malformed("a certificate has three parts"));
        };
        let fields = children(tbs.content)?;
        // version, serialNumber, signature, issuer, validity, subject, ...
        if tbs.tag != SEQUENCE
            || fields.len() < 7
            || fields[0].tag != VERSION_TAG
            || fields[5].tag != SEQUENCE
        {
            return Err(malformed("unexpected TBSCertificate layout"));
        }
        let mut tbs_content = Vec::with_capacity(tbs.content.len() + subject.len());
        for (index, field) in fields.iter().enumerate() {
            if index == 5 {
                tbs_content.extend_from_slice(subject);
            } else {
                tbs_content.extend_from_slice(field.whole);
            }
        }
        let new_tbs = tlv(SEQUENCE, &tbs_content);
        let mut signature = vec![0u8];
        signature.extend(key.sign(&new_tbs)?);
        let mut body = new_tbs;
        body.extend_from_slice(algorithm.whole);
        body.extend(tlv(BIT_STRING, &signature));
        Ok(tlv(SEQUENCE, &body))
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn first_cert(pem: &[u8]) -> Result<CertificateDer<'static>, PkiError> {
    cert_ders(pem)?.into_iter().next().ok_or(PkiError::EmptyBundle)
}

fn roots(pem: &[u8]) -> Result<RootCertStore, PkiError> {
    let certs = cert_ders(pem)?;
    if certs.is_empty() {
        return Err(PkiError::EmptyBundle);
    }
    let mut store = RootCertStore::empty();
    for cert in certs {
        store.add(cert)?;
    }
    Ok(store)
}

fn chain_and_key(leaf: &Leaf) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), PkiError> {
    let chain = cert_ders(leaf.cert_pem.as_bytes())?;
    if chain.is_empty() {
        return Err(PkiError::EmptyBundle);
    }
    let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => PkiError::NoPrivateKey,
        other => PkiError::Pem(other),
    })?;
    Ok((chain, key))
}

/// A rustls server configuration serving `leaf`, offering ALPN `h2` and `http/1.1`.
///
/// With `client_ca_pem`, client certificates signed by that CA are verified and made
/// available to the caller; connections without a client certificate are still accepted, but a
/// presented certificate that does not verify fails the handshake.
pub fn server_config(leaf: &Leaf, client_ca_pem: Option<&str>) -> Result<Arc<ServerConfig>, PkiError> {
    let clients = match client_ca_pem {
        Some(ca) => ClientRoots::Optional(roots(ca.as_bytes())?),
        None => ClientRoots::None,
    };
    let (chain, key) = chain_and_key(leaf)?;
    let config = ebb_plumbing::tls::server_config(chain, key, clients).map_err(|e| match e {
        TlsError::Tls(e) => PkiError::Tls(e),
        TlsError::ClientVerifier(e) => PkiError::ClientVerifier(e),
        // Only the two above come from in-memory material; the rest name files or addresses.
        other => PkiError::Certificate(other.to_string()),
    })?;
    Ok(Arc::new(config))
}

/// A rustls client configuration trusting exactly the certificates in `ca_bundle_pem` (a
/// webhook's or APIService's `caBundle`, already base64-decoded), optionally presenting
/// `client` as its client certificate. No ALPN protocol is set.
pub fn client_config(ca_bundle_pem: &[u8], client: Option<&Leaf>) -> Result<Arc<ClientConfig>, PkiError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(ca_bundle_pem)?);
    let config = match client {
        Some(leaf) => {
            let (chain, key) = chain_and_key(leaf)?;
            builder.with_client_auth_cert(chain, key)?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The user (subject CN) and groups (every subject O, in order) of a DER certificate, as
/// Kubernetes' client-certificate authentication reads them.
pub fn peer_identity(cert_der: &[u8]) -> Result<(String, Vec<String>), PkiError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(cert_der).map_err(|e| PkiError::Certificate(e.to_string()))?;
    let subject = cert.subject();
    let attr_str = |attr: &x509_parser::x509::AttributeTypeAndValue<'_>| {
        attr.as_str().map(str::to_owned).map_err(|e| PkiError::Certificate(e.to_string()))
    };
    let user = match subject.iter_common_name().next() {
        Some(cn) => attr_str(cn)?,
        None => return Err(PkiError::NoCommonName),
    };
    if user.is_empty() {
        return Err(PkiError::NoCommonName);
    }
    let groups = subject.iter_organization().map(attr_str).collect::<Result<Vec<_>, _>>()?;
    Ok((user, groups))
}

#[cfg(test)]
mod tests;
