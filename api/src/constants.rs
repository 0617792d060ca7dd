//! Names shared by every ebb component: API group, labels, annotations, the finalizer and the
//! server-side-apply field managers. Values that must match KEDA's are KEDA's exactly, so existing
//! manifests, dashboards and selectors keep working.

/// API group of ebb's custom resources (KEDA's group, for drop-in compatibility).
pub const GROUP: &str = "keda.sh";
/// API version of ebb's custom resources.
pub const VERSION: &str = "v1alpha1";
/// `group/version` as written in `apiVersion`.
pub const API_VERSION: &str = "keda.sh/v1alpha1";

/// Label put on every ScaledObject and used as the HPA's external metric selector.
pub const SCALED_OBJECT_NAME_LABEL: &str = "scaledobject.keda.sh/name";
/// `app.kubernetes.io/managed-by` value on objects ebb creates.
pub const MANAGED_BY: &str = "ebb-operator";
/// Standard label keys put on the HPA.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const LABEL_PART_OF: &str = "app.kubernetes.io/part-of";
pub const LABEL_NAME: &str = "app.kubernetes.io/name";
pub const LABEL_VERSION: &str = "app.kubernetes.io/version";

/// Finalizer, present only when `advanced.restoreToOriginalReplicaCount` is set. Same string as
/// KEDA's so that objects migrated from KEDA are released correctly.
pub const FINALIZER: &str = "finalizer.keda.sh";

/// Prefix of the generated HPA name: `keda-hpa-<scaledobject>`.
pub const HPA_NAME_PREFIX: &str = "keda-hpa-";

/// Annotations on a ScaledObject.
pub const ANNOTATION_PAUSED: &str = "autoscaling.keda.sh/paused";
pub const ANNOTATION_PAUSED_REPLICAS: &str = "autoscaling.keda.sh/paused-replicas";
pub const ANNOTATION_PAUSED_SCALE_IN: &str = "autoscaling.keda.sh/paused-scale-in";
pub const ANNOTATION_PAUSED_SCALE_OUT: &str = "autoscaling.keda.sh/paused-scale-out";
pub const ANNOTATION_FORCE_ACTIVATION: &str = "autoscaling.keda.sh/force-activation";
pub const ANNOTATION_TRANSFER_HPA_OWNERSHIP: &str = "scaledobject.keda.sh/transfer-hpa-ownership";
/// Annotation on a ScaledObject: label keys, comma-separated, that are not copied onto the HPA
/// (split on `,` only, entries not trimmed, as KEDA does).
pub const ANNOTATION_HPA_EXCLUDED_LABELS: &str = "scaledobject.keda.sh/hpa-excluded-labels";
/// Annotation on a ClusterTriggerAuthentication (ebb's own): the namespaces whose ScaledObjects
/// may use it, comma-separated, `*` for all. Absent: the operator's
/// `--cluster-trigger-auth-default-namespaces` (default `*`, as in KEDA).
pub const ANNOTATION_ALLOWED_NAMESPACES: &str = "ebb.keda.sh/allowed-namespaces";
/// Annotation on an HPA: `"false"` lets a ScaledObject target a workload this HPA also targets.
pub const ANNOTATION_HPA_OWNERSHIP_VALIDATION: &str = "validations.keda.sh/hpa-ownership";

/// Server-side apply field managers, one per usage site.
pub const FIELD_MANAGER_HPA: &str = "ebb-operator/hpa";
pub const FIELD_MANAGER_STATUS: &str = "ebb-operator/status";
pub const FIELD_MANAGER_SCALE: &str = "ebb-operator/scale";
pub const FIELD_MANAGER_LABELS: &str = "ebb-operator/labels";

/// Defaults from the ScaledObject API (seconds or replicas).
pub const DEFAULT_POLLING_INTERVAL: i32 = 30;
pub const DEFAULT_COOLDOWN_PERIOD: i32 = 300;
pub const DEFAULT_INITIAL_COOLDOWN_PERIOD: i32 = 0;
pub const DEFAULT_MIN_REPLICAS: i32 = 0;
pub const DEFAULT_MAX_REPLICAS: i32 = 100;

/// Kubernetes object names ebb derives (HPA names) must fit in a label value.
pub const MAX_NAME_LENGTH: usize = 63;
