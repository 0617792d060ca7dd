//! aws-cloudwatch parsing (defaults, every parameter, bad values, dimensions, statistics,
//! periods) and the window arithmetic (end truncated to the period, offset, collection time).

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use ebb_api::MetadataValue;

use super::*;
use crate::params::ParseContext;

fn parse(pairs: &[(&str, &str)]) -> Result<CloudWatchConfig, String> {
    let m: BTreeMap<String, MetadataValue> =
        pairs.iter().map(|(k, v)| ((*k).to_owned(), MetadataValue::from(*v))).collect();
    let mut ctx = ParseContext::default();
    ctx.auth.insert(
        0,
        [("awsAccessKeyID", "AKIDEXAMPLE"), ("awsSecretAccessKey", "s3cr3t")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    );
    let p = Params::new(0, "aws-cloudwatch", PARAMS, &m, &ctx);
    let r = parse_config(&p).map_err(|e| e.to_string());
    assert!(p.into_warnings().is_empty(), "{pairs:?}");
    r
}

const BASE: &[(&str, &str)] = &[
    ("namespace", "AWS/SQS"),
    ("metricName", "ApproximateNumberOfMessagesVisible"),
    ("dimensionName", "QueueName"),
    ("dimensionValue", "orders"),
    ("targetMetricValue", "5"),
    ("awsRegion", "us-east-1"),
];

fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut v: Vec<(&str, &str)> =
        BASE.iter().filter(|(k, _)| !extra.iter().any(|(e, _)| e == k)).copied().collect();
    v.extend_from_slice(extra);
    v
}

#[test]
fn defaults_and_metric_name() {
    let c = parse(BASE).unwrap();
    assert_eq!(
        c.query,
        Query::Metric {
            namespace: "AWS/SQS".into(),
            metric_name: "ApproximateNumberOfMessagesVisible".into(),
            dimensions: vec![("QueueName".into(), "orders".into())],
            stat: "Average".into(),
            unit: None,
        }
    );
    assert_eq!((c.target, c.activation_target, c.min_metric_value), (5.0, 0.0, 0.0));
    assert!(c.ignore_null_values);
    assert_eq!((c.collection_time, c.period, c.end_time_offset), (300, 300, 0));
    assert_eq!(ebb_api::metric_name::with_index(0, &c.metric_part()), "s0-aws-cloudwatch");
    assert_eq!(ebb_api::metric_name::with_index(3, &c.metric_part()), "s3-aws-cloudwatch");
    let d = c.describe();
    assert!(
        d.starts_with(
            "CloudWatch Average of AWS/SQS/ApproximateNumberOfMessagesVisible {QueueName=orders} in us-east-1"
        ),
        "{d}"
    );
}

#[test]
fn every_parameter_is_read() {
    let c = parse(&with(&[
        ("dimensionName", "QueueName; Env"),
        ("dimensionValue", "orders;prod"),
        ("targetMetricValue", "2.5"),
        ("activationTargetMetricValue", "1.5"),
        ("minMetricValue", "-1"),
        ("ignoreNullValues", "false"),
        ("metricCollectionTime", "600"),
        ("metricStat", "p99.5"),
        ("metricStatPeriod", "60"),
        ("metricEndTimeOffset", "120"),
        ("metricUnit", "Count"),
        ("awsEndpoint", "http://127.0.0.1:5000"),
    ]))
    .unwrap();
    let Query::Metric { dimensions, stat, unit, .. } = &c.query else { panic!("{:?}", c.query) };
    assert_eq!(
        dimensions,
        &[("QueueName".to_owned(), "orders".to_owned()), ("Env".to_owned(), "prod".to_owned())]
    );
    assert_eq!((stat.as_str(), unit.as_deref()), ("p99.5", Some("Count")));
    assert_eq!((c.target, c.activation_target, c.min_metric_value), (2.5, 1.5, -1.0));
    assert!(!c.ignore_null_values);
    assert_eq!((c.collection_time, c.period, c.end_time_offset), (600, 60, 120));
    assert_eq!(c.client.endpoint.as_deref(), Some("http://127.0.0.1:5000"));

    let e = parse(&[
        ("expression", "SELECT AVG(CPUUtilization) FROM \"AWS/EC2\""),
        ("targetMetricValue", "50"),
        ("awsRegion", "eu-west-1"),
    ])
    .unwrap();
    assert_eq!(e.query, Query::Expression("SELECT AVG(CPUUtilization) FROM \"AWS/EC2\"".into()));
    // No dimensions at all is a valid metric query.
    let none = parse(&[
        ("namespace", "App"),
        ("metricName", "Depth"),
        ("targetMetricValue", "1"),
        ("awsRegion", "eu-west-1"),
    ])
    .unwrap();
    assert!(matches!(none.query, Query::Metric { ref dimensions, .. } if dimensions.is_empty()));
}

#[test]
fn bad_values_are_one_clear_error() {
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            BASE.iter().filter(|(k, _)| *k != "targetMetricValue").copied().collect(),
            "spec.triggers[0] (aws-cloudwatch) metadata.targetMetricValue: required; set metadata.targetMetricValue",
        ),
        (with(&[("targetMetricValue", "0")]), "metadata.targetMetricValue: must be greater than 0, found 0"),
        (with(&[("targetMetricValue", "x")]), "metadata.targetMetricValue: expected a number, found \"x\""),
        (
            BASE.iter().filter(|(k, _)| *k != "namespace").copied().collect(),
            "metadata.namespace: required unless expression is set",
        ),
        (
            BASE.iter().filter(|(k, _)| *k != "metricName").copied().collect(),
            "metadata.metricName: required unless expression is set",
        ),
        (BASE.iter().filter(|(k, _)| *k != "awsRegion").copied().collect(), "metadata.awsRegion: required"),
        (
            with(&[("dimensionName", "A;B")]),
            "metadata.dimensionValue: dimensionName has 2 name(s) and dimensionValue 1 value(s)",
        ),
        (
            BASE.iter().filter(|(k, _)| *k != "dimensionValue").copied().collect(),
            "dimensionName has 1 name(s) and dimensionValue 0",
        ),
        (
            with(&[("dimensionName", "A;"), ("dimensionValue", "1;2")]),
            "metadata.dimensionName: name 2 of 2 is empty",
        ),
        (
            with(&[("metricStat", "Median")]),
            "metadata.metricStat: expected SampleCount, Sum, Average, Minimum, Maximum, IQM or a percentile such as p99, found \"Median\"",
        ),
        (with(&[("metricStat", "p101")]), "metadata.metricStat: expected"),
        (with(&[("metricUnit", "Parsecs")]), "metadata.metricUnit: expected one of Bits, Bits/Second"),
        (
            with(&[("metricStatPeriod", "45")]),
            "metadata.metricStatPeriod: must be 1, 5, 10, 30 or a multiple of 60 seconds, found 45",
        ),
        (
            with(&[("metricStatPeriod", "0")]),
            "metadata.metricStatPeriod: expected an integer ≥ 1, found \"0\"",
        ),
        (
            with(&[("metricCollectionTime", "450")]),
            "metadata.metricCollectionTime: must be a multiple of metricStatPeriod (300 s), found 450",
        ),
        (with(&[("metricEndTimeOffset", "-5")]), "metadata.metricEndTimeOffset: expected an integer ≥ 0"),
        (with(&[("ignoreNullValues", "sometimes")]), "metadata.ignoreNullValues: expected true or false"),
        (with(&[("minMetricValue", "low")]), "metadata.minMetricValue: expected a number"),
        (
            with(&[("activationTargetMetricValue", "-1")]),
            "metadata.activationTargetMetricValue: expected a number ≥ 0",
        ),
    ];
    for (pairs, want) in cases {
        let e = parse(&pairs).unwrap_err();
        assert!(e.contains(want), "{pairs:?}:\n  want {want}\n  got  {e}");
    }
}

#[test]
fn statistics_and_periods() {
    for s in [
        "SampleCount",
        "Sum",
        "Average",
        "Minimum",
        "Maximum",
        "IQM",
        "p99",
        "p0",
        "p100",
        "p99.9",
        "p99.99",
        "tm90",
        "wm95.5",
        "tc10",
        "ts50",
        "TM(10%:90%)",
        "PR(:300)",
    ] {
        assert!(valid_stat(s), "{s}");
    }
    for s in ["average", "p", "p100.1", "p99.999", "p-1", "px", "TM()", "TM10", "Median", ""] {
        assert!(!valid_stat(s), "{s}");
    }
    for p in [1, 5, 10, 30, 60, 120, 300, 3600, 86400] {
        assert!(valid_period(p), "{p}");
    }
    for p in [0, 2, 15, 45, 61, 90, -60] {
        assert!(!valid_period(p), "{p}");
    }
}

#[test]
fn window_end_is_truncated_to_the_period() {
    let t = |h, m, s| Utc.with_ymd_and_hms(2026, 11, 23, h, m, s).unwrap().timestamp();
    let now = Utc.with_ymd_and_hms(2026, 11, 23, 10, 7, 42).unwrap();
    // (collection, period, offset) → (start, end)
    let cases = [
        ((300, 300, 0), (t(10, 0, 0), t(10, 5, 0))),
        ((600, 300, 0), (t(9, 55, 0), t(10, 5, 0))),
        ((60, 60, 0), (t(10, 6, 0), t(10, 7, 0))),
        ((120, 60, 45), (t(10, 4, 0), t(10, 6, 0))),
        ((300, 300, 120), (t(10, 0, 0), t(10, 5, 0))),
        ((300, 300, 180), (t(9, 55, 0), t(10, 0, 0))),
        ((10, 1, 0), (t(10, 7, 32), t(10, 7, 42))),
        ((30, 30, 0), (t(10, 7, 0), t(10, 7, 30))),
        ((3600, 3600, 0), (t(9, 0, 0), t(10, 0, 0))),
    ];
    for ((collection, period, offset), want) in cases {
        assert_eq!(window(now, collection, period, offset), want, "{collection} {period} {offset}");
    }
    // Exactly on a boundary: the end is now itself.
    let on = Utc.with_ymd_and_hms(2026, 11, 23, 10, 5, 0).unwrap();
    assert_eq!(window(on, 300, 300, 0), (t(10, 0, 0), t(10, 5, 0)));
    // Sub-second parts are dropped.
    let frac = on + chrono::Duration::milliseconds(999);
    assert_eq!(window(frac, 300, 300, 0), (t(10, 0, 0), t(10, 5, 0)));
}

/// KEDA's published aws-cloudwatch spec reads the static keys from the target container's
/// environment (`awsAccessKeyIDFromEnv`, `awsSecretAccessKeyFromEnv`); the values are secrets,
/// never shown, and a variable that is not set is named, not its (absent) value.
#[test]
fn static_keys_from_the_target_containers_environment() {
    let m: BTreeMap<String, MetadataValue> = with(&[
        ("awsAccessKeyIDFromEnv", "AWS_ACCESS_KEY_ID"),
        ("awsSecretAccessKeyFromEnv", "AWS_SECRET_ACCESS_KEY"),
    ])
    .iter()
    .map(|(k, v)| ((*k).to_owned(), MetadataValue::from(*v)))
    .collect();
    let mut ctx = ParseContext::default();
    ctx.env.insert("AWS_ACCESS_KEY_ID".into(), "AKIDFROMENV".into());
    ctx.env.insert("AWS_SECRET_ACCESS_KEY".into(), "envs3cr3t".into());
    let p = Params::new(0, "aws-cloudwatch", PARAMS, &m, &ctx);
    let c = parse_config(&p).unwrap();
    assert!(p.into_warnings().is_empty());
    match &c.client.credentials {
        credentials::AwsCredentials::Static { access_key_id, secret_access_key, session_token: None } => {
            assert_eq!((access_key_id.expose(), secret_access_key.expose()), ("AKIDFROMENV", "envs3cr3t"));
        }
        other => panic!("expected static keys, got {other:?}"),
    }
    let shown = format!("{:?} {}", c, c.describe());
    assert!(!shown.contains("AKIDFROMENV") && !shown.contains("envs3cr3t"), "{shown}");

    ctx.env.remove("AWS_SECRET_ACCESS_KEY");
    let p = Params::new(0, "aws-cloudwatch", PARAMS, &m, &ctx);
    let e = parse_config(&p).unwrap_err().to_string();
    assert!(
        e.contains("metadata.awsSecretAccessKeyFromEnv")
            && e.contains("\"AWS_SECRET_ACCESS_KEY\" is not set"),
        "{e}"
    );
    assert!(!e.contains("AKIDFROMENV"), "{e}");
}
