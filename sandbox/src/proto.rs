//! PLACEHOLDER (lead): replaced by the protobuf decoding module.
pub const PROTOBUF_CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";
#[derive(Debug, thiserror::Error)]
#[error("protobuf request bodies are not supported yet")]
pub struct ProtoError;
pub fn decode(_body: &[u8]) -> Result<serde_json::Value, ProtoError> {
    Err(ProtoError)
}
