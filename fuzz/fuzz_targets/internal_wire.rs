//! The operator's internal endpoint, both directions of its wire: the metrics API server reads
//! the operator's answers (`MetricValue` JSON, `ErrorBody` with a status through
//! `ValueError::from_response`), and request paths are built with `metric_path` and read back
//! by the metrics API server's router (`routes::route`, `routes::decode`). Properties: no panic;
//! a decoded `MetricValue` survives a round trip; a path built from any three names decodes to
//! the same names; an error message built from a body stays short.
#![no_main]

use ebb_api::internal::{ErrorBody, MetricValue, ValueError, metric_path};
use ebb_metrics_apiserver::routes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (status, body) = match data {
        [a, b, rest @ ..] => (u16::from_be_bytes([*a, *b]), rest),
        _ => return,
    };
    if let Ok(v) = serde_json::from_slice::<MetricValue>(body) {
        let json = serde_json::to_vec(&v).expect("a decoded MetricValue serializes");
        let back: MetricValue = serde_json::from_slice(&json).expect("a serialized MetricValue decodes");
        assert_eq!(back.metric_name, v.metric_name);
        assert_eq!(back.timestamp, v.timestamp);
        assert_eq!(back.source, v.source);
        let tolerance = v.value.abs() * 1e-15;
        assert!((back.value - v.value).abs() <= tolerance, "{} became {}", v.value, back.value);
    }
    let _ = serde_json::from_slice::<ErrorBody>(body);
    let e = ValueError::from_response(status, body);
    let message = e.to_string();
    assert!(message.chars().count() <= 1024 || !matches!(e, ValueError::Unexpected { .. }), "{message}");
    let _ = e.to_body();
    let _ = e.status();

    // Paths: the same bytes as three names, and as a path the router reads.
    let Ok(text) = std::str::from_utf8(body) else { return };
    let _ = routes::route(text);
    let mut names = text.splitn(3, '\u{0}');
    let (ns, name, metric) =
        (names.next().unwrap_or(""), names.next().unwrap_or(""), names.next().unwrap_or(""));
    if let Some(path) = metric_path(ns, name, metric) {
        let segments: Vec<&str> = path.split('/').collect();
        let [_, "v1", "namespaces", a, "scaledobjects", b, "metrics", c] = segments[..] else {
            panic!("metric_path({ns:?}, {name:?}, {metric:?}) = {path:?} has the wrong shape");
        };
        for (segment, want) in [(a, ns), (b, name), (c, metric)] {
            assert_eq!(routes::decode(segment).as_deref(), Some(want), "segment {segment:?} of {path:?}");
        }
        let _ = routes::route(&path);
    }
});
