//! The HPA replica calculator: a pure model of what the Kubernetes HorizontalPodAutoscaler
//! controller (autoscaling/v2, Kubernetes 1.33) decides for External metrics, one sync at a
//! time, including the in-memory state it keeps between syncs. The operator, `ebb simulate`
//! and `ebb check` use it to predict the replica count the cluster's HPA will set.
//!
//! One [`HpaCalculator::sync`] applies the controller's steps in its order:
//!
//! 1. First sync of this HPA: the recommendation history is seeded with `current`.
//! 2. `current == 0` while `minReplicas != 0`: autoscaling is disabled, nothing changes
//!    (`ScalingDisabled`).
//! 3. `current > maxReplicas` → `maxReplicas`; `current < minReplicas` → `minReplicas`, without
//!    looking at metrics (a scale event is recorded, no recommendation).
//! 4. Metric step ([`metrics::propose`]): each metric's proposal, tolerance band
//!    `1 − 0.1 ≤ ratio ≤ 1 + 0.1` keeping `current`; the largest proposal wins. All metrics
//!    unavailable, or some unavailable and the rest proposing fewer replicas than `current`:
//!    the sync stops with no change and nothing recorded (`FailedGetExternalMetric`).
//! 5. Stabilization. With `spec.behavior`: `current` moved into [lowest recommendation of the
//!    scale-up window, highest of the scale-down window] (windows include the new proposal;
//!    a record counts when strictly newer than the window start). Without `spec.behavior`: the
//!    highest recommendation of the last 300 s (start included) and the proposal. The raw
//!    proposal is then recorded (reusing one expired slot, else appended).
//! 6. Rate limits and bounds. With `spec.behavior`, scaling up: the policies' limit (each from
//!    the replica count at the start of its period, rebuilt from the scale events newer than
//!    `now − periodSeconds`; Pods adds, Percent multiplies and rounds up; combined by
//!    `selectPolicy`), never below `current`, capped by `maxReplicas`. Scaling down likewise
//!    (Percent truncated toward zero), never above `current`, floored at `minReplicas`.
//!    Without `spec.behavior`: `[minReplicas, min(maxReplicas, max(2 × current, 4))]`.
//!    The bounds always keep the result within [`minReplicas`, `maxReplicas`].
//! 7. When the result differs from `current`, the scale event (|change|, at `now`) is recorded
//!    (only with `spec.behavior`), reusing a slot older than the direction's longest period.
//!
//! The reported [`Recommendation::reason`] is the limiting reason when step 6 changed the
//! count, else the stabilization reason when step 5 did, else `DesiredWithinRange`.
//! One deliberate simplification: upstream divides an `AverageValue` metric by
//! `scale.status.replicas`; here `current` (the spec count) is used for both target types.

pub mod behavior;
pub mod calculator;
pub mod metrics;

#[cfg(test)]
mod tests;

use serde::Serialize;

pub use behavior::{Behavior, BehaviorError, Policy, PolicyType, ScalingRules, SelectPolicy};
pub use calculator::{HpaCalculator, Stamped};
pub use metrics::{MetricSample, MetricsProposal, TargetType, Tolerances};

/// Condition reasons the controller reports, as used in [`Recommendation::reason`].
pub mod reason {
    /// Nothing limited the metric proposal.
    pub const DESIRED_WITHIN_RANGE: &str = "DesiredWithinRange";
    /// A scale-up policy limited the increase.
    pub const SCALE_UP_LIMIT: &str = "ScaleUpLimit";
    /// A scale-down policy limited the decrease.
    pub const SCALE_DOWN_LIMIT: &str = "ScaleDownLimit";
    /// `maxReplicas` limited the count.
    pub const TOO_MANY_REPLICAS: &str = "TooManyReplicas";
    /// `minReplicas` limited the count.
    pub const TOO_FEW_REPLICAS: &str = "TooFewReplicas";
    /// A higher recent recommendation held the count up.
    pub const SCALE_DOWN_STABILIZED: &str = "ScaleDownStabilized";
    /// A lower recent recommendation held the count down.
    pub const SCALE_UP_STABILIZED: &str = "ScaleUpStabilized";
    /// The target has 0 replicas while `minReplicas` is not 0.
    pub const SCALING_DISABLED: &str = "ScalingDisabled";
    /// Metrics were unavailable (all of them, or some while the rest would scale down).
    pub const FAILED_GET_EXTERNAL_METRIC: &str = "FailedGetExternalMetric";
}

/// The outcome of one sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    /// The replica count the controller sets (equal to `current` when it does not scale).
    pub desired: i32,
    /// Condition reason, one of [`reason`].
    pub reason: String,
    /// Raw metric proposal before stabilization and limits; `None` when the metrics were not
    /// consulted or all were unavailable (it is reported, but not acted on, when some were
    /// unavailable and it would have scaled down).
    pub proposal: Option<i32>,
    /// The count after stabilization, before rate limits and bounds.
    pub stabilized: Option<i32>,
    /// The metric whose proposal won.
    pub metric: Option<String>,
}

impl Recommendation {
    fn fixed(desired: i32, why: &str) -> Self {
        Self { desired, reason: why.to_owned(), proposal: None, stabilized: None, metric: None }
    }
}
