//! Decoding of Prometheus query answers: every result type, empty and multi-series vectors,
//! special float values, error envelopes and foreign bodies.

use super::*;

#[test]
fn values_from_vector_and_scalar() {
    let cases: &[(&str, f64)] = &[
        (
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000.5,"42.25"]}]}}"#,
            42.25,
        ),
        (
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"x"},"value":[1,"-3"]}]}}"#,
            -3.0,
        ),
        (r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"7"]}}"#, 7.0),
        (
            r#"{"status":"success","warnings":["w"],"data":{"resultType":"scalar","result":[1,"1e3"]}}"#,
            1000.0,
        ),
    ];
    for (body, want) in cases {
        assert_eq!(decode(body.as_bytes()), Ok(Decoded::Value(*want)), "{body}");
    }
}

#[test]
fn special_values_are_passed_through_for_the_caller() {
    for (text, check) in [
        ("NaN", f64::is_nan as fn(f64) -> bool),
        ("+Inf", |v: f64| v == f64::INFINITY),
        ("-Inf", |v: f64| v == f64::NEG_INFINITY),
    ] {
        let body =
            format!(r#"{{"status":"success","data":{{"resultType":"scalar","result":[1,"{text}"]}}}}"#);
        match decode(body.as_bytes()) {
            Ok(Decoded::Value(v)) => assert!(check(v), "{text} decoded as {v}"),
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn empty_vector_is_empty() {
    let body = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
    assert_eq!(decode(body.as_bytes()), Ok(Decoded::Empty));
}

#[test]
fn several_series_name_the_count_and_suggest_aggregation() {
    let body = r#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{"service":"a"},"value":[1,"1"]},
        {"metric":{"service":"b"},"value":[1,"2"]},
        {"metric":{"service":"c"},"value":[1,"3"]},
        {"metric":{"service":"d"},"value":[1,"4"]}]}}"#;
    let e = decode(body.as_bytes()).unwrap_err();
    assert_eq!(
        e,
        DecodeError::MultipleSeries {
            count: 4,
            examples: vec![
                "{service=\"a\"}".to_owned(),
                "{service=\"b\"}".to_owned(),
                "{service=\"c\"}".to_owned()
            ]
        }
    );
    let text = e.to_string();
    assert!(text.starts_with("the query returned 4 series but must return exactly one value"), "{text}");
    assert!(text.contains("sum(<query>)") && text.contains("{service=\"c\"}, …"), "{text}");
}

#[test]
fn other_result_types_are_errors() {
    let matrix = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"],[2,"2"]]}]}}"#;
    let e = decode(matrix.as_bytes()).unwrap_err();
    assert_eq!(e, DecodeError::UnexpectedType("matrix".into()));
    assert!(e.to_string().contains("range vector (matrix)"), "{e}");
    let string = r#"{"status":"success","data":{"resultType":"string","result":[1,"hello"]}}"#;
    assert_eq!(
        decode(string.as_bytes()).unwrap_err().to_string(),
        "the query returned a string; it must return a single-element vector or a scalar"
    );
}

#[test]
fn malformed_json_and_envelopes() {
    let cases: &[(&str, &str)] = &[
        (r#"{"status":"success"}"#, "malformed Prometheus answer: no \"data\" field"),
        (
            r#"{"status":"success","data":{"resultType":"vector","result":{}}}"#,
            "vector result is not an array",
        ),
        (
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{}}]}}"#,
            "has no \"value\"",
        ),
        (
            r#"{"status":"success","data":{"resultType":"scalar","result":[1,2]}}"#,
            "sample is not [time, \"value\"]",
        ),
        (
            r#"{"status":"success","data":{"resultType":"scalar","result":[1,"abc"]}}"#,
            "\"abc\" is not a number",
        ),
        (r#"{"status":"succ"#, "malformed Prometheus answer: EOF while parsing"),
        (
            r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#,
            "Prometheus error (bad_data): parse error",
        ),
    ];
    for (body, want) in cases {
        let e = decode(body.as_bytes()).unwrap_err().to_string();
        assert!(e.contains(want), "{body}: {e}");
    }
}

#[test]
fn foreign_bodies_are_described_briefly() {
    let html = "<!DOCTYPE html>\n<html><head><title>502 Bad   Gateway</title></head><body><h1>nginx</h1></body></html>";
    assert_eq!(
        decode(html.as_bytes()).unwrap_err(),
        DecodeError::NotJson { excerpt: "an HTML page titled \"502 Bad Gateway\"".into() }
    );
    let untitled = "<html><body><p>Sign in</p><p>to continue</p></body></html>";
    assert_eq!(excerpt(untitled.as_bytes()), "an HTML page: \"Sign in to continue\"");
    assert_eq!(excerpt(b"  \n"), "empty body");
    let long = "x".repeat(5000);
    let e = excerpt(long.as_bytes());
    assert!(e.chars().count() < EXCERPT_CHARS + 5 && e.ends_with("…\""), "{e}");
    assert_eq!(excerpt(b"Unauthorized\n"), "\"Unauthorized\"");
}

#[test]
fn error_text_prefers_prometheus_error() {
    let body = br#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error: unclosed left parenthesis"}"#;
    assert_eq!(
        error_text(body),
        "bad_data: invalid parameter \"query\": 1:5: parse error: unclosed left parenthesis"
    );
    assert_eq!(error_text(b"404 page not found\n"), "\"404 page not found\"");
}
