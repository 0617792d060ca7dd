//! `ebb sandbox`: the whole stack on a local control plane. Starts the control plane, installs
//! ebb's CRDs, writes a kubeconfig for kubectl and kube-rs, starts the three programs with their
//! certificates and registers the APIService and webhook configuration of `deploy/`
//! (see `sandbox_stack`), says `sandbox ready`, and unless
//! `--no-demo` applies a demo — a Deployment and the seed cron ScaledObject with its schedule
//! shifted to open within the next minute — then prints the replicas over time until Ctrl-C.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::{Timelike, Utc};
use ebb_sandbox::sandbox::{Config, Sandbox};
use serde_json::{Value, json};

use crate::error::CliError;

/// The three programs, in start order (the metrics API server links to the operator).
const PROGRAMS: &[&str] = &["ebb-operator", "ebb-metrics-apiserver", "ebb-webhook"];

/// A program started beside the control plane; killed when dropped.
#[derive(Debug)]
struct Program {
    _child: tokio::process::Child,
}

fn free_port() -> Result<u16, CliError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| CliError::Output(format!("cannot find a free port: {e}")))?;
    l.local_addr().map(|a| a.port()).map_err(|e| CliError::Output(format!("cannot find a free port: {e}")))
}

/// Starts `name` from the directory of this executable and waits for its /livez.
async fn start_program(
    name: &str,
    kubeconfig: &str,
    logs: &std::path::Path,
    env: Vec<(&'static str, String)>,
) -> Result<(Program, String), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let path = exe.parent().map(|d| d.join(name)).filter(|p| p.exists()).ok_or_else(|| {
        format!("{name} is not built next to {} (run `cargo build --workspace`)", exe.display())
    })?;
    let port = free_port().map_err(|e| e.to_string())?;
    let log = std::fs::File::create(logs.join(format!("{name}.log"))).map_err(|e| e.to_string())?;
    let log2 = log.try_clone().map_err(|e| e.to_string())?;
    let child = tokio::process::Command::new(&path)
        .env("EBB_ADMIN_ADDR", format!("127.0.0.1:{port}"))
        .env("KUBECONFIG", kubeconfig)
        .envs(env)
        .stdout(log)
        .stderr(log2)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", path.display()))?;
    let url = format!("http://127.0.0.1:{port}/livez");
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if client.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
            return Ok((Program { _child: child }, format!("http://127.0.0.1:{port}")));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("{name} did not answer {url} within 10 s; see its log"))
}

/// Options of `ebb sandbox`.
#[derive(Debug, Clone)]
pub struct Options {
    pub kubeconfig: String,
    pub port: u16,
    pub demo: bool,
}

/// The cron ScaledObject of the seed, with windows of 5 minutes opening every 15 minutes,
/// the first one at the start of the next minute (Asia/Seoul).
pub fn shifted_cron(now: chrono::DateTime<Utc>) -> Value {
    let seoul = now.with_timezone(&chrono_tz::Asia::Seoul);
    let first = (seoul.minute() + 1) % 60;
    let mut starts: Vec<u32> = (0..4).map(|i| (first + i * 15) % 60).collect();
    starts.sort_unstable();
    let ends: Vec<u32> = starts.iter().map(|m| (m + 5) % 60).collect();
    let list = |v: &[u32]| v.iter().map(|m| format!("{m:02}")).collect::<Vec<_>>().join(",");
    json!({
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": "php-apache-cron-scaled", "namespace": "default"},
        "spec": {"minReplicaCount": 0, "maxReplicaCount": 2, "pollingInterval": 30, "cooldownPeriod": 300,
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "php-apache"},
            "triggers": [{"type": "cron", "metadata": {"timezone": "Asia/Seoul",
                "start": format!("{} * * * *", list(&starts)), "end": format!("{} * * * *", list(&ends)), "desiredReplicas": "1"}}]}
    })
}

fn demo_deployment() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "php-apache", "namespace": "default", "labels": {"app": "php-apache"}},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "php-apache"}},
            "template": {"metadata": {"labels": {"app": "php-apache"}},
                "spec": {"containers": [{"name": "php-apache", "image": "registry.k8s.io/hpa-example"}]}}}})
}

/// Ctrl-C or SIGTERM.
async fn stop_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// Runs until Ctrl-C or SIGTERM.
pub async fn run(opts: Options) -> Result<(), CliError> {
    let cfg = Config { addr: SocketAddr::from(([127, 0, 0, 1], opts.port)), ..Config::default() };
    let sb = Sandbox::start(cfg)
        .await
        .map_err(|e| CliError::Output(format!("cannot start the control plane: {e}")))?;
    for (file, crd) in ebb_api::crds::all() {
        let v = serde_json::to_value(&crd).map_err(|e| CliError::Output(format!("{file}: {e}")))?;
        sb.create(&v).map_err(|e| CliError::Output(format!("cannot install {file}: {}", e.message)))?;
    }
    sb.create(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "keda"}}))
        .map_err(|e| CliError::Output(format!("cannot create namespace keda: {}", e.message)))?;
    let kubeconfig = sb.kubeconfig();
    ebb_sandbox::kubeconfig::write_kubeconfig(std::path::Path::new(&opts.kubeconfig), &kubeconfig)
        .map_err(|e| CliError::Output(format!("{}: cannot write the kubeconfig: {e}", opts.kubeconfig)))?;
    println!("# kubeconfig written to {} (export KUBECONFIG={0})", opts.kubeconfig);
    println!("{kubeconfig}");
    let logs = std::path::PathBuf::from("ebb-sandbox-logs");
    std::fs::create_dir_all(&logs).map_err(|e| CliError::Output(format!("{}: {e}", logs.display())))?;
    let certs = logs.join("certs");
    std::fs::create_dir_all(&certs).map_err(|e| CliError::Output(format!("{}: {e}", certs.display())))?;
    let stack = crate::sandbox_stack::Stack::new(&sb, &certs)?;
    let mut programs = Vec::new();
    for name in PROGRAMS {
        match start_program(name, &opts.kubeconfig, &logs, stack.env(name)).await {
            Ok((p, admin)) => {
                println!("{name}: running, admin {admin} (log {}/{name}.log)", logs.display());
                programs.push(p);
            }
            Err(e) => println!("missing: {name}: not running: {e}"),
        }
    }
    stack.register(&sb)?;
    println!(
        "APIService v1beta1.external.metrics.k8s.io → {}, ValidatingWebhookConfiguration → {}",
        stack.metrics, stack.webhook
    );
    println!("control plane: {}", sb.url());
    println!("sandbox ready");
    if opts.demo {
        for obj in [demo_deployment(), shifted_cron(Utc::now())] {
            sb.create(&obj).map_err(|e| CliError::Output(format!("cannot apply the demo: {}", e.message)))?;
        }
        let so = shifted_cron(Utc::now());
        let md = &so["spec"]["triggers"][0]["metadata"];
        println!(
            "demo: Deployment php-apache and ScaledObject php-apache-cron-scaled (start {:?}, end {:?}, Asia/Seoul)",
            md["start"].as_str().unwrap_or_default(),
            md["end"].as_str().unwrap_or_default()
        );
        println!("{:<26} {:>8}", "TIME", "REPLICAS");
        let res = sb.cp.resource("apps", "v1", "deployments");
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = stop_signal() => break,
                _ = tick.tick() => {
                    let replicas = res.as_ref().and_then(|r| sb.cp.get(r, "default", "php-apache").ok())
                        .and_then(|d| d.pointer("/spec/replicas").and_then(Value::as_i64)).unwrap_or(0);
                    println!("{:<26} {replicas:>8}", Utc::now().with_timezone(&chrono_tz::Asia::Seoul).to_rfc3339_opts(chrono::SecondsFormat::Secs, false));
                }
            }
        }
    } else {
        stop_signal().await;
    }
    drop(programs);
    sb.stop().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn demo_window_opens_next_minute() {
        // 10:07:30 KST → first window 10:08, then :23, :38, :53; each closes 5 minutes later.
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 1, 7, 30).unwrap();
        let so = shifted_cron(now);
        assert_eq!(so["spec"]["triggers"][0]["metadata"]["start"], "08,23,38,53 * * * *");
        assert_eq!(so["spec"]["triggers"][0]["metadata"]["end"], "13,28,43,58 * * * *");
        let late = Utc.with_ymd_and_hms(2026, 11, 23, 1, 59, 10).unwrap();
        assert_eq!(shifted_cron(late)["spec"]["triggers"][0]["metadata"]["start"], "00,15,30,45 * * * *");
    }
}
