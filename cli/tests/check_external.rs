//! `ebb check` on an `external` trigger against a real external scaler
//! (`ebb_testbackends::external_scaler`): the metric is named from the scaler's `GetMetricSpec`
//! as the operator names it (`s<index>-<metricName>`, its target size as target, the raw value),
//! the scaler is told the ScaledObject's name and namespace, and a scaler that cannot be reached
//! is that trigger's error naming its address.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ebb_testbackends::external_scaler::{ExternalScaler, MetricSpec};
use serde_json::Value;

async fn check(tag: &str, address: &str) -> Value {
    let dir = std::env::temp_dir().join(format!("ebb-check-external-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("so.yaml");
    let so = format!(
        "apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {{name: worker, namespace: orders}}
spec:
  scaleTargetRef: {{name: worker}}
  minReplicaCount: 0
  triggers:
    - type: external
      metadata: {{scalerAddress: \"{address}\", queueName: jobs}}
"
    );
    std::fs::write(&file, so).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ebb"))
        .args(["check", "-f", file.to_str().unwrap(), "-o", "json", "--current-replicas", "0"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_the_metric_from_get_metric_spec_and_tells_the_scaler_the_object() {
    let srv = ExternalScaler::start(None).await.unwrap();
    srv.set(|s| {
        s.specs =
            vec![MetricSpec { metric_name: "jobs.waiting".into(), target_size: 5, target_size_float: 0.0 }]
    });
    srv.set_value(12.0, true);
    let r = check("ok", &srv.address()).await;
    let t = &r["triggers"][0];
    // KEDA's `s<index>-<metricName>` (normalized), the scaler's target size, the raw value.
    assert_eq!(t["metricName"], "s0-jobs-waiting", "{r}");
    assert_eq!(t["target"], 5.0, "{r}");
    assert_eq!(t["value"], 12.0, "{r}");
    assert_eq!(t["active"], true, "{r}");
    let st = srv.state();
    let o = st.last_ref.unwrap();
    assert_eq!((o.namespace.as_str(), o.name.as_str()), ("orders", "worker"));
    assert_eq!(st.last_metric_name.as_deref(), Some("jobs.waiting"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_scaler_is_the_triggers_error() {
    let srv = ExternalScaler::start(None).await.unwrap();
    let address = srv.address();
    drop(srv);
    let r = check("down", &address).await;
    let e = r["triggers"][0]["error"].as_str().unwrap_or_default().to_owned();
    assert!(e.contains("cannot get the metric spec") && e.contains(&address), "{r}");
}
