//! TriggerAuthentication (namespaced, short name `ta`) and ClusterTriggerAuthentication (cluster
//! scoped, short name `cta`): where a trigger's credentials come from. Every field of KEDA's
//! schema is declared, so the API server never prunes (nor, with strict field validation,
//! refuses) what a KEDA user writes. Providers ebb does not implement (`filePath`, `oauth2`,
//! `podIdentity.externalID`, the secret stores) are kept verbatim so resolution can report them
//! as not supported instead of silently ignoring them.

// kube's derive takes repeated keys by design (one `printcolumn(type_ = …)` per column).
#![allow(clippy::duplicated_attributes)]

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Sources of authentication parameters for triggers.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "keda.sh",
    version = "v1alpha1",
    kind = "TriggerAuthentication",
    plural = "triggerauthentications",
    singular = "triggerauthentication",
    namespaced,
    shortname = "ta",
    shortname = "triggerauth",
    status = "TriggerAuthenticationStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "TriggerAuthentication supplies credentials to the triggers of ScaledObjects in its namespace.",
    printcolumn(name = "PodIdentity", type_ = "string", json_path = ".spec.podIdentity.provider"),
    printcolumn(name = "Secret", type_ = "string", json_path = ".spec.secretTargetRef[*].name"),
    printcolumn(name = "Env", type_ = "string", json_path = ".spec.env[*].name"),
    printcolumn(name = "ScaledObjects", type_ = "string", priority = 1, json_path = ".status.scaledobjects"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct TriggerAuthenticationSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_identity: Option<AuthPodIdentity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_target_ref: Vec<AuthSecretTargetRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<AuthEnvironment>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_map_target_ref: Vec<AuthConfigMapTargetRef>,
    /// Not implemented by ebb: kept so the operator can say so instead of dropping it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque")]
    pub hashi_corp_vault: Option<serde_json::Value>,
    /// Not implemented by ebb: kept so the operator can say so instead of dropping it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque")]
    pub azure_key_vault: Option<serde_json::Value>,
    /// Not implemented by ebb: kept so the operator can say so instead of dropping it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque")]
    pub gcp_secret_manager: Option<serde_json::Value>,
    /// Not implemented by ebb: kept so the operator can say so instead of dropping it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque")]
    pub aws_secret_manager: Option<serde_json::Value>,
    /// Not implemented by ebb: kept so the operator can say so instead of dropping it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque")]
    pub bound_service_account_token: Option<serde_json::Value>,
    /// Parameters read from files under the KEDA operator's `--filepath-auth-root-path`.
    /// Not implemented by ebb: kept so the operator can say so instead of dropping it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_path: Vec<AuthFilePath>,
    /// An OAuth2 access token fetched by the operator for the trigger.
    /// Not implemented by ebb: kept so the operator can say so instead of dropping it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<AuthOAuth2>,
}

/// Take a parameter from a file (KEDA's `filePath` provider): `path` is relative to the
/// operator's configured root path.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct AuthFilePath {
    pub parameter: String,
    pub path: String,
}

/// KEDA's `oauth2` provider: a token from `tokenUrl` obtained with the client credentials.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthOAuth2 {
    /// Grant type; KEDA documents `clientCredentials`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Where the client secret is read from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<AuthValueFromSecret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Extra parameters sent to the token endpoint (e.g. `audience`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub token_url_params: std::collections::BTreeMap<String, String>,
}

/// A value read from a Secret: `valueFrom.secretKeyRef`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthValueFromSecret {
    pub value_from: AuthSecretKeySelector,
}

/// Which Secret key holds the value: `secretKeyRef`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthSecretKeySelector {
    pub secret_key_ref: AuthSecretKey,
}

/// A Secret's name and one of its keys.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct AuthSecretKey {
    pub name: String,
    pub key: String,
}

/// Cluster-scoped authentication; secrets and config maps are read from the operator's namespace.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "keda.sh",
    version = "v1alpha1",
    kind = "ClusterTriggerAuthentication",
    plural = "clustertriggerauthentications",
    singular = "clustertriggerauthentication",
    shortname = "cta",
    shortname = "clustertriggerauth",
    status = "TriggerAuthenticationStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "ClusterTriggerAuthentication supplies credentials to triggers in every namespace.",
    printcolumn(name = "PodIdentity", type_ = "string", json_path = ".spec.podIdentity.provider"),
    printcolumn(name = "Secret", type_ = "string", json_path = ".spec.secretTargetRef[*].name"),
    printcolumn(name = "Env", type_ = "string", json_path = ".spec.env[*].name"),
    printcolumn(name = "ScaledObjects", type_ = "string", priority = 1, json_path = ".status.scaledobjects"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
pub struct ClusterTriggerAuthenticationSpec {
    #[serde(flatten)]
    pub auth: TriggerAuthenticationSpec,
}

fn opaque(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "x-kubernetes-preserve-unknown-fields": true })
}

/// Identity taken from the platform instead of a stored secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthPodIdentity {
    /// `none`, `aws`, `aws-eks`, `azure-workload` or `gcp` (ebb implements `none` and `aws`).
    pub provider: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_tenant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_authority_host: Option<String>,
    /// Role to assume (aws).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// `keda` (default: the operator's identity) or `workload` (the target's ServiceAccount role).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_owner: Option<String>,
    /// External ID passed when assuming `roleArn` (aws). Not implemented by ebb: kept so the
    /// operator can say so instead of assuming the role without it.
    #[serde(default, rename = "externalID", skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

/// Take a parameter from a key of a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct AuthSecretTargetRef {
    pub parameter: String,
    pub name: String,
    pub key: String,
}

/// Take a parameter from a key of a ConfigMap.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct AuthConfigMapTargetRef {
    pub parameter: String,
    pub name: String,
    pub key: String,
}

/// Take a parameter from an environment variable of the target's container.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthEnvironment {
    pub parameter: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
}

/// Which ScaledObjects use this authentication.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct TriggerAuthenticationStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaledobjects: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaledjobs: Option<String>,
}
