//! The scale target of a ScaledObject: resolving `scaleTargetRef` (apiVersion/kind/name) to an
//! API resource through discovery (cached per kind), reading and writing its `/scale`
//! subresource, and the environment of its containers for `…FromEnv` parameters and
//! TriggerAuthentication `env` entries ([`TargetEnv`]).
//! Errors say which target and why ([`TargetNotFound`], [`Error::NoScale`],
//! [`Error::NegativeReplicas`]); failed calls keep their API error as the source.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use ebb_api::{GroupVersionKindResource, ScaleTarget};
use ebb_scalers::env;
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Secret};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::discovery::{ApiCapabilities, Scope};
use kube::{Client, discovery};

use crate::auth_watch::Ref;
use crate::error::Error;

/// A resolved target.
#[derive(Debug, Clone)]
pub struct Target {
    pub resource: ApiResource,
    pub gvkr: GroupVersionKindResource,
    pub name: String,
}

impl Target {
    /// `apps/v1.Deployment`, as KEDA writes `status.scaleTargetKind`.
    pub fn kind_string(&self) -> String {
        format!("{}.{}", self.resource.api_version, self.resource.kind)
    }
}

#[cfg(test)]
impl Target {
    /// An `apps/v1` Deployment target named `name`, for tests.
    pub(crate) fn deployment(name: &str) -> Target {
        let gvk = kube::api::GroupVersionKind::gvk("apps", "v1", "Deployment");
        Target {
            resource: ApiResource::from_gvk_with_plural(&gvk, "deployments"),
            gvkr: GroupVersionKindResource {
                group: "apps".into(),
                version: "v1".into(),
                kind: "Deployment".into(),
                resource: "deployments".into(),
            },
            name: name.into(),
        }
    }
}

/// Why a target is not there (shown after "scale target not found: ").
#[derive(Debug, thiserror::Error)]
pub enum TargetNotFound {
    /// Discovery does not know the kind.
    #[error("{api_version} {kind}: not served by the API server: {source}")]
    NotServed {
        api_version: String,
        kind: String,
        #[source]
        source: kube::Error,
    },
    /// The kind is cluster-scoped.
    #[error("{api_version} {kind} is not namespaced")]
    NotNamespaced { api_version: String, kind: String },
    /// The object does not exist (`kind` as [`Target::kind_string`] writes it).
    #[error("{kind} {namespace}/{name} not found")]
    Missing {
        kind: String,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// Discovery results per (apiVersion, kind).
#[derive(Debug, Default)]
pub struct Resolver {
    cache: Mutex<HashMap<(String, String), (ApiResource, ApiCapabilities)>>,
}

impl Resolver {
    /// Finds the API resource serving the target's kind.
    pub async fn resolve(&self, client: &Client, r: &ScaleTarget) -> Result<Target, Error> {
        let key = (r.api_version().to_owned(), r.kind().to_owned());
        let cached = self.cache.lock().unwrap_or_else(PoisonError::into_inner).get(&key).cloned();
        let (ar, caps) = match cached {
            Some(c) => c,
            None => {
                let (group, version) = match key.0.split_once('/') {
                    Some((g, v)) => (g.to_owned(), v.to_owned()),
                    None => (String::new(), key.0.clone()),
                };
                let gvk = kube::api::GroupVersionKind::gvk(&group, &version, &key.1);
                let found = discovery::pinned_kind(client, &gvk).await.map_err(|source| {
                    Error::TargetNotFound(Box::new(TargetNotFound::NotServed {
                        api_version: key.0.clone(),
                        kind: key.1.clone(),
                        source,
                    }))
                })?;
                self.cache.lock().unwrap_or_else(PoisonError::into_inner).insert(key.clone(), found.clone());
                found
            }
        };
        if caps.scope != Scope::Namespaced {
            return Err(Error::TargetNotFound(Box::new(TargetNotFound::NotNamespaced {
                api_version: key.0,
                kind: key.1,
            })));
        }
        // Discovery lists subresources by their plural (`scale`, or `<plural>/scale`).
        if !caps.subresources.iter().any(|(sr, _)| sr.plural == "scale" || sr.plural.ends_with("/scale")) {
            return Err(Error::NoScale { api_version: key.0, kind: key.1 });
        }
        let gvkr = GroupVersionKindResource {
            group: ar.group.clone(),
            version: ar.version.clone(),
            kind: ar.kind.clone(),
            resource: ar.plural.clone(),
        };
        Ok(Target { resource: ar, gvkr, name: r.name.clone() })
    }
}

fn api(client: &Client, t: &Target, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &t.resource)
}

/// The target's Scale (spec.replicas = desired, status.replicas = current).
pub async fn get_scale(client: &Client, t: &Target, ns: &str) -> Result<Scale, Error> {
    api(client, t, ns).get_scale(&t.name).await.map_err(|e| match e {
        kube::Error::Api(ref a) if a.code == 404 => {
            Error::TargetNotFound(Box::new(TargetNotFound::Missing {
                kind: t.kind_string(),
                namespace: ns.to_owned(),
                name: t.name.clone(),
                source: e,
            }))
        }
        other => Error::Kube(other),
    })
}

/// Writes spec.replicas through /scale (field manager ebb-operator/scale). A negative count is
/// refused without a request: the API server would reject it on every retry.
pub async fn set_replicas(client: &Client, t: &Target, ns: &str, replicas: i32) -> Result<(), Error> {
    if replicas < 0 {
        return Err(Error::NegativeReplicas {
            kind: t.kind_string(),
            namespace: ns.to_owned(),
            name: t.name.clone(),
            replicas,
        });
    }
    let pp = PatchParams {
        field_manager: Some(ebb_api::constants::FIELD_MANAGER_SCALE.into()),
        ..Default::default()
    };
    let patch = serde_json::json!({"spec": {"replicas": replicas}});
    api(client, t, ns).patch_scale(&t.name, &pp, &Patch::Merge(&patch)).await.map_err(Error::Kube)?;
    Ok(())
}

/// The environment of the target's containers as KEDA's resolver computes it (see
/// [`ebb_scalers::env`]), computed on demand and once per container: the target is read at the
/// first request, then the Secrets and ConfigMaps the containers' environments name (one GET
/// each per reconcile, shared by all containers, never a list or watch; each recorded with its resource version so a change is noticed
/// like a TriggerAuthentication's Secret).
pub struct TargetEnv<'a> {
    client: &'a Client,
    target: &'a Target,
    ns: &'a str,
    /// `envSourceContainerName`: the container of `…FromEnv` and of `env` entries naming none.
    default_container: Option<String>,
    containers: Option<Vec<Container>>,
    envs: BTreeMap<Option<String>, BTreeMap<String, String>>,
    /// Secrets and ConfigMaps read so far, shared by every container's environment.
    objects: Objects,
}

/// Names only: the environment may hold secrets.
impl std::fmt::Debug for TargetEnv<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetEnv")
            .field("target", &self.target.name)
            .field("namespace", &self.ns)
            .field("containers_read", &self.envs.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl<'a> TargetEnv<'a> {
    pub fn new(
        client: &'a Client,
        target: &'a Target,
        ns: &'a str,
        default_container: Option<String>,
    ) -> Self {
        Self {
            client,
            target,
            ns,
            default_container,
            containers: None,
            envs: BTreeMap::new(),
            objects: Objects::default(),
        }
    }

    /// The environment of container `name` (`None`: `envSourceContainerName`, else the first).
    /// A target without a pod template has an empty environment; a named container that is not
    /// there, or a missing non-optional Secret, ConfigMap or key, is an error naming it.
    pub async fn env(
        &mut self,
        name: Option<&str>,
        refs: &mut BTreeMap<Ref, Option<String>>,
    ) -> Result<BTreeMap<String, String>, Error> {
        let key = name.map(str::to_owned);
        if let Some(env) = self.envs.get(&key) {
            return Ok(env.clone());
        }
        if self.containers.is_none() {
            let obj =
                api(self.client, self.target, self.ns).get(&self.target.name).await.map_err(Error::Kube)?;
            // A kind with `/scale` but no pod template has no environment.
            let containers = obj
                .data
                .pointer("/spec/template/spec/containers")
                .cloned()
                .and_then(|v| serde_json::from_value::<Vec<Container>>(v).ok())
                .unwrap_or_default();
            self.containers = Some(containers);
        }
        let containers = self.containers.as_deref().unwrap_or_default();
        let chosen =
            env::pick(containers, name.or(self.default_container.as_deref())).map_err(Error::TargetEnv)?;
        let env = match chosen {
            None => BTreeMap::new(),
            Some(c) => {
                let wanted = env::referenced(c);
                let objects = &mut self.objects;
                let secrets: Api<Secret> = Api::namespaced(self.client.clone(), self.ns);
                for n in &wanted.secrets {
                    if objects.secrets.contains_key(n) {
                        continue;
                    }
                    let got = secrets.get_opt(n).await.map_err(Error::Kube)?;
                    let key = Ref::Secret { namespace: self.ns.to_owned(), name: n.clone() };
                    refs.insert(key, got.as_ref().and_then(|o| o.metadata.resource_version.clone()));
                    let data = got.map(|s| {
                        s.data
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                            .collect()
                    });
                    objects.secrets.insert(n.clone(), data);
                }
                let cms: Api<ConfigMap> = Api::namespaced(self.client.clone(), self.ns);
                for n in &wanted.config_maps {
                    if objects.config_maps.contains_key(n) {
                        continue;
                    }
                    let got = cms.get_opt(n).await.map_err(Error::Kube)?;
                    let key = Ref::ConfigMap { namespace: self.ns.to_owned(), name: n.clone() };
                    refs.insert(key, got.as_ref().and_then(|o| o.metadata.resource_version.clone()));
                    objects.config_maps.insert(n.clone(), got.map(|c| c.data.unwrap_or_default()));
                }
                env::resolve(c, &*objects).map_err(Error::TargetEnv)?
            }
        };
        self.envs.insert(key, env.clone());
        Ok(env)
    }
}

/// Secrets and ConfigMaps read for the target's containers (`None`: not found).
#[derive(Default)]
struct Objects {
    secrets: BTreeMap<String, Option<BTreeMap<String, String>>>,
    config_maps: BTreeMap<String, Option<BTreeMap<String, String>>>,
}

impl env::EnvObjects for Objects {
    fn secret(&self, name: &str) -> Option<BTreeMap<String, String>> {
        self.secrets.get(name).cloned().flatten()
    }
    fn config_map(&self, name: &str) -> Option<BTreeMap<String, String>> {
        self.config_maps.get(name).cloned().flatten()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use kube::client::Body;

    use super::*;

    /// A client whose every request is counted and answered with an empty Scale.
    fn counting_client() -> (Client, Arc<AtomicUsize>) {
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        let svc = tower::service_fn(move |_req: http::Request<Body>| {
            seen.fetch_add(1, Ordering::SeqCst);
            async {
                let body = serde_json::json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
                    "metadata": {"name": "web"}, "spec": {}});
                Ok::<_, std::convert::Infallible>(
                    http::Response::builder()
                        .header("content-type", "application/json")
                        .body(Body::from(serde_json::to_vec(&body).unwrap()))
                        .unwrap(),
                )
            }
        });
        (Client::new(svc, "default"), count)
    }

    #[tokio::test]
    async fn a_negative_replica_count_is_refused_without_a_request() {
        let (client, count) = counting_client();
        let t = Target::deployment("web");
        let err = set_replicas(&client, &t, "ns", -1).await.unwrap_err();
        assert!(matches!(err, Error::NegativeReplicas { .. }), "{err:?}");
        assert!(err.to_string().contains("-1"), "{err}");
        assert_eq!(count.load(Ordering::SeqCst), 0, "no request may reach the API");
        set_replicas(&client, &t, "ns", 0).await.unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }
}
