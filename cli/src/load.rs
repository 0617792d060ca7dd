//! Reading manifests for the CLI: multi-document YAML files (or `-` for standard input) holding
//! ScaledObjects and what they refer to — TriggerAuthentications, ClusterTriggerAuthentications,
//! Secrets, ConfigMaps and the target workload (for `…FromEnv`). Every failure is one line naming
//! the file, the document and, for schema errors, the field path.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use ebb_api::{ClusterTriggerAuthentication, ScaledObject, TriggerAuthentication};
use ebb_scalers::auth::{AuthSources, Lookup};
use k8s_openapi::api::core::v1::{ConfigMap, PodTemplateSpec, Secret};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::CliError;

/// A ScaledObject and where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub source: String,
    pub object: ScaledObject,
    /// Fields of the manifest the ScaledObject CRD schema does not have (see [`unknown_fields`]).
    pub unknown_fields: Vec<String>,
}

/// Everything read from the `-f` files.
#[derive(Debug, Default)]
pub struct Manifests {
    pub scaled_objects: Vec<Loaded>,
    pub trigger_auths: Vec<TriggerAuthentication>,
    pub cluster_trigger_auths: Vec<ClusterTriggerAuthentication>,
    pub secrets: Vec<Secret>,
    pub config_maps: Vec<ConfigMap>,
    /// Pod templates of workloads, by (kind, name).
    pub workloads: BTreeMap<(String, String), PodTemplateSpec>,
    /// Documents of kinds ebb does not read, and fields of TriggerAuthentications and
    /// ClusterTriggerAuthentications their CRD schema does not have, reported as warnings.
    pub skipped: Vec<String>,
}

#[derive(Deserialize)]
struct Workload {
    metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    spec: Option<WorkloadSpec>,
}

#[derive(Deserialize)]
struct WorkloadSpec {
    template: Option<PodTemplateSpec>,
}

fn typed<T: DeserializeOwned>(v: serde_yaml::Value, source: &str) -> Result<T, CliError> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        CliError::Manifest(format!("{source}: {path}: {inner}"))
    })
}

/// A Secret's `data` values must be base64 (as kube-apiserver requires); a plain-text value gets
/// an error naming the Secret and the key and pointing to `stringData`, never showing the value.
fn check_secret_data(v: &serde_yaml::Value, source: &str) -> Result<(), CliError> {
    use base64::Engine as _;
    let Some(data) = v.get("data").and_then(serde_yaml::Value::as_mapping) else { return Ok(()) };
    for (key, value) in data {
        let (Some(key), Some(value)) = (key.as_str(), value.as_str()) else { continue };
        if base64::engine::general_purpose::STANDARD.decode(value).is_err() {
            let meta = v.get("metadata");
            let field = |f: &str| meta.and_then(|m| m.get(f)).and_then(serde_yaml::Value::as_str);
            let name = match (field("namespace"), field("name")) {
                (Some(ns), Some(n)) => format!("{ns}/{n}"),
                (None, Some(n)) => n.to_owned(),
                _ => "(unnamed)".to_owned(),
            };
            return Err(CliError::Manifest(format!(
                "{source}: Secret {name}: data.{key} is not base64 (data values must be base64-encoded; \
                 put plain text under stringData instead)"
            )));
        }
    }
    Ok(())
}

/// One warning per field of a `keda.sh` manifest that the CRD schema ebb installs does not
/// have (a misspelling, or a field at the wrong level), naming its path as kube-apiserver does.
/// Such a field never reaches ebb: `kubectl apply` refuses the object (strict field
/// validation), and with `--validate=warn` or `false` the API server drops the field.
pub fn unknown_fields(kind: &str, value: &serde_yaml::Value, source: &str) -> Vec<String> {
    let Ok(json) = serde_json::to_value(value) else { return Vec::new() };
    let schema =
        ebb_api::crds::all().into_iter().find(|(_, c)| c.spec.names.kind == kind).and_then(|(_, c)| {
            let v = c.spec.versions.into_iter().next()?;
            serde_json::to_value(v.schema?.open_api_v3_schema?).ok()
        });
    let Some(schema) = schema else { return Vec::new() };
    ebb_sandbox::schema::unknown_fields(&schema, &json)
        .into_iter()
        .map(|path| {
            format!(
                "{source}: unknown field {path:?}: not in the {kind} schema; kubectl apply refuses it, \
                 and with --validate=warn or false the API server drops it"
            )
        })
        .collect()
}

/// Reads every file; `-` reads standard input.
pub fn load(paths: &[String]) -> Result<Manifests, CliError> {
    let mut m = Manifests::default();
    for p in paths {
        let text = if p == "-" {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| CliError::Manifest(format!("standard input: {e}")))?;
            s
        } else {
            std::fs::read_to_string(Path::new(p))
                .map_err(|e| CliError::Manifest(format!("{p}: cannot read: {e}")))?
        };
        load_str(&mut m, p, &text)?;
    }
    Ok(m)
}

/// Adds the documents of one YAML stream.
pub fn load_str(m: &mut Manifests, file: &str, text: &str) -> Result<(), CliError> {
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = serde_yaml::Value::deserialize(doc)
            .map_err(|e| CliError::Manifest(format!("{file}: invalid YAML: {e}")))?;
        if value.is_null() {
            continue;
        }
        let source = if i == 0 { file.to_owned() } else { format!("{file} (document {})", i + 1) };
        let kind = value.get("kind").and_then(serde_yaml::Value::as_str).unwrap_or_default().to_owned();
        let api_version =
            value.get("apiVersion").and_then(serde_yaml::Value::as_str).unwrap_or_default().to_owned();
        let keda = api_version.starts_with("keda.sh/");
        match kind.as_str() {
            "ScaledObject" if keda => {
                let unknown_fields = unknown_fields(&kind, &value, &source);
                let object: ScaledObject = typed(value, &source)?;
                m.scaled_objects.push(Loaded { source, object, unknown_fields });
            }
            "TriggerAuthentication" if keda => {
                m.skipped.extend(unknown_fields(&kind, &value, &source));
                m.trigger_auths.push(typed(value, &source)?);
            }
            "ClusterTriggerAuthentication" if keda => {
                m.skipped.extend(unknown_fields(&kind, &value, &source));
                m.cluster_trigger_auths.push(typed(value, &source)?);
            }
            "Secret" => {
                check_secret_data(&value, &source)?;
                m.secrets.push(typed(value, &source)?);
            }
            "ConfigMap" => m.config_maps.push(typed(value, &source)?),
            "Deployment" | "StatefulSet" => {
                let w: Workload = typed(value, &source)?;
                if let (Some(name), Some(t)) = (w.metadata.name, w.spec.and_then(|s| s.template)) {
                    m.workloads.insert((kind.clone(), name), t);
                }
            }
            "" => return Err(CliError::Manifest(format!("{source}: not a Kubernetes object (no kind)"))),
            other => m.skipped.push(format!("{source}: {other} is not read by ebb; skipped")),
        }
    }
    Ok(())
}

impl Manifests {
    /// The TriggerAuthentication `name` a ScaledObject in `namespace` refers to. It is namespaced:
    /// only one in the ScaledObject's namespace counts (a manifest without a namespace is taken
    /// to be applied into the same namespace), as KEDA looks it up. The error says where one of
    /// that name was found instead, if anywhere.
    pub fn trigger_auth(
        &self,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<&ebb_api::TriggerAuthenticationSpec, String> {
        let named = || self.trigger_auths.iter().filter(|a| a.metadata.name.as_deref() == Some(name));
        let same = |ns: Option<&str>| namespace.is_none() || ns.is_none() || ns == namespace;
        if let Some(a) = named().find(|a| same(a.metadata.namespace.as_deref())) {
            return Ok(&a.spec);
        }
        let ns = namespace.unwrap_or("default");
        let elsewhere: Vec<&str> = named().filter_map(|a| a.metadata.namespace.as_deref()).collect();
        Err(if elsewhere.is_empty() {
            format!("TriggerAuthentication {name:?} not found in namespace {ns}")
        } else {
            format!(
                "TriggerAuthentication {name:?} not found in namespace {ns} (one of that name exists in \
                 namespace {}; a TriggerAuthentication is only read from the ScaledObject's namespace, \
                 use a ClusterTriggerAuthentication to share one)",
                elsewhere.join(", ")
            )
        })
    }

    /// KEDA's cpu/memory request rule on the target's pod template, when its manifest was given
    /// with `-f` ([`ebb_scalers::resource::missing_requests`]); nothing when it was not.
    pub fn resource_request_problems(&self, so: &ScaledObject) -> Vec<String> {
        let r = &so.spec.scale_target_ref;
        self.workloads
            .get(&(r.kind().to_owned(), r.name.clone()))
            .and_then(|t| t.spec.as_ref())
            .map(|s| ebb_scalers::resource::missing_requests(so, &s.containers))
            .unwrap_or_default()
    }

    /// Environment of the target's container `container` (else `envSourceContainerName`, else
    /// the first) from a workload manifest given with `-f`, resolved as the operator does
    /// ([`ebb_scalers::env`]) from the Secrets and ConfigMaps of the manifests. `Ok(None)`: the
    /// workload's manifest was not given.
    pub fn target_env(
        &self,
        so: &ScaledObject,
        container: Option<&str>,
    ) -> Result<Option<BTreeMap<String, String>>, ebb_scalers::env::EnvError> {
        let r = &so.spec.scale_target_ref;
        let Some(template) = self.workloads.get(&(r.kind().to_owned(), r.name.clone())) else {
            return Ok(None);
        };
        let containers = template.spec.as_ref().map(|s| s.containers.as_slice()).unwrap_or_default();
        let name = container.or(r.env_source_container_name.as_deref());
        let objects = ManifestSources {
            manifests: self,
            namespace: so.metadata.namespace.as_deref(),
            env: &BTreeMap::new(),
        };
        match ebb_scalers::env::pick(containers, name)? {
            Some(c) => ebb_scalers::env::resolve(c, &objects).map(Some),
            None => Ok(Some(BTreeMap::new())),
        }
    }
}

/// Authentication sources backed by the manifests and, for `env`, the environment
/// [`crate::prepare`] assembled (never this process's own unless the user asked for it).
#[derive(Debug)]
pub struct ManifestSources<'a> {
    pub manifests: &'a Manifests,
    pub namespace: Option<&'a str>,
    pub env: &'a BTreeMap<String, String>,
}

impl ManifestSources<'_> {
    fn matches(&self, meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, name: &str) -> bool {
        meta.name.as_deref() == Some(name)
            && (self.namespace.is_none()
                || meta.namespace.is_none()
                || meta.namespace.as_deref() == self.namespace)
    }

    /// A Secret's values: `data` decoded, then `stringData` over it (as the API server merges them).
    fn secret_data(&self, name: &str) -> Option<BTreeMap<String, String>> {
        let s = self.manifests.secrets.iter().find(|s| self.matches(&s.metadata, name))?;
        let mut out: BTreeMap<String, String> = s
            .data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
            .collect();
        out.extend(s.string_data.clone().unwrap_or_default());
        Some(out)
    }

    fn config_map_data(&self, name: &str) -> Option<BTreeMap<String, String>> {
        let c = self.manifests.config_maps.iter().find(|c| self.matches(&c.metadata, name))?;
        Some(c.data.clone().unwrap_or_default())
    }
}

/// The Secrets and ConfigMaps a workload container's environment reads.
impl ebb_scalers::env::EnvObjects for ManifestSources<'_> {
    fn secret(&self, name: &str) -> Option<BTreeMap<String, String>> {
        self.secret_data(name)
    }
    fn config_map(&self, name: &str) -> Option<BTreeMap<String, String>> {
        self.config_map_data(name)
    }
}

impl AuthSources for ManifestSources<'_> {
    fn secret(&self, name: &str, key: &str) -> Lookup {
        lookup(self.secret_data(name), key)
    }
    fn config_map(&self, name: &str, key: &str) -> Lookup {
        lookup(self.config_map_data(name), key)
    }
    fn env(&self, name: &str, _container: Option<&str>) -> Option<String> {
        self.env.get(name).cloned()
    }
}

/// One key of an object's values (`None`: no such object).
fn lookup(values: Option<BTreeMap<String, String>>, key: &str) -> Lookup {
    match values {
        None => Lookup::NoObject,
        Some(mut v) => v.remove(key).map_or(Lookup::NoKey, Lookup::Found),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_multi_document_streams() {
        let mut m = Manifests::default();
        let text = "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: a}\nspec:\n  scaleTargetRef: {name: w}\n  triggers: [{type: cron, metadata: {x: true}}]\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {k: v}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: svc}\n";
        load_str(&mut m, "f.yaml", text).unwrap();
        assert_eq!(m.scaled_objects.len(), 1);
        assert_eq!(m.secrets.len(), 1);
        assert_eq!(m.skipped, ["f.yaml (document 3): Service is not read by ebb; skipped"]);
        let env = BTreeMap::new();
        let src = ManifestSources { manifests: &m, namespace: None, env: &env };
        assert_eq!(src.secret("s", "k"), Lookup::Found("v".into()));
        assert_eq!(src.secret("s", "nope"), Lookup::NoKey);
    }

    #[test]
    fn errors_name_file_and_field() {
        let mut m = Manifests::default();
        let bad = "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: a}\nspec:\n  scaleTargetRef: {name: w}\n  minReplicaCount: lots\n  triggers: []\n";
        let e = load_str(&mut m, "so.yaml", bad).unwrap_err().to_string();
        assert!(e.starts_with("so.yaml: spec.minReplicaCount: invalid type"), "{e}");
        let e = load_str(&mut m, "x.yaml", "a: [1,\n").unwrap_err().to_string();
        assert!(e.starts_with("x.yaml: invalid YAML: ") && e.contains("line"), "{e}");
    }

    #[test]
    fn secret_data_that_is_not_base64_names_secret_and_key_and_suggests_string_data() {
        let mut m = Manifests::default();
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: prod}\ndata:\n  user: YWRtaW4=\n  password: hunter2-plain>text\n";
        let e = load_str(&mut m, "s.yaml", text).unwrap_err().to_string();
        assert_eq!(
            e,
            "s.yaml (document 2): Secret prod/db: data.password is not base64 (data values must be \
             base64-encoded; put plain text under stringData instead)"
        );
        assert!(!e.contains("hunter2"), "the value must not be shown: {e}");
        // Valid base64 still loads, decoded.
        let ok = "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\ndata:\n  user: YWRtaW4=\n";
        load_str(&mut m, "ok.yaml", ok).unwrap();
        let env = BTreeMap::new();
        let src = ManifestSources { manifests: &m, namespace: None, env: &env };
        assert_eq!(src.secret("db", "user"), Lookup::Found("admin".into()));
    }
}
