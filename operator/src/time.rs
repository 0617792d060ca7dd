//! Time conversions between chrono (used by ebb's pure scaling code) and the Kubernetes `Time`
//! type (status conditions, `lastActiveTime`, creation timestamps), and the current time as a
//! Kubernetes `Time`. Out-of-range values fall back to the Unix epoch instead of panicking.

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// A chrono instant as a Kubernetes `Time` (nanosecond precision kept).
pub fn to_k8s(t: DateTime<Utc>) -> Time {
    let nanos = i128::from(t.timestamp()) * 1_000_000_000 + i128::from(t.timestamp_subsec_nanos());
    Time(Timestamp::from_nanosecond(nanos).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// A Kubernetes `Time` as a chrono instant.
pub fn from_k8s(t: &Time) -> DateTime<Utc> {
    let nanos = t.0.as_nanosecond();
    let secs = i64::try_from(nanos.div_euclid(1_000_000_000)).unwrap_or(0);
    let sub = u32::try_from(nanos.rem_euclid(1_000_000_000)).unwrap_or(0);
    DateTime::from_timestamp(secs, sub).unwrap_or_default()
}

/// The current time as a Kubernetes `Time`.
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
