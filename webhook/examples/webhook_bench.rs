//! Admission benchmark. Builds a local control plane holding N ScaledObjects and N HPAs (default
//! 10,000 each, over 10 namespaces), runs the release `ebb-webhook` binary against it, and prints:
//! time until the watches have listed everything, the webhook process's RSS (idle and after the
//! load), review latency over TLS (p50/p99/max, sequential and 8 in flight), and the in-process
//! handler's latency against an index of the same size.
//!
//! `cargo build --release -p ebb-webhook && cargo run --release -p ebb-webhook --example webhook_bench -- [N] [REQUESTS]`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ebb_sandbox::sandbox::{Config, Sandbox};
use ebb_webhook::admission::Webhook;
use ebb_webhook::index::{HpaIndex, HpaKeys, Index, Snapshot, SoIndex, SoKeys, Workload};
use ebb_webhook::metrics::Metrics;
use serde_json::{Value, json};

const NAMESPACES: usize = 10;

fn ns(i: usize) -> String {
    format!("team-{}", i % NAMESPACES)
}

fn so(name: &str, namespace: &str, target: &str) -> Value {
    json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": target}},
        "spec": {"scaleTargetRef": {"name": target}, "minReplicaCount": 0, "maxReplicaCount": 10,
            "triggers": [{"type": "cron", "metadata": {"timezone": "Europe/Paris", "start": "0 8 * * 1-5", "end": "0 19 * * 1-5", "desiredReplicas": "3"}}]}})
}

fn hpa(name: &str, namespace: &str, target: &str, owner: &str) -> Value {
    json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": namespace,
            "ownerReferences": [{"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": owner, "uid": format!("uid-{owner}"), "controller": true}]},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target}, "minReplicas": 1, "maxReplicas": 10,
            "metrics": [{"type": "External", "external": {"metric": {"name": "s0-cron-Europe-Paris-08xx1-5-019xx1-5"}, "target": {"type": "AverageValue", "averageValue": "1"}}}]}})
}

/// Review bodies: an admitted create, a create denied as a duplicate target, an update.
fn reviews() -> Vec<(&'static str, Vec<u8>)> {
    let env = |op: &str, object: Value, old: Value| {
        serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": "4b1e4c4a-1111-2222-3333-444455556666", "kind": {"group": "keda.sh", "version": "v1alpha1", "kind": "ScaledObject"},
            "resource": {"group": "keda.sh", "version": "v1alpha1", "resource": "scaledobjects"},
            "name": object["metadata"]["name"], "namespace": "team-3", "operation": op,
            "userInfo": {"username": "admin"}, "object": object, "oldObject": old}}))
        .unwrap()
    };
    let fresh = so("new-app", "team-3", "new-target");
    let dup = so("dup-app", "team-3", "web-3");
    let mut changed = so("so-3", "team-3", "web-3");
    changed["spec"]["maxReplicaCount"] = json!(20);
    vec![
        ("create, admitted", env("CREATE", fresh, Value::Null)),
        ("create, duplicate target denied", env("CREATE", dup, Value::Null)),
        ("update of an existing object, admitted", env("UPDATE", changed, so("so-3", "team-3", "web-3"))),
    ]
}

/// `VmRSS` and `VmHWM` of `pid`, in KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    use ebb_testbackends::procfs::status_kib;
    (status_kib(pid, "VmRSS:"), status_kib(pid, "VmHWM:"))
}

fn percentiles(mut d: Vec<Duration>) -> String {
    d.sort();
    let at = |p: f64| d[((d.len() as f64 * p) as usize).min(d.len() - 1)];
    format!(
        "p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} reviews)",
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        d[d.len() - 1].as_secs_f64() * 1e3,
        d.len()
    )
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let n = args.first().copied().unwrap_or(10_000);
    let requests = args.get(1).copied().unwrap_or(20_000);
    let binary = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("ebb-webhook");
    assert!(
        binary.exists(),
        "{} missing: run `cargo build --release -p ebb-webhook` first",
        binary.display()
    );

    // The cluster: N ScaledObjects on N Deployments, each with its HPA.
    let sb = Sandbox::start(Config { controllers: false, ..Default::default() }).await.unwrap();
    for (_, crd) in ebb_api::crds::all() {
        sb.create(&serde_json::to_value(&crd).unwrap()).unwrap();
    }
    let started = Instant::now();
    for i in 0..n {
        let (name, target, space) = (format!("so-{i}"), format!("web-{i}"), ns(i));
        sb.create(&so(&name, &space, &target)).unwrap();
        sb.create(&hpa(&format!("keda-hpa-{name}"), &space, &target, &name)).unwrap();
    }
    println!(
        "cluster: {n} ScaledObjects + {n} HPAs in {NAMESPACES} namespaces, created in {:.1?}",
        started.elapsed()
    );

    let dir = std::env::temp_dir().join(format!("ebb-webhook-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    ebb_sandbox::kubeconfig::write_kubeconfig(&kubeconfig, &sb.kubeconfig()).unwrap();
    let leaf = sb.service_cert("keda", "ebb-webhook").unwrap();
    let (cert, key): (PathBuf, PathBuf) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&cert, &leaf.cert_pem).unwrap();
    std::fs::write(&key, &leaf.key_pem).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let admin_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();

    let started = Instant::now();
    let child = Kill(
        Command::new(&binary)
            .env("KUBECONFIG", &kubeconfig)
            .env("EBB_LOG_LEVEL", "warn")
            .args([
                "--secure-addr",
                &format!("127.0.0.1:{port}"),
                "--admin-addr",
                &format!("127.0.0.1:{admin_port}"),
            ])
            .args(["--tls-cert-file", cert.to_str().unwrap(), "--tls-key-file", key.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = child.0.id();
    let admin = reqwest::Client::new();
    loop {
        if let Ok(r) = admin.get(format!("http://127.0.0.1:{admin_port}/readyz")).send().await
            && r.status().is_success()
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "webhook not ready after 2 minutes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("webhook process: ready (both lists indexed) {:.1?} after start", started.elapsed());
    let (rss, hwm) = rss_kib(pid);
    println!(
        "webhook process: RSS {:.1} MiB idle (peak {:.1} MiB)",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );

    let https = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(sb.ca.cert_pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let url = format!("https://localhost:{port}/validate");
    let bodies = reviews();
    for (what, body) in &bodies {
        let r: Value = https.post(&url).body(body.clone()).send().await.unwrap().json().await.unwrap();
        println!("  {what}: allowed={}", r["response"]["allowed"]);
    }
    // Warm-up, then sequential requests over one connection.
    for i in 0..200 {
        https
            .post(&url)
            .body(bodies[i % bodies.len()].1.clone())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }
    let mut seq = Vec::with_capacity(requests);
    for i in 0..requests {
        let body = bodies[i % bodies.len()].1.clone();
        let t = Instant::now();
        let r = https.post(&url).body(body).send().await.unwrap();
        assert!(r.status().is_success());
        r.bytes().await.unwrap();
        seq.push(t.elapsed());
    }
    println!("TLS, sequential: {}", percentiles(seq));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (https, url, bodies) = (https.clone(), url.clone(), bodies.clone());
        tasks.push(tokio::spawn(async move {
            let mut d = Vec::new();
            for i in (w..requests).step_by(8) {
                let t = Instant::now();
                let r = https.post(&url).body(bodies[i % bodies.len()].1.clone()).send().await.unwrap();
                r.bytes().await.unwrap();
                d.push(t.elapsed());
            }
            d
        }));
    }
    let mut conc = Vec::new();
    for t in tasks {
        conc.extend(t.await.unwrap());
    }
    let rate = conc.len() as f64 / started.elapsed().as_secs_f64();
    println!("TLS, 8 in flight: {} — {rate:.0} reviews/s", percentiles(conc));
    let (rss, hwm) = rss_kib(pid);
    println!(
        "webhook process: RSS {:.1} MiB after the load (peak {:.1} MiB)",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    drop(child);

    // The handler alone, against an index of the same size built in this process.
    let (before, _) = rss_kib(std::process::id());
    let mut sos = SoIndex::default();
    let mut hpas = HpaIndex::default();
    for i in 0..n {
        let target = Workload::new("apps/v1", "Deployment", &format!("web-{i}"));
        sos.apply(
            &ns(i),
            &format!("so-{i}"),
            SoKeys { target: target.clone(), hpa: format!("keda-hpa-so-{i}").into() },
        );
        let keys = HpaKeys { target, owner: Some(format!("so-{i}").into()), validation_off: false };
        hpas.apply(&ns(i), &format!("keda-hpa-so-{i}"), keys);
    }
    let (after, _) = rss_kib(std::process::id());
    println!(
        "index of {n} ScaledObjects + {n} HPAs: {:.1} MiB of RSS in this process",
        after.saturating_sub(before) as f64 / 1024.0
    );
    let webhook = Webhook::new(Arc::new(Index::new(Snapshot::synced(sos, hpas))), Metrics::default(), None);
    for (what, body) in &bodies {
        let mut d = Vec::with_capacity(requests);
        for _ in 0..requests {
            let t = Instant::now();
            let reply = webhook.review_now(body);
            d.push(t.elapsed());
            assert_eq!(reply.status, 200);
        }
        println!("in-process handler, {what}: {}", percentiles(d));
    }
    sb.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
