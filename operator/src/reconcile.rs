//! Reconcile of one ScaledObject: label it, keep the finalizer only for
//! restoreToOriginalReplicaCount, honour pause, check the target through `/scale` (recording
//! kind, GVKR and original replicas), resolve authentication, parse with the shared parser,
//! server-side apply the HPA (deleting one left behind by a rename), write status, and start or
//! restart the scale loop when the spec changed. Errors back off per object.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ebb_api::annotations::ScalingAnnotations;
use ebb_api::constants::{FIELD_MANAGER_HPA, FIELD_MANAGER_LABELS, FINALIZER, SCALED_OBJECT_NAME_LABEL};
use ebb_api::{ScaledObject, ScaledObjectStatus};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use crate::context::Ctx;
use crate::error::Error;
use crate::{auth, scaleloop, status, target};

/// How long a healthy object waits before its next periodic reconcile.
const RESYNC: Duration = Duration::from_secs(300);

/// The reconcile entry point for kube-runtime's Controller.
pub async fn reconcile(so: Arc<ScaledObject>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let ns = so.metadata.namespace.clone().unwrap_or_default();
    let name = so.metadata.name.clone().unwrap_or_default();
    let api: Api<ScaledObject> = Api::namespaced(ctx.client.clone(), &ns);
    let state = ctx.object(&ns, &name);
    ctx.register(&ns, &state, so.spec.triggers.iter().map(|t| t.type_.clone()).collect());

    if so.metadata.deletion_timestamp.is_some() {
        return finalize(&ctx, &api, &so).await;
    }
    // Fast path: nothing this object's reconcile depends on changed since the last one (the
    // event came from the loop's own status write), so only the periodic resync remains.
    let fp = scaleloop::fingerprint(&so);
    let recent = state.reconciled.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    if let Some((last, at)) = recent
        && last == fp
        && at.elapsed() < RESYNC
        && metadata_in_place(&so)
        && state.scale_loop.lock().await.as_ref().is_some_and(|l| l.fingerprint == fp)
    {
        return Ok(Action::requeue(RESYNC.saturating_sub(at.elapsed())));
    }
    ensure_metadata(&api, &so).await?;

    let mut model = state.status.lock().await.clone().or_else(|| so.status.clone()).unwrap_or_default();
    if model.conditions.is_empty() {
        model.conditions = status::initial_conditions(crate::error::time::now());
    }
    let now = crate::error::time::now;

    // Pause: stop the loop, remove the HPA, optionally pin replicas. The annotations are read
    // with KEDA's semantics by the parser every component shares.
    let annotations = ScalingAnnotations::read(so.metadata.annotations.as_ref());
    if let Some(e) = annotations.error() {
        // Present means paused (as in KEDA), but there is no count to pin: scale nothing and say
        // why, without retrying a write that cannot succeed.
        *state.scale_loop.lock().await = None;
        delete_hpa(&ctx, &ns, &so.hpa_name()).await?;
        status::check_failed(&mut model.conditions, &e.to_string(), now());
        save(&ctx, &state, &ns, &name, model).await?;
        ctx.event(&so, EventType::Warning, "ScaledObjectCheckFailed", e.to_string()).await;
        return Ok(Action::requeue(RESYNC));
    }
    let paused_replicas = annotations.pinned_replicas();
    if annotations.paused {
        *state.scale_loop.lock().await = None;
        delete_hpa(&ctx, &ns, &so.hpa_name()).await?;
        if let Some(n) = paused_replicas {
            let t = ctx.resolver.resolve(&ctx.client, &so.spec.scale_target_ref).await?;
            target::set_replicas(&ctx.client, &t, &ns, n).await?;
            ctx.replicas.set(&t, &ns, n);
        }
        let was_paused = model.conditions.iter().any(|c| c.type_ == status::PAUSED && c.status == "True");
        status::set_paused(&mut model.conditions, true, now());
        model.paused_replica_count = paused_replicas;
        save(&ctx, &state, &ns, &name, model).await?;
        ctx.metrics.set_paused(&ns, &name, true);
        if !was_paused {
            ctx.event(&so, EventType::Normal, "ScaledObjectPaused", "ScaledObject is paused".into()).await;
        }
        return Ok(Action::requeue(RESYNC));
    }
    let was_paused = model.conditions.iter().any(|c| c.type_ == status::PAUSED && c.status == "True");
    status::set_paused(&mut model.conditions, false, now());
    model.paused_replica_count = None;
    ctx.metrics.set_paused(&ns, &name, false);
    if was_paused {
        ctx.event(&so, EventType::Normal, "ScaledObjectUnpaused", "ScaledObject is unpaused".into()).await;
    }

    // Target.
    let checked = check(&ctx, &so, &ns).await;
    let (t, scale, parsed) = match checked {
        Ok(v) => v,
        // A failing API call says nothing about the object: keep its loop and status, retry.
        Err(e @ Error::Kube(_)) => return Err(e),
        Err(e) => {
            *state.scale_loop.lock().await = None;
            status::check_failed(&mut model.conditions, &e.to_string(), now());
            save(&ctx, &state, &ns, &name, model).await?;
            ctx.event(&so, EventType::Warning, "ScaledObjectCheckFailed", e.to_string()).await;
            return Err(e);
        }
    };
    if model.original_replica_count.is_none() {
        model.original_replica_count = scale.spec.and_then(|s| s.replicas);
    }
    model.scale_target_kind = Some(t.kind_string());
    model.scale_target_gvkr = Some(t.gvkr.clone());

    // HPA, with a rename deleting the old one.
    let hpa = crate::hpa::desired_hpa(&so, &parsed).map_err(|e| Error::Invalid(e.to_string()))?;
    let hpa_name = so.hpa_name();
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(ctx.client.clone(), &ns);
    hpas.patch(
        &hpa_name,
        &PatchParams::apply(FIELD_MANAGER_HPA).force(),
        &Patch::Apply(crate::hpa::hpa_as_apply_patch(&hpa)),
    )
    .await
    .map_err(Error::Kube)?;
    if let Some(old) = model.hpa_name.clone().filter(|o| *o != hpa_name) {
        delete_hpa(&ctx, &ns, &old).await?;
    }
    let first_time = model.hpa_name.is_none();
    model.hpa_name = Some(hpa_name);
    model.external_metric_names = parsed.metric_names();
    model.triggers_types = status::triggers_types(&so);
    model.authentications_types = status::authentications_types(&so);
    if !model.conditions.iter().any(|c| c.type_ == status::READY && c.status == "True") {
        status::ready_from_triggers(&mut model.conditions, &[], so.spec.fallback.is_some(), now());
    }
    save(&ctx, &state, &ns, &name, model).await?;
    if first_time {
        ctx.event(&so, EventType::Normal, "ScaledObjectReady", "ScaledObject is ready for scaling".into())
            .await;
    }

    // Loop: restart only when this object's spec or scaling annotations changed.
    let mut guard = state.scale_loop.lock().await;
    if guard.as_ref().is_none_or(|l| l.fingerprint != fp) {
        *guard = None;
        let types: Vec<&str> = parsed.triggers.iter().map(|t| t.type_.as_str()).collect();
        match scaleloop::spawn(ctx.clone(), state.clone(), so.clone(), &parsed, t) {
            Ok(h) => {
                *guard = Some(h);
                ctx.event(
                    &so,
                    EventType::Normal,
                    "KEDAScalersStarted",
                    format!("Started scalers watch: {}", types.join(", ")),
                )
                .await;
            }
            Err(e) => {
                ctx.event(&so, EventType::Warning, "KEDAScalerFailed", e.clone()).await;
                return Err(Error::Invalid(e));
            }
        }
    }
    state.failures.store(0, Ordering::Relaxed);
    *state.reconciled.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
        Some((fp, std::time::Instant::now()));
    Ok(Action::requeue(RESYNC))
}

/// Whether parsing may read the target container's environment: a `…FromEnv` parameter, or an
/// authentication (whose `env` entries are only known once it is read).
fn needs_env(so: &ScaledObject) -> bool {
    so.spec
        .triggers
        .iter()
        .any(|t| t.authentication_ref.is_some() || t.metadata.keys().any(|k| k.ends_with("FromEnv")))
}

/// Validates the target and the triggers; errors say what to fix. Returns the target's Scale.
async fn check(
    ctx: &Ctx,
    so: &ScaledObject,
    ns: &str,
) -> Result<(target::Target, k8s_openapi::api::autoscaling::v1::Scale, ebb_scalers::ParsedScaledObject), Error>
{
    let t = ctx.resolver.resolve(&ctx.client, &so.spec.scale_target_ref).await?;
    let scale = target::get_scale(&ctx.client, &t, ns).await?;
    let env = if needs_env(so) {
        target::container_env(
            &ctx.client,
            &t,
            ns,
            so.spec.scale_target_ref.env_source_container_name.as_deref(),
        )
        .await
    } else {
        Default::default()
    };
    let pctx = auth::parse_context(ctx, so, &t, env).await?;
    let parsed = ebb_scalers::parse_scaled_object(so, &pctx)
        .map_err(|es| Error::Invalid(es.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")))?;
    Ok((t, scale, parsed))
}

async fn save(
    ctx: &Ctx,
    state: &crate::context::ObjectState,
    ns: &str,
    name: &str,
    model: ScaledObjectStatus,
) -> Result<(), Error> {
    ctx.write_status(ns, name, &model).await?;
    *state.status.lock().await = Some(model);
    Ok(())
}

async fn delete_hpa(ctx: &Ctx, ns: &str, name: &str) -> Result<(), Error> {
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(ctx.client.clone(), ns);
    match hpas.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(Error::Kube(e)),
    }
}

/// Whether the label and finalizer are as [`ensure_metadata`] leaves them.
fn metadata_in_place(so: &ScaledObject) -> bool {
    let name = so.metadata.name.clone().unwrap_or_default();
    let labelled = so.metadata.labels.as_ref().and_then(|l| l.get(SCALED_OBJECT_NAME_LABEL)) == Some(&name);
    let has_finalizer = so.metadata.finalizers.as_ref().is_some_and(|f| f.iter().any(|f| f == FINALIZER));
    labelled && has_finalizer == so.spec.restore_to_original_replica_count()
}

/// The label selecting the object's metrics, and the finalizer only when restore is asked for.
async fn ensure_metadata(api: &Api<ScaledObject>, so: &ScaledObject) -> Result<(), Error> {
    let name = so.metadata.name.clone().unwrap_or_default();
    let labelled = so.metadata.labels.as_ref().and_then(|l| l.get(SCALED_OBJECT_NAME_LABEL)) == Some(&name);
    let finalizers = so.metadata.finalizers.clone().unwrap_or_default();
    let has_finalizer = finalizers.iter().any(|f| f == FINALIZER);
    let want_finalizer = so.spec.restore_to_original_replica_count();
    if labelled && has_finalizer == want_finalizer {
        return Ok(());
    }
    let mut fs: Vec<String> = finalizers.into_iter().filter(|f| f != FINALIZER).collect();
    if want_finalizer {
        fs.push(FINALIZER.to_owned());
    }
    let patch = serde_json::json!({"metadata": {"labels": {SCALED_OBJECT_NAME_LABEL: name}, "finalizers": fs,
        "resourceVersion": so.metadata.resource_version}});
    let pp = PatchParams { field_manager: Some(FIELD_MANAGER_LABELS.into()), ..Default::default() };
    api.patch(&name, &pp, &Patch::Merge(&patch)).await.map_err(Error::Kube)?;
    Ok(())
}

/// Deletion: stop the loop; with the finalizer, restore the original replicas, then release.
async fn finalize(ctx: &Arc<Ctx>, api: &Api<ScaledObject>, so: &ScaledObject) -> Result<Action, Error> {
    let ns = so.metadata.namespace.clone().unwrap_or_default();
    let name = so.metadata.name.clone().unwrap_or_default();
    if let Some(state) = ctx.forget(&ns, &name) {
        *state.scale_loop.lock().await = None;
        ctx.unregister(&ns, &state);
    }
    ctx.metrics.forget(&ns, &name);
    let finalizers = so.metadata.finalizers.clone().unwrap_or_default();
    if !finalizers.iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    if so.spec.restore_to_original_replica_count()
        && let Some(original) = so.status.as_ref().and_then(|s| s.original_replica_count)
        && let Ok(t) = ctx.resolver.resolve(&ctx.client, &so.spec.scale_target_ref).await
    {
        match target::set_replicas(&ctx.client, &t, &ns, original).await {
            Ok(()) | Err(Error::TargetNotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let rest: Vec<String> = finalizers.into_iter().filter(|f| f != FINALIZER).collect();
    let patch = serde_json::json!({"metadata": {"finalizers": rest, "resourceVersion": so.metadata.resource_version}});
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(Error::Kube)?;
    ctx.event(so, EventType::Normal, "ScaledObjectDeleted", "ScaledObject was deleted".into()).await;
    Ok(Action::await_change())
}

/// Per-object exponential backoff: 1 s, 2 s, 4 s … capped at 5 minutes.
pub fn error_policy(so: Arc<ScaledObject>, err: &Error, ctx: Arc<Ctx>) -> Action {
    let ns = so.metadata.namespace.clone().unwrap_or_default();
    let name = so.metadata.name.clone().unwrap_or_default();
    let n = ctx.object(&ns, &name).failures.fetch_add(1, Ordering::Relaxed);
    ctx.metrics.object_error(&ns, &name);
    tracing::warn!(namespace = ns, name, reason = err.reason(), "reconcile failed: {err}");
    Action::requeue(Duration::from_secs(1u64 << n.min(8)).min(Duration::from_secs(300)))
}
