//! Field selectors (`?fieldSelector=`): `field=value`, `field==value`, `field!=value` terms joined
//! by commas, with fields as dotted paths into the object's JSON. Label selectors are
//! `ebb_api::label_selector`, shared with the metrics API server.

use ebb_api::label_selector::SelectorError;
use serde_json::Value;

fn err(msg: impl Into<String>) -> SelectorError {
    SelectorError(msg.into())
}

/// One `field=value` / `field!=value` term of a field selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    /// The dotted field path, e.g. `metadata.name`.
    pub field: String,
    /// The value compared against (already unescaped).
    pub value: String,
    /// `true` for `!=`.
    pub negated: bool,
}

/// A parsed `?fieldSelector=`: the conjunction of its terms (none = everything).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses `a.b=x,c!=y` (also `==`); in values, `\,`, `\=` and `\\` escape those characters.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut requirements = Vec::new();
        for term in split_unescaped_commas(s) {
            if term.trim().is_empty() {
                continue;
            }
            requirements.push(
                parse_field_term(&term).ok_or_else(|| {
                    err(format!("invalid field selector: '{s}'; can't understand '{term}'"))
                })?,
            );
        }
        Ok(FieldSelector { requirements })
    }

    /// Whether the object satisfies every term. Fields are dotted paths into the object's JSON;
    /// strings compare as-is, numbers and booleans by their JSON text, absent fields as `""`.
    pub fn matches(&self, obj: &Value) -> bool {
        self.requirements.iter().all(|r| {
            let got = field_value(obj, &r.field);
            (got == r.value) != r.negated
        })
    }

    /// The field names used, in order (for per-resource validation of supported fields).
    pub fn fields(&self) -> Vec<&str> {
        self.requirements.iter().map(|r| r.field.as_str()).collect()
    }

    /// The terms.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// Whether this selector has no terms.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The value the term for `field` requires with `=`/`==`, if any (useful for
    /// `metadata.name=x` / `metadata.namespace=y` fast paths).
    pub fn required_value(&self, field: &str) -> Option<&str> {
        self.requirements.iter().find(|r| r.field == field && !r.negated).map(|r| r.value.as_str())
    }
}

fn split_unescaped_commas(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            ',' => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn unescape(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(n @ ('\\' | ',' | '=')) => out.push(n),
                _ => return None,
            }
        } else if c == '=' || c == ',' {
            return None;
        } else {
            out.push(c);
        }
    }
    Some(out)
}

fn parse_field_term(term: &str) -> Option<FieldRequirement> {
    // find the first unescaped operator
    let bytes: Vec<char> = term.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            '\\' => i += 2,
            '!' if bytes.get(i + 1) == Some(&'=') => return build_term(&bytes, i, 2, true),
            '=' if bytes.get(i + 1) == Some(&'=') => return build_term(&bytes, i, 2, false),
            '=' => return build_term(&bytes, i, 1, false),
            _ => i += 1,
        }
    }
    None
}

fn build_term(chars: &[char], at: usize, len: usize, negated: bool) -> Option<FieldRequirement> {
    let field: String = chars[..at].iter().collect();
    let value: String = chars[at + len..].iter().collect();
    let field = field.trim().to_string();
    if field.is_empty() {
        return None;
    }
    Some(FieldRequirement { field, value: unescape(&value)?, negated })
}

/// The string form of the value at a dotted path (`""` when absent or not a scalar).
pub fn field_value(obj: &Value, path: &str) -> String {
    let mut cur = obj;
    for part in path.split('.') {
        match cur.get(part) {
            Some(v) => cur = v,
            None => return String::new(),
        }
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn field_selector_name_namespace() {
        let a = json!({"metadata": {"name": "web", "namespace": "default"}, "type": "Warning",
            "involvedObject": {"name": "so-1", "kind": "ScaledObject"}, "spec": {"replicas": 3, "paused": false}});
        let b = json!({"metadata": {"name": "db", "namespace": "kube-system"}});
        let cases: &[(&str, bool, bool)] = &[
            ("", true, true),
            ("metadata.name=web", true, false),
            ("metadata.name==web", true, false),
            ("metadata.name!=web", false, true),
            ("metadata.namespace=default", true, false),
            ("metadata.namespace!=kube-system", true, false),
            ("metadata.name=web,metadata.namespace=default", true, false),
            ("metadata.name=web,metadata.namespace=other", false, false),
            ("involvedObject.name=so-1,type=Warning", true, false),
            ("involvedObject.kind=", false, true),
            ("spec.replicas=3", true, false),
            ("spec.paused=false", true, false),
            ("type!=Normal", true, true),
        ];
        for (sel, wa, wb) in cases {
            let s = FieldSelector::parse(sel).unwrap_or_else(|e| panic!("{sel:?}: {e}"));
            assert_eq!(s.matches(&a), *wa, "{sel:?} vs a");
            assert_eq!(s.matches(&b), *wb, "{sel:?} vs b");
        }
    }

    #[test]
    fn field_selector_fields_escapes_and_errors() {
        let s = FieldSelector::parse("metadata.name=a\\,b,metadata.namespace!=x").unwrap();
        assert_eq!(s.fields(), vec!["metadata.name", "metadata.namespace"]);
        assert_eq!(s.required_value("metadata.name"), Some("a,b"));
        assert_eq!(s.required_value("metadata.namespace"), None);
        assert!(s.matches(&json!({"metadata": {"name": "a,b", "namespace": "y"}})));
        for bad in ["metadata.name", "=x", "a=b=c", "a=x\\y"] {
            let e = FieldSelector::parse(bad).expect_err(bad);
            assert!(e.0.starts_with("invalid field selector"), "{bad}: {}", e.0);
        }
    }
}
