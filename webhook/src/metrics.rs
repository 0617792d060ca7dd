//! The webhook's Prometheus metrics, named as KEDA's so its dashboard works unchanged:
//! `keda_webhook_scaled_object_validations_total{namespace, action}` counts ScaledObject
//! validations and `keda_webhook_scaled_object_validation_errors_total{namespace, action,
//! reason}` counts denials, once per distinct bounded reason (never a message).
//!
//! Every label value is bounded: the review's sender chooses its namespace, so a namespace is
//! used as a label only when the caller says it is known (the watches have seen a ScaledObject or
//! an HPA in it) and while fewer than [`MAX_NAMESPACE_LABELS`] namespaces have been used;
//! otherwise it is counted under [`OTHER_NAMESPACE`]. `action` is `create` or `update` and
//! `reason` one of the rules' fixed reasons.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ValidationLabels {
    pub namespace: String,
    pub action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub namespace: String,
    pub action: String,
    pub reason: String,
}

/// The `namespace` label of reviews from namespaces the webhook does not know (or past the
/// cap). Not a valid namespace name (`_`), so it never collides with a real one.
pub const OTHER_NAMESPACE: &str = "_other";

/// Most distinct namespace label values the counters ever hold.
pub const MAX_NAMESPACE_LABELS: usize = 5_000;

/// Counters of ScaledObject validations.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    validations: Family<ValidationLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    namespaces: Arc<Mutex<HashSet<Box<str>>>>,
}

impl Metrics {
    /// Creates the counters and registers them on `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "keda_webhook_scaled_object_validations",
            "ScaledObject validations by the admission webhook",
            m.validations.clone(),
        );
        registry.register(
            "keda_webhook_scaled_object_validation_errors",
            "ScaledObject validations that denied the object, by reason",
            m.errors.clone(),
        );
        m
    }

    /// The label for `namespace`: itself when `known` and under the cap, else
    /// [`OTHER_NAMESPACE`].
    fn namespace_label<'a>(&self, namespace: &'a str, known: bool) -> &'a str {
        if !known {
            return OTHER_NAMESPACE;
        }
        // A set of names only: a panic elsewhere cannot leave it torn.
        let mut seen = self.namespaces.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.contains(namespace) {
            namespace
        } else if seen.len() < MAX_NAMESPACE_LABELS {
            seen.insert(namespace.into());
            namespace
        } else {
            OTHER_NAMESPACE
        }
    }

    /// Records one validation (`action` is `create` or `update`) and its denial reasons;
    /// `known` says whether `namespace` is one the watches have seen (see the module doc).
    pub fn record(&self, namespace: &str, known: bool, action: &'static str, reasons: &[&'static str]) {
        let namespace = self.namespace_label(namespace, known);
        let labels = ValidationLabels { namespace: namespace.to_owned(), action: action.to_owned() };
        self.validations.get_or_create(&labels).inc();
        for r in reasons {
            let labels = ErrorLabels {
                namespace: namespace.to_owned(),
                action: action.to_owned(),
                reason: (*r).to_owned(),
            };
            self.errors.get_or_create(&labels).inc();
        }
    }

    /// Validations counted for `namespace`/`action` (tests).
    pub fn validations(&self, namespace: &str, action: &str) -> u64 {
        let labels = ValidationLabels { namespace: namespace.to_owned(), action: action.to_owned() };
        self.validations.get_or_create(&labels).get()
    }

    /// Denials counted for `namespace`/`action`/`reason` (tests).
    pub fn errors(&self, namespace: &str, action: &str, reason: &str) -> u64 {
        let labels = ErrorLabels {
            namespace: namespace.to_owned(),
            action: action.to_owned(),
            reason: reason.to_owned(),
        };
        self.errors.get_or_create(&labels).get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_keda_names_and_labels() {
        let mut registry = Registry::default();
        let m = Metrics::register(&mut registry);
        m.record("ns", true, "create", &[]);
        m.record("ns", true, "create", &["duplicate-target", "invalid-spec"]);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(
                "keda_webhook_scaled_object_validations_total{namespace=\"ns\",action=\"create\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains(
            "keda_webhook_scaled_object_validation_errors_total{namespace=\"ns\",action=\"create\",reason=\"duplicate-target\"} 1"
        ), "{text}");
        assert_eq!(m.errors("ns", "create", "invalid-spec"), 1);
    }

    #[test]
    fn unknown_namespaces_and_those_past_the_cap_share_one_label() {
        let m = Metrics::default();
        m.record("forged", false, "create", &["invalid-spec"]);
        assert_eq!(m.validations(OTHER_NAMESPACE, "create"), 1);
        assert_eq!(m.errors(OTHER_NAMESPACE, "create", "invalid-spec"), 1);
        for i in 0..MAX_NAMESPACE_LABELS {
            m.record(&format!("ns-{i}"), true, "update", &[]);
        }
        m.record("one-too-many", true, "update", &[]);
        m.record("ns-0", true, "update", &[]);
        assert_eq!(m.validations(OTHER_NAMESPACE, "update"), 1);
        assert_eq!(m.validations("ns-0", "update"), 2);
    }
}
