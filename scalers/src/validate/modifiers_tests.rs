//! scalingModifiers validation through the shared parser: KEDA's documented examples (the
//! fixtures) pass; each rule's refusal names the field and, for the formula, the offset.

use ebb_api::{MetricTargetType, ScaledObject};

use super::{COMPOSITE_METRIC_NAME, composite};
use crate::{ParseContext, parse_scaled_object};

fn fixture(name: &str) -> ScaledObject {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/scaling-modifiers")
        .join(name);
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn errors(so: &ScaledObject) -> Vec<String> {
    match parse_scaled_object(so, &ParseContext::default()) {
        Ok(_) => Vec::new(),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn documented_examples_compile() {
    for (file, target, activation, vars) in [
        ("average.yaml", 2.0, 2.0, vec!["trig_one", "trig_two"]),
        ("conditional.yaml", 2.0, 0.0, vec!["trig_one", "trig_two"]),
        ("count.yaml", 2.0, 0.0, vec!["trig_one", "trig_two"]),
        ("fallback-chain.yaml", 2.0, 0.0, vec!["best_metric", "slower_metric", "metric_backup"]),
    ] {
        let so = fixture(file);
        assert_eq!(errors(&so), Vec::<String>::new(), "{file}");
        let c = composite(&so).unwrap().unwrap();
        assert_eq!(
            (c.target, c.activation_target, c.metric_type),
            (target, activation, MetricTargetType::AverageValue)
        );
        let got: Vec<&str> = c.formula.variables().iter().map(|(v, _)| v.as_str()).collect();
        assert_eq!(got, vars, "{file}");
    }
    assert_eq!(COMPOSITE_METRIC_NAME, "composite-metric");
}

#[test]
fn unknown_name_in_formula_is_refused_with_its_offset() {
    assert_eq!(
        errors(&fixture("bad-formula.yaml")),
        ["spec.advanced.scalingModifiers.formula: unknown name \"trig_three\" (at character 47): every \
             variable must be the name of one of this ScaledObject's triggers (named: trig_one, trig_two)"]
    );
}

#[test]
fn each_rule_names_its_field() {
    let base = fixture("average.yaml");
    let with = |f: &dyn Fn(&mut ScaledObject)| {
        let mut so = base.clone();
        f(&mut so);
        errors(&so).join("\n")
    };
    let m = |so: &mut ScaledObject| {
        so.spec.advanced.as_mut().unwrap().scaling_modifiers.as_mut().unwrap().clone()
    };
    let set = |so: &mut ScaledObject, sm: ebb_api::ScalingModifiers| {
        so.spec.advanced.as_mut().unwrap().scaling_modifiers = Some(sm);
    };
    for (what, change, want) in [
        (
            "unknown variable",
            Box::new(|so: &mut ScaledObject| {
                let mut sm = m(so);
                sm.formula = Some("trig_one + trig_three".into());
                set(so, sm);
            }) as Box<dyn Fn(&mut ScaledObject)>,
            "spec.advanced.scalingModifiers.formula: unknown name \"trig_three\" (at character 11): every variable \
             must be the name of one of this ScaledObject's triggers (named: trig_one, trig_two)",
        ),
        (
            "no target",
            Box::new(|so: &mut ScaledObject| {
                let mut sm = m(so);
                sm.target = None;
                set(so, sm);
            }),
            "spec.advanced.scalingModifiers.target: required with a formula",
        ),
        (
            "target not a number",
            Box::new(|so: &mut ScaledObject| {
                let mut sm = m(so);
                sm.target = Some("two".into());
                set(so, sm);
            }),
            "spec.advanced.scalingModifiers.target: expected a number > 0, found \"two\"",
        ),
        (
            "activationTarget not a number",
            Box::new(|so: &mut ScaledObject| {
                let mut sm = m(so);
                sm.activation_target = Some("x".into());
                set(so, sm);
            }),
            "spec.advanced.scalingModifiers.activationTarget: expected a number ≥ 0, found \"x\"",
        ),
        (
            "Utilization",
            Box::new(|so: &mut ScaledObject| {
                let mut sm = m(so);
                sm.metric_type = Some(MetricTargetType::Utilization);
                set(so, sm);
            }),
            "spec.advanced.scalingModifiers.metricType: Utilization is not allowed; use AverageValue or Value",
        ),
        (
            "boolean formula",
            Box::new(|so: &mut ScaledObject| {
                let mut sm = m(so);
                sm.formula = Some("trig_one > trig_two".into());
                set(so, sm);
            }),
            "formula yields a boolean; it must yield a number (at character 0)",
        ),
        (
            "scalingModifiers fallback without formula",
            Box::new(|so: &mut ScaledObject| {
                so.spec.advanced = None;
                so.spec.fallback = Some(ebb_api::Fallback {
                    failure_threshold: 3,
                    replicas: 2,
                    behavior: ebb_api::FallbackBehavior::ScalingModifiers,
                });
            }),
            "spec.fallback.behavior: scalingModifiers needs spec.advanced.scalingModifiers.formula",
        ),
    ] {
        let got = with(&*change);
        assert!(got.contains(want), "{what}: {got}");
    }
}
