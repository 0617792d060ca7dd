//! TriggerAuthentication / ClusterTriggerAuthentication resolution against the API server: the
//! referenced authentication is read, the Secrets and ConfigMaps it names are fetched (from the
//! ScaledObject's namespace, or the operator's namespace for cluster-scoped ones) and the shared
//! resolver in ebb-scalers turns them into scaler parameters. Values are never logged. Pod
//! identities are passed on as declared; for `identityOwner: workload` the role annotated on the
//! target's ServiceAccount is read too.

use std::collections::BTreeMap;

use ebb_api::{ClusterTriggerAuthentication, ScaledObject, TriggerAuthentication, TriggerAuthenticationSpec};
use ebb_scalers::ParseContext;
use ebb_scalers::auth::{AuthSources, Lookup, resolve};
use ebb_scalers::aws::credentials::ROLE_ARN_ANNOTATION;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use kube::api::DynamicObject;
use kube::{Api, Client};

use crate::error::Error;
use crate::target::Target;

/// Everything one authentication needs, fetched up front so resolution itself is pure.
struct Fetched {
    secrets: BTreeMap<String, Option<Secret>>,
    config_maps: BTreeMap<String, Option<ConfigMap>>,
    env: BTreeMap<String, String>,
}

impl AuthSources for Fetched {
    fn secret(&self, name: &str, key: &str) -> Lookup {
        match self.secrets.get(name).and_then(Option::as_ref) {
            None => Lookup::NoObject,
            Some(s) => match s.data.as_ref().and_then(|d| d.get(key)) {
                Some(b) => Lookup::Found(String::from_utf8_lossy(&b.0).into_owned()),
                None => Lookup::NoKey,
            },
        }
    }
    fn config_map(&self, name: &str, key: &str) -> Lookup {
        match self.config_maps.get(name).and_then(Option::as_ref) {
            None => Lookup::NoObject,
            Some(c) => {
                c.data.as_ref().and_then(|d| d.get(key)).map_or(Lookup::NoKey, |v| Lookup::Found(v.clone()))
            }
        }
    }
    fn env(&self, name: &str, _container: Option<&str>) -> Option<String> {
        self.env.get(name).cloned()
    }
}

/// Everything parsing reads besides the ScaledObject: the target container's environment, the
/// resolved authentication parameters and pod identities per trigger and, only when a trigger
/// asks for the workload's identity, the role annotated on the target's ServiceAccount.
pub async fn parse_context(
    client: &Client,
    so: &ScaledObject,
    target: &Target,
    env: BTreeMap<String, String>,
    operator_namespace: &str,
) -> Result<ParseContext, Error> {
    let mut ctx = ParseContext { env, ..ParseContext::default() };
    resolve_all(client, so, operator_namespace, &mut ctx).await?;
    if ctx
        .pod_identity
        .values()
        .any(|p| p.provider == "aws" && p.identity_owner.as_deref() == Some("workload"))
    {
        let ns = so.metadata.namespace.as_deref().unwrap_or("default");
        ctx.workload_role_arn = workload_role_arn(client, target, ns).await?;
    }
    Ok(ctx)
}

/// The `eks.amazonaws.com/role-arn` annotation of the ServiceAccount the target's pods run as.
async fn workload_role_arn(client: &Client, t: &Target, ns: &str) -> Result<Option<String>, Error> {
    let obj = Api::<DynamicObject>::namespaced_with(client.clone(), ns, &t.resource)
        .get(&t.name)
        .await
        .map_err(Error::Kube)?;
    let pod = obj.data.pointer("/spec/template/spec");
    let name = ["serviceAccountName", "serviceAccount"]
        .iter()
        .find_map(|k| {
            pod.and_then(|p| p.get(k)).and_then(serde_json::Value::as_str).filter(|s| !s.is_empty())
        })
        .unwrap_or("default");
    let sa =
        Api::<ServiceAccount>::namespaced(client.clone(), ns).get_opt(name).await.map_err(Error::Kube)?;
    Ok(sa.and_then(|sa| sa.metadata.annotations?.get(ROLE_ARN_ANNOTATION).cloned()))
}

/// Resolves the parameters and collects the pod identity of every trigger that references an
/// authentication.
async fn resolve_all(
    client: &Client,
    so: &ScaledObject,
    operator_namespace: &str,
    ctx: &mut ParseContext,
) -> Result<(), Error> {
    let ns = so.metadata.namespace.as_deref().unwrap_or("default");
    for (i, t) in so.spec.triggers.iter().enumerate() {
        let Some(r) = &t.authentication_ref else { continue };
        let (spec, secret_ns): (TriggerAuthenticationSpec, &str) = match r.kind() {
            "ClusterTriggerAuthentication" => {
                let api: Api<ClusterTriggerAuthentication> = Api::all(client.clone());
                let cta = api.get_opt(&r.name).await.map_err(Error::Kube)?.ok_or_else(|| {
                    Error::Auth(format!(
                        "spec.triggers[{i}].authenticationRef: ClusterTriggerAuthentication {:?} not found",
                        r.name
                    ))
                })?;
                (cta.spec.auth, operator_namespace)
            }
            _ => {
                let api: Api<TriggerAuthentication> = Api::namespaced(client.clone(), ns);
                let ta = api.get_opt(&r.name).await.map_err(Error::Kube)?.ok_or_else(|| {
                    Error::Auth(format!(
                        "spec.triggers[{i}].authenticationRef: TriggerAuthentication {ns}/{:?} not found",
                        r.name
                    ))
                })?;
                (ta.spec, ns)
            }
        };
        if let Some(pi) = &spec.pod_identity {
            ctx.pod_identity.insert(i, pi.clone());
        }
        let mut fetched =
            Fetched { secrets: BTreeMap::new(), config_maps: BTreeMap::new(), env: ctx.env.clone() };
        let secrets: Api<Secret> = Api::namespaced(client.clone(), secret_ns);
        for s in &spec.secret_target_ref {
            if !fetched.secrets.contains_key(&s.name) {
                fetched.secrets.insert(s.name.clone(), secrets.get_opt(&s.name).await.map_err(Error::Kube)?);
            }
        }
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), secret_ns);
        for c in &spec.config_map_target_ref {
            if !fetched.config_maps.contains_key(&c.name) {
                fetched.config_maps.insert(c.name.clone(), cms.get_opt(&c.name).await.map_err(Error::Kube)?);
            }
        }
        let params = resolve(&spec, &fetched)
            .map_err(|e| Error::Auth(format!("spec.triggers[{i}].authenticationRef ({}): {e}", r.name)))?;
        ctx.auth.insert(i, params);
    }
    Ok(())
}
