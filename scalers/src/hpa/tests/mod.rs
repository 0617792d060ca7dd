//! Tests of the HPA replica calculator: the metric step, behavior defaulting and validation,
//! single-sync rate limits, and multi-sync sequences (stabilization windows, scale-event
//! accounting, the Kubernetes documentation examples and the seed behaviors).

mod defaults;
mod metric_step;
mod policies;
mod sequences;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::*;

/// `secs` seconds after a fixed origin.
fn at(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap() + TimeDelta::seconds(secs)
}

/// One AverageValue metric named `m`.
fn avg(value: f64, target: f64) -> Vec<MetricSample> {
    vec![MetricSample::average_value("m", target, Some(value))]
}

/// Scaling rules with the given window, select policy and policies.
fn rules(window: i32, select: SelectPolicy, policies: &[Policy]) -> ScalingRules {
    ScalingRules { stabilization_window_seconds: window, select_policy: select, policies: policies.to_vec() }
}

/// Parses a YAML `HorizontalPodAutoscalerBehavior`.
fn k8s_behavior(yaml: &str) -> k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerBehavior {
    serde_yaml::from_str(yaml).unwrap()
}

/// Runs `steps` syncs 15 s apart from t = 0, starting at `start` replicas and applying each
/// desired count before the next sync (ready = current). `metrics(t)` gives the samples at `t`
/// seconds. Returns every recommendation.
fn simulate(
    calc: &mut HpaCalculator,
    start: i32,
    steps: usize,
    metrics: impl Fn(i64) -> Vec<MetricSample>,
) -> Vec<Recommendation> {
    let mut current = start;
    let mut out = Vec::with_capacity(steps);
    for i in 0..steps {
        let t = 15 * i as i64;
        let r = calc.sync(at(t), current, current, &metrics(t));
        current = r.desired;
        out.push(r);
    }
    out
}

/// The desired counts of a simulation.
fn desired(recs: &[Recommendation]) -> Vec<i32> {
    recs.iter().map(|r| r.desired).collect()
}

/// Expands `(count, replicas)` runs into one entry per sync.
fn runs(parts: &[(usize, i32)]) -> Vec<i32> {
    parts.iter().flat_map(|&(n, r)| std::iter::repeat_n(r, n)).collect()
}
