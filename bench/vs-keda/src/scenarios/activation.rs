//! Activation latency on moto SQS: T ScaledObjects (pollingInterval 1, minReplicaCount 0) each
//! on a queue of its own and a Deployment at 0 replicas; once every loop runs, one message is
//! sent to one queue every 1.05 s, so the sends fall at T different phases of the one-second
//! poll; latency = the message sent → the Deployment seen by a watch with `spec.replicas` ≥ 1.

use std::path::Path;
use std::time::{Duration, Instant};

use ebb_testbackends::moto::Moto;

use super::{CREATE_CONCURRENCY, Ctx, Figure};
use crate::kubeapi::{self, HpaSet, ScaledUp};
use crate::objects::{self, NS};
use crate::plane::{Plane, PlaneKind};
use crate::programs;
use crate::stats;
use crate::system::{Limits, System};

/// Spacing of the sends: one second plus a twentieth, so 20 trials cover a whole poll period.
const SPACING: Duration = Duration::from_millis(1050);

pub async fn run(
    ctx: &Ctx,
    kind: PlaneKind,
    system: &System,
    dir: &Path,
    trials: usize,
) -> Result<Vec<Figure>, String> {
    let moto = tokio::task::spawn_blocking(Moto::start).await.map_err(|e| format!("task: {e}"))??;
    let plane = programs::plane_for(kind, system, dir).await?;
    let result = measure(ctx, &plane, system, &moto, trials).await;
    plane.stop().await;
    drop(moto);
    result
}

/// A fake SigV4 Authorization header: moto reads the region from it and checks nothing else.
const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIAEBBBENCH0000TEST/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=00";

pub async fn sqs(http: &reqwest::Client, endpoint: &str, form: &[(&str, &str)]) -> Result<String, String> {
    let mut form = form.to_vec();
    form.push(("Version", "2012-11-05"));
    let r = http
        .post(endpoint)
        .header("authorization", AUTH)
        .form(&form)
        .send()
        .await
        .map_err(|e| format!("moto: {e}"))?;
    let status = r.status();
    let text = r.text().await.map_err(|e| format!("moto: {e}"))?;
    if status.is_success() { Ok(text) } else { Err(format!("moto {form:?}: {status} {text}")) }
}

/// Creates queue `name` on moto; its URL.
pub async fn create_queue(http: &reqwest::Client, endpoint: &str, name: &str) -> Result<String, String> {
    let xml = sqs(http, endpoint, &[("Action", "CreateQueue"), ("QueueName", name)]).await?;
    xml.split("<QueueUrl>")
        .nth(1)
        .and_then(|r| r.split("</QueueUrl>").next())
        .map(str::to_owned)
        .ok_or_else(|| format!("CreateQueue answered without a QueueUrl: {xml}"))
}

async fn measure(
    ctx: &Ctx,
    plane: &Plane,
    system: &System,
    moto: &Moto,
    trials: usize,
) -> Result<Vec<Figure>, String> {
    let client = &plane.client;
    let http =
        reqwest::Client::builder().timeout(Duration::from_secs(10)).build().map_err(|e| format!("{e}"))?;
    let endpoint = moto.endpoint();
    let mut urls = Vec::new();
    for i in 0..trials {
        urls.push(create_queue(&http, &endpoint, &format!("q-{i}")).await?);
    }
    let mut objs = objects::aws_keys(NS);
    for (i, url) in urls.iter().enumerate() {
        objs.push(objects::deployment(NS, &format!("app-{i}"), 0));
        objs.push(objects::sqs_so(NS, &format!("so-{i}"), &format!("app-{i}"), url, &endpoint, false));
    }
    kubeapi::create_all(client, objs, CREATE_CONCURRENCY).await?;
    let (hpas, hpa_watch) = HpaSet::watch(client);
    let (scaled, scale_watch) = ScaledUp::watch(client);
    let op = programs::operator(&ctx.bins, plane, system, Limits::default(), false).await?;
    hpas.wait_for(trials, Duration::from_secs(120))
        .await
        .map_err(|e| format!("{e}\noperator log:\n{}", op.proc.log_tail(20)))?;
    hpa_watch.abort();
    // Every loop polls its empty queue for a while first.
    tokio::time::sleep(Duration::from_secs(5)).await;
    if scaled.count() > 0 {
        return Err(format!("{} Deployments scaled up before any message", scaled.count()));
    }
    let start = tokio::time::Instant::now();
    let mut sent = Vec::with_capacity(trials);
    for (i, url) in urls.iter().enumerate() {
        tokio::time::sleep_until(start + SPACING * i as u32).await;
        let at = Instant::now();
        sqs(&http, &endpoint, &[("Action", "SendMessage"), ("QueueUrl", url), ("MessageBody", "bench")])
            .await?;
        sent.push(at);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while scaled.count() < trials && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    scale_watch.abort();
    let mut latencies = Vec::new();
    for (i, at) in sent.iter().enumerate() {
        let seen = scaled.seen(&format!("{NS}/app-{i}")).ok_or_else(|| {
            format!("app-{i} not scaled up 30 s after its message\noperator log:\n{}", op.proc.log_tail(20))
        })?;
        latencies.push(seen.saturating_duration_since(*at).as_secs_f64() * 1000.0);
    }
    drop(op);
    Ok(vec![
        Figure::new("message → /scale 1: p50 (ms)", stats::percentile(&latencies, 0.5)),
        Figure::new("message → /scale 1: p99 (ms)", stats::percentile(&latencies, 0.99)),
    ])
}
