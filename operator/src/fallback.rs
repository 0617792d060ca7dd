//! Trigger failure counting and fallback (pure): per-metric health in `status.health`, when
//! fallback is in force, the replica count it asks for and the metric value served to the HPA so
//! that the HPA lands on that count.
//!
//! ebb counts one failure per poll per metric and never also per HPA query, so fallback starts at
//! exactly the `failureThreshold`-th consecutive failed poll.

use ebb_api::quantity::to_milli;
use ebb_api::{
    Fallback, FallbackBehavior, HealthStatus, HealthStatusType, MetricTargetType, ScaledObjectSpec, SortedMap,
};

/// Updates the health of one metric after a poll: success resets it to 0 failures and `Happy`;
/// failure adds one failure and sets `Failing`.
pub fn record(health: &mut SortedMap<String, HealthStatus>, metric: &str, ok: bool) {
    let entry = health.get_or_default(metric);
    if ok {
        entry.number_of_failures = Some(0);
        entry.status = Some(HealthStatusType::Happy);
    } else {
        entry.number_of_failures = Some(entry.number_of_failures.unwrap_or(0).max(0).saturating_add(1));
        entry.status = Some(HealthStatusType::Failing);
    }
}

/// Consecutive failed polls recorded for a metric.
pub fn failures(health: &SortedMap<String, HealthStatus>, metric: &str) -> i32 {
    health.get(metric).and_then(|h| h.number_of_failures).unwrap_or(0)
}

/// Whether fallback is in force for a metric: fallback is configured with non-negative values and
/// the metric failed at least `failureThreshold` polls in a row (and at least once, so a threshold
/// of 0 means "from the first failure").
pub fn active(spec: &ScaledObjectSpec, health: &SortedMap<String, HealthStatus>, metric: &str) -> bool {
    let Some(f) = &spec.fallback else { return false };
    if f.failure_threshold < 0 || f.replicas < 0 {
        return false;
    }
    failures(health, metric) >= f.failure_threshold.max(1)
}

/// The replica count fallback asks for, given the target's current count.
pub fn replicas(fallback: &Fallback, current: i32) -> i32 {
    match fallback.behavior {
        // Under `scalingModifiers` a failing trigger is nil in the formula; this count applies
        // only when the formula yields nil.
        FallbackBehavior::Static | FallbackBehavior::ScalingModifiers => fallback.replicas,
        FallbackBehavior::CurrentReplicas => current,
        FallbackBehavior::CurrentReplicasIfHigher => current.max(fallback.replicas),
        FallbackBehavior::CurrentReplicasIfLower => current.min(fallback.replicas),
    }
}

/// The metric value served to the HPA under fallback, so that the HPA computes `replicas(...)`.
///
/// - `AverageValue`: the HPA asks for `ceil(value / target)` replicas, so the value is
///   `target × replicas` (exact to the milli).
/// - `Value`: the HPA asks for `ceil(current × value / target)` replicas. KEDA applies fallback to
///   `AverageValue` metrics only; ebb serves the largest milli value strictly below
///   `target × replicas / current`, which lands on exactly `replicas` whenever the target is
///   above `current` milli-units (any target ≥ 1 with fewer than 1000 replicas). `current` is taken
///   as at least 1: at 0 replicas the HPA does not act, and ebb's activation brings the target to
///   its minimum first.
/// - `Utilization` is never an external metric; it is served like `AverageValue`.
///
/// In both cases the HPA keeps the current count when the requested one is within its 10 %
/// tolerance of it. The result is written with milli precision by `ebb_api::quantity` and comes
/// out as exactly the intended milli count.
pub fn value(fallback: &Fallback, metric_type: MetricTargetType, target: f64, current: i32) -> f64 {
    let want = i128::from(replicas(fallback, current).max(0));
    let t = i128::from(to_milli(target));
    let milli = match metric_type {
        MetricTargetType::Value => {
            let c = i128::from(current.max(1));
            if want == 0 { 0 } else { ((want * t - 1) / c).max(0) }
        }
        MetricTargetType::AverageValue | MetricTargetType::Utilization => want * t,
    };
    from_milli(i64::try_from(milli).unwrap_or(i64::MAX))
}

/// A number that `ebb_api::quantity` writes as exactly `milli` milli-units (its rounding is
/// upward, and `n / 1000 × 1000` may come out a hair above `n` in binary floating point).
fn from_milli(milli: i64) -> f64 {
    let mut v = milli as f64 / 1000.0;
    for _ in 0..8 {
        if ebb_api::quantity::to_milli(v) <= milli {
            break;
        }
        v = v.next_down();
    }
    v
}

#[cfg(test)]
mod tests;
