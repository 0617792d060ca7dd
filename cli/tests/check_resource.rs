//! `ebb check` on cpu/memory triggers: listed with their target and "measured by the HPA from
//! pod metrics", never measured; an object with only such triggers is active (as in KEDA); a
//! target Deployment given with `-f` whose containers lack the request is warned about.

#![allow(clippy::unwrap_used)]

use std::process::Output;

fn ebb_check(tag: &str, text: &str, format: &str) -> Output {
    let dir = std::env::temp_dir().join(format!("ebb-check-resource-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("so.yaml");
    std::fs::write(&file, text).unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_ebb"))
        .args(["check", "-f", file.to_str().unwrap(), "-o", format])
        .output()
        .unwrap()
}

const SO: &str = "apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: web, namespace: prod}
spec:
  scaleTargetRef: {name: web}
  minReplicaCount: 1
  triggers:
    - type: cpu
      metricType: Utilization
      metadata: {value: \"50\"}
";

const DEPLOYMENT: &str = "---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: prod}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - {name: app, image: x}
";

#[test]
fn cpu_triggers_are_listed_not_measured() {
    let out = ebb_check("json", SO, "json");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = &v["triggers"][0];
    assert_eq!(t["type"], "cpu");
    assert_eq!(t["metricType"], "Utilization");
    assert_eq!(t["target"], 50.0);
    assert_eq!(t["value"], serde_json::Value::Null);
    assert_eq!(t["error"], serde_json::Value::Null);
    assert!(t["description"].as_str().unwrap().contains("measured by the HPA from pod metrics"));
    assert_eq!(v["decision"]["active"], true);
    let text = ebb_check("text", SO, "text");
    assert!(String::from_utf8_lossy(&text.stdout).contains("(measured by the HPA from pod metrics)"));
}

#[test]
fn missing_cpu_request_on_the_given_target_is_warned() {
    let out = ebb_check("requests", &format!("{SO}{DEPLOYMENT}"), "json");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let warnings = v["warnings"].to_string();
    assert!(warnings.contains("container \\\"app\\\" of the scale target has no cpu request"), "{warnings}");
}
