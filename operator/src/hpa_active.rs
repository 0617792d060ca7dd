//! The `HPAActive` condition: the ScaledObject's status mirrors its HPA's own `ScalingActive`
//! condition (status, reason and message, e.g. `False` `FailedGetExternalMetric`), so that
//! `Ready` speaks only of the ScaledObject's own validity and its triggers. There is no
//! `HPAActive` while the object has no HPA (before the first reconcile, while paused) or the HPA
//! reports no `ScalingActive` yet.
//!
//! How an HPA status change reaches the ScaledObject: the controller already watches the HPAs it
//! owns (label `app.kubernetes.io/managed-by=ebb-operator`) to reconcile their ScaledObject; that
//! one watch now also fills a reflector store ([`HpaCache`]), so a reconcile reads its HPA's
//! `ScalingActive` from memory, without an API call. The reconcile's fast path compares it with
//! the model's `HPAActive` and, when only that differs, writes the status and nothing else
//! (`reconcile/plan.rs`). This costs no second watch and no request per reconcile; the
//! alternative, the scale loop reading the HPA on every tick, would cost a GET per object per
//! `pollingInterval` and still lag by a poll.
//!
//! Everything but [`HpaCache`] is pure.

use std::sync::{PoisonError, RwLock};

use ebb_api::Condition;
use futures::FutureExt as _;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::status::{self, FALSE, TRUE, UNKNOWN};
use crate::trim::OwnedHpa;

/// The ScaledObject condition type.
pub const HPA_ACTIVE: &str = "HPAActive";
/// The HPA condition it mirrors.
pub const SCALING_ACTIVE: &str = "ScalingActive";
/// Longest HPA reason or message copied, in characters (longer ones are cut there, with `…`).
pub const MAX_MESSAGE_CHARS: usize = 500;

/// An HPA's `ScalingActive` condition, as mirrored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalingActive {
    /// `True`, `False` or `Unknown` (any other value reads as `Unknown`).
    pub status: String,
    pub reason: String,
    pub message: String,
}

/// The HPA's `ScalingActive` condition, if it reports one.
pub fn scaling_active(hpa: &OwnedHpa) -> Option<ScalingActive> {
    let c = hpa.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == SCALING_ACTIVE)?;
    let status = match c.status.as_str() {
        s @ (TRUE | FALSE) => s,
        _ => UNKNOWN,
    };
    Some(ScalingActive {
        status: status.to_owned(),
        reason: ebb_scalers::error::one_line(c.reason.as_deref().unwrap_or_default(), MAX_MESSAGE_CHARS),
        message: ebb_scalers::error::one_line(c.message.as_deref().unwrap_or_default(), MAX_MESSAGE_CHARS),
    })
}

/// Whether the conditions' `HPAActive` differs from what the HPA reports (timestamps aside).
pub fn differs(conds: &[Condition], observed: Option<&ScalingActive>) -> bool {
    let current = conds.iter().find(|c| c.type_ == HPA_ACTIVE);
    match (current, observed) {
        (None, None) => false,
        (Some(c), Some(o)) => {
            let text = |s: &Option<String>| s.clone().unwrap_or_default();
            c.status != o.status || text(&c.reason) != o.reason || text(&c.message) != o.message
        }
        _ => true,
    }
}

/// Sets `HPAActive` to what the HPA reports, or removes it when the HPA reports nothing.
pub fn mirror(conds: &mut Vec<Condition>, observed: Option<&ScalingActive>, now: Time) {
    match observed {
        Some(o) => status::set_condition(conds, HPA_ACTIVE, &o.status, &o.reason, &o.message, now),
        None => conds.retain(|c| c.type_ != HPA_ACTIVE),
    }
}

/// The HPAs the controller watches, as its watch last saw them (empty when not leading).
#[derive(Default)]
pub struct HpaCache(RwLock<Option<Store<OwnedHpa>>>);

impl HpaCache {
    /// Uses `store`, filled by the controller's watch of its HPAs, from now on.
    pub fn set(&self, store: Store<OwnedHpa>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Some(store);
    }

    /// Forgets the store (the watch stopped).
    pub fn clear(&self) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// What the watch says of HPA `name` in `namespace`: `None` while it does not know (not
    /// leading, or its first list is not complete), `Some(None)` when there is no such HPA or it
    /// reports no `ScalingActive`, else its condition.
    pub fn scaling_active(&self, namespace: &str, name: &str) -> Option<Option<ScalingActive>> {
        let guard = self.0.read().unwrap_or_else(PoisonError::into_inner);
        let store = guard.as_ref()?;
        if !matches!(store.wait_until_ready().now_or_never(), Some(Ok(()))) {
            return None;
        }
        let hpa = store.get(&ObjectRef::new(name).within(namespace));
        Some(hpa.and_then(|h| scaling_active(&h)))
    }
}

impl std::fmt::Debug for HpaCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HpaCache").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
