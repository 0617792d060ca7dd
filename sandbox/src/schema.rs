//! Unknown fields of a custom resource against its CRD's structural schema, found the way
//! kube-apiserver prunes them: under `properties` a key the schema does not name is unknown
//! unless the node has `additionalProperties` (a map: every value is checked against that
//! schema) or `x-kubernetes-preserve-unknown-fields: true` (kept as written); `items` applies to
//! each element of an array. `apiVersion`, `kind` and `metadata` at the root are not the
//! schema's. Paths are written as kube-apiserver writes them in its `unknown field "…"`
//! messages: `spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.policies[0].tolerance`.

use serde_json::Value;

/// Removes every field `schema` (an `openAPIV3Schema`) does not allow from `obj` and returns
/// their paths, sorted.
pub fn prune(schema: &Value, obj: &mut Value) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(o) = obj.as_object_mut() {
        let props = schema.get("properties").and_then(Value::as_object);
        let keys: Vec<String> = o.keys().cloned().collect();
        for k in keys {
            if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            match props.and_then(|p| p.get(&k)) {
                Some(s) => {
                    if let Some(v) = o.get_mut(&k) {
                        walk(s, v, &k, &mut found);
                    }
                }
                None => {
                    o.remove(&k);
                    found.push(k);
                }
            }
        }
    }
    found.sort();
    found
}

/// The paths [`prune`] would remove, leaving `obj` as it is.
pub fn unknown_fields(schema: &Value, obj: &Value) -> Vec<String> {
    prune(schema, &mut obj.clone())
}

fn walk(schema: &Value, v: &mut Value, path: &str, found: &mut Vec<String>) {
    if schema.get("x-kubernetes-preserve-unknown-fields").and_then(Value::as_bool) == Some(true)
        && schema.get("properties").is_none()
        && schema.get("items").is_none()
    {
        return;
    }
    let preserve = schema.get("x-kubernetes-preserve-unknown-fields").and_then(Value::as_bool) == Some(true);
    match v {
        Value::Object(o) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            let keys: Vec<String> = o.keys().cloned().collect();
            for k in keys {
                let child = format!("{path}.{k}");
                let s = props.and_then(|p| p.get(&k)).or(additional.filter(|a| a.is_object()));
                match s {
                    Some(s) => {
                        if let Some(v) = o.get_mut(&k) {
                            walk(s, v, &child, found);
                        }
                    }
                    None if preserve || additional.and_then(Value::as_bool) == Some(true) => {}
                    None => {
                        o.remove(&k);
                        found.push(child);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    walk(s, item, &format!("{path}[{i}]"), found);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn unknown_fields_are_found_at_every_level_and_maps_and_preserved_nodes_keep_theirs() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "pollingInterval": {"type": "integer"},
            "policies": {"type": "array", "items": {"type": "object", "properties": {"type": {"type": "string"}}}},
            "metadata": {"type": "object", "additionalProperties": {"x-kubernetes-preserve-unknown-fields": true}},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "labels": {"type": "object", "additionalProperties": {"type": "object", "properties": {"a": {}}}}
        }}}});
        let mut obj = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n"}, "spec": {
            "pollingIntervall": 1, "pollingInterval": 2,
            "policies": [{"type": "Pods"}, {"type": "Pods", "tolerance": 0.1}],
            "metadata": {"anything": {"nested": 1}},
            "free": {"x": {"y": 1}},
            "labels": {"k": {"a": 1, "b": 2}}
        }, "extra": true});
        let removed = prune(&schema, &mut obj);
        assert_eq!(
            removed,
            ["extra", "spec.labels.k.b", "spec.policies[1].tolerance", "spec.pollingIntervall"]
        );
        assert_eq!(obj["spec"]["metadata"]["anything"]["nested"], 1);
        assert_eq!(obj["spec"]["free"]["x"]["y"], 1);
        assert_eq!(obj["spec"]["policies"][1], json!({"type": "Pods"}));
        assert_eq!(obj["metadata"]["name"], "n");
    }
}
