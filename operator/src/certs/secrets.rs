//! The Secrets of the operator's certificate management, kept with optimistic concurrency so
//! that every replica can run it at once without fighting: each pass reads a Secret, decides
//! ([`super::pki`]), and writes only when something must change — a create that finds the
//! Secret already there, or a replace whose resourceVersion is stale, means another replica
//! wrote first, so the Secret is read again and the decision made afresh.
//!
//! - CA Secret (type Opaque): `ca.crt`, `ca.key` (the CA that signs); during a rotation also
//!   `next.crt`, `next.key` (published, not signing yet) and `retired.crt` (no longer signing,
//!   still trusted); annotations `ebb.keda.sh/ca-bundle-since` and `ebb.keda.sh/ca-leaves-since`
//!   (Unix seconds) record when the rotation's last step was seen everywhere. Read by the
//!   operator only.
//! - One Secret per leaf (type kubernetes.io/tls): `tls.crt`, `tls.key`, `ca.crt` (the CA
//!   bundle: every trusted CA). It never holds a CA's key.
//!
//! An existing Secret keeps its type, labels, other annotations and any other keys; only the
//! keys above are written (and, in the CA Secret, removed when a step no longer needs them).

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Resource;
use kube::api::{Api, PostParams};
use kube::runtime::events::{Event, EventType};

use super::pki::rotation::{self, Authority, Change};
use super::pki::{self, Ca, CertInfo, Leaf, LeafSpec, Reason};
use super::{CertError, CertManager};

/// Writes attempted per Secret and pass before giving up on conflicts (the next pass retries).
const CONFLICT_RETRIES: usize = 5;

pub const TLS_CRT: &str = "tls.crt";
pub const TLS_KEY: &str = "tls.key";
pub const CA_CRT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
/// The next CA of a rotation in progress (CA Secret).
pub const NEXT_CRT: &str = "next.crt";
pub const NEXT_KEY: &str = "next.key";
/// Retired CAs still trusted (CA Secret).
pub const RETIRED_CRT: &str = "retired.crt";
/// Since when every trust bundle holds every CA (CA Secret annotation, Unix seconds).
pub const BUNDLE_SINCE: &str = "ebb.keda.sh/ca-bundle-since";
/// Since when every leaf is signed by the signing CA (CA Secret annotation, Unix seconds).
pub const LEAVES_SINCE: &str = "ebb.keda.sh/ca-leaves-since";

const TYPE_TLS: &str = "kubernetes.io/tls";
const TYPE_OPAQUE: &str = "Opaque";

fn key<'a>(secret: &'a Secret, name: &str) -> &'a [u8] {
    secret.data.as_ref().and_then(|d| d.get(name)).map(|b| b.0.as_slice()).unwrap_or_default()
}

fn annotation(secret: &Secret, name: &str) -> Option<i64> {
    secret.metadata.annotations.as_ref()?.get(name)?.trim().parse().ok()
}

/// Reads the authority stored in the CA Secret. An unusable `next.crt` is dropped (a new
/// rotation starts over); an unusable signing CA makes the whole Secret unusable.
pub fn parse_authority(secret: &Secret) -> Result<Authority, String> {
    let signing = Ca::parse(key(secret, CA_CRT), key(secret, CA_KEY))?;
    let next = Some(key(secret, NEXT_CRT))
        .filter(|c| !c.is_empty())
        .and_then(|c| Ca::parse(c, key(secret, NEXT_KEY)).ok());
    let retired = pki::parse_certs(key(secret, RETIRED_CRT))
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.is_ca)
        .collect();
    Ok(Authority {
        signing,
        next,
        retired,
        bundle_since: annotation(secret, BUNDLE_SINCE),
        leaves_since: annotation(secret, LEAVES_SINCE),
    })
}

/// Every CA certificate readable in `secret` under `keys`, whatever else is wrong with it.
fn readable_cas(secret: &Secret, keys: &[&str]) -> Vec<CertInfo> {
    keys.iter()
        .flat_map(|k| pki::parse_certs(key(secret, k)).unwrap_or_default())
        .filter(|c| c.is_ca)
        .collect()
}

/// What the pass did with one leaf.
pub struct LeafState {
    pub leaf: Leaf,
    /// A new certificate was issued in this pass.
    pub switched: bool,
}

impl CertManager {
    fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &self.cfg.namespace)
    }

    fn secret_name(&self, name: &str) -> String {
        format!("{}/{name}", self.cfg.namespace)
    }

    /// Every CA published so far in the leaf Secrets' bundles.
    async fn published_cas(&self) -> Result<Vec<CertInfo>, CertError> {
        let api = self.secrets();
        let mut out = Vec::new();
        for spec in &self.cfg.leaves {
            let found = api
                .get_opt(&spec.secret)
                .await
                .map_err(|e| CertError::kube("reading Secret", self.secret_name(&spec.secret), e))?;
            out.extend(found.iter().flat_map(|s| readable_cas(s, &[CA_CRT])));
        }
        Ok(out)
    }

    /// Reads the CA Secret, takes the CA's next step if one is due ([`rotation::advance`]) and
    /// writes it; returns the authority and the Secret as stored.
    pub(super) async fn ensure_authority(&self, now: i64) -> Result<(Authority, Secret), CertError> {
        let api = self.secrets();
        let name = &self.cfg.ca_secret;
        for _ in 0..CONFLICT_RETRIES {
            let existing = api
                .get_opt(name)
                .await
                .map_err(|e| CertError::kube("reading Secret", self.secret_name(name), e))?;
            let parsed = existing.as_ref().map(parse_authority);
            let usable = matches!(&parsed, Some(Ok(a)) if a.signing.info.not_after > now);
            let published = if usable {
                Vec::new()
            } else {
                let mut cas = existing
                    .iter()
                    .flat_map(|s| readable_cas(s, &[CA_CRT, NEXT_CRT, RETIRED_CRT]))
                    .collect::<Vec<_>>();
                cas.extend(self.published_cas().await?);
                cas
            };
            let (authority, change) = rotation::advance(parsed.as_ref(), &published, now, &self.cfg.timing)?;
            let (change, existing) = match (change, existing) {
                (None, Some(secret)) => return Ok((authority, secret)),
                (change, existing) => (change, existing),
            };
            let Some(written) = self.write_authority(&api, existing, &authority).await? else { continue };
            if let Some(change) = change {
                tracing::info!(
                    secret = %self.secret_name(name),
                    step = change.word(),
                    signing_serial = %authority.signing.info.serial,
                    signing_not_after = %pki::rfc3339(authority.signing.info.not_after),
                    trusted = authority.trusted().len(),
                    "certificate authority: {change}"
                );
                let reason = match change {
                    Change::Created { .. } => "CertificateAuthorityCreated",
                    Change::Published { .. } => "CertificateAuthorityPublished",
                    Change::Switched => "CertificateAuthoritySwitched",
                    Change::Retired { .. } => "CertificateAuthorityRetired",
                };
                let note = format!(
                    "{change} (signing CA serial {}, valid until {})",
                    authority.signing.info.serial,
                    pki::rfc3339(authority.signing.info.not_after)
                );
                self.event(&written, reason, note).await;
            }
            return Ok((authority, written));
        }
        Err(CertError::Conflicts(self.secret_name(name)))
    }

    /// Stores what a pass observed (timestamps only) at the resourceVersion the pass read; a
    /// conflict means another replica changed the CA Secret, and this pass's observation is
    /// dropped (the next pass observes again).
    pub(super) async fn record(&self, authority: Authority, read: Secret) -> Result<Authority, CertError> {
        if self.write_authority(&self.secrets(), Some(read), &authority).await?.is_none() {
            tracing::debug!(secret = %self.secret_name(&self.cfg.ca_secret), "CA changed during the pass; observing again");
        }
        Ok(authority)
    }

    async fn write_authority(
        &self,
        api: &Api<Secret>,
        existing: Option<Secret>,
        a: &Authority,
    ) -> Result<Option<Secret>, CertError> {
        let mut data =
            vec![(CA_CRT, Some(a.signing.cert_pem.clone())), (CA_KEY, Some(a.signing.key_pem.clone()))];
        data.push((NEXT_CRT, a.next.as_ref().map(|n| n.cert_pem.clone())));
        data.push((NEXT_KEY, a.next.as_ref().map(|n| n.key_pem.clone())));
        let retired: String = a.retired.iter().map(CertInfo::pem).collect();
        data.push((RETIRED_CRT, Some(retired).filter(|r| !r.is_empty())));
        let annotations = [
            (BUNDLE_SINCE, a.bundle_since.map(|t| t.to_string())),
            (LEAVES_SINCE, a.leaves_since.map(|t| t.to_string())),
        ];
        self.write(api, &self.cfg.ca_secret, existing, TYPE_OPAQUE, &data, &annotations).await
    }

    /// Makes sure the leaf's Secret holds a certificate for `spec` that [`pki::plan_leaf`]
    /// keeps, and `bundle`.
    pub(super) async fn ensure_leaf(
        &self,
        spec: &LeafSpec,
        authority: &Authority,
        bundle: &str,
        now: i64,
    ) -> Result<LeafState, CertError> {
        let api = self.secrets();
        let name = &spec.secret;
        let timing = &self.cfg.timing;
        for _ in 0..CONFLICT_RETRIES {
            let existing = api
                .get_opt(name)
                .await
                .map_err(|e| CertError::kube("reading Secret", self.secret_name(name), e))?;
            let parsed = existing.as_ref().map(|s| Leaf::parse(key(s, TLS_CRT), key(s, TLS_KEY)));
            let previous_bundle = existing.as_ref().map(|s| key(s, CA_CRT)).unwrap_or_default();
            let plan = pki::plan_leaf(parsed.as_ref(), spec, authority, now, timing);
            let (leaf, reason) = match (plan, parsed) {
                (Ok(()), Some(Ok(leaf))) => {
                    if previous_bundle == bundle.as_bytes() {
                        return Ok(LeafState { leaf, switched: false });
                    }
                    (leaf, None)
                }
                (Ok(()), _) => (authority.signing.issue(spec, now, timing.validity)?, Some(Reason::Missing)),
                (Err(reason), _) => (authority.signing.issue(spec, now, timing.validity)?, Some(reason)),
            };
            let data = [
                (TLS_CRT, Some(leaf.cert_pem.clone())),
                (TLS_KEY, Some(leaf.key_pem.clone())),
                (CA_CRT, Some(bundle.to_owned())),
            ];
            let Some(written) = self.write(&api, name, existing, TYPE_TLS, &data, &[]).await? else {
                continue;
            };
            let cas = pki::parse_certs(bundle.as_bytes()).map(|c| c.len()).unwrap_or(0);
            let component = spec.component.name();
            match &reason {
                Some(reason) => {
                    tracing::info!(
                        secret = %self.secret_name(name),
                        component,
                        reason = reason.word(),
                        serial = %leaf.info.serial,
                        not_after = %pki::rfc3339(leaf.info.not_after),
                        bundle_cas = cas,
                        "certificate issued: {reason}"
                    );
                    let note = format!(
                        "New {component} certificate (serial {}, valid until {}): {reason}",
                        leaf.info.serial,
                        pki::rfc3339(leaf.info.not_after)
                    );
                    self.event(&written, "CertificateIssued", note).await;
                }
                None => {
                    tracing::info!(secret = %self.secret_name(name), component, bundle_cas = cas, "CA bundle updated")
                }
            }
            return Ok(LeafState { leaf, switched: reason.is_some() });
        }
        Err(CertError::Conflicts(self.secret_name(name)))
    }

    /// Creates the Secret (when `existing` is None) or replaces it at the resourceVersion read,
    /// setting the `data` keys given as `Some` and removing those given as `None` (likewise
    /// `annotations`). `None` when another writer came first.
    async fn write(
        &self,
        api: &Api<Secret>,
        name: &str,
        existing: Option<Secret>,
        type_: &str,
        data: &[(&str, Option<String>)],
        annotations: &[(&str, Option<String>)],
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
            match v {
                Some(v) => map.insert((*k).to_owned(), ByteString(v.as_bytes().to_vec())),
                None => map.remove(*k),
            };
        }
        if !annotations.is_empty() {
            let map = secret.metadata.annotations.get_or_insert_with(BTreeMap::new);
            for (k, v) in annotations {
                match v {
                    Some(v) => map.insert((*k).to_owned(), v.clone()),
                    None => map.remove(*k),
                };
            }
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
