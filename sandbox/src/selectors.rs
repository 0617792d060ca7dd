//! Label and field selectors: the `?labelSelector=` / `?fieldSelector=` query grammars, the
//! `metav1.LabelSelector` object form (webhook `namespaceSelector`/`objectSelector`, workload and
//! HPA selectors), Kubernetes label key/value validation, and matching against objects.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

mod fields;

pub use fields::{FieldRequirement, FieldSelector, field_value};

/// A selector that could not be parsed or is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(pub String);

fn err(msg: impl Into<String>) -> SelectorError {
    SelectorError(msg.into())
}

/// The operator of one label requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelOp {
    /// `key=value`
    Equals,
    /// `key==value`
    DoubleEquals,
    /// `key!=value`
    NotEquals,
    /// `key in (a,b)`
    In,
    /// `key notin (a,b)`
    NotIn,
    /// `key`
    Exists,
    /// `!key`
    DoesNotExist,
    /// `key>3` (integer comparison)
    GreaterThan,
    /// `key<3` (integer comparison)
    LessThan,
}

/// One requirement of a label selector; all requirements of a selector must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The label key.
    pub key: String,
    /// The operator.
    pub op: LabelOp,
    /// The values, sorted and without duplicates (empty for `Exists`/`DoesNotExist`).
    pub values: Vec<String>,
}

impl Requirement {
    /// Builds a validated requirement (key, values and operator arity as the API server checks them).
    pub fn new(key: &str, op: LabelOp, values: Vec<String>) -> Result<Self, SelectorError> {
        validate_label_key(key)?;
        let mut values = values;
        values.sort();
        values.dedup();
        match op {
            LabelOp::In | LabelOp::NotIn if values.is_empty() => {
                return Err(err("for 'in' and 'notin', the set of values must not be empty"));
            }
            LabelOp::Equals | LabelOp::DoubleEquals | LabelOp::NotEquals if values.len() != 1 => {
                return Err(err("'=', '==' and '!=' take exactly one value"));
            }
            LabelOp::Exists | LabelOp::DoesNotExist if !values.is_empty() => {
                return Err(err("'Exists' and 'DoesNotExist' take no values"));
            }
            LabelOp::GreaterThan | LabelOp::LessThan => {
                if values.len() != 1 {
                    return Err(err("for 'Gt', 'Lt' operators, exactly one value is required"));
                }
                if values[0].parse::<i64>().is_err() {
                    return Err(err(format!(
                        "for 'Gt', 'Lt' operators, the value must be an integer: {:?}",
                        values[0]
                    )));
                }
            }
            _ => {}
        }
        for v in &values {
            validate_label_value(key, v)?;
        }
        Ok(Requirement { key: key.to_string(), op, values })
    }

    /// Whether the label set satisfies this requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let got = labels.get(&self.key);
        let has = |v: &String| self.values.iter().any(|x| x == v);
        match self.op {
            LabelOp::Equals | LabelOp::DoubleEquals | LabelOp::In => got.is_some_and(has),
            LabelOp::NotEquals | LabelOp::NotIn => !got.is_some_and(has),
            LabelOp::Exists => got.is_some(),
            LabelOp::DoesNotExist => got.is_none(),
            LabelOp::GreaterThan | LabelOp::LessThan => {
                let (Some(got), Some(want)) = (got, self.values.first()) else { return false };
                let (Ok(got), Ok(want)) = (got.parse::<i64>(), want.parse::<i64>()) else { return false };
                if self.op == LabelOp::GreaterThan { got > want } else { got < want }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let vals = self.values.join(",");
        match self.op {
            LabelOp::Equals => write!(f, "{}={vals}", self.key),
            LabelOp::DoubleEquals => write!(f, "{}=={vals}", self.key),
            LabelOp::NotEquals => write!(f, "{}!={vals}", self.key),
            LabelOp::In => write!(f, "{} in ({vals})", self.key),
            LabelOp::NotIn => write!(f, "{} notin ({vals})", self.key),
            LabelOp::Exists => write!(f, "{}", self.key),
            LabelOp::DoesNotExist => write!(f, "!{}", self.key),
            LabelOp::GreaterThan => write!(f, "{}>{vals}", self.key),
            LabelOp::LessThan => write!(f, "{}<{vals}", self.key),
        }
    }
}

/// A parsed label selector: the conjunction of its requirements (none = everything).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// The selector that matches every label set.
    pub fn everything() -> Self {
        Self::default()
    }

    /// Whether this selector has no requirements (and so matches everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    fn from_requirements(mut requirements: Vec<Requirement>) -> Self {
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        LabelSelector { requirements }
    }

    /// Parses the `?labelSelector=` string form: `a=b`, `a==b`, `a!=b`, `a in (x,y)`,
    /// `a notin (x)`, `a`, `!a`, `a>1`, `a<1`, joined by commas.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let tokens = lex(s);
        let mut p = Parser { tokens, pos: 0 };
        let mut reqs = Vec::new();
        loop {
            match p.peek() {
                Tok::Ident(_) | Tok::Bang => {
                    let r =
                        p.requirement().map_err(|e| err(format!("unable to parse requirement: {}", e.0)))?;
                    reqs.push(r);
                    match p.next() {
                        Tok::End => break,
                        Tok::Comma => match p.peek() {
                            Tok::Ident(_) | Tok::Bang => {}
                            t => return Err(err(format!("found '{t}', expected: identifier after ','"))),
                        },
                        t => return Err(err(format!("found '{t}', expected: ',' or 'end of string'"))),
                    }
                }
                Tok::End => break,
                t => return Err(err(format!("found '{t}', expected: !, identifier, or 'end of string'"))),
            }
        }
        Ok(Self::from_requirements(reqs))
    }

    /// Builds a selector from a `metav1.LabelSelector` object (`matchLabels`, `matchExpressions`).
    /// `null`/absent and `{}` select everything.
    pub fn from_object(v: &Value) -> Result<Self, SelectorError> {
        let obj = match v {
            Value::Null => return Ok(Self::everything()),
            Value::Object(o) => o,
            other => return Err(err(format!("label selector must be an object, got {other}"))),
        };
        let mut reqs = Vec::new();
        match obj.get("matchLabels") {
            None | Some(Value::Null) => {}
            Some(Value::Object(ml)) => {
                for (k, v) in ml {
                    let Some(v) = v.as_str() else {
                        return Err(err(format!("matchLabels[{k}]: value must be a string")));
                    };
                    reqs.push(Requirement::new(k, LabelOp::Equals, vec![v.to_string()])?);
                }
            }
            Some(_) => return Err(err("matchLabels must be an object")),
        }
        match obj.get("matchExpressions") {
            None | Some(Value::Null) => {}
            Some(Value::Array(exprs)) => {
                for (i, e) in exprs.iter().enumerate() {
                    reqs.push(expression(i, e)?);
                }
            }
            Some(_) => return Err(err("matchExpressions must be a list")),
        }
        Ok(Self::from_requirements(reqs))
    }

    /// Whether the label set satisfies every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Like [`LabelSelector::matches`], reading `metadata.labels` of an object.
    pub fn matches_object(&self, obj: &Value) -> bool {
        self.matches(&labels_of(obj))
    }
}

impl fmt::Display for LabelSelector {
    /// The canonical string form (requirements sorted by key), as printed in `SELECTOR` columns.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// `metadata.labels` of an object as a map (non-string values are ignored).
pub fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string()))).collect())
        .unwrap_or_default()
}

fn expression(i: usize, e: &Value) -> Result<Requirement, SelectorError> {
    let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
    let op_name = e.get("operator").and_then(Value::as_str).unwrap_or_default();
    let values: Vec<String> = match e.get("values") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| err(format!("matchExpressions[{i}].values: values must be strings")))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(err(format!("matchExpressions[{i}].values must be a list"))),
    };
    let op = match op_name {
        "In" => LabelOp::In,
        "NotIn" => LabelOp::NotIn,
        "Exists" => LabelOp::Exists,
        "DoesNotExist" => LabelOp::DoesNotExist,
        other => return Err(err(format!("{other:?} is not a valid label selector operator"))),
    };
    Requirement::new(key, op, values).map_err(|e| err(format!("matchExpressions[{i}]: {}", e.0)))
}

// ---- label key/value validation ----

const NAME_MAX: usize = 63;
const PREFIX_MAX: usize = 253;

fn is_alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn is_qualified_name_part(s: &str) -> bool {
    let (Some(first), Some(last)) = (s.chars().next(), s.chars().last()) else { return false };
    is_alnum(first) && is_alnum(last) && s.chars().all(|c| is_alnum(c) || matches!(c, '-' | '_' | '.'))
}

/// RFC 1123 subdomain: dot-separated lowercase labels of `[a-z0-9]([-a-z0-9]*[a-z0-9])?`.
fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= PREFIX_MAX
        && s.split('.').all(|l| {
            let (Some(first), Some(last)) = (l.chars().next(), l.chars().last()) else { return false };
            let lower_alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
            lower_alnum(first) && lower_alnum(last) && l.chars().all(|c| lower_alnum(c) || c == '-')
        })
}

/// Validates a label key: an optional DNS subdomain prefix and `/`, then a name of at most 63
/// alphanumeric, `-`, `_` or `.` characters that starts and ends alphanumeric.
pub fn validate_label_key(key: &str) -> Result<(), SelectorError> {
    let invalid = |why: String| Err(err(format!("invalid label key {key:?}: {why}")));
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        if p.is_empty() {
            return invalid("prefix part must be non-empty".into());
        }
        if !is_dns1123_subdomain(p) {
            return invalid(format!(
                "prefix part must be a lowercase RFC 1123 subdomain of at most {PREFIX_MAX} characters"
            ));
        }
    }
    if name.is_empty() {
        return invalid("name part must be non-empty".into());
    }
    if name.len() > NAME_MAX {
        return invalid(format!("name part must be no more than {NAME_MAX} characters"));
    }
    if !is_qualified_name_part(name) {
        return invalid(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end \
             with an alphanumeric character"
                .into(),
        );
    }
    Ok(())
}

/// Validates a label value: empty, or at most 63 alphanumeric, `-`, `_` or `.` characters that
/// starts and ends alphanumeric.
pub fn validate_label_value(key: &str, value: &str) -> Result<(), SelectorError> {
    if value.is_empty() {
        return Ok(());
    }
    if value.len() > NAME_MAX {
        return Err(err(format!(
            "invalid label value {value:?} for key {key:?}: must be no more than {NAME_MAX} characters"
        )));
    }
    if !is_qualified_name_part(value) {
        return Err(err(format!(
            "invalid label value {value:?} for key {key:?}: must consist of alphanumeric characters, \
             '-', '_' or '.', and must start and end with an alphanumeric character"
        )));
    }
    Ok(())
}

// ---- label selector lexer/parser ----

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Bang,
    NotEq,
    Eq,
    DoubleEq,
    Gt,
    Lt,
    Comma,
    Open,
    Close,
    End,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tok::Ident(s) => s,
            Tok::Bang => "!",
            Tok::NotEq => "!=",
            Tok::Eq => "=",
            Tok::DoubleEq => "==",
            Tok::Gt => ">",
            Tok::Lt => "<",
            Tok::Comma => ",",
            Tok::Open => "(",
            Tok::Close => ")",
            Tok::End => "",
        })
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '!' | '=' | '>' | '<' | ',' | '(' | ')')
}

fn lex(s: &str) -> Vec<Tok> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let (tok, len) = match (c, next) {
            ('!', Some('=')) => (Tok::NotEq, 2),
            ('!', _) => (Tok::Bang, 1),
            ('=', Some('=')) => (Tok::DoubleEq, 2),
            ('=', _) => (Tok::Eq, 1),
            ('>', _) => (Tok::Gt, 1),
            ('<', _) => (Tok::Lt, 1),
            (',', _) => (Tok::Comma, 1),
            ('(', _) => (Tok::Open, 1),
            (')', _) => (Tok::Close, 1),
            _ => {
                let start = i;
                let mut j = i;
                while j < chars.len() && !chars[j].is_whitespace() && !is_special(chars[j]) {
                    j += 1;
                }
                (Tok::Ident(chars[start..j].iter().collect()), j - start)
            }
        };
        out.push(tok);
        i += len;
    }
    out.push(Tok::End);
    out
}

struct Parser {
    tokens: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Tok {
        self.tokens.get(self.pos).cloned().unwrap_or(Tok::End)
    }

    fn next(&mut self) -> Tok {
        let t = self.peek();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        let mut negated = false;
        let mut tok = self.next();
        if tok == Tok::Bang {
            negated = true;
            tok = self.next();
        }
        let Tok::Ident(key) = tok else {
            return Err(err(format!("found '{tok}', expected: identifier")));
        };
        validate_label_key(&key)?;
        if matches!(self.peek(), Tok::End | Tok::Comma) {
            let op = if negated { LabelOp::DoesNotExist } else { LabelOp::Exists };
            return Requirement::new(&key, op, Vec::new());
        }
        if negated {
            return Err(err(format!("found '{}', expected: ',' or 'end of string'", self.peek())));
        }
        let op = match self.next() {
            Tok::Ident(w) if w == "in" => LabelOp::In,
            Tok::Ident(w) if w == "notin" => LabelOp::NotIn,
            Tok::Eq => LabelOp::Equals,
            Tok::DoubleEq => LabelOp::DoubleEquals,
            Tok::NotEq => LabelOp::NotEquals,
            Tok::Gt => LabelOp::GreaterThan,
            Tok::Lt => LabelOp::LessThan,
            t => return Err(err(format!("found '{t}', expected: in, notin, =, ==, !=, gt, lt"))),
        };
        let values = match op {
            LabelOp::In | LabelOp::NotIn => self.set_values()?,
            _ => vec![self.exact_value()?],
        };
        Requirement::new(&key, op, values)
    }

    fn exact_value(&mut self) -> Result<String, SelectorError> {
        match self.peek() {
            Tok::End | Tok::Comma => Ok(String::new()),
            Tok::Ident(v) => {
                self.pos += 1;
                Ok(v)
            }
            t => Err(err(format!("found '{t}', expected: identifier"))),
        }
    }

    fn set_values(&mut self) -> Result<Vec<String>, SelectorError> {
        let t = self.next();
        if t != Tok::Open {
            return Err(err(format!("found '{t}' expected: '('")));
        }
        // As kube-apiserver's `labels.Parse`: `()` is the set holding the empty value; an empty
        // element stands for "" (`(,a)`, `(a,)`, `(a,,b)`), but `,,` right before `)` is an error.
        if self.peek() == Tok::Close {
            self.pos += 1;
            return Ok(vec![String::new()]);
        }
        let mut values = Vec::new();
        loop {
            match self.next() {
                Tok::Ident(v) => {
                    values.push(v);
                    match self.peek() {
                        Tok::Comma => {}
                        Tok::Close => {
                            self.pos += 1;
                            return Ok(values);
                        }
                        t => return Err(err(format!("found '{t}', expected: ',' or ')'"))),
                    }
                }
                Tok::Comma => {
                    if values.is_empty() {
                        values.push(String::new());
                    }
                    match self.peek() {
                        Tok::Close => {
                            self.pos += 1;
                            values.push(String::new());
                            return Ok(values);
                        }
                        Tok::Comma => {
                            self.pos += 1;
                            values.push(String::new());
                        }
                        _ => {}
                    }
                }
                t => return Err(err(format!("found '{t}', expected: ',', or identifier"))),
            }
        }
    }
}

#[cfg(test)]
mod tests;
