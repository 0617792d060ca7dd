//! JSON patch (RFC 6902, `application/json-patch+json`) over JSON pointers (RFC 6901).
//!
//! The patch is a JSON array of operations (`add`, `remove`, `replace`, `move`, `copy`,
//! `test`) applied in order to a working copy; the target only changes when every operation
//! succeeds. A malformed operation (missing member, non-string path, bad pointer syntax) is
//! [`PatchError::Invalid`]; an operation that cannot apply to this document (missing
//! location, index out of range, failed `test`, unknown `op`) is [`PatchError::Unprocessable`].

use serde_json::{Map, Value};

use super::PatchError;

/// Applies the RFC 6902 `patch` to `target`. Atomic: on error `target` is left unchanged.
pub fn apply(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let Value::Array(ops) = patch else {
        return Err(PatchError::Invalid("a JSON patch must be a JSON array of operations".to_owned()));
    };
    let mut doc = target.clone();
    for (i, op) in ops.iter().enumerate() {
        apply_op(&mut doc, op).map_err(|e| match e {
            PatchError::Invalid(msg) => PatchError::Invalid(format!("operation {i}: {msg}")),
            PatchError::Unprocessable(msg) => PatchError::Unprocessable(format!("operation {i}: {msg}")),
        })?;
    }
    *target = doc;
    Ok(())
}

fn apply_op(doc: &mut Value, op: &Value) -> Result<(), PatchError> {
    let Value::Object(members) = op else {
        return Err(invalid("each operation must be a JSON object"));
    };
    let name = match members.get("op") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(invalid("\"op\" must be a string")),
        None => return Err(invalid("missing \"op\" member")),
    };
    let path = pointer_member(members, "path")?;
    match name {
        "add" => add(doc, &path, value_member(members)?.clone()),
        "remove" => remove(doc, &path).map(drop),
        "replace" => {
            let value = value_member(members)?.clone();
            replace(doc, &path, value)
        }
        "move" => {
            let from = pointer_member(members, "from")?;
            if from == path {
                return lookup(doc, &from).map(drop);
            }
            if from.len() < path.len() && path.starts_with(&from) {
                return Err(unprocessable(format!(
                    "cannot move {} into its own child {}",
                    render(&from),
                    render(&path)
                )));
            }
            let value = remove(doc, &from)?;
            add(doc, &path, value)
        }
        "copy" => {
            let from = pointer_member(members, "from")?;
            let value = lookup(doc, &from)?.clone();
            add(doc, &path, value)
        }
        "test" => {
            let expected = value_member(members)?;
            let actual = lookup(doc, &path)?;
            if json_equal(actual, expected) {
                Ok(())
            } else {
                Err(unprocessable(format!(
                    "test failed: value at {} is {actual}, expected {expected}",
                    render(&path)
                )))
            }
        }
        other => Err(unprocessable(format!("unknown operation {other:?}"))),
    }
}

fn invalid(msg: impl Into<String>) -> PatchError {
    PatchError::Invalid(msg.into())
}

fn unprocessable(msg: impl Into<String>) -> PatchError {
    PatchError::Unprocessable(msg.into())
}

fn value_member(members: &Map<String, Value>) -> Result<&Value, PatchError> {
    members.get("value").ok_or_else(|| invalid("missing \"value\" member"))
}

fn pointer_member(members: &Map<String, Value>, name: &str) -> Result<Vec<String>, PatchError> {
    match members.get(name) {
        Some(Value::String(s)) => parse_pointer(s),
        Some(_) => Err(invalid(format!("\"{name}\" must be a string"))),
        None => Err(invalid(format!("missing \"{name}\" member"))),
    }
}

/// Splits an RFC 6901 pointer into unescaped reference tokens. `""` is the whole document.
fn parse_pointer(pointer: &str) -> Result<Vec<String>, PatchError> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(invalid(format!("JSON pointer {pointer:?} must start with '/'")));
    };
    rest.split('/').map(|raw| unescape(raw, pointer)).collect()
}

fn unescape(token: &str, pointer: &str) -> Result<String, PatchError> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c != '~' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => out.push('~'),
            Some('1') => out.push('/'),
            _ => {
                return Err(invalid(format!(
                    "JSON pointer {pointer:?} has a '~' not followed by '0' or '1'"
                )));
            }
        }
    }
    Ok(out)
}

fn render(tokens: &[String]) -> String {
    tokens.iter().map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1"))).collect()
}

/// Parses an array index token: decimal digits without leading zeros.
fn parse_index(token: &str) -> Option<usize> {
    let well_formed = !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_digit())
        && (token == "0" || !token.starts_with('0'));
    if well_formed { token.parse().ok() } else { None }
}

fn lookup<'a>(doc: &'a Value, path: &[String]) -> Result<&'a Value, PatchError> {
    let mut cur = doc;
    for (depth, token) in path.iter().enumerate() {
        let next = match cur {
            Value::Object(m) => m.get(token),
            Value::Array(items) => parse_index(token).and_then(|i| items.get(i)),
            _ => None,
        };
        cur = next.ok_or_else(|| missing(&path[..=depth]))?;
    }
    Ok(cur)
}

fn lookup_mut<'a>(doc: &'a mut Value, path: &[String]) -> Result<&'a mut Value, PatchError> {
    let mut cur = doc;
    for (depth, token) in path.iter().enumerate() {
        let next = match cur {
            Value::Object(m) => m.get_mut(token),
            Value::Array(items) => parse_index(token).and_then(|i| items.get_mut(i)),
            _ => None,
        };
        cur = next.ok_or_else(|| missing(&path[..=depth]))?;
    }
    Ok(cur)
}

fn missing(path: &[String]) -> PatchError {
    unprocessable(format!("path {} does not exist", render(path)))
}

fn add(doc: &mut Value, path: &[String], value: Value) -> Result<(), PatchError> {
    let Some((last, parent_path)) = path.split_last() else {
        *doc = value;
        return Ok(());
    };
    match lookup_mut(doc, parent_path)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(items) => {
            let index = if last == "-" {
                items.len()
            } else {
                parse_index(last).filter(|i| *i <= items.len()).ok_or_else(|| bad_index(path))?
            };
            items.insert(index, value);
            Ok(())
        }
        _ => Err(unprocessable(format!("cannot add {}: parent is not an object or array", render(path)))),
    }
}

fn remove(doc: &mut Value, path: &[String]) -> Result<Value, PatchError> {
    let Some((last, parent_path)) = path.split_last() else {
        return Err(unprocessable("cannot remove the whole document"));
    };
    match lookup_mut(doc, parent_path)? {
        Value::Object(m) => m.remove(last).ok_or_else(|| missing(path)),
        Value::Array(items) => {
            let index = parse_index(last).filter(|i| *i < items.len()).ok_or_else(|| bad_index(path))?;
            Ok(items.remove(index))
        }
        _ => Err(missing(path)),
    }
}

fn replace(doc: &mut Value, path: &[String], value: Value) -> Result<(), PatchError> {
    *lookup_mut(doc, path)? = value;
    Ok(())
}

fn bad_index(path: &[String]) -> PatchError {
    unprocessable(format!("array index in {} is out of range", render(path)))
}

/// JSON value equality per RFC 6902 section 4.6: numbers compare by numeric value, objects
/// ignore member order.
pub(crate) fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
                (Some(i), Some(j), _, _) => i == j,
                (_, _, Some(i), Some(j)) => i == j,
                _ if x.is_f64() || y.is_f64() => x.as_f64() == y.as_f64(),
                // One side is a u64 above i64::MAX and the other is negative.
                _ => false,
            }
        }
        (Value::Array(xs), Value::Array(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| json_equal(x, y))
        }
        (Value::Object(xm), Value::Object(ym)) => {
            xm.len() == ym.len() && xm.iter().all(|(k, x)| ym.get(k).is_some_and(|y| json_equal(x, y)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests;
