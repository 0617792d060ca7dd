//! Conversion tables for the core/v1 kinds decoded from protobuf (Namespace, Secret, ConfigMap,
//! ServiceAccount, Service, Pod), their status types, and the meta/v1 types they share
//! (ObjectMeta, OwnerReference, LabelSelector, ...). See `conv.rs` for the table syntax.

use super::conv::{Conv, convert, omit_zero, option_impls};
use k8s_openapi::api::core::v1 as oa_core;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as oa_meta;
use k8s_pb::api::core::v1 as pb_core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as pb_meta;

convert! { pb_core => oa_core;
    ClientIpConfig as ClientIPConfig { timeout_seconds }
    ConfigMap { binary_data, data, immutable, metadata }
    ContainerState { running, terminated, waiting }
    ContainerStateRunning { started_at }
    ContainerStateTerminated {
        exit_code, finished_at, started_at; omit container_id, message, reason, signal
    }
    ContainerStateWaiting { ; omit message, reason }
    ContainerStatus {
        allocated_resources, allocated_resources_status, image, image_id, last_state, name, ready,
        resources, restart_count, started, state, stop_signal, user, volume_mounts; omit
        container_id
    }
    ContainerUser { linux }
    HostIp as HostIP { ip }
    LinuxContainerUser { gid, supplemental_groups, uid }
    LoadBalancerIngress { ip_mode, ports; omit hostname, ip }
    LoadBalancerStatus { ingress }
    Namespace { metadata, spec, status }
    NamespaceCondition { last_transition_time, status, type_ = r#type; omit message, reason }
    NamespaceSpec { finalizers }
    NamespaceStatus { conditions; omit phase }
    ObjectReference { ; omit api_version, field_path, kind, name, namespace, resource_version, uid }
    Pod { metadata, spec, status }
    PodCondition {
        last_probe_time, last_transition_time, status, type_ = r#type; omit message,
        observed_generation, reason
    }
    PodIp as PodIP { ip }
    PodResourceClaimStatus { name, resource_claim_name }
    PodStatus {
        conditions, container_statuses, ephemeral_container_statuses, host_ips,
        init_container_statuses, pod_ips, resource_claim_statuses, start_time; omit host_ip,
        message, nominated_node_name, observed_generation, phase, pod_ip, qos_class, reason, resize
    }
    PortStatus { error, port, protocol }
    ResourceHealth { resource_id; omit health }
    ResourceStatus { name, resources }
    Secret { data, immutable, metadata, string_data; omit type_ = r#type }
    Service { metadata, spec, status }
    ServiceAccount { automount_service_account_token, image_pull_secrets, metadata, secrets }
    ServicePort { app_protocol, port, target_port; omit name, node_port, protocol }
    ServiceSpec {
        allocate_load_balancer_node_ports, cluster_ips, external_ips, internal_traffic_policy,
        ip_families, ip_family_policy, load_balancer_class, load_balancer_source_ranges, ports,
        selector, session_affinity_config, traffic_distribution; omit cluster_ip, external_name,
        external_traffic_policy, health_check_node_port, load_balancer_ip,
        publish_not_ready_addresses, session_affinity, type_ = r#type
    }
    ServiceStatus { conditions, load_balancer }
    SessionAffinityConfig { client_ip }
    VolumeMountStatus { mount_path, name, recursive_read_only; omit read_only }
}

convert! { pb_meta => oa_meta;
    Condition {
        last_transition_time, message, reason, status, type_ = r#type; omit observed_generation
    }
    LabelSelector { match_expressions, match_labels }
    LabelSelectorRequirement { key, operator, values }
    ManagedFieldsEntry {
        fields_v1, time; omit api_version, fields_type, manager, operation, subresource
    }
    ObjectMeta {
        annotations, creation_timestamp, deletion_grace_period_seconds, deletion_timestamp,
        finalizers, labels, managed_fields, owner_references; omit generate_name, generation, name,
        namespace, resource_version, self_link, uid
    }
    OwnerReference { api_version, block_owner_deletion, controller, kind, name, uid }
}
