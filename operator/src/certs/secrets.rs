//! The two Secrets of the operator's certificate management, kept with optimistic concurrency
//! so that every replica can run it at once without fighting: each pass reads the Secret,
//! decides ([`super::pki`]), and writes only when something must change — a create that finds
//! the Secret already there, or a replace whose resourceVersion is stale, means another replica
//! wrote first, so the Secret is read again and the decision made afresh.
//!
//! - CA Secret (type Opaque): `ca.crt`, `ca.key`.
//! - Serving Secret (type kubernetes.io/tls): `tls.crt`, `tls.key`, `ca.crt` (the CA bundle:
//!   current CA first, then earlier CAs still valid). It never holds the CA's key.
//!
//! An existing Secret keeps its type, labels, annotations and any other keys; only the keys
//! above are written.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Resource;
use kube::api::{Api, PostParams};
use kube::runtime::events::{Event, EventType};

use super::pki::{self, Ca, Reason, Serving};
use super::{CertError, CertManager};

/// Writes attempted per Secret and pass before giving up on conflicts (the next pass retries).
const CONFLICT_RETRIES: usize = 5;

pub const TLS_CRT: &str = "tls.crt";
pub const TLS_KEY: &str = "tls.key";
pub const CA_CRT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";

const TYPE_TLS: &str = "kubernetes.io/tls";
const TYPE_OPAQUE: &str = "Opaque";

fn key<'a>(secret: &'a Secret, name: &str) -> &'a [u8] {
    secret.data.as_ref().and_then(|d| d.get(name)).map(|b| b.0.as_slice()).unwrap_or_default()
}

/// What the serving-Secret pass settled on.
pub struct ServingState {
    pub serving: Serving,
    pub bundle: String,
}

impl CertManager {
    fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &self.cfg.namespace)
    }

    fn secret_name(&self, name: &str) -> String {
        format!("{}/{name}", self.cfg.namespace)
    }

    /// Makes sure the CA Secret holds a usable CA that outlives the next certificate; returns it.
    pub(super) async fn ensure_ca(&self, now: i64) -> Result<Ca, CertError> {
        let api = self.secrets();
        let name = &self.cfg.ca_secret;
        for _ in 0..CONFLICT_RETRIES {
            let existing = api
                .get_opt(name)
                .await
                .map_err(|e| CertError::kube("reading Secret", self.secret_name(name), e))?;
            let parsed = existing.as_ref().map(|s| Ca::parse(key(s, CA_CRT), key(s, CA_KEY)));
            let reason = match pki::plan_ca(parsed.as_ref(), now, &self.cfg.timing) {
                Ok(()) => match parsed {
                    Some(Ok(ca)) => return Ok(ca),
                    // plan_ca keeps only a parsed CA.
                    _ => Reason::Missing,
                },
                Err(reason) => reason,
            };
            let ca = Ca::generate(now, self.cfg.timing.ca_validity)?;
            let data = [(CA_CRT, ca.cert_pem.clone()), (CA_KEY, ca.key_pem.clone())];
            if let Some(written) = self.write(&api, name, existing, TYPE_OPAQUE, &data).await? {
                tracing::info!(
                    secret = %self.secret_name(name),
                    reason = reason.word(),
                    serial = %ca.info.serial,
                    not_after = %pki::rfc3339(ca.info.not_after),
                    "certificate authority created: {reason}"
                );
                let note = format!(
                    "New CA (serial {}, valid until {}): {reason}",
                    ca.info.serial,
                    pki::rfc3339(ca.info.not_after)
                );
                self.event(&written, "CertificateAuthorityCreated", note).await;
                return Ok(ca);
            }
        }
        Err(CertError::Conflicts(self.secret_name(name)))
    }

    /// Makes sure the serving Secret holds a certificate from `ca` for the configured names that
    /// is not yet due for renewal, and the current CA bundle.
    pub(super) async fn ensure_serving(&self, ca: &Ca, now: i64) -> Result<ServingState, CertError> {
        let api = self.secrets();
        let name = &self.cfg.certificate_secret;
        for _ in 0..CONFLICT_RETRIES {
            let existing = api
                .get_opt(name)
                .await
                .map_err(|e| CertError::kube("reading Secret", self.secret_name(name), e))?;
            let parsed = existing.as_ref().map(|s| Serving::parse(key(s, TLS_CRT), key(s, TLS_KEY)));
            let previous_bundle = existing.as_ref().map(|s| key(s, CA_CRT)).unwrap_or_default();
            let bundle = pki::bundle(&ca.info, previous_bundle, now);
            let plan =
                pki::plan_serving(parsed.as_ref(), &ca.info, &self.cfg.dns_names, now, &self.cfg.timing);
            let (serving, reason) = match (plan, parsed) {
                (Ok(()), Some(Ok(serving))) => {
                    if previous_bundle == bundle.as_bytes() {
                        return Ok(ServingState { serving, bundle });
                    }
                    (serving, None)
                }
                (Ok(()), _) => {
                    (ca.issue(&self.cfg.dns_names, now, self.cfg.timing.validity)?, Some(Reason::Missing))
                }
                (Err(reason), _) => {
                    (ca.issue(&self.cfg.dns_names, now, self.cfg.timing.validity)?, Some(reason))
                }
            };
            let data = [
                (TLS_CRT, serving.cert_pem.clone()),
                (TLS_KEY, serving.key_pem.clone()),
                (CA_CRT, bundle.clone()),
            ];
            let Some(written) = self.write(&api, name, existing, TYPE_TLS, &data).await? else {
                continue;
            };
            let cas = pki::parse_certs(bundle.as_bytes()).map(|c| c.len()).unwrap_or(0);
            match reason {
                Some(reason) => {
                    tracing::info!(
                        secret = %self.secret_name(name),
                        reason = reason.word(),
                        serial = %serving.info.serial,
                        not_after = %pki::rfc3339(serving.info.not_after),
                        bundle_cas = cas,
                        "serving certificate issued: {reason}"
                    );
                    let note = format!(
                        "New serving certificate (serial {}, valid until {}): {reason}",
                        serving.info.serial,
                        pki::rfc3339(serving.info.not_after)
                    );
                    self.event(&written, "CertificateIssued", note).await;
                }
                None => {
                    tracing::info!(secret = %self.secret_name(name), bundle_cas = cas, "CA bundle updated")
                }
            }
            return Ok(ServingState { serving, bundle });
        }
        Err(CertError::Conflicts(self.secret_name(name)))
    }

    /// Creates the Secret (when `existing` is None) or replaces it at the resourceVersion read.
    /// `None` when another writer came first.
    async fn write(
        &self,
        api: &Api<Secret>,
        name: &str,
        existing: Option<Secret>,
        type_: &str,
        data: &[(&str, String)],
    ) -> Result<Option<Secret>, CertError> {
        let creating = existing.is_none();
        let mut secret = existing.unwrap_or_else(|| Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some(self.cfg.namespace.clone()),
                labels: Some(BTreeMap::from([
                    ("app.kubernetes.io/managed-by".to_owned(), crate::NAME.to_owned()),
                    ("app.kubernetes.io/part-of".to_owned(), "ebb".to_owned()),
                ])),
                ..Default::default()
            },
            type_: Some(type_.to_owned()),
            ..Default::default()
        });
        let map = secret.data.get_or_insert_with(BTreeMap::new);
        for (k, v) in data {
            map.insert((*k).to_owned(), ByteString(v.as_bytes().to_vec()));
        }
        secret.string_data = None;
        let pp = PostParams { field_manager: Some(crate::NAME.to_owned()), ..Default::default() };
        let result =
            if creating { api.create(&pp, &secret).await } else { api.replace(name, &pp, &secret).await };
        match result {
            Ok(written) => Ok(Some(written)),
            Err(kube::Error::Api(s)) if s.is_conflict() || s.is_already_exists() => {
                tracing::debug!(secret = %self.secret_name(name), "written by another replica first; reading again");
                Ok(None)
            }
            Err(e) => Err(CertError::kube(
                if creating { "creating Secret" } else { "updating Secret" },
                self.secret_name(name),
                e,
            )),
        }
    }

    /// Records a Normal event on `secret`; failures are logged only.
    async fn event(&self, secret: &Secret, reason: &str, note: String) {
        let Some(recorder) = &self.recorder else { return };
        let ev = Event {
            type_: EventType::Normal,
            reason: reason.to_owned(),
            note: Some(note),
            action: "Issue".to_owned(),
            secondary: None,
        };
        if let Err(e) = recorder.publish(&ev, &secret.object_ref(&())).await {
            tracing::warn!(reason, "cannot record event: {e}");
        }
    }
}
