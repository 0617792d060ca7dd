//! The metric step: per-metric proposals, the tolerance band, several metrics, unavailable
//! metrics.

use super::*;
use crate::hpa::metrics::{metric_replicas, propose};

#[test]
fn per_metric_proposals() {
    use TargetType::{AverageValue as Avg, Value as Val};
    // (case, type, target, value, current, ready, expected proposal)
    let cases: &[(&str, TargetType, f64, f64, i32, i32, i32)] = &[
        ("doc: 200 vs 100 on 1 replica doubles", Avg, 100.0, 200.0, 1, 1, 2),
        ("avg scale up", Avg, 10.0, 45.0, 2, 2, 5),
        ("avg scale down", Avg, 10.0, 20.0, 8, 8, 2),
        ("avg ratio 1.05 inside tolerance", Avg, 10.0, 105.0, 10, 10, 10),
        ("avg ratio 1.11 outside tolerance", Avg, 10.0, 111.0, 10, 10, 12),
        ("avg ratio 0.89 outside tolerance", Avg, 10.0, 89.0, 10, 10, 9),
        ("avg ratio exactly 1.1 is inside", Avg, 10.0, 110.0, 10, 10, 10),
        ("avg ratio exactly 0.9 is inside", Avg, 10.0, 90.0, 10, 10, 10),
        ("avg zero usage", Avg, 10.0, 0.0, 10, 10, 0),
        ("avg from zero replicas", Avg, 10.0, 35.0, 0, 0, 4),
        ("avg zero usage on zero replicas", Avg, 10.0, 0.0, 0, 0, 0),
        ("avg milli target", Avg, 0.1, 0.25, 1, 1, 3),
        ("avg ignores ready", Avg, 10.0, 60.0, 3, 1, 6),
        ("value scale up uses ready", Val, 100.0, 300.0, 2, 2, 6),
        ("value with fewer ready pods", Val, 100.0, 300.0, 4, 2, 6),
        ("value ratio 1.05 inside tolerance", Val, 100.0, 105.0, 4, 4, 4),
        ("value ratio 1.11 outside tolerance", Val, 100.0, 111.0, 4, 4, 5),
        ("value ratio exactly 1.1 is inside", Val, 100.0, 110.0, 4, 4, 4),
        ("value scale down", Val, 100.0, 50.0, 4, 4, 2),
        ("value from zero replicas", Val, 100.0, 250.0, 0, 0, 3),
        ("value with no ready pod", Val, 100.0, 300.0, 2, 0, 0),
    ];
    for &(case, tt, target, value, current, ready, want) in cases {
        let s = MetricSample { name: "m".into(), target_type: tt, target, value: Some(value) };
        assert_eq!(metric_replicas(&s, current, ready, Tolerances::default()), Some(want), "{case}");
    }
}

#[test]
fn unavailable_or_nonpositive_target_gives_nothing() {
    let t = Tolerances::default();
    assert_eq!(metric_replicas(&MetricSample::average_value("m", 10.0, None), 3, 3, t), None);
    assert_eq!(metric_replicas(&MetricSample::value("m", 0.0, Some(5.0)), 3, 3, t), None);
    assert_eq!(metric_replicas(&MetricSample::average_value("m", -1.0, Some(5.0)), 3, 3, t), None);
}

#[test]
fn asymmetric_tolerances() {
    let t = Tolerances { scale_up: 0.05, scale_down: 0.2 };
    let cases = [(106.0, 11), (104.0, 10), (85.0, 10), (79.0, 8)];
    for (value, want) in cases {
        let s = MetricSample::average_value("m", 10.0, Some(value));
        assert_eq!(metric_replicas(&s, 10, 10, t), Some(want), "value {value}");
    }
}

#[test]
fn several_metrics_and_unavailable_ones() {
    let avg_m = |n: &str, v: Option<f64>| MetricSample::average_value(n, 10.0, v);
    let t = Tolerances::default();
    // current 5: a → 40/10 = 4, b → value 350/100 × 2 ready = 7, c → 50/10 = 5 (ratio 1).
    let three =
        vec![avg_m("a", Some(40.0)), MetricSample::value("b", 100.0, Some(350.0)), avg_m("c", Some(50.0))];
    let cases: Vec<(&str, Vec<MetricSample>, MetricsProposal)> = vec![
        ("maximum wins", three, MetricsProposal::Valid { replicas: 7, metric: "b".into(), invalid: 0 }),
        (
            "all unavailable",
            vec![avg_m("a", None), avg_m("b", None)],
            MetricsProposal::Invalid { replicas: None, invalid: 2, total: 2 },
        ),
        (
            "some unavailable, rest scale down",
            vec![avg_m("a", None), avg_m("b", Some(30.0))],
            MetricsProposal::Invalid { replicas: Some(3), invalid: 1, total: 2 },
        ),
        (
            "some unavailable, rest scale up",
            vec![avg_m("a", None), avg_m("b", Some(80.0))],
            MetricsProposal::Valid { replicas: 8, metric: "b".into(), invalid: 1 },
        ),
        (
            "some unavailable, rest keep the count",
            vec![avg_m("a", Some(52.0)), avg_m("b", None)],
            MetricsProposal::Valid { replicas: 5, metric: "a".into(), invalid: 1 },
        ),
        ("no metrics", vec![], MetricsProposal::Invalid { replicas: None, invalid: 0, total: 0 }),
    ];
    for (case, metrics, want) in cases {
        assert_eq!(propose(&metrics, 5, 2, t), want, "{case}");
    }
}

#[test]
fn unavailable_metrics_through_sync() {
    let mut calc = HpaCalculator::new(1, 20, Behavior::default());
    let none = [MetricSample::average_value("a", 10.0, None)];
    let r = calc.sync(at(0), 5, 5, &none);
    assert_eq!((r.desired, r.reason.as_str(), r.proposal), (5, "FailedGetExternalMetric", None));
    // Only the first-sync seed is recorded; no recommendation, no event.
    assert_eq!(calc.recommendations(), &[Stamped { at: at(0), replicas: 5 }]);

    let down =
        [MetricSample::average_value("a", 10.0, None), MetricSample::average_value("b", 10.0, Some(10.0))];
    let r = calc.sync(at(15), 5, 5, &down);
    assert_eq!((r.desired, r.reason.as_str(), r.proposal), (5, "FailedGetExternalMetric", Some(1)));
    assert_eq!(calc.recommendations().len(), 1);

    let up =
        [MetricSample::average_value("a", 10.0, None), MetricSample::average_value("b", 10.0, Some(80.0))];
    let r = calc.sync(at(30), 5, 5, &up);
    assert_eq!((r.desired, r.reason.as_str(), r.proposal), (8, "DesiredWithinRange", Some(8)));
    assert_eq!(r.metric.as_deref(), Some("b"));
    assert_eq!(calc.scale_up_events(), &[Stamped { at: at(30), replicas: 3 }]);
}
