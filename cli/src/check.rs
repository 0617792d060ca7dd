//! `ebb check`: query every trigger of a ScaledObject now and explain the decision — per trigger
//! its metric name, target, value, activity and error; then what ebb would write for 0↔1 and
//! what the HPA would compute. The JSON form is stable and documented in the README. The
//! scaling annotations (`paused`, `paused-replicas`, `paused-scale-in`/`-out`) are applied as the
//! operator applies them, read by the shared parser (`ebb_api::annotations`).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ebb_api::annotations::ScalingAnnotations;
use ebb_api::constants::{ANNOTATION_PAUSED, ANNOTATION_PAUSED_REPLICAS};
use ebb_scalers::decision::{Guards, LoopSpec, PollOutcome, decide};
use ebb_scalers::hpa::{HpaCalculator, MetricSample};
use ebb_scalers::{ParsedScaledObject, Scaler, TriggerSpec, measure_with_timeout};
use futures::future::join_all;
use serde::Serialize;

use crate::error::CliError;
use crate::load::Loaded;

/// One trigger's line of the report.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TriggerReport {
    pub index: usize,
    #[serde(rename = "type")]
    pub type_: String,
    pub name: Option<String>,
    pub metric_name: String,
    pub metric_type: &'static str,
    pub target: Option<f64>,
    pub value: Option<f64>,
    pub active: Option<bool>,
    pub error: Option<String>,
    /// Human description of the trigger's configuration (no secrets).
    pub description: String,
}

/// The overall decision.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DecisionReport {
    pub active: bool,
    pub current_replicas: i32,
    /// Replicas ebb itself would write through /scale (0↔1, idle↔min), if any.
    pub ebb_writes: Option<i32>,
    pub ebb_event: Option<&'static str>,
    /// What the HPA would compute on its next sync (null when the target rests at zero).
    pub hpa_desired_replicas: Option<i32>,
    pub hpa_reason: Option<String>,
    /// Where the target ends up after both.
    pub expected_replicas: i32,
    pub min_replicas: i32,
    pub max_replicas: i32,
    pub reason: String,
}

/// The whole report for one ScaledObject.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    pub scaled_object: String,
    pub time: DateTime<Utc>,
    pub triggers: Vec<TriggerReport>,
    pub decision: DecisionReport,
    pub warnings: Vec<String>,
    /// With `advanced.scalingModifiers`: the formula's value over the named triggers, which
    /// replaces their metrics for the HPA and their activity for ebb.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub composite: Option<CompositeReport>,
}

/// The composite metric of `advanced.scalingModifiers`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CompositeReport {
    pub metric_name: &'static str,
    pub formula: String,
    pub metric_type: &'static str,
    pub target: f64,
    pub activation_target: f64,
    pub value: Option<f64>,
    pub active: bool,
    pub error: Option<String>,
}

/// The formula evaluated over the triggers' values of this check (a failed trigger, or a
/// formula yielding nil or failing, gives no value and an error).
fn composite_report(so: &ebb_api::ScaledObject, triggers: &[TriggerReport]) -> Option<CompositeReport> {
    let comp = ebb_scalers::validate::modifiers::composite(so).ok()??;
    let mut vars = std::collections::BTreeMap::new();
    let mut failed = None;
    for (var, _) in comp.formula.variables() {
        let t = triggers.iter().find(|t| t.name.as_deref() == Some(var.as_str()));
        if let Some(e) = t.and_then(|t| t.error.as_ref()) {
            failed.get_or_insert_with(|| format!("trigger {var:?} of the formula failed: {e}"));
        }
        vars.insert(var.clone(), t.and_then(|t| t.value));
    }
    let (value, error) = match failed {
        Some(e) => (None, Some(e)),
        None => match comp.formula.eval(&vars) {
            Ok(Some(v)) => (Some(v), None),
            Ok(None) => (None, Some("the formula yields nil".to_owned())),
            Err(e) => (None, Some(format!("formula: {e}"))),
        },
    };
    Some(CompositeReport {
        metric_name: ebb_scalers::validate::modifiers::COMPOSITE_METRIC_NAME,
        formula: so
            .spec
            .advanced
            .as_ref()
            .and_then(|a| a.scaling_modifiers.as_ref())
            .and_then(|m| m.formula.clone())
            .unwrap_or_default(),
        metric_type: comp.metric_type.as_str(),
        target: comp.target,
        activation_target: comp.activation_target,
        active: value.is_some_and(|v| v > comp.activation_target),
        value,
        error,
    })
}

/// Measures every trigger at `now` (in parallel, each bounded by `timeout`) and decides.
pub async fn check(
    so: &Loaded,
    parsed: &ParsedScaledObject,
    now: DateTime<Utc>,
    current: Option<i32>,
    timeout: Duration,
) -> Result<CheckReport, CliError> {
    let spec = &so.object.spec;
    let (named, failed) = external_specs(so, parsed, timeout).await;
    let mut triggers = join_all(named.triggers.iter().map(|t| {
        let failed = failed.iter().find(|(i, _)| *i == t.index).map(|(_, e)| e.clone());
        measure_trigger(t, now, timeout, failed)
    }))
    .await;
    // cpu/memory triggers are listed but never measured: the HPA reads them from pod metrics.
    triggers.extend(ebb_scalers::resource::resource_triggers(&so.object).iter().map(resource_report));
    triggers.sort_by_key(|t| t.index);
    let current = current.unwrap_or_else(|| spec.min_replicas());
    let composite = composite_report(&so.object, &triggers);
    let decision = decide_now(so, &triggers, composite.as_ref(), now, current)?;
    Ok(CheckReport {
        composite,
        scaled_object: so.object.metadata.name.clone().unwrap_or_default(),
        time: now,
        triggers,
        decision,
        warnings: so.unknown_fields.iter().chain(&parsed.warnings).cloned().collect(),
    })
}

/// The external triggers named from their scaler's `GetMetricSpec` as the operator names them,
/// asked for the object (its namespace, `default` when the manifest has none); a failed answer
/// is that trigger's error, by index.
async fn external_specs(
    so: &Loaded,
    parsed: &ParsedScaledObject,
    timeout: Duration,
) -> (ParsedScaledObject, Vec<(usize, String)>) {
    let ns = so.object.metadata.namespace.as_deref().unwrap_or("default");
    let name = so.object.metadata.name.as_deref().unwrap_or_default();
    let mut named = parsed.clone();
    let asks = parsed.triggers.iter().filter_map(|t| t.external().map(|c| (t.index, c)));
    let answers = join_all(asks.map(|(index, c)| async move {
        let answer = c.metric_spec(ns, name, timeout).await;
        (
            index,
            answer.map_err(|e| {
                format!("cannot get the metric spec of the external scaler at {}: {e}", c.address)
            }),
        )
    }))
    .await;
    let mut failed = Vec::new();
    for (index, answer) in answers {
        match answer {
            Ok(spec) => {
                let resolved = ebb_scalers::external::spec::Resolved {
                    spec,
                    namespace: ns.to_owned(),
                    name: name.to_owned(),
                };
                if let Some(t) = named.triggers.iter_mut().find(|t| t.index == index) {
                    t.set_external(resolved);
                }
            }
            Err(e) => failed.push((index, e)),
        }
    }
    (named, failed)
}

/// A cpu/memory trigger in the report: its target, no value (ebb never measures it).
fn resource_report(t: &ebb_scalers::resource::ResourceTrigger) -> TriggerReport {
    use ebb_scalers::ScalerConfig;
    let metric_type = match t.target {
        ebb_scalers::resource::ResourceTarget::Utilization(_) => "Utilization",
        ebb_scalers::resource::ResourceTarget::AverageValue(_) => "AverageValue",
    };
    TriggerReport {
        index: t.index,
        type_: t.resource.clone(),
        name: None,
        metric_name: t.resource.clone(),
        metric_type,
        target: Some(t.target()),
        value: None,
        active: None,
        error: None,
        description: t.describe(),
    }
}

async fn measure_trigger(
    t: &TriggerSpec,
    now: DateTime<Utc>,
    timeout: Duration,
    failed: Option<String>,
) -> TriggerReport {
    let mut r = TriggerReport {
        index: t.index,
        type_: t.type_.clone(),
        name: t.name.clone(),
        metric_name: t.metric_name.clone(),
        metric_type: t.metric_type.as_str(),
        target: Some(t.target()),
        value: None,
        active: None,
        error: None,
        description: t.config.describe(),
    };
    if let Some(e) = failed {
        r.error = Some(e);
        return r;
    }
    let scaler: Result<Arc<dyn Scaler>, _> = t.config.build();
    match scaler {
        Err(e) => r.error = Some(e.to_string()),
        Ok(s) => match measure_with_timeout(&s, now, timeout).await {
            Ok(m) => {
                r.value = Some(m.value);
                r.active = Some(m.active);
            }
            Err(e) => r.error = Some(e.to_string()),
        },
    }
    r
}

fn decide_now(
    so: &Loaded,
    triggers: &[TriggerReport],
    composite: Option<&CompositeReport>,
    now: DateTime<Utc>,
    current: i32,
) -> Result<DecisionReport, CliError> {
    let spec = &so.object.spec;
    let poll = PollOutcome {
        active: composite.map_or_else(|| triggers.iter().any(|t| t.active == Some(true)), |c| c.active)
            || ebb_scalers::resource::only_resource_triggers(&so.object),
        any_error: triggers.iter().any(|t| t.error.is_some()),
        fallback_active: false,
    };
    // Without a cluster there is no history: treat the object as long created and its last
    // active poll as long past, so the answer is what happens once cooldowns have run out.
    let loop_spec = LoopSpec::from_spec(spec, now - chrono::Duration::days(365));
    // The scaling annotations, read as the operator reads them.
    let annotations = ScalingAnnotations::read(so.object.metadata.annotations.as_ref());
    if annotations.paused {
        return Ok(paused_decision(so, &annotations, poll.active, current));
    }
    let guards = Guards {
        scale_in_paused: annotations.scale_in_paused,
        scale_out_paused: annotations.scale_out_paused,
    };
    let d = decide(&loop_spec, None, now, current, poll, guards);
    let after = d.write.unwrap_or(current);
    let (mut hpa_desired, mut hpa_reason) = (None, None);
    if after > 0 {
        let behavior = annotations.hpa_behavior(spec.hpa_behavior());
        let mut hpa =
            HpaCalculator::from_k8s(spec.min_replicas().max(1), spec.max_replicas(), behavior.as_ref())
                .map_err(|e| {
                    CliError::Invalid(vec![format!(
                        "{}: spec.advanced.horizontalPodAutoscalerConfig.behavior: {e}",
                        so.source
                    )])
                })?;
        let sample = |name: String, metric_type: &str, target: f64, value: Option<f64>| match metric_type {
            "Value" => MetricSample::value(name, target, value),
            _ => MetricSample::average_value(name, target, value),
        };
        let samples: Vec<MetricSample> = match composite {
            Some(c) => vec![sample(c.metric_name.to_owned(), c.metric_type, c.target, c.value)],
            None => triggers
                .iter()
                .map(|t| sample(t.metric_name.clone(), t.metric_type, t.target.unwrap_or(1.0), t.value))
                .collect(),
        };
        let rec = hpa.sync(now, after, after, &samples);
        hpa_desired = Some(rec.desired);
        hpa_reason = Some(rec.reason.clone());
    }
    Ok(DecisionReport {
        active: poll.active,
        current_replicas: current,
        ebb_writes: d.write,
        ebb_event: d.event,
        hpa_desired_replicas: hpa_desired,
        hpa_reason,
        expected_replicas: hpa_desired.unwrap_or(after),
        min_replicas: spec.min_replicas(),
        max_replicas: spec.max_replicas(),
        reason: d.reason,
    })
}

/// A paused object: the operator runs no loop and no HPA, and only writes the pinned count.
fn paused_decision(so: &Loaded, a: &ScalingAnnotations, active: bool, current: i32) -> DecisionReport {
    let spec = &so.object.spec;
    let pinned = a.pinned_replicas();
    let reason = match pinned {
        Some(n) => {
            format!("paused by annotation {ANNOTATION_PAUSED_REPLICAS}: replicas pinned at {n}; no HPA")
        }
        None => format!("paused by annotation {ANNOTATION_PAUSED}: nothing is scaled; no HPA"),
    };
    DecisionReport {
        active,
        current_replicas: current,
        ebb_writes: pinned.filter(|n| *n != current),
        ebb_event: None,
        hpa_desired_replicas: None,
        hpa_reason: None,
        expected_replicas: pinned.unwrap_or(current),
        min_replicas: spec.min_replicas(),
        max_replicas: spec.max_replicas(),
        reason,
    }
}

/// Plain-text rendering for people.
pub fn render_text(r: &CheckReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "ScaledObject {} at {}", r.scaled_object, r.time.to_rfc3339());
    for t in &r.triggers {
        let num = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v}"));
        let _ = writeln!(
            s,
            "  trigger {} ({}){}",
            t.index,
            t.type_,
            t.name.as_ref().map(|n| format!(" name={n}")).unwrap_or_default()
        );
        let _ = writeln!(s, "    metric   {} ({})", t.metric_name, t.metric_type);
        let _ = writeln!(s, "    config   {}", t.description);
        let _ = writeln!(s, "    target   {}", num(t.target));
        match &t.error {
            Some(e) => {
                let _ = writeln!(s, "    error    {e}");
            }
            None if ebb_scalers::resource::is_resource_type(&t.type_) => {
                let _ = writeln!(s, "    value    -  ({})", ebb_scalers::resource::MEASURED_BY_HPA);
            }
            None => {
                let _ = writeln!(s, "    value    {}  active={}", num(t.value), t.active.unwrap_or(false));
            }
        }
    }
    let d = &r.decision;
    let _ = writeln!(
        s,
        "decision: {} (current replicas {}, min {}, max {})",
        if d.active { "ACTIVE" } else { "not active" },
        d.current_replicas,
        d.min_replicas,
        d.max_replicas
    );
    let _ = writeln!(s, "  ebb:  {}", d.reason);
    if let Some(w) = d.ebb_writes {
        let _ = writeln!(
            s,
            "        writes /scale replicas={w}{}",
            d.ebb_event.map(|e| format!(" (event {e})")).unwrap_or_default()
        );
    }
    match (d.hpa_desired_replicas, &d.hpa_reason) {
        (Some(h), Some(reason)) => {
            let _ = writeln!(s, "  hpa:  desired {h} ({reason})");
        }
        _ => {
            let _ = writeln!(s, "  hpa:  inactive while the target is at 0 replicas");
        }
    }
    if let Some(c) = &r.composite {
        let value = match (c.value, &c.error) {
            (Some(v), _) => format!("{v}  active={} (activationTarget {})", c.active, c.activation_target),
            (None, Some(e)) => format!("-  ({e})"),
            (None, None) => "-".to_owned(),
        };
        let _ = writeln!(s, "composite {} ({}) = {}", c.metric_name, c.metric_type, c.formula);
        let _ = writeln!(s, "    target   {}", c.target);
        let _ = writeln!(s, "    value    {value}");
    }
    let _ = writeln!(s, "  => expected replicas: {}", d.expected_replicas);
    for w in &r.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    s
}
