//! Pure decoding of Prometheus's `/api/v1/query` answer: a vector of at most one sample or a
//! scalar gives a value (NaN and ±Inf included, the caller applies `ignoreNullValues`); an empty
//! vector is `Empty`; several series, range vectors, strings, error envelopes and bodies that are
//! not Prometheus JSON (an HTML error page from a proxy, say) are `DecodeError`s whose text is
//! short and says what to change.
//!
//! `serverAddress` is chosen by whoever writes the ScaledObject, and the messages built here end
//! up in its status and Events, which that person can read: so a message never carries the
//! answer's text. It says what kind of body came (HTML, JSON, text, its size) and, from the
//! answer's structure, only what is known to be safe to show: Prometheus's own error text (its
//! error envelope with a known `errorType`, describing the query the trigger sent), result type
//! names Prometheus defines, and label names that follow Prometheus's label-name syntax.

use std::fmt;

use serde::Deserialize;
use serde_json::Value;

/// A successful query's value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decoded {
    /// The single sample's value (may be NaN or infinite).
    Value(f64),
    /// The query matched no series.
    Empty,
}

/// Why an answer does not yield one value.
#[derive(Clone, Debug, PartialEq)]
pub enum DecodeError {
    /// The instant vector had several series; `labels` are the label names of the first few
    /// (names only, never values).
    MultipleSeries { count: usize, labels: Vec<String> },
    /// A result type other than vector or scalar (one Prometheus defines, or `None`).
    UnexpectedType(Option<&'static str>),
    /// Prometheus's own error envelope (`status: error`); type and text only when the type is one
    /// Prometheus defines.
    Prometheus { error_type: Option<&'static str>, error: Option<String> },
    /// JSON that does not follow the query API's shape (our own description).
    Malformed(String),
    /// Not JSON at all; what kind of body came instead.
    NotJson { body: String },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MultipleSeries { count, labels } => {
                write!(
                    f,
                    "the query returned {count} series but must return exactly one value; aggregate it, \
                     for example sum(<query>) or max(<query>) instead of sum(...) by (label)"
                )?;
                if !labels.is_empty() {
                    write!(f, " (series labels: {})", labels.join(", "))?;
                }
                Ok(())
            }
            Self::UnexpectedType(Some("matrix")) => f.write_str(
                "the query returned a range vector (matrix); it must be an instant query returning one value, \
                 for example sum(rate(x[2m])) rather than x[2m]",
            ),
            Self::UnexpectedType(Some(t)) => {
                write!(f, "the query returned a {t}; it must return a single-element vector or a scalar")
            }
            Self::UnexpectedType(None) => f.write_str(
                "the answer has a result type Prometheus does not define; it must be a single-element vector \
                 or a scalar",
            ),
            Self::Prometheus { error_type: Some(t), error: Some(e) } => write!(f, "Prometheus error ({t}): {e}"),
            Self::Prometheus { error_type: Some(t), error: None } => write!(f, "Prometheus error ({t})"),
            Self::Prometheus { error_type: None, .. } => {
                f.write_str("an error answer of a type Prometheus does not define (its text is not shown)")
            }
            Self::Malformed(m) => write!(f, "malformed Prometheus answer: {m}"),
            Self::NotJson { body } => write!(f, "the answer is not Prometheus JSON: {body}"),
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    status: Option<String>,
    data: Option<Data>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Value,
}

/// How many series' label names an error shows.
const EXAMPLES: usize = 3;
/// Most label names an error shows.
const MAX_LABELS: usize = 8;
/// Longest Prometheus error text shown, in characters.
pub const EXCERPT_CHARS: usize = 200;

/// The `errorType`s of Prometheus's HTTP API (`web/api/v1`), the only ones whose text is shown.
const ERROR_TYPES: &[&str] = &[
    "timeout",
    "canceled",
    "execution",
    "bad_data",
    "internal",
    "unavailable",
    "not_found",
    "not_acceptable",
];
/// The result types of Prometheus's query API.
const RESULT_TYPES: &[&str] = &["vector", "scalar", "matrix", "string"];

fn known(list: &[&'static str], value: &str) -> Option<&'static str> {
    list.iter().copied().find(|k| *k == value)
}

/// Decodes a 2xx answer's body.
pub fn decode(body: &[u8]) -> Result<Decoded, DecodeError> {
    let env: Envelope = match serde_json::from_slice(body) {
        Ok(e) => e,
        Err(e) if looks_like_json(body) => return Err(DecodeError::Malformed(json_problem(&e))),
        Err(_) => return Err(DecodeError::NotJson { body: describe_body(body) }),
    };
    if env.status.as_deref() == Some("error") || env.error.is_some() {
        return Err(prometheus_error(env.error_type.as_deref(), env.error.as_deref()));
    }
    let data = env.data.ok_or_else(|| DecodeError::Malformed("no \"data\" field".to_owned()))?;
    match data.result_type.as_str() {
        "vector" => decode_vector(&data.result),
        "scalar" => sample_value(&data.result).map(Decoded::Value),
        other => Err(DecodeError::UnexpectedType(known(RESULT_TYPES, other))),
    }
}

fn prometheus_error(error_type: Option<&str>, error: Option<&str>) -> DecodeError {
    let error_type = error_type.and_then(|t| known(ERROR_TYPES, t));
    let error = error_type.and(error).map(shorten);
    DecodeError::Prometheus { error_type, error }
}

fn decode_vector(result: &Value) -> Result<Decoded, DecodeError> {
    let series = result
        .as_array()
        .ok_or_else(|| DecodeError::Malformed("vector result is not an array".to_owned()))?;
    match series.as_slice() {
        [] => Ok(Decoded::Empty),
        [one] => {
            let value = one
                .get("value")
                .ok_or_else(|| DecodeError::Malformed("vector element has no \"value\"".to_owned()))?;
            sample_value(value).map(Decoded::Value)
        }
        many => Err(DecodeError::MultipleSeries { count: many.len(), labels: label_names(many) }),
    }
}

/// `[<unix time>, "<value>"]`, the value as Prometheus writes it ("1.5", "NaN", "+Inf", "-Inf").
fn sample_value(v: &Value) -> Result<f64, DecodeError> {
    let text = match v.as_array().map(Vec::as_slice) {
        Some([_, Value::String(s)]) => s,
        _ => return Err(DecodeError::Malformed("a sample is not [time, \"value\"]".to_owned())),
    };
    text.parse::<f64>().map_err(|_| DecodeError::Malformed("a sample value is not a number".to_owned()))
}

/// The label names of the first few series, sorted, without duplicates; names that do not
/// follow Prometheus's label-name syntax are left out.
fn label_names(series: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = series
        .iter()
        .take(EXAMPLES)
        .filter_map(|s| s.get("metric").and_then(Value::as_object))
        .flat_map(|m| m.keys())
        .filter(|k| is_label_name(k))
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    names.truncate(MAX_LABELS);
    names
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, at most 64 characters.
fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    s.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn looks_like_json(body: &[u8]) -> bool {
    matches!(body.iter().find(|b| !b.is_ascii_whitespace()), Some(b'{' | b'['))
}

/// What is wrong with JSON, in our own words (serde's messages quote the input).
fn json_problem(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Eof => "EOF while parsing (the answer ends early)",
        serde_json::error::Category::Syntax => "invalid JSON syntax",
        serde_json::error::Category::Data => "JSON of an unexpected shape",
        serde_json::error::Category::Io => "unreadable",
    };
    format!("{what} at line {}, column {}", e.line(), e.column())
}

/// The kind and size of a body that is not what was expected, never its text: "an HTML page
/// (1234 bytes)", "JSON (56 bytes)", "text (7 bytes)", "binary data (9 bytes)", "an empty body".
pub fn describe_body(body: &[u8]) -> String {
    if body.iter().all(u8::is_ascii_whitespace) {
        return "an empty body".to_owned();
    }
    let n = body.len();
    let head = String::from_utf8_lossy(&body[..n.min(1024)]).to_ascii_lowercase();
    let trimmed = head.trim_start();
    let kind =
        if trimmed.starts_with("<!doctype html") || trimmed.starts_with("<html") || head.contains("<body") {
            "an HTML page"
        } else if looks_like_json(body) {
            "JSON"
        } else if std::str::from_utf8(body).is_ok() {
            "text"
        } else {
            "binary data"
        };
    let unit = if n == 1 { "byte" } else { "bytes" };
    format!("{kind} ({n} {unit}, not shown)")
}

/// Collapses whitespace and control characters and cuts to `EXCERPT_CHARS` characters.
pub fn shorten(s: &str) -> String {
    let one_line = s.split(|c: char| c.is_whitespace() || c.is_control()).filter(|w| !w.is_empty());
    let one_line = one_line.collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > EXCERPT_CHARS {
        format!("{}…", one_line.chars().take(EXCERPT_CHARS).collect::<String>())
    } else {
        one_line
    }
}

/// Text for a non-2xx answer: Prometheus's `errorType: error` when the body is its JSON error
/// envelope with a type Prometheus defines, otherwise only the kind and size of the body.
pub fn error_text(body: &[u8]) -> String {
    match serde_json::from_slice::<Envelope>(body) {
        Ok(Envelope { error: Some(e), error_type: Some(t), .. }) if known(ERROR_TYPES, &t).is_some() => {
            format!("{t}: {}", shorten(&e))
        }
        _ => describe_body(body),
    }
}

#[cfg(test)]
#[path = "response_tests.rs"]
mod tests;
