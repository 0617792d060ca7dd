//! Shared state of the operator, in two layers so that nothing owns itself:
//! - [`LoopContext`]: what a scale loop needs (the leader-only client, configuration, metrics,
//!   the event recorder, the replica cache, leadership), with the two writes both reconcile and
//!   loops make: [`LoopContext::write_status`] and [`LoopContext::event`];
//! - [`Ctx`]: what reconcile adds on top (the target resolver, the per-object states, the
//!   authentication index). It dereferences to its [`LoopContext`].
//!
//! Per ScaledObject, an [`ObjectState`] holds the in-memory [`StatusModel`] every status write is
//! made from and the running loop's [`LoopHandle`]. A loop task holds only the `LoopContext` and
//! the object's `StatusModel`, never `Ctx` or the `ObjectState`: dropping `Ctx` (or removing an
//! object from it) drops the handle, which aborts the task.
//!
//! Status is written by server-side apply with one field manager from one model, so the reconcile
//! and the loop never undo each other's fields. The model's lock is only held to read or change
//! it, never across an API call: live value queries read fallback health from it and must not
//! wait for a stalled write.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use ebb_api::constants::FIELD_MANAGER_STATUS;
use ebb_api::{HealthStatus, ScaledObject, ScaledObjectStatus};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Client, Resource};
use tokio::sync::{Mutex, MutexGuard};

use crate::error::Error;
use crate::leader::Leadership;
use crate::metrics::Metrics;
use crate::replicas::ReplicaCache;
use crate::scaleloop::LoopHandle;
use crate::target::Resolver;

/// Operator settings derived from flags.
#[derive(Debug, Clone)]
pub struct Config {
    /// Bound on each trigger query.
    pub scaler_timeout: Duration,
    /// Namespace of the operator (where ClusterTriggerAuthentication secrets live).
    pub operator_namespace: String,
    /// Bound on each API call the scale loop makes (`/scale` read and write, status write); a
    /// call that takes longer is abandoned, counted, and made again by a later poll.
    pub write_timeout: Duration,
    /// Which namespaces may use ClusterTriggerAuthentications and the operator's identity.
    pub auth: crate::auth::AuthPolicy,
}

/// What scale loops share with each other and with reconcile. Holds no per-object state.
pub struct LoopContext {
    /// The controller's client: throttled, and refusing writes while this replica does not lead.
    pub client: Client,
    pub config: Config,
    pub metrics: Metrics,
    /// Events on ScaledObjects, with a bounded memory of those published ([`crate::events`]).
    pub recorder: crate::events::EventRecorder,
    /// Current replica counts of Deployments and StatefulSets, fed by watches.
    pub replicas: Arc<ReplicaCache>,
    /// Whether this replica leads; read right before each leader-only write.
    pub leader: Leadership,
}

impl std::fmt::Debug for LoopContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopContext").field("config", &self.config).finish_non_exhaustive()
    }
}

impl LoopContext {
    /// Writes the whole status by server-side apply (field manager ebb-operator/status, force).
    pub async fn write_status(&self, ns: &str, name: &str, status: &ScaledObjectStatus) -> Result<(), Error> {
        let api: Api<ScaledObject> = Api::namespaced(self.client.clone(), ns);
        let patch = crate::status::status_patch(name, ns, status);
        let pp = PatchParams::apply(FIELD_MANAGER_STATUS).force();
        api.patch_status(name, &pp, &Patch::Apply(&patch)).await.map_err(Error::Kube)?;
        Ok(())
    }

    /// Records an event on the ScaledObject; failures are logged, never fatal. Events are
    /// leader-only writes: a replica that does not lead records none.
    pub async fn event(&self, so: &ScaledObject, type_: EventType, reason: &str, note: String) {
        if !self.leader.is_leader() {
            return;
        }
        let ev = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action: reason.to_owned(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &so.object_ref(&())).await {
            tracing::warn!(reason, "cannot record event: {e}");
        }
    }
}

/// The status of one ScaledObject as the operator last wrote (or means to write) it. Every
/// write sends it whole. The loop counts the changes it makes and the last of them written: a
/// tick writes while an earlier change is unwritten, so a failed write is retried by the next
/// tick even when that tick changes nothing.
#[derive(Debug, Default)]
pub struct StatusModel {
    status: Mutex<Option<ScaledObjectStatus>>,
    changed: AtomicU64,
    written: AtomicU64,
}

impl StatusModel {
    /// The model, if anything was read or written yet.
    pub async fn get(&self) -> Option<ScaledObjectStatus> {
        self.status.lock().await.clone()
    }

    /// Whether the model was set (read or written); it never goes back to unset. `false` also
    /// while someone holds the lock, which can only make a caller keep more than it needs.
    pub fn is_set(&self) -> bool {
        self.status.try_lock().is_ok_and(|s| s.is_some())
    }

    /// Replaces the model (after reconcile wrote `status`).
    pub async fn set(&self, status: ScaledObjectStatus) {
        *self.status.lock().await = Some(status);
    }

    /// The per-metric health of the model (empty before the first write).
    pub async fn health(&self) -> ebb_api::SortedMap<String, HealthStatus> {
        self.status.lock().await.as_ref().map(|s| s.health.clone()).unwrap_or_default()
    }

    /// Locks the model for one loop tick: read, decide, store. Never held across an API call.
    pub(crate) async fn lock(&self) -> MutexGuard<'_, Option<ScaledObjectStatus>> {
        self.status.lock().await
    }

    /// Whether a change the loop made is not written yet.
    pub(crate) fn unwritten(&self) -> bool {
        self.written.load(Ordering::SeqCst) < self.changed.load(Ordering::SeqCst)
    }

    /// Counts a change the loop made (call under [`StatusModel::lock`]); returns its number.
    pub(crate) fn mark_changed(&self) -> u64 {
        self.changed.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// The number of the loop's latest change.
    pub(crate) fn generation(&self) -> u64 {
        self.changed.load(Ordering::SeqCst)
    }

    /// Records that the model as of change `generation` was written.
    pub(crate) fn mark_written(&self, generation: u64) {
        self.written.fetch_max(generation, Ordering::SeqCst);
    }
}

/// State kept per ScaledObject.
#[derive(Debug, Default)]
pub struct ObjectState {
    /// The status model, shared with the object's scale loop.
    pub model: Arc<StatusModel>,
    /// The running scale loop, if any; dropping it stops the loop.
    pub scale_loop: Mutex<Option<LoopHandle>>,
    /// Consecutive reconcile failures, for the error policy's backoff.
    pub failures: AtomicU32,
    /// Loop fingerprint and time of the last complete reconcile (status writes by the loop
    /// trigger reconciles; those that change nothing return early).
    pub reconciled: std::sync::Mutex<Option<(String, std::time::Instant)>>,
    /// Trigger types counted for this object in the registration gauges.
    pub registered: std::sync::Mutex<Option<Vec<String>>>,
    /// The last `GetMetricSpec` answer of each external trigger, by trigger index, with the
    /// identity of the question (`reconcile/observe/external.rs`).
    pub external_specs: std::sync::Mutex<HashMap<usize, (u64, ebb_scalers::external::spec::Resolved)>>,
}

/// Everything reconcile uses: the loops' context plus the resolver, the objects and the
/// authentication index.
pub struct Ctx {
    /// What the loops share; also reachable through `Deref` (`ctx.client`, `ctx.event(…)`).
    pub core: Arc<LoopContext>,
    pub resolver: Resolver,
    /// Per-object state; the only owner of the loops (through their handles).
    pub objects: std::sync::Mutex<HashMap<(String, String), Arc<ObjectState>>>,
    /// What each object's authentication was resolved from (for credential rotation).
    pub auth_index: crate::auth_watch::AuthIndex,
    /// The HPAs the controller watches (their `ScalingActive`, mirrored as `HPAActive`).
    pub hpas: crate::hpa_active::HpaCache,
}

impl std::ops::Deref for Ctx {
    type Target = LoopContext;

    fn deref(&self) -> &LoopContext {
        &self.core
    }
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx").field("config", &self.core.config).finish_non_exhaustive()
    }
}

impl Ctx {
    /// A context with no objects yet around the loops' `core`.
    pub fn new(core: LoopContext) -> Self {
        Self {
            core: Arc::new(core),
            resolver: Resolver::default(),
            objects: Default::default(),
            auth_index: Default::default(),
            hpas: Default::default(),
        }
    }

    /// The state of one object, created on first use.
    pub fn object(&self, ns: &str, name: &str) -> Arc<ObjectState> {
        let mut map = self.objects.lock().unwrap_or_else(PoisonError::into_inner);
        map.entry((ns.to_owned(), name.to_owned())).or_default().clone()
    }

    /// The state of one object, if it has any.
    pub fn existing(&self, ns: &str, name: &str) -> Option<Arc<ObjectState>> {
        self.objects
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(ns.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Whether the operator holds the object's status model (then the controller's store need
    /// not keep the object's own status, see [`crate::trim::status_once_modelled`]).
    pub fn modelled(&self, ns: &str, name: &str) -> bool {
        self.existing(ns, name).is_some_and(|state| state.model.is_set())
    }

    /// Drops the state of a deleted object (its loop is stopped by the caller).
    pub fn forget(&self, ns: &str, name: &str) -> Option<Arc<ObjectState>> {
        self.objects.lock().unwrap_or_else(PoisonError::into_inner).remove(&(ns.to_owned(), name.to_owned()))
    }

    /// Removes every object's state (leaving leadership): each loop stops, each object leaves
    /// the registration gauges.
    pub async fn forget_all(&self) {
        let all: Vec<_> = self.objects.lock().unwrap_or_else(PoisonError::into_inner).drain().collect();
        for ((ns, _), state) in all {
            *state.scale_loop.lock().await = None;
            self.unregister(&ns, &state);
        }
    }

    /// Counts the object in the registration gauges (`keda_resource_registered_total`,
    /// `keda_trigger_registered_total`) with its current trigger types, once.
    pub fn register(&self, ns: &str, state: &ObjectState, types: Vec<String>) {
        let mut registered = state.registered.lock().unwrap_or_else(PoisonError::into_inner);
        if registered.as_ref() == Some(&types) {
            return;
        }
        if let Some(old) = registered.take() {
            self.metrics.object_removed(ns, &old.iter().map(String::as_str).collect::<Vec<_>>());
        }
        self.metrics.object_added(ns, &types.iter().map(String::as_str).collect::<Vec<_>>());
        *registered = Some(types);
    }

    /// Removes the object from the registration gauges.
    pub fn unregister(&self, ns: &str, state: &ObjectState) {
        let old = state.registered.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(old) = old {
            self.metrics.object_removed(ns, &old.iter().map(String::as_str).collect::<Vec<_>>());
        }
    }
}

#[cfg(test)]
mod tests;
