//! `ebb check` on the seed's prometheus-ultra-fast ScaledObject with `serverAddress` pointed at a
//! real Prometheus (started by the test) scraping an exporter in the test process: both triggers
//! are evaluated; `sum(...) by (service)` over one service yields its rate, and once a second
//! service appears it is reported as a multi-series error that says how to fix it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ebb_testbackends::prometheus::{Exporter, Options, Prometheus};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Counters for `services` after `n` steps; every request lands in the 0.1 s bucket, so the
/// p99 latency is 0.099 s = 99 ms.
fn exposition(n: u64, services: &[&str]) -> String {
    let mut s = String::from("# TYPE http_requests_total counter\n");
    for svc in services {
        s.push_str(&format!("http_requests_total{{service=\"{svc}\"}} {}\n", n * 10));
    }
    s.push_str("# TYPE http_request_duration_seconds histogram\n");
    for le in ["0.1", "0.5", "1", "+Inf"] {
        s.push_str(&format!("http_request_duration_seconds_bucket{{le=\"{le}\"}} {}\n", n * 10));
    }
    s.push_str(&format!("http_request_duration_seconds_sum {}\n", n));
    s.push_str(&format!("http_request_duration_seconds_count {}\n", n * 10));
    s
}

async fn ebb_check(file: &Path) -> Value {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ebb"))
        .args(["check", "-f", file.to_str().unwrap(), "-o", "json", "--current-replicas", "10"])
        .current_dir(root())
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs `ebb check` until `done` holds on the report (at most 45 s); returns the last report.
async fn check_until(file: &Path, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let v = ebb_check(file).await;
        if done(&v) || Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_ultra_fast_through_ebb_check() {
    let services = Arc::new(std::sync::Mutex::new(vec!["checkout"]));
    let exporter = Arc::new(Exporter::start(&exposition(0, &["checkout"])).await.unwrap());
    let running = Arc::new(AtomicBool::new(true));
    let ticker = {
        let (exporter, services, running) =
            (Arc::clone(&exporter), Arc::clone(&services), Arc::clone(&running));
        tokio::spawn(async move {
            let mut n = 0;
            while running.load(Ordering::Relaxed) {
                n += 1;
                let svcs = services.lock().unwrap().clone();
                exporter.set(&exposition(n, &svcs));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let prom = Prometheus::start(&Options::scraping(&[exporter.addr()])).unwrap();

    let seed =
        std::fs::read_to_string(root().join("tests/fixtures/seed/prometheus-ultra-fast.yaml")).unwrap();
    assert_eq!(seed.matches("serverAddress: http://prometheus:9090").count(), 2);
    let dir = std::env::temp_dir().join(format!("ebb-check-prometheus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("prometheus-ultra-fast.yaml");
    std::fs::write(&file, seed.replace("http://prometheus:9090", &prom.url())).unwrap();

    // One service: `sum(...) by (service)` is one series, its request rate (10 per 0.2 s, ≤ 50/s);
    // the p99 of requests that all take under 0.1 s is 99 ms.
    let v = check_until(&file, |v| {
        v["triggers"][0]["value"].as_f64().is_some_and(|r| r > 0.0)
            && v["triggers"][1]["value"].as_f64().is_some_and(|p| p > 0.0)
    })
    .await;
    let (t0, t1) = (&v["triggers"][0], &v["triggers"][1]);
    assert_eq!(t0["metricName"], "s0-prometheus", "{v:#}\n{}", prom.log_tail());
    assert_eq!(t1["metricName"], "s1-prometheus");
    assert_eq!((t0["target"].as_f64(), t1["target"].as_f64()), (Some(100.0), Some(500.0)));
    let rate = t0["value"].as_f64().unwrap();
    // Early on the 30 s window holds only a few samples, so the rate ramps up towards 50/s.
    assert!(rate > 0.0 && rate < 60.0, "{v:#}");
    assert_eq!(t0["active"], true);
    let p99 = t1["value"].as_f64().unwrap();
    assert!((p99 - 99.0).abs() < 1e-6, "{v:#}");
    assert_eq!(t1["active"], true);
    assert_eq!(v["decision"]["active"], true);
    let warnings = v["warnings"].to_string();
    assert!(warnings.contains("spec.triggers[0] (prometheus) metadata.metricName: ignored"), "{warnings}");
    assert!(warnings.contains("spec.triggers[1] (prometheus) metadata.metricName: ignored"), "{warnings}");

    // A second service: the same query now gives two series, reported as an error that says
    // how many, by which labels (names only: label values are the source's data, never shown)
    // and how to aggregate; the other trigger still answers.
    services.lock().unwrap().push("search");
    let v = check_until(&file, |v| v["triggers"][0]["error"].is_string()).await;
    let (t0, t1) = (&v["triggers"][0], &v["triggers"][1]);
    let e0 = t0["error"].as_str().unwrap_or_default();
    assert_eq!(
        e0,
        format!(
            "the query returned 2 series but must return exactly one value; aggregate it, for example \
             sum(<query>) or max(<query>) instead of sum(...) by (label) (series labels: service) \
             (Prometheus at {})",
            prom.url()
        ),
        "{v:#}"
    );
    assert!(t0["value"].is_null() && t0["active"].is_null(), "{v:#}");
    assert!((t1["value"].as_f64().unwrap() - 99.0).abs() < 1e-6, "{v:#}");

    running.store(false, Ordering::Relaxed);
    ticker.await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
