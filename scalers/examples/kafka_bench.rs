//! Benchmark of one kafka poll over 1,000 partitions on a local tansu broker: requests sent per
//! poll and latency (cold first poll, then the median of repeated polls), for one topic with
//! 1,000 partitions and for ten topics with 100 partitions each read without a topic (every topic
//! the group committed to). Needs tansu (`bash scripts/backends/tansu.sh`).
//!
//! `cargo run --release -p ebb-scalers --example kafka_bench [-- POLLS]`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ebb_api::MetadataValue;
use ebb_scalers::kafka::config::parse_config;
use ebb_scalers::kafka::{KafkaScaler, PARAMS};
use ebb_scalers::params::{Params, ParseContext};
use ebb_testbackends::tansu::{Admin, Tansu};

fn scaler(pairs: &[(&str, &str)]) -> KafkaScaler {
    let md: BTreeMap<String, MetadataValue> =
        pairs.iter().map(|(k, v)| ((*k).to_owned(), MetadataValue::from(*v))).collect();
    let ctx = ParseContext::default();
    KafkaScaler::new(parse_config(&Params::new(0, "kafka", PARAMS, &md, &ctx)).unwrap())
}

/// Fills `topic`: one record in every partition, two more in even ones; the group commits 1 on
/// even partitions (lag 2 each) and nothing on odd ones (lag 1 each under `latest`).
async fn fill(a: &mut Admin, group: &str, topic: &str, partitions: i32) -> i64 {
    a.create_topic(topic, partitions).await.unwrap();
    let counts: Vec<(i32, u32)> = (0..partitions).map(|p| (p, if p % 2 == 0 { 3 } else { 1 })).collect();
    a.produce(topic, &counts).await.unwrap();
    let commits: Vec<(i32, i64)> = (0..partitions).filter(|p| p % 2 == 0).map(|p| (p, 1)).collect();
    a.commit(group, topic, &commits).await.unwrap();
    i64::from(partitions / 2) * 2 + i64::from(partitions - partitions / 2)
}

struct Figures {
    cold: Duration,
    cold_requests: u64,
    median: Duration,
    p90: Duration,
    min: Duration,
    max: Duration,
    requests: Vec<u64>,
}

async fn run(s: &KafkaScaler, polls: usize, want: i64) -> Figures {
    let c = s.cluster();
    let (before, t0) = (c.requests_sent(), Instant::now());
    let first = s.poll().await.unwrap();
    let (cold, cold_requests) = (t0.elapsed(), c.requests_sent() - before);
    assert_eq!(first.value, want, "lag over {} partitions", first.partitions);
    let mut times = Vec::with_capacity(polls);
    let mut requests = Vec::with_capacity(polls);
    for _ in 0..polls {
        let (before, t0) = (c.requests_sent(), Instant::now());
        let total = s.poll().await.unwrap();
        times.push(t0.elapsed());
        requests.push(c.requests_sent() - before);
        assert_eq!(total.value, want);
    }
    times.sort();
    requests.sort_unstable();
    requests.dedup();
    Figures {
        cold,
        cold_requests,
        median: times[times.len() / 2],
        p90: times[times.len() * 9 / 10],
        min: times[0],
        max: times[times.len() - 1],
        requests,
    }
}

fn report(name: &str, partitions: usize, f: &Figures) {
    println!("{name}: {partitions} partitions");
    println!(
        "  first poll:  {:.2?}, {} requests (includes opening the connection / finding the coordinator)",
        f.cold, f.cold_requests
    );
    println!("  warm polls:  requests per poll {:?}", f.requests);
    println!(
        "               median {:.2?}, p90 {:.2?}, min {:.2?}, max {:.2?}",
        f.median, f.p90, f.min, f.max
    );
}

#[tokio::main]
async fn main() {
    let polls: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(50);
    let t = Tansu::start().unwrap_or_else(|e| panic!("{e}"));
    let b = t.bootstrap();
    let mut a = Admin::connect(&b).await.unwrap();

    let setup = Instant::now();
    let want = fill(&mut a, "bench-one", "bench-1000", 1000).await;
    let mut want_many = 0;
    for i in 0..10 {
        want_many += fill(&mut a, "bench-many", &format!("bench-100-{i}"), 100).await;
    }
    println!(
        "tansu {b}: fixtures (1 × 1000 + 10 × 100 partitions) ready in {:.2?}; {polls} polls each\n",
        setup.elapsed()
    );

    // lagThreshold 1 with allowIdleConsumers: the value is the plain lag sum, nothing capped.
    let one = scaler(&[
        ("bootstrapServers", &b),
        ("consumerGroup", "bench-one"),
        ("topic", "bench-1000"),
        ("allowIdleConsumers", "true"),
    ]);
    report("one topic", 1000, &run(&one, polls, want).await);
    let many =
        scaler(&[("bootstrapServers", &b), ("consumerGroup", "bench-many"), ("allowIdleConsumers", "true")]);
    report("ten topics, no topic set", 1000, &run(&many, polls, want_many).await);
    println!("\nconnections open: {}", one.cluster().open_connections());
}
