//! TriggerAuthentication / ClusterTriggerAuthentication resolution against the API server: the
//! referenced authentication is read, the Secrets and ConfigMaps it names are fetched (from the
//! ScaledObject's namespace, or the operator's namespace for cluster-scoped ones) and the shared
//! resolver in ebb-scalers turns them into scaler parameters. Values are never logged. Pod
//! identities are passed on as declared; for `identityOwner: workload` the role annotated on the
//! target's ServiceAccount is read too.
//!
//! Also the authentication policy ([`AuthArgs`], [`AuthPolicy`]):
//! - a ClusterTriggerAuthentication serves only the namespaces of its
//!   `ebb.keda.sh/allowed-namespaces` annotation (absent: `--cluster-trigger-auth-default-namespaces`,
//!   default all, as in KEDA); a ScaledObject elsewhere gets an error naming the CTA and its rule,
//!   and nothing of the CTA's Secrets is read;
//! - the operator's own cloud identity is lent to a trigger only through a
//!   ClusterTriggerAuthentication that asks for it (`podIdentity`), or in the namespaces of
//!   `--operator-identity-namespaces` (default: the operator's own).
//!
//! Every resolution is recorded in the [`AuthIndex`](crate::auth_watch::AuthIndex) (what the
//! object references, and a keyed digest of what was resolved); when the digest differs from the
//! one the running scale loop was built with, the loop is stopped so this reconcile rebuilds it
//! with the new credentials (see `auth_watch` for what triggers such reconciles).
//!
//! What can be wrong with an authentication is an [`AuthError`], naming the trigger and the
//! object (never a value); failed API calls stay `Error::Kube` and are retried.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ebb_api::constants::ANNOTATION_ALLOWED_NAMESPACES;
use ebb_api::{ClusterTriggerAuthentication, ScaledObject, TriggerAuthentication, TriggerAuthenticationSpec};
use ebb_scalers::ParseContext;
use ebb_scalers::auth::AuthError as ResolveError;
use ebb_scalers::auth::{AuthSources, Lookup, NamespaceRule, resolve_with_sources};
use ebb_scalers::aws::credentials::ROLE_ARN_ANNOTATION;
use ebb_scalers::params::OperatorIdentity;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use kube::api::DynamicObject;
use kube::{Api, Client};

use crate::auth_watch::Ref;
use crate::context::Ctx;
use crate::error::Error;
use crate::target::{Target, TargetEnv};

/// Why the authentication a trigger references cannot be used (shown after "authentication: ").
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("spec.triggers[{trigger}].authenticationRef: ClusterTriggerAuthentication {name:?} not found")]
    ClusterTriggerAuthenticationNotFound { trigger: usize, name: String },
    #[error(
        "spec.triggers[{trigger}].authenticationRef: ClusterTriggerAuthentication {name:?} has an invalid {ANNOTATION_ALLOWED_NAMESPACES} annotation ({problem}); it serves no namespace until it is fixed"
    )]
    InvalidAllowedNamespaces { trigger: usize, name: String, problem: String },
    /// The ClusterTriggerAuthentication does not serve the namespace; `annotated` tells whether
    /// the rule came from its annotation or from the operator's default.
    #[error(
        "spec.triggers[{trigger}].authenticationRef: ClusterTriggerAuthentication {name:?} may be used only by ScaledObjects in {allowed} ({}); namespace {namespace:?} is not allowed",
        whence(*.annotated)
    )]
    NamespaceNotAllowed { trigger: usize, name: String, allowed: String, annotated: bool, namespace: String },
    #[error(
        "spec.triggers[{trigger}].authenticationRef: TriggerAuthentication {namespace}/{name:?} not found"
    )]
    TriggerAuthenticationNotFound { trigger: usize, namespace: String, name: String },
    /// A parameter cannot be resolved from the Secrets, ConfigMaps or environment named.
    #[error("spec.triggers[{trigger}].authenticationRef ({name}): {source}")]
    Resolve {
        trigger: usize,
        name: String,
        #[source]
        source: ResolveError,
    },
}

fn whence(annotated: bool) -> String {
    if annotated {
        format!("its {ANNOTATION_ALLOWED_NAMESPACES} annotation")
    } else {
        format!(
            "the operator's --cluster-trigger-auth-default-namespaces (it has no {ANNOTATION_ALLOWED_NAMESPACES} annotation)"
        )
    }
}

/// Flags of the authentication policy; each can also be set through its environment variable.
#[derive(Debug, Clone, clap::Args)]
pub struct AuthArgs {
    /// Namespaces whose ScaledObjects may use a ClusterTriggerAuthentication that has no
    /// `ebb.keda.sh/allowed-namespaces` annotation: comma-separated names, `*` for all (KEDA's
    /// behaviour), empty for none.
    #[arg(long, env = "EBB_CLUSTER_TRIGGER_AUTH_DEFAULT_NAMESPACES", default_value = "*")]
    pub cluster_trigger_auth_default_namespaces: String,
    /// Namespaces whose TriggerAuthentications (and trigger metadata `identityOwner: operator`)
    /// may use the operator's own cloud identity: comma-separated names, `*` for all. Default:
    /// the operator's namespace only. ClusterTriggerAuthentications may always ask for it.
    #[arg(long, env = "EBB_OPERATOR_IDENTITY_NAMESPACES")]
    pub operator_identity_namespaces: Option<String>,
    /// How often the Secrets and ConfigMaps that authentications reference are checked for
    /// changes (one metadata-only GET each); TriggerAuthentications are watched.
    #[arg(long, env = "EBB_AUTH_REFRESH_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub auth_refresh_interval: Duration,
}

/// The authentication policy the flags describe.
#[derive(Debug, Clone)]
pub struct AuthPolicy {
    /// Rule of ClusterTriggerAuthentications without the annotation.
    pub cta_default: NamespaceRule,
    /// Where namespaced authentications and metadata may use the operator's identity.
    pub operator_identity: NamespaceRule,
    /// Period of the Secret and ConfigMap checks.
    pub refresh_interval: Duration,
}

impl AuthPolicy {
    pub fn from_args(args: &AuthArgs, operator_namespace: &str) -> Result<Self, String> {
        let cta_default = NamespaceRule::parse(&args.cluster_trigger_auth_default_namespaces)
            .map_err(|e| format!("--cluster-trigger-auth-default-namespaces: {e}"))?;
        let operator_identity =
            NamespaceRule::parse(args.operator_identity_namespaces.as_deref().unwrap_or(operator_namespace))
                .map_err(|e| format!("--operator-identity-namespaces: {e}"))?;
        Ok(Self {
            cta_default,
            operator_identity,
            refresh_interval: args.auth_refresh_interval.max(Duration::from_millis(100)),
        })
    }

    /// KEDA's behaviour for CTAs, the operator's identity in `operator_namespace` only.
    pub fn defaults(operator_namespace: &str) -> Self {
        Self {
            cta_default: NamespaceRule::All,
            operator_identity: NamespaceRule::Only([operator_namespace.to_owned()].into()),
            refresh_interval: Duration::from_secs(30),
        }
    }
}

/// Everything one authentication needs, fetched up front so resolution itself is pure.
struct Fetched {
    secrets: BTreeMap<String, Option<Secret>>,
    config_maps: BTreeMap<String, Option<ConfigMap>>,
    /// Environment per container its `env` entries name (`None`: the default container).
    envs: BTreeMap<Option<String>, BTreeMap<String, String>>,
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
    fn env(&self, name: &str, container: Option<&str>) -> Option<String> {
        self.envs.get(&container.map(str::to_owned)).and_then(|e| e.get(name)).cloned()
    }
}

/// Everything parsing reads besides the ScaledObject: the target container's environment (read
/// when `default_env`, i.e. a trigger has a `…FromEnv` parameter; the containers `env` entries
/// name are read as they are met), the resolved authentication parameters and pod identities per trigger and, only when a trigger
/// asks for the workload's identity, the role annotated on the target's ServiceAccount. Records
/// what was read in the context's [`AuthIndex`](crate::auth_watch::AuthIndex) and stops the
/// object's scale loop when the credentials differ from the ones it was built with.
pub async fn parse_context(
    ctx: &Ctx,
    so: &ScaledObject,
    target: &Target,
    default_env: bool,
) -> Result<ParseContext, Error> {
    let ns = so.metadata.namespace.as_deref().unwrap_or("default");
    let name = so.metadata.name.as_deref().unwrap_or_default();
    let mut pctx = ParseContext::default();
    let mut refs = BTreeMap::new();
    let container = so.spec.scale_target_ref.env_source_container_name.clone();
    let mut tenv = TargetEnv::new(&ctx.client, target, ns, container);
    let resolved = async {
        if default_env {
            pctx.env = tenv.env(None, &mut refs).await?;
        }
        resolve_all(ctx, so, &mut pctx, &mut refs, &mut tenv).await
    }
    .await;
    ctx.auth_index.track(ns, name, refs);
    resolved?;
    if pctx
        .pod_identity
        .values()
        .any(|p| p.provider == "aws" && p.identity_owner.as_deref() == Some("workload"))
    {
        pctx.workload_role_arn = workload_role_arn(&ctx.client, target, ns).await?;
    }
    if ctx.auth_index.settle(ns, name, &pctx) {
        tracing::info!(namespace = ns, name, "authentication changed: rebuilding the scalers");
        let state = ctx.object(ns, name);
        *state.scale_loop.lock().await = None;
    }
    Ok(pctx)
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

/// The namespaces a ClusterTriggerAuthentication serves: its annotation, else the default.
/// An annotation that does not parse serves no namespace (the error says why).
pub fn cta_rule(
    cta: &ClusterTriggerAuthentication,
    default: &NamespaceRule,
) -> Result<(NamespaceRule, bool), String> {
    match cta.metadata.annotations.as_ref().and_then(|a| a.get(ANNOTATION_ALLOWED_NAMESPACES)) {
        Some(list) => NamespaceRule::parse(list).map(|r| (r, true)),
        None => Ok((default.clone(), false)),
    }
}

/// Resolves the parameters and collects the pod identity of every trigger that references an
/// authentication, applying the policy; `refs` receives every object read (or looked for) with
/// the resource version seen.
async fn resolve_all(
    ctx: &Ctx,
    so: &ScaledObject,
    pctx: &mut ParseContext,
    refs: &mut BTreeMap<Ref, Option<String>>,
    tenv: &mut TargetEnv<'_>,
) -> Result<(), Error> {
    let client = &ctx.client;
    let policy = &ctx.config.auth;
    let operator_namespace = ctx.config.operator_namespace.as_str();
    let ns = so.metadata.namespace.as_deref().unwrap_or("default");
    let identity_here = policy.operator_identity.allows(ns);
    let mut identity_triggers = BTreeSet::new();
    for (i, t) in so.spec.triggers.iter().enumerate() {
        if identity_here {
            identity_triggers.insert(i);
        }
        let Some(r) = &t.authentication_ref else { continue };
        let (spec, secret_ns, who): (TriggerAuthenticationSpec, &str, String) = match r.kind() {
            "ClusterTriggerAuthentication" => {
                let api: Api<ClusterTriggerAuthentication> = Api::all(client.clone());
                let cta = api.get_opt(&r.name).await.map_err(Error::Kube)?;
                let key = Ref::ClusterTriggerAuthentication { name: r.name.clone() };
                refs.insert(key, cta.as_ref().and_then(|c| c.metadata.resource_version.clone()));
                let cta = cta.ok_or_else(|| {
                    Error::Auth(AuthError::ClusterTriggerAuthenticationNotFound {
                        trigger: i,
                        name: r.name.clone(),
                    })
                })?;
                let (rule, annotated) = cta_rule(&cta, &policy.cta_default).map_err(|problem| {
                    Error::Auth(AuthError::InvalidAllowedNamespaces {
                        trigger: i,
                        name: r.name.clone(),
                        problem,
                    })
                })?;
                if !rule.allows(ns) {
                    return Err(Error::Auth(AuthError::NamespaceNotAllowed {
                        trigger: i,
                        name: r.name.clone(),
                        allowed: rule.describe(),
                        annotated,
                        namespace: ns.to_owned(),
                    }));
                }
                // The cluster administrator's authentication may ask for the operator's identity.
                if cta.spec.auth.pod_identity.as_ref().is_some_and(|p| p.provider == "aws") {
                    identity_triggers.insert(i);
                }
                (cta.spec.auth, operator_namespace, format!("ClusterTriggerAuthentication {:?}", r.name))
            }
            _ => {
                let api: Api<TriggerAuthentication> = Api::namespaced(client.clone(), ns);
                let ta = api.get_opt(&r.name).await.map_err(Error::Kube)?;
                let key = Ref::TriggerAuthentication { namespace: ns.to_owned(), name: r.name.clone() };
                refs.insert(key, ta.as_ref().and_then(|t| t.metadata.resource_version.clone()));
                let ta = ta.ok_or_else(|| {
                    Error::Auth(AuthError::TriggerAuthenticationNotFound {
                        trigger: i,
                        namespace: ns.to_owned(),
                        name: r.name.clone(),
                    })
                })?;
                (ta.spec, ns, format!("TriggerAuthentication {:?}", r.name))
            }
        };
        if let Some(pi) = &spec.pod_identity {
            pctx.pod_identity.insert(i, pi.clone());
        }
        let mut fetched =
            Fetched { secrets: BTreeMap::new(), config_maps: BTreeMap::new(), envs: BTreeMap::new() };
        for e in &spec.env {
            let c = e.container_name.clone().filter(|c| !c.is_empty());
            if let std::collections::btree_map::Entry::Vacant(slot) = fetched.envs.entry(c) {
                let env = tenv.env(slot.key().as_deref(), refs).await?;
                slot.insert(env);
            }
        }
        let secrets: Api<Secret> = Api::namespaced(client.clone(), secret_ns);
        for s in &spec.secret_target_ref {
            if !fetched.secrets.contains_key(&s.name) {
                let got = secrets.get_opt(&s.name).await.map_err(Error::Kube)?;
                let key = Ref::Secret { namespace: secret_ns.to_owned(), name: s.name.clone() };
                refs.insert(key, got.as_ref().and_then(|o| o.metadata.resource_version.clone()));
                fetched.secrets.insert(s.name.clone(), got);
            }
        }
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), secret_ns);
        for c in &spec.config_map_target_ref {
            if !fetched.config_maps.contains_key(&c.name) {
                let got = cms.get_opt(&c.name).await.map_err(Error::Kube)?;
                let key = Ref::ConfigMap { namespace: secret_ns.to_owned(), name: c.name.clone() };
                refs.insert(key, got.as_ref().and_then(|o| o.metadata.resource_version.clone()));
                fetched.config_maps.insert(c.name.clone(), got);
            }
        }
        let resolved = resolve_with_sources(&spec, &fetched)
            .map_err(|source| Error::Auth(AuthError::Resolve { trigger: i, name: r.name.clone(), source }))?;
        pctx.auth.insert(i, resolved.params);
        pctx.auth_sources.insert(i, resolved.sources);
        pctx.auth_name.insert(i, who);
    }
    pctx.operator_identity = OperatorIdentity::Only {
        triggers: identity_triggers,
        reason: format!(
            "is lent only through a ClusterTriggerAuthentication whose podIdentity asks for it, or in the namespaces of the operator's --operator-identity-namespaces (EBB_OPERATOR_IDENTITY_NAMESPACES; now {}); namespace {ns:?} is not one of them",
            policy.operator_identity.describe()
        ),
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cta(annotation: Option<&str>) -> ClusterTriggerAuthentication {
        let mut c = ClusterTriggerAuthentication::new("shared", Default::default());
        if let Some(a) = annotation {
            c.metadata.annotations = Some([(ANNOTATION_ALLOWED_NAMESPACES.to_owned(), a.to_owned())].into());
        }
        c
    }

    #[test]
    fn cta_rule_reads_the_annotation_else_the_default() {
        let default = NamespaceRule::All;
        assert_eq!(cta_rule(&cta(None), &default), Ok((NamespaceRule::All, false)));
        let (rule, annotated) = cta_rule(&cta(Some("team-a")), &default).unwrap();
        assert!(annotated && rule.allows("team-a") && !rule.allows("team-b"));
        assert!(cta_rule(&cta(Some("Team A")), &default).is_err());
    }

    /// The texts status conditions and events show, as written before the errors were typed.
    #[test]
    fn error_texts() {
        let texts = [
            (
                AuthError::ClusterTriggerAuthenticationNotFound { trigger: 1, name: "shared".into() },
                "spec.triggers[1].authenticationRef: ClusterTriggerAuthentication \"shared\" not found",
            ),
            (
                AuthError::InvalidAllowedNamespaces {
                    trigger: 0,
                    name: "shared".into(),
                    problem: "bad".into(),
                },
                "spec.triggers[0].authenticationRef: ClusterTriggerAuthentication \"shared\" has an invalid ebb.keda.sh/allowed-namespaces annotation (bad); it serves no namespace until it is fixed",
            ),
            (
                AuthError::NamespaceNotAllowed {
                    trigger: 0,
                    name: "shared".into(),
                    allowed: "team-a".into(),
                    annotated: true,
                    namespace: "team-b".into(),
                },
                "spec.triggers[0].authenticationRef: ClusterTriggerAuthentication \"shared\" may be used only by ScaledObjects in team-a (its ebb.keda.sh/allowed-namespaces annotation); namespace \"team-b\" is not allowed",
            ),
            (
                AuthError::NamespaceNotAllowed {
                    trigger: 0,
                    name: "shared".into(),
                    allowed: "no namespace".into(),
                    annotated: false,
                    namespace: "team-b".into(),
                },
                "spec.triggers[0].authenticationRef: ClusterTriggerAuthentication \"shared\" may be used only by ScaledObjects in no namespace (the operator's --cluster-trigger-auth-default-namespaces (it has no ebb.keda.sh/allowed-namespaces annotation)); namespace \"team-b\" is not allowed",
            ),
            (
                AuthError::TriggerAuthenticationNotFound {
                    trigger: 2,
                    namespace: "ns".into(),
                    name: "ta".into(),
                },
                "spec.triggers[2].authenticationRef: TriggerAuthentication ns/\"ta\" not found",
            ),
        ];
        for (e, text) in texts {
            assert_eq!(e.to_string(), text);
            assert_eq!(Error::Auth(e).to_string(), format!("authentication: {text}"));
        }
        let source = ResolveError::MissingObject {
            kind: "Secret",
            name: "creds".into(),
            parameter: "password".into(),
        };
        let e = AuthError::Resolve { trigger: 0, name: "ta".into(), source };
        assert_eq!(
            e.to_string(),
            "spec.triggers[0].authenticationRef (ta): Secret \"creds\" not found (needed for parameter \"password\")"
        );
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn policy_defaults_and_flags() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct T {
            #[command(flatten)]
            auth: AuthArgs,
        }
        let t = T::try_parse_from(["t"]).unwrap();
        let p = AuthPolicy::from_args(&t.auth, "keda").unwrap();
        assert_eq!(p.cta_default, NamespaceRule::All);
        assert!(p.operator_identity.allows("keda") && !p.operator_identity.allows("team-a"));
        let t = T::try_parse_from([
            "t",
            "--cluster-trigger-auth-default-namespaces",
            "",
            "--operator-identity-namespaces",
            "team-a,keda",
        ])
        .unwrap();
        let p = AuthPolicy::from_args(&t.auth, "keda").unwrap();
        assert!(!p.cta_default.allows("keda"));
        assert!(p.operator_identity.allows("team-a"));
        let t = T::try_parse_from(["t", "--operator-identity-namespaces", "UPPER"]).unwrap();
        let e = AuthPolicy::from_args(&t.auth, "keda").unwrap_err();
        assert!(e.starts_with("--operator-identity-namespaces: \"UPPER\""), "{e}");
    }
}
