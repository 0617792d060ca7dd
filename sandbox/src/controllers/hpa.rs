//! The HorizontalPodAutoscaler controller, faithful to upstream for External metrics: every
//! sync period it reads each HPA's target through `/scale`, asks the aggregated
//! external.metrics.k8s.io API for each metric with the HPA's selector (as the front proxy,
//! like kube-controller-manager through kube-aggregator), runs the shared replica calculator
//! (tolerance, behavior, stabilization, rate limits — state kept per HPA), writes `/scale` when
//! the count changes, and records status (currentReplicas, desiredReplicas, currentMetrics,
//! lastScaleTime, conditions AbleToScale / ScalingActive / ScalingLimited). It does nothing
//! to a target at 0 replicas while minReplicas > 0.

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
    let res = cp
        .registry()
        .by_kind(api_version, kind)
        .cloned()
        .ok_or_else(|| format!("unknown target kind {api_version} {kind}"))?;
    let scale = match cp.get_sub(&res, &ns, tname, Sub::Scale) {
        Ok(s) => s,
        Err(e) => {
            write_status(
                cp,
                &ns,
                &name,
                None,
                None,
                &[],
                vec![condition(
                    "AbleToScale",
                    false,
                    "FailedGetScale",
                    &format!(
                        "the HPA controller was unable to get the target's current scale: {}",
                        e.message
                    ),
                )],
            )
            .await;
            return Err(e.message);
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

    let mut samples = Vec::new();
    let mut current_metrics = Vec::new();
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
            let value = metrics(ns.clone(), mname.clone(), selector).await;
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
    let rec: Recommendation = tracked.calc.sync(Utc::now(), current, current, &samples);
    let mut conditions = vec![];
    let mut last_scale = None;
    if rec.reason == reason::SCALING_DISABLED {
        conditions.push(condition(
            "AbleToScale",
            true,
            "SucceededGetScale",
            "the HPA controller was able to get the target's current scale",
        ));
        conditions.push(condition(
            "ScalingActive",
            false,
            "ScalingDisabled",
            "scaling is disabled since the replica count of the target is zero",
        ));
    } else if rec.reason == reason::FAILED_GET_EXTERNAL_METRIC && rec.proposal.is_none() {
        conditions.push(condition(
            "AbleToScale",
            true,
            "SucceededGetScale",
            "the HPA controller was able to get the target's current scale",
        ));
        conditions.push(condition(
            "ScalingActive",
            false,
            "FailedGetExternalMetric",
            "the HPA was unable to compute the replica count: unable to get external metric",
        ));
    } else {
        if rec.desired != current {
            let patch = json!({"spec": {"replicas": rec.desired}});
            let ctx = WriteCtx { field_manager: MANAGER.into(), ..system_ctx() };
            cp.patch(&res, &ns, tname, crate::control::PatchType::Merge, patch, Sub::Scale, &ctx)
                .await
                .map_err(|e| e.message)?;
            last_scale = Some(now_rfc3339());
            conditions.push(condition(
                "AbleToScale",
                true,
                "SucceededRescale",
                &format!("the HPA controller was able to update the target scale to {}", rec.desired),
            ));
        } else {
            conditions.push(condition(
                "AbleToScale",
                true,
                "ReadyForNewScale",
                "recommended size matches current size",
            ));
        }
        conditions.push(condition(
            "ScalingActive",
            true,
            "ValidMetricFound",
            "the HPA was able to successfully calculate a replica count",
        ));
        let limited = matches!(
            rec.reason.as_str(),
            reason::TOO_MANY_REPLICAS
                | reason::TOO_FEW_REPLICAS
                | reason::SCALE_UP_LIMIT
                | reason::SCALE_DOWN_LIMIT
        );
        conditions.push(condition(
            "ScalingLimited",
            limited,
            &rec.reason,
            if limited {
                "the desired replica count was limited"
            } else {
                "the desired count is within the acceptable range"
            },
        ));
    }
    write_status(cp, &ns, &name, Some((current, rec.desired)), last_scale, &current_metrics, conditions)
        .await;
    Ok(())
}

async fn write_status(
    cp: &Arc<ControlPlane>,
    ns: &str,
    name: &str,
    counts: Option<(i32, i32)>,
    last_scale: Option<String>,
    current_metrics: &[Value],
    conditions: Vec<Value>,
) {
    let Some(res) = cp.resource("autoscaling", "v2", "horizontalpodautoscalers") else { return };
    let Ok(mut obj) = cp.get(&res, ns, name) else { return };
    let old = obj.get("status").cloned().unwrap_or_else(|| json!({}));
    // Keep lastTransitionTime of conditions whose status did not change.
    let conditions: Vec<Value> = conditions
        .into_iter()
        .map(|mut c| {
            if let Some(prev) = old
                .get("conditions")
                .and_then(Value::as_array)
                .and_then(|cs| cs.iter().find(|p| p["type"] == c["type"]))
                && prev["status"] == c["status"]
            {
                c["lastTransitionTime"] = prev["lastTransitionTime"].clone();
            }
            c
        })
        .collect();
    let mut status = json!({"conditions": conditions, "currentMetrics": current_metrics});
    if let Some((cur, desired)) = counts {
        status["currentReplicas"] = json!(cur);
        status["desiredReplicas"] = json!(desired);
    }
    if let Some(t) =
        last_scale.or_else(|| old.get("lastScaleTime").and_then(Value::as_str).map(str::to_owned))
    {
        status["lastScaleTime"] = json!(t)
    }
    obj["status"] = status;
    let ctx = WriteCtx { field_manager: MANAGER.into(), ..system_ctx() };
    if let Err(e) = cp.update(&res, ns, name, obj, Sub::Status, &ctx).await {
        tracing::debug!(name, "HPA status update failed: {e}");
    }
}
