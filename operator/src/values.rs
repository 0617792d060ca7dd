//! What the internal endpoint serves: the value of one metric of one ScaledObject — from the
//! last poll when the trigger sets `useCachedMetrics`, else measured live with the scaler
//! timeout; under fallback (failureThreshold reached) the value that makes the HPA land on the
//! fallback replicas. A live query never counts toward fallback (failures are counted once per
//! poll, by the loop), nor takes what is kept for the loop's next tick (a pushed activity:
//! [`ebb_scalers::Scaler::query`]). Only the leader answers. The source holds the operator's context weakly:
//! a query in flight never keeps the loops of a stopped operator running.
//!
//! With `advanced.scalingModifiers`, the one metric asked for is `composite-metric`: the
//! formula over the values of the triggers it names, each read as above (see
//! [`crate::composite`] for failures and fallback).

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::Utc;
use ebb_api::HealthStatus;
use ebb_api::internal::{MetricValue, ValueError, ValueOrigin};
use ebb_scalers::query_with_timeout;
use ebb_scalers::validate::modifiers::{COMPOSITE_METRIC_NAME, Composite};
use tokio::sync::watch;

use crate::composite::Input;
use crate::context::Ctx;
use crate::internal::ValueSource;
use crate::scaleloop::Shared;

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
        if metric.eq_ignore_ascii_case(COMPOSITE_METRIC_NAME)
            && let Some(comp) = &shared.composite
        {
            let current = shared.current_replicas.load(std::sync::atomic::Ordering::Relaxed);
            let health = model.health().await;
            let inputs = composite_inputs(&shared, comp, &health, timeout).await;
            let v = crate::composite::value(comp, shared.so.spec.fallback.as_ref(), &inputs, current)
                .map_err(|e| ValueError::Scaler(format!("{COMPOSITE_METRIC_NAME}: {e}")))?;
            return Ok(MetricValue {
                metric_name: metric.to_owned(),
                value: v,
                timestamp: Utc::now(),
                source: ValueOrigin::Live,
            });
        }
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
            let cached = shared.cached(metric);
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
        match query_with_timeout(scaler, Utc::now(), timeout).await {
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

/// What each trigger the formula names contributes: in fallback, the last poll's value (for
/// `useCachedMetrics` triggers) or a live measurement (all measured in parallel).
async fn composite_inputs(
    shared: &Shared,
    comp: &Composite,
    health: &ebb_api::SortedMap<String, HealthStatus>,
    timeout: Duration,
) -> BTreeMap<String, Input> {
    let named: Vec<_> = shared
        .triggers
        .iter()
        .filter_map(|(t, s)| {
            let name = t.name.as_deref()?;
            comp.formula.variables().iter().any(|(v, _)| v == name).then_some((name, t, s))
        })
        .collect();
    let now = Utc::now();
    let results = futures::future::join_all(named.into_iter().map(|(name, t, s)| async move {
        let input = if crate::fallback::active(&shared.so.spec, health, &t.metric_name) {
            Input::PastThreshold
        } else if t.use_cached_metrics {
            match shared.cached(&t.metric_name) {
                Some(c) => match (c.value, c.error) {
                    (Some(v), _) => Input::Value(v),
                    (None, e) => Input::Failing(e.unwrap_or_else(|| "no value".into())),
                },
                None => Input::Failing(format!("{} has not been polled yet", t.metric_name)),
            }
        } else {
            match query_with_timeout(s, now, timeout).await {
                Ok(m) => Input::Value(m.value),
                Err(e) => Input::Failing(e.to_string()),
            }
        };
        (name.to_owned(), input)
    }))
    .await;
    results.into_iter().collect()
}
