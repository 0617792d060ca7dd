//! Background garbage collection through `metadata.ownerReferences`: when an owner is deleted,
//! dependents whose owners are all gone are deleted too (cascading), after their own
//! finalizers. It runs right after the owner's removal rather than on a separate worker. Also
//! the deletion of a namespace's contents and the orphaning of dependents (Orphan propagation).

use serde_json::Value;

use crate::control::ControlPlane;
use crate::meta;
use crate::store::Write;

/// Deletes, in the background, the dependents left without owners by the deletion of `uid`.
pub fn collect(cp: &ControlPlane, uid: &str) {
    let orphans: Vec<_> = cp
        .store
        .all()
        .into_iter()
        .filter(|(_, o)| {
            let owners = meta::owner_uids(o);
            owners.iter().any(|u| u == uid) && owners.iter().all(|u| u == uid || !uid_exists(cp, u))
        })
        .collect();
    for (k, obj) in orphans {
        let has_finalizers = !meta::finalizers(&obj).is_empty();
        let res = cp.store.mutate::<(), ()>(&k, |cur, _| match cur {
            None => Ok((Write::Keep, ())),
            Some(c) if has_finalizers => {
                if meta::deletion_timestamp(c).is_some() {
                    return Ok((Write::Keep, ()));
                }
                let mut o = c.clone();
                if let Some(m) = meta::metadata_mut(&mut o) {
                    m.insert(
                        "deletionTimestamp".into(),
                        serde_json::Value::String(crate::control::now_rfc3339()),
                    );
                }
                Ok((Write::Put(o), ()))
            }
            Some(_) => Ok((Write::Delete, ())),
        });
        if let (Ok((_, None)), Some(child)) = (res, meta::uid(&obj)) {
            collect(cp, child);
        }
    }
}

fn uid_exists(cp: &ControlPlane, uid: &str) -> bool {
    cp.store.all().iter().any(|(_, o)| meta::uid(o) == Some(uid))
}

/// Deletes every object of namespace `ns` (and what they own).
pub fn delete_namespace_contents(cp: &ControlPlane, ns: &str) {
    for (k, obj) in cp.store.all() {
        if k.2 == ns {
            let _ = cp.store.mutate::<(), ()>(&k, |_, _| Ok((Write::Delete, ())));
            if let Some(uid) = meta::uid(&obj) {
                collect(cp, uid);
            }
        }
    }
}

/// Removes `uid` from the owner references of its dependents (Orphan propagation).
pub fn orphan_dependents(cp: &ControlPlane, uid: &str) {
    for (k, obj) in cp.store.all() {
        if meta::owner_uids(&obj).iter().any(|u| u == uid) {
            let _ = cp.store.mutate::<(), ()>(&k, |cur, _| {
                let Some(c) = cur else { return Ok((Write::Keep, ())) };
                let mut o = c.clone();
                if let Some(refs) = o.pointer_mut("/metadata/ownerReferences").and_then(Value::as_array_mut) {
                    refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid));
                }
                Ok((Write::Put(o), ()))
            });
        }
    }
}
