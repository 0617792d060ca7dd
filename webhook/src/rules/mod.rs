//! Admission rules as named, pure functions: each takes the object (and, for cross-object
//! rules, an index [`Snapshot`]) and returns its [`Finding`]s (denials) and warnings. The
//! ScaledObject rules live in [`scaled_object`], the (Cluster)TriggerAuthentication rules in
//! [`auth`]; [`Verdict`] gathers what every rule said about one object.

pub mod auth;
pub mod scaled_object;

#[cfg(test)]
mod auth_tests;
#[cfg(test)]
mod parser_tests;
#[cfg(test)]
mod tests;

/// One reason to deny, with a bounded `reason` (metric label) and a message for the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Bounded category, used as the `reason` label of the error counter.
    pub reason: &'static str,
    /// What is wrong and where, one line.
    pub message: String,
}

impl Finding {
    pub fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Self { reason, message: message.into() }
    }
}

/// What the rules said about one object: denied when any finding.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub denials: Vec<Finding>,
    pub warnings: Vec<String>,
}

impl Verdict {
    pub fn allowed(&self) -> bool {
        self.denials.is_empty()
    }

    /// Every denial, one after the other (`; `-separated, as the operator reports parse errors).
    pub fn message(&self) -> String {
        self.denials.iter().map(|f| f.message.as_str()).collect::<Vec<_>>().join("; ")
    }

    pub fn deny(&mut self, findings: impl IntoIterator<Item = Finding>) {
        self.denials.extend(findings);
    }

    pub fn warn(&mut self, warnings: impl IntoIterator<Item = String>) {
        self.warnings.extend(warnings);
    }

    /// The distinct reasons, in first-seen order.
    pub fn reasons(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for f in &self.denials {
            if !out.contains(&f.reason) {
                out.push(f.reason);
            }
        }
        out
    }
}
