//! The ScaledObject custom resource (`keda.sh/v1alpha1`, short name `so`): spec, status, CEL
//! rules, printer columns and the defaulting accessors every component uses instead of reading
//! optional fields directly.

// kube's derive takes repeated keys by design (one `printcolumn(type_ = …)` per column).
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerBehavior;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::constants::{
    DEFAULT_COOLDOWN_PERIOD, DEFAULT_INITIAL_COOLDOWN_PERIOD, DEFAULT_MAX_REPLICAS, DEFAULT_MIN_REPLICAS,
    DEFAULT_POLLING_INTERVAL, HPA_NAME_PREFIX,
};
use crate::metadata::MetadataValue;
use crate::sorted_map::SortedMap;

/// Desired autoscaling of one workload by external events.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "keda.sh",
    version = "v1alpha1",
    kind = "ScaledObject",
    plural = "scaledobjects",
    singular = "scaledobject",
    namespaced,
    shortname = "so",
    status = "ScaledObjectStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "ScaledObject scales a workload with a /scale subresource from external event sources.",
    printcolumn(name = "ScaleTargetKind", type_ = "string", json_path = ".status.scaleTargetKind"),
    printcolumn(name = "ScaleTargetName", type_ = "string", json_path = ".spec.scaleTargetRef.name"),
    printcolumn(name = "Min", type_ = "integer", json_path = ".spec.minReplicaCount"),
    printcolumn(name = "Max", type_ = "integer", json_path = ".spec.maxReplicaCount"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Active",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Active\")].status"
    ),
    printcolumn(
        name = "Fallback",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Fallback\")].status"
    ),
    printcolumn(
        name = "Paused",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Paused\")].status"
    ),
    printcolumn(name = "Triggers", type_ = "string", json_path = ".status.triggersTypes"),
    printcolumn(name = "Authentications", type_ = "string", json_path = ".status.authenticationsTypes"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(validation = Rule::new(
    "(has(self.minReplicaCount) ? self.minReplicaCount : 0) <= (has(self.maxReplicaCount) ? self.maxReplicaCount : 100)"
).message("minReplicaCount must be less than or equal to maxReplicaCount (default 100)"))]
#[x_kube(validation = Rule::new(
    "!has(self.idleReplicaCount) || self.idleReplicaCount < (has(self.minReplicaCount) ? self.minReplicaCount : 0)"
).message("idleReplicaCount must be less than minReplicaCount"))]
#[serde(rename_all = "camelCase")]
pub struct ScaledObjectSpec {
    /// The workload to scale: any resource exposing the /scale subresource.
    pub scale_target_ref: ScaleTarget,
    /// Seconds between two polls of the triggers (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub polling_interval: Option<i32>,
    /// Seconds after creation before the target may be scaled to zero (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub initial_cooldown_period: Option<i32>,
    /// Seconds after the last active poll before scaling to zero or idle (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub cooldown_period: Option<i32>,
    /// Replicas while no trigger is active; must be less than minReplicaCount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub idle_replica_count: Option<i32>,
    /// Lowest replica count (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_replica_count: Option<i32>,
    /// Highest replica count (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_replica_count: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advanced: Option<AdvancedConfig>,
    #[schemars(length(min = 1))]
    pub triggers: Vec<ScaleTrigger>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
}

/// Reference to the scaled workload.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaleTarget {
    pub name: String,
    /// Defaults to `apps/v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Defaults to `Deployment`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Container whose environment `…FromEnv` parameters read (default: the first container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_source_container_name: Option<String>,
}

impl ScaleTarget {
    pub fn api_version(&self) -> &str {
        self.api_version.as_deref().filter(|s| !s.is_empty()).unwrap_or("apps/v1")
    }
    pub fn kind(&self) -> &str {
        self.kind.as_deref().filter(|s| !s.is_empty()).unwrap_or("Deployment")
    }
}

/// How a trigger's value is compared with its target by the HPA.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum MetricTargetType {
    #[default]
    AverageValue,
    Value,
    Utilization,
}

impl MetricTargetType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AverageValue => "AverageValue",
            Self::Value => "Value",
            Self::Utilization => "Utilization",
        }
    }
}

/// One event source.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaleTrigger {
    /// Scaler type, e.g. `cron`, `aws-sqs-queue`, `prometheus`, `kafka`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Optional name, unique within the ScaledObject; used by scalingModifiers formulas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Answer HPA queries from the last poll instead of querying the source live.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub use_cached_metrics: bool,
    /// Scaler parameters. Values are strings; YAML booleans and numbers are read as strings.
    #[serde(default)]
    pub metadata: BTreeMap<String, MetadataValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_ref: Option<AuthenticationRef>,
    /// AverageValue (default) or Value; Utilization only for cpu/memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_type: Option<MetricTargetType>,
}

impl ScaleTrigger {
    pub fn metric_type(&self) -> MetricTargetType {
        self.metric_type.unwrap_or_default()
    }
}

/// Reference to a TriggerAuthentication (default) or ClusterTriggerAuthentication.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationRef {
    pub name: String,
    /// `TriggerAuthentication` (default) or `ClusterTriggerAuthentication`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

impl AuthenticationRef {
    pub fn kind(&self) -> &str {
        self.kind.as_deref().filter(|k| !k.is_empty()).unwrap_or("TriggerAuthentication")
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdvancedConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizontal_pod_autoscaler_config: Option<HorizontalPodAutoscalerConfig>,
    /// On deletion, put the target back to the replica count it had before ebb.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restore_to_original_replica_count: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling_modifiers: Option<ScalingModifiers>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HorizontalPodAutoscalerConfig {
    /// Name of the generated HPA (default `keda-hpa-<scaledobject>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Copied into the HPA's `spec.behavior`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<HorizontalPodAutoscalerBehavior>,
}

/// A formula combining trigger values into one metric.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScalingModifiers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formula: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_type: Option<MetricTargetType>,
}

/// What replicas to serve once a trigger failed `failureThreshold` times in a row.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Fallback {
    #[schemars(range(min = 0))]
    pub failure_threshold: i32,
    #[schemars(range(min = 0))]
    pub replicas: i32,
    #[serde(default)]
    pub behavior: FallbackBehavior,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum FallbackBehavior {
    /// Always `fallback.replicas`.
    #[default]
    Static,
    /// Keep the current replica count.
    CurrentReplicas,
    /// The current count if higher than `fallback.replicas`.
    CurrentReplicasIfHigher,
    /// The current count if lower than `fallback.replicas`.
    CurrentReplicasIfLower,
    /// Per trigger: a trigger past `failureThreshold` is nil in `scalingModifiers.formula`
    /// (route around it with `??`); `fallback.replicas` only when the formula yields nil.
    ScalingModifiers,
}

/// Observed state, written by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaledObjectStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_target_kind: Option<String>,
    #[serde(default, rename = "scaleTargetGVKR", skip_serializing_if = "Option::is_none")]
    pub scale_target_gvkr: Option<GroupVersionKindResource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_replica_count: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_active_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_metric_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_metric_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub composite_scaler_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Per metric name: consecutive failures and Happy/Failing.
    #[serde(default, skip_serializing_if = "SortedMap::is_empty")]
    pub health: SortedMap<String, HealthStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_replica_count: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hpa_name: Option<String>,
    /// Comma-separated trigger types, shown by `kubectl get so`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggers_types: Option<String>,
    /// Comma-separated authentication names, shown by `kubectl get so`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentications_types: Option<String>,
    /// Per external metric name (as in `externalMetricNames`): whether its trigger was active
    /// at the last poll that measured it.
    #[serde(default, skip_serializing_if = "SortedMap::is_empty")]
    pub triggers_activity: SortedMap<String, TriggerActivityStatus>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct GroupVersionKindResource {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub resource: String,
}

/// A status condition (`Ready`, `Active`, `Fallback`, `Paused`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
}

/// One trigger's activity in `status.triggersActivity`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TriggerActivityStatus {
    pub is_active: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_of_failures: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<HealthStatusType>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum HealthStatusType {
    Happy,
    Failing,
}

impl ScaledObjectSpec {
    pub fn polling_interval(&self) -> i32 {
        self.polling_interval.unwrap_or(DEFAULT_POLLING_INTERVAL)
    }
    pub fn cooldown_period(&self) -> i32 {
        self.cooldown_period.unwrap_or(DEFAULT_COOLDOWN_PERIOD)
    }
    pub fn initial_cooldown_period(&self) -> i32 {
        self.initial_cooldown_period.unwrap_or(DEFAULT_INITIAL_COOLDOWN_PERIOD)
    }
    pub fn min_replicas(&self) -> i32 {
        self.min_replica_count.unwrap_or(DEFAULT_MIN_REPLICAS)
    }
    pub fn max_replicas(&self) -> i32 {
        self.max_replica_count.unwrap_or(DEFAULT_MAX_REPLICAS)
    }
    pub fn hpa_behavior(&self) -> Option<&HorizontalPodAutoscalerBehavior> {
        self.advanced.as_ref()?.horizontal_pod_autoscaler_config.as_ref()?.behavior.as_ref()
    }
    pub fn restore_to_original_replica_count(&self) -> bool {
        self.advanced.as_ref().is_some_and(|a| a.restore_to_original_replica_count)
    }
}

impl ScaledObject {
    /// Name of the HPA ebb manages for this object.
    pub fn hpa_name(&self) -> String {
        let custom = self
            .spec
            .advanced
            .as_ref()
            .and_then(|a| a.horizontal_pod_autoscaler_config.as_ref())
            .and_then(|h| h.name.as_deref())
            .filter(|n| !n.is_empty());
        hpa_name_for(self.metadata.name.as_deref().unwrap_or_default(), custom)
    }
}

/// The HPA name for ScaledObject `so_name`: the custom name of
/// `advanced.horizontalPodAutoscalerConfig.name` when set and not empty, else `keda-hpa-<so_name>`.
pub fn hpa_name_for(so_name: &str, custom: Option<&str>) -> String {
    match custom.filter(|n| !n.is_empty()) {
        Some(n) => n.to_owned(),
        None => format!("{HPA_NAME_PREFIX}{so_name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CRON: &str = include_str!("../../tests/fixtures/seed/cron-prescale.yaml");

    #[test]
    fn defaults_apply_when_fields_are_absent() {
        let so: ScaledObject = serde_yaml::from_str(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: w}\nspec:\n  scaleTargetRef: {name: w}\n  triggers: [{type: cron, metadata: {}}]\n",
        )
        .unwrap();
        assert_eq!(so.spec.polling_interval(), 30);
        assert_eq!(so.spec.cooldown_period(), 300);
        assert_eq!(so.spec.min_replicas(), 0);
        assert_eq!(so.spec.max_replicas(), 100);
        assert_eq!(so.spec.scale_target_ref.kind(), "Deployment");
        assert_eq!(so.spec.scale_target_ref.api_version(), "apps/v1");
        assert_eq!(so.hpa_name(), "keda-hpa-w");
        assert_eq!(so.spec.triggers[0].metric_type(), MetricTargetType::AverageValue);
    }

    #[test]
    fn seed_cron_round_trips() {
        let so: ScaledObject = serde_yaml::from_str(CRON).unwrap();
        assert_eq!(so.spec.max_replicas(), 2);
        let back: ScaledObject = serde_yaml::from_str(&serde_yaml::to_string(&so).unwrap()).unwrap();
        assert_eq!(so, back);
    }
}
