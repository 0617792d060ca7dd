//! The operator in steady state: with no objects, or N ScaledObjects whose HPAs all exist and
//! whose loops all run. Figures: RSS at the end of a CPU window and CPU (% of one core, from
//! `/proc/PID/stat`) over it, with nothing else talking to the operator; then, when asked,
//! scale-loop lateness: the per-object gauge `keda_internal_scale_loop_latency_seconds` (both
//! programs export it) scraped once per second over a second window, percentiles over all
//! samples, plus ebb's histogram `ebb_scale_loop_lateness_seconds` over that window.

use std::path::Path;
use std::time::{Duration, Instant};

use ebb_testbackends::tansu::{Admin, Tansu};

use super::{CREATE_CONCURRENCY, Ctx, DEADLINE_MISSED, Figure, Trigger, deployments, scrape, settle_limit};
use crate::kubeapi::{self, HpaSet, ScaledUp};
use crate::objects::{self, NS};
use crate::plane::PlaneKind;
use crate::programs;
use crate::stats;
use crate::system::System;
use ebb_testbackends::procfs::{self, CpuWindow};

const GAUGE: &str = "keda_internal_scale_loop_latency_seconds";
const HISTOGRAM: &str = "ebb_scale_loop_lateness_seconds";
const KAFKA_TOPIC: &str = "bench";
const KAFKA_GROUP: &str = "bench";

#[derive(Debug, Clone)]
pub struct Spec {
    pub trigger: Trigger,
    pub objects: usize,
    pub polling: u32,
    /// RSS and CPU (scenario `operator`).
    pub resources: bool,
    /// Lateness (scenario `lateness`).
    pub lateness: bool,
}

pub async fn run(
    ctx: &Ctx,
    kind: PlaneKind,
    system: &System,
    dir: &Path,
    spec: &Spec,
) -> Result<Vec<Figure>, String> {
    let tansu = if spec.trigger == Trigger::Kafka { Some(start_tansu().await?) } else { None };
    let plane = programs::plane_for(kind, system, dir).await?;
    let result = measure(ctx, &plane, system, spec, tansu.as_ref()).await;
    plane.stop().await;
    drop(tansu);
    result
}

async fn start_tansu() -> Result<Tansu, String> {
    let tansu = tokio::task::spawn_blocking(Tansu::start).await.map_err(|e| format!("task: {e}"))??;
    let mut admin = Admin::connect(&tansu.bootstrap()).await?;
    admin.create_topic(KAFKA_TOPIC, 1).await?;
    admin.commit(KAFKA_GROUP, KAFKA_TOPIC, &[(0, 0)]).await?;
    Ok(tansu)
}

async fn measure(
    ctx: &Ctx,
    plane: &crate::plane::Plane,
    system: &System,
    spec: &Spec,
    tansu: Option<&Tansu>,
) -> Result<Vec<Figure>, String> {
    let client = &plane.client;
    let n = if spec.trigger == Trigger::Idle { 0 } else { spec.objects };
    kubeapi::create_all(client, deployments(NS, n, 0), CREATE_CONCURRENCY).await?;
    let window = objects::cron_window(true);
    let sos = (0..n)
        .map(|i| {
            let (name, target) = (format!("so-{i}"), format!("app-{i}"));
            match tansu {
                Some(t) => objects::kafka_so(
                    NS,
                    &name,
                    &target,
                    spec.polling,
                    &t.bootstrap(),
                    KAFKA_TOPIC,
                    KAFKA_GROUP,
                ),
                None => objects::cron_so(NS, &name, &target, spec.polling, &window, false),
            }
        })
        .collect();
    kubeapi::create_all(client, sos, CREATE_CONCURRENCY).await?;
    let (hpas, hpa_watch) = HpaSet::watch(client);
    let (scaled, scale_watch) = ScaledUp::watch(client);

    let started = Instant::now();
    let op = programs::operator(&ctx.bins, plane, system, ctx.steady_limits, false).await?;
    let pid = op.proc.pid;
    let mut figures = Vec::new();
    let settle = async {
        hpas.wait_for(n, settle_limit(ctx, n)).await.map_err(|e| format!("{DEADLINE_MISSED}{e}"))?;
        let all_hpas = started.elapsed().as_secs_f64();
        if spec.trigger == Trigger::Cron {
            // Every window is open: steady once every Deployment was scaled to 1.
            let limit = Instant::now() + settle_limit(ctx, n);
            while scaled.count() < n {
                if Instant::now() > limit {
                    return Err(format!(
                        "{DEADLINE_MISSED}only {} of {n} Deployments scaled up after {:?}",
                        scaled.count(),
                        settle_limit(ctx, n)
                    ));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Ok::<f64, String>(all_hpas)
    };
    let all_hpas = settle.await.map_err(|e| format!("{e}\noperator log:\n{}", op.proc.log_tail(20)))?;
    hpa_watch.abort();
    scale_watch.abort();
    if n > 0 {
        figures.push(Figure::new("operator start → all HPAs (s)", all_hpas));
    }
    tokio::time::sleep(Duration::from_secs(10)).await;

    if spec.resources {
        let cpu = CpuWindow::start(pid)?;
        tokio::time::sleep(ctx.window).await;
        let cpu = cpu.percent()?;
        figures.push(Figure::new("RSS (MiB)", procfs::rss_mib(pid)));
        figures.push(Figure::new("CPU (% of one core)", cpu));
    }
    if spec.lateness {
        figures.extend(lateness(ctx, system, &op.proc.metrics_url).await?);
    }
    drop(op);
    Ok(figures)
}

/// The gauge scraped once per second over the window; for ebb also its histogram.
async fn lateness(ctx: &Ctx, system: &System, url: &str) -> Result<Vec<Figure>, String> {
    let http =
        reqwest::Client::builder().timeout(Duration::from_secs(10)).build().map_err(|e| format!("{e}"))?;
    let before = stats::buckets(&scrape(&http, url).await?, HISTOGRAM);
    let mut samples = Vec::new();
    let start = tokio::time::Instant::now();
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while start.elapsed() < ctx.window {
        tick.tick().await;
        samples.extend(stats::gauge_values(&scrape(&http, url).await?, GAUGE));
    }
    let after = stats::buckets(&scrape(&http, url).await?, HISTOGRAM);
    if samples.is_empty() {
        return Err(format!("no {GAUGE} samples at {url}"));
    }
    let ms = |s: f64| s * 1000.0;
    let mut figures = vec![
        Figure::new("lateness, gauge sampled 1/s: p50 (ms)", ms(stats::percentile(&samples, 0.5))),
        Figure::new("lateness, gauge sampled 1/s: p99 (ms)", ms(stats::percentile(&samples, 0.99))),
        Figure::new("lateness, gauge sampled 1/s: max (ms)", ms(stats::max(&samples))),
    ];
    if *system == System::Ebb {
        let d = stats::bucket_diff(&before, &after);
        figures.push(Figure::new(
            "lateness, ebb histogram (reference): p50 (ms)",
            ms(stats::bucket_quantile(&d, 0.5)),
        ));
        figures.push(Figure::new(
            "lateness, ebb histogram (reference): p99 (ms)",
            ms(stats::bucket_quantile(&d, 0.99)),
        ));
        figures.push(Figure::new(
            "lateness, ebb histogram (reference): max bound (ms)",
            ms(stats::bucket_max(&d)),
        ));
    }
    Ok(figures)
}
