//! The shard elections of one replica: its membership Lease and the shard Leases it holds,
//! renewed every `retry_period` with the [`Elector`] of the single leader election, and the fair
//! share it aims for.
//!
//! Each round (every `retry_period`):
//! 1. shards given up in the previous round (their loops stopped then) are released;
//! 2. the membership Lease `<lease-name>-member-<identity>` is renewed;
//! 3. every held shard is renewed, each bounded by what is left of its renew deadline; a shard
//!    not renewed within `renew_deadline` (or found taken) is published as lost at once;
//! 4. the Leases of the namespace are listed: the live replicas are the holders of unexpired
//!    membership and shard Leases (this one included), the fair share `ceil(S / live)`;
//! 5. above the fair share, the highest-numbered extra shards are published as not held (their
//!    loops stop and the leader-only clients refuse their writes at once) and released in the
//!    next round; below it, free or expired shards are taken, starting from a point that depends
//!    on the identity so that candidates spread. The first round only registers membership, so
//!    replicas starting together see each other before taking shards.
//!
//! On shutdown every shard is published as not held, the shard Leases are released so the other
//! replicas take over on their next round, and the membership Lease is deleted (identities are
//! per process). Membership Leases of replicas that died are deleted by the others once unrenewed
//! for [`STALE_MEMBER_LEASES`] lease durations.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use ebb_api::shard::{INTERNAL_ADDRESS_ANNOTATION, member_lease_prefix, shard_lease_name};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, Preconditions};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::leader::{Decision, Elector, LeaderConfig, Outcome, decide, lease_seconds};

/// How a replica takes part in the shard elections.
#[derive(Debug, Clone)]
pub struct ShardConfig {
    /// Namespace, base Lease name (`--lease-name`), identity and timings.
    pub leader: LeaderConfig,
    /// Number of shards.
    pub shards: u32,
    /// This replica's internal endpoint (`HOST:PORT`), written on the shard Leases it holds.
    pub internal_address: String,
}

/// What one round decides from the listed Leases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Live replicas, this one included.
    pub live: usize,
    /// `ceil(shards / live)`.
    pub fair: usize,
    /// Held shards to give up.
    pub release: Vec<u32>,
    /// Free or expired shards to try to take, in order, until [`Plan::room`] of them are taken
    /// (another replica may win some of them).
    pub acquire: Vec<u32>,
    /// How many more shards the fair share leaves room for.
    pub room: usize,
    /// Membership Leases of replicas gone for [`STALE_MEMBER_LEASES`] lease durations (name,
    /// resourceVersion), to delete: every restart makes a new identity.
    pub stale_members: Vec<(String, String)>,
}

/// After how many lease durations without renewal another replica's membership Lease is deleted.
pub const STALE_MEMBER_LEASES: i64 = 20;

/// Decides (pure) from the Leases listed at `now` what the replica `me`, holding `held`, does.
pub fn plan(cfg: &ShardConfig, me: &str, held: &BTreeSet<u32>, leases: &[Lease], now: Timestamp) -> Plan {
    let base = &cfg.leader.name;
    let prefix = member_lease_prefix(base);
    let default_seconds = lease_seconds(cfg.leader.lease_duration);
    let mut live: BTreeSet<String> = BTreeSet::from([me.to_owned()]);
    let mut free = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut stale = Vec::new();
    for lease in leases {
        let Some(name) = lease.metadata.name.as_deref() else { continue };
        let spec = lease.spec.clone().unwrap_or_default();
        let valid_holder = match decide(&spec, "", now, default_seconds) {
            Decision::Follow(holder) => Some(holder),
            _ => None,
        };
        if name.starts_with(&prefix) {
            let last = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()).map(|t| t.0.as_millisecond());
            let stale_after = i64::from(spec.lease_duration_seconds.unwrap_or(default_seconds))
                .saturating_mul(1000)
                .saturating_mul(STALE_MEMBER_LEASES);
            let gone = last.is_none_or(|l| l.saturating_add(stale_after) < now.as_millisecond());
            if valid_holder.is_none()
                && gone
                && spec.holder_identity.as_deref() != Some(me)
                && let Some(rv) = &lease.metadata.resource_version
            {
                stale.push((name.to_owned(), rv.clone()));
            }
            live.extend(valid_holder);
            continue;
        }
        let Some(k) = (0..cfg.shards).find(|k| shard_lease_name(base, *k) == name) else { continue };
        seen.insert(k);
        match valid_holder {
            Some(holder) => {
                live.insert(holder);
            }
            None if !held.contains(&k) => {
                free.insert(k);
            }
            None => {}
        }
    }
    // Shards whose Lease does not exist yet are free.
    free.extend((0..cfg.shards).filter(|k| !seen.contains(k) && !held.contains(k)));
    let shards = cfg.shards as usize;
    let fair = shards.div_ceil(live.len());
    let release: Vec<u32> = held.iter().rev().take(held.len().saturating_sub(fair)).rev().copied().collect();
    let room = fair.saturating_sub(held.len());
    let start =
        u32::try_from(ebb_api::shard::fnv1a64(me.as_bytes()) % u64::from(cfg.shards.max(1))).unwrap_or(0);
    let mut ordered: Vec<u32> = free.into_iter().collect();
    ordered.sort_by_key(|k| (k + cfg.shards - start) % cfg.shards);
    Plan { live: live.len(), fair, release, acquire: ordered, room, stale_members: stale }
}

/// One shard's election state.
struct Shard {
    elector: Elector,
    /// Start of the attempt that last acquired or renewed it, while held.
    renewed_at: Option<Instant>,
}

/// Runs the shard elections until `shutdown` completes, publishing on `held[k]` whether this
/// replica holds shard `k`. On shutdown every shard is published as not held and the held
/// Leases are released.
pub async fn run(
    client: kube::Client,
    cfg: ShardConfig,
    held: Vec<watch::Sender<bool>>,
    shutdown: impl Future<Output = ()>,
) {
    let leader = cfg.leader.clone().normalized();
    let api: Api<Lease> = Api::namespaced(client, &leader.namespace);
    let me = leader.identity.clone();
    let member_cfg =
        LeaderConfig { name: format!("{}{}", member_lease_prefix(&leader.name), me), ..leader.clone() };
    let mut member = Elector::new(api.clone(), member_cfg);
    let mut shards: Vec<Shard> = (0..cfg.shards)
        .map(|k| {
            let mut c = leader.clone();
            c.name = shard_lease_name(&leader.name, k);
            c.annotations.insert(INTERNAL_ADDRESS_ANNOTATION.to_owned(), cfg.internal_address.clone());
            Shard { elector: Elector::new(api.clone(), c), renewed_at: None }
        })
        .collect();
    let (retry, deadline) = (leader.retry_period, leader.renew_deadline);
    let mut releasing: Vec<u32> = Vec::new();
    let mut first = true;
    tokio::pin!(shutdown);
    loop {
        let round_started = Instant::now();
        let round = async {
            for k in std::mem::take(&mut releasing) {
                if let Some(s) = shards.get_mut(k as usize) {
                    let _ = tokio::time::timeout(deadline, s.elector.release()).await;
                }
            }
            match tokio::time::timeout(retry, member.try_acquire_or_renew()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(identity = %me, error = %e, "could not renew the membership lease")
                }
                Err(_) => tracing::warn!(identity = %me, "renewing the membership lease timed out"),
            }
            renew_held(&mut shards, deadline, &held).await;
            let listed = match api.list(&ListParams::default()).await {
                Ok(l) => l.items,
                Err(e) => {
                    tracing::warn!(error = %e, "could not list the shard leases");
                    return;
                }
            };
            let mine: BTreeSet<u32> = held_set(&shards);
            let p = plan(&cfg, &me, &mine, &listed, Timestamp::now());
            for k in &p.release {
                tracing::info!(
                    shard = k,
                    fair = p.fair,
                    live = p.live,
                    "above the fair share: giving the shard up"
                );
                if let Some(s) = shards.get_mut(*k as usize) {
                    s.renewed_at = None;
                }
                publish(&held, *k, false);
                releasing.push(*k);
            }
            for (name, rv) in &p.stale_members {
                let dp = DeleteParams::default()
                    .preconditions(Preconditions { resource_version: Some(rv.clone()), uid: None });
                match api.delete(name, &dp).await {
                    Ok(_) => {
                        tracing::info!(lease = %name, "deleted the membership lease of a replica long gone")
                    }
                    Err(e) => {
                        tracing::debug!(lease = %name, error = %e, "could not delete a stale membership lease")
                    }
                }
            }
            if std::mem::take(&mut first) {
                return;
            }
            let mut taken = 0;
            for k in p.acquire {
                if taken >= p.room {
                    break;
                }
                let Some(s) = shards.get_mut(k as usize) else { continue };
                s.elector.cached =
                    listed.iter().find(|l| l.metadata.name.as_deref() == Some(&s.elector.cfg.name)).cloned();
                let started = Instant::now();
                match tokio::time::timeout(retry, s.elector.try_acquire_or_renew()).await {
                    Ok(Ok(Outcome::Leading)) => {
                        tracing::info!(shard = k, identity = %me, "acquired the shard");
                        s.renewed_at = Some(started);
                        publish(&held, k, true);
                        taken += 1;
                    }
                    Ok(Ok(Outcome::Following(_))) => s.elector.cached = None,
                    Ok(Err(e)) => {
                        s.elector.cached = None;
                        tracing::warn!(shard = k, error = %e, "could not acquire the shard");
                    }
                    Err(_) => s.elector.cached = None,
                }
            }
        };
        tokio::select! {
            () = &mut shutdown => break,
            () = round => {}
        }
        // Rounds start one retry period apart; a shard is stepped down from at its renew deadline.
        let next = round_started + retry;
        let wake = shards.iter().filter_map(|s| s.renewed_at.map(|r| r + deadline)).fold(next, Instant::min);
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep_until(wake) => {}
        }
        step_down_expired(&mut shards, deadline, &held);
    }
    for k in 0..cfg.shards {
        publish(&held, k, false);
    }
    let mut to_release = held_set(&shards);
    to_release.extend(releasing);
    let releases = (0u32..)
        .zip(shards.iter_mut())
        .filter(|(k, _)| to_release.contains(k))
        .map(|(_, s)| s.elector.release());
    let _ = tokio::time::timeout(deadline, futures::future::join_all(releases)).await;
    // The membership Lease names this process only: delete it rather than leave it behind.
    let member_name = member.cfg.name.clone();
    match tokio::time::timeout(deadline, api.delete(&member_name, &DeleteParams::default())).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::warn!(lease = %member_name, error = %e, "could not delete the membership lease")
        }
        Err(_) => tracing::warn!(lease = %member_name, "deleting the membership lease timed out"),
    }
}

fn held_set(shards: &[Shard]) -> BTreeSet<u32> {
    (0u32..).zip(shards).filter(|(_, s)| s.renewed_at.is_some()).map(|(k, _)| k).collect()
}

/// Renews every held shard concurrently, each within what is left of its renew deadline.
async fn renew_held(shards: &mut [Shard], deadline: Duration, held: &[watch::Sender<bool>]) {
    let attempts =
        (0u32..).zip(shards.iter_mut()).filter(|(_, s)| s.renewed_at.is_some()).map(|(k, s)| async move {
            let Some(renewed_at) = s.renewed_at else { return };
            let started = Instant::now();
            let budget = (renewed_at + deadline).saturating_duration_since(started);
            match tokio::time::timeout(budget, s.elector.try_acquire_or_renew()).await {
                Ok(Ok(Outcome::Leading)) => s.renewed_at = Some(started),
                Ok(Ok(Outcome::Following(holder))) => {
                    tracing::warn!(shard = k, %holder, "lost the shard to another holder");
                    s.renewed_at = None;
                    s.elector.cached = None;
                    publish(held, k, false);
                }
                Ok(Err(e)) => tracing::warn!(shard = k, error = %e, "could not renew the shard"),
                Err(_) => tracing::warn!(shard = k, "renewing the shard timed out"),
            }
        });
    futures::future::join_all(attempts).await;
    step_down_expired(shards, deadline, held);
}

/// Publishes as lost every shard not renewed within `deadline`.
fn step_down_expired(shards: &mut [Shard], deadline: Duration, held: &[watch::Sender<bool>]) {
    for (k, s) in (0u32..).zip(shards.iter_mut()) {
        if s.renewed_at.is_some_and(|r| r.elapsed() >= deadline) {
            tracing::warn!(shard = k, "could not renew the shard in time; stepping down");
            s.renewed_at = None;
            s.elector.cached = None;
            publish(held, k, false);
        }
    }
}

fn publish(held: &[watch::Sender<bool>], k: u32, value: bool) {
    if let Some(tx) = held.get(k as usize) {
        tx.send_if_modified(|current| {
            let changed = *current != value;
            *current = value;
            changed
        });
    }
}
