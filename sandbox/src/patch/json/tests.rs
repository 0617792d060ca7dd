//! Tests for the RFC 6902 JSON patch engine.

use serde_json::{Value, json};

use super::apply;
use crate::patch::PatchError;

/// Expected outcome of a patch in the tables below.
enum Outcome {
    Doc(Value),
    Invalid,
    Unprocessable,
}

fn check(cases: Vec<(&str, Value, Value, Outcome)>) {
    for (name, target, patch, outcome) in cases {
        let mut doc = target.clone();
        let result = apply(&mut doc, &patch);
        match outcome {
            Outcome::Doc(expected) => {
                assert_eq!(result, Ok(()), "{name}");
                assert_eq!(doc, expected, "{name}");
            }
            Outcome::Invalid => {
                assert!(
                    matches!(result, Err(PatchError::Invalid(_))),
                    "{name}: expected Invalid, got {result:?}"
                );
                assert_eq!(doc, target, "{name}: target must be unchanged");
            }
            Outcome::Unprocessable => {
                assert!(
                    matches!(result, Err(PatchError::Unprocessable(_))),
                    "{name}: expected Unprocessable, got {result:?}"
                );
                assert_eq!(doc, target, "{name}: target must be unchanged");
            }
        }
    }
}

#[test]
fn rfc6902_appendix_a() {
    use Outcome::*;
    check(vec![
        (
            "A.1 add object member",
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/baz", "value": "qux"}]),
            Doc(json!({"baz": "qux", "foo": "bar"})),
        ),
        (
            "A.2 add array element",
            json!({"foo": ["bar", "baz"]}),
            json!([{"op": "add", "path": "/foo/1", "value": "qux"}]),
            Doc(json!({"foo": ["bar", "qux", "baz"]})),
        ),
        (
            "A.3 remove object member",
            json!({"baz": "qux", "foo": "bar"}),
            json!([{"op": "remove", "path": "/baz"}]),
            Doc(json!({"foo": "bar"})),
        ),
        (
            "A.4 remove array element",
            json!({"foo": ["bar", "qux", "baz"]}),
            json!([{"op": "remove", "path": "/foo/1"}]),
            Doc(json!({"foo": ["bar", "baz"]})),
        ),
        (
            "A.5 replace value",
            json!({"baz": "qux", "foo": "bar"}),
            json!([{"op": "replace", "path": "/baz", "value": "boo"}]),
            Doc(json!({"baz": "boo", "foo": "bar"})),
        ),
        (
            "A.6 move value",
            json!({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}}),
            json!([{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}]),
            Doc(json!({"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}})),
        ),
        (
            "A.7 move array element",
            json!({"foo": ["all", "grass", "cows", "eat"]}),
            json!([{"op": "move", "from": "/foo/1", "path": "/foo/3"}]),
            Doc(json!({"foo": ["all", "cows", "eat", "grass"]})),
        ),
        (
            "A.8 test success",
            json!({"baz": "qux", "foo": ["a", 2, "c"]}),
            json!([
                {"op": "test", "path": "/baz", "value": "qux"},
                {"op": "test", "path": "/foo/1", "value": 2}
            ]),
            Doc(json!({"baz": "qux", "foo": ["a", 2, "c"]})),
        ),
        (
            "A.9 test error",
            json!({"baz": "qux"}),
            json!([{"op": "test", "path": "/baz", "value": "bar"}]),
            Unprocessable,
        ),
        (
            "A.10 add nested member object",
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/child", "value": {"grandchild": {}}}]),
            Doc(json!({"foo": "bar", "child": {"grandchild": {}}})),
        ),
        (
            "A.11 ignore unrecognized members",
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}]),
            Doc(json!({"foo": "bar", "baz": "qux"})),
        ),
        (
            "A.12 add to nonexistent target",
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/baz/bat", "value": "qux"}]),
            Unprocessable,
        ),
        (
            "A.14 ~ escape ordering",
            json!({"/": 9, "~1": 10}),
            json!([{"op": "test", "path": "/~01", "value": 10}]),
            Doc(json!({"/": 9, "~1": 10})),
        ),
        (
            "A.15 strings and numbers differ",
            json!({"/": 9, "~1": 10}),
            json!([{"op": "test", "path": "/~01", "value": "10"}]),
            Unprocessable,
        ),
        (
            "A.16 add array value",
            json!({"foo": ["bar"]}),
            json!([{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}]),
            Doc(json!({"foo": ["bar", ["abc", "def"]]})),
        ),
    ]);
}

#[test]
fn operations_beyond_the_appendix() {
    use Outcome::*;
    check(vec![
        (
            "copy object member",
            json!({"a": {"b": [1, 2]}}),
            json!([{"op": "copy", "from": "/a/b", "path": "/c"}]),
            Doc(json!({"a": {"b": [1, 2]}, "c": [1, 2]})),
        ),
        (
            "copy into array position",
            json!({"a": [1, 2], "x": 9}),
            json!([{"op": "copy", "from": "/x", "path": "/a/0"}]),
            Doc(json!({"a": [9, 1, 2], "x": 9})),
        ),
        (
            "add replaces an existing member",
            json!({"a": 1}),
            json!([{"op": "add", "path": "/a", "value": 2}]),
            Doc(json!({"a": 2})),
        ),
        (
            "add at array end index",
            json!({"a": [1]}),
            json!([{"op": "add", "path": "/a/1", "value": 2}]),
            Doc(json!({"a": [1, 2]})),
        ),
        (
            "add replaces the whole document",
            json!({"a": 1}),
            json!([{"op": "add", "path": "", "value": [1]}]),
            Doc(json!([1])),
        ),
        (
            "replace the whole document",
            json!({"a": 1}),
            json!([{"op": "replace", "path": "", "value": {"b": 2}}]),
            Doc(json!({"b": 2})),
        ),
        (
            "empty-string key",
            json!({"": 1}),
            json!([{"op": "replace", "path": "/", "value": 2}]),
            Doc(json!({"": 2})),
        ),
        (
            "slash in key via ~1",
            json!({"metadata": {"labels": {"app.kubernetes.io/name": "x"}}}),
            json!([{"op": "remove", "path": "/metadata/labels/app.kubernetes.io~1name"}]),
            Doc(json!({"metadata": {"labels": {}}})),
        ),
        (
            "test compares numbers numerically",
            json!({"a": 1}),
            json!([{"op": "test", "path": "/a", "value": 1.0}]),
            Doc(json!({"a": 1})),
        ),
        (
            "test ignores member order and recurses",
            json!({"a": {"x": [1, {"y": 2}], "z": null}}),
            json!([{"op": "test", "path": "/a", "value": {"z": null, "x": [1.0, {"y": 2}]}}]),
            Doc(json!({"a": {"x": [1, {"y": 2}], "z": null}})),
        ),
        (
            "move to the same location is a no-op",
            json!({"a": 1}),
            json!([{"op": "move", "from": "/a", "path": "/a"}]),
            Doc(json!({"a": 1})),
        ),
        (
            "move a parent up over itself",
            json!({"a": {"b": {"c": 1}}}),
            json!([{"op": "move", "from": "/a/b", "path": "/a"}]),
            Doc(json!({"a": {"c": 1}})),
        ),
        (
            "value null is a value",
            json!({}),
            json!([{"op": "add", "path": "/a", "value": null}]),
            Doc(json!({"a": null})),
        ),
        (
            "kubectl-style positional image change",
            json!({"spec": {"containers": [{"name": "c", "image": "old"}]}}),
            json!([{"op": "replace", "path": "/spec/containers/0/image", "value": "new"}]),
            Doc(json!({"spec": {"containers": [{"name": "c", "image": "new"}]}})),
        ),
    ]);
}

#[test]
fn errors_are_classified_and_leave_the_target_unchanged() {
    use Outcome::*;
    let doc = json!({"a": {"b": 1}, "list": [1, 2]});
    check(vec![
        ("patch is not an array", doc.clone(), json!({"op": "add"}), Invalid),
        ("operation is not an object", doc.clone(), json!(["add"]), Invalid),
        ("missing op", doc.clone(), json!([{"path": "/a"}]), Invalid),
        ("missing path", doc.clone(), json!([{"op": "remove"}]), Invalid),
        ("path not a string", doc.clone(), json!([{"op": "remove", "path": 1}]), Invalid),
        ("add without value", doc.clone(), json!([{"op": "add", "path": "/x"}]), Invalid),
        ("move without from", doc.clone(), json!([{"op": "move", "path": "/x"}]), Invalid),
        ("pointer without leading slash", doc.clone(), json!([{"op": "remove", "path": "a"}]), Invalid),
        ("bad escape", doc.clone(), json!([{"op": "remove", "path": "/a~2"}]), Invalid),
        ("unknown op", doc.clone(), json!([{"op": "frobnicate", "path": "/a"}]), Unprocessable),
        ("remove missing member", doc.clone(), json!([{"op": "remove", "path": "/a/c"}]), Unprocessable),
        (
            "replace missing member",
            doc.clone(),
            json!([{"op": "replace", "path": "/z", "value": 1}]),
            Unprocessable,
        ),
        ("remove the whole document", doc.clone(), json!([{"op": "remove", "path": ""}]), Unprocessable),
        (
            "add past array end",
            doc.clone(),
            json!([{"op": "add", "path": "/list/3", "value": 0}]),
            Unprocessable,
        ),
        ("remove with dash index", doc.clone(), json!([{"op": "remove", "path": "/list/-"}]), Unprocessable),
        (
            "leading zero index",
            doc.clone(),
            json!([{"op": "replace", "path": "/list/01", "value": 0}]),
            Unprocessable,
        ),
        (
            "move into own child",
            doc.clone(),
            json!([{"op": "move", "from": "/a", "path": "/a/b/c"}]),
            Unprocessable,
        ),
        (
            "copy from missing location",
            doc.clone(),
            json!([{"op": "copy", "from": "/nope", "path": "/x"}]),
            Unprocessable,
        ),
        (
            "add below a scalar",
            doc.clone(),
            json!([{"op": "add", "path": "/a/b/c", "value": 1}]),
            Unprocessable,
        ),
    ]);
}

#[test]
fn failing_operation_rolls_back_earlier_ones() {
    let original = json!({"metadata": {"resourceVersion": "7"}, "spec": {"replicas": 1}});
    let mut doc = original.clone();
    let patch = json!([
        {"op": "replace", "path": "/spec/replicas", "value": 5},
        {"op": "add", "path": "/spec/paused", "value": true},
        {"op": "test", "path": "/metadata/resourceVersion", "value": "8"}
    ]);
    let err = apply(&mut doc, &patch).unwrap_err();
    assert!(matches!(err, PatchError::Unprocessable(ref m) if m.starts_with("operation 2:")));
    assert_eq!(doc, original);

    let ok = json!([
        {"op": "test", "path": "/metadata/resourceVersion", "value": "7"},
        {"op": "replace", "path": "/spec/replicas", "value": 5}
    ]);
    apply(&mut doc, &ok).unwrap();
    assert_eq!(doc["spec"]["replicas"], json!(5));
}
