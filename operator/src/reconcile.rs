//! Reconcile of one ScaledObject: label it, keep the finalizer only for
//! restoreToOriginalReplicaCount, honour pause, check the target through `/scale` (recording
//! kind, GVKR and original replicas), resolve authentication, parse with the shared parser,
//! server-side apply the HPA (deleting one left behind by a rename), write status, and start or
//! restart the scale loop when the spec changed. Errors back off per object.
//!
//! The work is split three ways: [`plan`] decides (pure: the ordered writes, events and the
//! requeue, table-tested), `observe` reads the target, `apply` performs the steps. A reconcile
//! runs plan → apply, and when the object is to be scaled, observe → plan → apply again (so the
//! label patch and pause handling still precede any read of the target). Each reconcile runs in
//! a `reconcile{namespace, scaled_object}` span and logs one line saying how it ended.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ebb_api::ScaledObject;
use kube::runtime::controller::Action;
use tracing::Instrument;

use crate::context::{Ctx, ObjectState};
use crate::error::Error;
use crate::scaleloop;

mod apply;
mod observe;
pub mod plan;
#[cfg(test)]
mod plan_tests;

use plan::{End, Input, Observed, Step};

/// How long a healthy object waits before its next periodic reconcile.
pub use plan::RESYNC;

/// The reconcile entry point for kube-runtime's Controller.
pub async fn reconcile(so: Arc<ScaledObject>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let ns = so.metadata.namespace.clone().unwrap_or_default();
    let name = so.metadata.name.clone().unwrap_or_default();
    let span = span(&ns, &name);
    run(so, ctx, ns, name).instrument(span).await
}

/// [`reconcile`], boxed: the controller keeps each running reconcile's future in a table (one
/// entry per object being reconciled, sized for the largest number at once and never shrunk),
/// so a boxed future keeps that table to a pointer per entry instead of the whole reconcile's
/// state.
pub fn reconcile_boxed(
    so: Arc<ScaledObject>,
    ctx: Arc<Ctx>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Action, Error>> + Send>> {
    Box::pin(reconcile(so, ctx))
}

/// The span of one object's reconcile (and of its error policy).
fn span(ns: &str, name: &str) -> tracing::Span {
    tracing::info_span!("reconcile", namespace = ns, scaled_object = name)
}

async fn run(so: Arc<ScaledObject>, ctx: Arc<Ctx>, ns: String, name: String) -> Result<Action, Error> {
    let state = ctx.object(&ns, &name);
    ctx.register(&ns, &state, so.spec.triggers.iter().map(|t| t.type_.clone()).collect());
    let fingerprint = scaleloop::fingerprint(&so);
    let input = Input {
        so: &so,
        model: state.model.get().await,
        reconcile_fingerprint: format!("{fingerprint} {}", crate::hpa::metadata_fingerprint(&so)),
        fingerprint,
        running_loop: running_loop(&state).await,
        last_reconcile: state
            .reconciled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(|(fp, at)| (fp.clone(), at.elapsed())),
        hpa_scaling_active: ctx.hpas.scaling_active(&ns, &so.hpa_name()),
        now: crate::time::now(),
    };
    let subject = apply::Subject { ctx: &ctx, so: &so, state: &state, ns: &ns, name: &name };

    let first = plan::plan(&input);
    let mut done = labels(&first.steps);
    let result = match subject.apply(first.steps, None).await {
        Err(e) => Err(e),
        Ok(()) => match first.end {
            End::CheckTarget(model) => {
                let check = observe::check_target(&ctx, &so, &ns).await;
                let observed = Observed { check, running_loop: running_loop(&state).await };
                let second = plan::plan_checked(&input, *model, &observed);
                done.extend(labels(&second.steps));
                match subject.apply(second.steps, observed.check.as_ref().ok()).await {
                    Err(e) => Err(e),
                    Ok(()) => finish(second.end, observed.check.err()),
                }
            }
            end => finish(end, None),
        },
    };
    let done = done.join(", ");
    match &result {
        Ok((_, Some(after))) if done.is_empty() => {
            tracing::debug!("unchanged since the last reconcile; next in {}s", after.as_secs());
        }
        Ok((_, Some(after))) => tracing::info!(steps = done, "reconciled; next in {}s", after.as_secs()),
        Ok((_, None)) => tracing::info!(steps = done, "reconciled; next on a change"),
        Err(e) => tracing::debug!(steps = done, reason = e.reason(), "reconcile stopped: {e}"),
    }
    result.map(|(action, _)| action)
}

/// The fingerprint of the object's running scale loop.
async fn running_loop(state: &ObjectState) -> Option<String> {
    state.scale_loop.lock().await.as_ref().map(|l| l.fingerprint.clone())
}

/// The controller's answer for how a plan ended (with the requeue delay, for the log);
/// `check_error` is the target check's error.
fn finish(end: End, check_error: Option<Error>) -> Result<(Action, Option<Duration>), Error> {
    match end {
        End::Requeue(after) => Ok((Action::requeue(after), Some(after))),
        End::AwaitChange => Ok((Action::await_change(), None)),
        End::InvalidHpa(e) => Err(Error::Hpa(e)),
        End::CheckError => Err(check_error.unwrap_or(Error::Internal("a check error without a check"))),
        End::CheckTarget(_) => Err(Error::Internal("the target check was planned twice")),
    }
}

/// Short names of steps for the reconcile's log line (events by reason).
fn labels(steps: &[Step]) -> Vec<String> {
    steps
        .iter()
        .map(|s| match s {
            Step::Metadata { .. } => "metadata".into(),
            Step::StopLoop => "stop-loop".into(),
            Step::DeleteHpa { name } => format!("delete-hpa {name}"),
            Step::PinReplicas { replicas } => format!("pin-replicas {replicas}"),
            Step::ApplyHpa(_) => "apply-hpa".into(),
            Step::WriteStatus(_) => "status".into(),
            Step::PausedMetric { paused } => format!("paused-metric {paused}"),
            Step::Event(e) => format!("event {}", e.reason),
            Step::StartLoop => "start-loop".into(),
            Step::Reconciled { .. } => "done".into(),
            Step::Forget => "forget".into(),
            Step::RestoreReplicas { replicas } => format!("restore-replicas {replicas}"),
            Step::ReleaseFinalizer { .. } => "release-finalizer".into(),
        })
        .collect()
}

/// Per-object exponential backoff: 1 s, 2 s, 4 s … 256 s from the ninth consecutive failure on
/// (the 5-minute bound below is never reached; it only guards the arithmetic).
pub fn error_policy(so: Arc<ScaledObject>, err: &Error, ctx: Arc<Ctx>) -> Action {
    let ns = so.metadata.namespace.clone().unwrap_or_default();
    let name = so.metadata.name.clone().unwrap_or_default();
    let _span = span(&ns, &name).entered();
    let n = ctx.object(&ns, &name).failures.fetch_add(1, Ordering::Relaxed);
    ctx.metrics.object_error(&ns, &name);
    tracing::warn!(namespace = ns, name, reason = err.reason(), "reconcile failed: {err}");
    Action::requeue(Duration::from_secs(1u64 << n.min(8)).min(Duration::from_secs(300)))
}
