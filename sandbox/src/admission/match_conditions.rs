//! A webhook's `matchConditions` (admissionregistration/v1, GA in Kubernetes 1.30): the request
//! goes to the webhook only when every condition is true. kube-apiserver evaluates full CEL;
//! the local control plane evaluates only the forms ebb's manifests and tests use, joined by
//! `&&`:
//!
//! - `request.userInfo.username == 'x'` and `!= 'x'` (single or double quotes);
//! - `has(object.metadata.deletionTimestamp)` and its negation `!has(…)` (false when there is no
//!   `object`, as on a delete).
//!
//! Any other expression is an evaluation error, which kube-apiserver treats per
//! `failurePolicy` (Fail: the request is refused; Ignore: the webhook is skipped); the caller does
//! the same.

use serde_json::Value;

use crate::control::UserInfo;

/// Whether every condition of `hook` holds; `Err` names the condition that cannot be evaluated.
pub fn matches(hook: &Value, user: &UserInfo, object: Option<&Value>) -> Result<bool, String> {
    for c in hook.get("matchConditions").and_then(Value::as_array).into_iter().flatten() {
        let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
        let expr = c.get("expression").and_then(Value::as_str).unwrap_or_default();
        let mut all = true;
        for term in expr.split("&&") {
            all &= term_value(term.trim(), user, object).ok_or_else(|| {
                format!(
                    "matchCondition {name:?}: expression {expr:?} is not supported by the local control plane"
                )
            })?;
        }
        if !all {
            return Ok(false);
        }
    }
    Ok(true)
}

fn term_value(term: &str, user: &UserInfo, object: Option<&Value>) -> Option<bool> {
    if let Some(path) = term.strip_prefix("!has(").and_then(|r| r.strip_suffix(')')) {
        return has(path.trim(), object).map(|b| !b);
    }
    if let Some(path) = term.strip_prefix("has(").and_then(|r| r.strip_suffix(')')) {
        return has(path.trim(), object);
    }
    let (lhs, equal, rhs) = if let Some((l, r)) = term.split_once("!=") {
        (l, false, r)
    } else {
        let (l, r) = term.split_once("==")?;
        (l, true, r)
    };
    if lhs.trim() != "request.userInfo.username" {
        return None;
    }
    let rhs = rhs.trim();
    let literal = rhs
        .strip_prefix('\'')
        .and_then(|r| r.strip_suffix('\''))
        .or_else(|| rhs.strip_prefix('"').and_then(|r| r.strip_suffix('"')))?;
    Some((user.username == literal) == equal)
}

/// `has(object.a.b)`: whether the field is present (and not null).
fn has(path: &str, object: Option<&Value>) -> Option<bool> {
    let rest = path.strip_prefix("object.")?;
    let Some(mut v) = object.filter(|o| !o.is_null()) else { return Some(false) };
    for part in rest.split('.') {
        if part.is_empty() || !part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return None;
        }
        match v.get(part) {
            Some(next) if !next.is_null() => v = next,
            _ => return Some(false),
        }
    }
    Some(true)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn user(name: &str) -> UserInfo {
        UserInfo { username: name.into(), groups: vec![] }
    }

    #[test]
    fn username_and_deletion_conditions() {
        let hook = json!({"matchConditions": [
            {"name": "not-the-operator", "expression": "request.userInfo.username != 'system:serviceaccount:keda:ebb-operator'"},
            {"name": "not-being-deleted", "expression": "!has(object.metadata.deletionTimestamp)"}]});
        let live = json!({"metadata": {"name": "a"}});
        let deleting = json!({"metadata": {"name": "a", "deletionTimestamp": "2025-01-01T00:00:00Z"}});
        assert_eq!(matches(&hook, &user("alice"), Some(&live)), Ok(true));
        assert_eq!(matches(&hook, &user("system:serviceaccount:keda:ebb-operator"), Some(&live)), Ok(false));
        assert_eq!(matches(&hook, &user("alice"), Some(&deleting)), Ok(false));
        assert_eq!(matches(&json!({}), &user("alice"), None), Ok(true));
        let eq = json!({"matchConditions": [{"name": "x", "expression": "request.userInfo.username == \"bob\" && has(object.spec)"}]});
        assert_eq!(matches(&eq, &user("bob"), Some(&json!({"spec": {}}))), Ok(true));
        assert_eq!(matches(&eq, &user("bob"), Some(&live)), Ok(false));
    }

    #[test]
    fn other_expressions_are_errors() {
        let hook = json!({"matchConditions": [{"name": "groups", "expression": "'system:masters' in request.userInfo.groups"}]});
        let e = matches(&hook, &user("alice"), None).unwrap_err();
        assert!(e.contains("\"groups\"") && e.contains("not supported"), "{e}");
    }
}
