//! Shared state of the operator: the API client, configuration, metrics, the event recorder, the
//! target resolver, and per-ScaledObject state (the in-memory status model every status write is
//! made from, and the running scale loop). Status is written by server-side apply with one field
//! manager from one model, so the reconcile and the loop never undo each other's fields. The model's
//! lock is only held to read or change it, never across an API call: live value queries read
//! fallback health from it and must not wait for a stalled write.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ebb_api::constants::FIELD_MANAGER_STATUS;
use ebb_api::{ScaledObject, ScaledObjectStatus};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Client, Resource};
use tokio::sync::Mutex;

use crate::error::Error;
use crate::leader::Leadership;
use crate::metrics::Metrics;
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

/// State kept per ScaledObject.
#[derive(Debug, Default)]
pub struct ObjectState {
    /// The status as last written (or read at start); every write sends it whole.
    pub status: Mutex<Option<ScaledObjectStatus>>,
    /// The running scale loop, if any.
    pub scale_loop: Mutex<Option<LoopHandle>>,
    /// Consecutive reconcile failures, for the error policy's backoff.
    pub failures: std::sync::atomic::AtomicU32,
    /// Loop fingerprint and time of the last complete reconcile (status writes by the loop
    /// trigger reconciles; those that change nothing return early).
    pub reconciled: std::sync::Mutex<Option<(String, std::time::Instant)>>,
    /// Trigger types counted for this object in the registration gauges.
    pub registered: std::sync::Mutex<Option<Vec<String>>>,
    /// Changes the scale loop made to `status` (bumped under its lock) and the last of them
    /// written: a poll writes while `status_written < status_changed`, so a failed write is
    /// retried by the next poll even when that poll changes nothing.
    pub status_changed: std::sync::atomic::AtomicU64,
    pub status_written: std::sync::atomic::AtomicU64,
}

/// Everything reconcile and the loops share.
pub struct Ctx {
    /// The controller's client: throttled, and refusing writes while this replica does not lead.
    pub client: Client,
    pub config: Config,
    pub metrics: Metrics,
    pub recorder: Recorder,
    pub resolver: Resolver,
    /// Current replica counts of Deployments and StatefulSets, fed by watches.
    pub replicas: Arc<crate::replicas::ReplicaCache>,
    pub objects: std::sync::Mutex<HashMap<(String, String), Arc<ObjectState>>>,
    /// Whether this replica leads; read right before each leader-only write.
    pub leader: Leadership,
    /// What each object's authentication was resolved from (for credential rotation).
    pub auth_index: crate::auth_watch::AuthIndex,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Ctx {
    /// The state of one object, created on first use.
    pub fn object(&self, ns: &str, name: &str) -> Arc<ObjectState> {
        let mut map = self.objects.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry((ns.to_owned(), name.to_owned())).or_default().clone()
    }

    /// Drops the state of a deleted object (its loop is stopped by the caller).
    pub fn forget(&self, ns: &str, name: &str) -> Option<Arc<ObjectState>> {
        self.objects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&(ns.to_owned(), name.to_owned()))
    }

    /// Counts the object in the registration gauges (`keda_resource_registered_total`,
    /// `keda_trigger_registered_total`) with its current trigger types, once.
    pub fn register(&self, ns: &str, state: &ObjectState, types: Vec<String>) {
        let mut registered = state.registered.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
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
        let old = state.registered.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(old) = old {
            self.metrics.object_removed(ns, &old.iter().map(String::as_str).collect::<Vec<_>>());
        }
    }

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
