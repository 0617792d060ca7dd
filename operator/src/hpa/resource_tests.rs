//! cpu and memory triggers in the HPA: `tests/fixtures/resource/cpu-cron.yaml` against the
//! metrics KEDA generates for it, written from KEDA's documentation (the cpu/memory scalers'
//! `Resource`/`ContainerResource` metrics with `averageUtilization`/`averageValue`, the cron
//! scaler's External metric `s<i>-cron-<tz>-<start>-<end>` with target 1) and KEDA's ordering of
//! an HPA's metrics by type (`ContainerResource`, `External`, `Resource`).

use ebb_api::ScaledObject;
use ebb_scalers::{ParseContext, parse_scaled_object};

use super::*;

const SO: &str = include_str!("../../../tests/fixtures/resource/cpu-cron.yaml");
const METRICS: &str = include_str!("../../../tests/fixtures/resource/cpu-cron.hpa-metrics.json");

#[test]
fn cpu_memory_and_cron_give_keda_shaped_metrics() {
    let mut so: ScaledObject = serde_yaml::from_str(SO).unwrap();
    so.metadata.uid = Some("0b5e8c2a-1111-4c55-9a57-3f2d8e1b7c10".into());
    let parsed = parse_scaled_object(&so, &ParseContext::default()).unwrap();
    let hpa = hpa_as_apply_patch(&desired_hpa(&so, &parsed).unwrap());
    let want: serde_json::Value = serde_json::from_str(METRICS).unwrap();
    let got = &hpa["spec"]["metrics"];
    let (got, want) = (got.as_array().unwrap(), want.as_array().unwrap());
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g, w, "metric {i}");
    }
    assert_eq!(hpa["spec"]["minReplicas"], 1);
    assert_eq!(hpa["spec"]["maxReplicas"], 10);
}

#[test]
fn status_lists_resource_metrics_as_keda_does() {
    let so: ScaledObject = serde_yaml::from_str(SO).unwrap();
    // cpu is a Resource metric; the memory trigger names a container (ContainerResource), which
    // KEDA leaves out of resourceMetricNames; the cron metric is an external one.
    assert_eq!(crate::status::resource_metric_names(&so), ["cpu"]);
    let parsed = parse_scaled_object(&so, &ParseContext::default()).unwrap();
    assert_eq!(parsed.metric_names(), ["s1-cron-Asia-Kolkata-30xxxx-45xxxx"]);
}
