//! ScaledObject rules. [`evaluate`] runs them all; each rule is a named function so tables can
//! test it alone. Spec and trigger rules come from the scalers crate's parser (the operator's
//! own, so the messages are the operator's); the webhook adds the rules that need other objects
//! (one ScaledObject per workload, unique HPA names, no foreign HPA), the cpu/memory rules and
//! warnings for settings that have no effect or pause flags that are not booleans (read with
//! the shared parser, `ebb_api::annotations`, as the operator reads them).

use ebb_api::ScaledObject;
use ebb_api::annotations;
use ebb_api::constants::{
    ANNOTATION_HPA_OWNERSHIP_VALIDATION, ANNOTATION_PAUSED, ANNOTATION_PAUSED_SCALE_IN,
    ANNOTATION_PAUSED_SCALE_OUT, ANNOTATION_TRANSFER_HPA_OWNERSHIP,
};
use ebb_scalers::{Location, ParseContext, ParseError, ParseErrorKind, registry};

use super::{Finding, Verdict};
use crate::index::{Snapshot, Workload};

/// Metric-label reasons of ScaledObject denials.
pub mod reason {
    pub const INVALID_SPEC: &str = "invalid-spec";
    pub const UNKNOWN_TRIGGER_TYPE: &str = "unknown-trigger-type";
    pub const INVALID_TRIGGER: &str = "invalid-trigger-metadata";
    pub const DUPLICATE_TARGET: &str = "duplicate-target";
    pub const DUPLICATE_HPA_NAME: &str = "duplicate-hpa-name";
    pub const FOREIGN_HPA: &str = "hpa-conflict";
    pub const RESOURCE_TRIGGER: &str = "resource-trigger";
    pub const SCALING_MODIFIERS: &str = "scaling-modifiers";
    pub const UNDECODABLE: &str = "undecodable";
    pub const NOT_READY: &str = "index-not-synced";
}

/// Requests of one container of the target's pod template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerRequests {
    pub name: String,
    pub cpu: bool,
    pub memory: bool,
}

/// What is known of the target's containers for the cpu/memory rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkloadFacts {
    /// No cpu or memory trigger: nothing to look up.
    NotNeeded,
    /// The target's pod template containers.
    Containers(Vec<ContainerRequests>),
    /// The target could not be read; the text says why (becomes a warning).
    Unknown(String),
}

/// Every rule, in the order a user would fix things.
pub fn evaluate(so: &ScaledObject, ns: &str, index: &Snapshot, workload: &WorkloadFacts) -> Verdict {
    let mut v = Verdict::default();
    let (denials, warnings) = spec_and_triggers(so);
    v.deny(denials);
    v.warn(warnings);
    v.deny(scaling_modifiers(so));
    let (denials, warnings) = resource_requests(so, workload);
    v.deny(denials);
    v.warn(warnings);
    v.warn(pause_annotations(so));
    v.deny(unique_target(so, ns, index));
    v.deny(unique_hpa_name(so, ns, index));
    v.deny(no_foreign_hpa(so, ns, index));
    v.warn(irrelevant_settings(so));
    v
}

fn name(so: &ScaledObject) -> &str {
    so.metadata.name.as_deref().unwrap_or_default()
}

fn annotation<'a>(so: &'a ScaledObject, key: &str) -> Option<&'a str> {
    so.metadata.annotations.as_ref()?.get(key).map(String::as_str)
}

fn is_resource_trigger(type_: &str) -> bool {
    matches!(type_, "cpu" | "memory")
}

/// The workload `spec.scaleTargetRef` names (with its defaults).
pub fn target(so: &ScaledObject) -> Workload {
    let t = &so.spec.scale_target_ref;
    Workload::new(t.api_version(), t.kind(), &t.name)
}

/// Spec rules (replica bounds, idle < min, fallback, name lengths, duplicate trigger names,
/// pause annotation, …) and every trigger's metadata, through the operator's own parser.
///
/// What cannot be judged before reconcile is not held against the object: `…FromEnv` values
/// (the target's environment is read by the operator) and parameters a referenced
/// TriggerAuthentication supplies. A trigger without credentials is admitted with a warning (one
/// may be configured later); an unknown trigger type is denied.
pub fn spec_and_triggers(so: &ScaledObject) -> (Vec<Finding>, Vec<String>) {
    match ebb_scalers::parse_scaled_object(so, &ParseContext::default()) {
        Ok(parsed) => (Vec::new(), parsed.warnings),
        Err(errors) => {
            let mut denials = Vec::new();
            let mut warnings = Vec::new();
            for e in errors.into_iter().filter(|e| !is_modifiers_error(e)) {
                match judge(so, &e) {
                    Judgement::Deny(reason) => denials.push(Finding::new(reason, e.to_string())),
                    Judgement::Warn => warnings.push(format!("{e}; admitted: {WARNED_CONSEQUENCE}")),
                    Judgement::Later => {}
                }
            }
            (denials, warnings)
        }
    }
}

/// What admitting an object with a warned error (only missing credentials, see [`judge`])
/// means, for the warning.
const WARNED_CONSEQUENCE: &str =
    "the operator reports the missing credentials on this ScaledObject until they are configured";

/// How a parser error counts at admission.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Judgement {
    Deny(&'static str),
    Warn,
    /// Depends on what only the operator reads (the target's environment, Secrets).
    Later,
}

pub(super) fn judge(so: &ScaledObject, e: &ParseError) -> Judgement {
    match e.kind {
        ParseErrorKind::MissingCredentials => return Judgement::Warn,
        ParseErrorKind::InvalidSpec => return Judgement::Deny(reason::INVALID_SPEC),
        ParseErrorKind::UnknownTriggerType => return Judgement::Deny(reason::UNKNOWN_TRIGGER_TYPE),
        ParseErrorKind::MissingParameter | ParseErrorKind::InvalidParameter => {}
    }
    if let Location::Trigger { index, type_, parameter: Some(p) } = &e.location
        && e.kind == ParseErrorKind::MissingParameter
    {
        if p.ends_with("FromEnv") {
            return Judgement::Later;
        }
        let has_auth = so.spec.triggers.get(*index).is_some_and(|t| t.authentication_ref.is_some());
        let from_auth = registry::lookup(*index, type_)
            .ok()
            .and_then(|d| d.params.iter().find(|s| s.name == p.as_str()))
            .is_some_and(|s| s.from_auth);
        if has_auth && from_auth {
            return Judgement::Later;
        }
    }
    Judgement::Deny(reason::INVALID_TRIGGER)
}

/// `advanced.scalingModifiers` (and `fallback.behavior: scalingModifiers`), through the shared
/// parser's rules (`ebb_scalers::validate::modifiers`): a formula needs a numeric target, every
/// variable must be a trigger name, unsupported syntax is named with its character offset;
/// Utilization is not a composite metric type. Reported under their own reason, so
/// [`spec_and_triggers`] leaves them out.
pub fn scaling_modifiers(so: &ScaledObject) -> Vec<Finding> {
    ebb_scalers::validate::modifiers::errors(so)
        .into_iter()
        .map(|e| Finding::new(reason::SCALING_MODIFIERS, e.to_string()))
        .collect()
}

fn is_modifiers_error(e: &ParseError) -> bool {
    matches!(&e.location, Location::Spec(p) if ebb_scalers::validate::modifiers::is_modifiers_path(p))
}

/// A cpu (memory) trigger needs a cpu (memory) request on every container it measures
/// (`metadata.containerName`, or all containers).
pub fn resource_requests(so: &ScaledObject, workload: &WorkloadFacts) -> (Vec<Finding>, Vec<String>) {
    let triggers: Vec<_> =
        so.spec.triggers.iter().enumerate().filter(|(_, t)| is_resource_trigger(&t.type_)).collect();
    if triggers.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let containers = match workload {
        WorkloadFacts::Containers(c) => c,
        WorkloadFacts::Unknown(why) => {
            return (Vec::new(), vec![format!("cpu/memory requests of the scale target not checked: {why}")]);
        }
        WorkloadFacts::NotNeeded => return (Vec::new(), Vec::new()),
    };
    let mut out = Vec::new();
    for (i, t) in triggers {
        let only = t.metadata.get("containerName").map(|v| v.as_str()).filter(|s| !s.is_empty());
        for c in containers.iter().filter(|c| only.is_none_or(|n| n == c.name)) {
            let has = if t.type_ == "cpu" { c.cpu } else { c.memory };
            if !has {
                out.push(Finding::new(
                    reason::RESOURCE_TRIGGER,
                    format!(
                        "spec.triggers[{i}] ({}): container {:?} of the scale target has no {} request; set resources.requests.{} on it",
                        t.type_, c.name, t.type_, t.type_
                    ),
                ));
            }
        }
    }
    (out, Vec::new())
}

/// The pause flags (`autoscaling.keda.sh/paused`, `…/paused-scale-in`, `…/paused-scale-out`)
/// with a value that is not a boolean: admitted, as KEDA reads such a value as true, with a
/// warning saying so. (`paused-replicas` is checked with the spec, by the same shared parser.)
pub fn pause_annotations(so: &ScaledObject) -> Vec<String> {
    let flags = [
        (ANNOTATION_PAUSED, "the ScaledObject is paused"),
        (ANNOTATION_PAUSED_SCALE_IN, "scale-in is paused"),
        (ANNOTATION_PAUSED_SCALE_OUT, "scale-out is paused"),
    ];
    flags
        .iter()
        .filter_map(|(key, effect)| {
            let v = annotation(so, key)?;
            annotations::parse_go_bool(v).is_none().then(|| {
                let shown: String = v.chars().take(40).collect();
                format!(
                    "metadata.annotations[{key}]: {shown:?} is not a boolean ({}); it is read as true: {effect}",
                    annotations::GO_BOOLEANS
                )
            })
        })
        .collect()
}

/// One ScaledObject per workload. The message does not name the other ScaledObject: the
/// endpoint cannot tell a review from the API server from one forged by any client that reaches
/// it, and a forged review may claim any namespace. It names only what the request itself
/// supplied (the workload); `kubectl get scaledobjects` in the namespace shows which object
/// scales it (KEDA's message names it).
pub fn unique_target(so: &ScaledObject, ns: &str, index: &Snapshot) -> Vec<Finding> {
    let me = name(so);
    let w = target(so);
    if !index.sos.targeting(ns, &w).any(|other| other != me) {
        return Vec::new();
    }
    vec![Finding::new(
        reason::DUPLICATE_TARGET,
        format!(
            "spec.scaleTargetRef: the workload {} is already scaled by another ScaledObject in namespace {ns:?}; a workload can have only one ScaledObject (`kubectl get scaledobjects -n {ns}` shows each one's target)",
            w.describe()
        ),
    )]
}

/// No two ScaledObjects share an HPA name (the other one is not named, see [`unique_target`]).
pub fn unique_hpa_name(so: &ScaledObject, ns: &str, index: &Snapshot) -> Vec<Finding> {
    let me = name(so);
    let hpa = so.hpa_name();
    if !index.sos.with_hpa(ns, &hpa).any(|other| other != me) {
        return Vec::new();
    }
    vec![Finding::new(
        reason::DUPLICATE_HPA_NAME,
        format!(
            "spec.advanced.horizontalPodAutoscalerConfig.name: the HPA name {hpa:?} is already used by another ScaledObject in namespace {ns:?}; choose another name"
        ),
    )]
}

/// No HPA that this ScaledObject does not own already scales the workload — unless the
/// ScaledObject adopts it (`scaledobject.keda.sh/transfer-hpa-ownership: "true"` with
/// `horizontalPodAutoscalerConfig.name` naming it) or the check is switched off with
/// `validations.keda.sh/hpa-ownership: "false"` on the ScaledObject or on the HPA. The HPA is
/// not named (see [`unique_target`]); `kubectl get hpa` in the namespace shows it.
pub fn no_foreign_hpa(so: &ScaledObject, ns: &str, index: &Snapshot) -> Vec<Finding> {
    if annotation(so, ANNOTATION_HPA_OWNERSHIP_VALIDATION) == Some("false") {
        return Vec::new();
    }
    let me = name(so);
    let w = target(so);
    let transfer = annotation(so, ANNOTATION_TRANSFER_HPA_OWNERSHIP) == Some("true");
    let hpa_name = so.hpa_name();
    let foreign = index
        .hpas
        .targeting(ns, &w)
        .filter(|(_, h)| !h.validation_off)
        .filter(|(hpa, _)| !(transfer && *hpa == hpa_name))
        .any(|(_, h)| match h.owner.as_deref() {
            Some(owner) if owner == me => false,
            // Owned by another ScaledObject that still exists: `unique_target` speaks for it.
            Some(owner) => index.sos.get(ns, owner).is_none(),
            None => true,
        });
    if !foreign {
        return Vec::new();
    }
    vec![Finding::new(
        reason::FOREIGN_HPA,
        format!(
            "spec.scaleTargetRef: the workload {} is already scaled by an HPA in namespace {ns:?} that this ScaledObject does not own (`kubectl get hpa -n {ns}` shows it); delete that HPA, or adopt it with annotation {ANNOTATION_TRANSFER_HPA_OWNERSHIP}: \"true\" and spec.advanced.horizontalPodAutoscalerConfig.name set to its name",
            w.describe()
        ),
    )]
}

/// Warnings for timing fields set where they change nothing: with `minReplicaCount ≥ 1` and no
/// `idleReplicaCount` ebb never scales to zero or idle, so cooldowns never apply, and the HPA
/// (its own 15 s sync) does all scaling, so the polling interval only matters for cached
/// metrics and fallback.
pub fn irrelevant_settings(so: &ScaledObject) -> Vec<String> {
    let s = &so.spec;
    let min = s.min_replicas();
    if min < 1 || s.idle_replica_count.is_some() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let why = format!(
        "minReplicaCount is {min} and idleReplicaCount is unset, so the workload is never scaled to zero"
    );
    if s.cooldown_period.is_some() {
        out.push(format!(
            "spec.cooldownPeriod has no effect: {why}; scale-down between minReplicaCount and maxReplicaCount follows advanced.horizontalPodAutoscalerConfig.behavior"
        ));
    }
    if s.initial_cooldown_period.is_some() {
        out.push(format!("spec.initialCooldownPeriod has no effect: {why}"));
    }
    let cached = s.triggers.iter().any(|t| t.use_cached_metrics);
    if s.polling_interval.is_some() && !cached && s.fallback.is_none() {
        out.push(format!(
            "spec.pollingInterval has no effect on scaling: {why}, and the HPA controller queries the metrics on its own period; it matters only with useCachedMetrics or fallback"
        ));
    }
    out
}
