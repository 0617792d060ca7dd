//! What the operator's watch caches keep of each object: only the fields something reads, so
//! that memory per ScaledObject stays small at tens of thousands of objects. Applied to every
//! watch event before the reflector stores the object (`WatchStreamExt::modify`).
//!
//! - ScaledObjects (the controller's store, and through it every reconcile and scale loop):
//!   everything but `metadata.managedFields`, which nothing reads and which is often the largest
//!   part of an object (one entry per field manager, each listing the fields it owns). The
//!   annotations stay whole: the HPA carries all of them, as KEDA copies them. Once the
//!   operator holds the object's status model ([`crate::context::StatusModel`], set by its first
//!   reconcile), its status goes too ([`status_once_modelled`]): reconciles and loops decide
//!   from the model, and the status is the operator's own, so the store's copy would be a second
//!   copy of it. Until then (at start, after a restart or a change of leader) it stays: the first
//!   reconcile reads it (`lastActiveTime`, `originalReplicaCount`, the conditions).
//! - HPAs (the controller's watch of the HPAs it owns, read by [`crate::hpa_active`]): the watch
//!   decodes them as [`OwnedHpa`], which has no spec and no status but the conditions, so those
//!   are skipped while decoding instead of being decoded, copied and dropped; [`hpa`] then keeps
//!   the identity (`name`, `namespace`, `uid`, `resourceVersion`), the owner references (which
//!   map an HPA event to its ScaledObject) and the `ScalingActive` condition. The HPA's spec,
//!   labels, annotations (every annotation of its ScaledObject) and the rest of its status are
//!   read from the API when needed, never from this cache. (A whole `HorizontalPodAutoscaler`
//!   is 736 bytes before any of its strings; an `OwnedHpa` is half that.)

use std::borrow::Cow;

use ebb_api::ScaledObject;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerCondition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

/// An `autoscaling/v2` HorizontalPodAutoscaler as the operator's watch of its own HPAs decodes
/// it: metadata and status conditions; every other field of the JSON is skipped.
#[derive(Clone, Debug, Deserialize)]
pub struct OwnedHpa {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub status: Option<OwnedHpaStatus>,
}

/// The part of an HPA's status [`OwnedHpa`] decodes.
#[derive(Clone, Debug, Deserialize)]
pub struct OwnedHpaStatus {
    #[serde(default)]
    pub conditions: Option<Vec<HorizontalPodAutoscalerCondition>>,
}

impl kube::Resource for OwnedHpa {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "HorizontalPodAutoscaler".into()
    }

    fn group(_: &()) -> Cow<'_, str> {
        "autoscaling".into()
    }

    fn version(_: &()) -> Cow<'_, str> {
        "v2".into()
    }

    fn plural(_: &()) -> Cow<'_, str> {
        "horizontalpodautoscalers".into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// Trims a ScaledObject to what the controller's store keeps.
pub fn scaled_object(so: &mut ScaledObject) {
    so.metadata.managed_fields = None;
}

/// Drops a ScaledObject's status from what the store keeps when `modelled` (the operator holds
/// the object's status model).
pub fn status_once_modelled(so: &mut ScaledObject, modelled: bool) {
    if modelled {
        so.status = None;
    }
}

/// Trims an owned HPA to what [`crate::hpa_active::HpaCache`] and the controller's owner mapping
/// read.
pub fn hpa(hpa: &mut OwnedHpa) {
    let meta = std::mem::take(&mut hpa.metadata);
    hpa.metadata = ObjectMeta {
        name: meta.name,
        namespace: meta.namespace,
        uid: meta.uid,
        resource_version: meta.resource_version,
        owner_references: meta.owner_references,
        deletion_timestamp: meta.deletion_timestamp,
        ..ObjectMeta::default()
    };
    if let Some(conditions) = hpa.status.as_mut().and_then(|s| s.conditions.as_mut()) {
        conditions.retain(|c| c.type_ == crate::hpa_active::SCALING_ACTIVE);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_scaled_object_keeps_all_but_its_managed_fields() {
        let so: ScaledObject = serde_json::from_value(json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": "web", "namespace": "shop", "uid": "u", "resourceVersion": "7",
                "labels": {"team": "a"},
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "autoscaling.keda.sh/paused": "true"},
                "managedFields": [{"manager": "kubectl", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}]},
            "spec": {"scaleTargetRef": {"name": "web"}, "triggers": [{"type": "cron", "metadata": {"start": "0 * * * *"}}]},
            "status": {"originalReplicaCount": 3}}))
        .unwrap();
        let mut trimmed = so.clone();
        scaled_object(&mut trimmed);
        assert_eq!(trimmed.metadata.managed_fields, None);
        let mut expected = so;
        expected.metadata.managed_fields = None;
        assert_eq!(
            serde_json::to_value(&trimmed).unwrap(),
            serde_json::to_value(&expected).unwrap(),
            "labels, annotations (all of them: the HPA carries them), spec and status stay"
        );
    }

    #[test]
    fn status_goes_only_once_modelled() {
        let so: ScaledObject =
            serde_json::from_value(json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"scaleTargetRef": {"name": "web"}, "triggers": [{"type": "cron", "metadata": {}}]},
            "status": {"originalReplicaCount": 3}}))
            .unwrap();
        let mut kept = so.clone();
        status_once_modelled(&mut kept, false);
        assert_eq!(kept, so, "the first reconcile reads the object's own status");
        let mut trimmed = so.clone();
        status_once_modelled(&mut trimmed, true);
        assert_eq!(trimmed.status, None);
        assert_eq!((trimmed.metadata, trimmed.spec), (so.metadata, so.spec));
    }

    #[test]
    fn an_hpa_keeps_its_identity_owners_and_conditions() {
        let mut h: OwnedHpa = serde_json::from_value(json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "keda-hpa-web", "namespace": "shop", "uid": "h", "resourceVersion": "9",
                "labels": {"app.kubernetes.io/managed-by": "ebb-operator"},
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"big\": true}"},
                "ownerReferences": [{"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "web",
                    "uid": "u", "controller": true}],
                "managedFields": [{"manager": "ebb-operator/hpa", "operation": "Apply"}]},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 1, "maxReplicas": 5},
            "status": {"currentReplicas": 1, "desiredReplicas": 2,
                "currentMetrics": [{"type": "External", "external": {"metric": {"name": "s0-cron"},
                    "current": {"averageValue": "1"}}}],
                "conditions": [{"type": "AbleToScale", "status": "True", "reason": "SucceededGetScale",
                    "message": "the HPA controller was able to get the target's current scale"},
                    {"type": "ScalingActive", "status": "False", "reason": "FailedGetExternalMetric",
                    "message": "no answer"}]}}))
        .unwrap();
        let before = crate::hpa_active::scaling_active(&h);
        hpa(&mut h);
        assert_eq!(crate::hpa_active::scaling_active(&h), before, "ScalingActive is read as before");
        assert!(before.is_some());
        let m = &h.metadata;
        assert_eq!((m.name.as_deref(), m.namespace.as_deref()), (Some("keda-hpa-web"), Some("shop")));
        assert_eq!((m.uid.as_deref(), m.resource_version.as_deref()), (Some("h"), Some("9")));
        let owners = m.owner_references.as_ref().unwrap();
        assert_eq!((owners[0].kind.as_str(), owners[0].name.as_str()), ("ScaledObject", "web"));
        assert_eq!((&m.labels, &m.annotations, &m.managed_fields), (&None, &None, &None));
        let conditions = h.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap();
        assert_eq!(conditions.len(), 1, "only ScalingActive is kept: {conditions:?}");
    }
}
