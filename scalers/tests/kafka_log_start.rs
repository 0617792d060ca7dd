//! `offsetResetPolicy: earliest` against a real Kafka-protocol broker (tansu): for partitions the
//! group has no committed offset for, one more ListOffsets with timestamp -2 (log start) is sent
//! and answered, and the lag there is log end − log start; partitions with a commit, the `latest`
//! policy and scaleToZeroOnInvalidOffset send no such request. tansu cannot advance a partition's
//! log start (no DeleteRecords, no retention in a test's lifetime), so log start is 0 here and the
//! subtraction itself is pinned by the unit tests of `kafka::lag`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kafka_support;

use kafka_support::{broker_with_fixture, scaler};

#[tokio::test]
async fn earliest_reads_the_log_start_of_uncommitted_partitions_only() {
    let (t, _admin) = broker_with_fixture().await;
    let b = t.bootstrap();
    // (metadata, requests per warm poll, value): p0 lag 6, p1 uncommitted (log end 7, log start 0),
    // p2 lag 20.
    type Case<'a> = (&'a [(&'a str, &'a str)], u64, i64);
    let cases: &[Case] = &[
        (&[("offsetResetPolicy", "earliest"), ("allowIdleConsumers", "true")], 4, 33),
        (&[("offsetResetPolicy", "earliest"), ("partitionLimitation", "1")], 4, 7),
        // Every partition in scope committed: no log start asked.
        (
            &[
                ("offsetResetPolicy", "earliest"),
                ("partitionLimitation", "0,2"),
                ("allowIdleConsumers", "true"),
            ],
            3,
            26,
        ),
        (&[("offsetResetPolicy", "earliest"), ("scaleToZeroOnInvalidOffset", "true")], 3, 26),
        (&[("allowIdleConsumers", "true")], 3, 27),
        // A group that never committed: all three partitions' log starts, 10 + 7 + 25.
        (
            &[("consumerGroup", "nobody"), ("offsetResetPolicy", "earliest"), ("allowIdleConsumers", "true")],
            4,
            42,
        ),
    ];
    for (md, requests, value) in cases {
        let s = scaler(&b, md);
        s.poll().await.unwrap(); // warms the coordinator cache
        let before = s.cluster().requests_sent();
        let lag = s.poll().await.unwrap();
        let n = s.cluster().requests_sent() - before;
        assert_eq!((n, lag.value), (*requests, *value), "{md:?}");
    }
}
