use super::*;

fn setup() -> (Registry, Metrics) {
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    (registry, metrics)
}

/// The sample lines of the text exposition, sorted, without the lateness histogram (checked on
/// its own).
fn samples(registry: &Registry) -> Vec<String> {
    let mut lines: Vec<String> =
        all_samples(registry).into_iter().filter(|l| !l.starts_with("ebb_scale_loop_lateness")).collect();
    lines.sort();
    lines
}

fn all_samples(registry: &Registry) -> Vec<String> {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry).unwrap();
    let mut lines: Vec<String> = out.lines().filter(|l| !l.starts_with('#')).map(str::to_string).collect();
    lines.sort();
    lines
}

const SCALER: &str = r#"{namespace="shop",metric="s0-prometheus",scaledObject="web",scaler="prometheus",triggerIndex="0",type="scaledobject"}"#;

#[test]
fn recorded_poll_exports_value_latency_active_and_zero_errors() {
    let (registry, m) = setup();
    m.record_poll(
        "shop",
        "web",
        0,
        "prometheus",
        "s0-prometheus",
        Some(42.5),
        true,
        Duration::from_millis(250),
    );
    assert_eq!(
        samples(&registry),
        vec![
            r#"keda_scaled_object_errors_total{namespace="shop",scaledObject="web"} 0"#.to_string(),
            format!("keda_scaler_active{SCALER} 1"),
            format!("keda_scaler_detail_errors_total{SCALER} 0"),
            format!("keda_scaler_metrics_latency_seconds{SCALER} 0.25"),
            format!("keda_scaler_metrics_value{SCALER} 42.5"),
        ]
    );
}

#[test]
fn type_lines_use_keda_names() {
    let (registry, m) = setup();
    m.record_poll("shop", "web", 0, "cron", "s0-cron", Some(1.0), true, Duration::ZERO);
    m.record_loop_lateness("shop", "web", Duration::ZERO);
    m.set_paused("shop", "web", false);
    m.object_added("shop", &["cron"]);
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
    for line in [
        "# TYPE keda_scaler_metrics_value gauge",
        "# TYPE keda_scaler_metrics_latency_seconds gauge",
        "# TYPE keda_scaler_active gauge",
        "# TYPE keda_scaler_detail_errors counter",
        "# TYPE keda_scaled_object_errors counter",
        "# TYPE keda_scaled_object_paused gauge",
        "# TYPE keda_internal_scale_loop_latency_seconds gauge",
        "# TYPE keda_resource_registered_total gauge",
        "# TYPE keda_trigger_registered_total gauge",
    ] {
        assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
    }
}

#[test]
fn failed_poll_counts_errors_and_drops_value() {
    let (registry, m) = setup();
    m.record_poll(
        "shop",
        "web",
        0,
        "prometheus",
        "s0-prometheus",
        Some(3.0),
        true,
        Duration::from_millis(10),
    );
    m.record_poll("shop", "web", 0, "prometheus", "s0-prometheus", None, false, Duration::from_secs(2));
    m.record_poll("shop", "web", 0, "prometheus", "s0-prometheus", None, false, Duration::from_secs(3));
    assert_eq!(
        samples(&registry),
        vec![
            r#"keda_scaled_object_errors_total{namespace="shop",scaledObject="web"} 2"#.to_string(),
            format!("keda_scaler_active{SCALER} 0"),
            format!("keda_scaler_detail_errors_total{SCALER} 2"),
            format!("keda_scaler_metrics_latency_seconds{SCALER} 3.0"),
        ]
    );
    // Recovery brings the value back; the counters keep their totals.
    m.record_poll(
        "shop",
        "web",
        0,
        "prometheus",
        "s0-prometheus",
        Some(7.0),
        true,
        Duration::from_millis(10),
    );
    let s = samples(&registry);
    assert!(s.contains(&format!("keda_scaler_metrics_value{SCALER} 7.0")), "{s:?}");
    assert!(s.contains(&format!("keda_scaler_detail_errors_total{SCALER} 2")), "{s:?}");
}

#[test]
fn object_error_paused_and_lateness() {
    let (registry, m) = setup();
    m.object_error("shop", "web");
    m.object_error("shop", "web");
    m.set_paused("shop", "web", true);
    m.set_paused("shop", "api", true);
    m.set_paused("shop", "api", false);
    m.record_loop_lateness("shop", "web", Duration::from_millis(1500));
    assert_eq!(
        samples(&registry),
        vec![
            r#"keda_internal_scale_loop_latency_seconds{namespace="shop",type="scaledobject",resource="web"} 1.5"#,
            r#"keda_scaled_object_errors_total{namespace="shop",scaledObject="web"} 2"#,
            r#"keda_scaled_object_paused{namespace="shop",scaledObject="api"} 0"#,
            r#"keda_scaled_object_paused{namespace="shop",scaledObject="web"} 1"#,
        ]
    );
}

#[test]
fn registration_gauges_count_objects_and_trigger_types() {
    let (registry, m) = setup();
    m.object_added("shop", &["prometheus", "cron"]);
    m.object_added("shop", &["prometheus"]);
    m.object_added("", &["cpu", ""]);
    assert_eq!(
        samples(&registry),
        vec![
            r#"keda_resource_registered_total{type="scaled_object",namespace="default"} 1"#,
            r#"keda_resource_registered_total{type="scaled_object",namespace="shop"} 2"#,
            r#"keda_trigger_registered_total{type="cpu"} 1"#,
            r#"keda_trigger_registered_total{type="cron"} 1"#,
            r#"keda_trigger_registered_total{type="prometheus"} 2"#,
        ]
    );
    m.object_removed("shop", &["prometheus", "cron"]);
    m.object_removed("", &["cpu"]);
    // Removing more than was added never goes negative and leaves no series behind.
    m.object_removed("", &["cpu"]);
    assert_eq!(
        samples(&registry),
        vec![
            r#"keda_resource_registered_total{type="scaled_object",namespace="shop"} 1"#,
            r#"keda_trigger_registered_total{type="prometheus"} 1"#,
        ]
    );
}

#[test]
fn forget_drops_only_that_objects_series() {
    let (registry, m) = setup();
    for so in ["web", "api"] {
        m.record_poll(
            "shop",
            so,
            0,
            "prometheus",
            "s0-prometheus",
            Some(1.0),
            true,
            Duration::from_millis(5),
        );
        m.record_poll("shop", so, 1, "cron", "s1-cron", None, false, Duration::from_millis(5));
        m.set_paused("shop", so, false);
        m.record_loop_lateness("shop", so, Duration::from_millis(3));
    }
    m.object_added("shop", &["prometheus", "cron"]);
    let before = samples(&registry);
    m.forget("shop", "web");
    let after = samples(&registry);
    assert!(!after.iter().any(|l| l.contains(r#""web""#)), "web series left: {after:?}");
    let expected: Vec<String> = before.into_iter().filter(|l| !l.contains(r#""web""#)).collect();
    assert_eq!(after, expected);
    // api keeps 4 series for its healthy trigger, 3 for its failing one (no value), its error
    // counter, paused flag and lateness; plus 3 registration series.
    assert_eq!(after.len(), 4 + 3 + 3 + 3, "{after:?}");
}

#[test]
fn changed_trigger_replaces_old_series() {
    let (registry, m) = setup();
    m.record_poll("shop", "web", 0, "prometheus", "s0-prometheus", Some(1.0), true, Duration::ZERO);
    m.record_poll("shop", "web", 1, "cron", "s1-cron", Some(1.0), true, Duration::ZERO);
    m.record_poll("shop", "web", 0, "kafka", "s0-kafka-orders", Some(2.0), true, Duration::ZERO);
    let s = samples(&registry);
    assert!(!s.iter().any(|l| l.contains("s0-prometheus")), "{s:?}");
    assert_eq!(s.iter().filter(|l| l.contains("s0-kafka-orders")).count(), 4, "{s:?}");
    m.retain_triggers("shop", "web", 1);
    let s = samples(&registry);
    assert!(!s.iter().any(|l| l.contains("s1-cron")), "{s:?}");
    assert_eq!(s.iter().filter(|l| l.contains("s0-kafka-orders")).count(), 4, "{s:?}");
}

#[test]
fn label_values_are_escaped() {
    let (registry, m) = setup();
    m.set_paused("shop", "we\"b", true);
    assert_eq!(
        samples(&registry),
        vec![r#"keda_scaled_object_paused{namespace="shop",scaledObject="we\"b"} 1"#]
    );
}

#[test]
fn lateness_histogram_counts_every_tick_in_fine_buckets() {
    let (registry, m) = setup();
    for ms in [0.05, 0.9, 3.0, 40.0] {
        m.record_loop_lateness("shop", "web", Duration::from_secs_f64(ms / 1000.0));
    }
    let s = all_samples(&registry);
    let bucket = |le: &str| {
        let line = format!("ebb_scale_loop_lateness_seconds_bucket{{le=\"{le}\"}} ");
        s.iter().find_map(|l| l.strip_prefix(&line)).map(str::to_string)
    };
    assert_eq!(bucket("0.0001").as_deref(), Some("1"));
    assert_eq!(bucket("0.0009313225746154785").as_deref(), Some("2"));
    assert_eq!(bucket("0.003552713678800501").as_deref(), Some("3"));
    assert_eq!(bucket("0.04135903062765139").as_deref(), Some("4"));
    assert!(s.contains(&"ebb_scale_loop_lateness_seconds_count 4".to_string()), "{s:?}");
}

#[test]
fn write_failures_are_counted_by_bounded_reason() {
    let (registry, m) = setup();
    m.status_write_failed("timeout");
    m.status_write_failed("timeout");
    m.scale_write_failed("not_leader");
    m.scale_write_failed("no such reason");
    let s = samples(&registry);
    for want in [
        r#"ebb_status_write_failures_total{reason="timeout"} 2"#,
        r#"ebb_scale_write_failures_total{reason="not_leader"} 1"#,
        r#"ebb_scale_write_failures_total{reason="invalid"} 1"#,
    ] {
        assert!(s.contains(&want.to_string()), "{want} in {s:?}");
    }
    assert_eq!(s.iter().filter(|l| l.starts_with("ebb_s")).count(), 3, "{s:?}");
}
