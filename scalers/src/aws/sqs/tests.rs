//! aws-sqs-queue parsing: defaults, bad values, queue URL forms, region derivation, metric names
//! and the value arithmetic over GetQueueAttributes answers.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_sqs::types::QueueAttributeName as A;
use ebb_api::MetadataValue;

use super::*;
use crate::params::ParseContext;

fn parse_with(pairs: &[(&str, &str)], env: &[(&str, &str)]) -> Result<SqsConfig, String> {
    let m: BTreeMap<String, MetadataValue> =
        pairs.iter().map(|(k, v)| ((*k).to_owned(), MetadataValue::from(*v))).collect();
    let mut ctx = ParseContext {
        env: env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        ..ParseContext::default()
    };
    ctx.auth.insert(
        1,
        [("awsAccessKeyID", "AKIDEXAMPLE"), ("awsSecretAccessKey", "s3cr3t")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    );
    let p = Params::new(1, "aws-sqs-queue", PARAMS, &m, &ctx);
    parse_config(&p).map_err(|e| e.to_string())
}

fn parse(pairs: &[(&str, &str)]) -> Result<SqsConfig, String> {
    parse_with(pairs, &[])
}

const SEED_URL: &str = "https://sqs.us-east-1.amazonaws.com/123456789/orders";

#[test]
fn seed_defaults_and_metric_name() {
    let c = parse(&[("queueURL", SEED_URL), ("queueLength", "5"), ("awsRegion", "us-east-1")]).unwrap();
    assert_eq!(c.queue, QueueRef::Url { url: SEED_URL.into(), name: "orders".into() });
    assert_eq!((c.queue_length, c.activation_queue_length), (5, 0));
    assert!(c.scale_on_in_flight && !c.scale_on_delayed);
    assert_eq!(c.client.region, "us-east-1");
    assert_eq!(c.client.endpoint, None);
    assert_eq!((c.target(), c.activation_target()), (5.0, 0.0));
    assert_eq!(ebb_api::metric_name::with_index(0, &c.metric_part()), "s0-aws-sqs-orders");
    let d = c.describe();
    assert!(d.contains(SEED_URL) && d.contains("visible + in flight messages, 5 per replica"), "{d}");
    assert!(!d.contains("s3cr3t"), "{d}");
}

#[test]
fn every_parameter_is_read() {
    let c = parse_with(
        &[
            ("queueURLFromEnv", "QUEUE"),
            ("queueLength", "12"),
            ("activationQueueLength", "3"),
            ("awsRegion", "eu-west-1"),
            ("awsEndpoint", "http://127.0.0.1:4566"),
            ("scaleOnInFlight", "false"),
            ("scaleOnDelayed", "true"),
            ("identityOwner", "pod"),
        ],
        &[("QUEUE", "jobs.fifo")],
    )
    .unwrap();
    assert_eq!(c.queue, QueueRef::Name("jobs.fifo".into()));
    assert_eq!((c.queue_length, c.activation_queue_length), (12, 3));
    assert!(!c.scale_on_in_flight && c.scale_on_delayed);
    assert_eq!(c.client.endpoint.as_deref(), Some("http://127.0.0.1:4566"));
    // `.` is not allowed in metric names: normalized like every other scaler part.
    assert_eq!(ebb_api::metric_name::with_index(2, &c.metric_part()), "s2-aws-sqs-jobs-fifo");
}

#[test]
fn queue_url_forms() {
    let ok: &[(&str, QueueRef)] = &[
        (SEED_URL, QueueRef::Url { url: SEED_URL.into(), name: "orders".into() }),
        (
            "http://127.0.0.1:5000/123456789012/my_queue-1/",
            QueueRef::Url {
                url: "http://127.0.0.1:5000/123456789012/my_queue-1".into(),
                name: "my_queue-1".into(),
            },
        ),
        ("orders", QueueRef::Name("orders".into())),
        ("  orders.fifo ", QueueRef::Name("orders.fifo".into())),
    ];
    for (raw, want) in ok {
        assert_eq!(parse_queue(raw).as_ref(), Ok(want), "{raw}");
    }
    let bad: &[(&str, &str)] = &[
        ("ftp://sqs.us-east-1.amazonaws.com/1/q", "the scheme must be https or http"),
        ("https://sqs.us-east-1.amazonaws.com/q", "the path must be /<account-id>/<queue-name>"),
        ("https://sqs.us-east-1.amazonaws.com/1/q/extra", "the path must be /<account-id>/<queue-name>"),
        ("https://sqs.us-east-1.amazonaws.com/1/q?x=1", "a queue URL has no query, fragment or space"),
        ("https:///1/q", "the host is missing"),
        ("https://sqs.us-east-1.amazonaws.com/1/bad name", "a queue URL has no query, fragment or space"),
        ("https://sqs.us-east-1.amazonaws.com/1/a.b", "the path must be"),
        ("bad/name", "or a queue name (1–80 letters"),
        (".fifo", "or a queue name"),
    ];
    for (raw, want) in bad {
        let e = parse_queue(raw).unwrap_err();
        assert!(e.contains(want), "{raw}: {e}");
        assert!(e.contains(&format!("found {:?}", raw.trim())), "{raw}: {e}");
    }
    assert!(parse_queue(&"q".repeat(80)).is_ok());
    assert!(parse_queue(&"q".repeat(81)).is_err());
}

#[test]
fn region_comes_from_the_url_when_not_given() {
    let cases: &[(&str, Option<&str>)] = &[
        (SEED_URL, Some("us-east-1")),
        ("https://sqs.cn-north-1.amazonaws.com.cn/1/q", Some("cn-north-1")),
        ("https://eu-west-2.queue.amazonaws.com/1/q", Some("eu-west-2")),
        ("http://127.0.0.1:5000/1/q", None),
        ("https://vpce-1.sqs.us-east-1.vpce.amazonaws.com/1/q", None),
    ];
    for (url, want) in cases {
        assert_eq!(region_from_url(url).as_deref(), *want, "{url}");
    }
    assert_eq!(parse(&[("queueURL", SEED_URL)]).unwrap().client.region, "us-east-1");
    let e = parse(&[("queueURL", "http://127.0.0.1:5000/1/q")]).unwrap_err();
    assert_eq!(
        e,
        "spec.triggers[1] (aws-sqs-queue) metadata.awsRegion: required: the region cannot be read from the queueURL host"
    );
    let e = parse(&[("queueURL", "orders")]).unwrap_err();
    assert!(e.ends_with("metadata.awsRegion: required when queueURL is a queue name"), "{e}");
}

#[test]
fn bad_values_are_one_clear_error() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[],
            "spec.triggers[1] (aws-sqs-queue) metadata.queueURL: required; set metadata.queueURL or queueURLFromEnv",
        ),
        (
            &[("queueURLFromEnv", "NOPE")],
            "metadata.queueURLFromEnv: environment variable \"NOPE\" is not set",
        ),
        (
            &[("queueURL", SEED_URL), ("queueLength", "0")],
            "metadata.queueLength: expected an integer ≥ 1, found \"0\"",
        ),
        (
            &[("queueURL", SEED_URL), ("queueLength", "five")],
            "metadata.queueLength: expected an integer, found \"five\"",
        ),
        (
            &[("queueURL", SEED_URL), ("activationQueueLength", "-1")],
            "metadata.activationQueueLength: expected an integer ≥ 0, found \"-1\"",
        ),
        (
            &[("queueURL", SEED_URL), ("scaleOnInFlight", "maybe")],
            "metadata.scaleOnInFlight: expected true or false",
        ),
        (
            &[("queueURL", SEED_URL), ("scaleOnDelayed", "2")],
            "metadata.scaleOnDelayed: expected true or false",
        ),
        (&[("queueURL", "https://x/1")], "metadata.queueURL: the path must be /<account-id>/<queue-name>"),
    ];
    for (pairs, want) in cases {
        let e = parse(pairs).unwrap_err();
        assert!(e.contains(want), "{pairs:?}: {e}");
    }
}

#[test]
fn credentials_in_metadata_are_ignored_with_a_warning() {
    let m: BTreeMap<String, MetadataValue> = [("queueURL", SEED_URL), ("awsSecretAccessKey", "leaked")]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), MetadataValue::from(*v)))
        .collect();
    let ctx = ParseContext::default();
    let p = Params::new(0, "aws-sqs-queue", PARAMS, &m, &ctx);
    let e = parse_config(&p).unwrap_err().to_string();
    assert!(e.contains("no AWS credentials") && !e.contains("leaked"), "{e}");
    let w = p.into_warnings().join("\n");
    assert!(
        w.contains("awsSecretAccessKey is a credential and is read only from a TriggerAuthentication"),
        "{w}"
    );
    assert!(!w.contains("leaked"), "{w}");
}

#[test]
fn value_adds_the_counted_attributes() {
    let attrs: HashMap<A, String> = [
        (A::ApproximateNumberOfMessages, "3".to_owned()),
        (A::ApproximateNumberOfMessagesNotVisible, "2".to_owned()),
        (A::ApproximateNumberOfMessagesDelayed, "4".to_owned()),
    ]
    .into();
    let cases = [((true, false), 5.0), ((false, false), 3.0), ((true, true), 9.0), ((false, true), 7.0)];
    for ((in_flight, delayed), want) in cases {
        assert_eq!(value_from(&attrs, in_flight, delayed), Ok(want), "{in_flight} {delayed}");
    }
    let partial: HashMap<A, String> = [(A::ApproximateNumberOfMessages, "3".to_owned())].into();
    assert_eq!(value_from(&partial, false, false), Ok(3.0));
    assert_eq!(
        value_from(&partial, true, false),
        Err("the answer lacks ApproximateNumberOfMessagesNotVisible".to_owned())
    );
    let junk: HashMap<A, String> = [(A::ApproximateNumberOfMessages, "many".to_owned())].into();
    assert_eq!(
        value_from(&junk, false, false),
        Err("ApproximateNumberOfMessages is not a count: \"many\"".to_owned())
    );
}
