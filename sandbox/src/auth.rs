//! Authentication and authorization of the control plane: bearer tokens from a static list
//! (each naming a user and groups), and a deny list consulted for SubjectAccessReviews (every
//! authenticated user is otherwise allowed everything: the sandbox has no RBAC).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::RwLock;

use crate::control::UserInfo;

/// Static tokens and authorization overrides.
#[derive(Debug, Default)]
pub struct Auth {
    tokens: RwLock<BTreeMap<String, UserInfo>>,
    denied: RwLock<BTreeSet<String>>,
}

impl Auth {
    pub fn add_token(&self, token: &str, user: UserInfo) {
        self.tokens.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(token.to_owned(), user);
    }

    /// The user a bearer token belongs to.
    pub fn authenticate(&self, token: &str) -> Option<UserInfo> {
        self.tokens.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(token).cloned()
    }

    /// Makes SubjectAccessReviews for `username` answer "denied".
    pub fn deny(&self, username: &str) {
        self.denied.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(username.to_owned());
    }

    pub fn allowed(&self, username: &str) -> bool {
        !self.denied.read().unwrap_or_else(std::sync::PoisonError::into_inner).contains(username)
    }
}
