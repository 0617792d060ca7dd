//! Sequences of syncs 15 s apart: stabilization windows, scale-event accounting across syncs,
//! the Kubernetes documentation examples and the two seed behaviors. Expected counts are
//! derived by hand from the rules in the module documentation.

use super::defaults::{AGGRESSIVE, CONSERVATIVE, seed};
use super::*;

fn with_windows(up: i32, down: i32, b: Behavior) -> Behavior {
    Behavior {
        scale_up: ScalingRules { stabilization_window_seconds: up, ..b.scale_up },
        scale_down: ScalingRules { stabilization_window_seconds: down, ..b.scale_down },
    }
}

#[test]
fn default_scale_down_window_keeps_the_highest_of_five_minutes() {
    // Target 10 (AverageValue). t0: 50 on 5 replicas → ratio 1 → 5. t15: 100 → 10 (limit
    // max(5+4, 10) = 10). From t30: 20 → proposal 2, held at 10 while the t15 record (10) is
    // strictly newer than now − 300, i.e. up to t300; at t315 → 2 (100 %/15 s allows it).
    let mut calc = HpaCalculator::new(1, 20, Behavior::default());
    let recs = simulate(&mut calc, 5, 23, |t| {
        avg(
            match t {
                0 => 50.0,
                15 => 100.0,
                _ => 20.0,
            },
            10.0,
        )
    });
    assert_eq!(desired(&recs), runs(&[(1, 5), (20, 10), (2, 2)]));
    let r = &recs[2];
    assert_eq!((r.proposal, r.stabilized, r.reason.as_str()), (Some(2), Some(10), "ScaleDownStabilized"));
    assert_eq!(recs[21].reason, "DesiredWithinRange");
    // Records older than both windows are reused: never more than the 300 s window holds.
    assert!(calc.recommendations().len() <= 22, "{}", calc.recommendations().len());
}

#[test]
fn scale_up_window_keeps_the_lowest_of_its_window() {
    // Up window 60 s, target 10, from 4 replicas. Values: t0 40 (→ 4), t15 80, t30 80 (→ 8),
    // t45 40 (→ 4 on 4 replicas), then 80. The lowest record in (now − 60, now] stays 4 while
    // the t45 record is inside: up to t90. At t105 all records are 8 → 8 (limit max(8, 8)).
    let b = with_windows(60, 0, Behavior::default());
    let mut calc = HpaCalculator::new(1, 20, b);
    let recs = simulate(&mut calc, 4, 9, |t| avg(if t == 0 || t == 45 { 40.0 } else { 80.0 }, 10.0));
    assert_eq!(desired(&recs), runs(&[(7, 4), (2, 8)]));
    assert_eq!((recs[6].proposal, recs[6].reason.as_str()), (Some(8), "ScaleUpStabilized"));
}

#[test]
fn doc_percent_10_per_minute_from_10_replicas() {
    // Scale-down Percent 10 / 60 s, no window, proposal 1. t0: trunc(10 × 0.9) = 9. Until the
    // t0 event leaves the period (at t60, exactly 60 s old) the period start is 9 + 1 = 10 → hold.
    // Then each minute: trunc(9 × .9) = 8, 7, 6, 5, 4, 3, 2, 1.
    let b = Behavior {
        scale_down: rules(0, SelectPolicy::Max, &[Policy::percent(10, 60)]),
        ..Behavior::default()
    };
    let mut calc = HpaCalculator::new(1, 10, b);
    let recs = simulate(&mut calc, 10, 34, |_| avg(1.0, 1.0));
    let want = runs(&[(4, 9), (4, 8), (4, 7), (4, 6), (4, 5), (4, 4), (4, 3), (4, 2), (2, 1)]);
    assert_eq!(desired(&recs), want);
    assert_eq!(recs[1].reason, "ScaleDownLimit");
}

#[test]
fn doc_pods_4_and_percent_10_from_80_replicas() {
    // Scale-down Pods 4 / 60 s + Percent 10 / 60 s, select Max (the larger change), min 10,
    // proposal 10. Per minute: min(80−4, trunc(72.0)) = 72; min(68, trunc(64.8)) = 64;
    // min(60, 57.6) = 57; min(53, 51.3) = 51; min(47, 45.9) = 45; min(41, 40.5) = 40;
    // min(36, 36.0) = 36; min(32, 32.4) = 32; min(28, 28.8) = 28; below 40 Pods removes more:
    // min(24, 25.2) = 24; min(20, 21.6) = 20; min(16, 18) = 16; min(12, 14.4) = 12;
    // then 8 < min 10 → 10.
    let b = Behavior {
        scale_down: rules(0, SelectPolicy::Max, &[Policy::pods(4, 60), Policy::percent(10, 60)]),
        ..Behavior::default()
    };
    let mut calc = HpaCalculator::new(10, 100, b);
    let recs = simulate(&mut calc, 80, 57, |_| avg(10.0, 1.0));
    let minutes = [72, 64, 57, 51, 45, 40, 36, 32, 28, 24, 20, 16, 12, 10];
    let mut want: Vec<i32> = minutes.iter().flat_map(|&m| [m; 4]).collect();
    want.push(10);
    assert_eq!(desired(&recs), want);
    assert_eq!(recs[52].reason, "DesiredWithinRange");
}

#[test]
fn scale_up_events_count_within_their_period() {
    // Scale-up Pods 2 / 60 s from 2 replicas, proposal 20: +2 per minute; inside the minute the
    // period start is current − 2, so the limit equals current.
    let b = Behavior { scale_up: rules(0, SelectPolicy::Max, &[Policy::pods(2, 60)]), ..Behavior::default() };
    let mut calc = HpaCalculator::new(1, 20, b);
    let recs = simulate(&mut calc, 2, 9, |_| avg(20.0, 1.0));
    assert_eq!(desired(&recs), runs(&[(4, 4), (4, 6), (1, 8)]));
    assert_eq!(recs[1].reason, "ScaleUpLimit");
    // t0 event reused at t120 (older than the 60 s period), t60 event kept.
    assert_eq!(
        calc.scale_up_events(),
        &[Stamped { at: at(120), replicas: 2 }, Stamped { at: at(60), replicas: 2 }]
    );
}

#[test]
fn events_of_both_directions_shape_the_period_start() {
    // Up Pods 2 / 60 s, down Pods 5 / 60 s, no windows, target 1.
    // t0: 10 → proposal 5: limit 10 − 5 = 5 → 5 (event −5).
    // t15: value 12 → proposal 12: period start 5 + 5 (removed) = 10 → limit 12 → 12 (event +7).
    // t30: value 3 → proposal 3: period start 12 − 7 + 5 = 10 → limit 5 → 5 (event −7).
    // t45: value 1 → proposal 1: period start 5 − 7 + 12 = 10 → limit 5 → hold 5.
    // t60: the t0 event is out: 5 − 7 + 7 = 5 → limit 0 → min 1 → 1.
    let b = Behavior {
        scale_up: rules(0, SelectPolicy::Max, &[Policy::pods(2, 60)]),
        scale_down: rules(0, SelectPolicy::Max, &[Policy::pods(5, 60)]),
    };
    let mut calc = HpaCalculator::new(1, 20, b);
    let values = [5.0, 12.0, 3.0, 1.0, 1.0];
    let recs = simulate(&mut calc, 10, 5, |t| avg(values[(t / 15) as usize], 1.0));
    assert_eq!(desired(&recs), [5, 12, 5, 5, 1]);
    let reasons: Vec<&str> = recs.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "DesiredWithinRange",
            "DesiredWithinRange",
            "ScaleDownLimit",
            "ScaleDownLimit",
            "DesiredWithinRange"
        ]
    );
}

#[test]
fn conservative_seed() {
    // min 2, max 6; up: window 60, Percent 50 / 60 s and Pods 2 / 60 s, select Min; down:
    // window 300, Percent 25 / 60 s. Target 10; value 20 at t0, 60 until t180, then 0.
    // t0: ratio 1 → 2. t15–t45: proposal 6 but the 60 s up window still holds the t0 records
    //   of 2 → 2. t60: window all 6 → limit min(ceil(2 × 1.5), 2 + 2) = 3 → 3 (event +1).
    // t75–t105: period start 3 − 1 = 2 → limit 3 → hold. t120: min(ceil(4.5), 5) = 5.
    // t135–t165: hold 5. t180: limit min(ceil(7.5), 7) = 7, proposal 6 (= max) fits → 6.
    // t195: proposal 0, held at 6 by the 300 s down window until the t180 record (6) leaves it:
    //   last held at t465. t480: trunc(6 × 0.75) = 4. t495–t525: start 4 + 2 → hold.
    //   t540: trunc(4 × 0.75) = 3. t600: trunc(3 × 0.75) = 2 = min.
    let mut calc = HpaCalculator::new(2, 6, seed(CONSERVATIVE));
    let recs = simulate(&mut calc, 2, 42, |t| {
        avg(
            match t {
                0 => 20.0,
                15..=180 => 60.0,
                _ => 0.0,
            },
            10.0,
        )
    });
    let want = runs(&[(4, 2), (4, 3), (4, 5), (20, 6), (4, 4), (4, 3), (2, 2)]);
    assert_eq!(desired(&recs), want);
    let reason = |i: usize| recs[i].reason.as_str();
    assert_eq!(
        [reason(1), reason(4), reason(5), reason(12), reason(13), reason(32), reason(40)],
        [
            "ScaleUpStabilized",
            "ScaleUpLimit",
            "ScaleUpLimit",
            "DesiredWithinRange",
            "ScaleDownStabilized",
            "ScaleDownLimit",
            "TooFewReplicas"
        ]
    );
}

#[test]
fn aggressive_seed() {
    // min 10, max 1000; up: no window, Percent 100 / 10 s and Pods 100 / 10 s, select Max;
    // down: window 300, Percent 10 / 60 s. Target 1; value 1000 up to t60, then 500.
    // Syncs are 15 s apart, so each sees no event inside its 10 s periods:
    // t0: max(20, 110) = 110; t15: max(220, 210) = 220; 440; 880; t60: limit 1760, proposal
    // 1000 (= max) fits → 1000.
    // t75: proposal 500 held at 1000 until the t60 record (1000) leaves the 300 s window:
    //   last held at t345. t360: trunc(1000 × 0.9) = 900. Then per minute: 810, 729,
    //   trunc(656.1) = 656, trunc(590.4) = 590 (ratio 500/590 ≈ 0.85, still outside the band),
    //   531; there the ratio 500/531 ≈ 0.94 is inside the tolerance band → stays 531.
    let mut calc = HpaCalculator::new(10, 1000, seed(AGGRESSIVE));
    let recs = simulate(&mut calc, 10, 50, |t| avg(if t <= 60 { 1000.0 } else { 500.0 }, 1.0));
    let want = runs(&[
        (1, 110),
        (1, 220),
        (1, 440),
        (1, 880),
        (20, 1000),
        (4, 900),
        (4, 810),
        (4, 729),
        (4, 656),
        (4, 590),
        (6, 531),
    ]);
    assert_eq!(desired(&recs), want);
    assert_eq!((recs[0].reason.as_str(), recs[4].reason.as_str()), ("ScaleUpLimit", "DesiredWithinRange"));
    assert_eq!((recs[48].proposal, recs[48].reason.as_str()), (Some(531), "DesiredWithinRange"));
}

#[test]
fn without_behavior_window_includes_its_start_and_no_down_limit() {
    // No spec.behavior. t0: proposal 10 from 5 (cap max(10, 4) = 10). Then proposal 2: the t0
    // record (10) counts while not older than now − 300, i.e. up to and including t300; at
    // t315 → straight to 2 (no scale-down rate limit).
    let mut legacy = HpaCalculator::without_behavior(1, 20);
    let values = |t: i64| avg(if t == 0 { 10.0 } else { 2.0 }, 1.0);
    let recs = simulate(&mut legacy, 5, 23, values);
    assert_eq!(desired(&recs), runs(&[(21, 10), (2, 2)]));
    assert_eq!(recs[1].reason, "ScaleDownStabilized");

    // With the default behavior the same record stops counting at t300 (strictly newer only).
    let mut with = HpaCalculator::new(1, 20, Behavior::default());
    let recs = simulate(&mut with, 5, 23, values);
    assert_eq!(desired(&recs), runs(&[(20, 10), (3, 2)]));
}

#[test]
fn without_behavior_stabilization_can_raise_the_count() {
    // No spec.behavior: t0 5 → 10. If the target is then set to 4 by someone else and the
    // metrics propose 2, the highest recent recommendation (10) wins and the cap is
    // max(2 × 4, 4) = 8 → 8. With a behavior, the current count 4 lies within [2, 10] → 4.
    let mut legacy = HpaCalculator::without_behavior(1, 20);
    assert_eq!(legacy.sync(at(0), 5, 5, &avg(10.0, 1.0)).desired, 10);
    let r = legacy.sync(at(15), 4, 4, &avg(2.0, 1.0));
    assert_eq!((r.desired, r.stabilized, r.reason.as_str()), (8, Some(10), "ScaleUpLimit"));

    let mut with = HpaCalculator::new(1, 20, Behavior::default());
    assert_eq!(with.sync(at(0), 5, 5, &avg(10.0, 1.0)).desired, 10);
    let r = with.sync(at(15), 4, 4, &avg(2.0, 1.0));
    assert_eq!((r.desired, r.stabilized, r.reason.as_str()), (4, Some(4), "ScaleDownStabilized"));
}

#[test]
fn first_sync_seeds_the_history_with_the_current_count() {
    // The seed record (10 at t0) holds a scale-down for the whole default window.
    let mut calc = HpaCalculator::new(1, 20, Behavior::default());
    let recs = simulate(&mut calc, 10, 22, |_| avg(2.0, 1.0));
    assert_eq!(desired(&recs), runs(&[(20, 10), (2, 2)]));
}
