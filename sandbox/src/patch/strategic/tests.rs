//! Tests for the strategic merge patch engine and the per-kind list tables.

use serde_json::{Value, json};

use super::{StrategicKind, apply};
use crate::patch::PatchError;

fn kind(api_version: &str, kind: &str) -> StrategicKind {
    StrategicKind::for_kind(api_version, kind).unwrap()
}

fn deployment(containers: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 1,
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": containers}
            }
        }
    })
}

fn pod_template_patch(spec: Value) -> Value {
    json!({"spec": {"template": {"spec": spec}}})
}

/// Runs `(name, kind, live, patch, expected)` cases that must succeed.
fn check(cases: Vec<(&str, StrategicKind, Value, Value, Value)>) {
    for (name, kind, live, patch, expected) in cases {
        let mut doc = live;
        apply(&mut doc, &patch, &kind).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(doc, expected, "{name}");
        assert!(!doc.to_string().contains('$'), "{name}: a directive leaked: {doc}");
    }
}

#[test]
fn deployment_container_lists() {
    let k = kind("apps/v1", "Deployment");
    let two = json!([
        {"name": "app", "image": "app:1", "ports": [{"containerPort": 8080}]},
        {"name": "sidecar", "image": "proxy:1"}
    ]);
    check(vec![
        (
            "kubectl set image: merge by name keeps the other container",
            k,
            deployment(two.clone()),
            pod_template_patch(json!({
                "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
                "containers": [{"name": "sidecar", "image": "proxy:2"}]
            })),
            deployment(json!([
                {"name": "app", "image": "app:1", "ports": [{"containerPort": 8080}]},
                {"name": "sidecar", "image": "proxy:2"}
            ])),
        ),
        (
            "plain kubectl patch of the first container keeps positions",
            k,
            deployment(two.clone()),
            pod_template_patch(json!({"containers": [{"name": "app", "image": "app:2"}]})),
            deployment(json!([
                {"name": "app", "image": "app:2", "ports": [{"containerPort": 8080}]},
                {"name": "sidecar", "image": "proxy:1"}
            ])),
        ),
        (
            "a new container without an order directive goes before unmentioned ones",
            k,
            deployment(two.clone()),
            pod_template_patch(json!({"containers": [{"name": "debug", "image": "busybox"}]})),
            deployment(json!([
                {"name": "debug", "image": "busybox"},
                {"name": "app", "image": "app:1", "ports": [{"containerPort": 8080}]},
                {"name": "sidecar", "image": "proxy:1"}
            ])),
        ),
        (
            "a new container with $setElementOrder lands where the order says",
            k,
            deployment(two.clone()),
            pod_template_patch(json!({
                "$setElementOrder/containers":
                    [{"name": "app"}, {"name": "sidecar"}, {"name": "debug"}],
                "containers": [{"name": "debug", "image": "busybox"}]
            })),
            deployment(json!([
                {"name": "app", "image": "app:1", "ports": [{"containerPort": 8080}]},
                {"name": "sidecar", "image": "proxy:1"},
                {"name": "debug", "image": "busybox"}
            ])),
        ),
        (
            "$setElementOrder alone reorders",
            k,
            deployment(two.clone()),
            pod_template_patch(json!({
                "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}]
            })),
            deployment(json!([
                {"name": "sidecar", "image": "proxy:1"},
                {"name": "app", "image": "app:1", "ports": [{"containerPort": 8080}]}
            ])),
        ),
        (
            "$setElementOrder for an absent list is dropped",
            k,
            deployment(two.clone()),
            pod_template_patch(json!({"$setElementOrder/initContainers": [{"name": "x"}]})),
            deployment(two.clone()),
        ),
        (
            "patch order wins, unmentioned live elements keep their place",
            k,
            deployment(json!([{"name": "b"}, {"name": "c"}, {"name": "a"}])),
            pod_template_patch(json!({"containers": [
                {"name": "a", "image": "a2"},
                {"name": "b", "image": "b2"},
                {"name": "d"}
            ]})),
            deployment(json!([
                {"name": "c"},
                {"name": "a", "image": "a2"},
                {"name": "b", "image": "b2"},
                {"name": "d"}
            ])),
        ),
        (
            "ports merge by containerPort",
            k,
            deployment(two.clone()),
            pod_template_patch(json!({"containers": [{"name": "app", "ports": [
                {"containerPort": 8080, "name": "http"},
                {"containerPort": 9090, "name": "metrics"}
            ]}]})),
            deployment(json!([
                {"name": "app", "image": "app:1", "ports": [
                    {"containerPort": 8080, "name": "http"},
                    {"containerPort": 9090, "name": "metrics"}
                ]},
                {"name": "sidecar", "image": "proxy:1"}
            ])),
        ),
        (
            "$patch: delete removes a container",
            k,
            deployment(two.clone()),
            pod_template_patch(json!({"containers": [{"name": "app", "$patch": "delete"}]})),
            deployment(json!([{"name": "sidecar", "image": "proxy:1"}])),
        ),
        (
            "$patch: replace replaces the whole list",
            k,
            deployment(two.clone()),
            pod_template_patch(json!({"containers": [
                {"name": "only", "image": "x", "env": [{"name": "A", "value": null}]},
                {"$patch": "replace"}
            ]})),
            deployment(json!([{"name": "only", "image": "x", "env": [{"name": "A"}]}])),
        ),
    ]);
}

#[test]
fn env_volume_and_toleration_lists() {
    let k = kind("apps/v1", "Deployment");
    let with_env = |env: Value| deployment(json!([{"name": "app", "env": env}]));
    let env_patch = |env: Value| pod_template_patch(json!({"containers": [{"name": "app", "env": env}]}));
    let abc = json!([
        {"name": "A", "value": "1"},
        {"name": "B", "value": "2"},
        {"name": "C", "value": "3"}
    ]);
    check(vec![
        (
            "env: update one, delete one, add one",
            k,
            with_env(abc.clone()),
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "app"}],
                "containers": [{
                    "name": "app",
                    "$setElementOrder/env": [{"name": "A"}, {"name": "C"}, {"name": "D"}],
                    "env": [
                        {"name": "C", "value": "30"},
                        {"name": "B", "$patch": "delete"},
                        {"name": "D", "value": "4"}
                    ]
                }]
            }}}}),
            with_env(json!([
                {"name": "A", "value": "1"},
                {"name": "C", "value": "30"},
                {"name": "D", "value": "4"}
            ])),
        ),
        (
            "env: null inside an element deletes that field",
            k,
            with_env(json!([{"name": "A", "value": "1"}])),
            env_patch(json!([{
                "name": "A",
                "value": null,
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}
            }])),
            with_env(json!([{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}])),
        ),
        (
            "env: deleting an unknown name is a no-op",
            k,
            with_env(abc.clone()),
            env_patch(json!([{"name": "Z", "$patch": "delete"}])),
            with_env(abc.clone()),
        ),
        (
            "volumes by name, tolerations replaced",
            k,
            json!({"spec": {"template": {"spec": {
                "volumes": [{"name": "cfg", "configMap": {"name": "a"}}, {"name": "tmp", "emptyDir": {}}],
                "tolerations": [{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}]
            }}}}),
            pod_template_patch(json!({
                "volumes": [{"name": "cfg", "$retainKeys": ["name", "secret"], "secret": {"secretName": "s"}}],
                "tolerations": [{"key": "c", "operator": "Exists"}]
            })),
            json!({"spec": {"template": {"spec": {
                "volumes": [{"name": "cfg", "secret": {"secretName": "s"}}, {"name": "tmp", "emptyDir": {}}],
                "tolerations": [{"key": "c", "operator": "Exists"}]
            }}}}),
        ),
    ]);
}

#[test]
fn metadata_and_map_directives() {
    let k = kind("v1", "ConfigMap");
    let cm = |metadata: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {"a": "1", "b": "2"}});
    check(vec![
        (
            "finalizers: union keeps live order",
            k,
            cm(json!({"name": "x", "finalizers": ["a", "b"]})),
            json!({"metadata": {"finalizers": ["b", "c"]}}),
            cm(json!({"name": "x", "finalizers": ["a", "b", "c"]})),
        ),
        (
            "finalizers: a new entry alone comes first",
            k,
            cm(json!({"name": "x", "finalizers": ["a", "b"]})),
            json!({"metadata": {"finalizers": ["c"]}}),
            cm(json!({"name": "x", "finalizers": ["c", "a", "b"]})),
        ),
        (
            "finalizers: $deleteFromPrimitiveList",
            k,
            cm(json!({"name": "x", "finalizers": ["a", "b", "a"]})),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
            cm(json!({"name": "x", "finalizers": ["b"]})),
        ),
        (
            "finalizers: null removes the list",
            k,
            cm(json!({"name": "x", "finalizers": ["a"]})),
            json!({"metadata": {"finalizers": null}}),
            cm(json!({"name": "x"})),
        ),
        (
            "ownerReferences merge by uid",
            k,
            cm(json!({"name": "x", "ownerReferences": [
                {"uid": "u1", "kind": "Deployment", "name": "d"},
                {"uid": "u2", "kind": "ScaledObject", "name": "so"}
            ]})),
            json!({"metadata": {"ownerReferences": [{"uid": "u2", "controller": true}]}}),
            cm(json!({"name": "x", "ownerReferences": [
                {"uid": "u1", "kind": "Deployment", "name": "d"},
                {"uid": "u2", "kind": "ScaledObject", "name": "so", "controller": true}
            ]})),
        ),
        (
            "null deletes keys, other members merge",
            k,
            cm(json!({"name": "x", "labels": {"a": "1", "b": "2"}, "annotations": {"n": "1"}})),
            json!({"metadata": {"labels": {"a": null, "c": "3"}, "annotations": null}}),
            cm(json!({"name": "x", "labels": {"b": "2", "c": "3"}})),
        ),
        (
            "$patch: replace on a map",
            k,
            cm(json!({"name": "x", "labels": {"a": "1", "b": "2"}})),
            json!({"metadata": {"labels": {"$patch": "replace", "z": "9"}}}),
            cm(json!({"name": "x", "labels": {"z": "9"}})),
        ),
        (
            "$patch: delete on a map empties it",
            k,
            cm(json!({"name": "x", "labels": {"a": "1"}})),
            json!({"metadata": {"labels": {"$patch": "delete"}}}),
            cm(json!({"name": "x", "labels": {}})),
        ),
        (
            "new nested values lose their nulls and directives",
            k,
            cm(json!({"name": "x"})),
            json!({"metadata": {"labels": {"a": "1", "gone": null, "$patch": "replace"}}}),
            cm(json!({"name": "x", "labels": {"a": "1"}})),
        ),
        (
            "scalar replaced by a map",
            k,
            json!({"data": "oops"}),
            json!({"data": {"k": "v"}}),
            json!({"data": {"k": "v"}}),
        ),
    ]);
}

#[test]
fn retain_keys_on_deployment_strategy() {
    let k = kind("apps/v1", "Deployment");
    let live = json!({"spec": {"strategy": {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}
    }}});
    check(vec![(
        "switch to Recreate drops rollingUpdate",
        k,
        live.clone(),
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
        json!({"spec": {"strategy": {"type": "Recreate"}}}),
    )]);
    let mut doc = live.clone();
    let err = apply(
        &mut doc,
        &json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 2}}}}),
        &k,
    )
    .unwrap_err();
    assert!(matches!(err, PatchError::Unprocessable(_)), "{err:?}");
    assert_eq!(doc, live);
}

#[test]
fn status_conditions_merge_by_type() {
    let hpa = kind("autoscaling/v2", "HorizontalPodAutoscaler");
    let live = json!({
        "spec": {"metrics": [
            {"type": "Resource", "resource": {"name": "cpu"}},
            {"type": "External", "external": {"metric": {"name": "q"}}}
        ]},
        "status": {"conditions": [
            {"type": "AbleToScale", "status": "True"},
            {"type": "ScalingActive", "status": "False", "reason": "Idle"}
        ]}
    });
    check(vec![
        (
            "HPA v2 conditions merge by type, metrics replaced",
            hpa,
            live.clone(),
            json!({
                "spec": {"metrics": [{"type": "External", "external": {"metric": {"name": "q2"}}}]},
                "status": {"conditions": [{"type": "ScalingActive", "status": "True", "reason": null}]}
            }),
            json!({
                "spec": {"metrics": [{"type": "External", "external": {"metric": {"name": "q2"}}}]},
                "status": {"conditions": [
                    {"type": "AbleToScale", "status": "True"},
                    {"type": "ScalingActive", "status": "True"}
                ]}
            }),
        ),
        (
            "Deployment status.conditions merge by type",
            kind("apps/v1", "Deployment"),
            json!({"status": {"conditions": [{"type": "Available", "status": "False"}]}}),
            json!({"status": {"conditions": [{"type": "Available", "status": "True"}], "replicas": 2}}),
            json!({"status": {"conditions": [{"type": "Available", "status": "True"}], "replicas": 2}}),
        ),
        (
            "Pod conditions merge by type",
            kind("v1", "Pod"),
            json!({"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}]}}),
            json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
            json!({"status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}]}}),
        ),
        (
            "StatefulSet volumeClaimTemplates are replaced",
            kind("apps/v1", "StatefulSet"),
            json!({"spec": {"volumeClaimTemplates": [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}]}}),
            json!({"spec": {"volumeClaimTemplates": [{"metadata": {"name": "c"}}]}}),
            json!({"spec": {"volumeClaimTemplates": [{"metadata": {"name": "c"}}]}}),
        ),
        (
            "webhooks merge by name",
            kind("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"),
            json!({"webhooks": [
                {"name": "a.keda.sh", "clientConfig": {"caBundle": ""}},
                {"name": "b.keda.sh", "clientConfig": {"caBundle": ""}}
            ]}),
            json!({"webhooks": [{"name": "b.keda.sh", "clientConfig": {"caBundle": "Q0E="}}]}),
            json!({"webhooks": [
                {"name": "a.keda.sh", "clientConfig": {"caBundle": ""}},
                {"name": "b.keda.sh", "clientConfig": {"caBundle": "Q0E="}}
            ]}),
        ),
        (
            "Service ports merge by port",
            kind("v1", "Service"),
            json!({"spec": {"ports": [{"port": 443, "targetPort": 6443}, {"port": 80}]}}),
            json!({"spec": {"ports": [{"port": 443, "targetPort": 8443}]}}),
            json!({"spec": {"ports": [{"port": 443, "targetPort": 8443}, {"port": 80}]}}),
        ),
    ]);
}

#[test]
fn errors_are_classified_and_atomic() {
    let k = kind("apps/v1", "Deployment");
    let live = deployment(json!([{"name": "app", "image": "a"}]));
    let cases: Vec<(&str, Value, bool)> = vec![
        // (name, patch, expect Invalid rather than Unprocessable)
        ("patch is not an object", json!([1]), true),
        ("unknown map directive", json!({"spec": {"$patch": "explode"}}), true),
        ("$patch: merge in a list", pod_template_patch(json!({"containers": [{"$patch": "merge"}]})), true),
        ("$retainKeys not a list of strings", json!({"spec": {"strategy": {"$retainKeys": "type"}}}), true),
        (
            "$deleteFromPrimitiveList not a list",
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}),
            true,
        ),
        (
            "$setElementOrder out of order",
            pod_template_patch(json!({
                "$setElementOrder/containers": [{"name": "b"}, {"name": "app"}],
                "containers": [{"name": "app", "image": "x"}, {"name": "b"}]
            })),
            true,
        ),
        (
            "element without merge key",
            json!({"spec": {"replicas": 5, "template": {"spec": {"containers": [{"image": "x"}]}}}}),
            false,
        ),
        (
            "delete without merge key",
            pod_template_patch(json!({"containers": [{"$patch": "delete"}]})),
            false,
        ),
        ("list of lists", json!({"metadata": {"finalizers": [["a"]]}}), false),
        ("mixed element kinds", pod_template_patch(json!({"containers": ["app"]})), false),
    ];
    for (name, patch, expect_invalid) in cases {
        let mut doc = live.clone();
        let err = apply(&mut doc, &patch, &k).expect_err(name);
        if expect_invalid {
            assert!(matches!(err, PatchError::Invalid(_)), "{name}: {err:?}");
        } else {
            assert!(matches!(err, PatchError::Unprocessable(_)), "{name}: {err:?}");
        }
        assert_eq!(doc, live, "{name}: target must be unchanged");
    }
}
