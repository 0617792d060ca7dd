use serde_json::json;

use super::*;

const T0: &str = "2025-01-01T00:00:00Z";
const T1: &str = "2025-01-01T00:01:00Z";
const T2: &str = "2025-01-01T00:02:00Z";

fn deploy_keys() -> ListKeys {
    ListKeys::for_kind("apps/v1", "Deployment")
}

fn req<'a>(manager: &'a str, now: &'a str) -> ApplyRequest<'a> {
    ApplyRequest { manager, force: false, subresource: None, now, api_version: "apps/v1" }
}

fn managed(obj: &Value) -> Vec<Value> {
    obj.pointer("/metadata/managedFields").and_then(Value::as_array).cloned().unwrap_or_default()
}

fn entry(obj: &Value, manager: &str, operation: &str) -> Option<Value> {
    managed(obj).into_iter().find(|e| e["manager"] == manager && e["operation"] == operation)
}

fn owns(obj: &Value, manager: &str, operation: &str, human: &str) -> bool {
    let Some(e) = entry(obj, manager, operation) else { return false };
    let set = FieldSet::from_fields_v1(&e["fieldsV1"]).unwrap();
    set.paths().iter().any(|p| fields::path_string(p) == human)
}

fn config(replicas: Option<i64>, labels: Value, containers: Value) -> Value {
    let mut spec = json!({"template": {"spec": {"containers": containers}}});
    if let Some(r) = replicas {
        spec["replicas"] = json!(r);
    }
    let mut obj = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": spec
    });
    if !labels.is_null() {
        obj["metadata"]["labels"] = labels;
    }
    obj
}

fn web() -> Value {
    config(Some(2), json!({"app": "web"}), json!([{"name": "app", "image": "nginx:1"}]))
}

/// What the store adds on create.
fn stored(mut obj: Value) -> Value {
    obj["metadata"]["uid"] = json!("u-1");
    obj["metadata"]["resourceVersion"] = json!("1");
    obj
}

#[test]
fn create_by_apply_records_one_apply_entry() {
    let obj = apply(None, &web(), &req("kubectl", T0), &deploy_keys()).unwrap();
    assert_eq!(obj["spec"]["replicas"], 2);
    assert_eq!(obj["metadata"]["name"], "web");
    assert_eq!(obj["kind"], "Deployment");
    assert_eq!(
        managed(&obj),
        vec![json!({
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "apps/v1",
            "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {
                        ".": {}, "f:image": {}, "f:name": {}
                    }}}}
                }
            }
        })]
    );
}

#[test]
fn reapplying_without_a_field_removes_it() {
    let keys = deploy_keys();
    let live = stored(apply(None, &web(), &req("kubectl", T0), &keys).unwrap());
    let next = config(None, Value::Null, json!([{"name": "app", "image": "nginx:2"}]));
    let obj = apply(Some(&live), &next, &req("kubectl", T1), &keys).unwrap();
    assert!(obj["spec"].get("replicas").is_none(), "{obj}");
    assert!(obj["metadata"].get("labels").is_none(), "emptied labels map removed: {obj}");
    assert_eq!(obj["spec"]["template"]["spec"]["containers"], json!([{"name": "app", "image": "nginx:2"}]));
    assert_eq!(obj["metadata"]["uid"], "u-1", "server-owned metadata survives");
    assert!(!owns(&obj, "kubectl", "Apply", ".spec.replicas"));
    assert_eq!(managed(&obj).len(), 1);
    assert_eq!(entry(&obj, "kubectl", "Apply").unwrap()["time"], T1);
}

#[test]
fn two_managers_with_disjoint_fields() {
    let keys = deploy_keys();
    let live = stored(apply(None, &web(), &req("kubectl", T0), &keys).unwrap());
    let labeler = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"team": "a"}, "annotations": {"note": "x"}}
    });
    let obj = apply(Some(&live), &labeler, &req("labeler", T1), &keys).unwrap();
    assert_eq!(obj["metadata"]["labels"], json!({"app": "web", "team": "a"}));
    assert_eq!(obj["spec"]["replicas"], 2);
    assert!(owns(&obj, "labeler", "Apply", ".metadata.labels.team"));
    assert!(owns(&obj, "labeler", "Apply", ".metadata.annotations.note"));
    assert!(!owns(&obj, "labeler", "Apply", ".spec.replicas"));
    assert!(owns(&obj, "kubectl", "Apply", ".metadata.labels.app"));
    assert!(!owns(&obj, "kubectl", "Apply", ".metadata.labels.team"));

    // The labeler dropping its label leaves kubectl's label and fields alone.
    let obj = stored(obj);
    let fewer = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}});
    let obj = apply(Some(&obj), &fewer, &req("labeler", T2), &keys).unwrap();
    assert_eq!(obj["metadata"]["labels"], json!({"app": "web"}));
    assert!(obj["metadata"].get("annotations").is_none());
    assert!(entry(&obj, "labeler", "Apply").is_none(), "empty entry dropped");
    assert!(owns(&obj, "kubectl", "Apply", ".spec.replicas"));
}

#[test]
fn conflict_with_an_update_manager_and_force() {
    let keys = deploy_keys();
    let live = stored(apply(None, &web(), &req("kubectl", T0), &keys).unwrap());
    // A controller scales the deployment with an ordinary update.
    let mut scaled = live.clone();
    scaled["spec"]["replicas"] = json!(5);
    record_update(Some(&live), &mut scaled, "kube-controller-manager", T1, "apps/v1", None, &keys);
    assert!(owns(&scaled, "kube-controller-manager", "Update", ".spec.replicas"));
    assert!(!owns(&scaled, "kubectl", "Apply", ".spec.replicas"), "ownership moved on update");

    // Re-applying replicas: 2 conflicts.
    let err = apply(Some(&scaled), &web(), &req("kubectl", T2), &keys).unwrap_err();
    let ApplyError::Conflicts(conflicts) = &err else { panic!("expected conflicts, got {err:?}") };
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].manager, "kube-controller-manager");
    assert_eq!(conflicts[0].field, ".spec.replicas");
    assert_eq!(conflicts[0].message(), r#"conflict with "kube-controller-manager" using apps/v1"#);
    assert_eq!(
        err.to_string(),
        r#"Apply failed with 1 conflict: conflict with "kube-controller-manager" using apps/v1: .spec.replicas"#
    );

    // Forced: the value and its ownership move to the applier.
    let forced = ApplyRequest { force: true, ..req("kubectl", T2) };
    let obj = apply(Some(&scaled), &web(), &forced, &keys).unwrap();
    assert_eq!(obj["spec"]["replicas"], 2);
    assert!(owns(&obj, "kubectl", "Apply", ".spec.replicas"));
    assert!(entry(&obj, "kube-controller-manager", "Update").is_none(), "its only field was taken");
}

#[test]
fn same_value_is_shared_without_conflict() {
    let keys = deploy_keys();
    let live = stored(apply(None, &web(), &req("kubectl", T0), &keys).unwrap());
    let other = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 2}});
    let obj = apply(Some(&live), &other, &req("scaler", T1), &keys).unwrap();
    assert!(owns(&obj, "scaler", "Apply", ".spec.replicas"));
    assert!(owns(&obj, "kubectl", "Apply", ".spec.replicas"));

    // A different value from either owner now conflicts with the other one.
    let obj = stored(obj);
    let mut bump = other.clone();
    bump["spec"]["replicas"] = json!(3);
    let err = apply(Some(&obj), &bump, &req("scaler", T2), &keys).unwrap_err();
    assert!(matches!(&err, ApplyError::Conflicts(c) if c.len() == 1 && c[0].manager == "kubectl"), "{err:?}");
    assert_eq!(err.to_string(), r#"Apply failed with 1 conflict: conflict with "kubectl": .spec.replicas"#);

    // One co-owner dropping the field keeps it, owned by the other.
    let without = config(None, json!({"app": "web"}), json!([{"name": "app", "image": "nginx:1"}]));
    let obj = apply(Some(&obj), &without, &req("kubectl", T2), &keys).unwrap();
    assert_eq!(obj["spec"]["replicas"], 2);
    assert!(owns(&obj, "scaler", "Apply", ".spec.replicas"));
    assert!(!owns(&obj, "kubectl", "Apply", ".spec.replicas"));
}

#[test]
fn keyed_list_elements_have_separate_owners() {
    let keys = deploy_keys();
    let a = config(None, Value::Null, json!([{"name": "a", "image": "a:1"}]));
    let b = config(None, Value::Null, json!([{"name": "b", "image": "b:1"}]));
    let live = stored(apply(None, &a, &req("mgr-a", T0), &keys).unwrap());
    let live = stored(apply(Some(&live), &b, &req("mgr-b", T1), &keys).unwrap());
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"],
        json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}])
    );
    assert!(owns(&live, "mgr-a", "Apply", r#".spec.template.spec.containers[name="a"].image"#));
    assert!(owns(&live, "mgr-b", "Apply", r#".spec.template.spec.containers[name="b"]"#));

    // A applies without its container: only container a goes.
    let none = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": []}}}});
    let obj = apply(Some(&live), &none, &req("mgr-a", T2), &keys).unwrap();
    assert_eq!(obj["spec"]["template"]["spec"]["containers"], json!([{"name": "b", "image": "b:1"}]));
    assert!(owns(&obj, "mgr-b", "Apply", r#".spec.template.spec.containers[name="b"].image"#));
    assert!(!owns(&obj, "mgr-a", "Apply", r#".spec.template.spec.containers[name="a"]"#));

    // Changing B's image from A conflicts on exactly that field.
    let steal = config(None, Value::Null, json!([{"name": "b", "image": "b:2"}]));
    let err = apply(Some(&live), &steal, &req("mgr-a", T2), &keys).unwrap_err();
    let ApplyError::Conflicts(c) = err else { panic!("expected conflicts") };
    let fields: Vec<&str> = c.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, vec![r#".spec.template.spec.containers[name="b"].image"#]);
}

#[test]
fn co_owned_list_element_keeps_other_owners_fields() {
    let keys = deploy_keys();
    let a = config(None, Value::Null, json!([{"name": "app", "image": "x:1", "command": ["run"]}]));
    let live = stored(apply(None, &a, &req("mgr-a", T0), &keys).unwrap());
    let b = config(None, Value::Null, json!([{"name": "app", "resources": {"limits": {"cpu": "1"}}}]));
    let live = stored(apply(Some(&live), &b, &req("mgr-b", T1), &keys).unwrap());
    let none = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}});
    let obj = apply(Some(&live), &none, &req("mgr-a", T2), &keys).unwrap();
    assert_eq!(
        obj["spec"]["template"]["spec"]["containers"],
        json!([{"name": "app", "resources": {"limits": {"cpu": "1"}}}]),
        "A's image and command go, the key and B's field stay"
    );
}

#[test]
fn list_element_keeps_its_key_when_another_manager_owns_a_field_of_it() {
    let keys = deploy_keys();
    let a = config(None, Value::Null, json!([{"name": "app", "image": "x:1", "command": ["run"]}]));
    let live = stored(apply(None, &a, &req("mgr-a", T0), &keys).unwrap());
    let mut bumped = live.clone();
    bumped["spec"]["template"]["spec"]["containers"][0]["image"] = json!("x:2");
    record_update(Some(&live), &mut bumped, "updater", T1, "apps/v1", None, &keys);
    let image = r#".spec.template.spec.containers[name="app"].image"#;
    assert!(owns(&bumped, "updater", "Update", image));
    assert!(!owns(&bumped, "updater", "Update", r#".spec.template.spec.containers[name="app"].name"#));

    let none = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}});
    let obj = apply(Some(&bumped), &none, &req("mgr-a", T2), &keys).unwrap();
    assert_eq!(obj["spec"]["template"]["spec"]["containers"], json!([{"name": "app", "image": "x:2"}]));
}

#[test]
fn sets_union_and_atomic_lists_replace() {
    let keys = ListKeys::for_kind("keda.sh/v1alpha1", "ScaledObject");
    let so = |finalizers: Value, triggers: Value| {
        json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": "s", "finalizers": finalizers}, "spec": {"triggers": triggers}})
    };
    let r = |m| ApplyRequest { api_version: "keda.sh/v1alpha1", ..req(m, T0) };
    let live = stored(apply(None, &so(json!(["x"]), json!([{"type": "cpu"}])), &r("a"), &keys).unwrap());
    let obj = apply(Some(&live), &so(json!(["y"]), json!([{"type": "cpu"}])), &r("b"), &keys).unwrap();
    assert_eq!(obj["metadata"]["finalizers"], json!(["x", "y"]));
    assert!(owns(&obj, "b", "Apply", r#".metadata.finalizers[="y"]"#));
    assert!(owns(&obj, "a", "Apply", ".spec.triggers"), "same atomic value is shared");

    let err = apply(Some(&live), &so(json!([]), json!([{"type": "kafka"}])), &r("b"), &keys).unwrap_err();
    assert!(matches!(&err, ApplyError::Conflicts(c) if c[0].field == ".spec.triggers"), "{err:?}");
    let forced = ApplyRequest { force: true, ..r("b") };
    let obj = apply(Some(&live), &so(json!([]), json!([{"type": "kafka"}])), &forced, &keys).unwrap();
    assert_eq!(obj["spec"]["triggers"], json!([{"type": "kafka"}]), "atomic list replaced whole");
}

#[test]
fn status_subresource_applies_only_status() {
    let keys = deploy_keys();
    let mut live = stored(apply(None, &web(), &req("kubectl", T0), &keys).unwrap());
    live["status"] = json!({"replicas": 1});
    let cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 9}, "status": {"readyReplicas": 1, "conditions": [{"type": "Available", "status": "True"}]}});
    let status_req = ApplyRequest { subresource: Some("status"), ..req("ctrl", T1) };
    let obj = apply(Some(&live), &cfg, &status_req, &keys).unwrap();
    assert_eq!(obj["spec"]["replicas"], 2, "spec is not written through status");
    assert_eq!(obj["status"]["readyReplicas"], 1);
    assert_eq!(obj["status"]["replicas"], 1, "other status fields kept");
    let e = entry(&obj, "ctrl", "Apply").unwrap();
    assert_eq!(e["subresource"], "status");
    assert_eq!(
        e["fieldsV1"],
        json!({"f:status": {"f:readyReplicas": {}, "f:conditions": {"k:{\"type\":\"Available\"}": {
            ".": {}, "f:type": {}, "f:status": {}
        }}}})
    );

    // Applying to the main resource ignores status.
    let obj = apply(Some(&obj), &cfg, &ApplyRequest { force: true, ..req("kubectl", T2) }, &keys).unwrap();
    assert_eq!(obj["status"]["readyReplicas"], 1);
    assert_eq!(obj["spec"]["replicas"], 9);
    assert!(!owns(&obj, "kubectl", "Apply", ".status.readyReplicas"));
}

#[test]
fn record_update_moves_changed_fields_only() {
    let keys = deploy_keys();
    let created = {
        let mut obj = stored(web());
        record_update(None, &mut obj, "kubectl-create", T0, "apps/v1", None, &keys);
        obj
    };
    assert!(owns(&created, "kubectl-create", "Update", ".spec.replicas"));
    assert!(owns(&created, "kubectl-create", "Update", ".metadata.labels.app"));
    assert!(!owns(&created, "kubectl-create", "Update", ".metadata.name"));
    assert!(!owns(&created, "kubectl-create", "Update", ".metadata.uid"));

    let mut edited = created.clone();
    edited["spec"]["replicas"] = json!(4);
    edited["metadata"]["labels"]["tier"] = json!("web");
    edited["metadata"]["labels"].as_object_mut().unwrap().remove("app");
    record_update(Some(&created), &mut edited, "editor", T1, "apps/v1", None, &keys);
    assert!(owns(&edited, "editor", "Update", ".spec.replicas"));
    assert!(owns(&edited, "editor", "Update", ".metadata.labels.tier"));
    assert!(!owns(&edited, "editor", "Update", r#".spec.template.spec.containers[name="app"].image"#));
    assert!(!owns(&edited, "kubectl-create", "Update", ".spec.replicas"));
    assert!(!owns(&edited, "kubectl-create", "Update", ".metadata.labels.app"), "removed field dropped");
    assert!(owns(&edited, "kubectl-create", "Update", r#".spec.template.spec.containers[name="app"].image"#));
    assert_eq!(entry(&edited, "kubectl-create", "Update").unwrap()["time"], T0);

    // A write that changes nothing leaves entries (and times) alone.
    let mut same = edited.clone();
    record_update(Some(&edited), &mut same, "editor", T2, "apps/v1", None, &keys);
    assert_eq!(managed(&same), managed(&edited));
    let mut noop = edited.clone();
    record_update(Some(&edited), &mut noop, "bystander", T2, "apps/v1", None, &keys);
    assert!(entry(&noop, "bystander", "Update").is_none());
}

#[test]
fn managed_fields_and_server_metadata_are_not_writable_by_config() {
    let keys = deploy_keys();
    let live = stored(apply(None, &web(), &req("kubectl", T0), &keys).unwrap());
    let mut cfg = web();
    cfg["metadata"]["managedFields"] = json!([{"manager": "evil", "operation": "Apply",
        "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]);
    cfg["metadata"]["resourceVersion"] = json!("999");
    cfg["metadata"]["uid"] = json!("forged");
    cfg["status"] = json!({"replicas": 100});
    let obj = apply(Some(&live), &cfg, &req("kubectl", T1), &keys).unwrap();
    assert_eq!(obj["metadata"]["uid"], "u-1");
    assert_eq!(obj["metadata"]["resourceVersion"], "1");
    assert!(obj.get("status").is_none());
    assert!(entry(&obj, "evil", "Apply").is_none());
    let e = entry(&obj, "kubectl", "Apply").unwrap();
    assert!(e["fieldsV1"]["f:metadata"].get("f:managedFields").is_none());
    assert!(e["fieldsV1"].get("f:status").is_none());
    assert!(e["fieldsV1"].get("f:apiVersion").is_none());
    assert_eq!(managed(&obj).len(), 1);

    // Identity cannot be erased by nulls or a non-map metadata.
    let mut cfg = web();
    cfg["metadata"]["namespace"] = Value::Null;
    let obj = apply(Some(&live), &cfg, &req("kubectl", T1), &keys).unwrap();
    assert_eq!(obj["metadata"]["namespace"], "default");
    let cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": null});
    let obj = apply(Some(&live), &cfg, &req("other", T1), &keys).unwrap();
    assert_eq!(obj["metadata"]["name"], "web");
}

#[test]
fn objects_without_managed_fields_belong_to_before_first_apply() {
    let keys = deploy_keys();
    let live = stored(web());
    let mut cfg = web();
    cfg["spec"]["replicas"] = json!(7);
    let err = apply(Some(&live), &cfg, &req("kubectl", T1), &keys).unwrap_err();
    assert!(matches!(&err, ApplyError::Conflicts(c) if c[0].manager == "before-first-apply"), "{err:?}");
    let obj = apply(Some(&live), &web(), &req("kubectl", T1), &keys).unwrap();
    assert!(owns(&obj, "before-first-apply", "Update", ".spec.replicas"));
    assert!(owns(&obj, "kubectl", "Apply", ".spec.replicas"));
}

#[test]
fn malformed_configurations_are_rejected() {
    let keys = deploy_keys();
    let dup = config(None, Value::Null, json!([{"name": "a"}, {"name": "a"}]));
    let nokey = config(None, Value::Null, json!([{"image": "a"}]));
    for bad in [json!([1]), json!("x"), dup, nokey] {
        let err = apply(None, &bad, &req("m", T0), &keys).unwrap_err();
        assert!(matches!(err, ApplyError::Patch(PatchError::Invalid(_))), "{bad}: {err:?}");
    }
}

#[test]
fn multi_conflict_message_groups_by_manager() {
    let c = |manager: &str, operation: &str, field: &str| Conflict {
        manager: manager.into(),
        operation: operation.into(),
        api_version: "apps/v1".into(),
        subresource: None,
        field: field.into(),
    };
    let conflicts = vec![
        c("hpa", "Update", ".spec.replicas"),
        c("kubectl", "Apply", ".spec.paused"),
        c("hpa", "Update", ".spec.x"),
    ];
    assert_eq!(
        conflicts_message(&conflicts),
        "Apply failed with 3 conflicts: conflict with \"hpa\" using apps/v1:\n- .spec.replicas\n- .spec.x\n\
         conflict with \"kubectl\":\n- .spec.paused"
    );
    let status = Conflict { subresource: Some("status".into()), ..c("kubelet", "Update", ".status.phase") };
    assert_eq!(status.message(), r#"conflict with "kubelet" with subresource "status" using apps/v1"#);
}

#[test]
fn merge_keeps_config_order_and_live_only_positions() {
    let keys = deploy_keys();
    let item = |n: &str| json!({"name": n});
    let live: Vec<Value> = ["a", "b", "c"].iter().map(|n| item(n)).collect();
    let cases: [(&[&str], &[&str]); 3] = [
        (&["b", "d"], &["a", "b", "c", "d"]),
        (&["c", "a"], &["c", "a", "b"]),
        (&["x"], &["a", "b", "c", "x"]),
    ];
    for (cfg, expected) in cases {
        let cfg_items: Vec<Value> = cfg.iter().map(|n| item(n)).collect();
        let names = vec!["spec".to_string(), "containers".to_string()];
        let merged =
            merge(Some(&Value::Array(live.clone())), &Value::Array(cfg_items), &keys, &mut names.clone())
                .unwrap();
        let got: Vec<&str> = merged.as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
        assert_eq!(got, expected, "config {cfg:?}");
    }
}
