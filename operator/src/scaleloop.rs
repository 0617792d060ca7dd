//! The scale loop: one task per ScaledObject, ticking every `pollingInterval` at a stable
//! per-object phase offset (so thousands of objects started together do not poll on the same
//! tick); a push scaler (`external-push`) also wakes it at once, off that schedule. Each tick,
//! in its own `tick{namespace, scaled_object}` span:
//! 1. [`measure`] queries every trigger (in parallel, each bounded by the scaler timeout) and
//!    reads the target's current replicas;
//! 2. [`tick::plan`], pure, turns that, the object and its status model into [`TickEffects`]:
//!    the new model, the `/scale` write, events, errors to count, whether to write status;
//! 3. the model is updated under its lock (held for nothing else), then [`apply`] performs the
//!    effects outside the lock, each write bounded by the write timeout ([`writes`]) and made
//!    only while this replica leads.
//!
//! The task holds the loops' [`LoopContext`], the object's [`StatusModel`] and its [`Shared`]
//! values, never the reconcile's context or the object's state: dropping the [`LoopHandle`]
//! (which only the object's state holds) aborts the task and releases its scalers; losing
//! leadership ends it at once, mid-tick if need be.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ebb_api::ScaledObject;
use ebb_scalers::{ParsedScaledObject, Scaler, TriggerSpec};
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;

use crate::context::{LoopContext, StatusModel};
use crate::error::Error;
use crate::target::Target;

pub mod apply;
pub mod measure;
pub mod tick;
mod writes;

pub use tick::TickEffects;

/// A trigger's last measurement, as the metrics API serves it.
#[derive(Debug, Clone, PartialEq)]
pub struct Cached {
    pub value: Option<f64>,
    pub error: Option<String>,
    pub at: DateTime<Utc>,
}

/// What the loop shares with the rest of the operator (the metrics API's value queries).
#[derive(Debug)]
pub struct Shared {
    /// The object the loop runs for (spec, fallback).
    pub so: Arc<ScaledObject>,
    pub triggers: Vec<(TriggerSpec, Arc<dyn Scaler>)>,
    /// `advanced.scalingModifiers`, compiled once when the loop starts (read on every tick and
    /// every composite-metric query).
    pub composite: Option<ebb_scalers::validate::modifiers::Composite>,
    /// Last tick's values, one slot per trigger in `triggers` order (`None` until measured):
    /// a few bytes per trigger, where a map by metric name cost a hash table per object. Sized
    /// by [`Shared::new`].
    pub(crate) values: RwLock<Vec<Option<Cached>>>,
    /// Current replicas seen at the last tick (for fallback values).
    pub current_replicas: std::sync::atomic::AtomicI32,
}

impl Shared {
    /// A loop's shared state for `so` (the loop's view of it), with no values measured yet;
    /// `composite` is compiled from the whole object, which the view no longer holds.
    pub fn new(
        so: Arc<ScaledObject>,
        triggers: Vec<(TriggerSpec, Arc<dyn Scaler>)>,
        composite: Option<ebb_scalers::validate::modifiers::Composite>,
    ) -> Self {
        let values = RwLock::new(vec![None; triggers.len()]);
        Self { so, triggers, composite, values, current_replicas: Default::default() }
    }

    /// The last measurement of the trigger whose metric is `metric`, if it was measured.
    pub fn cached(&self, metric: &str) -> Option<Cached> {
        let i = self.triggers.iter().position(|(t, _)| t.metric_name == metric)?;
        self.values.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(i).cloned().flatten()
    }
}

/// A running loop; the task is aborted when the handle is dropped.
#[derive(Debug)]
pub struct LoopHandle {
    /// Identifies the spec and annotations the loop was started for.
    pub fingerprint: String,
    pub shared: Arc<Shared>,
    _task: AbortOnDropHandle<()>,
}

/// Stable offset in `[0, interval)` derived from the object's identity.
pub fn phase_offset(ns: &str, name: &str, interval: Duration) -> Duration {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (ns, name).hash(&mut h);
    let ms = interval.as_millis().max(1) as u64;
    Duration::from_millis(h.finish() % ms)
}

/// The first tick: the next instant congruent to the offset modulo the interval.
fn first_tick(now: std::time::SystemTime, interval: Duration, offset: Duration) -> Duration {
    let since = now.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
    let period = interval.as_millis().max(1) as u64;
    let phase = offset.as_millis() as u64 % period;
    let into = (since + period - phase) % period;
    Duration::from_millis((period - into) % period)
}

/// What identifies a loop's configuration: a change restarts only that object's loop. A
/// 128-bit digest of the spec, the scaling annotations and the uid (two hashes of their JSON),
/// since it is kept per object (by the loop and by the reconcile's fast path).
pub fn fingerprint(so: &ScaledObject) -> String {
    let relevant: BTreeMap<&String, &String> = so
        .metadata
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| k.starts_with("autoscaling.keda.sh/"))
        .collect();
    let text = serde_json::json!([so.spec, relevant, so.metadata.uid]).to_string();
    let mut a = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut a);
    let mut b = std::collections::hash_map::DefaultHasher::new();
    ("ebb-loop-fingerprint", text.len(), &text).hash(&mut b);
    format!("{:016x}{:016x}", a.finish(), b.finish())
}

/// Starts the loop for a parsed ScaledObject; fails when a trigger's scaler cannot be built.
pub fn spawn(
    cx: Arc<LoopContext>,
    model: Arc<StatusModel>,
    so: Arc<ScaledObject>,
    parsed: &ParsedScaledObject,
    target: Target,
) -> Result<LoopHandle, Error> {
    let mut triggers = Vec::with_capacity(parsed.triggers.len());
    for t in &parsed.triggers {
        let s = t.config.build().map_err(|source| Error::ScalerBuild {
            index: t.index,
            type_: t.type_.clone(),
            source,
        })?;
        triggers.push((t.clone(), s));
    }
    let shared = Arc::new(Shared::new(
        loop_view(&so, &model),
        triggers,
        ebb_scalers::validate::modifiers::composite(&so).ok().flatten(),
    ));
    // Push scalers learn the object and wake the loop when their source pushes a change.
    let wake = Arc::new(tokio::sync::Notify::new());
    let (ns, name) = (
        so.metadata.namespace.as_deref().unwrap_or_default(),
        so.metadata.name.as_deref().unwrap_or_default(),
    );
    for (_, s) in &shared.triggers {
        s.attach(ns, name, wake.clone());
    }
    let task = tokio::spawn(run(cx, model, shared.clone(), target, wake));
    Ok(LoopHandle { fingerprint: fingerprint(&so), shared, _task: AbortOnDropHandle::new(task) })
}

/// The object as the loop keeps it: only what the loop reads, so that the loop's copy costs a
/// few hundred bytes next to the controller's store (which keeps the whole object, and replaces
/// it on every watch event, so the two could not share one allocation for long):
/// - metadata: name, namespace, uid and resource version (events name the object), creation
///   time (`initialCooldownPeriod`), the `autoscaling.keda.sh/*` annotations (pause, paused
///   directions, force-activation); no labels, finalizers, other annotations or owners;
/// - spec: everything but the triggers' contents: each trigger keeps its type (an object with
///   only cpu/memory triggers is always active), nothing else — the loop measures through its
///   built scalers and their [`TriggerSpec`]s, and `scalingModifiers` is compiled before this;
/// - status: none once the status model is set (reconcile writes it before it starts a loop;
///   ticks decide from the model), else the object's own.
fn loop_view(so: &ScaledObject, model: &StatusModel) -> Arc<ScaledObject> {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    let m = &so.metadata;
    let annotations = m.annotations.as_ref().map(|a| {
        a.iter()
            .filter(|(k, _)| k.starts_with("autoscaling.keda.sh/"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<BTreeMap<_, _>>()
    });
    let metadata = ObjectMeta {
        name: m.name.clone(),
        namespace: m.namespace.clone(),
        uid: m.uid.clone(),
        resource_version: m.resource_version.clone(),
        creation_timestamp: m.creation_timestamp.clone(),
        annotations: annotations.filter(|a| !a.is_empty()),
        ..ObjectMeta::default()
    };
    let triggers = so
        .spec
        .triggers
        .iter()
        .map(|t| ebb_api::ScaleTrigger {
            type_: t.type_.clone(),
            name: None,
            use_cached_metrics: t.use_cached_metrics,
            metadata: BTreeMap::new(),
            authentication_ref: None,
            metric_type: t.metric_type,
        })
        .collect();
    let s = &so.spec;
    let spec = ebb_api::ScaledObjectSpec {
        scale_target_ref: s.scale_target_ref.clone(),
        polling_interval: s.polling_interval,
        initial_cooldown_period: s.initial_cooldown_period,
        cooldown_period: s.cooldown_period,
        idle_replica_count: s.idle_replica_count,
        min_replica_count: s.min_replica_count,
        max_replica_count: s.max_replica_count,
        advanced: s.advanced.clone(),
        triggers,
        fallback: s.fallback.clone(),
    };
    let status = if model.is_set() { None } else { so.status.clone() };
    Arc::new(ScaledObject { metadata, spec, status })
}

async fn run(
    cx: Arc<LoopContext>,
    model: Arc<StatusModel>,
    shared: Arc<Shared>,
    target: Target,
    wake: Arc<tokio::sync::Notify>,
) {
    // Leader-only: on losing the Lease the task ends at once, mid-tick if need be.
    let lost = cx.leader.lost();
    let so = &shared.so;
    tokio::select! {
        biased;
        () = lost => tracing::debug!(
            namespace = so.metadata.namespace.as_deref().unwrap_or_default(),
            name = so.metadata.name.as_deref().unwrap_or_default(),
            "not leading: scale loop stopped"
        ),
        () = ticks(&cx, &model, &shared, &target, &wake) => {}
    }
}

async fn ticks(
    cx: &LoopContext,
    model: &StatusModel,
    shared: &Shared,
    target: &Target,
    wake: &tokio::sync::Notify,
) {
    let so = &shared.so;
    let ns = so.metadata.namespace.as_deref().unwrap_or_default();
    let name = so.metadata.name.as_deref().unwrap_or_default();
    let interval = Duration::from_secs(u64::try_from(so.spec.polling_interval().max(1)).unwrap_or(30));
    let offset = phase_offset(ns, name, interval);
    let start = tokio::time::Instant::now() + first_tick(std::time::SystemTime::now(), interval, offset);
    let mut next = start;
    loop {
        // A push (external-push) ticks at once, off the schedule, which it leaves unchanged.
        let pushed = tokio::select! {
            () = tokio::time::sleep_until(next) => false,
            () = wake.notified() => true,
        };
        if !pushed {
            let late = tokio::time::Instant::now().saturating_duration_since(next);
            cx.metrics.record_loop_lateness(ns, name, late);
        }
        // Boxed: the tick's (large) state lives only while it runs, not in every sleeping loop task.
        Box::pin(run_tick(cx, model, shared, target)).await;
        if pushed {
            continue;
        }
        next += interval;
        let now = tokio::time::Instant::now();
        if next < now {
            // A tick longer than the interval: skip the missed ticks instead of bursting.
            let behind = now.duration_since(next).as_millis() / interval.as_millis().max(1) + 1;
            next += interval * u32::try_from(behind).unwrap_or(1);
        }
    }
}

/// One tick, in its `tick{namespace, scaled_object}` span: measure, decide (pure) and update
/// the model under its lock, then perform the effects with the lock released.
pub async fn run_tick(cx: &LoopContext, model: &StatusModel, shared: &Shared, target: &Target) {
    let so = &*shared.so;
    let ns = so.metadata.namespace.as_deref().unwrap_or_default();
    let name = so.metadata.name.as_deref().unwrap_or_default();
    let span = tracing::info_span!("tick", namespace = ns, scaled_object = name);
    tick_in_span(cx, model, shared, target).instrument(span).await;
}

async fn tick_in_span(cx: &LoopContext, model: &StatusModel, shared: &Shared, target: &Target) {
    let so = &*shared.so;
    let ns = so.metadata.namespace.as_deref().unwrap_or_default();
    let name = so.metadata.name.as_deref().unwrap_or_default();
    let now = Utc::now();
    let measured = measure::triggers(cx, shared, ns, name, now).await;
    let current = measure::current_replicas(cx, target, ns, name).await;
    if let Some(n) = current {
        shared.current_replicas.store(n, std::sync::atomic::Ordering::Relaxed);
    }
    let (effects, pending) = {
        let mut guard = model.lock().await;
        let empty = ebb_api::ScaledObjectStatus::default();
        let previous = guard.as_ref().or(so.status.as_ref()).unwrap_or(&empty);
        let input = tick::TickInput {
            so,
            measured: &measured,
            current,
            previous,
            unwritten: model.unwritten(),
            now,
            composite_active: measure::composite_active(shared),
        };
        let mut effects = tick::plan(&input);
        if effects.status_changed {
            model.mark_changed();
        }
        let status = std::mem::take(&mut effects.status);
        let pending = effects.write_status.then(|| (status.clone(), model.generation()));
        *guard = Some(status);
        (effects, pending)
    };
    tracing::debug!(
        "tick: active={}, current={}, desired={}: {}",
        effects.active,
        show(effects.current),
        show(effects.desired()),
        effects.decision.as_deref().unwrap_or("replicas unknown, nothing decided"),
    );
    apply::apply(cx, model, so, target, &effects, pending).await;
}

fn show(n: Option<i32>) -> String {
    n.map_or_else(|| "?".to_owned(), |n| n.to_string())
}

#[cfg(test)]
mod tests;
