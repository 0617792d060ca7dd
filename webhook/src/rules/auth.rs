//! TriggerAuthentication and ClusterTriggerAuthentication rules: the pod identity is coherent
//! (a known provider; for aws, no `roleArn` when the workload owns the identity), every
//! reference names a parameter and where to read it. Sources ebb does not implement are
//! admitted with a warning, as the operator reports them on the ScaledObjects that use them.
//! No rule reads a Secret or prints a value.

use std::collections::BTreeMap;

use ebb_api::TriggerAuthenticationSpec;

use super::{Finding, Verdict};

/// Metric-label style reasons of authentication denials.
pub mod reason {
    pub const POD_IDENTITY: &str = "pod-identity";
    pub const REFERENCE: &str = "incomplete-reference";
}

/// Pod identity providers KEDA defines.
pub const KNOWN_PROVIDERS: &[&str] = &["none", "aws", "aws-eks", "azure-workload", "gcp"];
/// Providers ebb implements (an empty provider means none).
pub const SUPPORTED_PROVIDERS: &[&str] = &["none", "aws", ""];

/// Every rule for one authentication spec.
pub fn evaluate(spec: &TriggerAuthenticationSpec) -> Verdict {
    let mut v = Verdict::default();
    let (denials, warnings) = pod_identity(spec);
    v.deny(denials);
    v.warn(warnings);
    v.deny(complete_references(spec));
    v.warn(duplicate_parameters(spec));
    v.warn(unsupported_sources(spec));
    v
}

/// The pod identity: known provider, known identity owner, aws `roleArn` only when ebb owns the
/// identity, a non-empty `identityId` when one is given.
pub fn pod_identity(spec: &TriggerAuthenticationSpec) -> (Vec<Finding>, Vec<String>) {
    let Some(pi) = &spec.pod_identity else { return (Vec::new(), Vec::new()) };
    let f = |m: String| Finding::new(reason::POD_IDENTITY, m);
    let mut denials = Vec::new();
    let mut warnings = Vec::new();
    let provider = pi.provider.as_str();
    if !provider.is_empty() && !KNOWN_PROVIDERS.contains(&provider) {
        denials.push(f(format!(
            "spec.podIdentity.provider: unknown provider {provider:?}; expected one of {}",
            KNOWN_PROVIDERS.join(", ")
        )));
    } else if !SUPPORTED_PROVIDERS.contains(&provider) {
        warnings.push(format!(
            "spec.podIdentity.provider {provider:?} is not supported by ebb (supported: none, aws); ScaledObjects using this authentication report AuthenticationNotSupported"
        ));
    }
    let owner = pi.identity_owner.as_deref().filter(|o| !o.is_empty());
    if let Some(o) = owner.filter(|o| !matches!(*o, "keda" | "workload")) {
        denials.push(f(format!("spec.podIdentity.identityOwner: expected keda or workload, found {o:?}")));
    }
    if provider == "aws" && owner == Some("workload") && pi.role_arn.as_deref().is_some_and(|r| !r.is_empty())
    {
        denials.push(f(
            "spec.podIdentity.roleArn: cannot be set when identityOwner is workload (the workload's own role is used); remove roleArn or set identityOwner: keda".to_owned(),
        ));
    }
    if pi.identity_id.as_deref() == Some("") {
        denials.push(f(
            "spec.podIdentity.identityId: must not be empty when set; remove it or give the identity's id"
                .to_owned(),
        ));
    }
    (denials, warnings)
}

/// Every `secretTargetRef`, `configMapTargetRef` and `env` entry names its parameter and what
/// to read.
pub fn complete_references(spec: &TriggerAuthenticationSpec) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut check = |path: String, fields: &[(&str, &str)]| {
        for (field, value) in fields {
            if value.trim().is_empty() {
                out.push(Finding::new(reason::REFERENCE, format!("{path}.{field}: required")));
            }
        }
    };
    for (i, r) in spec.secret_target_ref.iter().enumerate() {
        check(
            format!("spec.secretTargetRef[{i}]"),
            &[("parameter", &r.parameter), ("name", &r.name), ("key", &r.key)],
        );
    }
    for (i, r) in spec.config_map_target_ref.iter().enumerate() {
        check(
            format!("spec.configMapTargetRef[{i}]"),
            &[("parameter", &r.parameter), ("name", &r.name), ("key", &r.key)],
        );
    }
    for (i, e) in spec.env.iter().enumerate() {
        check(format!("spec.env[{i}]"), &[("parameter", &e.parameter), ("name", &e.name)]);
    }
    out
}

/// A parameter given by several entries: the last source read wins (env, then secrets, then
/// config maps, as the operator resolves them).
pub fn duplicate_parameters(spec: &TriggerAuthenticationSpec) -> Vec<String> {
    let mut seen: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let entries = spec
        .env
        .iter()
        .enumerate()
        .map(|(i, e)| (e.parameter.as_str(), format!("env[{i}]")))
        .chain(
            spec.secret_target_ref
                .iter()
                .enumerate()
                .map(|(i, r)| (r.parameter.as_str(), format!("secretTargetRef[{i}]"))),
        )
        .chain(
            spec.config_map_target_ref
                .iter()
                .enumerate()
                .map(|(i, r)| (r.parameter.as_str(), format!("configMapTargetRef[{i}]"))),
        );
    for (p, at) in entries.filter(|(p, _)| !p.is_empty()) {
        seen.entry(p).or_default().push(at);
    }
    seen.into_iter()
        .filter(|(_, at)| at.len() > 1)
        .map(|(p, at)| {
            let last = at.last().cloned().unwrap_or_default();
            format!("parameter {p:?} is given by {}; {last} wins", at.join(", "))
        })
        .collect()
}

/// Secret stores ebb does not read.
pub fn unsupported_sources(spec: &TriggerAuthenticationSpec) -> Vec<String> {
    [
        (spec.hashi_corp_vault.is_some(), "hashiCorpVault"),
        (spec.azure_key_vault.is_some(), "azureKeyVault"),
        (spec.gcp_secret_manager.is_some(), "gcpSecretManager"),
        (spec.aws_secret_manager.is_some(), "awsSecretManager"),
        (spec.bound_service_account_token.is_some(), "boundServiceAccountToken"),
    ]
    .into_iter()
    .filter(|(present, _)| *present)
    .map(|(_, what)| {
        format!(
            "spec.{what} is not supported by ebb; ScaledObjects using this authentication report AuthenticationNotSupported (use secretTargetRef, configMapTargetRef, env or podIdentity)"
        )
    })
    .collect()
}
