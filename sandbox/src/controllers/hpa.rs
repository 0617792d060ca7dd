//! The HorizontalPodAutoscaler controller, faithful to upstream for External metrics: every
//! sync period it reads each HPA's target through `/scale`, asks the aggregated
//! external.metrics.k8s.io API for each metric with the HPA's selector (through this control
//! plane's aggregation proxy, like kube-controller-manager through kube-aggregator), runs the
//! shared replica calculator (tolerance, behavior, stabilization, rate limits — state kept per
//! HPA), writes `/scale` when the count changes, and records status as upstream does:
//! currentReplicas, desiredReplicas, currentMetrics, lastScaleTime, and the conditions
//! AbleToScale (SucceededGetScale, ReadyForNewScale, Scale{Up,Down}Stabilized, SucceededRescale,
//! FailedGetScale, FailedUpdateScale), ScalingActive (ValidMetricFound, ScalingDisabled,
//! FailedGetExternalMetric) and ScalingLimited (the limiting reason, or DesiredWithinRange).
//! A sync sets only the conditions it decided on; the others keep their recorded value. It
//! does nothing to a target at 0 replicas while minReplicas > 0, and when metrics cannot be
//! read it keeps the replica count, desiredReplicas and currentMetrics.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use ebb_scalers::hpa::{HpaCalculator, MetricSample, Recommendation, reason};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerBehavior;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::control::{ControlPlane, Sub, WriteCtx, now_rfc3339, selector_string, system_ctx};
use crate::meta;

/// Field manager of the controller's writes.
pub const MANAGER: &str = "horizontal-pod-autoscaler";

/// Fetches an external metric: `(namespace, metric name, label selector)` → sum of values.
pub type MetricsSource = Arc<
    dyn Fn(String, String, String) -> futures::future::BoxFuture<'static, Result<f64, String>> + Send + Sync,
>;

/// Per-HPA controller memory: the calculator (recommendation and event history) and the spec
/// it was built for.
#[derive(Debug)]
pub struct Tracked {
    spec_fingerprint: String,
    calc: HpaCalculator,
}

/// Runs until `stop` turns true.
pub async fn run(
    cp: Arc<ControlPlane>,
    period: Duration,
    metrics: MetricsSource,
    mut stop: watch::Receiver<bool>,
) {
    let mut state: BTreeMap<String, Tracked> = BTreeMap::new();
    let mut tick = tokio::time::interval(period);
    // A slow sync (a metric backend timing out) delays the next one instead of bunching them.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => sync_all(&cp, &metrics, &mut state).await,
        }
    }
}

/// One pass over every HPA (exposed for tests that drive time themselves).
pub async fn sync_all(
    cp: &Arc<ControlPlane>,
    metrics: &MetricsSource,
    state: &mut BTreeMap<String, Tracked>,
) {
    let (hpas, _) = cp.store.list("autoscaling", "horizontalpodautoscalers", None);
    let live: Vec<String> = hpas.iter().filter_map(|(_, h)| meta::uid(h).map(str::to_owned)).collect();
    state.retain(|uid, _| live.contains(uid));
    for (_, hpa) in hpas {
        if let Err(e) = sync_one(cp, metrics, state, &hpa).await {
            tracing::debug!(hpa = meta::name(&hpa).unwrap_or_default(), "HPA sync failed: {e}");
        }
    }
}

fn condition(type_: &str, status: bool, reason: &str, message: &str) -> Value {
    json!({"type": type_, "status": if status { "True" } else { "False" }, "reason": reason, "message": message, "lastTransitionTime": now_rfc3339()})
}

/// What one sync records in an HPA's status. Conditions are set by type (the others keep what
/// an earlier sync recorded); `None` fields keep their recorded value.
#[derive(Debug, Default)]
struct StatusUpdate {
    current: Option<i32>,
    desired: Option<i32>,
    metrics: Option<Vec<Value>>,
    last_scale: Option<String>,
    conditions: Vec<Value>,
}

impl StatusUpdate {
    fn set(&mut self, type_: &str, status: bool, reason: &str, message: &str) {
        self.conditions.retain(|c| c["type"] != type_);
        self.conditions.push(condition(type_, status, reason, message));
    }
}

/// The message of a ScalingLimited condition with this reason.
fn limit_message(why: &str) -> &'static str {
    match why {
        reason::TOO_MANY_REPLICAS => "the desired replica count is more than the maximum replica count",
        reason::TOO_FEW_REPLICAS => "the desired replica count is less than the minimum replica count",
        reason::SCALE_UP_LIMIT => {
            "the desired replica count is increasing faster than the maximum scale rate"
        }
        reason::SCALE_DOWN_LIMIT => {
            "the desired replica count is decreasing faster than the maximum scale rate"
        }
        _ => "the desired count is within the acceptable range",
    }
}

async fn sync_one(
    cp: &Arc<ControlPlane>,
    metrics: &MetricsSource,
    state: &mut BTreeMap<String, Tracked>,
    hpa: &Value,
) -> Result<(), String> {
    let ns = meta::namespace(hpa).unwrap_or_default().to_owned();
    let name = meta::name(hpa).unwrap_or_default().to_owned();
    let uid = meta::uid(hpa).unwrap_or_default().to_owned();
    let spec = hpa.get("spec").cloned().unwrap_or_else(|| json!({}));
    let min = spec.get("minReplicas").and_then(Value::as_i64).unwrap_or(1) as i32;
    let max = spec.get("maxReplicas").and_then(Value::as_i64).unwrap_or(1) as i32;
    let target = spec.get("scaleTargetRef").cloned().unwrap_or_else(|| json!({}));
    let api_version = target.get("apiVersion").and_then(Value::as_str).unwrap_or("apps/v1");
    let kind = target.get("kind").and_then(Value::as_str).unwrap_or_default();
    let tname = target.get("name").and_then(Value::as_str).unwrap_or_default();
    let scale = cp
        .registry()
        .by_kind(api_version, kind)
        .cloned()
        .ok_or_else(|| format!("no matches for kind {kind:?} in version {api_version:?}"))
        .and_then(|res| {
            let scale = cp.get_sub(&res, &ns, tname, Sub::Scale).map_err(|e| e.message)?;
            Ok((res, scale))
        });
    let (res, scale) = match scale {
        Ok(found) => found,
        Err(e) => {
            let mut update = StatusUpdate::default();
            update.set(
                "AbleToScale",
                false,
                "FailedGetScale",
                &format!("the HPA controller was unable to get the target's current scale: {e}"),
            );
            write_status(cp, &ns, &name, update).await;
            return Err(e);
        }
    };
    let current = scale.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0) as i32;
    let fingerprint = json!([min, max, spec.get("behavior")]).to_string();
    if state.get(&uid).is_none_or(|t| t.spec_fingerprint != fingerprint) {
        let behavior: Option<HorizontalPodAutoscalerBehavior> = match spec.get("behavior") {
            Some(b) if !b.is_null() => {
                Some(serde_json::from_value(b.clone()).map_err(|e| format!("invalid behavior: {e}"))?)
            }
            _ => None,
        };
        let calc = HpaCalculator::from_k8s(min, max, behavior.as_ref()).map_err(|e| e.to_string())?;
        state.insert(uid.clone(), Tracked { spec_fingerprint: fingerprint, calc });
    }
    let tracked = state.get_mut(&uid).ok_or("HPA state missing")?;
    let mut update = StatusUpdate { current: Some(current), ..Default::default() };
    update.set(
        "AbleToScale",
        true,
        "SucceededGetScale",
        "the HPA controller was able to get the target's current scale",
    );

    let mut samples = Vec::new();
    let mut current_metrics = Vec::new();
    let mut first_error = None;
    if current != 0 || min == 0 {
        for m in spec.get("metrics").and_then(Value::as_array).into_iter().flatten() {
            if m.get("type").and_then(Value::as_str) != Some("External") {
                continue;
            }
            let ext = m.get("external").cloned().unwrap_or_else(|| json!({}));
            let mname = ext.pointer("/metric/name").and_then(Value::as_str).unwrap_or_default().to_owned();
            let selector = ext.pointer("/metric/selector").map(selector_string).unwrap_or_default();
            let t = ext.get("target").cloned().unwrap_or_else(|| json!({}));
            let q = |k: &str| {
                t.get(k)
                    .and_then(|v| v.as_str().map(str::to_owned).or_else(|| v.as_f64().map(|f| f.to_string())))
            };
            let value = metrics(ns.clone(), mname.clone(), selector.clone()).await;
            if let Err(e) = &value {
                first_error.get_or_insert_with(|| {
                    format!("unable to get external metric {ns}/{mname}/{selector}: {e}")
                });
            }
            let v = value.as_ref().ok().copied();
            match (t.get("type").and_then(Value::as_str), q("averageValue"), q("value")) {
                (Some("Value"), _, Some(tv)) => {
                    let target = ebb_api::quantity::parse(&tv).map_err(|e| e.to_string())?;
                    samples.push(MetricSample::value(mname.clone(), target, v));
                    if let Some(v) = v {
                        current_metrics.push(json!({"type": "External", "external": {"metric": ext.get("metric"), "current": {"value": ebb_api::quantity::format(v)}}}));
                    }
                }
                (_, Some(tv), _) => {
                    let target = ebb_api::quantity::parse(&tv).map_err(|e| e.to_string())?;
                    samples.push(MetricSample::average_value(mname.clone(), target, v));
                    if let Some(v) = v {
                        let avg = if current > 0 { v / f64::from(current) } else { v };
                        current_metrics.push(json!({"type": "External", "external": {"metric": ext.get("metric"), "current": {"averageValue": ebb_api::quantity::format(avg)}}}));
                    }
                }
                _ => return Err(format!("metric {mname}: unsupported target")),
            }
        }
    }
    let with_behavior = tracked.calc.behavior().is_some();
    let rec: Recommendation = tracked.calc.sync(Utc::now(), current, current, &samples);
    if rec.reason == reason::SCALING_DISABLED {
        update.desired = Some(0);
        update.metrics = Some(Vec::new());
        update.set(
            "ScalingActive",
            false,
            "ScalingDisabled",
            "scaling is disabled since the replica count of the target is zero",
        );
    } else if rec.reason == reason::FAILED_GET_EXTERNAL_METRIC {
        // Nothing is decided: desiredReplicas and currentMetrics keep their recorded values.
        let why = first_error.unwrap_or_else(|| format!("no usable metric among {} External", samples.len()));
        update.set(
            "ScalingActive",
            false,
            "FailedGetExternalMetric",
            &format!("the HPA was unable to compute the replica count: {why}"),
        );
    } else {
        update.desired = Some(rec.desired);
        update.metrics = Some(current_metrics);
        // Without a proposal the count was only brought within [min, max]: the metric
        // conditions are left as they were.
        if let (Some(proposal), Some(stabilized)) = (rec.proposal, rec.stabilized) {
            update.set(
                "ScalingActive",
                true,
                "ValidMetricFound",
                &format!(
                    "the HPA was able to successfully calculate a replica count from external metric {}",
                    rec.metric.as_deref().unwrap_or_default()
                ),
            );
            if stabilized != proposal {
                if with_behavior && proposal >= current {
                    update.set(
                        "AbleToScale",
                        true,
                        reason::SCALE_UP_STABILIZED,
                        "recent recommendations were lower than current one, applying the lowest recent recommendation",
                    );
                } else {
                    update.set(
                        "AbleToScale",
                        true,
                        reason::SCALE_DOWN_STABILIZED,
                        "recent recommendations were higher than current one, applying the highest recent recommendation",
                    );
                }
            } else {
                update.set("AbleToScale", true, "ReadyForNewScale", "recommended size matches current size");
            }
            let limited = rec.desired != stabilized;
            let why = if limited { rec.reason.as_str() } else { reason::DESIRED_WITHIN_RANGE };
            update.set("ScalingLimited", limited, why, limit_message(why));
        }
        if rec.desired != current {
            let patch = json!({"spec": {"replicas": rec.desired}});
            let ctx = WriteCtx { field_manager: MANAGER.into(), ..system_ctx() };
            let written =
                cp.patch(&res, &ns, tname, crate::control::PatchType::Merge, patch, Sub::Scale, &ctx).await;
            if let Err(e) = written {
                update.desired = None;
                update.set(
                    "AbleToScale",
                    false,
                    "FailedUpdateScale",
                    &format!("the HPA controller was unable to update the target scale: {}", e.message),
                );
                write_status(cp, &ns, &name, update).await;
                return Err(e.message);
            }
            update.last_scale = Some(now_rfc3339());
            update.set(
                "AbleToScale",
                true,
                "SucceededRescale",
                &format!("the HPA controller was able to update the target scale to {}", rec.desired),
            );
        }
    }
    write_status(cp, &ns, &name, update).await;
    Ok(())
}

async fn write_status(cp: &Arc<ControlPlane>, ns: &str, name: &str, update: StatusUpdate) {
    let Some(res) = cp.resource("autoscaling", "v2", "horizontalpodautoscalers") else { return };
    let Ok(mut obj) = cp.get(&res, ns, name) else { return };
    let mut status = obj.get("status").cloned().filter(Value::is_object).unwrap_or_else(|| json!({}));
    let mut conditions = status.get("conditions").and_then(Value::as_array).cloned().unwrap_or_default();
    for mut c in update.conditions {
        match conditions.iter_mut().find(|p| p["type"] == c["type"]) {
            Some(prev) => {
                // The transition time moves only when the status does.
                if prev["status"] == c["status"] {
                    c["lastTransitionTime"] = prev["lastTransitionTime"].clone();
                }
                *prev = c;
            }
            None => conditions.push(c),
        }
    }
    status["conditions"] = json!(conditions);
    if let Some(m) = update.metrics {
        match status.as_object_mut() {
            Some(st) if m.is_empty() => {
                st.remove("currentMetrics");
            }
            _ => status["currentMetrics"] = json!(m),
        }
    }
    if let Some(cur) = update.current {
        status["currentReplicas"] = json!(cur);
    }
    match update.desired {
        Some(desired) => status["desiredReplicas"] = json!(desired),
        // A required field of the status, 0 until a count is decided.
        None if status.get("desiredReplicas").is_none() => status["desiredReplicas"] = json!(0),
        None => {}
    }
    if let Some(t) = update.last_scale {
        status["lastScaleTime"] = json!(t);
    }
    obj["status"] = status;
    let ctx = WriteCtx { field_manager: MANAGER.into(), ..system_ctx() };
    if let Err(e) = cp.update(&res, ns, name, obj, Sub::Status, &ctx).await {
        tracing::debug!(name, "HPA status update failed: {e}");
    }
}
