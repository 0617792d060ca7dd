//! Conformance of the HorizontalPodAutoscaler controller's status with kube-controller-manager's:
//! real autoscaling/v2 HPAs on a Deployment, with an External metric read through the aggregated
//! external.metrics.k8s.io API from a fake metrics server the test controls. Status (counts,
//! currentMetrics, conditions, the aggregation headers) must read as upstream writes it; the
//! replica counts follow the shared replica calculator, run here in lockstep. Whether the
//! calculator and this controller decide as upstream does is settled against
//! kube-controller-manager itself in `hpa_upstream.rs`.

#![allow(clippy::unwrap_used)]

mod backend;
mod common;

use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use ebb_sandbox::sandbox::{Config, FRONT_PROXY_CLIENT, Sandbox};
use ebb_scalers::hpa::{HpaCalculator, MetricSample};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscaler, HorizontalPodAutoscalerBehavior};
use kube::api::{Api, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use backend::Metrics;

const SYNC: Duration = Duration::from_millis(300);
const METRIC: &str = "s0-queue";
const SELECTOR: &str = "scaledobject.keda.sh/name=w";
/// AverageValue target of the metric.
const TARGET: f64 = 5.0;

struct Fixture {
    sb: Sandbox,
    deployments: Api<Deployment>,
    hpas: Api<HorizontalPodAutoscaler>,
    metrics: Metrics,
    _server: backend::Backend,
    /// Every spec.replicas value of Deployment `w`, in order, repeats collapsed.
    replicas: Recorded<i32>,
    /// Every HPA `w` the API served, in order.
    history: Recorded<HorizontalPodAutoscaler>,
}

type Recorded<T> = Arc<Mutex<Vec<T>>>;

/// Records `f` of every object named `w` the watch delivers from `rv` on.
fn record<K, T>(api: Api<K>, rv: String, f: impl Fn(K) -> Option<T> + Send + 'static) -> Recorded<T>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    T: PartialEq + Send + 'static,
{
    let seen: Recorded<T> = Arc::default();
    let out = seen.clone();
    tokio::spawn(async move {
        let mut stream = api.watch(&WatchParams::default().timeout(120), &rv).await.unwrap().boxed();
        while let Some(Ok(event)) = stream.next().await {
            let (WatchEvent::Added(o) | WatchEvent::Modified(o)) = event else { continue };
            if o.meta().name.as_deref() != Some("w") {
                continue;
            }
            if let Some(v) = f(o) {
                let mut seen = out.lock().unwrap();
                if seen.last() != Some(&v) {
                    seen.push(v);
                }
            }
        }
    });
    seen
}

/// A sandbox syncing HPAs every 300 ms, the fake metrics server (knowing only `s0-queue` with
/// the ScaledObject selector) registered as the external metrics API, and Deployment `w`.
async fn setup(replicas: i32) -> Fixture {
    let cfg = Config { hpa_sync: SYNC, ready_delay: Duration::from_millis(50), ..Default::default() };
    let (sb, client) = common::start(cfg).await;
    let metrics = Metrics { only: Some((METRIC.into(), SELECTOR.into())), ..Default::default() };
    let server = backend::serve_external_metrics(&sb, &client, metrics.clone()).await;

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d = serde_json::from_value(json!({
        "metadata": {"name": "w"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "w"}},
            "template": {"metadata": {"labels": {"app": "w"}}, "spec": {"containers": [{"name": "main", "image": "x"}]}}}
    }))
    .unwrap();
    let created = deployments.create(&PostParams::default(), &d).await.unwrap();
    let rv = created.metadata.resource_version.clone().unwrap();
    let replicas = record(deployments.clone(), rv.clone(), |d: Deployment| d.spec?.replicas);
    replicas.lock().unwrap().push(created.spec.unwrap().replicas.unwrap());
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "default");
    let history = record(hpas.clone(), rv, Some);
    Fixture { sb, deployments, hpas, metrics, _server: server, replicas, history }
}

/// HPA `w` on Deployment `w`: External metric s0-queue (selector on the ScaledObject name),
/// AverageValue 5, minReplicas 1, maxReplicas 10.
fn hpa(behavior: Option<Value>) -> HorizontalPodAutoscaler {
    let mut h = json!({
        "metadata": {"name": "w"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "w"},
            "minReplicas": 1, "maxReplicas": 10,
            "metrics": [{"type": "External", "external": {
                "metric": {"name": METRIC, "selector": {"matchLabels": {"scaledobject.keda.sh/name": "w"}}},
                "target": {"type": "AverageValue", "averageValue": "5"}}}]
        }
    });
    if let Some(b) = behavior {
        h["spec"]["behavior"] = b;
    }
    serde_json::from_value(h).unwrap()
}

/// The oracle: the replica calculator driven like the controller, one sync per period.
struct Oracle {
    calc: HpaCalculator,
    at: chrono::DateTime<Utc>,
    current: i32,
}

impl Oracle {
    fn new(behavior: Option<Value>, current: i32) -> Self {
        let b: Option<HorizontalPodAutoscalerBehavior> = behavior.map(|b| serde_json::from_value(b).unwrap());
        Self { calc: HpaCalculator::from_k8s(1, 10, b.as_ref()).unwrap(), at: Utc::now(), current }
    }

    /// Syncs with `value` until the count settles; the counts it went through.
    fn settle(&mut self, value: f64) -> Vec<i32> {
        let mut counts = Vec::new();
        for _ in 0..10 {
            let sample = [MetricSample::average_value(METRIC, TARGET, Some(value))];
            let rec = self.calc.sync(self.at, self.current, self.current, &sample);
            self.at += TimeDelta::milliseconds(300);
            if rec.desired == self.current {
                return counts;
            }
            self.current = rec.desired;
            counts.push(rec.desired);
        }
        panic!("the calculator did not settle: {counts:?}");
    }
}

/// Polls HPA `w` until `ok` holds (at most 10 s).
async fn hpa_until(
    f: &Fixture,
    what: &str,
    ok: impl Fn(&HorizontalPodAutoscaler) -> bool,
) -> HorizontalPodAutoscaler {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let h = f.hpas.get("w").await.unwrap();
        if ok(&h) {
            return h;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {:?}", h.status);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the Deployment has `n` replicas and the HPA has synced with that count (so
/// the decision after reaching it is recorded).
async fn settled_at(f: &Fixture, n: i32) -> HorizontalPodAutoscaler {
    hpa_until(f, &format!("{n} replicas, settled"), |h| {
        h.status.as_ref().is_some_and(|s| s.current_replicas == Some(n) && s.desired_replicas == n)
    })
    .await
}

/// (status, reason) of a condition.
fn condition(h: &HorizontalPodAutoscaler, type_: &str) -> Option<(String, String)> {
    let conds = h.status.as_ref()?.conditions.as_ref()?;
    let c = conds.iter().find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone().unwrap_or_default()))
}

fn cond(status: &str, reason: &str) -> Option<(String, String)> {
    Some((status.to_string(), reason.to_string()))
}

/// currentMetrics[0].external.current.averageValue.
fn average(h: &HorizontalPodAutoscaler) -> Option<String> {
    let m = h.status.as_ref()?.current_metrics.as_ref()?.first()?;
    Some(m.external.as_ref()?.current.average_value.as_ref()?.0.clone())
}

/// The recorded HPA status with these counts.
fn recorded(f: &Fixture, current: i32, desired: i32) -> HorizontalPodAutoscaler {
    let history = f.history.lock().unwrap();
    history
        .iter()
        .find(|h| {
            h.status
                .as_ref()
                .is_some_and(|s| s.current_replicas == Some(current) && s.desired_replicas == desired)
        })
        .cloned()
        .unwrap_or_else(|| panic!("no status with {current} → {desired} among {} recorded", history.len()))
}

#[tokio::test]
async fn scales_like_the_calculator_without_behavior() {
    let f = setup(1).await;
    f.metrics.set(30.0);
    let mut oracle = Oracle::new(None, 1);
    f.hpas.create(&PostParams::default(), &hpa(None)).await.unwrap();

    // 30 / 5 = 6 replicas wanted; without behavior a scale-up is capped at max(2 × 1, 4).
    let up = oracle.settle(30.0);
    assert_eq!(up, [4, 6]);
    let h = settled_at(&f, 6).await;
    assert_eq!(*f.replicas.lock().unwrap(), [vec![1], up].concat());
    assert_eq!(average(&h).as_deref(), Some("5"));
    assert_eq!(condition(&h, "AbleToScale"), cond("True", "ReadyForNewScale"));
    assert_eq!(condition(&h, "ScalingActive"), cond("True", "ValidMetricFound"));
    assert_eq!(condition(&h, "ScalingLimited"), cond("False", "DesiredWithinRange"));
    let status = h.status.unwrap();
    assert!(status.last_scale_time.is_some());
    let m = &status.current_metrics.unwrap()[0];
    assert_eq!(m.type_, "External");
    assert_eq!(m.external.as_ref().unwrap().metric.name, METRIC);

    // The statuses on the way: 1 → 4 was limited by the scale-up cap.
    let first = recorded(&f, 1, 4);
    assert_eq!(average(&first).as_deref(), Some("30"));
    assert_eq!(condition(&first, "AbleToScale"), cond("True", "SucceededRescale"));
    assert_eq!(condition(&first, "ScalingLimited"), cond("True", "ScaleUpLimit"));
    let second = recorded(&f, 4, 6);
    assert_eq!(average(&second).as_deref(), Some("7500m"), "30 over 4 replicas");
    assert_eq!(condition(&second, "ScalingLimited"), cond("False", "DesiredWithinRange"));

    // The metric drops to 0: without behavior the 300 s window keeps the highest count.
    f.metrics.set(0.0);
    assert!(oracle.settle(0.0).is_empty());
    let h = hpa_until(&f, "a sync seeing 0", |h| average(h).as_deref() == Some("0")).await;
    assert_eq!(condition(&h, "AbleToScale"), cond("True", "ScaleDownStabilized"));
    tokio::time::sleep(SYNC * 4).await;
    assert_eq!(f.deployments.get("w").await.unwrap().spec.unwrap().replicas, Some(6));
    assert_eq!(f.replicas.lock().unwrap().last(), Some(&6));
    let h = f.hpas.get("w").await.unwrap();
    assert_eq!(h.status.as_ref().unwrap().desired_replicas, 6);
    assert_eq!(condition(&h, "ScalingLimited"), cond("False", "DesiredWithinRange"));

    // Reads went through the aggregation proxy as the controller, with the HPA's selector.
    let seen = f.metrics.requests();
    assert!(seen.len() >= 3);
    assert!(seen.iter().all(|r| r.selector == SELECTOR && r.metric == METRIC && r.namespace == "default"));
    assert_eq!(seen[0].remote_user.as_deref(), Some("system:kube-controller-manager"));
    assert_eq!(seen[0].client_cn.as_deref(), Some(FRONT_PROXY_CLIENT));
    f.sb.stop().await;
}

#[tokio::test]
async fn behavior_without_stabilization_scales_down_to_min_replicas() {
    let behavior = json!({"scaleDown": {"stabilizationWindowSeconds": 0}});
    let f = setup(6).await;
    f.metrics.set(0.0);
    let mut oracle = Oracle::new(Some(behavior.clone()), 6);
    f.hpas.create(&PostParams::default(), &hpa(Some(behavior))).await.unwrap();

    // Nothing wanted, 100 % may go per 15 s: straight to minReplicas.
    let down = oracle.settle(0.0);
    assert_eq!(down, [1]);
    let h = settled_at(&f, 1).await;
    assert_eq!(*f.replicas.lock().unwrap(), [vec![6], down].concat());
    assert_eq!(condition(&h, "ScalingLimited"), cond("True", "TooFewReplicas"));
    assert_eq!(condition(&h, "AbleToScale"), cond("True", "ReadyForNewScale"));
    assert_eq!(average(&h).as_deref(), Some("0"));
    let step = recorded(&f, 6, 1);
    assert_eq!(condition(&step, "AbleToScale"), cond("True", "SucceededRescale"));
    assert_eq!(condition(&step, "ScalingLimited"), cond("True", "TooFewReplicas"));

    // Back up: the default scale-up policies count from the size 15 s ago, and maxReplicas caps.
    f.metrics.set(100.0);
    let up = oracle.settle(100.0);
    let last = *up.last().unwrap();
    let h = settled_at(&f, last).await;
    assert_eq!(*f.replicas.lock().unwrap(), [vec![6, 1], up].concat());
    assert_eq!(last, 10);
    assert_eq!(condition(&h, "ScalingLimited"), cond("True", "TooManyReplicas"));
    f.sb.stop().await;
}

#[tokio::test]
async fn huge_values_stop_at_max_replicas() {
    let f = setup(5).await;
    f.metrics.set(1_000_000.0);
    let mut oracle = Oracle::new(None, 5);
    f.hpas.create(&PostParams::default(), &hpa(None)).await.unwrap();
    let up = oracle.settle(1_000_000.0);
    assert_eq!(up, [10]);
    let h = settled_at(&f, 10).await;
    assert_eq!(*f.replicas.lock().unwrap(), [vec![5], up].concat());
    assert_eq!(condition(&h, "ScalingLimited"), cond("True", "TooManyReplicas"));
    assert_eq!(condition(&h, "ScalingActive"), cond("True", "ValidMetricFound"));
    assert_eq!(average(&h).as_deref(), Some("100k"));
    let step = recorded(&f, 5, 10);
    assert_eq!(condition(&step, "ScalingLimited"), cond("True", "TooManyReplicas"));
    assert_eq!(average(&step).as_deref(), Some("200k"));
    f.sb.stop().await;
}

#[tokio::test]
async fn a_target_at_zero_replicas_is_left_alone() {
    let f = setup(0).await;
    f.metrics.set(30.0);
    f.hpas.create(&PostParams::default(), &hpa(None)).await.unwrap();
    let h = hpa_until(&f, "ScalingDisabled", |h| condition(h, "ScalingActive").is_some()).await;
    assert_eq!(condition(&h, "ScalingActive"), cond("False", "ScalingDisabled"));
    assert_eq!(condition(&h, "AbleToScale"), cond("True", "SucceededGetScale"));
    let status = h.status.unwrap();
    assert_eq!((status.current_replicas, status.desired_replicas), (Some(0), 0));
    tokio::time::sleep(SYNC * 4).await;
    assert_eq!(f.deployments.get("w").await.unwrap().spec.unwrap().replicas, Some(0));
    assert_eq!(*f.replicas.lock().unwrap(), [0]);
    assert!(f.metrics.requests().is_empty(), "the metric is not even read");

    // Scaled by hand to 1, the HPA takes over again.
    let one = Patch::Merge(json!({"spec": {"replicas": 1}}));
    f.deployments.patch_scale("w", &PatchParams::default(), &one).await.unwrap();
    let h = settled_at(&f, 6).await;
    assert_eq!(condition(&h, "ScalingActive"), cond("True", "ValidMetricFound"));
    assert_eq!(*f.replicas.lock().unwrap(), [0, 1, 4, 6]);
    f.sb.stop().await;
}

#[tokio::test]
async fn metric_failures_keep_the_replica_count() {
    let f = setup(3).await;
    f.metrics.set_failing(true);
    f.hpas.create(&PostParams::default(), &hpa(None)).await.unwrap();
    let failed = |h: &HorizontalPodAutoscaler| {
        condition(h, "ScalingActive") == cond("False", "FailedGetExternalMetric")
    };
    let h = hpa_until(&f, "FailedGetExternalMetric", failed).await;
    let active =
        h.status.as_ref().unwrap().conditions.as_ref().unwrap().iter().find(|c| c.type_ == "ScalingActive");
    let message = active.unwrap().message.clone().unwrap();
    assert!(
        message.contains(&format!("unable to get external metric default/{METRIC}/{SELECTOR}")),
        "{message}"
    );
    assert_eq!(condition(&h, "AbleToScale"), cond("True", "SucceededGetScale"));
    assert_eq!(h.status.as_ref().unwrap().current_replicas, Some(3));
    tokio::time::sleep(SYNC * 4).await;
    assert_eq!(*f.replicas.lock().unwrap(), [3]);

    // The source recovers: 30 / 5 = 6, within the cap of max(2 × 3, 4).
    f.metrics.set(30.0);
    f.metrics.set_failing(false);
    let h = settled_at(&f, 6).await;
    assert_eq!(*f.replicas.lock().unwrap(), [3, 6]);
    assert_eq!(average(&h).as_deref(), Some("5"));

    // It fails again: nothing moves, and the last decision and readings stay on record.
    f.metrics.set_failing(true);
    let h = hpa_until(&f, "FailedGetExternalMetric again", failed).await;
    let status = h.status.as_ref().unwrap();
    assert_eq!((status.current_replicas, status.desired_replicas), (Some(6), 6));
    assert_eq!(average(&h).as_deref(), Some("5"));
    tokio::time::sleep(SYNC * 4).await;
    assert_eq!(*f.replicas.lock().unwrap(), [3, 6]);
    f.sb.stop().await;
}
