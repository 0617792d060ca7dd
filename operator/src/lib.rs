//! `ebb-operator`: reconciles ScaledObjects into HorizontalPodAutoscalers and runs the scale
//! loop. This module owns the program's flags ([`Args`]) and its lifecycle ([`run`]): logging,
//! signals, the Kubernetes client, the ScaledObject controller (with its reflector-backed
//! readiness), the clients (the leader-only, throttled one the controller and loops use; the
//! throttled one every replica uses; the Lease's own), the release of loops of deleted objects,
//! and the admin server (`/livez`, `/readyz`, `/metrics`) that runs until SIGTERM/SIGINT; with
//! `--manage-certificates`, also the certificate management ([`certs`]) on every replica. Every
//! task it starts is aborted when its handle drops, so dropping [`serve`] stops them all (the
//! scale loops with the [`context::Ctx`] that alone owns them).

pub mod auth;
pub mod auth_watch;
pub mod certs;
pub mod composite;
pub mod context;
pub mod egress;
pub mod error;
pub mod events;
pub mod fallback;
pub mod hpa;
pub mod hpa_active;
pub mod internal;
pub mod leader;
pub mod metrics;
pub mod reconcile;
pub mod replicas;
pub mod scaleloop;
pub mod shard;
pub mod status;
pub mod target;
pub mod throttle;
pub mod time;
pub mod trim;
pub mod values;
pub mod watch_scope;

use std::sync::Arc;
use std::time::Duration;

use ebb_api::ScaledObject;
use ebb_plumbing::args::CommonArgs;
use ebb_plumbing::server::{self, Server};
use ebb_plumbing::shutdown::Shutdown;
use futures::StreamExt;
use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::{Controller, WatchStreamExt, reflector, watcher};
use tokio_util::task::AbortOnDropHandle;

use crate::context::{Config, Ctx, LoopContext};
use crate::watch_scope::WatchScope;

/// Program name, used in logs and as the `name` label of `keda_build_info`.
pub const NAME: &str = "ebb-operator";

/// Program version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Command-line flags; each can also be set through the environment variable named in
/// `--help`.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = NAME, version, about = "ebb operator: reconciles ScaledObjects into HorizontalPodAutoscalers and runs the scale loop")]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Only watch these namespaces: a comma-separated list, as KEDA takes it (entries trimmed,
    /// empty ones ignored); unset or empty, all namespaces. Every watch of the operator
    /// (ScaledObjects, their HPAs, TriggerAuthentications, the replica cache) covers exactly
    /// these namespaces.
    #[arg(long, env = "WATCH_NAMESPACE", value_parser = WatchScope::parse, default_value = "", hide_default_value = true)]
    pub watch_namespace: WatchScope,
    /// Only watch ScaledObjects matching this label selector.
    #[arg(long, env = "EBB_LABEL_SELECTOR")]
    pub label_selector: Option<String>,
    /// Bound on each trigger query.
    #[arg(long, env = "EBB_SCALER_TIMEOUT", default_value = "3s", value_parser = humantime::parse_duration)]
    pub scaler_timeout: Duration,
    /// Bound on each Kubernetes API call of the scale loop (`/scale` read and write, status
    /// write); a call that takes longer is abandoned, counted, and made again by a later poll.
    #[arg(long, env = "EBB_WRITE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub write_timeout: Duration,
    /// Namespace the operator runs in (its Lease; ClusterTriggerAuthentication secrets).
    #[arg(long, env = "POD_NAMESPACE", default_value = "keda")]
    pub operator_namespace: String,
    /// Elect a leader among replicas with a coordination.k8s.io Lease; only the leader scales.
    /// `--leader-elect` alone (as KEDA's manifests pass it) means `true`.
    #[arg(long, env = "EBB_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub leader_elect: bool,
    /// Name of the leader-election Lease.
    #[arg(long, env = "EBB_LEASE_NAME", default_value = "ebb-operator")]
    pub lease_name: String,
    /// This replica's Pod (in --operator-namespace). The replica that serves metric values labels
    /// it `ebb.keda.sh/leader=true`, which Service ebb-operator selects; unset: no label.
    #[arg(long, env = "POD_NAME")]
    pub pod_name: Option<String>,
    #[arg(long, env = "EBB_LEASE_DURATION", default_value = "15s", value_parser = humantime::parse_duration)]
    pub lease_duration: Duration,
    #[arg(long, env = "EBB_RENEW_DEADLINE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub renew_deadline: Duration,
    #[arg(long, env = "EBB_RETRY_PERIOD", default_value = "2s", value_parser = humantime::parse_duration)]
    pub retry_period: Duration,
    /// Address of the internal metrics service (mTLS) the metrics API server queries.
    #[arg(long, env = "EBB_INTERNAL_ADDR", default_value = "0.0.0.0:9666")]
    pub internal_addr: std::net::SocketAddr,
    /// Serving certificate of the internal service; without the three files it is disabled.
    #[arg(long, env = "EBB_INTERNAL_CERT_FILE")]
    pub internal_cert_file: Option<std::path::PathBuf>,
    #[arg(long, env = "EBB_INTERNAL_KEY_FILE")]
    pub internal_key_file: Option<std::path::PathBuf>,
    /// CA that client certificates of the internal service must chain to.
    #[arg(long, env = "EBB_INTERNAL_CLIENT_CA_FILE")]
    pub internal_client_ca_file: Option<std::path::PathBuf>,
    /// Kubernetes API requests per second, sustained (0 disables client-side throttling).
    #[arg(long, env = "EBB_KUBE_API_QPS", default_value_t = DEFAULT_QPS)]
    pub kube_api_qps: f64,
    /// Kubernetes API requests that may be sent at once above the sustained rate.
    #[arg(long, env = "EBB_KUBE_API_BURST", default_value_t = DEFAULT_BURST)]
    pub kube_api_burst: u32,
    /// Kubernetes API requests in flight at once (watch streams count only until their headers
    /// arrive). Bounds the connections, and their buffers, a burst can open.
    #[arg(long, env = "EBB_KUBE_API_MAX_IN_FLIGHT", default_value_t = DEFAULT_MAX_IN_FLIGHT, value_parser = clap::value_parser!(u32).range(1..))]
    pub kube_api_max_in_flight: u32,
    #[command(flatten)]
    pub auth: auth::AuthArgs,
    #[command(flatten)]
    pub certificates: certs::CertificateArgs,
    #[command(flatten)]
    pub egress: egress::EgressArgs,
    #[command(flatten)]
    pub sharding: shard::ShardArgs,
}

/// Reconciles running at once (KEDA runs 5 per controller by default). Unbounded, every object
/// reconciled at start holds its reconcile's state (and an entry of the controller's table of
/// running reconciles, which never shrinks) while it waits for the client's throttle; 128 made
/// the start of 10,000 objects twice as slow (the loops' first status writes share the throttle).
pub const MAX_CONCURRENT_RECONCILES: u16 = 1024;

/// Default `--kube-api-max-in-flight`.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 64;

/// Default `--kube-api-qps`: high enough that 1,000 new ScaledObjects (about four requests each)
/// are reconciled in seconds, low enough not to flood an API server's priority levels.
pub const DEFAULT_QPS: f64 = 500.0;
/// Default `--kube-api-burst`.
pub const DEFAULT_BURST: u32 = 1000;

/// Sets up logging and signal handling, then runs until SIGTERM or SIGINT.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let shutdown = server::start(&args.common)?;
    let built = async { Ok::<_, kube::Error>((client(&args).await?, client(&args).await?)) };
    let (client, lease_client) = built
        .await
        .map_err(|e| anyhow::anyhow!("cannot build a Kubernetes client (KUBECONFIG or in-cluster): {e}"))?;
    serve_with_lease_client(args, client, lease_client, shutdown).await
}

/// A Kubernetes client from KUBECONFIG or the in-cluster configuration, with a connection pool of
/// its own. [`serve`] throttles the controller's requests on top of it (`--kube-api-qps`,
/// `--kube-api-burst`, `--kube-api-max-in-flight`); Lease renewals bypass that throttle.
pub async fn client(_args: &Args) -> Result<Client, kube::Error> {
    let config = kube::Config::infer().await.map_err(kube::Error::InferConfig)?;
    Client::try_from(config)
}

/// The clients `serve` derives from the one it is given: `api` for what every replica does
/// (certificates, its Pod's label) and `leader_only` for the controller and the scale loops,
/// which refuses writes while this replica does not lead. Both share one token bucket and one
/// in-flight limit, each has a request queue of its own, and both send over `base`'s connections.
fn derived_clients(args: &Args, base: &Client, leadership: &leader::Leadership) -> (Client, Client) {
    let throttle = throttle::Throttle::new(args.kube_api_qps, args.kube_api_burst);
    let in_flight = tower::limit::GlobalConcurrencyLimitLayer::new(args.kube_api_max_in_flight as usize);
    let ns = base.default_namespace().to_owned();
    let api = tower::ServiceBuilder::new()
        .layer(in_flight.clone())
        .layer(throttle.clone())
        .service(leader::gate::Via(base.clone()));
    let leader_only = tower::ServiceBuilder::new()
        .layer(in_flight)
        .layer(throttle)
        .layer(leader::gate::LeaderOnlyLayer::new(leadership.clone()))
        .service(leader::gate::Via(base.clone()));
    let valid_until = *base.valid_until();
    (
        Client::new(api, ns.clone()).with_valid_until(valid_until),
        Client::new(leader_only, ns).with_valid_until(valid_until),
    )
}

/// Runs the program with `client` until `shutdown` is requested; logging must already be set up.
/// Lease renewals share `client`'s connections but not the controller's throttle or queue.
pub async fn serve(args: Args, client: Client, shutdown: Shutdown) -> anyhow::Result<()> {
    serve_with_lease_client(args, client.clone(), client, shutdown).await
}

/// [`serve`], renewing the leader Lease through `lease_client` (a client of its own in the
/// program, so renewals never wait for the controller's traffic).
pub async fn serve_with_lease_client(
    args: Args,
    client: Client,
    lease_client: Client,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    if args.sharding.shards > 1 {
        return shard::serve(args, client, lease_client, shutdown).await;
    }
    let (mut server, metrics, reporter) = start_up(&args).await;
    let readiness = server.readiness.clone();
    let (leader_tx, leader_rx) = tokio::sync::watch::channel(!args.leader_elect);
    let leadership = leader::Leadership::new(leader_rx.clone());
    let (client, leader_only) = derived_clients(&args, &client, &leadership);
    // Dropping `serve` (its task aborted) stops every loop and task it started, as a crash would:
    // the loops are owned by `ctx` alone (their tasks hold none of it), every task is aborted
    // with its handle.
    let ctx = Arc::new(context(&args, leader_only.clone(), metrics, reporter.clone(), leadership)?);
    let mut tasks = Vec::new();
    let mut election = None;
    // Spawned before the election: on shutdown the election waits for the label's removal and
    // only then releases the Lease.
    let pod_label = args.pod_name.clone().map(|pod| {
        let cfg = leader::podlabel::PodLabelConfig {
            namespace: args.operator_namespace.clone(),
            pod,
            stop_timeout: args.renew_deadline / 4,
        };
        leader::podlabel::PodLabel::spawn(client.clone(), cfg, leader_rx.clone(), shutdown.wait())
    });
    if args.leader_elect {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        // Unique even for several instances in one process sharing a HOSTNAME.
        let identity = std::env::var("HOSTNAME")
            .map(|h| format!("{h}_{}_{nanos:x}", std::process::id()))
            .unwrap_or_else(|_| format!("{NAME}-{}-{nanos:x}", std::process::id()));
        let cfg = leader::LeaderConfig {
            lease_duration: args.lease_duration,
            renew_deadline: args.renew_deadline,
            retry_period: args.retry_period,
            ..leader::LeaderConfig::new(args.operator_namespace.clone(), args.lease_name.clone(), identity)
        };
        let label_removed = pod_label.as_ref().map(leader::podlabel::PodLabel::finished);
        let stop = shutdown.wait();
        let stop = async move {
            stop.await;
            if let Some(removed) = label_removed {
                removed.await;
            }
        };
        let task = tokio::spawn(leader::run(lease_client.clone(), cfg, leader_tx, stop));
        election = Some(AbortOnDropHandle::new(task));
    }
    tasks.extend(start_certificates(&args, &client, &reporter, &mut server, &shutdown)?);
    if let Some(cfg) = internal_config(&args)? {
        let source = Arc::new(values::LoopValues::new(&ctx, leader_rx.clone()));
        tasks.push(AbortOnDropHandle::new(internal::start(cfg, source, shutdown.wait()).await?));
    }
    let scaling =
        run_while_leader(args.clone(), leader_only, ctx.clone(), leader_rx, readiness, shutdown.clone());
    let admin = server.serve_admin(args.common.admin_addr, &shutdown, |_| {});
    // The admin server failing (e.g. its port is taken) ends the program at once.
    let result = tokio::select! {
        r = admin => r,
        () = scaling => Ok(()),
    };
    drop(tasks);
    // On shutdown the election releases the Lease (bounded by the renew deadline) so a follower
    // takes over at once; let it finish.
    if let Some(mut e) = election.take()
        && shutdown.is_requested()
    {
        let _ = tokio::time::timeout(args.renew_deadline + Duration::from_secs(1), &mut e).await;
    }
    if let Some(label) = &pod_label
        && shutdown.is_requested()
    {
        let _ = tokio::time::timeout(args.renew_deadline, label.finished()).await;
    }
    result?;
    Ok(())
}

/// The operator's shared state for `args`: `leader_only` is the controller's client (writes
/// refused while not leading), `leadership` what the election publishes.
pub fn context(
    args: &Args,
    leader_only: Client,
    metrics: metrics::Metrics,
    reporter: Reporter,
    leadership: leader::Leadership,
) -> anyhow::Result<Ctx> {
    Ok(Ctx::new(LoopContext {
        client: leader_only.clone(),
        config: Config {
            scaler_timeout: args.scaler_timeout,
            operator_namespace: args.operator_namespace.clone(),
            write_timeout: args.write_timeout,
            auth: auth::AuthPolicy::from_args(&args.auth, &args.operator_namespace)
                .map_err(anyhow::Error::msg)?,
        },
        metrics,
        recorder: events::EventRecorder::new(leader_only, reporter),
        replicas: Default::default(),
        leader: leadership,
    }))
}

/// What every way of serving sets up first: the egress policy, the admin server (not ready until
/// the first ScaledObject list), the operator's metrics and the reporter its events carry.
pub(crate) async fn start_up(args: &Args) -> (Server, metrics::Metrics, Reporter) {
    tracing::info!("{}", egress::install(&args.egress).await);
    let mut server = Server::new(NAME, VERSION);
    let metrics = metrics::Metrics::register(&mut server.registry);
    server.readiness.set_not_ready("waiting for the first ScaledObject list");
    let instance = std::env::var("HOSTNAME").unwrap_or_else(|_| format!("{NAME}-{}", std::process::id()));
    (server, metrics, Reporter { controller: NAME.into(), instance: Some(instance) })
}

/// With `--manage-certificates`, starts the certificate management (on every replica, sharded
/// or not) and returns its task.
pub(crate) fn start_certificates(
    args: &Args,
    client: &Client,
    reporter: &Reporter,
    server: &mut Server,
    shutdown: &Shutdown,
) -> anyhow::Result<Option<AbortOnDropHandle<()>>> {
    if !args.certificates.manage_certificates {
        return Ok(None);
    }
    let cfg = certs::CertConfig::from_args(&args.certificates, &args.operator_namespace)
        .map_err(|e| anyhow::anyhow!("certificate management: {e}"))?;
    let manager = certs::CertManager::new(client.clone(), cfg)
        .with_recorder(Recorder::new(client.clone(), reporter.clone()))
        .with_metrics(certs::CertMetrics::register(&mut server.registry));
    Ok(Some(AbortOnDropHandle::new(tokio::spawn(manager.run(shutdown.wait())))))
}

/// The internal metrics service's settings, when its three certificate files are given;
/// otherwise `None`, with a warning that it is disabled.
pub(crate) fn internal_config(args: &Args) -> anyhow::Result<Option<internal::InternalServerConfig>> {
    let (Some(cert_file), Some(key_file), Some(client_ca_file)) = (
        args.internal_cert_file.clone(),
        args.internal_key_file.clone(),
        args.internal_client_ca_file.clone(),
    ) else {
        tracing::warn!(
            "internal metrics service disabled: set --internal-cert-file, --internal-key-file and --internal-client-ca-file"
        );
        return Ok(None);
    };
    Ok(Some(internal::InternalServerConfig {
        addr: args.internal_addr,
        cert_file,
        key_file,
        client_ca_file,
        client_names: certs::internal_client_names(&args.certificates).map_err(anyhow::Error::msg)?,
    }))
}

/// Runs the controller whenever this replica leads; on losing leadership the controller and
/// every loop stop at once.
pub(crate) async fn run_while_leader(
    args: Args,
    client: Client,
    ctx: Arc<Ctx>,
    mut leader: tokio::sync::watch::Receiver<bool>,
    readiness: ebb_plumbing::admin::Readiness,
    shutdown: Shutdown,
) {
    loop {
        if !*leader.borrow() {
            readiness.set_ready();
            tokio::select! {
                _ = shutdown.wait() => return,
                r = leader.changed() => if r.is_err() { return },
            }
            continue;
        }
        tracing::info!(watching = %args.watch_namespace, "leading: starting the ScaledObject controller");
        readiness.set_not_ready("leading: waiting for the first ScaledObject list");
        let mut wc = watcher::Config::default();
        if let Some(sel) = &args.label_selector {
            wc = wc.labels(sel);
        }
        let hpa_wc = watcher::Config::default().labels(&format!(
            "{}={}",
            ebb_api::constants::LABEL_MANAGED_BY,
            ebb_api::constants::MANAGED_BY
        ));
        // As `Controller::new` builds it, over one watch per namespace when there are several.
        let (reader, writer) = reflector::store::<ScaledObject>();
        let sos = shard::filter_events(
            args.watch_namespace.watch(&client, &wc, reader.clone()),
            args.sharding.filter,
        );
        let controller = Controller::for_stream(
            reflector(
                writer,
                sos.modify({
                    let ctx = ctx.clone();
                    move |so| {
                        trim::scaled_object(so);
                        let (ns, name) = (so.metadata.namespace.as_deref(), so.metadata.name.as_deref());
                        let modelled = ctx.modelled(ns.unwrap_or_default(), name.unwrap_or_default());
                        trim::status_once_modelled(so, modelled);
                    }
                }),
            )
            .applied_objects(),
            reader.clone(),
        )
        .with_config(kube::runtime::controller::Config::default().concurrency(MAX_CONCURRENT_RECONCILES));
        let stop = shutdown.clone();
        // Changed authentications, Secrets and ConfigMaps reconcile the objects using them.
        let (auth_changes, auth_task) = auth_watch::start(ctx.clone(), args.watch_namespace.clone());
        let _auth_watch = AbortOnDropHandle::new(auth_task);
        // The owned HPAs' watch also fills the store their `ScalingActive` is read from
        // (`hpa_active`): one watch, whole objects rather than metadata, for their status; each
        // stored HPA (and ScaledObject) is trimmed to what is read of it (`trim`).
        let (hpa_store, hpa_writer) = reflector::store();
        let hpas = shard::filter_events(
            args.watch_namespace.watch::<trim::OwnedHpa>(&client, &hpa_wc, hpa_store.clone()),
            args.sharding.filter,
        );
        ctx.hpas.set(hpa_store);
        let hpa_events = reflector(hpa_writer, hpas.modify(trim::hpa)).default_backoff().touched_objects();
        let run = controller
            .owns_stream(hpa_events)
            .reconcile_on(auth_changes)
            .graceful_shutdown_on(async move { stop.wait().await })
            .run(reconcile::reconcile_boxed, reconcile::error_policy, ctx.clone())
            .for_each(|_| async {});
        let ready_reader = reader.clone();
        let ready = readiness.clone();
        let ready_task = AbortOnDropHandle::new(tokio::spawn(async move {
            // The store's readiness wakes only its most recent waiter (the controller's own
            // runner also waits on it), so poll it again until it is ready.
            loop {
                match tokio::time::timeout(Duration::from_millis(5), ready_reader.wait_until_ready()).await {
                    Ok(Ok(())) => break ready.set_ready(),
                    Ok(Err(_)) => break,
                    Err(_) => continue,
                }
            }
        }));
        let cleanup = AbortOnDropHandle::new(tokio::spawn(release_deleted(ctx.clone(), reader)));
        let counts = AbortOnDropHandle::new(tokio::spawn(
            ctx.replicas.clone().run(client.clone(), args.watch_namespace.clone()),
        ));
        // On shutdown running reconciles finish; on losing the Lease they are dropped at once
        // (their writes would be refused anyway) and every loop task ends by itself.
        tokio::select! {
            () = run => {}
            () = ctx.leader.lost() => tracing::warn!("leadership lost: reconciles and scale loops stopped at once"),
        }
        drop((ready_task, cleanup, counts));
        ctx.hpas.clear();
        // Not leading any more (or shutting down): release every loop and its connections.
        ctx.forget_all().await;
        if shutdown.is_requested() {
            return;
        }
        tracing::warn!("leadership lost: scale loops stopped");
    }
}

/// Stops loops (and drops their connections) of ScaledObjects that no longer exist.
async fn release_deleted(ctx: Arc<Ctx>, reader: reflector::Store<ScaledObject>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        ctx.recorder.expire();
        let gone: Vec<(String, String)> = {
            // Borrowed names: at 50,000 objects, copying them every second was 100,000 string
            // allocations and a 5 MB table each time.
            let state = reader.state();
            let live: std::collections::HashSet<(&str, &str)> = state
                .iter()
                .map(|so| {
                    (
                        so.metadata.namespace.as_deref().unwrap_or_default(),
                        so.metadata.name.as_deref().unwrap_or_default(),
                    )
                })
                .collect();
            let map = ctx.objects.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            map.keys().filter(|(ns, name)| !live.contains(&(ns.as_str(), name.as_str()))).cloned().collect()
        };
        for (ns, name) in gone {
            if let Some(state) = ctx.forget(&ns, &name) {
                *state.scale_loop.lock().await = None;
                ctx.unregister(&ns, &state);
                ctx.metrics.forget(&ns, &name);
                tracing::info!(namespace = ns, name, "ScaledObject deleted: scale loop stopped");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn flags_are_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn common_flags_parse() {
        // --admin-addr 127.0.0.1:18080, --log-format json and --log-level debug reach args.common.
        let args =
            ebb_plumbing::testing::check_server_flags::<Args>(NAME, &["--scaler-timeout", "5s"], |a| {
                &a.common
            });
        assert_eq!(args.scaler_timeout, Duration::from_secs(5));
    }

    fn leader_elect_of(flags: &[&str]) -> Result<bool, clap::Error> {
        use clap::Parser;
        let argv = std::iter::once(NAME).chain(flags.iter().copied());
        Args::try_parse_from(argv).map(|a| a.leader_elect)
    }

    #[test]
    fn leader_elect_accepts_the_bare_flag_as_keda_manifests_pass_it() {
        // KEDA's manifests pass `--leader-elect` without a value, meaning true.
        assert!(leader_elect_of(&["--leader-elect"]).expect("bare --leader-elect parses"));
        assert!(
            leader_elect_of(&["--leader-elect", "--scaler-timeout", "5s"]).expect("bare flag before another")
        );
        assert!(leader_elect_of(&["--leader-elect=true"]).expect("--leader-elect=true parses"));
        assert!(!leader_elect_of(&["--leader-elect=false"]).expect("--leader-elect=false parses"));
        assert!(!leader_elect_of(&["--leader-elect", "false"]).expect("--leader-elect false parses"));
        assert!(leader_elect_of(&[]).expect("no flag parses"), "leader election is on by default");
        assert!(leader_elect_of(&["--leader-elect=maybe"]).is_err());
    }

    /// `--watch-namespace` / `WATCH_NAMESPACE` takes KEDA's comma-separated list (this replaces
    /// the earlier behaviour of taking one namespace and refusing a list).
    #[test]
    fn watch_namespace_takes_keda_s_comma_separated_list() {
        use clap::Parser;
        use std::collections::BTreeSet;
        let scope = |flags: &[&str]| {
            Args::try_parse_from(std::iter::once(NAME).chain(flags.iter().copied()))
                .map(|a| a.watch_namespace)
        };
        let names =
            |n: &[&str]| WatchScope::Namespaces(n.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>());
        assert_eq!(scope(&["--watch-namespace", "team-a"]).expect("one namespace"), names(&["team-a"]));
        assert_eq!(
            scope(&["--watch-namespace", "team-a, team-b,,team-a"]).expect("a list"),
            names(&["team-a", "team-b"])
        );
        assert_eq!(scope(&[]).expect("unset"), WatchScope::All);
        assert_eq!(scope(&["--watch-namespace", ""]).expect("empty"), WatchScope::All);
        let bad =
            scope(&["--watch-namespace", "team-a,Team_B"]).expect_err("a bad entry is refused at startup");
        let bad = bad.to_string();
        assert!(bad.contains("--watch-namespace") && bad.contains("\"Team_B\""), "{bad}");
    }
}
