//! Decoding of Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`) into
//! the JSON form of the object.
//!
//! kubectl's generators for built-in kinds (`kubectl create deployment|namespace|secret|
//! configmap|serviceaccount|service|job|cronjob`, `kubectl autoscale`) and client-go's event
//! recorders (events.k8s.io/v1 and core/v1 Events) send their object as protobuf and do not fall
//! back to JSON, so the control plane decodes these bodies. A body is
//! the magic prefix `k8s\0` followed by a `runtime.Unknown` envelope whose `typeMeta` names the
//! apiVersion/kind and whose `raw` holds the typed message.
//!
//! Approach: the typed message is decoded with the `k8s-pb` prost types, then converted field
//! by field into the matching `k8s-openapi` struct, whose serde serialization is the JSON
//! Kubernetes uses (camelCase keys, apiVersion/kind, int-or-string, quantities, RFC 3339
//! timestamps, base64 bytes). This takes less code than building JSON by hand and cannot
//! misspell a key. The conversions are tables of field names (`proto/{core_kinds,events,pod,
//! volume,workloads}.rs`, machinery in `proto/conv.rs`); they build the target structs without
//! struct-update syntax, so the compiler checks that no field of the target is forgotten.
//!
//! Protobuf cannot tell "unset" from "zero" for Go's non-pointer fields (Go's encoder always
//! writes them), so the tables list those fields and drop their zero values, as Go's `omitempty`
//! does. The lists come from bodies recorded from kubectl (`tests/fixtures/proto/`, including a
//! Job whose template has every struct present and no scalar set), and the tests compare the
//! decoded recordings with kubectl's own JSON for the same objects. Remaining differences from
//! Go's JSON: unset pointers and timestamps are omitted instead of printed as `null`; fields
//! `k8s-openapi` models as required print `""`/`[]` when empty where Go may omit them; fields
//! newer than the `k8s-openapi` Kubernetes version are ignored.

mod conv;
mod core_kinds;
mod events;
mod pod;
mod volume;
mod workloads;

#[cfg(test)]
mod tests;

use conv::Conv;
use k8s_pb::apimachinery::pkg::runtime::Unknown;
use prost::Message;

/// Content type of Kubernetes protobuf bodies.
pub const PROTOBUF_CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The four bytes every Kubernetes protobuf body starts with.
const MAGIC: &[u8; 4] = b"k8s\0";

/// Why a protobuf body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// The body does not start with `k8s\0`.
    #[error("protobuf body does not start with the Kubernetes magic prefix k8s\\0")]
    BadMagic,
    /// The `runtime.Unknown` envelope is malformed (truncated, missing apiVersion/kind, encoded).
    #[error("malformed protobuf envelope: {0}")]
    BadEnvelope(String),
    /// The envelope names a kind this server cannot decode from protobuf.
    #[error("unsupported kind \"{api_version} {kind}\" in protobuf body; send it as JSON")]
    UnsupportedKind { api_version: String, kind: String },
    /// The typed message of a supported kind is malformed.
    #[error("cannot decode protobuf {api_version} {kind}: {reason}")]
    Decode { api_version: String, kind: String, reason: String },
}

type Decoder = fn(&[u8]) -> Result<serde_json::Value, String>;

/// One [`KINDS`] entry for `group::version::Kind`, which names the same type in `k8s-pb` and
/// `k8s-openapi`; apiVersion and kind come from `k8s-openapi`.
macro_rules! kind {
    ($group:ident::$version:ident::$kind:ident) => {{
        type Oa = k8s_openapi::api::$group::$version::$kind;
        (
            <Oa as k8s_openapi::Resource>::API_VERSION,
            <Oa as k8s_openapi::Resource>::KIND,
            typed::<k8s_pb::api::$group::$version::$kind, Oa> as Decoder,
        )
    }};
}

/// The kinds [`decode`] understands, as (apiVersion, kind, decoder).
const KINDS: &[(&str, &str, Decoder)] = &[
    kind!(core::v1::Namespace),
    kind!(core::v1::Secret),
    kind!(core::v1::ConfigMap),
    kind!(core::v1::ServiceAccount),
    kind!(core::v1::Service),
    kind!(core::v1::Pod),
    kind!(core::v1::Event),
    kind!(events::v1::Event),
    kind!(apps::v1::Deployment),
    kind!(apps::v1::StatefulSet),
    kind!(batch::v1::Job),
    kind!(batch::v1::CronJob),
    kind!(autoscaling::v1::HorizontalPodAutoscaler),
    kind!(autoscaling::v2::HorizontalPodAutoscaler),
];

/// The (apiVersion, kind) pairs [`decode`] accepts.
pub fn supported_kinds() -> impl Iterator<Item = (&'static str, &'static str)> {
    KINDS.iter().map(|(api_version, kind, _)| (*api_version, *kind))
}

/// Decodes a protobuf request body into the object's JSON form: what the same object looks like
/// as JSON (camelCase keys, apiVersion and kind set, unset fields omitted, int-or-string and
/// quantities as Kubernetes writes them, timestamps RFC 3339, Secret data base64).
pub fn decode(body: &[u8]) -> Result<serde_json::Value, ProtoError> {
    let envelope = body.strip_prefix(MAGIC).ok_or(ProtoError::BadMagic)?;
    let unknown = Unknown::decode(envelope).map_err(|e| ProtoError::BadEnvelope(e.to_string()))?;
    let type_meta = unknown.type_meta.unwrap_or_default();
    let api_version = type_meta.api_version.unwrap_or_default();
    let kind = type_meta.kind.unwrap_or_default();
    if api_version.is_empty() || kind.is_empty() {
        return Err(ProtoError::BadEnvelope("apiVersion or kind is missing".to_owned()));
    }
    if let Some(encoding) = unknown.content_encoding.filter(|e| !e.is_empty()) {
        return Err(ProtoError::BadEnvelope(format!("unsupported contentEncoding {encoding:?}")));
    }
    let Some((_, _, decoder)) = KINDS.iter().find(|(v, k, _)| *v == api_version && *k == kind) else {
        return Err(ProtoError::UnsupportedKind { api_version, kind });
    };
    decoder(&unknown.raw.unwrap_or_default()).map_err(|reason| ProtoError::Decode {
        api_version,
        kind,
        reason,
    })
}

/// Decodes `raw` as the prost message `P` and serializes its `k8s-openapi` form `O`.
fn typed<P, O>(raw: &[u8]) -> Result<serde_json::Value, String>
where
    P: Message + Default + Conv<O>,
    O: serde::Serialize,
{
    let message = P::decode(raw).map_err(|e| e.to_string())?;
    let object: O = message.conv()?;
    serde_json::to_value(object).map_err(|e| e.to_string())
}
