//! Errors of the scalers crate. `ParseError` says which trigger, which parameter and what was
//! expected; `ScalerError` is what a live measurement can fail with. Both expose a bounded
//! `reason()` used as Event reason, metric label and error-policy input — never a Debug string.

use std::fmt;
use std::time::Duration;

use thiserror::Error;

/// Where in a ScaledObject a problem is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A field of the spec, e.g. `spec.minReplicaCount`.
    Spec(String),
    /// A trigger, optionally one of its metadata parameters.
    Trigger { index: usize, type_: String, parameter: Option<String> },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Spec(path) => f.write_str(path),
            Self::Trigger { index, type_, parameter: None } => write!(f, "spec.triggers[{index}] ({type_})"),
            Self::Trigger { index, type_, parameter: Some(p) } => {
                write!(f, "spec.triggers[{index}] ({type_}) metadata.{p}")
            }
        }
    }
}

/// A ScaledObject or trigger that cannot be used as written.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{location}: {message}")]
pub struct ParseError {
    pub location: Location,
    pub message: String,
    pub kind: ParseErrorKind,
}

/// Bounded categories of parse errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// A spec field outside its allowed range or combination.
    InvalidSpec,
    /// The trigger type is not known to ebb.
    UnknownTriggerType,
    /// A required parameter is absent.
    MissingParameter,
    /// A parameter has a value that cannot be used.
    InvalidParameter,
    /// The trigger needs credentials and none are configured. Not a defect of the manifest as
    /// written (a TriggerAuthentication may be added later): admission warns, the operator
    /// reports it on the object.
    MissingCredentials,
}

impl ParseError {
    pub fn spec(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            location: Location::Spec(path.into()),
            message: message.into(),
            kind: ParseErrorKind::InvalidSpec,
        }
    }

    /// Bounded reason, usable as an Event reason or metric label.
    pub fn reason(&self) -> &'static str {
        match self.kind {
            ParseErrorKind::InvalidSpec => "InvalidSpec",
            ParseErrorKind::UnknownTriggerType => "UnknownTriggerType",
            ParseErrorKind::MissingParameter => "MissingParameter",
            ParseErrorKind::InvalidParameter => "InvalidParameter",
            ParseErrorKind::MissingCredentials => "MissingCredentials",
        }
    }
}

/// A measurement that failed. Messages name the source and parameter; they never carry secrets.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ScalerError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Unreachable(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Throttled(String),
    #[error("{0}")]
    InvalidResponse(String),
    #[error("{0}")]
    Config(String),
    /// The operator's egress policy forbids the destination (see `crate::egress`).
    #[error("{0}")]
    Denied(String),
}

impl ScalerError {
    /// Bounded reason, usable as an Event reason or metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "Timeout",
            Self::Unreachable(_) => "Unreachable",
            Self::Unauthorized(_) => "Unauthorized",
            Self::NotFound(_) => "NotFound",
            Self::Throttled(_) => "Throttled",
            Self::InvalidResponse(_) => "InvalidResponse",
            Self::Config(_) => "Config",
            Self::Denied(_) => "EgressDenied",
        }
    }
}

impl From<crate::egress::Denied> for ScalerError {
    fn from(d: crate::egress::Denied) -> Self {
        Self::Denied(d.to_string())
    }
}

/// `text` on one line (whitespace and control characters collapsed), cut to `max` characters
/// with `…`: for text from elsewhere that goes into a message.
pub fn one_line(text: &str, max: usize) -> String {
    let words: Vec<&str> =
        text.split(|c: char| c.is_whitespace() || c.is_control()).filter(|w| !w.is_empty()).collect();
    let line = words.join(" ");
    if line.chars().count() > max {
        format!("{}…", line.chars().take(max).collect::<String>())
    } else {
        line
    }
}
