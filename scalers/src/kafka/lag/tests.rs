//! Lag arithmetic, table-driven over one fixed set of offsets (the same the integration tests
//! produce on a real broker): p0 latest 10 committed 4, p1 latest 7 never committed, p2 latest 25
//! committed 5.

use super::*;

fn offsets() -> Vec<PartitionOffsets> {
    let p =
        |partition, latest, committed| PartitionOffsets { topic: "t".into(), partition, latest, committed };
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
    let part = |latest, committed| PartitionOffsets { topic: "t".into(), partition: 0, latest, committed };
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
