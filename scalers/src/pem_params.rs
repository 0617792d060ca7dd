//! TLS material read from a trigger's parameters as PEM text (never from files): a CA bundle and
//! a client certificate chain with its key, each checked as it is read, for the scalers that
//! speak TLS themselves (kafka's `ca`/`cert`/`key`, external's `caCert`/`tlsClientCert`/
//! `tlsClientKey`). Errors name the trigger's own parameter.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{ParseError, ParseErrorKind};
use crate::params::Params;

/// A client certificate chain and its private key.
pub type ClientIdentity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// The parameter names a scaler uses for the CA bundle, the client certificate and its key.
#[derive(Debug, Clone, Copy)]
pub struct PemNames {
    pub ca: &'static str,
    pub cert: &'static str,
    pub key: &'static str,
}

fn invalid(p: &Params<'_>, name: &str, m: impl Into<String>) -> ParseError {
    p.error(name, ParseErrorKind::InvalidParameter, m)
}

/// The CA bundle (when set) and the client identity (when both halves are set; one half alone is
/// an error naming the missing one).
pub fn read(
    p: &Params<'_>,
    names: PemNames,
) -> Result<(Option<Vec<CertificateDer<'static>>>, Option<ClientIdentity>), ParseError> {
    let ca = match p.text(names.ca)? {
        None => None,
        Some(pem) => Some(certs(p, names.ca, &pem)?),
    };
    let client = match (p.text(names.cert)?, p.text(names.key)?) {
        (None, None) => None,
        (Some(_), None) => {
            return Err(invalid(
                p,
                names.key,
                format!("{} is set, so {} must be set too", names.cert, names.key),
            ));
        }
        (None, Some(_)) => {
            return Err(invalid(
                p,
                names.cert,
                format!("{} is set, so {} must be set too", names.key, names.cert),
            ));
        }
        (Some(cert), Some(key)) => {
            let chain = certs(p, names.cert, &cert)?;
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
                .map_err(|_| invalid(p, names.key, "not a PEM private key (PKCS#8, PKCS#1 or SEC1)"))?;
            Some((chain, key))
        }
    };
    Ok((ca, client))
}

/// Every certificate of a PEM bundle; at least one.
fn certs(p: &Params<'_>, name: &str, pem: &str) -> Result<Vec<CertificateDer<'static>>, ParseError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|_| invalid(p, name, "not valid PEM"))?;
    if certs.is_empty() {
        return Err(invalid(p, name, "holds no PEM certificate (-----BEGIN CERTIFICATE-----)"));
    }
    Ok(certs)
}
