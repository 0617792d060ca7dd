use std::sync::Arc;

use ebb_api::ScaledObject;
use ebb_api::constants::{
    ANNOTATION_PAUSED_REPLICAS, ANNOTATION_PAUSED_SCALE_IN, ANNOTATION_PAUSED_SCALE_OUT,
};
use ebb_scalers::{
    ParseContext, ParsedScaledObject, ScalerConfig, ScalerError, TriggerSpec, parse_scaled_object,
};
use serde_json::json;

use super::*;

pub(super) const CRON: &str = include_str!("../../../tests/fixtures/seed/cron-prescale.yaml");
const PROMETHEUS: &str = include_str!("../../../tests/fixtures/seed/prometheus-ultra-fast.yaml");
const CRON_METRIC: &str = "s0-cron-Asia-Seoul-00,15,30,45xxxx-05,20,35,50xxxx";
const UID: &str = "6f1c2b9e-0d4a-4c55-9a57-3f2d8e1b7c10";

pub(super) fn so_from(yaml: &str) -> ScaledObject {
    let mut so: ScaledObject = serde_yaml::from_str(yaml).unwrap();
    so.metadata.namespace = Some("apps".into());
    so.metadata.uid = Some(UID.into());
    so
}

pub(super) fn parsed(so: &ScaledObject) -> ParsedScaledObject {
    parse_scaled_object(so, &ParseContext::default()).unwrap()
}

pub(super) fn hpa_json(so: &ScaledObject) -> serde_json::Value {
    hpa_as_apply_patch(&desired_hpa(so, &parsed(so)).unwrap())
}

/// The seed cron object with its triggers and a prometheus-seed behavior swapped in.
fn cron_with_behavior() -> ScaledObject {
    let prom = so_from(PROMETHEUS);
    let mut so = so_from(CRON);
    so.spec.advanced = prom.spec.advanced.clone();
    so
}

#[test]
fn seed_cron_fixture_gives_keda_shaped_hpa() {
    let got = hpa_json(&so_from(CRON));
    let want = json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": "keda-hpa-php-apache-cron-scaled",
            "namespace": "apps",
            "labels": {
                "app.kubernetes.io/managed-by": "ebb-operator",
                "app.kubernetes.io/name": "keda-hpa-php-apache-cron-scaled",
                "app.kubernetes.io/part-of": "php-apache-cron-scaled",
                "app.kubernetes.io/version": VERSION,
                "scaledobject.keda.sh/name": "php-apache-cron-scaled",
            },
            "ownerReferences": [{
                "apiVersion": "keda.sh/v1alpha1",
                "kind": "ScaledObject",
                "name": "php-apache-cron-scaled",
                "uid": UID,
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": {
            "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "php-apache" },
            "minReplicas": 1,
            "maxReplicas": 2,
            "metrics": [{
                "type": "External",
                "external": {
                    "metric": {
                        "name": CRON_METRIC,
                        "selector": { "matchLabels": { "scaledobject.keda.sh/name": "php-apache-cron-scaled" } },
                    },
                    "target": { "type": "AverageValue", "averageValue": "1" },
                },
            }],
        },
    });
    assert_eq!(got, want);
}

#[test]
fn replica_bounds_follow_keda() {
    // (minReplicaCount, maxReplicaCount, idleReplicaCount) → (minReplicas, maxReplicas)
    let cases = [
        (None, None, None, 1, 100),
        (Some(0), Some(2), None, 1, 2),
        (Some(3), Some(7), None, 3, 7),
        (Some(2), Some(5), Some(0), 2, 5),
        (Some(0), Some(4), None, 1, 4),
    ];
    for (min, max, idle, want_min, want_max) in cases {
        let mut so = so_from(CRON);
        so.spec.min_replica_count = min;
        so.spec.max_replica_count = max;
        so.spec.idle_replica_count = idle;
        let spec = desired_hpa(&so, &parsed(&so)).unwrap().spec.unwrap();
        assert_eq!(
            (spec.min_replicas, spec.max_replicas),
            (Some(want_min), want_max),
            "{min:?}/{max:?}/{idle:?}"
        );
    }
}

#[test]
fn scale_target_defaults_to_apps_v1_deployment() {
    let mut so = so_from(CRON);
    so.spec.scale_target_ref.api_version = None;
    so.spec.scale_target_ref.kind = Some(String::new());
    let got = hpa_json(&so);
    assert_eq!(
        got["spec"]["scaleTargetRef"],
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "php-apache"})
    );

    so.spec.scale_target_ref.api_version = Some("argoproj.io/v1alpha1".into());
    so.spec.scale_target_ref.kind = Some("Rollout".into());
    let got = hpa_json(&so);
    assert_eq!(
        got["spec"]["scaleTargetRef"],
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "php-apache"})
    );
}

#[test]
fn behavior_is_copied_from_the_spec() {
    let so = cron_with_behavior();
    let got = hpa_json(&so);
    assert_eq!(
        got["spec"]["behavior"],
        json!({"scaleUp": {"stabilizationWindowSeconds": 0, "policies": [{"type": "Percent", "value": 100, "periodSeconds": 5}]}})
    );
    // The prometheus seed's own behavior, read with ebb-api's types, is what was copied.
    let prom = so_from(PROMETHEUS);
    assert_eq!(
        desired_hpa(&so, &parsed(&so)).unwrap().spec.unwrap().behavior.as_ref(),
        prom.spec.hpa_behavior()
    );
    // Without one, the HPA has none at all (KEDA writes none).
    assert!(hpa_json(&so_from(CRON))["spec"].get("behavior").is_none());
}

#[test]
fn custom_hpa_name_names_the_hpa_and_its_label() {
    let mut so = so_from(CRON);
    so.spec.advanced = Some(ebb_api::AdvancedConfig {
        horizontal_pod_autoscaler_config: Some(ebb_api::HorizontalPodAutoscalerConfig {
            name: Some("php-hpa".into()),
            behavior: None,
        }),
        ..Default::default()
    });
    let got = hpa_json(&so);
    assert_eq!(got["metadata"]["name"], "php-hpa");
    assert_eq!(got["metadata"]["labels"]["app.kubernetes.io/name"], "php-hpa");
    assert_eq!(got["metadata"]["labels"]["app.kubernetes.io/part-of"], "php-apache-cron-scaled");
}

#[test]
fn value_metric_type_sets_value_not_average_value() {
    let mut so = so_from(CRON);
    so.spec.triggers[0].metric_type = Some(MetricTargetType::Value);
    let got = hpa_json(&so);
    assert_eq!(got["spec"]["metrics"][0]["external"]["target"], json!({"type": "Value", "value": "1"}));
}

#[test]
fn missing_uid_or_name_is_an_error() {
    let mut so = so_from(CRON);
    let p = parsed(&so);
    so.metadata.uid = None;
    assert_eq!(desired_hpa(&so, &p).unwrap_err(), HpaError::MissingUid("php-apache-cron-scaled".into()));
    so.metadata.uid = Some(String::new());
    assert!(matches!(desired_hpa(&so, &p), Err(HpaError::MissingUid(_))));
    so.metadata.uid = Some(UID.into());
    so.metadata.name = None;
    assert_eq!(desired_hpa(&so, &p).unwrap_err(), HpaError::MissingName);
}

#[derive(Debug)]
struct Fixed(f64);

impl ScalerConfig for Fixed {
    fn metric_part(&self) -> String {
        "fixed".into()
    }
    fn target(&self) -> f64 {
        self.0
    }
    fn activation_target(&self) -> f64 {
        0.0
    }
    fn build(&self) -> Result<Arc<dyn ebb_scalers::Scaler>, ScalerError> {
        Err(ScalerError::Config("test scaler".into()))
    }
    fn describe(&self) -> String {
        "fixed".into()
    }
}

fn fixed(index: usize, metric_type: MetricTargetType, target: f64) -> TriggerSpec {
    TriggerSpec::new(index, "fixed", None, metric_type, false, Arc::new(Fixed(target)))
}

#[test]
fn one_metric_per_trigger_in_order_with_exact_quantities() {
    let so = so_from(CRON);
    let p = ParsedScaledObject {
        triggers: vec![
            fixed(0, MetricTargetType::AverageValue, 2.007),
            fixed(1, MetricTargetType::Value, 0.1 * 3.0),
            fixed(2, MetricTargetType::AverageValue, 2500.0),
            fixed(3, MetricTargetType::AverageValue, 0.0004),
        ],
        warnings: vec![],
    };
    let got = hpa_as_apply_patch(&desired_hpa(&so, &p).unwrap());
    let metrics = got["spec"]["metrics"].as_array().unwrap();
    let summary: Vec<(String, serde_json::Value)> = metrics
        .iter()
        .map(|m| {
            (m["external"]["metric"]["name"].as_str().unwrap().to_owned(), m["external"]["target"].clone())
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("s0-fixed".to_owned(), json!({"type": "AverageValue", "averageValue": "2007m"})),
            ("s1-fixed".to_owned(), json!({"type": "Value", "value": "300m"})),
            ("s2-fixed".to_owned(), json!({"type": "AverageValue", "averageValue": "2500"})),
            ("s3-fixed".to_owned(), json!({"type": "AverageValue", "averageValue": "1m"})),
        ]
    );
    for m in metrics {
        assert_eq!(
            m["external"]["metric"]["selector"],
            json!({"matchLabels": {"scaledobject.keda.sh/name": "php-apache-cron-scaled"}})
        );
    }
}

#[test]
fn utilization_is_rejected_for_external_metrics() {
    let so = so_from(CRON);
    let p = ParsedScaledObject {
        triggers: vec![fixed(0, MetricTargetType::Utilization, 50.0)],
        warnings: vec![],
    };
    assert_eq!(
        desired_hpa(&so, &p).unwrap_err(),
        HpaError::UnsupportedMetricType { metric: "s0-fixed".into(), metric_type: "Utilization" }
    );
}

#[test]
fn target_milli_is_exact_for_decimal_fractions() {
    let cases =
        [(2.007, 2007), (0.001 * 9.0, 9), (0.1 * 3.0, 300), (1.0, 1000), (0.0004, 1), (1.5, 1500), (-3.0, 0)];
    for (v, want) in cases {
        assert_eq!(quantity::to_milli(v), want, "{v}");
    }
}

#[test]
fn paused_scale_directions_disable_the_hpa_policy() {
    let with = |pairs: &[(&str, &str)], base: ScaledObject| {
        let mut so = base;
        so.metadata.annotations =
            Some(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect());
        hpa_json(&so)["spec"].get("behavior").cloned()
    };
    type Case<'a> = (&'a [(&'a str, &'a str)], Option<serde_json::Value>);
    let cases: Vec<Case> = vec![
        (&[], None),
        (&[(ANNOTATION_PAUSED_SCALE_IN, "true")], Some(json!({"scaleDown": {"selectPolicy": "Disabled"}}))),
        (&[(ANNOTATION_PAUSED_SCALE_OUT, "true")], Some(json!({"scaleUp": {"selectPolicy": "Disabled"}}))),
        (&[(ANNOTATION_PAUSED_SCALE_IN, "false")], None),
        (&[(ANNOTATION_PAUSED_SCALE_IN, "yes")], Some(json!({"scaleDown": {"selectPolicy": "Disabled"}}))),
    ];
    for (ann, want) in cases {
        assert_eq!(with(ann, so_from(CRON)), want, "{ann:?}");
    }
    // Added to a copied behavior, keeping its policies.
    let got = with(&[(ANNOTATION_PAUSED_SCALE_OUT, "true")], cron_with_behavior()).unwrap();
    assert_eq!(
        got,
        json!({"scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Disabled",
                           "policies": [{"type": "Percent", "value": 100, "periodSeconds": 5}]}})
    );
}

#[test]
fn paused_replicas_pin_both_bounds() {
    let cases = [("3", 3, 3), ("0", 1, 1), ("junk", 1, 2)];
    for (v, want_min, want_max) in cases {
        let mut so = so_from(CRON);
        let p = parsed(&so);
        so.metadata.annotations =
            Some(BTreeMap::from([(ANNOTATION_PAUSED_REPLICAS.to_owned(), v.to_owned())]));
        let spec = desired_hpa(&so, &p).unwrap().spec.unwrap();
        assert_eq!((spec.min_replicas, spec.max_replicas), (Some(want_min), want_max), "{v}");
    }
}

#[test]
fn apply_patch_carries_type_meta_and_no_status() {
    let mut hpa = desired_hpa(&so_from(CRON), &parsed(&so_from(CRON))).unwrap();
    hpa.status = Some(Default::default());
    let v = hpa_as_apply_patch(&hpa);
    assert_eq!(v["apiVersion"], "autoscaling/v2");
    assert_eq!(v["kind"], "HorizontalPodAutoscaler");
    assert!(v.get("status").is_none());
}

#[test]
fn seed_prometheus_fixture_hpa_carries_its_behavior_and_both_metrics() {
    let so = so_from(PROMETHEUS);
    let hpa = desired_hpa(&so, &parsed(&so)).unwrap();
    let spec = hpa.spec.unwrap();
    assert!(spec.behavior.is_some());
    assert_eq!(spec.behavior.as_ref(), so.spec.hpa_behavior());
    let names: Vec<String> =
        spec.metrics.unwrap().iter().map(|m| m.external.as_ref().unwrap().metric.name.clone()).collect();
    assert_eq!(names, ["s0-prometheus", "s1-prometheus"]);
}

/// The HPA builder and the scale loop read `paused-scale-in`/`paused-scale-out` the same way,
/// and as KEDA does (Go's `strconv.ParseBool`; a value that is not a boolean means paused).
#[test]
fn direction_pauses_agree_between_hpa_and_loop() {
    // (value, paused per KEDA's documented semantics)
    let table = [("true", true), ("1", true), ("T", true), ("yes", true), ("false", false), ("0", false)];
    for (v, keda) in table {
        for key in [ANNOTATION_PAUSED_SCALE_IN, ANNOTATION_PAUSED_SCALE_OUT] {
            let mut so = so_from(CRON);
            let p = parsed(&so);
            so.metadata.annotations = Some(BTreeMap::from([(key.to_owned(), v.to_owned())]));
            let b = desired_hpa(&so, &p).unwrap().spec.unwrap().behavior;
            let rules = b.as_ref().and_then(|b| {
                if key == ANNOTATION_PAUSED_SCALE_IN { b.scale_down.as_ref() } else { b.scale_up.as_ref() }
            });
            let hpa_disabled = rules.and_then(|r| r.select_policy.as_deref()) == Some("Disabled");
            let g = loop_guards(&so);
            let loop_paused =
                if key == ANNOTATION_PAUSED_SCALE_IN { g.scale_in_paused } else { g.scale_out_paused };
            assert_eq!((hpa_disabled, loop_paused), (keda, keda), "{key}: {v:?} (hpa, loop)");
        }
    }
}

const MODIFIERS_AVERAGE: &str = include_str!("../../../tests/fixtures/scaling-modifiers/average.yaml");

#[test]
fn scaling_modifiers_give_one_composite_metric() {
    let so = so_from(MODIFIERS_AVERAGE);
    let got = hpa_json(&so);
    // KEDA's composite metric: one External metric, its selector the ScaledObject's name, the
    // modifiers' target and metric type.
    assert_eq!(
        got["spec"]["metrics"],
        json!([{
            "type": "External",
            "external": {
                "metric": {
                    "name": "composite-metric",
                    "selector": {"matchLabels": {"scaledobject.keda.sh/name": "modifiers-average"}},
                },
                "target": {"type": "AverageValue", "averageValue": "2"},
            },
        }])
    );
    let mut value = so.clone();
    if let Some(m) = value.spec.advanced.as_mut().and_then(|a| a.scaling_modifiers.as_mut()) {
        m.metric_type = Some(ebb_api::MetricTargetType::Value);
        m.target = Some("2.5".into());
    }
    assert_eq!(
        hpa_json(&value)["spec"]["metrics"][0]["external"]["target"],
        json!({"type": "Value", "value": "2500m"})
    );
    assert_eq!(crate::status::composite_scaler_name(&so).as_deref(), Some("composite-metric"));
    assert_eq!(crate::status::composite_scaler_name(&so_from(CRON)), None);
}

#[test]
fn scaling_modifiers_keep_cpu_metrics_before_the_composite() {
    let mut so = so_from(MODIFIERS_AVERAGE);
    so.spec.triggers.push(
        serde_json::from_value(
            json!({"type": "cpu", "metricType": "Utilization", "metadata": {"value": "60"}}),
        )
        .unwrap(),
    );
    let got = hpa_json(&so);
    let types: Vec<&str> =
        got["spec"]["metrics"].as_array().unwrap().iter().map(|m| m["type"].as_str().unwrap()).collect();
    // KEDA: the Resource metrics, then the composite metric in place of the external ones.
    assert_eq!(types, ["Resource", "External"]);
    assert_eq!(got["spec"]["metrics"][1]["external"]["metric"]["name"], "composite-metric");
}
