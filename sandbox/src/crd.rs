//! CustomResourceDefinitions: storing one starts serving its resources (every served version,
//! with status and scale subresources) and marks it `NamesAccepted` and `Established`;
//! deleting one stops serving them and deletes their objects.

use serde_json::{Value, json};

use crate::control::{ControlPlane, now_rfc3339};
use crate::meta;
use crate::resources::Registry;
use crate::store::Write;

/// Registers the CRD's resources and records its conditions.
pub fn established(cp: &ControlPlane, crd: &Value) {
    let resources = match Registry::from_crd(crd) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(crd = meta::name(crd).unwrap_or_default(), "not serving CRD: {e}");
            return;
        }
    };
    {
        let mut reg = cp.registry.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(first) = resources.first() {
            reg.remove(&first.group, &first.plural);
        }
        for r in resources {
            reg.insert(r);
        }
    }
    let already = crd
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c.get("type").and_then(Value::as_str) == Some("Established")));
    if already {
        return;
    }
    let Some(name) = meta::name(crd) else { return };
    let key = (
        "apiextensions.k8s.io".to_owned(),
        "customresourcedefinitions".to_owned(),
        String::new(),
        name.to_owned(),
    );
    let now = now_rfc3339();
    let _ = cp.store.mutate::<(), ()>(&key, |cur, _| {
        let Some(c) = cur else { return Ok((Write::Keep, ())) };
        let mut o = c.clone();
        let names = o.pointer("/spec/names").cloned().unwrap_or_else(|| json!({}));
        let stored: Vec<Value> = o
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
            .filter_map(|v| v.get("name").cloned())
            .collect();
        let cond = |t: &str, reason: &str, msg: &str| {
            json!({"type": t, "status": "True", "lastTransitionTime": now, "reason": reason, "message": msg})
        };
        o["status"] = json!({
            "acceptedNames": names,
            "storedVersions": stored,
            "conditions": [
                cond("NamesAccepted", "NoConflicts", "no conflicts found"),
                cond("Established", "InitialNamesAccepted", "the initial names have been accepted"),
            ],
        });
        Ok((Write::Put(o), ()))
    });
}

/// Stops serving the CRD's resources and deletes their objects.
pub fn removed(cp: &ControlPlane, crd: &Value) {
    let group = crd.pointer("/spec/group").and_then(Value::as_str).unwrap_or_default().to_owned();
    let plural = crd.pointer("/spec/names/plural").and_then(Value::as_str).unwrap_or_default().to_owned();
    cp.registry.write().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&group, &plural);
    for (k, _) in cp.store.all() {
        if k.0 == group && k.1 == plural {
            let _ = cp.store.mutate::<(), ()>(&k, |_, _| Ok((Write::Delete, ())));
        }
    }
}
