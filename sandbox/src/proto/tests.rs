//! Tests for protobuf decoding: bodies recorded from kubectl 1.32 (`tests/fixtures/proto/`,
//! compared with kubectl's own JSON rendering of the same objects), bodies built here with the
//! prost types the way kubectl's Go encoder writes them, and the error cases.

use std::collections::BTreeMap;

use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::autoscaling::v1 as as1;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;
use serde_json::{Value, json};

use super::{ProtoError, decode, supported_kinds};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/proto/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// A body as kubectl sends it: magic, then the envelope with empty encoding and content type.
fn body(api_version: &str, kind: &str, message: &impl Message) -> Vec<u8> {
    let envelope = Unknown {
        type_meta: Some(TypeMeta { api_version: s(api_version), kind: s(kind) }),
        raw: Some(message.encode_to_vec()),
        content_encoding: s(""),
        content_type: s(""),
    };
    [b"k8s\0".as_slice(), &envelope.encode_to_vec()].concat()
}

/// ObjectMeta as Go encodes it: every non-pointer field written, zero or not.
fn go_meta(name: &str, label_pairs: &[(&str, &str)]) -> meta::ObjectMeta {
    meta::ObjectMeta {
        name: s(name),
        generate_name: s(""),
        namespace: s(""),
        self_link: s(""),
        uid: s(""),
        resource_version: s(""),
        generation: Some(0),
        creation_timestamp: Some(meta::Time::default()),
        labels: labels(label_pairs),
        ..Default::default()
    }
}

fn go_container(name: &str, image: &str) -> core::Container {
    core::Container {
        name: s(name),
        image: s(image),
        working_dir: s(""),
        resources: Some(core::ResourceRequirements::default()),
        termination_message_path: s(""),
        image_pull_policy: s(""),
        stdin: Some(false),
        stdin_once: Some(false),
        tty: Some(false),
        termination_message_policy: s(""),
        ..Default::default()
    }
}

fn go_pod_spec(containers: Vec<core::Container>) -> core::PodSpec {
    core::PodSpec {
        containers,
        restart_policy: s(""),
        dns_policy: s(""),
        service_account_name: s(""),
        service_account: s(""),
        node_name: s(""),
        host_network: Some(false),
        host_pid: Some(false),
        host_ipc: Some(false),
        hostname: s(""),
        subdomain: s(""),
        scheduler_name: s(""),
        priority_class_name: s(""),
        ..Default::default()
    }
}

/// `kubectl create deployment web --image=nginx --replicas=2 --port=80`, as kubectl encodes it.
fn kubectl_deployment() -> apps::Deployment {
    let app = [("app", "web")];
    let mut container = go_container("nginx", "nginx");
    container.ports = vec![core::ContainerPort {
        name: s(""),
        host_port: Some(0),
        container_port: Some(80),
        protocol: s(""),
        host_ip: s(""),
    }];
    apps::Deployment {
        metadata: Some(go_meta("web", &app)),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(2),
            selector: Some(meta::LabelSelector { match_labels: labels(&app), ..Default::default() }),
            template: Some(core::PodTemplateSpec {
                metadata: Some(go_meta("", &app)),
                spec: Some(go_pod_spec(vec![container])),
            }),
            strategy: Some(apps::DeploymentStrategy { r#type: s(""), rolling_update: None }),
            min_ready_seconds: Some(0),
            paused: Some(false),
            ..Default::default()
        }),
        status: Some(apps::DeploymentStatus {
            observed_generation: Some(0),
            replicas: Some(0),
            updated_replicas: Some(0),
            ready_replicas: Some(0),
            available_replicas: Some(0),
            unavailable_replicas: Some(0),
            ..Default::default()
        }),
    }
}

fn kubectl_namespace() -> core::Namespace {
    core::Namespace {
        metadata: Some(go_meta("demo", &[])),
        spec: Some(core::NamespaceSpec::default()),
        status: Some(core::NamespaceStatus { phase: s(""), conditions: vec![] }),
    }
}

fn kubectl_secret() -> core::Secret {
    core::Secret {
        metadata: Some(go_meta("s", &[])),
        data: [("k".to_owned(), b"v".to_vec())].into(),
        r#type: s(""),
        ..Default::default()
    }
}

fn kubectl_configmap() -> core::ConfigMap {
    core::ConfigMap { metadata: Some(go_meta("c", &[])), data: labels(&[("a", "b")]), ..Default::default() }
}

#[test]
fn bodies_built_here_are_byte_identical_to_kubectls() {
    let cases = [
        ("create-namespace.bin", body("v1", "Namespace", &kubectl_namespace())),
        ("create-deployment.bin", body("apps/v1", "Deployment", &kubectl_deployment())),
        ("create-secret-generic.bin", body("v1", "Secret", &kubectl_secret())),
        ("create-configmap.bin", body("v1", "ConfigMap", &kubectl_configmap())),
    ];
    for (name, built) in cases {
        assert_eq!(built, fixture(name), "{name}");
    }
}

#[test]
fn kubectl_generators_decode_to_their_json() {
    let cases = [
        (
            body("apps/v1", "Deployment", &kubectl_deployment()),
            json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web", "labels": {"app": "web"}},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{
                            "name": "nginx",
                            "image": "nginx",
                            "ports": [{"containerPort": 80}],
                            "resources": {}
                        }]}
                    },
                    "strategy": {}
                },
                "status": {}
            }),
        ),
        (
            body("v1", "Namespace", &kubectl_namespace()),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"},
                   "spec": {}, "status": {}}),
        ),
        (
            body("v1", "Secret", &kubectl_secret()),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                   "data": {"k": "dg=="}}),
        ),
        (
            body("v1", "ConfigMap", &kubectl_configmap()),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                   "data": {"a": "b"}}),
        ),
    ];
    for (built, expected) in cases {
        assert_eq!(decode(&built).unwrap(), expected);
    }
}

/// Drops `null` members: Go prints unset pointers without `omitempty` as `null`, the decoder
/// leaves them out, and both mean "unset".
fn without_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, without_nulls(v))).collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

/// Also drops empty lists and empty `name`s: in the all-structs-present fixture, Go leaves out
/// unset required lists (`null`) and empty `LocalObjectReference` names, which `k8s-openapi`
/// models as required and prints as `[]` and `""`.
fn without_empty_required(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, v)| !(v.as_array().is_some_and(Vec::is_empty) || k == "name" && v == ""))
                .map(|(k, v)| (k, without_empty_required(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_empty_required).collect()),
        other => other,
    }
}

#[test]
fn recorded_kubectl_bodies_decode_to_kubectls_own_json() {
    let names = [
        "create-namespace",
        "create-deployment",
        "create-secret-generic",
        "create-configmap",
        "create-serviceaccount",
        "create-service-nodeport",
        "create-cronjob",
        "autoscale",
        "create-job-from-cronjob",
    ];
    for name in names {
        let decoded = decode(&fixture(&format!("{name}.bin"))).unwrap();
        let go: Value = serde_json::from_slice(&fixture(&format!("{name}.json"))).unwrap();
        let go = without_nulls(go);
        if name == "create-job-from-cronjob" {
            assert_eq!(without_empty_required(decoded), without_empty_required(go), "{name}");
        } else {
            assert_eq!(decoded, go, "{name}");
        }
    }
}

#[test]
fn every_supported_kind_decodes_an_empty_object_with_its_own_type() {
    let kinds: Vec<_> = supported_kinds().collect();
    assert_eq!(kinds.len(), 14);
    for (api_version, kind) in kinds {
        let value = decode(&body(api_version, kind, &())).unwrap();
        assert_eq!(value["apiVersion"], api_version);
        assert_eq!(value["kind"], kind);
        assert_eq!(value["metadata"], json!({}), "{api_version} {kind}");
    }
}

#[test]
fn malformed_bodies_are_rejected_with_the_matching_error() {
    let deployment = fixture("create-deployment.bin");
    assert_eq!(decode(b""), Err(ProtoError::BadMagic));
    assert_eq!(decode(b"{\"kind\":\"Deployment\"}"), Err(ProtoError::BadMagic));
    assert_eq!(decode(&deployment[1..]), Err(ProtoError::BadMagic));
    for cut in [5, 10, 40, deployment.len() - 5] {
        assert!(matches!(decode(&deployment[..cut]), Err(ProtoError::BadEnvelope(_))), "cut at {cut}");
    }
    let no_kind = [b"k8s\0".as_slice(), &Unknown::default().encode_to_vec()].concat();
    assert!(matches!(decode(&no_kind), Err(ProtoError::BadEnvelope(_))));
    let mut gzip = Unknown::decode(&deployment[4..]).unwrap();
    gzip.content_encoding = s("gzip");
    let gzip = [b"k8s\0".as_slice(), &gzip.encode_to_vec()].concat();
    assert_eq!(
        decode(&gzip).unwrap_err().to_string(),
        "malformed protobuf envelope: unsupported contentEncoding \"gzip\""
    );
}

#[test]
fn unsupported_and_undecodable_kinds_name_the_kind() {
    let replicaset = body("apps/v1", "ReplicaSet", &apps::ReplicaSet::default());
    let err = decode(&replicaset).unwrap_err();
    assert_eq!(
        err,
        ProtoError::UnsupportedKind { api_version: "apps/v1".to_owned(), kind: "ReplicaSet".to_owned() }
    );
    assert_eq!(err.to_string(), "unsupported kind \"apps/v1 ReplicaSet\" in protobuf body; send it as JSON");
    // A Deployment envelope holding bytes that are not a Deployment (field 1 claims 100 bytes).
    let mut garbage = Unknown::decode(&fixture("create-deployment.bin")[4..]).unwrap();
    garbage.raw = Some(vec![0x0a, 100, 1, 2, 3]);
    let garbage = [b"k8s\0".as_slice(), &garbage.encode_to_vec()].concat();
    let err = decode(&garbage).unwrap_err();
    assert!(matches!(&err, ProtoError::Decode { kind, .. } if kind == "Deployment"));
    assert!(err.to_string().starts_with("cannot decode protobuf apps/v1 Deployment: "), "{err}");
}

#[test]
fn invalid_special_values_fail_with_a_reason() {
    let bad_intstr = apps::Deployment {
        spec: Some(apps::DeploymentSpec {
            strategy: Some(apps::DeploymentStrategy {
                r#type: s("RollingUpdate"),
                rolling_update: Some(apps::RollingUpdateDeployment {
                    max_surge: Some(IntOrString { r#type: Some(7), ..Default::default() }),
                    max_unavailable: None,
                }),
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let err = decode(&body("apps/v1", "Deployment", &bad_intstr)).unwrap_err();
    assert!(err.to_string().ends_with("IntOrString has unknown type 7"), "{err}");

    let bad_fields = core::ConfigMap {
        metadata: Some(meta::ObjectMeta {
            managed_fields: vec![meta::ManagedFieldsEntry {
                fields_v1: Some(meta::FieldsV1 { raw: Some(b"{not json".to_vec()) }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let err = decode(&body("v1", "ConfigMap", &bad_fields)).unwrap_err();
    assert!(err.to_string().contains("fieldsV1 is not JSON"), "{err}");
}

#[test]
fn hpa_v1_keeps_its_own_version() {
    let hpa = as1::HorizontalPodAutoscaler {
        metadata: Some(go_meta("web", &[])),
        spec: Some(as1::HorizontalPodAutoscalerSpec {
            scale_target_ref: Some(as1::CrossVersionObjectReference {
                kind: s("Deployment"),
                name: s("web"),
                api_version: s("apps/v1"),
            }),
            min_replicas: Some(1),
            max_replicas: Some(4),
            target_cpu_utilization_percentage: Some(0),
        }),
        status: Some(as1::HorizontalPodAutoscalerStatus {
            current_replicas: Some(0),
            desired_replicas: Some(0),
            ..Default::default()
        }),
    };
    let value = decode(&body("autoscaling/v1", "HorizontalPodAutoscaler", &hpa)).unwrap();
    assert_eq!(
        value,
        json!({
            "apiVersion": "autoscaling/v1",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 1,
                "maxReplicas": 4,
                "targetCPUUtilizationPercentage": 0
            },
            "status": {"currentReplicas": 0, "desiredReplicas": 0}
        })
    );
}

mod objects;
