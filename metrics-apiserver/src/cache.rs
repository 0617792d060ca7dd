//! A small, bounded cache whose entries expire a fixed time after they were stored: used for
//! TokenReview and SubjectAccessReview answers and verified client certificates (so that a
//! steady stream of requests from the same caller costs one review per TTL), and for the
//! operator's cached metric values (see `link`).
//!
//! When full, expired entries are dropped first, then the oldest one. Times are passed in
//! (`now`) so the behaviour is testable without waiting.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

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

#[cfg(test)]
mod tests {
    use super::*;

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
