//! Kafka end to end with tansu as the broker: the seed kafka trigger (lagThreshold 5,
//! activationLagThreshold 3) on a 3-partition topic scales Deployment kafka-consumer 0 → 1
//! through the operator when records are produced, 1 → 3 through the HPA (the lag is capped at
//! partitions × lagThreshold, so never more replicas than partitions), and back to 0 after the
//! cooldown once the consumer group commits up to the end of every partition.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "metrics_apiserver_support/mod.rs"]
mod support;

#[path = "scaling_support/mod.rs"]
mod scaling;

use std::time::{Duration, Instant};

use ebb_testbackends::tansu::{Admin, Tansu};
use scaling::{Stack, Timeline, seed};
use serde_json::json;
use support::{create_deployment, replicas, wait_for};

const TARGET: &str = "kafka-consumer";
const PARTITIONS: i32 = 3;
/// Records produced to each partition: a lag of 30, capped at 3 × 5 = 15 → 3 replicas.
const PER_PARTITION: u32 = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_scales_the_consumer_from_zero_to_partitions_and_commits_bring_it_back() {
    let started = Instant::now();
    let tansu = tokio::task::block_in_place(Tansu::start).unwrap();
    let mut admin = Admin::connect(&tansu.bootstrap()).await.unwrap();

    let mut so = seed("kafka-trigger.yaml");
    let shown = so.to_string();
    assert_eq!(so["spec"]["scaleTargetRef"]["name"], TARGET, "the seed changed: {shown}");
    let meta = &mut so["spec"]["triggers"][0]["metadata"];
    assert_eq!(meta["lagThreshold"], "5", "the seed changed: {shown}");
    assert_eq!(meta["activationLagThreshold"], "3", "the seed changed: {shown}");
    let (topic, group) =
        (meta["topic"].as_str().unwrap().to_owned(), meta["consumerGroup"].as_str().unwrap().to_owned());
    meta["bootstrapServers"] = json!(tansu.bootstrap());
    // The local broker is plaintext without SASL, and the seed's partitionLimitation (1,2,10-20,31)
    // would leave partition 0 out of a 3-partition topic.
    let meta = meta.as_object_mut().unwrap();
    for key in ["sasl", "tls", "unsafeSsl", "partitionLimitation"] {
        meta.remove(key);
    }
    let spec = &mut so["spec"];
    spec["minReplicaCount"] = json!(0);
    spec["pollingInterval"] = json!(1);
    spec["cooldownPeriod"] = json!(5);
    // No downscale stabilization on the HPA (the acceptance is the operator's scale to 0).
    spec["advanced"] = json!({"horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}}});

    // The group has consumed everything so far (offset 0 of empty partitions): no lag.
    admin.create_topic(&topic, PARTITIONS).await.unwrap();
    let start: Vec<(i32, i64)> = (0..PARTITIONS).map(|p| (p, 0)).collect();
    admin.commit(&group, &topic, &start).await.unwrap();

    let stack = Stack::start("kafka", Duration::from_secs(1)).await;
    let client = stack.client.clone();
    create_deployment(&client, TARGET, 0).await;
    stack.create(so).await;
    let timeline = Timeline::start(&client, TARGET);

    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(replicas(&client, TARGET).await, 0, "no lag activated the consumer");

    let produced_at = timeline.now();
    let counts: Vec<(i32, u32)> = (0..PARTITIONS).map(|p| (p, PER_PARTITION)).collect();
    let next = admin.produce(&topic, &counts).await.unwrap();
    assert!(next.values().all(|n| *n == i64::from(PER_PARTITION)), "{next:?}");
    let to_one = wait_for("0 → 1 by the operator", Duration::from_secs(15), async || {
        replicas(&client, TARGET).await >= 1
    })
    .await;
    let to_n = wait_for("1 → 3 (one per partition) by the HPA", Duration::from_secs(60), async || {
        replicas(&client, TARGET).await == PARTITIONS
    })
    .await;
    for _ in 0..6 {
        assert_eq!(replicas(&client, TARGET).await, PARTITIONS, "{}", timeline.render());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let committed_at = timeline.now();
    let end: Vec<(i32, i64)> = next.into_iter().collect();
    admin.commit(&group, &topic, &end).await.unwrap();
    let to_zero = wait_for("back to 0 after the cooldown", Duration::from_secs(60), async || {
        replicas(&client, TARGET).await == 0
    })
    .await;
    assert!(
        to_zero >= Duration::from_secs(3),
        "scaled to 0 {to_zero:?} after the commit, before the cooldown"
    );

    // The recorder samples every 20 ms: let it catch the last change the waits above saw.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let seen = timeline.counts();
    println!(
        "kafka: {} records produced at t={:.3}s, committed at t={:.3}s; replica timeline: {}",
        PER_PARTITION * PARTITIONS as u32,
        produced_at.as_secs_f64(),
        committed_at.as_secs_f64(),
        timeline.render()
    );
    println!(
        "kafka: 0→1 after {to_one:?}, →{PARTITIONS} {to_n:?} later, →0 {to_zero:?} after the commit (cooldown 5 s); test took {:?}",
        started.elapsed()
    );
    assert_eq!(seen.first(), Some(&0), "{seen:?}");
    assert_eq!(seen.last(), Some(&0), "{seen:?}");
    assert_eq!(seen.iter().max(), Some(&PARTITIONS), "never more replicas than partitions: {seen:?}");
    let one = seen.iter().position(|n| *n == 1).expect("the operator activated to exactly 1 first");
    assert!(seen[..one].iter().all(|n| *n == 0), "{seen:?}");

    drop(timeline);
    stack.stop().await;
}
