//! Leader election on a `coordination.k8s.io/v1` Lease, so that only one operator replica runs
//! the reconcile and scale loops at a time. Candidates poll the Lease every `retry_period`; the
//! holder renews it at the same pace. A Lease whose holder is empty, or whose
//! `renewTime + leaseDurationSeconds` has passed, may be taken over (counting a transition).
//! Every write is a replace carrying the read `resourceVersion`, so when two candidates race the
//! API server accepts one write and answers the other with 409 Conflict.
//!
//! Leadership is published on a `watch` channel: `true` after a successful acquire, `false` as
//! soon as another holder is seen or no renewal has succeeded for `renew_deadline` (which is
//! shorter than the lease, so the old leader stops before anyone else may start). On shutdown a
//! held Lease is released (empty holder, `leaseDurationSeconds: 1`) so a follower takes over on
//! its next poll instead of waiting for expiry.
//!
//! Renewals go through a client of their own ([`run`]'s `client`): not the throttled client the
//! controller's requests queue on, so a flood of reconciles cannot delay a renewal past the
//! renew deadline. [`gate`] holds what the rest of the operator reads: whether this replica leads
//! now, a future completing on loss, and the guard refusing writes while not leading.
//!
//! With `--shards` above 1 the same [`Elector`] runs each shard Lease and each replica's
//! membership Lease (`crate::shard`); [`LeaderConfig::annotations`] then carries the holder's
//! internal address on the Lease.
//!
//! Times in the Lease come from this process's wall clock, so replicas are assumed to have
//! clocks agreeing to well within the lease duration (as NTP-synced nodes do).

pub mod gate;
pub mod podlabel;

pub use gate::{Leadership, NotLeader, is_not_leader};

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;

/// How an operator replica takes part in the election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease, e.g. `ebb-operator`.
    pub name: String,
    /// This candidate's identity (pod name, or hostname plus a random suffix); must be unique.
    pub identity: String,
    /// How long a Lease stays valid after its last renewal (written rounded up to whole seconds).
    pub lease_duration: Duration,
    /// How long the leader keeps leading without a successful renewal; below `lease_duration`.
    pub renew_deadline: Duration,
    /// Pause between acquire or renew attempts; below `renew_deadline`.
    pub retry_period: Duration,
    /// Annotations written on the Lease with each acquire or renewal (empty: none).
    pub annotations: std::collections::BTreeMap<String, String>,
}

impl LeaderConfig {
    /// A configuration with the usual Kubernetes timings: lease 15 s, renew deadline 10 s,
    /// retry every 2 s.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>, identity: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            annotations: std::collections::BTreeMap::new(),
        }
    }

    /// The timings with their ordering enforced: `retry_period < renew_deadline <
    /// lease_duration` (the lease as written, in whole seconds).
    pub(crate) fn normalized(mut self) -> Self {
        let lease = Duration::from_secs(u64::from(lease_seconds(self.lease_duration).unsigned_abs()));
        if self.renew_deadline.is_zero() || self.renew_deadline >= lease {
            let fixed = lease * 2 / 3;
            tracing::warn!(
                renew_deadline = ?self.renew_deadline, lease_duration = ?lease, using = ?fixed,
                "leader election: renew deadline must be shorter than the lease duration"
            );
            self.renew_deadline = fixed;
        }
        if self.retry_period.is_zero() || self.retry_period >= self.renew_deadline {
            let fixed = self.renew_deadline / 4;
            tracing::warn!(
                retry_period = ?self.retry_period, renew_deadline = ?self.renew_deadline, using = ?fixed,
                "leader election: retry period must be shorter than the renew deadline"
            );
            self.retry_period = fixed;
        }
        self
    }
}

/// `leaseDurationSeconds` for a lease duration: whole seconds, rounded up, at least 1.
pub(crate) fn lease_seconds(d: Duration) -> i32 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i32::try_from(secs.max(1)).unwrap_or(i32::MAX)
}

/// Runs the election until `shutdown` completes, publishing on `tx` whether this candidate
/// leads. On shutdown, `false` is published and a held Lease is released.
pub async fn run(
    client: kube::Client,
    cfg: LeaderConfig,
    tx: watch::Sender<bool>,
    shutdown: impl Future<Output = ()>,
) {
    let mut elector = Elector::new(Api::namespaced(client, &cfg.namespace), cfg.normalized());
    tokio::pin!(shutdown);
    let mut leading = false;
    // Start time of the last attempt that acquired or renewed the Lease.
    let mut renewed_at = Instant::now();
    loop {
        let started = Instant::now();
        let budget = if leading {
            (renewed_at + elector.cfg.renew_deadline).saturating_duration_since(started)
        } else {
            elector.cfg.renew_deadline
        };
        let result = tokio::select! {
            () = &mut shutdown => break,
            r = tokio::time::timeout(budget, elector.try_acquire_or_renew()) => r,
        };
        match result {
            Ok(Ok(Outcome::Leading)) => {
                if !leading {
                    tracing::info!(lease = %elector.cfg.name, identity = %elector.cfg.identity, "became leader");
                }
                leading = true;
                renewed_at = started;
            }
            Ok(Ok(Outcome::Following(holder))) => {
                if leading {
                    tracing::warn!(lease = %elector.cfg.name, %holder, "lost leadership to another holder");
                }
                leading = false;
            }
            Ok(Err(e)) => {
                tracing::warn!(lease = %elector.cfg.name, error = %e, "leader election attempt failed")
            }
            Err(_) => tracing::warn!(lease = %elector.cfg.name, "leader election attempt timed out"),
        }
        if leading && renewed_at.elapsed() >= elector.cfg.renew_deadline {
            tracing::warn!(lease = %elector.cfg.name, "could not renew the lease in time; stepping down");
            leading = false;
        }
        if !leading {
            elector.cached = None;
        }
        publish(&tx, leading);

        let deadline = renewed_at + elector.cfg.renew_deadline;
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(elector.cfg.retry_period) => {}
            () = tokio::time::sleep_until(deadline), if leading => {
                tracing::warn!(lease = %elector.cfg.name, "could not renew the lease in time; stepping down");
                leading = false;
                elector.cached = None;
                publish(&tx, false);
            }
        }
    }
    publish(&tx, false);
    let deadline = elector.cfg.renew_deadline;
    if tokio::time::timeout(deadline, elector.release()).await.is_err() {
        tracing::warn!(lease = %elector.cfg.name, "releasing the lease timed out");
    }
}

fn publish(tx: &watch::Sender<bool>, leading: bool) {
    tx.send_if_modified(|current| {
        let changed = *current != leading;
        *current = leading;
        changed
    });
}

/// Result of one acquire-or-renew attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// This candidate holds the Lease (just acquired or renewed).
    Leading,
    /// Someone else holds a valid Lease (or won the race for it).
    Following(String),
}

/// What to do with the Lease as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// It is ours: refresh `renewTime`.
    Renew,
    /// It is free or expired: take it over.
    TakeOver,
    /// Another holder's Lease is still valid.
    Follow(String),
}

/// Decides from a Lease's spec what candidate `me` may do at `now` (`default_seconds` stands in
/// for a missing `leaseDurationSeconds`).
pub(crate) fn decide(spec: &LeaseSpec, me: &str, now: Timestamp, default_seconds: i32) -> Decision {
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    if holder.is_empty() {
        return Decision::TakeOver;
    }
    if holder == me {
        return Decision::Renew;
    }
    let Some(last) = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) else {
        return Decision::TakeOver;
    };
    let seconds = spec.lease_duration_seconds.unwrap_or(default_seconds);
    let expires_ms = last.0.as_millisecond().saturating_add(i64::from(seconds).saturating_mul(1000));
    if expires_ms < now.as_millisecond() { Decision::TakeOver } else { Decision::Follow(holder.to_string()) }
}

/// Acquires, renews and releases one Lease for one candidate.
pub(crate) struct Elector {
    api: Api<Lease>,
    pub(crate) cfg: LeaderConfig,
    /// The Lease as last written by us while leading (or as just listed); lets an attempt skip
    /// the read. A stale copy costs one conflict and a read.
    pub(crate) cached: Option<Lease>,
}

impl Elector {
    pub(crate) fn new(api: Api<Lease>, cfg: LeaderConfig) -> Self {
        Self { api, cfg, cached: None }
    }

    fn seconds(&self) -> i32 {
        lease_seconds(self.cfg.lease_duration)
    }

    pub(crate) async fn try_acquire_or_renew(&mut self) -> Result<Outcome, kube::Error> {
        // A conflict on the cached copy only means it was stale: read and try once more.
        for _ in 0..2 {
            let current = match self.cached.take() {
                Some(lease) => lease,
                None => match self.api.get_opt(&self.cfg.name).await? {
                    Some(lease) => lease,
                    None => return self.create().await,
                },
            };
            let now = Timestamp::now();
            let spec = current.spec.clone().unwrap_or_default();
            let mut next = current;
            let mut new_spec = spec.clone();
            match decide(&spec, &self.cfg.identity, now, self.seconds()) {
                Decision::Follow(holder) => return Ok(Outcome::Following(holder)),
                Decision::Renew => {
                    new_spec.renew_time = Some(MicroTime(now));
                    new_spec.lease_duration_seconds = Some(self.seconds());
                    if new_spec.acquire_time.is_none() {
                        new_spec.acquire_time = Some(MicroTime(now));
                    }
                }
                Decision::TakeOver => {
                    new_spec.holder_identity = Some(self.cfg.identity.clone());
                    new_spec.acquire_time = Some(MicroTime(now));
                    new_spec.renew_time = Some(MicroTime(now));
                    new_spec.lease_duration_seconds = Some(self.seconds());
                    new_spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
                }
            }
            next.spec = Some(new_spec);
            self.annotate(&mut next.metadata);
            match self.api.replace(&self.cfg.name, &PostParams::default(), &next).await {
                Ok(written) => {
                    self.cached = Some(written);
                    return Ok(Outcome::Leading);
                }
                Err(kube::Error::Api(status)) if status.is_conflict() => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(Outcome::Following(String::new()))
    }

    /// Puts [`LeaderConfig::annotations`] on the Lease's metadata.
    fn annotate(&self, meta: &mut ObjectMeta) {
        if self.cfg.annotations.is_empty() {
            return;
        }
        let current = meta.annotations.get_or_insert_with(Default::default);
        for (k, v) in &self.cfg.annotations {
            current.insert(k.clone(), v.clone());
        }
    }

    async fn create(&mut self) -> Result<Outcome, kube::Error> {
        let now = MicroTime(Timestamp::now());
        let mut lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.cfg.name.clone()),
                namespace: Some(self.cfg.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.cfg.identity.clone()),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_duration_seconds: Some(self.seconds()),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        self.annotate(&mut lease.metadata);
        match self.api.create(&PostParams::default(), &lease).await {
            Ok(written) => {
                self.cached = Some(written);
                Ok(Outcome::Leading)
            }
            Err(kube::Error::Api(status)) if status.is_already_exists() => {
                Ok(Outcome::Following(String::new()))
            }
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up if this candidate holds it: empty holder, one-second duration.
    pub(crate) async fn release(&mut self) {
        for _ in 0..2 {
            let current = match self.cached.take() {
                Some(lease) => lease,
                None => match self.api.get_opt(&self.cfg.name).await {
                    Ok(Some(lease)) => lease,
                    Ok(None) => return,
                    Err(e) => {
                        tracing::warn!(lease = %self.cfg.name, error = %e, "could not read the lease to release it");
                        return;
                    }
                },
            };
            let mut next = current;
            let Some(spec) = next.spec.as_mut() else { return };
            if spec.holder_identity.as_deref() != Some(self.cfg.identity.as_str()) {
                return;
            }
            let now = MicroTime(Timestamp::now());
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.acquire_time = Some(now.clone());
            spec.renew_time = Some(now);
            match self.api.replace(&self.cfg.name, &PostParams::default(), &next).await {
                Ok(_) => {
                    tracing::info!(lease = %self.cfg.name, "released the lease");
                    return;
                }
                Err(kube::Error::Api(status)) if status.is_conflict() => continue,
                Err(e) => {
                    tracing::warn!(lease = %self.cfg.name, error = %e, "could not release the lease");
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
