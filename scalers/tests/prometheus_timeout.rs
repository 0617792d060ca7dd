//! The trigger's own `timeout` bounds its measurement, also when it is longer than the caller's
//! default bound (the operator's `--scaler-timeout`): a slow Prometheus-compatible endpoint on
//! loopback answers after the default bound but within the trigger's timeout.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod prometheus_common;

use std::time::Duration;

use chrono::Utc;
use ebb_scalers::{Measurement, ScalerError, measure_with_timeout};
use ebb_testbackends::http_stub::{self, Answer};
use prometheus_common::scaler;

const ANSWER: &str = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"7"]}]}}"#;

/// Serves every request with `ANSWER` after `delay`; returns the base URL.
async fn slow_server(delay: Duration) -> String {
    http_stub::serve(move |_| Answer::json(200, ANSWER).after(delay)).await.unwrap()
}

fn md(server: &str, timeout: Option<&str>) -> Vec<(String, String)> {
    let mut v = vec![
        ("serverAddress".to_owned(), server.to_owned()),
        ("query".to_owned(), "vector(7)".to_owned()),
        ("threshold".to_owned(), "5".to_owned()),
    ];
    if let Some(t) = timeout {
        v.push(("timeout".to_owned(), t.to_owned()));
    }
    v
}

fn build(md: &[(String, String)]) -> std::sync::Arc<dyn ebb_scalers::Scaler> {
    let md: Vec<(&str, &str)> = md.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    scaler(&md, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_timeout_longer_than_the_default_bound_is_honoured() {
    let server = slow_server(Duration::from_millis(1500)).await;
    let global = Duration::from_millis(700);

    // timeout: 4000 ms (KEDA's unit) — the value arrives although the default bound is 700 ms.
    let s = build(&md(&server, Some("4000")));
    let r = measure_with_timeout(&s, Utc::now(), global).await;
    assert_eq!(r, Ok(Measurement { value: 7.0, active: true }));

    // Without a trigger timeout the caller's bound applies.
    let s = build(&md(&server, None));
    let r = measure_with_timeout(&s, Utc::now(), global).await;
    assert_eq!(r, Err(ScalerError::Timeout(global)));

    // A trigger timeout shorter than the answer still fails, naming the trigger's bound.
    let s = build(&md(&server, Some("300")));
    let r = measure_with_timeout(&s, Utc::now(), global).await;
    assert_eq!(r, Err(ScalerError::Timeout(Duration::from_millis(300))));
}
