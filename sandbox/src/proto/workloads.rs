//! Conversion tables for the workload and autoscaling kinds decoded from protobuf: apps/v1
//! Deployment and StatefulSet, batch/v1 Job and CronJob, autoscaling/v1 and v2
//! HorizontalPodAutoscaler, with their spec and status types. See `conv.rs` for the table syntax.

use super::conv::{Conv, convert, omit_zero, option_impls};
use k8s_openapi::api::apps::v1 as oa_apps;
use k8s_openapi::api::autoscaling::v1 as oa_as1;
use k8s_openapi::api::autoscaling::v2 as oa_as2;
use k8s_openapi::api::batch::v1 as oa_batch;
use k8s_pb::api::apps::v1 as pb_apps;
use k8s_pb::api::autoscaling::v1 as pb_as1;
use k8s_pb::api::autoscaling::v2 as pb_as2;
use k8s_pb::api::batch::v1 as pb_batch;

convert! { pb_apps => oa_apps;
    Deployment { metadata, spec, status }
    DeploymentCondition {
        last_transition_time, last_update_time, status, type_ = r#type; omit message, reason
    }
    DeploymentSpec {
        progress_deadline_seconds, replicas, revision_history_limit, selector, strategy, template;
        omit min_ready_seconds, paused
    }
    DeploymentStatus {
        collision_count, conditions, terminating_replicas; omit available_replicas,
        observed_generation, ready_replicas, replicas, unavailable_replicas, updated_replicas
    }
    DeploymentStrategy { rolling_update; omit type_ = r#type }
    RollingUpdateDeployment { max_surge, max_unavailable }
    RollingUpdateStatefulSetStrategy { max_unavailable, partition }
    StatefulSet { metadata, spec, status }
    StatefulSetCondition { last_transition_time, status, type_ = r#type; omit message, reason }
    StatefulSetOrdinals { start }
    StatefulSetPersistentVolumeClaimRetentionPolicy { ; omit when_deleted, when_scaled }
    StatefulSetSpec {
        ordinals, persistent_volume_claim_retention_policy, replicas, revision_history_limit,
        selector, template, update_strategy, volume_claim_templates; omit min_ready_seconds,
        pod_management_policy, service_name
    }
    StatefulSetStatus {
        available_replicas, collision_count, conditions, replicas; omit current_replicas,
        current_revision, observed_generation, ready_replicas, update_revision, updated_replicas
    }
    StatefulSetUpdateStrategy { rolling_update; omit type_ = r#type }
}

convert! { pb_batch => oa_batch;
    CronJob { metadata, spec, status }
    CronJobSpec {
        failed_jobs_history_limit, job_template, schedule, starting_deadline_seconds,
        successful_jobs_history_limit, suspend, time_zone; omit concurrency_policy
    }
    CronJobStatus { active, last_schedule_time, last_successful_time }
    Job { metadata, spec, status }
    JobCondition {
        last_probe_time, last_transition_time, status, type_ = r#type; omit message, reason
    }
    JobSpec {
        active_deadline_seconds, backoff_limit, backoff_limit_per_index, completion_mode,
        completions, managed_by, manual_selector, max_failed_indexes, parallelism,
        pod_failure_policy, pod_replacement_policy, selector, success_policy, suspend, template,
        ttl_seconds_after_finished
    }
    JobStatus {
        completion_time, conditions, failed_indexes, ready, start_time, terminating,
        uncounted_terminated_pods; omit active, completed_indexes, failed, succeeded
    }
    JobTemplateSpec { metadata, spec }
    PodFailurePolicy { rules }
    PodFailurePolicyOnExitCodesRequirement { container_name, operator, values }
    PodFailurePolicyOnPodConditionsPattern { status, type_ = r#type }
    PodFailurePolicyRule { action, on_exit_codes, on_pod_conditions }
    SuccessPolicy { rules }
    SuccessPolicyRule { succeeded_count, succeeded_indexes }
    UncountedTerminatedPods { failed, succeeded }
}

convert! { pb_as1 => oa_as1;
    CrossVersionObjectReference { kind, name; omit api_version }
    HorizontalPodAutoscaler { metadata, spec, status }
    HorizontalPodAutoscalerSpec {
        max_replicas, min_replicas, scale_target_ref, target_cpu_utilization_percentage
    }
    HorizontalPodAutoscalerStatus {
        current_cpu_utilization_percentage, current_replicas, desired_replicas, last_scale_time,
        observed_generation
    }
}

convert! { pb_as2 => oa_as2;
    ContainerResourceMetricSource { container, name, target }
    ContainerResourceMetricStatus { container, current, name }
    CrossVersionObjectReference { kind, name; omit api_version }
    ExternalMetricSource { metric, target }
    ExternalMetricStatus { current, metric }
    HpaScalingPolicy as HPAScalingPolicy { period_seconds, type_ = r#type, value }
    HpaScalingRules as HPAScalingRules {
        policies, select_policy, stabilization_window_seconds, tolerance
    }
    HorizontalPodAutoscaler { metadata, spec, status }
    HorizontalPodAutoscalerBehavior { scale_down, scale_up }
    HorizontalPodAutoscalerCondition {
        last_transition_time, status, type_ = r#type; omit message, reason
    }
    HorizontalPodAutoscalerSpec { behavior, max_replicas, metrics, min_replicas, scale_target_ref }
    HorizontalPodAutoscalerStatus {
        conditions, current_metrics, desired_replicas, last_scale_time, observed_generation; omit
        current_replicas
    }
    MetricIdentifier { name, selector }
    MetricSpec { container_resource, external, object, pods, resource, type_ = r#type }
    MetricStatus { container_resource, external, object, pods, resource, type_ = r#type }
    MetricTarget { average_utilization, average_value, type_ = r#type, value }
    MetricValueStatus { average_utilization, average_value, value }
    ObjectMetricSource { described_object, metric, target }
    ObjectMetricStatus { current, described_object, metric }
    PodsMetricSource { metric, target }
    PodsMetricStatus { current, metric }
    ResourceMetricSource { name, target }
    ResourceMetricStatus { current, name }
}
