//! `ebb simulate`: the replica timeline a ScaledObject would produce over a period, from its
//! cron schedules and from metric series given as CSV, printed as text or JSON and optionally
//! drawn as an SVG chart. The scaling annotations are applied as the operator applies them
//! (shared parser `ebb_api::annotations`): a paused object keeps its replicas (or the pinned
//! count), paused directions hold ebb's writes and disable the HPA's direction.

pub mod engine;
pub mod series;

use chrono::{DateTime, Duration, FixedOffset, Utc};
use ebb_api::annotations::ScalingAnnotations;
use ebb_api::constants::{ANNOTATION_PAUSED, ANNOTATION_PAUSED_REPLICAS};
use ebb_scalers::ParsedScaledObject;
use ebb_scalers::decision::{Guards, LoopSpec};
use ebb_scalers::hpa::HpaCalculator;

use crate::error::CliError;
use crate::load::Loaded;
use crate::svg::{Chart, MetricSeries};
use engine::{Input, Paused, SimTrigger, Source, Step};
use series::Series;

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub from: DateTime<FixedOffset>,
    pub duration: Duration,
    pub step: Duration,
    /// `METRIC=file.csv` pairs; METRIC is a metric name, trigger name or `s<index>`.
    pub series: Vec<(String, String)>,
    pub initial_replicas: Option<i32>,
}

fn parse_duration(flag: &str, s: &str) -> Result<Duration, CliError> {
    let d = humantime::parse_duration(s)
        .map_err(|e| CliError::Usage(format!("{flag} {s:?}: {e} (examples: 90s, 5m, 2h)")))?;
    let d = Duration::from_std(d).map_err(|_| CliError::Usage(format!("{flag} {s:?}: too long")))?;
    if d <= Duration::zero() {
        return Err(CliError::Usage(format!("{flag} {s:?}: must be positive")));
    }
    Ok(d)
}

impl Options {
    /// Builds options from the raw flag values, with one clear error per bad flag.
    pub fn from_flags(
        from: Option<&str>,
        duration: &str,
        step: &str,
        series: &[String],
        initial_replicas: Option<i32>,
    ) -> Result<Self, CliError> {
        let from = match from {
            Some(s) => DateTime::parse_from_rfc3339(s).map_err(|e| {
                CliError::Usage(format!(
                    "--from {s:?}: {e}; expected RFC 3339 such as 2026-11-23T10:00:00+09:00"
                ))
            })?,
            None => Utc::now().fixed_offset(),
        };
        let duration = parse_duration("--for", duration)?;
        let step = parse_duration("--step", step)?;
        if duration.num_seconds() / step.num_seconds().max(1) > 100_000 {
            return Err(CliError::Usage(
                "--for / --step gives more than 100000 rows; use a larger --step".into(),
            ));
        }
        let series = series
            .iter()
            .map(|s| {
                s.split_once('=')
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .ok_or_else(|| CliError::Usage(format!("--series {s:?}: expected METRIC=file.csv")))
            })
            .collect::<Result<_, _>>()?;
        if initial_replicas.is_some_and(|r| r < 0) {
            return Err(CliError::Usage("--initial-replicas must not be negative".into()));
        }
        Ok(Self { from, duration, step, series, initial_replicas })
    }
}

/// Runs the simulation of one ScaledObject.
pub async fn simulate(
    so: &Loaded,
    parsed: &ParsedScaledObject,
    opts: &Options,
) -> Result<Vec<Step>, CliError> {
    let spec = &so.object.spec;
    let from = opts.from.with_timezone(&Utc);
    let mut files: Vec<(usize, Series)> = Vec::new();
    for (key, file) in &opts.series {
        let t = parsed
            .triggers
            .iter()
            .find(|t| {
                &t.metric_name == key || t.name.as_deref() == Some(key) || format!("s{}", t.index) == *key
            })
            .ok_or_else(|| {
                let resource = ebb_scalers::resource::resource_triggers(&so.object)
                    .into_iter()
                    .find(|t| t.resource == *key || format!("s{}", t.index) == *key);
                if let Some(t) = resource {
                    return CliError::Usage(format!(
                        "--series {key}: spec.triggers[{}] ({}) is {}; ebb simulate does not model it",
                        t.index,
                        t.resource,
                        ebb_scalers::resource::MEASURED_BY_HPA
                    ));
                }
                let names: Vec<&str> = parsed.triggers.iter().map(|t| t.metric_name.as_str()).collect();
                CliError::Usage(format!(
                    "--series {key}: no trigger has that metric name, name or index; metrics: {}",
                    names.join(", ")
                ))
            })?;
        let text = std::fs::read_to_string(file)
            .map_err(|e| CliError::Manifest(format!("{file}: cannot read: {e}")))?;
        files.push((t.index, Series::parse(&text, from, file)?));
    }
    let mut triggers = Vec::new();
    for t in &parsed.triggers {
        let source = match files.iter().position(|(i, _)| *i == t.index) {
            Some(p) => Source::Series(files.swap_remove(p).1),
            None if t.type_ == "cron" => Source::Scaler(t.config.build().map_err(|e| {
                CliError::Invalid(vec![format!("{}: spec.triggers[{}]: {e}", so.source, t.index)])
            })?),
            None => {
                return Err(CliError::Usage(format!(
                    "spec.triggers[{}] ({}) needs values: pass --series {}=FILE.csv (rows of time,value)",
                    t.index, t.type_, t.metric_name
                )));
            }
        };
        triggers.push(SimTrigger { spec: t.clone(), source });
    }
    let annotations = ScalingAnnotations::read(so.object.metadata.annotations.as_ref());
    let behavior = annotations.hpa_behavior(spec.hpa_behavior());
    let hpa = HpaCalculator::from_k8s(spec.min_replicas().max(1), spec.max_replicas(), behavior.as_ref())
        .map_err(|e| {
            CliError::Invalid(vec![format!(
                "{}: spec.advanced.horizontalPodAutoscalerConfig.behavior: {e}",
                so.source
            )])
        })?;
    let input = Input {
        composite: ebb_scalers::validate::modifiers::composite(&so.object).ok().flatten(),
        triggers,
        loop_spec: LoopSpec::from_spec(spec, from),
        polling: Duration::seconds(i64::from(spec.polling_interval().max(1))),
        hpa,
        from,
        until: from + opts.duration,
        step: opts.step,
        initial_replicas: opts.initial_replicas.unwrap_or_else(|| spec.min_replicas()),
        display_offset: *opts.from.offset(),
        guards: Guards {
            scale_in_paused: annotations.scale_in_paused,
            scale_out_paused: annotations.scale_out_paused,
        },
        paused: annotations.paused.then(|| Paused {
            pinned: annotations.pinned_replicas(),
            reason: match annotations.pinned_replicas() {
                Some(n) => {
                    format!("paused by annotation {ANNOTATION_PAUSED_REPLICAS}: replicas pinned at {n}")
                }
                None => format!("paused by annotation {ANNOTATION_PAUSED}: nothing is scaled"),
            },
        }),
    };
    Ok(engine::run(input).await)
}

/// Text table: one row per step.
pub fn render_text(so: &Loaded, steps: &[Step], offset: FixedOffset) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let names: Vec<String> = steps.first().map(|st| st.metrics.keys().cloned().collect()).unwrap_or_default();
    let _ = writeln!(s, "ScaledObject {}", so.object.metadata.name.as_deref().unwrap_or_default());
    for (i, n) in names.iter().enumerate() {
        let _ = writeln!(s, "  m{i} = {n}");
    }
    for t in ebb_scalers::resource::resource_triggers(&so.object) {
        let _ = writeln!(
            s,
            "  spec.triggers[{}] ({}): not simulated, {}",
            t.index,
            t.resource,
            ebb_scalers::resource::MEASURED_BY_HPA
        );
    }
    let mut header = format!("{:<26} {:>8} {:>6}", "TIME", "REPLICAS", "ACTIVE");
    for i in 0..names.len() {
        let _ = write!(header, " {:>8}", format!("m{i}"));
    }
    let _ = writeln!(s, "{header}  REASON");
    for st in steps {
        let mut row = format!(
            "{:<26} {:>8} {:>6}",
            st.time.with_timezone(&offset).to_rfc3339(),
            st.replicas,
            if st.active { "yes" } else { "no" }
        );
        for n in &names {
            let v = st.metrics.get(n).copied().flatten().map_or("error".to_owned(), crate::svg::fmt_num);
            let _ = write!(row, " {v:>8}");
        }
        let _ = writeln!(s, "{row}  {}", st.reason);
    }
    s
}

/// JSON array of steps with times in the `--from` offset.
pub fn render_json(steps: &[Step], offset: FixedOffset) -> Result<String, CliError> {
    let rows: Vec<serde_json::Value> = steps
        .iter()
        .map(|st| {
            serde_json::json!({
                "time": st.time.with_timezone(&offset).to_rfc3339(),
                "replicas": st.replicas,
                "active": st.active,
                "reason": st.reason,
                "metrics": st.metrics,
            })
        })
        .collect();
    serde_json::to_string_pretty(&rows).map_err(|e| CliError::Output(format!("cannot encode JSON: {e}")))
}

/// The chart for `--svg`.
pub fn chart(so: &Loaded, parsed: &ParsedScaledObject, steps: &[Step], offset: FixedOffset) -> Chart {
    let kinds: Vec<&str> = parsed.triggers.iter().map(|t| t.type_.as_str()).collect();
    let metrics = parsed
        .triggers
        .iter()
        .map(|t| MetricSeries {
            name: t.metric_name.clone(),
            values: steps.iter().map(|s| s.metrics.get(&t.metric_name).copied().flatten()).collect(),
            target: Some(t.target()),
        })
        .collect();
    Chart {
        title: format!(
            "{} — {} (min {}, max {})",
            so.object.metadata.name.as_deref().unwrap_or_default(),
            kinds.join(", "),
            so.object.spec.min_replicas(),
            so.object.spec.max_replicas()
        ),
        times: steps.iter().map(|s| s.time.with_timezone(&offset)).collect(),
        replicas: steps.iter().map(|s| s.replicas).collect(),
        active: steps.iter().map(|s| s.active).collect(),
        min_replicas: so.object.spec.min_replicas(),
        max_replicas: so.object.spec.max_replicas(),
        metrics,
    }
}
