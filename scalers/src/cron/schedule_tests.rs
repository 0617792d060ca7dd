//! Tests of Linux cron parsing and fire times (including daylight saving); the window rule's
//! tests are in `schedule_window_tests.rs`.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::America::New_York;
use chrono_tz::Asia::Seoul;
use chrono_tz::Europe::London;
use chrono_tz::Tz;

use super::*;

/// Local hour, minute, second.
type Hms = (u32, u32, u32);
/// Local day of month, hour, minute, second.
type DayHms = (u32, u32, u32, u32);

fn sched(expr: &str) -> Schedule {
    Schedule::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"))
}

fn at(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Tz> {
    tz.with_ymd_and_hms(y, mo, d, h, mi, s).single().unwrap()
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

/// The next `n` fire times after `from`, formatted as local time with the offset.
fn fires<Tz2: TimeZone>(expr: &str, from: DateTime<Tz2>, n: usize) -> Vec<String>
where
    Tz2::Offset: std::fmt::Display,
{
    let s = sched(expr);
    let mut out = Vec::new();
    let mut t = from;
    for _ in 0..n {
        let Some(next) = s.next_after(&t) else { break };
        assert!(next > t, "{expr}: {next} not after {t}");
        out.push(next.format("%Y-%m-%d %a %H:%M:%S %:z").to_string());
        t = next;
    }
    out
}

/// Like [`fires`] for UTC, formatted without seconds and offset.
fn fires_utc(expr: &str, from: DateTime<Utc>, n: usize) -> Vec<String> {
    let strip = |s: String| s.trim_end_matches(":00 +00:00").to_string();
    fires(expr, from, n).into_iter().map(strip).collect()
}

#[test]
fn day_of_week_1_to_5_is_monday_to_friday() {
    // Saturday 2026-03-07.
    let got = fires_utc("0 8 * * 1-5", utc(2026, 3, 7, 0, 0, 0), 6);
    assert_eq!(
        got,
        [
            "2026-03-09 Mon 08:00",
            "2026-03-10 Tue 08:00",
            "2026-03-11 Wed 08:00",
            "2026-03-12 Thu 08:00",
            "2026-03-13 Fri 08:00",
            "2026-03-16 Mon 08:00",
        ]
    );
}

#[test]
fn zero_and_seven_are_sunday() {
    let from = utc(2026, 3, 2, 0, 0, 0); // Monday
    let sunday = ["2026-03-08 Sun 08:00", "2026-03-15 Sun 08:00"];
    assert_eq!(fires_utc("0 8 * * 0", from, 2), sunday);
    assert_eq!(fires_utc("0 8 * * 7", from, 2), sunday);
    assert_eq!(fires_utc("0 8 * * sun", from, 2), sunday);
    assert_eq!(
        fires_utc("0 8 * * 5-7", from, 4),
        ["2026-03-06 Fri 08:00", "2026-03-07 Sat 08:00", "2026-03-08 Sun 08:00", "2026-03-13 Fri 08:00",]
    );
    assert_eq!(fires_utc("0 8 * * 6", from, 1), ["2026-03-07 Sat 08:00"]);
}

#[test]
fn weekday_names_match_numbers() {
    let from = utc(2026, 3, 7, 12, 0, 0);
    let numeric = fires_utc("30 9 * * 1-5", from, 12);
    assert_eq!(fires_utc("30 9 * * MON-FRI", from, 12), numeric);
    assert_eq!(fires_utc("30 9 * * mon-Fri", from, 12), numeric);
    assert_eq!(fires_utc("30 9 * * 1,2,3,4,5", from, 12), numeric);
    assert_eq!(
        fires_utc("0 0 * * mon,wed", from, 3),
        ["2026-03-09 Mon 00:00", "2026-03-11 Wed 00:00", "2026-03-16 Mon 00:00",]
    );
    assert_eq!(
        fires_utc("0 0 * * */2", from, 4),
        ["2026-03-08 Sun 00:00", "2026-03-10 Tue 00:00", "2026-03-12 Thu 00:00", "2026-03-14 Sat 00:00",]
    );
}

#[test]
fn minute_steps_ranges_and_lists() {
    let from = utc(2026, 5, 4, 10, 0, 0);
    let minutes = |expr: &str, n: usize| -> Vec<u32> {
        let s = sched(expr);
        let mut t = from;
        (0..n)
            .map(|_| {
                t = s.next_after(&t).unwrap();
                t.minute()
            })
            .collect()
    };
    let table: &[(&str, &[u32])] = &[
        ("*/15 * * * *", &[15, 30, 45, 0, 15]),
        ("10-50/20 * * * *", &[10, 30, 50, 10]),
        ("5/20 * * * *", &[5, 25, 45, 5]),
        ("00,15,30,45 * * * *", &[15, 30, 45, 0]),
        ("1-3,58 * * * *", &[1, 2, 3, 58, 1]),
        ("*/25 * * * *", &[25, 50, 0]),
        ("59 * * * *", &[59, 59]),
    ];
    for (expr, want) in table {
        assert_eq!(minutes(expr, want.len()), *want, "{expr}");
    }
    assert_eq!(
        fires_utc("0 */6 * * *", from, 3),
        ["2026-05-04 Mon 12:00", "2026-05-04 Mon 18:00", "2026-05-05 Tue 00:00",]
    );
}

#[test]
fn month_names() {
    let from = utc(2026, 2, 10, 0, 0, 0);
    let want = ["2026-07-01 Wed 00:00", "2027-01-01 Fri 00:00", "2027-07-01 Thu 00:00"];
    assert_eq!(fires_utc("0 0 1 jan,JUL *", from, 3), want);
    assert_eq!(fires_utc("0 0 1 1,7 *", from, 3), want);
    assert_eq!(
        fires_utc("0 0 1 FEB-apr *", from, 3),
        ["2026-03-01 Sun 00:00", "2026-04-01 Wed 00:00", "2027-02-01 Mon 00:00",]
    );
}

#[test]
fn day_of_month_and_day_of_week_either_rule() {
    // Both restricted: the 1st OR any Monday.
    assert_eq!(
        fires_utc("0 0 1 * MON", utc(2026, 3, 22, 0, 0, 0), 4),
        ["2026-03-23 Mon 00:00", "2026-03-30 Mon 00:00", "2026-04-01 Wed 00:00", "2026-04-06 Mon 00:00",]
    );
    // One of them `*`: both must match.
    assert_eq!(
        fires_utc("0 0 * * MON", utc(2026, 3, 30, 0, 0, 0), 2),
        ["2026-04-06 Mon 00:00", "2026-04-13 Mon 00:00"]
    );
    assert_eq!(
        fires_utc("0 0 1 * *", utc(2026, 3, 30, 0, 0, 0), 2),
        ["2026-04-01 Wed 00:00", "2026-05-01 Fri 00:00"]
    );
    assert_eq!(fires_utc("0 0 1 * ?", utc(2026, 3, 30, 0, 0, 0), 1), ["2026-04-01 Wed 00:00"]);
    // A stepped star is a restriction: the 13th OR Sunday/Friday (*/5 = 0,5), April 2026.
    assert_eq!(
        fires_utc("0 0 13 * */5", utc(2026, 4, 8, 0, 0, 0), 4),
        ["2026-04-10 Fri 00:00", "2026-04-12 Sun 00:00", "2026-04-13 Mon 00:00", "2026-04-17 Fri 00:00",]
    );
}

#[test]
fn descriptors() {
    let from = utc(2026, 3, 4, 10, 30, 0); // Wednesday
    let table: &[(&str, &str)] = &[
        ("@yearly", "2027-01-01 Fri 00:00"),
        ("@annually", "2027-01-01 Fri 00:00"),
        ("@monthly", "2026-04-01 Wed 00:00"),
        ("@weekly", "2026-03-08 Sun 00:00"),
        ("@daily", "2026-03-05 Thu 00:00"),
        ("@midnight", "2026-03-05 Thu 00:00"),
        ("@hourly", "2026-03-04 Wed 11:00"),
        (" @Daily ", "2026-03-05 Thu 00:00"),
    ];
    for (expr, want) in table {
        assert_eq!(fires_utc(expr, from, 1), [*want], "{expr}");
        assert_eq!(sched(expr).expression(), *expr);
    }
}

#[test]
fn errors_name_the_expression_field_and_expectation() {
    // Field errors: `<field> "<text>" <problem> in "<expression>"`.
    let field_errors: &[(&str, &str)] = &[
        ("0 8 * * 8", r#"day-of-week "8" out of range 0-7 (0 and 7 are Sunday) or SUN-SAT"#),
        ("0 0 * * 1-8", r#"day-of-week "8" out of range 0-7 (0 and 7 are Sunday) or SUN-SAT"#),
        ("60 * * * *", r#"minute "60" out of range 0-59"#),
        ("99999999999 * * * *", r#"minute "99999999999" out of range 0-59"#),
        ("0 24 * * *", r#"hour "24" out of range 0-23"#),
        ("0 0 0 * *", r#"day-of-month "0" out of range 1-31"#),
        ("0 0 32 * *", r#"day-of-month "32" out of range 1-31"#),
        ("0 0 1 13 *", r#"month "13" out of range 1-12 (or JAN-DEC)"#),
        ("0 0 1 JANUARY *", r#"month "JANUARY" is not a number or name; expected 1-12 (or JAN-DEC)"#),
        (
            "0 0 * * MONDAY",
            r#"day-of-week "MONDAY" is not a number or name; expected 0-7 (0 and 7 are Sunday) or SUN-SAT"#,
        ),
        ("x * * * *", r#"minute "x" is not a number; expected 0-59"#),
        ("MON * * * *", r#"minute "MON" is not a number; expected 0-59"#),
        ("? * * * *", r#"minute "?" is not a number; expected 0-59"#),
        ("*/0 * * * *", r#"minute "*/0" has step "0"; expected a whole number of at least 1"#),
        ("0 */x * * *", r#"hour "*/x" has step "x"; expected a whole number of at least 1"#),
        (
            "0 0 1-5/2/3 * *",
            r#"day-of-month "1-5/2/3" has step "2/3"; expected a whole number of at least 1"#,
        ),
        ("0 0 * * 5-1", r#"day-of-week "5-1" is a backwards range; the start must not be after the end"#),
        ("0 0 * DEC-JAN *", r#"month "DEC-JAN" is a backwards range; the start must not be after the end"#),
        ("1,,2 * * * *", r#"minute "1,,2" has an empty list element"#),
        ("0 1, * * *", r#"hour "1," has an empty list element"#),
        (
            "-5 * * * *",
            r#"minute "-5" is malformed; expected a value, a range a-b, a step */n, a-b/n or a/n, or *"#,
        ),
        (
            "0 1-2-3 * * *",
            r#"hour "1-2-3" is malformed; expected a value, a range a-b, a step */n, a-b/n or a/n, or *"#,
        ),
    ];
    const FIVE: &str = "expected 5 fields (minute hour day-of-month month day-of-week)";
    const DESCRIPTORS: &str =
        "expected one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly";
    let other_errors = [
        (
            "0 0 8 * * 1-5",
            format!(r#"{FIVE}, found 6 in "0 0 8 * * 1-5" (a leading seconds field is not supported)"#),
        ),
        ("0 8 * *", format!(r#"{FIVE}, found 4 in "0 8 * *""#)),
        ("", format!(r#"{FIVE}, found 0 in """#)),
        ("@reboot", format!(r#"unknown descriptor "@reboot"; {DESCRIPTORS}"#)),
        ("@every 5m", format!(r#"unknown descriptor "@every 5m"; {DESCRIPTORS}"#)),
    ];
    let field_errors = field_errors.iter().map(|(expr, msg)| (*expr, format!("{msg} in {expr:?}")));
    for (expr, want) in field_errors.chain(other_errors) {
        let err = Schedule::parse(expr).err().unwrap_or_else(|| panic!("{expr:?} parsed"));
        assert_eq!(err.to_string(), want, "{expr:?}");
    }
}

#[test]
fn next_after_is_strict_and_ignores_subseconds() {
    let s = sched("*/15 * * * *");
    let on = utc(2026, 1, 1, 10, 15, 0);
    assert_eq!(s.next_after(&on), Some(utc(2026, 1, 1, 10, 30, 0)));
    let just_before = on - TimeDelta::milliseconds(1);
    assert_eq!(s.next_after(&just_before), Some(on));
    let just_after = on + TimeDelta::nanoseconds(1);
    assert_eq!(s.next_after(&just_after), Some(utc(2026, 1, 1, 10, 30, 0)));
}

#[test]
fn never_firing_and_out_of_range_searches_end() {
    let never = sched("0 0 30 2 *");
    assert_eq!(never.next_after(&utc(2026, 1, 1, 0, 0, 0)), None);
    assert_eq!(never.prev_before(&utc(2026, 1, 1, 0, 0, 0)), None);
    let leap = sched("0 0 29 2 *");
    assert_eq!(leap.next_after(&utc(2026, 1, 1, 0, 0, 0)), Some(utc(2028, 2, 29, 0, 0, 0)));
    let every = sched("* * * * *");
    assert_eq!(every.next_after(&utc(2200, 1, 1, 0, 0, 0)), None);
    assert_eq!(every.next_after(&utc(1900, 1, 1, 0, 0, 0)), None);
    assert_eq!(every.next_after(&DateTime::<Utc>::MAX_UTC), None);
    assert_eq!(every.next_after(&DateTime::<Utc>::MIN_UTC), None);
    let east = FixedOffset::east_opt(14 * 3600).unwrap();
    assert_eq!(every.next_after(&DateTime::<Utc>::MAX_UTC.with_timezone(&east)), None);
    assert_eq!(every.prev_before(&DateTime::<Utc>::MAX_UTC), Some(utc(2100, 12, 31, 23, 59, 0)));
    assert_eq!(every.next_after(&utc(2100, 12, 31, 23, 58, 30)), Some(utc(2100, 12, 31, 23, 59, 0)));
    // A window whose start never fires is closed and never changes.
    let end = sched("0 6 * * *");
    assert!(!window_open(&never, &end, Seoul, utc(2026, 1, 1, 0, 0, 0)));
    assert_eq!(next_transition(&never, &end, Seoul, utc(2026, 1, 1, 0, 0, 0)), None);
    assert!(!window_open(&end, &never, Seoul, utc(2026, 1, 1, 0, 0, 0)));
}

#[test]
fn fixed_offset_zone_is_respected() {
    let kst = FixedOffset::east_opt(9 * 3600).unwrap();
    let from = kst.with_ymd_and_hms(2026, 3, 6, 23, 0, 0).unwrap(); // Friday 23:00 = 14:00 UTC
    let next = sched("0 8 * * 1-5").next_after(&from).unwrap();
    assert_eq!(next.to_rfc3339(), "2026-03-09T08:00:00+09:00");
}

fn bit(set: u64, v: u32) -> bool {
    set & (1 << v) != 0
}

/// A wall-clock matcher written independently of the crate translation: the day part.
fn day_matches(f: &Fields, d: NaiveDate) -> bool {
    let dom = bit(f.days_of_month, d.day());
    let dow = bit(f.days_of_week, d.weekday().num_days_from_sunday());
    let day = match f.day_rule {
        DayRule::Both => dom && dow,
        DayRule::Either => dom || dow,
    };
    day && bit(f.months, d.month())
}

fn matches(f: &Fields, t: NaiveDateTime) -> bool {
    day_matches(f, t.date()) && bit(f.minutes, t.minute()) && bit(f.hours, t.hour())
}

#[test]
fn translation_agrees_with_a_minute_by_minute_scan() {
    let exprs = [
        "0 8 * * 1-5",
        "*/7 3-5 * * *",
        "0 0 1 * MON",
        "15 12 13 * FRI",
        "0 0 31 * *",
        "0 0 29 2 *",
        "30 23 * 12 sat,sun",
        "0 6 1-7 * 0",
        "0 6 */10 */3 7",
        "5/20 1/5 * * *",
        "0 0 L * *",
    ];
    let starts = [
        NaiveDate::from_ymd_opt(2026, 1, 1).unwrap().and_hms_opt(0, 0, 0).unwrap(),
        NaiveDate::from_ymd_opt(2027, 12, 31).unwrap().and_hms_opt(23, 59, 30).unwrap(),
        NaiveDate::from_ymd_opt(2028, 2, 28).unwrap().and_hms_opt(12, 34, 0).unwrap(),
    ];
    let mut checked = 0;
    for expr in exprs {
        let Ok(s) = Schedule::parse(expr) else {
            assert_eq!(expr, "0 0 L * *", "only the L case is invalid");
            continue;
        };
        for start in starts {
            let mut t = start.and_utc();
            for _ in 0..5 {
                let got = s.next_after(&t).unwrap();
                let mut want = t.naive_utc().with_second(0).unwrap() + TimeDelta::minutes(1);
                while !matches(&s.fields, want) {
                    want = if day_matches(&s.fields, want.date()) {
                        want + TimeDelta::minutes(1)
                    } else {
                        want.date().succ_opt().unwrap().and_hms_opt(0, 0, 0).unwrap()
                    };
                    assert!(want.year() < 2060, "{expr}: no match");
                }
                assert_eq!(got.naive_utc(), want, "{expr} after {t}");
                let back = s.prev_before(&got).unwrap();
                assert!(back < got && back <= t.max(back), "{expr}: prev {back} of {got}");
                assert!(matches(&s.fields, back.naive_utc()), "{expr}: prev {back}");
                assert_eq!(s.next_after(&back), Some(got), "{expr}: prev/next round trip");
                t = got;
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 10 * 3 * 5);
}

#[test]
fn spring_forward_gap_fires_at_the_transition_new_york() {
    // 2026-03-08 02:00 EST becomes 03:00 EDT; 02:30 does not exist.
    let from = at(New_York, 2026, 3, 7, 12, 0, 0);
    assert_eq!(
        fires("30 2 * * *", from, 3),
        [
            "2026-03-08 Sun 03:00:00 -04:00",
            "2026-03-09 Mon 02:30:00 -04:00",
            "2026-03-10 Tue 02:30:00 -04:00",
        ]
    );
    let gap_fire = sched("30 2 * * *").next_after(&from).unwrap();
    assert_eq!(gap_fire.with_timezone(&Utc), utc(2026, 3, 8, 7, 0, 0));
    // Several gap times collapse into one firing; a real 03:00 merges with it too.
    assert_eq!(
        fires("*/15 2,3 * * *", at(New_York, 2026, 3, 8, 1, 50, 0), 3),
        [
            "2026-03-08 Sun 03:00:00 -04:00",
            "2026-03-08 Sun 03:15:00 -04:00",
            "2026-03-08 Sun 03:30:00 -04:00",
        ]
    );
    // Hourly: 01:00 EST, then the transition, then 04:00.
    assert_eq!(
        fires("0 * * * *", at(New_York, 2026, 3, 8, 0, 30, 0), 3),
        [
            "2026-03-08 Sun 01:00:00 -05:00",
            "2026-03-08 Sun 03:00:00 -04:00",
            "2026-03-08 Sun 04:00:00 -04:00",
        ]
    );
    // Looking back from after the gap finds the transition instant once.
    let s = sched("30 2 * * *");
    let back = s.prev_before(&at(New_York, 2026, 3, 8, 12, 0, 0)).unwrap();
    assert_eq!(back.with_timezone(&Utc), utc(2026, 3, 8, 7, 0, 0));
}

#[test]
fn fall_back_repeated_time_fires_once_new_york() {
    // 2026-11-01 02:00 EDT becomes 01:00 EST; 01:30 happens twice.
    let s = sched("30 1 * * *");
    let from = at(New_York, 2026, 10, 31, 12, 0, 0);
    let first = s.next_after(&from).unwrap();
    assert_eq!(first.with_timezone(&Utc), utc(2026, 11, 1, 5, 30, 0)); // 01:30 EDT
    let second = s.next_after(&first).unwrap();
    assert_eq!(second.with_timezone(&Utc), utc(2026, 11, 2, 6, 30, 0)); // next day, EST
    // From inside the repeated hour (01:10 EST), the day's firing is already past.
    let repeated = utc(2026, 11, 1, 6, 10, 0).with_timezone(&New_York);
    assert_eq!(repeated.format("%H:%M %:z").to_string(), "01:10 -05:00");
    assert_eq!(s.next_after(&repeated), Some(second));
    assert_eq!(s.prev_before(&second), Some(first));
    assert_eq!(s.prev_before(&repeated), Some(first));
    // Hourly across the fold: 01:00 fires once.
    assert_eq!(
        fires("0 * * * *", at(New_York, 2026, 10, 31, 23, 30, 0), 3),
        [
            "2026-11-01 Sun 00:00:00 -04:00",
            "2026-11-01 Sun 01:00:00 -04:00",
            "2026-11-01 Sun 02:00:00 -05:00",
        ]
    );
}

#[test]
fn daylight_saving_london() {
    // 2026-03-29 01:00 GMT becomes 02:00 BST; 2026-10-25 02:00 BST becomes 01:00 GMT.
    let s = sched("30 1 * * *");
    let spring = s.next_after(&at(London, 2026, 3, 28, 12, 0, 0)).unwrap();
    assert_eq!(spring.with_timezone(&Utc), utc(2026, 3, 29, 1, 0, 0));
    assert_eq!(spring.format("%H:%M %:z").to_string(), "02:00 +01:00");
    let autumn = s.next_after(&at(London, 2026, 10, 24, 12, 0, 0)).unwrap();
    assert_eq!(autumn.with_timezone(&Utc), utc(2026, 10, 25, 0, 30, 0));
    let after = s.next_after(&autumn).unwrap();
    assert_eq!(after.with_timezone(&Utc), utc(2026, 10, 26, 1, 30, 0));
}

#[test]
fn equal_schedules_share_one_crate_schedule_while_in_use() {
    // Two spellings of the same value sets share; a different schedule does not.
    let a = sched("0 8 * * 1-5");
    let b = sched("0 8 * * MON-FRI");
    let c = sched("0 9 * * 1-5");
    assert!(std::sync::Arc::ptr_eq(&a.iterators, &b.iterators));
    assert!(!std::sync::Arc::ptr_eq(&a.iterators, &c.iterators));
    // Both still compute their own fire times.
    let monday = at(London, 2026, 12, 7, 0, 0, 0);
    assert_eq!(b.next_after(&monday).unwrap().format("%H:%M").to_string(), "08:00");
    assert_eq!(c.next_after(&monday).unwrap().format("%H:%M").to_string(), "09:00");
    // The table holds no strong reference: once every user is gone the schedules are freed.
    let weak = std::sync::Arc::downgrade(&c.iterators);
    drop(c);
    assert!(weak.upgrade().is_none());
}

#[path = "schedule_window_tests.rs"]
mod window;
