//! Time from creating N ScaledObjects (their Deployments already exist, the operator is ready)
//! until N HPAs exist, seen by a watch: at each program's default client limits, and with both
//! at the same limits. The cron windows are closed, so no scaling competes with the HPAs for the
//! client's budget.

use std::path::Path;
use std::time::{Duration, Instant};

use super::{CREATE_CONCURRENCY, Ctx, DEADLINE_MISSED, Figure, deployments, settle_limit};
use crate::kubeapi::{self, HpaSet};
use crate::objects::{self, NS};
use crate::plane::PlaneKind;
use crate::programs;
use crate::system::{Limits, System};

pub const EQUAL_QPS: f32 = 50.0;
pub const EQUAL_BURST: u32 = 100;

pub async fn run(
    ctx: &Ctx,
    kind: PlaneKind,
    system: &System,
    dir: &Path,
    n: usize,
    equal_limits: bool,
) -> Result<Vec<Figure>, String> {
    let plane = programs::plane_for(kind, system, dir).await?;
    let result = async {
        let client = &plane.client;
        kubeapi::create_all(client, deployments(NS, n, 0), CREATE_CONCURRENCY).await?;
        let limits = if equal_limits {
            Limits { qps: Some(EQUAL_QPS), burst: Some(EQUAL_BURST) }
        } else {
            Limits::default()
        };
        let op = programs::operator(&ctx.bins, &plane, system, limits, false).await?;
        let (hpas, watch) = HpaSet::watch(client);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let window = objects::cron_window(false);
        let sos = (0..n)
            .map(|i| objects::cron_so(NS, &format!("so-{i}"), &format!("app-{i}"), 30, &window, false))
            .collect();
        let start = Instant::now();
        kubeapi::create_all(client, sos, CREATE_CONCURRENCY).await?;
        let created = start.elapsed().as_secs_f64();
        hpas.wait_for(n, settle_limit(ctx, n))
            .await
            .map_err(|e| format!("{DEADLINE_MISSED}{e}\noperator log:\n{}", op.proc.log_tail(20)))?;
        let took = start.elapsed().as_secs_f64();
        watch.abort();
        drop(op);
        Ok(vec![
            Figure::new("seconds", took),
            Figure::new("of which creating the ScaledObjects (s)", created),
        ])
    }
    .await;
    plane.stop().await;
    result
}
