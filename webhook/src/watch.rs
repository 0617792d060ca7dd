//! Watches that feed the [`Index`]: ScaledObjects and HorizontalPodAutoscalers in every
//! namespace, decoded into slim types that keep only the fields the rules read (the rest of
//! each object is skipped by the decoder, never stored). A (re)list is gathered aside and swapped
//! in when complete, so reviews never see a half-listed index; the synced flags turn true after
//! the first complete list of each kind.

use std::borrow::Cow;

use ebb_api::constants::{ANNOTATION_HPA_OWNERSHIP_VALIDATION, GROUP, VERSION};
use futures::{Stream, StreamExt};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource};
use serde::Deserialize;

use crate::index::{HpaIndex, HpaKeys, Index, SoIndex, SoKeys, Workload};

/// A `scaleTargetRef` (ScaledObject or HPA).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetRef {
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub name: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HpaConfig {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Advanced {
    #[serde(default)]
    horizontal_pod_autoscaler_config: Option<HpaConfig>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SlimSoSpec {
    #[serde(default)]
    scale_target_ref: TargetRef,
    #[serde(default)]
    advanced: Option<Advanced>,
}

/// A ScaledObject as the index sees it.
#[derive(Clone, Debug, Deserialize)]
pub struct SlimScaledObject {
    metadata: ObjectMeta,
    #[serde(default)]
    spec: SlimSoSpec,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SlimHpaSpec {
    #[serde(default)]
    scale_target_ref: TargetRef,
}

/// A HorizontalPodAutoscaler as the index sees it.
#[derive(Clone, Debug, Deserialize)]
pub struct SlimHpa {
    metadata: ObjectMeta,
    #[serde(default)]
    spec: SlimHpaSpec,
}

macro_rules! slim_resource {
    ($t:ty, $group:expr, $version:expr, $kind:expr, $plural:expr) => {
        impl Resource for $t {
            type DynamicType = ();
            type Scope = NamespaceResourceScope;
            fn kind(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($kind)
            }
            fn group(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($group)
            }
            fn version(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($version)
            }
            fn plural(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($plural)
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

slim_resource!(SlimScaledObject, GROUP, VERSION, "ScaledObject", "scaledobjects");
slim_resource!(SlimHpa, "autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers");

fn workload(t: &TargetRef, default_api_version: &str, default_kind: &str) -> Workload {
    let api_version = t.api_version.as_deref().filter(|s| !s.is_empty()).unwrap_or(default_api_version);
    let kind = t.kind.as_deref().filter(|s| !s.is_empty()).unwrap_or(default_kind);
    Workload::new(api_version, kind, &t.name)
}

fn ns_name(meta: &ObjectMeta) -> Option<(&str, &str)> {
    Some((meta.namespace.as_deref()?, meta.name.as_deref()?))
}

impl SlimScaledObject {
    /// The index keys: target (defaults `apps/v1` `Deployment`) and HPA name.
    pub fn keys(&self) -> SoKeys {
        let custom = self
            .spec
            .advanced
            .as_ref()
            .and_then(|a| a.horizontal_pod_autoscaler_config.as_ref())
            .and_then(|h| h.name.as_deref());
        let hpa =
            ebb_api::scaled_object::hpa_name_for(self.metadata.name.as_deref().unwrap_or_default(), custom)
                .into();
        SoKeys { target: workload(&self.spec.scale_target_ref, "apps/v1", "Deployment"), hpa }
    }
}

impl SlimHpa {
    /// The index keys: target, owning ScaledObject, ownership-validation opt-out.
    pub fn keys(&self) -> HpaKeys {
        let owner = self
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.kind == "ScaledObject" && o.api_version.split('/').next() == Some(GROUP));
        let validation_off = self
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_HPA_OWNERSHIP_VALIDATION))
            .is_some_and(|v| v == "false");
        HpaKeys {
            target: workload(&self.spec.scale_target_ref, "apps/v1", "Deployment"),
            owner: owner.map(|o| o.name.as_str().into()),
            validation_off,
        }
    }
}

/// Applies one watch event of ScaledObjects; `pending` gathers a relist until it is complete.
pub fn apply_so_event(index: &Index, pending: &mut Option<SoIndex>, event: Event<SlimScaledObject>) {
    match event {
        Event::Init => *pending = Some(SoIndex::default()),
        Event::InitApply(o) => {
            if let (Some(p), Some((ns, name))) = (pending.as_mut(), ns_name(&o.metadata)) {
                p.apply(ns, name, o.keys());
            }
        }
        Event::InitDone => {
            let fresh = pending.take().unwrap_or_default();
            tracing::debug!(count = fresh.len(), "ScaledObjects listed");
            index.update(|s| {
                s.sos = fresh;
                s.sos_synced = true;
            });
        }
        Event::Apply(o) => {
            if let Some((ns, name)) = ns_name(&o.metadata) {
                let keys = o.keys();
                index.update(|s| s.sos.apply(ns, name, keys));
            }
        }
        Event::Delete(o) => {
            if let Some((ns, name)) = ns_name(&o.metadata) {
                index.update(|s| s.sos.delete(ns, name));
            }
        }
    }
}

/// Applies one watch event of HPAs; `pending` gathers a relist until it is complete.
pub fn apply_hpa_event(index: &Index, pending: &mut Option<HpaIndex>, event: Event<SlimHpa>) {
    match event {
        Event::Init => *pending = Some(HpaIndex::default()),
        Event::InitApply(o) => {
            if let (Some(p), Some((ns, name))) = (pending.as_mut(), ns_name(&o.metadata)) {
                p.apply(ns, name, o.keys());
            }
        }
        Event::InitDone => {
            let fresh = pending.take().unwrap_or_default();
            tracing::debug!(count = fresh.len(), "HPAs listed");
            index.update(|s| {
                s.hpas = fresh;
                s.hpas_synced = true;
            });
        }
        Event::Apply(o) => {
            if let Some((ns, name)) = ns_name(&o.metadata) {
                let keys = o.keys();
                index.update(|s| s.hpas.apply(ns, name, keys));
            }
        }
        Event::Delete(o) => {
            if let Some((ns, name)) = ns_name(&o.metadata) {
                index.update(|s| s.hpas.delete(ns, name));
            }
        }
    }
}

async fn drive<K, P: Default>(
    what: &'static str,
    stream: impl Stream<Item = Result<Event<K>, watcher::Error>>,
    mut apply: impl FnMut(&mut Option<P>, Event<K>),
) {
    let mut pending = None;
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => apply(&mut pending, event),
            // The watcher retries with backoff; the index keeps serving what it has.
            Err(e) => tracing::warn!("watch of {what} failed, retrying: {e}"),
        }
    }
}

/// Runs both watches until the returned future is dropped.
pub async fn run(client: Client, index: std::sync::Arc<Index>) {
    let sos: Api<SlimScaledObject> = Api::all(client.clone());
    let hpas: Api<SlimHpa> = Api::all(client);
    let cfg = watcher::Config::default().page_size(500);
    let so_index = index.clone();
    let so_watch =
        drive("ScaledObjects", watcher::watcher(sos, cfg.clone()).default_backoff(), move |p, e| {
            apply_so_event(&so_index, p, e)
        });
    let hpa_watch =
        drive("HorizontalPodAutoscalers", watcher::watcher(hpas, cfg).default_backoff(), move |p, e| {
            apply_hpa_event(&index, p, e)
        });
    futures::join!(so_watch, hpa_watch);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slim_objects_keep_only_the_keys() {
        let so: SlimScaledObject = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "a", "namespace": "ns"},
            "spec": {"scaleTargetRef": {"name": "web"}, "triggers": [{"type": "cron", "metadata": {"x": true}}],
                     "advanced": {"horizontalPodAutoscalerConfig": {"name": ""}}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}))
        .unwrap();
        assert_eq!(
            so.keys(),
            SoKeys { target: Workload::new("apps/v1", "Deployment", "web"), hpa: "keda-hpa-a".into() }
        );

        let hpa: SlimHpa = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "h", "namespace": "ns",
                "annotations": {"validations.keda.sh/hpa-ownership": "false"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "x", "uid": "1"},
                                    {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "a", "uid": "2"}]},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db"}, "maxReplicas": 3}}))
        .unwrap();
        assert_eq!(
            hpa.keys(),
            HpaKeys {
                target: Workload::new("apps/v1", "StatefulSet", "db"),
                owner: Some("a".into()),
                validation_off: true
            }
        );
    }

    fn so_event(name: &str, target: &str) -> SlimScaledObject {
        serde_json::from_value(serde_json::json!({"metadata": {"name": name, "namespace": "ns"},
            "spec": {"scaleTargetRef": {"name": target}}}))
        .unwrap()
    }

    #[test]
    fn relists_are_swapped_in_when_complete() {
        let index = Index::default();
        let mut pending = None;
        let web = Workload::new("apps/v1", "Deployment", "web");
        apply_so_event(&index, &mut pending, Event::Init);
        apply_so_event(&index, &mut pending, Event::InitApply(so_event("a", "web")));
        assert!(!index.read().sos_synced && index.read().sos.is_empty(), "not visible before InitDone");
        apply_so_event(&index, &mut pending, Event::InitDone);
        assert_eq!(index.read().sos.targeting("ns", &web).collect::<Vec<_>>(), ["a"]);
        apply_so_event(&index, &mut pending, Event::Apply(so_event("b", "api")));
        assert_eq!(index.read().sos.len(), 2);
        // A relist that no longer holds `a` drops it at InitDone, not before.
        apply_so_event(&index, &mut pending, Event::Init);
        apply_so_event(&index, &mut pending, Event::InitApply(so_event("b", "api")));
        assert_eq!(index.read().sos.len(), 2);
        apply_so_event(&index, &mut pending, Event::InitDone);
        assert_eq!(index.read().sos.len(), 1);
        apply_so_event(&index, &mut pending, Event::Delete(so_event("b", "api")));
        assert!(index.read().sos.is_empty());
        assert!(index.read().sos_synced);
    }
}
