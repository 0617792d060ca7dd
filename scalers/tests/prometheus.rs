//! The prometheus scaler against a real Prometheus (started by the test) scraping an exporter in
//! the test process: activation boundary, empty results both ways, several series, scalars,
//! NaN, range vectors, a query Prometheus rejects, a wrong path and a server that is down.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod prometheus_common;

use ebb_scalers::{Measurement, ScalerError};
use ebb_testbackends::prometheus::{Exporter, Options, Prometheus};
use prometheus_common::{config, measure, measure_until, measure_value, scaler};

const EXPOSITION: &str = "\
# TYPE ebb_test_value gauge
ebb_test_value 5
# TYPE ebb_multi gauge
ebb_multi{service=\"a\"} 1
ebb_multi{service=\"b\"} 2
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_a_real_prometheus() {
    let exporter = Exporter::start(EXPOSITION).await.unwrap();
    let prom = Prometheus::start(&Options::scraping(&[exporter.addr()])).unwrap();
    let server = prom.url();
    let base = |query: &'static str| vec![("serverAddress", server.as_str()), ("query", query)];

    // Threshold and activation: a value equal to activationThreshold is not active.
    let md = [base("ebb_test_value"), vec![("threshold", "10"), ("activationThreshold", "5")]].concat();
    let cfg = config(&md, &[]);
    assert_eq!((cfg.target(), cfg.activation_target()), (10.0, 5.0));
    let s = cfg.build().unwrap();
    let m = measure_value(&s, 5.0).await;
    assert_eq!(m, Ok(Measurement { value: 5.0, active: false }), "{}", prom.log_tail());
    exporter.set(&EXPOSITION.replace("ebb_test_value 5", "ebb_test_value 5.25"));
    assert_eq!(measure_value(&s, 5.25).await, Ok(Measurement { value: 5.25, active: true }));

    // Empty result: 0 by default, an error when ignoreNullValues is false.
    let absent = base("ebb_no_such_metric{job=\"ebb-test\"}");
    let s = scaler(&[absent.clone(), vec![("threshold", "1")]].concat(), &[]);
    assert_eq!(measure(&s).await, Ok(Measurement { value: 0.0, active: false }));
    let s = scaler(&[absent, vec![("threshold", "1"), ("ignoreNullValues", "false")]].concat(), &[]);
    match measure(&s).await {
        Err(ScalerError::InvalidResponse(m)) => {
            assert!(m.contains(&format!("the query on Prometheus at {server} returned no data")), "{m}");
            assert!(m.contains("ignoreNullValues is false"), "{m}");
        }
        other => panic!("empty result with ignoreNullValues=false: {other:?}"),
    }

    // Several series: an error naming how many and suggesting an aggregation.
    let s = scaler(&[base("ebb_multi"), vec![("threshold", "1")]].concat(), &[]);
    let r =
        measure_until(&s, |r| matches!(r, Err(ScalerError::InvalidResponse(m)) if m.contains("2 series")))
            .await;
    match r {
        Err(ScalerError::InvalidResponse(m)) => {
            assert!(m.starts_with("the query returned 2 series but must return exactly one value"), "{m}");
            // Label names only, never their values.
            assert!(
                m.contains("sum(<query>)") && m.contains("series labels: ") && m.contains("service"),
                "{m}"
            );
            assert!(!m.contains("service=\"a\""), "{m}");
        }
        other => panic!("multi-series: {other:?}"),
    }
    // Aggregated, the same series give one value.
    let s = scaler(&[base("sum(ebb_multi)"), vec![("threshold", "1")]].concat(), &[]);
    assert_eq!(measure_value(&s, 3.0).await, Ok(Measurement { value: 3.0, active: true }));

    // Scalar results.
    let s = scaler(&[base("scalar(ebb_test_value) * 2"), vec![("threshold", "1")]].concat(), &[]);
    assert_eq!(measure(&s).await, Ok(Measurement { value: 10.5, active: true }));

    // NaN: 0 with ignoreNullValues (the default), an error without.
    let s = scaler(&[base("0/0"), vec![("threshold", "1")]].concat(), &[]);
    assert_eq!(measure(&s).await, Ok(Measurement { value: 0.0, active: false }));
    let s = scaler(&[base("0/0"), vec![("threshold", "1"), ("ignoreNullValues", "false")]].concat(), &[]);
    match measure(&s).await {
        Err(ScalerError::InvalidResponse(m)) => assert!(m.contains("returned NaN"), "{m}"),
        other => panic!("NaN: {other:?}"),
    }

    // A range vector is not one value.
    let s = scaler(&[base("ebb_test_value[1m]"), vec![("threshold", "1")]].concat(), &[]);
    match measure(&s).await {
        Err(ScalerError::InvalidResponse(m)) => assert!(m.contains("range vector (matrix)"), "{m}"),
        other => panic!("matrix: {other:?}"),
    }

    // A query Prometheus rejects: its status and its own error text.
    let s = scaler(&[base("sum(ebb_test_value"), vec![("threshold", "1")]].concat(), &[]);
    match measure(&s).await {
        Err(ScalerError::Config(m)) => {
            assert!(
                m.starts_with(&format!("Prometheus at {server} answered 400 Bad Request: bad_data: ")),
                "{m}"
            );
            assert!(m.contains("parse error"), "{m}");
        }
        other => panic!("bad PromQL: {other:?}"),
    }

    // A wrong path prefix.
    let wrong = format!("{server}/not-prometheus");
    let s = scaler(&[("serverAddress", wrong.as_str()), ("query", "up"), ("threshold", "1")], &[]);
    match measure(&s).await {
        Err(ScalerError::NotFound(m)) => assert!(m.contains("answered 404 Not Found"), "{m}"),
        other => panic!("404: {other:?}"),
    }

    // The server going away: Unreachable, naming the address.
    drop(prom);
    let s = scaler(&[("serverAddress", server.as_str()), ("query", "up"), ("threshold", "1")], &[]);
    match measure(&s).await {
        Err(ScalerError::Unreachable(m)) => {
            assert!(m.starts_with(&format!("cannot connect to Prometheus at {server}: ")), "{m}");
            assert!(m.to_lowercase().contains("connection refused"), "{m}");
        }
        other => panic!("down: {other:?}"),
    }
}
