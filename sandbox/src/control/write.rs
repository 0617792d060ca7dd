//! How a write request becomes the object to store: applying each patch type (merge, JSON,
//! strategic, server-side apply) to the addressed object or Scale, mapping patch and apply
//! errors to API statuses, and combining the result with the current object (subresource rules,
//! immutable metadata, finalizers while deleting, generation, managed fields).

use serde_json::{Value, json};

use super::{PatchType, Sub, WriteCtx, as_served, list_keys, now_rfc3339};
use crate::meta;
use crate::patch::apply::{ApplyError, ApplyRequest, ListKeys, record_update};
use crate::resources::Resource;
use crate::status::ApiError;

pub(super) fn apply_error(res: &Resource, name: &str, e: ApplyError) -> ApiError {
    match e {
        ApplyError::Conflicts(cs) => {
            let mut err = ApiError::new(409, "Conflict", crate::patch::apply::conflicts_message(&cs));
            let causes: Vec<Value> = cs
                .iter()
                .map(|c| json!({"reason": "FieldManagerConflict", "message": c.message(), "field": c.field}))
                .collect();
            err.details =
                Some(json!({"name": name, "group": res.group, "kind": res.plural, "causes": causes}));
            err
        }
        ApplyError::Patch(p) => patch_error(p),
    }
}

fn patch_error(e: crate::patch::PatchError) -> ApiError {
    match e {
        crate::patch::PatchError::Invalid(m) => ApiError::bad_request(m),
        crate::patch::PatchError::Unprocessable(m) => ApiError::new(422, "Invalid", m),
    }
}

/// Applies one patch document to the addressed object (or Scale).
pub(super) fn apply_patch(
    res: &Resource,
    sub: Sub,
    mut target: Value,
    type_: PatchType,
    patch: &Value,
    ctx: &WriteCtx,
) -> Result<Value, ApiError> {
    match type_ {
        PatchType::Merge => crate::patch::merge::apply(&mut target, patch),
        PatchType::Json => crate::patch::json::apply(&mut target, patch).map_err(patch_error)?,
        PatchType::Strategic => {
            let (api_version, kind) = if sub == Sub::Scale {
                ("autoscaling/v1".to_owned(), "Scale".to_owned())
            } else {
                (res.api_version(), res.kind.clone())
            };
            match crate::patch::strategic::StrategicKind::for_kind(&api_version, &kind) {
                Some(k) => crate::patch::strategic::apply(&mut target, patch, &k).map_err(patch_error)?,
                None => crate::patch::merge::apply(&mut target, patch),
            }
        }
        PatchType::Apply => {
            let name = meta::name(&target).unwrap_or_default().to_owned();
            let req = ApplyRequest {
                manager: &ctx.field_manager,
                force: ctx.force,
                subresource: sub.name(),
                now: &now_rfc3339(),
                api_version: &res.api_version(),
            };
            let keys = if sub == Sub::Scale { ListKeys::atomic() } else { list_keys(res) };
            target = crate::patch::apply::apply(Some(&target), patch, &req, &keys)
                .map_err(|e| apply_error(res, &name, e))?;
        }
    }
    Ok(target)
}

/// Combines the current object with what the request proposes, honouring subresources and
/// immutable metadata; bumps generation and records managed fields.
pub(super) fn merge_for_write(
    res: &Resource,
    cur: &Value,
    proposed: Value,
    sub: Sub,
    ctx: &WriteCtx,
    record_fields: bool,
) -> Result<Value, ApiError> {
    let cur = as_served(res, cur);
    let mut new = as_served(res, &proposed);
    if !new.is_object() {
        return Err(ApiError::bad_request("the request body must be an object"));
    }
    match sub {
        Sub::Status => {
            // Only status changes through /status.
            let status = new.get("status").cloned();
            // An apply to /status has computed its own field ownership; keep it.
            let applied_fields =
                if record_fields { None } else { new.pointer("/metadata/managedFields").cloned() };
            new = cur.clone();
            if let Some(o) = new.as_object_mut() {
                match status {
                    Some(s) => o.insert("status".into(), s),
                    None => o.remove("status"),
                };
            }
            if let (Some(mf), Some(m)) = (applied_fields, meta::metadata_mut(&mut new)) {
                m.insert("managedFields".into(), mf);
            }
        }
        Sub::Main | Sub::Scale => {
            if res.status
                && let Some(o) = new.as_object_mut()
            {
                match cur.get("status") {
                    Some(s) => o.insert("status".into(), s.clone()),
                    None => o.remove("status"),
                };
            }
        }
    }
    let keep = [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ];
    let cur_meta = cur.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let m =
        meta::metadata_mut(&mut new).ok_or_else(|| ApiError::bad_request("metadata must be an object"))?;
    for f in keep {
        match cur_meta.get(f) {
            Some(v) => m.insert(f.into(), v.clone()),
            None => m.remove(f),
        };
    }
    // A deleted object may only lose finalizers, never gain new ones.
    if meta::deletion_timestamp(&cur).is_some() {
        let old: Vec<String> = meta::finalizers(&cur);
        let added: Vec<String> = meta::finalizers(&new).into_iter().filter(|f| !old.contains(f)).collect();
        if !added.is_empty() {
            return Err(ApiError::forbidden(format!(
                "no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
            )));
        }
    }
    if meta::spec_part(&new) != meta::spec_part(&cur) {
        let g = cur_meta.get("generation").and_then(Value::as_i64).unwrap_or(1);
        if let Some(m) = meta::metadata_mut(&mut new) {
            m.insert("generation".into(), json!(g + 1));
        }
    }
    crate::decode::check(res, &new)?;
    crate::decode::prune(res, &mut new, ctx)?;
    crate::defaults::apply(res, &mut new);
    if record_fields {
        // (An apply has already recorded its own ownership.)
        let now = now_rfc3339();
        record_update(
            Some(&cur),
            &mut new,
            &ctx.field_manager,
            &now,
            &res.api_version(),
            sub.name(),
            &list_keys(res),
        );
        if sub == Sub::Scale {
            super::scale::disown_zero_replicas(res, &mut new);
        }
    }
    Ok(new)
}
