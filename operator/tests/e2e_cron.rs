//! End to end on the local control plane: the seed cron ScaledObject with its window shifted to
//! now. The operator creates the HPA with KEDA's metric name and selector, scales the Deployment
//! 0→1 when the window opens, keeps it through the cooldown after the window closes, then
//! scales it to 0, recording KEDAScaleTargetActivated and KEDAScaleTargetDeactivated events.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use chrono::{Timelike, Utc};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

async fn replicas(deps: &Api<Deployment>) -> i32 {
    deps.get("php-apache").await.unwrap().spec.unwrap().replicas.unwrap_or(0)
}

async fn wait_for(what: &str, limit: Duration, mut f: impl AsyncFnMut() -> bool) {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_window_scales_zero_one_zero() {
    let (sb, client) = support::start_cluster(Duration::from_secs(15)).await;
    let ns = client.default_namespace().to_owned();
    let deps: Api<Deployment> = Api::default_namespaced(client.clone());
    let dep: Deployment = serde_json::from_value(json!({"metadata": {"name": "php-apache", "labels": {"app": "php-apache"}},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "php-apache"}},
            "template": {"metadata": {"labels": {"app": "php-apache"}}, "spec": {"containers": [{"name": "php", "image": "x"}]}}}}))
    .unwrap();
    deps.create(&PostParams::default(), &dep).await.unwrap();

    let args = <ebb_operator::Args as clap::Parser>::try_parse_from([
        "ebb-operator",
        "--admin-addr",
        "127.0.0.1:0",
        "--operator-namespace",
        &ns,
        "--watch-namespace",
        &ns,
    ])
    .unwrap();
    let (trigger, shutdown) = ebb_plumbing::shutdown::channel();
    let op = tokio::spawn(ebb_operator::serve(args, client.clone(), shutdown));

    // A one-minute window containing now (or the next minute when this one is nearly over).
    let mut now = Utc::now().with_timezone(&chrono_tz::Asia::Seoul);
    if now.second() >= 50 {
        tokio::time::sleep(Duration::from_secs(u64::from(61 - now.second()))).await;
        now = Utc::now().with_timezone(&chrono_tz::Asia::Seoul);
    }
    let (start, end) = (now.minute(), (now.minute() + 1) % 60);
    let so = json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "php-apache-cron-scaled"},
        "spec": {"minReplicaCount": 0, "maxReplicaCount": 2, "pollingInterval": 1, "cooldownPeriod": 5,
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "php-apache"},
            "triggers": [{"type": "cron", "metadata": {"timezone": "Asia/Seoul", "start": format!("{start:02} * * * *"),
                "end": format!("{end:02} * * * *"), "desiredReplicas": "1"}}]}});
    let sos: Api<ebb_api::ScaledObject> = Api::default_namespaced(client.clone());
    sos.create(&PostParams::default(), &serde_json::from_value(so).unwrap()).await.unwrap();

    let hpas: Api<HorizontalPodAutoscaler> = Api::default_namespaced(client.clone());
    wait_for("the HPA", Duration::from_secs(10), async || {
        hpas.get_opt("keda-hpa-php-apache-cron-scaled").await.unwrap().is_some()
    })
    .await;
    let hpa = hpas.get("keda-hpa-php-apache-cron-scaled").await.unwrap();
    let spec = hpa.spec.unwrap();
    let metric = spec.metrics.unwrap()[0].external.clone().unwrap();
    assert_eq!(metric.metric.name, format!("s0-cron-Asia-Seoul-{start:02}xxxx-{end:02}xxxx"));
    assert_eq!(
        metric
            .metric
            .selector
            .unwrap()
            .match_labels
            .unwrap()
            .get("scaledobject.keda.sh/name")
            .map(String::as_str),
        Some("php-apache-cron-scaled")
    );
    assert_eq!(metric.target.type_, "AverageValue");
    assert_eq!(spec.min_replicas, Some(1));
    assert_eq!(spec.max_replicas, 2);

    wait_for("activation 0→1", Duration::from_secs(10), async || replicas(&deps).await == 1).await;
    // The window closes at the next minute boundary; the cooldown of 5 s keeps 1 replica.
    let closes = {
        let n = Utc::now();
        let secs = 60 - u64::from(n.second());
        Instant::now() + Duration::from_secs(secs)
    };
    tokio::time::sleep_until(closes.into()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(replicas(&deps).await, 1, "kept through the cooldown after the window closed");
    wait_for("deactivation 1→0", Duration::from_secs(15), async || replicas(&deps).await == 0).await;

    let events: Api<Event> = Api::default_namespaced(client.clone());
    let reasons: Vec<String> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|e| e.reason)
        .collect();
    assert!(reasons.iter().any(|r| r == "KEDAScaleTargetActivated"), "{reasons:?}");
    assert!(reasons.iter().any(|r| r == "KEDAScaleTargetDeactivated"), "{reasons:?}");

    let so = sos.get("php-apache-cron-scaled").await.unwrap();
    let status = so.status.unwrap();
    assert_eq!(status.hpa_name.as_deref(), Some("keda-hpa-php-apache-cron-scaled"));
    assert_eq!(status.external_metric_names, [format!("s0-cron-Asia-Seoul-{start:02}xxxx-{end:02}xxxx")]);
    assert_eq!(status.scale_target_kind.as_deref(), Some("apps/v1.Deployment"));
    assert!(status.last_active_time.is_some());
    trigger.trigger();
    let _ = tokio::time::timeout(Duration::from_secs(5), op).await;
    sb.stop().await;
}
