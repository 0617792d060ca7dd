//! Behavior defaulting and validation, from Kubernetes objects and the seed fixtures.

use super::*;

#[derive(serde::Deserialize)]
struct Seed {
    behavior: k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerBehavior,
}

pub(super) fn seed(yaml: &str) -> Behavior {
    let s: Seed = serde_yaml::from_str(yaml).unwrap();
    Behavior::from_k8s(Some(&s.behavior)).unwrap()
}

pub(super) const CONSERVATIVE: &str =
    include_str!("../../../../tests/fixtures/seed/hpa-behavior-conservative.yaml");
pub(super) const AGGRESSIVE: &str =
    include_str!("../../../../tests/fixtures/seed/hpa-behavior-aggressive.yaml");

#[test]
fn absent_behavior_gives_the_defaults() {
    let want = Behavior {
        scale_up: rules(0, SelectPolicy::Max, &[Policy::pods(4, 15), Policy::percent(100, 15)]),
        scale_down: rules(300, SelectPolicy::Max, &[Policy::percent(100, 15)]),
    };
    assert_eq!(Behavior::from_k8s(None).unwrap(), want);
    assert_eq!(Behavior::default(), want);
    assert_eq!(Behavior::from_k8s(Some(&k8s_behavior("{}"))).unwrap(), want);
}

#[test]
fn missing_parts_are_filled_per_direction() {
    let cases: &[(&str, &str, Behavior)] = &[
        (
            "scaleUp with only selectPolicy",
            "scaleUp: {selectPolicy: Min}",
            Behavior {
                scale_up: rules(0, SelectPolicy::Min, &[Policy::pods(4, 15), Policy::percent(100, 15)]),
                ..Behavior::default()
            },
        ),
        (
            "scaleDown with only policies",
            "scaleDown: {policies: [{type: Pods, value: 1, periodSeconds: 60}]}",
            Behavior {
                scale_down: rules(300, SelectPolicy::Max, &[Policy::pods(1, 60)]),
                ..Behavior::default()
            },
        ),
        (
            "scaleDown with only a window",
            "scaleDown: {stabilizationWindowSeconds: 0}",
            Behavior {
                scale_down: rules(0, SelectPolicy::Max, &[Policy::percent(100, 15)]),
                ..Behavior::default()
            },
        ),
        (
            "scaleUp window and Disabled",
            "scaleUp: {stabilizationWindowSeconds: 120, selectPolicy: Disabled}",
            Behavior {
                scale_up: rules(
                    120,
                    SelectPolicy::Disabled,
                    &[Policy::pods(4, 15), Policy::percent(100, 15)],
                ),
                ..Behavior::default()
            },
        ),
        (
            "limits are accepted",
            "scaleUp: {stabilizationWindowSeconds: 3600, policies: [{type: Percent, value: 1, periodSeconds: 1800}]}",
            Behavior {
                scale_up: rules(3600, SelectPolicy::Max, &[Policy::percent(1, 1800)]),
                ..Behavior::default()
            },
        ),
    ];
    for (case, yaml, want) in cases {
        assert_eq!(&Behavior::from_k8s(Some(&k8s_behavior(yaml))).unwrap(), want, "{case}");
    }
}

#[test]
fn seeds_parse_to_the_documented_rules() {
    assert_eq!(
        seed(CONSERVATIVE),
        Behavior {
            scale_up: rules(60, SelectPolicy::Min, &[Policy::percent(50, 60), Policy::pods(2, 60)]),
            scale_down: rules(300, SelectPolicy::Max, &[Policy::percent(25, 60)]),
        }
    );
    assert_eq!(
        seed(AGGRESSIVE),
        Behavior {
            scale_up: rules(0, SelectPolicy::Max, &[Policy::percent(100, 10), Policy::pods(100, 10)]),
            scale_down: rules(300, SelectPolicy::Max, &[Policy::percent(10, 60)]),
        }
    );
}

#[test]
fn invalid_values_name_the_field() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "scaleUp: {policies: [{type: Pods, value: 0, periodSeconds: 15}]}",
            "scaleUp.policies[0].value",
            "scaleUp.policies[0].value: must be greater than zero, found 0",
        ),
        (
            "scaleDown: {policies: [{type: Pods, value: 1, periodSeconds: 15}, {type: Percent, value: -5, periodSeconds: 15}]}",
            "scaleDown.policies[1].value",
            "scaleDown.policies[1].value: must be greater than zero, found -5",
        ),
        (
            "scaleDown: {policies: [{type: Percent, value: 10, periodSeconds: 0}]}",
            "scaleDown.policies[0].periodSeconds",
            "scaleDown.policies[0].periodSeconds: must be between 1 and 1800 seconds, found 0",
        ),
        (
            "scaleUp: {policies: [{type: Percent, value: 10, periodSeconds: 1801}]}",
            "scaleUp.policies[0].periodSeconds",
            "scaleUp.policies[0].periodSeconds: must be between 1 and 1800 seconds, found 1801",
        ),
        (
            "scaleDown: {stabilizationWindowSeconds: 3601}",
            "scaleDown.stabilizationWindowSeconds",
            "scaleDown.stabilizationWindowSeconds: must be between 0 and 3600 seconds, found 3601",
        ),
        (
            "scaleUp: {stabilizationWindowSeconds: -1}",
            "scaleUp.stabilizationWindowSeconds",
            "scaleUp.stabilizationWindowSeconds: must be between 0 and 3600 seconds, found -1",
        ),
        (
            "scaleUp: {selectPolicy: Maximum}",
            "scaleUp.selectPolicy",
            "scaleUp.selectPolicy: must be Max, Min or Disabled, found \"Maximum\"",
        ),
        (
            "scaleDown: {policies: [{type: Replicas, value: 1, periodSeconds: 15}]}",
            "scaleDown.policies[0].type",
            "scaleDown.policies[0].type: must be Pods or Percent, found \"Replicas\"",
        ),
        (
            "scaleDown: {policies: []}",
            "scaleDown.policies",
            "scaleDown.policies: must list at least one policy",
        ),
    ];
    for (yaml, field, msg) in cases {
        let err = Behavior::from_k8s(Some(&k8s_behavior(yaml))).unwrap_err();
        assert_eq!(err.field(), *field, "{yaml}");
        assert_eq!(err.to_string(), *msg, "{yaml}");
        assert!(HpaCalculator::from_k8s(1, 5, Some(&k8s_behavior(yaml))).is_err(), "{yaml}");
    }
}

#[test]
fn hand_built_behavior_validation() {
    assert_eq!(Behavior::default().validate(), Ok(()));
    let bad =
        Behavior { scale_up: rules(0, SelectPolicy::Max, &[Policy::pods(4, 0)]), ..Behavior::default() };
    assert_eq!(bad.validate().unwrap_err().field(), "scaleUp.policies[0].periodSeconds");
}

#[test]
fn calculator_mode_follows_presence_of_behavior() {
    let legacy = HpaCalculator::from_k8s(1, 5, None).unwrap();
    assert_eq!(legacy.behavior(), None);
    let with = HpaCalculator::from_k8s(2, 6, Some(&k8s_behavior("scaleUp: {selectPolicy: Min}"))).unwrap();
    assert_eq!(with.behavior().map(|b| b.scale_up.select_policy), Some(SelectPolicy::Min));
    assert_eq!((with.min_replicas(), with.max_replicas()), (2, 6));
}

#[test]
fn tolerances_from_behavior() {
    let b = k8s_behavior("scaleUp: {tolerance: '0.05'}\nscaleDown: {tolerance: '0.2'}");
    assert_eq!(Tolerances::from_k8s(0.1, Some(&b)).unwrap(), Tolerances { scale_up: 0.05, scale_down: 0.2 });
    assert_eq!(Tolerances::from_k8s(0.1, None).unwrap(), Tolerances::uniform(0.1));
    let b = k8s_behavior("scaleUp: {tolerance: '-1'}");
    assert_eq!(Tolerances::from_k8s(0.1, Some(&b)).unwrap_err().field(), "scaleUp.tolerance");

    // Ratio 1.06: inside the default band, outside a 5 % scale-up tolerance.
    let mut calc = HpaCalculator::new(1, 20, Behavior::default());
    assert_eq!(calc.sync(at(0), 10, 10, &avg(106.0, 10.0)).desired, 10);
    let mut calc = calc.clone().with_tolerances(Tolerances { scale_up: 0.05, scale_down: 0.1 });
    assert_eq!(calc.tolerances().scale_up, 0.05);
    assert_eq!(calc.sync(at(15), 10, 10, &avg(106.0, 10.0)).desired, 11);
}
