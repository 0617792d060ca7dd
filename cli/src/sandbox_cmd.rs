//! `ebb sandbox`: the whole stack on a local control plane, installed from `deploy/`. Starts
//! the control plane and the sandbox node (`sandbox_node`: runs the Pods of ebb's Deployments
//! as local processes and serves their Services), writes a kubeconfig for kubectl and
//! kube-rs, creates every object of the rendered default overlay (`deploy/rendered/default.yaml`,
//! or a rendered file of the user's own, or nothing with `--no-install`), waits until the
//! programs are ready and the APIService is available, says `sandbox ready`, and unless
//! `--no-demo` applies a demo — a Deployment and the seed cron ScaledObject with its schedule
//! shifted to open within the next minute — then prints the replicas over time until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{Timelike, Utc};
use ebb_sandbox::sandbox::{Config, Sandbox};
use serde_json::{Value, json};

use crate::error::CliError;
use crate::sandbox_node::{Node, pods::Paths};

/// The rendered default overlay of `deploy/` (kept equal to `kubectl kustomize
/// deploy/overlays/default` by the deploy tests).
pub const DEFAULT_INSTALL: &str = include_str!("../../deploy/rendered/default.yaml");
/// Where [`DEFAULT_INSTALL`] comes from, for messages.
pub(crate) const DEFAULT_INSTALL_NAME: &str = "deploy/rendered/default.yaml";

/// What `ebb sandbox` installs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Install {
    /// The rendered default overlay of `deploy/`.
    Default,
    /// A rendered file (e.g. `kubectl kustomize my-overlay > my.yaml`).
    File(PathBuf),
    /// Nothing: apply with kubectl.
    Nothing,
}

/// The objects of a YAML stream, in order.
pub fn objects(yaml: &str, source: &str) -> Result<Vec<Value>, CliError> {
    use serde::Deserialize as _;
    let mut out = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(yaml).enumerate() {
        let v = Value::deserialize(doc)
            .map_err(|e| CliError::Output(format!("{source}: document {}: {e}", i + 1)))?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

/// Options of `ebb sandbox`.
#[derive(Debug, Clone)]
pub struct Options {
    pub kubeconfig: String,
    pub port: u16,
    pub demo: bool,
    pub install: Install,
    /// Where Pods' files and logs go.
    pub dir: PathBuf,
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

pub(crate) fn demo_deployment() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "php-apache", "namespace": "default", "labels": {"app": "php-apache"}},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "php-apache"}},
            "template": {"metadata": {"labels": {"app": "php-apache"}},
                "spec": {"containers": [{"name": "php-apache", "image": "registry.k8s.io/hpa-example"}]}}}})
}

/// Ctrl-C or SIGTERM.
pub(crate) async fn stop_signal() {
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

/// Creates every object of `objs`: how many were created.
async fn install(sb: &Sandbox, objs: &[Value], source: &str) -> Result<usize, CliError> {
    for o in objs {
        sb.create(o).map_err(|e| {
            let kind = o["kind"].as_str().unwrap_or("?");
            let name = o.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("?");
            CliError::Output(format!("{source}: cannot create {kind} {name}: {}", e.message))
        })?;
    }
    Ok(objs.len())
}

/// What is not ready yet: Deployments of ebb without ready replicas, APIServices not
/// Available, webhooks without a caBundle.
pub fn pending(sb: &Sandbox) -> Vec<String> {
    let mut out = Vec::new();
    let (deployments, _) = sb.cp.store.list("apps", "deployments", None);
    let (pods, _) = sb.cp.store.list("", "pods", None);
    for (k, d) in deployments {
        if d.pointer("/spec/template/spec").and_then(crate::sandbox_node::launch::program).is_none() {
            continue;
        }
        let ready = pods.iter().any(|(pk, p)| {
            pk.2 == k.2
                && pk.3.starts_with(&format!("{}-", k.3))
                && p.pointer("/status/containerStatuses/0/ready").and_then(Value::as_bool) == Some(true)
        });
        if !ready {
            out.push(format!("Deployment {}/{} has no ready Pod", k.2, k.3));
        }
    }
    for (k, a) in sb.cp.store.list("apiregistration.k8s.io", "apiservices", None).0 {
        let cond = a
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|c| c.iter().find(|c| c["type"] == "Available"));
        if cond.is_none_or(|c| c["status"] != "True") {
            let why = cond.and_then(|c| c["message"].as_str()).unwrap_or("not checked yet");
            out.push(format!("APIService {} is not available: {why}", k.3));
        }
    }
    for (k, w) in sb.cp.store.list("admissionregistration.k8s.io", "validatingwebhookconfigurations", None).0
    {
        let hooks = w.get("webhooks").and_then(Value::as_array).cloned().unwrap_or_default();
        if hooks
            .iter()
            .any(|h| h.pointer("/clientConfig/caBundle").and_then(Value::as_str).is_none_or(str::is_empty))
        {
            out.push(format!("ValidatingWebhookConfiguration {} has no caBundle yet", k.3));
        }
    }
    out
}

/// Runs until Ctrl-C or SIGTERM.
pub async fn run(opts: Options) -> Result<(), CliError> {
    let cfg = Config { addr: SocketAddr::from(([127, 0, 0, 1], opts.port)), ..Config::default() };
    let sb = Sandbox::start(cfg)
        .await
        .map_err(|e| CliError::Output(format!("cannot start the control plane: {e}")))?;
    let kubeconfig = sb.kubeconfig();
    ebb_sandbox::kubeconfig::write_kubeconfig(std::path::Path::new(&opts.kubeconfig), &kubeconfig)
        .map_err(|e| CliError::Output(format!("{}: cannot write the kubeconfig: {e}", opts.kubeconfig)))?;
    println!("# kubeconfig written to {} (export KUBECONFIG={0})", opts.kubeconfig);
    println!("{kubeconfig}");
    let dir = &opts.dir;
    std::fs::create_dir_all(dir).map_err(|e| CliError::Output(format!("{}: {e}", dir.display())))?;
    let dir = dir.canonicalize().map_err(|e| CliError::Output(format!("{}: {e}", dir.display())))?;
    let bin_dir = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(std::path::Path::to_path_buf))
        .ok_or_else(|| CliError::Output("cannot tell where the ebb executable is".into()))?;
    let kubeconfig_path = std::path::Path::new(&opts.kubeconfig)
        .canonicalize()
        .map_err(|e| CliError::Output(format!("{}: {e}", opts.kubeconfig)))?;
    let node = Node::start(sb.cp.clone(), Paths { bin_dir, dir: dir.clone(), kubeconfig: kubeconfig_path });
    println!("node: running ebb's Deployments as local processes (files and logs in {})", dir.display());
    let installed = match &opts.install {
        Install::Default => {
            Some(install(&sb, &objects(DEFAULT_INSTALL, DEFAULT_INSTALL_NAME)?, DEFAULT_INSTALL_NAME).await?)
        }
        Install::File(path) => {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| CliError::Output(format!("{name}: {e}")))?;
            Some(install(&sb, &objects(&text, &name)?, &name).await?)
        }
        Install::Nothing => None,
    };
    println!("control plane: {}", sb.url());
    let result = serve(&sb, &opts, installed).await;
    node.stop().await;
    sb.stop().await;
    result
}

async fn serve(sb: &Sandbox, opts: &Options, installed: Option<usize>) -> Result<(), CliError> {
    let Some(n) = installed else {
        println!(
            "nothing installed (--no-install): apply ebb with kubectl, e.g. kubectl apply -k deploy/overlays/default"
        );
        println!("sandbox ready");
        stop_signal().await;
        return Ok(());
    };
    println!("installed {n} objects; waiting for the stack");
    let mut last = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let now = pending(sb);
        if now.is_empty() {
            break;
        }
        if now != last {
            for line in &now {
                println!("waiting: {line}");
            }
            last = now;
        }
        if tokio::time::Instant::now() > deadline {
            println!("the stack is not ready after 120 s; see the logs above and in {}", opts.dir.display());
            break;
        }
        tokio::select! {
            _ = stop_signal() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
    println!(
        "APIService v1beta1.external.metrics.k8s.io available; ValidatingWebhookConfiguration keda-admission active"
    );
    println!("sandbox ready");
    if !opts.demo {
        stop_signal().await;
        return Ok(());
    }
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
            _ = stop_signal() => return Ok(()),
            _ = tick.tick() => {
                let replicas = res.as_ref().and_then(|r| sb.cp.get(r, "default", "php-apache").ok())
                    .and_then(|d| d.pointer("/spec/replicas").and_then(Value::as_i64)).unwrap_or(0);
                println!("{:<26} {replicas:>8}", Utc::now().with_timezone(&chrono_tz::Asia::Seoul).to_rfc3339_opts(chrono::SecondsFormat::Secs, false));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_default_install_is_deploys_default_overlay() {
        let objs = objects(DEFAULT_INSTALL, "default").unwrap();
        let has =
            |kind: &str, name: &str| objs.iter().any(|o| o["kind"] == kind && o["metadata"]["name"] == name);
        assert_eq!(objs[0]["kind"], "Namespace");
        assert!(has("APIService", "v1beta1.external.metrics.k8s.io"));
        assert!(has("ValidatingWebhookConfiguration", "keda-admission"));
        assert!(has("CustomResourceDefinition", "scaledobjects.keda.sh"));
        for d in ["ebb-operator", "ebb-webhook", "ebb-metrics-apiserver"] {
            let dep = objs.iter().find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == d).unwrap();
            let (_, program) =
                crate::sandbox_node::launch::program(&dep["spec"]["template"]["spec"]).unwrap();
            assert_eq!(program, d);
        }
        let e = objects("a: 1\n---\n[", "x.yaml").unwrap_err().to_string();
        assert!(e.contains("x.yaml: document 2"), "{e}");
    }

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
