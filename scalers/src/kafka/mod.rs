//! The kafka and apache-kafka scalers: consumer-group lag over a topic (apache-kafka: a list of
//! topics; either: every topic the group has committed offsets for), read over the Kafka wire protocol with connections shared by every trigger that
//! names the same cluster and credentials. Value = total lag (capped at partitions ×
//! lagThreshold unless allowIdleConsumers), target lagThreshold, active above
//! activationLagThreshold. The trigger keeps the previous poll's committed offsets for
//! excludePersistentLag, so one `KafkaScaler` belongs to one trigger of one ScaledObject.

pub mod cluster;
pub mod config;
pub mod lag;
pub mod partitions;
pub mod poll;
pub mod wire;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::{ParseError, ScalerError};
use crate::params::{ParamKind, ParamSpec, Params};
use crate::scaler::{Measurement, Scaler};
use crate::trigger::ScalerConfig;
pub use cluster::Cluster;
pub use config::KafkaConfig;
use lag::{PreviousOffsets, TotalLag};

/// Parameters of the kafka trigger.
pub const PARAMS: &[ParamSpec] = &[
    ParamSpec::new("bootstrapServers", ParamKind::Text).required().from_env(),
    ParamSpec::new("consumerGroup", ParamKind::Text).required().from_env(),
    ParamSpec::new("topic", ParamKind::Text).from_env(),
    ParamSpec::new("partitionLimitation", ParamKind::Text),
    ParamSpec::new("lagThreshold", ParamKind::Int { min: 1 }).default("10"),
    ParamSpec::new("activationLagThreshold", ParamKind::Int { min: 0 }).default("0"),
    ParamSpec::new("offsetResetPolicy", ParamKind::Enum(&["latest", "earliest"])).default("latest"),
    ParamSpec::new("allowIdleConsumers", ParamKind::Bool).default("false"),
    ParamSpec::new("excludePersistentLag", ParamKind::Bool).default("false"),
    ParamSpec::new("scaleToZeroOnInvalidOffset", ParamKind::Bool).default("false"),
    ParamSpec::new("limitToPartitionsWithLag", ParamKind::Bool).default("false"),
    ParamSpec::new("ensureEvenDistributionOfPartitions", ParamKind::Bool).default("false"),
    ParamSpec::new("version", ParamKind::Text).deprecated(
        "accepted and ignored: ebb negotiates the protocol version with each broker (ApiVersions)",
    ),
    ParamSpec::new("sasl", ParamKind::Text).from_auth(),
    ParamSpec::new("saslTokenProvider", ParamKind::Text).from_auth(),
    ParamSpec::new("oauthTokenEndpointUri", ParamKind::Text).from_auth(),
    ParamSpec::new("scopes", ParamKind::Text).from_auth(),
    ParamSpec::new("oauthExtensions", ParamKind::Text).from_auth(),
    ParamSpec::new("awsRegion", ParamKind::Text),
    crate::aws::IDENTITY_OWNER,
    crate::aws::AWS_ROLE_ARN,
    crate::aws::AWS_ACCESS_KEY_ID,
    crate::aws::AWS_SECRET_ACCESS_KEY,
    crate::aws::AWS_SESSION_TOKEN,
    ParamSpec::new("tls", ParamKind::Text).from_auth(),
    ParamSpec::new("unsafeSsl", ParamKind::Bool).from_auth(),
    ParamSpec::new("username", ParamKind::Text).secret(),
    ParamSpec::new("password", ParamKind::Text).secret(),
    ParamSpec::new("ca", ParamKind::Text).secret(),
    ParamSpec::new("cert", ParamKind::Text).secret(),
    ParamSpec::new("key", ParamKind::Text).secret(),
    ParamSpec::new("keyPassword", ParamKind::Text).secret(),
];

/// Parameters of the apache-kafka trigger (KEDA's experimental Kafka scaler): the same lag
/// options, `topic` a comma-separated list, no ensureEvenDistributionOfPartitions, version or
/// unsafeSsl; `awsRegion` belongs to `sasl: aws_msk_iam`, which ebb refuses by name.
pub const APACHE_PARAMS: &[ParamSpec] = &[
    ParamSpec::new("bootstrapServers", ParamKind::Text).required().from_env(),
    ParamSpec::new("consumerGroup", ParamKind::Text).required().from_env(),
    ParamSpec::new("topic", ParamKind::Text).from_env(),
    ParamSpec::new("partitionLimitation", ParamKind::Text),
    ParamSpec::new("lagThreshold", ParamKind::Int { min: 1 }).default("10"),
    ParamSpec::new("activationLagThreshold", ParamKind::Int { min: 0 }).default("0"),
    ParamSpec::new("offsetResetPolicy", ParamKind::Enum(&["latest", "earliest"])).default("latest"),
    ParamSpec::new("allowIdleConsumers", ParamKind::Bool).default("false"),
    ParamSpec::new("excludePersistentLag", ParamKind::Bool).default("false"),
    ParamSpec::new("scaleToZeroOnInvalidOffset", ParamKind::Bool).default("false"),
    ParamSpec::new("limitToPartitionsWithLag", ParamKind::Bool).default("false"),
    ParamSpec::new("awsRegion", ParamKind::Text),
    ParamSpec::new("sasl", ParamKind::Text).from_auth(),
    ParamSpec::new("tls", ParamKind::Text).from_auth(),
    ParamSpec::new("username", ParamKind::Text).secret(),
    ParamSpec::new("password", ParamKind::Text).secret(),
    ParamSpec::new("ca", ParamKind::Text).secret(),
    ParamSpec::new("cert", ParamKind::Text).secret(),
    ParamSpec::new("key", ParamKind::Text).secret(),
    ParamSpec::new("keyPassword", ParamKind::Text).secret(),
];

/// Registry entry point (`kafka`).
pub fn parse(p: &Params<'_>) -> Result<Arc<dyn ScalerConfig>, ParseError> {
    Ok(Arc::new(config::parse_config(p)?))
}

/// Registry entry point (`apache-kafka`).
pub fn parse_apache(p: &Params<'_>) -> Result<Arc<dyn ScalerConfig>, ParseError> {
    Ok(Arc::new(config::parse_flavour(p, config::Flavour::ApacheKafka)?))
}

impl ScalerConfig for KafkaConfig {
    fn metric_part(&self) -> String {
        if self.topics.is_empty() {
            format!("kafka-{}-topics", self.group)
        } else {
            format!("kafka-{}", self.topics.join(","))
        }
    }
    fn target(&self) -> f64 {
        self.lag.lag_threshold as f64
    }
    fn activation_target(&self) -> f64 {
        self.activation_lag_threshold as f64
    }
    fn build(&self) -> Result<Arc<dyn Scaler>, ScalerError> {
        Ok(Arc::new(KafkaScaler::new(self.clone())))
    }
    fn describe(&self) -> String {
        let mut s = format!("consumerGroup {:?}", self.group);
        match self.topics.as_slice() {
            [] => s.push_str(" on every topic it has committed offsets for"),
            [t] => s.push_str(&format!(" on topic {t:?}")),
            ts => s.push_str(&format!(" on topics {ts:?}")),
        }
        if let Some(l) = &self.partition_limitation {
            s.push_str(&format!(" (partitions {l})"));
        }
        s.push_str(&format!(" at {}", self.bootstrap_servers.join(",")));
        let policy = match self.lag.offset_reset {
            lag::OffsetResetPolicy::Latest => "latest",
            lag::OffsetResetPolicy::Earliest => "earliest",
        };
        let mut opts = vec![format!("offsetResetPolicy {policy}")];
        for (on, name) in [
            (self.lag.allow_idle_consumers, "allowIdleConsumers"),
            (self.lag.limit_to_partitions_with_lag, "limitToPartitionsWithLag"),
            (self.lag.exclude_persistent_lag, "excludePersistentLag"),
            (self.lag.scale_to_zero_on_invalid_offset, "scaleToZeroOnInvalidOffset"),
            (self.lag.even_distribution, "ensureEvenDistributionOfPartitions"),
        ] {
            if on {
                opts.push(name.to_owned());
            }
        }
        if let Some(tls) = &self.security.tls {
            opts.push(if tls.unsafe_ssl { "tls (unverified)".into() } else { "tls".into() });
        }
        if let Some(sasl) = &self.security.sasl {
            opts.push(format!("sasl {}", sasl.mechanism.name()));
        }
        s.push_str(&format!("; {}", opts.join(", ")));
        s
    }
}

/// A live kafka trigger.
#[derive(Debug)]
pub struct KafkaScaler {
    config: KafkaConfig,
    cluster: Arc<Cluster>,
    previous: Mutex<PreviousOffsets>,
}

impl KafkaScaler {
    /// Joins (or creates) the shared cluster for the trigger's settings; no I/O.
    pub fn new(config: KafkaConfig) -> Self {
        let cluster = Cluster::shared(&config);
        Self { config, cluster, previous: Mutex::default() }
    }

    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// Reads the offsets and computes the lag (remembering committed offsets for
    /// excludePersistentLag).
    pub async fn poll(&self) -> Result<TotalLag, ScalerError> {
        let c = &self.config;
        let target = poll::Target {
            group: &c.group,
            topics: &c.topics,
            limit: c.partition_limitation.as_ref(),
            log_start_for_uncommitted: c.lag.offset_reset == lag::OffsetResetPolicy::Earliest
                && !c.lag.scale_to_zero_on_invalid_offset,
        };
        let offsets = self.cluster.read_offsets(target).await?;
        let mut prev = self.previous.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (total, next) = lag::total_lag(&offsets, &c.lag, &prev);
        *prev = next;
        Ok(total)
    }
}

#[async_trait]
impl Scaler for KafkaScaler {
    async fn measure(&self, _now: DateTime<Utc>) -> Result<Measurement, ScalerError> {
        let total = self.poll().await?;
        let value = ebb_api::quantity::sanitize(total.value as f64);
        Ok(Measurement { value, active: total.activation_lag > self.config.activation_lag_threshold })
    }
}

#[cfg(test)]
mod tests;
