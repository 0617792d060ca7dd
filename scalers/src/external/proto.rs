//! KEDA's `externalscaler` protocol (package `externalscaler`, service `ExternalScaler`), as
//! hand-written prost messages with KEDA's message names and field numbers, so ebb talks to any
//! external scaler written for KEDA without a protoc step. Shared by the client and by test
//! servers.

use std::collections::HashMap;

/// The gRPC service path prefix.
pub const SERVICE: &str = "externalscaler.ExternalScaler";
pub const IS_ACTIVE: &str = "/externalscaler.ExternalScaler/IsActive";
pub const STREAM_IS_ACTIVE: &str = "/externalscaler.ExternalScaler/StreamIsActive";
pub const GET_METRIC_SPEC: &str = "/externalscaler.ExternalScaler/GetMetricSpec";
pub const GET_METRICS: &str = "/externalscaler.ExternalScaler/GetMetrics";

/// `ScaledObjectRef`: the object and the trigger's metadata.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ScaledObjectRef {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub namespace: String,
    #[prost(map = "string, string", tag = "3")]
    pub scaler_metadata: HashMap<String, String>,
}

/// `IsActiveResponse`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct IsActiveResponse {
    #[prost(bool, tag = "1")]
    pub result: bool,
}

/// `GetMetricSpecResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetMetricSpecResponse {
    #[prost(message, repeated, tag = "1")]
    pub metric_specs: Vec<MetricSpec>,
}

/// `MetricSpec`: `targetSizeFloat` wins when set (non-zero), else `targetSize`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricSpec {
    #[prost(string, tag = "1")]
    pub metric_name: String,
    #[prost(int64, tag = "2")]
    pub target_size: i64,
    #[prost(double, tag = "3")]
    pub target_size_float: f64,
}

/// `GetMetricsRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetMetricsRequest {
    #[prost(message, optional, tag = "1")]
    pub scaled_object_ref: Option<ScaledObjectRef>,
    #[prost(string, tag = "2")]
    pub metric_name: String,
}

/// `GetMetricsResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetMetricsResponse {
    #[prost(message, repeated, tag = "1")]
    pub metric_values: Vec<MetricValue>,
}

/// `MetricValue`: `metricValueFloat` wins when set (non-zero), else `metricValue`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricValue {
    #[prost(string, tag = "1")]
    pub metric_name: String,
    #[prost(int64, tag = "2")]
    pub metric_value: i64,
    #[prost(double, tag = "3")]
    pub metric_value_float: f64,
}

impl MetricSpec {
    /// The target per replica, as KEDA reads it.
    pub fn target(&self) -> f64 {
        if self.target_size_float != 0.0 { self.target_size_float } else { self.target_size as f64 }
    }
}

impl MetricValue {
    /// The value, as KEDA reads it.
    pub fn value(&self) -> f64 {
        if self.metric_value_float != 0.0 { self.metric_value_float } else { self.metric_value as f64 }
    }
}
