//! The cpu/memory parameter table (figures from KEDA's cpu and memory scaler documentation) and
//! the spec-level rules that involve them.

use ebb_api::ScaledObject;
use serde_json::{Value, json};

use super::*;
use crate::parse_scaled_object;

fn object(min: i64, triggers: Value) -> ScaledObject {
    serde_json::from_value(json!({
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": "w", "namespace": "ns"},
        "spec": {"scaleTargetRef": {"name": "w"}, "minReplicaCount": min, "triggers": triggers}
    }))
    .unwrap()
}

fn cron() -> Value {
    json!({"type": "cron", "metadata": {"timezone": "UTC", "start": "0 8 * * *", "end": "0 9 * * *", "desiredReplicas": "2"}})
}

/// One trigger alone, with minReplicaCount 1: its resource trigger or the error messages.
fn one(trigger: Value) -> Result<ResourceTrigger, Vec<String>> {
    let so = object(1, json!([trigger]));
    match parse_scaled_object(&so, &ParseContext::default()) {
        Ok(p) => {
            assert!(p.triggers.is_empty(), "resource triggers are never polled");
            Ok(resource_triggers(&so).remove(0))
        }
        Err(es) => Err(es.iter().map(ToString::to_string).collect()),
    }
}

#[test]
fn parameter_table() {
    use ResourceTarget::{AverageValue, Utilization};
    let ok = |resource: &str, target, container: Option<&str>| {
        Ok(ResourceTrigger {
            index: 0,
            resource: resource.into(),
            target,
            container: container.map(Into::into),
        })
    };
    let err = |fragment: &'static str| Err(fragment);
    let rows: Vec<(&str, Value, Result<ResourceTrigger, &str>)> = vec![
        // KEDA's cpu example: metricType Utilization, value "50".
        (
            "cpu utilization",
            json!({"type": "cpu", "metricType": "Utilization", "metadata": {"value": "50"}}),
            ok("cpu", Utilization(50), None),
        ),
        // The deprecated metadata.type still works.
        (
            "deprecated type",
            json!({"type": "cpu", "metadata": {"type": "Utilization", "value": "60"}}),
            ok("cpu", Utilization(60), None),
        ),
        (
            "both agree",
            json!({"type": "cpu", "metricType": "Utilization", "metadata": {"type": "Utilization", "value": "60"}}),
            ok("cpu", Utilization(60), None),
        ),
        (
            "container",
            json!({"type": "memory", "metricType": "Utilization", "metadata": {"value": "60", "containerName": "app"}}),
            ok("memory", Utilization(60), Some("app")),
        ),
        (
            "empty container is none",
            json!({"type": "memory", "metricType": "Utilization", "metadata": {"value": "60", "containerName": ""}}),
            ok("memory", Utilization(60), None),
        ),
        (
            "average value cpu",
            json!({"type": "cpu", "metricType": "AverageValue", "metadata": {"value": "500m"}}),
            ok("cpu", AverageValue("500m".into()), None),
        ),
        (
            "average value memory",
            json!({"type": "memory", "metadata": {"type": "AverageValue", "value": "128Mi"}}),
            ok("memory", AverageValue("128Mi".into()), None),
        ),
        (
            "value refused",
            json!({"type": "cpu", "metricType": "Value", "metadata": {"value": "50"}}),
            err("metricType Value is not allowed for cpu triggers"),
        ),
        ("no type", json!({"type": "cpu", "metadata": {"value": "50"}}), err("no target type")),
        (
            "bad metadata type",
            json!({"type": "cpu", "metadata": {"type": "Value", "value": "50"}}),
            err("metadata.type"),
        ),
        (
            "contradiction",
            json!({"type": "cpu", "metricType": "AverageValue", "metadata": {"type": "Utilization", "value": "50"}}),
            err("contradicts"),
        ),
        (
            "value required",
            json!({"type": "memory", "metricType": "Utilization", "metadata": {}}),
            err("metadata.value"),
        ),
        (
            "utilization not integer",
            json!({"type": "cpu", "metricType": "Utilization", "metadata": {"value": "50.5"}}),
            err("whole percentage"),
        ),
        (
            "utilization zero",
            json!({"type": "cpu", "metricType": "Utilization", "metadata": {"value": "0"}}),
            err("whole percentage"),
        ),
        (
            "bad quantity",
            json!({"type": "memory", "metricType": "AverageValue", "metadata": {"value": "lots"}}),
            err("quantity"),
        ),
    ];
    for (name, trigger, want) in rows {
        let got = one(trigger);
        match (&got, want) {
            (Ok(g), Ok(w)) => assert_eq!(*g, w, "{name}"),
            (Err(es), Err(fragment)) => {
                assert!(es.iter().any(|e| e.contains(fragment)), "{name}: {es:?} lacks {fragment:?}")
            }
            _ => panic!("{name}: got {got:?}"),
        }
    }
}

#[test]
fn deprecated_type_warns() {
    let so = object(1, json!([{"type": "cpu", "metadata": {"type": "Utilization", "value": "60"}}]));
    let p = parse_scaled_object(&so, &ParseContext::default()).unwrap();
    assert!(p.warnings.iter().any(|w| w.contains("metadata.type")), "{:?}", p.warnings);
}

#[test]
fn resource_triggers_keep_trigger_indexes_and_metric_names() {
    let so =
        object(0, json!([{"type": "cpu", "metricType": "Utilization", "metadata": {"value": "50"}}, cron()]));
    let p = parse_scaled_object(&so, &ParseContext::default()).unwrap();
    // The cron trigger keeps its index: s1-…, as KEDA names it.
    assert_eq!(p.metric_names(), ["s1-cron-UTC-08xxx-09xxx"]);
    assert_eq!(resource_triggers(&so)[0].index, 0);
}

#[test]
fn spec_rules_with_resource_triggers() {
    let errors = |so: &ScaledObject| -> Vec<String> {
        parse_scaled_object(so, &ParseContext::default())
            .map(|_| Vec::new())
            .unwrap_or_else(|es| es.iter().map(ToString::to_string).collect())
    };
    let cpu = json!({"type": "cpu", "metricType": "Utilization", "metadata": {"value": "50"}});
    // Only cpu/memory triggers cannot scale to zero.
    let e = errors(&object(0, json!([cpu.clone()])));
    assert!(
        e.iter().any(|e| e.starts_with("spec.minReplicaCount:") && e.contains("cannot scale from zero")),
        "{e:?}"
    );
    assert_eq!(errors(&object(1, json!([cpu.clone()]))), Vec::<String>::new());
    assert_eq!(errors(&object(0, json!([cpu.clone(), cron()]))), Vec::<String>::new());
    // useCachedMetrics is refused on them.
    let mut cached = cpu.clone();
    cached["useCachedMetrics"] = json!(true);
    let e = errors(&object(1, json!([cached])));
    assert!(e.iter().any(|e| e.contains("useCachedMetrics is not supported for cpu triggers")), "{e:?}");
    // Fallback needs another trigger.
    let mut so = object(1, json!([cpu]));
    so.spec.fallback = Some(ebb_api::Fallback { failure_threshold: 3, replicas: 2, ..Default::default() });
    let e = errors(&so);
    assert!(
        e.iter().any(|e| e.contains("fallback needs at least one trigger other than cpu or memory")),
        "{e:?}"
    );
}

#[test]
fn describe_names_the_hpa() {
    let t = ResourceTrigger {
        index: 0,
        resource: "cpu".into(),
        target: ResourceTarget::Utilization(50),
        container: None,
    };
    assert!(t.describe().contains(MEASURED_BY_HPA));
    assert!(t.build().is_err());
}

#[test]
fn missing_requests_names_trigger_and_container() {
    let so = object(
        1,
        json!([
            {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "50"}},
            {"type": "memory", "metricType": "Utilization", "metadata": {"value": "60", "containerName": "side"}},
        ]),
    );
    let containers: Vec<k8s_openapi::api::core::v1::Container> = serde_json::from_value(json!([
        {"name": "app", "resources": {"requests": {"cpu": "500m"}}},
        {"name": "side", "resources": {"limits": {"cpu": "1"}, "requests": {"memory": "0"}}},
        {"name": "bare"},
    ]))
    .unwrap();
    assert_eq!(
        missing_requests(&so, &containers),
        [
            "spec.triggers[0] (cpu): container \"bare\" of the scale target has no cpu request; set resources.requests.cpu on it",
            "spec.triggers[1] (memory): container \"side\" of the scale target has no memory request; set resources.requests.memory on it",
        ]
    );
}
