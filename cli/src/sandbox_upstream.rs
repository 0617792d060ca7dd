//! `ebb sandbox --upstream`: the same sandbox on upstream Kubernetes — etcd, kube-apiserver and
//! kube-controller-manager from the cache `scripts/backends/kubernetes.sh` fills — with the
//! remote node (`sandbox_node::remote`) running ebb's Pods as local processes. deploy/ is
//! installed with the pinned kubectl (`apply --server-side`), so `kubectl version` against the
//! written kubeconfig reports the upstream server.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use chrono::Utc;
use ebb_testbackends::kubernetes::{self, Upstream};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, ListParams};
use tokio::io::AsyncWriteExt as _;

use crate::error::CliError;
use crate::sandbox_cmd::{self, DEFAULT_INSTALL, DEFAULT_INSTALL_NAME, Install, Options};
use crate::sandbox_node::pods::Paths;
use crate::sandbox_node::remote::{ApiAccess, RemoteNode};

fn out(e: impl std::fmt::Display) -> CliError {
    CliError::Output(e.to_string())
}

/// Runs the pinned kubectl against the cluster with `args`, `stdin` fed to it.
async fn kubectl(kubeconfig: &Path, args: &[&str], stdin: &str) -> Result<String, CliError> {
    let bin = kubernetes::binary("kubectl").map_err(out)?;
    let mut child = tokio::process::Command::new(bin)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| out(format!("cannot run kubectl: {e}")))?;
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes()).await.map_err(out)?;
    }
    let done = child.wait_with_output().await.map_err(out)?;
    let text = String::from_utf8_lossy(&done.stdout).into_owned();
    if done.status.success() {
        Ok(text)
    } else {
        Err(out(format!("kubectl {}: {}{}", args.join(" "), text, String::from_utf8_lossy(&done.stderr))))
    }
}

pub async fn run(opts: Options) -> Result<(), CliError> {
    let up = tokio::task::spawn_blocking(|| Upstream::start(&Default::default()))
        .await
        .map_err(out)?
        .map_err(|e| out(format!("cannot start upstream Kubernetes: {e}")))?;
    let admin = up.kubeconfig_path();
    let text = up.kubeconfig().map_err(out)?;
    std::fs::write(&opts.kubeconfig, &text).map_err(|e| out(format!("{}: {e}", opts.kubeconfig)))?;
    println!("# kubeconfig written to {} (export KUBECONFIG={0})", opts.kubeconfig);
    let version = kubectl(&admin, &["version"], "").await?;
    println!("{}", version.trim());
    let dir = &opts.dir;
    std::fs::create_dir_all(dir).map_err(|e| out(format!("{}: {e}", dir.display())))?;
    let dir = dir.canonicalize().map_err(|e| out(format!("{}: {e}", dir.display())))?;
    let bin_dir = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
        .ok_or_else(|| out("cannot tell where the ebb executable is"))?;
    let kc = kube::config::Kubeconfig::read_from(&admin).map_err(out)?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.map_err(out)?;
    let client = kube::Client::try_from(config).map_err(out)?;
    let access = ApiAccess { server: up.server(), ca_pem: up.ca_pem().map_err(out)? };
    let node = RemoteNode::start(
        client.clone(),
        access,
        Paths { bin_dir, dir: dir.clone(), kubeconfig: admin.clone() },
    );
    println!("node: running ebb's Pods as local processes (files and logs in {})", dir.display());
    let installed = match &opts.install {
        Install::Default => {
            Some(kubectl(&admin, &["apply", "--server-side", "-f", "-"], DEFAULT_INSTALL).await?)
        }
        Install::File(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| out(format!("{}: {e}", path.display())))?;
            Some(kubectl(&admin, &["apply", "--server-side", "-f", "-"], &text).await?)
        }
        Install::Nothing => None,
    };
    println!("control plane: {} (upstream, logs in {})", up.server(), up.dir().display());
    let result = serve(&client, &admin, &opts, installed).await;
    node.stop().await;
    drop(up);
    result
}

/// What keeps the stack from being ready, as readable lines (empty when ready).
async fn pending(client: &kube::Client, kubeconfig: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "keda");
    for d in deployments.list(&ListParams::default()).await.map(|l| l.items).unwrap_or_default() {
        let ready = d.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0);
        if ready < 1 {
            lines.push(format!("Deployment keda/{} has no ready Pod", d.metadata.name.unwrap_or_default()));
        }
    }
    let apiservice = kubectl(
        kubeconfig,
        &[
            "get",
            "apiservice",
            "v1beta1.external.metrics.k8s.io",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Available\")].status}",
        ],
        "",
    )
    .await;
    if apiservice.as_deref().map(str::trim).ok() != Some("True") {
        lines.push("APIService v1beta1.external.metrics.k8s.io is not available yet".into());
    }
    lines
}

async fn serve(
    client: &kube::Client,
    kubeconfig: &Path,
    opts: &Options,
    installed: Option<String>,
) -> Result<(), CliError> {
    let Some(applied) = installed else {
        println!(
            "nothing installed (--no-install): apply ebb with kubectl, e.g. kubectl apply -k deploy/overlays/default"
        );
        println!("sandbox ready");
        sandbox_cmd::stop_signal().await;
        return Ok(());
    };
    println!(
        "installed {} objects from {DEFAULT_INSTALL_NAME}; waiting for the stack",
        applied.lines().count()
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    let mut last = Vec::new();
    loop {
        let now = pending(client, kubeconfig).await;
        if now.is_empty() {
            break;
        }
        if now != last {
            now.iter().for_each(|l| println!("waiting: {l}"));
            last = now;
        }
        if tokio::time::Instant::now() > deadline {
            println!("the stack is not ready after 180 s; see the logs in {}", opts.dir.display());
            break;
        }
        tokio::select! {
            _ = sandbox_cmd::stop_signal() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
    println!("sandbox ready");
    if !opts.demo {
        sandbox_cmd::stop_signal().await;
        return Ok(());
    }
    let demo = [sandbox_cmd::demo_deployment(), sandbox_cmd::shifted_cron(Utc::now())]
        .iter()
        .map(|o| serde_json::to_string(o).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n---\n");
    kubectl(kubeconfig, &["apply", "-f", "-"], &demo).await?;
    println!("demo: Deployment php-apache and ScaledObject php-apache-cron-scaled");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = sandbox_cmd::stop_signal() => return Ok(()),
            _ = tick.tick() => {
                let replicas = deployments.get_opt("php-apache").await.ok().flatten()
                    .and_then(|d| d.spec?.replicas).unwrap_or(0);
                println!("{:<26} {replicas:>8}", Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            }
        }
    }
}
