//! Authentication and authorization of every request except health probes, as an aggregated
//! API server does it (delegated to the cluster):
//!
//! 1. A client certificate that verifies against the requestheader CA of
//!    kube-system/extension-apiserver-authentication and carries an allowed name is the
//!    aggregator: the user is read from `X-Remote-User` / `X-Remote-Group` /
//!    `X-Remote-Extra-*`. Those headers are read on no other path.
//! 2. Otherwise a bearer token is checked with a TokenReview — if its answer is not cached and
//!    the review budget ([`budget`]) allows one; past the budget the answer is 429 with
//!    Retry-After and no review is made. The aggregator's path (1) never draws on it.
//! 3. Otherwise, or when either fails: 401 and nothing else.
//!
//! The user is then authorized with a SubjectAccessReview (`get` on the metric as a resource of
//! `external.metrics.k8s.io` in the namespace, or `get` on the path for discovery and OpenAPI);
//! a denial is 403. Review answers are cached briefly ([`reviews`]).
//!
//! With `--insecure-skip-auth` ([`Authenticator::disabled`]) every request is let through.

pub mod budget;
pub mod config;
pub mod front_proxy;
pub mod reviews;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use ebb_plumbing::tls::PeerCertificates;

use crate::cache::TtlCache;
use crate::discovery::GROUP;
use crate::routes::Route;
use crate::status::ApiStatus;
use front_proxy::{FrontProxy, RequestHeaderConfig};
use reviews::{Reviews, TokenError};

/// An authenticated caller.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct User {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// What a request does, in SubjectAccessReview terms.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Attributes {
    /// `get` of resource `resource` (the metric name) of `external.metrics.k8s.io` in
    /// `namespace`.
    Resource { namespace: String, resource: String },
    /// `get` of a non-resource path (discovery, OpenAPI, unknown paths).
    NonResource { path: String },
}

impl Attributes {
    /// The attributes of a request for `route` at `path`.
    pub fn of(route: &Route, path: &str) -> Self {
        match route {
            Route::Value { namespace, metric } => {
                Attributes::Resource { namespace: namespace.clone(), resource: metric.clone() }
            }
            _ => Attributes::NonResource { path: path.to_owned() },
        }
    }
}

/// The 403 message for `user` refused `attrs`, with the reviewer's reason when it gave one.
pub fn forbidden_message(user: &str, attrs: &Attributes, reason: &str) -> String {
    let what = match attrs {
        Attributes::Resource { namespace, resource } => format!(
            "{resource}.{GROUP} is forbidden: User {user:?} cannot get resource {resource:?} in API group \
             {GROUP:?} in the namespace {namespace:?}"
        ),
        Attributes::NonResource { path } => format!("forbidden: User {user:?} cannot get path {path:?}"),
    };
    if reason.is_empty() { what } else { format!("{what}: {reason}") }
}

/// The bearer token of an `Authorization` header, if it carries one.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

const NO_CREDENTIALS: &str = "Unauthorized: no credentials; call through the Kubernetes API server \
    (kubectl get --raw /apis/external.metrics.k8s.io/v1beta1/...) or present a bearer token that a \
    TokenReview accepts";

/// Decides who may do what.
#[derive(Debug)]
pub struct Authenticator {
    delegated: Option<Delegated>,
}

#[derive(Debug)]
struct Delegated {
    /// Current front-proxy settings and their generation.
    front_proxy: RwLock<Option<(u64, Arc<FrontProxy>)>>,
    generations: AtomicU64,
    /// Checked client chains (by SHA-256 of the leaf) → common name or why not, with the
    /// generation of the settings they were checked under.
    certs: TtlCache<[u8; 32], (u64, Result<String, String>)>,
    reviews: Reviews,
}

/// Client chains remembered at most (the aggregator uses one certificate; others are few).
const CERT_CACHE_SIZE: usize = 64;
/// How long a chain's verification is reused (so an expiring certificate is noticed).
const CERT_CACHE_TTL: Duration = Duration::from_secs(60);

impl Authenticator {
    /// Lets every request through (`--insecure-skip-auth`).
    pub fn disabled() -> Self {
        Self { delegated: None }
    }

    /// Delegates to the cluster through `reviews`; no front-proxy settings until
    /// [`Authenticator::set_request_header`].
    pub fn delegated(reviews: Reviews) -> Self {
        Self {
            delegated: Some(Delegated {
                front_proxy: RwLock::new(None),
                generations: AtomicU64::new(0),
                certs: TtlCache::new(CERT_CACHE_TTL, CERT_CACHE_SIZE),
                reviews,
            }),
        }
    }

    /// Whether requests are checked at all.
    pub fn enabled(&self) -> bool {
        self.delegated.is_some()
    }

    /// Installs new front-proxy settings (a config without CA turns request-header
    /// authentication off). Returns whether it has a CA.
    pub fn set_request_header(&self, config: RequestHeaderConfig) -> Result<bool, String> {
        let Some(d) = &self.delegated else { return Ok(false) };
        let generation = d.generations.fetch_add(1, Ordering::Relaxed) + 1;
        let front_proxy = FrontProxy::new(config)?.map(|fp| (generation, Arc::new(fp)));
        let has_ca = front_proxy.is_some();
        *d.front_proxy.write().unwrap_or_else(PoisonError::into_inner) = front_proxy;
        Ok(has_ca)
    }

    /// Checks a request: `Ok` when it may go on, else the 401/403 (or 500 when the cluster
    /// could not be asked) to answer.
    pub async fn check(
        &self,
        peer: Option<&PeerCertificates>,
        headers: &HeaderMap,
        attrs: &Attributes,
    ) -> Result<(), ApiStatus> {
        let Some(d) = &self.delegated else { return Ok(()) };
        let user = d.authenticate(peer, headers).await?;
        match d.reviews.authorize(&user, attrs).await {
            Ok(reviews::Decision { allowed: true, .. }) => Ok(()),
            Ok(reviews::Decision { allowed: false, reason }) => {
                Err(ApiStatus::forbidden(forbidden_message(&user.name, attrs, &reason)))
            }
            Err(err) => Err(ApiStatus::internal(format!("cannot check authorization: {err}"))),
        }
    }
}

impl Delegated {
    async fn authenticate(
        &self,
        peer: Option<&PeerCertificates>,
        headers: &HeaderMap,
    ) -> Result<Arc<User>, ApiStatus> {
        if let Some(chain) = peer.map(|p| p.0.as_slice()).filter(|c| !c.is_empty()) {
            let front_proxy = self.front_proxy.read().unwrap_or_else(PoisonError::into_inner).clone();
            let Some((generation, front_proxy)) = front_proxy else {
                return Err(ApiStatus::unauthorized(
                    "Unauthorized: a client certificate was presented but no requestheader CA is configured \
                     (kube-system/extension-apiserver-authentication has no requestheader-client-ca-file)",
                ));
            };
            let cn = self
                .verified_name(generation, &front_proxy, chain)
                .map_err(|why| ApiStatus::unauthorized(format!("Unauthorized: {why}")))?;
            match front_proxy::header_identity(&cn, headers, &front_proxy.config) {
                Ok(Some(user)) => return Ok(Arc::new(user)),
                Ok(None) => {}
                Err(why) => return Err(ApiStatus::unauthorized(format!("Unauthorized: {why}"))),
            }
        }
        let Some(token) = bearer_token(headers) else {
            return Err(ApiStatus::unauthorized(NO_CREDENTIALS));
        };
        match self.reviews.authenticate(token).await {
            Ok(Some(user)) => Ok(user),
            Ok(None) => Err(ApiStatus::unauthorized(
                "Unauthorized: the bearer token was not accepted by a TokenReview",
            )),
            Err(TokenError::Limited(limited)) => Err(ApiStatus::too_many_requests(
                format!("Too many requests: {}, try again later", TokenError::Limited(limited)),
                limited.retry_after_secs(),
            )),
            Err(err) => Err(ApiStatus::internal(format!("cannot check the bearer token: {err}"))),
        }
    }

    fn verified_name(
        &self,
        generation: u64,
        front_proxy: &FrontProxy,
        chain: &[rustls::pki_types::CertificateDer<'static>],
    ) -> Result<String, String> {
        let Some(leaf) = chain.first() else { return Err("no client certificate".to_owned()) };
        let digest = ring::digest::digest(&ring::digest::SHA256, leaf.as_ref());
        let mut key = [0u8; 32];
        key.copy_from_slice(digest.as_ref());
        let now = Instant::now();
        if let Some((seen, result)) = self.certs.get(&key, now)
            && seen == generation
        {
            return result;
        }
        let result = front_proxy.verified_name(chain);
        self.certs.insert(key, (generation, result.clone()), now);
        result
    }
}

#[cfg(test)]
mod tests;
