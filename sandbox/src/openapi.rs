//! OpenAPI v3 documents, reduced to what kubectl reads from them: `/openapi/v3` lists one
//! document per served group/version, and each document has the PATCH operation of every
//! resource, tagged with `x-kubernetes-group-version-kind` and the `fieldValidation` query
//! parameter. kubectl (`apply`, `create`, `replace` with `--validate`) looks for that parameter
//! to learn that the server validates fields itself, then sends `fieldValidation=Strict` instead
//! of validating against schemas on its side. No schemas are served (`components` is empty), so
//! `kubectl explain` has nothing to show.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use serde_json::{Map, Value, json};

use crate::control::ControlPlane;

/// The path of a group/version in the index: `api/v1` or `apis/{group}/{version}`.
fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

/// The `/openapi/v3` index: each group/version with the URL of its document (the hash lets
/// clients cache it, as kube-apiserver's does).
pub fn index(cp: &ControlPlane) -> Value {
    let groups = cp.registry().groups();
    let mut paths = Map::new();
    for (group, versions) in &groups {
        for version in versions {
            let path = gv_path(group, version);
            let hash = document(cp, &path).map(|d| digest(&d)).unwrap_or_default();
            paths.insert(
                path.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}")}),
            );
        }
    }
    json!({"paths": paths})
}

fn digest(doc: &Value) -> String {
    let mut h = DefaultHasher::new();
    doc.to_string().hash(&mut h);
    format!("{:016X}", h.finish())
}

/// The document of one group/version (`api/v1`, `apis/apps/v1`), if served.
pub fn document(cp: &ControlPlane, path: &str) -> Option<Value> {
    let (group, version) = match path.trim_matches('/').split('/').collect::<Vec<_>>().as_slice() {
        ["api", v] => (String::new(), (*v).to_owned()),
        ["apis", g, v] => ((*g).to_owned(), (*v).to_owned()),
        _ => return None,
    };
    let reg = cp.registry();
    let resources = reg.in_group_version(&group, &version);
    if resources.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    for r in resources {
        let prefix = format!("/{}", gv_path(&group, &version));
        let item = if r.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("{prefix}/{}/{{name}}", r.plural)
        };
        let patch = json!({
            "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}}],
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": r.kind},
        });
        paths.insert(item, json!({"patch": patch}));
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": crate::discovery::version()["gitVersion"].clone()},
        "paths": paths,
        "components": {},
    }))
}
