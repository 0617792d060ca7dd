//! Metric series for `ebb simulate --series METRIC=file.csv`: rows of `time,value`, where time is
//! RFC 3339 or an offset from `--from` (`90s`, `5m`, `1h30m`, or plain seconds) and an empty
//! value stands for a failed measurement. The value at an instant is the last row at or before it.

use chrono::{DateTime, Duration, Utc};

use crate::error::CliError;

/// A step function of time.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// (time, value) ascending; `None` = the source failed.
    points: Vec<(DateTime<Utc>, Option<f64>)>,
}

impl Series {
    /// Parses CSV text; `origin` is `--from`, used for offsets. `file` names the source in errors.
    pub fn parse(text: &str, origin: DateTime<Utc>, file: &str) -> Result<Self, CliError> {
        let mut points = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |what: String| CliError::Manifest(format!("{file}:{}: {what}", n + 1));
            let (t, v) =
                line.split_once(',').ok_or_else(|| err(format!("expected `time,value`, found {line:?}")))?;
            let (t, v) = (t.trim(), v.trim());
            let time = match parse_time(t, origin) {
                Some(time) => time,
                // A header row such as `time,value` is allowed on the first line only.
                None if points.is_empty() && n == 0 && v.parse::<f64>().is_err() => continue,
                None => {
                    return Err(err(format!(
                        "time {t:?} is neither RFC 3339 nor an offset like 90s, 5m, 1h30m"
                    )));
                }
            };
            let value = if v.is_empty() {
                None
            } else {
                Some(
                    v.parse::<f64>()
                        .ok()
                        .filter(|x| x.is_finite())
                        .ok_or_else(|| err(format!("value {v:?} is not a number")))?,
                )
            };
            if let Some((last, _)) = points.last()
                && time < *last
            {
                return Err(err(format!("time {t:?} goes back in time; rows must be in ascending order")));
            }
            points.push((time, value));
        }
        if points.is_empty() {
            return Err(CliError::Manifest(format!("{file}: no rows; expected lines of `time,value`")));
        }
        Ok(Self { points })
    }

    pub fn first_time(&self) -> Option<DateTime<Utc>> {
        self.points.first().map(|p| p.0)
    }

    /// The value at `t`: the last row at or before it (`None` before the first row or for a
    /// failed measurement).
    pub fn at(&self, t: DateTime<Utc>) -> Option<f64> {
        let i = self.points.partition_point(|(pt, _)| *pt <= t);
        if i == 0 { None } else { self.points[i - 1].1 }
    }
}

fn parse_time(s: &str, origin: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    // An offset that lands past the end of the calendar is no time at all (checked, not `+`).
    if let Ok(secs) = s.parse::<f64>() {
        if !(secs.is_finite() && secs >= 0.0) {
            return None;
        }
        return origin.checked_add_signed(Duration::milliseconds((secs * 1000.0) as i64));
    }
    let d = humantime::parse_duration(s).ok()?;
    origin.checked_add_signed(Duration::from_std(d).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn step_values_offsets_and_gaps() {
        let o = Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 0).unwrap();
        let s =
            Series::parse("time,value\n0,5\n90s,\n3m,12.5\n2026-01-01T10:10:00Z,0\n", o, "q.csv").unwrap();
        assert_eq!(s.at(o - Duration::seconds(1)), None);
        assert_eq!(s.at(o), Some(5.0));
        assert_eq!(s.at(o + Duration::seconds(89)), Some(5.0));
        assert_eq!(s.at(o + Duration::seconds(90)), None, "empty value = failed measurement");
        assert_eq!(s.at(o + Duration::minutes(4)), Some(12.5));
        assert_eq!(s.at(o + Duration::minutes(11)), Some(0.0));
    }

    #[test]
    fn errors_name_file_and_line() {
        let o = Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 0).unwrap();
        let e = Series::parse("0,1\n5m,x\n", o, "q.csv").unwrap_err().to_string();
        assert_eq!(e, "q.csv:2: value \"x\" is not a number");
        let e = Series::parse("5m,1\n1m,2\n", o, "q.csv").unwrap_err().to_string();
        assert!(e.starts_with("q.csv:2: time \"1m\" goes back in time"), "{e}");
        assert!(Series::parse("", o, "q.csv").is_err());
    }

    /// Found by the `check_manifests` fuzz target: an offset past the end of the calendar
    /// overflowed `origin + offset` and panicked.
    #[test]
    fn offsets_beyond_the_calendar_are_errors_not_panics() {
        let o = Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 0).unwrap();
        for row in ["555555555555555555", "300000y"] {
            let e = Series::parse(&format!("0,1\n{row},2\n"), o, "q.csv").unwrap_err().to_string();
            assert!(e.starts_with(&format!("q.csv:2: time {row:?}")), "{e}");
        }
    }
}
