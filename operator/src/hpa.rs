//! The HorizontalPodAutoscaler ebb applies for a ScaledObject (pure): name, labels, owner
//! reference, scale target, replica bounds, one External metric per trigger and the behavior,
//! shaped as KEDA shapes it so dashboards, selectors and tooling written for KEDA keep working.
//! The result is applied by server-side apply (field manager `ebb-operator/hpa`, force).
//!
//! As KEDA does, the ScaledObject's labels are copied onto the HPA except the keys listed in
//! `scaledobject.keda.sh/hpa-excluded-labels`, and all its annotations are copied as they are.
//! Labels or annotations that a later ScaledObject no longer yields leave the apply body, so the
//! API server removes them from the HPA (the field manager owned them).
//!
//! Where ebb differs from KEDA: ebb's own labels (`app.kubernetes.io/*`,
//! `scaledobject.keda.sh/name`) win over labels of the same key on the ScaledObject and are set
//! even when listed in `hpa-excluded-labels` (KEDA lets the ScaledObject's win, and takes
//! `scaledobject.keda.sh/name` from the ScaledObject's labels), so selectors on them stay reliable.

use std::collections::{BTreeMap, BTreeSet};

use ebb_api::annotations::ScalingAnnotations;
use ebb_api::constants::{
    ANNOTATION_HPA_EXCLUDED_LABELS, API_VERSION, LABEL_MANAGED_BY, LABEL_NAME, LABEL_PART_OF, LABEL_VERSION,
    MANAGED_BY, MAX_NAME_LENGTH, SCALED_OBJECT_NAME_LABEL,
};
use ebb_api::{MetricTargetType, ScaledObject, quantity};
use ebb_scalers::ParsedScaledObject;
use k8s_openapi::Resource;
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, ExternalMetricSource, HorizontalPodAutoscaler,
    HorizontalPodAutoscalerBehavior, HorizontalPodAutoscalerSpec, MetricIdentifier, MetricSpec, MetricTarget,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};

/// Value of `app.kubernetes.io/version` on the HPA.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Kind of the owner reference.
const SCALED_OBJECT_KIND: &str = "ScaledObject";

/// Why no HPA can be built for a ScaledObject.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum HpaError {
    #[error("the ScaledObject has no name")]
    MissingName,
    #[error("ScaledObject {0:?} has no uid yet: the HPA needs it for its owner reference")]
    MissingUid(String),
    #[error("trigger {metric:?}: metricType {metric_type} cannot be used for an external metric")]
    UnsupportedMetricType { metric: String, metric_type: &'static str },
}

/// The desired `autoscaling/v2` HPA for `so`, whose triggers `parsed` holds (in trigger order).
///
/// - name `so.hpa_name()` (default `keda-hpa-<so>`), namespace of the ScaledObject;
/// - labels: the ScaledObject's labels but those listed in `hpa-excluded-labels`
///   ([`copied_labels`]), then `app.kubernetes.io/name` (the HPA name, cut to 63 characters),
///   `app.kubernetes.io/version`, `app.kubernetes.io/part-of` (the ScaledObject),
///   `app.kubernetes.io/managed-by: ebb-operator` and `scaledobject.keda.sh/name`;
/// - annotations: all of the ScaledObject's, as they are (none when it has none);
/// - one controller owner reference to the ScaledObject (an error when it has no uid);
/// - `minReplicas` = `minReplicaCount` when above 0, else 1; `maxReplicas` = `maxReplicaCount`
///   (default 100); with `autoscaling.keda.sh/paused-replicas: N` both are N (at least 1);
/// - cpu/memory triggers as `Resource` (or, with `containerName`, `ContainerResource`) metrics
///   ([`resource_metric`]), and the metrics ordered by type as KEDA orders them
///   ([`with_resource_metrics`]);
/// - one External metric per trigger (with `advanced.scalingModifiers`, one `composite-metric`
///   with the modifiers' target and metric type instead, placed after the cpu/memory metrics as
///   KEDA places it), selected by
///   `scaledobject.keda.sh/name: <so>`, with an `AverageValue` or `Value` target of the
///   trigger's target quantity;
/// - `behavior` copied from `advanced.horizontalPodAutoscalerConfig.behavior` (absent when unset),
///   with `selectPolicy: Disabled` on scale-down under `autoscaling.keda.sh/paused-scale-in` and on
///   scale-up under `autoscaling.keda.sh/paused-scale-out`.
pub fn desired_hpa(
    so: &ScaledObject,
    parsed: &ParsedScaledObject,
) -> Result<HorizontalPodAutoscaler, HpaError> {
    let so_name = so.metadata.name.clone().filter(|n| !n.is_empty()).ok_or(HpaError::MissingName)?;
    let uid = so
        .metadata
        .uid
        .clone()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| HpaError::MissingUid(so_name.clone()))?;
    let hpa_name = so.hpa_name();

    let labels = hpa_labels(so, &so_name, &hpa_name);

    let owner = OwnerReference {
        api_version: API_VERSION.into(),
        kind: SCALED_OBJECT_KIND.into(),
        name: so_name.clone(),
        uid,
        controller: Some(true),
        block_owner_deletion: Some(true),
    };

    // With `scalingModifiers`, one `composite-metric` replaces the triggers' external metrics,
    // after the cpu/memory ones (KEDA's order).
    let metrics = match ebb_scalers::validate::modifiers::composite(so) {
        Ok(Some(c)) => {
            let mut m = with_resource_metrics(Vec::new(), so);
            m.push(external_metric(
                &so_name,
                ebb_scalers::validate::modifiers::COMPOSITE_METRIC_NAME,
                c.metric_type,
                c.target,
            )?);
            m
        }
        _ => with_resource_metrics(
            parsed
                .triggers
                .iter()
                .map(|t| external_metric(&so_name, &t.metric_name, t.metric_type, t.target()))
                .collect::<Result<Vec<_>, _>>()?,
            so,
        ),
    };

    let (min_replicas, max_replicas) = match paused_replicas(so) {
        Some(n) => (n.max(1), n.max(1)),
        None => (hpa_min_replicas(so), so.spec.max_replicas()),
    };

    let target = &so.spec.scale_target_ref;
    Ok(HorizontalPodAutoscaler {
        metadata: ObjectMeta {
            name: Some(hpa_name),
            namespace: so.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: hpa_annotations(so),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some(target.api_version().to_owned()),
                kind: target.kind().to_owned(),
                name: target.name.clone(),
            },
            min_replicas: Some(min_replicas),
            max_replicas,
            metrics: Some(metrics),
            behavior: behavior(so),
        }),
        status: None,
    })
}

/// The HPA's labels: [`copied_labels`], then ebb's own, which win.
fn hpa_labels(so: &ScaledObject, so_name: &str, hpa_name: &str) -> BTreeMap<String, String> {
    let mut labels = copied_labels(so);
    labels.insert(LABEL_NAME.into(), label_value(hpa_name));
    labels.insert(LABEL_VERSION.into(), VERSION.into());
    labels.insert(LABEL_PART_OF.into(), so_name.to_owned());
    labels.insert(LABEL_MANAGED_BY.into(), MANAGED_BY.into());
    labels.insert(SCALED_OBJECT_NAME_LABEL.into(), so_name.to_owned());
    labels
}

/// The HPA's annotations: all of the ScaledObject's, none when it has none.
fn hpa_annotations(so: &ScaledObject) -> Option<BTreeMap<String, String>> {
    so.metadata.annotations.clone().filter(|a| !a.is_empty())
}

/// A hash of the labels and annotations the HPA carries: the reconcile compares it with the last
/// complete reconcile's, so a metadata-only change of the ScaledObject (a label, a new
/// `hpa-excluded-labels`) reaches the HPA at once. A label the HPA does not show (excluded, or
/// one of ebb's own keys, such as the `scaledobject.keda.sh/name` label the operator puts on
/// the ScaledObject) does not change it. Hashed because annotations such as kubectl's
/// last-applied-configuration can be large and the value is kept per object.
pub fn metadata_fingerprint(so: &ScaledObject) -> String {
    use std::hash::{Hash, Hasher};
    let so_name = so.metadata.name.as_deref().unwrap_or_default();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    hpa_labels(so, so_name, &so.hpa_name()).hash(&mut h);
    hpa_annotations(so).hash(&mut h);
    format!("{:016x}", h.finish())
}

/// The ScaledObject's labels KEDA copies onto the HPA: all but the keys listed in the
/// `scaledobject.keda.sh/hpa-excluded-labels` annotation, whose value is split on `,` with each
/// entry taken as it is (not trimmed: `"a, b"` leaves out `a` and ` b`, which no key matches).
pub fn copied_labels(so: &ScaledObject) -> BTreeMap<String, String> {
    let excluded: BTreeSet<&str> = so
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_HPA_EXCLUDED_LABELS))
        .map(|v| v.split(',').collect())
        .unwrap_or_default();
    so.metadata
        .labels
        .iter()
        .flatten()
        .filter(|(k, _)| !excluded.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The HPA as a server-side apply body: the object with `apiVersion` and `kind` set.
pub fn hpa_as_apply_patch(hpa: &HorizontalPodAutoscaler) -> serde_json::Value {
    let mut v = serde_json::to_value(hpa).unwrap_or_else(|_| serde_json::json!({}));
    if let Some(obj) = v.as_object_mut() {
        obj.insert("apiVersion".into(), HorizontalPodAutoscaler::API_VERSION.into());
        obj.insert("kind".into(), HorizontalPodAutoscaler::KIND.into());
        obj.remove("status");
    }
    v
}

/// `minReplicas` of the HPA: `minReplicaCount` when above 0, else 1 (the HPA cannot hold 0;
/// ebb itself scales between 0, or `idleReplicaCount`, and the minimum).
pub fn hpa_min_replicas(so: &ScaledObject) -> i32 {
    so.spec.min_replica_count.filter(|m| *m > 0).unwrap_or(1)
}

/// A quantity string for a target, exact to the milli ([`quantity::to_milli`]: a product of
/// decimal fractions landing a hair above a whole milli is that milli).
pub fn target_quantity(v: f64) -> Quantity {
    Quantity(quantity::format(v))
}

/// The direction guards the scale loop obeys (`paused-scale-in`, `paused-scale-out`), read by
/// the same parser as the HPA's disabled policies so the two never disagree.
pub fn loop_guards(so: &ScaledObject) -> ebb_scalers::decision::Guards {
    let a = ScalingAnnotations::read(so.metadata.annotations.as_ref());
    ebb_scalers::decision::Guards { scale_in_paused: a.scale_in_paused, scale_out_paused: a.scale_out_paused }
}

/// `autoscaling.keda.sh/paused-replicas` as a count, when present and valid (an invalid value is
/// reported by the reconcile, which then writes no HPA).
fn paused_replicas(so: &ScaledObject) -> Option<i32> {
    ScalingAnnotations::read(so.metadata.annotations.as_ref()).pinned_replicas()
}

/// Label values are at most 63 characters and end with a letter or digit.
fn label_value(s: &str) -> String {
    if s.len() <= MAX_NAME_LENGTH {
        return s.to_owned();
    }
    let mut cut = MAX_NAME_LENGTH;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s[..cut].trim_end_matches(|c: char| !c.is_alphanumeric()).to_owned()
}

fn external_metric(
    so_name: &str,
    metric: &str,
    metric_type: MetricTargetType,
    target: f64,
) -> Result<MetricSpec, HpaError> {
    let q = target_quantity(target);
    let target = match metric_type {
        MetricTargetType::AverageValue => MetricTarget {
            type_: metric_type.as_str().into(),
            average_value: Some(q),
            ..MetricTarget::default()
        },
        MetricTargetType::Value => {
            MetricTarget { type_: metric_type.as_str().into(), value: Some(q), ..MetricTarget::default() }
        }
        MetricTargetType::Utilization => {
            return Err(HpaError::UnsupportedMetricType {
                metric: metric.to_owned(),
                metric_type: metric_type.as_str(),
            });
        }
    };
    Ok(MetricSpec {
        type_: "External".into(),
        external: Some(ExternalMetricSource {
            metric: MetricIdentifier {
                name: metric.to_owned(),
                selector: Some(LabelSelector {
                    match_labels: Some(BTreeMap::from([(
                        SCALED_OBJECT_NAME_LABEL.to_owned(),
                        so_name.to_owned(),
                    )])),
                    match_expressions: None,
                }),
            },
            target,
        }),
        ..MetricSpec::default()
    })
}

/// The external metrics with the cpu/memory triggers' metrics added, then sorted by their
/// `type` string — `ContainerResource`, `External`, `Resource` — keeping trigger order within a
/// type: KEDA sorts the HPA's metrics this way so its spec does not change from one reconcile
/// to the next.
pub fn with_resource_metrics(mut metrics: Vec<MetricSpec>, so: &ScaledObject) -> Vec<MetricSpec> {
    metrics.extend(ebb_scalers::resource::resource_triggers(so).iter().map(resource_metric));
    metrics.sort_by(|a, b| a.type_.cmp(&b.type_));
    metrics
}

/// The HPA metric of a cpu or memory trigger: `Resource` for the whole pod, `ContainerResource`
/// for `containerName`, with an `Utilization` (`averageUtilization`) or `AverageValue`
/// (`averageValue`) target.
pub fn resource_metric(t: &ebb_scalers::resource::ResourceTrigger) -> MetricSpec {
    use ebb_scalers::resource::ResourceTarget;
    use k8s_openapi::api::autoscaling::v2::{ContainerResourceMetricSource, ResourceMetricSource};
    let target = match &t.target {
        ResourceTarget::Utilization(p) => MetricTarget {
            type_: MetricTargetType::Utilization.as_str().into(),
            average_utilization: Some(*p),
            ..MetricTarget::default()
        },
        ResourceTarget::AverageValue(q) => MetricTarget {
            type_: MetricTargetType::AverageValue.as_str().into(),
            average_value: Some(Quantity(q.clone())),
            ..MetricTarget::default()
        },
    };
    match &t.container {
        Some(c) => MetricSpec {
            type_: "ContainerResource".into(),
            container_resource: Some(ContainerResourceMetricSource {
                container: c.clone(),
                name: t.resource.clone(),
                target,
            }),
            ..MetricSpec::default()
        },
        None => MetricSpec {
            type_: "Resource".into(),
            resource: Some(ResourceMetricSource { name: t.resource.clone(), target }),
            ..MetricSpec::default()
        },
    }
}

fn behavior(so: &ScaledObject) -> Option<HorizontalPodAutoscalerBehavior> {
    ScalingAnnotations::read(so.metadata.annotations.as_ref()).hpa_behavior(so.spec.hpa_behavior())
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod resource_tests;

#[cfg(test)]
mod metadata_tests;
