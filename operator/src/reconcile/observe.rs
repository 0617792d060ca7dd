//! The reads of a reconcile: what the plan needs to know about the object's scale target
//! (resolved through discovery, its `/scale`), the environment of its container when a trigger
//! may read it, and its authentications, then the triggers parsed with the shared parser, and
//! the metric each external scaler serves (its `GetMetricSpec`, [`external`]). The only effects
//! are the ones authentication resolution documents (the auth index is updated, and a loop built
//! with outdated credentials is stopped) and those of [`external`] (the last good answers are
//! remembered, and a loop whose external metric was renamed is stopped).

use ebb_api::ScaledObject;

use super::plan::Checked;
use crate::context::Ctx;
use crate::error::Error;
use crate::{auth, target};

mod external;

/// Whether parsing reads the environment of the target's `envSourceContainerName` container: a
/// `…FromEnv` parameter. (Authentication `env` entries read the containers they name when met.)
fn needs_env(so: &ScaledObject) -> bool {
    so.spec.triggers.iter().any(|t| t.metadata.keys().any(|k| k.ends_with("FromEnv")))
}

/// Validates the target and the triggers: a target serving `/scale`, its replicas, and the
/// parsed triggers; errors say what to fix (or are API failures, `Error::Kube`).
pub async fn check_target(ctx: &Ctx, so: &ScaledObject, ns: &str) -> Result<Checked, Error> {
    let t = ctx.resolver.resolve(&ctx.client, &so.spec.scale_target_ref).await?;
    let scale = target::get_scale(&ctx.client, &t, ns).await?;
    let pctx = auth::parse_context(ctx, so, &t, needs_env(so)).await?;
    let mut parsed = ebb_scalers::parse_scaled_object(so, &pctx).map_err(Error::Parse)?;
    external::metric_specs(ctx, so, ns, &mut parsed).await?;
    Ok(Checked { target: t, replicas: scale.spec.and_then(|s| s.replicas), parsed })
}
