//! Performs a reconcile's planned [`Step`]s, in order, stopping at the first that fails: the
//! Kubernetes writes (metadata and finalizer merge patches, HPA server-side apply and delete,
//! `/scale` writes, status), the events, the scale loop's start and stop, and the object's
//! bookkeeping (status model, backoff counter, fast-path fingerprint, metrics).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use ebb_api::ScaledObject;
use ebb_api::constants::{FIELD_MANAGER_HPA, FIELD_MANAGER_LABELS, SCALED_OBJECT_NAME_LABEL};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::events::EventType;

use super::plan::{Checked, Step};
use crate::context::{Ctx, ObjectState};
use crate::error::Error;
use crate::{scaleloop, target};

/// The object a plan is applied to.
pub struct Subject<'a> {
    pub ctx: &'a Arc<Ctx>,
    pub so: &'a Arc<ScaledObject>,
    pub state: &'a ObjectState,
    pub ns: &'a str,
    pub name: &'a str,
}

impl Subject<'_> {
    /// Performs `steps` in order; `checked` is the target check the steps were planned from
    /// (needed to start a loop).
    pub async fn apply(&self, steps: Vec<Step>, checked: Option<&Checked>) -> Result<(), Error> {
        for step in steps {
            self.step(step, checked).await?;
        }
        Ok(())
    }

    async fn step(&self, step: Step, checked: Option<&Checked>) -> Result<(), Error> {
        let Self { ctx, so, state, ns, name } = *self;
        match step {
            Step::Metadata { finalizers, resource_version } => {
                let patch = serde_json::json!({"metadata": {"labels": {SCALED_OBJECT_NAME_LABEL: name},
                    "finalizers": finalizers, "resourceVersion": resource_version}});
                let pp =
                    PatchParams { field_manager: Some(FIELD_MANAGER_LABELS.into()), ..Default::default() };
                self.objects().patch(name, &pp, &Patch::Merge(&patch)).await.map_err(Error::Kube)?;
            }
            Step::StopLoop => *state.scale_loop.lock().await = None,
            Step::DeleteHpa { name: hpa } => self.delete_hpa(&hpa).await?,
            Step::PinReplicas { replicas } => {
                let t = ctx.resolver.resolve(&ctx.client, &so.spec.scale_target_ref).await?;
                target::set_replicas(&ctx.client, &t, ns, replicas).await?;
                ctx.replicas.set(&t, ns, replicas);
            }
            Step::ApplyHpa(hpa) => {
                let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(ctx.client.clone(), ns);
                let body = crate::hpa::hpa_as_apply_patch(&hpa);
                let pp = PatchParams::apply(FIELD_MANAGER_HPA).force();
                hpas.patch(&so.hpa_name(), &pp, &Patch::Apply(body)).await.map_err(Error::Kube)?;
            }
            Step::WriteStatus(model) => {
                ctx.write_status(ns, name, &model).await?;
                state.model.set(*model).await;
            }
            Step::PausedMetric { paused } => ctx.metrics.set_paused(ns, name, paused),
            Step::Event(e) => ctx.event(so, e.type_, e.reason, e.note).await,
            Step::StartLoop => {
                let Some(checked) = checked else {
                    return Err(Error::Internal("a scale loop can only start after the target check"));
                };
                let spawned = {
                    let mut running = state.scale_loop.lock().await;
                    *running = None;
                    let spawned = scaleloop::spawn(
                        ctx.core.clone(),
                        state.model.clone(),
                        so.clone(),
                        &checked.parsed,
                        checked.target.clone(),
                    );
                    spawned.map(|handle| *running = Some(handle))
                };
                if let Err(e) = spawned {
                    ctx.event(so, EventType::Warning, "KEDAScalerFailed", e.to_string()).await;
                    return Err(e);
                }
            }
            Step::Reconciled { fingerprint } => {
                state.failures.store(0, Ordering::Relaxed);
                *state.reconciled.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some((fingerprint, Instant::now()));
            }
            Step::Forget => {
                if let Some(state) = ctx.forget(ns, name) {
                    *state.scale_loop.lock().await = None;
                    ctx.unregister(ns, &state);
                }
                ctx.metrics.forget(ns, name);
            }
            Step::RestoreReplicas { replicas } => {
                // A target that cannot be resolved or is gone has nothing to restore.
                if let Ok(t) = ctx.resolver.resolve(&ctx.client, &so.spec.scale_target_ref).await {
                    match target::set_replicas(&ctx.client, &t, ns, replicas).await {
                        Ok(()) | Err(Error::TargetNotFound(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            Step::ReleaseFinalizer { finalizers, resource_version } => {
                let patch = serde_json::json!({"metadata": {"finalizers": finalizers, "resourceVersion": resource_version}});
                let pp = PatchParams::default();
                self.objects().patch(name, &pp, &Patch::Merge(&patch)).await.map_err(Error::Kube)?;
            }
        }
        Ok(())
    }

    fn objects(&self) -> Api<ScaledObject> {
        Api::namespaced(self.ctx.client.clone(), self.ns)
    }

    async fn delete_hpa(&self, hpa: &str) -> Result<(), Error> {
        let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(self.ctx.client.clone(), self.ns);
        match hpas.delete(hpa, &DeleteParams::background()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(Error::Kube(e)),
        }
    }
}
