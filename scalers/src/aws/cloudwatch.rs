//! The `aws-cloudwatch` scaler: the newest value of one CloudWatch metric (namespace, metric
//! name, `;`-separated dimensions, statistic, period, unit) or of a metric math / Metrics Insights
//! `expression`, read with GetMetricData over a window ending at now − `metricEndTimeOffset`
//! truncated to a whole `metricStatPeriod` and spanning `metricCollectionTime`. An empty answer
//! gives `minMetricValue` (or an error when `ignoreNullValues` is false).

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_cloudwatch::primitives::DateTime as AwsDateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy, StandardUnit};
use chrono::{DateTime, TimeZone, Utc};

use super::client::{AwsClients, ClientKey};
use super::{credentials, error};
use crate::error::{ParseError, ParseErrorKind, ScalerError};
use crate::params::{ParamKind, ParamSpec, Params};
use crate::scaler::{Measurement, Scaler};
use crate::trigger::ScalerConfig;

/// Parameters of the aws-cloudwatch trigger.
pub const PARAMS: &[ParamSpec] = &[
    ParamSpec::new("namespace", ParamKind::Text),
    ParamSpec::new("metricName", ParamKind::Text),
    ParamSpec::new("dimensionName", ParamKind::Text),
    ParamSpec::new("dimensionValue", ParamKind::Text),
    ParamSpec::new("expression", ParamKind::Text),
    ParamSpec::new("targetMetricValue", ParamKind::Float { min: 0.0 }).required(),
    ParamSpec::new("activationTargetMetricValue", ParamKind::Float { min: 0.0 }).default("0"),
    ParamSpec::new("minMetricValue", ParamKind::Float { min: f64::MIN }).default("0"),
    ParamSpec::new("ignoreNullValues", ParamKind::Bool).default("true"),
    ParamSpec::new("metricCollectionTime", ParamKind::Int { min: 1 }).default("300"),
    ParamSpec::new("metricStat", ParamKind::Text).default("Average"),
    ParamSpec::new("metricStatPeriod", ParamKind::Int { min: 1 }).default("300"),
    ParamSpec::new("metricEndTimeOffset", ParamKind::Int { min: 0 }).default("0"),
    ParamSpec::new("metricUnit", ParamKind::Text),
    super::AWS_REGION,
    super::AWS_ENDPOINT,
    super::IDENTITY_OWNER,
    super::AWS_ROLE_ARN,
    // KEDA's published spec also reads the static keys from the target container's environment
    // (`awsAccessKeyIDFromEnv`, `awsSecretAccessKeyFromEnv`); still secrets, never read from
    // the metadata itself nor shown.
    super::AWS_ACCESS_KEY_ID.from_env(),
    super::AWS_SECRET_ACCESS_KEY.from_env(),
    super::AWS_SESSION_TOKEN,
];

/// Id of the one query ebb sends.
const QUERY_ID: &str = "q1";
/// CloudWatch accepts at most this many dimensions per metric.
const MAX_DIMENSIONS: usize = 30;

/// What is queried.
#[derive(Clone, Debug, PartialEq)]
pub enum Query {
    /// One metric with a statistic.
    Metric {
        namespace: String,
        metric_name: String,
        dimensions: Vec<(String, String)>,
        stat: String,
        unit: Option<String>,
    },
    /// A metric math or Metrics Insights expression.
    Expression(String),
}

/// A validated aws-cloudwatch trigger.
#[derive(Clone, Debug)]
pub struct CloudWatchConfig {
    pub query: Query,
    pub target: f64,
    pub activation_target: f64,
    pub min_metric_value: f64,
    pub ignore_null_values: bool,
    /// Seconds.
    pub collection_time: i64,
    pub period: i64,
    pub end_time_offset: i64,
    pub client: ClientKey,
}

/// Registry entry point.
pub fn parse(p: &Params<'_>) -> Result<Arc<dyn ScalerConfig>, ParseError> {
    Ok(Arc::new(parse_config(p)?))
}

pub fn parse_config(p: &Params<'_>) -> Result<CloudWatchConfig, ParseError> {
    let invalid = |name: &str, m: String| p.error(name, ParseErrorKind::InvalidParameter, m);
    let period = p.required_int("metricStatPeriod")?;
    if !valid_period(period) {
        return Err(invalid(
            "metricStatPeriod",
            format!("must be 1, 5, 10, 30 or a multiple of 60 seconds, found {period}"),
        ));
    }
    let collection_time = p.required_int("metricCollectionTime")?;
    if collection_time % period != 0 {
        return Err(invalid(
            "metricCollectionTime",
            format!("must be a multiple of metricStatPeriod ({period} s), found {collection_time}"),
        ));
    }
    let query = match p.text("expression")? {
        Some(e) => Query::Expression(e),
        None => {
            let required = |name: &str| {
                p.text(name)?.ok_or_else(|| {
                    p.error(name, ParseErrorKind::MissingParameter, "required unless expression is set")
                })
            };
            let namespace = required("namespace")?;
            let metric_name = required("metricName")?;
            let stat = p.required_text("metricStat")?;
            if !valid_stat(&stat) {
                return Err(invalid(
                    "metricStat",
                    format!(
                        "expected SampleCount, Sum, Average, Minimum, Maximum, IQM or a percentile such as p99, found {stat:?}"
                    ),
                ));
            }
            let unit = p.text("metricUnit")?;
            if let Some(u) = &unit
                && !StandardUnit::values().contains(&u.as_str())
            {
                return Err(invalid(
                    "metricUnit",
                    format!("expected one of {}, found {u:?}", StandardUnit::values().join(", ")),
                ));
            }
            let dimensions = dimensions(p.text("dimensionName")?, p.text("dimensionValue")?)
                .map_err(|(param, m)| invalid(param, m))?;
            Query::Metric { namespace, metric_name, dimensions, stat, unit }
        }
    };
    let target = p.required_float("targetMetricValue")?;
    if target <= 0.0 {
        return Err(invalid("targetMetricValue", format!("must be greater than 0, found {target}")));
    }
    let region = p
        .text("awsRegion")?
        .ok_or_else(|| p.error("awsRegion", ParseErrorKind::MissingParameter, "required"))?;
    super::check_region(p, &region)?;
    let endpoint = super::endpoint(p)?;
    let credentials = credentials::resolve(p)?;
    Ok(CloudWatchConfig {
        query,
        target,
        activation_target: p.required_float("activationTargetMetricValue")?,
        min_metric_value: p.required_float("minMetricValue")?,
        ignore_null_values: p.required_bool("ignoreNullValues")?,
        collection_time,
        period,
        end_time_offset: p.required_int("metricEndTimeOffset")?,
        client: ClientKey { region, endpoint, credentials },
    })
}

/// Pairs `;`-separated dimension names and values; both absent means no dimensions.
pub fn dimensions(
    names: Option<String>,
    values: Option<String>,
) -> Result<Vec<(String, String)>, (&'static str, String)> {
    let split = |s: &Option<String>| -> Vec<String> {
        s.as_deref().map(|s| s.split(';').map(|x| x.trim().to_owned()).collect()).unwrap_or_default()
    };
    let (n, v) = (split(&names), split(&values));
    if n.len() != v.len() {
        return Err((
            "dimensionValue",
            format!(
                "dimensionName has {} name(s) and dimensionValue {} value(s); separate each list with ';' and give one value per name",
                n.len(),
                v.len()
            ),
        ));
    }
    if n.len() > MAX_DIMENSIONS {
        return Err(("dimensionName", format!("at most {MAX_DIMENSIONS} dimensions, found {}", n.len())));
    }
    if let Some(i) = n.iter().position(String::is_empty) {
        return Err(("dimensionName", format!("name {} of {} is empty", i + 1, n.len())));
    }
    if let Some(i) = v.iter().position(String::is_empty) {
        return Err(("dimensionValue", format!("value {} of {} is empty", i + 1, v.len())));
    }
    Ok(n.into_iter().zip(v).collect())
}

/// CloudWatch periods: 1, 5, 10, 30 (high resolution) or a multiple of 60 seconds.
pub fn valid_period(period: i64) -> bool {
    matches!(period, 1 | 5 | 10 | 30) || (period > 0 && period % 60 == 0)
}

/// Statistics CloudWatch accepts: the five basic ones, IQM, percentiles and trimmed/winsorized
/// forms (`p99`, `p99.9`, `tm90`, `wm95`, `tc90`, `ts90`, `TM(10%:90%)`, `PR(:300)`).
pub fn valid_stat(stat: &str) -> bool {
    const BASIC: &[&str] = &["SampleCount", "Sum", "Average", "Minimum", "Maximum", "IQM"];
    if BASIC.contains(&stat) {
        return true;
    }
    for prefix in ["tm", "wm", "tc", "ts", "p"] {
        if let Some(n) = stat.strip_prefix(prefix) {
            let decimals = n.split_once('.').map_or(0, |(_, d)| d.len());
            return !n.is_empty()
                && decimals <= 2
                && n.chars().all(|c| c.is_ascii_digit() || c == '.')
                && n.parse::<f64>().is_ok_and(|x| (0.0..=100.0).contains(&x));
        }
    }
    ["TM", "WM", "TC", "TS", "PR"].iter().any(|prefix| {
        stat.strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('('))
            .and_then(|r| r.strip_suffix(')'))
            .is_some_and(|inner| inner.contains(':'))
    })
}

/// The query window at `now`: the end is `now − end_offset` truncated to a whole `period` (so
/// the newest period is complete), the start `collection` seconds earlier. All in seconds.
pub fn window(now: DateTime<Utc>, collection: i64, period: i64, end_offset: i64) -> (i64, i64) {
    let shifted = now.timestamp() - end_offset;
    let end = shifted - shifted.rem_euclid(period.max(1));
    (end - collection, end)
}

fn at(secs: i64) -> String {
    Utc.timestamp_opt(secs, 0).single().map_or_else(|| secs.to_string(), |t| t.to_rfc3339())
}

impl CloudWatchConfig {
    fn what(&self) -> String {
        match &self.query {
            Query::Metric { namespace, metric_name, .. } => {
                format!("CloudWatch metric {namespace}/{metric_name}")
            }
            Query::Expression(e) => format!("CloudWatch expression {e:?}"),
        }
    }

    fn query(&self) -> MetricDataQuery {
        let b = MetricDataQuery::builder().id(QUERY_ID).return_data(true);
        match &self.query {
            Query::Expression(e) => b.expression(e).period(self.period as i32).build(),
            Query::Metric { namespace, metric_name, dimensions, stat, unit } => {
                let mut metric = Metric::builder().namespace(namespace).metric_name(metric_name);
                for (n, v) in dimensions {
                    metric = metric.dimensions(Dimension::builder().name(n).value(v).build());
                }
                let mut ms =
                    MetricStat::builder().metric(metric.build()).period(self.period as i32).stat(stat);
                if let Some(u) = unit {
                    ms = ms.unit(StandardUnit::from(u.as_str()));
                }
                b.metric_stat(ms.build()).build()
            }
        }
    }
}

impl ScalerConfig for CloudWatchConfig {
    fn metric_part(&self) -> String {
        "aws-cloudwatch".to_owned()
    }
    fn target(&self) -> f64 {
        self.target
    }
    fn activation_target(&self) -> f64 {
        self.activation_target
    }
    fn build(&self) -> Result<Arc<dyn Scaler>, ScalerError> {
        Ok(Arc::new(CloudWatchScaler {
            clients: AwsClients::shared(self.client.clone()),
            config: self.clone(),
        }))
    }
    fn describe(&self) -> String {
        let q = match &self.query {
            Query::Metric { namespace, metric_name, dimensions, stat, unit } => {
                let dims: Vec<String> = dimensions.iter().map(|(n, v)| format!("{n}={v}")).collect();
                format!(
                    "{stat} of {namespace}/{metric_name}{}{}",
                    if dims.is_empty() { String::new() } else { format!(" {{{}}}", dims.join(", ")) },
                    unit.as_ref().map(|u| format!(" in {u}")).unwrap_or_default()
                )
            }
            Query::Expression(e) => format!("expression {e:?}"),
        };
        format!(
            "CloudWatch {q} in {}: newest complete {} s period of the last {} s (end offset {} s); target {}, active above {}, no data → {}; {}{}",
            self.client.region,
            self.period,
            self.collection_time,
            self.end_time_offset,
            self.target,
            self.activation_target,
            if self.ignore_null_values { self.min_metric_value.to_string() } else { "error".to_owned() },
            self.client.credentials.describe(),
            self.client.endpoint.as_ref().map(|e| format!("; endpoint {e}")).unwrap_or_default()
        )
    }
}

/// A live aws-cloudwatch trigger.
#[derive(Debug)]
pub struct CloudWatchScaler {
    config: CloudWatchConfig,
    clients: Arc<AwsClients>,
}

#[async_trait]
impl Scaler for CloudWatchScaler {
    async fn measure(&self, now: DateTime<Utc>) -> Result<Measurement, ScalerError> {
        let c = &self.config;
        self.clients.check_egress()?;
        let (start, end) = window(now, c.collection_time, c.period, c.end_time_offset);
        let out = self
            .clients
            .cloudwatch()
            .await
            .get_metric_data()
            .metric_data_queries(c.query())
            .start_time(AwsDateTime::from_secs(start))
            .end_time(AwsDateTime::from_secs(end))
            .scan_by(ScanBy::TimestampDescending)
            .send()
            .await
            .map_err(|e| error::from_sdk(&c.what(), "GetMetricData", &c.client, &e))?;
        let result = out.metric_data_results().iter().find(|r| r.id() == Some(QUERY_ID));
        if let Some(m) = result.and_then(|r| r.messages().first()).or_else(|| out.messages().first()) {
            return Err(ScalerError::InvalidResponse(format!(
                "{}: GetMetricData: {}: {}",
                c.what(),
                crate::error::one_line(m.code().unwrap_or("Message"), 64),
                crate::error::one_line(m.value().unwrap_or_default(), 200)
            )));
        }
        let newest = result.and_then(|r| {
            let (values, stamps) = (r.values(), r.timestamps());
            if stamps.len() == values.len() {
                // Newest by timestamp, whatever order the service used.
                stamps.iter().zip(values).max_by_key(|(t, _)| (t.secs(), t.subsec_nanos())).map(|(_, v)| *v)
            } else {
                values.first().copied()
            }
        });
        let value = match newest {
            Some(v) => v,
            None if c.ignore_null_values => c.min_metric_value,
            None => {
                return Err(ScalerError::NotFound(format!(
                    "{}: GetMetricData returned no data points between {} and {} (ignoreNullValues is false)",
                    c.what(),
                    at(start),
                    at(end)
                )));
            }
        };
        Ok(Measurement::from_value(value, c.activation_target))
    }
}

#[cfg(test)]
mod tests;
