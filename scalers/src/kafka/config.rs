//! Parsing and validation of a kafka trigger: its metadata, the TLS and SASL settings that may
//! come from a TriggerAuthentication, and the combinations KEDA rejects. Pure: PEM material is
//! decoded and checked here, nothing is read from disk or the network.

use std::fmt;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use super::lag::{LagOptions, OffsetResetPolicy};
use super::partitions::PartitionSet;
use super::wire::scram::ScramHash;
use crate::aws::AwsCredentials;
use crate::error::{ParseError, ParseErrorKind};
use crate::params::Params;

/// How the client authenticates with SASL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    Scram(ScramHash),
    /// OAUTHBEARER with a token from `saslTokenProvider` (`bearer` or `aws_msk_iam`).
    OAuthBearer,
}

impl SaslMechanism {
    /// The mechanism name sent in SaslHandshake.
    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::Scram(ScramHash::Sha256) => "SCRAM-SHA-256",
            Self::Scram(ScramHash::Sha512) => "SCRAM-SHA-512",
            Self::OAuthBearer => "OAUTHBEARER",
        }
    }
}

/// The AWS MSK IAM token provider: the region of the cluster and the identity that signs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MskIam {
    pub region: String,
    pub credentials: AwsCredentials,
}

/// The OAuth2 token provider (`saslTokenProvider: bearer`): the client-credentials grant at
/// `oauthTokenEndpointUri`, the client id and secret being `username` and `password`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthBearerSettings {
    pub token_url: reqwest::Url,
    /// `scopes`, a comma-separated list; requested space-separated.
    pub scopes: Vec<String>,
    /// `oauthExtensions` (`key=value,…`): SASL extensions sent with the token.
    pub extensions: Vec<(String, String)>,
}

/// SASL credentials. Debug output never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslSettings {
    pub mechanism: SaslMechanism,
    /// PLAIN and SCRAM: the user; OAUTHBEARER with `bearer`: the OAuth client id and secret;
    /// empty for `aws_msk_iam`.
    pub username: String,
    pub password: String,
    /// OAUTHBEARER's token provider `aws_msk_iam`.
    pub msk_iam: Option<MskIam>,
    /// OAUTHBEARER's token provider `bearer`.
    pub oauth: Option<OAuthBearerSettings>,
}

impl fmt::Debug for SaslSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslSettings").field("mechanism", &self.mechanism).finish_non_exhaustive()
    }
}

/// TLS settings. Debug output never shows the key.
#[derive(PartialEq)]
pub struct TlsSettings {
    /// Trusted CAs; `None` → the system's trust store.
    pub ca: Option<Vec<CertificateDer<'static>>>,
    /// Client certificate chain and key, for brokers that require client authentication.
    pub client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    /// Skip verification of the broker's certificate (`unsafeSsl`).
    pub unsafe_ssl: bool,
}

impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field("ca", &self.ca.as_ref().map(Vec::len))
            .field("client_cert", &self.client.is_some())
            .field("unsafe_ssl", &self.unsafe_ssl)
            .finish()
    }
}

/// How connections to the cluster are secured.
#[derive(Debug, Default, PartialEq)]
pub struct Security {
    pub tls: Option<TlsSettings>,
    pub sasl: Option<SaslSettings>,
}

impl Security {
    /// A digest of every setting (secrets included) so triggers with identical settings share
    /// connections; the digest reveals nothing of the secrets.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        let mut field = |b: &[u8]| {
            h.update((b.len() as u64).to_be_bytes());
            h.update(b);
        };
        match &self.tls {
            None => field(b"plain"),
            Some(t) => {
                field(b"tls");
                field(&[u8::from(t.unsafe_ssl)]);
                for c in t.ca.iter().flatten() {
                    field(c.as_ref());
                }
                if let Some((chain, key)) = &t.client {
                    for c in chain {
                        field(c.as_ref());
                    }
                    field(key.secret_der());
                }
            }
        }
        match &self.sasl {
            None => field(b"no-sasl"),
            Some(s) => {
                field(s.mechanism.name().as_bytes());
                field(s.username.as_bytes());
                field(s.password.as_bytes());
                if let Some(o) = &s.oauth {
                    field(o.token_url.as_str().as_bytes());
                    field(o.scopes.join(" ").as_bytes());
                    for (k, v) in &o.extensions {
                        field(k.as_bytes());
                        field(v.as_bytes());
                    }
                }
                if let Some(m) = &s.msk_iam {
                    field(m.region.as_bytes());
                    let mut h = std::hash::DefaultHasher::new();
                    std::hash::Hash::hash(&m.credentials, &mut h);
                    field(&std::hash::Hasher::finish(&h).to_be_bytes());
                }
            }
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A validated kafka trigger.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    pub bootstrap_servers: Vec<String>,
    pub group: String,
    /// Empty: every topic the group has committed offsets for. `kafka` names at most one;
    /// `apache-kafka` takes a comma-separated list.
    pub topics: Vec<String>,
    /// Only with a topic (ignored without one, as KEDA does).
    pub partition_limitation: Option<PartitionSet>,
    pub lag: LagOptions,
    pub activation_lag_threshold: i64,
    pub security: Arc<Security>,
}

impl KafkaConfig {
    /// Key of the process-wide connection pool: servers plus the security fingerprint.
    pub fn pool_key(&self) -> String {
        format!("{}#{}", self.bootstrap_servers.join(","), self.security.fingerprint())
    }
}

fn invalid(p: &Params<'_>, name: &str, msg: impl Into<String>) -> ParseError {
    p.error(name, ParseErrorKind::InvalidParameter, msg)
}

fn flag(p: &Params<'_>, name: &str) -> Result<bool, ParseError> {
    Ok(p.bool(name)?.unwrap_or(false))
}

/// Which of KEDA's two Kafka trigger types is parsed: `kafka`, or `apache-kafka` (KEDA's
/// experimental scaler: a list of topics, no ensureEvenDistributionOfPartitions, version or
/// unsafeSsl, and `aws_msk_iam` as a sasl value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    Kafka,
    ApacheKafka,
}

/// Reads and validates every parameter of a `kafka` trigger.
pub fn parse_config(p: &Params<'_>) -> Result<KafkaConfig, ParseError> {
    parse_flavour(p, Flavour::Kafka)
}

/// Reads and validates every parameter of a `kafka` or `apache-kafka` trigger.
pub fn parse_flavour(p: &Params<'_>, flavour: Flavour) -> Result<KafkaConfig, ParseError> {
    let servers_raw = p.required_text("bootstrapServers")?;
    let mut bootstrap_servers = Vec::new();
    for s in servers_raw.split(',').map(str::trim) {
        let valid = s.rsplit_once(':').is_some_and(|(h, port)| !h.is_empty() && port.parse::<u16>().is_ok());
        if !valid {
            return Err(invalid(
                p,
                "bootstrapServers",
                format!(
                    "{s:?} is not host:port; expected a comma-separated list such as \"kafka-0:9092,kafka-1:9092\""
                ),
            ));
        }
        bootstrap_servers.push(s.to_owned());
    }
    let group = p.required_text("consumerGroup")?;
    let topic = p.text("topic")?.unwrap_or_default();
    let topics: Vec<String> = match flavour {
        Flavour::Kafka => [topic.trim()].into_iter().filter(|t| !t.is_empty()).map(str::to_owned).collect(),
        Flavour::ApacheKafka => {
            topic.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect()
        }
    };
    let partition_limitation = match (p.text("partitionLimitation")?, topics.is_empty()) {
        (Some(s), false) if !s.trim().is_empty() => {
            Some(PartitionSet::parse(&s).map_err(|e| invalid(p, "partitionLimitation", e))?)
        }
        _ => None,
    };
    let lag_threshold = p.int("lagThreshold")?.unwrap_or(10);
    let activation_lag_threshold = p.int("activationLagThreshold")?.unwrap_or(0);
    let offset_reset = match p.text("offsetResetPolicy")?.as_deref() {
        Some("earliest") => OffsetResetPolicy::Earliest,
        _ => OffsetResetPolicy::Latest,
    };
    let allow_idle_consumers = flag(p, "allowIdleConsumers")?;
    let limit_to_partitions_with_lag = flag(p, "limitToPartitionsWithLag")?;
    if allow_idle_consumers && limit_to_partitions_with_lag {
        return Err(invalid(
            p,
            "limitToPartitionsWithLag",
            "allowIdleConsumers and limitToPartitionsWithLag cannot both be true: one lifts the replica cap, the other lowers it",
        ));
    }
    if limit_to_partitions_with_lag && topics.is_empty() {
        return Err(invalid(p, "limitToPartitionsWithLag", "needs a topic; set metadata.topic"));
    }
    let lag = LagOptions {
        lag_threshold,
        offset_reset,
        scale_to_zero_on_invalid_offset: flag(p, "scaleToZeroOnInvalidOffset")?,
        allow_idle_consumers,
        limit_to_partitions_with_lag,
        exclude_persistent_lag: flag(p, "excludePersistentLag")?,
        even_distribution: match flavour {
            Flavour::Kafka => flag(p, "ensureEvenDistributionOfPartitions")?,
            Flavour::ApacheKafka => false,
        },
    };
    let security = Arc::new(Security { tls: parse_tls(p, flavour)?, sasl: parse_sasl(p, flavour)? });
    Ok(KafkaConfig {
        bootstrap_servers,
        group,
        topics,
        partition_limitation,
        lag,
        activation_lag_threshold,
        security,
    })
}

fn parse_sasl(p: &Params<'_>, flavour: Flavour) -> Result<Option<SaslSettings>, ParseError> {
    let mode = p.text("sasl")?.unwrap_or_default();
    let mechanism = match mode.trim() {
        "aws_msk_iam" if flavour == Flavour::ApacheKafka => {
            return Err(invalid(
                p,
                "sasl",
                "aws_msk_iam (AWS MSK IAM authentication) is not supported by ebb; supported: none, plaintext, scram_sha256, scram_sha512",
            ));
        }
        "" | "none" => return Ok(None),
        "plaintext" => SaslMechanism::Plain,
        "scram_sha256" => SaslMechanism::Scram(ScramHash::Sha256),
        "scram_sha512" => SaslMechanism::Scram(ScramHash::Sha512),
        "oauthbearer" if flavour == Flavour::Kafka => {
            return parse_oauthbearer(p).map(Some);
        }
        m @ ("gssapi" | "oauthbearer") => {
            return Err(invalid(
                p,
                "sasl",
                format!(
                    "{m} is not supported by ebb; supported: none, plaintext, scram_sha256, scram_sha512{}",
                    if flavour == Flavour::Kafka { ", oauthbearer" } else { "" }
                ),
            ));
        }
        other => {
            return Err(invalid(
                p,
                "sasl",
                format!("expected one of none, plaintext, scram_sha256, scram_sha512, found {other:?}"),
            ));
        }
    };
    let cred = |name: &str| -> Result<String, ParseError> {
        p.text(name)?.ok_or_else(|| {
            p.error(
                name,
                ParseErrorKind::MissingCredentials,
                format!("sasl {} needs {name:?} from a TriggerAuthentication", mode.trim()),
            )
        })
    };
    Ok(Some(SaslSettings {
        mechanism,
        username: cred("username")?,
        password: cred("password")?,
        msk_iam: None,
        oauth: None,
    }))
}

/// `sasl: oauthbearer`: the token comes from `saslTokenProvider`: `bearer` (the default; KEDA's
/// OAuth2 client-credentials flow with `oauthTokenEndpointUri`, `scopes`, `oauthExtensions` and
/// the client id and secret in `username` and `password`) or `aws_msk_iam` (region `awsRegion`,
/// identity as for the AWS triggers).
fn parse_oauthbearer(p: &Params<'_>) -> Result<SaslSettings, ParseError> {
    match p.text("saslTokenProvider")?.as_deref().map(str::trim).unwrap_or("bearer") {
        "aws_msk_iam" => {}
        "bearer" | "" => return parse_bearer(p),
        other => {
            return Err(invalid(
                p,
                "saslTokenProvider",
                format!("expected bearer or aws_msk_iam, found {other:?}"),
            ));
        }
    }
    let region =
        p.text("awsRegion")?.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty()).ok_or_else(|| {
            p.error(
                "awsRegion",
                ParseErrorKind::MissingParameter,
                "sasl oauthbearer with saslTokenProvider aws_msk_iam needs the region of the MSK cluster",
            )
        })?;
    let credentials = crate::aws::credentials::resolve(p)?;
    Ok(SaslSettings {
        mechanism: SaslMechanism::OAuthBearer,
        username: String::new(),
        password: String::new(),
        msk_iam: Some(MskIam { region, credentials }),
        oauth: None,
    })
}

/// `saslTokenProvider: bearer`.
fn parse_bearer(p: &Params<'_>) -> Result<SaslSettings, ParseError> {
    let raw = p.text("oauthTokenEndpointUri")?.map(|u| u.trim().to_owned()).filter(|u| !u.is_empty());
    let raw = raw.ok_or_else(|| {
        p.error(
            "oauthTokenEndpointUri",
            ParseErrorKind::MissingParameter,
            "sasl oauthbearer with saslTokenProvider bearer needs the OAuth token endpoint (oauthTokenEndpointUri)",
        )
    })?;
    let token_url = reqwest::Url::parse(&raw)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| invalid(p, "oauthTokenEndpointUri", "expected an http:// or https:// URL"))?;
    let scopes = p
        .text("scopes")?
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let mut extensions = Vec::new();
    for item in p.text("oauthExtensions")?.unwrap_or_default().split(',') {
        if item.trim().is_empty() {
            continue;
        }
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| invalid(p, "oauthExtensions", format!("{:?} is not key=value", item.trim())))?;
        let (k, v) = (k.trim(), v.trim());
        super::wire::oauth::check_extension(k, v).map_err(|e| invalid(p, "oauthExtensions", e))?;
        extensions.push((k.to_owned(), v.to_owned()));
    }
    let cred = |name: &str, what: &str| -> Result<String, ParseError> {
        p.text(name)?.filter(|v| !v.is_empty()).ok_or_else(|| {
            p.error(
                name,
                ParseErrorKind::MissingCredentials,
                format!("sasl oauthbearer with saslTokenProvider bearer needs {name:?} (the OAuth {what}) from a TriggerAuthentication"),
            )
        })
    };
    Ok(SaslSettings {
        mechanism: SaslMechanism::OAuthBearer,
        username: cred("username", "client id")?,
        password: cred("password", "client secret")?,
        msk_iam: None,
        oauth: Some(OAuthBearerSettings { token_url, scopes, extensions }),
    })
}

fn parse_tls(p: &Params<'_>, flavour: Flavour) -> Result<Option<TlsSettings>, ParseError> {
    match p.text("tls")?.as_deref().map(str::trim) {
        None | Some("" | "disable") => return Ok(None),
        Some("enable") => {}
        Some(other) => {
            return Err(invalid(p, "tls", format!("expected enable or disable, found {other:?}")));
        }
    }
    if p.text("keyPassword")?.is_some() {
        return Err(invalid(
            p,
            "keyPassword",
            "encrypted private keys are not supported by ebb; store the key unencrypted (PKCS#8, PKCS#1 or SEC1 PEM) in the Secret",
        ));
    }
    let (ca, client) =
        crate::pem_params::read(p, crate::pem_params::PemNames { ca: "ca", cert: "cert", key: "key" })?;
    // apache-kafka has no unsafeSsl: it always verifies the broker.
    let unsafe_ssl = flavour == Flavour::Kafka && p.bool("unsafeSsl")?.unwrap_or(false);
    let settings = TlsSettings { ca, client, unsafe_ssl };
    // Building the client configuration checks that the key matches the certificate.
    super::wire::tls::client_config(&settings, false).map_err(|e| invalid(p, "cert", e))?;
    Ok(Some(settings))
}
