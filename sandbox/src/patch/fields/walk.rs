//! Walks over objects that produce field sets — the fields an object sets
//! ([`field_set_of`]) and the fields that differ between two versions ([`compare`]) — and the
//! list semantics of each resource kind ([`ListKeys`]) those walks depend on.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::super::PatchError;
use super::{FieldSet, PathElement};

/// How a list field merges and how its elements are addressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListKind {
    /// Replaced as a whole; owned as one leaf.
    Atomic,
    /// A set of scalars; elements are unioned and owned one by one (`v:`).
    Set,
    /// A list of objects identified by these key fields; merged element by element (`k:`).
    Map(Vec<String>),
}

#[derive(Debug, Clone)]
struct ListRule {
    path: Vec<String>,
    anchored: bool,
    kind: ListKind,
}

/// Which list fields of a resource kind are keyed maps or sets; every other list is atomic.
/// Lists are identified by the field names leading to them (list elements do not add a name).
#[derive(Debug, Clone, Default)]
pub struct ListKeys {
    rules: Vec<ListRule>,
}

impl ListKeys {
    /// Custom resources without list-type annotations: every list under the object is atomic;
    /// only the root `metadata` (always `ObjectMeta`) keeps keyed `ownerReferences` and set-like
    /// `finalizers`.
    pub fn atomic() -> Self {
        ListKeys::default()
            .with_list("metadata.ownerReferences", ListKind::Map(vec!["uid".to_string()]))
            .with_list("metadata.finalizers", ListKind::Set)
    }

    /// The list semantics of a kind. Groups of the Kubernetes API itself (the core group,
    /// dot-less groups such as `apps`, and `*.k8s.io`) get the built-in keyed lists; any other
    /// group is treated as a custom resource ([`ListKeys::atomic`]).
    pub fn for_kind(api_version: &str, kind: &str) -> Self {
        let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        let builtin = group.is_empty() || !group.contains('.') || group.ends_with(".k8s.io");
        if !builtin {
            return ListKeys::atomic();
        }
        let by = |fields: &[&str]| ListKind::Map(fields.iter().map(|f| f.to_string()).collect());
        let mut keys = ListKeys::default()
            .with_list("*.metadata.ownerReferences", by(&["uid"]))
            .with_list("*.metadata.finalizers", ListKind::Set);
        for containers in ["containers", "initContainers", "ephemeralContainers"] {
            keys = keys
                .with_list(&format!("*.{containers}"), by(&["name"]))
                .with_list(&format!("*.{containers}.ports"), by(&["containerPort"]));
        }
        keys = keys
            .with_list("*.env", by(&["name"]))
            .with_list("*.volumeMounts", by(&["mountPath"]))
            .with_list("*.volumeDevices", by(&["devicePath"]))
            .with_list("*.volumes", by(&["name"]))
            .with_list("*.imagePullSecrets", by(&["name"]))
            .with_list("*.hostAliases", by(&["ip"]))
            .with_list("*.topologySpreadConstraints", by(&["topologyKey", "whenUnsatisfiable"]))
            .with_list("*.conditions", by(&["type"]))
            .with_list("*.webhooks", by(&["name"]));
        match kind {
            "Service" => keys.with_list("spec.ports", by(&["port", "protocol"])),
            "HorizontalPodAutoscaler" => keys.with_list("spec.metrics", ListKind::Atomic),
            _ => keys,
        }
    }

    /// Adds a rule. `path` is a dotted field path from the object root (`spec.ports`), or a
    /// suffix matching anywhere when it starts with `*.` (`*.containers`). Exact paths win over
    /// suffixes, longer suffixes over shorter ones, later rules over earlier ones.
    pub fn with_list(mut self, path: &str, kind: ListKind) -> Self {
        let (anchored, rest) = match path.strip_prefix("*.") {
            Some(rest) => (false, rest),
            None => (true, path),
        };
        self.rules.push(ListRule { path: rest.split('.').map(str::to_string).collect(), anchored, kind });
        self
    }

    /// The declared kind of the list reached by these field names.
    pub fn kind_at(&self, names: &[String]) -> ListKind {
        let mut best: Option<(usize, &ListKind)> = None;
        for rule in &self.rules {
            let score = if rule.anchored {
                (names == rule.path.as_slice()).then_some(usize::MAX)
            } else {
                names.ends_with(&rule.path).then_some(rule.path.len())
            };
            if let Some(score) = score
                && best.is_none_or(|(b, _)| score >= b)
            {
                best = Some((score, &rule.kind));
            }
        }
        best.map(|(_, k)| k.clone()).unwrap_or(ListKind::Atomic)
    }

    /// The kind of a concrete list with its elements and their path elements. When the
    /// elements do not fit the declared kind (missing keys, duplicates, non-scalar set
    /// members) this is an error if `strict`, else the list is treated as atomic.
    fn resolve(
        &self,
        names: &[String],
        items: &[Value],
        strict: bool,
    ) -> Result<(ListKind, Vec<PathElement>), PatchError> {
        let kind = self.kind_at(names);
        let elements = match &kind {
            ListKind::Atomic => return Ok((ListKind::Atomic, Vec::new())),
            ListKind::Set => items
                .iter()
                .map(|v| match v {
                    Value::Object(_) | Value::Array(_) => {
                        Err(format!("set {} holds a non-scalar element", names.join(".")))
                    }
                    v => Ok(PathElement::value(v)),
                })
                .collect::<Result<Vec<_>, _>>(),
            ListKind::Map(key_fields) => items
                .iter()
                .map(|item| {
                    element_key(item, key_fields).ok_or_else(|| {
                        format!(
                            "element of {} is missing key field(s) {}",
                            names.join("."),
                            key_fields.join(",")
                        )
                    })
                })
                .collect(),
        };
        let problem = elements.and_then(|els| {
            let unique: BTreeSet<&PathElement> = els.iter().collect();
            if unique.len() == els.len() {
                Ok(els)
            } else {
                Err(format!("duplicate entries in list {}", names.join(".")))
            }
        });
        match problem {
            Ok(els) => Ok((kind, els)),
            Err(msg) if strict => Err(PatchError::Invalid(msg)),
            Err(_) => Ok((ListKind::Atomic, Vec::new())),
        }
    }

    /// Lenient [`resolve`](Self::resolve) for stored objects.
    pub(crate) fn resolve_lenient(&self, names: &[String], items: &[Value]) -> (ListKind, Vec<PathElement>) {
        self.resolve(names, items, false).unwrap_or((ListKind::Atomic, Vec::new()))
    }

    /// Strict [`resolve`](Self::resolve) for applied configurations.
    pub(crate) fn resolve_strict(
        &self,
        names: &[String],
        items: &[Value],
    ) -> Result<(ListKind, Vec<PathElement>), PatchError> {
        self.resolve(names, items, true)
    }
}

/// The `k:` element naming a keyed-list item: the key fields it has (at least one, non-null).
pub fn element_key(item: &Value, key_fields: &[String]) -> Option<PathElement> {
    let obj = item.as_object()?;
    let mut key = Map::new();
    for name in key_fields {
        if let Some(v) = obj.get(name).filter(|v| !v.is_null()) {
            key.insert(name.clone(), v.clone());
        }
    }
    (!key.is_empty()).then(|| PathElement::key(&key))
}

/// The fields an applied configuration sets: every scalar and atomic list as a leaf, every
/// keyed-list and set element as a member (with the fields below it), empty maps as leaves.
/// `null` values set nothing. Malformed keyed lists or sets are an error.
pub fn field_set_of(config: &Value, keys: &ListKeys) -> Result<FieldSet, PatchError> {
    let mut out = FieldSet::new();
    walk_set(config, keys, true, &mut Vec::new(), &mut Vec::new(), &mut out)?;
    Ok(out)
}

/// [`field_set_of`] for stored objects: malformed lists count as atomic instead of failing.
pub fn field_set_of_lenient(value: &Value, keys: &ListKeys) -> FieldSet {
    let mut out = FieldSet::new();
    subtree(value, keys, &mut Vec::new(), &mut Vec::new(), &mut out);
    out
}

fn subtree(
    value: &Value,
    keys: &ListKeys,
    names: &mut Vec<String>,
    prefix: &mut Vec<PathElement>,
    out: &mut FieldSet,
) {
    // Lenient walks cannot fail; an error here would only come from strict resolution.
    let _ = walk_set(value, keys, false, names, prefix, out);
}

fn walk_set(
    value: &Value,
    keys: &ListKeys,
    strict: bool,
    names: &mut Vec<String>,
    prefix: &mut Vec<PathElement>,
    out: &mut FieldSet,
) -> Result<(), PatchError> {
    match value {
        Value::Null => {}
        Value::Object(map) if map.is_empty() => out.insert(prefix),
        Value::Object(map) => {
            for (name, child) in map {
                names.push(name.clone());
                prefix.push(PathElement::Field(name.clone()));
                let result = walk_set(child, keys, strict, names, prefix, out);
                prefix.pop();
                names.pop();
                result?;
            }
        }
        Value::Array(items) => {
            let (kind, elements) = keys.resolve(names, items, strict)?;
            if kind == ListKind::Atomic || items.is_empty() {
                out.insert(prefix);
                return Ok(());
            }
            for (item, pe) in items.iter().zip(elements) {
                prefix.push(pe);
                out.insert(prefix);
                let result = match kind {
                    ListKind::Map(_) => walk_set(item, keys, strict, names, prefix, out),
                    _ => Ok(()),
                };
                prefix.pop();
                result?;
            }
        }
        _ => out.insert(prefix),
    }
    Ok(())
}

/// The fields that differ between two versions of an object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Present only in the new version.
    pub added: FieldSet,
    /// Present in both with different values (scalars and atomic lists).
    pub modified: FieldSet,
    /// Present only in the old version.
    pub removed: FieldSet,
}

/// Compares two versions of an object field by field, matching keyed-list and set elements by
/// their keys (reordering alone is no change).
pub fn compare(old: &Value, new: &Value, keys: &ListKeys) -> Comparison {
    let mut out = Comparison::default();
    compare_at(old, new, keys, &mut Vec::new(), &mut Vec::new(), &mut out);
    out
}

fn compare_at(
    old: &Value,
    new: &Value,
    keys: &ListKeys,
    names: &mut Vec<String>,
    prefix: &mut Vec<PathElement>,
    out: &mut Comparison,
) {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) if !o.is_empty() && !n.is_empty() => {
            let all: BTreeSet<&String> = o.keys().chain(n.keys()).collect();
            for name in all {
                let before = o.get(name).filter(|v| !v.is_null());
                let after = n.get(name).filter(|v| !v.is_null());
                names.push(name.clone());
                prefix.push(PathElement::Field(name.clone()));
                compare_present(before, after, keys, names, prefix, out);
                prefix.pop();
                names.pop();
            }
        }
        (Value::Array(o), Value::Array(n)) => {
            let (old_kind, old_els) = keys.resolve_lenient(names, o);
            let (new_kind, new_els) = keys.resolve_lenient(names, n);
            if old_kind != new_kind || old_kind == ListKind::Atomic || o.is_empty() || n.is_empty() {
                compare_leaf(old, new, keys, names, prefix, out);
                return;
            }
            let old_map: BTreeMap<&PathElement, &Value> = old_els.iter().zip(o).collect();
            let new_map: BTreeMap<&PathElement, &Value> = new_els.iter().zip(n).collect();
            let all: BTreeSet<&PathElement> = old_map.keys().chain(new_map.keys()).copied().collect();
            for pe in all {
                prefix.push(pe.clone());
                let (before, after) = (old_map.get(pe).copied(), new_map.get(pe).copied());
                match (before, after) {
                    (Some(b), Some(a)) if matches!(old_kind, ListKind::Map(_)) => {
                        compare_at(b, a, keys, names, prefix, out)
                    }
                    (Some(_), Some(_)) => {}
                    (Some(b), None) => {
                        out.removed.insert(prefix);
                        if matches!(old_kind, ListKind::Map(_)) {
                            subtree(b, keys, names, prefix, &mut out.removed);
                        }
                    }
                    (None, Some(a)) => {
                        out.added.insert(prefix);
                        if matches!(new_kind, ListKind::Map(_)) {
                            subtree(a, keys, names, prefix, &mut out.added);
                        }
                    }
                    (None, None) => {}
                }
                prefix.pop();
            }
        }
        _ => compare_leaf(old, new, keys, names, prefix, out),
    }
}

fn compare_present(
    before: Option<&Value>,
    after: Option<&Value>,
    keys: &ListKeys,
    names: &mut Vec<String>,
    prefix: &mut Vec<PathElement>,
    out: &mut Comparison,
) {
    match (before, after) {
        (Some(b), Some(a)) => compare_at(b, a, keys, names, prefix, out),
        (Some(b), None) => {
            out.removed.insert(prefix);
            subtree(b, keys, names, prefix, &mut out.removed);
        }
        (None, Some(a)) => subtree(a, keys, names, prefix, &mut out.added),
        (None, None) => {}
    }
}

/// Two values at one path that are not both non-empty maps or both mergeable lists.
fn compare_leaf(
    old: &Value,
    new: &Value,
    keys: &ListKeys,
    names: &mut Vec<String>,
    prefix: &mut Vec<PathElement>,
    out: &mut Comparison,
) {
    // Numbers compare by value: 1 and 1.0 are the same field value (YAML vs typed encoders).
    if crate::patch::json::json_equal(old, new) {
        return;
    }
    let mut before = FieldSet::new();
    subtree(old, keys, names, prefix, &mut before);
    let mut after = FieldSet::new();
    subtree(new, keys, names, prefix, &mut after);
    if before.contains(prefix) && after.contains(prefix) {
        // Both are leaves at this path (scalars, atomic lists, empty maps).
        out.modified.insert(prefix);
    } else {
        out.removed = out.removed.union(&before.difference(&after));
        out.added = out.added.union(&after.difference(&before));
    }
}
