//! Strategic merge patch (`application/strategic-merge-patch+json`) for built-in kinds.
//!
//! Maps merge recursively and a `null` member deletes the key. Lists follow the per-kind table
//! in [`kinds`]: lists with a merge key merge element-wise by that key, primitive sets take the
//! union, every other list is replaced by the patch list. Directives understood:
//!
//! - `$patch: replace` in a map replaces the map; as a list element it replaces the list.
//! - `$patch: delete` in a map empties it; as a list element it removes the element with the
//!   same merge key value.
//! - `$retainKeys: [...]` drops every live key of the map that is not listed.
//! - `$deleteFromPrimitiveList/<field>: [...]` removes those values from a primitive list.
//! - `$setElementOrder/<field>: [...]` fixes the order of the merged list.
//!
//! Ordering follows the server: elements named by the patch (or by `$setElementOrder`) keep
//! the patch's order, live elements the patch does not mention keep their relative order, and
//! the two runs interleave by live position where both are known, patch elements first
//! otherwise. Directives never end up in the stored object, not even inside newly added values.

use serde_json::{Map, Value};

use super::PatchError;
use super::json::json_equal;

mod kinds;

pub use kinds::{ListStrategy, StrategicKind};

const PATCH_DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

/// Applies the strategic merge `patch` to `target` using the list table of `kind`.
/// Atomic: on error `target` is left unchanged.
pub fn apply(target: &mut Value, patch: &Value, kind: &StrategicKind) -> Result<(), PatchError> {
    let Value::Object(patch) = patch else {
        return Err(invalid("a strategic merge patch must be a JSON object"));
    };
    let original = match target {
        Value::Object(members) => members.clone(),
        _ => Map::new(),
    };
    let merged = Merger { kind: *kind }.merge_map(original, patch, &[])?;
    *target = Value::Object(merged);
    Ok(())
}

fn invalid(msg: impl Into<String>) -> PatchError {
    PatchError::Invalid(msg.into())
}

fn unprocessable(msg: impl Into<String>) -> PatchError {
    PatchError::Unprocessable(msg.into())
}

fn is_directive_key(key: &str) -> bool {
    key == PATCH_DIRECTIVE
        || key == RETAIN_KEYS
        || key.starts_with(SET_ELEMENT_ORDER)
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
}

fn child<'p>(path: &[&'p str], field: &'p str) -> Vec<&'p str> {
    let mut out = Vec::with_capacity(path.len() + 1);
    out.extend_from_slice(path);
    out.push(field);
    out
}

fn render(path: &[&str]) -> String {
    if path.is_empty() { "<root>".to_owned() } else { path.join(".") }
}

/// The value an element is identified by when matching and ordering list elements: the merge
/// key's value for objects, the element itself for primitives.
fn identity<'a>(element: &'a Value, key: Option<&str>) -> Option<&'a Value> {
    match key {
        Some(key) => element.get(key),
        None => Some(element),
    }
}

fn position(ids: &[&Value], element: &Value, key: Option<&str>) -> Option<usize> {
    let id = identity(element, key)?;
    ids.iter().position(|candidate| json_equal(candidate, id))
}

/// Orders `merged`: elements whose identity is in `preferred` come in that order, the others
/// keep their relative order in `live`; the two runs interleave by position in `live`, taking
/// the preferred element whenever the comparison is undecided.
fn arrange(merged: Vec<Value>, preferred: &[&Value], live: &[&Value], key: Option<&str>) -> Vec<Value> {
    let (mut named, mut others): (Vec<Value>, Vec<Value>) =
        merged.into_iter().partition(|element| position(preferred, element, key).is_some());
    named.sort_by_key(|element| position(preferred, element, key).unwrap_or(usize::MAX));
    others.sort_by_key(|element| position(live, element, key).unwrap_or(usize::MAX));

    let mut out = Vec::with_capacity(named.len() + others.len());
    let mut named = named.into_iter().peekable();
    let mut others = others.into_iter().peekable();
    loop {
        let take_other = match (others.peek(), named.peek()) {
            (Some(other), Some(name)) => matches!(
                (position(live, other, key), position(live, name, key)),
                (Some(i), Some(j)) if i < j
            ),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_other { others.next() } else { named.next() };
        out.extend(next);
    }
    out
}

/// Rejects a list whose elements cannot be merged together; returns whether they are objects.
fn element_kind(original: &[Value], patch: &[Value], path: &[&str]) -> Result<bool, PatchError> {
    let mut all = original.iter().chain(patch);
    if all.clone().any(Value::is_array) {
        return Err(unprocessable(format!("{}: lists of lists cannot be merged", render(path))));
    }
    let objects = all.clone().any(Value::is_object);
    if objects && !all.all(Value::is_object) {
        return Err(unprocessable(format!(
            "{}: list elements must be all objects or all primitives",
            render(path)
        )));
    }
    Ok(objects)
}

/// The merge engine for one request; `kind` supplies the list strategies.
#[derive(Debug)]
struct Merger {
    kind: StrategicKind,
}

impl Merger {
    /// Merges `patch` into `original`, honouring a map-level `$patch` directive.
    fn merge_map<'p>(
        &self,
        original: Map<String, Value>,
        patch: &'p Map<String, Value>,
        path: &[&'p str],
    ) -> Result<Map<String, Value>, PatchError> {
        match patch.get(PATCH_DIRECTIVE) {
            None => self.merge_fields(original, patch, path),
            Some(Value::String(d)) if d == "replace" => self.merge_fields(Map::new(), patch, path),
            Some(Value::String(d)) if d == "delete" => Ok(Map::new()),
            Some(other) => {
                Err(invalid(format!("{}: unknown $patch directive {other} in a map", render(path))))
            }
        }
    }

    /// A patch value turned into a stored value: directives processed, nulls dropped.
    fn clean<'p>(&self, value: &'p Value, path: &[&'p str]) -> Result<Value, PatchError> {
        self.merge_value(None, value, path)
    }

    /// Merges one patch member into the live value at `path` (absent when `original` is None).
    fn merge_value<'p>(
        &self,
        original: Option<Value>,
        patch: &'p Value,
        path: &[&'p str],
    ) -> Result<Value, PatchError> {
        Ok(match (original, patch) {
            (Some(Value::Object(live)), Value::Object(p)) => Value::Object(self.merge_map(live, p, path)?),
            (Some(Value::Array(live)), Value::Array(p)) => Value::Array(self.merge_list(live, p, path)?),
            (_, Value::Object(p)) => Value::Object(self.merge_map(Map::new(), p, path)?),
            (_, Value::Array(p)) => Value::Array(self.merge_list(Vec::new(), p, path)?),
            (_, scalar) => scalar.clone(),
        })
    }

    fn merge_fields<'p>(
        &self,
        mut original: Map<String, Value>,
        patch: &'p Map<String, Value>,
        path: &[&'p str],
    ) -> Result<Map<String, Value>, PatchError> {
        if let Some(retain) = patch.get(RETAIN_KEYS) {
            apply_retain_keys(&mut original, patch, retain, path)?;
        }
        for (key, value) in patch {
            if let Some(field) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
                delete_from_primitive_list(&mut original, field, value, path)?;
            }
        }
        let mut ordered: Vec<&str> = Vec::new();
        for (key, order) in patch {
            if let Some(field) = key.strip_prefix(SET_ELEMENT_ORDER) {
                self.set_element_order(&mut original, patch, field, order, path)?;
                ordered.push(field);
            }
        }
        for (key, value) in patch {
            if is_directive_key(key) || ordered.contains(&key.as_str()) {
                continue;
            }
            if value.is_null() {
                original.retain(|k, _| k != key);
                continue;
            }
            let field_path = child(path, key);
            match original.get_mut(key) {
                Some(slot) => {
                    let live = std::mem::take(slot);
                    *slot = self.merge_value(Some(live), value, &field_path)?;
                }
                None => {
                    let fresh = self.clean(value, &field_path)?;
                    original.insert(key.clone(), fresh);
                }
            }
        }
        Ok(original)
    }

    /// Merges the list `patch` into `original` per the strategy of the list at `path`.
    fn merge_list<'p>(
        &self,
        original: Vec<Value>,
        patch: &'p [Value],
        path: &[&'p str],
    ) -> Result<Vec<Value>, PatchError> {
        let key = match self.kind.list_strategy(path) {
            ListStrategy::Replace => {
                return patch.iter().map(|e| self.clean(e, path)).collect();
            }
            ListStrategy::MergeByKey(key) => Some(key),
            ListStrategy::MergeSet => None,
        };
        if original.is_empty() && patch.is_empty() {
            return Ok(original);
        }
        if !element_kind(&original, patch, path)? {
            return Ok(merge_primitives(original, patch));
        }
        let Some(key) = key else {
            return Err(unprocessable(format!(
                "{}: a list of objects cannot be merged without a merge key",
                render(path)
            )));
        };
        self.merge_objects(original, patch, key, path)
    }

    fn merge_objects<'p>(
        &self,
        mut live: Vec<Value>,
        patch: &'p [Value],
        key: &str,
        path: &[&'p str],
    ) -> Result<Vec<Value>, PatchError> {
        let mut items: Vec<&'p Map<String, Value>> = Vec::new();
        let mut replace = false;
        for element in patch.iter().filter_map(Value::as_object) {
            match element.get(PATCH_DIRECTIVE) {
                None => items.push(element),
                Some(Value::String(d)) if d == "replace" => replace = true,
                Some(Value::String(d)) if d == "delete" => {
                    let id = element.get(key).ok_or_else(|| missing_key(path, key))?;
                    live.retain(|e| !e.get(key).is_some_and(|v| json_equal(v, id)));
                }
                Some(other) => {
                    return Err(invalid(format!(
                        "{}: unsupported $patch directive {other} in a list",
                        render(path)
                    )));
                }
            }
        }
        if replace {
            return items
                .into_iter()
                .map(|element| Ok(Value::Object(self.merge_map(Map::new(), element, path)?)))
                .collect();
        }

        let live_ids: Vec<Value> = live.iter().filter_map(|e| e.get(key).cloned()).collect();
        let mut patch_ids: Vec<&Value> = Vec::with_capacity(items.len());
        for element in items {
            let id = element.get(key).ok_or_else(|| missing_key(path, key))?;
            patch_ids.push(id);
            let found = live.iter().position(|e| e.get(key).is_some_and(|v| json_equal(v, id)));
            match found {
                Some(i) => {
                    let merged = match std::mem::take(&mut live[i]) {
                        Value::Object(existing) => self.merge_map(existing, element, path)?,
                        _ => self.merge_map(Map::new(), element, path)?,
                    };
                    live[i] = Value::Object(merged);
                }
                None => live.push(Value::Object(self.merge_map(Map::new(), element, path)?)),
            }
        }
        let live_refs: Vec<&Value> = live_ids.iter().collect();
        Ok(arrange(live, &patch_ids, &live_refs, Some(key)))
    }

    /// Handles `$setElementOrder/<field>`: merges the field's patch list (if any) and puts
    /// the result in the requested order.
    fn set_element_order<'p>(
        &self,
        original: &mut Map<String, Value>,
        patch: &'p Map<String, Value>,
        field: &'p str,
        order: &'p Value,
        path: &[&'p str],
    ) -> Result<(), PatchError> {
        let field_path = child(path, field);
        let bad_format = |what: &str| invalid(format!("{}: {SET_ELEMENT_ORDER}{field} {what}", render(path)));
        let Value::Array(order) = order else {
            return Err(bad_format("must be a list"));
        };
        let key = match self.kind.list_strategy(&field_path) {
            ListStrategy::MergeByKey(key) => Some(key),
            ListStrategy::Replace | ListStrategy::MergeSet => None,
        };
        let order_ids = order
            .iter()
            .map(|e| identity(e, key))
            .collect::<Option<Vec<&Value>>>()
            .ok_or_else(|| bad_format("entries must carry the merge key"))?;
        let patch_list = match patch.get(field) {
            None => None,
            Some(Value::Array(list)) => Some(list.as_slice()),
            Some(_) => return Err(bad_format("applies to a field that is not a list")),
        };
        if let Some(list) = patch_list {
            check_order(list, &order_ids, key)
                .map_err(|()| bad_format("does not list the patch elements in the patch's order"))?;
        }
        let live = match original.get(field) {
            None => None,
            Some(Value::Array(list)) => Some(list.clone()),
            Some(_) => {
                return Err(unprocessable(format!(
                    "{}: $setElementOrder applies to a field that is not a list",
                    render(&field_path)
                )));
            }
        };
        let merged = match (&live, patch_list) {
            (None, None) => return Ok(()),
            (Some(list), None) => list.clone(),
            (_, Some(p)) => self.merge_list(live.clone().unwrap_or_default(), p, &field_path)?,
        };
        let live = live.unwrap_or_default();
        let live_ids: Vec<&Value> = live.iter().filter_map(|e| identity(e, key)).collect();
        let arranged = arrange(merged, &order_ids, &live_ids, key);
        original.insert(field.to_owned(), Value::Array(arranged));
        Ok(())
    }
}

fn missing_key(path: &[&str], key: &str) -> PatchError {
    unprocessable(format!("{}: list element does not contain the merge key {key:?}", render(path)))
}

/// Set union of two primitive lists, ordered like the server orders merged lists.
fn merge_primitives(original: Vec<Value>, patch: &[Value]) -> Vec<Value> {
    let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
    for value in original.iter().chain(patch) {
        if !merged.iter().any(|m| json_equal(m, value)) {
            merged.push(value.clone());
        }
    }
    let preferred: Vec<&Value> = patch.iter().collect();
    let live: Vec<&Value> = original.iter().collect();
    arrange(merged, &preferred, &live, None)
}

/// The patch list's elements (directive elements aside) must appear in the order list in the
/// same relative order.
fn check_order(list: &[Value], order_ids: &[&Value], key: Option<&str>) -> Result<(), ()> {
    let mut remaining = order_ids.iter();
    for element in list {
        if element.get(PATCH_DIRECTIVE).is_some() {
            continue;
        }
        let id = identity(element, key).ok_or(())?;
        if !remaining.any(|candidate| json_equal(candidate, id)) {
            return Err(());
        }
    }
    Ok(())
}

fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    retain: &Value,
    path: &[&str],
) -> Result<(), PatchError> {
    let keys = retain
        .as_array()
        .and_then(|list| list.iter().map(Value::as_str).collect::<Option<Vec<&str>>>())
        .ok_or_else(|| invalid(format!("{}: $retainKeys must be a list of strings", render(path))))?;
    if let Some(stray) = patch.keys().find(|k| !k.starts_with('$') && !keys.contains(&k.as_str())) {
        return Err(unprocessable(format!(
            "{}: the patch sets {stray:?}, which its $retainKeys list does not contain",
            render(path)
        )));
    }
    original.retain(|k, _| keys.contains(&k.as_str()));
    Ok(())
}

fn delete_from_primitive_list(
    original: &mut Map<String, Value>,
    field: &str,
    values: &Value,
    path: &[&str],
) -> Result<(), PatchError> {
    let Value::Array(values) = values else {
        return Err(invalid(format!("{}: {DELETE_FROM_PRIMITIVE_LIST}{field} must be a list", render(path))));
    };
    if let Some(Value::Array(live)) = original.get_mut(field) {
        live.retain(|v| !values.iter().any(|d| json_equal(v, d)));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
