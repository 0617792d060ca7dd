//! Pure decoding of Prometheus's `/api/v1/query` answer: a vector of at most one sample or a
//! scalar gives a value (NaN and ±Inf included, the caller applies `ignoreNullValues`); an empty
//! vector is `Empty`; several series, range vectors, strings, error envelopes and bodies that are
//! not Prometheus JSON (an HTML error page from a proxy, say) are `DecodeError`s whose text is
//! short and says what to change.

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
    /// The instant vector had several series.
    MultipleSeries { count: usize, examples: Vec<String> },
    /// A result type other than vector or scalar.
    UnexpectedType(String),
    /// Prometheus's own error envelope (`status: error`).
    Prometheus { error_type: Option<String>, error: String },
    /// JSON that does not follow the query API's shape.
    Malformed(String),
    /// Not JSON at all; the excerpt says what came instead.
    NotJson { excerpt: String },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MultipleSeries { count, examples } => {
                write!(
                    f,
                    "the query returned {count} series but must return exactly one value; aggregate it, \
                     for example sum(<query>) or max(<query>) instead of sum(...) by (label)"
                )?;
                if !examples.is_empty() {
                    let more = if *count > examples.len() { ", …" } else { "" };
                    write!(f, " (series: {}{more})", examples.join(", "))?;
                }
                Ok(())
            }
            Self::UnexpectedType(t) if t == "matrix" => f.write_str(
                "the query returned a range vector (matrix); it must be an instant query returning one value, \
                 for example sum(rate(x[2m])) rather than x[2m]",
            ),
            Self::UnexpectedType(t) => {
                write!(f, "the query returned a {t}; it must return a single-element vector or a scalar")
            }
            Self::Prometheus { error_type: Some(t), error } => write!(f, "Prometheus error ({t}): {error}"),
            Self::Prometheus { error_type: None, error } => write!(f, "Prometheus error: {error}"),
            Self::Malformed(m) => write!(f, "malformed Prometheus answer: {m}"),
            Self::NotJson { excerpt } => write!(f, "the answer is not Prometheus JSON: {excerpt}"),
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

/// How many series labels an error shows.
const EXAMPLES: usize = 3;
/// Longest excerpt of a foreign body or error text, in characters.
pub const EXCERPT_CHARS: usize = 200;

/// Decodes a 2xx answer's body.
pub fn decode(body: &[u8]) -> Result<Decoded, DecodeError> {
    let env: Envelope = match serde_json::from_slice(body) {
        Ok(e) => e,
        Err(e) if looks_like_json(body) => return Err(DecodeError::Malformed(e.to_string())),
        Err(_) => return Err(DecodeError::NotJson { excerpt: excerpt(body) }),
    };
    if env.status.as_deref() == Some("error") || env.error.is_some() {
        return Err(DecodeError::Prometheus {
            error_type: env.error_type,
            error: shorten(env.error.as_deref().unwrap_or("(no error text)")),
        });
    }
    let data = env.data.ok_or_else(|| DecodeError::Malformed("no \"data\" field".to_owned()))?;
    match data.result_type.as_str() {
        "vector" => decode_vector(&data.result),
        "scalar" => sample_value(&data.result).map(Decoded::Value),
        other => Err(DecodeError::UnexpectedType(other.to_owned())),
    }
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
        many => Err(DecodeError::MultipleSeries {
            count: many.len(),
            examples: many.iter().take(EXAMPLES).map(|s| labels(s.get("metric"))).collect(),
        }),
    }
}

/// `[<unix time>, "<value>"]`, the value as Prometheus writes it ("1.5", "NaN", "+Inf", "-Inf").
fn sample_value(v: &Value) -> Result<f64, DecodeError> {
    let text = match v.as_array().map(Vec::as_slice) {
        Some([_, Value::String(s)]) => s,
        _ => {
            return Err(DecodeError::Malformed(format!(
                "sample is not [time, \"value\"]: {}",
                shorten(&v.to_string())
            )));
        }
    };
    text.parse::<f64>()
        .map_err(|_| DecodeError::Malformed(format!("sample value {:?} is not a number", shorten(text))))
}

/// `{a="1", b="2"}` from a series' label object.
fn labels(metric: Option<&Value>) -> String {
    let Some(Value::Object(m)) = metric else { return "{}".to_owned() };
    let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}={}", v)).collect();
    shorten(&format!("{{{}}}", parts.join(", ")))
}

fn looks_like_json(body: &[u8]) -> bool {
    matches!(body.iter().find(|b| !b.is_ascii_whitespace()), Some(b'{' | b'['))
}

/// A short, single-line description of a body that is not what was expected: an HTML page's
/// title (or its text), otherwise the first characters.
pub fn excerpt(body: &[u8]) -> String {
    if body.iter().all(u8::is_ascii_whitespace) {
        return "empty body".to_owned();
    }
    let text = String::from_utf8_lossy(body);
    let lower = text.to_ascii_lowercase();
    let trimmed = lower.trim_start();
    if trimmed.starts_with("<!doctype html") || trimmed.starts_with("<html") || lower.contains("<body") {
        if let (Some(a), Some(b)) = (lower.find("<title>"), lower.find("</title>"))
            && a + 7 <= b
        {
            return format!("an HTML page titled {:?}", shorten(&text[a + 7..b]));
        }
        return format!("an HTML page: {:?}", shorten(&strip_tags(&text)));
    }
    format!("{:?}", shorten(&text))
}

fn strip_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// Collapses whitespace and cuts to `EXCERPT_CHARS` characters.
pub fn shorten(s: &str) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > EXCERPT_CHARS {
        format!("{}…", one_line.chars().take(EXCERPT_CHARS).collect::<String>())
    } else {
        one_line
    }
}

/// Text for a non-2xx answer: Prometheus's `errorType`/`error` when the body is its JSON
/// envelope, otherwise an excerpt.
pub fn error_text(body: &[u8]) -> String {
    match serde_json::from_slice::<Envelope>(body) {
        Ok(Envelope { error: Some(e), error_type, .. }) => match error_type {
            Some(t) => format!("{t}: {}", shorten(&e)),
            None => shorten(&e),
        },
        _ => excerpt(body),
    }
}

#[cfg(test)]
#[path = "response_tests.rs"]
mod tests;
