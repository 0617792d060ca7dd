//! HPA scaling behavior (`spec.behavior` of an autoscaling/v2 HorizontalPodAutoscaler) in the
//! fully defaulted form the controller works with: the API server's defaulting of missing parts,
//! the controller's 300 s scale-down window, and the API server's validation of the values.

use k8s_openapi::api::autoscaling::v2::{HPAScalingRules, HorizontalPodAutoscalerBehavior};
use serde::Serialize;
use thiserror::Error;

/// Longest accepted `periodSeconds` of a policy.
pub const MAX_PERIOD_SECONDS: i32 = 1800;
/// Longest accepted `stabilizationWindowSeconds`.
pub const MAX_STABILIZATION_WINDOW_SECONDS: i32 = 3600;
/// Scale-down stabilization window the controller applies when none is set (its
/// `--horizontal-pod-autoscaler-downscale-stabilization` default).
pub const DEFAULT_SCALE_DOWN_STABILIZATION_SECONDS: i32 = 300;

/// How the limits of several policies are combined (`selectPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SelectPolicy {
    /// The policy allowing the largest change wins (the default).
    Max,
    /// The policy allowing the smallest change wins.
    Min,
    /// No scaling in this direction.
    Disabled,
}

/// What a policy's `value` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PolicyType {
    /// An absolute number of pods per period.
    Pods,
    /// A percentage of the replicas present at the start of the period.
    Percent,
}

/// One scaling policy: at most `value` (pods or percent) of change per `period_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    #[serde(rename = "type")]
    pub type_: PolicyType,
    pub value: i32,
    pub period_seconds: i32,
}

impl Policy {
    /// A `Pods` policy.
    pub fn pods(value: i32, period_seconds: i32) -> Self {
        Self { type_: PolicyType::Pods, value, period_seconds }
    }

    /// A `Percent` policy.
    pub fn percent(value: i32, period_seconds: i32) -> Self {
        Self { type_: PolicyType::Percent, value, period_seconds }
    }
}

/// The rules for one direction (scale-up or scale-down), every field set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScalingRules {
    pub stabilization_window_seconds: i32,
    pub select_policy: SelectPolicy,
    pub policies: Vec<Policy>,
}

impl ScalingRules {
    /// Scale-up defaults: no stabilization; +4 pods or +100 % per 15 s, whichever is larger.
    pub fn default_scale_up() -> Self {
        Self {
            stabilization_window_seconds: 0,
            select_policy: SelectPolicy::Max,
            policies: vec![Policy::pods(4, 15), Policy::percent(100, 15)],
        }
    }

    /// Scale-down defaults: 300 s stabilization; up to 100 % of the pods per 15 s.
    pub fn default_scale_down() -> Self {
        Self {
            stabilization_window_seconds: DEFAULT_SCALE_DOWN_STABILIZATION_SECONDS,
            select_policy: SelectPolicy::Max,
            policies: vec![Policy::percent(100, 15)],
        }
    }

    /// The longest policy period, which is how long scale events of this direction matter.
    pub fn longest_period_seconds(&self) -> i32 {
        self.policies.iter().map(|p| p.period_seconds).max().unwrap_or(0)
    }

    /// Checks the values the API server would reject. `path` names the rules block
    /// (`scaleUp` / `scaleDown`) in error messages.
    pub fn validate(&self, path: &str) -> Result<(), BehaviorError> {
        let w = self.stabilization_window_seconds;
        if !(0..=MAX_STABILIZATION_WINDOW_SECONDS).contains(&w) {
            return Err(BehaviorError::WindowOutOfRange {
                field: format!("{path}.stabilizationWindowSeconds"),
                value: w,
            });
        }
        if self.policies.is_empty() {
            return Err(BehaviorError::NoPolicies { field: format!("{path}.policies") });
        }
        for (i, p) in self.policies.iter().enumerate() {
            if p.value <= 0 {
                return Err(BehaviorError::NonPositiveValue {
                    field: format!("{path}.policies[{i}].value"),
                    value: p.value,
                });
            }
            if !(1..=MAX_PERIOD_SECONDS).contains(&p.period_seconds) {
                return Err(BehaviorError::PeriodOutOfRange {
                    field: format!("{path}.policies[{i}].periodSeconds"),
                    value: p.period_seconds,
                });
            }
        }
        Ok(())
    }
}

/// Scale-up and scale-down rules of one HPA, every field set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Behavior {
    pub scale_up: ScalingRules,
    pub scale_down: ScalingRules,
}

impl Default for Behavior {
    fn default() -> Self {
        Self { scale_up: ScalingRules::default_scale_up(), scale_down: ScalingRules::default_scale_down() }
    }
}

impl Behavior {
    /// Upstream defaults filled in for absent fields (API-server defaulting of autoscaling/v2,
    /// plus the controller's 300 s scale-down window), then validated like the API server does.
    ///
    /// `None` gives the defaults. Note that the controller itself treats an HPA *without*
    /// `spec.behavior` differently (older fixed rules, see
    /// [`HpaCalculator::without_behavior`](super::HpaCalculator::without_behavior)); use
    /// [`HpaCalculator::from_k8s`](super::HpaCalculator::from_k8s) to pick the right one.
    pub fn from_k8s(b: Option<&HorizontalPodAutoscalerBehavior>) -> Result<Behavior, BehaviorError> {
        let Some(b) = b else {
            return Ok(Behavior::default());
        };
        Ok(Behavior {
            scale_up: rules_from_k8s(b.scale_up.as_ref(), ScalingRules::default_scale_up(), "scaleUp")?,
            scale_down: rules_from_k8s(
                b.scale_down.as_ref(),
                ScalingRules::default_scale_down(),
                "scaleDown",
            )?,
        })
    }

    /// Checks both rules blocks (for behaviors built by hand).
    pub fn validate(&self) -> Result<(), BehaviorError> {
        self.scale_up.validate("scaleUp")?;
        self.scale_down.validate("scaleDown")
    }
}

fn rules_from_k8s(
    rules: Option<&HPAScalingRules>,
    defaults: ScalingRules,
    path: &str,
) -> Result<ScalingRules, BehaviorError> {
    let Some(r) = rules else {
        return Ok(defaults);
    };
    let select_policy = match r.select_policy.as_deref() {
        None | Some("Max") => SelectPolicy::Max,
        Some("Min") => SelectPolicy::Min,
        Some("Disabled") => SelectPolicy::Disabled,
        Some(other) => {
            return Err(BehaviorError::UnknownSelectPolicy {
                field: format!("{path}.selectPolicy"),
                value: other.to_owned(),
            });
        }
    };
    let policies = match &r.policies {
        None => defaults.policies,
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let type_ = match p.type_.as_str() {
                    "Pods" => PolicyType::Pods,
                    "Percent" => PolicyType::Percent,
                    other => {
                        return Err(BehaviorError::UnknownPolicyType {
                            field: format!("{path}.policies[{i}].type"),
                            value: other.to_owned(),
                        });
                    }
                };
                Ok(Policy { type_, value: p.value, period_seconds: p.period_seconds })
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let out = ScalingRules {
        stabilization_window_seconds: r
            .stabilization_window_seconds
            .unwrap_or(defaults.stabilization_window_seconds),
        select_policy,
        policies,
    };
    out.validate(path)?;
    Ok(out)
}

/// A behavior the API server would reject; `field` is the path inside `spec.behavior`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BehaviorError {
    #[error("{field}: must be greater than zero, found {value}")]
    NonPositiveValue { field: String, value: i32 },
    #[error("{field}: must be between 1 and {MAX_PERIOD_SECONDS} seconds, found {value}")]
    PeriodOutOfRange { field: String, value: i32 },
    #[error("{field}: must be between 0 and {MAX_STABILIZATION_WINDOW_SECONDS} seconds, found {value}")]
    WindowOutOfRange { field: String, value: i32 },
    #[error("{field}: must be Max, Min or Disabled, found {value:?}")]
    UnknownSelectPolicy { field: String, value: String },
    #[error("{field}: must be Pods or Percent, found {value:?}")]
    UnknownPolicyType { field: String, value: String },
    #[error("{field}: must list at least one policy")]
    NoPolicies { field: String },
    #[error("{field}: must be a quantity ≥ 0, found {value:?}")]
    InvalidTolerance { field: String, value: String },
}

impl BehaviorError {
    /// The offending field, e.g. `scaleDown.policies[0].periodSeconds`.
    pub fn field(&self) -> &str {
        match self {
            Self::NonPositiveValue { field, .. }
            | Self::PeriodOutOfRange { field, .. }
            | Self::WindowOutOfRange { field, .. }
            | Self::UnknownSelectPolicy { field, .. }
            | Self::UnknownPolicyType { field, .. }
            | Self::NoPolicies { field }
            | Self::InvalidTolerance { field, .. } => field,
        }
    }
}
