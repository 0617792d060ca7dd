//! The environment of a workload's container as KEDA's resolver computes it for `…FromEnv`
//! trigger parameters and TriggerAuthentication `env` entries (pure; the operator passes
//! Secrets and ConfigMaps it read from the API server, `ebb check` the ones from manifests):
//! - `envFrom` first, in order: every key of the ConfigMap or Secret, with the entry's `prefix`;
//! - then `env` entries in order, each overriding what came before: a literal `value` with
//!   `$(VAR)` expanded from the variables defined before it (Kubernetes' rules: `$$` is a
//!   literal `$`, an undefined or unterminated reference stays as written), or
//!   `valueFrom.secretKeyRef` / `valueFrom.configMapKeyRef`;
//! - an `optional: true` reference whose object or key is missing is skipped (the variable is
//!   not set); a missing non-optional object or key is an [`EnvError`] naming it;
//! - `fieldRef` and `resourceFieldRef` have no value outside a pod and are skipped.
//!
//! Values read from Secrets are secrets: errors name objects, keys and variables, never values.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Container;
use thiserror::Error;

/// Why a container's environment cannot be computed. Names, never values.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum EnvError {
    #[error("container {0:?} not found in the scale target's pod template")]
    NoContainer(String),
    #[error("{kind} {name:?} not found (read by envFrom of container {container:?})")]
    MissingEnvFrom { kind: &'static str, name: String, container: String },
    #[error("{kind} {name:?} not found (read by variable {variable:?} of container {container:?})")]
    MissingObject { kind: &'static str, name: String, variable: String, container: String },
    #[error("{kind} {name:?} has no key {key:?} (read by variable {variable:?} of container {container:?})")]
    MissingKey { kind: &'static str, name: String, key: String, variable: String, container: String },
}

/// The Secrets and ConfigMaps of the workload's namespace, by name: every key with its value
/// (`None`: the object does not exist).
pub trait EnvObjects {
    fn secret(&self, name: &str) -> Option<BTreeMap<String, String>>;
    fn config_map(&self, name: &str) -> Option<BTreeMap<String, String>>;
}

/// The Secrets and ConfigMaps a container's environment reads, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Referenced {
    pub secrets: BTreeSet<String>,
    pub config_maps: BTreeSet<String>,
}

/// What [`resolve`] will look up for `container`, so a caller can fetch exactly that.
pub fn referenced(container: &Container) -> Referenced {
    let mut r = Referenced::default();
    for f in container.env_from.iter().flatten() {
        if let Some(s) = &f.secret_ref {
            r.secrets.insert(s.name.clone());
        }
        if let Some(c) = &f.config_map_ref {
            r.config_maps.insert(c.name.clone());
        }
    }
    for e in container.env.iter().flatten() {
        let Some(from) = &e.value_from else { continue };
        if let Some(s) = &from.secret_key_ref {
            r.secrets.insert(s.name.clone());
        }
        if let Some(c) = &from.config_map_key_ref {
            r.config_maps.insert(c.name.clone());
        }
    }
    r
}

/// The container named `name` (KEDA's `envSourceContainerName` / TriggerAuthentication
/// `env[].containerName`), else the first one. `Ok(None)`: there is no container at all.
pub fn pick<'a>(containers: &'a [Container], name: Option<&str>) -> Result<Option<&'a Container>, EnvError> {
    match name.filter(|n| !n.is_empty()) {
        Some(n) => containers
            .iter()
            .find(|c| c.name == n)
            .map(Some)
            .ok_or_else(|| EnvError::NoContainer(n.to_owned())),
        None => Ok(containers.first()),
    }
}

/// The environment of `container` (see the module documentation for the rules).
pub fn resolve(
    container: &Container,
    objects: &dyn EnvObjects,
) -> Result<BTreeMap<String, String>, EnvError> {
    let cname = || container.name.clone();
    let mut env = BTreeMap::new();
    for f in container.env_from.iter().flatten() {
        let prefix = f.prefix.as_deref().unwrap_or_default();
        let (kind, name, optional, data) = match (&f.secret_ref, &f.config_map_ref) {
            (Some(s), _) => ("Secret", &s.name, s.optional, objects.secret(&s.name)),
            (None, Some(c)) => ("ConfigMap", &c.name, c.optional, objects.config_map(&c.name)),
            (None, None) => continue,
        };
        match data {
            Some(data) => env.extend(data.into_iter().map(|(k, v)| (format!("{prefix}{k}"), v))),
            None if optional == Some(true) => {}
            None => return Err(EnvError::MissingEnvFrom { kind, name: name.clone(), container: cname() }),
        }
    }
    for e in container.env.iter().flatten() {
        let value = match &e.value_from {
            None => Some(expand(e.value.as_deref().unwrap_or_default(), &env)),
            Some(from) => {
                let (kind, name, key, optional, data) = match (&from.secret_key_ref, &from.config_map_key_ref)
                {
                    (Some(s), _) => ("Secret", &s.name, &s.key, s.optional, objects.secret(&s.name)),
                    (None, Some(c)) => {
                        ("ConfigMap", &c.name, &c.key, c.optional, objects.config_map(&c.name))
                    }
                    // fieldRef / resourceFieldRef: known only inside a pod.
                    (None, None) => continue,
                };
                let optional = optional == Some(true);
                match data {
                    None if optional => None,
                    None => {
                        return Err(EnvError::MissingObject {
                            kind,
                            name: name.clone(),
                            variable: e.name.clone(),
                            container: cname(),
                        });
                    }
                    Some(mut data) => match data.remove(key) {
                        Some(v) => Some(v),
                        None if optional => None,
                        None => {
                            return Err(EnvError::MissingKey {
                                kind,
                                name: name.clone(),
                                key: key.clone(),
                                variable: e.name.clone(),
                                container: cname(),
                            });
                        }
                    },
                }
            }
        };
        if let Some(v) = value {
            env.insert(e.name.clone(), v);
        }
    }
    Ok(env)
}

/// Kubernetes' `$(VAR)` expansion of a literal value: a reference to a defined variable is
/// replaced by its value, `$$` is a literal `$`, anything else (an undefined variable, an
/// unterminated `$(`, a `$` before another character) stays as written.
pub fn expand<K, V>(input: &str, vars: &BTreeMap<K, V>) -> String
where
    K: std::borrow::Borrow<str> + Ord,
    V: AsRef<str>,
{
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(close) = inner.find(')')
        {
            let name = &inner[..close];
            match vars.get(name) {
                Some(v) => out.push_str(v.as_ref()),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &inner[close + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Objects;

    impl EnvObjects for Objects {
        fn secret(&self, name: &str) -> Option<BTreeMap<String, String>> {
            match name {
                "sqs" => Some([("url".into(), "http://moto/q".into()), ("id".into(), "AKIA".into())].into()),
                _ => None,
            }
        }
        fn config_map(&self, name: &str) -> Option<BTreeMap<String, String>> {
            match name {
                "cfg" => {
                    Some([("REGION".into(), "eu-west-1".into()), ("HOST".into(), "cfg-host".into())].into())
                }
                _ => None,
            }
        }
    }

    fn container(spec: serde_json::Value) -> Container {
        serde_json::from_value(spec).unwrap()
    }

    fn s(m: &[(&str, &str)]) -> BTreeMap<String, String> {
        m.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    /// Kubernetes: envFrom keys first (with prefix), then env entries override them.
    #[test]
    fn env_from_with_prefix_then_env_overrides() {
        let c = container(serde_json::json!({"name": "app",
            "envFrom": [{"configMapRef": {"name": "cfg"}}, {"prefix": "S_", "secretRef": {"name": "sqs"}}],
            "env": [{"name": "HOST", "value": "literal"},
                    {"name": "QUEUE", "valueFrom": {"secretKeyRef": {"name": "sqs", "key": "url"}}},
                    {"name": "R", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "REGION"}}},
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}));
        let got = resolve(&c, &Objects).unwrap();
        assert_eq!(
            got,
            s(&[
                ("REGION", "eu-west-1"),
                ("HOST", "literal"),
                ("S_url", "http://moto/q"),
                ("S_id", "AKIA"),
                ("QUEUE", "http://moto/q"),
                ("R", "eu-west-1")
            ])
        );
        assert_eq!(
            referenced(&c),
            Referenced { secrets: ["sqs".to_owned()].into(), config_maps: ["cfg".to_owned()].into() }
        );
    }

    /// Kubernetes: `$(VAR)` expands previously defined variables only; `$$` escapes; undefined
    /// references stay as written; values read from objects are not expanded.
    #[test]
    fn dollar_references_expand_like_kubernetes() {
        let c = container(serde_json::json!({"name": "app",
            "envFrom": [{"configMapRef": {"name": "cfg"}}],
            "env": [{"name": "BASE", "valueFrom": {"secretKeyRef": {"name": "sqs", "key": "url"}}},
                    {"name": "URL", "value": "$(BASE)/x?r=$(REGION)"},
                    {"name": "EARLY", "value": "$(LATER)"},
                    {"name": "LATER", "value": "v"},
                    {"name": "ESC", "value": "$$(BASE) $$ $x $(open"},
                    {"name": "EMPTY"}]}));
        let got = resolve(&c, &Objects).unwrap();
        assert_eq!(got["URL"], "http://moto/q/x?r=eu-west-1");
        assert_eq!(got["EARLY"], "$(LATER)");
        assert_eq!(got["ESC"], "$(BASE) $ $x $(open");
        assert_eq!(got["EMPTY"], "");
        let vars = s(&[("A", "1")]);
        assert_eq!(expand("$(A)$(A)$", &vars), "11$");
        assert_eq!(expand("$()", &vars), "$()");
        assert_eq!(expand("é$(A)ü", &vars), "é1ü");
    }

    #[test]
    fn optional_references_are_skipped_and_required_ones_named() {
        let c = container(serde_json::json!({"name": "app",
            "envFrom": [{"secretRef": {"name": "gone", "optional": true}}],
            "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k", "optional": true}}},
                    {"name": "B", "valueFrom": {"secretKeyRef": {"name": "sqs", "key": "nope", "optional": true}}},
                    {"name": "C", "value": "[$(A)]"}]}));
        assert_eq!(resolve(&c, &Objects).unwrap(), s(&[("C", "[$(A)]")]));
        let cases = [
            (
                serde_json::json!({"name": "w", "envFrom": [{"configMapRef": {"name": "gone"}}]}),
                "ConfigMap \"gone\" not found (read by envFrom of container \"w\")",
            ),
            (
                serde_json::json!({"name": "w", "env": [{"name": "Q", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "url"}}}]}),
                "Secret \"gone\" not found (read by variable \"Q\" of container \"w\")",
            ),
            (
                serde_json::json!({"name": "w", "env": [{"name": "Q", "valueFrom": {"secretKeyRef": {"name": "sqs", "key": "nope"}}}]}),
                "Secret \"sqs\" has no key \"nope\" (read by variable \"Q\" of container \"w\")",
            ),
        ];
        for (spec, text) in cases {
            let e = resolve(&container(spec), &Objects).unwrap_err().to_string();
            assert_eq!(e, text);
            assert!(!e.contains("http://moto/q") && !e.contains("AKIA"), "{e}");
        }
    }

    #[test]
    fn picks_the_named_container_else_the_first() {
        let cs =
            vec![container(serde_json::json!({"name": "a"})), container(serde_json::json!({"name": "b"}))];
        assert_eq!(pick(&cs, None).unwrap().map(|c| c.name.as_str()), Some("a"));
        assert_eq!(pick(&cs, Some("b")).unwrap().map(|c| c.name.as_str()), Some("b"));
        assert_eq!(pick(&cs, Some("")).unwrap().map(|c| c.name.as_str()), Some("a"));
        assert_eq!(
            pick(&cs, Some("c")).unwrap_err().to_string(),
            "container \"c\" not found in the scale target's pod template"
        );
        assert_eq!(pick(&[], None).unwrap(), None);
    }
}
