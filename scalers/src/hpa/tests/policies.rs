//! Single syncs: bounds before metrics, each policy type and select policy in both directions,
//! and the fixed rules of an HPA without behavior.

use super::*;

/// Behavior with no stabilization in either direction, so one sync shows the rate limit alone.
fn unstabilized(up: ScalingRules, down: ScalingRules) -> Behavior {
    Behavior {
        scale_up: ScalingRules { stabilization_window_seconds: 0, ..up },
        scale_down: ScalingRules { stabilization_window_seconds: 0, ..down },
    }
}

#[test]
fn bounds_and_disabled_scaling_come_before_metrics() {
    let none = [MetricSample::average_value("m", 10.0, None)];
    // (case, min, max, current, desired, reason)
    let cases = [
        ("target at zero with min 1", 1, 10, 0, 0, "ScalingDisabled"),
        ("target at zero with min 3", 3, 10, 0, 0, "ScalingDisabled"),
        ("above max", 1, 10, 12, 10, "TooManyReplicas"),
        ("below min", 4, 10, 2, 4, "TooFewReplicas"),
    ];
    for (case, min, max, current, want, why) in cases {
        let mut calc = HpaCalculator::new(min, max, Behavior::default());
        let r = calc.sync(at(0), current, current, &none);
        assert_eq!((r.desired, r.reason.as_str(), r.proposal), (want, why, None), "{case}");
        // The seed recommendation only.
        assert_eq!(calc.recommendations(), &[Stamped { at: at(0), replicas: current }], "{case}");
    }
    // Moving into the bounds is a scale event of the right direction.
    let mut calc = HpaCalculator::new(1, 10, Behavior::default());
    calc.sync(at(0), 12, 12, &none);
    assert_eq!(calc.scale_down_events(), &[Stamped { at: at(0), replicas: 2 }]);
    assert!(calc.scale_up_events().is_empty());
}

#[test]
fn scale_from_zero_when_min_is_zero() {
    // Value 250 vs 100 with no replica: ceil(2.5) = 3; default limit max(0 + 4, ceil(0 × 2)) = 4.
    let mut calc = HpaCalculator::new(0, 10, Behavior::default());
    let r = calc.sync(at(0), 0, 0, &[MetricSample::value("m", 100.0, Some(250.0))]);
    assert_eq!((r.desired, r.reason.as_str()), (3, "DesiredWithinRange"));
}

/// (case, up rules, down rules, min, max, current, proposal, desired, reason)
type LimitCase = (&'static str, ScalingRules, ScalingRules, i32, i32, i32, i32, i32, &'static str);

#[test]
fn policy_limits_in_one_sync() {
    use SelectPolicy::{Disabled, Max, Min};
    let dflt_up = ScalingRules::default_scale_up();
    let dflt_down = ScalingRules::default_scale_down();
    let cases: Vec<LimitCase> = vec![
        // periodStart 5: 5 + 4 = 9.
        (
            "up Pods 4",
            rules(0, Max, &[Policy::pods(4, 15)]),
            dflt_down.clone(),
            1,
            50,
            5,
            20,
            9,
            "ScaleUpLimit",
        ),
        // ceil(5 × 2) = 10.
        (
            "up Percent 100",
            rules(0, Max, &[Policy::percent(100, 15)]),
            dflt_down.clone(),
            1,
            50,
            5,
            20,
            10,
            "ScaleUpLimit",
        ),
        // ceil(5 × 1.5) = ceil(7.5) = 8: rounded up.
        (
            "up Percent 50 rounds up",
            rules(0, Max, &[Policy::percent(50, 60)]),
            dflt_down.clone(),
            1,
            50,
            5,
            20,
            8,
            "ScaleUpLimit",
        ),
        // max(3 + 4, 3 × 2) = 7.
        ("up default Max, Pods wins", dflt_up.clone(), dflt_down.clone(), 1, 50, 3, 20, 7, "ScaleUpLimit"),
        // max(10 + 4, 10 × 2) = 20.
        (
            "up default Max, Percent wins",
            dflt_up.clone(),
            dflt_down.clone(),
            1,
            50,
            10,
            30,
            20,
            "ScaleUpLimit",
        ),
        // min(10 + 4, 10 × 2) = 14.
        (
            "up Min",
            rules(0, Min, &[Policy::pods(4, 15), Policy::percent(100, 15)]),
            dflt_down.clone(),
            1,
            50,
            10,
            30,
            14,
            "ScaleUpLimit",
        ),
        (
            "up Disabled",
            rules(0, Disabled, &[Policy::pods(4, 15)]),
            dflt_down.clone(),
            1,
            50,
            5,
            20,
            5,
            "ScaleUpLimit",
        ),
        // limit max(12, 16) = 16 ≥ max 12.
        ("up capped by max", dflt_up.clone(), dflt_down.clone(), 1, 12, 8, 30, 12, "TooManyReplicas"),
        ("up within limit", dflt_up.clone(), dflt_down.clone(), 1, 50, 5, 7, 7, "DesiredWithinRange"),
        // 10 − 2 = 8.
        (
            "down Pods 2",
            dflt_up.clone(),
            rules(0, Max, &[Policy::pods(2, 60)]),
            1,
            50,
            10,
            1,
            8,
            "ScaleDownLimit",
        ),
        // trunc(10 × 0.75) = trunc(7.5) = 7: truncated, not rounded up.
        (
            "down Percent 25 truncates",
            dflt_up.clone(),
            rules(0, Max, &[Policy::percent(25, 60)]),
            1,
            50,
            10,
            1,
            7,
            "ScaleDownLimit",
        ),
        // trunc(15 × 0.9) = trunc(13.5) = 13.
        (
            "down Percent 10",
            dflt_up.clone(),
            rules(0, Max, &[Policy::percent(10, 60)]),
            1,
            50,
            15,
            1,
            13,
            "ScaleDownLimit",
        ),
        // doc: min(80 − 4, trunc(80 × 0.9)) = 72, 8 removed.
        (
            "down Max (doc, 80 replicas)",
            dflt_up.clone(),
            rules(0, Max, &[Policy::pods(4, 60), Policy::percent(10, 60)]),
            10,
            100,
            80,
            10,
            72,
            "ScaleDownLimit",
        ),
        // max(76, 72) = 76.
        (
            "down Min",
            dflt_up.clone(),
            rules(0, Min, &[Policy::pods(4, 60), Policy::percent(10, 60)]),
            10,
            100,
            80,
            10,
            76,
            "ScaleDownLimit",
        ),
        (
            "down Disabled",
            dflt_up.clone(),
            rules(0, Disabled, &[Policy::percent(100, 15)]),
            1,
            50,
            10,
            1,
            10,
            "ScaleDownLimit",
        ),
        // limit trunc(10 × 0) = 0 below min 3.
        ("down floored by min", dflt_up.clone(), dflt_down.clone(), 3, 50, 10, 1, 3, "TooFewReplicas"),
        // trunc(10 × 0.5) = 5 ≤ 6.
        (
            "down within limit",
            dflt_up.clone(),
            rules(0, Max, &[Policy::percent(50, 60)]),
            1,
            50,
            10,
            6,
            6,
            "DesiredWithinRange",
        ),
    ];
    for (case, up, down, min, max, current, proposal, want, why) in cases {
        let mut calc = HpaCalculator::new(min, max, unstabilized(up, down));
        // AverageValue target 1 with value `proposal`: every case is outside the tolerance band.
        let r = calc.sync(at(0), current, current, &avg(f64::from(proposal), 1.0));
        assert_eq!(r.proposal, Some(proposal), "{case}");
        assert_eq!((r.desired, r.reason.as_str()), (want, why), "{case}");
    }
}

#[test]
fn without_behavior_fixed_rules() {
    // (case, min, max, current, proposal, desired, reason)
    let cases = [
        // max(2 × 1, 4) = 4.
        ("cap floor of 4", 1, 20, 1, 10, 4, "ScaleUpLimit"),
        // max(2 × 3, 4) = 6.
        ("cap doubles", 1, 20, 3, 10, 6, "ScaleUpLimit"),
        ("cap above max", 1, 8, 5, 30, 8, "TooManyReplicas"),
        ("within", 1, 20, 5, 7, 7, "DesiredWithinRange"),
    ];
    for (case, min, max, current, proposal, want, why) in cases {
        let mut calc = HpaCalculator::without_behavior(min, max);
        let r = calc.sync(at(0), current, current, &avg(f64::from(proposal), 1.0));
        assert_eq!((r.desired, r.reason.as_str()), (want, why), "{case}");
        assert!(calc.scale_up_events().is_empty(), "{case}: no events without behavior");
    }
}
