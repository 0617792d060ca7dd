//! The operator's error type. Each variant keeps what caused it as its `source` (the API error,
//! the parser's errors, the authentication problem, the scaler that could not be built) and
//! renders the exact text status conditions and events show. `reason()` is bounded: it is used as
//! Event reason, log field and error-policy input (never a Debug string as a label).
//! Conversions between chrono and Kubernetes times live in [`crate::time`].

use ebb_scalers::{ParseError, ScalerError};
use thiserror::Error;

use crate::auth::AuthError;
use crate::hpa::HpaError;
use crate::target::TargetNotFound;

#[derive(Debug, Error)]
pub enum Error {
    /// The target's kind is not served or not namespaced, or the object does not exist.
    #[error("scale target not found: {0}")]
    TargetNotFound(#[source] Box<TargetNotFound>),
    /// The target's kind has no `/scale` subresource.
    #[error("scale target cannot be scaled: {api_version} {kind} has no /scale subresource")]
    NoScale { api_version: String, kind: String },
    /// A replica count below zero was about to be written (refused before any request).
    #[error(
        "cannot scale {kind} {namespace}/{name} to {replicas} replicas: a replica count cannot be negative"
    )]
    NegativeReplicas { kind: String, namespace: String, name: String, replicas: i32 },
    /// The ScaledObject or its triggers do not parse (every problem found, in order).
    #[error("{}", join(.0))]
    Parse(Vec<ParseError>),
    /// An authentication a trigger references cannot be used.
    #[error("authentication: {0}")]
    Auth(#[source] AuthError),
    /// The environment of the target's container cannot be computed.
    #[error("scale target environment: {0}")]
    TargetEnv(#[source] ebb_scalers::env::EnvError),
    /// No HPA can be built for the object.
    #[error("{0}")]
    Hpa(#[source] HpaError),
    /// A trigger's scaler cannot be built.
    #[error("spec.triggers[{index}] ({type_}): {source}")]
    ScalerBuild {
        index: usize,
        type_: String,
        #[source]
        source: ScalerError,
    },
    /// An external scaler did not say which metric it serves (`GetMetricSpec`), so no HPA can
    /// name it.
    #[error(
        "spec.triggers[{index}] ({type_}): cannot get the metric spec of the external scaler at {address}: {source}"
    )]
    MetricSpec {
        index: usize,
        type_: String,
        address: String,
        #[source]
        source: ScalerError,
    },
    /// A Kubernetes API call failed; it says nothing about the object and is retried.
    #[error("kubernetes API: {0}")]
    Kube(#[source] kube::Error),
    /// A broken invariant of the operator itself.
    #[error("{0}")]
    Internal(&'static str),
}

impl Error {
    /// Bounded reason: `ScaledObjectCheckFailed` for what is wrong with the object or its
    /// target, `KubernetesAPIError` for a failed call, `InternalError` otherwise.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TargetNotFound(_)
            | Self::NoScale { .. }
            | Self::NegativeReplicas { .. }
            | Self::Parse(_)
            | Self::Auth(_)
            | Self::TargetEnv(_)
            | Self::Hpa(_)
            | Self::ScalerBuild { .. }
            | Self::MetricSpec { .. } => "ScaledObjectCheckFailed",
            Self::Kube(_) => "KubernetesAPIError",
            Self::Internal(_) => "InternalError",
        }
    }

    /// Whether this is a failed API call (retried without judging the object) rather than a
    /// problem with the object or its target.
    pub fn is_api_failure(&self) -> bool {
        matches!(self, Self::Kube(_))
    }
}

fn join(errors: &[ParseError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    use ebb_scalers::{Location, ParseErrorKind};

    use super::*;

    #[test]
    fn texts_and_sources() {
        let pe = |p: &str| ParseError {
            location: Location::Trigger { index: 0, type_: "cron".into(), parameter: Some(p.into()) },
            message: "is required".into(),
            kind: ParseErrorKind::MissingParameter,
        };
        let e = Error::Parse(vec![pe("start"), pe("end")]);
        assert_eq!(
            e.to_string(),
            "spec.triggers[0] (cron) metadata.start: is required; spec.triggers[0] (cron) metadata.end: is required"
        );
        assert_eq!(e.reason(), "ScaledObjectCheckFailed");
        let e = Error::ScalerBuild {
            index: 1,
            type_: "kafka".into(),
            source: ScalerError::Config("no brokers".into()),
        };
        assert_eq!(e.to_string(), "spec.triggers[1] (kafka): no brokers");
        assert!(std::error::Error::source(&e).is_some());
        let e = Error::MetricSpec {
            index: 0,
            type_: "external".into(),
            address: "scaler.ns.svc:8080".into(),
            source: ScalerError::Timeout(std::time::Duration::from_secs(3)),
        };
        assert_eq!(
            e.to_string(),
            "spec.triggers[0] (external): cannot get the metric spec of the external scaler at scaler.ns.svc:8080: timed out after 3s"
        );
        assert_eq!(e.reason(), "ScaledObjectCheckFailed");
        assert!(!e.is_api_failure());
        let e = Error::NoScale { api_version: "v1".into(), kind: "ConfigMap".into() };
        assert_eq!(e.to_string(), "scale target cannot be scaled: v1 ConfigMap has no /scale subresource");
        let e = Error::Kube(kube::Error::Api(
            kube::core::Status::failure("boom", "InternalError").with_code(500).boxed(),
        ));
        assert!(e.is_api_failure());
        assert_eq!(e.reason(), "KubernetesAPIError");
        assert!(std::error::Error::source(&e).is_some());
    }
}
