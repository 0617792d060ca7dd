//! Whole-ScaledObject validation and parsing, shared by the operator (at reconcile), the
//! admission webhook (at apply time, same messages) and the CLI: spec-level rules (replica
//! bounds, fallback, names, caching) and every trigger parsed by its scaler's declared parser,
//! after refusing parameters set both in the metadata and by the trigger's authentication.

use std::collections::BTreeSet;

use ebb_api::constants::{ANNOTATION_PAUSED_REPLICAS, MAX_NAME_LENGTH};
use ebb_api::{MetricTargetType, ScaledObject};

use crate::error::{Location, ParseError, ParseErrorKind};
use crate::params::{Params, ParseContext};
use crate::registry;
use crate::trigger::TriggerSpec;

/// A ScaledObject whose spec and triggers all parsed.
#[derive(Debug, Clone)]
pub struct ParsedScaledObject {
    pub triggers: Vec<TriggerSpec>,
    /// Non-fatal findings (unknown or deprecated parameters), each naming where.
    pub warnings: Vec<String>,
}

impl ParsedScaledObject {
    pub fn metric_names(&self) -> Vec<String> {
        self.triggers.iter().map(|t| t.metric_name.clone()).collect()
    }
}

/// Validates the spec and parses every trigger; returns every problem found, each one line.
pub fn parse_scaled_object(
    so: &ScaledObject,
    ctx: &ParseContext,
) -> Result<ParsedScaledObject, Vec<ParseError>> {
    let mut errors = spec_errors(so);
    let mut triggers = Vec::new();
    let mut warnings = Vec::new();
    for (index, t) in so.spec.triggers.iter().enumerate() {
        let def = match registry::lookup(index, &t.type_) {
            Ok(d) => d,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let trig_loc = |msg: String| ParseError {
            location: Location::Trigger { index, type_: t.type_.clone(), parameter: None },
            message: msg,
            kind: ParseErrorKind::InvalidParameter,
        };
        if t.use_cached_metrics && !def.allows_cached_metrics {
            errors.push(trig_loc(format!("useCachedMetrics is not supported for {} triggers", t.type_)));
        }
        if crate::resource::is_resource_type(&t.type_) {
            // Kept out of `triggers`: the HPA measures them (see `crate::resource`).
            match crate::resource::parse_trigger(index, t, ctx) {
                Ok((_, w)) => warnings.extend(w),
                Err(e) => errors.push(e),
            }
            continue;
        }
        if t.metric_type() == MetricTargetType::Utilization {
            errors.push(trig_loc("metricType Utilization is only valid for cpu and memory triggers".into()));
        }
        let params = Params::new(index, &t.type_, def.params, &t.metadata, ctx);
        // Every parameter set both by the authentication and in the metadata, not only the
        // first one the scaler happens to read.
        let conflicts = params.conflicts();
        if !conflicts.is_empty() {
            errors.extend(conflicts);
            continue;
        }
        match (def.parse)(&params) {
            Ok(config) => {
                warnings.extend(params.into_warnings());
                triggers.push(TriggerSpec::new(
                    index,
                    &t.type_,
                    t.name.clone(),
                    t.metric_type(),
                    t.use_cached_metrics,
                    config,
                ));
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() { Ok(ParsedScaledObject { triggers, warnings }) } else { Err(errors) }
}

/// Spec-level rules (everything not inside one trigger's metadata).
pub fn spec_errors(so: &ScaledObject) -> Vec<ParseError> {
    let spec = &so.spec;
    let mut e = Vec::new();
    let (min, max) = (spec.min_replicas(), spec.max_replicas());
    if spec.scale_target_ref.name.is_empty() {
        e.push(ParseError::spec("spec.scaleTargetRef.name", "required: the name of the workload to scale"));
    }
    if spec.triggers.is_empty() {
        e.push(ParseError::spec("spec.triggers", "at least one trigger is required"));
    }
    if min > max {
        e.push(ParseError::spec(
            "spec.minReplicaCount",
            format!("minReplicaCount ({min}) must be less than or equal to maxReplicaCount ({max})"),
        ));
    } else if max < 1 {
        // KEDA compares max(1, minReplicaCount), the HPA's minReplicas, with maxReplicaCount.
        e.push(ParseError::spec(
            "spec.maxReplicaCount",
            format!(
                "maxReplicaCount ({max}) must be at least 1: the HorizontalPodAutoscaler's minReplicas \
                 is max(1, minReplicaCount) = 1 and must not exceed maxReplicaCount"
            ),
        ));
    }
    for (path, v, floor) in [
        ("spec.minReplicaCount", spec.min_replica_count, 0),
        ("spec.maxReplicaCount", spec.max_replica_count, 0),
        ("spec.pollingInterval", spec.polling_interval, 1),
        ("spec.cooldownPeriod", spec.cooldown_period, 0),
        ("spec.initialCooldownPeriod", spec.initial_cooldown_period, 0),
        ("spec.idleReplicaCount", spec.idle_replica_count, 0),
    ] {
        if let Some(v) = v.filter(|v| *v < floor) {
            e.push(ParseError::spec(path, format!("must be ≥ {floor}, found {v}")));
        }
    }
    if let Some(idle) = spec.idle_replica_count.filter(|i| *i >= min) {
        e.push(ParseError::spec(
            "spec.idleReplicaCount",
            format!("idleReplicaCount ({idle}) must be less than minReplicaCount ({min})"),
        ));
    }
    if let Some(f) = &spec.fallback {
        if f.failure_threshold < 0 || f.replicas < 0 {
            e.push(ParseError::spec("spec.fallback", "failureThreshold and replicas must not be negative"));
        }
        if !spec.triggers.is_empty()
            && spec.triggers.iter().all(|t| crate::resource::is_resource_type(&t.type_))
        {
            e.push(ParseError::spec(
                "spec.fallback",
                "fallback needs at least one trigger other than cpu or memory",
            ));
        }
    }
    if min == 0 && crate::resource::only_resource_triggers(so) {
        e.push(ParseError::spec(
            "spec.minReplicaCount",
            "with only cpu/memory triggers the workload cannot scale from zero; set minReplicaCount ≥ 1 or add another trigger",
        ));
    }
    let name = so.metadata.name.as_deref().unwrap_or_default();
    if name.len() > MAX_NAME_LENGTH {
        e.push(ParseError::spec("metadata.name", format!("must be at most {MAX_NAME_LENGTH} characters")));
    }
    let hpa = so.hpa_name();
    if hpa.len() > MAX_NAME_LENGTH {
        e.push(ParseError::spec(
            "spec.advanced.horizontalPodAutoscalerConfig.name",
            format!("HPA name {hpa:?} is longer than {MAX_NAME_LENGTH} characters; set a shorter name"),
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, t) in spec.triggers.iter().enumerate() {
        if let Some(n) = t.name.as_deref().filter(|n| !n.is_empty())
            && !seen.insert(n)
        {
            e.push(ParseError::spec(
                format!("spec.triggers[{i}].name"),
                format!("duplicate trigger name {n:?}"),
            ));
        }
    }
    if let Some(v) = so.metadata.annotations.as_ref().and_then(|a| a.get(ANNOTATION_PAUSED_REPLICAS))
        && let Err(err) = ebb_api::annotations::parse_paused_replicas(v)
    {
        e.push(ParseError::spec(format!("metadata.annotations[{ANNOTATION_PAUSED_REPLICAS}]"), err.detail()));
    }
    e.extend(modifiers::errors(so));
    e
}

pub mod modifiers;
#[cfg(test)]
mod tests;
