//! AWS SDK clients shared across triggers: one [`AwsClients`] per distinct (region, endpoint,
//! credentials) in the process, handed out synchronously by [`AwsClients::shared`] (so a scaler's
//! `build()` never blocks) and loaded on first use (aws-config loading is async). Every client
//! uses one HTTPS connection pool on rustls with ring — except the service calls of a trigger with
//! `awsEndpoint`, which go through a client of their own whose resolver applies the egress policy
//! (`crate::egress`) to every address it dials; [`AwsClients::check_egress`] checks an IP-literal
//! endpoint, which is dialled without resolution. Credential providers (the operator's own chain,
//! which may use the node's metadata service, and STS) keep the shared client.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_sqs::config::SharedHttpClient;
use aws_smithy_http_client::Builder as HttpClientBuilder;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use tokio::sync::OnceCell;

use super::credentials::AwsCredentials;
use crate::egress;
use crate::error::ScalerError;

/// Session name ebb uses when it assumes a role (visible in CloudTrail).
pub const SESSION_NAME: &str = "ebb-scaler";
/// Bound on opening a connection; a measurement as a whole is bounded by the caller.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// One retry: the operator polls again soon, and a short retry keeps errors (throttling,
/// refused connections) visible as such instead of turning into a measurement timeout.
const MAX_ATTEMPTS: u32 = 2;
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);

/// What makes two triggers' clients interchangeable. Debug shows no secret.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientKey {
    pub region: String,
    /// `awsEndpoint`, replacing the service endpoint (not the STS one used to assume roles).
    pub endpoint: Option<String>,
    pub credentials: AwsCredentials,
}

/// The SDK configuration and service clients of one [`ClientKey`], created on first use.
pub struct AwsClients {
    key: ClientKey,
    config: OnceCell<SdkConfig>,
    sqs: OnceCell<aws_sdk_sqs::Client>,
    cloudwatch: OnceCell<aws_sdk_cloudwatch::Client>,
}

impl fmt::Debug for AwsClients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsClients")
            .field("key", &self.key)
            .field("loaded", &self.config.initialized())
            .finish()
    }
}

static CACHE: LazyLock<Mutex<HashMap<ClientKey, Arc<AwsClients>>>> = LazyLock::new(Default::default);

static HTTP: LazyLock<SharedHttpClient> =
    LazyLock::new(|| HttpClientBuilder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https());

impl AwsClients {
    /// The process-wide clients for `key`. Entries no trigger holds any more are dropped here.
    pub fn shared(key: ClientKey) -> Arc<Self> {
        let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = cache.get(&key) {
            return c.clone();
        }
        cache.retain(|_, c| Arc::strong_count(c) > 1);
        let c = Arc::new(Self {
            key: key.clone(),
            config: OnceCell::new(),
            sqs: OnceCell::new(),
            cloudwatch: OnceCell::new(),
        });
        cache.insert(key, c.clone());
        c
    }

    /// Checks an `awsEndpoint` given as an IP literal against the egress policy (a named
    /// endpoint is checked on each address its resolver returns).
    pub fn check_egress(&self) -> Result<(), ScalerError> {
        match self.key.endpoint.as_deref().and_then(|e| reqwest::Url::parse(e).ok()) {
            Some(url) => Ok(egress::check_url(&url, "awsEndpoint")?),
            None => Ok(()),
        }
    }

    /// The HTTP client of the service calls: with `awsEndpoint`, one that applies the egress
    /// policy to the endpoint's addresses.
    fn service_http(&self) -> Option<SharedHttpClient> {
        let endpoint = self.key.endpoint.as_deref()?;
        let port = reqwest::Url::parse(endpoint).ok().and_then(|u| u.port_or_known_default()).unwrap_or(443);
        Some(
            HttpClientBuilder::new()
                .tls_provider(Provider::Rustls(CryptoMode::Ring))
                .build_with_resolver(egress::Resolver::new(port, "awsEndpoint")),
        )
    }

    /// How many distinct client sets the process holds (for tests and diagnostics).
    pub fn cached_count() -> usize {
        CACHE.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    pub fn key(&self) -> &ClientKey {
        &self.key
    }

    async fn config(&self) -> &SdkConfig {
        self.config.get_or_init(|| load(&self.key)).await
    }

    /// The credentials provider of this identity, for signing requests the SDK does not send
    /// itself (the prometheus scaler on Amazon Managed Prometheus).
    pub async fn credentials_provider(&self) -> Option<SharedCredentialsProvider> {
        self.config().await.credentials_provider()
    }

    pub async fn sqs(&self) -> &aws_sdk_sqs::Client {
        let config = self.config().await;
        self.sqs
            .get_or_init(|| async {
                let mut b = aws_sdk_sqs::config::Builder::from(config);
                if let Some(http) = self.service_http() {
                    b = b.http_client(http);
                }
                aws_sdk_sqs::Client::from_conf(b.build())
            })
            .await
    }

    pub async fn cloudwatch(&self) -> &aws_sdk_cloudwatch::Client {
        let config = self.config().await;
        self.cloudwatch
            .get_or_init(|| async {
                let mut b = aws_sdk_cloudwatch::config::Builder::from(config);
                if let Some(http) = self.service_http() {
                    b = b.http_client(http);
                }
                aws_sdk_cloudwatch::Client::from_conf(b.build())
            })
            .await
    }
}

fn loader(region: &str) -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .http_client(HTTP.clone())
        .retry_config(
            RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS).with_initial_backoff(INITIAL_BACKOFF),
        )
        .timeout_config(TimeoutConfig::builder().connect_timeout(CONNECT_TIMEOUT).build())
}

/// Static keys become a fixed provider; ebb's own identity is aws-config's default chain.
fn with_direct(l: ConfigLoader, creds: &AwsCredentials) -> ConfigLoader {
    match creds {
        AwsCredentials::Static { access_key_id, secret_access_key, session_token } => {
            l.credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                access_key_id.expose(),
                secret_access_key.expose(),
                session_token.as_ref().map(|t| t.expose().to_owned()),
                None,
                "ebb-trigger-authentication",
            )))
        }
        AwsCredentials::Operator | AwsCredentials::AssumeRole { .. } => l,
    }
}

async fn load(key: &ClientKey) -> SdkConfig {
    let mut l = loader(&key.region);
    if let AwsCredentials::AssumeRole { role_arn, base } = &key.credentials {
        // STS is reached at its usual endpoint (or AWS_ENDPOINT_URL_STS), not at awsEndpoint.
        let base_config = with_direct(loader(&key.region), base).load().await;
        let provider = AssumeRoleProvider::builder(role_arn)
            .session_name(SESSION_NAME)
            .configure(&base_config)
            .build()
            .await;
        l = l.credentials_provider(SharedCredentialsProvider::new(provider));
    } else {
        l = with_direct(l, &key.credentials);
    }
    if let Some(e) = &key.endpoint {
        l = l.endpoint_url(e);
    }
    l.load().await
}
