//! TriggerAuthentication resolution (pure): turns a TriggerAuthentication spec into the
//! parameter map a scaler reads, given lookups for Secrets, ConfigMaps and the target
//! container's environment. The operator passes cluster lookups, `ebb check` passes manifests.
//! Resolved values are secrets: they are never put in errors, logs, events or labels; where each
//! parameter came from ([`Resolved::sources`]) is named instead. Also the namespace rule of a
//! ClusterTriggerAuthentication ([`NamespaceRule`], annotation `ebb.keda.sh/allowed-namespaces`).

use std::collections::{BTreeMap, BTreeSet};

use ebb_api::TriggerAuthenticationSpec;
use thiserror::Error;

/// Why an authentication could not be resolved. Messages name objects and keys, never values.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("{kind} {name:?} not found (needed for parameter {parameter:?})")]
    MissingObject { kind: &'static str, name: String, parameter: String },
    #[error("{kind} {name:?} has no key {key:?} (needed for parameter {parameter:?})")]
    MissingKey { kind: &'static str, name: String, key: String, parameter: String },
    #[error(
        "environment variable {name:?} is not set on the scale target's container (needed for parameter {parameter:?})"
    )]
    MissingEnv { name: String, parameter: String },
    #[error("{0} is not supported by ebb; use secretTargetRef, configMapTargetRef, env or podIdentity")]
    UnsupportedProvider(&'static str),
    #[error("podIdentity provider {0:?} is not supported by ebb (supported: none, aws)")]
    UnsupportedPodIdentity(String),
    #[error("{0} is not supported by ebb; remove it or resolve the credential another way")]
    UnsupportedField(&'static str),
}

impl AuthError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingObject { .. } | Self::MissingKey { .. } | Self::MissingEnv { .. } => {
                "AuthenticationNotResolved"
            }
            Self::UnsupportedProvider(_) | Self::UnsupportedPodIdentity(_) | Self::UnsupportedField(_) => {
                "AuthenticationNotSupported"
            }
        }
    }
}

/// Result of a lookup into a Secret or ConfigMap: the object is missing, or the key is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    Found(String),
    NoObject,
    NoKey,
}

/// Where resolution reads from.
pub trait AuthSources {
    fn secret(&self, name: &str, key: &str) -> Lookup;
    fn config_map(&self, name: &str, key: &str) -> Lookup;
    /// Environment variable of the container named (or the default container).
    fn env(&self, name: &str, container: Option<&str>) -> Option<String>;
}

/// Resolves every parameter the authentication declares.
pub fn resolve(
    spec: &TriggerAuthenticationSpec,
    sources: &dyn AuthSources,
) -> Result<BTreeMap<String, String>, AuthError> {
    resolve_with_sources(spec, sources).map(|r| r.params)
}

/// Resolved parameters and, per parameter, where they were read (names only).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    pub params: BTreeMap<String, String>,
    /// e.g. `secretTargetRef: Secret "db" key "password"`.
    pub sources: BTreeMap<String, String>,
}

impl std::fmt::Debug for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolved").field("sources", &self.sources).finish_non_exhaustive()
    }
}

/// [`resolve`], also saying where each parameter came from. When several entries give one
/// parameter the last read wins: env, then secretTargetRef, then configMapTargetRef.
pub fn resolve_with_sources(
    spec: &TriggerAuthenticationSpec,
    sources: &dyn AuthSources,
) -> Result<Resolved, AuthError> {
    for (present, what) in [
        (spec.hashi_corp_vault.is_some(), "hashiCorpVault"),
        (spec.azure_key_vault.is_some(), "azureKeyVault"),
        (spec.gcp_secret_manager.is_some(), "gcpSecretManager"),
        (spec.aws_secret_manager.is_some(), "awsSecretManager"),
        (spec.bound_service_account_token.is_some(), "boundServiceAccountToken"),
        (!spec.file_path.is_empty(), "filePath"),
        (spec.oauth2.is_some(), "oauth2"),
    ] {
        if present {
            return Err(AuthError::UnsupportedProvider(what));
        }
    }
    if let Some(pi) = &spec.pod_identity
        && !matches!(pi.provider.as_str(), "none" | "aws" | "")
    {
        return Err(AuthError::UnsupportedPodIdentity(pi.provider.clone()));
    }
    if spec.pod_identity.as_ref().is_some_and(|pi| pi.external_id.as_deref().is_some_and(|x| !x.is_empty())) {
        return Err(AuthError::UnsupportedField("podIdentity.externalID"));
    }
    let mut out = Resolved::default();
    let mut put = |parameter: &str, value: String, from: String| {
        out.params.insert(parameter.to_owned(), value);
        out.sources.insert(parameter.to_owned(), from);
    };
    for e in &spec.env {
        let v = sources
            .env(&e.name, e.container_name.as_deref())
            .ok_or_else(|| AuthError::MissingEnv { name: e.name.clone(), parameter: e.parameter.clone() })?;
        let container = match &e.container_name {
            Some(c) => format!("container {c:?}"),
            None => "the scale target's container".to_owned(),
        };
        put(&e.parameter, v, format!("env: variable {:?} of {container}", e.name));
    }
    for r in &spec.secret_target_ref {
        let v = found("Secret", sources.secret(&r.name, &r.key), &r.name, &r.key, &r.parameter)?;
        put(&r.parameter, v, format!("secretTargetRef: Secret {:?} key {:?}", r.name, r.key));
    }
    for r in &spec.config_map_target_ref {
        let v = found("ConfigMap", sources.config_map(&r.name, &r.key), &r.name, &r.key, &r.parameter)?;
        put(&r.parameter, v, format!("configMapTargetRef: ConfigMap {:?} key {:?}", r.name, r.key));
    }
    Ok(out)
}

/// Which namespaces may use a ClusterTriggerAuthentication: its `ebb.keda.sh/allowed-namespaces`
/// annotation (comma-separated namespace names, `*` for all), or the operator's default when
/// the annotation is absent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NamespaceRule {
    All,
    Only(BTreeSet<String>),
}

impl NamespaceRule {
    /// Parses a comma-separated list of namespace names; `*` (alone or in the list) means all.
    /// An empty list allows no namespace. Errors name the offending entry.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut names = BTreeSet::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if entry == "*" {
                return Ok(Self::All);
            }
            if !is_namespace_name(entry) {
                let shown: String = entry.chars().take(64).collect();
                return Err(format!(
                    "{shown:?} is not a namespace name (lowercase letters, digits and '-', at most 63 characters) nor *"
                ));
            }
            names.insert(entry.to_owned());
        }
        Ok(Self::Only(names))
    }

    pub fn allows(&self, namespace: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(names) => names.contains(namespace),
        }
    }

    /// `all namespaces`, `no namespace` or `namespaces a, b`.
    pub fn describe(&self) -> String {
        match self {
            Self::All => "all namespaces".to_owned(),
            Self::Only(n) if n.is_empty() => "no namespace".to_owned(),
            Self::Only(n) => format!("namespaces {}", n.iter().cloned().collect::<Vec<_>>().join(", ")),
        }
    }
}

/// An RFC 1123 label, as Kubernetes requires of namespace names.
fn is_namespace_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn found(kind: &'static str, l: Lookup, name: &str, key: &str, parameter: &str) -> Result<String, AuthError> {
    match l {
        Lookup::Found(v) => Ok(v),
        Lookup::NoObject => {
            Err(AuthError::MissingObject { kind, name: name.to_owned(), parameter: parameter.to_owned() })
        }
        Lookup::NoKey => Err(AuthError::MissingKey {
            kind,
            name: name.to_owned(),
            key: key.to_owned(),
            parameter: parameter.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ebb_api::{AuthConfigMapTargetRef, AuthEnvironment, AuthSecretTargetRef};

    struct Fixed;

    impl AuthSources for Fixed {
        fn secret(&self, name: &str, key: &str) -> Lookup {
            match (name, key) {
                ("aws", "id") => Lookup::Found("AKIA".into()),
                ("aws", _) => Lookup::NoKey,
                _ => Lookup::NoObject,
            }
        }
        fn config_map(&self, name: &str, key: &str) -> Lookup {
            if (name, key) == ("cfg", "region") {
                Lookup::Found("us-east-1".into())
            } else {
                Lookup::NoObject
            }
        }
        fn env(&self, name: &str, _: Option<&str>) -> Option<String> {
            (name == "TOKEN").then(|| "tok".to_owned())
        }
    }

    fn sref(parameter: &str, name: &str, key: &str) -> AuthSecretTargetRef {
        AuthSecretTargetRef { parameter: parameter.into(), name: name.into(), key: key.into() }
    }

    #[test]
    fn resolves_every_source() {
        let spec = TriggerAuthenticationSpec {
            secret_target_ref: vec![sref("awsAccessKeyID", "aws", "id")],
            config_map_target_ref: vec![AuthConfigMapTargetRef {
                parameter: "awsRegion".into(),
                name: "cfg".into(),
                key: "region".into(),
            }],
            env: vec![AuthEnvironment {
                parameter: "bearerToken".into(),
                name: "TOKEN".into(),
                container_name: None,
            }],
            ..Default::default()
        };
        let got = resolve(&spec, &Fixed).unwrap();
        assert_eq!(got.get("awsAccessKeyID").map(String::as_str), Some("AKIA"));
        assert_eq!(got.get("awsRegion").map(String::as_str), Some("us-east-1"));
        assert_eq!(got.get("bearerToken").map(String::as_str), Some("tok"));
    }

    #[test]
    fn sources_name_where_each_parameter_was_read_and_no_value() {
        let spec = TriggerAuthenticationSpec {
            secret_target_ref: vec![sref("awsAccessKeyID", "aws", "id")],
            env: vec![AuthEnvironment {
                parameter: "bearerToken".into(),
                name: "TOKEN".into(),
                container_name: Some("app".into()),
            }],
            ..Default::default()
        };
        let got = resolve_with_sources(&spec, &Fixed).unwrap();
        assert_eq!(got.sources["awsAccessKeyID"], "secretTargetRef: Secret \"aws\" key \"id\"");
        assert_eq!(got.sources["bearerToken"], "env: variable \"TOKEN\" of container \"app\"");
        let debug = format!("{got:?}");
        assert!(!debug.contains("AKIA") && !debug.contains("tok\""), "{debug}");
    }

    #[test]
    fn namespace_rules() {
        let only = NamespaceRule::parse(" team-a, team-b ,").unwrap();
        assert!(only.allows("team-a") && only.allows("team-b") && !only.allows("team-c"));
        assert_eq!(only.describe(), "namespaces team-a, team-b");
        assert_eq!(NamespaceRule::parse("team-a,*").unwrap(), NamespaceRule::All);
        let none = NamespaceRule::parse("").unwrap();
        assert!(!none.allows("default"));
        assert_eq!(none.describe(), "no namespace");
        let e = NamespaceRule::parse("team-a,Team_B").unwrap_err();
        assert!(e.starts_with("\"Team_B\" is not a namespace name"), "{e}");
        assert!(NamespaceRule::parse(&"a".repeat(64)).is_err());
    }

    #[test]
    fn errors_name_the_object_and_key_but_no_value() {
        let missing_key = TriggerAuthenticationSpec {
            secret_target_ref: vec![sref("p", "aws", "secret")],
            ..Default::default()
        };
        assert_eq!(
            resolve(&missing_key, &Fixed).unwrap_err().to_string(),
            "Secret \"aws\" has no key \"secret\" (needed for parameter \"p\")"
        );
        let missing_obj = TriggerAuthenticationSpec {
            secret_target_ref: vec![sref("p", "nope", "k")],
            ..Default::default()
        };
        assert_eq!(resolve(&missing_obj, &Fixed).unwrap_err().reason(), "AuthenticationNotResolved");
        let vault =
            TriggerAuthenticationSpec { hashi_corp_vault: Some(serde_json::json!({})), ..Default::default() };
        assert!(resolve(&vault, &Fixed).unwrap_err().to_string().contains("hashiCorpVault is not supported"));
    }

    #[test]
    fn keda_providers_ebb_lacks_are_reported_not_ignored() {
        let file_path = TriggerAuthenticationSpec {
            file_path: vec![ebb_api::trigger_auth::AuthFilePath {
                parameter: "apiKey".into(),
                path: "creds/key".into(),
            }],
            ..Default::default()
        };
        let oauth2 = TriggerAuthenticationSpec {
            oauth2: Some(ebb_api::trigger_auth::AuthOAuth2::default()),
            ..Default::default()
        };
        let external_id = TriggerAuthenticationSpec {
            pod_identity: Some(ebb_api::AuthPodIdentity {
                provider: "aws".into(),
                role_arn: Some("arn:aws:iam::123456789012:role/r".into()),
                external_id: Some("x".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        for (spec, want) in [
            (file_path, "filePath is not supported by ebb"),
            (oauth2, "oauth2 is not supported by ebb"),
            (external_id, "podIdentity.externalID is not supported by ebb"),
        ] {
            let err = resolve(&spec, &Fixed).unwrap_err();
            assert!(err.to_string().starts_with(want), "{err}");
            assert_eq!(err.reason(), "AuthenticationNotSupported");
        }
    }
}
