//! The operator's error type, with a bounded `reason()` used as Event reason, metric label and
//! error-policy input (never a Debug string as a label).

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("scale target not found: {0}")]
    TargetNotFound(String),
    #[error("scale target cannot be scaled: {0}")]
    NoScale(String),
    #[error("{0}")]
    Invalid(String),
    #[error("authentication: {0}")]
    Auth(String),
    #[error("kubernetes API: {0}")]
    Kube(#[source] kube::Error),
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TargetNotFound(_) | Self::NoScale(_) | Self::Invalid(_) | Self::Auth(_) => {
                "ScaledObjectCheckFailed"
            }
            Self::Kube(_) => "KubernetesAPIError",
            Self::Internal(_) => "InternalError",
        }
    }
}

/// Converts between chrono (used by ebb's pure scaling code) and the Kubernetes `Time` type.
pub mod time {
    use chrono::{DateTime, Utc};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    pub fn to_k8s(t: DateTime<Utc>) -> Time {
        let nanos = i128::from(t.timestamp()) * 1_000_000_000 + i128::from(t.timestamp_subsec_nanos());
        Time(Timestamp::from_nanosecond(nanos).unwrap_or(Timestamp::UNIX_EPOCH))
    }

    pub fn from_k8s(t: &Time) -> DateTime<Utc> {
        let nanos = t.0.as_nanosecond();
        let secs = i64::try_from(nanos.div_euclid(1_000_000_000)).unwrap_or(0);
        let sub = u32::try_from(nanos.rem_euclid(1_000_000_000)).unwrap_or(0);
        DateTime::from_timestamp(secs, sub).unwrap_or_default()
    }

    pub fn now() -> Time {
        to_k8s(Utc::now())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn round_trips() {
            let t = DateTime::from_timestamp(1_763_900_000, 123_000_000).unwrap();
            assert_eq!(from_k8s(&to_k8s(t)), t);
        }
    }
}
