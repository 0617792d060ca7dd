#![allow(clippy::unwrap_used, clippy::expect_used)]
//! aws-cloudwatch against moto: PutMetricData, then the scaler reads the newest period's
//! statistic over the aligned window (dimensions, statistics, end offset, activation), empty
//! data gives minMetricValue or an error per ignoreNullValues, Metrics Insights expressions, and
//! an endpoint that is down is Unreachable.

mod aws_support;

use aws_sdk_cloudwatch::primitives::DateTime as AwsDateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use aws_support::{admin, closed_port, context, measure, measure_at, parse};
use chrono::{DateTime, TimeZone, Utc};
use ebb_scalers::ScalerError;
use ebb_scalers::aws::cloudwatch::window;
use ebb_testbackends::moto::Moto;

/// Puts `(seconds, value)` points of `ns/name` with dimension QueueName=`queue`.
async fn put(endpoint: &str, ns: &str, name: &str, queue: &str, points: &[(i64, f64)]) {
    let a = admin(endpoint);
    let cw = a.cloudwatch().await;
    let mut req = cw.put_metric_data().namespace(ns);
    for (t, v) in points {
        req = req.metric_data(
            MetricDatum::builder()
                .metric_name(name)
                .dimensions(Dimension::builder().name("QueueName").value(queue).build())
                .timestamp(AwsDateTime::from_secs(*t))
                .value(*v)
                .unit(StandardUnit::Count)
                .build(),
        );
    }
    req.send().await.unwrap();
}

/// A fixed instant in the recent past (moto keeps any timestamp), mid-period.
fn now() -> DateTime<Utc> {
    let t = Utc::now().timestamp() - 3600;
    Utc.timestamp_opt(t - t.rem_euclid(3600) + 42, 0).unwrap()
}

fn meta<'a>(ep: &'a str, name: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut m = vec![
        ("namespace", "Ebb/Test"),
        ("metricName", name),
        ("dimensionName", "QueueName"),
        ("dimensionValue", "orders"),
        ("targetMetricValue", "10"),
        ("metricStatPeriod", "60"),
        ("metricCollectionTime", "300"),
        ("awsRegion", "us-east-1"),
        ("awsEndpoint", ep),
    ];
    m.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
    m.extend_from_slice(extra);
    m
}

#[tokio::test]
async fn reads_the_newest_period_of_the_aligned_window() {
    let moto = Moto::shared();
    let ep = moto.endpoint();
    let now = now();
    let (start, end) = window(now, 300, 60, 0);
    assert_eq!((end - start, end % 60, now.timestamp() - end), (300, 0, 42));
    // Oldest period: 10; newest complete period: 20 and 40; the running period (excluded by the
    // truncated end): 1000; another queue's data in the newest period: 500.
    put(
        &ep,
        "Ebb/Test",
        "Depth",
        "orders",
        &[(end - 90, 10.0), (end - 50, 20.0), (end - 10, 40.0), (end + 5, 1000.0)],
    )
    .await;
    put(&ep, "Ebb/Test", "Depth", "other", &[(end - 30, 500.0)]).await;
    let ctx = context(false);
    let cases: &[(&[(&str, &str)], f64)] = &[
        (&[], 30.0),
        (&[("metricStat", "Sum")], 60.0),
        (&[("metricStat", "Maximum")], 40.0),
        (&[("metricStat", "Minimum")], 20.0),
        (&[("metricStat", "SampleCount")], 2.0),
        // One period back: the newest period in the window holds only the 10.
        (&[("metricEndTimeOffset", "60")], 10.0),
        // A 120 s period: [end-120, end) holds 10, 20, 40.
        (&[("metricStatPeriod", "120"), ("metricCollectionTime", "240"), ("metricStat", "Sum")], 70.0),
        (&[("dimensionValue", "other")], 500.0),
        (&[("metricUnit", "Count"), ("metricStat", "Sum")], 60.0),
    ];
    for (extra, want) in cases {
        let cfg = parse("aws-cloudwatch", &meta(&ep, "Depth", extra), &ctx);
        assert_eq!(ebb_api::metric_name::with_index(0, &cfg.metric_part()), "s0-aws-cloudwatch");
        let m = measure_at(&cfg, now).await.unwrap();
        assert_eq!(m.value, *want, "{extra:?}");
    }
    // A unit the data was not put with: nothing matches, so minMetricValue.
    let cfg = parse(
        "aws-cloudwatch",
        &meta(&ep, "Depth", &[("metricUnit", "Seconds"), ("minMetricValue", "3")]),
        &ctx,
    );
    assert_eq!(measure_at(&cfg, now).await.unwrap().value, 3.0);
}

#[tokio::test]
async fn activation_is_strictly_above_the_threshold() {
    let moto = Moto::shared();
    let ep = moto.endpoint();
    let now = now();
    let (_, end) = window(now, 300, 60, 0);
    put(&ep, "Ebb/Test", "Active", "orders", &[(end - 30, 7.0)]).await;
    let ctx = context(false);
    for (threshold, active) in [("6.5", true), ("7", false), ("8", false)] {
        let cfg = parse(
            "aws-cloudwatch",
            &meta(&ep, "Active", &[("activationTargetMetricValue", threshold)]),
            &ctx,
        );
        let m = measure_at(&cfg, now).await.unwrap();
        assert_eq!((m.value, m.active), (7.0, active), "{threshold}");
    }
}

#[tokio::test]
async fn empty_data_gives_min_metric_value_or_an_error() {
    let moto = Moto::shared();
    let ep = moto.endpoint();
    let ctx = context(false);
    let cfg = parse("aws-cloudwatch", &meta(&ep, "NeverPut", &[("minMetricValue", "2.5")]), &ctx);
    let m = measure(&cfg).await.unwrap();
    assert_eq!((m.value, m.active), (2.5, true));
    let cfg = parse("aws-cloudwatch", &meta(&ep, "NeverPut", &[]), &ctx);
    assert_eq!(measure(&cfg).await.unwrap().value, 0.0);
    let cfg = parse("aws-cloudwatch", &meta(&ep, "NeverPut", &[("ignoreNullValues", "false")]), &ctx);
    let e = measure(&cfg).await.unwrap_err();
    assert!(matches!(e, ScalerError::NotFound(_)), "{e:?}");
    let text = e.to_string();
    assert!(
        text.starts_with(
            "CloudWatch metric Ebb/Test/NeverPut: GetMetricData returned no data points between "
        ) && text.ends_with("(ignoreNullValues is false)"),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_insights_expression() {
    // A server of its own: moto's Metrics Insights sums every datum in the period.
    let moto = Moto::start().unwrap();
    let ep = moto.endpoint();
    let now = now();
    let (_, end) = window(now, 300, 60, 0);
    put(&ep, "Ebb/Expr", "Depth", "orders", &[(end - 50, 4.0), (end - 20, 5.0), (end - 200, 100.0)]).await;
    let cfg = parse(
        "aws-cloudwatch",
        &[
            ("expression", "SELECT SUM(Depth) FROM \"Ebb/Expr\""),
            ("targetMetricValue", "3"),
            ("metricStatPeriod", "60"),
            ("awsRegion", "us-east-1"),
            ("awsEndpoint", &ep),
        ],
        &context(false),
    );
    assert_eq!(measure_at(&cfg, now).await.unwrap().value, 9.0);
}

#[tokio::test]
async fn an_endpoint_that_is_down_is_unreachable() {
    let ep = format!("http://127.0.0.1:{}", closed_port());
    let cfg = parse("aws-cloudwatch", &meta(&ep, "Depth", &[]), &context(false));
    let e = measure(&cfg).await.unwrap_err();
    assert!(matches!(e, ScalerError::Unreachable(_)), "{e:?}");
    let text = e.to_string();
    assert!(text.starts_with("CloudWatch metric Ebb/Test/Depth: GetMetricData: dispatch failure"), "{text}");
    assert!(text.contains("Connection refused"), "{text}");
}
