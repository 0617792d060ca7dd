//! Property test of the review handler: no input makes it panic, and every answer is either a
//! 400 with a message or an AdmissionReview echoing the request's uid. Inputs are arbitrary
//! bytes, arbitrary JSON, byte edits of valid reviews and structured mutations of valid reviews
//! (values replaced by arbitrary JSON, keys removed or added) of ScaledObjects and
//! (Cluster)TriggerAuthentications. `EBB_FUZZ_CASES` sets the number of cases (default 3000);
//! the run prints how many ran and how long they took.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Instant;

use ebb_webhook::admission::Webhook;
use ebb_webhook::index::{HpaIndex, HpaKeys, Index, Snapshot, SoIndex, SoKeys, Workload};
use ebb_webhook::metrics::Metrics;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};

fn webhook() -> Webhook {
    let mut sos = SoIndex::default();
    let mut hpas = HpaIndex::default();
    for i in 0..50 {
        let target = Workload::new("apps/v1", "Deployment", &format!("web-{i}"));
        sos.apply(
            "default",
            &format!("so-{i}"),
            SoKeys { target: target.clone(), hpa: format!("keda-hpa-so-{i}").into() },
        );
        hpas.apply(
            "default",
            &format!("hpa-{i}"),
            HpaKeys { target, owner: None, validation_off: i % 2 == 0 },
        );
    }
    Webhook::new(Arc::new(Index::new(Snapshot::synced(sos, hpas))), Metrics::default(), None)
}

fn envelope(op: &str, kind: &str, object: Value, old: Value) -> Value {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": "keda.sh", "version": "v1alpha1", "kind": kind},
        "resource": {"group": "keda.sh", "version": "v1alpha1", "resource": "x"},
        "name": "app", "namespace": "default", "operation": op, "userInfo": {"username": "admin", "groups": ["system:masters"]},
        "object": object, "oldObject": old, "dryRun": false, "options": {"kind": "CreateOptions"}}})
}

/// Valid reviews the mutations start from.
fn templates() -> Vec<Value> {
    let so = json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": "app", "namespace": "default", "annotations": {"autoscaling.keda.sh/paused-replicas": "1"}},
        "spec": {"scaleTargetRef": {"name": "web-1"}, "minReplicaCount": 1, "maxReplicaCount": 5, "pollingInterval": 5,
            "fallback": {"failureThreshold": 3, "replicas": 2},
            "advanced": {"horizontalPodAutoscalerConfig": {"name": "h", "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}},
                "scalingModifiers": {"formula": "a + b", "target": "2"}},
            "triggers": [
                {"type": "cron", "name": "a", "metadata": {"timezone": "Asia/Seoul", "start": "00,15 * * * *", "end": "05,20 * * * *", "desiredReplicas": "1"}},
                {"type": "kafka", "name": "b", "metadata": {"bootstrapServers": "k:9092", "consumerGroup": "g", "allowIdleConsumers": false, "lagThreshold": 5}},
                {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "50"}}]}});
    let ta = json!({"apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication", "metadata": {"name": "t", "namespace": "default"},
        "spec": {"podIdentity": {"provider": "aws", "roleArn": "arn:aws:iam::1:role/r", "identityOwner": "keda"},
            "secretTargetRef": [{"parameter": "password", "name": "s", "key": "k"}],
            "env": [{"parameter": "password", "name": "P", "containerName": "c"}]}});
    let mut cta = ta.clone();
    cta["kind"] = json!("ClusterTriggerAuthentication");
    let mut old = so.clone();
    old["spec"]["minReplicaCount"] = json!(0);
    vec![
        envelope("CREATE", "ScaledObject", so.clone(), Value::Null),
        envelope("UPDATE", "ScaledObject", so.clone(), old),
        envelope("DELETE", "ScaledObject", Value::Null, so),
        envelope("CREATE", "TriggerAuthentication", ta, Value::Null),
        envelope("CREATE", "ClusterTriggerAuthentication", cta, Value::Null),
    ]
}

const KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "request",
    "uid",
    "operation",
    "object",
    "oldObject",
    "metadata",
    "spec",
    "name",
    "namespace",
    "annotations",
    "triggers",
    "type",
    "metadata",
    "scaleTargetRef",
    "minReplicaCount",
    "idleReplicaCount",
    "advanced",
    "fallback",
    "podIdentity",
    "deletionTimestamp",
    "subResource",
    "dryRun",
];

const WORDS: &[&str] = &[
    "cron",
    "cpu",
    "memory",
    "kafka",
    "aws",
    "workload",
    "CREATE",
    "UPDATE",
    "DELETE",
    "ScaledObject",
    "TriggerAuthentication",
    "keda.sh",
    "0 8 * * *",
    "UTC",
    "false",
    "true",
    "Utilization",
    "status",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![3 => prop::sample::select(KEYS).prop_map(str::to_owned), 1 => ".{0,8}"]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        prop_oneof![Just(-1i64), Just(0), Just(1), Just(63), Just(64), Just(i64::from(i32::MAX) + 1)]
            .prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        ".{0,16}".prop_map(Value::String),
        prop::sample::select(WORDS).prop_map(|s| Value::String(s.to_owned())),
        Just(Value::String("x".repeat(70))),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

#[derive(Clone, Debug)]
enum Op {
    Replace(Value),
    Remove,
    Insert(String, Value),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => json_value().prop_map(Op::Replace),
        2 => Just(Op::Remove),
        2 => (key(), json_value()).prop_map(|(k, v)| Op::Insert(k, v)),
    ]
}

/// Walks `path` (each step picks a child by index modulo the count) and applies `op` there.
fn mutate(v: &mut Value, path: &[usize], op: &Op) {
    let (step, rest) = match path.split_first() {
        Some((s, r))
            if matches!(v, Value::Object(m) if !m.is_empty())
                || matches!(v, Value::Array(a) if !a.is_empty()) =>
        {
            (*s, r)
        }
        _ => {
            match op {
                Op::Replace(new) => *v = new.clone(),
                Op::Remove => *v = Value::Null,
                Op::Insert(k, new) => match v {
                    Value::Object(m) => {
                        m.insert(k.clone(), new.clone());
                    }
                    Value::Array(a) => a.push(new.clone()),
                    other => *other = new.clone(),
                },
            }
            return;
        }
    };
    match v {
        Value::Object(m) => {
            let k = m.keys().nth(step % m.len()).cloned().unwrap_or_default();
            if rest.is_empty() && matches!(op, Op::Remove) {
                m.remove(&k);
            } else if let Some(child) = m.get_mut(&k) {
                mutate(child, rest, op);
            }
        }
        Value::Array(a) => {
            let i = step % a.len();
            if rest.is_empty() && matches!(op, Op::Remove) {
                a.remove(i);
            } else {
                mutate(&mut a[i], rest, op);
            }
        }
        _ => {}
    }
}

#[derive(Clone, Debug)]
enum Input {
    Bytes(Vec<u8>),
    Json(Value),
    ByteEdits {
        template: usize,
        edits: Vec<(usize, u8)>,
        truncate: Option<usize>,
    },
    /// `(region, path, op)`: region 0 is the whole review, 1 the request, otherwise the object.
    Mutations {
        template: usize,
        mutations: Vec<(u8, Vec<usize>, Op)>,
    },
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..512).prop_map(Input::Bytes),
        1 => json_value().prop_map(Input::Json),
        2 => (0..5usize, prop::collection::vec((any::<usize>(), any::<u8>()), 0..4), prop::option::of(any::<usize>()))
            .prop_map(|(template, edits, truncate)| Input::ByteEdits { template, edits, truncate }),
        6 => (0..5usize, prop::collection::vec((0..5u8, prop::collection::vec(any::<usize>(), 0..7), op()), 1..4))
            .prop_map(|(template, mutations)| Input::Mutations { template, mutations }),
    ]
}

fn render(input: &Input, templates: &[Vec<u8>], values: &[Value]) -> Vec<u8> {
    match input {
        Input::Bytes(b) => b.clone(),
        Input::Json(v) => serde_json::to_vec(v).unwrap(),
        Input::ByteEdits { template, edits, truncate } => {
            let mut b = templates[*template].clone();
            for (at, byte) in edits {
                let i = at % b.len();
                b[i] = *byte;
            }
            if let Some(t) = truncate {
                b.truncate(t % (b.len() + 1));
            }
            b
        }
        Input::Mutations { template, mutations } => {
            let mut v = values[*template].clone();
            for (region, path, op) in mutations {
                let at = match region {
                    0 => Some(&mut v),
                    1 => v.get_mut("request"),
                    _ => v.get_mut("request").and_then(|r| r.get_mut("object")),
                };
                if let Some(at) = at {
                    mutate(at, path, op);
                }
            }
            serde_json::to_vec(&v).unwrap()
        }
    }
}

#[test]
fn no_input_makes_the_handler_panic_or_answer_out_of_shape() {
    let cases: u32 = std::env::var("EBB_FUZZ_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(3000);
    let webhook = webhook();
    let values = templates();
    let templates: Vec<Vec<u8>> = values.iter().map(|v| serde_json::to_vec(v).unwrap()).collect();
    // The templates themselves are answered as expected.
    for t in &templates {
        assert_eq!(webhook.review_now(t).status, 200);
    }
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let counts = std::cell::Cell::new([0u64; 3]);
    let started = Instant::now();
    runner
        .run(&input(), |input| {
            let body = render(&input, &templates, &values);
            let reply = webhook.review_now(&body);
            let mut c = counts.get();
            match reply.status {
                400 => {
                    c[0] += 1;
                    let msg =
                        String::from_utf8(reply.body).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert!(!msg.is_empty());
                }
                200 => {
                    let answer: Value = serde_json::from_slice(&reply.body)
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert_eq!(&answer["kind"], "AdmissionReview");
                    let uid = answer["response"]["uid"].as_str().unwrap_or_default();
                    prop_assert!(!uid.is_empty());
                    // Fields ebb ignores are skipped without a full check (an invalid escape
                    // in userInfo, say), so a strict parse of the input may fail; when it does
                    // not, the uid must be the request's.
                    if let Ok(sent) = serde_json::from_slice::<Value>(&body) {
                        prop_assert_eq!(&answer["response"]["uid"], &sent["request"]["uid"]);
                    }
                    let allowed = answer["response"]["allowed"].as_bool();
                    prop_assert!(allowed.is_some());
                    if allowed == Some(false) {
                        c[2] += 1;
                        let message = answer["response"]["status"]["message"].as_str().unwrap_or_default();
                        prop_assert!(!message.is_empty());
                    } else {
                        c[1] += 1;
                    }
                }
                other => prop_assert!(false, "unexpected status {other}"),
            }
            counts.set(c);
            Ok(())
        })
        .unwrap();
    let [bad, allowed, denied] = counts.get();
    let total = bad + allowed + denied;
    eprintln!(
        "fuzz: {total} inputs in {:.1?}: {bad} answered 400, {allowed} allowed, {denied} denied",
        started.elapsed()
    );
    assert_eq!(total, u64::from(cases));
    assert!(allowed > 0 && denied > 0 && bad > 0, "every outcome is reached: {bad}/{allowed}/{denied}");
}
