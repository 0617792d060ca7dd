//! The `Scaler` trait (one live connection to a metric source) and what a measurement yields,
//! plus `measure_with_timeout`, which bounds every call so a hung source never stalls a loop.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::ScalerError;

/// Default bound on one measurement.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// What one trigger reports at one instant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measurement {
    /// Metric value served to the HPA (already sanitized: finite, ≥ 0).
    pub value: f64,
    /// Whether this trigger asks for the target to be scaled up from zero (or idle).
    pub active: bool,
}

impl Measurement {
    /// The usual rule: sanitize the value and compare it with the activation threshold.
    pub fn from_value(value: f64, activation_target: f64) -> Self {
        let value = ebb_api::quantity::sanitize(value);
        Self { value, active: value > activation_target }
    }
}

/// A live source of one trigger's metric.
#[async_trait]
pub trait Scaler: Send + Sync + fmt::Debug {
    /// Queries the source. `now` is the instant the caller considers current (wall-clock time in
    /// the operator, simulated time in `ebb simulate`); time-based scalers evaluate at it.
    async fn measure(&self, now: DateTime<Utc>) -> Result<Measurement, ScalerError>;

    /// Measures for a query of the metrics API (`useCachedMetrics: false`): like
    /// [`Scaler::measure`], but leaves whatever is kept for the scale loop's next tick (a pushed
    /// activity) in place, so a query between a push and its tick cannot take the push away.
    async fn query(&self, now: DateTime<Utc>) -> Result<Measurement, ScalerError> {
        self.measure(now).await
    }

    /// Called when a scale loop starts with this scaler: the ScaledObject it measures for and
    /// the loop's wake-up, which push scalers notify when their source pushes a change.
    fn attach(&self, _namespace: &str, _name: &str, _wake: Arc<tokio::sync::Notify>) {}

    /// The trigger's own bound on one measurement (such as prometheus' `timeout`), which replaces
    /// the caller's default in [`measure_with_timeout`]; `None` keeps the caller's.
    fn timeout(&self) -> Option<Duration> {
        None
    }
}

/// Measures with a bound on how long the source may take: the scaler's own
/// [`Scaler::timeout`] when it declares one, else `timeout`.
pub async fn measure_with_timeout(
    scaler: &Arc<dyn Scaler>,
    now: DateTime<Utc>,
    timeout: Duration,
) -> Result<Measurement, ScalerError> {
    bounded(scaler, timeout, scaler.measure(now)).await
}

/// [`Scaler::query`] bounded as [`measure_with_timeout`] bounds a measurement: what the metrics
/// API's live queries call.
pub async fn query_with_timeout(
    scaler: &Arc<dyn Scaler>,
    now: DateTime<Utc>,
    timeout: Duration,
) -> Result<Measurement, ScalerError> {
    bounded(scaler, timeout, scaler.query(now)).await
}

async fn bounded(
    scaler: &Arc<dyn Scaler>,
    timeout: Duration,
    f: impl std::future::Future<Output = Result<Measurement, ScalerError>>,
) -> Result<Measurement, ScalerError> {
    let timeout = scaler.timeout().unwrap_or(timeout);
    match tokio::time::timeout(timeout, f).await {
        Ok(r) => r,
        Err(_) => Err(ScalerError::Timeout(timeout)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Slow;

    #[async_trait]
    impl Scaler for Slow {
        async fn measure(&self, _: DateTime<Utc>) -> Result<Measurement, ScalerError> {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(Measurement { value: 1.0, active: true })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_source_times_out() {
        let s: Arc<dyn Scaler> = Arc::new(Slow);
        let r = measure_with_timeout(&s, Utc::now(), Duration::from_secs(3)).await;
        assert_eq!(r, Err(ScalerError::Timeout(Duration::from_secs(3))));
        assert_eq!(r.unwrap_err().reason(), "Timeout");
    }

    #[test]
    fn activation_is_strictly_above_threshold() {
        assert!(!Measurement::from_value(3.0, 3.0).active);
        assert!(Measurement::from_value(3.001, 3.0).active);
        assert_eq!(Measurement::from_value(f64::NAN, 0.0), Measurement { value: 0.0, active: false });
        assert_eq!(Measurement::from_value(-2.0, 0.0).value, 0.0);
    }
}
