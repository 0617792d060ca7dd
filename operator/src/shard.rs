//! Sharding the scale loops across operator replicas (`--shards S`, default 1: the single
//! leader of [`crate::leader`], unchanged).
//!
//! With S > 1 a ScaledObject belongs to shard `ebb_api::shard::shard_of(namespace, name, S)`
//! (FNV-1a of `namespace/name`, stable across processes and versions), and shard `k` is the
//! Lease `<lease-name>-shard-<k>`. Each replica also renews a membership Lease
//! `<lease-name>-member-<identity>`; [`manager`] runs the elections (the same [`Elector`] as the
//! single leader) and holds at most a fair share `ceil(S / live replicas)` of the shards,
//! releasing the extra ones (their loops stopped first) so that a newcomer can take them. A
//! replica that dies keeps its shards until their Leases expire.
//!
//! Each shard is run exactly as the single leader runs everything ([`serve`]): its own
//! leadership channel, its own leader-only client (writes refused while the shard is not held,
//! read at the moment each request is sent), its own [`crate::context::Ctx`] whose loops end on
//! losing the shard, and its own controller whose watches only let through the shard's objects
//! ([`ShardFilter`], applied in `run_while_leader`). No two replicas hold one shard's Lease at a
//! time, and the renew deadline is shorter than the lease, so an object's HPA, `/scale`, status
//! and events are written by one replica at a time.
//!
//! The metrics API server finds the holder of an object's shard from the annotation
//! `ebb.keda.sh/internal-address` the holder writes on the shard Lease (`--internal-advertise-
//! address`, else `--pod-ip`, i.e. `POD_IP`, with the internal port); the internal endpoint
//! answers `NotLeader` for objects of shards this replica does not hold ([`ShardedValues`]).
//!
//! [`Elector`]: crate::leader::Elector

pub mod manager;
pub mod serve;

use std::sync::Arc;

use ebb_api::internal::{MetricValue, ValueError};
use futures::StreamExt;
use futures::stream::BoxStream;
use kube::runtime::watcher::{self, Event};
use tokio::sync::watch;

use crate::internal::ValueSource;
use crate::values::LoopValues;

pub use serve::serve;

/// Flags of the sharded mode.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ShardArgs {
    /// Number of shards the ScaledObjects are split into, each elected on a Lease of its own
    /// (`<lease-name>-shard-<k>`) so that several replicas run scale loops; 1 (the default)
    /// elects one leader on `--lease-name` that runs everything. Every replica and the metrics
    /// API server (`--operator-shards`) must use the same number.
    #[arg(long, env = "EBB_SHARDS", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub shards: u32,
    /// `HOST:PORT` at which the metrics API server reaches this replica's internal endpoint,
    /// written on the shard Leases it holds (with `--shards` above 1). Default: `POD_IP` with
    /// the port of `--internal-addr`, else `--internal-addr` itself unless it is unspecified.
    #[arg(long, env = "EBB_INTERNAL_ADVERTISE_ADDRESS")]
    pub internal_advertise_address: Option<String>,
    /// This replica's Pod IP (set from the downward API's `status.podIP`); with `--shards`
    /// above 1 and no `--internal-advertise-address`, the shard Leases carry it with the port
    /// of `--internal-addr`.
    #[arg(long, env = "POD_IP")]
    pub pod_ip: Option<std::net::IpAddr>,
    /// The one shard a controller runs (set per shard by [`serve`], never a flag).
    #[arg(skip)]
    pub filter: Option<ShardFilter>,
}

/// Shard `shard` of `shards`: the objects a shard's controller watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardFilter {
    pub shard: u32,
    pub shards: u32,
}

impl ShardFilter {
    /// Whether the object `namespace/name` belongs to this shard.
    pub fn owns(&self, namespace: &str, name: &str) -> bool {
        ebb_api::shard::shard_of(namespace, name, self.shards) == self.shard
    }
}

/// The key objects of type `K` are sharded by: a ScaledObject by its own namespace and name, an
/// HPA by its ScaledObject's (label `scaledobject.keda.sh/name`).
pub trait ShardKey {
    fn shard_key(&self) -> Option<(&str, &str)>;
}

impl ShardKey for ebb_api::ScaledObject {
    fn shard_key(&self) -> Option<(&str, &str)> {
        Some((self.metadata.namespace.as_deref()?, self.metadata.name.as_deref()?))
    }
}

impl ShardKey for crate::trim::OwnedHpa {
    fn shard_key(&self) -> Option<(&str, &str)> {
        let so = self.metadata.labels.as_ref()?.get(ebb_api::constants::SCALED_OBJECT_NAME_LABEL)?;
        Some((self.metadata.namespace.as_deref()?, so.as_str()))
    }
}

/// `events` with only the objects of `filter`'s shard (all of them without a filter). Objects
/// never change shard (namespace and name are immutable), so dropping an `Apply` or `Delete` of
/// another shard's object never leaves a stale entry in the store fed by the stream.
pub fn filter_events<K>(
    events: BoxStream<'static, watcher::Result<Event<K>>>,
    filter: Option<ShardFilter>,
) -> BoxStream<'static, watcher::Result<Event<K>>>
where
    K: ShardKey + Send + 'static,
{
    let Some(filter) = filter else { return events };
    let mine = move |o: &K| o.shard_key().is_some_and(|(ns, name)| filter.owns(ns, name));
    events
        .filter_map(move |event| {
            let kept = match event {
                Ok(Event::Apply(o)) => mine(&o).then_some(Ok(Event::Apply(o))),
                Ok(Event::Delete(o)) => mine(&o).then_some(Ok(Event::Delete(o))),
                Ok(Event::InitApply(o)) => mine(&o).then_some(Ok(Event::InitApply(o))),
                other => Some(other),
            };
            std::future::ready(kept)
        })
        .boxed()
}

/// The internal endpoint's values with shards: the loops of the shard an object belongs to,
/// `NotLeader` when this replica does not hold that shard (the metrics API server then asks
/// again, finding the holder from the Leases).
#[derive(Debug)]
pub struct ShardedValues {
    /// Per shard: its loops' values and whether this replica holds it.
    pub shards: Vec<(LoopValues, watch::Receiver<bool>)>,
}

#[async_trait::async_trait]
impl ValueSource for ShardedValues {
    async fn value(&self, ns: &str, so: &str, metric: &str) -> Result<MetricValue, ValueError> {
        let count = u32::try_from(self.shards.len()).unwrap_or(u32::MAX);
        let k = ebb_api::shard::shard_of(ns, so, count) as usize;
        match self.shards.get(k) {
            Some((values, held)) if *held.borrow() => values.value(ns, so, metric).await,
            _ => Err(ValueError::NotLeader),
        }
    }

    fn is_leader(&self) -> bool {
        self.shards.iter().any(|(_, held)| *held.borrow())
    }
}

/// The value source of a sharded replica, shared with the internal endpoint.
pub fn sharded_values(shards: Vec<(LoopValues, watch::Receiver<bool>)>) -> Arc<dyn ValueSource> {
    Arc::new(ShardedValues { shards })
}

#[cfg(test)]
mod tests;
