//! The composite metric of `advanced.scalingModifiers` (pure): the formula evaluated over the
//! named triggers' values, with KEDA's fallback rules.
//!
//! - A trigger past `failureThreshold` under the default fallback behaviors puts the whole
//!   ScaledObject in fallback: the formula is not evaluated and the composite value is the one
//!   that makes the HPA land on the fallback replicas (computed with the composite target and
//!   metric type).
//! - Under `fallback.behavior: scalingModifiers` such a trigger is nil in the formula (route
//!   around it with `??`); when the formula yields nil, `fallback.replicas` apply.
//! - A trigger that failed but is not (yet) in fallback makes the composite value an error
//!   naming that trigger, as any failing metric does; so does a formula that fails to evaluate
//!   (e.g. arithmetic on nil, a non-finite result such as `a / 0`) or yields nil without a
//!   fallback.

use std::collections::BTreeMap;

use ebb_api::{Fallback, FallbackBehavior};
use ebb_scalers::validate::modifiers::Composite;

/// What is known of one trigger named in the formula.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Value(f64),
    /// Failed, fallback not in force for it; the text says why.
    Failing(String),
    /// Failed `failureThreshold` times in a row, fallback configured.
    PastThreshold,
}

/// The composite value served to the HPA (and compared with `activationTarget`).
pub fn value(
    comp: &Composite,
    fallback: Option<&Fallback>,
    inputs: &BTreeMap<String, Input>,
    current: i32,
) -> Result<f64, String> {
    let past = inputs.values().any(|i| *i == Input::PastThreshold);
    let per_trigger = fallback.is_some_and(|f| f.behavior == FallbackBehavior::ScalingModifiers);
    if let Some(fb) = fallback.filter(|_| past && !per_trigger) {
        return Ok(crate::fallback::value(fb, comp.metric_type, comp.target, current));
    }
    if let Some((name, Input::Failing(e))) = inputs.iter().find(|(_, i)| matches!(i, Input::Failing(_))) {
        return Err(format!("trigger {name:?} of the formula failed: {e}"));
    }
    let vars: BTreeMap<String, Option<f64>> = inputs
        .iter()
        .map(|(k, i)| (k.clone(), if let Input::Value(v) = i { Some(*v) } else { None }))
        .collect();
    match comp.formula.eval(&vars) {
        Ok(Some(v)) => Ok(v),
        Ok(None) => match fallback {
            Some(fb) => Ok(crate::fallback::value(fb, comp.metric_type, comp.target, current)),
            None => Err("the formula yields nil and no fallback is configured".into()),
        },
        Err(e) => Err(format!("formula: {e}")),
    }
}

/// Whether the object is active by the composite value: strictly above `activationTarget`, as
/// KEDA compares it (an error, e.g. a failing trigger, is not active).
pub fn active(
    comp: &Composite,
    fallback: Option<&Fallback>,
    inputs: &BTreeMap<String, Input>,
    current: i32,
) -> bool {
    value(comp, fallback, inputs, current).is_ok_and(|v| v > comp.activation_target)
}

/// The composite's activity from one poll's results per named trigger. Under `fallback.behavior:
/// scalingModifiers` a failed trigger is nil in the formula; otherwise a failed trigger makes
/// the composite inactive.
pub fn poll_active(
    comp: &Composite,
    fallback: Option<&Fallback>,
    named: &BTreeMap<String, Result<f64, String>>,
    current: i32,
) -> bool {
    let per_trigger = fallback.is_some_and(|f| f.behavior == FallbackBehavior::ScalingModifiers);
    let inputs: BTreeMap<String, Input> = named
        .iter()
        .map(|(k, r)| {
            let i = match r {
                Ok(v) => Input::Value(*v),
                Err(_) if per_trigger => Input::PastThreshold,
                Err(e) => Input::Failing(e.clone()),
            };
            (k.clone(), i)
        })
        .collect();
    active(comp, fallback, &inputs, current)
}

#[cfg(test)]
mod tests;
