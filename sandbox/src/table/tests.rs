use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use super::*;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-01-01T03:02:00Z").unwrap().with_timezone(&Utc)
}

const CREATED: &str = "2025-01-01T00:00:00Z"; // 3h2m before now()

fn names(cols: &[Column]) -> Vec<&str> {
    cols.iter().map(|c| c.name.as_str()).collect()
}

fn cells(cols: &[Column], obj: &Value) -> Vec<Value> {
    let t = table(cols, std::slice::from_ref(obj), json!({}), IncludeObject::None, now());
    t["rows"][0]["cells"].as_array().unwrap().clone()
}

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "resourceVersion": "42", "uid": "u-1",
                     "labels": {"app": "web"}, "creationTimestamp": CREATED},
        "spec": {"replicas": 3,
                 "selector": {"matchLabels": {"app": "web"},
                              "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]}]},
                 "template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.27"},
                                                      {"name": "sidecar", "image": "busybox"}]}}},
        "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
    })
}

fn hpa(metrics: Value, current: Value) -> Value {
    json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "keda-hpa-worker", "namespace": "default", "creationTimestamp": CREATED},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": 1, "maxReplicas": 10, "metrics": metrics},
        "status": {"currentReplicas": 2, "desiredReplicas": 2, "currentMetrics": current}
    })
}

fn external(target: Value) -> Value {
    json!({"type": "External", "external": {"metric": {"name": "s0-cron"}, "target": target}})
}

#[test]
fn table_json_shape() {
    let cols = builtin_columns("apps", "Deployment");
    let d = deployment();
    let t = table(
        &cols,
        std::slice::from_ref(&d),
        json!({"resourceVersion": "99", "continue": ""}),
        IncludeObject::default(),
        now(),
    );
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(t["metadata"], json!({"resourceVersion": "99"}));
    let defs = t["columnDefinitions"].as_array().unwrap();
    assert_eq!(defs.len(), 8);
    assert_eq!(defs[0]["name"], "Name");
    assert_eq!(defs[0]["type"], "string");
    assert_eq!(defs[0]["format"], "name");
    assert_eq!(defs[0]["priority"], 0);
    assert!(defs[0]["description"].as_str().unwrap().len() > 10);
    assert_eq!(defs[5]["name"], "Containers");
    assert_eq!(defs[5]["priority"], 1);
    let keys: Vec<&String> = defs[1].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["description", "format", "name", "priority", "type"]);
    let rows = t["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["cells"].as_array().unwrap().len(), 8);
    assert_eq!(
        rows[0]["object"],
        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": d["metadata"]})
    );
    // includeObject=Object / None
    let t = table(&cols, std::slice::from_ref(&d), json!({}), IncludeObject::Object, now());
    assert_eq!(t["rows"][0]["object"], d);
    assert_eq!(t["metadata"], json!({}));
    let t = table(&cols, std::slice::from_ref(&d), json!(null), IncludeObject::None, now());
    assert_eq!(t["rows"][0]["object"], Value::Null);
    // an empty list still has columns and an empty rows array
    let t = table(&cols, &[], json!({"resourceVersion": "7"}), IncludeObject::Metadata, now());
    assert_eq!(t["rows"], json!([]));
    assert_eq!(t["columnDefinitions"].as_array().unwrap().len(), 8);
}

#[test]
fn include_object_query() {
    assert_eq!(IncludeObject::from_query(""), Some(IncludeObject::Metadata));
    assert_eq!(IncludeObject::from_query("Metadata"), Some(IncludeObject::Metadata));
    assert_eq!(IncludeObject::from_query("Object"), Some(IncludeObject::Object));
    assert_eq!(IncludeObject::from_query("None"), Some(IncludeObject::None));
    assert_eq!(IncludeObject::from_query("all"), None);
}

#[test]
fn deployment_row_exact_cells() {
    let cols = builtin_columns("apps", "Deployment");
    assert_eq!(
        names(&cols),
        ["Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector"]
    );
    assert_eq!(
        cells(&cols, &deployment()),
        vec![
            json!("web"),
            json!("2/3"),
            json!(3),
            json!(2),
            json!("3h2m"),
            json!("app,sidecar"),
            json!("nginx:1.27,busybox"),
            json!("app=web,tier in (be,fe)"),
        ]
    );
    // a fresh deployment without status; replicas defaults to 1
    let fresh = json!({"metadata": {"name": "new", "creationTimestamp": "2025-01-01T03:01:30Z"},
                       "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"spec": {"containers": []}}}});
    assert_eq!(
        cells(&cols, &fresh),
        vec![
            json!("new"),
            json!("0/1"),
            json!(0),
            json!(0),
            json!("30s"),
            json!(""),
            json!(""),
            json!("a=b")
        ]
    );
}

#[test]
fn statefulset_row() {
    let cols = builtin_columns("apps", "StatefulSet");
    assert_eq!(names(&cols), ["Name", "Ready", "Age", "Containers", "Images"]);
    let mut s = deployment();
    s["kind"] = json!("StatefulSet");
    assert_eq!(
        cells(&cols, &s),
        vec![json!("web"), json!("2/3"), json!("3h2m"), json!("app,sidecar"), json!("nginx:1.27,busybox")]
    );
}

#[test]
fn hpa_rows_exact_cells() {
    let cols = builtin_columns("autoscaling", "HorizontalPodAutoscaler");
    assert_eq!(names(&cols), ["Name", "Reference", "Targets", "MinPods", "MaxPods", "Replicas", "Age"]);
    let avg = external(json!({"type": "AverageValue", "averageValue": "1"}));
    // no current metrics yet
    let h = hpa(json!([avg]), json!(null));
    assert_eq!(
        cells(&cols, &h),
        vec![
            json!("keda-hpa-worker"),
            json!("Deployment/web"),
            json!("<unknown>/1 (avg)"),
            json!("1"),
            json!(10),
            json!(2),
            json!("3h2m")
        ]
    );
    // with a current external average value
    let h = hpa(
        json!([avg]),
        json!([{"type": "External", "external": {"metric": {"name": "s0-cron"}, "current": {"averageValue": "5"}}}]),
    );
    assert_eq!(cells(&cols, &h)[2], json!("5/1 (avg)"));
    // minReplicas unset
    let mut h2 = h.clone();
    h2["spec"].as_object_mut().unwrap().remove("minReplicas");
    assert_eq!(cells(&cols, &h2)[3], json!("<unset>"));
}

#[test]
fn hpa_targets_formats() {
    let cols = builtin_columns("autoscaling", "HorizontalPodAutoscaler");
    let cases = [
        (json!([]), json!(null), "<none>"),
        (json!([external(json!({"type": "Value", "value": "10"}))]), json!(null), "<unknown>/10"),
        (
            json!([external(json!({"type": "Value", "value": "10"}))]),
            json!([{"type": "External", "external": {"current": {"value": "7"}}}]),
            "7/10",
        ),
        (
            json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]),
            json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 23, "averageValue": "120m"}}}]),
            "cpu: 23%/50%",
        ),
        (
            json!([{"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "512Mi"}}}]),
            json!(null),
            "memory: <unknown>/512Mi",
        ),
        (
            json!([{"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "100"}}}]),
            json!([{"type": "Pods", "pods": {"current": {"averageValue": "42"}}}]),
            "42/100",
        ),
        (
            json!([{"type": "Object", "object": {"target": {"type": "AverageValue", "averageValue": "3"}}}]),
            json!(null),
            "<unknown>/3 (avg)",
        ),
        (
            json!([
                external(json!({"type": "AverageValue", "averageValue": "1"})),
                external(json!({"type": "AverageValue", "averageValue": "2"})),
                external(json!({"type": "AverageValue", "averageValue": "3"})),
                {"type": "Weird"}
            ]),
            json!(null),
            "<unknown>/1 (avg), <unknown>/2 (avg) + 2 more...",
        ),
    ];
    for (metrics, current, want) in cases {
        let h = hpa(metrics.clone(), current);
        assert_eq!(cells(&cols, &h)[2], json!(want), "{metrics}");
    }
}

#[test]
fn core_kind_rows() {
    let meta = |extra: Value| {
        let mut m = json!({"metadata": {"name": "x", "creationTimestamp": CREATED}});
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        m
    };
    type Case = (&'static str, &'static str, Value, Vec<&'static str>, Vec<Value>);
    let cases: Vec<Case> = vec![
        (
            "",
            "Namespace",
            meta(json!({"status": {"phase": "Terminating"}})),
            vec!["Name", "Status", "Age"],
            vec![json!("x"), json!("Terminating"), json!("3h2m")],
        ),
        (
            "",
            "Namespace",
            meta(json!({})),
            vec!["Name", "Status", "Age"],
            vec![json!("x"), json!("Active"), json!("3h2m")],
        ),
        (
            "",
            "Secret",
            meta(json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}})),
            vec!["Name", "Type", "Data", "Age"],
            vec![json!("x"), json!("kubernetes.io/tls"), json!(2), json!("3h2m")],
        ),
        (
            "",
            "Secret",
            meta(json!({"stringData": {"a": "1"}, "data": {"a": "MQ==", "b": ""}})),
            vec!["Name", "Type", "Data", "Age"],
            vec![json!("x"), json!("Opaque"), json!(2), json!("3h2m")],
        ),
        (
            "",
            "ConfigMap",
            meta(json!({"data": {"a": "1"}, "binaryData": {"b": ""}})),
            vec!["Name", "Data", "Age"],
            vec![json!("x"), json!(2), json!("3h2m")],
        ),
        (
            "",
            "ServiceAccount",
            meta(json!({"secrets": [{"name": "t"}]})),
            vec!["Name", "Secrets", "Age"],
            vec![json!("x"), json!(1), json!("3h2m")],
        ),
        (
            "coordination.k8s.io",
            "Lease",
            meta(json!({"spec": {"holderIdentity": "op-1"}})),
            vec!["Name", "Holder", "Age"],
            vec![json!("x"), json!("op-1"), json!("3h2m")],
        ),
        (
            "admissionregistration.k8s.io",
            "ValidatingWebhookConfiguration",
            meta(json!({"webhooks": [{}, {}]})),
            vec!["Name", "Webhooks", "Age"],
            vec![json!("x"), json!(2), json!("3h2m")],
        ),
        (
            "apiregistration.k8s.io",
            "APIService",
            meta(json!({"spec": {"service": {"namespace": "keda", "name": "metrics"}},
                        "status": {"conditions": [{"type": "Available", "status": "False", "reason": "FailedDiscoveryCheck"}]}})),
            vec!["Name", "Service", "Available", "Age"],
            vec![json!("x"), json!("keda/metrics"), json!("False (FailedDiscoveryCheck)"), json!("3h2m")],
        ),
        (
            "apiregistration.k8s.io",
            "APIService",
            meta(
                json!({"spec": {}, "status": {"conditions": [{"type": "Available", "status": "True", "reason": "Local"}]}}),
            ),
            vec!["Name", "Service", "Available", "Age"],
            vec![json!("x"), json!("Local"), json!("True"), json!("3h2m")],
        ),
        (
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            meta(json!({})),
            vec!["Name", "Created At"],
            vec![json!("x"), json!("2025-01-01T00:00:00Z")],
        ),
        (
            "",
            "Service",
            meta(json!({"spec": {"type": "NodePort", "clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"],
                                 "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
                                 "selector": {"app": "web", "tier": "fe"}}})),
            vec!["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector"],
            vec![
                json!("x"),
                json!("NodePort"),
                json!("10.0.0.1"),
                json!("<none>"),
                json!("80:30080/TCP,53/UDP"),
                json!("3h2m"),
                json!("app=web,tier=fe"),
            ],
        ),
        ("example.com", "Widget", meta(json!({})), vec!["Name", "Age"], vec![json!("x"), json!("3h2m")]),
    ];
    for (group, kind, obj, want_names, want_cells) in cases {
        let cols = builtin_columns(group, kind);
        assert_eq!(names(&cols), want_names, "{kind}");
        assert_eq!(cells(&cols, &obj), want_cells, "{kind}");
    }
}

#[test]
fn event_rows_core_and_events_api() {
    let cols = builtin_columns("", "Event");
    assert_eq!(
        names(&cols),
        [
            "Last Seen",
            "Type",
            "Reason",
            "Object",
            "Subobject",
            "Source",
            "Message",
            "First Seen",
            "Count",
            "Name"
        ]
    );
    let core = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "worker.1", "creationTimestamp": CREATED},
        "involvedObject": {"kind": "ScaledObject", "name": "worker", "fieldPath": ""},
        "type": "Normal", "reason": "KEDAScalersStarted", "message": " Started scalers \n",
        "source": {"component": "keda-operator"},
        "firstTimestamp": "2025-01-01T01:00:00Z", "lastTimestamp": "2025-01-01T03:00:00Z", "count": 4
    });
    assert_eq!(
        cells(&cols, &core),
        vec![
            json!("2m"),
            json!("Normal"),
            json!("KEDAScalersStarted"),
            json!("scaledobject/worker"),
            json!(""),
            json!("keda-operator"),
            json!("Started scalers"),
            json!("122m"),
            json!(4),
            json!("worker.1")
        ]
    );
    let new_api = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "e2", "creationTimestamp": CREATED},
        "regarding": {"kind": "Deployment", "name": "web"}, "type": "Warning", "reason": "Failed",
        "note": "boom", "reportingController": "ebb", "reportingInstance": "ebb-0",
        "eventTime": "2025-01-01T03:01:00.000000Z"
    });
    let cols = builtin_columns("events.k8s.io", "Event");
    assert_eq!(
        cells(&cols, &new_api),
        vec![
            json!("60s"),
            json!("Warning"),
            json!("Failed"),
            json!("deployment/web"),
            json!(""),
            json!("ebb, ebb-0"),
            json!("boom"),
            json!("60s"),
            json!(1),
            json!("e2")
        ]
    );
}

#[test]
fn crd_columns_keda_scaledobject() {
    let printer = json!([
        {"jsonPath": ".status.scaleTargetKind", "name": "ScaleTargetKind", "type": "string"},
        {"jsonPath": ".spec.scaleTargetRef.name", "name": "ScaleTargetName", "type": "string"},
        {"jsonPath": ".spec.minReplicaCount", "name": "Min", "type": "integer"},
        {"jsonPath": ".spec.maxReplicaCount", "name": "Max", "type": "integer"},
        {"jsonPath": ".status.conditions[?(@.type==\"Ready\")].status", "name": "Ready", "type": "string"},
        {"jsonPath": ".status.conditions[?(@.type==\"Paused\")].status", "name": "Paused", "type": "string"},
        {"jsonPath": ".status.triggersTypes", "name": "Triggers", "type": "string", "priority": 1,
         "description": "Trigger types"},
        {"jsonPath": ".metadata.creationTimestamp", "name": "Age", "type": "date"}
    ]);
    let cols = crd_columns(Some(&printer));
    assert_eq!(
        names(&cols),
        ["Name", "ScaleTargetKind", "ScaleTargetName", "Min", "Max", "Ready", "Paused", "Triggers", "Age"]
    );
    assert_eq!(cols[0].format, "name");
    assert_eq!(cols[7].priority, 1);
    assert_eq!(cols[7].description, "Trigger types");
    assert_eq!(cols[8].type_, "date");
    let so = json!({
        "metadata": {"name": "worker", "creationTimestamp": "2024-12-29T01:00:00Z"},
        "spec": {"scaleTargetRef": {"name": "web"}, "minReplicaCount": 0, "maxReplicaCount": 10.0},
        "status": {"scaleTargetKind": "apps/v1.Deployment", "triggersTypes": "cron",
                   "conditions": [{"type": "Ready", "status": "True"}]}
    });
    assert_eq!(
        cells(&cols, &so),
        vec![
            json!("worker"),
            json!("apps/v1.Deployment"),
            json!("web"),
            json!(0),
            json!(10),
            json!("True"),
            Value::Null,
            json!("cron"),
            json!("3d2h")
        ]
    );
    // a date column with a bad timestamp, and non-matching types
    let odd = json!({"metadata": {"name": "o", "creationTimestamp": "yesterday"},
                     "spec": {"minReplicaCount": "one", "maxReplicaCount": null, "scaleTargetRef": {"name": 5}}});
    let c = cells(&cols, &odd);
    assert_eq!(c[2], json!("5"));
    assert_eq!(c[3], Value::Null);
    assert_eq!(c[4], Value::Null);
    assert_eq!(c[8], json!("<invalid>"));
}

#[test]
fn crd_columns_default_and_other_types() {
    for none in [None, Some(json!([]))] {
        let cols = crd_columns(none.as_ref());
        assert_eq!(names(&cols), ["Name", "Age"]);
        let c = cells(&cols, &json!({"metadata": {"name": "a", "creationTimestamp": CREATED}}));
        assert_eq!(c, vec![json!("a"), json!("3h2m")]);
    }
    let printer = json!([
        {"jsonPath": ".spec.ratio", "name": "Ratio", "type": "number"},
        {"jsonPath": ".spec.on", "name": "On", "type": "boolean"},
        {"jsonPath": ".spec.list", "name": "List", "type": "string"}
    ]);
    let cols = crd_columns(Some(&printer));
    let c =
        cells(&cols, &json!({"metadata": {"name": "a"}, "spec": {"ratio": 2, "on": true, "list": ["x", 1]}}));
    assert_eq!(c, vec![json!("a"), json!(2.0), json!(true), json!(r#"["x",1]"#)]);
}

#[test]
fn human_duration_table() {
    let cases: &[(i64, &str)] = &[
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (59, "59s"),
        (119, "119s"),
        (120, "2m"),
        (200, "3m20s"),
        (599, "9m59s"),
        (600, "10m"),
        (179 * 60, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 120, "3h2m"),
        (8 * 3600, "8h"),
        (47 * 3600, "47h"),
        (48 * 3600, "2d"),
        (3 * 86400 + 4 * 3600, "3d4h"),
        (8 * 86400, "8d"),
        (729 * 86400, "729d"),
        (730 * 86400, "2y"),
        (800 * 86400, "2y70d"),
        (9 * 365 * 86400, "9y"),
    ];
    for (secs, want) in cases {
        assert_eq!(human_duration(TimeDelta::seconds(*secs)), *want, "{secs}s");
    }
}

#[test]
fn age_without_timestamp_is_unknown() {
    let cols = builtin_columns("", "ConfigMap");
    assert_eq!(cells(&cols, &json!({"metadata": {"name": "x"}}))[2], json!("<unknown>"));
}
