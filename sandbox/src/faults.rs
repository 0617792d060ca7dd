//! Fault injection for tests: make chosen requests fail with a status code, delay them, or cut
//! watch streams, a given number of times. Rules match on method and a path substring.

use std::sync::Mutex;
use std::time::Duration;

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultAction {
    /// Answer with this HTTP status (429, 500, …) and a `Status` body.
    Fail(u16),
    /// Wait this long before handling the request.
    Delay(Duration),
    /// End matching watch streams at once.
    DropWatch,
}

/// One rule: requests whose method matches (None = any) and whose path contains `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    pub method: Option<String>,
    pub path: String,
    pub action: FaultAction,
    /// How many more requests it applies to (None = until cleared).
    pub remaining: Option<u32>,
}

/// The set of active rules.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<FaultRule>>,
}

impl Faults {
    pub fn add(&self, rule: FaultRule) {
        self.rules.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(rule);
    }

    pub fn clear(&self) {
        self.rules.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }

    /// The actions for a request, consuming one use of each matching rule.
    pub fn take(&self, method: &str, path: &str) -> Vec<FaultAction> {
        let mut rules = self.rules.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = Vec::new();
        for r in rules.iter_mut() {
            let method_ok = r.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method));
            if method_ok && path.contains(&r.path) && r.remaining != Some(0) {
                out.push(r.action.clone());
                if let Some(n) = r.remaining.as_mut() {
                    *n -= 1;
                }
            }
        }
        rules.retain(|r| r.remaining != Some(0));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_and_run_out() {
        let f = Faults::default();
        f.add(FaultRule {
            method: Some("GET".into()),
            path: "/deployments".into(),
            action: FaultAction::Fail(500),
            remaining: Some(1),
        });
        assert!(f.take("POST", "/apis/apps/v1/namespaces/d/deployments").is_empty());
        assert_eq!(f.take("get", "/apis/apps/v1/namespaces/d/deployments"), [FaultAction::Fail(500)]);
        assert!(f.take("GET", "/apis/apps/v1/namespaces/d/deployments").is_empty());
    }
}
