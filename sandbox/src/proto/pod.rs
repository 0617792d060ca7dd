//! Conversion tables for the core/v1 pod template: PodSpec, containers, probes, affinity,
//! security contexts and the rest of what a workload's pod template holds (volumes live in
//! `volume.rs`). See `conv.rs` for the table syntax.

use super::conv::{Conv, convert, omit_zero, option_impls};
use k8s_openapi::api::core::v1 as oa_core;
use k8s_pb::api::core::v1 as pb_core;

convert! { pb_core => oa_core;
    Affinity { node_affinity, pod_affinity, pod_anti_affinity }
    AppArmorProfile { localhost_profile, type_ = r#type }
    Capabilities { add, drop }
    ConfigMapEnvSource { optional; from local_object_reference { name } }
    ConfigMapKeySelector { key, optional; from local_object_reference { name } }
    Container {
        args, command, env, env_from, lifecycle, liveness_probe, name, ports, readiness_probe,
        resize_policy, resources, restart_policy, security_context, startup_probe, volume_devices,
        volume_mounts; omit image, image_pull_policy, stdin, stdin_once, termination_message_path,
        termination_message_policy, tty, working_dir
    }
    ContainerPort { container_port; omit host_ip, host_port, name, protocol }
    ContainerResizePolicy { resource_name, restart_policy }
    EnvFromSource { config_map_ref, secret_ref; omit prefix }
    EnvVar { name, value_from; omit value }
    EnvVarSource { config_map_key_ref, field_ref, resource_field_ref, secret_key_ref }
    EphemeralContainer {
        ; omit target_container_name; from ephemeral_container_common { args, command, env,
        env_from, lifecycle, liveness_probe, name, ports, readiness_probe, resize_policy,
        resources, restart_policy, security_context, startup_probe, volume_devices, volume_mounts;
        omit image, image_pull_policy, stdin, stdin_once, termination_message_path,
        termination_message_policy, tty, working_dir }
    }
    ExecAction { command }
    GrpcAction as GRPCAction { port, service }
    HttpGetAction as HTTPGetAction { http_headers, port; omit host, path, scheme }
    HttpHeader as HTTPHeader { name, value }
    HostAlias { hostnames, ip }
    Lifecycle { post_start, pre_stop, stop_signal }
    LifecycleHandler { exec, http_get, sleep, tcp_socket }
    LocalObjectReference { name }
    NodeAffinity {
        preferred_during_scheduling_ignored_during_execution,
        required_during_scheduling_ignored_during_execution
    }
    NodeSelector { node_selector_terms }
    NodeSelectorRequirement { key, operator, values }
    NodeSelectorTerm { match_expressions, match_fields }
    ObjectFieldSelector { field_path; omit api_version }
    PodAffinity {
        preferred_during_scheduling_ignored_during_execution,
        required_during_scheduling_ignored_during_execution
    }
    PodAffinityTerm {
        label_selector, match_label_keys, mismatch_label_keys, namespace_selector, namespaces,
        topology_key
    }
    PodAntiAffinity {
        preferred_during_scheduling_ignored_during_execution,
        required_during_scheduling_ignored_during_execution
    }
    PodDnsConfig as PodDNSConfig { nameservers, options, searches }
    PodDnsConfigOption as PodDNSConfigOption { value; omit name }
    PodOs as PodOS { name }
    PodReadinessGate { condition_type }
    PodResourceClaim { name, resource_claim_name, resource_claim_template_name }
    PodSchedulingGate { name }
    PodSecurityContext {
        app_armor_profile, fs_group, fs_group_change_policy, run_as_group, run_as_non_root,
        run_as_user, se_linux_change_policy, se_linux_options, seccomp_profile,
        supplemental_groups, supplemental_groups_policy, sysctls, windows_options
    }
    PodSpec {
        active_deadline_seconds, affinity, automount_service_account_token, containers, dns_config,
        enable_service_links, ephemeral_containers, host_aliases, host_users, image_pull_secrets,
        init_containers, node_selector, os, overhead, preemption_policy, priority, readiness_gates,
        resource_claims, resources, runtime_class_name, scheduling_gates, security_context,
        set_hostname_as_fqdn, share_process_namespace, termination_grace_period_seconds,
        tolerations, topology_spread_constraints, volumes; omit dns_policy, host_ipc, host_network,
        host_pid, hostname, node_name, priority_class_name, restart_policy, scheduler_name,
        service_account, service_account_name, subdomain
    }
    PodTemplateSpec { metadata, spec }
    PreferredSchedulingTerm { preference, weight }
    Probe {
        termination_grace_period_seconds; omit failure_threshold, initial_delay_seconds,
        period_seconds, success_threshold, timeout_seconds; from handler { exec, grpc, http_get,
        tcp_socket }
    }
    ResourceClaim { name; omit request }
    ResourceFieldSelector { divisor, resource; omit container_name }
    ResourceRequirements { claims, limits, requests }
    SeLinuxOptions as SELinuxOptions { ; omit level, role, type_ = r#type, user }
    SeccompProfile { localhost_profile, type_ = r#type }
    SecretEnvSource { optional; from local_object_reference { name } }
    SecretKeySelector { key, optional; from local_object_reference { name } }
    SecurityContext {
        allow_privilege_escalation, app_armor_profile, capabilities, privileged, proc_mount,
        read_only_root_filesystem, run_as_group, run_as_non_root, run_as_user, se_linux_options,
        seccomp_profile, windows_options
    }
    SleepAction { seconds }
    Sysctl { name, value }
    TcpSocketAction as TCPSocketAction { port; omit host }
    Toleration { toleration_seconds; omit effect, key, operator, value }
    TopologySpreadConstraint {
        label_selector, match_label_keys, max_skew, min_domains, node_affinity_policy,
        node_taints_policy, topology_key, when_unsatisfiable
    }
    VolumeDevice { device_path, name }
    VolumeMount {
        mount_path, mount_propagation, name, recursive_read_only; omit read_only, sub_path,
        sub_path_expr
    }
    WeightedPodAffinityTerm { pod_affinity_term, weight }
    WindowsSecurityContextOptions {
        gmsa_credential_spec, gmsa_credential_spec_name, host_process, run_as_user_name
    }
}
