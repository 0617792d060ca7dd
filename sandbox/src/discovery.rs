//! Discovery documents: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/{group}` and
//! `/apis/{group}/{version}`, built from the registry (built-ins, CRDs) and the registered
//! APIServices of aggregated groups. Served as plain JSON; clients asking for aggregated
//! discovery first (kubectl) accept it.

use serde_json::{Value, json};

use crate::control::ControlPlane;
use crate::meta;

pub fn version() -> Value {
    json!({
        "major": "1", "minor": "33", "gitVersion": "v1.33.0-ebb-sandbox", "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "n/a (Rust)", "compiler": "rustc",
        "platform": "linux/amd64",
    })
}

pub fn core_versions(server_address: &str) -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]})
}

/// Aggregated (group, version) pairs from APIService objects with a service.
pub fn aggregated(cp: &ControlPlane) -> Vec<(String, String)> {
    let (items, _) = cp.store.list("apiregistration.k8s.io", "apiservices", None);
    items
        .iter()
        .filter(|(_, o)| o.pointer("/spec/service").is_some_and(|s| !s.is_null()))
        .filter_map(|(_, o)| {
            Some((
                o.pointer("/spec/group")?.as_str()?.to_owned(),
                o.pointer("/spec/version")?.as_str()?.to_owned(),
            ))
        })
        .collect()
}

fn group_doc(name: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> =
        versions.iter().map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v})).collect();
    let preferred = vs.first().cloned().unwrap_or(Value::Null);
    json!({"name": name, "versions": vs, "preferredVersion": preferred})
}

pub fn groups(cp: &ControlPlane) -> Value {
    let mut all = cp.registry().groups();
    for (g, v) in aggregated(cp) {
        let vs = all.entry(g).or_default();
        if !vs.contains(&v) {
            vs.push(v);
        }
    }
    let groups: Vec<Value> =
        all.iter().filter(|(g, _)| !g.is_empty()).map(|(g, vs)| group_doc(g, vs)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn group(cp: &ControlPlane, name: &str) -> Option<Value> {
    let g = groups(cp);
    let found = g["groups"].as_array()?.iter().find(|x| x["name"] == name)?.clone();
    let mut doc = found;
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

pub fn resources(cp: &ControlPlane, group: &str, version: &str) -> Option<Value> {
    let reg = cp.registry();
    let rs = reg.in_group_version(group, version);
    if rs.is_empty() {
        return None;
    }
    let list: Vec<Value> = rs.iter().flat_map(|r| r.discovery()).collect();
    let gv = if group.is_empty() { version.to_owned() } else { format!("{group}/{version}") };
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list}))
}

/// Whether an APIService claims this group/version (then requests are proxied).
pub fn apiservice_for(cp: &ControlPlane, group: &str, version: &str) -> Option<Value> {
    let name = format!("{version}.{group}");
    let key = ("apiregistration.k8s.io".to_owned(), "apiservices".to_owned(), String::new(), name);
    let svc = cp.store.get(&key)?;
    (svc.pointer("/spec/service").is_some_and(|s| !s.is_null()) && meta::name(&svc).is_some())
        .then(|| (*svc).clone())
}
