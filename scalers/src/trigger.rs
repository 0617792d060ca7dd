//! A parsed trigger: what every scaler's parser produces (`ScalerConfig`), wrapped with the
//! trigger-level facts ebb needs everywhere (`TriggerSpec`: index, metric name, target,
//! activation threshold, metric type, caching), all derived without I/O.

use std::fmt;
use std::sync::Arc;

use ebb_api::{MetricTargetType, metric_name};

use crate::error::ScalerError;
use crate::external::ExternalConfig;
use crate::external::spec::Resolved;
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
    /// The configuration of an external scaler (`external`, `external-push`), whose metric name
    /// and target come from the scaler itself ([`TriggerSpec::set_external`]).
    fn as_external(&self) -> Option<&ExternalConfig> {
        None
    }
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

    /// The external scaler's configuration, for a trigger whose metric the scaler names.
    pub fn external(&self) -> Option<&ExternalConfig> {
        self.config.as_external()
    }

    /// Records what an external scaler's `GetMetricSpec` answered for the object: the metric is
    /// then `s<index>-<its name, normalized>` with the scaler's target size, as KEDA names it,
    /// and the scaler built from it sends the object and that name. Other triggers are unchanged.
    pub fn set_external(&mut self, resolved: Resolved) {
        let Some(c) = self.config.as_external() else { return };
        let c = c.with_resolved(resolved);
        self.metric_name = metric_name::with_index(self.index, &c.metric_part());
        self.config = Arc::new(c);
    }
}
