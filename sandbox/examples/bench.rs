//! Throughput benchmark of the local control plane: N ConfigMaps created through kube-rs
//! (32 requests in flight) while a watch receives them; prints objects/s for creation and for
//! watch delivery, and the process's peak RSS. Repeats the run and reports the median.
//!
//! `cargo run --release -p ebb-sandbox --example bench -- [OBJECTS] [RUNS]`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams, WatchEvent, WatchParams};
use serde_json::json;

/// A field of this process's `/proc/self/status` in KiB.
fn rss_kib(field: &str) -> u64 {
    ebb_testbackends::procfs::status_kib(std::process::id(), field)
}

async fn run(n: usize) -> (f64, f64) {
    let sb = ebb_sandbox::sandbox::Sandbox::start(ebb_sandbox::sandbox::Config {
        controllers: false,
        history: n + 100,
        ..Default::default()
    })
    .await
    .unwrap();
    let kc = kube::config::Kubeconfig::from_yaml(&sb.kubeconfig()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let rv = cms.list_metadata(&Default::default()).await.unwrap().metadata.resource_version.unwrap();
    let watch = cms.watch(&WatchParams::default().timeout(290), &rv).await.unwrap();
    let start = Instant::now();
    let watcher = tokio::spawn(async move {
        let mut seen = 0usize;
        let mut s = watch.boxed();
        while let Some(ev) = s.try_next().await.unwrap() {
            if matches!(ev, WatchEvent::Added(_)) {
                seen += 1;
                if seen == n {
                    break;
                }
            }
        }
        Instant::now()
    });
    futures::stream::iter(0..n)
        .map(|i| {
            let cms = cms.clone();
            async move {
                let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": format!("cm-{i}"), "labels": {"bench": "yes"}}, "data": {"k": "v"}})).unwrap();
                cms.create(&PostParams::default(), &cm).await.unwrap();
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let created = start.elapsed().as_secs_f64();
    let watched = watcher.await.unwrap().duration_since(start).as_secs_f64();
    sb.stop().await;
    (n as f64 / created, n as f64 / watched)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let runs: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(3);
    let (mut c, mut w) = (Vec::new(), Vec::new());
    for r in 0..runs {
        let (create, watch) = run(n).await;
        println!(
            "run {}: {n} objects: created {create:.0}/s, watched {watch:.0}/s, RSS now {} MiB",
            r + 1,
            rss_kib("VmRSS:") / 1024
        );
        c.push(create);
        w.push(watch);
    }
    println!(
        "median over {runs} runs of {n} objects: create {:.0} objects/s, watch delivery {:.0} objects/s; peak RSS {} MiB (control plane and client in one process)",
        median(c),
        median(w),
        rss_kib("VmHWM:") / 1024
    );
}
