//! `ebb check` reading manifests as the API server and KEDA would: a TriggerAuthentication is
//! looked up in the ScaledObject's namespace only, and spec fields the CRD schema does not know
//! (which the API server drops) are reported as warnings naming their path.

#![allow(clippy::unwrap_used)]

use std::process::Output;

fn ebb_check(tag: &str, text: &str) -> Output {
    let dir = std::env::temp_dir().join(format!("ebb-check-manifests-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("so.yaml");
    std::fs::write(&file, text).unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_ebb"))
        .args(["check", "-f", file.to_str().unwrap(), "-o", "json", "--env", "TOKEN=t"])
        .output()
        .unwrap()
}

const SO_PROD: &str = "apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: app, namespace: prod}
spec:
  scaleTargetRef: {name: app}
  triggers:
    - type: cron
      metadata: {timezone: UTC, start: 0 8 * * *, end: 0 9 * * *, desiredReplicas: \"2\"}
      authenticationRef: {name: creds}
";

fn ta(namespace: &str) -> String {
    format!(
        "---\napiVersion: keda.sh/v1alpha1\nkind: TriggerAuthentication\nmetadata: {{name: creds, namespace: {namespace}}}\nspec:\n  env:\n    - {{parameter: token, name: TOKEN}}\n"
    )
}

#[test]
fn trigger_authentication_of_another_namespace_is_not_used() {
    let out = ebb_check("ta-other-ns", &format!("{SO_PROD}{}", ta("staging")));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "check used a TriggerAuthentication of another namespace: {err}");
    assert!(
        err.contains(
            "spec.triggers[0].authenticationRef: TriggerAuthentication \"creds\" not found in namespace prod"
        ),
        "{err}"
    );
    assert!(err.contains("one of that name exists in namespace staging"), "{err}");
    // In the ScaledObject's own namespace it is found.
    let out = ebb_check("ta-same-ns", &format!("{SO_PROD}{}{}", ta("staging"), ta("prod")));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("not found"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn fields_the_crd_schema_does_not_have_are_warned_about_by_path() {
    let so = "apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: app, namespace: prod}
spec:
  scaleTargetRef: {name: app}
  pollingIntervall: 10
  horizontalPodAutoscalerConfig: {}
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleDown:
          policies:
          - {type: Pods, value: 1, periodSeconds: 60, tolerance: 0.1}
  triggers:
    - type: cron
      metadata: {timezone: UTC, start: 0 8 * * *, end: 0 9 * * *, desiredReplicas: \"2\", anyKey: kept}
---
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata: {name: unused, namespace: prod}
spec:
  secretTargetRefs: []
";
    let out = ebb_check("unknown-fields", so);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let warnings: Vec<&str> = v["warnings"].as_array().unwrap().iter().filter_map(|w| w.as_str()).collect();
    for path in [
        "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.policies[0].tolerance",
        "spec.horizontalPodAutoscalerConfig",
        "spec.pollingIntervall",
    ] {
        assert!(
            warnings.iter().any(|w| w.contains(&format!("unknown field \"{path}\""))),
            "no warning for {path}: {warnings:?}"
        );
    }
    assert_eq!(warnings.iter().filter(|w| w.contains("unknown field")).count(), 3, "{warnings:?}");
    // The TriggerAuthentication's misspelled field is warned about on stderr.
    assert!(err.contains("warning: ") && err.contains("unknown field \"spec.secretTargetRefs\""), "{err}");
}
