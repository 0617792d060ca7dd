//! Server-side apply with field ownership: merging an applied configuration into the live
//! object, removing fields its manager stopped setting, detecting conflicts with other managers,
//! and maintaining `metadata.managedFields` for apply and for ordinary writes.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use super::PatchError;
use super::fields::{self, FieldSet, PathElement};
pub use super::fields::{ListKeys, ListKind};

/// Who applies, and how.
#[derive(Debug, Clone, Copy)]
pub struct ApplyRequest<'a> {
    /// The field manager (`?fieldManager=`).
    pub manager: &'a str,
    /// `?force=true`: take ownership of conflicting fields instead of failing.
    pub force: bool,
    /// `Some("status")` when applying to the status subresource.
    pub subresource: Option<&'a str>,
    /// RFC 3339 time recorded in `managedFields`.
    pub now: &'a str,
    /// The API version the request was made in, recorded in `managedFields`.
    pub api_version: &'a str,
}

/// A field set by the configuration that another manager owns with a different value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager's name.
    pub manager: String,
    /// The other manager's operation, `Apply` or `Update`.
    pub operation: String,
    /// The API version the other manager's entry was recorded in.
    pub api_version: String,
    /// The subresource the other manager wrote through, if any.
    pub subresource: Option<String>,
    /// The field, e.g. `.spec.replicas`.
    pub field: String,
}

impl Conflict {
    /// How the other manager is named in messages: `"kubectl"`, `"hpa" using apps/v1`,
    /// `"kubelet" with subresource "status" using v1`.
    pub fn describe_manager(&self) -> String {
        let mut out = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            out.push_str(&format!(" with subresource {sub:?}"));
        }
        if self.operation == "Update" {
            out.push_str(&format!(" using {}", self.api_version));
        }
        out
    }

    /// The `message` of this conflict's `FieldManagerConflict` status cause.
    pub fn message(&self) -> String {
        format!("conflict with {}", self.describe_manager())
    }
}

/// Why an apply failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Fields owned by other managers would change (HTTP 409).
    #[error("{}", conflicts_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The configuration is malformed.
    #[error(transparent)]
    Patch(#[from] PatchError),
}

/// The message of a 409 for these conflicts, worded as kube-apiserver words it.
pub fn conflicts_message(conflicts: &[Conflict]) -> String {
    if let [only] = conflicts {
        return format!("Apply failed with 1 conflict: {}: {}", only.message(), only.field);
    }
    let mut by_manager: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for c in conflicts {
        by_manager.entry(c.describe_manager()).or_default().push(&c.field);
    }
    let mut lines = Vec::new();
    for (manager, fields) in by_manager {
        lines.push(format!("conflict with {manager}:"));
        lines.extend(fields.iter().map(|f| format!("- {f}")));
    }
    format!("Apply failed with {} conflicts: {}", conflicts.len(), lines.join("\n"))
}

/// Metadata fields the server owns: never taken from a configuration, never recorded as owned.
const SERVER_METADATA: &[&str] = &[
    "managedFields",
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// Identity fields: taken from the configuration or live object but not recorded as owned.
const IDENTITY_METADATA: &[&str] = &["name", "namespace"];

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: Option<String>,
    subresource: Option<String>,
    set: FieldSet,
}

impl Entry {
    fn is(&self, manager: &str, operation: &str, subresource: Option<&str>) -> bool {
        self.manager == manager && self.operation == operation && self.subresource.as_deref() == subresource
    }

    fn parse(value: &Value) -> Option<Entry> {
        let text = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_string);
        let set = match value.get("fieldsV1") {
            Some(v) => FieldSet::from_fields_v1(v).ok()?,
            None => FieldSet::new(),
        };
        Some(Entry {
            manager: text("manager").unwrap_or_default(),
            operation: text("operation")?,
            api_version: text("apiVersion").unwrap_or_default(),
            time: text("time"),
            subresource: text("subresource").filter(|s| !s.is_empty()),
            set,
        })
    }

    fn to_value(&self) -> Value {
        let mut map = Map::new();
        map.insert("manager".into(), Value::String(self.manager.clone()));
        map.insert("operation".into(), Value::String(self.operation.clone()));
        map.insert("apiVersion".into(), Value::String(self.api_version.clone()));
        if let Some(time) = &self.time {
            map.insert("time".into(), Value::String(time.clone()));
        }
        map.insert("fieldsType".into(), Value::String("FieldsV1".into()));
        map.insert("fieldsV1".into(), self.set.to_fields_v1());
        if let Some(sub) = &self.subresource {
            map.insert("subresource".into(), Value::String(sub.clone()));
        }
        Value::Object(map)
    }
}

fn read_entries(object: &Value) -> Vec<Entry> {
    object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|entries| entries.iter().filter_map(Entry::parse).collect())
        .unwrap_or_default()
}

/// Drops empty entries, orders them (Apply before Update, then by time, manager, API version,
/// subresource) and stores them; no entries removes `managedFields`.
fn write_entries(object: &mut Value, mut entries: Vec<Entry>) {
    entries.retain(|e| !e.set.is_empty());
    entries.sort_by(|a, b| {
        (&a.operation, &a.time, &a.manager, &a.api_version, &a.subresource).cmp(&(
            &b.operation,
            &b.time,
            &b.manager,
            &b.api_version,
            &b.subresource,
        ))
    });
    let Some(root) = object.as_object_mut() else { return };
    let meta = root.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    let Some(meta) = meta.as_object_mut() else { return };
    if entries.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(entries.iter().map(Entry::to_value).collect()));
    }
}

/// The object without the fields ownership is never tracked for: `apiVersion`, `kind`,
/// identity and server-owned metadata.
fn trackable(object: &Value) -> Value {
    let mut out = object.clone();
    if let Some(root) = out.as_object_mut() {
        root.remove("apiVersion");
        root.remove("kind");
        if let Some(Value::Object(meta)) = root.get_mut("metadata") {
            for name in SERVER_METADATA.iter().chain(IDENTITY_METADATA) {
                meta.remove(*name);
            }
            if meta.is_empty() {
                root.remove("metadata");
            }
        }
    }
    out
}

/// The part of a configuration an apply may write: everything but `status` and server-owned
/// metadata, or only `status` when applying to the status subresource.
fn writable_config(config: &Map<String, Value>, status_only: bool) -> Value {
    let mut out = Map::new();
    if status_only {
        if let Some(status) = config.get("status") {
            out.insert("status".into(), status.clone());
        }
        return Value::Object(out);
    }
    for (name, value) in config {
        match (name.as_str(), value) {
            ("status", _) => {}
            ("metadata", Value::Object(meta)) => {
                let kept = meta
                    .iter()
                    .filter(|(k, _)| !SERVER_METADATA.contains(&k.as_str()))
                    .filter(|(k, v)| !(v.is_null() && IDENTITY_METADATA.contains(&k.as_str())))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                out.insert(name.clone(), Value::Object(kept));
            }
            // A non-map `metadata` would erase the object's identity; it is ignored.
            ("metadata", _) => {}
            _ => {
                out.insert(name.clone(), value.clone());
            }
        }
    }
    Value::Object(out)
}

/// Applies `config` (the applied configuration, already parsed from YAML/JSON) to `live` (None
/// when the object does not exist yet). Returns the new object with `metadata.managedFields`
/// updated.
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    req: &ApplyRequest,
    keys: &ListKeys,
) -> Result<Value, ApplyError> {
    let config = config
        .as_object()
        .ok_or_else(|| PatchError::Invalid("the applied configuration must be an object".into()))?;
    let writable = writable_config(config, req.subresource == Some("status"));
    let config_set = fields::field_set_of(&trackable(&writable), keys)?;
    let base = match live {
        Some(v) if v.is_object() => v.clone(),
        _ => Value::Object(Map::new()),
    };
    let merged = merge(Some(&base), &writable, keys, &mut Vec::new())?;

    let mut entries = read_entries(&base);
    if let Some(live) = live
        && entries.is_empty()
    {
        // Objects written before any field tracking are owned as a whole by a placeholder
        // manager, so that an apply cannot silently take them over.
        entries.push(Entry {
            manager: "before-first-apply".into(),
            operation: "Update".into(),
            api_version: live.get("apiVersion").and_then(Value::as_str).unwrap_or_default().into(),
            time: Some(req.now.into()),
            subresource: None,
            set: fields::field_set_of_lenient(&trackable(live), keys),
        });
    }
    let mine = match entries.iter().position(|e| e.is(req.manager, "Apply", req.subresource)) {
        Some(i) => i,
        None => {
            entries.push(Entry {
                manager: req.manager.into(),
                operation: "Apply".into(),
                api_version: String::new(),
                time: None,
                subresource: req.subresource.map(str::to_string),
                set: FieldSet::new(),
            });
            entries.len() - 1
        }
    };
    let last_set = std::mem::replace(&mut entries[mine].set, config_set);
    entries[mine].api_version = req.api_version.into();
    entries[mine].time = Some(req.now.into());

    let owned = entries.iter().fold(FieldSet::new(), |acc, e| acc.union(&e.set));
    let mut result = merged;
    prune(&mut result, &last_set.difference(&owned), &owned, keys, &mut Vec::new(), &[]);

    let diff = fields::compare(&trackable(&base), &trackable(&result), keys);
    let changed = diff.added.union(&diff.modified);
    let mut conflicts = Vec::new();
    for (i, entry) in entries.iter_mut().enumerate() {
        if i == mine {
            continue;
        }
        let taken = entry.set.intersection(&changed);
        if taken.is_empty() {
            continue;
        }
        conflicts.extend(taken.paths().iter().map(|path| Conflict {
            manager: entry.manager.clone(),
            operation: entry.operation.clone(),
            api_version: entry.api_version.clone(),
            subresource: entry.subresource.clone(),
            field: fields::path_string(path),
        }));
        entry.set = entry.set.difference(&taken);
    }
    if !req.force && !conflicts.is_empty() {
        conflicts.sort_by(|a, b| (&a.manager, &a.field).cmp(&(&b.manager, &b.field)));
        return Err(ApplyError::Conflicts(conflicts));
    }
    for entry in &mut entries {
        entry.set = entry.set.difference(&diff.removed);
    }
    write_entries(&mut result, entries);
    Ok(result)
}

/// Updates managedFields for a non-apply write (create/update/patch) by `manager` with
/// operation "Update": fields whose values changed or were added are now owned by `manager`
/// (removed from other managers' sets), as kube-apiserver does.
///
/// The entries come from `new` when the write supplied a non-empty `managedFields`, otherwise
/// from `old`. Fields removed by the write are dropped from every manager.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    now: &str,
    api_version: &str,
    subresource: Option<&str>,
    keys: &ListKeys,
) {
    if !new.is_object() {
        return;
    }
    let supplied = new
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .is_some_and(|entries| !entries.is_empty());
    let mut entries = match (supplied, old) {
        (true, _) => read_entries(new),
        (false, Some(old)) => read_entries(old),
        (false, None) => Vec::new(),
    };
    let base = old.map(trackable).unwrap_or_else(|| Value::Object(Map::new()));
    let diff = fields::compare(&base, &trackable(new), keys);
    let changed = diff.added.union(&diff.modified);
    for entry in &mut entries {
        if !entry.is(manager, "Update", subresource) {
            entry.set = entry.set.difference(&changed);
        }
        entry.set = entry.set.difference(&diff.removed);
    }
    match entries.iter_mut().find(|e| e.is(manager, "Update", subresource)) {
        Some(entry) => {
            let owned = entry.set.union(&changed);
            if owned != entry.set || entry.api_version != api_version {
                entry.set = owned;
                entry.api_version = api_version.into();
                entry.time = Some(now.into());
            }
        }
        None => entries.push(Entry {
            manager: manager.into(),
            operation: "Update".into(),
            api_version: api_version.into(),
            time: Some(now.into()),
            subresource: subresource.map(str::to_string),
            set: changed,
        }),
    }
    write_entries(new, entries);
}

/// Merges a configuration value into a live value: maps field by field (`null` removes a
/// field), keyed lists and sets element by element, anything else replaced by the
/// configuration.
fn merge(
    live: Option<&Value>,
    config: &Value,
    keys: &ListKeys,
    names: &mut Vec<String>,
) -> Result<Value, PatchError> {
    match config {
        Value::Object(cfg) => {
            let mut out = match live {
                Some(Value::Object(l)) => l.clone(),
                _ => Map::new(),
            };
            for (name, value) in cfg {
                if value.is_null() {
                    out.remove(name);
                    continue;
                }
                names.push(name.clone());
                let merged = merge(out.get(name), value, keys, names);
                names.pop();
                out.insert(name.clone(), merged?);
            }
            Ok(Value::Object(out))
        }
        Value::Array(cfg) => {
            let (kind, cfg_keys) = keys.resolve_strict(names, cfg)?;
            if kind == ListKind::Atomic {
                return Ok(config.clone());
            }
            let live_items: &[Value] = match live {
                Some(Value::Array(l)) => l,
                _ => &[],
            };
            let (live_kind, live_keys) = keys.resolve_lenient(names, live_items);
            let live_items = if live_kind == kind { live_items } else { &[] };
            merge_list(live_items, &live_keys, cfg, &cfg_keys, |l, c| match kind {
                ListKind::Map(_) => merge(l, c, keys, names),
                _ => Ok(c.clone()),
            })
        }
        _ => Ok(config.clone()),
    }
}

/// Merges two keyed lists. Configuration elements keep their relative order; live-only
/// elements stay where they were relative to the elements around them.
fn merge_list(
    live: &[Value],
    live_keys: &[PathElement],
    cfg: &[Value],
    cfg_keys: &[PathElement],
    mut merge_item: impl FnMut(Option<&Value>, &Value) -> Result<Value, PatchError>,
) -> Result<Value, PatchError> {
    let live_index: BTreeMap<&PathElement, usize> =
        live_keys.iter().enumerate().map(|(i, k)| (k, i)).collect();
    let in_cfg: std::collections::BTreeSet<&PathElement> = cfg_keys.iter().collect();
    let mut emitted = vec![false; live.len()];
    let mut out = Vec::with_capacity(live.len() + cfg.len());
    let (mut li, mut ci) = (0, 0);
    loop {
        while li < live.len() && emitted[li] {
            li += 1;
        }
        if li < live.len() && !in_cfg.contains(&live_keys[li]) {
            out.push(live[li].clone());
            emitted[li] = true;
        } else if ci < cfg.len() {
            let existing = live_index.get(&cfg_keys[ci]).copied();
            if let Some(i) = existing {
                emitted[i] = true;
            }
            out.push(merge_item(existing.map(|i| &live[i]), &cfg[ci])?);
            ci += 1;
        } else if li < live.len() {
            li += 1;
        } else {
            break;
        }
    }
    Ok(Value::Array(out))
}

/// Removes from `value` the paths in `remove` (fields the applier owned before and nobody owns
/// now), keeping anything with owned paths below it and the key fields (`protect`) of keyed
/// list elements. Maps and lists emptied by the removal are removed too unless owned.
fn prune(
    value: &mut Value,
    remove: &FieldSet,
    owned: &FieldSet,
    keys: &ListKeys,
    names: &mut Vec<String>,
    protect: &[String],
) {
    if remove.is_empty() {
        return;
    }
    let empty = FieldSet::new();
    match value {
        Value::Object(map) => {
            let names_here: Vec<String> = map.keys().cloned().collect();
            for name in names_here {
                if protect.contains(&name) {
                    continue;
                }
                let pe = PathElement::Field(name.clone());
                if !remove.touches(&pe) {
                    continue;
                }
                if remove.has_member(&pe) && !owned.touches(&pe) {
                    map.remove(&name);
                    continue;
                }
                let Some(child) = map.get_mut(&name) else { continue };
                let was_empty = is_empty_container(child);
                names.push(name.clone());
                let below = owned.child(&pe).unwrap_or(&empty);
                prune(child, remove.child(&pe).unwrap_or(&empty), below, keys, names, &[]);
                names.pop();
                if !was_empty && is_empty_container(child) && !owned.has_member(&pe) {
                    map.remove(&name);
                }
            }
        }
        Value::Array(items) => {
            let (kind, elements) = keys.resolve_lenient(names, items);
            let key_fields = match &kind {
                ListKind::Atomic => return,
                ListKind::Map(fields) => fields.clone(),
                ListKind::Set => Vec::new(),
            };
            let mut kept = Vec::with_capacity(items.len());
            for (mut item, pe) in std::mem::take(items).into_iter().zip(elements) {
                if remove.has_member(&pe) && !owned.touches(&pe) {
                    continue;
                }
                if let (Some(rm), ListKind::Map(_)) = (remove.child(&pe), &kind) {
                    prune(&mut item, rm, owned.child(&pe).unwrap_or(&empty), keys, names, &key_fields);
                }
                kept.push(item);
            }
            *items = kept;
        }
        _ => {}
    }
}

fn is_empty_container(value: &Value) -> bool {
    match value {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.message(), self.field)
    }
}

#[cfg(test)]
mod tests;
