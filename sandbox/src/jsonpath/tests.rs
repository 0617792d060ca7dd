use serde_json::{Value, json};

use super::*;

fn scaled_object() -> Value {
    json!({
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "worker", "namespace": "default", "labels": {"app.kubernetes.io/name": "w"},
                     "creationTimestamp": "2025-01-01T00:00:00Z"},
        "spec": {"scaleTargetRef": {"name": "web"}, "minReplicaCount": 1, "maxReplicaCount": 10,
                 "triggers": [{"type": "cron", "metadata": {"timezone": "UTC"}},
                              {"type": "prometheus", "metadata": {"threshold": "5"}}]},
        "status": {
            "scaleTargetKind": "apps/v1.Deployment",
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "ScaledObjectReady"},
                {"type": "Active", "status": "False"},
                {"type": "Fallback", "status": "False"},
            ],
            "triggersTypes": "cron,prometheus",
        }
    })
}

#[test]
fn keda_scaledobject_printer_columns() {
    let so = scaled_object();
    let cases: &[(&str, Vec<Value>)] = &[
        (".status.scaleTargetKind", vec![json!("apps/v1.Deployment")]),
        (".spec.scaleTargetRef.name", vec![json!("web")]),
        (".spec.minReplicaCount", vec![json!(1)]),
        (".spec.maxReplicaCount", vec![json!(10)]),
        (r#".status.conditions[?(@.type=="Ready")].status"#, vec![json!("True")]),
        (r#".status.conditions[?(@.type=="Active")].status"#, vec![json!("False")]),
        (r#".status.conditions[?(@.type=="Paused")].status"#, vec![]),
        (".status.triggersTypes", vec![json!("cron,prometheus")]),
        (".status.authenticationsTypes", vec![]),
        (".metadata.creationTimestamp", vec![json!("2025-01-01T00:00:00Z")]),
    ];
    for (path, want) in cases {
        assert_eq!(&eval(path, &so).unwrap(), want, "{path}");
    }
}

#[test]
fn path_forms() {
    let so = scaled_object();
    let cases: &[(&str, Vec<Value>)] = &[
        (".spec.triggers[0].type", vec![json!("cron")]),
        (".spec.triggers[-1].type", vec![json!("prometheus")]),
        (".spec.triggers[5].type", vec![]),
        (".spec.triggers[*].type", vec![json!("cron"), json!("prometheus")]),
        (".spec.triggers[0:1].type", vec![json!("cron")]),
        (".spec.triggers[:].type", vec![json!("cron"), json!("prometheus")]),
        (".spec.triggers[0,1].type", vec![json!("cron"), json!("prometheus")]),
        (".metadata.labels['app.kubernetes.io/name']", vec![json!("w")]),
        (r#".metadata["name"]"#, vec![json!("worker")]),
        ("{.metadata.name}", vec![json!("worker")]),
        ("$.metadata.name", vec![json!("worker")]),
        ("metadata.name", vec![json!("worker")]),
        (".spec.scaleTargetRef.*", vec![json!("web")]),
        ("..threshold", vec![json!("5")]),
        (r#".status.conditions[?(@.status!="False")].type"#, vec![json!("Ready")]),
        (r#".status.conditions[?(@.reason)].type"#, vec![json!("Ready")]),
        (".spec.triggers[?(@.metadata.threshold)].type", vec![json!("prometheus")]),
        (".nope.deeper[0]", vec![]),
        (".spec.minReplicaCount.x", vec![]),
    ];
    for (path, want) in cases {
        assert_eq!(&eval(path, &so).unwrap(), want, "{path}");
    }
}

#[test]
fn numeric_filters() {
    let v = json!({"items": [{"n": 1, "name": "a"}, {"n": 5, "name": "b"}, {"n": 10, "name": "c"}]});
    let cases: &[(&str, Vec<&str>)] = &[
        (".items[?(@.n>4)].name", vec!["b", "c"]),
        (".items[?(@.n>=5)].name", vec!["b", "c"]),
        (".items[?(@.n<5)].name", vec!["a"]),
        (".items[?(@.n<=5)].name", vec!["a", "b"]),
        (".items[?(@.n==10)].name", vec!["c"]),
        (".items[?(@.name=='a')].n", vec!["1"]),
    ];
    for (path, want) in cases {
        let got: Vec<String> = eval(path, &v).unwrap().iter().map(to_text).collect();
        assert_eq!(got, *want, "{path}");
    }
}

#[test]
fn parse_errors() {
    for bad in [".a[", ".a[?(@.x==)]", ".a['x]", "{.a", ".a[x]", ".a[?@.x]"] {
        let e = JsonPath::parse(bad).expect_err(bad);
        assert_eq!(e.path, bad);
        assert!(!e.message.is_empty());
    }
}

#[test]
fn text_rendering() {
    assert_eq!(to_text(&json!("x")), "x");
    assert_eq!(to_text(&json!(3)), "3");
    assert_eq!(to_text(&json!(true)), "true");
    assert_eq!(to_text(&json!({"b": 1, "a": [1]})), r#"{"a":[1],"b":1}"#);
}
