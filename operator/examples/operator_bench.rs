//! Benchmarks of the operator, run as its release binary (a child process, so its RSS is its
//! own) against the local control plane (in this process):
//!
//! - `idle [RUNS]`: time from process start to `/readyz` 200 with no ScaledObjects, and RSS
//!   after 5 s idle.
//! - `hpas [N] [RUNS]`: N Deployments exist and the operator is ready; N ScaledObjects are
//!   created at once; wall time until all N HPAs exist.
//! - `loop [N] [SECS] [POLLING] [--no-baseline]`: N ScaledObjects with a cron trigger at
//!   `pollingInterval: POLLING` (default 1); after all HPAs exist and every loop ticks every
//!   POLLING seconds (steady state), scale-loop lateness over SECS seconds (from the operator's
//!   `ebb_scale_loop_lateness_seconds` histogram), RSS (with its anonymous part and the bytes per
//!   ScaledObject) and CPU; then (unless `--no-baseline`) the same figures for a bare tokio loop of
//!   N tasks ticking every POLLING seconds with the same phase spread (the baseline, in its own
//!   process).
//!
//! `EBB_BENCH_WRAP` (e.g. `heaptrack --record-only -o /tmp/op`) runs the operator under that
//! command, for a heap profile (heaptrack sees only malloc: build the operator with
//! `--no-default-features`, i.e. without jemalloc, for that); `EBB_BENCH_OPERATOR_LOG=FILE` keeps the operator's log, at
//! `EBB_BENCH_LOG_LEVEL` (default warn).
//!
//! `cargo build --release -p ebb-operator --bins --examples && target/release/examples/operator_bench loop 10000 60`
//! `target/release/examples/operator_bench loop 50000 120 30 --no-baseline`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ebb_operator::metrics::{LATENESS_BUCKETS, LATENESS_FACTOR, LATENESS_FIRST_BUCKET};
use ebb_sandbox::sandbox::{Config, Sandbox};
use ebb_testbackends::procfs;
use serde_json::json;

const NS: &str = "default";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Operator {
    child: Child,
    admin: String,
    kubeconfig: PathBuf,
}

impl Drop for Operator {
    fn drop(&mut self) {
        // Under EBB_BENCH_WRAP the child is the wrapper: stop the operator it started with
        // SIGTERM (a clean exit, so a profiler writes its data), then the wrapper ends by itself.
        if std::env::var("EBB_BENCH_WRAP").is_ok_and(|w| !w.trim().is_empty()) {
            let pid = self.child.id();
            let children =
                std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
            for c in children.split_whitespace() {
                let _ = Command::new("kill").args(["-TERM", c]).status();
            }
            let _ = self.child.wait();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.kubeconfig);
    }
}

fn operator_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().and_then(|p| p.parent()).unwrap().join("ebb-operator");
    assert!(
        bin.exists(),
        "{} not found: run `cargo build --release -p ebb-operator --bins --examples`",
        bin.display()
    );
    bin
}

fn spawn_operator(sb: &Sandbox) -> (Operator, Instant) {
    let port = free_port();
    let kubeconfig = std::env::temp_dir().join(format!("ebb-bench-{}-{port}.kubeconfig", std::process::id()));
    std::fs::write(&kubeconfig, sb.kubeconfig()).unwrap();
    let started = Instant::now();
    let wrap = std::env::var("EBB_BENCH_WRAP").unwrap_or_default();
    let mut words = wrap.split_whitespace();
    let mut command = match words.next() {
        Some(program) => {
            let mut c = Command::new(program);
            c.args(words).arg(operator_binary());
            c
        }
        None => Command::new(operator_binary()),
    };
    let child = command
        .args(["--leader-elect=false", "--log-format", "json"])
        .args(["--log-level", &std::env::var("EBB_BENCH_LOG_LEVEL").unwrap_or_else(|_| "warn".into())])
        .args(["--admin-addr", &format!("127.0.0.1:{port}")])
        .env("KUBECONFIG", &kubeconfig)
        .env("POD_NAMESPACE", NS)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        // EBB_BENCH_OPERATOR_LOG=FILE keeps the operator's log (default: discarded).
        .stderr(match std::env::var_os("EBB_BENCH_OPERATOR_LOG") {
            Some(path) => std::fs::File::create(path).map_or_else(|_| Stdio::null(), Stdio::from),
            None => Stdio::null(),
        })
        .spawn()
        .unwrap();
    (Operator { child, admin: format!("http://127.0.0.1:{port}"), kubeconfig }, started)
}

async fn wait_ready(http: &reqwest::Client, op: &Operator) {
    wait_ready_within(http, op, Duration::from_secs(30)).await;
}

/// Ready means the first ScaledObject list is in: allow for the list of many objects.
async fn wait_ready_within(http: &reqwest::Client, op: &Operator, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(r) = http.get(format!("{}/readyz", op.admin)).send().await
            && r.status().is_success()
        {
            return;
        }
        assert!(Instant::now() < deadline, "operator not ready within {limit:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn sandbox() -> Sandbox {
    let sb =
        Sandbox::start(Config { hpa_sync: Duration::from_secs(3600), history: 50_000, ..Default::default() })
            .await
            .unwrap();
    for (_, crd) in ebb_api::crds::all() {
        sb.create(&serde_json::to_value(&crd).unwrap()).unwrap();
    }
    sb
}

fn create_deployments(sb: &Sandbox, n: usize) {
    for i in 0..n {
        let name = format!("app-{i}");
        sb.create(&json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": NS, "labels": {"app": name}},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "app", "image": "x"}]}}}}))
            .unwrap();
    }
}

/// A ScaledObject whose cron window is closed now (03:00–03:05 UTC, or 15:00–15:05 when run
/// around 03:00), so the loop polls without scaling.
fn create_scaled_objects(sb: &Sandbox, n: usize, polling: u32) {
    let hour = if chrono::Utc::now().format("%H").to_string() == "03" { 15 } else { 3 };
    for i in 0..n {
        sb.create(&json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": format!("so-{i}"), "namespace": NS},
            "spec": {"scaleTargetRef": {"name": format!("app-{i}")}, "pollingInterval": polling,
                "minReplicaCount": 0, "maxReplicaCount": 2,
                "triggers": [{"type": "cron", "metadata": {"timezone": "Etc/UTC",
                    "start": format!("0 {hour} * * *"), "end": format!("5 {hour} * * *"), "desiredReplicas": "1"}}]}}))
        .unwrap();
    }
}

fn hpa_count(sb: &Sandbox) -> usize {
    sb.cp.store.count("autoscaling", "horizontalpodautoscalers", Some(NS))
}

async fn wait_hpas(sb: &Sandbox, n: usize, limit: Duration) -> Duration {
    let start = Instant::now();
    // Polled, not watched: each count holds the control plane's store lock for one scan of the
    // HPAs, so polling every 10 ms at 50,000 objects would slow the very writes being awaited.
    let poll = if n > 2_000 { Duration::from_millis(250) } else { Duration::from_millis(10) };
    let mut report = start + Duration::from_secs(60);
    loop {
        let count = hpa_count(sb);
        if count >= n {
            break;
        }
        assert!(start.elapsed() < limit, "only {count} of {n} HPAs after {limit:?}");
        if Instant::now() >= report {
            eprintln!("  {count} of {n} HPAs after {:.0} s", start.elapsed().as_secs_f64());
            report += Duration::from_secs(60);
        }
        tokio::time::sleep(poll).await;
    }
    start.elapsed()
}

async fn idle(runs: usize) {
    let http = reqwest::Client::new();
    let (mut ready, mut rss, mut anon) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let sb = sandbox().await;
        let (op, started) = spawn_operator(&sb);
        wait_ready(&http, &op).await;
        ready.push(started.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_secs(5)).await;
        rss.push(procfs::status_kib(op.child.id(), "VmRSS:") as f64 / 1024.0);
        anon.push(procfs::status_kib(op.child.id(), "RssAnon:") as f64 / 1024.0);
        drop(op);
        sb.stop().await;
    }
    println!("idle: start → /readyz 200: median {:.1} ms {:?}", median(ready.clone()), rounded(&ready));
    println!("idle: RSS after 5 s: median {:.1} MiB {:?}", median(rss.clone()), rounded(&rss));
    println!(
        "idle: of which anonymous (heap, stacks): median {:.1} MiB {:?}",
        median(anon.clone()),
        rounded(&anon)
    );
}

fn rounded(v: &[f64]) -> Vec<f64> {
    v.iter().map(|x| (x * 10.0).round() / 10.0).collect()
}

async fn hpas(n: usize, runs: usize) {
    let http = reqwest::Client::new();
    let mut times = Vec::new();
    for _ in 0..runs {
        let sb = sandbox().await;
        create_deployments(&sb, n);
        let (op, _) = spawn_operator(&sb);
        wait_ready(&http, &op).await;
        let start = Instant::now();
        create_scaled_objects(&sb, n, 30);
        wait_hpas(&sb, n, Duration::from_secs(300)).await;
        times.push(start.elapsed().as_secs_f64());
        drop(op);
        sb.stop().await;
    }
    println!(
        "hpas: {n} ScaledObjects created → {n} HPAs: median {:.2} s {:?}",
        median(times.clone()),
        rounded(&times)
    );
}

/// Cumulative bucket counts (upper bound, count) of the lateness histogram in an exposition.
fn buckets(text: &str) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("ebb_scale_loop_lateness_seconds_bucket{le=\""))
        .filter_map(|l| {
            let (le, count) = l.split_once("\"} ")?;
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
            Some((le, count.trim().parse().ok()?))
        })
        .collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// Quantile from cumulative buckets, interpolating linearly inside a bucket.
fn quantile(b: &[(f64, f64)], q: f64) -> f64 {
    let total = b.last().map_or(0.0, |x| x.1);
    let rank = q * total;
    let mut prev = (0.0, 0.0);
    for &(le, count) in b {
        if count >= rank && count > prev.1 {
            let upper = if le.is_finite() { le } else { prev.0 };
            return prev.0 + (upper - prev.0) * (rank - prev.1) / (count - prev.1);
        }
        prev = (le, count);
    }
    prev.0
}

/// Upper bound of the highest non-empty bucket.
fn max_bound(b: &[(f64, f64)]) -> f64 {
    let total = b.last().map_or(0.0, |x| x.1);
    b.iter().find(|(_, c)| *c >= total).map_or(f64::NAN, |x| x.0)
}

fn diff(a: &[(f64, f64)], b: &[(f64, f64)]) -> Vec<(f64, f64)> {
    b.iter().zip(a).map(|(after, before)| (after.0, after.1 - before.1)).collect()
}

struct LoopFigures {
    n: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    ticks: f64,
    rss_mib: f64,
    anon_mib: f64,
    hwm_mib: f64,
    cpu_pct: f64,
}

fn print_figures(what: &str, f: &LoopFigures) {
    println!(
        "{what}: lateness p50 {:.2} ms, p99 {:.2} ms, max ≤ {:.2} ms over {:.0} ticks; RSS {:.1} MiB = {:.1} MB (peak {:.1} MiB; anonymous {:.1} MiB), {:.0} bytes per object; CPU {:.1} % (load average {})",
        f.p50_ms,
        f.p99_ms,
        f.max_ms,
        f.ticks,
        f.rss_mib,
        f.rss_mib * 1.048576,
        f.hwm_mib,
        f.anon_mib,
        f.rss_mib * 1048576.0 / f.n.max(1) as f64,
        f.cpu_pct,
        loadavg()
    );
}

/// `/proc/loadavg`'s first three figures (the machine may be shared; lateness depends on it).
fn loadavg() -> String {
    let l = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

async fn scale_loop(n: usize, secs: u64, polling: u32) -> LoopFigures {
    let http = reqwest::Client::new();
    let sb = sandbox().await;
    create_deployments(&sb, n);
    create_scaled_objects(&sb, n, polling);
    let (op, started) = spawn_operator(&sb);
    wait_ready_within(&http, &op, Duration::from_secs(30.max(n as u64 / 250))).await;
    let took = wait_hpas(&sb, n, Duration::from_secs(600.max(n as u64 / 20))).await;
    println!(
        "loop: operator started, {n} HPAs after {:.1} s",
        started.elapsed().as_secs_f64().max(took.as_secs_f64())
    );
    let scrape =
        || async { http.get(format!("{}/metrics", op.admin)).send().await.unwrap().text().await.unwrap() };
    // Steady state first: the initial reconciles and first status writes go through the client's
    // rate limit; measure once every loop ticks every POLLING seconds (windows of POLLING
    // seconds, at least 5; at most 5 minutes, or N/100 seconds).
    let settle = Instant::now();
    let window = u64::from(polling).max(5);
    let settle_limit = Duration::from_secs(300.max(n as u64 / 100));
    loop {
        let before = buckets(&scrape().await).last().map_or(0.0, |x| x.1);
        tokio::time::sleep(Duration::from_secs(window)).await;
        let after = buckets(&scrape().await).last().map_or(0.0, |x| x.1);
        let rate = (after - before) / window as f64;
        if rate >= 0.99 * n as f64 / f64::from(polling) || settle.elapsed() > settle_limit {
            println!("loop: steady after {:.0} s more ({rate:.0} ticks/s)", settle.elapsed().as_secs_f64());
            break;
        }
    }
    let pid = op.child.id();
    let before = buckets(&scrape().await);
    let cpu0 = procfs::cpu_secs(pid).unwrap_or(0.0);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let cpu = (procfs::cpu_secs(pid).unwrap_or(0.0) - cpu0) / t0.elapsed().as_secs_f64() * 100.0;
    let after = buckets(&scrape().await);
    let d = diff(&before, &after);
    let figures = LoopFigures {
        n,
        p50_ms: quantile(&d, 0.5) * 1000.0,
        p99_ms: quantile(&d, 0.99) * 1000.0,
        max_ms: max_bound(&d) * 1000.0,
        ticks: d.last().map_or(0.0, |x| x.1),
        rss_mib: procfs::status_kib(pid, "VmRSS:") as f64 / 1024.0,
        anon_mib: procfs::status_kib(pid, "RssAnon:") as f64 / 1024.0,
        hwm_mib: procfs::status_kib(pid, "VmHWM:") as f64 / 1024.0,
        cpu_pct: cpu,
    };
    drop(op);
    sb.stop().await;
    figures
}

/// The baseline, in this (child) process: N tasks ticking every second with the operator's phase
/// spread, each recording how late it woke into a histogram with the operator's buckets.
async fn baseline_child(n: usize, secs: u64, polling: u32) {
    let hist = Arc::new(prometheus_client::metrics::histogram::Histogram::new(
        prometheus_client::metrics::histogram::exponential_buckets(
            LATENESS_FIRST_BUCKET,
            LATENESS_FACTOR,
            LATENESS_BUCKETS,
        ),
    ));
    let exact = Arc::new(std::sync::Mutex::new(Vec::with_capacity(n * secs as usize + n)));
    let recording = Arc::new(AtomicBool::new(false));
    let interval = Duration::from_secs(u64::from(polling));
    for i in 0..n {
        let (hist, exact, recording) = (hist.clone(), exact.clone(), recording.clone());
        let offset = ebb_operator::scaleloop::phase_offset(NS, &format!("so-{i}"), interval);
        tokio::spawn(async move {
            let mut next = tokio::time::Instant::now() + offset;
            loop {
                tokio::time::sleep_until(next).await;
                let late = tokio::time::Instant::now().saturating_duration_since(next).as_secs_f64();
                if recording.load(Ordering::Relaxed) {
                    hist.observe(late);
                    exact.lock().unwrap().push(late);
                }
                next += interval;
            }
        });
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let pid = std::process::id();
    let cpu0 = procfs::cpu_secs(pid).unwrap_or(0.0);
    let t0 = Instant::now();
    recording.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(secs)).await;
    recording.store(false, Ordering::Relaxed);
    let cpu = (procfs::cpu_secs(pid).unwrap_or(0.0) - cpu0) / t0.elapsed().as_secs_f64() * 100.0;
    let rss = procfs::status_kib(pid, "VmRSS:");
    let anon = procfs::status_kib(pid, "RssAnon:");
    let hwm = procfs::status_kib(pid, "VmHWM:");
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register("ebb_scale_loop_lateness_seconds", "baseline", Arc::unwrap_or_clone(hist));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    let b = buckets(&text);
    let mut v = exact.lock().unwrap().clone();
    v.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        v.get(((v.len() as f64 * q) as usize).min(v.len().saturating_sub(1))).copied().unwrap_or(0.0)
    };
    println!(
        "{}",
        json!({"p50": quantile(&b, 0.5), "p99": quantile(&b, 0.99), "max_bound": max_bound(&b),
            "ticks": v.len(), "exact_p50": pick(0.5), "exact_p99": pick(0.99), "exact_max": v.last().copied().unwrap_or(0.0),
            "rss_kib": rss, "anon_kib": anon, "hwm_kib": hwm, "cpu_pct": cpu})
    );
}

fn baseline(n: usize, secs: u64, polling: u32) -> LoopFigures {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["baseline-child", &n.to_string(), &secs.to_string(), &polling.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = |k: &str| v[k].as_f64().unwrap();
    println!(
        "baseline (exact): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        f("exact_p50") * 1000.0,
        f("exact_p99") * 1000.0,
        f("exact_max") * 1000.0
    );
    LoopFigures {
        n,
        p50_ms: f("p50") * 1000.0,
        p99_ms: f("p99") * 1000.0,
        max_ms: f("max_bound") * 1000.0,
        ticks: f("ticks"),
        rss_mib: f("rss_kib") / 1024.0,
        anon_mib: f("anon_kib") / 1024.0,
        hwm_mib: f("hwm_kib") / 1024.0,
        cpu_pct: f("cpu_pct"),
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    match args.first().map(String::as_str) {
        Some("idle") => idle(arg(1, 5) as usize).await,
        Some("hpas") => hpas(arg(1, 1000) as usize, arg(2, 3) as usize).await,
        Some("loop") => {
            let (n, secs) = (arg(1, 10_000) as usize, arg(2, 60));
            let polling = u32::try_from(arg(3, 1)).unwrap().max(1);
            let with_baseline = !args.iter().any(|a| a == "--no-baseline");
            // The baseline first, while this process is idle (no control plane yet).
            let base = if with_baseline {
                let base = tokio::task::spawn_blocking(move || baseline(n, secs, polling)).await.unwrap();
                print_figures(&format!("bare tokio loop, {n} tasks every {polling} s, {secs} s"), &base);
                Some(base)
            } else {
                None
            };
            let ebb = scale_loop(n, secs, polling).await;
            print_figures(
                &format!("ebb-operator, {n} ScaledObjects, pollingInterval {polling}, {secs} s"),
                &ebb,
            );
            if let Some(base) = base {
                println!(
                    "ratio ebb/baseline: p50 {:.2}×, p99 {:.2}×, RSS {:.2}×",
                    ebb.p50_ms / base.p50_ms,
                    ebb.p99_ms / base.p99_ms,
                    ebb.rss_mib / base.rss_mib
                );
            }
        }
        Some("baseline-child") => {
            baseline_child(arg(1, 10_000) as usize, arg(2, 60), u32::try_from(arg(3, 1)).unwrap().max(1))
                .await;
        }
        _ => eprintln!(
            "usage: bench idle [RUNS] | hpas [N] [RUNS] | loop [N] [SECS] [POLLING] [--no-baseline]"
        ),
    }
}
