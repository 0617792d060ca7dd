//! Tests of the window rule: whether a start/end pair is open at an instant, and when it next
//! opens or closes (across midnight and daylight saving).

use super::*;

#[test]
fn seed_window_in_seoul() {
    let start = sched("00,15,30,45 * * * *");
    let end = sched("05,20,35,50 * * * *");
    let table: &[(Hms, bool)] = &[
        ((10, 0, 0), true),
        ((10, 4, 59), true),
        ((10, 5, 0), false),
        ((10, 14, 59), false),
        ((10, 15, 0), true),
        ((9, 59, 59), false),
        ((23, 50, 0), false),
        ((0, 0, 0), true),
    ];
    for ((h, m, s), want) in table {
        let now = at(Seoul, 2026, 11, 23, *h, *m, *s).with_timezone(&Utc);
        assert_eq!(window_open(&start, &end, Seoul, now), *want, "{h}:{m}:{s}");
    }
}

#[test]
fn window_crossing_midnight() {
    let start = sched("0 22 * * *");
    let end = sched("0 6 * * *");
    let table: &[(DayHms, bool)] = &[
        ((23, 23, 0, 0), true),
        ((24, 5, 59, 0), true),
        ((24, 6, 0, 0), false),
        ((24, 21, 59, 0), false),
        ((24, 22, 0, 0), true),
        ((24, 0, 0, 0), true),
    ];
    for ((d, h, m, s), want) in table {
        let now = at(Seoul, 2026, 11, *d, *h, *m, *s).with_timezone(&Utc);
        assert_eq!(window_open(&start, &end, Seoul, now), *want, "{d} {h}:{m}:{s}");
    }
}

#[test]
fn identical_start_and_end_never_open() {
    let now = at(Seoul, 2026, 11, 23, 22, 30, 0).with_timezone(&Utc);
    for (a, b) in [
        ("0 22 * * *", "0 22 * * *"),
        ("0 22 * * *", "00 22 * * 0-7"),
        ("0 22 * * *", "0 22 1-31 * MON"),
        ("*/15 * * * *", "0,15,30,45 * * * *"),
    ] {
        let (start, end) = (sched(a), sched(b));
        assert!(start.same_fire_times(&end), "{a} / {b}");
        for minutes in (0..24 * 60).step_by(7) {
            let t = now + TimeDelta::minutes(minutes);
            assert!(!window_open(&start, &end, Seoul, t), "{a} / {b} at {t}");
        }
        assert_eq!(next_transition(&start, &end, Seoul, now), None);
    }
    assert!(!sched("0 22 1 * MON").same_fire_times(&sched("0 22 * * MON")));
    assert!(!sched("0 22 * * *").same_fire_times(&sched("0 22 * * 1-6")));
    assert!(!sched("0 22 * * *").same_fire_times(&sched("1 22 * * *")));
    assert!(!sched("0 22 * * *").same_fire_times(&sched("0 23 * * *")));
    assert!(!sched("0 22 * * *").same_fire_times(&sched("0 22 * 1-11 *")));
    assert!(sched("0 0 30 2 *").same_fire_times(&sched("0 0 31 4 *")));
}

#[test]
fn next_transition_for_the_seed_window() {
    let start = sched("00,15,30,45 * * * *");
    let end = sched("05,20,35,50 * * * *");
    let table: &[(Hms, (u32, u32))] = &[
        ((10, 2, 0), (10, 5)),
        ((10, 0, 0), (10, 5)),
        ((10, 5, 0), (10, 15)),
        ((10, 7, 0), (10, 15)),
        ((10, 14, 59), (10, 15)),
        ((23, 55, 0), (0, 0)),
    ];
    for ((h, m, s), (wh, wm)) in table {
        let now = at(Seoul, 2026, 11, 23, *h, *m, *s).with_timezone(&Utc);
        let got = next_transition(&start, &end, Seoul, now).unwrap().with_timezone(&Seoul);
        assert_eq!((got.hour(), got.minute(), got.second()), (*wh, *wm, 0), "{h}:{m}:{s}");
        // The state really flips there, and not just before.
        let before = window_open(&start, &end, Seoul, now);
        let just_before = got.with_timezone(&Utc) - TimeDelta::seconds(1);
        assert_eq!(window_open(&start, &end, Seoul, just_before), before);
        assert_ne!(window_open(&start, &end, Seoul, got.with_timezone(&Utc)), before);
    }
}

#[test]
fn next_transition_crossing_midnight_and_special_cases() {
    let start = sched("0 22 * * *");
    let end = sched("0 6 * * *");
    let noon = at(Seoul, 2026, 11, 23, 12, 0, 0).with_timezone(&Utc);
    assert_eq!(
        next_transition(&start, &end, Seoul, noon),
        Some(at(Seoul, 2026, 11, 23, 22, 0, 0).with_timezone(&Utc))
    );
    let late = at(Seoul, 2026, 11, 23, 23, 0, 0).with_timezone(&Utc);
    assert_eq!(
        next_transition(&start, &end, Seoul, late),
        Some(at(Seoul, 2026, 11, 24, 6, 0, 0).with_timezone(&Utc))
    );
    // Weekday business hours: Friday evening to Monday morning.
    let (open, close) = (sched("0 9 * * MON-FRI"), sched("0 17 * * 1-5"));
    let friday = at(Seoul, 2026, 11, 27, 18, 0, 0).with_timezone(&Utc);
    assert_eq!(
        next_transition(&open, &close, Seoul, friday),
        Some(at(Seoul, 2026, 11, 30, 9, 0, 0).with_timezone(&Utc))
    );
    // Start every minute, end yearly: open only in the last minute of the year.
    let (every, yearly) = (sched("* * * * *"), sched("@yearly"));
    let now = utc(2026, 6, 1, 0, 0, 0);
    assert!(!window_open(&every, &yearly, chrono_tz::UTC, now));
    // In the last minute both fire next at midnight; an end at the same instant counts.
    assert!(window_open(&every, &yearly, chrono_tz::UTC, utc(2026, 12, 31, 23, 59, 30)));
    assert!(!window_open(&every, &yearly, chrono_tz::UTC, utc(2027, 1, 1, 0, 0, 0)));
    assert_eq!(next_transition(&every, &yearly, chrono_tz::UTC, now), Some(utc(2026, 12, 31, 23, 59, 0)));
    // End every minute, start yearly: always open, no transition.
    assert!(window_open(&yearly, &every, chrono_tz::UTC, now));
    assert_eq!(next_transition(&yearly, &every, chrono_tz::UTC, now), None);
    // Start on even minutes, end every minute: every start coincides with an end; stays open.
    let even = sched("*/2 * * * *");
    assert!(window_open(&even, &every, chrono_tz::UTC, now));
    assert_eq!(next_transition(&even, &every, chrono_tz::UTC, now), None);
    // Starts coincide with ends until noon; the 12:00 start is not an end, so the window
    // closes at the last end before it.
    let morning = sched("* 0-11 * * *");
    assert!(window_open(&even, &morning, chrono_tz::UTC, now));
    assert_eq!(next_transition(&even, &morning, chrono_tz::UTC, now), Some(utc(2026, 6, 1, 11, 59, 0)));
    // A transition further than 366 days away is not reported.
    let (leap_start, leap_end) = (sched("0 0 29 2 *"), sched("0 1 29 2 *"));
    assert!(!window_open(&leap_start, &leap_end, chrono_tz::UTC, now));
    assert_eq!(next_transition(&leap_start, &leap_end, chrono_tz::UTC, now), None);
    assert_eq!(
        next_transition(&leap_start, &leap_end, chrono_tz::UTC, utc(2027, 6, 1, 0, 0, 0)),
        Some(utc(2028, 2, 29, 0, 0, 0))
    );
    // The rule compares next fire times only: with a yearly end long before a leap-day
    // start, the window counts as open until that end.
    let (feb29, mar1) = (sched("0 0 29 2 *"), sched("0 0 1 3 *"));
    assert!(window_open(&feb29, &mar1, chrono_tz::UTC, now));
    assert_eq!(next_transition(&feb29, &mar1, chrono_tz::UTC, now), Some(utc(2027, 3, 1, 0, 0, 0)));
}

#[test]
fn next_transition_matches_a_scan_across_daylight_saving() {
    let start = sched("30 1 * * *");
    let end = sched("0 3 * * *");
    let mut now = utc(2026, 10, 30, 0, 0, 0);
    let stop = utc(2026, 11, 3, 0, 0, 0);
    let mut flips = Vec::new();
    let mut state = window_open(&start, &end, New_York, now);
    let mut t = now;
    while t < stop {
        t += TimeDelta::minutes(1);
        let s = window_open(&start, &end, New_York, t);
        if s != state {
            flips.push(t);
            state = s;
        }
    }
    let mut predicted = Vec::new();
    while let Some(next) = next_transition(&start, &end, New_York, now) {
        if next >= stop {
            break;
        }
        predicted.push(next);
        now = next;
    }
    assert_eq!(predicted, flips);
    assert_eq!(flips.len(), 8);
    assert_eq!(flips[4], utc(2026, 11, 1, 5, 30, 0)); // opens 01:30 EDT
    assert_eq!(flips[5], utc(2026, 11, 1, 8, 0, 0)); // closes 03:00 EST
    assert_eq!(at(New_York, 2026, 11, 1, 3, 0, 0).weekday(), Weekday::Sun, "fall-back day is a Sunday");
}
