//! Background garbage collection through `metadata.ownerReferences`: when an owner is deleted,
//! dependents whose owners are all gone are deleted too (cascading), after their own
//! finalizers. It runs right after the owner's removal rather than on a separate worker.

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
