//! The `aws-sqs-queue` scaler: the number of messages in an SQS queue from GetQueueAttributes —
//! visible, plus in flight (`scaleOnInFlight`, default true), plus delayed (`scaleOnDelayed`,
//! default false); target `queueLength` (5), active above `activationQueueLength` (0). The queue is
//! a full URL (`https://sqs.<region>.amazonaws.com/<account>/<name>`) or a bare name, resolved
//! once through GetQueueUrl.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use aws_sdk_sqs::types::QueueAttributeName;
use chrono::{DateTime, Utc};

use super::client::{AwsClients, ClientKey};
use super::{credentials, error};
use crate::error::{ParseError, ParseErrorKind, ScalerError};
use crate::params::{ParamKind, ParamSpec, Params};
use crate::scaler::{Measurement, Scaler};
use crate::trigger::ScalerConfig;

/// Parameters of the aws-sqs-queue trigger.
pub const PARAMS: &[ParamSpec] = &[
    ParamSpec::new("queueURL", ParamKind::Text).required().from_env(),
    ParamSpec::new("queueLength", ParamKind::Int { min: 1 }).default("5"),
    ParamSpec::new("activationQueueLength", ParamKind::Int { min: 0 }).default("0"),
    ParamSpec::new("scaleOnInFlight", ParamKind::Bool).default("true"),
    ParamSpec::new("scaleOnDelayed", ParamKind::Bool).default("false"),
    super::AWS_REGION,
    super::AWS_ENDPOINT,
    super::IDENTITY_OWNER,
    super::AWS_ROLE_ARN,
    super::AWS_ACCESS_KEY_ID,
    super::AWS_SECRET_ACCESS_KEY,
    super::AWS_SESSION_TOKEN,
];

/// How the queue is named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueRef {
    /// A full queue URL; `name` is its last path segment.
    Url { url: String, name: String },
    /// A bare queue name, resolved with GetQueueUrl.
    Name(String),
}

impl QueueRef {
    pub fn name(&self) -> &str {
        match self {
            Self::Url { name, .. } | Self::Name(name) => name,
        }
    }
}

/// A validated aws-sqs-queue trigger.
#[derive(Clone, Debug)]
pub struct SqsConfig {
    pub queue: QueueRef,
    pub queue_length: i64,
    pub activation_queue_length: i64,
    pub scale_on_in_flight: bool,
    pub scale_on_delayed: bool,
    /// Region, endpoint and credentials: which shared client serves this trigger.
    pub client: ClientKey,
}

/// Registry entry point.
pub fn parse(p: &Params<'_>) -> Result<Arc<dyn ScalerConfig>, ParseError> {
    Ok(Arc::new(parse_config(p)?))
}

pub fn parse_config(p: &Params<'_>) -> Result<SqsConfig, ParseError> {
    let raw = p.required_text("queueURL")?;
    let queue = parse_queue(&raw).map_err(|m| p.error("queueURL", ParseErrorKind::InvalidParameter, m))?;
    let region = match p.text("awsRegion")? {
        Some(r) => r,
        None => match &queue {
            QueueRef::Url { url, .. } => region_from_url(url).ok_or_else(|| {
                p.error(
                    "awsRegion",
                    ParseErrorKind::MissingParameter,
                    "required: the region cannot be read from the queueURL host",
                )
            })?,
            QueueRef::Name(_) => {
                return Err(p.error(
                    "awsRegion",
                    ParseErrorKind::MissingParameter,
                    "required when queueURL is a queue name",
                ));
            }
        },
    };
    super::check_region(p, &region)?;
    let endpoint = super::endpoint(p)?;
    let credentials = credentials::resolve(p)?;
    Ok(SqsConfig {
        queue,
        queue_length: p.required_int("queueLength")?,
        activation_queue_length: p.required_int("activationQueueLength")?,
        scale_on_in_flight: p.required_bool("scaleOnInFlight")?,
        scale_on_delayed: p.required_bool("scaleOnDelayed")?,
        client: ClientKey { region, endpoint, credentials },
    })
}

/// Reads a queue URL (`scheme://host/<account>/<name>`) or a bare queue name.
pub fn parse_queue(raw: &str) -> Result<QueueRef, String> {
    let raw = raw.trim();
    let Some((scheme, rest)) = raw.split_once("://") else {
        return if valid_name(raw) {
            Ok(QueueRef::Name(raw.to_owned()))
        } else {
            Err(format!(
                "expected a queue URL such as \"https://sqs.us-east-1.amazonaws.com/123456789012/orders\" or a queue name \
                 (1–80 letters, digits, - or _, optionally ending in .fifo), found {raw:?}"
            ))
        };
    };
    let bad = |why: &str| {
        Err(format!(
            "{why}; expected a queue URL such as \"https://sqs.us-east-1.amazonaws.com/123456789012/orders\", found {raw:?}"
        ))
    };
    if scheme != "https" && scheme != "http" {
        return bad("the scheme must be https or http");
    }
    if rest.contains(['?', '#', ' ']) {
        return bad("a queue URL has no query, fragment or space");
    }
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if host.is_empty() {
        return bad("the host is missing");
    }
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    match segments.as_slice() {
        [account, name] if !account.is_empty() && valid_name(name) => {
            Ok(QueueRef::Url { url: format!("{scheme}://{host}/{account}/{name}"), name: (*name).to_owned() })
        }
        _ => bad("the path must be /<account-id>/<queue-name>"),
    }
}

fn valid_name(name: &str) -> bool {
    let base = name.strip_suffix(".fifo").unwrap_or(name);
    !base.is_empty()
        && name.len() <= 80
        && base.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The region in an AWS queue URL host: `sqs.<region>.amazonaws.com[.cn]` or
/// `<region>.queue.amazonaws.com`.
pub fn region_from_url(url: &str) -> Option<String> {
    let host = url.split_once("://")?.1.split('/').next()?;
    let host = host.split(':').next()?;
    let labels: Vec<&str> = host.split('.').collect();
    match labels.as_slice() {
        ["sqs", region, "amazonaws", "com", ..] | [region, "queue", "amazonaws", "com", ..] => {
            Some((*region).to_owned())
        }
        _ => None,
    }
}

/// The trigger's value from the queue's attributes.
pub fn value_from(
    attrs: &HashMap<QueueAttributeName, String>,
    in_flight: bool,
    delayed: bool,
) -> Result<f64, String> {
    let mut wanted = vec![QueueAttributeName::ApproximateNumberOfMessages];
    if in_flight {
        wanted.push(QueueAttributeName::ApproximateNumberOfMessagesNotVisible);
    }
    if delayed {
        wanted.push(QueueAttributeName::ApproximateNumberOfMessagesDelayed);
    }
    let mut total = 0u64;
    for a in wanted {
        let raw = attrs.get(&a).ok_or_else(|| format!("the answer lacks {}", a.as_str()))?;
        let n: u64 = raw.trim().parse().map_err(|_| format!("{} is not a count: {raw:?}", a.as_str()))?;
        total = total.saturating_add(n);
    }
    Ok(total as f64)
}

impl ScalerConfig for SqsConfig {
    fn metric_part(&self) -> String {
        format!("aws-sqs-{}", self.queue.name())
    }
    fn target(&self) -> f64 {
        self.queue_length as f64
    }
    fn activation_target(&self) -> f64 {
        self.activation_queue_length as f64
    }
    fn build(&self) -> Result<Arc<dyn Scaler>, ScalerError> {
        Ok(Arc::new(SqsScaler {
            clients: AwsClients::shared(self.client.clone()),
            config: self.clone(),
            resolved_url: Mutex::new(None),
        }))
    }
    fn describe(&self) -> String {
        let mut counted = vec!["visible"];
        if self.scale_on_in_flight {
            counted.push("in flight");
        }
        if self.scale_on_delayed {
            counted.push("delayed");
        }
        let queue = match &self.queue {
            QueueRef::Url { url, .. } => url.clone(),
            QueueRef::Name(n) => format!("{n} (by name)"),
        };
        format!(
            "SQS queue {queue} in {}: {} messages, {} per replica, active above {}; {}{}",
            self.client.region,
            counted.join(" + "),
            self.queue_length,
            self.activation_queue_length,
            self.client.credentials.describe(),
            self.client.endpoint.as_ref().map(|e| format!("; endpoint {e}")).unwrap_or_default()
        )
    }
}

/// A live aws-sqs-queue trigger.
#[derive(Debug)]
pub struct SqsScaler {
    config: SqsConfig,
    clients: Arc<AwsClients>,
    /// The URL GetQueueUrl returned for a queue given by name.
    resolved_url: Mutex<Option<String>>,
}

impl SqsScaler {
    fn what(&self) -> String {
        format!("SQS queue {:?}", self.config.queue.name())
    }

    async fn queue_url(&self, client: &aws_sdk_sqs::Client) -> Result<String, ScalerError> {
        let name = match &self.config.queue {
            QueueRef::Url { url, .. } => return Ok(url.clone()),
            QueueRef::Name(name) => name,
        };
        if let Some(u) = self.resolved_url.lock().unwrap_or_else(PoisonError::into_inner).clone() {
            return Ok(u);
        }
        let out = client
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .map_err(|e| error::from_sdk(&self.what(), "GetQueueUrl", &self.config.client, &e))?;
        let url = out
            .queue_url()
            .filter(|u| !u.is_empty())
            .ok_or_else(|| {
                ScalerError::InvalidResponse(format!("{}: GetQueueUrl returned no URL", self.what()))
            })?
            .to_owned();
        *self.resolved_url.lock().unwrap_or_else(PoisonError::into_inner) = Some(url.clone());
        Ok(url)
    }
}

#[async_trait]
impl Scaler for SqsScaler {
    async fn measure(&self, _now: DateTime<Utc>) -> Result<Measurement, ScalerError> {
        self.clients.check_egress()?;
        let client = self.clients.sqs().await;
        let url = self.queue_url(client).await?;
        let out = client
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(|e| {
                let err = error::from_sdk(&self.what(), "GetQueueAttributes", &self.config.client, &e);
                if matches!(err, ScalerError::NotFound(_)) {
                    // The queue may have been recreated under a new URL: resolve the name again.
                    *self.resolved_url.lock().unwrap_or_else(PoisonError::into_inner) = None;
                }
                err
            })?;
        let empty = HashMap::new();
        let value = value_from(
            out.attributes().unwrap_or(&empty),
            self.config.scale_on_in_flight,
            self.config.scale_on_delayed,
        )
        .map_err(|m| ScalerError::InvalidResponse(format!("{}: GetQueueAttributes: {m}", self.what())))?;
        Ok(Measurement::from_value(value, self.config.activation_queue_length as f64))
    }
}

#[cfg(test)]
mod tests;
