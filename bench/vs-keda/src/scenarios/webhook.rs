//! The admission webhook with N ScaledObjects and their N HPAs stored (10 namespaces; no
//! operator runs, the HPAs are created owned by their ScaledObjects): its RSS once ready and
//! after the load, and the latency of AdmissionReview POSTs over TLS (a create admitted, a create
//! denied because its target is already scaled, an update admitted, in turn), one at a time and
//! 8 in flight.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};

use super::{CREATE_CONCURRENCY, Ctx, Figure};
use crate::kubeapi;
use crate::objects;
use crate::plane::{Plane, PlaneKind};
use crate::programs;
use crate::stats;
use crate::system::System;
use ebb_testbackends::procfs;

const NAMESPACES: usize = 10;
const IN_FLIGHT: usize = 8;

fn ns(i: usize) -> String {
    format!("bench-{}", i % NAMESPACES)
}

pub async fn run(
    ctx: &Ctx,
    kind: PlaneKind,
    system: &System,
    dir: &Path,
    n: usize,
) -> Result<Vec<Figure>, String> {
    let plane = programs::plane_for(kind, system, dir).await?;
    let result = measure(ctx, &plane, system, n).await;
    plane.stop().await;
    result
}

async fn measure(ctx: &Ctx, plane: &Plane, system: &System, n: usize) -> Result<Vec<Figure>, String> {
    let client = &plane.client;
    for i in 0..NAMESPACES {
        plane.create_namespace(&ns(i)).await?;
    }
    let window = ("0 8 * * 1-5".to_owned(), "0 19 * * 1-5".to_owned());
    futures::stream::iter(0..n)
        .map(|i| {
            let window = &window;
            async move {
                let (space, name, target) = (ns(i), format!("so-{i}"), format!("web-{i}"));
                let so =
                    kubeapi::create(client, &objects::cron_so(&space, &name, &target, 30, window, false))
                        .await?;
                let uid = so["metadata"]["uid"].as_str().unwrap_or_default().to_owned();
                kubeapi::create(client, &objects::owned_hpa(&space, &name, &uid, &target)).await.map(drop)
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;

    let hook = programs::webhook(&ctx.bins, plane, system).await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rss_ready = procfs::rss_mib(hook.pid);
    let addr = hook.serving.ok_or("the webhook has no serving address")?;
    let url = Arc::new(format!("https://127.0.0.1:{}{}", addr.port(), programs::webhook_path(system)));
    // An existing object: so-3 in bench-3 on web-3 (3 % NAMESPACES == 3).
    let bodies = Arc::new(objects::admission_reviews(&ns(3), "so-3", "web-3"));
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| format!("{e}"))?;
    // Every kind of request answers a review first, then a warm-up.
    for body in bodies.iter() {
        review(&http, &url, body.clone())
            .await
            .map_err(|e| format!("{e}\nwebhook log:\n{}", hook.log_tail(15)))?;
    }
    for i in 0..200 {
        review(&http, &url, bodies[i % bodies.len()].clone()).await?;
    }
    let mut seq = Vec::with_capacity(ctx.requests);
    for i in 0..ctx.requests {
        let t = Instant::now();
        review(&http, &url, bodies[i % bodies.len()].clone()).await?;
        seq.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let mut tasks = Vec::new();
    for w in 0..IN_FLIGHT {
        let (http, url, bodies, count) =
            (http.clone(), url.clone(), bodies.clone(), ctx.requests / IN_FLIGHT);
        tasks.push(tokio::spawn(async move {
            let mut d = Vec::with_capacity(count);
            for i in 0..count {
                let t = Instant::now();
                review(&http, &url, bodies[(w + i) % bodies.len()].clone()).await?;
                d.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            Ok::<_, String>(d)
        }));
    }
    let mut par = Vec::new();
    for t in tasks {
        par.extend(t.await.map_err(|e| format!("task: {e}"))??);
    }
    let rss_after = procfs::rss_mib(hook.pid);
    drop(hook);
    Ok(vec![
        Figure::new("RSS once ready (MiB)", rss_ready),
        Figure::new("RSS after the requests (MiB)", rss_after),
        Figure::new("admission, one at a time: p50 (ms)", stats::percentile(&seq, 0.5)),
        Figure::new("admission, one at a time: p99 (ms)", stats::percentile(&seq, 0.99)),
        Figure::new("admission, 8 in flight: p50 (ms)", stats::percentile(&par, 0.5)),
        Figure::new("admission, 8 in flight: p99 (ms)", stats::percentile(&par, 0.99)),
    ])
}

/// POSTs one AdmissionReview; an error unless the answer is 200 with a `response.allowed`.
async fn review(http: &reqwest::Client, url: &str, body: Vec<u8>) -> Result<(), String> {
    let r = http
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    let status = r.status();
    let text = r.text().await.map_err(|e| format!("POST {url}: {e}"))?;
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    if status.is_success() && v["response"]["allowed"].is_boolean() {
        Ok(())
    } else {
        Err(format!("POST {url}: {status} {}", text.chars().take(300).collect::<String>()))
    }
}
