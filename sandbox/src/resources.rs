//! The resources the control plane serves: built-in kinds and those added by applying a
//! CustomResourceDefinition, with what discovery publishes for each (names, scope, verbs,
//! short names, subresources) and how `/scale` maps onto the object.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// Where `/scale` reads and writes replicas in the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

/// One served resource (one group/version/plural).
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub list_kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub status: bool,
    pub scale: Option<ScalePaths>,
    /// Only `create` (TokenReview, SubjectAccessReview): no storage.
    pub virtual_create: bool,
    /// A custom resource (strategic merge patch not allowed, lists atomic for apply).
    pub custom: bool,
    /// The CRD's `additionalPrinterColumns` for this version.
    pub printer_columns: Option<Value>,
    /// Names are path segments (any text but `/`, `%`, `.` and `..`), as for RBAC objects
    /// (`system:auth-delegator`), instead of RFC 1123 subdomains.
    pub path_segment_names: bool,
    /// The CRD's `openAPIV3Schema` for this version: fields it does not have are pruned
    /// ([`crate::schema`]) or refused, per the request's `fieldValidation`.
    pub schema: Option<Value>,
}

impl Resource {
    fn builtin(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            list_kind: format!("{kind}List"),
            plural: plural.into(),
            singular: kind.to_ascii_lowercase(),
            namespaced,
            short_names: Vec::new(),
            categories: Vec::new(),
            status: false,
            scale: None,
            virtual_create: false,
            custom: false,
            printer_columns: None,
            schema: None,
            path_segment_names: false,
        }
    }
    fn path_segments(mut self) -> Self {
        self.path_segment_names = true;
        self
    }
    fn short(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|s| (*s).to_owned()).collect();
        self
    }
    fn with_status(mut self) -> Self {
        self.status = true;
        self
    }
    fn with_scale(mut self) -> Self {
        self.scale = Some(ScalePaths {
            spec_replicas: ".spec.replicas".into(),
            status_replicas: ".status.replicas".into(),
            label_selector: Some(".spec.selector".into()),
        });
        self
    }
    fn virtual_only(mut self) -> Self {
        self.virtual_create = true;
        self
    }

    /// `apiVersion` of objects of this resource.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    /// `plural.group` (or just `plural` for the core group), as kube names resources in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() { self.plural.clone() } else { format!("{}.{}", self.plural, self.group) }
    }

    /// Storage key of the resource: versions of one group/plural share objects.
    pub fn storage_key(&self) -> (String, String) {
        (self.group.clone(), self.plural.clone())
    }

    pub fn verbs(&self) -> Vec<&'static str> {
        if self.virtual_create {
            return vec!["create"];
        }
        vec!["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
    }

    /// The APIResource entries for discovery: the resource and its subresources.
    pub fn discovery(&self) -> Vec<Value> {
        let mut out = vec![json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": self.verbs(),
            "shortNames": self.short_names,
            "categories": self.categories,
        })];
        if self.status {
            out.push(json!({"name": format!("{}/status", self.plural), "singularName": "", "namespaced": self.namespaced,
                "kind": self.kind, "verbs": ["get", "patch", "update"]}));
        }
        if self.scale.is_some() {
            out.push(json!({"name": format!("{}/scale", self.plural), "singularName": "", "namespaced": self.namespaced,
                "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}));
        }
        out
    }
}

/// Every served resource, by (group, version, plural).
#[derive(Debug, Clone, Default)]
pub struct Registry {
    by_gvr: BTreeMap<(String, String, String), Resource>,
}

impl Registry {
    /// The built-in kinds.
    pub fn builtin() -> Self {
        let mut r = Self::default();
        for res in [
            Resource::builtin("", "v1", "Namespace", "namespaces", false).short(&["ns"]).with_status(),
            Resource::builtin("", "v1", "Secret", "secrets", true),
            Resource::builtin("", "v1", "ConfigMap", "configmaps", true).short(&["cm"]),
            Resource::builtin("", "v1", "ServiceAccount", "serviceaccounts", true).short(&["sa"]),
            Resource::builtin("", "v1", "Service", "services", true).short(&["svc"]).with_status(),
            Resource::builtin("", "v1", "Event", "events", true).short(&["ev"]),
            Resource::builtin("events.k8s.io", "v1", "Event", "events", true).short(&["ev"]),
            Resource::builtin("apps", "v1", "Deployment", "deployments", true)
                .short(&["deploy"])
                .with_status()
                .with_scale(),
            Resource::builtin("apps", "v1", "StatefulSet", "statefulsets", true)
                .short(&["sts"])
                .with_status()
                .with_scale(),
            Resource::builtin(
                "autoscaling",
                "v2",
                "HorizontalPodAutoscaler",
                "horizontalpodautoscalers",
                true,
            )
            .short(&["hpa"])
            .with_status(),
            Resource::builtin("", "v1", "Pod", "pods", true).short(&["po"]).with_status(),
            Resource::builtin("coordination.k8s.io", "v1", "Lease", "leases", true),
            Resource::builtin("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", false)
                .path_segments(),
            Resource::builtin(
                "rbac.authorization.k8s.io",
                "v1",
                "ClusterRoleBinding",
                "clusterrolebindings",
                false,
            )
            .path_segments(),
            Resource::builtin("rbac.authorization.k8s.io", "v1", "Role", "roles", true).path_segments(),
            Resource::builtin("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", true)
                .path_segments(),
            Resource::builtin("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", true)
                .short(&["netpol"]),
            Resource::builtin("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", true)
                .short(&["pdb"])
                .with_status(),
            Resource::builtin(
                "admissionregistration.k8s.io",
                "v1",
                "ValidatingWebhookConfiguration",
                "validatingwebhookconfigurations",
                false,
            ),
            Resource::builtin("apiregistration.k8s.io", "v1", "APIService", "apiservices", false)
                .with_status(),
            Resource::builtin(
                "apiextensions.k8s.io",
                "v1",
                "CustomResourceDefinition",
                "customresourcedefinitions",
                false,
            )
            .short(&["crd", "crds"])
            .with_status(),
            Resource::builtin("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", false)
                .virtual_only(),
            Resource::builtin(
                "authorization.k8s.io",
                "v1",
                "SubjectAccessReview",
                "subjectaccessreviews",
                false,
            )
            .virtual_only(),
        ] {
            r.insert(res);
        }
        r
    }

    pub fn insert(&mut self, res: Resource) {
        self.by_gvr.insert((res.group.clone(), res.version.clone(), res.plural.clone()), res);
    }

    /// Removes every version of `group/plural`.
    pub fn remove(&mut self, group: &str, plural: &str) {
        self.by_gvr.retain(|(g, _, p), _| !(g == group && p == plural));
    }

    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<&Resource> {
        self.by_gvr.get(&(group.to_owned(), version.to_owned(), plural.to_owned()))
    }

    /// The resource serving `apiVersion`/`kind`, if any.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<&Resource> {
        self.by_gvr.values().find(|r| r.api_version() == api_version && r.kind == kind)
    }

    pub fn all(&self) -> impl Iterator<Item = &Resource> {
        self.by_gvr.values()
    }

    /// Group → versions served, groups in the order discovery lists them.
    pub fn groups(&self) -> BTreeMap<String, Vec<String>> {
        let mut g: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (group, version, _) in self.by_gvr.keys() {
            let vs = g.entry(group.clone()).or_default();
            if !vs.contains(version) {
                vs.push(version.clone());
            }
        }
        g
    }

    /// Resources for one group/version.
    pub fn in_group_version(&self, group: &str, version: &str) -> Vec<&Resource> {
        self.by_gvr.values().filter(|r| r.group == group && r.version == version).collect()
    }

    /// Resources defined by a CustomResourceDefinition object (one per served version).
    pub fn from_crd(crd: &Value) -> Result<Vec<Resource>, String> {
        let spec = crd.get("spec").ok_or("spec is required")?;
        let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        let group = s(spec.get("group")).ok_or("spec.group is required")?;
        let names = spec.get("names").ok_or("spec.names is required")?;
        let plural = s(names.get("plural")).ok_or("spec.names.plural is required")?;
        let kind = s(names.get("kind")).ok_or("spec.names.kind is required")?;
        let expected = format!("{plural}.{group}");
        if crd.pointer("/metadata/name").and_then(Value::as_str) != Some(expected.as_str()) {
            return Err(format!("metadata.name must be spec.names.plural+\".\"+spec.group: {expected:?}"));
        }
        let list = |v: Option<&Value>| -> Vec<String> {
            v.and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
                .unwrap_or_default()
        };
        let namespaced = spec.get("scope").and_then(Value::as_str).unwrap_or("Namespaced") == "Namespaced";
        let versions = spec.get("versions").and_then(Value::as_array).ok_or("spec.versions is required")?;
        let mut out = Vec::new();
        for v in versions {
            if v.get("served").and_then(Value::as_bool) == Some(false) {
                continue;
            }
            let version = s(v.get("name")).ok_or("spec.versions[].name is required")?;
            let sub = v.get("subresources");
            let scale = sub.and_then(|x| x.get("scale")).map(|sc| ScalePaths {
                spec_replicas: s(sc.get("specReplicasPath")).unwrap_or_else(|| ".spec.replicas".into()),
                status_replicas: s(sc.get("statusReplicasPath")).unwrap_or_else(|| ".status.replicas".into()),
                label_selector: s(sc.get("labelSelectorPath")),
            });
            out.push(Resource {
                group: group.clone(),
                version,
                kind: kind.clone(),
                list_kind: s(names.get("listKind")).unwrap_or_else(|| format!("{kind}List")),
                plural: plural.clone(),
                singular: s(names.get("singular")).unwrap_or_else(|| kind.to_ascii_lowercase()),
                namespaced,
                short_names: list(names.get("shortNames")),
                categories: list(names.get("categories")),
                status: sub.and_then(|x| x.get("status")).is_some(),
                scale,
                virtual_create: false,
                custom: true,
                path_segment_names: false,
                printer_columns: v.get("additionalPrinterColumns").cloned(),
                schema: v.pointer("/schema/openAPIV3Schema").cloned(),
            });
        }
        if out.is_empty() {
            return Err("spec.versions must serve at least one version".into());
        }
        Ok(out)
    }
}

/// Reads a dotted path such as `.spec.replicas` from an object.
pub fn get_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    path.trim_start_matches('.').split('.').filter(|p| !p.is_empty()).try_fold(obj, |v, k| v.get(k))
}

/// Writes a dotted path, creating intermediate objects.
pub fn set_path(obj: &mut Value, path: &str, value: Value) {
    let parts: Vec<&str> = path.trim_start_matches('.').split('.').filter(|p| !p.is_empty()).collect();
    let mut cur = obj;
    for (i, p) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        let Some(map) = cur.as_object_mut() else { return };
        if i + 1 == parts.len() {
            map.insert((*p).to_owned(), value);
            return;
        }
        cur = map.entry((*p).to_owned()).or_insert_with(|| json!({}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crd_defines_resources_per_served_version() {
        let crd = json!({"metadata": {"name": "scaledobjects.keda.sh"}, "spec": {"group": "keda.sh", "scope": "Namespaced",
            "names": {"plural": "scaledobjects", "kind": "ScaledObject", "shortNames": ["so"]},
            "versions": [{"name": "v1alpha1", "served": true, "storage": true, "subresources": {"status": {}}}]}});
        let rs = Registry::from_crd(&crd).unwrap();
        assert_eq!(rs.len(), 1);
        assert_eq!(rs[0].api_version(), "keda.sh/v1alpha1");
        assert!(rs[0].status && rs[0].custom && rs[0].namespaced);
        assert_eq!(rs[0].short_names, ["so"]);
        let bad = json!({"metadata": {"name": "x"}, "spec": crd["spec"].clone()});
        assert!(Registry::from_crd(&bad).unwrap_err().contains("scaledobjects.keda.sh"));
    }

    #[test]
    fn paths() {
        let mut o = json!({});
        set_path(&mut o, ".spec.replicas", json!(3));
        assert_eq!(get_path(&o, ".spec.replicas"), Some(&json!(3)));
        assert_eq!(get_path(&o, ".status.replicas"), None);
    }
}
