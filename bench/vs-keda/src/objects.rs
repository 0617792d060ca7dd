//! The objects every scenario creates, the same for ebb and KEDA (both read `keda.sh/v1alpha1`):
//! Deployments, ScaledObjects with cron, Kafka or SQS triggers, the Secret and
//! TriggerAuthentication of the SQS keys, and HPAs owned by ScaledObjects (the webhook's index).

use chrono::Timelike;
use serde_json::{Value, json};

/// Namespace of the scaled workloads.
pub const NS: &str = "default";

pub fn deployment(ns: &str, name: &str, replicas: i32) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]}}}})
}

/// A cron window: `active` opens an hour ago and closes in three hours (daily, UTC), so it is
/// open for the whole measurement; otherwise 03:00–03:05 (15:00–15:05 around 03:00), closed.
pub fn cron_window(active: bool) -> (String, String) {
    let hour = chrono::Utc::now().hour();
    if active {
        (format!("0 {} * * *", (hour + 23) % 24), format!("0 {} * * *", (hour + 3) % 24))
    } else {
        let h = if hour == 3 { 15 } else { 3 };
        (format!("0 {h} * * *"), format!("5 {h} * * *"))
    }
}

fn scaled_object(ns: &str, name: &str, target: &str, polling: u32, min: u32, trigger: Value) -> Value {
    json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"scaleTargetRef": {"name": target}, "pollingInterval": polling,
            "minReplicaCount": min, "maxReplicaCount": 2, "cooldownPeriod": 300,
            "triggers": [trigger]}})
}

/// ScaledObject on `target` with one cron trigger (`desiredReplicas: 1`, UTC) over `window`.
pub fn cron_so(
    ns: &str,
    name: &str,
    target: &str,
    polling: u32,
    window: &(String, String),
    cached: bool,
) -> Value {
    let mut trigger = json!({"type": "cron", "metadata": {"timezone": "Etc/UTC",
        "start": window.0, "end": window.1, "desiredReplicas": "1"}});
    if cached {
        trigger["useCachedMetrics"] = json!(true);
    }
    scaled_object(ns, name, target, polling, 0, trigger)
}

/// ScaledObject on `target` with one Kafka trigger (consumer lag of `group` on `topic`).
pub fn kafka_so(
    ns: &str,
    name: &str,
    target: &str,
    polling: u32,
    bootstrap: &str,
    topic: &str,
    group: &str,
) -> Value {
    let trigger = json!({"type": "kafka", "metadata": {"bootstrapServers": bootstrap,
        "consumerGroup": group, "topic": topic, "lagThreshold": "5"}});
    scaled_object(ns, name, target, polling, 0, trigger)
}

/// The Secret and TriggerAuthentication `aws-keys` with moto's dummy keys.
pub fn aws_keys(ns: &str) -> Vec<Value> {
    vec![
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "aws-keys", "namespace": ns},
            "stringData": {"id": "AKIAEBBBENCH0000TEST", "secret": "benchSecretKeyForMotoOnly0123"}}),
        json!({"apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication",
            "metadata": {"name": "aws-keys", "namespace": ns},
            "spec": {"secretTargetRef": [
                {"parameter": "awsAccessKeyID", "name": "aws-keys", "key": "id"},
                {"parameter": "awsSecretAccessKey", "name": "aws-keys", "key": "secret"}]}}),
    ]
}

/// ScaledObject on `target` with one aws-sqs-queue trigger on moto (`endpoint`), activating on
/// one message; `cached`: `useCachedMetrics: true` (the metrics API answers the loop's last value).
pub fn sqs_so(ns: &str, name: &str, target: &str, queue_url: &str, endpoint: &str, cached: bool) -> Value {
    let mut trigger = json!({"type": "aws-sqs-queue", "authenticationRef": {"name": "aws-keys"},
        "metadata": {"queueURL": queue_url, "queueLength": "5", "awsRegion": "us-east-1", "awsEndpoint": endpoint}});
    if cached {
        trigger["useCachedMetrics"] = json!(true);
    }
    scaled_object(ns, name, target, 1, 0, trigger)
}

/// The HPA KEDA's and ebb's operators would have made for ScaledObject `owner` (uid `uid`).
pub fn owned_hpa(ns: &str, owner: &str, uid: &str, target: &str) -> Value {
    json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": format!("keda-hpa-{owner}"), "namespace": ns,
            "labels": {"scaledobject.keda.sh/name": owner},
            "ownerReferences": [{"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": owner,
                "uid": uid, "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": 1, "maxReplicas": 10,
            "metrics": [{"type": "External", "external": {"metric": {"name": "s0-cron-Etc-UTC-08xx1-5-019xx1-5",
                "selector": {"matchLabels": {"scaledobject.keda.sh/name": owner}}},
                "target": {"type": "AverageValue", "averageValue": "1"}}}]}})
}

/// AdmissionReview bodies for ScaledObjects in `ns` where `existing` (on `existing_target`)
/// is stored: an admitted create, a create denied (target already scaled), an admitted update.
pub fn admission_reviews(ns: &str, existing: &str, existing_target: &str) -> Vec<Vec<u8>> {
    let window = ("0 8 * * 1-5".to_owned(), "0 19 * * 1-5".to_owned());
    let review = |op: &str, object: Value, old: Value| {
        serde_json::to_vec(
            &json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": "4b1e4c4a-1111-2222-3333-444455556666",
            "kind": {"group": "keda.sh", "version": "v1alpha1", "kind": "ScaledObject"},
            "resource": {"group": "keda.sh", "version": "v1alpha1", "resource": "scaledobjects"},
            "name": object["metadata"]["name"], "namespace": ns, "operation": op,
            "userInfo": {"username": "admin"}, "object": object, "oldObject": old}}),
        )
        .unwrap_or_default()
    };
    let fresh = cron_so(ns, "new-app", "new-target", 30, &window, false);
    let dup = cron_so(ns, "dup-app", existing_target, 30, &window, false);
    let old = cron_so(ns, existing, existing_target, 30, &window, false);
    let mut changed = old.clone();
    changed["spec"]["maxReplicaCount"] = json!(20);
    vec![
        review("CREATE", fresh, Value::Null),
        review("CREATE", dup, Value::Null),
        review("UPDATE", changed, old),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_windows_are_well_formed() {
        for active in [true, false] {
            let (start, end) = cron_window(active);
            assert_eq!(start.split(' ').count(), 5, "{start}");
            assert_eq!(end.split(' ').count(), 5, "{end}");
        }
    }

    #[test]
    fn reviews_are_json() {
        for body in admission_reviews("a", "so-1", "app-1") {
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["request"]["namespace"], "a");
        }
    }
}
