#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Credentials never leak: with every tracing event of the SDK and ebb captured (TRACE level,
//! into a buffer), failing calls against moto checking credentials (access denied), a missing
//! queue and an endpoint that is down produce errors naming the queue or metric and the AWS code,
//! while the secret key and session token appear in no log line, error or Debug output.

mod aws_support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use aws_support::{SECRET_KEY, SESSION_TOKEN, closed_port, context, measure, parse};
use ebb_scalers::ScalerError;
use ebb_testbackends::moto::Moto;
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn assert_clean(what: &str, text: &str) {
    assert!(!text.contains(SECRET_KEY), "{what} shows the secret key:\n{text}");
    assert!(!text.contains(SESSION_TOKEN), "{what} shows the session token:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_appear_in_no_log_error_or_debug_output() {
    let logs = Buffer::default();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .with_ansi(false)
        .init();

    // moto checking credentials the way AWS does: ebb's keys are unknown to it.
    let moto = Moto::start_with_env(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]).unwrap();
    let ep = moto.endpoint();
    let down = format!("http://127.0.0.1:{}", closed_port());
    let ctx = context(true);
    let mut errors = Vec::new();
    let triggers = [
        (
            "aws-sqs-queue",
            vec![
                ("queueURL", "https://sqs.us-east-1.amazonaws.com/123456789012/orders"),
                ("awsEndpoint", ep.as_str()),
            ],
        ),
        (
            "aws-sqs-queue",
            vec![("queueURL", "orders"), ("awsRegion", "us-east-1"), ("awsEndpoint", ep.as_str())],
        ),
        (
            "aws-sqs-queue",
            vec![("queueURL", "orders"), ("awsRegion", "us-east-1"), ("awsEndpoint", down.as_str())],
        ),
        (
            "aws-cloudwatch",
            vec![
                ("namespace", "AWS/SQS"),
                ("metricName", "ApproximateNumberOfMessagesVisible"),
                ("dimensionName", "QueueName"),
                ("dimensionValue", "orders"),
                ("targetMetricValue", "5"),
                ("awsRegion", "us-east-1"),
                ("awsEndpoint", ep.as_str()),
            ],
        ),
    ];
    for (type_, meta) in &triggers {
        let cfg = parse(type_, meta, &ctx);
        assert_clean("describe", &cfg.describe());
        assert_clean("config Debug", &format!("{cfg:?} {cfg:#?}"));
        let scaler = cfg.build().unwrap();
        assert_clean("scaler Debug", &format!("{scaler:?} {scaler:#?}"));
        let e = measure(&cfg).await.unwrap_err();
        assert_clean("error", &format!("{e} {e:?}"));
        errors.push(e);
    }
    eprintln!("{errors:#?}");
    assert!(
        matches!(&errors[0], ScalerError::Unauthorized(m) if m.starts_with("SQS queue \"orders\": GetQueueAttributes: InvalidClientTokenId: ")),
        "{:?}",
        errors[0]
    );
    assert!(
        matches!(&errors[1], ScalerError::Unauthorized(m) if m.starts_with("SQS queue \"orders\": GetQueueUrl: InvalidClientTokenId: ")),
        "{:?}",
        errors[1]
    );
    assert!(
        matches!(&errors[2], ScalerError::Unreachable(m) if m.starts_with("SQS queue \"orders\": GetQueueUrl: dispatch failure")),
        "{:?}",
        errors[2]
    );
    assert!(
        matches!(&errors[3], ScalerError::Unauthorized(m) if m.starts_with("CloudWatch metric AWS/SQS/ApproximateNumberOfMessagesVisible: GetMetricData: InvalidClientTokenId: ")),
        "{:?}",
        errors[3]
    );
    assert_eq!(
        errors.iter().map(ScalerError::reason).collect::<Vec<_>>(),
        ["Unauthorized", "Unauthorized", "Unreachable", "Unauthorized"]
    );

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    // The capture works: the SDK logged its requests, including the signing step.
    assert!(text.lines().count() > 20, "too few log lines captured:\n{text}");
    assert!(text.contains("entering 'transmit' phase"), "no request trace captured");
    assert_clean("the logs", &text);
}
