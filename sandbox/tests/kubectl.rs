//! The real kubectl against the control plane: discovery, server-side apply of ebb's CRDs,
//! the protobuf `create deployment`, `scale`, server-side printing with `-o wide`, custom
//! resources with their printer columns, and the admission-free delete path.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod backend;
mod common;

use std::path::PathBuf;
use std::process::Command;

fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("kubectl")
        .env("KUBECONFIG", kubeconfig)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("kubectl must be installed (scripts/test installs it)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_drives_the_control_plane() {
    let (sb, _client) = common::start(Default::default()).await;
    let dir = std::env::temp_dir().join(format!("ebb-kubectl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kc = dir.join("kubeconfig");
    ebb_sandbox::kubeconfig::write_kubeconfig(&kc, &sb.kubeconfig()).unwrap();
    let crds = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/crds");
    let seed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/seed/cron-prescale.yaml");

    let run = |args: Vec<String>| {
        let kc = kc.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                kubectl(&kc, &args.iter().map(String::as_str).collect::<Vec<_>>())
            })
            .await
            .unwrap()
        }
    };
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();

    let (ok, out, err) = run(s(&["get", "--raw", "/apis"])).await;
    assert!(ok, "{err}");
    assert!(out.contains("\"kind\":\"APIGroupList\"") && out.contains("autoscaling"), "{out}");

    let (ok, out, err) =
        run(s(&["apply", "--server-side", "--validate=false", "-k", crds.to_str().unwrap()])).await;
    assert!(ok, "{err}");
    assert_eq!(out.matches("serverside-applied").count(), 3, "{out}");

    let (ok, out, err) = run(s(&["create", "deployment", "web", "--image=x"])).await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "deployment.apps/web created");
    let (ok, out, err) = run(s(&["scale", "deployment", "web", "--replicas=3"])).await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "deployment.apps/web scaled");

    let mut wide = String::new();
    for _ in 0..30 {
        let (ok, out, err) = run(s(&["get", "deploy", "-o", "wide"])).await;
        assert!(ok, "{err}");
        wide = out;
        if wide.contains("3/3") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let header: Vec<&str> = wide.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"],
        "{wide}"
    );
    let row: Vec<&str> = wide.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!((row[0], row[1], row[5], row[7]), ("web", "3/3", "x", "app=web"), "{wide}");

    let (ok, _, err) = run(s(&["apply", "--validate=false", "-f", seed.to_str().unwrap()])).await;
    assert!(ok, "{err}");
    let (ok, out, err) = run(s(&["get", "so"])).await;
    assert!(ok, "{err}");
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "SCALETARGETKIND",
            "SCALETARGETNAME",
            "MIN",
            "MAX",
            "READY",
            "ACTIVE",
            "FALLBACK",
            "PAUSED",
            "TRIGGERS",
            "AUTHENTICATIONS",
            "AGE"
        ]
    );
    assert!(out.lines().nth(1).unwrap().starts_with("php-apache-cron-scaled"), "{out}");

    // An aggregated API, the way the metrics APIService is reached: registered, then proxied.
    let metrics = backend::Metrics::default();
    let cert = sb.service_cert("keda", "ebb-metrics-apiserver").unwrap();
    let server =
        backend::serve(&cert, Some(sb.front_proxy_ca.cert_pem()), backend::metrics_router(metrics)).await;
    sb.map_service("keda", "ebb-metrics-apiserver", server.addr);
    backend::register_external_metrics(&_client, sb.ca.cert_pem()).await;
    let (ok, out, err) = run(s(&["get", "--raw", "/apis/external.metrics.k8s.io/v1beta1"])).await;
    assert!(ok, "{err}");
    println!("kubectl get --raw /apis/external.metrics.k8s.io/v1beta1\n{out}");
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list["groupVersion"], "external.metrics.k8s.io/v1beta1");
    assert_eq!(list["resources"][0]["name"], "externalmetrics");
    assert_eq!(list["resources"][0]["kind"], "ExternalMetricValueList");
    let (ok, out, _) = run(s(&["get", "apiservice", "v1beta1.external.metrics.k8s.io"])).await;
    assert!(ok && out.contains("keda/ebb-metrics-apiserver"), "{out}");
    println!("kubectl get apiservice v1beta1.external.metrics.k8s.io\n{out}");

    let (ok, out, err) = run(s(&["delete", "deployment", "web"])).await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "deployment.apps \"web\" deleted");
    let (ok, _, err) = run(s(&["get", "deployment", "web"])).await;
    assert!(!ok && err.contains("NotFound") || err.contains("not found"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
    sb.stop().await;
}
