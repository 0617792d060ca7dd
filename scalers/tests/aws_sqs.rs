#![allow(clippy::unwrap_used, clippy::expect_used)]
//! aws-sqs-queue against moto: visible / in-flight / delayed counts, the activation boundary,
//! queues by full URL and by name, and the errors for a missing queue and an endpoint that is down.

mod aws_support;

use std::time::Instant;

use aws_support::{admin, closed_port, context, measure, parse};
use ebb_scalers::ScalerError;
use ebb_testbackends::moto::Moto;

/// Creates `name` with 3 visible, 2 in-flight and 2 delayed messages; returns its URL.
async fn queue_3_2_2(endpoint: &str, name: &str) -> String {
    let a = admin(endpoint);
    let sqs = a.sqs().await;
    let url = sqs.create_queue().queue_name(name).send().await.unwrap().queue_url().unwrap().to_owned();
    for i in 0..5 {
        sqs.send_message().queue_url(&url).message_body(format!("m{i}")).send().await.unwrap();
    }
    let got = sqs
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(2)
        .visibility_timeout(600)
        .send()
        .await
        .unwrap();
    assert_eq!(got.messages().len(), 2, "two messages must be in flight");
    for i in 0..2 {
        sqs.send_message()
            .queue_url(&url)
            .message_body(format!("d{i}"))
            .delay_seconds(600)
            .send()
            .await
            .unwrap();
    }
    url
}

#[tokio::test]
async fn counts_visible_in_flight_and_delayed() {
    let moto = Moto::shared();
    let url = queue_3_2_2(&moto.endpoint(), "counts").await;
    let ctx = context(false);
    let cases: &[(&[(&str, &str)], f64)] = &[
        (&[], 5.0),
        (&[("scaleOnInFlight", "false")], 3.0),
        (&[("scaleOnDelayed", "true")], 7.0),
        (&[("scaleOnInFlight", "false"), ("scaleOnDelayed", "true")], 5.0),
    ];
    for (extra, want) in cases {
        let mut meta = vec![("queueURL", url.as_str()), ("awsRegion", "us-east-1")];
        let ep = moto.endpoint();
        meta.push(("awsEndpoint", ep.as_str()));
        meta.extend_from_slice(extra);
        let m = measure(&parse("aws-sqs-queue", &meta, &ctx)).await.unwrap();
        assert_eq!(m.value, *want, "{extra:?}");
        assert!(m.active, "{extra:?}");
    }
}

#[tokio::test]
async fn activation_is_strictly_above_the_threshold() {
    let moto = Moto::shared();
    let url = queue_3_2_2(&moto.endpoint(), "activation").await;
    let ep = moto.endpoint();
    let ctx = context(false);
    // Value 5 (visible + in flight).
    for (threshold, active) in [("4", true), ("5", false), ("6", false)] {
        let meta = [
            ("queueURL", url.as_str()),
            ("awsRegion", "us-east-1"),
            ("awsEndpoint", ep.as_str()),
            ("activationQueueLength", threshold),
        ];
        let m = measure(&parse("aws-sqs-queue", &meta, &ctx)).await.unwrap();
        assert_eq!((m.value, m.active), (5.0, active), "activationQueueLength {threshold}");
    }
}

#[tokio::test]
async fn queue_by_full_url_and_by_bare_name() {
    let moto = Moto::shared();
    let ep = moto.endpoint();
    let url = queue_3_2_2(&ep, "forms").await;
    let ctx = context(false);
    let aws_style = "https://sqs.us-east-1.amazonaws.com/123456789012/forms";
    for queue in [url.as_str(), aws_style, "forms"] {
        let cfg = parse(
            "aws-sqs-queue",
            &[
                ("queueURL", queue),
                ("awsRegion", "us-east-1"),
                ("awsEndpoint", &ep),
                ("scaleOnDelayed", "true"),
            ],
            &ctx,
        );
        assert_eq!(ebb_api::metric_name::with_index(0, &cfg.metric_part()), "s0-aws-sqs-forms");
        let s = cfg.build().unwrap();
        // Twice through the same scaler: the name is resolved once and reused.
        for _ in 0..2 {
            let m = s.measure(chrono::Utc::now()).await.unwrap();
            assert_eq!(m.value, 7.0, "{queue}");
        }
    }
}

#[tokio::test]
async fn a_missing_queue_is_not_found_with_the_aws_code() {
    let moto = Moto::shared();
    let ep = moto.endpoint();
    let ctx = context(false);
    for queue in ["no-such-queue", "https://sqs.us-east-1.amazonaws.com/123456789012/no-such-queue"] {
        let cfg = parse(
            "aws-sqs-queue",
            &[("queueURL", queue), ("awsRegion", "us-east-1"), ("awsEndpoint", &ep)],
            &ctx,
        );
        let e = measure(&cfg).await.unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, ScalerError::NotFound(_)), "{queue}: {e:?}");
        assert_eq!(e.reason(), "NotFound");
        assert!(text.starts_with("SQS queue \"no-such-queue\": "), "{text}");
        assert!(text.contains("AWS.SimpleQueueService.NonExistentQueue"), "{text}");
    }
}

#[tokio::test]
async fn an_endpoint_that_is_down_is_unreachable() {
    let ep = format!("http://127.0.0.1:{}", closed_port());
    let cfg = parse(
        "aws-sqs-queue",
        &[("queueURL", "https://sqs.us-east-1.amazonaws.com/123456789012/orders"), ("awsEndpoint", &ep)],
        &context(false),
    );
    let started = Instant::now();
    let e = measure(&cfg).await.unwrap_err();
    assert!(matches!(e, ScalerError::Unreachable(_)), "{e:?}");
    let text = e.to_string();
    assert!(text.starts_with("SQS queue \"orders\": GetQueueAttributes: "), "{text}");
    assert!(
        text.contains("Connection refused")
            || text.contains("connection refused")
            || text.contains("io error"),
        "{text}"
    );
    assert!(started.elapsed().as_secs_f64() < 3.0, "took {:?}", started.elapsed());
}
