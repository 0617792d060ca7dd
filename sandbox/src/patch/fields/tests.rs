use serde_json::json;

use super::*;

fn f(name: &str) -> PathElement {
    PathElement::Field(name.to_string())
}

fn k(value: Value) -> PathElement {
    match value {
        Value::Object(map) => PathElement::key(&map),
        other => panic!("key must be an object, got {other}"),
    }
}

fn names(path: &str) -> Vec<String> {
    path.split('.').map(str::to_string).collect()
}

#[test]
fn path_elements_parse_encode_and_render() {
    let cases = [
        ("f:replicas", f("replicas"), ".replicas"),
        (r#"k:{"name":"app"}"#, k(json!({"name": "app"})), r#"[name="app"]"#),
        (
            r#"k:{"protocol":"TCP","port":80}"#,
            k(json!({"port": 80, "protocol": "TCP"})),
            r#"[port=80,protocol="TCP"]"#,
        ),
        (
            r#"v:"keda.sh/finalizer""#,
            PathElement::value(&json!("keda.sh/finalizer")),
            r#"[="keda.sh/finalizer"]"#,
        ),
        ("i:3", PathElement::Index(3), "[3]"),
    ];
    for (text, element, human) in cases {
        let parsed = PathElement::parse(text).unwrap();
        assert_eq!(parsed, element, "{text}");
        assert_eq!(parsed.human(), human, "{text}");
        assert_eq!(PathElement::parse(&parsed.encode()).unwrap(), element, "{text}");
    }
    // Keys are canonical: sorted fields, compact.
    assert_eq!(k(json!({"protocol": "TCP", "port": 80})).encode(), r#"k:{"port":80,"protocol":"TCP"}"#);
    for bad in ["replicas", "x:y", "k:[1]", "k:{", "i:-1", "v:{"] {
        assert!(PathElement::parse(bad).is_err(), "{bad} should not parse");
    }
}

#[test]
fn fields_v1_round_trip_keeps_dot_markers() {
    let encoded = json!({
        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
        "f:spec": {
            "f:replicas": {},
            "f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:name": {}}
            }}}
        }
    });
    let set = FieldSet::from_fields_v1(&encoded).unwrap();
    assert!(set.contains(&[f("spec"), f("replicas")]));
    assert!(set.contains(&[f("metadata"), f("labels")]), "\".\" marks the labels map itself");
    assert!(set.contains(&[f("metadata"), f("labels"), f("app")]));
    assert!(!set.contains(&[f("spec")]), "spec has children but no \".\"");
    let container = [f("spec"), f("template"), f("spec"), f("containers"), k(json!({"name": "app"}))];
    assert!(set.contains(&container));
    assert_eq!(set.paths().len(), 6);
    assert_eq!(set.to_fields_v1(), encoded);

    let human: Vec<String> = set.paths().iter().map(|p| path_string(p)).collect();
    assert!(human.contains(&r#".spec.template.spec.containers[name="app"].image"#.to_string()), "{human:?}");

    for bad in [json!([]), json!({"f:a": 1}), json!({"zz": {}})] {
        assert!(FieldSet::from_fields_v1(&bad).is_err(), "{bad}");
    }
}

fn set_of(paths: &[&[&str]]) -> FieldSet {
    let mut set = FieldSet::new();
    for path in paths {
        let path: Vec<PathElement> = path.iter().map(|n| f(n)).collect();
        set.insert(&path);
    }
    set
}

#[test]
fn set_algebra() {
    let a = set_of(&[&["spec", "replicas"], &["spec", "paused"], &["metadata", "labels", "app"]]);
    let b = set_of(&[&["spec", "replicas"], &["metadata", "labels", "tier"], &["spec"]]);
    assert_eq!(
        a.union(&b),
        set_of(&[
            &["spec", "replicas"],
            &["spec", "paused"],
            &["metadata", "labels", "app"],
            &["metadata", "labels", "tier"],
            &["spec"],
        ])
    );
    assert_eq!(a.intersection(&b), set_of(&[&["spec", "replicas"]]));
    assert_eq!(a.difference(&b), set_of(&[&["spec", "paused"], &["metadata", "labels", "app"]]));
    assert_eq!(b.difference(&a), set_of(&[&["metadata", "labels", "tier"], &["spec"]]));
    assert!(a.difference(&a).is_empty());
    assert!(a.difference(&a).to_fields_v1().as_object().unwrap().is_empty());
}

#[test]
fn list_kinds_per_kind() {
    let deploy = ListKeys::for_kind("apps/v1", "Deployment");
    let service = ListKeys::for_kind("v1", "Service");
    let hpa = ListKeys::for_kind("autoscaling/v2", "HorizontalPodAutoscaler");
    let crd = ListKeys::for_kind("keda.sh/v1alpha1", "ScaledObject");
    let by = |k: &str| ListKind::Map(vec![k.to_string()]);
    let cases = [
        (&deploy, "spec.template.spec.containers", by("name")),
        (&deploy, "spec.template.spec.initContainers", by("name")),
        (&deploy, "spec.template.spec.containers.ports", by("containerPort")),
        (&deploy, "spec.template.spec.containers.env", by("name")),
        (&deploy, "spec.template.spec.containers.volumeMounts", by("mountPath")),
        (&deploy, "spec.template.spec.volumes", by("name")),
        (&deploy, "status.conditions", by("type")),
        (&deploy, "metadata.ownerReferences", by("uid")),
        (&deploy, "metadata.finalizers", ListKind::Set),
        (&deploy, "spec.template.spec.tolerations", ListKind::Atomic),
        (&deploy, "spec.template.spec.containers.args", ListKind::Atomic),
        (&service, "spec.ports", ListKind::Map(vec!["port".into(), "protocol".into()])),
        (&hpa, "spec.metrics", ListKind::Atomic),
        (&hpa, "status.conditions", by("type")),
        (&crd, "spec.triggers", ListKind::Atomic),
        (&crd, "status.conditions", ListKind::Atomic),
        (&crd, "metadata.finalizers", ListKind::Set),
        (&crd, "spec.template.metadata.finalizers", ListKind::Atomic),
        (
            &ListKeys::for_kind("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"),
            "webhooks",
            by("name"),
        ),
    ];
    for (keys, path, kind) in cases {
        assert_eq!(keys.kind_at(&names(path)), kind, "{path}");
    }
}

fn deployment_config() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}, "finalizers": ["a/b"]},
        "spec": {
            "replicas": 2,
            "selector": {},
            "template": {"spec": {"containers": [
                {"name": "app", "image": "nginx", "args": ["-v"], "ports": [{"containerPort": 80}]}
            ]}}
        }
    })
}

#[test]
fn field_set_of_a_configuration() {
    let keys = ListKeys::for_kind("apps/v1", "Deployment");
    let set = field_set_of(&deployment_config(), &keys).unwrap();
    let expected = json!({
        "f:apiVersion": {},
        "f:kind": {},
        "f:metadata": {"f:name": {}, "f:labels": {"f:app": {}}, "f:finalizers": {"v:\"a/b\"": {}}},
        "f:spec": {
            "f:replicas": {},
            "f:selector": {},
            "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {
                ".": {},
                "f:name": {},
                "f:image": {},
                "f:args": {},
                "f:ports": {"k:{\"containerPort\":80}": {".": {}, "f:containerPort": {}}}
            }}}}
        }
    });
    assert_eq!(set.to_fields_v1(), expected);

    // Nulls set nothing.
    let with_null = json!({"spec": {"replicas": null, "paused": true}});
    assert_eq!(field_set_of(&with_null, &keys).unwrap(), set_of(&[&["spec", "paused"]]));
}

#[test]
fn malformed_keyed_lists_are_rejected_strictly_and_atomic_leniently() {
    let keys = ListKeys::for_kind("v1", "Pod");
    let cases = [
        (json!({"spec": {"containers": [{"image": "x"}]}}), ["spec", "containers"]),
        (json!({"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}), ["spec", "containers"]),
        (json!({"metadata": {"finalizers": [{"x": 1}]}}), ["metadata", "finalizers"]),
        (json!({"metadata": {"finalizers": ["a", "a"]}}), ["metadata", "finalizers"]),
    ];
    for (config, list) in cases {
        assert!(matches!(field_set_of(&config, &keys), Err(PatchError::Invalid(_))), "{config}");
        let lenient = field_set_of_lenient(&config, &keys);
        assert_eq!(lenient, set_of(&[&list]), "{config}: one leaf for the whole list");
    }
}

#[test]
fn compare_reports_added_modified_removed() {
    let keys = ListKeys::for_kind("apps/v1", "Deployment");
    let old = json!({
        "metadata": {"labels": {"app": "web", "old": "x"}},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [
            {"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}
        ]}}}
    });
    let new = json!({
        "metadata": {"labels": {"app": "web", "new": "y"}},
        "spec": {"replicas": 3, "template": {"spec": {"containers": [
            {"name": "c", "image": "c:1"}, {"name": "a", "image": "a:2"}
        ]}}}
    });
    let diff = compare(&old, &new, &keys);
    let containers = [f("spec"), f("template"), f("spec"), f("containers")];
    let elem = |name: &str, rest: &[PathElement]| {
        let mut p = containers.to_vec();
        p.push(k(json!({"name": name})));
        p.extend_from_slice(rest);
        p
    };
    let mut added = set_of(&[&["metadata", "labels", "new"]]);
    added.insert(&elem("c", &[]));
    added.insert(&elem("c", &[f("name")]));
    added.insert(&elem("c", &[f("image")]));
    assert_eq!(diff.added, added);
    let mut modified = set_of(&[&["spec", "replicas"]]);
    modified.insert(&elem("a", &[f("image")]));
    assert_eq!(diff.modified, modified);
    let mut removed = set_of(&[&["metadata", "labels", "old"]]);
    removed.insert(&elem("b", &[]));
    removed.insert(&elem("b", &[f("name")]));
    removed.insert(&elem("b", &[f("image")]));
    assert_eq!(diff.removed, removed);

    // Reordering a keyed list is no change; reordering an atomic list is a modification.
    let a = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "a", "args": ["1", "2"]}, {"name": "b"}
    ]}}}});
    let b = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "b"}, {"name": "a", "args": ["2", "1"]}
    ]}}}});
    let diff = compare(&a, &b, &keys);
    assert!(diff.added.is_empty() && diff.removed.is_empty());
    assert_eq!(diff.modified.paths(), vec![elem("a", &[f("args")])]);

    // A scalar replaced by a map: the scalar is removed, the map's leaves added.
    let diff = compare(&json!({"spec": {"x": 1}}), &json!({"spec": {"x": {"y": 2}}}), &keys);
    assert_eq!(diff.removed, set_of(&[&["spec", "x"]]));
    assert_eq!(diff.added, set_of(&[&["spec", "x", "y"]]));
    assert!(diff.modified.is_empty());
}

#[test]
fn canonical_json_sorts_nested_keys() {
    let v = json!({"b": {"d": 1, "c": [true, null]}, "a": "x\"y"});
    assert_eq!(canonical_json(&v), r#"{"a":"x\"y","b":{"c":[true,null],"d":1}}"#);
}
