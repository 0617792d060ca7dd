//! Linux (5-field) cron schedules for the cron scaler, and the start/end window rule.
//!
//! Owns parsing of `minute hour day-of-month month day-of-week` expressions and the `@yearly` …
//! `@hourly` descriptors, the search for the next fire time in an IANA time zone, and the window
//! decision ([`window_open`], [`next_transition`]).
//!
//! # Syntax
//! Each field is a comma-separated list of `*`, `v`, `a-b`, `*/n`, `a-b/n` or `a/n` (`a/n` means
//! `a` to the field maximum, step `n`). Ranges: minute 0-59, hour 0-23, day-of-month 1-31,
//! month 1-12 or `JAN`-`DEC`, day-of-week 0-7 or `SUN`-`SAT` with 0 and 7 both Sunday. Names are
//! three letters, case-insensitive, and may be range ends. `?` is accepted as `*` in the two day
//! fields. When both day fields are restricted (neither contains a bare `*`/`?`), a day matches if
//! EITHER matches; otherwise both must match. `*/2` counts as restricted.
//!
//! # Why the `cron` crate is fed a translation
//! The `cron` crate (0.17) iterates efficiently but has a different dialect: a leading seconds
//! field, days of week numbered 1 = Sunday … 7 = Saturday (0 rejected), and AND semantics for
//! the two day fields. Passing Linux text straight through silently shifts weekdays by one.
//! So every field is parsed and validated here into an explicit set of values, and the crate
//! only receives a generated expression: seconds `0`, explicit value lists, and days of week as
//! names (`SUN,MON,…`), which mean the same thing in both dialects. The EITHER rule becomes two
//! crate schedules (day-of-month only, day-of-week only) whose earliest time wins.
//!
//! # Time zones and daylight saving
//! The crate iterates wall-clock times (run in UTC, which has no transitions); each wall-clock
//! candidate is then placed in the caller's zone: a time that does not exist (spring-forward
//! gap) fires at the first instant after the gap, i.e. at the transition itself (02:30 on a
//! 02:00→03:00 day fires at 03:00 new time; several gap times collapse into that one firing); a
//! time that exists twice (fall-back) fires once, at its first occurrence. This placement never
//! moves a later wall-clock time before an earlier one, so the first placed candidate after the
//! reference instant is the answer. Fire times are searched in wall-clock years 1970-2100 (the
//! crate's range); outside it, or for expressions that never fire (`0 0 30 2 *`), the search
//! returns `None`. Every loop is bounded.
//!
//! # Shared schedules
//! A crate schedule keeps each field as an ordered set (about 4 KB for a window's two
//! expressions), and clusters repeat the same few schedules across thousands of ScaledObjects.
//! Parsed schedules are therefore interned: equal value sets share one immutable crate schedule
//! ([`shared_iterators`]), held by weak reference so a schedule no object uses is freed.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, Weak};

use chrono::{DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Timelike, Utc};

/// The five fields of a Linux cron expression, for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CronField {
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

impl fmt::Display for CronField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CronField::Minute => "minute",
            CronField::Hour => "hour",
            CronField::DayOfMonth => "day-of-month",
            CronField::Month => "month",
            CronField::DayOfWeek => "day-of-week",
        })
    }
}

/// Why a cron expression was rejected. Each message is one line naming the expression.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "expected 5 fields (minute hour day-of-month month day-of-week), found {found} in {expression:?}{hint}"
    )]
    FieldCount { expression: String, found: usize, hint: &'static str },
    #[error(
        "unknown descriptor {expression:?}; expected one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly"
    )]
    UnknownDescriptor { expression: String },
    #[error("{field} {value:?} {problem} in {expression:?}")]
    Field { expression: String, field: CronField, value: String, problem: String },
    #[error("cron expression {expression:?} could not be prepared for evaluation: {reason}")]
    Internal { expression: String, reason: String },
}

/// A parsed Linux cron expression, ready to compute fire times.
#[derive(Clone, Debug)]
pub struct Schedule {
    expression: String,
    fields: Fields,
    /// One crate schedule, or two for the EITHER day rule (earliest wins); shared by every
    /// schedule with the same value sets.
    iterators: Arc<[cron::Schedule]>,
}

/// How the day-of-month and day-of-week sets combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum DayRule {
    /// Both must match (at least one of the fields was `*`).
    Both,
    /// Either may match (both fields restricted).
    Either,
}

/// Parsed value sets: bit `v` set means value `v` matches. Days of week use 0 = Sunday … 6.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Fields {
    minutes: u64,
    hours: u64,
    days_of_month: u64,
    months: u64,
    days_of_week: u64,
    day_rule: DayRule,
}

const ALL_DAYS_OF_WEEK: u64 = mask(0, 6);
const MONTH_NAMES: [&str; 12] =
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
/// Wall-clock years the `cron` crate searches.
const LAST_YEAR: i32 = 2100;
/// Upper bound on wall-clock candidates examined per search (DST folds/gaps skip a few).
const MAX_CANDIDATES: usize = 10_000;
/// Upper bound on simultaneous start/end firings walked by [`next_transition`].
const MAX_TRANSITION_STEPS: usize = 20_000;

/// The interned crate schedules: value sets → the schedules built for them while any
/// [`Schedule`] holds them.
type Interned = HashMap<Fields, Weak<[cron::Schedule]>>;

static INTERNED: Mutex<Option<Interned>> = Mutex::new(None);

/// The crate schedules for `fields`, built once and shared while in use. Entries whose
/// schedules were dropped are swept whenever the table doubles, so it stays within twice the
/// number of distinct schedules in use.
fn shared_iterators(expr: &str, fields: Fields) -> Result<Arc<[cron::Schedule]>, ScheduleError> {
    // A poisoned lock only means another parse panicked mid-insert; the table is still valid.
    let mut guard = INTERNED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let table = guard.get_or_insert_with(HashMap::new);
    if let Some(live) = table.get(&fields).and_then(Weak::upgrade) {
        return Ok(live);
    }
    let built = fields
        .crate_expressions()
        .iter()
        .map(|text| {
            text.parse::<cron::Schedule>().map_err(|e| ScheduleError::Internal {
                expression: expr.to_string(),
                reason: format!("generated {text:?} was rejected: {e}"),
            })
        })
        .collect::<Result<Arc<[_]>, _>>()?;
    if table.len() >= 64 && table.len() == table.capacity() {
        table.retain(|_, weak| weak.strong_count() > 0);
    }
    table.insert(fields, Arc::downgrade(&built));
    Ok(built)
}

/// Bits `lo..=hi` set (`hi` < 63).
const fn mask(lo: u32, hi: u32) -> u64 {
    (1 << (hi + 1)) - (1 << lo)
}

impl Schedule {
    /// Parses a 5-field Linux cron expression or a descriptor such as `@daily`.
    pub fn parse(expr: &str) -> Result<Schedule, ScheduleError> {
        let trimmed = expr.trim();
        let canonical = if trimmed.starts_with('@') {
            descriptor(trimmed)
                .ok_or_else(|| ScheduleError::UnknownDescriptor { expression: expr.to_string() })?
        } else {
            trimmed
        };
        let parts: Vec<&str> = canonical.split_whitespace().collect();
        let [minute, hour, dom, month, dow] = parts[..] else {
            return Err(ScheduleError::FieldCount {
                expression: expr.to_string(),
                found: parts.len(),
                hint: if parts.len() == 6 { " (a leading seconds field is not supported)" } else { "" },
            });
        };
        let field = |kind, text| parse_field(expr, kind, text);
        let (minutes, _) = field(CronField::Minute, minute)?;
        let (hours, _) = field(CronField::Hour, hour)?;
        let (days_of_month, any_dom) = field(CronField::DayOfMonth, dom)?;
        let (months, _) = field(CronField::Month, month)?;
        let (days_of_week, any_dow) = field(CronField::DayOfWeek, dow)?;
        let fields = Fields {
            minutes,
            hours,
            days_of_month,
            months,
            // 7 is Sunday too.
            days_of_week: (days_of_week | (days_of_week >> 7)) & ALL_DAYS_OF_WEEK,
            day_rule: if any_dom || any_dow { DayRule::Both } else { DayRule::Either },
        };
        let iterators = shared_iterators(expr, fields)?;
        Ok(Schedule { expression: expr.to_string(), fields, iterators })
    }

    /// The expression exactly as given to [`Schedule::parse`].
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// True when both schedules fire at exactly the same wall-clock times (e.g. `0 22 * * *` and
    /// `0 22 * * 0-7`, or two that never fire). As start and end they describe an empty window.
    pub fn same_fire_times(&self, other: &Schedule) -> bool {
        self.fields.within(&other.fields) && other.fields.within(&self.fields)
    }

    /// First fire time strictly after `after`, evaluated in the time zone of `after`.
    pub fn next_after<Tz: TimeZone>(&self, after: &DateTime<Tz>) -> Option<DateTime<Tz>> {
        let tz = after.timezone();
        let wall = wall_clock(after)?;
        if wall.year() < 1970 || wall.year() > LAST_YEAR {
            return None;
        }
        // Candidates at or before the wall clock of `after` are placed at or before `after`.
        let mut cursor = wall.with_nanosecond(0)?;
        for _ in 0..MAX_CANDIDATES {
            let naive = self.next_wall_after(cursor)?;
            if let Some(instant) = place(&tz, naive)
                && instant > *after
            {
                return Some(instant);
            }
            cursor = naive;
        }
        None
    }

    /// Last fire time strictly before `before`, evaluated in the time zone of `before`.
    fn prev_before<Tz: TimeZone>(&self, before: &DateTime<Tz>) -> Option<DateTime<Tz>> {
        let tz = before.timezone();
        let wall = wall_clock(before)?;
        if wall.year() < 1970 {
            return None;
        }
        // If `before` is the second occurrence of a repeated wall time, later wall times of the
        // fold are placed at their first occurrence, before `before`: start past the fold.
        let fold = match tz.from_local_datetime(&wall) {
            LocalResult::Ambiguous(a, b) => {
                let first = if a < b { a } else { b };
                before.clone().signed_duration_since(first).max(TimeDelta::zero())
            }
            _ => TimeDelta::zero(),
        };
        let mut cursor = if wall.year() > LAST_YEAR {
            NaiveDate::from_ymd_opt(LAST_YEAR + 1, 1, 1)?.and_hms_opt(0, 0, 0)?
        } else {
            wall.checked_add_signed(fold)?.with_nanosecond(0)?.checked_add_signed(TimeDelta::seconds(1))?
        };
        for _ in 0..MAX_CANDIDATES {
            let naive = self.prev_wall_before(cursor)?;
            if let Some(instant) = place(&tz, naive)
                && instant < *before
            {
                return Some(instant);
            }
            cursor = naive;
        }
        None
    }

    /// Earliest wall-clock fire time strictly after `cursor` (a whole second).
    fn next_wall_after(&self, cursor: NaiveDateTime) -> Option<NaiveDateTime> {
        let start = cursor.and_utc();
        self.iterators.iter().filter_map(|s| s.after(&start).next()).min().map(|t| t.naive_utc())
    }

    /// Latest wall-clock fire time strictly before `cursor` (a whole second, years 1970-2101).
    fn prev_wall_before(&self, cursor: NaiveDateTime) -> Option<NaiveDateTime> {
        let start = cursor.and_utc();
        self.iterators.iter().filter_map(|s| s.after(&start).next_back()).max().map(|t| t.naive_utc())
    }
}

impl Fields {
    fn day_matches(&self, month: u32, dom: u32, dow: u32) -> bool {
        let bit = |set: u64, v: u32| set & (1 << v) != 0;
        let (d, w) = (bit(self.days_of_month, dom), bit(self.days_of_week, dow));
        bit(self.months, month)
            && match self.day_rule {
                DayRule::Both => d && w,
                DayRule::Either => d || w,
            }
    }

    /// True when every wall-clock time matched by `self` is matched by `other`; checked over
    /// every (month, day-of-month, day-of-week) combination a calendar can produce.
    fn within(&self, other: &Fields) -> bool {
        const DAYS_IN_MONTH: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        let days = (1..=12u32).flat_map(|m| {
            (1..=DAYS_IN_MONTH[m as usize - 1]).flat_map(move |d| (0..7).map(move |w| (m, d, w)))
        });
        let mut own = days.filter(|&(m, d, w)| self.day_matches(m, d, w)).peekable();
        // A schedule that never fires is within anything.
        own.peek().is_none()
            || (self.minutes & !other.minutes == 0
                && self.hours & !other.hours == 0
                && own.all(|(m, d, w)| other.day_matches(m, d, w)))
    }

    /// Expressions in the `cron` crate's dialect (seconds first, weekdays by name).
    fn crate_expressions(&self) -> Vec<String> {
        let number = |v: u32| v.to_string();
        let minutes = list(self.minutes, 0, 59, number);
        let hours = list(self.hours, 0, 23, number);
        let months = list(self.months, 1, 12, number);
        let doms = list(self.days_of_month, 1, 31, number);
        let dows = list(self.days_of_week, 0, 6, |v| DAY_NAMES[v as usize].to_string());
        let line = |dom: &str, dow: &str| format!("0 {minutes} {hours} {dom} {months} {dow}");
        match self.day_rule {
            DayRule::Both => vec![line(&doms, &dows)],
            DayRule::Either => vec![line(&doms, "*"), line("*", &dows)],
        }
    }
}

/// `*` for a full set, else the values in `lo..=hi` that are set, comma-separated.
fn list(bits: u64, lo: u32, hi: u32, show: impl Fn(u32) -> String) -> String {
    if bits == mask(lo, hi) {
        return "*".to_string();
    }
    let values: Vec<String> = (lo..=hi).filter(|v| bits & (1 << v) != 0).map(show).collect();
    values.join(",")
}

/// The 5-field form of a descriptor, if `text` is one.
fn descriptor(text: &str) -> Option<&'static str> {
    Some(match text.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        _ => return None,
    })
}

/// Limits of one field: accepted values, the end of `*`, and names (indexed from `lo`).
struct Limits {
    lo: u32,
    hi: u32,
    star_hi: u32,
    names: &'static [&'static str],
    expected: &'static str,
}

fn limits(field: CronField) -> Limits {
    let plain = |lo, hi, expected| Limits { lo, hi, star_hi: hi, names: &[], expected };
    match field {
        CronField::Minute => plain(0, 59, "0-59"),
        CronField::Hour => plain(0, 23, "0-23"),
        CronField::DayOfMonth => plain(1, 31, "1-31"),
        CronField::Month => Limits { names: &MONTH_NAMES, ..plain(1, 12, "1-12 (or JAN-DEC)") },
        CronField::DayOfWeek => {
            Limits { star_hi: 6, names: &DAY_NAMES, ..plain(0, 7, "0-7 (0 and 7 are Sunday) or SUN-SAT") }
        }
    }
}

/// One field's value set, and whether it contains a bare `*` (or `?`), i.e. is unrestricted.
fn parse_field(expr: &str, field: CronField, text: &str) -> Result<(u64, bool), ScheduleError> {
    let limits = limits(field);
    let fail = |value: &str, problem: String| ScheduleError::Field {
        expression: expr.to_string(),
        field,
        value: value.to_string(),
        problem,
    };
    let day_field = matches!(field, CronField::DayOfMonth | CronField::DayOfWeek);
    let (mut bits, mut unrestricted) = (0u64, false);
    for element in text.split(',') {
        if element.is_empty() {
            return Err(fail(text, "has an empty list element".to_string()));
        }
        let (range, step) = match element.split_once('/') {
            Some((range, step)) => {
                let n = parse_step(step).ok_or_else(|| {
                    fail(element, format!("has step {step:?}; expected a whole number of at least 1"))
                })?;
                (range, Some(n))
            }
            None => (element, None),
        };
        let (lo, hi, star) = if range == "*" || (day_field && range == "?") {
            (limits.lo, limits.star_hi, true)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (
                value(&limits, a, element).map_err(|p| fail(p.0, p.1))?,
                value(&limits, b, element).map_err(|p| fail(p.0, p.1))?,
            );
            if a > b {
                return Err(fail(
                    element,
                    "is a backwards range; the start must not be after the end".to_string(),
                ));
            }
            (a, b, false)
        } else {
            let v = value(&limits, range, element).map_err(|p| fail(p.0, p.1))?;
            match step {
                Some(_) => (v, limits.star_hi.max(v), false),
                None => (v, v, false),
            }
        };
        let step = step.unwrap_or(1);
        unrestricted |= star && step == 1;
        let mut v = lo;
        while v <= hi {
            bits |= 1 << v;
            v = v.saturating_add(step);
        }
    }
    Ok((bits, unrestricted))
}

fn parse_step(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Huge steps simply select the first value only.
    let n = text.parse::<u32>().unwrap_or(u32::MAX);
    (n >= 1).then_some(n)
}

/// One value (number or name) of a field; on failure, the text to show and the problem.
fn value<'a>(limits: &Limits, token: &'a str, element: &'a str) -> Result<u32, (&'a str, String)> {
    let malformed = || {
        (element, "is malformed; expected a value, a range a-b, a step */n, a-b/n or a/n, or *".to_string())
    };
    if token.is_empty() || token.contains('-') || token.contains('/') {
        return Err(malformed());
    }
    if token.bytes().all(|b| b.is_ascii_digit()) {
        let n = token.parse::<u32>().unwrap_or(u32::MAX);
        if n < limits.lo || n > limits.hi {
            return Err((token, format!("out of range {}", limits.expected)));
        }
        return Ok(n);
    }
    if let Some(i) = limits.names.iter().position(|name| name.eq_ignore_ascii_case(token)) {
        return Ok(limits.lo + i as u32);
    }
    let kind = ["a number or name", "a number"][usize::from(limits.names.is_empty())];
    Err((token, format!("is not {kind}; expected {}", limits.expected)))
}

/// The wall-clock time of `t` in its own zone, without panicking at the edges of chrono's range.
fn wall_clock<Tz: TimeZone>(t: &DateTime<Tz>) -> Option<NaiveDateTime> {
    use chrono::Offset;
    t.naive_utc().checked_add_offset(t.offset().fix())
}

/// Places a wall-clock time in `tz`: the first occurrence of a repeated time, or the end of a
/// daylight-saving gap for a time that does not exist.
fn place<Tz: TimeZone>(tz: &Tz, wall: NaiveDateTime) -> Option<DateTime<Tz>> {
    match tz.from_local_datetime(&wall) {
        LocalResult::Single(t) => Some(t),
        LocalResult::Ambiguous(a, b) => Some(if a < b { a } else { b }),
        LocalResult::None => end_of_gap(tz, wall),
    }
}

/// The first instant whose wall clock is later than `wall`, which lies in a gap: the transition.
fn end_of_gap<Tz: TimeZone>(tz: &Tz, wall: NaiveDateTime) -> Option<DateTime<Tz>> {
    // Offsets stay within ±26 h, so the transition lies within 36 h of `wall` read as UTC.
    const SPAN: i64 = 36 * 3600;
    let local_at = |secs: i64| -> Option<NaiveDateTime> {
        let utc = DateTime::from_timestamp(secs, 0)?;
        wall_clock(&tz.from_utc_datetime(&utc.naive_utc()))
    };
    let guess = wall.and_utc().timestamp();
    let (mut lo, mut hi) = (guess.checked_sub(SPAN)?, guess.checked_add(SPAN)?);
    if local_at(lo)? >= wall || local_at(hi)? <= wall {
        return None;
    }
    // Invariant: local(lo) <= wall < local(hi).
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if local_at(mid)? > wall {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(tz.from_utc_datetime(&DateTime::from_timestamp(hi, 0)?.naive_utc()))
}

/// The window rule: with `nextStart`/`nextEnd` the first fire times strictly after `now` in `tz`,
/// the window is open iff `nextEnd <= nextStart`, i.e. it is open on `[start, end)`. Schedules
/// that fire at the same times describe an empty window; if either never fires again, closed.
pub fn window_open(start: &Schedule, end: &Schedule, tz: chrono_tz::Tz, now: DateTime<Utc>) -> bool {
    if start.same_fire_times(end) {
        return false;
    }
    let local = now.with_timezone(&tz);
    open_at(start, end, &local).unwrap_or(false)
}

/// `Some(open)` from the next start and end fire times after `t`, `None` if either never fires.
fn open_at(start: &Schedule, end: &Schedule, t: &DateTime<chrono_tz::Tz>) -> Option<bool> {
    let next_start = start.next_after(t)?;
    let next_end = end.next_after(t)?;
    Some(next_end <= next_start)
}

/// Next instant strictly after `now` at which [`window_open`] changes value, if one exists
/// within 366 days. Walks at most 20 000 instants where start and end fire together.
pub fn next_transition(
    start: &Schedule,
    end: &Schedule,
    tz: chrono_tz::Tz,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if start.same_fire_times(end) {
        return None;
    }
    let horizon = now.checked_add_signed(TimeDelta::days(366))?;
    let within = |t: DateTime<chrono_tz::Tz>| {
        let t = t.with_timezone(&Utc);
        (t <= horizon).then_some(t)
    };
    let mut t = now.with_timezone(&tz);
    // If either schedule never fires again, the window stays closed for good.
    let initially_open = open_at(start, end, &t)?;
    if initially_open && start.fields.within(&end.fields) {
        // Every start is also an end: the next event is always an end, so it stays open.
        return None;
    }
    for _ in 0..MAX_TRANSITION_STEPS {
        let next_start = start.next_after(&t)?;
        let next_end = end.next_after(&t)?;
        if next_end > next_start {
            // Closed until the last start before `next_end`: from then on the next event is
            // the end.
            return within(start.prev_before(&next_end)?);
        }
        // Open while some end fires in (t', next_start]. The last end before `next_start`
        // closes the window, unless an end also fires exactly at `next_start`.
        let last_end = end.prev_before(&next_start).filter(|e| *e > t);
        let base = last_end.unwrap_or(t);
        if end.next_after(&base)? != next_start {
            return within(last_end?);
        }
        // Both fire at `next_start`: the state after it decides.
        t = next_start;
        if t.with_timezone(&Utc) > horizon {
            return None;
        }
        if open_at(start, end, &t)? != initially_open {
            return Some(t.with_timezone(&Utc));
        }
    }
    None
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
