//! The scale loop: one task per ScaledObject, polling every trigger each `pollingInterval` at a
//! stable per-object phase offset (so thousands of objects started together do not poll on the
//! same tick), in parallel and each bounded by the scaler timeout. Each poll counts failures
//! once per metric (status.health, fallback), applies the shared activation decision through
//! `/scale`, records events and metrics, keeps the values the metrics API serves, and writes
//! status only when it changed (or an earlier write failed). The object's status model is locked
//! only to update it; the writes happen outside the lock, bounded by the write timeout
//! ([`writes`]), and only while this replica leads. Dropping the handle stops the task and
//! releases its scalers; losing leadership ends it at once, mid-poll if need be.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ebb_api::constants::ANNOTATION_FORCE_ACTIVATION;
use ebb_api::{ScaledObject, ScaledObjectStatus};
use ebb_scalers::decision::{LoopSpec, PollOutcome, decide};
use ebb_scalers::{ParsedScaledObject, Scaler, TriggerSpec, measure_with_timeout};
use kube::runtime::events::EventType;
use tokio::task::JoinHandle;

use crate::context::{Ctx, ObjectState};
use crate::target::{self, Target};

mod writes;

/// A trigger's last measurement, as the metrics API serves it.
#[derive(Debug, Clone, PartialEq)]
pub struct Cached {
    pub value: Option<f64>,
    pub error: Option<String>,
    pub at: DateTime<Utc>,
}

/// What the loop shares with the rest of the operator.
#[derive(Debug)]
pub struct Shared {
    /// The object the loop runs for (spec, fallback).
    pub so: Arc<ScaledObject>,
    pub triggers: Vec<(TriggerSpec, Arc<dyn Scaler>)>,
    /// Last poll's values by metric name.
    pub values: RwLock<HashMap<String, Cached>>,
    /// Current replicas seen at the last poll (for fallback values).
    pub current_replicas: std::sync::atomic::AtomicI32,
}

/// A running loop; the task is aborted when the handle is dropped.
#[derive(Debug)]
pub struct LoopHandle {
    /// Identifies the spec and annotations the loop was started for.
    pub fingerprint: String,
    pub shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for LoopHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
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

/// What identifies a loop's configuration: a change restarts only that object's loop.
pub fn fingerprint(so: &ScaledObject) -> String {
    let ann = so.metadata.annotations.clone().unwrap_or_default();
    let relevant: BTreeMap<_, _> =
        ann.into_iter().filter(|(k, _)| k.starts_with("autoscaling.keda.sh/")).collect();
    serde_json::json!([so.spec, relevant, so.metadata.uid]).to_string()
}

/// Starts the loop for a parsed ScaledObject.
pub fn spawn(
    ctx: Arc<Ctx>,
    state: Arc<ObjectState>,
    so: Arc<ScaledObject>,
    parsed: &ParsedScaledObject,
    target: Target,
) -> Result<LoopHandle, String> {
    let mut triggers = Vec::new();
    for t in &parsed.triggers {
        let s = t.config.build().map_err(|e| format!("spec.triggers[{}] ({}): {e}", t.index, t.type_))?;
        triggers.push((t.clone(), s));
    }
    let shared = Arc::new(Shared {
        so: so.clone(),
        triggers,
        values: RwLock::new(HashMap::new()),
        current_replicas: Default::default(),
    });
    let task = tokio::spawn(run(ctx, state, so.clone(), shared.clone(), target));
    Ok(LoopHandle { fingerprint: fingerprint(&so), shared, task })
}

async fn run(
    ctx: Arc<Ctx>,
    state: Arc<ObjectState>,
    so: Arc<ScaledObject>,
    shared: Arc<Shared>,
    target: Target,
) {
    // Leader-only: on losing the Lease the task ends at once, mid-poll if need be.
    let lost = ctx.leader.lost();
    tokio::select! {
        biased;
        () = lost => tracing::debug!(
            namespace = so.metadata.namespace.as_deref().unwrap_or_default(),
            name = so.metadata.name.as_deref().unwrap_or_default(),
            "not leading: scale loop stopped"
        ),
        () = ticks(&ctx, &state, &so, &shared, &target) => {}
    }
}

async fn ticks(
    ctx: &Arc<Ctx>,
    state: &Arc<ObjectState>,
    so: &ScaledObject,
    shared: &Arc<Shared>,
    target: &Target,
) {
    let ns = so.metadata.namespace.clone().unwrap_or_default();
    let name = so.metadata.name.clone().unwrap_or_default();
    let interval = Duration::from_secs(u64::try_from(so.spec.polling_interval().max(1)).unwrap_or(30));
    let offset = phase_offset(&ns, &name, interval);
    let start = tokio::time::Instant::now() + first_tick(std::time::SystemTime::now(), interval, offset);
    let mut next = start;
    loop {
        tokio::time::sleep_until(next).await;
        let late = tokio::time::Instant::now().saturating_duration_since(next);
        ctx.metrics.record_loop_lateness(&ns, &name, late);
        // Boxed: the poll's (large) state lives only while it runs, not in every sleeping loop task.
        Box::pin(poll(ctx, state, so, shared, target)).await;
        next += interval;
        let now = tokio::time::Instant::now();
        if next < now {
            // A poll longer than the interval: skip the missed ticks instead of bursting.
            let behind = now.duration_since(next).as_millis() / interval.as_millis().max(1) + 1;
            next += interval * u32::try_from(behind).unwrap_or(1);
        }
    }
}

fn annotation(so: &ScaledObject, key: &str) -> bool {
    so.metadata.annotations.as_ref().and_then(|a| a.get(key)).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// One poll of every trigger and what follows from it. The status model is locked only to
/// count failures, decide and update it; the `/scale` and status writes happen after the lock
/// is released, each bounded by the write timeout.
pub async fn poll(
    ctx: &Arc<Ctx>,
    state: &Arc<ObjectState>,
    so: &ScaledObject,
    shared: &Arc<Shared>,
    target: &Target,
) {
    let ns = so.metadata.namespace.clone().unwrap_or_default();
    let name = so.metadata.name.clone().unwrap_or_default();
    let now = Utc::now();
    let results = futures::future::join_all(shared.triggers.iter().map(|(t, s)| async move {
        let started = std::time::Instant::now();
        let r = measure_with_timeout(s, now, ctx.config.scaler_timeout).await;
        (t, r, started.elapsed())
    }))
    .await;

    let mut outcome = PollOutcome::default();
    let mut trigger_results = Vec::new();
    {
        let mut values = shared.values.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (t, r, latency) in &results {
            ctx.metrics.record_poll(
                &ns,
                &name,
                t.index,
                &t.type_,
                &t.metric_name,
                r.as_ref().ok().map(|m| m.value),
                r.as_ref().is_ok_and(|m| m.active),
                *latency,
            );
            match r {
                Ok(m) => {
                    outcome.active |= m.active;
                    values
                        .insert(t.metric_name.clone(), Cached { value: Some(m.value), error: None, at: now });
                    trigger_results.push((t.metric_name.clone(), Ok(())));
                }
                Err(e) => {
                    outcome.any_error = true;
                    values.insert(
                        t.metric_name.clone(),
                        Cached { value: None, error: Some(e.to_string()), at: now },
                    );
                    trigger_results.push((t.metric_name.clone(), Err(format!("{} ({})", e, e.reason()))));
                }
            }
        }
    }
    if annotation(so, ANNOTATION_FORCE_ACTIVATION) {
        outcome.active = true;
    }

    // The target's current replicas: from the watch cache, else read through /scale (bounded).
    let current = match ctx.replicas.get(target, &ns) {
        Some(n) => Some(n),
        None => match writes::bounded(ctx.config.write_timeout, target::get_scale(&ctx.client, target, &ns))
            .await
        {
            Ok(s) => Some(s.spec.and_then(|s| s.replicas).unwrap_or(0)),
            Err(e) => {
                tracing::warn!(
                    namespace = ns,
                    name,
                    reason = e.reason,
                    "cannot read the target's scale: {}",
                    e.message
                );
                ctx.metrics.scale_write_failed(e.reason);
                ctx.metrics.object_error(&ns, &name);
                None
            }
        },
    };

    // Under the lock: count failures, decide, update the model. No API call while it is held.
    let (decision, was_fallback, pending) = {
        let mut guard = state.status.lock().await;
        let prev = guard.clone().or_else(|| so.status.clone()).unwrap_or_default();
        let mut status = prev.clone();
        for (t, r, _) in &results {
            crate::fallback::record(&mut status.health, &t.metric_name, r.is_ok());
        }
        outcome.fallback_active =
            results.iter().any(|(t, _, _)| crate::fallback::active(&so.spec, &status.health, &t.metric_name));
        let decision = current.map(|current| {
            shared.current_replicas.store(current, std::sync::atomic::Ordering::Relaxed);
            let created =
                so.metadata.creation_timestamp.as_ref().map(crate::error::time::from_k8s).unwrap_or(now);
            let loop_spec = LoopSpec::from_spec(&so.spec, created);
            let guards = crate::hpa::loop_guards(so);
            let last_active = status.last_active_time.as_ref().map(crate::error::time::from_k8s);
            let d = decide(&loop_spec, last_active, now, current, outcome, guards);
            // lastActiveTime moves only on active polls (and at most once per poll).
            if d.last_active != last_active {
                status.last_active_time = d.last_active.map(crate::error::time::to_k8s);
            }
            let t = crate::error::time::to_k8s(now);
            crate::status::ready_from_triggers(
                &mut status.conditions,
                &trigger_results,
                so.spec.fallback.is_some(),
                t.clone(),
            );
            crate::status::set_active(&mut status.conditions, outcome.active, t.clone());
            crate::status::set_fallback(&mut status.conditions, outcome.fallback_active, t);
            (current, d)
        });
        let was_fallback =
            prev.conditions.iter().any(|c| c.type_ == crate::status::FALLBACK && c.status == "True");
        if !same_status(&prev, &status) {
            state.status_changed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        *guard = Some(status);
        let changed = state.status_changed.load(std::sync::atomic::Ordering::SeqCst);
        let unwritten = state.status_written.load(std::sync::atomic::Ordering::SeqCst) < changed;
        // A poll that could not read the replicas writes nothing (as before the model changed).
        let pending = (unwritten && decision.is_some()).then(|| (guard.clone().unwrap_or_default(), changed));
        (decision, was_fallback, pending)
    };
    let Some((current, d)) = decision else { return };

    if let Some(replicas) = d.write {
        scale(ctx, so, target, &ns, current, replicas, &d.reason, d.event).await;
    }
    if outcome.fallback_active != was_fallback {
        let (reason, kind) = if outcome.fallback_active {
            ("ScaledObjectFallbackActivated", EventType::Warning)
        } else {
            ("ScaledObjectFallbackDeactivated", EventType::Normal)
        };
        ctx.event(
            so,
            kind,
            reason,
            format!("Fallback {}", if outcome.fallback_active { "activated" } else { "deactivated" }),
        )
        .await;
    }
    for (t, r, _) in &results {
        if let Err(e) = r {
            ctx.metrics.object_error(&ns, &name);
            tracing::debug!(namespace = ns, name, metric = t.metric_name, "trigger failed: {e}");
        }
    }
    if let Some((status, generation)) = pending {
        write_status(ctx, state, &ns, &name, &status, generation).await;
    }
}

/// Writes the target's replicas through `/scale` if this replica leads, and records the event.
#[allow(clippy::too_many_arguments)]
async fn scale(
    ctx: &Ctx,
    so: &ScaledObject,
    target: &Target,
    ns: &str,
    current: i32,
    replicas: i32,
    why: &str,
    event: Option<&str>,
) {
    let name = so.metadata.name.as_deref().unwrap_or_default();
    // Checked right before the write; the client checks again after its throttle wait.
    if !ctx.leader.is_leader() {
        ctx.metrics.scale_write_failed("not_leader");
        tracing::info!(namespace = ns, name, replicas, "not leading: scale write skipped");
        return;
    }
    match writes::bounded(ctx.config.write_timeout, target::set_replicas(&ctx.client, target, ns, replicas))
        .await
    {
        Ok(()) => {
            ctx.replicas.set(target, ns, replicas);
            if let Some(ev) = event {
                let note = format!(
                    "Scaled {} {}/{} from {current} to {replicas}: {why}",
                    target.kind_string(),
                    ns,
                    target.name
                );
                ctx.event(so, EventType::Normal, ev, note).await;
            }
        }
        Err(e) => {
            ctx.metrics.scale_write_failed(e.reason);
            tracing::warn!(
                namespace = ns,
                name,
                replicas,
                reason = e.reason,
                "scale write failed: {}",
                e.message
            );
            if e.reason == "not_leader" {
                return;
            }
            let reason = if replicas > current {
                "KEDAScaleTargetActivationFailed"
            } else {
                "KEDAScaleTargetDeactivationFailed"
            };
            let note = format!(
                "Failed to scale {} {}/{} to {replicas}: {}",
                target.kind_string(),
                ns,
                target.name,
                e.message
            );
            ctx.event(so, EventType::Warning, reason, note).await;
        }
    }
}

/// Writes the model as of change `generation` if this replica leads; on failure the next poll
/// writes again.
async fn write_status(
    ctx: &Ctx,
    state: &ObjectState,
    ns: &str,
    name: &str,
    status: &ScaledObjectStatus,
    generation: u64,
) {
    if !ctx.leader.is_leader() {
        ctx.metrics.status_write_failed("not_leader");
        return;
    }
    match writes::bounded(ctx.config.write_timeout, ctx.write_status(ns, name, status)).await {
        Ok(()) => {
            state.status_written.fetch_max(generation, std::sync::atomic::Ordering::SeqCst);
        }
        Err(e) => {
            ctx.metrics.status_write_failed(e.reason);
            tracing::warn!(
                namespace = ns,
                name,
                reason = e.reason,
                "status write failed, retrying next poll: {}",
                e.message
            );
        }
    }
}

/// Equal ignoring condition timestamps (a poll that changes nothing writes nothing).
fn same_status(a: &ScaledObjectStatus, b: &ScaledObjectStatus) -> bool {
    let strip = |s: &ScaledObjectStatus| {
        let mut s = s.clone();
        for c in &mut s.conditions {
            c.last_transition_time = None;
        }
        s
    };
    strip(a) == strip(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_offsets_are_stable_and_spread() {
        let i = Duration::from_secs(30);
        assert_eq!(phase_offset("ns", "a", i), phase_offset("ns", "a", i));
        let offsets: std::collections::BTreeSet<_> =
            (0..1000).map(|n| phase_offset("ns", &format!("so-{n}"), i).as_secs()).collect();
        assert!(offsets.len() >= 29, "1000 objects spread over the 30 one-second slots: {}", offsets.len());
        for n in 0..100 {
            assert!(phase_offset("ns", &format!("so-{n}"), i) < i);
        }
    }

    #[test]
    fn first_tick_lands_on_the_phase() {
        let i = Duration::from_secs(10);
        let now = std::time::UNIX_EPOCH + Duration::from_millis(1_000_003_500);
        // 1_000_003_500 ms mod 10_000 = 3_500; with offset 5 s the next tick is 1.5 s away.
        assert_eq!(first_tick(now, i, Duration::from_secs(5)), Duration::from_millis(1_500));
        assert_eq!(first_tick(now, i, Duration::from_millis(3_500)), Duration::ZERO);
        assert_eq!(first_tick(now, i, Duration::from_secs(2)), Duration::from_millis(8_500));
    }
}
