//! The wall-clock search over a parsed cron schedule's value sets: the first matching minute
//! strictly after a whole second, and the last strictly before one, in wall-clock years
//! 1970-2100. Works on the five bit sets of [`super::Fields`] directly (a few machine words per
//! schedule, nothing allocated), field by field from the month down: a month not in the set
//! skips to the next month in it, a day that does not match skips to the next day, an hour to the
//! next hour, and the minute is the next set bit. Time zones are not its concern: the caller
//! places the wall-clock result in its zone (`schedule.rs`).

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike};

use super::Fields;

/// First wall-clock year searched.
pub(super) const FIRST_YEAR: i32 = 1970;
/// Last wall-clock year searched.
pub(super) const LAST_YEAR: i32 = 2100;

/// Lowest set bit of `bits` at or above `from`.
fn next_bit(bits: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let rest = bits >> from << from;
    (rest != 0).then(|| rest.trailing_zeros())
}

/// Highest set bit of `bits` at or below `upto`.
fn prev_bit(bits: u64, upto: u32) -> Option<u32> {
    let kept = if upto >= 63 { bits } else { bits & ((2u64 << upto) - 1) };
    (kept != 0).then(|| 63 - kept.leading_zeros())
}

fn at(day: NaiveDate, hour: u32, minute: u32) -> Option<NaiveDateTime> {
    Some(day.and_time(NaiveTime::from_hms_opt(hour, minute, 0)?))
}

fn first_of_next_month(day: NaiveDate) -> Option<NaiveDate> {
    let (y, m) = if day.month() == 12 { (day.year() + 1, 1) } else { (day.year(), day.month() + 1) };
    NaiveDate::from_ymd_opt(y, m, 1)
}

fn last_of_previous_month(day: NaiveDate) -> Option<NaiveDate> {
    day.with_day(1)?.pred_opt()
}

impl Fields {
    fn day_ok(&self, day: NaiveDate) -> bool {
        self.day_matches(day.month(), day.day(), day.weekday().num_days_from_sunday())
    }

    /// Earliest matching wall-clock minute strictly after `cursor`.
    pub(super) fn next_after(&self, cursor: NaiveDateTime) -> Option<NaiveDateTime> {
        // The first whole minute after `cursor`.
        let t = cursor.with_nanosecond(0)?.with_second(0)?.checked_add_signed(TimeDelta::minutes(1))?;
        let (mut day, mut hour, mut minute) = (t.date(), t.hour(), t.minute());
        loop {
            if day.year() > LAST_YEAR {
                return None;
            }
            if self.months & (1 << day.month()) == 0 {
                (day, hour, minute) = (first_of_next_month(day)?, 0, 0);
                continue;
            }
            if !self.day_ok(day) {
                (day, hour, minute) = (day.succ_opt()?, 0, 0);
                continue;
            }
            let Some(h) = next_bit(self.hours, hour).filter(|h| *h < 24) else {
                (day, hour, minute) = (day.succ_opt()?, 0, 0);
                continue;
            };
            if h != hour {
                (hour, minute) = (h, 0);
            }
            match next_bit(self.minutes, minute).filter(|m| *m < 60) {
                Some(m) => return at(day, hour, m),
                None if hour < 23 => (hour, minute) = (hour + 1, 0),
                None => (day, hour, minute) = (day.succ_opt()?, 0, 0),
            }
        }
    }

    /// Latest matching wall-clock minute strictly before `cursor`.
    pub(super) fn prev_before(&self, cursor: NaiveDateTime) -> Option<NaiveDateTime> {
        // The last whole minute before `cursor`.
        let t = cursor.checked_sub_signed(TimeDelta::nanoseconds(1))?;
        let (mut day, mut hour, mut minute) = (t.date(), t.hour(), t.minute());
        loop {
            if day.year() < FIRST_YEAR {
                return None;
            }
            if day.year() > LAST_YEAR {
                (day, hour, minute) = (NaiveDate::from_ymd_opt(LAST_YEAR, 12, 31)?, 23, 59);
                continue;
            }
            if self.months & (1 << day.month()) == 0 {
                (day, hour, minute) = (last_of_previous_month(day)?, 23, 59);
                continue;
            }
            if !self.day_ok(day) {
                (day, hour, minute) = (day.pred_opt()?, 23, 59);
                continue;
            }
            let Some(h) = prev_bit(self.hours, hour) else {
                (day, hour, minute) = (day.pred_opt()?, 23, 59);
                continue;
            };
            if h != hour {
                (hour, minute) = (h, 59);
            }
            match prev_bit(self.minutes, minute) {
                Some(m) => return at(day, hour, m),
                None if hour > 0 => (hour, minute) = (hour - 1, 59),
                None => (day, hour, minute) = (day.pred_opt()?, 23, 59),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_helpers() {
        assert_eq!(next_bit(0b1010, 0), Some(1));
        assert_eq!(next_bit(0b1010, 2), Some(3));
        assert_eq!(next_bit(0b1010, 4), None);
        assert_eq!(next_bit(1 << 63, 63), Some(63));
        assert_eq!(next_bit(u64::MAX, 64), None);
        assert_eq!(prev_bit(0b1010, 2), Some(1));
        assert_eq!(prev_bit(0b1010, 0), None);
        assert_eq!(prev_bit(1 << 63, 63), Some(63));
        assert_eq!(prev_bit(1 << 63, 62), None);
    }
}
