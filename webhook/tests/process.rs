//! Runs the built `ebb-webhook` binary against the local control plane: readiness after the
//! first lists, reviews over TLS, 400 for an oversized body, the serving certificate reloaded
//! from disk without a restart, startup failures that name their cause, and a clean SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ebb_plumbing::testing::ServerProcess;
use ebb_sandbox::pki::{CertAuthority, Leaf};
use ebb_sandbox::sandbox::Sandbox;
use reqwest::StatusCode;
use serde_json::{Value, json};

const LONG: Duration = Duration::from_secs(20);

struct Files {
    dir: PathBuf,
    kubeconfig: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

async fn control_plane(tag: &str) -> (Sandbox, Files) {
    let sb = Sandbox::start(Default::default()).await.unwrap();
    for (_, crd) in ebb_api::crds::all() {
        sb.create(&serde_json::to_value(&crd).unwrap()).unwrap();
    }
    let dir =
        std::env::temp_dir().join(format!("ebb-webhook-{tag}-{}-{}", std::process::id(), sb.addr.port()));
    std::fs::create_dir_all(&dir).unwrap();
    let files = Files {
        kubeconfig: dir.join("kubeconfig"),
        cert: dir.join("tls.crt"),
        key: dir.join("tls.key"),
        dir,
    };
    ebb_sandbox::kubeconfig::write_kubeconfig(&files.kubeconfig, &sb.kubeconfig()).unwrap();
    write_leaf(&files, &sb.service_cert("keda", "ebb-webhook").unwrap());
    (sb, files)
}

/// Replaces the certificate and key as the kubelet does: new files renamed into place.
fn write_leaf(files: &Files, leaf: &Leaf) {
    for (path, pem) in [(&files.key, &leaf.key_pem), (&files.cert, &leaf.cert_pem)] {
        let tmp = path.with_extension("new");
        std::fs::write(&tmp, pem).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }
}

fn command(files: &Files) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ebb-webhook"));
    command
        .env_remove("RUST_LOG")
        .env("KUBECONFIG", &files.kubeconfig)
        .env("EBB_TLS_CERT_FILE", &files.cert)
        .env("EBB_TLS_KEY_FILE", &files.key);
    command
}

fn client_trusting(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap()
}

fn review(min: i32) -> Value {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "abc-123", "kind": {"group": "keda.sh", "version": "v1alpha1", "kind": "ScaledObject"},
        "resource": {"group": "keda.sh", "version": "v1alpha1", "resource": "scaledobjects"},
        "name": "a", "namespace": "default", "operation": "CREATE", "userInfo": {"username": "u"},
        "object": {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "a", "namespace": "default"},
            "spec": {"scaleTargetRef": {"name": "web"}, "minReplicaCount": min, "maxReplicaCount": 3,
                "triggers": [{"type": "cron", "metadata": {"timezone": "UTC", "start": "0 8 * * *", "end": "0 9 * * *", "desiredReplicas": "1"}}]}}}})
}

async fn wait_ready(client: &reqwest::Client, url: String) {
    let until = Instant::now() + Duration::from_secs(45);
    loop {
        let r = client.get(&url).send().await.unwrap();
        let (status, body) = (r.status(), r.text().await.unwrap());
        if status == StatusCode::OK {
            return;
        }
        assert!(Instant::now() < until, "not ready: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_reviews_over_tls_reloads_its_certificate_and_exits_cleanly() {
    let (sb, files) = control_plane("serve").await;
    let mut command = command(&files);
    command.env("EBB_ADMIN_ADDR", "127.0.0.1:0").args([
        "--log-format",
        "json",
        "--secure-addr",
        "127.0.0.1:0",
    ]);
    let mut server = ServerProcess::start(command).unwrap();
    let admin = reqwest::Client::new();
    wait_ready(&admin, server.admin_url("/readyz")).await;
    let event = server.wait_for_log(LONG, |e| e["message"] == "ebb-webhook listening (TLS)").unwrap();
    let secure: SocketAddr = event["addr"].as_str().unwrap().parse().unwrap();
    let url = format!("https://localhost:{}/validate", secure.port());

    let https = client_trusting(sb.ca.cert_pem());
    let answer: Value = https.post(&url).json(&review(1)).send().await.unwrap().json().await.unwrap();
    assert_eq!(answer["response"], json!({"uid": "abc-123", "allowed": true}));
    let answer: Value = https.post(&url).json(&review(5)).send().await.unwrap().json().await.unwrap();
    assert_eq!(answer["response"]["allowed"], false);
    assert_eq!(
        answer["response"]["status"]["message"],
        "spec.minReplicaCount: minReplicaCount (5) must be less than or equal to maxReplicaCount (3)"
    );

    let big = vec![b' '; 3 * 1024 * 1024 + 1];
    let r = https.post(&url).body(big).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("larger than 3145728 bytes"));
    let r = https.post(&url).body("{\"kind\": \"AdmissionReview\"").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().starts_with("request body is not an AdmissionReview: "));

    let metrics = admin.get(server.admin_url("/metrics")).send().await.unwrap().text().await.unwrap();
    // No ScaledObject or HPA exists in `default`, so its reviews count under the catch-all
    // namespace label (a review's namespace is whatever its sender wrote).
    for line in [
        "keda_webhook_scaled_object_validations_total{namespace=\"_other\",action=\"create\"} 2",
        "keda_webhook_scaled_object_validation_errors_total{namespace=\"_other\",action=\"create\",reason=\"invalid-spec\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} missing from\n{metrics}");
    }
    assert!(metrics.lines().any(|l| l.starts_with("keda_build_info{name=\"ebb-webhook\"")), "{metrics}");

    // A certificate from another CA replaces the files; new connections get it, no restart.
    let other = CertAuthority::new("rotated-ca").unwrap();
    let rotated = client_trusting(other.cert_pem());
    assert!(rotated.post(&url).json(&review(1)).send().await.is_err(), "old certificate still trusted");
    write_leaf(&files, &other.issue_server(&["localhost"], &[]).unwrap());
    let mut served = false;
    for _ in 0..50 {
        if let Ok(r) = client_trusting(other.cert_pem()).post(&url).json(&review(1)).send().await {
            assert_eq!(r.status(), StatusCode::OK);
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "the rotated certificate was not served");

    server.terminate().unwrap();
    let status = server.wait_exit(LONG).unwrap();
    assert!(status.success(), "exit status {status}");
    server.wait_for_log(LONG, |e| e["message"] == "shutdown requested" && e["signal"] == "SIGTERM").unwrap();
    sb.stop().await;
    let _ = std::fs::remove_dir_all(&files.dir);
}

fn fails_with(files: &Files, args: &[&str], want: &str) {
    let output = command(files).args(args).args(["--log-format", "json"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{want}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(want), "{want:?} not in {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_failures_name_their_cause() {
    let (sb, files) = control_plane("fail").await;
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    fails_with(
        &files,
        &["--admin-addr", &addr, "--secure-addr", "127.0.0.1:0"],
        &format!("cannot bind the admin server to {addr}"),
    );
    fails_with(&files, &["--admin-addr", "127.0.0.1:0", "--secure-addr", &addr], &format!("binding {addr}"));
    let missing = Path::new(&files.dir).join("missing.crt");
    fails_with(
        &files,
        &["--secure-addr", "127.0.0.1:0", "--tls-cert-file", missing.to_str().unwrap()],
        &format!("reading {}", missing.display()),
    );
    sb.stop().await;
    let _ = std::fs::remove_dir_all(&files.dir);
}
