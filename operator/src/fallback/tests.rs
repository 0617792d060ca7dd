use super::*;

const M: &str = "s0-prometheus";

fn fb(threshold: i32, replicas: i32, behavior: FallbackBehavior) -> Fallback {
    Fallback { failure_threshold: threshold, replicas, behavior }
}

fn spec_with(fallback: Option<Fallback>) -> ScaledObjectSpec {
    ScaledObjectSpec { fallback, ..Default::default() }
}

fn health(failures: i32) -> ebb_api::SortedMap<String, HealthStatus> {
    let status = if failures == 0 { HealthStatusType::Happy } else { HealthStatusType::Failing };
    ebb_api::SortedMap::from([(
        M.to_owned(),
        HealthStatus { number_of_failures: Some(failures), status: Some(status) },
    )])
}

#[test]
fn record_counts_consecutive_failures_and_resets_on_success() {
    // poll outcomes → (numberOfFailures, status) after each
    let seq = [
        (false, 1, HealthStatusType::Failing),
        (false, 2, HealthStatusType::Failing),
        (false, 3, HealthStatusType::Failing),
        (true, 0, HealthStatusType::Happy),
        (true, 0, HealthStatusType::Happy),
        (false, 1, HealthStatusType::Failing),
    ];
    let mut h = ebb_api::SortedMap::new();
    for (i, (ok, n, status)) in seq.into_iter().enumerate() {
        record(&mut h, M, ok);
        assert_eq!(h[M], HealthStatus { number_of_failures: Some(n), status: Some(status) }, "step {i}");
    }
    // Other metrics are untouched; a first success creates a Happy entry.
    record(&mut h, "s1-cron", true);
    assert_eq!(h.len(), 2);
    assert_eq!(h["s1-cron"].number_of_failures, Some(0));
    assert_eq!(h[M].number_of_failures, Some(1));
}

#[test]
fn record_repairs_odd_counts() {
    let mut h = ebb_api::SortedMap::from([(
        M.to_owned(),
        HealthStatus { number_of_failures: Some(-4), status: None },
    )]);
    record(&mut h, M, false);
    assert_eq!(h[M].number_of_failures, Some(1));
    let mut h = ebb_api::SortedMap::from([(
        M.to_owned(),
        HealthStatus { number_of_failures: Some(i32::MAX), status: None },
    )]);
    record(&mut h, M, false);
    assert_eq!(h[M].number_of_failures, Some(i32::MAX));
}

#[test]
fn active_from_the_threshold_th_failure() {
    // (fallback, failures) → active
    let cases = [
        (None, 10, false),
        // Threshold 3: polls 1 and 2 failed → not yet; the 3rd failed poll starts fallback
        // (KEDA's `failures > threshold` would wait for a 4th count, but counts HPA queries too).
        (Some(fb(3, 5, FallbackBehavior::Static)), 0, false),
        (Some(fb(3, 5, FallbackBehavior::Static)), 1, false),
        (Some(fb(3, 5, FallbackBehavior::Static)), 2, false),
        (Some(fb(3, 5, FallbackBehavior::Static)), 3, true),
        (Some(fb(3, 5, FallbackBehavior::Static)), 4, true),
        (Some(fb(1, 5, FallbackBehavior::Static)), 1, true),
        (Some(fb(0, 5, FallbackBehavior::Static)), 0, false),
        (Some(fb(0, 5, FallbackBehavior::Static)), 1, true),
        (Some(fb(-1, 5, FallbackBehavior::Static)), 9, false),
        (Some(fb(3, -1, FallbackBehavior::Static)), 9, false),
    ];
    for (f, failures, want) in cases {
        let spec = spec_with(f.clone());
        assert_eq!(active(&spec, &health(failures), M), want, "{f:?} after {failures} failures");
    }
    // A metric never polled has no failures.
    assert!(!active(&spec_with(Some(fb(1, 5, FallbackBehavior::Static))), &ebb_api::SortedMap::new(), M));
}

#[test]
fn active_after_recorded_polls() {
    let spec = spec_with(Some(fb(3, 5, FallbackBehavior::Static)));
    let mut h = ebb_api::SortedMap::new();
    let mut seen = Vec::new();
    for ok in [false, false, false, false, true, false] {
        record(&mut h, M, ok);
        seen.push(active(&spec, &h, M));
    }
    assert_eq!(seen, [false, false, true, true, false, false]);
}

#[test]
fn replicas_per_behavior() {
    // (behavior, fallback.replicas, current) → replicas
    let cases = [
        (FallbackBehavior::Static, 5, 2, 5),
        (FallbackBehavior::Static, 5, 9, 5),
        (FallbackBehavior::CurrentReplicas, 5, 2, 2),
        (FallbackBehavior::CurrentReplicas, 5, 9, 9),
        (FallbackBehavior::CurrentReplicasIfHigher, 5, 2, 5),
        (FallbackBehavior::CurrentReplicasIfHigher, 5, 9, 9),
        (FallbackBehavior::CurrentReplicasIfLower, 5, 2, 2),
        (FallbackBehavior::CurrentReplicasIfLower, 5, 9, 5),
        (FallbackBehavior::CurrentReplicasIfHigher, 5, 5, 5),
    ];
    for (b, r, current, want) in cases {
        assert_eq!(replicas(&fb(3, r, b), current), want, "{b:?} replicas {r} current {current}");
    }
}

/// What the HPA computes from a served value (upstream formulas, milli quantities).
fn hpa_desired(metric_type: MetricTargetType, value: f64, target: f64, current: i32) -> i64 {
    let usage = ebb_api::quantity::to_milli(value) as f64;
    let t = ebb_api::quantity::to_milli(target) as f64;
    match metric_type {
        MetricTargetType::Value => (usage / t * f64::from(current)).ceil() as i64,
        _ => (usage / t).ceil() as i64,
    }
}

#[test]
fn value_lands_the_hpa_on_the_fallback_replicas() {
    use MetricTargetType::{AverageValue, Value};
    // (metric type, behavior, fallback.replicas, target, current) → served value
    let cases = [
        (AverageValue, FallbackBehavior::Static, 5, 1.0, 2, 5.0),
        (AverageValue, FallbackBehavior::Static, 5, 100.0, 0, 500.0),
        (AverageValue, FallbackBehavior::CurrentReplicasIfHigher, 5, 10.0, 8, 80.0),
        (AverageValue, FallbackBehavior::Static, 9, 0.001, 1, 0.009),
        (AverageValue, FallbackBehavior::Static, 3, 0.1, 1, 0.3),
        (AverageValue, FallbackBehavior::Static, 0, 4.0, 3, 0.0),
        (Value, FallbackBehavior::Static, 5, 1.0, 5, 0.999),
        (Value, FallbackBehavior::Static, 6, 10.0, 3, 19.999),
        (Value, FallbackBehavior::Static, 2, 1.0, 3, 0.666),
        (Value, FallbackBehavior::Static, 4, 2.0, 0, 7.999),
        (Value, FallbackBehavior::Static, 0, 2.0, 4, 0.0),
        (Value, FallbackBehavior::CurrentReplicasIfLower, 5, 3.0, 2, 2.999),
    ];
    for (mt, b, r, target, current, want) in cases {
        let f = fb(3, r, b);
        let v = value(&f, mt, target, current);
        let label = format!("{mt:?} {b:?} replicas {r} target {target} current {current}");
        assert_eq!(ebb_api::quantity::to_milli(v), ebb_api::quantity::to_milli(want), "{label}: served {v}");
        assert!((v - want).abs() < 1e-9, "{label}: served {v}, want {want}");
        let want_replicas = i64::from(replicas(&f, current));
        if want_replicas > 0 {
            assert_eq!(hpa_desired(mt, v, target, current.max(1)), want_replicas, "{label}");
        }
    }
}

#[test]
fn served_value_is_written_as_the_exact_milli_count() {
    // Products that binary floating point puts a hair above the milli count.
    for (target, r) in [(0.001, 9), (0.001, 13), (0.1, 3), (2.007, 1), (0.007, 7)] {
        let f = fb(1, r, FallbackBehavior::Static);
        let v = value(&f, MetricTargetType::AverageValue, target, 1);
        assert_eq!(
            ebb_api::quantity::to_milli(v),
            ebb_api::quantity::to_milli(target) * i64::from(r),
            "{target} × {r}"
        );
    }
}

#[test]
fn value_lands_exactly_across_a_grid() {
    for target in [1.0, 2.5, 7.0, 100.0, 0.25] {
        for current in 1..=40 {
            for r in 1..=60 {
                let f = fb(1, r, FallbackBehavior::Static);
                for mt in [MetricTargetType::AverageValue, MetricTargetType::Value] {
                    let v = value(&f, mt, target, current);
                    assert_eq!(
                        hpa_desired(mt, v, target, current),
                        i64::from(r),
                        "{mt:?} t {target} c {current} r {r}"
                    );
                }
            }
        }
    }
}
