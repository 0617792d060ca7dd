//! A small, bounded cache whose entries expire a fixed time after they were stored: used for
//! TokenReview and SubjectAccessReview answers and verified client certificates (so that a
//! steady stream of requests from the same caller costs one review per TTL), and for the
//! operator's cached metric values (see `link`).
//!
//! When full, expired entries are dropped first, then the oldest one. Times are passed in
//! (`now`) so the behaviour is testable without waiting.
//!
//! [`Flights`] shares one piece of work among the identical requests that want it at the same
//! time (a review when a cached answer expires under load, a value query to the operator).

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};

/// A bounded map from `K` to `V` whose entries live for `ttl`.
#[derive(Debug)]
pub struct TtlCache<K, V> {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Hash + Eq + Clone, V: Clone> TtlCache<K, V> {
    /// A cache keeping at most `capacity` entries, each for `ttl`. A zero `ttl` or
    /// `capacity` caches nothing.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self { ttl, capacity, entries: Mutex::new(HashMap::new()) }
    }

    /// The value stored for `key`, unless it expired.
    pub fn get(&self, key: &K, now: Instant) -> Option<V> {
        let entries = self.lock();
        let (stored, value) = entries.get(key)?;
        (now.saturating_duration_since(*stored) < self.ttl).then(|| value.clone())
    }

    /// Stores `value` for `key` as of `now`.
    pub fn insert(&self, key: K, value: V, now: Instant) {
        if self.ttl.is_zero() || self.capacity == 0 {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            let ttl = self.ttl;
            entries.retain(|_, (stored, _)| now.saturating_duration_since(*stored) < ttl);
            if entries.len() >= self.capacity {
                let oldest = entries.iter().min_by_key(|(_, (stored, _))| *stored).map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(key, (now, value));
    }

    /// Number of entries (expired ones included until they are dropped).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (Instant, V)>> {
        // Entries are whole values: a panic while holding the lock leaves nothing torn.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The shared result of one piece of work (`None` if its task panicked or was cancelled).
pub type Flight<V> = Shared<BoxFuture<'static, Option<V>>>;

/// Work in flight by key: the first request for a key starts it on its own task (so it
/// finishes even if every requester goes away), later ones wait for the same result, and the
/// key is free again once the work is done.
#[derive(Debug)]
pub struct Flights<K, V: Clone> {
    inflight: Arc<Mutex<HashMap<K, Flight<V>>>>,
}

impl<K, V: Clone> Default for Flights<K, V> {
    fn default() -> Self {
        Self { inflight: Arc::new(Mutex::new(HashMap::new())) }
    }
}

impl<K, V> Flights<K, V>
where
    K: Hash + Eq + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The result of the work for `key`: the one in flight, or `work()` started now. `None`
    /// when the work's task panicked or was cancelled.
    pub fn join<F>(&self, key: K, work: impl FnOnce() -> F) -> Flight<V>
    where
        F: Future<Output = V> + Send + 'static,
    {
        let mut inflight = self.inflight.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(flight) = inflight.get(&key) {
            return flight.clone();
        }
        let table = Arc::clone(&self.inflight);
        let task_key = key.clone();
        let work = work();
        let task = tokio::spawn(async move {
            let result = work.await;
            table.lock().unwrap_or_else(PoisonError::into_inner).remove(&task_key);
            result
        });
        let flight = async move { task.await.ok() }.boxed().shared();
        inflight.insert(key, flight.clone());
        flight
    }

    /// Whether work for `key` is in flight.
    pub fn contains(&self, key: &K) -> bool {
        self.inflight.lock().unwrap_or_else(PoisonError::into_inner).contains_key(key)
    }

    /// Keys in flight.
    pub fn len(&self) -> usize {
        self.inflight.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn identical_work_in_flight_runs_once() {
        let flights: Flights<&str, usize> = Flights::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let work = |runs: Arc<AtomicUsize>| {
            move || async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                runs.fetch_add(1, Ordering::SeqCst) + 1
            }
        };
        let a = flights.join("a", work(runs.clone()));
        let b = flights.join("a", work(runs.clone()));
        let c = flights.join("c", work(runs.clone()));
        assert_eq!(flights.len(), 2);
        let (a, b, c) = tokio::join!(a, b, c);
        assert_eq!(a, b, "the second request got the first one's result");
        assert_ne!(a, c);
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert!(flights.is_empty());
        // Done work is not reused.
        flights.join("a", work(runs.clone())).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn work_finishes_when_every_requester_left() {
        let flights: Flights<u8, ()> = Flights::default();
        let (tx, rx) = tokio::sync::oneshot::channel();
        drop(flights.join(1, || async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = tx.send(());
        }));
        tokio::time::timeout(Duration::from_secs(2), rx).await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(flights.is_empty());
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let cache = TtlCache::new(Duration::from_secs(10), 8);
        let t0 = Instant::now();
        cache.insert("a", 1, t0);
        assert_eq!(cache.get(&"a", t0), Some(1));
        assert_eq!(cache.get(&"a", t0 + Duration::from_secs(9)), Some(1));
        assert_eq!(cache.get(&"a", t0 + Duration::from_secs(10)), None);
        assert_eq!(cache.get(&"b", t0), None);
        cache.insert("a", 2, t0 + Duration::from_secs(10));
        assert_eq!(cache.get(&"a", t0 + Duration::from_secs(15)), Some(2));
    }

    #[test]
    fn size_is_bounded_dropping_expired_then_oldest() {
        let cache = TtlCache::new(Duration::from_secs(10), 3);
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        cache.insert(1, "one", at(0));
        cache.insert(2, "two", at(1));
        cache.insert(3, "three", at(2));
        assert_eq!(cache.len(), 3);
        // Full, nothing expired: the oldest (1) goes.
        cache.insert(4, "four", at(3));
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get(&1, at(3)), None);
        assert_eq!(cache.get(&2, at(3)), Some("two"));
        // Replacing an existing key does not evict.
        cache.insert(2, "deux", at(4));
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get(&3, at(4)), Some("three"));
        // At 12 s, 3 (stored at 2 s) has expired: it is dropped, 4 and 2 stay.
        cache.insert(5, "five", at(12));
        assert_eq!(cache.get(&4, at(12)), Some("four"));
        assert_eq!(cache.get(&2, at(12)), Some("deux"));
        assert_eq!(cache.get(&5, at(12)), Some("five"));
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn zero_ttl_or_capacity_caches_nothing() {
        let t0 = Instant::now();
        let no_ttl = TtlCache::new(Duration::ZERO, 8);
        no_ttl.insert(1, 1, t0);
        assert!(no_ttl.is_empty());
        let no_room = TtlCache::new(Duration::from_secs(1), 0);
        no_room.insert(1, 1, t0);
        assert_eq!(no_room.get(&1, t0), None);
    }
}
