//! `ebb check` and the local environment: a manifest whose TriggerAuthentication maps an
//! environment variable onto the prometheus bearer token, with its own `serverAddress`, must not
//! receive this machine's variables unless the user passes them explicitly (`--env`,
//! `--env-file`, `--env-from-process`). The server is a listener in the test process that records
//! each request's headers and answers like Prometheus.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::server;

const MARKER_NAME: &str = "EBB_CHECK_TEST_TOKEN";
const MARKER: &str = "marker-7d41c0e2-local-secret";

fn manifest(server: &str) -> String {
    format!(
        r#"apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {{name: app, namespace: default}}
spec:
  scaleTargetRef: {{name: app}}
  triggers:
    - type: prometheus
      metadata:
        serverAddress: {server}
        query: sum(up)
        threshold: "1"
        authModes: bearer
      authenticationRef: {{name: from-env}}
---
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata: {{name: from-env, namespace: default}}
spec:
  env:
    - parameter: bearerToken
      name: {MARKER_NAME}
"#
    )
}

async fn ebb_check(file: &std::path::Path, extra: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_ebb"))
        .args(["check", "-f", file.to_str().unwrap(), "--timeout", "5s"])
        .args(extra)
        .env(MARKER_NAME, MARKER)
        .output()
        .await
        .unwrap()
}

fn write_manifest(tag: &str, server: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ebb-check-env-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("so.yaml");
    std::fs::write(&file, manifest(server)).unwrap();
    file
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_process_environment_is_not_sent_unless_asked_for() {
    let (url, seen) = server().await;
    let file = write_manifest("default", &url);
    let out = ebb_check(&file, &[]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let requests = seen.lock().unwrap().clone();
    assert!(
        !requests.iter().any(|r| r.contains(MARKER)),
        "the server received this machine's {MARKER_NAME}: {requests:?}"
    );
    assert!(!out.status.success(), "check succeeded without the variable: {stderr}");
    assert!(stderr.contains(MARKER_NAME) && stderr.contains("not set"), "{stderr}");
    assert!(stderr.contains("--env") && stderr.contains("--env-from-process"), "{stderr}");
    assert!(!stderr.contains(MARKER), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_flags_provide_the_value() {
    let (url, seen) = server().await;
    let file = write_manifest("flags", &url);

    let out = ebb_check(&file, &["--env", &format!("{MARKER_NAME}=given-on-the-command-line")]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        seen.lock().unwrap().iter().any(|r| r.contains("Bearer given-on-the-command-line")),
        "{:?}",
        seen.lock().unwrap()
    );

    let env_file = file.with_file_name("vars.env");
    std::fs::write(&env_file, format!("# comment\n\n{MARKER_NAME}=from-the-file\n")).unwrap();
    let out = ebb_check(&file, &["--env-file", env_file.to_str().unwrap()]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(seen.lock().unwrap().iter().any(|r| r.contains("Bearer from-the-file")));

    let out = ebb_check(&file, &["--env-from-process"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(seen.lock().unwrap().iter().any(|r| r.contains(&format!("Bearer {MARKER}"))));
}

/// The target workload's manifest gives the variable as the operator would read it: a
/// TriggerAuthentication `env` entry naming container `sidecar` (`containerName`), whose `TOKEN`
/// expands `$(P_token)` from `envFrom` of a Secret with prefix `P_`; a missing non-optional
/// Secret is an error naming it, never a value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workload_manifest_environment_reads_secrets_like_the_operator() {
    let (url, seen) = server().await;
    let file = write_manifest("workload", &url);
    let mut text = std::fs::read_to_string(&file).unwrap().replace(
        &format!("      name: {MARKER_NAME}\n"),
        &format!("      name: {MARKER_NAME}\n      containerName: sidecar\n"),
    );
    text.push_str(&format!(
        r#"---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: app, namespace: default}}
spec:
  selector: {{matchLabels: {{app: app}}}}
  template:
    metadata: {{labels: {{app: app}}}}
    spec:
      containers:
        - {{name: app, image: x, env: [{{name: {MARKER_NAME}, value: wrong-container}}]}}
        - name: sidecar
          image: x
          envFrom: [{{prefix: P_, secretRef: {{name: tokens}}}}]
          env: [{{name: {MARKER_NAME}, value: "$(P_token)-expanded"}}]
---
apiVersion: v1
kind: Secret
metadata: {{name: tokens, namespace: default}}
data: {{token: ZnJvbS1zZWNyZXQ=}}
"#
    ));
    std::fs::write(&file, &text).unwrap();
    let out = ebb_check(&file, &[]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let requests = seen.lock().unwrap().clone();
    assert!(requests.iter().any(|r| r.contains("Bearer from-secret-expanded")), "{requests:?}");

    std::fs::write(&file, text.replace("secretRef: {name: tokens}", "secretRef: {name: gone}")).unwrap();
    let out = ebb_check(&file, &[]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "spec.scaleTargetRef: Secret \"gone\" not found (read by envFrom of container \"sidecar\")"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("from-secret"), "{stderr}");
}
