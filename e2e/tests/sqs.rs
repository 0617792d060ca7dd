//! SQS end to end with moto as the queue: the seed queue-worker ScaledObject (awsEndpoint on moto,
//! dummy static keys from a Secret through a TriggerAuthentication, minReplicaCount 0) scales
//! Deployment order-processor 0 → 1 through the operator when messages arrive, 1 → ceil(n / 5)
//! through the HPA reading ebb's metrics API server, and back to 0 after the cooldown once the
//! queue is drained. A second scenario measures the activation latency (message sent → replicas
//! 1) with pollingInterval 1 s over repeated trials and prints its percentiles.
//!
//! A third takes the queue URL and keys from the target's container environment, filled from
//! Secrets through `valueFrom.secretKeyRef` and `envFrom` (KEDA's resolver), scales 0 → 1 with
//! them, and follows the queue URL when its Secret changes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "metrics_apiserver_support/mod.rs"]
mod support;

#[path = "scaling_support/mod.rs"]
mod scaling;

use std::time::{Duration, Instant};

use ebb_scalers::aws::{AwsClients, AwsCredentials, ClientKey, Secret};
use ebb_testbackends::moto::Moto;
use scaling::{SERIAL, Stack, Timeline, percentile, secret, seed};
use serde_json::{Value, json};
use support::{create_deployment, replicas, wait_for};

const TARGET: &str = "order-processor";
/// The queue named by the seed's queueURL.
const QUEUE: &str = "orders";

/// An SQS client on moto for the test's own side (producer and consumer).
async fn sqs(moto: &Moto) -> aws_sdk_sqs::Client {
    let clients = AwsClients::shared(ClientKey {
        region: "us-east-1".into(),
        endpoint: Some(moto.endpoint()),
        credentials: AwsCredentials::Static {
            access_key_id: Secret::new("AKIAEBBE2EPRODUCER"),
            secret_access_key: Secret::new("producer"),
            session_token: None,
        },
    });
    clients.sqs().await.clone()
}

/// Receives and deletes every message of `url`, as a worker would; returns how many.
async fn drain(sqs: &aws_sdk_sqs::Client, url: &str) -> usize {
    let mut n = 0;
    loop {
        let got = sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.unwrap();
        if got.messages().is_empty() {
            return n;
        }
        for m in got.messages() {
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
            n += 1;
        }
    }
}

/// The stack with the Secret and TriggerAuthentication for the dummy keys, Deployment
/// order-processor at 0 and the seed ScaledObject adapted to moto with `cooldown` and `advanced`.
async fn setup(tag: &str, moto: &Moto, cooldown: i64, advanced: Value) -> Stack {
    let stack = Stack::start(tag, Duration::from_secs(1)).await;
    stack
        .create(secret("aws-keys", &[("id", "AKIAEBBE2ETEST"), ("secret", "e2eSecretKeyNeverLogged0123")]))
        .await;
    stack
        .create(json!({"apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication",
        "metadata": {"name": "aws-keys"},
        "spec": {"secretTargetRef": [
            {"parameter": "awsAccessKeyID", "name": "aws-keys", "key": "id"},
            {"parameter": "awsSecretAccessKey", "name": "aws-keys", "key": "secret"}]}}))
        .await;
    create_deployment(&stack.client, TARGET, 0).await;

    let mut so = seed("sqs-queue-worker.yaml");
    let shown = so.to_string();
    assert_eq!(so["spec"]["scaleTargetRef"]["name"], TARGET, "the seed changed: {shown}");
    let trigger = &mut so["spec"]["triggers"][0];
    assert_eq!(trigger["type"], "aws-sqs-queue", "the seed changed: {shown}");
    assert_eq!(trigger["metadata"]["queueLength"], "5", "the seed changed: {shown}");
    assert!(
        trigger["metadata"]["queueURL"].as_str().unwrap().ends_with("/orders"),
        "the seed changed: {shown}"
    );
    trigger["metadata"]["awsEndpoint"] = json!(moto.endpoint());
    trigger["authenticationRef"] = json!({"name": "aws-keys"});
    let spec = &mut so["spec"];
    spec["minReplicaCount"] = json!(0);
    spec["pollingInterval"] = json!(1);
    spec["cooldownPeriod"] = json!(cooldown);
    if !advanced.is_null() {
        spec["advanced"] = advanced;
    }
    stack.create(so).await;
    stack
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_scale_order_processor_from_zero_to_n_and_back_to_zero() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let moto = tokio::task::block_in_place(Moto::start).unwrap();
    let sqs = sqs(&moto).await;
    let url = sqs.create_queue().queue_name(QUEUE).send().await.unwrap().queue_url().unwrap().to_owned();
    // No downscale stabilization on the HPA, so N → 1 is not held for the default 5 minutes; the
    // acceptance is the operator's deactivation to 0 after the cooldown either way.
    let advanced = json!({"horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}}});
    let stack = setup("sqs", &moto, 5, advanced).await;
    let client = stack.client.clone();
    let timeline = Timeline::start(&client, TARGET);

    // An empty queue keeps the target at 0 over several polls.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(replicas(&client, TARGET).await, 0, "an empty queue activated the target");

    const MESSAGES: usize = 23;
    let want = MESSAGES.div_ceil(5) as i32;
    let sent_at = timeline.now();
    for i in 0..MESSAGES {
        sqs.send_message().queue_url(&url).message_body(format!("order {i}")).send().await.unwrap();
    }
    let to_one = wait_for("0 → 1 by the operator", Duration::from_secs(15), async || {
        replicas(&client, TARGET).await >= 1
    })
    .await;
    let to_n = wait_for(&format!("1 → {want} by the HPA"), Duration::from_secs(60), async || {
        replicas(&client, TARGET).await == want
    })
    .await;
    // It stays at N while the queue holds the messages.
    for _ in 0..6 {
        assert_eq!(replicas(&client, TARGET).await, want, "{}", timeline.render());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let drained_at = timeline.now();
    assert_eq!(drain(&sqs, &url).await, MESSAGES);
    let to_zero = wait_for("back to 0 after the cooldown", Duration::from_secs(60), async || {
        replicas(&client, TARGET).await == 0
    })
    .await;
    // Not before the cooldown (5 s) since the last active poll, which was at most ~1 s before the
    // drain ended.
    assert!(
        to_zero >= Duration::from_secs(3),
        "scaled to 0 {to_zero:?} after the drain, before the cooldown"
    );

    // The recorder samples every 20 ms: let it catch the last change the waits above saw.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let counts = timeline.counts();
    println!(
        "sqs: {MESSAGES} messages sent at t={:.3}s, drained at t={:.3}s; replica timeline: {}",
        sent_at.as_secs_f64(),
        drained_at.as_secs_f64(),
        timeline.render()
    );
    println!(
        "sqs: 0→1 after {to_one:?}, →{want} {to_n:?} later, →0 {to_zero:?} after the drain (cooldown 5 s); test took {:?}",
        started.elapsed()
    );
    assert_eq!(counts.first(), Some(&0), "{counts:?}");
    assert_eq!(counts.last(), Some(&0), "{counts:?}");
    assert_eq!(counts.iter().max(), Some(&want), "never above ceil({MESSAGES} / 5): {counts:?}");
    let one = counts.iter().position(|n| *n == 1).expect("the operator activated to exactly 1 first");
    assert!(counts[..one].iter().all(|n| *n == 0), "{counts:?}");

    drop(timeline);
    stack.stop().await;
}

/// Trials of the activation latency; each costs about 2.5 s (offset, activation, cooldown, a poll).
const TRIALS: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activation_latency_with_a_one_second_polling_interval() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let moto = tokio::task::block_in_place(Moto::start).unwrap();
    let sqs = sqs(&moto).await;
    let url = sqs.create_queue().queue_name(QUEUE).send().await.unwrap().queue_url().unwrap().to_owned();
    let stack = setup("sqs-latency", &moto, 1, Value::Null).await;
    let client = stack.client.clone();

    let mut latencies = Vec::with_capacity(TRIALS);
    for trial in 0..TRIALS {
        wait_for(&format!("trial {trial}: the target at 0"), Duration::from_secs(20), async || {
            replicas(&client, TARGET).await == 0
        })
        .await;
        // The target reaches 0 right after a poll, so sending at once would always land just
        // after one and measure a whole interval. Offsets spread evenly over the interval sample
        // every phase of the poll loop.
        tokio::time::sleep(Duration::from_millis((trial * 1000 / TRIALS) as u64)).await;
        sqs.send_message().queue_url(&url).message_body(format!("trial {trial}")).send().await.unwrap();
        // t0: the message is in the queue once SendMessage has answered.
        let t0 = Instant::now();
        loop {
            if replicas(&client, TARGET).await == 1 {
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(10), "trial {trial}: not activated within 10 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(drain(&sqs, &url).await, 1, "trial {trial}");
    }

    println!(
        "sqs activation latency over {TRIALS} trials (pollingInterval 1 s): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms, min {:.0} ms; test took {:?}",
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        percentile(&latencies, 100.0),
        percentile(&latencies, 0.0),
        started.elapsed()
    );
    assert_eq!(latencies.len(), TRIALS);
    stack.stop().await;
}

/// `queueURLFromEnv` names a variable set through `valueFrom.secretKeyRef`, and the keys come
/// through a TriggerAuthentication `env` naming another container (`containerName`) whose
/// variables come from `envFrom` with a prefix: messages activate the target as with literals.
/// The Secret is then pointed at an empty queue: the operator notices the change (its periodic
/// check of the Secrets it read, every 30 s by default), rebuilds the scaler on the new URL and
/// the target goes back to 0 after the cooldown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_url_and_keys_from_secrets_through_the_container_environment() {
    let _serial = SERIAL.lock().await;
    let moto = tokio::task::block_in_place(Moto::start).unwrap();
    let sqs = sqs(&moto).await;
    let url = sqs.create_queue().queue_name(QUEUE).send().await.unwrap().queue_url().unwrap().to_owned();
    let stack = Stack::start("sqs-env", Duration::from_secs(1)).await;
    let client = stack.client.clone();
    stack.create(secret("queue", &[("url", &url)])).await;
    stack
        .create(secret("aws-keys", &[("id", "AKIAEBBE2ETEST"), ("secret", "e2eSecretKeyNeverLogged0123")]))
        .await;
    stack
        .create(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": TARGET},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": TARGET}},
            "template": {"metadata": {"labels": {"app": TARGET}}, "spec": {"containers": [
                {"name": "app", "image": "x", "env": [
                    {"name": "QUEUE_URL", "valueFrom": {"secretKeyRef": {"name": "queue", "key": "url"}}}]},
                {"name": "sidecar", "image": "x", "envFrom": [{"prefix": "AWS_", "secretRef": {"name": "aws-keys"}}]}]}}}}))
        .await;
    stack
        .create(json!({"apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication",
        "metadata": {"name": "aws-env"},
        "spec": {"env": [
            {"parameter": "awsAccessKeyID", "name": "AWS_id", "containerName": "sidecar"},
            {"parameter": "awsSecretAccessKey", "name": "AWS_secret", "containerName": "sidecar"}]}}))
        .await;
    stack
        .create(json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": "env-worker"},
        "spec": {"scaleTargetRef": {"name": TARGET}, "minReplicaCount": 0, "pollingInterval": 1,
            "cooldownPeriod": 1,
            "triggers": [{"type": "aws-sqs-queue", "authenticationRef": {"name": "aws-env"},
                "metadata": {"queueURLFromEnv": "QUEUE_URL", "queueLength": "5", "awsRegion": "us-east-1",
                    "awsEndpoint": moto.endpoint()}}]}}))
        .await;

    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(replicas(&client, TARGET).await, 0, "an empty queue activated the target");
    sqs.send_message().queue_url(&url).message_body("order").send().await.unwrap();
    let sos: kube::Api<ebb_api::ScaledObject> = kube::Api::namespaced(client.clone(), "default");
    let active = tokio::time::timeout(Duration::from_secs(15), async {
        while replicas(&client, TARGET).await < 1 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let so = sos.get("env-worker").await.unwrap();
    let status = serde_json::to_string(&so.status).unwrap();
    assert!(active.is_ok(), "not activated within 15 s; status: {status}");
    assert!(
        !status.contains(&url) && !status.contains("e2eSecretKey"),
        "a secret value in the status: {status}"
    );

    let empty = sqs.create_queue().queue_name("empty").send().await.unwrap().queue_url().unwrap().to_owned();
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(client.clone(), "default");
    let patch = json!({"stringData": {"url": empty}});
    secrets
        .patch("queue", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch))
        .await
        .unwrap();
    let rotated = Instant::now();
    wait_for("back to 0 on the rotated queue URL", Duration::from_secs(45), async || {
        replicas(&client, TARGET).await == 0
    })
    .await;
    println!("sqs: rotated queue URL taken into account after {:?}", rotated.elapsed());
    stack.stop().await;
}
