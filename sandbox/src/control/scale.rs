//! The `/scale` subresource: the autoscaling/v1 Scale view of an object with a scale
//! subresource (built-in workloads or CRDs with scale paths), and writing a Scale's replicas back.

use serde_json::{Value, json};

use super::as_served;
use crate::meta;
use crate::resources::{Resource, get_path, set_path};
use crate::status::ApiError;

/// The autoscaling/v1 Scale view of an object.
pub(crate) fn to_scale(res: &Resource, obj: &Value) -> Result<Value, ApiError> {
    let paths = res.scale.as_ref().ok_or_else(|| {
        ApiError::not_found(&res.group, &format!("{}/scale", res.plural), meta::name(obj).unwrap_or_default())
    })?;
    let spec = get_path(obj, &paths.spec_replicas).and_then(Value::as_i64).unwrap_or(0);
    let status = get_path(obj, &paths.status_replicas).and_then(Value::as_i64).unwrap_or(0);
    let selector =
        paths.label_selector.as_ref().and_then(|p| get_path(obj, p)).map(selector_string).unwrap_or_default();
    let m = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let mut scale_meta = serde_json::Map::new();
    for f in ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"] {
        if let Some(v) = m.get(f) {
            scale_meta.insert(f.into(), v.clone());
        }
    }
    let mut status_obj = json!({"replicas": status});
    if !selector.is_empty() {
        status_obj["selector"] = Value::String(selector);
    }
    Ok(
        json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": scale_meta, "spec": {"replicas": spec}, "status": status_obj}),
    )
}

/// Writes a Scale's spec.replicas back into the object.
pub(super) fn from_scale(res: &Resource, cur: &Value, scale: &Value) -> Result<Value, ApiError> {
    let paths = res
        .scale
        .as_ref()
        .ok_or_else(|| ApiError::not_found(&res.group, &res.plural, meta::name(cur).unwrap_or_default()))?;
    let replicas = scale.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0);
    if replicas < 0 {
        return Err(ApiError::invalid(
            "autoscaling",
            "Scale",
            meta::name(cur).unwrap_or_default(),
            "spec.replicas: Invalid value: must be greater than or equal to 0",
        ));
    }
    let mut obj = as_served(res, cur);
    set_path(&mut obj, &paths.spec_replicas, json!(replicas));
    Ok(obj)
}

/// After a `/scale` write of 0 replicas no manager owns the replicas field: a Scale's
/// `spec.replicas` is omitted when 0, so the write sets nothing and the field's previous owners
/// lose it, as upstream's field manager records it. Entries left owning nothing are dropped.
pub(super) fn disown_zero_replicas(res: &Resource, obj: &mut Value) {
    let Some(paths) = res.scale.as_ref() else { return };
    if get_path(obj, &paths.spec_replicas).and_then(Value::as_i64) != Some(0) {
        return;
    }
    let parts: Vec<String> = paths
        .spec_replicas
        .trim_start_matches('.')
        .split('.')
        .filter(|p| !p.is_empty())
        .map(|p| format!("f:{p}"))
        .collect();
    let Some(entries) = obj.pointer_mut("/metadata/managedFields").and_then(Value::as_array_mut) else {
        return;
    };
    for entry in entries.iter_mut() {
        if let Some(fields) = entry.get_mut("fieldsV1") {
            remove_field(fields, &parts);
        }
    }
    entries.retain(|e| e.get("fieldsV1").and_then(Value::as_object).is_some_and(|f| !f.is_empty()));
}

/// Removes the set path `parts` from a fieldsV1 tree, pruning parents left empty (their `.`
/// marker alone does not keep them).
fn remove_field(tree: &mut Value, parts: &[String]) {
    let Some((first, rest)) = parts.split_first() else { return };
    let Some(map) = tree.as_object_mut() else { return };
    if rest.is_empty() {
        map.remove(first);
        return;
    }
    if let Some(child) = map.get_mut(first) {
        remove_field(child, rest);
        if child.as_object().is_some_and(|c| c.is_empty()) {
            map.remove(first);
        }
    }
}

/// A label selector (metav1.LabelSelector or already a string) as `a=b,c=d`.
pub(crate) fn selector_string(v: &Value) -> String {
    if let Some(s) = v.as_str() {
        return s.to_owned();
    }
    let mut parts: Vec<String> = v
        .get("matchLabels")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect())
        .unwrap_or_default();
    for e in v.get("matchExpressions").and_then(Value::as_array).into_iter().flatten() {
        let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
        let vals: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        parts.push(match e.get("operator").and_then(Value::as_str).unwrap_or_default() {
            "In" => format!("{key} in ({})", vals.join(",")),
            "NotIn" => format!("{key} notin ({})", vals.join(",")),
            "Exists" => key.to_owned(),
            _ => format!("!{key}"),
        });
    }
    parts.join(",")
}
