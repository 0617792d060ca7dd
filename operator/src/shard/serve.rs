//! The program with `--shards` above 1: the admin server, the certificate management and the
//! internal endpoint as in `serve`, then one leader-only client, one [`Ctx`] and one
//! `run_while_leader` per shard, each following its shard's channel from [`super::manager`].
//! All shards' clients share one token bucket and one in-flight limit; the Leases are written
//! through `lease_client`, outside them.
//!
//! [`Ctx`]: crate::context::Ctx

use std::sync::Arc;
use std::time::Duration;

use ebb_plumbing::shutdown::Shutdown;
use kube::Client;
use tokio_util::task::AbortOnDropHandle;

use super::ShardFilter;
use super::manager::{self, ShardConfig};
use crate::{Args, NAME, internal, leader, throttle, values};

/// The address written on the shard Leases: `--internal-advertise-address`, else `--pod-ip`
/// (`POD_IP`) with the internal port, else `--internal-addr` unless it is unspecified.
pub fn advertise_address(args: &Args) -> anyhow::Result<String> {
    if let Some(a) = &args.sharding.internal_advertise_address {
        return Ok(a.clone());
    }
    let port = args.internal_addr.port();
    if let Some(ip) = args.sharding.pod_ip {
        return Ok(std::net::SocketAddr::new(ip, port).to_string());
    }
    if !args.internal_addr.ip().is_unspecified() {
        return Ok(args.internal_addr.to_string());
    }
    anyhow::bail!(
        "--shards {}: set --internal-advertise-address or --pod-ip (POD_IP) so the metrics API server can reach this \
         replica; --internal-addr {} is unspecified",
        args.sharding.shards,
        args.internal_addr
    )
}

/// A leader-only client for one shard over `base`, sharing `throttle` and `in_flight`.
fn shard_client(
    base: &Client,
    throttle: &throttle::Throttle,
    in_flight: &tower::limit::GlobalConcurrencyLimitLayer,
    leadership: &leader::Leadership,
) -> Client {
    let svc = tower::ServiceBuilder::new()
        .layer(in_flight.clone())
        .layer(throttle.clone())
        .layer(leader::gate::LeaderOnlyLayer::new(leadership.clone()))
        .service(leader::gate::Via(base.clone()));
    Client::new(svc, base.default_namespace().to_owned()).with_valid_until(*base.valid_until())
}

/// Runs the sharded program until `shutdown` is requested.
pub async fn serve(
    args: Args,
    client: Client,
    lease_client: Client,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let shards = args.sharding.shards;
    if !args.leader_elect {
        anyhow::bail!("--shards {shards} needs leader election (--leader-elect=true)");
    }
    let address = advertise_address(&args)?;
    let (mut server, metrics, reporter) = crate::start_up(&args).await;
    let readiness = server.readiness.clone();

    let throttle = throttle::Throttle::new(args.kube_api_qps, args.kube_api_burst);
    let in_flight = tower::limit::GlobalConcurrencyLimitLayer::new(args.kube_api_max_in_flight as usize);
    let api = Client::new(
        tower::ServiceBuilder::new()
            .layer(in_flight.clone())
            .layer(throttle.clone())
            .service(leader::gate::Via(client.clone())),
        client.default_namespace().to_owned(),
    )
    .with_valid_until(*client.valid_until());

    let mut senders = Vec::new();
    let mut per_shard = Vec::new();
    for k in 0..shards {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let leadership = leader::Leadership::new(rx.clone());
        let leader_only = shard_client(&client, &throttle, &in_flight, &leadership);
        let ctx = Arc::new(crate::context(
            &args,
            leader_only.clone(),
            metrics.clone(),
            reporter.clone(),
            leadership,
        )?);
        senders.push(tx);
        per_shard.push((k, rx, leader_only, ctx));
    }

    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    let identity = std::env::var("HOSTNAME")
        .map(|h| format!("{h}_{}_{nanos:x}", std::process::id()))
        .unwrap_or_else(|_| format!("{NAME}-{}-{nanos:x}", std::process::id()));
    let cfg = ShardConfig {
        leader: leader::LeaderConfig {
            lease_duration: args.lease_duration,
            renew_deadline: args.renew_deadline,
            retry_period: args.retry_period,
            ..leader::LeaderConfig::new(args.operator_namespace.clone(), args.lease_name.clone(), identity)
        },
        shards,
        internal_address: address,
    };
    tracing::info!(shards, identity = %cfg.leader.identity, address = %cfg.internal_address, "sharded operator");
    let mut election =
        Some(AbortOnDropHandle::new(tokio::spawn(manager::run(lease_client, cfg, senders, shutdown.wait()))));

    let mut tasks = Vec::new();
    tasks.extend(crate::start_certificates(&args, &api, &reporter, &mut server, &shutdown)?);
    if let Some(cfg) = crate::internal_config(&args)? {
        let sources = per_shard
            .iter()
            .map(|(_, rx, _, ctx)| (values::LoopValues::new(ctx, rx.clone()), rx.clone()))
            .collect();
        tasks.push(AbortOnDropHandle::new(
            internal::start(cfg, super::sharded_values(sources), shutdown.wait()).await?,
        ));
    }

    let runs = per_shard.into_iter().map(|(k, rx, leader_only, ctx)| {
        let mut shard_args = args.clone();
        shard_args.sharding.filter = Some(ShardFilter { shard: k, shards });
        crate::run_while_leader(shard_args, leader_only, ctx, rx, readiness.clone(), shutdown.clone())
    });
    let scaling = futures::future::join_all(runs);
    let admin = server.serve_admin(args.common.admin_addr, &shutdown, |_| {});
    let result = tokio::select! {
        r = admin => r,
        _ = scaling => Ok(()),
    };
    drop(tasks);
    if let Some(mut e) = election.take()
        && shutdown.is_requested()
    {
        let _ = tokio::time::timeout(args.renew_deadline + Duration::from_secs(1), &mut e).await;
    }
    result?;
    Ok(())
}
