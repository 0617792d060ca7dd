//! The performing half of a tick: the [`TickEffects`] the pure step returned, done in order —
//! the `/scale` write and its event (or the failure's event), the fallback event, the trigger
//! errors counted, the status write. Writes are leader-only, checked right before each, and
//! bounded by the write timeout ([`super::writes`]); a failed status write is retried by the next
//! tick (the model keeps it unwritten).

use ebb_api::{ScaledObject, ScaledObjectStatus};
use kube::runtime::events::EventType;

use super::tick::{ScaleWrite, TickEffects};
use super::writes;
use crate::context::{LoopContext, StatusModel};
use crate::target::{self, Target};

/// Performs a tick's effects; `pending` is the model to write with its change number.
pub async fn apply(
    cx: &LoopContext,
    model: &StatusModel,
    so: &ScaledObject,
    target: &Target,
    effects: &TickEffects,
    pending: Option<(ScaledObjectStatus, u64)>,
) {
    let ns = so.metadata.namespace.as_deref().unwrap_or_default();
    let name = so.metadata.name.as_deref().unwrap_or_default();
    if let Some(w) = &effects.scale {
        scale(cx, so, target, ns, w).await;
    }
    if let Some(ev) = &effects.fallback_event {
        cx.event(so, ev.type_, ev.reason, ev.note.clone()).await;
    }
    for (metric, e) in &effects.failed {
        cx.metrics.object_error(ns, name);
        tracing::debug!(namespace = ns, name, metric, "trigger failed: {e}");
    }
    if let Some((status, generation)) = pending {
        write_status(cx, model, ns, name, &status, generation).await;
    }
}

/// Writes the target's replicas through `/scale` if this replica leads, and records the event.
async fn scale(cx: &LoopContext, so: &ScaledObject, target: &Target, ns: &str, w: &ScaleWrite) {
    let name = so.metadata.name.as_deref().unwrap_or_default();
    let (current, replicas) = (w.from, w.to);
    // Checked right before the write; the client checks again after its throttle wait.
    if !cx.leader.is_leader() {
        cx.metrics.scale_write_failed("not_leader");
        tracing::info!(namespace = ns, name, replicas, "not leading: scale write skipped");
        return;
    }
    match writes::bounded(cx.config.write_timeout, target::set_replicas(&cx.client, target, ns, replicas))
        .await
    {
        Ok(()) => {
            cx.replicas.set(target, ns, replicas);
            if let Some(ev) = w.event {
                let note = format!(
                    "Scaled {} {}/{} from {current} to {replicas}: {}",
                    target.kind_string(),
                    ns,
                    target.name,
                    w.reason
                );
                cx.event(so, EventType::Normal, ev, note).await;
            }
        }
        Err(e) => {
            cx.metrics.scale_write_failed(e.reason);
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
            cx.event(so, EventType::Warning, reason, note).await;
        }
    }
}

/// Writes the model as of change `generation` if this replica leads; on failure the next tick
/// writes again.
async fn write_status(
    cx: &LoopContext,
    model: &StatusModel,
    ns: &str,
    name: &str,
    status: &ScaledObjectStatus,
    generation: u64,
) {
    if !cx.leader.is_leader() {
        cx.metrics.status_write_failed("not_leader");
        return;
    }
    match writes::bounded(cx.config.write_timeout, cx.write_status(ns, name, status)).await {
        Ok(()) => model.mark_written(generation),
        Err(e) => {
            cx.metrics.status_write_failed(e.reason);
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
