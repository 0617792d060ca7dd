//! The metrics API: one cached value (an aws-sqs-queue trigger on moto with
//! `useCachedMetrics: true`, served from the value the scale loop last read; KEDA refuses the
//! option on cron triggers) requested by wrk with 64 keep-alive connections, through
//! the real aggregator (kube-apiserver → APIService → the server) and directly against the
//! server, with the bearer token of a user allowed to read external metrics (the servers review
//! it with TokenReview and SubjectAccessReview, as in a cluster).

use std::path::Path;
use std::time::{Duration, Instant};

use ebb_testbackends::moto::Moto;

use super::activation::{create_queue, sqs};
use super::{CREATE_CONCURRENCY, Ctx, Figure};
use crate::kubeapi::{self, HpaSet};
use crate::objects::{self, NS};
use crate::plane::{Plane, PlaneKind};
use crate::programs;
use crate::system::{Limits, System};

const CONNECTIONS: u32 = 64;
const THREADS: u32 = 2;

pub async fn run(ctx: &Ctx, kind: PlaneKind, system: &System, dir: &Path) -> Result<Vec<Figure>, String> {
    let moto = tokio::task::spawn_blocking(Moto::start).await.map_err(|e| format!("task: {e}"))??;
    let plane = programs::plane_for(kind, system, dir).await?;
    let result = measure(ctx, &plane, system, &moto).await;
    plane.stop().await;
    drop(moto);
    result
}

async fn measure(ctx: &Ctx, plane: &Plane, system: &System, moto: &Moto) -> Result<Vec<Figure>, String> {
    let client = &plane.client;
    let sqs_http =
        reqwest::Client::builder().timeout(Duration::from_secs(10)).build().map_err(|e| format!("{e}"))?;
    let endpoint = moto.endpoint();
    let queue = create_queue(&sqs_http, &endpoint, "metrics").await?;
    for _ in 0..3 {
        sqs(
            &sqs_http,
            &endpoint,
            &[("Action", "SendMessage"), ("QueueUrl", &queue), ("MessageBody", "bench")],
        )
        .await?;
    }
    let mut objs = objects::aws_keys(NS);
    objs.push(objects::deployment(NS, "app-0", 0));
    objs.push(objects::sqs_so(NS, "so-0", "app-0", &queue, &endpoint, true));
    kubeapi::create_all(client, objs, CREATE_CONCURRENCY).await?;
    let (hpas, watch) = HpaSet::watch(client);
    let op = programs::operator(&ctx.bins, plane, system, Limits::default(), true).await?;
    let server = programs::metrics_server(&ctx.bins, plane, system, &op).await?;
    hpas.wait_for(1, Duration::from_secs(120)).await?;
    watch.abort();
    let hpa = kubeapi::get(
        client,
        &format!("/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers/keda-hpa-so-0"),
    )
    .await?;
    let metric = hpa["spec"]["metrics"][0]["external"]["metric"]["name"]
        .as_str()
        .ok_or_else(|| format!("the HPA has no external metric: {hpa}"))?
        .to_owned();
    let path = format!(
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/{NS}/{metric}?labelSelector=scaledobject.keda.sh%2Fname%3Dso-0"
    );
    let token = plane.reader_token().await?;
    let direct = server.serving.ok_or("the metrics server has no serving address")?;
    let via_aggregator = format!("{}{path}", plane.server());
    let direct_url = format!("https://127.0.0.1:{}{path}", direct.port());

    // Both answer 200 with the value before the load starts (the first poll filled the cache).
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("{e}"))?;
    for url in [&via_aggregator, &direct_url] {
        let start = Instant::now();
        loop {
            let r = http.get(url).bearer_auth(&token).send().await;
            let (status, body) = match r {
                Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
                Err(e) => (0, e.to_string()),
            };
            if status == 200 && body.contains("\"items\"") {
                break;
            }
            if start.elapsed() > Duration::from_secs(90) {
                return Err(format!(
                    "GET {url}: {status} {}\nserver log:\n{}",
                    body.chars().take(300).collect::<String>(),
                    server.log_tail(15)
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let mut figures = Vec::new();
    for (what, url) in [("via aggregator", &via_aggregator), ("direct", &direct_url)] {
        let (rps, p50, p99) = wrk(url, &token, ctx.wrk_seconds).await?;
        figures.push(Figure::new(format!("{what}: req/s"), rps));
        figures.push(Figure::new(format!("{what}: p50 (ms)"), p50));
        figures.push(Figure::new(format!("{what}: p99 (ms)"), p99));
    }
    drop(server);
    drop(op);
    Ok(figures)
}

/// Runs wrk; (req/s, p50 ms, p99 ms). Error answers make the run fail.
async fn wrk(url: &str, token: &str, seconds: u32) -> Result<(f64, f64, f64), String> {
    let out = tokio::process::Command::new("wrk")
        .arg(format!("-t{THREADS}"))
        .arg(format!("-c{CONNECTIONS}"))
        .arg(format!("-d{seconds}s"))
        .arg("--latency")
        .arg("-H")
        .arg(format!("Authorization: Bearer {token}"))
        .arg(url)
        .output()
        .await
        .map_err(|e| format!("cannot run wrk (apt-get install wrk): {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    parse_wrk(&text)
}

/// (req/s, p50 ms, p99 ms) of wrk's `--latency` output.
pub fn parse_wrk(text: &str) -> Result<(f64, f64, f64), String> {
    if let Some(line) = text.lines().find(|l| l.contains("Non-2xx")) {
        return Err(format!("wrk saw error answers: {}", line.trim()));
    }
    let field = |prefix: &str| -> Option<&str> {
        text.lines().find(|l| l.trim_start().starts_with(prefix))?.split_whitespace().nth(1)
    };
    let rps: f64 =
        field("Requests/sec:").and_then(|v| v.parse().ok()).ok_or_else(|| format!("wrk output: {text}"))?;
    let p50 = field("50%").and_then(to_ms).ok_or_else(|| format!("wrk output: {text}"))?;
    let p99 = field("99%").and_then(to_ms).ok_or_else(|| format!("wrk output: {text}"))?;
    Ok((rps, p50, p99))
}

/// A wrk duration (`850.00us`, `1.23ms`, `1.01s`, `2.00m`) in milliseconds.
fn to_ms(v: &str) -> Option<f64> {
    let (num, factor) = if let Some(n) = v.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = v.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        return None;
    };
    num.parse::<f64>().ok().map(|x| x * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_is_read() {
        let text = "Running 10s test @ https://x\n  2 threads and 64 connections\n  Latency Distribution\n     50%  850.00us\n     75%    1.20ms\n     90%    2.00ms\n     99%    1.01s\n  1000 requests in 10.00s, 1.00MB read\nRequests/sec:   1234.56\nTransfer/sec:    100.00KB\n";
        let (rps, p50, p99) = parse_wrk(text).unwrap();
        assert_eq!(rps, 1234.56);
        assert!((p50 - 0.85).abs() < 1e-9);
        assert!((p99 - 1010.0).abs() < 1e-9);
        assert!(parse_wrk("  Non-2xx or 3xx responses: 5\n").is_err());
        assert!(parse_wrk("nothing").is_err());
    }
}
