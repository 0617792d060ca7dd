//! Upstream's HPA controller is the oracle: the same External-metric series drives
//! kube-controller-manager (upstream Kubernetes, built by `scripts/backends/kubernetes.sh`), the
//! local control plane's HPA controller and ebb's replica calculator (`ebb_scalers::hpa`), with
//! and without `behavior` (the seed behaviours of tests/fixtures/seed among them). Each
//! Deployment's replica timeline on the local control plane and the calculator's must equal
//! upstream's — the same counts in the same order, each change within [`SLACK`] of upstream's.
//!
//! The fake external metrics server (tests/backend) is served to upstream's aggregator through an
//! `ExternalName` Service naming 127.0.0.1, with the APIService's port set to the server's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod backend;
mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backend::Metrics;
use chrono::{TimeDelta, Utc};
use ebb_sandbox::pki::CertAuthority;
use ebb_sandbox::sandbox::Config;
use ebb_scalers::hpa::{HpaCalculator, MetricSample};
use ebb_testbackends::kubernetes::{Options, Upstream};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscaler, HorizontalPodAutoscalerBehavior};
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::{Value, json};

const SYNC: Duration = Duration::from_secs(1);
const METRIC: &str = "s0-queue";
/// AverageValue target of the metric.
const TARGET: f64 = 5.0;
/// How far a change may be from upstream's: one sync period each side, plus the Deployment write.
const SLACK: f64 = 2.5;

/// One run: a Deployment `w` at `replicas`, an HPA with `min`/`max`/`behavior`, and the metric's
/// value set to each `(second, value)` of `series` from the HPA's creation on, for `run_for`.
struct Scenario {
    name: &'static str,
    replicas: i32,
    min: i32,
    max: i32,
    behavior: Option<Value>,
    series: Vec<(u64, f64)>,
    run_for: Duration,
}

fn seed_behavior(file: &str) -> Value {
    let path = format!("{}/../tests/fixtures/seed/{file}", env!("CARGO_MANIFEST_DIR"));
    let doc: Value = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    doc["behavior"].clone()
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "no-behavior",
            replicas: 1,
            min: 1,
            max: 10,
            behavior: None,
            series: vec![(0, 30.0), (12, 0.0)],
            run_for: Duration::from_secs(22),
        },
        Scenario {
            name: "fast-down",
            replicas: 6,
            min: 1,
            max: 10,
            behavior: Some(json!({"scaleDown": {"stabilizationWindowSeconds": 0}})),
            series: vec![(0, 0.0), (8, 100.0)],
            run_for: Duration::from_secs(36),
        },
        Scenario {
            name: "seed-aggressive",
            replicas: 10,
            min: 10,
            max: 1000,
            behavior: Some(seed_behavior("hpa-behavior-aggressive.yaml")),
            series: vec![(0, 1500.0), (32, 250.0)],
            run_for: Duration::from_secs(42),
        },
        Scenario {
            name: "seed-conservative",
            replicas: 2,
            min: 2,
            max: 6,
            behavior: Some(seed_behavior("hpa-behavior-conservative.yaml")),
            series: vec![(0, 30.0)],
            run_for: Duration::from_secs(68),
        },
    ]
}

/// A cluster with the fake metrics server registered as its external metrics API.
struct Plane {
    client: kube::Client,
    metrics: Metrics,
    _backend: backend::Backend,
}

/// `(seconds after the HPA was created, spec.replicas)` at every change, the initial count first.
type Timeline = Vec<(f64, i32)>;

async fn upstream_plane(up: &Upstream) -> Plane {
    let kc = kube::config::Kubeconfig::read_from(up.kubeconfig_path()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let ca = CertAuthority::new("fake-metrics-ca").unwrap();
    let leaf = ca.issue_server(&["ebb-metrics-apiserver.keda.svc"], &[]).unwrap();
    let metrics = Metrics::default();
    let server = backend::serve(
        &leaf,
        Some(&up.front_proxy_ca_pem().unwrap()),
        backend::metrics_router(metrics.clone()),
    )
    .await;
    create(&client, "keda").await;
    let svc: Service = serde_json::from_value(json!({"metadata": {"name": "ebb-metrics-apiserver"},
        "spec": {"type": "ExternalName", "externalName": "127.0.0.1"}}))
    .unwrap();
    Api::<Service>::namespaced(client.clone(), "keda").create(&PostParams::default(), &svc).await.unwrap();
    backend::register_external_metrics(&client, ca.cert_pem()).await;
    let apis: Api<DynamicObject> = Api::all_with(client.clone(), &backend::apiservice_resource());
    let port = Patch::Merge(json!({"spec": {"service": {"port": server.addr.port()}}}));
    apis.patch("v1beta1.external.metrics.k8s.io", &PatchParams::default(), &port).await.unwrap();
    let started = Instant::now();
    loop {
        let a = apis.get("v1beta1.external.metrics.k8s.io").await.unwrap();
        let conds = a.data["status"]["conditions"].as_array().cloned().unwrap_or_default();
        if conds.iter().any(|c| c["type"] == "Available" && c["status"] == "True") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "APIService not Available: {conds:?}\n{}",
            up.logs(20)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Plane { client, metrics, _backend: server }
}

async fn local_plane() -> (ebb_sandbox::sandbox::Sandbox, Plane) {
    let cfg = Config { hpa_sync: SYNC, ready_delay: Duration::from_millis(50), ..Default::default() };
    let (sb, client) = common::start(cfg).await;
    let metrics = Metrics::default();
    let server = backend::serve_external_metrics(&sb, &client, metrics.clone()).await;
    (sb, Plane { client, metrics, _backend: server })
}

async fn create(client: &kube::Client, ns: &str) {
    let obj: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &obj).await.unwrap();
}

fn hpa(s: &Scenario) -> HorizontalPodAutoscaler {
    let mut h = json!({
        "metadata": {"name": "w"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "w"},
            "minReplicas": s.min, "maxReplicas": s.max,
            "metrics": [{"type": "External", "external": {
                "metric": {"name": METRIC, "selector": {"matchLabels": {"scaledobject.keda.sh/name": "w"}}},
                "target": {"type": "AverageValue", "averageValue": format!("{TARGET}")}}}]
        }
    });
    if let Some(b) = &s.behavior {
        h["spec"]["behavior"] = b.clone();
    }
    serde_json::from_value(h).unwrap()
}

/// Creates the scenario's namespace and Deployment on `plane` and starts recording its replicas;
/// the recorder's clock starts when the returned instant is reset by [`start_hpa`].
async fn prepare(plane: &Plane, s: &Scenario) -> (Api<Deployment>, Arc<Mutex<(Instant, Timeline)>>) {
    create(&plane.client, s.name).await;
    plane.metrics.set_in(s.name, s.series[0].1);
    let deployments: Api<Deployment> = Api::namespaced(plane.client.clone(), s.name);
    let d = serde_json::from_value(json!({
        "metadata": {"name": "w"},
        "spec": {"replicas": s.replicas, "selector": {"matchLabels": {"app": "w"}},
            "template": {"metadata": {"labels": {"app": "w"}}, "spec": {"containers": [{"name": "main", "image": "x"}]}}}
    }))
    .unwrap();
    let created = deployments.create(&PostParams::default(), &d).await.unwrap();
    let rv = created.metadata.resource_version.clone().unwrap();
    let timeline = Arc::new(Mutex::new((Instant::now(), vec![(0.0, s.replicas)])));
    let out = timeline.clone();
    let api = deployments.clone();
    tokio::spawn(async move {
        let mut stream = api.watch(&WatchParams::default().timeout(290), &rv).await.unwrap().boxed();
        while let Some(Ok(event)) = stream.next().await {
            let (WatchEvent::Added(d) | WatchEvent::Modified(d)) = event else { continue };
            let Some(n) = d.spec.and_then(|s| s.replicas) else { continue };
            let mut t = out.lock().unwrap();
            let at = t.0.elapsed().as_secs_f64();
            if t.1.last().map(|(_, last)| *last) != Some(n) {
                t.1.push((at, n));
            }
        }
    });
    (deployments, timeline)
}

/// Runs `s` on both planes at once; the two timelines.
async fn run(up: &Plane, local: &Plane, s: &Scenario) -> (Timeline, Timeline) {
    let (_, up_line) = prepare(up, s).await;
    let (_, local_line) = prepare(local, s).await;
    let up_hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(up.client.clone(), s.name);
    let local_hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(local.client.clone(), s.name);
    let t0 = Instant::now();
    up_line.lock().unwrap().0 = t0;
    up_hpas.create(&PostParams::default(), &hpa(s)).await.unwrap();
    local_line.lock().unwrap().0 = Instant::now();
    local_hpas.create(&PostParams::default(), &hpa(s)).await.unwrap();
    for (at, value) in s.series.iter().skip(1) {
        tokio::time::sleep_until((t0 + Duration::from_secs(*at)).into()).await;
        up.metrics.set_in(s.name, *value);
        local.metrics.set_in(s.name, *value);
    }
    tokio::time::sleep_until((t0 + s.run_for).into()).await;
    let up_status = up_hpas.get("w").await.unwrap().status;
    println!("{}: upstream HPA status at the end: {up_status:?}", s.name);
    let a = up_line.lock().unwrap().1.clone();
    let b = local_line.lock().unwrap().1.clone();
    (a, b)
}

/// The calculator driven like the controller: a sync at the HPA's creation and every [`SYNC`]
/// after, the Deployment following each decision at once.
fn calculator(s: &Scenario) -> Timeline {
    let b: Option<HorizontalPodAutoscalerBehavior> =
        s.behavior.clone().map(|b| serde_json::from_value(b).unwrap());
    let mut calc = HpaCalculator::from_k8s(s.min, s.max, b.as_ref()).unwrap();
    let start = Utc::now();
    let mut current = s.replicas;
    let mut line = vec![(0.0, current)];
    let mut t = Duration::ZERO;
    while t < s.run_for {
        let value = s.series.iter().rev().find(|(at, _)| Duration::from_secs(*at) <= t).map(|(_, v)| *v);
        let sample = [MetricSample::average_value(METRIC, TARGET, value)];
        let at = start + TimeDelta::from_std(t).unwrap();
        let desired = calc.sync(at, current, current, &sample).desired;
        if desired != current {
            current = desired;
            line.push((t.as_secs_f64(), current));
        }
        t += SYNC;
    }
    line
}

fn counts(line: &Timeline) -> Vec<i32> {
    line.iter().map(|(_, n)| *n).collect()
}

fn show(line: &Timeline) -> String {
    line.iter().map(|(t, n)| format!("{n}@{t:.1}s")).collect::<Vec<_>>().join(" → ")
}

/// Differences of `other` from upstream's timeline, as messages.
fn compare(name: &str, what: &str, upstream: &Timeline, other: &Timeline) -> Vec<String> {
    if counts(upstream) != counts(other) {
        return vec![format!("{name}: {what} went {} where upstream went {}", show(other), show(upstream))];
    }
    upstream
        .iter()
        .zip(other)
        .skip(1)
        .filter(|((a, _), (b, _))| (a - b).abs() > SLACK)
        .map(|((a, n), (b, _))| format!("{name}: {what} reached {n} at {b:.1}s, upstream at {a:.1}s"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_timelines_match_kube_controller_manager() {
    let opts = Options { hpa_sync: SYNC, ..Default::default() };
    let up = tokio::task::spawn_blocking(move || Upstream::start(&opts)).await.unwrap().unwrap();
    let upstream = upstream_plane(&up).await;
    let (sb, local) = local_plane().await;

    let all = scenarios();
    let runs = futures::future::join_all(all.iter().map(|s| run(&upstream, &local, s))).await;
    let mut problems = Vec::new();
    for (s, (up_line, local_line)) in all.iter().zip(runs) {
        let calc_line = calculator(s);
        println!("{:<18} upstream   {}", s.name, show(&up_line));
        println!("{:<18} local     {}", "", show(&local_line));
        println!("{:<18} calculator {}", "", show(&calc_line));
        assert!(up_line.len() > 1, "{}: upstream never scaled: {}\n{}", s.name, show(&up_line), up.logs(30));
        problems.extend(compare(s.name, "the local control plane", &up_line, &local_line));
        problems.extend(compare(s.name, "the calculator", &up_line, &calc_line));
    }
    // Upstream's controller read the metric through the aggregator as its own service account.
    let seen = upstream.metrics.requests();
    assert!(
        seen.iter().any(|r| r.remote_user.as_deref()
            == Some("system:serviceaccount:kube-system:horizontal-pod-autoscaler")),
        "{:?}",
        seen.first()
    );
    sb.stop().await;
    assert!(problems.is_empty(), "differences from upstream:\n{}", problems.join("\n"));
}
