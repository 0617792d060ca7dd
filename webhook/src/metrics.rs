//! The webhook's Prometheus metrics, named as KEDA's so its dashboard works unchanged:
//! `keda_webhook_scaled_object_validations_total{namespace, action}` counts ScaledObject
//! validations and `keda_webhook_scaled_object_validation_errors_total{namespace, action,
//! reason}` counts denials, once per distinct bounded reason (never a message).

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

/// Counters of ScaledObject validations.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    validations: Family<ValidationLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
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

    /// Records one validation (`action` is `create` or `update`) and its denial reasons.
    pub fn record(&self, namespace: &str, action: &str, reasons: &[&'static str]) {
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
        m.record("ns", "create", &[]);
        m.record("ns", "create", &["duplicate-target", "invalid-spec"]);
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
}
