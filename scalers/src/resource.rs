//! The `cpu` and `memory` triggers. ebb never measures them: they become a `Resource` metric of
//! the HPA (a `ContainerResource` one when `metadata.containerName` is set), which
//! kube-controller-manager reads from the pods' resource metrics (metrics-server). They are
//! therefore kept out of [`crate::ParsedScaledObject::triggers`] (nothing polls them, the
//! metrics API does not serve them, they count neither for activation nor for fallback) and
//! read from the ScaledObject by [`resource_triggers`] wherever they matter: the HPA and the
//! status `resourceMetricNames`.
//!
//! Parameters as KEDA reads them: the target type comes from the trigger's `metricType`
//! (`Utilization` or `AverageValue`; `Value` is refused) or from the deprecated `metadata.type`;
//! `metadata.value` is required — a whole percentage for `Utilization`, a quantity (`500m`,
//! `256Mi`) for `AverageValue`; `metadata.containerName` is optional.

use std::sync::Arc;

use ebb_api::{MetricTargetType, ScaleTrigger, ScaledObject, quantity};

use crate::error::{ParseError, ParseErrorKind, ScalerError};
use crate::params::{ParamKind, ParamSpec, Params, ParseContext};
use crate::scaler::Scaler;
use crate::trigger::ScalerConfig;

/// Parameters of the cpu and memory triggers.
pub const PARAMS: &[ParamSpec] = &[
    ParamSpec::new("type", ParamKind::Enum(&["Utilization", "AverageValue"]))
        .deprecated("set the trigger's metricType instead"),
    ParamSpec::new("value", ParamKind::Text).required(),
    ParamSpec::new("containerName", ParamKind::Text),
];

/// Why a cpu/memory trigger is never polled, for `ebb check`, `ebb simulate` and errors.
pub const MEASURED_BY_HPA: &str = "measured by the HPA from pod metrics";

/// Whether `type_` is a trigger the HPA measures itself (`cpu`, `memory`).
pub fn is_resource_type(type_: &str) -> bool {
    matches!(type_, "cpu" | "memory")
}

/// Whether every trigger of `so` is cpu or memory (and there is at least one).
pub fn only_resource_triggers(so: &ScaledObject) -> bool {
    let t = &so.spec.triggers;
    !t.is_empty() && t.iter().all(|t| is_resource_type(&t.type_))
}

/// The HPA's target for a resource metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceTarget {
    /// `averageUtilization`: percent of the containers' requests.
    Utilization(i32),
    /// `averageValue`: a quantity per pod, as written.
    AverageValue(String),
}

/// One parsed cpu or memory trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceTrigger {
    pub index: usize,
    /// `cpu` or `memory`.
    pub resource: String,
    pub target: ResourceTarget,
    /// Only this container's usage (`ContainerResource`), else the whole pod's (`Resource`).
    pub container: Option<String>,
}

impl ResourceTrigger {
    /// One line for `ebb check`, `ebb simulate` and events.
    pub fn describe(&self) -> String {
        let target = match &self.target {
            ResourceTarget::Utilization(p) => format!("{p}% average utilization"),
            ResourceTarget::AverageValue(q) => format!("average value {q}"),
        };
        let of = self.container.as_deref().map_or_else(|| "pods".to_owned(), |c| format!("container {c:?}"));
        format!("{} of the {of}, target {target} ({MEASURED_BY_HPA})", self.resource)
    }
}

impl ScalerConfig for ResourceTrigger {
    fn metric_part(&self) -> String {
        self.resource.clone()
    }
    fn target(&self) -> f64 {
        match &self.target {
            ResourceTarget::Utilization(p) => f64::from(*p),
            ResourceTarget::AverageValue(q) => quantity::parse(q).unwrap_or(0.0),
        }
    }
    fn activation_target(&self) -> f64 {
        0.0
    }
    fn build(&self) -> Result<Arc<dyn Scaler>, ScalerError> {
        Err(ScalerError::Config(format!(
            "{} triggers are not polled by ebb: {MEASURED_BY_HPA}",
            self.resource
        )))
    }
    fn describe(&self) -> String {
        ResourceTrigger::describe(self)
    }
}

/// Registry entry point for `cpu`: the metadata alone (the type from `metadata.type`).
/// [`parse_trigger`] is what validation uses, since the trigger's `metricType` takes part.
pub fn parse_cpu(p: &Params<'_>) -> Result<Arc<dyn ScalerConfig>, ParseError> {
    Ok(Arc::new(read(p, p.trigger_index(), "cpu", None)?))
}

/// Registry entry point for `memory` (see [`parse_cpu`]).
pub fn parse_memory(p: &Params<'_>) -> Result<Arc<dyn ScalerConfig>, ParseError> {
    Ok(Arc::new(read(p, p.trigger_index(), "memory", None)?))
}

/// Parses trigger `index` of type `cpu` or `memory`, its `metricType` included; the warnings
/// are those of its metadata (the deprecated `type`, unknown keys).
pub fn parse_trigger(
    index: usize,
    t: &ScaleTrigger,
    ctx: &ParseContext,
) -> Result<(ResourceTrigger, Vec<String>), ParseError> {
    let p = Params::new(index, &t.type_, PARAMS, &t.metadata, ctx);
    let r = read(&p, index, &t.type_, t.metric_type)?;
    Ok((r, p.into_warnings()))
}

/// The cpu and memory triggers of `so` that parse, in trigger order (validation reports the
/// others).
pub fn resource_triggers(so: &ScaledObject) -> Vec<ResourceTrigger> {
    let ctx = ParseContext::default();
    so.spec
        .triggers
        .iter()
        .enumerate()
        .filter(|(_, t)| is_resource_type(&t.type_))
        .filter_map(|(i, t)| parse_trigger(i, t, &ctx).ok().map(|(r, _)| r))
        .collect()
}

/// KEDA's admission rule on the target's pod template: a cpu (memory) trigger needs a non-zero
/// cpu (memory) request (or, without one, a limit) on each container it measures
/// (`containerName`, else every container).
/// One message per missing request, naming the trigger and the container.
pub fn missing_requests(
    so: &ScaledObject,
    containers: &[k8s_openapi::api::core::v1::Container],
) -> Vec<String> {
    let mut out = Vec::new();
    for t in resource_triggers(so) {
        for c in containers.iter().filter(|c| t.container.as_deref().is_none_or(|n| n == c.name)) {
            // A limit alone counts: Kubernetes then defaults the request to it.
            let request = c.resources.as_ref().and_then(|r| {
                r.requests
                    .as_ref()
                    .and_then(|m| m.get(&t.resource))
                    .or_else(|| r.limits.as_ref()?.get(&t.resource))
            });
            if !request.is_some_and(|q| quantity::parse(&q.0).is_ok_and(|v| v > 0.0)) {
                out.push(format!(
                    "spec.triggers[{}] ({}): container {:?} of the scale target has no {} request; set resources.requests.{} on it",
                    t.index, t.resource, c.name, t.resource, t.resource
                ));
            }
        }
    }
    out
}

fn read(
    p: &Params<'_>,
    index: usize,
    type_: &str,
    metric_type: Option<MetricTargetType>,
) -> Result<ResourceTrigger, ParseError> {
    let from_metadata = p.text("type")?.filter(|s| !s.trim().is_empty());
    let kind = match (from_metadata.as_deref(), metric_type) {
        (Some(m), Some(t)) if m != t.as_str() => {
            return Err(p.error(
                "type",
                ParseErrorKind::InvalidParameter,
                format!(
                    "metadata.type {m:?} contradicts the trigger's metricType {:?}; set only metricType",
                    t.as_str()
                ),
            ));
        }
        (Some("Utilization"), _) => MetricTargetType::Utilization,
        (Some(_), _) => MetricTargetType::AverageValue,
        (None, Some(t)) => t,
        (None, None) => {
            return Err(p.trigger_error(
                "no target type: set the trigger's metricType to Utilization or AverageValue",
            ));
        }
    };
    let value = p.required_text("value")?;
    let value = value.trim();
    let target = match kind {
        MetricTargetType::Utilization => match value.parse::<i32>() {
            Ok(n) if n > 0 => ResourceTarget::Utilization(n),
            _ => {
                return Err(p.error(
                    "value",
                    ParseErrorKind::InvalidParameter,
                    format!("must be a whole percentage > 0 for Utilization, found {value:?}"),
                ));
            }
        },
        MetricTargetType::AverageValue => match quantity::parse(value) {
            Ok(v) if v > 0.0 => ResourceTarget::AverageValue(value.to_owned()),
            _ => {
                return Err(p.error(
                    "value",
                    ParseErrorKind::InvalidParameter,
                    format!(
                        "must be a quantity > 0 for AverageValue (such as 500m or 256Mi), found {value:?}"
                    ),
                ));
            }
        },
        MetricTargetType::Value => {
            return Err(p.trigger_error(format!(
                "metricType Value is not allowed for {type_} triggers; use Utilization or AverageValue"
            )));
        }
    };
    let container = p.text("containerName")?.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    Ok(ResourceTrigger { index, resource: type_.to_owned(), target, container })
}

#[cfg(test)]
mod tests;
