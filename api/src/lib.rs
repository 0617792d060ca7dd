//! ebb's public API: the `keda.sh/v1alpha1` custom resources (ScaledObject, TriggerAuthentication,
//! ClusterTriggerAuthentication), the constants every component shares (labels, annotations,
//! finalizer, field managers), external metric naming, Kubernetes quantities and label selectors.
//!
//! This crate performs no I/O; everything here is plain data and pure functions.

pub mod annotations;
pub mod constants;
pub mod crds;
pub mod internal;
pub mod label_selector;
pub mod metadata;
pub mod metric_name;
pub mod quantity;
pub mod scaled_object;
pub mod shard;
pub mod sorted_map;
pub mod trigger_auth;

pub use metadata::MetadataValue;
pub use scaled_object::{
    AdvancedConfig, AuthenticationRef, Condition, Fallback, FallbackBehavior, GroupVersionKindResource,
    HealthStatus, HealthStatusType, HorizontalPodAutoscalerConfig, MetricTargetType, ScaleTarget,
    ScaleTrigger, ScaledObject, ScaledObjectSpec, ScaledObjectStatus, ScalingModifiers,
    TriggerActivityStatus,
};
pub use sorted_map::SortedMap;
pub use trigger_auth::{
    AuthConfigMapTargetRef, AuthEnvironment, AuthPodIdentity, AuthSecretTargetRef,
    ClusterTriggerAuthentication, ClusterTriggerAuthenticationSpec, TriggerAuthentication,
    TriggerAuthenticationSpec, TriggerAuthenticationStatus,
};
