//! Authentication of the prometheus scaler: `authModes` (basic, bearer, tls, custom; comma
//! separated, from the metadata or the TriggerAuthentication) and the credentials each mode needs,
//! read only from the TriggerAuthentication. Validated at parse time (PEM, header syntax) without
//! ever echoing a credential; the `Debug` form shows the modes only.

use std::fmt;

use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};

use crate::error::{ParseError, ParseErrorKind};
use crate::params::Params;

/// One authentication mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMode {
    Basic,
    Bearer,
    Tls,
    Custom,
}

impl AuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Basic => "basic",
            Self::Bearer => "bearer",
            Self::Tls => "tls",
            Self::Custom => "custom",
        }
    }
}

/// What goes into the `Authorization` header, if anything.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    #[default]
    None,
    Bearer(String),
    Basic {
        username: String,
        password: Option<String>,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "None",
            Self::Bearer(_) => "Bearer(<redacted>)",
            Self::Basic { .. } => "Basic(<redacted>)",
        })
    }
}

/// TLS settings that shape the connection (and so the pooled client).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct TlsSettings {
    /// PEM bundle of extra trusted CAs (`ca`), honoured in every mode.
    pub ca: Option<String>,
    /// Client certificate and key, PEM (`cert`, `key`; mode tls).
    pub identity: Option<(String, String)>,
}

/// A trigger's resolved authentication.
#[derive(Clone, Default)]
pub struct Auth {
    pub modes: Vec<AuthMode>,
    pub credentials: Credentials,
    /// Header and value of mode custom; the value is marked sensitive.
    pub custom: Option<(HeaderName, HeaderValue)>,
    pub tls: TlsSettings,
}

impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field("ca", &self.ca.is_some())
            .field("identity", &self.identity.is_some())
            .finish()
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let modes: Vec<&str> = self.modes.iter().map(|m| m.as_str()).collect();
        f.debug_struct("Auth")
            .field("modes", &modes)
            .field("custom_header", &self.custom.as_ref().map(|(h, _)| h.as_str()))
            .field("ca", &self.tls.ca.is_some())
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// The header name set by mode custom.
    pub fn custom_header_name(&self) -> Option<&HeaderName> {
        self.custom.as_ref().map(|(h, _)| h)
    }

    /// Every credential value, so text that came from the server can be scrubbed of them.
    pub fn secret_values(&self) -> Vec<String> {
        let mut out = Vec::new();
        match &self.credentials {
            Credentials::None => {}
            Credentials::Bearer(t) => out.push(t.clone()),
            Credentials::Basic { password, .. } => out.extend(password.clone()),
        }
        if let Some((_, v)) = &self.custom
            && let Ok(s) = v.to_str()
        {
            out.push(s.to_owned());
        }
        out.retain(|s| s.len() >= 4);
        out
    }
}

const SUPPORTED: &str = "basic, bearer, tls, custom";

/// Reads `authModes` and the credentials the modes need.
pub fn parse(p: &Params<'_>) -> Result<Auth, ParseError> {
    let (param, raw) = match p.text("authModes")? {
        Some(v) => ("authModes", v),
        None => match p.text("authMode")? {
            Some(v) => ("authMode", v),
            None => ("authModes", String::new()),
        },
    };
    let mut modes = Vec::new();
    for word in raw.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let mode = match word {
            "basic" => AuthMode::Basic,
            "bearer" => AuthMode::Bearer,
            "tls" => AuthMode::Tls,
            "custom" => AuthMode::Custom,
            "apiKey" | "oauth" => {
                return Err(p.error(
                    param,
                    ParseErrorKind::InvalidParameter,
                    format!("{word:?} is not supported by the prometheus scaler; supported: {SUPPORTED}"),
                ));
            }
            other => {
                return Err(p.error(
                    param,
                    ParseErrorKind::InvalidParameter,
                    format!("unknown authentication mode {other:?}; expected a comma-separated list of {SUPPORTED}"),
                ));
            }
        };
        if !modes.contains(&mode) {
            modes.push(mode);
        }
    }
    if modes.contains(&AuthMode::Basic) && modes.contains(&AuthMode::Bearer) {
        return Err(p.error(
            param,
            ParseErrorKind::InvalidParameter,
            "basic and bearer cannot be combined: both set the Authorization header",
        ));
    }
    let needed = |name: &str, mode: AuthMode| -> Result<String, ParseError> {
        p.text(name)?.ok_or_else(|| {
            p.error(
                name,
                ParseErrorKind::MissingParameter,
                format!(
                    "required by authModes {}; set parameter {name:?} in the trigger's TriggerAuthentication",
                    mode.as_str()
                ),
            )
        })
    };

    let mut auth = Auth::default();
    if modes.contains(&AuthMode::Bearer) {
        let token = match p.text("bearerToken")? {
            Some(t) => t,
            None => p.text("token")?.map_or_else(|| needed("bearerToken", AuthMode::Bearer), Ok)?,
        };
        check_header_value("bearerToken", &format!("Bearer {token}"), p)?;
        auth.credentials = Credentials::Bearer(token);
    }
    if modes.contains(&AuthMode::Basic) {
        let username = needed("username", AuthMode::Basic)?;
        if username.contains(':') {
            return Err(p.error(
                "username",
                ParseErrorKind::InvalidParameter,
                "must not contain ':' (basic authentication separates user and password with it)",
            ));
        }
        auth.credentials = Credentials::Basic { username, password: p.text("password")? };
    }
    if modes.contains(&AuthMode::Custom) {
        let header = needed("customAuthHeader", AuthMode::Custom)?;
        let value = needed("customAuthValue", AuthMode::Custom)?;
        let name = HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
            p.error("customAuthHeader", ParseErrorKind::InvalidParameter, "is not a valid HTTP header name")
        })?;
        if name == AUTHORIZATION && !matches!(auth.credentials, Credentials::None) {
            return Err(p.error(
                "customAuthHeader",
                ParseErrorKind::InvalidParameter,
                "Authorization is already set by authModes basic or bearer; use one of them",
            ));
        }
        let mut value = check_header_value("customAuthValue", &value, p)?;
        value.set_sensitive(true);
        auth.custom = Some((name, value));
    }
    if let Some(ca) = p.text("ca")? {
        reqwest::Certificate::from_pem_bundle(ca.as_bytes())
            .ok()
            .filter(|certs| !certs.is_empty())
            .ok_or_else(|| {
                p.error("ca", ParseErrorKind::InvalidParameter, "is not a PEM-encoded certificate bundle")
            })?;
        auth.tls.ca = Some(ca);
    }
    if modes.contains(&AuthMode::Tls) {
        let cert = needed("cert", AuthMode::Tls)?;
        let key = needed("key", AuthMode::Tls)?;
        if reqwest::Certificate::from_pem_bundle(cert.as_bytes()).map_or(true, |c| c.is_empty()) {
            return Err(p.error(
                "cert",
                ParseErrorKind::InvalidParameter,
                "is not a PEM-encoded certificate",
            ));
        }
        if !key.contains("PRIVATE KEY-----") {
            return Err(p.error("key", ParseErrorKind::InvalidParameter, "is not a PEM-encoded private key"));
        }
        let pem = identity_pem(&cert, &key);
        // Building a client is what checks that the key is usable and matches the certificate.
        reqwest::Identity::from_pem(pem.as_bytes())
            .and_then(|id| reqwest::Client::builder().tls_built_in_root_certs(false).identity(id).build())
            .map_err(|_| {
            p.error(
                "key",
                ParseErrorKind::InvalidParameter,
                "cert and key do not form a usable client identity (expected PEM certificate(s) and a PKCS#8, PKCS#1 or SEC1 private key)",
            )
        })?;
        auth.tls.identity = Some((cert, key));
    }
    auth.modes = modes;
    Ok(auth)
}

/// Certificate chain and key in the single PEM buffer reqwest's rustls identity expects.
pub fn identity_pem(cert: &str, key: &str) -> String {
    format!("{}\n{}\n", cert.trim_end(), key.trim_end())
}

fn check_header_value(param: &str, value: &str, p: &Params<'_>) -> Result<HeaderValue, ParseError> {
    HeaderValue::from_str(value).map_err(|_| {
        p.error(param, ParseErrorKind::InvalidParameter, "contains characters not allowed in an HTTP header")
    })
}
