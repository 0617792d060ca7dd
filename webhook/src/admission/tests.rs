//! Reviews end to end through [`Webhook::review_now`]: what is let through without rules, the
//! answer's shape (uid, allowed, status, warnings), dry runs, bad bodies and the counters.

use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::index::{Snapshot, SoIndex, SoKeys, Workload};

fn webhook() -> Webhook {
    let mut sos = SoIndex::default();
    sos.apply(
        "ns",
        "taken",
        SoKeys { target: Workload::new("apps/v1", "Deployment", "busy"), hpa: "keda-hpa-taken".into() },
    );
    Webhook::new(Arc::new(Index::new(Snapshot::synced(sos, Default::default()))), Metrics::default(), None)
}

fn so(name: &str, target: &str, min: i32) -> Value {
    json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": name, "namespace": "ns"},
        "spec": {"scaleTargetRef": {"name": target}, "minReplicaCount": min, "maxReplicaCount": 5,
            "triggers": [{"type": "cron", "metadata": {"timezone": "UTC", "start": "0 8 * * *", "end": "0 9 * * *", "desiredReplicas": "1"}}]}})
}

fn review(op: &str, kind: &str, object: Value, old: Value, extra: Value) -> Vec<u8> {
    let mut request = json!({"uid": "0f1e2d3c", "kind": {"group": "keda.sh", "version": "v1alpha1", "kind": kind},
        "resource": {"group": "keda.sh", "version": "v1alpha1", "resource": "scaledobjects"},
        "name": object["metadata"]["name"], "namespace": "ns", "operation": op,
        "userInfo": {"username": "alice"}, "object": object, "oldObject": old, "dryRun": false});
    for (k, v) in extra.as_object().into_iter().flatten() {
        request[k] = v.clone();
    }
    serde_json::to_vec(
        &json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}),
    )
    .unwrap()
}

fn answer(reply: &Reply) -> Value {
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    let v: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(v["kind"], "AdmissionReview");
    assert_eq!(v["response"]["uid"], "0f1e2d3c");
    v["response"].clone()
}

#[test]
fn allowed_and_denied_answers() {
    let w = webhook();
    let ok =
        answer(&w.review_now(&review("CREATE", "ScaledObject", so("app", "web", 0), Value::Null, json!({}))));
    assert_eq!(ok, json!({"uid": "0f1e2d3c", "allowed": true}));

    let denied = answer(&w.review_now(&review(
        "CREATE",
        "ScaledObject",
        so("app", "busy", 9),
        Value::Null,
        json!({}),
    )));
    assert_eq!(denied["allowed"], false);
    assert_eq!(denied["status"]["code"], 403);
    assert_eq!(denied["status"]["reason"], "Forbidden");
    let msg = denied["status"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with(
            "spec.minReplicaCount: minReplicaCount (9) must be less than or equal to maxReplicaCount (5); "
        ),
        "{msg}"
    );
    assert!(msg.contains("already scaled by another ScaledObject in namespace \"ns\""), "{msg}");

    let warned = so("app", "web", 2);
    let mut warned = warned;
    warned["spec"]["cooldownPeriod"] = json!(30);
    let r = answer(&w.review_now(&review("CREATE", "ScaledObject", warned, Value::Null, json!({}))));
    assert_eq!(r["allowed"], true);
    assert!(r["warnings"][0].as_str().unwrap().starts_with("spec.cooldownPeriod has no effect"), "{r}");

    assert_eq!(w.metrics.validations("ns", "create"), 3);
    assert_eq!(w.metrics.errors("ns", "create", "invalid-spec"), 1);
    assert_eq!(w.metrics.errors("ns", "create", "duplicate-target"), 1);
}

#[test]
fn never_blocked() {
    let w = webhook();
    let bad = so("app", "busy", 9);
    let mut deleting = bad.clone();
    deleting["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
    let mut finalized = bad.clone();
    finalized["metadata"]["finalizers"] = json!(["finalizer.keda.sh"]);
    finalized["metadata"]["labels"] = json!({"scaledobject.keda.sh/name": "app"});
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("delete", review("DELETE", "ScaledObject", Value::Null, bad.clone(), json!({}))),
        ("connect", review("CONNECT", "ScaledObject", bad.clone(), Value::Null, json!({}))),
        (
            "status subresource",
            review("UPDATE", "ScaledObject", bad.clone(), bad.clone(), json!({"subResource": "status"})),
        ),
        ("finalizer and label only", review("UPDATE", "ScaledObject", finalized, bad.clone(), json!({}))),
        ("being deleted", review("UPDATE", "ScaledObject", deleting, so("app", "web", 0), json!({}))),
        (
            "not ebb's kind",
            review(
                "CREATE",
                "ConfigMap",
                json!({"metadata": {"name": "x"}, "data": 1}),
                Value::Null,
                json!({"kind": {"group": "", "version": "v1", "kind": "ConfigMap"}}),
            ),
        ),
    ];
    for (name, body) in cases {
        let r = answer(&w.review_now(&body));
        assert_eq!(r, json!({"uid": "0f1e2d3c", "allowed": true}), "{name}");
    }
    assert_eq!(w.metrics.validations("ns", "update"), 0);
    // A spec change on update is reviewed.
    let r = answer(&w.review_now(&review("UPDATE", "ScaledObject", bad, so("app", "web", 0), json!({}))));
    assert_eq!(r["allowed"], false);
    assert_eq!(w.metrics.validations("ns", "update"), 1);
}

#[test]
fn dry_run_is_validated_like_a_real_request_and_changes_nothing() {
    let w = webhook();
    let before = format!("{:?}", w.index.read().sos);
    for object in [so("app", "busy", 0), so("app", "web", 0)] {
        let real = w.review_now(&review("CREATE", "ScaledObject", object.clone(), Value::Null, json!({})));
        let dry =
            w.review_now(&review("CREATE", "ScaledObject", object, Value::Null, json!({"dryRun": true})));
        assert_eq!(real, dry);
    }
    assert_eq!(format!("{:?}", w.index.read().sos), before);
}

#[test]
fn trigger_authentications_are_reviewed() {
    let w = webhook();
    let ta = |pi: Value| json!({"apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication", "metadata": {"name": "a", "namespace": "ns"}, "spec": {"podIdentity": pi}});
    let bad = ta(json!({"provider": "aws", "roleArn": "arn:aws:iam::1:role/r", "identityOwner": "workload"}));
    let r = answer(&w.review_now(&review(
        "CREATE",
        "TriggerAuthentication",
        bad.clone(),
        Value::Null,
        json!({}),
    )));
    assert_eq!(r["allowed"], false);
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap()
            .contains("roleArn: cannot be set when identityOwner is workload"),
        "{r}"
    );
    let mut cluster = bad;
    cluster["kind"] = json!("ClusterTriggerAuthentication");
    let r = answer(&w.review_now(&review(
        "CREATE",
        "ClusterTriggerAuthentication",
        cluster,
        Value::Null,
        json!({}),
    )));
    assert_eq!(r["allowed"], false);
    let r = answer(&w.review_now(&review(
        "UPDATE",
        "TriggerAuthentication",
        ta(json!({"provider": "aws"})),
        ta(json!({"provider": "none"})),
        json!({}),
    )));
    assert_eq!(r["allowed"], true);
    // Authentication reviews are not ScaledObject validations.
    assert_eq!(w.metrics.validations("ns", "create"), 0);
}

#[test]
fn unreadable_objects_and_bodies() {
    let w = webhook();
    let mut bad = so("app", "web", 0);
    bad["spec"]["triggers"] = json!("cron");
    let r = answer(&w.review_now(&review("CREATE", "ScaledObject", bad, Value::Null, json!({}))));
    assert_eq!(r["allowed"], false);
    assert_eq!(r["status"]["code"], 400);
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap()
            .starts_with("cannot read the ScaledObject: invalid type: string \"cron\", expected a sequence"),
        "{r}"
    );
    assert_eq!(w.metrics.errors("ns", "create", "undecodable"), 1);

    let r = answer(&w.review_now(&review("CREATE", "ScaledObject", Value::Null, Value::Null, json!({}))));
    assert_eq!(r["status"]["message"], "create of a ScaledObject without an object");

    for (body, want) in [
        (b"not json".to_vec(), "request body is not an AdmissionReview: expected a JSON object"),
        (
            b"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\"}".to_vec(),
            "AdmissionReview has no request",
        ),
    ] {
        let reply = w.review_now(&body);
        assert_eq!(reply.status, 400);
        assert!(!reply.is_json());
        assert_eq!(String::from_utf8(reply.body).unwrap(), want);
    }
}

#[test]
fn v1beta1_reviews_are_answered_in_kind() {
    let w = webhook();
    let mut body: Value = serde_json::from_slice(&review(
        "CREATE",
        "ScaledObject",
        so("app", "web", 0),
        Value::Null,
        json!({}),
    ))
    .unwrap();
    body["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let reply = w.review_now(&serde_json::to_vec(&body).unwrap());
    let v: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(v["apiVersion"], "admission.k8s.io/v1beta1");
    assert_eq!(v["response"]["allowed"], true);
}

#[tokio::test]
async fn unsynced_index_refuses_with_503_after_the_wait() {
    let mut w = Webhook::new(Arc::new(Index::default()), Metrics::default(), None);
    w.sync_wait = std::time::Duration::from_millis(20);
    let body = review("CREATE", "ScaledObject", so("app", "web", 0), Value::Null, json!({}));
    let r = answer(&w.review(&body).await);
    assert_eq!(r["allowed"], false);
    assert_eq!(r["status"]["code"], 503);
    // Deletes need no index.
    let r = answer(
        &w.review(&review("DELETE", "ScaledObject", Value::Null, so("app", "web", 0), json!({}))).await,
    );
    assert_eq!(r["allowed"], true);
    w.index.update(|s| {
        s.sos_synced = true;
        s.hpas_synced = true;
    });
    assert_eq!(answer(&w.review(&body).await)["allowed"], true);
}
