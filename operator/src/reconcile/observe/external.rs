//! The metric each external trigger serves, asked of its scaler (`GetMetricSpec`, in parallel,
//! each bounded by the scaler timeout, through the egress policy) and recorded in the parsed
//! trigger, so that the HPA, `status.externalMetricNames`, `status.health`, the metrics API and
//! the loop all name it `s<index>-<metricName>` with the scaler's target size, as KEDA does.
//!
//! Failures: with no earlier answer the check fails (Ready=False naming the trigger and the
//! scaler's address; the reconcile retries with backoff) and no HPA is written — never one with
//! a made-up name. With an earlier good answer for the same question (kind, address, metadata)
//! the object keeps it: a scaler briefly down does not rename or remove a running object's
//! metric (the answers live in the object's state, so an operator restart asks again). A new
//! answer that differs from the remembered one stops the running loop, which the reconcile then
//! restarts with the new name.

use std::sync::PoisonError;

use ebb_api::ScaledObject;
use ebb_scalers::ParsedScaledObject;
use ebb_scalers::external::spec::Resolved;
use futures::future::join_all;

use crate::context::Ctx;
use crate::error::Error;

/// Asks every external trigger's scaler for its metric and records the answers in `parsed`.
pub async fn metric_specs(
    ctx: &Ctx,
    so: &ScaledObject,
    ns: &str,
    parsed: &mut ParsedScaledObject,
) -> Result<(), Error> {
    let asks: Vec<_> =
        parsed.triggers.iter().filter_map(|t| t.external().map(|c| (t.index, c.clone()))).collect();
    let state = ctx.object(ns, so.metadata.name.as_deref().unwrap_or_default());
    if asks.is_empty() {
        state.external_specs.lock().unwrap_or_else(PoisonError::into_inner).clear();
        return Ok(());
    }
    let name = so.metadata.name.as_deref().unwrap_or_default();
    let timeout = ctx.config.scaler_timeout;
    let answers = join_all(
        asks.iter()
            .map(|(index, c)| async move { (*index, c.identity(), c.metric_spec(ns, name, timeout).await) }),
    )
    .await;
    let mut renamed = false;
    let mut failed = None;
    {
        let mut known = state.external_specs.lock().unwrap_or_else(PoisonError::into_inner);
        known.retain(|i, _| asks.iter().any(|(j, _)| i == j));
        for (index, identity, answer) in answers {
            let Some(t) = parsed.triggers.iter_mut().find(|t| t.index == index) else { continue };
            let resolved = match answer {
                Ok(spec) => {
                    let r = Resolved { spec, namespace: ns.to_owned(), name: name.to_owned() };
                    let before = known.insert(index, (identity, r.clone()));
                    renamed |= before.is_some_and(|b| b != (identity, r.clone()));
                    r
                }
                Err(e) => {
                    let address = t.external().map(|c| c.address.clone()).unwrap_or_default();
                    match known.get(&index).filter(|(id, _)| *id == identity) {
                        Some((_, r)) => {
                            tracing::warn!(
                                trigger = index,
                                address,
                                "external scaler: GetMetricSpec failed; keeping its last metric: {e}"
                            );
                            r.clone()
                        }
                        None => {
                            known.remove(&index);
                            if failed.is_none() {
                                failed = Some(Error::MetricSpec {
                                    index,
                                    type_: t.type_.clone(),
                                    address,
                                    source: e,
                                });
                            }
                            continue;
                        }
                    }
                }
            };
            t.set_external(resolved);
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    if renamed {
        tracing::info!(namespace = ns, name, "external scaler metric changed: restarting the scale loop");
        *state.scale_loop.lock().await = None;
    }
    Ok(())
}
