//! The CLI's error type: every variant renders as one line naming what is wrong and where.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum CliError {
    /// A file could not be read or a document is not a valid object.
    #[error("{0}")]
    Manifest(String),
    /// A ScaledObject failed validation; one line per problem, each prefixed with its source.
    #[error("{}", .0.join("\n"))]
    Invalid(Vec<String>),
    /// Bad command-line usage.
    #[error("{0}")]
    Usage(String),
    /// Output could not be written.
    #[error("{0}")]
    Output(String),
}
