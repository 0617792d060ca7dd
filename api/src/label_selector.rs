//! Kubernetes label selectors, read and matched as kube-apiserver does: the string form of a
//! `labelSelector` query parameter (`a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`,
//! `!a`, `a>1`, `a<1`, joined by commas; [`LabelSelector::parse`]), the
//! `metav1.LabelSelector` object form (`matchLabels`, `matchExpressions`;
//! [`LabelSelector::from_object`]), label key and value validation, the canonical string form
//! (requirements sorted by key, values sorted and deduplicated) and matching a label set.
//!
//! Input is untrusted (HTTP query parameters, webhook configurations): parsing is linear in the
//! input, without recursion, and never panics; every refusal is a [`SelectorError`] whose text
//! follows kube-apiserver's wording. Used by the metrics API server and the local control plane.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

mod parser;
mod validate;

pub use validate::{validate_label_key, validate_label_value};

/// A selector that could not be parsed or is invalid (the text is shown to the caller as is).
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
                let [value] = values.as_slice() else {
                    return Err(err("for 'Gt', 'Lt' operators, exactly one value is required"));
                };
                if value.parse::<i64>().is_err() {
                    return Err(err(format!(
                        "for 'Gt', 'Lt' operators, the value must be an integer: {value:?}"
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

    /// The requirements, sorted by key (requirements on one key keep their written order).
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    fn from_requirements(mut requirements: Vec<Requirement>) -> Self {
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        LabelSelector { requirements }
    }

    /// Parses the string form: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`,
    /// `a>1`, `a<1`, joined by commas. Tokens are separated by spaces, tabs, CR and LF only.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        parser::parse(s).map(Self::from_requirements)
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

/// One `matchExpressions` entry (`In`, `NotIn`, `Exists`, `DoesNotExist`).
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

#[cfg(test)]
mod tests;
