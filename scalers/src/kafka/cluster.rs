//! The process-wide pool of Kafka clusters: triggers with the same bootstrap servers and the same
//! TLS/SASL settings share one `Cluster`, which keeps one connection per broker across polls,
//! the broker addresses from the last Metadata answer and each group's coordinator. A connection
//! is taken out of its slot while a request is in flight and put back only after a complete
//! answer, so a failed or cancelled request (poll timeout) never leaves a half-read stream
//! behind: the next request reconnects.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};

use kafka_protocol::messages::MetadataResponse;
use tokio::sync::OnceCell;
use tokio_rustls::TlsConnector;

use super::config::{KafkaConfig, Security};
use super::wire::{Call, Connection, Opener, WireError, tls};

type Slot = Arc<tokio::sync::Mutex<Option<Connection>>>;

static POOL: LazyLock<Mutex<HashMap<String, Weak<Cluster>>>> = LazyLock::new(Mutex::default);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One Kafka cluster as seen through one set of credentials.
#[derive(Debug)]
pub struct Cluster {
    bootstrap: Vec<String>,
    security: Arc<Security>,
    opener: OnceCell<Opener>,
    /// Node id → `host:port`, from the latest Metadata answer.
    brokers: Mutex<BTreeMap<i32, String>>,
    /// Consumer group → its coordinator's `host:port`.
    coordinators: Mutex<HashMap<String, String>>,
    conns: Mutex<HashMap<String, Slot>>,
    requests: Arc<AtomicU64>,
}

/// One request on `conn`. The connection comes back when it is still usable: after a response,
/// or when no common version exists (nothing was sent); never after a failed exchange.
async fn exchange<R: Call>(
    mut conn: Connection,
    build: &impl Fn(i16) -> R,
) -> Result<(Connection, (i16, R::Response)), (Option<Connection>, WireError)> {
    let v = match conn.version::<R>() {
        Ok(v) => v,
        Err(e) => return Err((Some(conn), e)),
    };
    match conn.send_version(&build(v), v).await {
        Ok(resp) => Ok((conn, (v, resp))),
        // After a failed exchange the stream's position is unknown: never reuse it.
        Err(e) => Err((None, e)),
    }
}

impl Cluster {
    /// The shared cluster for this trigger's servers and security settings (no I/O).
    pub fn shared(config: &KafkaConfig) -> Arc<Self> {
        let key = config.pool_key();
        let mut pool = lock(&POOL);
        pool.retain(|_, w| w.strong_count() > 0);
        if let Some(c) = pool.get(&key).and_then(Weak::upgrade) {
            return c;
        }
        let c = Arc::new(Self {
            bootstrap: config.bootstrap_servers.clone(),
            security: config.security.clone(),
            opener: OnceCell::new(),
            brokers: Mutex::default(),
            coordinators: Mutex::default(),
            conns: Mutex::default(),
            requests: Arc::default(),
        });
        pool.insert(key, Arc::downgrade(&c));
        c
    }

    /// Requests sent to any broker of this cluster since it was created.
    pub fn requests_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The bootstrap servers as configured, comma-separated.
    pub fn servers(&self) -> String {
        self.bootstrap.join(",")
    }

    /// Connections currently open (idle ones included).
    pub fn open_connections(&self) -> usize {
        lock(&self.conns).values().filter(|s| s.try_lock().map_or(true, |g| g.is_some())).count()
    }

    async fn opener(&self) -> Result<&Opener, WireError> {
        self.opener
            .get_or_try_init(|| async {
                let tls = match &self.security.tls {
                    None => None,
                    Some(t) => Some(TlsConnector::from(tls::client_config(t, true).map_err(WireError::Tls)?)),
                };
                Ok(Opener { tls, sasl: self.security.sasl.clone() })
            })
            .await
    }

    fn slot(&self, addr: &str) -> Slot {
        lock(&self.conns).entry(addr.to_owned()).or_default().clone()
    }

    /// Sends a request to the broker at `addr`, reusing its connection or opening one. A pooled
    /// connection that turns out broken (the broker restarted or closed it while idle) is
    /// replaced by a fresh one at once; every request this client sends is a read, safe to
    /// repeat. `build` makes the request for the negotiated version.
    pub async fn call_at<R: Call>(
        &self,
        addr: &str,
        build: impl Fn(i16) -> R,
    ) -> Result<(i16, R::Response), WireError> {
        let opener = self.opener().await?;
        let slot = self.slot(addr);
        let mut guard = slot.lock().await;
        if let Some(conn) = guard.take() {
            match exchange(conn, &build).await {
                Ok((conn, r)) => {
                    *guard = Some(conn);
                    return Ok(r);
                }
                Err((_, WireError::Io(m))) => {
                    tracing::debug!(addr, error = %m, "kafka: pooled connection broken; reconnecting")
                }
                Err((conn, e)) => {
                    *guard = conn;
                    return Err(e);
                }
            }
        }
        let conn = Connection::open(addr, opener, self.requests.clone()).await?;
        match exchange(conn, &build).await {
            Ok((conn, r)) => {
                *guard = Some(conn);
                Ok(r)
            }
            Err((conn, e)) => {
                *guard = conn;
                Err(e)
            }
        }
    }

    /// Sends a request to any broker: first those already connected, then the known brokers,
    /// then the bootstrap servers. Fails only when none can be reached.
    pub async fn call_any<R: Call>(&self, build: impl Fn(i16) -> R) -> Result<(i16, R::Response), WireError> {
        let mut candidates: Vec<String> = Vec::new();
        {
            let conns = lock(&self.conns);
            let mut live: Vec<&String> = conns
                .iter()
                .filter(|(_, s)| s.try_lock().map_or(true, |g| g.is_some()))
                .map(|(a, _)| a)
                .collect();
            live.sort();
            candidates.extend(live.into_iter().cloned());
        }
        candidates.extend(lock(&self.brokers).values().cloned());
        candidates.extend(self.bootstrap.iter().cloned());
        let mut seen = std::collections::HashSet::new();
        candidates.retain(|a| seen.insert(a.clone()));
        let mut failures = Vec::new();
        for addr in &candidates {
            match self.call_at(addr, &build).await {
                Ok(r) => return Ok(r),
                Err(WireError::Io(m) | WireError::Tls(m)) => failures.push(m),
                Err(e) => return Err(e),
            }
        }
        Err(WireError::Io(format!("cannot reach any broker: {}", failures.join("; "))))
    }

    /// Records the brokers of a Metadata answer.
    pub fn update_brokers(&self, md: &MetadataResponse) {
        let mut b = lock(&self.brokers);
        b.clear();
        for br in &md.brokers {
            b.insert(br.node_id.0, format!("{}:{}", br.host.as_str(), br.port));
        }
    }

    pub fn broker_addr(&self, node: i32) -> Option<String> {
        lock(&self.brokers).get(&node).cloned()
    }

    pub fn coordinator(&self, group: &str) -> Option<String> {
        lock(&self.coordinators).get(group).cloned()
    }

    pub fn set_coordinator(&self, group: &str, addr: String) {
        lock(&self.coordinators).insert(group.to_owned(), addr);
    }

    pub fn forget_coordinator(&self, group: &str) {
        lock(&self.coordinators).remove(group);
    }
}
