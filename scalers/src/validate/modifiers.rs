//! `advanced.scalingModifiers`, validated and compiled once for the webhook, the operator and
//! the CLI (same messages, with the formula's character offset): KEDA's rules — a formula needs
//! a `target`; `target` and `activationTarget` are numbers; `metricType` is `AverageValue` or
//! `Value`; every variable of the formula is the `name` of one of this ScaledObject's
//! triggers; the formula compiles (see [`crate::formula`], which also refuses a top-level
//! comparison or logical operator: a boolean result);
//! `fallback.behavior: scalingModifiers` needs a formula.

use ebb_api::{FallbackBehavior, MetricTargetType, ScaledObject};

use crate::error::ParseError;
use crate::formula::Formula;

/// Name of the one External metric the HPA gets when a formula is set (KEDA's
/// `composite-metric`), also reported as `status.compositeScalerName`.
pub const COMPOSITE_METRIC_NAME: &str = "composite-metric";

const PATH: &str = "spec.advanced.scalingModifiers";

/// A compiled `scalingModifiers`.
#[derive(Debug, Clone, PartialEq)]
pub struct Composite {
    pub formula: Formula,
    /// The composite metric's target.
    pub target: f64,
    /// Activation threshold of the composite value (default 0).
    pub activation_target: f64,
    /// `AverageValue` (default) or `Value`.
    pub metric_type: MetricTargetType,
}

/// Whether `path` (a [`crate::Location::Spec`] path) is one this module reports.
pub fn is_modifiers_path(path: &str) -> bool {
    path.starts_with(PATH) || path == "spec.fallback.behavior"
}

fn err(field: &str, message: impl Into<String>) -> ParseError {
    ParseError::spec(format!("{PATH}.{field}"), message)
}

/// The compiled formula of `so`, `Ok(None)` when it sets none; every problem found otherwise.
pub fn composite(so: &ScaledObject) -> Result<Option<Composite>, Vec<ParseError>> {
    let m = so.spec.advanced.as_ref().and_then(|a| a.scaling_modifiers.as_ref());
    let formula_src = m.and_then(|m| m.formula.as_deref()).map(str::trim).filter(|s| !s.is_empty());
    let wants_modifiers_fallback =
        so.spec.fallback.as_ref().is_some_and(|f| f.behavior == FallbackBehavior::ScalingModifiers);
    let (Some(m), Some(src)) = (m, formula_src) else {
        let mut out = Vec::new();
        let configured = m.is_some_and(|m| {
            m.target.as_deref().is_some_and(|t| !t.trim().is_empty())
                || m.activation_target.is_some()
                || m.metric_type.is_some()
        });
        if configured {
            out.push(err(
                "formula",
                "required when scalingModifiers sets a target, activationTarget or metricType",
            ));
        }
        if wants_modifiers_fallback {
            out.push(ParseError::spec(
                "spec.fallback.behavior",
                "scalingModifiers needs spec.advanced.scalingModifiers.formula",
            ));
        }
        return if out.is_empty() { Ok(None) } else { Err(out) };
    };
    let mut out = Vec::new();
    let target = match m.target.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => {
            out.push(err("target", "required with a formula"));
            None
        }
        Some(t) => match t.parse::<f64>() {
            Ok(v) if v.is_finite() && v > 0.0 => Some(v),
            _ => {
                out.push(err("target", format!("expected a number > 0, found {t:?}")));
                None
            }
        },
    };
    let activation_target = match m.activation_target.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => 0.0,
        Some(a) => match a.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => v,
            _ => {
                out.push(err("activationTarget", format!("expected a number ≥ 0, found {a:?}")));
                0.0
            }
        },
    };
    let metric_type = m.metric_type.unwrap_or(MetricTargetType::AverageValue);
    if metric_type == MetricTargetType::Utilization {
        out.push(err("metricType", "Utilization is not allowed; use AverageValue or Value"));
    }
    let formula = match Formula::compile(src) {
        Ok(f) => Some(f),
        Err(e) => {
            out.push(err("formula", format!("{e} in {src:?}")));
            None
        }
    };
    if let Some(f) = &formula {
        let names: Vec<&str> = so.spec.triggers.iter().filter_map(|t| t.name.as_deref()).collect();
        for (var, at) in f.variables() {
            if !names.contains(&var.as_str()) {
                out.push(err(
                    "formula",
                    format!(
                        "unknown name {var:?} (at character {at}): every variable must be the name of \
                         one of this ScaledObject's triggers (named: {})",
                        if names.is_empty() { "none".to_owned() } else { names.join(", ") }
                    ),
                ));
            }
        }
    }
    match (formula, target, out.is_empty()) {
        (Some(formula), Some(target), true) => {
            Ok(Some(Composite { formula, target, activation_target, metric_type }))
        }
        _ => Err(out),
    }
}

/// The problems [`composite`] finds (empty when the modifiers are usable or absent).
pub fn errors(so: &ScaledObject) -> Vec<ParseError> {
    composite(so).err().unwrap_or_default()
}

#[cfg(test)]
#[path = "modifiers_tests.rs"]
mod tests;
