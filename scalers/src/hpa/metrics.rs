//! The metric step of an HPA sync for External metrics: each metric's replica proposal (with the
//! tolerance band), the maximum over metrics, and what happens when some metrics are unavailable.
//!
//! Values and targets go through the same milli-unit quantization as the quantities the HPA
//! reads (`ebb_api::quantity::to_milli`, rounded up), so the ratios are those the controller
//! computes from what ebb serves.

use ebb_api::quantity;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerBehavior;
use serde::Serialize;

use super::behavior::BehaviorError;

/// The controller's default tolerance (`--horizontal-pod-autoscaler-tolerance`).
pub const DEFAULT_TOLERANCE: f64 = 0.1;

/// What the External metric's target is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TargetType {
    /// The metric value divided by the replica count is compared with the target.
    AverageValue,
    /// The metric value itself is compared with the target.
    Value,
}

/// One External metric as the HPA sees it in one sync.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricSample {
    pub name: String,
    pub target_type: TargetType,
    pub target: f64,
    /// `None`: the metric could not be fetched.
    pub value: Option<f64>,
}

impl MetricSample {
    /// An `AverageValue` sample.
    pub fn average_value(name: impl Into<String>, target: f64, value: Option<f64>) -> Self {
        Self { name: name.into(), target_type: TargetType::AverageValue, target, value }
    }

    /// A `Value` sample.
    pub fn value(name: impl Into<String>, target: f64, value: Option<f64>) -> Self {
        Self { name: name.into(), target_type: TargetType::Value, target, value }
    }
}

/// The band around a usage ratio of 1 inside which the HPA keeps the current replica count:
/// `1 − scale_down ≤ ratio ≤ 1 + scale_up` (both ends included).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tolerances {
    pub scale_up: f64,
    pub scale_down: f64,
}

impl Default for Tolerances {
    fn default() -> Self {
        Self::uniform(DEFAULT_TOLERANCE)
    }
}

impl Tolerances {
    /// The same tolerance in both directions.
    pub fn uniform(t: f64) -> Self {
        Self { scale_up: t, scale_down: t }
    }

    /// Whether a usage ratio is close enough to 1 to leave the replica count alone.
    pub fn contains(&self, ratio: f64) -> bool {
        (1.0 - self.scale_down) <= ratio && ratio <= (1.0 + self.scale_up)
    }

    /// Per-HPA tolerances from `behavior.scaleUp.tolerance` / `behavior.scaleDown.tolerance`,
    /// `cluster` where unset. The controller honours these fields only when the
    /// `HPAConfigurableTolerance` feature gate is on (alpha in Kubernetes 1.33); otherwise use
    /// [`Tolerances::uniform`] with the cluster tolerance.
    pub fn from_k8s(
        cluster: f64,
        b: Option<&HorizontalPodAutoscalerBehavior>,
    ) -> Result<Self, BehaviorError> {
        let mut t = Self::uniform(cluster);
        let Some(b) = b else {
            return Ok(t);
        };
        let parse =
            |q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity, field: &str| match quantity::parse(
                &q.0,
            ) {
                Ok(v) if v >= 0.0 => Ok(v),
                _ => Err(BehaviorError::InvalidTolerance { field: field.to_owned(), value: q.0.clone() }),
            };
        if let Some(q) = b.scale_up.as_ref().and_then(|r| r.tolerance.as_ref()) {
            t.scale_up = parse(q, "scaleUp.tolerance")?;
        }
        if let Some(q) = b.scale_down.as_ref().and_then(|r| r.tolerance.as_ref()) {
            t.scale_down = parse(q, "scaleDown.tolerance")?;
        }
        Ok(t)
    }
}

/// Result of the metric step of one sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "outcome")]
pub enum MetricsProposal {
    /// The controller goes on with `replicas` (the largest proposal, from `metric`).
    Valid { replicas: i32, metric: String, invalid: usize },
    /// The controller stops this sync without scaling: every metric is unavailable, or some are
    /// and the others (`replicas`) would scale down.
    Invalid { replicas: Option<i32>, invalid: usize, total: usize },
}

/// The replica count one metric asks for; `None` when it is unavailable or its target is not
/// positive (the API server rejects such targets).
pub fn metric_replicas(
    sample: &MetricSample,
    current: i32,
    ready: i32,
    tolerances: Tolerances,
) -> Option<i32> {
    let value = sample.value?;
    let target = quantity::to_milli(sample.target);
    if target <= 0 {
        return None;
    }
    let usage = quantity::to_milli(value) as f64;
    let target = target as f64;
    let replicas = match sample.target_type {
        TargetType::AverageValue => {
            let ratio = usage / (target * f64::from(current));
            if tolerances.contains(ratio) { current } else { ceil_i32(usage / target) }
        }
        TargetType::Value => {
            let ratio = usage / target;
            if current == 0 {
                ceil_i32(ratio)
            } else if tolerances.contains(ratio) {
                current
            } else {
                ceil_i32(ratio * f64::from(ready))
            }
        }
    };
    Some(replicas)
}

/// The metric step over all metrics: the largest proposal; unavailable metrics block a
/// scale-down but not a scale-up. An empty list counts as all unavailable.
pub fn propose(
    metrics: &[MetricSample],
    current: i32,
    ready: i32,
    tolerances: Tolerances,
) -> MetricsProposal {
    let mut best: Option<(i32, &str)> = None;
    let mut invalid = 0;
    for m in metrics {
        match metric_replicas(m, current, ready, tolerances) {
            Some(r) => {
                if best.is_none_or(|(b, _)| b == 0 || r > b) {
                    best = Some((r, &m.name));
                }
            }
            None => invalid += 1,
        }
    }
    match best {
        Some((replicas, metric)) if invalid == 0 || replicas >= current => {
            MetricsProposal::Valid { replicas, metric: metric.to_owned(), invalid }
        }
        _ => MetricsProposal::Invalid { replicas: best.map(|(r, _)| r), invalid, total: metrics.len() },
    }
}

/// `ceil` into an `i32`, saturating (NaN gives 0).
fn ceil_i32(v: f64) -> i32 {
    v.ceil() as i32
}
