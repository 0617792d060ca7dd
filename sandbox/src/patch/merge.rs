//! JSON merge patch (RFC 7386, `application/merge-patch+json`).
//!
//! An object patch merges member by member into the target: a `null` member removes the key,
//! any other member is merged recursively. A non-object patch replaces the target outright,
//! so arrays are always replaced as a whole.

use serde_json::{Map, Value};

/// Applies `patch` to `target` in place. Never fails: every JSON value is a valid merge patch.
pub fn apply(target: &mut Value, patch: &Value) {
    let Value::Object(patch_members) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target_members) = target else {
        return;
    };
    for (key, value) in patch_members {
        if value.is_null() {
            // `retain` keeps member order when serde_json preserves insertion order.
            target_members.retain(|k, _| k != key);
            continue;
        }
        let slot = target_members.entry(key.clone()).or_insert(Value::Null);
        apply(slot, value);
    }
}

#[cfg(test)]
mod tests {
    use super::apply;
    use serde_json::{Value, json};

    /// The example table of RFC 7386 appendix A plus the worked example of section 3.
    #[test]
    fn rfc7386_examples() {
        let cases: Vec<(Value, Value, Value)> = vec![
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "b"}), json!({"b": "c"}), json!({"a": "b", "b": "c"})),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (json!({"a": "b", "b": "c"}), json!({"a": null}), json!({"b": "c"})),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (json!({"a": {"b": "c"}}), json!({"a": {"b": "d", "c": null}}), json!({"a": {"b": "d"}})),
            (json!({"a": [{"b": "c"}]}), json!({"a": [1]}), json!({"a": [1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
            (json!({"a": "foo"}), json!(null), json!(null)),
            (json!({"a": "foo"}), json!("bar"), json!("bar")),
            (json!({"e": null}), json!({"a": 1}), json!({"e": null, "a": 1})),
            (json!([1, 2]), json!({"a": "b", "c": null}), json!({"a": "b"})),
            (json!({}), json!({"a": {"bb": {"ccc": null}}}), json!({"a": {"bb": {}}})),
            (
                json!({
                    "title": "Goodbye!",
                    "author": {"givenName": "John", "familyName": "Doe"},
                    "tags": ["example", "sample"],
                    "content": "This will be unchanged"
                }),
                json!({
                    "title": "Hello!",
                    "phoneNumber": "+01-123-456-7890",
                    "author": {"familyName": null},
                    "tags": ["example"]
                }),
                json!({
                    "title": "Hello!",
                    "author": {"givenName": "John"},
                    "tags": ["example"],
                    "content": "This will be unchanged",
                    "phoneNumber": "+01-123-456-7890"
                }),
            ),
        ];
        for (i, (target, patch, expected)) in cases.into_iter().enumerate() {
            let mut doc = target.clone();
            apply(&mut doc, &patch);
            assert_eq!(doc, expected, "case {i}: {target} + {patch}");
        }
    }

    #[test]
    fn kubernetes_style_label_removal_keeps_siblings() {
        let mut doc = json!({
            "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}},
            "spec": {"replicas": 1}
        });
        apply(&mut doc, &json!({"metadata": {"labels": {"tier": null}}, "spec": {"replicas": 3}}));
        assert_eq!(
            doc,
            json!({
                "metadata": {"name": "web", "labels": {"app": "web"}},
                "spec": {"replicas": 3}
            })
        );
    }
}
