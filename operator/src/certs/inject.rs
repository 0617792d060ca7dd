//! Publishing the CA bundle where the API server reads it: `spec.caBundle` of the external
//! metrics APIService (dropping `spec.insecureSkipTLSVerify`, which the API refuses next to a
//! caBundle) and `clientConfig.caBundle` of every webhook of the ValidatingWebhookConfiguration.
//!
//! Objects are read and written untyped, so fields this build does not know survive the
//! round trip. A write carries the resourceVersion read; a conflict means someone else wrote
//! in between, and the object is read again and compared afresh. Nothing is written when the
//! value is already right.

use k8s_openapi::ByteString;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use serde_json::Value;

/// Writes attempted per object and pass before giving up on conflicts (the next pass retries).
const CONFLICT_RETRIES: usize = 5;

/// What an injection pass found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Injected {
    /// The object does not exist (yet).
    Missing,
    /// It already carried the bundle.
    Unchanged,
    /// The bundle was written.
    Updated,
}

/// Which object the bundle goes into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// An apiregistration.k8s.io/v1 APIService.
    ApiService,
    /// An admissionregistration.k8s.io/v1 ValidatingWebhookConfiguration.
    ValidatingWebhookConfiguration,
}

impl Target {
    /// Group, kind and plural (all version v1).
    fn names(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::ApiService => ("apiregistration.k8s.io", "APIService", "apiservices"),
            Self::ValidatingWebhookConfiguration => (
                "admissionregistration.k8s.io",
                "ValidatingWebhookConfiguration",
                "validatingwebhookconfigurations",
            ),
        }
    }

    fn resource(self) -> ApiResource {
        let (group, kind, plural) = self.names();
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", kind), plural)
    }

    /// The kind, for messages.
    pub fn kind(self) -> &'static str {
        self.names().1
    }
}

/// Sets the bundle in `data` (the object without metadata); whether anything changed.
pub fn set_bundle(target: Target, data: &mut Value, encoded: &Value) -> bool {
    let mut changed = false;
    let mut set = |client_config: &mut Value| {
        if let Some(obj) = client_config.as_object_mut() {
            if obj.get("caBundle") != Some(encoded) {
                obj.insert("caBundle".into(), encoded.clone());
                changed = true;
            }
            if target == Target::ApiService && obj.remove("insecureSkipTLSVerify").is_some() {
                changed = true;
            }
        }
    };
    match target {
        Target::ApiService => {
            if data.get("spec").is_none_or(Value::is_null) {
                data["spec"] = Value::Object(Default::default());
            }
            set(&mut data["spec"]);
        }
        Target::ValidatingWebhookConfiguration => {
            if let Some(webhooks) = data.get_mut("webhooks").and_then(Value::as_array_mut) {
                for webhook in webhooks {
                    if webhook.get("clientConfig").is_none_or(Value::is_null) {
                        webhook["clientConfig"] = Value::Object(Default::default());
                    }
                    set(&mut webhook["clientConfig"]);
                }
            }
        }
    }
    changed
}

/// Makes sure object `name` of `target` carries `bundle` (PEM) as caBundle.
pub async fn inject(
    client: &Client,
    target: Target,
    name: &str,
    bundle: &str,
) -> Result<Injected, kube::Error> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &target.resource());
    // The API's JSON form of bytes (base64), as k8s-openapi writes it.
    let encoded = serde_json::to_value(ByteString(bundle.as_bytes().to_vec())).unwrap_or(Value::Null);
    let mut result = Injected::Unchanged;
    for _ in 0..CONFLICT_RETRIES {
        let Some(mut obj) = api.get_opt(name).await? else {
            return Ok(Injected::Missing);
        };
        if !set_bundle(target, &mut obj.data, &encoded) {
            return Ok(result);
        }
        match api.replace(name, &PostParams::default(), &obj).await {
            Ok(_) => {
                tracing::info!(kind = target.kind(), name, "CA bundle injected");
                result = Injected::Updated;
            }
            Err(kube::Error::Api(status)) if status.is_conflict() => {
                tracing::debug!(
                    kind = target.kind(),
                    name,
                    "conflict injecting the CA bundle; reading again"
                );
            }
            Err(e) => return Err(e),
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    #[test]
    fn apiservice_gets_the_bundle_and_loses_insecure_skip() {
        let enc = json!("QUJD");
        let mut data = json!({"spec": {"group": "g", "insecureSkipTLSVerify": true}});
        assert!(set_bundle(Target::ApiService, &mut data, &enc));
        assert_eq!(data, json!({"spec": {"group": "g", "caBundle": "QUJD"}}));
        assert!(!set_bundle(Target::ApiService, &mut data, &enc));
    }

    #[test]
    fn every_webhook_gets_the_bundle() {
        let enc = json!("QUJD");
        let mut data = json!({"webhooks": [
            {"name": "a", "clientConfig": {"caBundle": "", "service": {"name": "s"}}},
            {"name": "b", "clientConfig": {"caBundle": "QUJD"}},
            {"name": "c"}]});
        assert!(set_bundle(Target::ValidatingWebhookConfiguration, &mut data, &enc));
        for w in data["webhooks"].as_array().unwrap() {
            assert_eq!(w["clientConfig"]["caBundle"], enc);
        }
        assert_eq!(data["webhooks"][0]["clientConfig"]["service"]["name"], "s");
        assert!(!set_bundle(Target::ValidatingWebhookConfiguration, &mut data, &enc));
    }
}
