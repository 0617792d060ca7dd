//! KEDA itself, built from the pinned modules and run out of cluster on the upstream control
//! plane: for the seed release and the newest one, its operator creates the HPA of a cron
//! ScaledObject, its metrics adapter answers the external metric through the real
//! kube-aggregator, and its admission webhook denies maxReplicaCount < minReplicaCount. Prints
//! each program's idle RSS. Ignored: building KEDA takes minutes, and the test command never
//! builds it. Run with
//! `cargo test -p ebb-testbackends --test keda -- --ignored --nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use ebb_testbackends::keda::{self, NEWEST_VERSION, Options, Running, SEED_VERSION};
use ebb_testbackends::kubernetes::Upstream;
use serde_json::{Value, json};

const NS: &str = "demo";

fn poll<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let started = Instant::now();
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if started.elapsed() > timeout => panic!("{what} within {timeout:?}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

fn rss(name: &str, r: &Running) -> u64 {
    let kib = r.rss_kib().unwrap();
    println!("  idle RSS {name:<8} pid {:>7}: {:>7} KiB ({:.1} MiB)", r.pid(), kib, kib as f64 / 1024.0);
    kib
}

fn apply(kubeconfig: &Path, object: &Value) {
    keda::kubectl(kubeconfig, &["apply", "-f", "-"], Some(&object.to_string())).unwrap();
}

/// The current UTC minute, from the system clock.
/// POSTs an AdmissionReview (CREATE of ScaledObject `name` on Deployment `target`) to KEDA's
/// webhook; returns (allowed, message).
fn admit(webhook: &Running, name: &str, target: &str, min: u32, max: u32) -> (bool, String) {
    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": format!("6b3c7f5e-0000-4000-8000-{:012}", min * 100 + max),
            "kind": {"group": "keda.sh", "version": "v1alpha1", "kind": "ScaledObject"},
            "resource": {"group": "keda.sh", "version": "v1alpha1", "resource": "scaledobjects"},
            "name": name, "namespace": NS, "operation": "CREATE", "dryRun": false,
            "userInfo": {"username": "ebb-admin", "groups": ["system:masters"]},
            "object": {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
                "metadata": {"name": name, "namespace": NS},
                "spec": {"scaleTargetRef": {"name": target}, "minReplicaCount": min, "maxReplicaCount": max,
                    "triggers": [{"type": "cron", "metadata": {"timezone": "UTC",
                        "start": "0 * * * *", "end": "30 * * * *", "desiredReplicas": "3"}}]}}}});
    let (status, body) = keda::https(
        webhook.serving_addr().unwrap(),
        &webhook.ca_pem().unwrap(),
        "POST",
        "/validate-keda-sh-v1alpha1-scaledobject",
        Some(review.to_string().as_bytes()),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    let allowed = answer["response"]["allowed"].as_bool().unwrap();
    (allowed, answer["response"]["status"]["message"].as_str().unwrap_or_default().to_owned())
}

fn utc_minute() -> u64 {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    (secs / 60) % 60
}

#[test]
#[ignore = "builds KEDA (minutes); run with --ignored"]
fn keda_operator_adapter_and_webhook_run_out_of_cluster_on_upstream() {
    // EBB_KEDA_VERSIONS=2.16.0 runs one release only.
    let versions = std::env::var("EBB_KEDA_VERSIONS")
        .map(|v| v.split(',').map(str::to_owned).collect::<Vec<_>>())
        .unwrap_or_else(|_| vec![SEED_VERSION.to_owned(), NEWEST_VERSION.to_owned()]);
    for version in &versions {
        println!("== KEDA {version}");
        let started = Instant::now();
        let build = keda::build(version).unwrap_or_else(|e| panic!("{e}"));
        println!("  build (cached after the first run): {:?}", started.elapsed());
        let up = Upstream::start(&Default::default()).unwrap();
        let kc = up.kubeconfig_path();
        keda::install_crds(&kc, &build).unwrap();

        let opts = Options { kubeconfig: kc.clone(), namespace: "keda".into(), ..Default::default() };
        let operator = keda::start_operator(&build, &opts).unwrap();
        let adapter = keda::start_adapter(&build, &opts, &operator).unwrap();
        keda::register_apiservice(&kc, &adapter).unwrap();
        let webhook = keda::start_webhook(&build, &opts).unwrap();
        println!(
            "  operator gRPC {:?}, adapter {:?}, webhook {:?}; metrics {} {} {}",
            operator.serving_addr(),
            adapter.serving_addr(),
            webhook.serving_addr(),
            operator.metrics_url(),
            adapter.metrics_url(),
            webhook.metrics_url()
        );
        std::thread::sleep(Duration::from_secs(5));
        println!("  load average: {}", std::fs::read_to_string("/proc/loadavg").unwrap().trim());
        for (name, r) in [("operator", &operator), ("adapter", &adapter), ("webhook", &webhook)] {
            assert!(rss(name, r) > 0);
        }
        let metrics = std::process::Command::new("curl").args(["-sf", &operator.metrics_url()]).output();
        if let Ok(out) = metrics {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("# TYPE"), "operator /metrics: {text}");
        }

        // A Deployment and a cron ScaledObject whose window opened this minute.
        keda::kubectl(&kc, &["create", "namespace", NS], None).unwrap();
        for name in ["app", "other"] {
            apply(
                &kc,
                &json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": NS},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                        "spec": {"containers": [{"name": "app", "image": "x"}]}}}}),
            );
        }
        let m = utc_minute();
        apply(
            &kc,
            &json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": "app", "namespace": NS},
            "spec": {"scaleTargetRef": {"name": "app"}, "minReplicaCount": 1, "maxReplicaCount": 5,
                "pollingInterval": 5,
                "triggers": [{"type": "cron", "metadata": {"timezone": "UTC",
                    "start": format!("{m} * * * *"), "end": format!("{} * * * *", (m + 10) % 60),
                    "desiredReplicas": "3"}}]}}),
        );

        let metric = poll("KEDA creates HPA keda-hpa-app", Duration::from_secs(60), || {
            let name = keda::kubectl(
                &kc,
                &[
                    "get",
                    "hpa",
                    "keda-hpa-app",
                    "-n",
                    NS,
                    "-o",
                    "jsonpath={.spec.metrics[0].external.metric.name}",
                ],
                None,
            )?;
            if name.is_empty() { Err("no external metric yet".into()) } else { Ok(name) }
        });
        println!("  HPA keda-hpa-app created; external metric {metric}");

        let path = format!(
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/{NS}/{metric}?labelSelector=scaledobject.keda.sh%2Fname%3Dapp"
        );
        let value = poll("the metric through the aggregator", Duration::from_secs(60), || {
            let body = keda::kubectl(&kc, &["get", "--raw", &path], None)?;
            let list: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
            list["items"][0]["value"].as_str().map(str::to_owned).ok_or(body)
        });
        println!("  GET {path} through the aggregator: value {value}");
        assert_eq!(value, "3", "the cron trigger asks for 3 replicas while its window is open");

        // maxReplicaCount < minReplicaCount: KEDA 2.16.0's webhook only logs it (its
        // verifyReplicaCount returns no error); later releases deny it.
        let (allowed, message) = admit(&webhook, "bad", "other", 5, 2);
        println!("  webhook, maxReplicaCount 2 < minReplicaCount 5: allowed={allowed} {message:?}");
        if version.as_str() == SEED_VERSION {
            assert!(allowed, "KEDA {version} lets min > max through: {message}");
        } else {
            assert!(
                !allowed && message.contains("MinReplicaCount=5 must be less than MaxReplicaCount=2"),
                "{message}"
            );
        }
        // A second ScaledObject on a workload another one manages: denied by every release.
        let (allowed, message) = admit(&webhook, "dup", "app", 1, 5);
        println!("  webhook, a second ScaledObject on Deployment app: allowed={allowed} {message:?}");
        assert!(!allowed && message.contains("already managed by the ScaledObject 'app'"), "{message}");

        println!("  load average: {}", std::fs::read_to_string("/proc/loadavg").unwrap().trim());
        for (name, r) in [("operator", &operator), ("adapter", &adapter), ("webhook", &webhook)] {
            println!("  RSS after one ScaledObject {name:<8}: {} KiB", r.rss_kib().unwrap());
        }
        drop((webhook, adapter, operator, up));
    }
}
