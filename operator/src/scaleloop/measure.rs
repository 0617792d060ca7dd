//! The measuring half of a tick (I/O): every trigger queried in parallel, each bounded by the
//! scaler timeout, with its value, latency and activity recorded in the metrics and kept for the
//! metrics API ([`super::Shared::values`]); and the target's current replicas, from the watch
//! cache or else read through `/scale` (bounded by the write timeout, a failure counted).
//! With `advanced.scalingModifiers`, [`composite_active`] gives the object's activity from the
//! composite value against `activationTarget` ([`crate::composite`]).

use chrono::{DateTime, Utc};
use ebb_scalers::measure_with_timeout;

use super::tick::{Measured, TriggerFailure};
use super::{Cached, Shared, writes};
use crate::context::LoopContext;
use crate::target::{self, Target};

/// Queries every trigger of the loop at `now`.
pub async fn triggers(
    cx: &LoopContext,
    shared: &Shared,
    ns: &str,
    name: &str,
    now: DateTime<Utc>,
) -> Vec<Measured> {
    let results = futures::future::join_all(shared.triggers.iter().map(|(t, s)| async move {
        let started = std::time::Instant::now();
        let r = measure_with_timeout(s, now, cx.config.scaler_timeout).await;
        (t, r, started.elapsed())
    }))
    .await;
    let mut values = shared.values.write().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut measured = Vec::with_capacity(results.len());
    for (slot, (t, r, latency)) in values.iter_mut().zip(results) {
        cx.metrics.record_poll(
            ns,
            name,
            t.index,
            &t.type_,
            &t.metric_name,
            r.as_ref().ok().map(|m| m.value),
            r.as_ref().is_ok_and(|m| m.active),
            latency,
        );
        let (cached, result) = match r {
            Ok(m) => (Cached { value: Some(m.value), error: None, at: now }, Ok(m.active)),
            Err(e) => {
                let message = e.to_string();
                let cached = Cached { value: None, error: Some(message.clone()), at: now };
                (cached, Err(TriggerFailure { message, reason: e.reason() }))
            }
        };
        *slot = Some(cached);
        measured.push(Measured { metric: t.metric_name.clone(), result });
    }
    measured
}

/// With `advanced.scalingModifiers`: whether the composite value of this poll's values of the
/// named triggers is above `activationTarget` (KEDA), for [`super::tick::TickInput`]; `None`
/// without a formula.
pub fn composite_active(shared: &Shared) -> Option<bool> {
    let comp = shared.composite.as_ref()?;
    let values = shared.values.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    let named: std::collections::BTreeMap<String, Result<f64, String>> = shared
        .triggers
        .iter()
        .zip(values.iter())
        .filter_map(|((t, _), c)| {
            let name = t.name.clone()?;
            let c = c.as_ref()?;
            Some((name, c.value.ok_or_else(|| c.error.clone().unwrap_or_default())))
        })
        .collect();
    drop(values);
    let current = shared.current_replicas.load(std::sync::atomic::Ordering::Relaxed);
    Some(crate::composite::poll_active(comp, shared.so.spec.fallback.as_ref(), &named, current))
}

/// The target's current replicas: from the watch cache, else read through `/scale` (bounded).
/// `None` when the read failed (logged and counted).
pub async fn current_replicas(cx: &LoopContext, target: &Target, ns: &str, name: &str) -> Option<i32> {
    if let Some(n) = cx.replicas.get(target, ns) {
        return Some(n);
    }
    match writes::bounded(cx.config.write_timeout, target::get_scale(&cx.client, target, ns)).await {
        Ok(s) => Some(s.spec.and_then(|s| s.replicas).unwrap_or(0)),
        Err(e) => {
            tracing::warn!(
                namespace = ns,
                name,
                reason = e.reason,
                "cannot read the target's scale: {}",
                e.message
            );
            cx.metrics.scale_write_failed(e.reason);
            cx.metrics.object_error(ns, name);
            None
        }
    }
}
