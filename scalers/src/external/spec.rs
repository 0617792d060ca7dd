//! The metric an external scaler serves, as its `GetMetricSpec` names it: asked when the
//! operator reconciles an object (and by `ebb check`), so that the HPA names the metric
//! `s<index>-<name>` with the scaler's target size as its AverageValue target, as KEDA does, and
//! the served value is `GetMetrics`' raw value. The name comes from the scaler, so it is bounded
//! and normalized before it reaches an HPA, a status key or a metrics API path.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use super::proto::{GetMetricSpecResponse, ScaledObjectRef};
use super::{ExternalConfig, MAX_METRIC_NAME, sanitize};
use crate::error::ScalerError;

/// Longest scaler part of an HPA metric name (`s<index>-` comes before it).
pub const MAX_HPA_PART: usize = 240;

/// One metric an external scaler serves: its name as the scaler spells it (sent back in
/// `GetMetrics`) and its target size per replica.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSpec {
    pub name: String,
    pub target: f64,
}

/// What `GetMetricSpec` answered for one ScaledObject (the object is sent in every later call).
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub spec: MetricSpec,
    pub namespace: String,
    pub name: String,
}

/// The first metric spec of an answer, checked: a name of 1 to [`MAX_METRIC_NAME`] bytes and a
/// finite target size greater than 0 (`targetSizeFloat`, else `targetSize`).
pub fn first_spec(address: &str, r: &GetMetricSpecResponse) -> Result<MetricSpec, ScalerError> {
    let bad =
        |m: String| ScalerError::InvalidResponse(format!("external scaler {address}: GetMetricSpec: {m}"));
    let spec = r.metric_specs.first().ok_or_else(|| bad("returned no metric spec".into()))?;
    if spec.metric_name.is_empty() || spec.metric_name.len() > MAX_METRIC_NAME {
        return Err(bad(format!("metric name must have 1 to {MAX_METRIC_NAME} bytes")));
    }
    let target = spec.target();
    if !target.is_finite() || target <= 0.0 {
        return Err(bad(format!(
            "metric {:?} has target size {target}; it must be a number greater than 0",
            sanitize(&spec.metric_name, 64)
        )));
    }
    Ok(MetricSpec { name: spec.metric_name.clone(), target })
}

/// The scaler part of the HPA metric name: KEDA's normalization
/// ([`ebb_api::metric_name::normalize`]), then every character other than an ASCII letter, a
/// digit, `-` or `_` also becomes `-` (so no name can break the HPA's metric path or a label),
/// at most [`MAX_HPA_PART`] characters.
pub fn hpa_part(name: &str) -> String {
    ebb_api::metric_name::normalize(name)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
        .take(MAX_HPA_PART)
        .collect()
}

impl ExternalConfig {
    /// Asks the scaler for its metric (`GetMetricSpec`) on behalf of the object, through the
    /// egress policy, bounded by `timeout`.
    pub async fn metric_spec(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<MetricSpec, ScalerError> {
        let client = super::client::Client::new(self.dial(true)?);
        let object = ScaledObjectRef {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            scaler_metadata: self.metadata.clone(),
        };
        let answer = tokio::time::timeout(timeout, client.metric_spec(&object))
            .await
            .map_err(|_| ScalerError::Timeout(timeout))??;
        first_spec(&self.address, &answer)
    }

    /// This configuration with `GetMetricSpec`'s answer recorded.
    pub fn with_resolved(&self, resolved: Resolved) -> Self {
        Self { resolved: Some(resolved), ..self.clone() }
    }

    /// What `GetMetricSpec` answered, once recorded ([`crate::TriggerSpec::set_external`]).
    pub fn resolved(&self) -> Option<&Resolved> {
        self.resolved.as_ref()
    }

    /// A hash of what the scaler is asked with (kind, address, metadata): a remembered answer
    /// is reused only for the same question.
    pub fn identity(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        let sorted: BTreeMap<_, _> = self.metadata.iter().collect();
        (self.push, &self.address, sorted).hash(&mut h);
        h.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::external::proto::MetricSpec as Wire;

    fn answer(name: &str, size: i64, float: f64) -> GetMetricSpecResponse {
        GetMetricSpecResponse {
            metric_specs: vec![Wire {
                metric_name: name.into(),
                target_size: size,
                target_size_float: float,
            }],
        }
    }

    #[test]
    fn hostile_names_become_safe_hpa_parts() {
        assert_eq!(hpa_part("queue_length-1"), "queue_length-1");
        // KEDA's replacements.
        assert_eq!(hpa_part("a/b.c:d%e(f)"), "a-b-c-d-e-f-");
        // Label and path injection, control characters, non-ASCII.
        assert_eq!(hpa_part("x\",evil=\"1\"}\n"), "x--evil--1---");
        assert_eq!(hpa_part("../.."), "-----");
        assert_eq!(hpa_part("prïce"), "pr-ce");
        assert_eq!(hpa_part(&"q".repeat(253)).len(), MAX_HPA_PART);
    }

    #[test]
    fn answers_are_checked() {
        let s = first_spec("a:1", &answer("queue", 10, 0.0)).unwrap();
        assert_eq!(s, MetricSpec { name: "queue".into(), target: 10.0 });
        // targetSizeFloat wins when set.
        assert_eq!(first_spec("a:1", &answer("queue", 10, 2.5)).unwrap().target, 2.5);
        for bad in
            [answer("", 1, 0.0), answer("q", 0, 0.0), answer("q", 1, -1.0), answer(&"q".repeat(254), 1, 0.0)]
        {
            let e = first_spec("a:1", &bad).unwrap_err();
            assert_eq!(e.reason(), "InvalidResponse", "{e}");
            assert!(e.to_string().contains("a:1") && e.to_string().len() < 300, "{e}");
        }
        let e = first_spec("a:1", &GetMetricSpecResponse { metric_specs: vec![] }).unwrap_err();
        assert!(e.to_string().contains("no metric spec"), "{e}");
    }
}
