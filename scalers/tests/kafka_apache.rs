//! The `apache-kafka` trigger (KEDA's experimental Kafka scaler) against a real Kafka-protocol
//! broker (tansu): a comma-separated list of topics sums the lag of each, through the shared
//! ScaledObject parser, with the metric named after the list; and what ebb refuses by name
//! (sasl aws_msk_iam, gssapi) or does not take from `kafka` (ensureEvenDistributionOfPartitions,
//! unsafeSsl).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kafka_support;

use std::time::Duration;

use chrono::Utc;
use ebb_scalers::{Measurement, measure_with_timeout, parse_scaled_object};
use kafka_support::{GROUP, TOPIC, broker_with_fixture};

fn scaled_object(trigger_metadata: &str) -> ebb_api::ScaledObject {
    let yaml = format!(
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: w}}\nspec:\n  scaleTargetRef: {{name: w}}\n  triggers:\n  - type: apache-kafka\n    metadata: {{{trigger_metadata}}}\n"
    );
    serde_yaml::from_str(&yaml).unwrap()
}

#[tokio::test]
async fn a_list_of_topics_sums_their_lag() {
    let (t, mut admin) = broker_with_fixture().await;
    // Second topic: 2 partitions with 3 and 8 records, the group committed 1 on p0 only.
    admin.create_topic("payments", 2).await.unwrap();
    admin.produce("payments", &[(0, 3), (1, 8)]).await.unwrap();
    admin.commit(GROUP, "payments", &[(0, 1)]).await.unwrap();
    let b = t.bootstrap();
    // orders: 6 + 1 (p1 uncommitted, latest) + 20 = 27; payments: 2 + 1 = 3. 5 partitions.
    type Case<'a> = (&'a str, &'a str, f64);
    let cases: &[Case] = &[
        ("topic: 'orders, payments', allowIdleConsumers: true", "s0-kafka-orders,payments", 30.0),
        ("topic: 'orders,payments', lagThreshold: 4", "s0-kafka-orders,payments", 20.0), // capped at 5 × 4
        ("topic: payments", "s0-kafka-payments", 3.0),
        // earliest: payments p1 counts its 8 retained records, orders p1 its 7.
        (
            "topic: 'orders,payments', offsetResetPolicy: earliest, allowIdleConsumers: true",
            "s0-kafka-orders,payments",
            43.0,
        ), // 33 + 2 + 8
    ];
    for (md, metric, value) in cases {
        let so = scaled_object(&format!("bootstrapServers: '{b}', consumerGroup: {GROUP}, {md}"));
        let parsed = parse_scaled_object(&so, &Default::default()).unwrap();
        let trig = &parsed.triggers[0];
        assert_eq!(trig.metric_name.as_str(), *metric, "{md}");
        let s = trig.config.build().unwrap();
        let m = measure_with_timeout(&s, Utc::now(), Duration::from_secs(3)).await.unwrap();
        assert_eq!(m, Measurement { value: *value, active: true }, "{md}");
    }
    // A missing topic in the list is an error naming it, never a partial sum.
    let so =
        scaled_object(&format!("bootstrapServers: '{b}', consumerGroup: {GROUP}, topic: '{TOPIC},nope'"));
    let parsed = parse_scaled_object(&so, &Default::default()).unwrap();
    let s = parsed.triggers[0].config.build().unwrap();
    let e = measure_with_timeout(&s, Utc::now(), Duration::from_secs(3)).await.unwrap_err();
    assert!(e.to_string().contains("\"nope\" does not exist"), "{e}");
}

#[test]
fn unsupported_apache_kafka_settings_are_refused_by_name() {
    let base = "bootstrapServers: 'k:9092', consumerGroup: g, topic: t";
    for (md, expected) in [
        (
            "sasl: aws_msk_iam, awsRegion: eu-west-1, tls: enable",
            "aws_msk_iam (AWS MSK IAM authentication) is not supported",
        ),
        ("sasl: gssapi", "gssapi is not supported"),
    ] {
        let so = scaled_object(&format!("{base}, {md}"));
        let e = parse_scaled_object(&so, &Default::default()).unwrap_err();
        let text = e.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
        assert!(text.contains("sasl") && text.contains(expected), "{md}: {text}");
    }
    // Not apache-kafka parameters (they belong to `kafka`): not applied.
    let so = scaled_object(&format!(
        "{base}, ensureEvenDistributionOfPartitions: 'true', unsafeSsl: 'true', tls: enable"
    ));
    let parsed = parse_scaled_object(&so, &Default::default()).unwrap();
    let d = parsed.triggers[0].config.describe();
    assert!(!d.contains("ensureEven") && !d.contains("unverified"), "{d}");
}
