//! Patch engines of the local control plane, all pure functions over `serde_json::Value`:
//! JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic merge patch for the built-in
//! types ebb touches, and server-side apply with field ownership (`managedFields`).

use thiserror::Error;

pub mod apply;
pub mod fields;
pub mod json;
pub mod merge;
pub mod strategic;

/// A patch that cannot be applied. Rendered into a 422/400 `Status` by the server.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PatchError {
    /// The patch document itself is malformed (HTTP 400).
    #[error("invalid patch: {0}")]
    Invalid(String),
    /// The patch is well formed but cannot apply to this object (HTTP 422), e.g. a failed
    /// JSON-patch `test` or a path that does not exist.
    #[error("{0}")]
    Unprocessable(String),
}
