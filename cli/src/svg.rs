//! The SVG chart written by `ebb simulate --svg`: replicas over simulated time (a step line with
//! shaded bands where the ScaledObject is active and dashed min/max lines), then one panel per
//! metric (value as a step line with gaps, dashed target), all sharing one time axis.
//!
//! The SVG is written by hand; every text coming from the user is escaped.

use chrono::{DateTime, FixedOffset};

mod text;
mod time;

pub use text::fmt_num;
use text::{escape, nice_step, num, shorten};
use time::{TimeTick, XScale, time_ticks};

/// Everything the chart shows. `times`, `replicas`, `active` and every metric's `values` are
/// parallel: entry `i` holds from `times[i]` until `times[i + 1]` (the last one for as long as
/// the step before it).
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// Shown above the panels, e.g. "php-apache-cron-scaled — cron (Asia/Seoul)".
    pub title: String,
    /// One per step, ascending; tick labels use the offset of the first one.
    pub times: Vec<DateTime<FixedOffset>>,
    /// Replicas of the workload at each step.
    pub replicas: Vec<i32>,
    /// Whether the ScaledObject was active at each step.
    pub active: Vec<bool>,
    /// Lower bound of the replica count, drawn as a dashed line.
    pub min_replicas: i32,
    /// Upper bound of the replica count, drawn as a dashed line when in range.
    pub max_replicas: i32,
    /// One panel each, below the replicas panel.
    pub metrics: Vec<MetricSeries>,
}

/// One metric panel: the value at each step (`None` leaves a gap) and its target.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSeries {
    /// Metric name as the HPA sees it.
    pub name: String,
    /// Value at each step; `None` (or a non-finite number) is drawn as a gap.
    pub values: Vec<Option<f64>>,
    /// Target value, drawn as a dashed line.
    pub target: Option<f64>,
}

/// Why a chart could not be drawn.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChartError {
    /// There is nothing to draw.
    #[error("chart has no time steps")]
    NoTimes,
    /// A series does not have one value per time step.
    #[error("chart series {series} has {actual} values but there are {expected} time steps")]
    LengthMismatch {
        /// Which series, e.g. `replicas` or `metric "cpu"`.
        series: String,
        /// Number of time steps.
        expected: usize,
        /// Number of values in the series.
        actual: usize,
    },
    /// Time steps go backwards.
    #[error("chart time steps must be ascending, but step {index} is earlier than step {prev}", prev = .index - 1)]
    NotAscending {
        /// Index of the first step earlier than the one before it.
        index: usize,
    },
}

const WIDTH: f64 = 1000.0;
const HEADER: f64 = 50.0;
const PANEL: f64 = 180.0;
const FOOTER: f64 = 70.0;
const PLOT_LEFT: f64 = 70.0;
const PLOT_RIGHT: f64 = 880.0;
/// Offset of the plot area's top from its panel's top (room for the panel title).
const PLOT_TOP: f64 = 30.0;
/// Offset of the plot area's bottom from its panel's top.
const PLOT_BOTTOM: f64 = 168.0;
const FONT: &str = "DejaVu Sans, Helvetica, Arial, sans-serif";
const REPLICAS_COLOR: &str = "#1f5fa8";
const METRIC_COLOR: &str = "#c0392b";
const ACTIVE_FILL: &str = "#2e9e44";
const ACTIVE_OPACITY: &str = "0.15";
const BOUND_COLOR: &str = "#6b6b6b";
const TARGET_COLOR: &str = "#444444";
const GRID_COLOR: &str = "#e6e6e6";
const AXIS_COLOR: &str = "#333333";
const NOTE_COLOR: &str = "#a33a1a";
/// Longest title and metric name shown in full; longer ones are cut (the full text stays in a
/// tooltip).
const MAX_TITLE_CHARS: usize = 90;
const MAX_NAME_CHARS: usize = 100;

/// Draws the chart as a standalone SVG document.
pub fn render(chart: &Chart) -> Result<String, ChartError> {
    validate(chart)?;
    let xs = XScale::new(&chart.times);
    let height = HEADER + PANEL * (1 + chart.metrics.len()) as f64 + FOOTER;
    let ticks = time_ticks(&xs, chart.times[0].offset());

    let mut out = String::with_capacity(16 * 1024);
    out.push_str(&format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"{FONT}\" font-size=\"12\">\n",
        w = num(WIDTH),
        h = num(height),
    ));
    out.push_str(&format!("<title>{}</title>\n", escape(&chart.title)));
    out.push_str(&format!(
        "<rect x=\"0\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"#ffffff\"/>\n",
        num(WIDTH),
        num(height)
    ));
    out.push_str(&format!(
        "<text x=\"{}\" y=\"30\" font-size=\"18\" font-weight=\"bold\" fill=\"#111111\">{}</text>\n",
        num(PLOT_LEFT),
        escape(&shorten(&chart.title, MAX_TITLE_CHARS))
    ));

    replicas_panel(&mut out, chart, &xs, &ticks, HEADER);
    for (i, metric) in chart.metrics.iter().enumerate() {
        metric_panel(&mut out, metric, &xs, &ticks, HEADER + PANEL * (i + 1) as f64);
    }
    time_axis(&mut out, &ticks, chart.times[0].offset(), height - FOOTER - PANEL + PLOT_BOTTOM);
    out.push_str("</svg>\n");
    Ok(out)
}

fn validate(chart: &Chart) -> Result<(), ChartError> {
    let expected = chart.times.len();
    if expected == 0 {
        return Err(ChartError::NoTimes);
    }
    let mut lengths =
        vec![("replicas".to_string(), chart.replicas.len()), ("active".to_string(), chart.active.len())];
    for m in &chart.metrics {
        lengths.push((format!("metric {:?}", m.name), m.values.len()));
    }
    for (series, actual) in lengths {
        if actual != expected {
            return Err(ChartError::LengthMismatch { series, expected, actual });
        }
    }
    if let Some(index) = (1..expected).find(|&i| chart.times[i] < chart.times[i - 1]) {
        return Err(ChartError::NotAscending { index });
    }
    Ok(())
}

/// Gap between the lowest value of an axis and the bottom of the frame, so that a line at that
/// value does not hide in the frame.
const PLOT_PAD: f64 = 6.0;

/// Maps values to y coordinates inside one panel's plot area.
#[derive(Debug, Clone, Copy)]
struct YScale {
    lo: f64,
    hi: f64,
    top: f64,
    bottom: f64,
}

impl YScale {
    fn at(&self, v: f64) -> f64 {
        let floor = self.bottom - PLOT_PAD;
        floor - (v - self.lo) / (self.hi - self.lo) * (floor - self.top)
    }
}

fn replicas_panel(out: &mut String, chart: &Chart, xs: &XScale, ticks: &[TimeTick], panel_top: f64) {
    let observed_lo = chart.replicas.iter().copied().min().unwrap_or(0);
    let observed_hi = chart.replicas.iter().copied().max().unwrap_or(0);
    // Bounds far above everything observed would squash the line: leave them off the axis.
    let limit = i64::from(observed_hi.max(0)) * 2;
    let limit = limit.max(i64::from(observed_hi) + 4);
    let show_min = i64::from(chart.min_replicas) <= limit;
    let show_max = i64::from(chart.max_replicas) <= limit;
    let mut content_lo = observed_lo.min(0);
    let mut content_hi = observed_hi;
    for (shown, bound) in [(show_min, chart.min_replicas), (show_max, chart.max_replicas)] {
        if shown {
            content_lo = content_lo.min(bound);
            content_hi = content_hi.max(bound);
        }
    }
    let range = f64::from(content_hi) - f64::from(content_lo) + 1.0;
    let step = nice_step(range / 8.0).ceil().max(1.0);
    let lo = (f64::from(content_lo) / step).floor() * step;
    let hi = ((f64::from(content_hi) / step).floor() + 1.0) * step;
    let ys = YScale { lo, hi, top: panel_top + PLOT_TOP, bottom: panel_top + PLOT_BOTTOM };

    out.push_str("<g class=\"replicas-panel\">\n");
    panel_title(out, "replicas", None, panel_top);
    legend(out, panel_top, show_min || show_max);
    let mut notes = Vec::new();
    if !show_max {
        notes.push(format!("max {} (off scale)", chart.max_replicas));
    }
    if !show_min {
        notes.push(format!("min {} (off scale)", chart.min_replicas));
    }
    if !notes.is_empty() {
        out.push_str(&format!(
            "<text class=\"off-scale\" x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"{NOTE_COLOR}\">{}</text>\n",
            num(PLOT_RIGHT),
            num(panel_top + 18.0),
            escape(&notes.join(", "))
        ));
    }

    // Active bands first so the grid and lines stay visible on top of them.
    let mut i = 0;
    let n = chart.active.len();
    while i < n {
        if chart.active[i] {
            let start = i;
            while i < n && chart.active[i] {
                i += 1;
            }
            let (x0, x1) = (xs.edge(start), xs.edge(i));
            out.push_str(&format!(
                "<rect class=\"active-band\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{ACTIVE_FILL}\" fill-opacity=\"{ACTIVE_OPACITY}\"/>\n",
                num(x0),
                num(ys.top),
                num(x1 - x0),
                num(ys.bottom - ys.top)
            ));
        } else {
            i += 1;
        }
    }

    let values: Vec<f64> =
        (0..).map(|k| lo + f64::from(k) * step).take_while(|v| *v <= hi + step / 1000.0).collect();
    grid(out, &ys, &values, ticks);

    let mut bounds = Vec::new();
    if show_min && show_max && chart.min_replicas == chart.max_replicas {
        bounds.push((chart.min_replicas, format!("min = max {}", chart.min_replicas)));
    } else {
        if show_min {
            bounds.push((chart.min_replicas, format!("min {}", chart.min_replicas)));
        }
        if show_max {
            bounds.push((chart.max_replicas, format!("max {}", chart.max_replicas)));
        }
    }
    let mut last_label_y: Option<f64> = None;
    for (value, label) in bounds {
        let y = ys.at(f64::from(value));
        let mut label_y = y + 4.0;
        if let Some(prev) = last_label_y {
            // Keep the max label clear of the min label when the lines are close.
            label_y = label_y.min(prev - 12.0);
        }
        last_label_y = Some(label_y);
        dashed_line(out, "bound", y, BOUND_COLOR, &label, label_y);
    }

    let points = step_points(xs, chart.replicas.iter().map(|r| ys.at(f64::from(*r))));
    out.push_str(&format!(
        "<polyline class=\"replicas\" points=\"{}\" fill=\"none\" stroke=\"{REPLICAS_COLOR}\" stroke-width=\"2.5\" stroke-linejoin=\"miter\"/>\n",
        points
            .iter()
            .map(|(x, y)| format!("{},{}", num(*x), num(*y)))
            .collect::<Vec<_>>()
            .join(" ")
    ));
    frame(out, &ys);
    y_label(out, &ys, "replicas");
    out.push_str("</g>\n");
}

fn metric_panel(out: &mut String, metric: &MetricSeries, xs: &XScale, ticks: &[TimeTick], panel_top: f64) {
    let values: Vec<Option<f64>> = metric.values.iter().map(|v| v.filter(|v| v.is_finite())).collect();
    let target = metric.target.filter(|t| t.is_finite());
    let mut lo: f64 = 0.0;
    let mut hi: f64 = 0.0;
    for v in values.iter().flatten().chain(target.iter()) {
        lo = lo.min(*v);
        hi = hi.max(*v);
    }
    if hi - lo <= 0.0 {
        hi = lo + 1.0;
    }
    let span = hi - lo;
    let step = nice_step(span / 4.0);
    let axis_lo = (lo / step).floor() * step;
    let axis_hi = ((hi + span * 0.08) / step).ceil() * step;
    let ys = YScale { lo: axis_lo, hi: axis_hi, top: panel_top + PLOT_TOP, bottom: panel_top + PLOT_BOTTOM };

    out.push_str("<g class=\"metric-panel\">\n");
    panel_title(out, &shorten(&metric.name, MAX_NAME_CHARS), Some(&metric.name), panel_top);
    let count = ((axis_hi - axis_lo) / step).round() as i64;
    let tick_values: Vec<f64> = (0..=count).map(|k| axis_lo + k as f64 * step).collect();
    grid(out, &ys, &tick_values, ticks);

    if let Some(t) = target {
        let y = ys.at(t);
        dashed_line(out, "target", y, TARGET_COLOR, &format!("target {}", fmt_num(t)), y + 4.0);
    }

    let mut d = String::new();
    let mut last_y: Option<f64> = None;
    for (i, v) in values.iter().enumerate() {
        let Some(v) = v else { continue };
        let (x, y) = (xs.edge(i), ys.at(*v));
        match last_y {
            Some(prev) if prev != y => {
                d.push_str(&format!(" L{},{} L{},{}", num(x), num(prev), num(x), num(y)))
            }
            Some(_) => {}
            None => d.push_str(&format!(" M{},{}", num(x), num(y))),
        }
        last_y = Some(y);
        if values.get(i + 1).is_none_or(|next| next.is_none()) {
            d.push_str(&format!(" L{},{}", num(xs.edge(i + 1)), num(y)));
            last_y = None;
        }
    }
    if d.is_empty() {
        out.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#888888\">no data</text>\n",
            num((PLOT_LEFT + PLOT_RIGHT) / 2.0),
            num((ys.top + ys.bottom) / 2.0)
        ));
    } else {
        out.push_str(&format!(
            "<path class=\"metric\" d=\"{}\" fill=\"none\" stroke=\"{METRIC_COLOR}\" stroke-width=\"2\"/>\n",
            d.trim_start()
        ));
    }
    frame(out, &ys);
    y_label(out, &ys, "value");
    out.push_str("</g>\n");
}

/// Corner points of a step line: each value holds until the next step.
fn step_points(xs: &XScale, ys: impl Iterator<Item = f64>) -> Vec<(f64, f64)> {
    let mut points: Vec<(f64, f64)> = Vec::new();
    let mut last = None;
    for (i, y) in ys.enumerate() {
        let x = xs.edge(i);
        match last {
            None => points.push((x, y)),
            Some(prev) if prev != y => {
                points.push((x, prev));
                points.push((x, y));
            }
            Some(_) => {}
        }
        last = Some(y);
    }
    if let Some(y) = last {
        points.push((xs.edge(xs.edges.len() - 1), y));
    }
    points
}

fn panel_title(out: &mut String, text: &str, tooltip: Option<&str>, panel_top: f64) {
    let tip = tooltip.map(|t| format!("<title>{}</title>", escape(t))).unwrap_or_default();
    out.push_str(&format!(
        "<text class=\"panel-title\" x=\"{}\" y=\"{}\" font-size=\"13\" font-weight=\"bold\" fill=\"#222222\">{tip}{}</text>\n",
        num(PLOT_LEFT),
        num(panel_top + 18.0),
        escape(text)
    ));
}

fn legend(out: &mut String, panel_top: f64, bounds: bool) {
    let y = panel_top + 18.0;
    let mut x = PLOT_LEFT + 90.0;
    out.push_str("<g class=\"legend\">\n");
    out.push_str(&format!(
        "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{REPLICAS_COLOR}\" stroke-width=\"2.5\"/><text x=\"{}\" y=\"{}\">replicas</text>\n",
        num(x), num(y - 4.0), num(x + 20.0), num(y - 4.0), num(x + 26.0), num(y)
    ));
    x += 95.0;
    out.push_str(&format!(
        "<rect x=\"{}\" y=\"{}\" width=\"20\" height=\"12\" fill=\"{ACTIVE_FILL}\" fill-opacity=\"{ACTIVE_OPACITY}\" stroke=\"{ACTIVE_FILL}\" stroke-opacity=\"0.4\"/><text x=\"{}\" y=\"{}\">active</text>\n",
        num(x), num(y - 10.0), num(x + 26.0), num(y)
    ));
    if bounds {
        x += 80.0;
        out.push_str(&format!(
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{BOUND_COLOR}\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/><text x=\"{}\" y=\"{}\">min / max replicas</text>\n",
            num(x), num(y - 4.0), num(x + 20.0), num(y - 4.0), num(x + 26.0), num(y)
        ));
    }
    out.push_str("</g>\n");
}

/// Horizontal grid lines with value labels, and vertical grid lines at the time ticks.
fn grid(out: &mut String, ys: &YScale, values: &[f64], ticks: &[TimeTick]) {
    for v in values {
        let y = ys.at(*v);
        out.push_str(&format!(
            "<line x1=\"{l}\" y1=\"{y}\" x2=\"{r}\" y2=\"{y}\" stroke=\"{GRID_COLOR}\"/>\
             <text x=\"{tx}\" y=\"{ty}\" text-anchor=\"end\" font-size=\"11\" fill=\"{AXIS_COLOR}\">{label}</text>\n",
            l = num(PLOT_LEFT),
            r = num(PLOT_RIGHT),
            y = num(y),
            tx = num(PLOT_LEFT - 6.0),
            ty = num(y + 4.0),
            label = fmt_num(*v),
        ));
    }
    for t in ticks {
        out.push_str(&format!(
            "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"{GRID_COLOR}\"/>\n",
            num(ys.top),
            num(ys.bottom),
            x = num(t.x)
        ));
    }
}

/// A dashed horizontal line across the plot with its label in the right margin.
fn dashed_line(out: &mut String, class: &str, y: f64, color: &str, label: &str, label_y: f64) {
    out.push_str(&format!(
        "<line class=\"{class}\" x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"{color}\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>\
         <text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"{color}\">{}</text>\n",
        num(PLOT_LEFT),
        num(PLOT_RIGHT),
        num(PLOT_RIGHT + 6.0),
        num(label_y),
        escape(label),
        y = num(y),
    ));
}

fn frame(out: &mut String, ys: &YScale) {
    out.push_str(&format!(
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"{AXIS_COLOR}\"/>\n",
        num(PLOT_LEFT),
        num(ys.top),
        num(PLOT_RIGHT - PLOT_LEFT),
        num(ys.bottom - ys.top)
    ));
}

fn y_label(out: &mut String, ys: &YScale, text: &str) {
    let (x, y) = (PLOT_LEFT - 48.0, (ys.top + ys.bottom) / 2.0);
    out.push_str(&format!(
        "<text x=\"{x}\" y=\"{y}\" transform=\"rotate(-90 {x} {y})\" text-anchor=\"middle\" font-size=\"11\" fill=\"{AXIS_COLOR}\">{}</text>\n",
        escape(text),
        x = num(x),
        y = num(y),
    ));
}

/// Tick marks and labels under the last panel (whose plot ends at `axis_y`), and the axis label
/// naming the offset.
fn time_axis(out: &mut String, ticks: &[TimeTick], offset: &FixedOffset, axis_y: f64) {
    out.push_str("<g class=\"time-axis\">\n");
    for t in ticks {
        out.push_str(&format!(
            "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"{AXIS_COLOR}\"/>\
             <text x=\"{x}\" y=\"{}\" text-anchor=\"middle\" font-size=\"11\" fill=\"{AXIS_COLOR}\">{}</text>\n",
            num(axis_y),
            num(axis_y + 5.0),
            num(axis_y + 18.0),
            escape(&t.label),
            x = num(t.x),
        ));
        if let Some(date) = &t.date {
            out.push_str(&format!(
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"11\" fill=\"#666666\">{}</text>\n",
                num(t.x),
                num(axis_y + 32.0),
                escape(date)
            ));
        }
    }
    out.push_str(&format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"12\" fill=\"{AXIS_COLOR}\">time (UTC{offset})</text>\n",
        num((PLOT_LEFT + PLOT_RIGHT) / 2.0),
        num(axis_y + 54.0),
    ));
    out.push_str("</g>\n");
}

#[cfg(test)]
mod tests;
