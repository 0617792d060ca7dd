//! TokenReview and SubjectAccessReview: create-only virtual resources answered from the
//! control plane's token list and deny list, so delegated authentication and authorization
//! in an aggregated API server are exercised for real.

use serde_json::{Value, json};

use crate::control::ControlPlane;
use crate::resources::Resource;
use crate::status::ApiError;

/// Answers a POSTed review with its status filled in.
pub fn answer(cp: &ControlPlane, res: &Resource, mut review: Value) -> Result<Value, ApiError> {
    match res.kind.as_str() {
        "TokenReview" => {
            let token = review.pointer("/spec/token").and_then(Value::as_str).unwrap_or_default();
            review["status"] = match cp.auth.authenticate(token) {
                Some(u) => {
                    json!({"authenticated": true, "user": {"username": u.username, "groups": u.groups}})
                }
                None => json!({"authenticated": false, "error": "invalid bearer token"}),
            };
        }
        "SubjectAccessReview" => {
            let user = review.pointer("/spec/user").and_then(Value::as_str).unwrap_or_default();
            if user.is_empty() {
                return Err(ApiError::invalid(&res.group, &res.kind, "", "spec.user: Required value"));
            }
            let allowed = cp.auth.allowed(user);
            review["status"] = if allowed {
                json!({"allowed": true, "reason": "the sandbox allows every authenticated user"})
            } else {
                json!({"allowed": false, "denied": true, "reason": format!("user {user:?} is denied by the sandbox")})
            };
        }
        other => return Err(ApiError::method_not_allowed(format!("{other} cannot be created"))),
    }
    review["apiVersion"] = Value::String(res.api_version());
    review["kind"] = Value::String(res.kind.clone());
    Ok(review)
}
