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
        {"metric":{"service":"a","job":"x"},"value":[1,"1"]},
        {"metric":{"service":"b","job":"x"},"value":[1,"2"]},
        {"metric":{"service":"c","zone":"z"},"value":[1,"3"]},
        {"metric":{"service":"d","extra":"e"},"value":[1,"4"]}]}}"#;
    let e = decode(body.as_bytes()).unwrap_err();
    assert_eq!(
        e,
        DecodeError::MultipleSeries {
            count: 4,
            labels: vec!["job".to_owned(), "service".to_owned(), "zone".to_owned()]
        }
    );
    let text = e.to_string();
    assert!(text.starts_with("the query returned 4 series but must return exactly one value"), "{text}");
    assert!(text.contains("sum(<query>)") && text.ends_with("(series labels: job, service, zone)"), "{text}");
    // Label values never appear; names outside Prometheus's syntax are left out.
    assert!(!text.contains("\"a\"") && !text.contains("=a"), "{text}");
    let odd = r#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{"not a name":"1","ok_1":"2"},"value":[1,"1"]},{"metric":{},"value":[1,"2"]}]}}"#;
    assert_eq!(
        decode(odd.as_bytes()).unwrap_err(),
        DecodeError::MultipleSeries { count: 2, labels: vec!["ok_1".to_owned()] }
    );
}

#[test]
fn other_result_types_are_errors() {
    let matrix = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"],[2,"2"]]}]}}"#;
    let e = decode(matrix.as_bytes()).unwrap_err();
    assert_eq!(e, DecodeError::UnexpectedType(Some("matrix")));
    assert!(e.to_string().contains("range vector (matrix)"), "{e}");
    let string = r#"{"status":"success","data":{"resultType":"string","result":[1,"hello"]}}"#;
    assert_eq!(
        decode(string.as_bytes()).unwrap_err().to_string(),
        "the query returned a string; it must return a single-element vector or a scalar"
    );
    let odd = r#"{"status":"success","data":{"resultType":"secret-thing","result":[]}}"#;
    let e = decode(odd.as_bytes()).unwrap_err();
    assert_eq!(e, DecodeError::UnexpectedType(None));
    assert!(!e.to_string().contains("secret-thing"), "{e}");
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
            "a sample is not [time, \"value\"]",
        ),
        (
            r#"{"status":"success","data":{"resultType":"scalar","result":[1,"abc"]}}"#,
            "a sample value is not a number",
        ),
        (
            r#"{"status":"succ"#,
            "malformed Prometheus answer: EOF while parsing (the answer ends early) at line 1",
        ),
        (r#"{"status":7}"#, "malformed Prometheus answer: JSON of an unexpected shape at line 1, column 11"),
        (r#"{"status" "x"}"#, "malformed Prometheus answer: invalid JSON syntax at line 1"),
        (
            r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#,
            "Prometheus error (bad_data): parse error",
        ),
        (
            r#"{"status":"error","errorType":"internal-secret","error":"token=abc"}"#,
            "an error answer of a type Prometheus does not define (its text is not shown)",
        ),
        (r#"{"error":"token=abc"}"#, "an error answer of a type Prometheus does not define"),
    ];
    for (body, want) in cases {
        let e = decode(body.as_bytes()).unwrap_err().to_string();
        assert!(e.contains(want), "{body}: {e}");
        assert!(!e.contains("abc") && !e.contains("secret"), "{body}: {e}");
    }
}

#[test]
fn foreign_bodies_are_described_by_kind_and_size_only() {
    let html = "<!DOCTYPE html>\n<html><head><title>502 Bad   Gateway</title></head><body><h1>nginx</h1></body></html>";
    assert_eq!(
        decode(html.as_bytes()).unwrap_err(),
        DecodeError::NotJson { body: format!("an HTML page ({} bytes, not shown)", html.len()) }
    );
    let untitled = "<html><body><p>Sign in</p><p>to continue</p></body></html>";
    assert_eq!(
        describe_body(untitled.as_bytes()),
        format!("an HTML page ({} bytes, not shown)", untitled.len())
    );
    assert_eq!(describe_body(b"  \n"), "an empty body");
    assert_eq!(describe_body(b"Unauthorized\n"), "text (13 bytes, not shown)");
    assert_eq!(describe_body(&[0xff, 0x00, 0x12]), "binary data (3 bytes, not shown)");
    assert_eq!(describe_body(b"{\"a\":1}"), "JSON (7 bytes, not shown)");
    assert_eq!(describe_body(b"x"), "text (1 byte, not shown)");
    let long = "x".repeat(5000);
    assert_eq!(describe_body(long.as_bytes()), "text (5000 bytes, not shown)");
}

#[test]
fn error_text_shows_only_prometheus_error_envelopes() {
    let body = br#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error: unclosed left parenthesis"}"#;
    assert_eq!(
        error_text(body),
        "bad_data: invalid parameter \"query\": 1:5: parse error: unclosed left parenthesis"
    );
    assert_eq!(error_text(b"404 page not found\n"), "text (19 bytes, not shown)");
    assert_eq!(error_text(br#"{"error":"x","errorType":"custom"}"#), "JSON (34 bytes, not shown)");
    let long = format!(r#"{{"status":"error","errorType":"execution","error":"{}"}}"#, "y\\n".repeat(500));
    let text = error_text(long.as_bytes());
    assert!(text.chars().count() <= "execution: ".len() + EXCERPT_CHARS + 1 && text.ends_with('…'), "{text}");
    assert!(!text.contains('\n'), "{text}");
}
