//! Heap allocations per scale-loop tick in steady state: a cron ScaledObject whose window is
//! closed, its target's replicas in the watch cache and its status already written, so a tick
//! measures, decides "nothing to do" and writes nothing. At 10,000 objects polled every second
//! each allocation per tick is 10,000 allocations a second (CPU, and fragmentation of the
//! allocator's arenas), so the loop is held to a few.
//!
//! The counting allocator (dhat's, in testing mode) is this test binary's own global allocator;
//! the test runs on a current-thread runtime, so no other task allocates while it counts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::Duration;

use ebb_api::ScaledObject;
use ebb_operator::context::{LoopContext, StatusModel};
use ebb_operator::scaleloop::{self, Shared};
use ebb_operator::target::Target;

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

/// Heap blocks allocated by `f` (dhat counts a reallocation as one).
async fn allocations<F: std::future::Future<Output = ()>>(f: F) -> u64 {
    let before = dhat::HeapStats::get().total_blocks;
    f.await;
    dhat::HeapStats::get().total_blocks - before
}

/// A cron ScaledObject whose window (03:00–03:05 UTC, or 15:00–15:05 around 03:00) is closed now.
fn closed_cron(name: &str) -> ScaledObject {
    let hour = if chrono::Utc::now().format("%H").to_string() == "03" { 15 } else { 3 };
    serde_json::from_value(serde_json::json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": "apps", "uid": "u-1", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"scaleTargetRef": {"name": format!("{name}-app")}, "pollingInterval": 1,
            "minReplicaCount": 0, "maxReplicaCount": 2,
            "triggers": [{"type": "cron", "metadata": {"timezone": "Etc/UTC",
                "start": format!("0 {hour} * * *"), "end": format!("5 {hour} * * *"), "desiredReplicas": "1"}}]}}))
    .unwrap()
}

/// A loop context whose API accepts every request, answering with `so`; counts the requests.
fn accepting_api(so: &ScaledObject, requests: Arc<std::sync::atomic::AtomicUsize>) -> Arc<LoopContext> {
    let body = serde_json::to_vec(so).unwrap();
    let svc = tower::service_fn(move |_req: http::Request<kube::client::Body>| {
        requests.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let body = body.clone();
        async move {
            Ok::<_, std::convert::Infallible>(
                http::Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(kube::client::Body::from(body))
                    .unwrap(),
            )
        }
    });
    let client = kube::Client::new(svc, "apps");
    let args = <ebb_operator::Args as clap::Parser>::try_parse_from(["ebb-operator"]).unwrap();
    let metrics =
        ebb_operator::metrics::Metrics::register(&mut prometheus_client::registry::Registry::default());
    let reporter = kube::runtime::events::Reporter { controller: "test".into(), instance: None };
    let leadership = ebb_operator::leader::Leadership::always();
    ebb_operator::context(&args, client, metrics, reporter, leadership).unwrap().core.clone()
}

fn deployment(name: &str) -> Target {
    let gvk = kube::api::GroupVersionKind::gvk("apps", "v1", "Deployment");
    Target {
        resource: kube::api::ApiResource::from_gvk_with_plural(&gvk, "deployments"),
        gvkr: ebb_api::GroupVersionKindResource {
            group: "apps".into(),
            version: "v1".into(),
            kind: "Deployment".into(),
            resource: "deployments".into(),
        },
        name: name.into(),
    }
}

/// Most allocations one steady-state tick may make (the lateness sample and the tick): what is
/// left is the copy of the status model the pure step decides on, the decision's explanation,
/// and the per-poll futures and lists.
const MAX_ALLOCATIONS_PER_TICK: u64 = 40;

#[tokio::test(flavor = "current_thread")]
async fn a_steady_state_tick_allocates_next_to_nothing() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let so = closed_cron("steady");
    let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let cx = accepting_api(&so, requests.clone());
    let parsed = ebb_scalers::parse_scaled_object(&so, &ebb_scalers::ParseContext::default()).unwrap();
    let target = deployment("steady-app");
    cx.replicas.set(&target, "apps", 0);
    let triggers = parsed.triggers.iter().map(|t| (t.clone(), t.config.build().unwrap())).collect();
    let shared = Shared::new(Arc::new(so), triggers, None);
    let model = StatusModel::default();
    // The loop's body for one scheduled tick: the lateness sample, then the tick.
    let tick = || async {
        cx.metrics.record_loop_lateness("apps", "steady", Duration::from_micros(300));
        scaleloop::run_tick(&cx, &model, &shared, &target).await;
    };
    // Warm up: the first tick writes the status; later ones write nothing.
    for _ in 0..3 {
        tick().await;
    }
    let writes = requests.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(writes, 1, "only the first tick writes (its status)");
    const TICKS: u64 = 100;
    let total = allocations(async {
        for _ in 0..TICKS {
            tick().await;
        }
    })
    .await;
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), writes, "steady ticks make no request");
    let per_tick = total as f64 / TICKS as f64;
    println!("allocations per steady-state tick: {per_tick:.1}");
    assert!(
        total <= MAX_ALLOCATIONS_PER_TICK * TICKS,
        "{per_tick:.1} allocations per steady-state tick, at most {MAX_ALLOCATIONS_PER_TICK} expected"
    );
}
