//! What a value request answers, as pure functions: the `ExternalMetricValueList` built from the
//! operator's [`MetricValue`] (value as a Kubernetes quantity with milli precision, timestamp in
//! RFC 3339 seconds), and the Status that each way of not getting a value turns into.

use chrono::SecondsFormat;
use ebb_api::internal::{MetricValue, ValueError};
use serde::Serialize;

use crate::discovery::{GROUP_VERSION, LIST_KIND};
use crate::status::ApiStatus;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct List<'a> {
    kind: &'static str,
    api_version: &'static str,
    metadata: Empty,
    items: [Item<'a>; 1],
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Item<'a> {
    metric_name: &'a str,
    metric_labels: Labels<'a>,
    timestamp: String,
    value: String,
}

#[derive(Serialize)]
struct Labels<'a> {
    // `ebb_api::constants::SCALED_OBJECT_NAME_LABEL` (serde needs the literal; a test checks it).
    #[serde(rename = "scaledobject.keda.sh/name")]
    scaled_object: &'a str,
}

/// The JSON body answering a value request: one item for metric `metric` of ScaledObject
/// `scaled_object`, labelled with the ScaledObject's name.
pub fn value_list(metric: &str, scaled_object: &str, value: &MetricValue) -> Vec<u8> {
    let list = List {
        kind: LIST_KIND,
        api_version: GROUP_VERSION,
        metadata: Empty {},
        items: [Item {
            metric_name: metric,
            metric_labels: Labels { scaled_object },
            timestamp: value.timestamp.to_rfc3339_opts(SecondsFormat::Secs, true),
            value: ebb_api::quantity::format(value.value),
        }],
    };
    // Only strings: serialization cannot fail.
    serde_json::to_vec(&list).unwrap_or_default()
}

/// The Status answering a request the operator could not give a value for. `operator` is the
/// operator's URL (named in messages about the link).
pub fn value_error(
    err: &ValueError,
    namespace: &str,
    metric: &str,
    scaled_object: &str,
    operator: &str,
) -> ApiStatus {
    let what = format!("metric {metric} of ScaledObject {namespace}/{scaled_object}");
    match err {
        ValueError::NotFound(message) => ApiStatus::not_found(format!(
            "{message} (check the ScaledObject exists, is Ready, and lists {metric} in status.externalMetricNames, \
             or in status.compositeScalerName when it uses advanced.scalingModifiers)"
        )),
        ValueError::NotLeader => ApiStatus::unavailable(format!(
            "the operator at {operator} is not the leader and holds no values for {what}, also on fresh \
             connections; --operator-url must reach the leading operator replica (Service ebb-operator \
             selects the Pod labelled ebb.keda.sh/leader=true: the leader needs --pod-name and RBAC to \
             patch its Pod)"
        )),
        ValueError::Timeout(message) => ApiStatus::timeout(format!("no value for {what} in time: {message}")),
        ValueError::Scaler(message) => ApiStatus::internal(format!("the scaler of {what} failed: {message}")),
        ValueError::Internal(message) => {
            ApiStatus::internal(format!("the operator failed to answer for {what}: {message}"))
        }
        ValueError::Unreachable(message) => ApiStatus::unavailable(format!(
            "the operator's internal metrics service at {operator} is unreachable: {message}"
        )),
        ValueError::Unexpected { status, message } => ApiStatus::internal(format!(
            "the operator at {operator} answered outside the protocol (HTTP {status}): {message}"
        )),
    }
}

/// The Status answering every value request while the link to the operator is down.
pub fn link_down(operator: &str, why: &str) -> ApiStatus {
    ApiStatus::unavailable(format!(
        "the operator's internal metrics service at {operator} is unreachable ({why}); no metric values \
         can be served until it answers again (this server's /readyz reports the same)"
    ))
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use ebb_api::internal::ValueOrigin;

    use super::*;

    fn value(v: f64) -> MetricValue {
        MetricValue {
            metric_name: "s0-cron-UTC-05xxxx-10xxxx".into(),
            value: v,
            timestamp: DateTime::parse_from_rfc3339("2025-03-01T12:00:00.123456Z")
                .unwrap()
                .with_timezone(&Utc),
            source: ValueOrigin::Live,
        }
    }

    #[test]
    fn value_lists_carry_a_quantity() {
        let body = value_list("s0-cron-UTC-05xxxx-10xxxx", "web", &value(3.0));
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let labels = &json["items"][0]["metricLabels"];
        assert_eq!(labels[ebb_api::constants::SCALED_OBJECT_NAME_LABEL], "web");
        assert_eq!(
            json,
            serde_json::json!({"kind": "ExternalMetricValueList", "apiVersion": "external.metrics.k8s.io/v1beta1",
                "metadata": {}, "items": [{"metricName": "s0-cron-UTC-05xxxx-10xxxx",
                    "metricLabels": {"scaledobject.keda.sh/name": "web"},
                    "timestamp": "2025-03-01T12:00:00Z", "value": "3"}]})
        );
    }

    #[test]
    fn quantities_have_milli_precision() {
        let cases =
            [(0.0, "0"), (1.5, "1500m"), (0.0004, "1m"), (2000.0, "2k"), (2500.0, "2500"), (12.25, "12250m")];
        for (v, want) in cases {
            let json: serde_json::Value = serde_json::from_slice(&value_list("m", "so", &value(v))).unwrap();
            assert_eq!(json["items"][0]["value"], want, "{v}");
        }
    }

    #[test]
    fn errors_become_statuses_that_say_what_to_check() {
        let op = "https://ebb-operator.keda.svc:9666";
        let cases = [
            (
                ValueError::unknown_scaled_object("default", "web"),
                404,
                "ScaledObject default/web is unknown to the operator",
            ),
            (ValueError::unknown_metric("default", "web", "s1-x", &["s0-a"]), 404, "it has: s0-a"),
            (ValueError::NotLeader, 503, "is not the leader"),
            (
                ValueError::Timeout("after 3s".into()),
                504,
                "no value for metric m of ScaledObject default/web in time",
            ),
            (ValueError::Scaler("connection refused".into()), 500, "the scaler of metric m"),
            (ValueError::Internal("panic".into()), 500, "the operator failed to answer"),
            (ValueError::Unreachable("refused".into()), 503, "unreachable: refused"),
            (ValueError::Unexpected { status: 418, message: "teapot".into() }, 500, "HTTP 418"),
        ];
        for (err, code, fragment) in cases {
            let status = value_error(&err, "default", "m", "web", op);
            assert_eq!(status.code, code, "{err:?}");
            assert!(status.message.contains(fragment), "{err:?}: {}", status.message);
        }
        // The composite metric of scalingModifiers is named in status.compositeScalerName, not in
        // status.externalMetricNames: the hint names both.
        let unknown = value_error(
            &ValueError::unknown_metric("default", "web", "composite-metric", &["s0-a"]),
            "default",
            "composite-metric",
            "web",
            op,
        );
        assert!(unknown.message.contains("status.externalMetricNames"), "{}", unknown.message);
        assert!(unknown.message.contains("status.compositeScalerName"), "{}", unknown.message);
        let not_leader = value_error(&ValueError::NotLeader, "default", "m", "web", op);
        assert!(not_leader.message.contains(op), "{}", not_leader.message);
        let down = link_down(op, "connection refused");
        assert_eq!((down.code, down.reason), (503, "ServiceUnavailable"));
        assert!(down.message.contains(op) && down.message.contains("connection refused"));
    }
}
