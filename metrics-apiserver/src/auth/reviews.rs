//! Delegated checks against the cluster: TokenReview for bearer tokens and
//! SubjectAccessReview for every request, with answers cached for a short TTL in bounded caches
//! (tokens by their SHA-256 digest — a token is never kept in memory beyond its review, nor
//! logged). Rejected tokens are remembered apart from accepted ones, for their own (shorter)
//! time, so that a flood of made-up tokens cannot push accepted ones out. Identical reviews
//! wanted at the same time (say, every connection of a busy client when its cached answer
//! expires) are sent once. A TokenReview for a token no cache knows draws on the review
//! [`Budget`] (rate and concurrency); past it the request is refused without a review
//! ([`TokenError::Limited`]). Each review is bounded by a timeout; a failed review is not
//! cached.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};

use super::budget::{Budget, Limited};
use super::{Attributes, User};
use crate::cache::{Flights, TtlCache};
use crate::discovery::{GROUP, VERSION};
use crate::metrics::Metrics;

/// An authorization answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The reviewer's reason (may be empty).
    pub reason: String,
}

/// How reviews are cached and bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReviewConfig {
    /// How long an answer is reused.
    pub ttl: Duration,
    /// Answers kept at most, per kind of review.
    pub capacity: usize,
    /// Bound on one review call.
    pub timeout: Duration,
    /// How long a rejected token is refused without a review.
    pub negative_ttl: Duration,
    /// Rejected tokens remembered at most.
    pub negative_capacity: usize,
    /// TokenReviews per second (sustained) for tokens no cache knows.
    pub token_rate: u32,
    /// TokenReviews allowed at once above the rate.
    pub token_burst: u32,
    /// TokenReviews in flight at most.
    pub token_concurrency: usize,
}

impl Default for ReviewConfig {
    /// The flags' defaults.
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(10),
            capacity: 4096,
            timeout: Duration::from_secs(5),
            negative_ttl: Duration::from_secs(5),
            negative_capacity: 4096,
            token_rate: 10,
            token_burst: 20,
            token_concurrency: 4,
        }
    }
}

/// Why a bearer token could not be checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenError {
    /// The review budget is used up; no review was made.
    Limited(Limited),
    /// The review failed (API server unreachable, timeout, …): what happened.
    Failed(String),
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenError::Limited(Limited::Rate(_)) => {
                f.write_str("too many TokenReviews for unknown bearer tokens (rate limit)")
            }
            TokenError::Limited(Limited::Concurrency) => {
                f.write_str("too many TokenReviews for unknown bearer tokens in flight")
            }
            TokenError::Failed(why) => f.write_str(why),
        }
    }
}

/// TokenReview and SubjectAccessReview through the Kubernetes API, cached.
pub struct Reviews {
    client: kube::Client,
    timeout: Duration,
    tokens: Arc<TtlCache<[u8; 32], Arc<User>>>,
    rejected: Arc<TtlCache<[u8; 32], ()>>,
    budget: Arc<Budget>,
    access: Arc<TtlCache<Vec<u8>, Decision>>,
    token_flights: Flights<[u8; 32], Result<Option<Arc<User>>, TokenError>>,
    access_flights: Flights<Vec<u8>, Result<Decision, String>>,
    metrics: Metrics,
}

impl std::fmt::Debug for Reviews {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reviews")
            .field("timeout", &self.timeout)
            .field("tokens", &self.tokens.len())
            .field("rejected", &self.rejected.len())
            .field("access", &self.access.len())
            .finish_non_exhaustive()
    }
}

impl Reviews {
    pub fn new(client: kube::Client, cfg: ReviewConfig, metrics: Metrics) -> Self {
        Self {
            client,
            timeout: cfg.timeout,
            tokens: Arc::new(TtlCache::new(cfg.ttl, cfg.capacity)),
            rejected: Arc::new(TtlCache::new(cfg.negative_ttl, cfg.negative_capacity)),
            budget: Arc::new(Budget::new(
                cfg.token_rate,
                cfg.token_burst,
                cfg.token_concurrency,
                Instant::now(),
            )),
            access: Arc::new(TtlCache::new(cfg.ttl, cfg.capacity)),
            token_flights: Flights::default(),
            access_flights: Flights::default(),
            metrics,
        }
    }

    /// The user a bearer token belongs to (`None`: not authenticated).
    pub async fn authenticate(&self, token: &str) -> Result<Option<Arc<User>>, TokenError> {
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(digest.as_ref());
        let now = Instant::now();
        if let Some(user) = self.tokens.get(&key, now) {
            self.metrics.review("token", "cached");
            return Ok(Some(user));
        }
        if self.rejected.get(&key, now).is_some() {
            self.metrics.review("token", "cached");
            return Ok(None);
        }
        // A review of the same token already on its way costs nothing more; a new one draws
        // on the budget.
        let ticket = if self.token_flights.contains(&key) {
            None
        } else {
            match self.budget.take(now) {
                Ok(ticket) => Some(ticket),
                Err(limited) => {
                    self.metrics.review("token", "limited");
                    return Err(TokenError::Limited(limited));
                }
            }
        };
        let review = TokenReview {
            spec: TokenReviewSpec { token: Some(token.to_owned()), ..Default::default() },
            ..Default::default()
        };
        let (api, tokens, rejected, budget, metrics, timeout) = (
            Api::<TokenReview>::all(self.client.clone()),
            self.tokens.clone(),
            self.rejected.clone(),
            self.budget.clone(),
            self.metrics.clone(),
            self.timeout,
        );
        let flight = self.token_flights.join(key, move || async move {
            // Held (as in flight) until the review is answered or times out. Without one, the
            // flight this request meant to join ended just now: its answer is in a cache, or
            // this review draws on the budget after all.
            let _ticket = match ticket {
                Some(ticket) => ticket,
                None => {
                    let now = Instant::now();
                    if let Some(user) = tokens.get(&key, now) {
                        return Ok(Some(user));
                    }
                    if rejected.get(&key, now).is_some() {
                        return Ok(None);
                    }
                    budget.take(now).map_err(|limited| {
                        metrics.review("token", "limited");
                        TokenError::Limited(limited)
                    })?
                }
            };
            match call(timeout, api.create(&PostParams::default(), &review), "TokenReview").await {
                Ok(answered) => {
                    let user = user_of(&answered).map(Arc::new);
                    metrics.review("token", if user.is_some() { "allowed" } else { "denied" });
                    match &user {
                        Some(user) => tokens.insert(key, user.clone(), Instant::now()),
                        None => rejected.insert(key, (), Instant::now()),
                    }
                    Ok(user)
                }
                Err(err) => {
                    metrics.review("token", "error");
                    Err(TokenError::Failed(err))
                }
            }
        });
        flight.await.unwrap_or_else(|| Err(TokenError::Failed("the TokenReview was cancelled".to_owned())))
    }

    /// Whether `user` may do `attrs`.
    pub async fn authorize(&self, user: &User, attrs: &Attributes) -> Result<Decision, String> {
        let key = access_key(user, attrs);
        if let Some(decision) = self.access.get(&key, Instant::now()) {
            self.metrics.review("access", "cached");
            return Ok(decision);
        }
        let review = access_review(user, attrs);
        let (api, cache, metrics, timeout) = (
            Api::<SubjectAccessReview>::all(self.client.clone()),
            self.access.clone(),
            self.metrics.clone(),
            self.timeout,
        );
        let task_key = key.clone();
        let flight = self.access_flights.join(key, move || async move {
            match call(timeout, api.create(&PostParams::default(), &review), "SubjectAccessReview").await {
                Ok(answered) => {
                    let status = answered.status.unwrap_or_default();
                    let decision = Decision {
                        allowed: status.allowed && status.denied != Some(true),
                        reason: status.reason.unwrap_or_default(),
                    };
                    metrics.review("access", if decision.allowed { "allowed" } else { "denied" });
                    cache.insert(task_key, decision.clone(), Instant::now());
                    Ok(decision)
                }
                Err(err) => {
                    metrics.review("access", "error");
                    Err(err)
                }
            }
        });
        flight.await.unwrap_or_else(|| Err("the SubjectAccessReview was cancelled".to_owned()))
    }
}

/// Runs one review call within `timeout`, naming the review in errors.
async fn call<T>(
    timeout: Duration,
    call: impl std::future::Future<Output = Result<T, kube::Error>>,
    what: &str,
) -> Result<T, String> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(err)) => Err(format!("{what} failed: {err}")),
        Err(_) => Err(format!("{what} got no answer within {timeout:?}")),
    }
}

/// The user of an answered TokenReview, if it authenticated one.
pub fn user_of(review: &TokenReview) -> Option<User> {
    let status = review.status.as_ref()?;
    if status.authenticated != Some(true) {
        return None;
    }
    let info = status.user.as_ref()?;
    let name = info.username.clone().filter(|n| !n.is_empty())?;
    Some(User {
        name,
        uid: info.uid.clone().unwrap_or_default(),
        groups: info.groups.clone().unwrap_or_default(),
        extra: info.extra.clone().unwrap_or_default().into_iter().collect(),
    })
}

/// The SubjectAccessReview asking whether `user` may do `attrs`.
pub fn access_review(user: &User, attrs: &Attributes) -> SubjectAccessReview {
    let (resource_attributes, non_resource_attributes) = match attrs {
        Attributes::Resource { namespace, resource } => (
            Some(ResourceAttributes {
                group: Some(GROUP.to_owned()),
                version: Some(VERSION.to_owned()),
                resource: Some(resource.clone()),
                namespace: Some(namespace.clone()),
                verb: Some("get".to_owned()),
                ..Default::default()
            }),
            None,
        ),
        Attributes::NonResource { path } => {
            (None, Some(NonResourceAttributes { path: Some(path.clone()), verb: Some("get".to_owned()) }))
        }
    };
    let extra: BTreeMap<String, Vec<String>> = user.extra.clone();
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.name.clone()),
            uid: (!user.uid.is_empty()).then(|| user.uid.clone()),
            groups: Some(user.groups.clone()),
            extra: (!extra.is_empty()).then_some(extra),
            resource_attributes,
            non_resource_attributes,
        },
        ..Default::default()
    }
}

/// The cache key of an access question: every field that can change the answer, each one
/// length-prefixed so that no two questions share a key.
pub fn access_key(user: &User, attrs: &Attributes) -> Vec<u8> {
    fn field(key: &mut Vec<u8>, text: &str) {
        key.extend_from_slice(&(text.len() as u64).to_le_bytes());
        key.extend_from_slice(text.as_bytes());
    }
    let mut key = Vec::with_capacity(128);
    field(&mut key, &user.name);
    field(&mut key, &user.uid);
    key.extend_from_slice(&(user.groups.len() as u64).to_le_bytes());
    for group in &user.groups {
        field(&mut key, group);
    }
    key.extend_from_slice(&(user.extra.len() as u64).to_le_bytes());
    for (name, values) in &user.extra {
        field(&mut key, name);
        key.extend_from_slice(&(values.len() as u64).to_le_bytes());
        for value in values {
            field(&mut key, value);
        }
    }
    match attrs {
        Attributes::Resource { namespace, resource } => {
            key.push(b'r');
            field(&mut key, namespace);
            field(&mut key, resource);
        }
        Attributes::NonResource { path } => {
            key.push(b'n');
            field(&mut key, path);
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::authentication::v1::{TokenReviewStatus, UserInfo};

    use super::*;

    fn user(name: &str, groups: &[&str]) -> User {
        User {
            name: name.into(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn access_reviews_ask_the_right_question() {
        let alice = User {
            uid: "u-1".into(),
            extra: [("scopes".to_owned(), vec!["a".to_owned()])].into(),
            ..user("alice", &["devs", "system:authenticated"])
        };
        let attrs = Attributes::Resource { namespace: "prod".into(), resource: "s0-queue".into() };
        let review = serde_json::to_value(access_review(&alice, &attrs)).unwrap();
        assert_eq!(
            review["spec"],
            serde_json::json!({"user": "alice", "uid": "u-1", "groups": ["devs", "system:authenticated"],
                "extra": {"scopes": ["a"]},
                "resourceAttributes": {"group": "external.metrics.k8s.io", "version": "v1beta1",
                    "resource": "s0-queue", "namespace": "prod", "verb": "get"}})
        );
        let review = serde_json::to_value(access_review(
            &user("bob", &[]),
            &Attributes::NonResource { path: "/apis".into() },
        ))
        .unwrap();
        assert_eq!(
            review["spec"],
            serde_json::json!({"user": "bob", "groups": [], "nonResourceAttributes": {"path": "/apis", "verb": "get"}})
        );
    }

    #[test]
    fn access_keys_differ_on_every_field() {
        let base = user("alice", &["devs"]);
        let attrs = Attributes::Resource { namespace: "a".into(), resource: "m".into() };
        let key = access_key(&base, &attrs);
        let variants = [
            access_key(&user("alice2", &["devs"]), &attrs),
            access_key(&user("alice", &["devs", "ops"]), &attrs),
            access_key(&User { uid: "x".into(), ..base.clone() }, &attrs),
            access_key(&User { extra: [("k".to_owned(), vec![])].into(), ..base.clone() }, &attrs),
            access_key(&base, &Attributes::Resource { namespace: "b".into(), resource: "m".into() }),
            access_key(&base, &Attributes::Resource { namespace: "a".into(), resource: "n".into() }),
            access_key(&base, &Attributes::NonResource { path: "a".into() }),
            // Names that would collide under naive concatenation.
            access_key(&user("alicedevs", &[]), &attrs),
            access_key(&user("alice", &["dev", "s"]), &attrs),
        ];
        for other in variants {
            assert_ne!(key, other);
        }
        assert_eq!(key, access_key(&user("alice", &["devs"]), &attrs));
    }

    #[test]
    fn token_reviews_yield_a_user_only_when_authenticated() {
        let review = |authenticated: Option<bool>, username: Option<&str>| TokenReview {
            status: Some(TokenReviewStatus {
                authenticated,
                user: Some(UserInfo {
                    username: username.map(str::to_owned),
                    uid: Some("42".into()),
                    groups: Some(vec!["g".into()]),
                    extra: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let got = user_of(&review(Some(true), Some("alice"))).unwrap();
        assert_eq!(
            (got.name.as_str(), got.uid.as_str(), got.groups.as_slice()),
            ("alice", "42", &["g".to_owned()][..])
        );
        assert_eq!(user_of(&review(Some(false), Some("alice"))), None);
        assert_eq!(user_of(&review(None, Some("alice"))), None);
        assert_eq!(user_of(&review(Some(true), Some(""))), None);
        assert_eq!(user_of(&review(Some(true), None)), None);
        assert_eq!(user_of(&TokenReview::default()), None);
    }
}
