//! `ebb check` applies the scaling annotations as the operator does, with KEDA's meaning (Go's
//! `strconv.ParseBool`, a value that is not a boolean meaning true; `paused-replicas` a count ≥ 0):
//! paused directions hold ebb's 0↔1 writes and the HPA's direction, a paused object is not
//! scaled, pinned replicas are written, and an invalid count is an error naming the annotation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::Value;
use support::server_with;

fn manifest(server: &str, annotations: &[(&str, &str)]) -> String {
    let ann: String = annotations.iter().map(|(k, v)| format!("\n    {k}: {v:?}")).collect();
    format!(
        r#"apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: app
  annotations:{ann}
spec:
  scaleTargetRef: {{name: app}}
  minReplicaCount: 0
  maxReplicaCount: 10
  triggers:
    - type: prometheus
      metadata:
        serverAddress: {server}
        query: sum(up)
        threshold: "1"
"#
    )
}

/// Runs `ebb check -o json` with the given annotations against a server answering `value`.
async fn check(value: &'static str, annotations: &[(&str, &str)], current: i32) -> Result<Value, String> {
    let (url, _) = server_with(value).await;
    let dir = std::env::temp_dir().join(format!("ebb-check-ann-{}-{}", std::process::id(), url.len()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("so-{}.yaml", url.rsplit(':').next().unwrap()));
    std::fs::write(&file, manifest(&url, annotations)).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ebb"))
        .args(["check", "-f", file.to_str().unwrap(), "-o", "json", "--current-replicas"])
        .arg(current.to_string())
        .output()
        .await
        .unwrap();
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_scale_out_holds_activation() {
    // Active (3 > activation 0) at zero replicas: ebb would write 1 — unless scale-out is paused.
    let free = check("3", &[], 0).await.unwrap();
    assert_eq!(free["decision"]["ebbWrites"], 1, "{free}");
    for v in ["1", "true", "T", "yes"] {
        let r = check("3", &[("autoscaling.keda.sh/paused-scale-out", v)], 0).await.unwrap();
        assert_eq!(r["decision"]["ebbWrites"], Value::Null, "paused-scale-out {v:?}: {r}");
        assert_eq!(r["decision"]["expectedReplicas"], 0, "paused-scale-out {v:?}: {r}");
    }
    let r = check("3", &[("autoscaling.keda.sh/paused-scale-out", "false")], 0).await.unwrap();
    assert_eq!(r["decision"]["ebbWrites"], 1, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_scale_in_holds_deactivation() {
    // Inactive at 1 replica: ebb would write 0 once the cooldown is over — unless scale-in is paused.
    let free = check("0", &[], 1).await.unwrap();
    assert_eq!(free["decision"]["ebbWrites"], 0, "{free}");
    let r = check("0", &[("autoscaling.keda.sh/paused-scale-in", "1")], 1).await.unwrap();
    assert_eq!(r["decision"]["ebbWrites"], Value::Null, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_scale_out_disables_the_hpa_scale_up() {
    // Value 30 against target 1 at 2 replicas: the HPA scales up (to 4, the first step's limit
    // of max(2 × 2, 4) without behavior) — unless its scale-up is disabled.
    let free = check("30", &[], 2).await.unwrap();
    assert_eq!(free["decision"]["hpaDesiredReplicas"], 4, "{free}");
    let r = check("30", &[("autoscaling.keda.sh/paused-scale-out", "t")], 2).await.unwrap();
    assert_eq!(r["decision"]["hpaDesiredReplicas"], 2, "{r}");
    assert_eq!(r["decision"]["expectedReplicas"], 2, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_objects_are_not_scaled_and_pinned_counts_are_written() {
    let r = check("3", &[("autoscaling.keda.sh/paused", "1")], 0).await.unwrap();
    assert_eq!(r["decision"]["ebbWrites"], Value::Null, "{r}");
    assert_eq!(r["decision"]["hpaDesiredReplicas"], Value::Null, "{r}");
    assert_eq!(r["decision"]["expectedReplicas"], 0, "{r}");
    assert!(r["decision"]["reason"].as_str().unwrap().contains("paused"), "{r}");

    let r = check("3", &[("autoscaling.keda.sh/paused-replicas", "4")], 0).await.unwrap();
    assert_eq!(r["decision"]["ebbWrites"], 4, "{r}");
    assert_eq!(r["decision"]["expectedReplicas"], 4, "{r}");

    let e = check("3", &[("autoscaling.keda.sh/paused-replicas", "-1")], 0).await.unwrap_err();
    assert!(e.contains("autoscaling.keda.sh/paused-replicas") && e.contains("negative"), "{e}");
}
