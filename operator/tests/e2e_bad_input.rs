//! End to end on the local control plane, without the admission webhook: ScaledObjects with
//! invalid trigger metadata, a target kind without `/scale`, or a missing target get `Ready`
//! `False` `ScaledObjectCheckFailed` with a message saying what is wrong and a Warning event,
//! while a valid ScaledObject in the same namespace keeps scaling and the operator keeps
//! running. With bursts of injected 500/429 answers and dropped watches the operator still
//! converges (HPA present, target activated) and `status.lastActiveTime` is never lost.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use ebb_api::ScaledObject;
use ebb_sandbox::faults::{FaultAction, FaultRule};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use support::*;

async fn hpa_exists(client: &kube::Client, name: &str) -> Option<bool> {
    let hpas: Api<HorizontalPodAutoscaler> = Api::default_namespaced(client.clone());
    hpas.get_opt(&format!("keda-hpa-{name}")).await.ok().map(|h| h.is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_objects_fail_their_check_and_the_rest_keeps_scaling() {
    let (sb, client) = start_sandbox().await;
    create_deployment(&client, "web", 0).await;
    create_deployment(&client, "good", 0).await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let cm = serde_json::from_value(json!({"metadata": {"name": "x"}, "data": {"k": "v"}})).unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let op = start_operator(&client, &[]).await;

    let ns = client.default_namespace().to_owned();
    let mut bad_tz = open_window(2);
    bad_tz["metadata"]["timezone"] = json!("Mars/Olympus");
    let cases = [
        (
            "bad-timezone",
            scaled_object("bad-timezone", "web", json!([bad_tz]), json!({})),
            r#"spec.triggers[0] (cron) metadata.timezone: unknown time zone "Mars/Olympus""#.to_owned(),
        ),
        (
            "no-scale",
            scaled_object(
                "no-scale",
                "x",
                json!([open_window(2)]),
                json!({"scaleTargetRef": {"apiVersion": "v1", "kind": "ConfigMap", "name": "x"}}),
            ),
            "/scale".to_owned(),
        ),
        (
            "no-target",
            scaled_object("no-target", "missing", json!([open_window(2)]), json!({})),
            format!("apps/v1.Deployment {ns}/missing not found"),
        ),
    ];
    for (_, so, _) in &cases {
        create_so(&client, so).await;
    }
    create_so(&client, &scaled_object("good", "good", json!([open_window(2)]), json!({}))).await;

    for (name, _, expected) in &cases {
        wait_for(
            &format!("{name}: Ready=False ScaledObjectCheckFailed"),
            Duration::from_secs(10),
            async || {
                condition(&client, name, "Ready")
                    .await
                    .is_some_and(|(s, r, _)| s == "False" && r == "ScaledObjectCheckFailed")
            },
        )
        .await;
        let (_, _, message) = condition(&client, name, "Ready").await.unwrap();
        assert!(message.contains(expected), "{name}: {message:?} should contain {expected:?}");
        let (active, reason, _) = condition(&client, name, "Active").await.unwrap();
        assert_eq!((active.as_str(), reason.as_str()), ("Unknown", "UnknownState"), "{name}");
        wait_for(&format!("{name}: the Warning event"), Duration::from_secs(10), async || {
            events(&client, name).await.iter().any(|(t, r, note)| {
                t == "Warning" && r == "ScaledObjectCheckFailed" && note.contains(expected)
            })
        })
        .await;
        assert_eq!(hpa_exists(&client, name).await, Some(false), "{name}: no HPA for an invalid object");
    }
    assert_eq!(replicas(&client, "web").await, 0, "an invalid object scales nothing");

    // The valid object next to them is reconciled and scaled.
    wait_for("activation of the valid object", Duration::from_secs(10), async || {
        replicas(&client, "good").await == 1
    })
    .await;
    assert_eq!(hpa_exists(&client, "good").await, Some(true));
    let (ready, reason, _) = condition(&client, "good", "Ready").await.unwrap();
    assert_eq!((ready.as_str(), reason.as_str()), ("True", "ScaledObjectReady"));
    // The invalid ones are retried with backoff, not given up on, and nothing panicked.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!op.task.is_finished(), "the operator is still running");
    let metrics = op.metrics().await.unwrap();
    for (name, _, _) in &cases {
        let errors = metrics
            .lines()
            .find(|l| {
                l.starts_with("keda_scaled_object_errors_total{")
                    && l.contains(&format!("scaledObject=\"{name}\""))
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
        assert!(errors.is_some_and(|e| e >= 2.0), "{name}: retried, errors counted: {errors:?}\n{metrics}");
    }
    // Fixing an object makes it Ready.
    patch_so(&client, "bad-timezone", json!({"spec": {"triggers": [open_window(2)]}})).await;
    wait_for("the fixed object to activate its target", Duration::from_secs(15), async || {
        replicas(&client, "web").await == 1
    })
    .await;
    wait_for("the fixed object to be Ready", Duration::from_secs(5), async || {
        condition(&client, "bad-timezone", "Ready").await.is_some_and(|(s, _, _)| s == "True")
    })
    .await;
    op.stop().await;
    sb.stop().await;
}

/// Reads that tolerate injected faults (`None` when the request failed).
async fn try_so(client: &kube::Client, name: &str) -> Option<ScaledObject> {
    Api::<ScaledObject>::default_namespaced(client.clone()).get(name).await.ok()
}

async fn try_replicas(client: &kube::Client, name: &str) -> Option<i32> {
    let d = Api::<Deployment>::default_namespaced(client.clone()).get(name).await.ok()?;
    Some(d.spec?.replicas.unwrap_or(0))
}

fn last_active(so: &ScaledObject) -> Option<Timestamp> {
    so.status.as_ref()?.last_active_time.as_ref().map(|t| t.0)
}

fn rule(method: Option<&str>, path: &str, action: FaultAction, n: u32) -> FaultRule {
    FaultRule { method: method.map(str::to_owned), path: path.into(), action, remaining: Some(n) }
}

async fn converged(client: &kube::Client) -> bool {
    let Some(so) = try_so(client, "flaky").await else { return false };
    let ready = so.status.as_ref().is_some_and(|s| {
        s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True")
            && s.conditions.iter().any(|c| c.type_ == "Active" && c.status == "True")
    });
    ready
        && last_active(&so).is_some()
        && hpa_exists(client, "flaky").await == Some(true)
        && try_replicas(client, "flaky").await == Some(1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_on_the_api_converge_and_keep_last_active_time() {
    let (sb, client) = start_sandbox().await;
    let Some(sandbox) = sb.sandbox_for("fault injection") else { return sb.stop().await };
    create_deployment(&client, "flaky", 0).await;
    create_so(&client, &scaled_object("flaky", "flaky", json!([open_window(2)]), json!({}))).await;

    // Burst 1, from the operator's start: failing and dropped list/watch of ScaledObjects and
    // HPAs, failing HPA applies, failing reads and writes of the target's /scale.
    let faults = &sandbox.cp.faults;
    faults.add(rule(Some("GET"), "/scaledobjects", FaultAction::Fail(500), 2));
    faults.add(rule(Some("GET"), "/scaledobjects", FaultAction::DropWatch, 5));
    faults.add(rule(Some("GET"), "/horizontalpodautoscalers", FaultAction::DropWatch, 4));
    faults.add(rule(Some("PATCH"), "/horizontalpodautoscalers", FaultAction::Fail(500), 2));
    faults.add(rule(None, "/deployments/flaky/scale", FaultAction::Fail(500), 2));
    let op = start_operator(&client, &[]).await;
    wait_for("convergence through the first burst", Duration::from_secs(40), async || {
        converged(&client).await
    })
    .await;
    let before = last_active(&try_so(&client, "flaky").await.unwrap()).unwrap();

    // Burst 2, in steady state: status writes failing with 500 and 429, /scale reads failing,
    // HPA applies failing, watches dropped; a spec change makes the reconcile run through them.
    faults.add(rule(Some("PATCH"), "/scaledobjects/flaky/status", FaultAction::Fail(500), 3));
    faults.add(rule(Some("PATCH"), "/scaledobjects/flaky/status", FaultAction::Fail(429), 2));
    faults.add(rule(None, "/deployments/flaky/scale", FaultAction::Fail(500), 3));
    faults.add(rule(Some("PATCH"), "/horizontalpodautoscalers", FaultAction::Fail(500), 2));
    faults.add(rule(Some("GET"), "/scaledobjects", FaultAction::DropWatch, 3));
    let sos: Api<ScaledObject> = Api::default_namespaced(client.clone());
    wait_for("a spec change to be accepted", Duration::from_secs(5), async || {
        sos.patch("flaky", &PatchParams::default(), &Patch::Merge(json!({"spec": {"maxReplicaCount": 6}})))
            .await
            .is_ok()
    })
    .await;
    // Through the burst lastActiveTime stays set and never goes back to an older value.
    holds_for("lastActiveTime kept through the faults", Duration::from_secs(6), async || {
        match try_so(&client, "flaky").await {
            Some(so) => last_active(&so).is_some_and(|t| t >= before),
            None => true,
        }
    })
    .await;
    wait_for("convergence after the second burst", Duration::from_secs(30), async || {
        converged(&client).await
    })
    .await;
    wait_for("lastActiveTime to move on", Duration::from_secs(10), async || {
        try_so(&client, "flaky").await.and_then(|so| last_active(&so)).is_some_and(|t| t > before)
    })
    .await;
    let hpa = Api::<HorizontalPodAutoscaler>::default_namespaced(client.clone())
        .get("keda-hpa-flaky")
        .await
        .unwrap();
    assert_eq!(hpa.spec.unwrap().max_replicas, 6, "the spec change reached the HPA");
    assert!(!op.task.is_finished(), "the operator is still running");
    op.stop().await;
    sb.stop().await;
}
