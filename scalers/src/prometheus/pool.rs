//! The process-wide cache of HTTP clients for Prometheus servers: one `reqwest::Client` (one
//! connection pool) per distinct server origin and TLS settings, shared by every trigger of every
//! ScaledObject that queries it. Entries are held weakly, so a client goes away with the last
//! scaler using it. Each client follows redirects only within the origin it was asked for, so
//! credentials never travel to another host. Each client resolves names through the egress
//! policy's resolver (`crate::egress`), so it never dials an address the operator denies.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};
use std::time::Duration;

use reqwest::Url;
use reqwest::redirect::{Attempt, Policy};

use super::auth::identity_pem;
use crate::egress;
use crate::error::ScalerError;

/// Most redirects followed within one origin.
const MAX_REDIRECTS: usize = 5;

/// What distinguishes one pooled client from another. Holds the TLS material; never printed.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PoolKey {
    /// `scheme://host:port` of `serverAddress`.
    pub origin: String,
    /// The port connections go to (the resolver checks the egress policy for it).
    pub port: u16,
    pub unsafe_ssl: bool,
    pub ca: Option<String>,
    pub identity: Option<(String, String)>,
}

impl std::fmt::Debug for PoolKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolKey")
            .field("origin", &self.origin)
            .field("port", &self.port)
            .field("unsafe_ssl", &self.unsafe_ssl)
            .field("ca", &self.ca.is_some())
            .field("identity", &self.identity.is_some())
            .finish()
    }
}

static POOL: LazyLock<Mutex<HashMap<PoolKey, Weak<reqwest::Client>>>> = LazyLock::new(Default::default);

/// The shared client for `key`, created on first use.
pub fn client(key: &PoolKey) -> Result<Arc<reqwest::Client>, ScalerError> {
    let mut pool = POOL.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(c) = pool.get(key).and_then(Weak::upgrade) {
        return Ok(c);
    }
    pool.retain(|_, w| w.strong_count() > 0);
    let c = Arc::new(build(key)?);
    pool.insert(key.clone(), Arc::downgrade(&c));
    Ok(c)
}

/// Clients currently alive in the cache.
pub fn live_clients() -> usize {
    POOL.lock().unwrap_or_else(PoisonError::into_inner).values().filter(|w| w.strong_count() > 0).count()
}

fn build(key: &PoolKey) -> Result<reqwest::Client, ScalerError> {
    let mut b = reqwest::Client::builder()
        .redirect(Policy::custom(same_origin_only))
        .dns_resolver(Arc::new(egress::Resolver::new(key.port, "serverAddress")))
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(8)
        .danger_accept_invalid_certs(key.unsafe_ssl)
        .user_agent(concat!("ebb/", env!("CARGO_PKG_VERSION")));
    if let Some(ca) = &key.ca {
        let certs = reqwest::Certificate::from_pem_bundle(ca.as_bytes())
            .map_err(|_| ScalerError::Config("ca is not a PEM-encoded certificate bundle".to_owned()))?;
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    if let Some((cert, key)) = &key.identity {
        let id = reqwest::Identity::from_pem(identity_pem(cert, key).as_bytes()).map_err(|_| {
            ScalerError::Config("cert and key do not form a usable client identity".to_owned())
        })?;
        b = b.identity(id);
    }
    b.build()
        .map_err(|e| ScalerError::Config(format!("cannot set up the HTTP client for {}: {e}", key.origin)))
}

fn same_origin_only(attempt: Attempt<'_>) -> reqwest::redirect::Action {
    let previous = attempt.previous();
    if previous.len() > MAX_REDIRECTS {
        return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
    }
    let same = previous.first().is_some_and(|first| same_origin(first, attempt.url()));
    if same { attempt.follow() } else { attempt.stop() }
}

/// Whether two URLs share scheme, host and port.
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.origin() == b.origin()
}
