//! Composite values on known inputs; figures worked out by hand from the documented formulas
//! and fallback arithmetic (AverageValue: target × replicas).

use std::collections::BTreeMap;

use ebb_api::{Fallback, FallbackBehavior, MetricTargetType};
use ebb_scalers::formula::Formula;
use ebb_scalers::validate::modifiers::Composite;

use super::{Input, active, poll_active, value};

fn comp(f: &str, target: f64) -> Composite {
    Composite {
        formula: Formula::compile(f).unwrap(),
        target,
        activation_target: 0.0,
        metric_type: MetricTargetType::AverageValue,
    }
}

fn inputs(list: &[(&str, Input)]) -> BTreeMap<String, Input> {
    list.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
}

fn fb(behavior: FallbackBehavior) -> Fallback {
    Fallback { failure_threshold: 3, replicas: 10, behavior }
}

#[test]
fn average_of_two_triggers() {
    let c = comp("(trig_one + trig_two)/2", 2.0);
    let i = inputs(&[("trig_one", Input::Value(4.0)), ("trig_two", Input::Value(7.0))]);
    assert_eq!(value(&c, None, &i, 1), Ok(5.5));
}

#[test]
fn failing_trigger_below_threshold_is_an_error() {
    let c = comp("a + b", 2.0);
    let i = inputs(&[("a", Input::Value(1.0)), ("b", Input::Failing("connection refused".into()))]);
    let e = value(&c, Some(&fb(FallbackBehavior::Static)), &i, 1).unwrap_err();
    assert!(e.contains("\"b\"") && e.contains("connection refused"), "{e}");
}

#[test]
fn default_fallback_replaces_the_whole_formula() {
    // target 2 × fallback replicas 10 = 20, whatever the other trigger says.
    let c = comp("a + b", 2.0);
    let i = inputs(&[("a", Input::Value(100.0)), ("b", Input::PastThreshold)]);
    assert_eq!(value(&c, Some(&fb(FallbackBehavior::Static)), &i, 1), Ok(20.0));
    // currentReplicasIfHigher with 12 current: 2 × 12 = 24.
    assert_eq!(value(&c, Some(&fb(FallbackBehavior::CurrentReplicasIfHigher)), &i, 12), Ok(24.0));
}

#[test]
fn scaling_modifiers_fallback_routes_around_failed_triggers() {
    let c = comp("best_metric ?? slower_metric ?? metric_backup ?? 8", 2.0);
    let f = fb(FallbackBehavior::ScalingModifiers);
    let i = inputs(&[
        ("best_metric", Input::PastThreshold),
        ("slower_metric", Input::Value(6.0)),
        ("metric_backup", Input::Value(9.0)),
    ]);
    assert_eq!(value(&c, Some(&f), &i, 1), Ok(6.0));
    let all_failed = inputs(&[
        ("best_metric", Input::PastThreshold),
        ("slower_metric", Input::PastThreshold),
        ("metric_backup", Input::PastThreshold),
    ]);
    assert_eq!(value(&c, Some(&f), &all_failed, 1), Ok(8.0));
    // Without the literal, fallback.replicas: target 2 × 10 replicas = 20.
    let c = comp("best_metric ?? slower_metric", 2.0);
    let i = inputs(&[("best_metric", Input::PastThreshold), ("slower_metric", Input::PastThreshold)]);
    assert_eq!(value(&c, Some(&f), &i, 1), Ok(20.0));
}

#[test]
fn evaluation_errors_are_reported() {
    let c = comp("a / b", 2.0);
    let i = inputs(&[("a", Input::Value(1.0)), ("b", Input::Value(0.0))]);
    // expr-lang (as Go) makes 1 / 0 +Inf; a metric value must be finite, so it is an error.
    assert!(value(&c, None, &i, 1).unwrap_err().contains("not a finite number"));
    let c = comp("a ?? b", 2.0);
    let f = fb(FallbackBehavior::ScalingModifiers);
    let i = inputs(&[("a", Input::PastThreshold), ("b", Input::PastThreshold)]);
    assert_eq!(value(&c, None, &i, 1), Err("the formula yields nil and no fallback is configured".into()));
    assert_eq!(value(&c, Some(&f), &i, 1), Ok(20.0));
}

#[test]
fn activation_compares_the_composite_with_activation_target() {
    // (2 + 2) / 2 = 2: not above an activationTarget of 2; (2 + 3) / 2 = 2.5 is.
    let mut c = comp("(trig_one + trig_two)/2", 2.0);
    c.activation_target = 2.0;
    let at = |a: f64, b: f64| inputs(&[("trig_one", Input::Value(a)), ("trig_two", Input::Value(b))]);
    assert!(!active(&c, None, &at(2.0, 2.0), 1));
    assert!(active(&c, None, &at(2.0, 3.0), 1));
    let failing = inputs(&[("trig_one", Input::Value(9.0)), ("trig_two", Input::Failing("down".into()))]);
    assert!(!active(&c, None, &failing, 1));
}

#[test]
fn poll_activity_routes_around_failures_only_under_scaling_modifiers_fallback() {
    let mut c = comp("a ?? b", 2.0);
    c.activation_target = 1.0;
    let named: BTreeMap<String, Result<f64, String>> =
        [("a".to_owned(), Err("down".to_owned())), ("b".to_owned(), Ok(3.0))].into_iter().collect();
    // nil ?? 3 = 3 > 1 under scalingModifiers; otherwise the failure makes it inactive.
    assert!(poll_active(&c, Some(&fb(FallbackBehavior::ScalingModifiers)), &named, 1));
    assert!(!poll_active(&c, Some(&fb(FallbackBehavior::Static)), &named, 1));
    assert!(!poll_active(&c, None, &named, 1));
}

#[test]
fn the_composite_decides_the_ticks_activity_and_triggers_keep_their_own() {
    use crate::scaleloop::tick::{Measured, TickInput, plan};
    let so: ebb_api::ScaledObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": "so", "namespace": "apps", "creationTimestamp": "2025-01-01T00:00:00Z"},
        "spec": {"scaleTargetRef": {"name": "app"}, "minReplicaCount": 1, "maxReplicaCount": 10,
            "triggers": [{"type": "prometheus", "metadata": {}}]},
    }))
    .unwrap();
    let measured = [Measured { metric: "s0-prometheus".into(), result: Ok(true) }];
    let previous = ebb_api::ScaledObjectStatus::default();
    let tick = |composite_active| {
        plan(&TickInput {
            so: &so,
            measured: &measured,
            current: Some(1),
            previous: &previous,
            unwritten: false,
            now: "2025-01-01T12:00:00Z".parse().unwrap(),
            composite_active,
        })
    };
    // The trigger is active on its own, the composite is not: the object is not active.
    let off = tick(Some(false));
    assert!(!off.active);
    assert!(off.status.triggers_activity["s0-prometheus"].is_active);
    assert!(tick(Some(true)).active);
    assert!(tick(None).active);
}
