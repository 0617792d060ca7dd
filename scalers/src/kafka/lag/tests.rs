//! Lag arithmetic, table-driven over one fixed set of offsets (the same the integration tests
//! produce on a real broker): p0 latest 10 committed 4, p1 latest 7 never committed, p2 latest 25
//! committed 5.

use super::*;

fn offsets() -> Vec<PartitionOffsets> {
    let p = |partition, latest, committed| PartitionOffsets {
        topic: "t".into(),
        partition,
        latest,
        committed,
        log_start: None,
    };
    vec![p(0, 10, Some(4)), p(1, 7, None), p(2, 25, Some(5))]
}

fn opts(threshold: i64) -> LagOptions {
    LagOptions {
        lag_threshold: threshold,
        offset_reset: OffsetResetPolicy::Latest,
        scale_to_zero_on_invalid_offset: false,
        allow_idle_consumers: false,
        limit_to_partitions_with_lag: false,
        exclude_persistent_lag: false,
        even_distribution: false,
    }
}

#[test]
fn lag_per_option_combination() {
    use OffsetResetPolicy::{Earliest, Latest};
    // (name, threshold, policy, scaleToZero, allowIdle, limitToPartitionsWithLag, value, with lag, capped)
    type Case = (&'static str, i64, OffsetResetPolicy, bool, bool, bool, i64, usize, bool);
    let cases: &[Case] = &[
        ("latest: uncommitted counts 1", 10, Latest, false, false, false, 27, 3, false),
        ("latest + scaleToZero: uncommitted counts 0", 10, Latest, true, false, false, 26, 2, false),
        (
            "earliest: uncommitted counts its latest offset, capped at 3×10",
            10,
            Earliest,
            false,
            false,
            false,
            30,
            3,
            true,
        ),
        ("earliest + allowIdle: no cap", 10, Earliest, false, true, false, 33, 3, false),
        ("earliest + scaleToZero", 10, Earliest, true, false, false, 26, 2, false),
        ("cap at partitions × threshold", 5, Latest, false, false, false, 15, 3, true),
        ("allowIdle lifts the cap", 5, Latest, false, true, false, 27, 3, false),
        ("limitToPartitionsWithLag: 3 with lag", 5, Latest, false, false, true, 15, 3, true),
        ("limitToPartitionsWithLag + scaleToZero: 2 with lag", 5, Latest, true, false, true, 10, 2, true),
        ("threshold 1: cap 3", 1, Latest, false, false, false, 3, 3, true),
    ];
    for (name, threshold, policy, s2z, idle, limit, value, with_lag, capped) in cases {
        let o = LagOptions {
            offset_reset: *policy,
            scale_to_zero_on_invalid_offset: *s2z,
            allow_idle_consumers: *idle,
            limit_to_partitions_with_lag: *limit,
            ..opts(*threshold)
        };
        let (t, _) = total_lag(&offsets(), &o, &PreviousOffsets::default());
        assert_eq!((t.value, t.partitions_with_lag, t.capped), (*value, *with_lag, *capped), "{name}");
        assert_eq!(t.partitions, 3, "{name}");
        // Activation sees the uncapped sum.
        let uncapped = match (policy, s2z) {
            (_, true) => 26,
            (Latest, false) => 27,
            (Earliest, false) => 33,
        };
        assert_eq!(t.activation_lag, uncapped, "{name}");
    }
}

#[test]
fn persistent_lag_is_excluded_from_the_value_but_not_from_activation() {
    let o = LagOptions { exclude_persistent_lag: true, ..opts(100) };
    let (first, prev) = total_lag(&offsets(), &o, &PreviousOffsets::default());
    assert_eq!((first.value, first.activation_lag), (27, 27), "first poll: nothing seen before");
    assert_eq!(prev.len(), 2, "uncommitted partitions are not remembered");

    let (second, prev) = total_lag(&offsets(), &o, &prev);
    assert_eq!((second.value, second.activation_lag), (1, 27), "p0 and p2 did not move; p1 has no offset");
    assert_eq!(second.partitions_with_lag, 1);

    let mut moved = offsets();
    moved[0].committed = Some(8);
    let (third, prev) = total_lag(&moved, &o, &prev);
    assert_eq!((third.value, third.activation_lag), (2 + 1, 2 + 1 + 20), "p0 moved, p2 still stuck");
    assert_eq!(prev.get("t", 0), Some(8));

    // Without the option the state is neither read nor kept.
    let (plain, kept) = total_lag(&offsets(), &opts(100), &prev);
    assert_eq!(plain.value, 27);
    assert!(kept.is_empty());
}

#[test]
fn partition_lag_edge_cases() {
    let o = opts(10);
    let none = PreviousOffsets::default();
    let part = |latest, committed| PartitionOffsets {
        topic: "t".into(),
        partition: 0,
        latest,
        committed,
        log_start: None,
    };
    // Committed beyond the latest offset (topic truncated or recreated) is no lag, not negative.
    assert_eq!(partition_lag(&part(3, Some(9)), &o, &none).lag, 0);
    // Earliest on an empty partition without a commit: 0.
    let e = LagOptions { offset_reset: OffsetResetPolicy::Earliest, ..o };
    assert_eq!(partition_lag(&part(0, None), &e, &none).lag, 0);
    assert_eq!(partition_lag(&part(0, Some(0)), &o, &none).lag, 0);
    // No partitions: 0, not capped.
    let (t, _) = total_lag(&[], &o, &none);
    assert_eq!((t.value, t.capped, t.partitions), (0, false, 0));
}

#[test]
fn earliest_counts_only_retained_records_of_uncommitted_partitions() {
    // KEDA: with offsetResetPolicy earliest and no committed offset, lag = log end − log start
    // (records removed by retention cannot be consumed). Unknown log start → log end.
    let e = LagOptions { offset_reset: OffsetResetPolicy::Earliest, allow_idle_consumers: true, ..opts(10) };
    let none = PreviousOffsets::default();
    let part = |latest, log_start| PartitionOffsets {
        topic: "t".into(),
        partition: 0,
        latest,
        committed: None,
        log_start,
    };
    // (log end, log start, lag)
    let cases: &[(i64, Option<i64>, i64)] = &[
        (7, Some(0), 7),
        (7, Some(3), 4),
        (100, Some(100), 0), // every record expired: nothing to consume
        (7, None, 7),        // log start not read: the whole log end
        (7, Some(9), 0),     // inconsistent answer: never negative
    ];
    for (latest, log_start, lag) in cases {
        let l = partition_lag(&part(*latest, *log_start), &e, &none);
        assert_eq!((l.lag, l.lag_with_persistent), (*lag, *lag), "log end {latest}, log start {log_start:?}");
    }
    // A committed offset ignores the log start; scaleToZeroOnInvalidOffset still gives 0.
    let committed = PartitionOffsets { committed: Some(5), ..part(7, Some(3)) };
    assert_eq!(partition_lag(&committed, &e, &none).lag, 2);
    let s2z = LagOptions { scale_to_zero_on_invalid_offset: true, ..e };
    assert_eq!(partition_lag(&part(7, Some(3)), &s2z, &none).lag, 0);
    // The fixture with p1's log start at 3: 6 + 4 + 20.
    let mut parts = offsets();
    parts[1].log_start = Some(3);
    assert_eq!(total_lag(&parts, &e, &none).0.value, 30);
}

#[test]
fn even_distribution_rounds_replicas_up_to_a_factor_of_the_partitions() {
    // KEDA docs, ensureEvenDistributionOfPartitions: 10 partitions, lagThreshold 10 → consumers
    // 1, 2, 5 or 10: lag 1–10 → 1, 11–20 → 2, 21–50 → 5, above 50 → 10. The value served is
    // replicas × threshold, so the HPA (ceil(value / threshold)) lands on exactly that factor.
    let o = LagOptions { even_distribution: true, ..opts(10) };
    let none = PreviousOffsets::default();
    let ten = |lag_each: &[i64]| -> Vec<PartitionOffsets> {
        (0..10)
            .map(|i| PartitionOffsets {
                topic: "t".into(),
                partition: i,
                latest: 100 + lag_each.get(i as usize).copied().unwrap_or(0),
                committed: Some(100),
                log_start: None,
            })
            .collect()
    };
    // (total lag, replicas the HPA computes)
    let cases: &[(i64, i64)] = &[
        (0, 0),
        (1, 1),
        (10, 1),
        (11, 2),
        (20, 2),
        (21, 5),
        (35, 5),
        (50, 5),
        (51, 10),
        (99, 10),
        (100, 10),
    ];
    for (lag, replicas) in cases {
        let (t, _) = total_lag(&ten(&[*lag]), &o, &none);
        assert_eq!(t.value, replicas * 10, "lag {lag}");
        assert_eq!(t.activation_lag, *lag, "activation sees the raw lag");
    }
    // Above partitions × threshold: the cap keeps 10 replicas (10 is a factor of itself).
    assert_eq!(total_lag(&ten(&[500]), &o, &none).0.value, 100);
    // allowIdleConsumers lifts the cap, and the rounding stops at the partition count as KEDA's
    // does (no factor above it).
    let idle = LagOptions { allow_idle_consumers: true, ..o };
    assert_eq!(total_lag(&ten(&[500]), &idle, &none).0.value, 100);
    // A prime partition count: 1 or all. 3 partitions (the fixture), threshold 10, lag 27 → 3.
    assert_eq!(total_lag(&offsets(), &o, &none).0.value, 30);
    let small = LagOptions { even_distribution: true, ..opts(100) };
    assert_eq!(total_lag(&offsets(), &small, &none).0.value, 100, "lag 27 ≤ 1 × 100 → 1 replica");
    // Off: unchanged.
    assert_eq!(total_lag(&ten(&[35]), &opts(10), &none).0.value, 35);
}
