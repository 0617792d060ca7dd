//! The staged CA rotation: which CAs are trusted, which one signs, and when each step is taken.
//! A client verifies a leaf only against the CAs it has been given, and both the bundle and the
//! leaves reach their readers late (the kubelet updates mounted Secrets after a while, the API
//! server reads a caBundle when it notices it), so a rotation never changes the bundle and the
//! leaves in one step:
//!
//! 1. **Publish**: the CA due for replacement keeps signing; the new one (`next`) joins the
//!    bundle. Leaves are untouched.
//! 2. **Switch**: once the bundle holding `next` has been written everywhere (`bundle_since`)
//!    and the overlap has passed, `next` signs and the old CA is `retired` — still in the
//!    bundle. Every leaf is issued again from the new CA.
//! 3. **Retire**: once every leaf is signed by the new CA (`leaves_since`) and the overlap has
//!    passed, the retired CA leaves the bundle.
//!
//! When the CA cannot be used at all (its Secret deleted or broken, the key not matching, the
//! CA expired), a new CA signs at once, but every CA still found in the published bundles stays
//! trusted and leaves they signed are kept until the new bundle has propagated ([`super::plan_leaf`]);
//! then as in steps 2 and 3. Deleting the CA Secret is thus also how to rotate the CA on demand.
//! An expired CA leaves the bundle whatever the step.
//!
//! Everything here is pure: time is an argument, the state is what the CA Secret stores.

use super::{Ca, CertInfo, GenerateError, Reason, Timing, cert_pem, secs};

/// The CA side, as stored in the CA Secret.
#[derive(Clone, Debug)]
pub struct Authority {
    /// Signs every new leaf.
    pub signing: Ca,
    /// Published in the bundle, not signing yet (a rotation in step 1).
    pub next: Option<Ca>,
    /// No longer signing, still trusted (a rotation in step 3).
    pub retired: Vec<CertInfo>,
    /// Since when every trust bundle holds every CA of this authority (Unix seconds).
    pub bundle_since: Option<i64>,
    /// Since when every leaf is signed by `signing` (Unix seconds).
    pub leaves_since: Option<i64>,
}

/// What [`advance`] changed; `None` from it means nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A new CA signs at once (the stored one is unusable); earlier CAs stay trusted.
    Created { reason: Reason, kept: usize },
    /// Step 1: the next CA joins the bundle.
    Published { reason: Reason },
    /// Step 2: the next CA signs; the old one is retired.
    Switched,
    /// Step 3 (or expiry): retired CAs leave the bundle.
    Retired { count: usize },
}

impl Change {
    /// A short machine-friendly word for events and logs.
    pub fn word(&self) -> &'static str {
        match self {
            Self::Created { .. } => "created",
            Self::Published { .. } => "published",
            Self::Switched => "switched",
            Self::Retired { .. } => "retired",
        }
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Created { reason, kept } => {
                write!(f, "new CA signing now ({reason}); {kept} earlier CA(s) still trusted")
            }
            Self::Published { reason } => write!(f, "next CA published in the bundle ({reason})"),
            Self::Switched => f.write_str("the next CA signs now; the previous one is retired"),
            Self::Retired { count } => write!(f, "{count} retired CA(s) removed from the bundle"),
        }
    }
}

impl Authority {
    /// A fresh authority around `signing`.
    pub fn new(signing: Ca) -> Self {
        Self { signing, next: None, retired: Vec::new(), bundle_since: None, leaves_since: None }
    }

    /// Every trusted CA: signing, next, retired.
    pub fn trusted(&self) -> Vec<&CertInfo> {
        let mut out = vec![&self.signing.info];
        out.extend(self.next.as_ref().map(|n| &n.info));
        out.extend(&self.retired);
        out
    }

    /// The CA bundle (PEM): every trusted CA, newest first, so that a step which only moves a
    /// CA between roles leaves the bytes unchanged.
    pub fn bundle(&self) -> String {
        let mut cas = self.trusted();
        cas.sort_by(|a, b| b.not_before.cmp(&a.not_before).then_with(|| a.der.cmp(&b.der)));
        cas.dedup_by(|a, b| a.der == b.der);
        cas.into_iter().map(|c| cert_pem(&c.der)).collect()
    }

    /// Whether the bundle has been everywhere for the overlap: leaves may now come from
    /// `signing`, and `next` may start signing.
    pub fn switch_ready(&self, now: i64, timing: &Timing) -> bool {
        self.bundle_since.is_some_and(|t| now >= t.saturating_add(secs(timing.overlap)))
    }

    /// Whether every leaf has been signed by `signing` for the overlap: retired CAs may go.
    pub fn retire_ready(&self, now: i64, timing: &Timing) -> bool {
        self.leaves_since.is_some_and(|t| now >= t.saturating_add(secs(timing.overlap)))
    }

    /// When the next step is due (Unix seconds), if one is pending on time alone.
    pub fn next_step_at(&self, timing: &Timing) -> Option<i64> {
        let overlap = secs(timing.overlap);
        let publish = self.next.as_ref().and(self.bundle_since).map(|t| t.saturating_add(overlap));
        let retire = (!self.retired.is_empty())
            .then_some(self.leaves_since)
            .flatten()
            .map(|t| t.saturating_add(overlap));
        let expiry = self.retired.iter().map(|c| c.not_after).min();
        [publish, retire, expiry].into_iter().flatten().min()
    }
}

/// Takes the next step of the CA's life, if one is due. `stored` is the CA Secret's content
/// (`None`: no Secret; `Err`: unusable), `published` every CA certificate found in the bundles
/// published so far (kept trusted when the stored CA must be replaced at once).
pub fn advance(
    stored: Option<&Result<Authority, String>>,
    published: &[CertInfo],
    now: i64,
    timing: &Timing,
) -> Result<(Authority, Option<Change>), GenerateError> {
    let current = match stored {
        None => return create(Reason::Missing, None, published, now, timing),
        Some(Err(why)) => return create(Reason::Unparseable(why.clone()), None, published, now, timing),
        Some(Ok(a)) if a.signing.info.not_after <= now => {
            return create(Reason::Expired, Some(a), published, now, timing);
        }
        Some(Ok(a)) => a,
    };
    let mut a = current.clone();
    // Expired CAs are trusted no longer, whatever the step.
    a.retired.retain(|c| c.not_after > now);
    if a.next.as_ref().is_some_and(|n| n.info.not_after <= now) {
        a.next = None;
    }
    let expired =
        current.retired.len() - a.retired.len() + usize::from(a.next.is_none() && current.next.is_some());
    if let Some(next) = a.next.take() {
        if a.switch_ready(now, timing) {
            // The bundle already holds every CA involved: it does not change, bundle_since stays.
            a.retired.push(std::mem::replace(&mut a.signing, next).info);
            a.leaves_since = None;
            return Ok((a, Some(Change::Switched)));
        }
        a.next = Some(next);
    } else if !a.retired.is_empty() && a.retire_ready(now, timing) {
        let count = a.retired.len() + expired;
        a.retired.clear();
        return Ok((a, Some(Change::Retired { count })));
    } else if a.retired.is_empty() && a.signing.info.not_after - now <= secs(timing.ca_renew_window()) {
        a.next = Some(Ca::generate(now, timing.ca_validity)?);
        a.bundle_since = None;
        let reason = Reason::Expiring { not_after: a.signing.info.not_after };
        return Ok((a, Some(Change::Published { reason })));
    }
    Ok((a, (expired > 0).then_some(Change::Retired { count: expired })))
}

/// A new signing CA (the stored `next` when usable, else a generated one); every other CA still
/// valid among the stored ones and `published` stays trusted as retired.
fn create(
    reason: Reason,
    stored: Option<&Authority>,
    published: &[CertInfo],
    now: i64,
    timing: &Timing,
) -> Result<(Authority, Option<Change>), GenerateError> {
    let usable_next = stored
        .and_then(|a| a.next.clone())
        .filter(|n| n.info.not_after - now > secs(timing.ca_renew_window()));
    let signing = match usable_next {
        Some(next) => next,
        None => Ca::generate(now, timing.ca_validity)?,
    };
    let mut retired: Vec<CertInfo> = Vec::new();
    let earlier =
        stored.into_iter().flat_map(|a| a.trusted().into_iter().cloned()).chain(published.iter().cloned());
    for ca in earlier {
        if ca.is_ca
            && ca.not_after > now
            && ca.der != signing.info.der
            && !retired.iter().any(|r| r.der == ca.der)
        {
            retired.push(ca);
        }
    }
    let kept = retired.len();
    let authority = Authority { signing, next: None, retired, bundle_since: None, leaves_since: None };
    Ok((authority, Some(Change::Created { reason, kept })))
}

/// What a pass saw once it had written everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observed {
    /// Every leaf Secret and every injection target holds this authority's bundle.
    pub bundles_everywhere: bool,
    /// Every leaf is signed by `signing`.
    pub leaves_signed: bool,
    /// A leaf signed by another CA was replaced in this pass.
    pub leaf_switched: bool,
}

/// The authority with the pass's observations recorded; `None` when nothing changed.
pub fn record(a: &Authority, seen: Observed, now: i64) -> Option<Authority> {
    let mut out = a.clone();
    if seen.bundles_everywhere && out.bundle_since.is_none() {
        out.bundle_since = Some(now);
    }
    out.leaves_since = match (seen.leaves_signed, out.leaves_since) {
        (false, _) => None,
        (true, _) if seen.leaf_switched => Some(now),
        (true, None) => Some(now),
        (true, since) => since,
    };
    (out.bundle_since != a.bundle_since || out.leaves_since != a.leaves_since).then_some(out)
}
