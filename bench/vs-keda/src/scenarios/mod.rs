//! The measurements. Each [`Unit`] is one measurement on one fresh control plane for one system
//! and yields named figures; [`crate::report`] takes medians over runs and ratios between
//! systems. Scenarios map onto units: `operator` and `lateness` share the steady-state units
//! (figures of both from one run when both are selected), the others have units of their own.

pub mod activation;
pub mod hpas;
pub mod metrics_api;
pub mod steady;
pub mod webhook;

use std::path::PathBuf;
use std::time::Duration;

use crate::plane::PlaneKind;
use crate::system::{EbbBinaries, Limits, System};

/// Settings shared by every measurement.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub bins: EbbBinaries,
    /// The steady-state window (CPU, RSS; then lateness sampling).
    pub window: Duration,
    /// Where control planes keep their files (one directory per measurement).
    pub work: PathBuf,
    /// wrk's duration per target (seconds).
    pub wrk_seconds: u32,
    /// Admission requests per mode (sequential, 8 in flight).
    pub requests: usize,
    /// How long an operator may take to reach steady state (all HPAs, every Deployment scaled).
    pub settle: Duration,
    /// Client limits of both operators in the steady-state units (`--steady-client-limits`).
    pub steady_limits: Limits,
}

/// Marks an error as a missed steady-state deadline: the same measurement would miss it again,
/// so later runs skip it (see main).
pub const DEADLINE_MISSED: &str = "deadline missed: ";

/// One named figure of one run.
#[derive(Debug, Clone)]
pub struct Figure {
    pub row: String,
    pub value: f64,
}

impl Figure {
    pub fn new(row: impl Into<String>, value: f64) -> Self {
        Self { row: row.into(), value }
    }
}

/// Trigger of the steady-state ScaledObjects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// No objects at all.
    Idle,
    /// Cron, window open now.
    Cron,
    /// Kafka consumer lag on the tansu broker (one shared topic and consumer group, no lag).
    Kafka,
}

/// One measurement.
#[derive(Debug, Clone)]
pub enum Unit {
    Steady { trigger: Trigger, objects: usize, polling: u32, resources: bool, lateness: bool },
    Hpas { objects: usize, equal_limits: bool },
    MetricsApi,
    Webhook { objects: usize },
    Activation { trials: usize },
}

impl Unit {
    /// What the unit measures, the prefix of its rows.
    pub fn label(&self) -> String {
        match self {
            Unit::Steady { trigger: Trigger::Idle, .. } => "operator, idle (no objects)".into(),
            Unit::Steady { trigger, objects, polling, .. } => {
                let kind = if *trigger == Trigger::Kafka { "Kafka" } else { "cron" };
                format!("operator, {objects} {kind} ScaledObjects, pollingInterval {polling}")
            }
            Unit::Hpas { objects, equal_limits: false } => {
                format!("{objects} ScaledObjects → {objects} HPAs, default client limits")
            }
            Unit::Hpas { objects, equal_limits: true } => {
                format!(
                    "{objects} ScaledObjects → {objects} HPAs, both qps {} / burst {}",
                    hpas::EQUAL_QPS,
                    hpas::EQUAL_BURST
                )
            }
            Unit::MetricsApi => "metrics API, one cached value, 64 connections".into(),
            Unit::Webhook { objects } => format!("webhook, {objects} ScaledObjects + HPAs"),
            Unit::Activation { trials } => {
                format!("activation on moto SQS, pollingInterval 1, {trials} trials")
            }
        }
    }

    pub async fn run(&self, ctx: &Ctx, kind: PlaneKind, system: &System) -> Result<Vec<Figure>, String> {
        let dir = ctx.work.join(format!(
            "{}-{}-{}",
            kind.name(),
            system.name(),
            chrono::Utc::now().format("%H%M%S%3f")
        ));
        let figures = match self {
            Unit::Steady { trigger, objects, polling, resources, lateness } => {
                let spec = steady::Spec {
                    trigger: *trigger,
                    objects: *objects,
                    polling: *polling,
                    resources: *resources,
                    lateness: *lateness,
                };
                steady::run(ctx, kind, system, &dir, &spec).await
            }
            Unit::Hpas { objects, equal_limits } => {
                hpas::run(ctx, kind, system, &dir, *objects, *equal_limits).await
            }
            Unit::MetricsApi => metrics_api::run(ctx, kind, system, &dir).await,
            Unit::Webhook { objects } => webhook::run(ctx, kind, system, &dir, *objects).await,
            Unit::Activation { trials } => activation::run(ctx, kind, system, &dir, *trials).await,
        };
        // A measurement's files are kept only when it failed (the programs' logs).
        if figures.is_ok() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        figures
    }
}

/// GETs `url` as text (a Prometheus exposition).
pub async fn scrape(http: &reqwest::Client, url: &str) -> Result<String, String> {
    let r = http.get(url).send().await.map_err(|e| format!("GET {url}: {e}"))?;
    r.text().await.map_err(|e| format!("GET {url}: {e}"))
}

/// Deployments `app-0 … app-{n-1}` in `ns`, at `replicas`.
pub fn deployments(ns: &str, n: usize, replicas: i32) -> Vec<serde_json::Value> {
    (0..n).map(|i| crate::objects::deployment(ns, &format!("app-{i}"), replicas)).collect()
}

/// How long N objects may take to be reconciled (HPAs) or scaled: `--settle-minutes`, or 0.2 s
/// per object beyond that (KEDA's default client limit, 20 requests/s, needs minutes for
/// thousands).
pub fn settle_limit(ctx: &Ctx, n: usize) -> Duration {
    ctx.settle.max(Duration::from_millis(200 * n as u64))
}

/// Concurrent creations when filling a control plane.
pub const CREATE_CONCURRENCY: usize = 16;
