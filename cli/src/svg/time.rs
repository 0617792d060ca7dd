//! The chart's time axis: instants to x coordinates, and round tick times in the chart's offset.

use chrono::{DateTime, FixedOffset, TimeZone};

use super::{PLOT_LEFT, PLOT_RIGHT};

/// Maps instants to x coordinates. Step `i` spans `[x(i), x(i + 1))`; the last step is as wide
/// as the one before it (one minute when there is a single step).
#[derive(Debug)]
pub(super) struct XScale {
    /// Seconds since the epoch of each step, then of the end of the last step.
    pub(super) edges: Vec<f64>,
}

impl XScale {
    pub(super) fn new(times: &[DateTime<FixedOffset>]) -> Self {
        let mut edges: Vec<f64> = times.iter().map(|t| t.timestamp_millis() as f64 / 1000.0).collect();
        let n = edges.len();
        let last = edges[n - 1];
        let width = if n >= 2 { last - edges[n - 2] } else { 0.0 };
        edges.push(last + if width > 0.0 { width } else { 60.0 });
        Self { edges }
    }

    pub(super) fn start(&self) -> f64 {
        self.edges[0]
    }

    pub(super) fn end(&self) -> f64 {
        self.edges[self.edges.len() - 1]
    }

    /// x of an instant given in seconds since the epoch.
    pub(super) fn at(&self, secs: f64) -> f64 {
        let span = self.end() - self.start();
        PLOT_LEFT + (secs - self.start()) / span * (PLOT_RIGHT - PLOT_LEFT)
    }

    /// x where step `i` starts (`i == len` is the end of the last step).
    pub(super) fn edge(&self, i: usize) -> f64 {
        self.at(self.edges[i])
    }
}
/// A labelled time tick.
#[derive(Debug)]
pub(super) struct TimeTick {
    pub(super) x: f64,
    pub(super) label: String,
    pub(super) date: Option<String>,
}

/// Tick spacings to pick from, in seconds.
const TICK_STEPS: [i64; 22] = [
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172_800,
    604_800, 1_209_600, 2_592_000,
];
/// Most labelled ticks on the time axis.
const MAX_TIME_TICKS: f64 = 10.0;

/// Ticks aligned to round local times of `offset`, at the smallest spacing giving at most
/// [`MAX_TIME_TICKS`]; the date is shown under the first tick and wherever it changes.
pub(super) fn time_ticks(xs: &XScale, offset: &FixedOffset) -> Vec<TimeTick> {
    let span = xs.end() - xs.start();
    let step = TICK_STEPS
        .iter()
        .copied()
        .find(|&s| span / s as f64 <= MAX_TIME_TICKS)
        .unwrap_or_else(|| ((span / MAX_TIME_TICKS / 86400.0).ceil() as i64).max(1) * 86400);
    let off = i64::from(offset.local_minus_utc());
    let local_start = xs.start().ceil() as i64 + off;
    let first =
        local_start.div_euclid(step) * step + if local_start.rem_euclid(step) == 0 { 0 } else { step };
    let with_seconds = step < 60;
    let mut ticks = Vec::new();
    let mut prev_date = String::new();
    let mut local = first;
    while ((local - off) as f64) <= xs.end() {
        if let Some(t) = offset.timestamp_opt(local - off, 0).single() {
            let date = t.format("%Y-%m-%d").to_string();
            let label =
                if with_seconds { t.format("%H:%M:%S").to_string() } else { t.format("%H:%M").to_string() };
            ticks.push(TimeTick {
                x: xs.at((local - off) as f64),
                label,
                date: (date != prev_date).then(|| date.clone()),
            });
            prev_date = date;
        }
        local += step;
    }
    ticks
}
