//! The built-in kinds that accept strategic merge patch, and for each one a small table of
//! field paths whose lists merge instead of being replaced.
//!
//! Paths are dotted field names from the object root; list levels are transparent, so
//! `spec.template.spec.containers.env` is the `env` list inside any container. Lists not named
//! in a table are atomic: a patch replaces them whole. Map fields always merge recursively.

/// How a list field combines with a patch list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListStrategy {
    /// The patch list replaces the live list (atomic lists, and every list not in the table).
    Replace,
    /// A list of objects merged element-wise: elements with equal values of this key are
    /// merged, new ones are added.
    MergeByKey(&'static str),
    /// A list of primitives treated as a set: the result is the union of both lists.
    MergeSet,
}

/// One line of a per-kind table.
#[derive(Debug)]
enum Entry {
    /// The list at this path merges with the given strategy.
    List(&'static str, ListStrategy),
    /// The nested table applies below this path (a shared shape such as a pod spec).
    Under(&'static str, &'static [Entry]),
}

use Entry::{List, Under};
use ListStrategy::{MergeByKey, MergeSet, Replace};

const BY_NAME: ListStrategy = MergeByKey("name");
const BY_TYPE: ListStrategy = MergeByKey("type");

const OBJECT_META: &[Entry] = &[List("finalizers", MergeSet), List("ownerReferences", MergeByKey("uid"))];

const CONTAINER: &[Entry] = &[
    List("env", BY_NAME),
    List("ports", MergeByKey("containerPort")),
    List("volumeMounts", MergeByKey("mountPath")),
    List("volumeDevices", MergeByKey("devicePath")),
];

const POD_SPEC: &[Entry] = &[
    List("containers", BY_NAME),
    Under("containers", CONTAINER),
    List("initContainers", BY_NAME),
    Under("initContainers", CONTAINER),
    List("ephemeralContainers", BY_NAME),
    Under("ephemeralContainers", CONTAINER),
    List("volumes", BY_NAME),
    List("imagePullSecrets", BY_NAME),
    List("hostAliases", MergeByKey("ip")),
    List("topologySpreadConstraints", MergeByKey("topologyKey")),
    List("schedulingGates", BY_NAME),
    List("resourceClaims", BY_NAME),
    List("tolerations", Replace),
];

const POD_TEMPLATE: &[Entry] = &[Under("metadata", OBJECT_META), Under("spec", POD_SPEC)];

const POD_STATUS: &[Entry] = &[
    List("conditions", BY_TYPE),
    List("podIPs", MergeByKey("ip")),
    List("hostIPs", MergeByKey("ip")),
    List("resourceClaimStatuses", BY_NAME),
];

const META_ONLY: &[Entry] = &[Under("metadata", OBJECT_META)];

const WORKLOAD: &[Entry] = &[
    Under("metadata", OBJECT_META),
    Under("spec.template", POD_TEMPLATE),
    List("status.conditions", BY_TYPE),
];

const STATEFUL_SET: &[Entry] = &[
    Under("metadata", OBJECT_META),
    Under("spec.template", POD_TEMPLATE),
    List("spec.volumeClaimTemplates", Replace),
    List("status.conditions", BY_TYPE),
];

const POD: &[Entry] = &[Under("metadata", OBJECT_META), Under("spec", POD_SPEC), Under("status", POD_STATUS)];

const NAMESPACE: &[Entry] =
    &[Under("metadata", OBJECT_META), List("spec.finalizers", Replace), List("status.conditions", BY_TYPE)];

const SERVICE_ACCOUNT: &[Entry] =
    &[Under("metadata", OBJECT_META), List("secrets", BY_NAME), List("imagePullSecrets", Replace)];

const SERVICE: &[Entry] = &[
    Under("metadata", OBJECT_META),
    List("spec.ports", MergeByKey("port")),
    List("status.conditions", BY_TYPE),
];

const NODE: &[Entry] = &[
    Under("metadata", OBJECT_META),
    List("spec.podCIDRs", MergeSet),
    List("spec.taints", Replace),
    List("status.conditions", BY_TYPE),
    List("status.addresses", BY_TYPE),
];

const HPA_V2: &[Entry] = &[
    Under("metadata", OBJECT_META),
    List("spec.metrics", Replace),
    List("spec.behavior.scaleUp.policies", Replace),
    List("spec.behavior.scaleDown.policies", Replace),
    List("status.conditions", BY_TYPE),
    List("status.currentMetrics", Replace),
];

const WEBHOOK_CONFIGURATION: &[Entry] = &[Under("metadata", OBJECT_META), List("webhooks", BY_NAME)];

const API_SERVICE: &[Entry] = &[Under("metadata", OBJECT_META), List("status.conditions", BY_TYPE)];

/// A built-in kind that accepts strategic merge patch; it selects the list merge table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StrategicKind {
    Deployment,
    StatefulSet,
    ReplicaSet,
    Pod,
    Node,
    Namespace,
    Secret,
    ConfigMap,
    ServiceAccount,
    Service,
    Event,
    EventsV1Event,
    HorizontalPodAutoscalerV1,
    HorizontalPodAutoscalerV2,
    Scale,
    Lease,
    ValidatingWebhookConfiguration,
    MutatingWebhookConfiguration,
    ApiService,
    CustomResourceDefinition,
}

/// One recognised `apiVersion`/`kind` pair and its table.
struct KindSpec {
    api_version: &'static str,
    kind: &'static str,
    id: StrategicKind,
    fields: &'static [Entry],
}

const fn spec(
    api_version: &'static str,
    kind: &'static str,
    id: StrategicKind,
    fields: &'static [Entry],
) -> KindSpec {
    KindSpec { api_version, kind, id, fields }
}

const KINDS: &[KindSpec] = &[
    spec("apps/v1", "Deployment", StrategicKind::Deployment, WORKLOAD),
    spec("apps/v1", "StatefulSet", StrategicKind::StatefulSet, STATEFUL_SET),
    spec("apps/v1", "ReplicaSet", StrategicKind::ReplicaSet, WORKLOAD),
    spec("v1", "Pod", StrategicKind::Pod, POD),
    spec("v1", "Node", StrategicKind::Node, NODE),
    spec("v1", "Namespace", StrategicKind::Namespace, NAMESPACE),
    spec("v1", "Secret", StrategicKind::Secret, META_ONLY),
    spec("v1", "ConfigMap", StrategicKind::ConfigMap, META_ONLY),
    spec("v1", "ServiceAccount", StrategicKind::ServiceAccount, SERVICE_ACCOUNT),
    spec("v1", "Service", StrategicKind::Service, SERVICE),
    spec("v1", "Event", StrategicKind::Event, META_ONLY),
    spec("events.k8s.io/v1", "Event", StrategicKind::EventsV1Event, META_ONLY),
    spec("autoscaling/v1", "HorizontalPodAutoscaler", StrategicKind::HorizontalPodAutoscalerV1, META_ONLY),
    spec("autoscaling/v2", "HorizontalPodAutoscaler", StrategicKind::HorizontalPodAutoscalerV2, HPA_V2),
    spec("autoscaling/v1", "Scale", StrategicKind::Scale, META_ONLY),
    spec("coordination.k8s.io/v1", "Lease", StrategicKind::Lease, META_ONLY),
    spec(
        "admissionregistration.k8s.io/v1",
        "ValidatingWebhookConfiguration",
        StrategicKind::ValidatingWebhookConfiguration,
        WEBHOOK_CONFIGURATION,
    ),
    spec(
        "admissionregistration.k8s.io/v1",
        "MutatingWebhookConfiguration",
        StrategicKind::MutatingWebhookConfiguration,
        WEBHOOK_CONFIGURATION,
    ),
    spec("apiregistration.k8s.io/v1", "APIService", StrategicKind::ApiService, API_SERVICE),
    spec(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        StrategicKind::CustomResourceDefinition,
        META_ONLY,
    ),
];

impl StrategicKind {
    /// The kind served under `api_version`/`kind`, or `None` for types without strategic
    /// merge support (custom resources), which the server answers with 415.
    pub fn for_kind(api_version: &str, kind: &str) -> Option<StrategicKind> {
        KINDS.iter().find(|s| s.api_version == api_version && s.kind == kind).map(|s| s.id)
    }

    /// The `apiVersion` and `kind` this value stands for.
    pub fn type_meta(&self) -> (&'static str, &'static str) {
        let spec = self.spec();
        (spec.api_version, spec.kind)
    }

    /// How the list at `path` (field names from the object root, list levels omitted)
    /// merges. Lists not in the table are [`ListStrategy::Replace`].
    pub fn list_strategy<S: AsRef<str>>(&self, path: &[S]) -> ListStrategy {
        lookup(self.spec().fields, path).unwrap_or(Replace)
    }

    fn spec(&self) -> &'static KindSpec {
        // Every variant has exactly one row; the fallback row is never reached in practice.
        KINDS.iter().find(|s| s.id == *self).unwrap_or(&KINDS[0])
    }
}

fn lookup<S: AsRef<str>>(entries: &[Entry], path: &[S]) -> Option<ListStrategy> {
    entries.iter().find_map(|entry| match entry {
        List(pattern, strategy) => {
            strip_prefix(pattern, path).filter(|rest| rest.is_empty()).map(|_| *strategy)
        }
        Under(pattern, inner) => strip_prefix(pattern, path).and_then(|rest| lookup(inner, rest)),
    })
}

/// `path` with the dotted `pattern` removed from its front, if it starts with it.
fn strip_prefix<'a, S: AsRef<str>>(pattern: &str, path: &'a [S]) -> Option<&'a [S]> {
    let mut rest = path;
    for segment in pattern.split('.') {
        let (first, tail) = rest.split_first()?;
        if first.as_ref() != segment {
            return None;
        }
        rest = tail;
    }
    Some(rest)
}

#[cfg(test)]
mod tests {
    use super::{ListStrategy, StrategicKind};

    fn kind(api_version: &str, kind: &str) -> StrategicKind {
        StrategicKind::for_kind(api_version, kind).unwrap()
    }

    #[test]
    fn kinds_are_recognised_by_api_version_and_kind() {
        let known = [
            ("apps/v1", "Deployment"),
            ("apps/v1", "StatefulSet"),
            ("apps/v1", "ReplicaSet"),
            ("v1", "Pod"),
            ("v1", "Node"),
            ("v1", "Namespace"),
            ("v1", "Secret"),
            ("v1", "ConfigMap"),
            ("v1", "ServiceAccount"),
            ("v1", "Service"),
            ("v1", "Event"),
            ("events.k8s.io/v1", "Event"),
            ("autoscaling/v1", "HorizontalPodAutoscaler"),
            ("autoscaling/v2", "HorizontalPodAutoscaler"),
            ("autoscaling/v1", "Scale"),
            ("coordination.k8s.io/v1", "Lease"),
            ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"),
            ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"),
            ("apiregistration.k8s.io/v1", "APIService"),
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        ];
        let mut seen = Vec::new();
        for (api_version, name) in known {
            let k = StrategicKind::for_kind(api_version, name)
                .unwrap_or_else(|| panic!("{api_version} {name} should be recognised"));
            assert_eq!(k.type_meta(), (api_version, name));
            assert!(!seen.contains(&k), "{api_version} {name} shares a variant");
            seen.push(k);
        }
        for (api_version, name) in [
            ("keda.sh/v1alpha1", "ScaledObject"),
            ("keda.sh/v1alpha1", "TriggerAuthentication"),
            ("v1", "Deployment"),
            ("apps/v1beta1", "Deployment"),
            ("apps/v1", "deployment"),
        ] {
            assert_eq!(StrategicKind::for_kind(api_version, name), None, "{api_version} {name}");
        }
    }

    #[test]
    fn list_strategy_table_lookups() {
        let deploy = kind("apps/v1", "Deployment");
        let pod = kind("v1", "Pod");
        let hpa1 = kind("autoscaling/v1", "HorizontalPodAutoscaler");
        let cases: Vec<(StrategicKind, &str, ListStrategy)> = vec![
            (deploy, "spec.template.spec.containers", ListStrategy::MergeByKey("name")),
            (deploy, "spec.template.spec.initContainers.env", ListStrategy::MergeByKey("name")),
            (deploy, "spec.template.spec.containers.volumeMounts", ListStrategy::MergeByKey("mountPath")),
            (deploy, "spec.template.spec.containers.volumeDevices", ListStrategy::MergeByKey("devicePath")),
            (
                deploy,
                "spec.template.spec.ephemeralContainers.ports",
                ListStrategy::MergeByKey("containerPort"),
            ),
            (deploy, "spec.template.spec.hostAliases", ListStrategy::MergeByKey("ip")),
            (deploy, "spec.template.spec.imagePullSecrets", ListStrategy::MergeByKey("name")),
            (deploy, "spec.template.spec.topologySpreadConstraints", ListStrategy::MergeByKey("topologyKey")),
            (deploy, "spec.template.metadata.finalizers", ListStrategy::MergeSet),
            (deploy, "spec.template.spec.tolerations", ListStrategy::Replace),
            (deploy, "spec.template.spec.containers.args", ListStrategy::Replace),
            (deploy, "spec.containers", ListStrategy::Replace),
            (deploy, "metadata.ownerReferences", ListStrategy::MergeByKey("uid")),
            (pod, "spec.containers.env", ListStrategy::MergeByKey("name")),
            (pod, "spec.volumes", ListStrategy::MergeByKey("name")),
            (pod, "status.conditions", ListStrategy::MergeByKey("type")),
            (pod, "metadata.finalizers", ListStrategy::MergeSet),
            (pod, "metadata.labels.finalizers", ListStrategy::Replace),
            (hpa1, "status.conditions", ListStrategy::Replace),
        ];
        for (k, path, expected) in cases {
            let segments: Vec<&str> = path.split('.').collect();
            assert_eq!(k.list_strategy(&segments), expected, "{k:?} {path}");
        }
    }
}
