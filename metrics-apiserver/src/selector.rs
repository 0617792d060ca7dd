//! Label selectors as the HPA controller sends them (`labelSelector=scaledobject.keda.sh/name=web`):
//! reading the parameter from the query string ([`label_selector`]), parsing the Kubernetes
//! selector syntax (`k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a)`, `k`, `!k`, `k>1`,
//! `k<1`; [`parse`]), and finding the one ScaledObject a selector names ([`scaled_object`]).
//! Requirements on other labels are accepted and ignored, as KEDA does.

use ebb_api::constants::SCALED_OBJECT_NAME_LABEL;

/// One requirement of a label selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// `key=value` or `key==value`
    Equals(String, String),
    /// `key!=value`
    NotEquals(String, String),
    /// `key in (a, b)`
    In(String, Vec<String>),
    /// `key notin (a, b)`
    NotIn(String, Vec<String>),
    /// `key`
    Exists(String),
    /// `!key`
    DoesNotExist(String),
    /// `key>n`
    GreaterThan(String, String),
    /// `key<n`
    LessThan(String, String),
}

/// Why a selector does not name a ScaledObject (the message is shown to the caller as is).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// No `labelSelector` parameter, or an empty one.
    #[error(
        "no labelSelector: select the ScaledObject with labelSelector={SCALED_OBJECT_NAME_LABEL}=<name> \
         (the HPA that ebb creates for a ScaledObject does so)"
    )]
    Missing,
    /// The selector does not parse.
    #[error("invalid labelSelector {selector:?}: {why}")]
    Invalid {
        /// The selector as received.
        selector: String,
        /// What is wrong.
        why: String,
    },
    /// The selector parses but names no single ScaledObject.
    #[error(
        "labelSelector {selector:?} does not select one ScaledObject: it must contain \
         {SCALED_OBJECT_NAME_LABEL}=<name>"
    )]
    NoScaledObject {
        /// The selector as received.
        selector: String,
    },
}

/// The form-decoded value of the first `labelSelector` parameter of `query`.
pub fn label_selector(query: Option<&str>) -> Option<String> {
    let query = query?;
    query.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (form_decode(name)? == "labelSelector").then(|| form_decode(value)).flatten()
    })
}

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space); `None` when malformed.
fn form_decode(text: &str) -> Option<String> {
    let spaced = text.replace('+', " ");
    crate::routes::decode(&spaced)
}

/// Parses a selector into its requirements (an empty selector has none).
pub fn parse(selector: &str) -> Result<Vec<Requirement>, String> {
    let mut requirements = Vec::new();
    for part in split_top_level(selector)? {
        let part = part.trim();
        if part.is_empty() {
            if selector.trim().is_empty() {
                continue;
            }
            return Err("empty requirement (stray comma?)".to_owned());
        }
        requirements.push(requirement(part)?);
    }
    Ok(requirements)
}

/// Splits at commas outside parentheses.
fn split_top_level(selector: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in selector.char_indices() {
        match c {
            '(' if depth == 0 => depth = 1,
            '(' => return Err("nested parentheses".to_owned()),
            ')' if depth == 1 => depth = 0,
            ')' => return Err("unbalanced ')'".to_owned()),
            ',' if depth == 0 => {
                parts.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("missing ')'".to_owned());
    }
    parts.push(&selector[start..]);
    Ok(parts)
}

fn requirement(part: &str) -> Result<Requirement, String> {
    if let Some(key) = part.strip_prefix('!') {
        return Ok(Requirement::DoesNotExist(key_of(key.trim())?));
    }
    let end = part.find(|c: char| c.is_whitespace() || "=!<>(".contains(c)).unwrap_or(part.len());
    let key = key_of(&part[..end])?;
    let rest = part[end..].trim_start();
    if rest.is_empty() {
        return Ok(Requirement::Exists(key));
    }
    let value = |v: &str| value_of(v.trim());
    if let Some(v) = rest.strip_prefix("==") {
        Ok(Requirement::Equals(key, value(v)?))
    } else if let Some(v) = rest.strip_prefix("!=") {
        Ok(Requirement::NotEquals(key, value(v)?))
    } else if let Some(v) = rest.strip_prefix('=') {
        Ok(Requirement::Equals(key, value(v)?))
    } else if let Some(v) = rest.strip_prefix('>') {
        Ok(Requirement::GreaterThan(key, integer(v.trim())?))
    } else if let Some(v) = rest.strip_prefix('<') {
        Ok(Requirement::LessThan(key, integer(v.trim())?))
    } else if let Some(set) = operator_set(rest, "notin") {
        Ok(Requirement::NotIn(key, values(set)?))
    } else if let Some(set) = operator_set(rest, "in") {
        Ok(Requirement::In(key, values(set)?))
    } else {
        Err(format!("expected =, ==, !=, in, notin, > or < after {key:?}, found {rest:?}"))
    }
}

/// `rest` without the operator word `op`, if it starts with it (followed by space or `(`).
fn operator_set<'a>(rest: &'a str, op: &str) -> Option<&'a str> {
    let after = rest.strip_prefix(op)?;
    after.starts_with(|c: char| c.is_whitespace() || c == '(').then_some(after)
}

fn values(set: &str) -> Result<Vec<String>, String> {
    let inner = set
        .trim()
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("expected a parenthesized list of values, found {:?}", set.trim()))?;
    inner.split(',').map(|v| value_of(v.trim())).collect()
}

fn integer(v: &str) -> Result<String, String> {
    v.parse::<i64>().map(|_| v.to_owned()).map_err(|_| format!("{v:?} is not an integer"))
}

/// Checks a label key: an optional DNS-subdomain prefix and `/`, then a name of at most 63
/// characters of `[A-Za-z0-9._-]`.
fn key_of(key: &str) -> Result<String, String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let valid_name = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    let valid_prefix = prefix.is_none_or(|p| {
        !p.is_empty() && p.len() <= 253 && p.chars().all(|c| c.is_ascii_alphanumeric() || ".-".contains(c))
    });
    if valid_name && valid_prefix { Ok(key.to_owned()) } else { Err(format!("invalid label key {key:?}")) }
}

/// Checks a label value: empty, or at most 63 characters of `[A-Za-z0-9._-]`.
fn value_of(value: &str) -> Result<String, String> {
    if value.len() <= 63 && value.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
        Ok(value.to_owned())
    } else {
        Err(format!("invalid label value {value:?}"))
    }
}

/// The name of the ScaledObject `selector` selects: the value of its
/// `scaledobject.keda.sh/name=<name>` (or `in (<name>)`) requirement.
pub fn scaled_object(selector: Option<&str>) -> Result<String, SelectorError> {
    let selector = match selector {
        Some(s) if !s.trim().is_empty() => s,
        _ => return Err(SelectorError::Missing),
    };
    let requirements =
        parse(selector).map_err(|why| SelectorError::Invalid { selector: selector.to_owned(), why })?;
    let mut names = requirements.iter().filter_map(|r| match r {
        Requirement::Equals(key, value) if key == SCALED_OBJECT_NAME_LABEL => Some(value.as_str()),
        Requirement::In(key, values) if key == SCALED_OBJECT_NAME_LABEL && values.len() == 1 => {
            Some(values[0].as_str())
        }
        _ => None,
    });
    let first = names.next();
    match first {
        Some(name) if !name.is_empty() && names.all(|other| other == name) => Ok(name.to_owned()),
        _ => Err(SelectorError::NoScaledObject { selector: selector.to_owned() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameter_is_form_decoded() {
        let cases: [(Option<&str>, Option<&str>); 7] = [
            (None, None),
            (Some(""), None),
            (Some("labelSelector=scaledobject.keda.sh%2Fname%3Dweb"), Some("scaledobject.keda.sh/name=web")),
            (Some("labelSelector=scaledobject.keda.sh/name=web"), Some("scaledobject.keda.sh/name=web")),
            (Some("watch=0&labelSelector=a+in+%28b%29&labelSelector=x"), Some("a in (b)")),
            (Some("labelSelector"), Some("")),
            (Some("labelSelector=%zz"), None),
        ];
        for (query, want) in cases {
            assert_eq!(label_selector(query).as_deref(), want, "{query:?}");
        }
    }

    #[test]
    fn parses_every_operator() {
        use Requirement::*;
        let s = |v: &str| v.to_owned();
        let cases = [
            ("a=b", vec![Equals(s("a"), s("b"))]),
            ("a==b", vec![Equals(s("a"), s("b"))]),
            ("a = b", vec![Equals(s("a"), s("b"))]),
            ("a=", vec![Equals(s("a"), s(""))]),
            ("a!=b", vec![NotEquals(s("a"), s("b"))]),
            ("x.io/a in (b, c)", vec![In(s("x.io/a"), vec![s("b"), s("c")])]),
            ("a notin (b)", vec![NotIn(s("a"), vec![s("b")])]),
            ("a in(b)", vec![In(s("a"), vec![s("b")])]),
            ("a", vec![Exists(s("a"))]),
            ("!a", vec![DoesNotExist(s("a"))]),
            ("a>1,b<2", vec![GreaterThan(s("a"), s("1")), LessThan(s("b"), s("2"))]),
            (
                "a=b, c in (d,e),!f",
                vec![Equals(s("a"), s("b")), In(s("c"), vec![s("d"), s("e")]), DoesNotExist(s("f"))],
            ),
            ("", vec![]),
        ];
        for (selector, want) in cases {
            assert_eq!(parse(selector).unwrap(), want, "{selector:?}");
        }
    }

    #[test]
    fn rejects_malformed_selectors() {
        let cases = [
            ("a=b,", "empty requirement"),
            ("a in (b", "missing ')'"),
            ("a in b", "parenthesized"),
            ("a)", "unbalanced"),
            ("a=b c", "invalid label value"),
            ("a~b", "invalid label key"),
            ("a>x", "not an integer"),
            ("/a=b", "invalid label key"),
            ("a in ((b))", "nested"),
            ("a b", "expected =, ==, !=, in, notin"),
        ];
        for (selector, message) in cases {
            let err = parse(selector).unwrap_err();
            assert!(err.contains(message), "{selector:?}: {err}");
        }
    }

    #[test]
    fn finds_the_scaled_object() {
        let ok = [
            ("scaledobject.keda.sh/name=web", "web"),
            ("scaledobject.keda.sh/name==web", "web"),
            ("scaledobject.keda.sh/name in (web)", "web"),
            ("app=x,scaledobject.keda.sh/name=web", "web"),
            ("scaledobject.keda.sh/name=web,scaledobject.keda.sh/name=web", "web"),
        ];
        for (selector, want) in ok {
            assert_eq!(scaled_object(Some(selector)).unwrap(), want, "{selector}");
        }
        let missing = [None, Some(""), Some("  ")];
        for selector in missing {
            assert_eq!(scaled_object(selector), Err(SelectorError::Missing));
        }
        let none = [
            "app=web",
            "scaledobject.keda.sh/name!=web",
            "scaledobject.keda.sh/name in (a,b)",
            "scaledobject.keda.sh/name",
            "scaledobject.keda.sh/name=",
            "scaledobject.keda.sh/name=a,scaledobject.keda.sh/name=b",
        ];
        for selector in none {
            assert_eq!(
                scaled_object(Some(selector)),
                Err(SelectorError::NoScaledObject { selector: selector.to_owned() }),
                "{selector}"
            );
        }
        let err = scaled_object(Some("a in (b")).unwrap_err();
        assert!(matches!(err, SelectorError::Invalid { .. }));
        assert!(err.to_string().starts_with("invalid labelSelector \"a in (b\": "), "{err}");
        assert!(
            SelectorError::Missing.to_string().contains("labelSelector=scaledobject.keda.sh/name=<name>")
        );
    }
}
