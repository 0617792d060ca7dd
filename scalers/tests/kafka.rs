//! The kafka scaler against a real Kafka-protocol broker (tansu, started per test): the lag for
//! every option combination on a fixture with known offsets, excludePersistentLag across polls,
//! the all-topics mode, errors (missing topic, broker down — never a 0), recovery after the broker
//! restarts, connection sharing and requests per poll, and a cross-check of offsets written by a
//! real client library (confluent-kafka).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kafka_support;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use ebb_scalers::kafka::KafkaScaler;
use ebb_scalers::{Measurement, Scaler, ScalerError, measure_with_timeout, parse_scaled_object};
use ebb_testbackends::tansu::{Admin, Tansu, TansuOptions};
use kafka_support::{GROUP, TOPIC, broker_with_fixture, config, fixture, scaler};

async fn measure(s: &KafkaScaler) -> Result<Measurement, ScalerError> {
    s.measure(Utc::now()).await
}

#[tokio::test]
async fn lag_for_every_option_combination() {
    let (t, _admin) = broker_with_fixture().await;
    let b = t.bootstrap();
    // p0: latest 10, committed 4 → 6; p1: latest 7, never committed; p2: latest 25, committed 5 → 20.
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], f64, bool);
    let cases: &[Case] = &[
        ("latest: uncommitted p1 counts 1", &[], 27.0, true),
        (
            "latest + scaleToZeroOnInvalidOffset: p1 counts 0",
            &[("scaleToZeroOnInvalidOffset", "true")],
            26.0,
            true,
        ),
        (
            "earliest: p1 counts 7, total 33 capped at 3 × 10",
            &[("offsetResetPolicy", "earliest")],
            30.0,
            true,
        ),
        (
            "earliest + allowIdleConsumers: not capped",
            &[("offsetResetPolicy", "earliest"), ("allowIdleConsumers", "true")],
            33.0,
            true,
        ),
        (
            "earliest + scaleToZeroOnInvalidOffset",
            &[("offsetResetPolicy", "earliest"), ("scaleToZeroOnInvalidOffset", "true")],
            26.0,
            true,
        ),
        ("cap at 3 partitions × 5", &[("lagThreshold", "5")], 15.0, true),
        (
            "allowIdleConsumers lifts the cap",
            &[("lagThreshold", "5"), ("allowIdleConsumers", "true")],
            27.0,
            true,
        ),
        (
            "limitToPartitionsWithLag: 3 partitions with lag × 5",
            &[("lagThreshold", "5"), ("limitToPartitionsWithLag", "true")],
            15.0,
            true,
        ),
        (
            "limitToPartitionsWithLag + scaleToZero: 2 partitions with lag × 5",
            &[
                ("lagThreshold", "5"),
                ("limitToPartitionsWithLag", "true"),
                ("scaleToZeroOnInvalidOffset", "true"),
            ],
            10.0,
            true,
        ),
        ("partitionLimitation 0,2: 26 capped at 2 × 10", &[("partitionLimitation", "0,2")], 20.0, true),
        ("partitionLimitation 1 (latest)", &[("partitionLimitation", "1")], 1.0, true),
        (
            "partitionLimitation 1 (earliest)",
            &[("partitionLimitation", "1"), ("offsetResetPolicy", "earliest")],
            7.0,
            true,
        ),
        (
            "partitionLimitation 1 + scaleToZero: inactive",
            &[("partitionLimitation", "1"), ("scaleToZeroOnInvalidOffset", "true")],
            0.0,
            false,
        ),
        ("partitionLimitation 1-2", &[("partitionLimitation", "1-2"), ("lagThreshold", "100")], 21.0, true),
        ("activation is strictly above the threshold", &[("activationLagThreshold", "27")], 27.0, false),
        ("activation below the lag", &[("activationLagThreshold", "26")], 27.0, true),
        ("a group that never committed, latest: 1 per partition", &[("consumerGroup", "nobody")], 3.0, true),
        (
            "a group that never committed, earliest: 42 capped at 30",
            &[("consumerGroup", "nobody"), ("offsetResetPolicy", "earliest")],
            30.0,
            true,
        ),
    ];
    for (name, extra, value, active) in cases {
        let s = scaler(&b, extra);
        let m = measure(&s).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(m, Measurement { value: *value, active: *active }, "{name}");
    }
}

#[tokio::test]
async fn a_scaled_object_evaluates_through_the_shared_parser() {
    let (t, _admin) = broker_with_fixture().await;
    let yaml = format!(
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: w}}\nspec:\n  scaleTargetRef: {{name: w}}\n  triggers:\n  - type: kafka\n    metadata:\n      bootstrapServers: {}\n      consumerGroup: {GROUP}\n      topic: {TOPIC}\n      lagThreshold: '4'\n      allowIdleConsumers: true\n",
        t.bootstrap()
    );
    let so: ebb_api::ScaledObject = serde_yaml::from_str(&yaml).unwrap();
    let parsed = parse_scaled_object(&so, &Default::default()).unwrap();
    let trig = &parsed.triggers[0];
    assert_eq!((trig.metric_name.as_str(), trig.target()), ("s0-kafka-orders", 4.0));
    let s = trig.config.build().unwrap();
    let m = measure_with_timeout(&s, Utc::now(), Duration::from_secs(3)).await.unwrap();
    assert_eq!(m, Measurement { value: 27.0, active: true });
}

#[tokio::test]
async fn persistent_lag_is_excluded_across_polls_per_scaled_object() {
    let (t, mut admin) = broker_with_fixture().await;
    let b = t.bootstrap();
    let opts = [("excludePersistentLag", "true"), ("lagThreshold", "100")];
    let s = scaler(&b, &opts);
    let first = s.poll().await.unwrap();
    assert_eq!((first.value, first.activation_lag), (27, 27), "nothing known yet: all lag counts");
    let second = s.poll().await.unwrap();
    assert_eq!((second.value, second.activation_lag), (1, 27), "p0, p2 did not move; p1 has no commit");
    assert!(measure(&s).await.unwrap().active, "persistent lag still activates");

    // Another ScaledObject with the same trigger keeps its own memory.
    let other = scaler(&b, &opts);
    assert_eq!(other.poll().await.unwrap().value, 27);

    admin.commit(GROUP, TOPIC, &[(0, 8)]).await.unwrap();
    let third = s.poll().await.unwrap();
    assert_eq!((third.value, third.activation_lag), (2 + 1, 2 + 1 + 20), "p0 moved (lag 2), p2 still stuck");
    let fourth = s.poll().await.unwrap();
    assert_eq!(fourth.value, 1, "p0 stuck again at 8");
}

#[tokio::test]
async fn without_a_topic_every_topic_the_group_committed_counts() {
    let t = Tansu::start().unwrap();
    let mut a = Admin::connect(&t.bootstrap()).await.unwrap();
    for (topic, partitions) in [("alpha", 2), ("beta", 1), ("gamma", 1)] {
        a.create_topic(topic, partitions).await.unwrap();
    }
    a.produce("alpha", &[(0, 5), (1, 4)]).await.unwrap();
    a.produce("beta", &[(0, 6)]).await.unwrap();
    a.produce("gamma", &[(0, 9)]).await.unwrap();
    a.commit("g2", "alpha", &[(0, 2)]).await.unwrap();
    a.commit("g2", "beta", &[(0, 6)]).await.unwrap();
    let b = t.bootstrap();
    let group_only = |extra: &[(&'static str, &'static str)]| {
        let mut pairs = vec![("bootstrapServers", b.as_str()), ("consumerGroup", "g2")];
        pairs.extend_from_slice(extra);
        KafkaScaler::new(config(&pairs, &[]))
    };
    // alpha/0: 5 − 2 = 3; alpha/1: never committed; beta/0: 0; gamma: not the group's.
    type Case<'a> = (&'a [(&'a str, &'a str)], i64, usize);
    let cases: &[Case] = &[
        (&[], 3 + 1, 3),
        (&[("offsetResetPolicy", "earliest")], 3 + 4, 3),
        (&[("scaleToZeroOnInvalidOffset", "true")], 3, 3),
        (&[("lagThreshold", "1")], 3, 3),
        (&[("partitionLimitation", "0")], 4, 3),
    ];
    for (extra, value, partitions) in cases {
        let total = group_only(extra).poll().await.unwrap();
        assert_eq!((total.value, total.partitions), (*value, *partitions), "{extra:?}");
    }
    let parsed = config(&[("bootstrapServers", b.as_str()), ("consumerGroup", "g2")], &[]);
    use ebb_scalers::ScalerConfig;
    assert_eq!(ebb_api::metric_name::with_index(0, &parsed.metric_part()), "s0-kafka-g2-topics");
    // A group with no commits anywhere has no topics: 0, inactive, not an error.
    let none = KafkaScaler::new(config(&[("bootstrapServers", b.as_str()), ("consumerGroup", "fresh")], &[]));
    assert_eq!(measure(&none).await.unwrap(), Measurement { value: 0.0, active: false });
}

#[tokio::test]
async fn missing_topic_and_empty_partition_scope_are_errors() {
    let (t, _admin) = broker_with_fixture().await;
    let b = t.bootstrap();
    let e = measure(&scaler(&b, &[("topic", "missing")])).await.unwrap_err();
    assert_eq!(e.reason(), "NotFound");
    assert_eq!(e.to_string(), format!("kafka (bootstrapServers {b:?}): topic \"missing\" does not exist"));
    let e = measure(&scaler(&b, &[("partitionLimitation", "5-9")])).await.unwrap_err();
    assert_eq!(e.reason(), "Config");
    assert!(
        e.to_string()
            .ends_with("topic \"orders\" has no partitions matching partitionLimitation \"5-9\" (it has 3)"),
        "{e}"
    );
}

#[tokio::test]
async fn broker_down_is_unreachable_naming_the_bootstrap_servers_never_zero() {
    let port = ebb_testbackends::tansu::free_port().unwrap();
    let never = format!("127.0.0.1:{port}");
    let e = measure(&scaler(&format!("{never},127.0.0.1:1"), &[])).await.unwrap_err();
    assert_eq!(e.reason(), "Unreachable");
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "kafka (bootstrapServers \"{never},127.0.0.1:1\"): cannot reach any broker: {never}: "
        )),
        "{msg}"
    );
    assert!(msg.contains("127.0.0.1:1: "), "every server tried is named: {msg}");

    let (mut t, _admin) = broker_with_fixture().await;
    let s = scaler(&t.bootstrap(), &[]);
    assert_eq!(measure(&s).await.unwrap().value, 27.0);
    t.kill();
    let e = measure_with_timeout(&(Arc::new(s) as Arc<dyn Scaler>), Utc::now(), Duration::from_secs(3))
        .await
        .unwrap_err();
    assert_eq!(e.reason(), "Unreachable", "{e}");
    assert!(e.to_string().contains(&format!("bootstrapServers \"{}\"", t.bootstrap())), "{e}");
}

#[tokio::test]
async fn reconnects_and_re_resolves_after_the_broker_restarts_or_moves() {
    let (mut t, _admin) = broker_with_fixture().await;
    let port = t.port();
    let spare = ebb_testbackends::tansu::free_port().unwrap();
    let s = scaler(&format!("{},127.0.0.1:{spare}", t.bootstrap()), &[]);
    assert_eq!(measure(&s).await.unwrap().value, 27.0);

    // Restart at the same address: the pooled connections are dead; the poll notices and
    // reconnects within the same measurement.
    t.kill();
    drop(t);
    let t = Tansu::start_with(&TansuOptions { port: Some(port), ..Default::default() }).unwrap();
    let mut a = fixture(&t.bootstrap()).await;
    a.commit(GROUP, TOPIC, &[(0, 10), (2, 25)]).await.unwrap();
    assert_eq!(measure(&s).await.unwrap(), Measurement { value: 1.0, active: true });

    // The cluster moves to the second bootstrap server: the cached leader and coordinator
    // addresses fail, fresh Metadata and FindCoordinator find the new ones.
    drop(t);
    let moved = Tansu::start_with(&TansuOptions { port: Some(spare), ..Default::default() }).unwrap();
    let _a = fixture(&moved.bootstrap()).await;
    assert_eq!(measure(&s).await.unwrap(), Measurement { value: 27.0, active: true });
}

#[tokio::test]
async fn connections_are_shared_and_a_poll_sends_three_requests() {
    let (t, _admin) = broker_with_fixture().await;
    let b = t.bootstrap();
    let a = scaler(&b, &[]);
    let other_object = scaler(&b, &[("lagThreshold", "5"), ("consumerGroup", "nobody")]);
    assert!(Arc::ptr_eq(a.cluster(), other_object.cluster()), "same servers and security: one cluster");
    let before = a.cluster().requests_sent();
    a.poll().await.unwrap();
    let first = a.cluster().requests_sent() - before;
    assert_eq!(first, 5, "ApiVersions, Metadata, FindCoordinator, ListOffsets, OffsetFetch");
    for s in [&a, &other_object, &a] {
        let before = s.cluster().requests_sent();
        s.poll().await.unwrap();
        let n = s.cluster().requests_sent() - before;
        // other_object's first poll also looks up its group's coordinator.
        assert!(n == 3 || (std::ptr::eq(s, &other_object) && n == 4), "requests per poll: {n}");
    }
    assert_eq!(a.cluster().open_connections(), 1, "one broker, one connection");
    let (x, y) = tokio::join!(measure(&a), measure(&other_object));
    assert_eq!((x.unwrap().value, y.unwrap().value), (27.0, 3.0));
}

#[tokio::test]
async fn a_cancelled_poll_leaves_no_broken_connection_behind() {
    let (t, _admin) = broker_with_fixture().await;
    let s: Arc<dyn Scaler> = Arc::new(scaler(&t.bootstrap(), &[]));
    for micros in [1, 50, 200, 500, 1000, 2000] {
        let _ = measure_with_timeout(&s, Utc::now(), Duration::from_micros(micros)).await;
        let m = measure_with_timeout(&s, Utc::now(), Duration::from_secs(3)).await.unwrap();
        assert_eq!(m.value, 27.0, "after a poll cancelled at {micros} µs");
    }
}

/// Offsets written by a real client library (librdkafka through confluent-kafka) read the same.
#[tokio::test]
async fn offsets_written_by_confluent_kafka_read_the_same() {
    let t = Tansu::start().unwrap();
    let venv = std::env::var("EBB_TEST_VENV").unwrap_or_else(|_| "/var/tmp/ebb-test-venv".into());
    let script = r#"
import sys
from confluent_kafka import Producer, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
b = sys.argv[1]
adm = AdminClient({"bootstrap.servers": b})
for f in adm.create_topics([NewTopic("xcheck", 2, 1)]).values():
    f.result(10)
p = Producer({"bootstrap.servers": b, "batch.num.messages": 1, "linger.ms": 0})
for part, n in ((0, 6), (1, 3)):
    for i in range(n):
        p.produce("xcheck", value=b"m%d" % i, partition=part)
        p.flush(10)
c = Consumer({"bootstrap.servers": b, "group.id": "xg", "enable.auto.commit": False})
c.commit(offsets=[TopicPartition("xcheck", 0, 2), TopicPartition("xcheck", 1, 3)], asynchronous=False)
c.close()
"#;
    let out = std::process::Command::new(format!("{venv}/bin/python"))
        .args(["-c", script, &t.bootstrap()])
        .output()
        .expect("python from the test venv; run `bash scripts/backends/tansu.sh`");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = KafkaScaler::new(config(
        &[("bootstrapServers", &t.bootstrap()), ("consumerGroup", "xg"), ("topic", "xcheck")],
        &[],
    ));
    let total = s.poll().await.unwrap();
    // p0: 6 produced, committed 2; p1: 3 produced, committed 3.
    assert_eq!((total.value, total.partitions), (4, 2));
}
