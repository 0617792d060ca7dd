//! Routing value queries to the operator replica that holds the ScaledObject's shard, when the
//! operator runs with `--shards` above 1 (`--operator-shards`, the same number).
//!
//! The shard of `namespace/name` is `ebb_api::shard::shard_of` (the operator's own function);
//! the holder of shard `k` is whoever holds the Lease `<--operator-lease-name>-shard-<k>` in
//! `--operator-lease-namespace`, and its internal endpoint is the `ebb.keda.sh/internal-address`
//! annotation it writes there. The Leases are listed every `refresh` period and again at once
//! when a query finds no holder, an unreachable one or one answering `NotLeader` (the shard has
//! just moved), up to [`crate::link::VALUE_ATTEMPTS`] tries. The connection to each address
//! verifies the operator's certificate for `--operator-url`'s host name, as the Service path does.
//! An expired Lease (its holder died) names no holder.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ebb_api::internal::{MetricValue, ValueError};
use ebb_api::shard::{INTERNAL_ADDRESS_ANNOTATION, shard_lease_name, shard_of};
use ebb_plumbing::internal_client::{ClientError, InternalClient};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams};

/// Where the shard Leases are and how to reach their holders.
#[derive(Clone, Debug)]
pub struct RouterConfig {
    pub shards: u32,
    pub lease_namespace: String,
    pub lease_name: String,
    /// `--operator-url`: the host name certificates are verified for.
    pub url: String,
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// Bound on one query.
    pub timeout: Duration,
    /// Pause before the first retry; doubled before the next.
    pub backoff: Duration,
}

/// The holders of the shards and a client per holder address.
#[derive(Debug)]
pub struct ShardRouter {
    cfg: RouterConfig,
    api: Api<Lease>,
    /// Per shard: the holder's address and when its Lease expires (ms since the epoch).
    holders: Mutex<Vec<Option<(String, i64)>>>,
    clients: Mutex<HashMap<String, Arc<InternalClient>>>,
}

/// The holder address and expiry of a shard Lease, if it has a holder and an address.
pub fn holder_of(lease: &Lease) -> Option<(String, i64)> {
    let spec = lease.spec.as_ref()?;
    if spec.holder_identity.as_deref().unwrap_or_default().is_empty() {
        return None;
    }
    let address = lease.metadata.annotations.as_ref()?.get(INTERNAL_ADDRESS_ANNOTATION)?.clone();
    let last = spec.renew_time.as_ref().or(spec.acquire_time.as_ref())?;
    let seconds = i64::from(spec.lease_duration_seconds.unwrap_or(0));
    Some((address, last.0.as_millisecond().saturating_add(seconds.saturating_mul(1000))))
}

impl ShardRouter {
    pub fn new(client: kube::Client, cfg: RouterConfig) -> Self {
        let api = Api::namespaced(client, &cfg.lease_namespace);
        let holders = Mutex::new(vec![None; cfg.shards as usize]);
        Self { cfg, api, holders, clients: Mutex::default() }
    }

    /// Reads the shard Leases again.
    pub async fn refresh(&self) -> Result<(), kube::Error> {
        let leases = self.api.list(&ListParams::default()).await?.items;
        let fresh: Vec<Option<(String, i64)>> = (0..self.cfg.shards)
            .map(|k| {
                let name = shard_lease_name(&self.cfg.lease_name, k);
                leases.iter().find(|l| l.metadata.name.as_deref() == Some(name.as_str())).and_then(holder_of)
            })
            .collect();
        *self.holders.lock().unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(())
    }

    /// Refreshes every `period` until `shutdown`.
    pub async fn run(self: Arc<Self>, period: Duration, shutdown: impl Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            if let Err(e) = self.refresh().await {
                tracing::warn!(namespace = %self.cfg.lease_namespace, error = %e, "cannot list the operator's shard leases");
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(period) => {}
            }
        }
    }

    /// The address of the holder of shard `k`, if its Lease is valid now.
    pub fn holder(&self, k: u32) -> Option<String> {
        let now = Timestamp::now().as_millisecond();
        let holders = self.holders.lock().unwrap_or_else(PoisonError::into_inner);
        holders.get(k as usize)?.as_ref().filter(|(_, expires)| *expires >= now).map(|(a, _)| a.clone())
    }

    /// The distinct addresses of the current holders.
    pub fn addresses(&self) -> Vec<String> {
        let mut all: Vec<String> = (0..self.cfg.shards).filter_map(|k| self.holder(k)).collect();
        all.sort();
        all.dedup();
        all
    }

    fn client(&self, address: &str) -> Result<Arc<InternalClient>, ClientError> {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = clients.get(address) {
            return Ok(c.clone());
        }
        let c = InternalClient::from_files(
            &self.cfg.url,
            &self.cfg.ca_file,
            &self.cfg.cert_file,
            &self.cfg.key_file,
            self.cfg.timeout,
        )?
        .connect_to(address)?;
        let c = Arc::new(c);
        // Holders come and go (Pod IPs change): keep the clients of current holders only.
        if clients.len() >= 4 * self.cfg.shards as usize {
            clients.clear();
        }
        clients.insert(address.to_owned(), c.clone());
        Ok(c)
    }

    /// The value of `metric` of `namespace/scaled_object` from the holder of its shard.
    pub async fn metric_value(
        &self,
        namespace: &str,
        scaled_object: &str,
        metric: &str,
    ) -> Result<MetricValue, ValueError> {
        let k = shard_of(namespace, scaled_object, self.cfg.shards);
        let mut last = ValueError::NotLeader;
        let mut pause = self.cfg.backoff;
        for attempt in 0..crate::link::VALUE_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(pause).await;
                pause *= 2;
                if let Err(e) = self.refresh().await {
                    tracing::warn!(error = %e, "cannot list the operator's shard leases");
                }
            }
            let Some(address) = self.holder(k) else {
                last = ValueError::NotLeader;
                continue;
            };
            let client = self.client(&address).map_err(|e| ValueError::Internal(e.to_string()))?;
            match client.metric_value(namespace, scaled_object, metric).await {
                Err(e @ (ValueError::NotLeader | ValueError::Unreachable(_))) => {
                    tracing::debug!(shard = k, %address, error = %e, "shard holder did not answer; looking again");
                    last = e;
                }
                other => return other,
            }
        }
        // One replica being gone is not the whole operator being unreachable: a shard without
        // a reachable holder answers like a leader change (503).
        Err(match last {
            ValueError::Unreachable(_) => ValueError::NotLeader,
            other => other,
        })
    }

    /// The health check: at least one holder is known and every holder answers.
    pub async fn check(&self) -> Result<(), ValueError> {
        let addresses = self.addresses();
        if addresses.is_empty() {
            return Err(ValueError::Unreachable(format!(
                "no operator replica holds a shard Lease {}-shard-* in namespace {}",
                self.cfg.lease_name, self.cfg.lease_namespace
            )));
        }
        let mut answered = false;
        let mut failure = None;
        for address in addresses {
            let client = self.client(&address).map_err(|e| ValueError::Internal(e.to_string()))?;
            match client.check().await {
                Ok(_) => answered = true,
                Err(e) => failure = Some(format!("{address}: {e}")),
            }
        }
        match (answered, failure) {
            (true, _) => Ok(()),
            (false, why) => Err(ValueError::Unreachable(why.unwrap_or_default())),
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};

    use super::*;

    #[test]
    fn a_holder_needs_an_identity_and_an_address() {
        let now = Timestamp::now();
        let lease = |holder: &str, address: Option<&str>| Lease {
            metadata: ObjectMeta {
                name: Some("ebb-operator-shard-0".into()),
                annotations: address.map(|a| [(INTERNAL_ADDRESS_ANNOTATION.to_owned(), a.to_owned())].into()),
                ..Default::default()
            },
            spec: Some(k8s_openapi::api::coordination::v1::LeaseSpec {
                holder_identity: Some(holder.into()),
                renew_time: Some(MicroTime(now)),
                lease_duration_seconds: Some(3),
                ..Default::default()
            }),
        };
        let (address, expires) = holder_of(&lease("a", Some("10.0.0.1:9666"))).unwrap();
        assert_eq!(address, "10.0.0.1:9666");
        assert_eq!(expires, now.as_millisecond() + 3000);
        assert_eq!(holder_of(&lease("", Some("10.0.0.1:9666"))), None, "released");
        assert_eq!(holder_of(&lease("a", None)), None, "no address");
    }
}
