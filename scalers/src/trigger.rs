//! A parsed trigger: what every scaler's parser produces (`ScalerConfig`), wrapped with the
//! trigger-level facts ebb needs everywhere (`TriggerSpec`: index, metric name, target,
//! activation threshold, metric type, caching), all derived without I/O.

use std::fmt;
use std::sync::Arc;

use ebb_api::{MetricTargetType, metric_name};

use crate::error::ScalerError;
use crate::scaler::Scaler;

/// A scaler's validated configuration. Building the live scaler is the only step with I/O.
pub trait ScalerConfig: fmt::Debug + Send + Sync {
    /// Scaler part of the external metric name (before `s<i>-` and normalization).
    fn metric_part(&self) -> String;
    /// Target value per replica (AverageValue) or in total (Value).
    fn target(&self) -> f64;
    /// The value above which the trigger is active.
    fn activation_target(&self) -> f64;
    /// Connects to the source. Scalers that need no connection return immediately.
    fn build(&self) -> Result<Arc<dyn Scaler>, ScalerError>;
    /// Short human description for `ebb check` and events (never includes secrets).
    fn describe(&self) -> String;
}

/// One trigger of a ScaledObject, parsed.
#[derive(Debug, Clone)]
pub struct TriggerSpec {
    pub index: usize,
    pub type_: String,
    pub name: Option<String>,
    pub metric_name: String,
    pub metric_type: MetricTargetType,
    pub use_cached_metrics: bool,
    pub config: Arc<dyn ScalerConfig>,
}

impl TriggerSpec {
    pub fn new(
        index: usize,
        type_: &str,
        name: Option<String>,
        metric_type: MetricTargetType,
        use_cached_metrics: bool,
        config: Arc<dyn ScalerConfig>,
    ) -> Self {
        let metric_name = metric_name::with_index(index, &config.metric_part());
        Self { index, type_: type_.to_owned(), name, metric_name, metric_type, use_cached_metrics, config }
    }

    pub fn target(&self) -> f64 {
        self.config.target()
    }

    pub fn activation_target(&self) -> f64 {
        self.config.activation_target()
    }
}
