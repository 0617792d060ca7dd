//! ebb and KEDA side by side: the same objects on the same control planes (upstream Kubernetes
//! and ebb's local one), each program run out of cluster as a child process, every figure
//! measured for every system in the same run, ≥ 3 runs, medians and ratios ebb / KEDA.
//! `bench/vs-keda/run.sh` builds everything and runs this; see `--help` for the scenarios and
//! the overrides for quick checks. Writes RESULTS.md and prints the summary table.

mod kubeapi;
mod objects;
mod plane;
mod programs;
mod report;
mod scenarios;
mod stats;
mod system;

#[cfg(not(feature = "keda"))]
mod kedastub;
#[cfg(feature = "keda")]
mod kedasys;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;

use crate::plane::PlaneKind;
use crate::report::Results;
use crate::scenarios::{Ctx, DEADLINE_MISSED, Trigger, Unit};
use crate::system::{EbbBinaries, Limits, System};

/// Scenarios: operator (RSS and CPU idle, at N cron ScaledObjects with pollingInterval 1 and 30,
/// at N Kafka ScaledObjects), hpas (N ScaledObjects → N HPAs, default and equal client limits),
/// lateness (scale-loop lateness at N), metrics-api (one cached value, aggregator and direct,
/// wrk 64 connections), webhook (RSS and admission latency at N objects), activation (moto SQS,
/// message → /scale 1), or all. `--large` adds the 10,000-object variants.
#[derive(Debug, Parser)]
#[command(name = "bench-vs-keda", version)]
struct Args {
    /// operator, hpas, lateness, metrics-api, webhook, activation or all.
    #[arg(default_value = "all")]
    scenarios: Vec<String>,
    /// Systems, comma-separated: ebb and keda-VERSION.
    #[arg(long, value_delimiter = ',', default_value = "ebb,keda-2.16.0,keda-2.21.1")]
    systems: Vec<String>,
    /// Control planes, comma-separated: upstream, local.
    #[arg(long, value_delimiter = ',', default_value = "upstream,local")]
    control_planes: Vec<String>,
    /// Runs of every measurement (medians over them).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// N, the number of ScaledObjects of the operator, hpas, lateness and (without --large)
    /// webhook scenarios.
    #[arg(long, default_value_t = 1000)]
    objects: usize,
    /// Also measure at --large-objects: operator RSS/CPU at pollingInterval 1 and 30, lateness,
    /// and the webhook (instead of at --objects). Memory-heavy and slow on 2 cores.
    #[arg(long)]
    large: bool,
    #[arg(long, default_value_t = 10_000)]
    large_objects: usize,
    /// Steady-state window in seconds (CPU and RSS; then as long again for lateness).
    #[arg(long, default_value_t = 60)]
    window: u64,
    /// wrk's duration per target, seconds.
    #[arg(long, default_value_t = 10)]
    wrk_seconds: u32,
    /// Admission requests per mode.
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    /// Activation trials per run.
    #[arg(long, default_value_t = 20)]
    trials: usize,
    /// Minutes an operator may take to reach steady state (every HPA, every Deployment scaled)
    /// before the measurement is recorded as not measured.
    #[arg(long, default_value_t = 20)]
    settle_minutes: u64,
    /// Client limits of both operators in the steady-state measurements (operator, lateness):
    /// `equal` starts both with ebb's defaults (qps 500, burst 1000) so each reaches steady state
    /// within minutes; `default` leaves each at its own (KEDA: qps 20, burst 30, which at
    /// pollingInterval 1 and 1,000 objects spends the whole budget on the loops and never creates
    /// every HPA). The `hpas` scenario measures both settings regardless.
    #[arg(long, default_value = "equal", value_parser = ["equal", "default"])]
    steady_client_limits: String,
    /// Where RESULTS.md goes.
    #[arg(long, default_value = "bench/vs-keda/RESULTS.md")]
    results: PathBuf,
    /// Directory of ebb's release binaries (default: this program's directory).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
}

/// ebb's default client limits, given to both operators with `--steady-client-limits equal`.
const STEADY_QPS: f32 = 500.0;
const STEADY_BURST: u32 = 1000;

const SCENARIOS: &[&str] = &["operator", "hpas", "lateness", "metrics-api", "webhook", "activation"];

fn units(args: &Args, selected: &[&str]) -> Vec<Unit> {
    let has = |s: &str| selected.contains(&s);
    let (n, large) = (args.objects, args.large_objects);
    let (operator, lateness) = (has("operator"), has("lateness"));
    let mut out = Vec::new();
    if operator {
        out.push(Unit::Steady {
            trigger: Trigger::Idle,
            objects: 0,
            polling: 1,
            resources: true,
            lateness: false,
        });
    }
    if operator || lateness {
        out.push(Unit::Steady {
            trigger: Trigger::Cron,
            objects: n,
            polling: 1,
            resources: operator,
            lateness,
        });
    }
    if operator {
        out.push(Unit::Steady {
            trigger: Trigger::Cron,
            objects: n,
            polling: 30,
            resources: true,
            lateness: false,
        });
        out.push(Unit::Steady {
            trigger: Trigger::Kafka,
            objects: n,
            polling: 30,
            resources: true,
            lateness: false,
        });
    }
    if args.large && (operator || lateness) {
        out.push(Unit::Steady {
            trigger: Trigger::Cron,
            objects: large,
            polling: 1,
            resources: operator,
            lateness,
        });
        if operator {
            out.push(Unit::Steady {
                trigger: Trigger::Cron,
                objects: large,
                polling: 30,
                resources: true,
                lateness: false,
            });
        }
    }
    if has("hpas") {
        out.push(Unit::Hpas { objects: n, equal_limits: false });
        out.push(Unit::Hpas { objects: n, equal_limits: true });
    }
    if has("metrics-api") {
        out.push(Unit::MetricsApi);
    }
    if has("webhook") {
        out.push(Unit::Webhook { objects: if args.large { large } else { n } });
    }
    if has("activation") {
        out.push(Unit::Activation { trials: args.trials });
    }
    out
}

/// The selected scenarios, systems and control planes.
type Selection = (Vec<&'static str>, Vec<System>, Vec<PlaneKind>);

fn parse_args(args: &Args) -> Result<Selection, String> {
    let mut selected = Vec::new();
    for s in &args.scenarios {
        if s == "all" {
            selected.extend_from_slice(SCENARIOS);
        } else if let Some(known) = SCENARIOS.iter().find(|k| **k == s) {
            selected.push(*known);
        } else {
            return Err(format!("unknown scenario {s:?}: expected one of {} or all", SCENARIOS.join(", ")));
        }
    }
    let systems = args.systems.iter().map(|s| System::parse(s)).collect::<Result<Vec<_>, _>>()?;
    let planes = args.control_planes.iter().map(|s| PlaneKind::parse(s)).collect::<Result<Vec<_>, _>>()?;
    if args.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    Ok((selected, systems, planes))
}

fn header(args: &Args, started: &str) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpu
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map_or("", |l| l.trim_start_matches([' ', '\t', ':']));
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let argv: Vec<String> = std::env::args().skip(1).collect();
    format!(
        "# ebb and KEDA side by side\n\nProduced by `bash bench/vs-keda/run.sh {}` (started {started}) on {cores} CPUs ({model}); \
         upstream control plane: Kubernetes {} (`scripts/backends/kubernetes.sh`); local: ebb's sandbox in the driver's process. \
         {} run(s) per figure, medians; every program out of cluster as a child process; a fresh control plane per system \
         and measurement. The load average (1/5/15 min) at the end of each measurement is in the per-run table: the machine \
         is shared, CPU and lateness depend on it, RSS does not. Client limits in the steady-state rows (operator, \
         lateness): {}. A measurement that misses its steady-state deadline is not repeated in later runs.\n\n",
        argv.join(" "),
        ebb_testbackends::kubernetes::versions().0,
        args.runs,
        if args.steady_client_limits == "equal" {
            format!("both operators at qps {STEADY_QPS} / burst {STEADY_BURST} (ebb's defaults)")
        } else {
            "each operator at its own defaults (ebb qps 500 / burst 1000, KEDA qps 20 / burst 30)".to_owned()
        },
    )
}

fn write_results(
    path: &PathBuf,
    head: &str,
    results: &Results,
    planes: &[PlaneKind],
    systems: &[System],
    durations: &str,
) {
    let text = format!(
        "{head}## Summary (medians; ratio < 1 means ebb uses less / is faster for sizes and latencies, more for req/s)\n\n{}\n## Every run\n\n{}\n## Wall time of each measurement\n\n{durations}",
        results.table(planes, systems),
        results.details()
    );
    if let Err(e) = std::fs::write(path, text) {
        eprintln!("cannot write {}: {e}", path.display());
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    let (selected, systems, planes) = match parse_args(&args) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let bin_dir = args.bin_dir.clone().unwrap_or_else(|| {
        std::env::current_exe().ok().and_then(|p| p.parent().map(PathBuf::from)).unwrap_or_default()
    });
    let work = std::env::temp_dir().join(format!("ebb-bench-vs-keda-{}", std::process::id()));
    let ctx = Ctx {
        bins: EbbBinaries { dir: bin_dir },
        window: Duration::from_secs(args.window),
        work: work.clone(),
        wrk_seconds: args.wrk_seconds,
        requests: args.requests,
        settle: Duration::from_secs(args.settle_minutes * 60),
        steady_limits: if args.steady_client_limits == "equal" {
            Limits { qps: Some(STEADY_QPS), burst: Some(STEADY_BURST) }
        } else {
            Limits::default()
        },
    };
    let units = units(&args, &selected);
    let head = header(&args, &chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string());
    let mut results = Results::default();
    let mut prepared: BTreeMap<String, Result<(), String>> = BTreeMap::new();
    for system in &systems {
        eprintln!("== preparing {}", system.name());
        let sys = system.clone();
        let ok = tokio::task::spawn_blocking(move || programs::prepare(&sys))
            .await
            .unwrap_or_else(|e| Err(format!("task: {e}")));
        if let Err(e) = &ok {
            eprintln!("   {} cannot run: {e}", system.name());
        }
        prepared.insert(system.name(), ok);
    }
    let mut durations = String::new();
    // Measurements that missed their steady-state deadline: the next runs would miss it again.
    let mut missed: BTreeMap<(String, &'static str, String), usize> = BTreeMap::new();
    for run in 1..=args.runs {
        for &plane in &planes {
            for unit in &units {
                for system in &systems {
                    let label = unit.label();
                    eprintln!("== run {run}/{}: {label} — {} — {}", args.runs, plane.name(), system.name());
                    let started = Instant::now();
                    let key = (label.clone(), plane.name(), system.name());
                    if let Some(first) = missed.get(&key) {
                        eprintln!("   skipped: missed its deadline in run {first}");
                        durations.push_str(&format!(
                            "- run {run}, {label}, {}, {}: skipped (missed its deadline in run {first})\n",
                            plane.name(),
                            system.name()
                        ));
                        continue;
                    }
                    let outcome = match prepared.get(&system.name()) {
                        Some(Err(e)) => Err(e.clone()),
                        _ => unit.run(&ctx, plane, system).await,
                    };
                    if matches!(&outcome, Err(e) if e.starts_with(DEADLINE_MISSED)) {
                        missed.insert(key, run);
                    }
                    let load = ebb_testbackends::procfs::loadavg();
                    let took = started.elapsed().as_secs_f64();
                    durations.push_str(&format!(
                        "- run {run}, {label}, {}, {}: {took:.0} s\n",
                        plane.name(),
                        system.name()
                    ));
                    match outcome {
                        Ok(figures) => {
                            for f in figures {
                                eprintln!("   {}: {:.3}", f.row, f.value);
                                results.record(&label, plane, system, &f.row, f.value, &load);
                            }
                        }
                        Err(e) => {
                            eprintln!("   not measured: {e}");
                            results.error(&label, plane, system, &e);
                        }
                    }
                    eprintln!("   ({took:.0} s, load {load})");
                    write_results(&args.results, &head, &results, &planes, &systems, &durations);
                }
            }
        }
    }
    // Failed measurements keep their directory (the programs' logs); the rest is removed.
    if std::fs::read_dir(&work).map_or(true, |mut d| d.next().is_none()) {
        let _ = std::fs::remove_dir_all(&work);
    } else {
        eprintln!("logs of the failed measurements: {}", work.display());
    }
    println!("{}", results.table(&planes, &systems));
    eprintln!("full figures: {}", args.results.display());
}
