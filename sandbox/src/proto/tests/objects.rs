//! Decoding of richer objects than kubectl's generators produce: every ObjectMeta field,
//! timestamps, int-or-string, quantities, Go pointer zeros (kept) next to non-pointer zeros
//! (dropped), and the inlined Go structs (volume source, probe handler, ephemeral container,
//! local object references).

use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::batch::v1 as batch;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

use super::{body, go_container, go_meta, go_pod_spec, labels, s};
use crate::proto::decode;

fn quantity(v: &str) -> Quantity {
    Quantity { string: s(v) }
}

fn int(v: i32) -> Option<IntOrString> {
    Some(IntOrString { r#type: Some(0), int_val: Some(v), str_val: s("") })
}

fn string(v: &str) -> Option<IntOrString> {
    Some(IntOrString { r#type: Some(1), int_val: Some(0), str_val: s(v) })
}

fn full_meta() -> meta::ObjectMeta {
    let at = Some(meta::Time { seconds: Some(1_714_564_800), nanos: Some(0) });
    meta::ObjectMeta {
        generate_name: s("web-"),
        namespace: s("prod"),
        uid: s("u-1"),
        resource_version: s("42"),
        generation: Some(3),
        creation_timestamp: at,
        deletion_grace_period_seconds: Some(0),
        annotations: labels(&[("note", "x")]),
        owner_references: vec![meta::OwnerReference {
            api_version: s("v1"),
            kind: s("ConfigMap"),
            name: s("owner"),
            uid: s("u-0"),
            controller: Some(true),
            block_owner_deletion: Some(false),
        }],
        finalizers: vec!["example.com/keep".to_owned()],
        managed_fields: vec![meta::ManagedFieldsEntry {
            manager: s("kubectl"),
            operation: s("Update"),
            api_version: s("apps/v1"),
            time: at,
            fields_type: s("FieldsV1"),
            fields_v1: Some(meta::FieldsV1 { raw: Some(br#"{"f:spec":{}}"#.to_vec()) }),
            subresource: s(""),
        }],
        ..go_meta("web", &[("app", "web")])
    }
}

#[test]
fn deployment_with_every_metadata_field_and_a_rich_pod_template() {
    let mut app = go_container("app", "example/app:1");
    app.args = vec!["--serve".to_owned()];
    app.command = vec!["/app".to_owned()];
    app.env = vec![
        core::EnvVar { name: s("A"), value: s("1"), value_from: None },
        core::EnvVar {
            name: s("B"),
            value: s(""),
            value_from: Some(core::EnvVarSource {
                secret_key_ref: Some(core::SecretKeySelector {
                    local_object_reference: Some(core::LocalObjectReference { name: s("creds") }),
                    key: s("token"),
                    optional: Some(false),
                }),
                ..Default::default()
            }),
        },
    ];
    app.resources = Some(core::ResourceRequirements {
        limits: [("cpu".to_owned(), quantity("500m")), ("memory".to_owned(), quantity("128Mi"))].into(),
        requests: [("cpu".to_owned(), quantity("250m"))].into(),
        claims: vec![],
    });
    app.ports = vec![core::ContainerPort {
        name: s("http"),
        host_port: Some(0),
        container_port: Some(8080),
        protocol: s("TCP"),
        host_ip: s(""),
    }];
    app.readiness_probe = Some(core::Probe {
        handler: Some(core::ProbeHandler {
            http_get: Some(core::HttpGetAction {
                path: s("/healthz"),
                port: string("http"),
                host: s(""),
                scheme: s(""),
                http_headers: vec![],
            }),
            ..Default::default()
        }),
        initial_delay_seconds: Some(0),
        timeout_seconds: Some(0),
        period_seconds: Some(5),
        success_threshold: Some(0),
        failure_threshold: Some(0),
        termination_grace_period_seconds: None,
    });
    app.volume_mounts = vec![core::VolumeMount {
        name: s("cfg"),
        read_only: Some(false),
        mount_path: s("/etc/cfg"),
        sub_path: s(""),
        sub_path_expr: s(""),
        ..Default::default()
    }];
    app.security_context = Some(core::SecurityContext {
        run_as_user: Some(0),
        run_as_non_root: Some(false),
        ..Default::default()
    });
    let mut pod = go_pod_spec(vec![app]);
    pod.termination_grace_period_seconds = Some(0);
    pod.automount_service_account_token = Some(false);
    pod.volumes = vec![
        core::Volume {
            name: s("cfg"),
            volume_source: Some(core::VolumeSource {
                config_map: Some(core::ConfigMapVolumeSource {
                    local_object_reference: Some(core::LocalObjectReference { name: s("web-cfg") }),
                    default_mode: Some(420),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        },
        core::Volume {
            name: s("scratch"),
            volume_source: Some(core::VolumeSource {
                empty_dir: Some(core::EmptyDirVolumeSource {
                    medium: s(""),
                    size_limit: Some(quantity("1Gi")),
                }),
                ..Default::default()
            }),
        },
    ];
    pod.ephemeral_containers = vec![core::EphemeralContainer {
        ephemeral_container_common: Some(core::EphemeralContainerCommon {
            name: s("debug"),
            image: s("busybox"),
            stdin: Some(true),
            tty: Some(false),
            ..Default::default()
        }),
        target_container_name: s("app"),
    }];
    let deployment = apps::Deployment {
        metadata: Some(full_meta()),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(0),
            revision_history_limit: Some(0),
            min_ready_seconds: Some(0),
            paused: Some(false),
            selector: Some(meta::LabelSelector {
                match_expressions: vec![meta::LabelSelectorRequirement {
                    key: s("tier"),
                    operator: s("In"),
                    values: vec!["web".to_owned()],
                }],
                ..Default::default()
            }),
            template: Some(core::PodTemplateSpec {
                metadata: Some(go_meta("", &[("tier", "web")])),
                spec: Some(pod),
            }),
            strategy: Some(apps::DeploymentStrategy {
                r#type: s("RollingUpdate"),
                rolling_update: Some(apps::RollingUpdateDeployment {
                    max_unavailable: int(0),
                    max_surge: string("25%"),
                }),
            }),
            progress_deadline_seconds: None,
        }),
        status: None,
    };
    let value = decode(&body("apps/v1", "Deployment", &deployment)).unwrap();
    let expected = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "generateName": "web-",
            "namespace": "prod",
            "uid": "u-1",
            "resourceVersion": "42",
            "generation": 3,
            "creationTimestamp": "2024-05-01T12:00:00Z",
            "deletionGracePeriodSeconds": 0,
            "labels": {"app": "web"},
            "annotations": {"note": "x"},
            "ownerReferences": [{
                "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "u-0",
                "controller": true, "blockOwnerDeletion": false
            }],
            "finalizers": ["example.com/keep"],
            "managedFields": [{
                "manager": "kubectl", "operation": "Update", "apiVersion": "apps/v1",
                "time": "2024-05-01T12:00:00Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {}}
            }]
        },
        "spec": {
            "replicas": 0,
            "revisionHistoryLimit": 0,
            "selector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}
            },
            "template": {
                "metadata": {"labels": {"tier": "web"}},
                "spec": {
                    "terminationGracePeriodSeconds": 0,
                    "automountServiceAccountToken": false,
                    "volumes": [
                        {"name": "cfg", "configMap": {"name": "web-cfg", "defaultMode": 420}},
                        {"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}}
                    ],
                    "containers": [{
                        "name": "app",
                        "image": "example/app:1",
                        "command": ["/app"],
                        "args": ["--serve"],
                        "env": [
                            {"name": "A", "value": "1"},
                            {"name": "B", "valueFrom": {"secretKeyRef":
                                {"name": "creds", "key": "token", "optional": false}}}
                        ],
                        "resources": {
                            "limits": {"cpu": "500m", "memory": "128Mi"},
                            "requests": {"cpu": "250m"}
                        },
                        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 5},
                        "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"}],
                        "securityContext": {"runAsUser": 0, "runAsNonRoot": false}
                    }],
                    "ephemeralContainers": [{
                        "name": "debug", "image": "busybox", "stdin": true, "targetContainerName": "app"
                    }]
                }
            }
        }
    });
    assert_eq!(value, expected);
}

#[test]
fn statefulset_cronjob_and_service_keep_pointer_zeros_and_drop_unset_fields() {
    let claim = core::PersistentVolumeClaim {
        metadata: Some(go_meta("data", &[])),
        spec: Some(core::PersistentVolumeClaimSpec {
            access_modes: vec!["ReadWriteOnce".to_owned()],
            storage_class_name: s(""),
            volume_name: s(""),
            resources: Some(core::VolumeResourceRequirements {
                requests: [("storage".to_owned(), quantity("1Gi"))].into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: None,
    };
    let statefulset = apps::StatefulSet {
        metadata: Some(go_meta("db", &[])),
        spec: Some(apps::StatefulSetSpec {
            replicas: Some(3),
            service_name: s("db"),
            pod_management_policy: s(""),
            min_ready_seconds: Some(0),
            volume_claim_templates: vec![claim],
            update_strategy: Some(apps::StatefulSetUpdateStrategy {
                r#type: s("RollingUpdate"),
                rolling_update: Some(apps::RollingUpdateStatefulSetStrategy {
                    partition: Some(0),
                    max_unavailable: None,
                }),
            }),
            persistent_volume_claim_retention_policy: Some(
                apps::StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: s("Retain"),
                    when_scaled: s(""),
                },
            ),
            ..Default::default()
        }),
        status: Some(apps::StatefulSetStatus {
            replicas: Some(0),
            available_replicas: Some(0),
            ready_replicas: Some(0),
            ..Default::default()
        }),
    };
    let mut job_pod = go_pod_spec(vec![go_container("run", "busybox")]);
    job_pod.restart_policy = s("Never");
    let cronjob = batch::CronJob {
        metadata: Some(go_meta("tick", &[])),
        spec: Some(batch::CronJobSpec {
            schedule: s("*/5 * * * *"),
            time_zone: s("Etc/UTC"),
            suspend: Some(false),
            concurrency_policy: s("Forbid"),
            job_template: Some(batch::JobTemplateSpec {
                metadata: Some(go_meta("", &[])),
                spec: Some(batch::JobSpec {
                    backoff_limit: Some(0),
                    template: Some(core::PodTemplateSpec {
                        metadata: Some(go_meta("", &[])),
                        spec: Some(job_pod),
                    }),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
        status: Some(batch::CronJobStatus::default()),
    };
    let service = core::Service {
        metadata: Some(go_meta("api", &[])),
        spec: Some(core::ServiceSpec {
            ports: vec![core::ServicePort {
                name: s(""),
                protocol: s("TCP"),
                port: Some(443),
                target_port: string("https"),
                node_port: Some(0),
                app_protocol: None,
            }],
            selector: labels(&[("app", "api")]),
            cluster_ip: s(""),
            r#type: s("ClusterIP"),
            session_affinity: s("None"),
            publish_not_ready_addresses: Some(false),
            ..Default::default()
        }),
        status: None,
    };
    let cases = [
        (
            body("apps/v1", "StatefulSet", &statefulset),
            json!({
                "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
                "spec": {
                    "replicas": 3,
                    "serviceName": "db",
                    "selector": {},
                    "template": {},
                    "volumeClaimTemplates": [{
                        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                        "metadata": {"name": "data"},
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "storageClassName": "",
                            "resources": {"requests": {"storage": "1Gi"}}
                        }
                    }],
                    "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                    "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain"}
                },
                "status": {"replicas": 0, "availableReplicas": 0}
            }),
        ),
        (
            body("batch/v1", "CronJob", &cronjob),
            json!({
                "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "tick"},
                "spec": {
                    "schedule": "*/5 * * * *",
                    "timeZone": "Etc/UTC",
                    "suspend": false,
                    "concurrencyPolicy": "Forbid",
                    "jobTemplate": {"metadata": {}, "spec": {
                        "backoffLimit": 0,
                        "template": {"metadata": {}, "spec": {
                            "restartPolicy": "Never",
                            "containers": [{"name": "run", "image": "busybox", "resources": {}}]
                        }}
                    }}
                },
                "status": {}
            }),
        ),
        (
            body("v1", "Service", &service),
            json!({
                "apiVersion": "v1", "kind": "Service", "metadata": {"name": "api"},
                "spec": {
                    "type": "ClusterIP",
                    "sessionAffinity": "None",
                    "selector": {"app": "api"},
                    "ports": [{"port": 443, "protocol": "TCP", "targetPort": "https"}]
                }
            }),
        ),
    ];
    for (built, expected) in cases {
        assert_eq!(decode(&built).unwrap(), expected);
    }
}
