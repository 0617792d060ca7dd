//! Turning a loaded ScaledObject into parsed triggers, the way the operator would: resolve each
//! trigger's TriggerAuthentication from the given manifests, take `…FromEnv` values from the
//! target's container (or this process's environment), and parse with the shared parser.

use std::collections::BTreeMap;

use ebb_scalers::auth::resolve;
use ebb_scalers::{ParseContext, ParsedScaledObject, parse_scaled_object};

use crate::error::CliError;
use crate::load::{Loaded, ManifestSources, Manifests};

/// Parses one ScaledObject with everything the manifests provide.
pub fn prepare(m: &Manifests, so: &Loaded) -> Result<ParsedScaledObject, CliError> {
    let obj = &so.object;
    let env = m.target_env(obj).unwrap_or_else(|| std::env::vars().collect::<BTreeMap<_, _>>());
    let sources = ManifestSources { manifests: m, namespace: obj.metadata.namespace.as_deref(), env: &env };
    let mut ctx = ParseContext { env: env.clone(), ..ParseContext::default() };
    let mut errors = Vec::new();
    for (i, t) in obj.spec.triggers.iter().enumerate() {
        let Some(r) = &t.authentication_ref else { continue };
        let spec = match r.kind() {
            "ClusterTriggerAuthentication" => m
                .cluster_trigger_auths
                .iter()
                .find(|a| a.metadata.name.as_deref() == Some(&r.name))
                .map(|a| &a.spec.auth),
            _ => {
                m.trigger_auths.iter().find(|a| a.metadata.name.as_deref() == Some(&r.name)).map(|a| &a.spec)
            }
        };
        let Some(spec) = spec else {
            errors.push(format!(
                "{}: spec.triggers[{i}].authenticationRef: {} {:?} not found; pass its manifest with another -f",
                so.source,
                r.kind(),
                r.name
            ));
            continue;
        };
        if let Some(pi) = &spec.pod_identity {
            ctx.pod_identity.insert(i, pi.clone());
        }
        match resolve(spec, &sources) {
            Ok(params) => {
                ctx.auth.insert(i, params);
            }
            Err(e) => {
                errors.push(format!("{}: spec.triggers[{i}].authenticationRef ({}): {e}", so.source, r.name))
            }
        }
    }
    if !errors.is_empty() {
        return Err(CliError::Invalid(errors));
    }
    parse_scaled_object(obj, &ctx)
        .map_err(|es| CliError::Invalid(es.iter().map(|e| format!("{}: {e}", so.source)).collect()))
}
