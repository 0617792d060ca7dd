//! The decisions of a reconcile, pure: from the ScaledObject, what the operator remembers of it
//! ([`Input`]) and, once read, its target ([`Observed`]), the ordered list of writes and events
//! to make ([`Step`]) and how the reconcile ends ([`End`]). Nothing here performs I/O or reads a
//! clock; `apply` performs the steps in order and stops at the first that fails.
//!
//! A reconcile is planned in two stages so that the API calls keep their order (the label and
//! finalizer patch and the pause handling come before any read of the target):
//! 1. [`plan`] decides deletion, the fast path (which still mirrors a changed `ScalingActive`
//!    of the HPA as `HPAActive`, see [`crate::hpa_active`]), the metadata patch, bad pause annotations, pause
//!    and unpause (a paused direction, `paused-scale-in` / `paused-scale-out`, also sets `Paused`
//!    and the paused gauge, but keeps the HPA and the loop); when the object is to be scaled it ends with [`End::CheckTarget`];
//! 2. after the target, its environment and its authentications were read, [`plan_checked`]
//!    decides the check failure, the HPA (and the deletion of one left behind by a rename), the
//!    status, the events and whether the scale loop (re)starts.

use std::time::Duration;

use ebb_api::annotations::ScalingAnnotations;
use ebb_api::constants::{FINALIZER, SCALED_OBJECT_NAME_LABEL};
use ebb_api::{ScaledObject, ScaledObjectStatus};
use ebb_scalers::ParsedScaledObject;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::events::EventType;

use crate::error::Error;
use crate::hpa::HpaError;
use crate::hpa_active::{self, ScalingActive};
use crate::status;
use crate::target::Target;

/// How long a healthy object waits before its next periodic reconcile.
pub const RESYNC: Duration = Duration::from_secs(300);

/// What a reconcile knows before reading the target.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    pub so: &'a ScaledObject,
    /// The status model as the operator last wrote it (`None`: the object's own status is used).
    pub model: Option<ScaledObjectStatus>,
    /// The object's loop fingerprint (spec, scaling annotations, uid).
    pub fingerprint: String,
    /// The fingerprint of the running scale loop, if one runs.
    pub running_loop: Option<String>,
    /// What a complete reconcile remembers for the fast path: the loop fingerprint and the
    /// labels and annotations the HPA carries ([`crate::hpa::metadata_fingerprint`]).
    pub reconcile_fingerprint: String,
    /// The reconcile fingerprint of the last complete reconcile and how long ago it finished.
    pub last_reconcile: Option<(String, Duration)>,
    /// The HPA's `ScalingActive` condition from the controller's watch, mirrored as `HPAActive`
    /// ([`crate::hpa_active`]): `None` while the watch does not know (the condition is left as
    /// it is), `Some(None)` when there is no HPA or it reports none.
    pub hpa_scaling_active: Option<Option<ScalingActive>>,
    /// The time written into changed conditions.
    pub now: Time,
}

/// What was read for an object to be scaled.
#[derive(Debug)]
pub struct Observed {
    /// The target check: the target, its replicas and the parsed triggers, or why not.
    pub check: Result<Checked, Error>,
    /// The fingerprint of the running loop after the check (a credential change stops it).
    pub running_loop: Option<String>,
}

/// A target that exposes `/scale`, and triggers that parsed.
#[derive(Debug, Clone)]
pub struct Checked {
    pub target: Target,
    /// `spec.replicas` of the target's Scale.
    pub replicas: Option<i32>,
    pub parsed: ParsedScaledObject,
}

/// An event to record on the ScaledObject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub type_: EventType,
    pub reason: &'static str,
    pub note: String,
}

impl Event {
    pub fn normal(reason: &'static str, note: impl Into<String>) -> Self {
        Self { type_: EventType::Normal, reason, note: note.into() }
    }

    pub fn warning(reason: &'static str, note: impl Into<String>) -> Self {
        Self { type_: EventType::Warning, reason, note: note.into() }
    }
}

/// One thing a reconcile does, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Merge-patch `metadata.labels[scaledobject.keda.sh/name]` to the object's name and
    /// `metadata.finalizers` to this list (field manager `ebb-operator/labels`), guarded by the
    /// resource version read.
    Metadata { finalizers: Vec<String>, resource_version: Option<String> },
    /// Stop the object's scale loop.
    StopLoop,
    /// Delete the HPA of this name (already gone is fine).
    DeleteHpa { name: String },
    /// Resolve the target and write its replicas through `/scale` (pause with a count).
    PinReplicas { replicas: i32 },
    /// Server-side apply this HPA (field manager `ebb-operator/hpa`, force).
    ApplyHpa(Box<HorizontalPodAutoscaler>),
    /// Write this status (server-side apply) and keep it as the object's model.
    WriteStatus(Box<ScaledObjectStatus>),
    /// Set `keda_scaled_object_paused`.
    PausedMetric { paused: bool },
    /// Record an event (a failure to record one is logged, never fatal).
    Event(Event),
    /// Build the scalers and start the scale loop in place of the running one. If a scaler
    /// cannot be built, event `KEDAScalerFailed` is recorded and the reconcile fails there.
    StartLoop,
    /// The reconcile completed: reset the error backoff and remember the fingerprint (fast path).
    Reconciled { fingerprint: String },
    /// Deletion: stop the loop, drop the object's state, gauges and metric series.
    Forget,
    /// Deletion with `restoreToOriginalReplicaCount`: resolve the target and write these
    /// replicas through `/scale` (a target that is gone, or cannot be resolved, is skipped).
    RestoreReplicas { replicas: i32 },
    /// Deletion: merge-patch `metadata.finalizers` to this list, guarded by the resource version.
    ReleaseFinalizer { finalizers: Vec<String>, resource_version: Option<String> },
}

/// How a reconcile ends once its steps are done.
#[derive(Debug, Clone, PartialEq)]
pub enum End {
    /// Reconcile again after this long.
    Requeue(Duration),
    /// Reconcile again only when the object changes.
    AwaitChange,
    /// Read the target, then continue with [`plan_checked`] from this model.
    CheckTarget(Box<ScaledObjectStatus>),
    /// Fail with the target check's error (the controller retries with backoff).
    CheckError,
    /// Fail: no HPA can be built for the object.
    InvalidHpa(HpaError),
}

/// The steps and the end of one stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub end: End,
}

/// Stage 1: everything decided without reading the target.
pub fn plan(input: &Input<'_>) -> Plan {
    let so = input.so;
    if so.metadata.deletion_timestamp.is_some() {
        return finalize(so, input.model.as_ref());
    }
    let metadata = metadata_patch(so);
    let now = || input.now.clone();
    let mut model = input.model.clone().or_else(|| so.status.clone()).unwrap_or_default();
    // Fast path: nothing this object's reconcile depends on changed since the last one (the
    // event came from the loop's own status write), so only the periodic resync remains — or,
    // when the HPA's `ScalingActive` changed (the event came from the HPA), its mirror.
    if let Some((last, age)) = &input.last_reconcile
        && *last == input.reconcile_fingerprint
        && *age < RESYNC
        && metadata.is_none()
        && input.running_loop.as_ref() == Some(&input.fingerprint)
    {
        let end = End::Requeue(RESYNC.saturating_sub(*age));
        return match &input.hpa_scaling_active {
            Some(seen) if hpa_active::differs(&model.conditions, seen.as_ref()) => {
                hpa_active::mirror(&mut model.conditions, seen.as_ref(), now());
                Plan { steps: vec![Step::WriteStatus(Box::new(model))], end }
            }
            _ => Plan { steps: Vec::new(), end },
        };
    }
    let mut steps: Vec<Step> = metadata.into_iter().collect();
    if model.conditions.is_empty() {
        model.conditions = status::initial_conditions(now());
    }
    if let Some(seen) = &input.hpa_scaling_active {
        hpa_active::mirror(&mut model.conditions, seen.as_ref(), now());
    }
    let was_paused = status::is_true(&model.conditions, status::PAUSED);
    let hpa = so.hpa_name();

    // Pause, read with KEDA's semantics by the parser every component shares.
    let annotations = ScalingAnnotations::read(so.metadata.annotations.as_ref());
    if let Some(e) = annotations.error() {
        // Present means paused (as in KEDA), but there is no count to pin: scale nothing and say
        // why, without retrying a write that cannot succeed.
        status::check_failed(&mut model.conditions, &e.to_string(), now());
        steps.extend([
            Step::StopLoop,
            Step::DeleteHpa { name: hpa },
            Step::WriteStatus(Box::new(model)),
            Step::Event(Event::warning("ScaledObjectCheckFailed", e.to_string())),
        ]);
        return Plan { steps, end: End::Requeue(RESYNC) };
    }
    if annotations.paused {
        let pinned = annotations.pinned_replicas();
        steps.extend([Step::StopLoop, Step::DeleteHpa { name: hpa }]);
        steps.extend(pinned.map(|replicas| Step::PinReplicas { replicas }));
        status::set_paused(&mut model.conditions, true, now());
        model.paused_replica_count = pinned;
        steps.extend([Step::WriteStatus(Box::new(model)), Step::PausedMetric { paused: true }]);
        if !was_paused {
            steps.push(Step::Event(Event::normal("ScaledObjectPaused", "ScaledObject is paused")));
        }
        return Plan { steps, end: End::Requeue(RESYNC) };
    }
    // A paused direction (`paused-scale-in` / `paused-scale-out`) keeps the HPA and the loop,
    // each with that direction disabled, and is reported as paused, as KEDA does.
    let direction_paused = annotations.scale_in_paused || annotations.scale_out_paused;
    status::set_paused(&mut model.conditions, direction_paused, now());
    model.paused_replica_count = None;
    steps.push(Step::PausedMetric { paused: direction_paused });
    if direction_paused && !was_paused {
        steps.push(Step::Event(Event::normal("ScaledObjectPaused", "ScaledObject is paused")));
    }
    if was_paused && !direction_paused {
        steps.push(Step::Event(Event::normal("ScaledObjectUnpaused", "ScaledObject is unpaused")));
    }
    Plan { steps, end: End::CheckTarget(Box::new(model)) }
}

/// Stage 2: after the target check, continuing from the model stage 1 handed over.
pub fn plan_checked(input: &Input<'_>, mut model: ScaledObjectStatus, observed: &Observed) -> Plan {
    let so = input.so;
    let now = || input.now.clone();
    let checked = match &observed.check {
        Ok(c) => c,
        // A failing API call says nothing about the object: keep its loop and status, retry.
        Err(e) if e.is_api_failure() => return Plan { steps: Vec::new(), end: End::CheckError },
        Err(e) => {
            status::check_failed(&mut model.conditions, &e.to_string(), now());
            let steps = vec![
                Step::StopLoop,
                Step::WriteStatus(Box::new(model)),
                Step::Event(Event::warning("ScaledObjectCheckFailed", e.to_string())),
            ];
            return Plan { steps, end: End::CheckError };
        }
    };
    if model.original_replica_count.is_none() {
        model.original_replica_count = checked.replicas;
    }
    model.scale_target_kind = Some(checked.target.kind_string());
    model.scale_target_gvkr = Some(checked.target.gvkr.clone());

    // The HPA, with a rename deleting the old one.
    let hpa = match crate::hpa::desired_hpa(so, &checked.parsed) {
        Ok(h) => h,
        Err(e) => return Plan { steps: Vec::new(), end: End::InvalidHpa(e) },
    };
    let hpa_name = so.hpa_name();
    let mut steps = vec![Step::ApplyHpa(Box::new(hpa))];
    if let Some(old) = model.hpa_name.clone().filter(|o| *o != hpa_name) {
        steps.push(Step::DeleteHpa { name: old });
    }
    let first_time = model.hpa_name.is_none();
    model.hpa_name = Some(hpa_name);
    model.external_metric_names = checked.parsed.metric_names();
    // The loop rebuilds `triggersActivity` each tick; a renamed or removed trigger's entry goes now.
    model.triggers_activity.retain(|name, _| model.external_metric_names.contains(name));
    model.composite_scaler_name = status::composite_scaler_name(so);
    model.resource_metric_names = status::resource_metric_names(so);
    model.triggers_types = status::triggers_types(so);
    model.authentications_types = status::authentications_types(so);
    if !status::is_true(&model.conditions, status::READY) {
        status::set_ready(&mut model.conditions, now());
    }
    steps.push(Step::WriteStatus(Box::new(model)));
    if first_time {
        steps.push(Step::Event(Event::normal("ScaledObjectReady", "ScaledObject is ready for scaling")));
    }

    // The loop restarts only when this object's spec or scaling annotations changed.
    if observed.running_loop.as_ref() != Some(&input.fingerprint) {
        let types: Vec<&str> = checked.parsed.triggers.iter().map(|t| t.type_.as_str()).collect();
        steps.push(Step::StartLoop);
        steps.push(Step::Event(Event::normal(
            "KEDAScalersStarted",
            format!("Started scalers watch: {}", types.join(", ")),
        )));
    }
    steps.push(Step::Reconciled { fingerprint: input.reconcile_fingerprint.clone() });
    Plan { steps, end: End::Requeue(RESYNC) }
}

/// The label selecting the object's metrics, and the finalizer only when restore is asked for;
/// `None` when both are in place.
fn metadata_patch(so: &ScaledObject) -> Option<Step> {
    let name = so.metadata.name.clone().unwrap_or_default();
    let labelled = so.metadata.labels.as_ref().and_then(|l| l.get(SCALED_OBJECT_NAME_LABEL)) == Some(&name);
    let finalizers = so.metadata.finalizers.clone().unwrap_or_default();
    let has_finalizer = finalizers.iter().any(|f| f == FINALIZER);
    let want_finalizer = so.spec.restore_to_original_replica_count();
    if labelled && has_finalizer == want_finalizer {
        return None;
    }
    let mut finalizers: Vec<String> = finalizers.into_iter().filter(|f| f != FINALIZER).collect();
    if want_finalizer {
        finalizers.push(FINALIZER.to_owned());
    }
    Some(Step::Metadata { finalizers, resource_version: so.metadata.resource_version.clone() })
}

/// Deletion: forget the object; with the finalizer, restore the original replicas (when asked
/// for and known: from the status model, else the object's own status — the controller's store
/// drops status once the model is set, see [`crate::trim`]), then release the finalizer.
fn finalize(so: &ScaledObject, model: Option<&ScaledObjectStatus>) -> Plan {
    let mut steps = vec![Step::Forget];
    let finalizers = so.metadata.finalizers.clone().unwrap_or_default();
    if !finalizers.iter().any(|f| f == FINALIZER) {
        return Plan { steps, end: End::AwaitChange };
    }
    if so.spec.restore_to_original_replica_count()
        && let Some(replicas) = model.or(so.status.as_ref()).and_then(|s| s.original_replica_count)
    {
        steps.push(Step::RestoreReplicas { replicas });
    }
    steps.push(Step::ReleaseFinalizer {
        finalizers: finalizers.into_iter().filter(|f| f != FINALIZER).collect(),
        resource_version: so.metadata.resource_version.clone(),
    });
    steps.push(Step::Event(Event::normal("ScaledObjectDeleted", "ScaledObject was deleted")));
    Plan { steps, end: End::AwaitChange }
}
