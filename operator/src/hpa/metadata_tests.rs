//! The HPA's metadata: the ScaledObject's labels and annotations copied as KEDA copies them
//! (minus `hpa-excluded-labels`, ebb's own labels winning), their removal from the apply body,
//! the fingerprint that makes a metadata-only change reconcile, and the `app.kubernetes.io/name`
//! label value cut to 63 characters.

use ebb_api::constants::ANNOTATION_HPA_EXCLUDED_LABELS;
use serde_json::json;

use super::tests::{CRON, hpa_json, parsed, so_from};
use super::*;

#[test]
fn labels_merge_with_ebb_labels_winning() {
    let mut so = so_from(CRON);
    so.metadata.labels = Some(BTreeMap::from([
        ("team".to_owned(), "payments".to_owned()),
        ("app.kubernetes.io/managed-by".to_owned(), "Helm".to_owned()),
        ("scaledobject.keda.sh/name".to_owned(), "stale".to_owned()),
    ]));
    let labels = desired_hpa(&so, &parsed(&so)).unwrap().metadata.labels.unwrap();
    assert_eq!(labels.get("team").map(String::as_str), Some("payments"));
    assert_eq!(labels.get("app.kubernetes.io/managed-by").map(String::as_str), Some("ebb-operator"));
    assert_eq!(labels.get("scaledobject.keda.sh/name").map(String::as_str), Some("php-apache-cron-scaled"));
    assert_eq!(labels.len(), 6);
}

/// The labels ebb puts on the HPA of the seed cron object, with `extra` added.
fn ebb_labels(extra: serde_json::Value) -> serde_json::Value {
    let mut l = json!({
        "app.kubernetes.io/managed-by": "ebb-operator",
        "app.kubernetes.io/name": "keda-hpa-php-apache-cron-scaled",
        "app.kubernetes.io/part-of": "php-apache-cron-scaled",
        "app.kubernetes.io/version": VERSION,
        "scaledobject.keda.sh/name": "php-apache-cron-scaled",
    });
    if let (Some(l), Some(extra)) = (l.as_object_mut(), extra.as_object()) {
        l.extend(extra.clone());
    }
    l
}

/// The HPA's labels and annotations, written out from KEDA's rule (controllers/keda/hpa.go,
/// `newHPAForScaledObject`, and the ScaledObject spec page): every ScaledObject label is copied
/// except the keys listed in `scaledobject.keda.sh/hpa-excluded-labels` (the annotation's value
/// split on `,`, entries taken as they are); every ScaledObject annotation is copied as it is,
/// `kubectl.kubernetes.io/last-applied-configuration` and the exclusion annotation included;
/// no annotations on the ScaledObject, none on the HPA. ebb's own labels are always set.
#[test]
fn labels_and_annotations_are_copied_as_keda_copies_them() {
    const EXCLUDED: &str = "scaledobject.keda.sh/hpa-excluded-labels";
    const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
    // (case, ScaledObject labels, ScaledObject annotations, HPA labels, HPA annotations)
    let table = [
        (
            "labels copied, no annotations on either",
            json!({"team": "payments"}),
            json!(null),
            ebb_labels(json!({"team": "payments"})),
            json!(null),
        ),
        (
            "every annotation copied verbatim, kubectl's and KEDA's own included",
            json!({}),
            json!({LAST_APPLIED: "{\"apiVersion\":\"keda.sh/v1alpha1\",\"kind\":\"ScaledObject\"}\n",
                   "example.com/owner": "team-a",
                   "scaledobject.keda.sh/transfer-hpa-ownership": "false",
                   "validations.keda.sh/hpa-ownership": "true"}),
            ebb_labels(json!({})),
            json!({LAST_APPLIED: "{\"apiVersion\":\"keda.sh/v1alpha1\",\"kind\":\"ScaledObject\"}\n",
                   "example.com/owner": "team-a",
                   "scaledobject.keda.sh/transfer-hpa-ownership": "false",
                   "validations.keda.sh/hpa-ownership": "true"}),
        ),
        (
            "KEDA's documented example: listed labels left out, the annotation itself copied",
            json!({"team": "backend", "foo.bar/environment": "bf5011472247b67cce3ee7b24c9a08c5",
                   "foo.bar/version": "1"}),
            json!({EXCLUDED: "foo.bar/environment,foo.bar/version"}),
            ebb_labels(json!({"team": "backend"})),
            json!({EXCLUDED: "foo.bar/environment,foo.bar/version"}),
        ),
        (
            "entries are not trimmed: \" env\" excludes nothing",
            json!({"team": "backend", "env": "prod"}),
            json!({EXCLUDED: "team, env"}),
            ebb_labels(json!({"env": "prod"})),
            json!({EXCLUDED: "team, env"}),
        ),
        (
            "empty value and empty entries exclude nothing",
            json!({"team": "backend"}),
            json!({EXCLUDED: ",,"}),
            ebb_labels(json!({"team": "backend"})),
            json!({EXCLUDED: ",,"}),
        ),
        (
            "a listed key the ScaledObject does not carry changes nothing",
            json!({"team": "backend"}),
            json!({EXCLUDED: "tanka.dev/environment"}),
            ebb_labels(json!({"team": "backend"})),
            json!({EXCLUDED: "tanka.dev/environment"}),
        ),
        (
            "ebb's own labels stay, listed or overridden on the ScaledObject",
            json!({"scaledobject.keda.sh/name": "stale", "app.kubernetes.io/managed-by": "Helm",
                   "app.kubernetes.io/part-of": "shop"}),
            json!({EXCLUDED: "scaledobject.keda.sh/name,app.kubernetes.io/managed-by"}),
            ebb_labels(json!({})),
            json!({EXCLUDED: "scaledobject.keda.sh/name,app.kubernetes.io/managed-by"}),
        ),
    ];
    let mut failures = Vec::new();
    for (case, labels, annotations, want_labels, want_annotations) in table {
        let mut so = so_from(CRON);
        so.metadata.labels = serde_json::from_value(labels).unwrap();
        so.metadata.annotations = serde_json::from_value(annotations).unwrap();
        let got = hpa_json(&so);
        let got = (&got["metadata"]["labels"], got["metadata"].get("annotations").unwrap_or(&json!(null)));
        if got != (&want_labels, &want_annotations) {
            failures.push(format!(
                "{case}:\n  got labels {}\n  annotations {}\n  want labels {want_labels}\n  annotations {want_annotations}",
                got.0, got.1
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A label listed in `hpa-excluded-labels` after the HPA was applied leaves the apply body. The
/// HPA is written by server-side apply with one field manager, which owns every label and
/// annotation it applied: a key missing from the next body is removed from the HPA by the API
/// server (unless another manager also set it).
#[test]
fn a_label_excluded_later_leaves_the_apply_body() {
    let mut so = so_from(CRON);
    so.metadata.labels = Some(BTreeMap::from([
        ("team".to_owned(), "payments".to_owned()),
        ("tanka.dev/environment".to_owned(), "bf50".to_owned()),
    ]));
    let before = hpa_json(&so);
    assert_eq!(before["metadata"]["labels"]["tanka.dev/environment"], "bf50");
    so.metadata.annotations = Some(BTreeMap::from([(
        ANNOTATION_HPA_EXCLUDED_LABELS.to_owned(),
        "tanka.dev/environment".to_owned(),
    )]));
    let after = hpa_json(&so);
    assert_eq!(after["metadata"]["labels"], ebb_labels(json!({"team": "payments"})));
    assert_eq!(
        after["metadata"]["annotations"],
        json!({"scaledobject.keda.sh/hpa-excluded-labels": "tanka.dev/environment"})
    );
}

/// The metadata fingerprint changes exactly when the HPA's labels or annotations would.
#[test]
fn metadata_fingerprint_follows_what_the_hpa_carries() {
    let base = so_from(CRON);
    let fp = metadata_fingerprint(&base);
    // (change, labels, annotations, HPA metadata changes)
    let table = [
        (
            "the operator's own label on the ScaledObject",
            json!({"scaledobject.keda.sh/name": "php-apache-cron-scaled"}),
            json!(null),
            false,
        ),
        ("a label overridden by ebb's", json!({"app.kubernetes.io/managed-by": "Helm"}), json!(null), false),
        ("a new label", json!({"team": "payments"}), json!(null), true),
        ("a new annotation", json!(null), json!({"example.com/owner": "team-a"}), true),
        (
            "an exclusion of a label it does not have",
            json!(null),
            json!({ANNOTATION_HPA_EXCLUDED_LABELS: "team"}),
            true,
        ),
    ];
    for (case, labels, annotations, changes) in table {
        let mut so = base.clone();
        so.metadata.labels = serde_json::from_value(labels).unwrap();
        so.metadata.annotations = serde_json::from_value(annotations).unwrap();
        assert_eq!(metadata_fingerprint(&so) != fp, changes, "{case}");
    }
    // An excluded label: the fingerprint is the one without that label.
    let mut with = base.clone();
    with.metadata.annotations = Some(BTreeMap::from([(
        ANNOTATION_HPA_EXCLUDED_LABELS.to_owned(),
        "tanka.dev/environment".to_owned(),
    )]));
    let without = metadata_fingerprint(&with);
    with.metadata.labels = Some(BTreeMap::from([("tanka.dev/environment".to_owned(), "bf50".to_owned())]));
    assert_eq!(metadata_fingerprint(&with), without);
}

#[test]
fn long_hpa_name_label_is_cut_to_a_valid_label_value() {
    let cases = [
        ("a".repeat(63), "a".repeat(63)),
        (format!("{}-x", "b".repeat(62)), "b".repeat(62)),
        (format!("{}.-zz", "c".repeat(61)), "c".repeat(61)),
        ("short".to_owned(), "short".to_owned()),
    ];
    for (name, want) in cases {
        assert_eq!(label_value(&name), want, "{name}");
    }
}
