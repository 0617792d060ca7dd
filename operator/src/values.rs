//! What the internal endpoint serves: the value of one metric of one ScaledObject — from the
//! last poll when the trigger sets `useCachedMetrics`, else measured live with the scaler
//! timeout; under fallback (failureThreshold reached) the value that makes the HPA land on the
//! fallback replicas. A live query never counts toward fallback (failures are counted once per
//! poll, by the loop). Only the leader answers. The source holds the operator's context weakly:
//! a query in flight never keeps the loops of a stopped operator running.

use std::sync::{Arc, Weak};

use chrono::Utc;
use ebb_api::internal::{MetricValue, ValueError, ValueOrigin};
use ebb_scalers::measure_with_timeout;
use tokio::sync::watch;

use crate::context::Ctx;
use crate::internal::ValueSource;

/// Values from the running scale loops.
#[derive(Debug)]
pub struct LoopValues {
    ctx: Weak<Ctx>,
    leader: watch::Receiver<bool>,
}

impl LoopValues {
    /// Values of the loops `ctx` runs; `leader` says whether this replica answers.
    pub fn new(ctx: &Arc<Ctx>, leader: watch::Receiver<bool>) -> Self {
        Self { ctx: Arc::downgrade(ctx), leader }
    }
}

#[async_trait::async_trait]
impl ValueSource for LoopValues {
    async fn value(&self, ns: &str, so: &str, metric: &str) -> Result<MetricValue, ValueError> {
        // Only the loop's values and the object's status model are kept for the query.
        let (shared, model, timeout) = {
            let ctx = self.ctx.upgrade().ok_or_else(|| ValueError::unknown_scaled_object(ns, so))?;
            let state = ctx.existing(ns, so).ok_or_else(|| ValueError::unknown_scaled_object(ns, so))?;
            let shared = state
                .scale_loop
                .lock()
                .await
                .as_ref()
                .map(|l| l.shared.clone())
                .ok_or_else(|| ValueError::unknown_scaled_object(ns, so))?;
            (shared, state.model.clone(), ctx.config.scaler_timeout)
        };
        // Names compare without case: upstream's HPA controller asks for them in lower case
        // (client-go lowercases a request's resource segment), whatever the HPA spec says.
        let found = shared.triggers.iter().find(|(t, _)| t.metric_name.eq_ignore_ascii_case(metric));
        let Some((trigger, scaler)) = found else {
            let known: Vec<String> = shared.triggers.iter().map(|(t, _)| t.metric_name.clone()).collect();
            return Err(ValueError::unknown_metric(ns, so, metric, &known));
        };
        // Looked up by the trigger's own name; answered under the name asked for.
        let (asked, metric) = (metric, trigger.metric_name.as_str());
        let current = shared.current_replicas.load(std::sync::atomic::Ordering::Relaxed);
        let health = model.health().await;
        if let Some(fb) = shared
            .so
            .spec
            .fallback
            .as_ref()
            .filter(|_| crate::fallback::active(&shared.so.spec, &health, metric))
        {
            let v = crate::fallback::value(fb, trigger.metric_type, trigger.target(), current);
            return Ok(MetricValue {
                metric_name: asked.to_owned(),
                value: v,
                timestamp: Utc::now(),
                source: ValueOrigin::Cache,
            });
        }
        if trigger.use_cached_metrics {
            let cached =
                shared.values.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(metric).cloned();
            return match cached {
                Some(c) => match (c.value, c.error) {
                    (Some(v), _) => Ok(MetricValue {
                        metric_name: asked.to_owned(),
                        value: v,
                        timestamp: c.at,
                        source: ValueOrigin::Cache,
                    }),
                    (None, e) => Err(ValueError::Scaler(e.unwrap_or_else(|| "no value".into()))),
                },
                None => Err(ValueError::Scaler(format!("{metric} has not been polled yet"))),
            };
        }
        match measure_with_timeout(scaler, Utc::now(), timeout).await {
            Ok(m) => Ok(MetricValue {
                metric_name: asked.to_owned(),
                value: m.value,
                timestamp: Utc::now(),
                source: ValueOrigin::Live,
            }),
            Err(ebb_scalers::ScalerError::Timeout(d)) => {
                Err(ValueError::Timeout(format!("{metric}: no answer within {d:?}")))
            }
            Err(e) => Err(ValueError::Scaler(format!("{metric}: {e}"))),
        }
    }

    fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }
}
