//! In-memory storage with Kubernetes resource versions: one global, strictly increasing
//! `resourceVersion`, objects keyed by (group, plural, namespace, name), a bounded history of
//! change events for resuming watches (older versions are compacted: resuming from them is
//! `410 Gone`, as with etcd compaction), and a broadcast of every change to live watchers.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::broadcast;

/// (group, plural, namespace or "", name)
pub type Key = (String, String, String, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change, as watchers see it.
#[derive(Debug, Clone)]
pub struct Event {
    pub rv: u64,
    pub type_: EventType,
    pub key: Key,
    pub object: Arc<Value>,
    /// The object before this change (for selector transitions in watches).
    pub prev: Option<Arc<Value>>,
}

/// A live feed of changes.
pub type Subscription = broadcast::Receiver<Arc<Event>>;

/// Objects of one resource with their keys.
pub type Snapshot = Vec<(Key, Arc<Value>)>;

/// What a mutation does to the stored object.
#[derive(Debug)]
pub enum Write {
    /// Store this object (its `metadata.resourceVersion` is set by the store).
    Put(Value),
    /// Remove the object.
    Delete,
    /// Leave it as it is (a no-op update keeps its resource version, as kube-apiserver does).
    Keep,
}

#[derive(Debug)]
struct Inner {
    rv: u64,
    objects: BTreeMap<Key, Arc<Value>>,
    history: VecDeque<Arc<Event>>,
    /// Resource version of the newest event dropped from the history.
    compacted: u64,
}

/// Resuming a watch from a version older than the retained history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone {
    pub requested: u64,
    pub oldest: u64,
}

/// The store. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Store {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Arc<Event>>,
    history_cap: usize,
}

impl Store {
    /// A store keeping `history_cap` events for watch resumption.
    pub fn new(history_cap: usize) -> Self {
        let (tx, _) = broadcast::channel(16_384);
        Self {
            inner: Mutex::new(Inner {
                rv: 1,
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                compacted: 0,
            }),
            tx,
            history_cap: history_cap.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated (every write is a
        // single insert/remove), so a poisoned lock is still safe to use.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    pub fn get(&self, key: &Key) -> Option<Arc<Value>> {
        self.lock().objects.get(key).cloned()
    }

    /// Objects of one resource (optionally one namespace), ordered by namespace then name,
    /// with the resource version the list is consistent with.
    pub fn list(&self, group: &str, plural: &str, namespace: Option<&str>) -> (Vec<(Key, Arc<Value>)>, u64) {
        let inner = self.lock();
        let lo =
            (group.to_owned(), plural.to_owned(), namespace.unwrap_or_default().to_owned(), String::new());
        let items = inner
            .objects
            .range(lo..)
            .take_while(|(k, _)| k.0 == group && k.1 == plural && namespace.is_none_or(|ns| k.2 == ns))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        (items, inner.rv)
    }

    /// How many objects of one resource (optionally one namespace) exist, without copying them:
    /// the lock is held for one ordered scan.
    pub fn count(&self, group: &str, plural: &str, namespace: Option<&str>) -> usize {
        let inner = self.lock();
        let lo =
            (group.to_owned(), plural.to_owned(), namespace.unwrap_or_default().to_owned(), String::new());
        inner
            .objects
            .range(lo..)
            .take_while(|(k, _)| k.0 == group && k.1 == plural && namespace.is_none_or(|ns| k.2 == ns))
            .count()
    }

    /// Every object (for garbage collection and namespace cleanup).
    pub fn all(&self) -> Vec<(Key, Arc<Value>)> {
        self.lock().objects.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Runs `f` on the current object under the store's lock and applies its decision
    /// atomically. `f` gets the resource version the write will have.
    pub fn mutate<T, E>(
        &self,
        key: &Key,
        f: impl FnOnce(Option<&Value>, u64) -> Result<(Write, T), E>,
    ) -> Result<(T, Option<Arc<Value>>), E> {
        let mut inner = self.lock();
        let next = inner.rv + 1;
        let current = inner.objects.get(key).cloned();
        let (write, out) = f(current.as_deref(), next)?;
        let (type_, object) = match write {
            Write::Keep => return Ok((out, current)),
            Write::Put(mut obj) => {
                if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.insert("resourceVersion".into(), Value::String(next.to_string()));
                }
                let obj = Arc::new(obj);
                let t = if current.is_some() { EventType::Modified } else { EventType::Added };
                inner.objects.insert(key.clone(), obj.clone());
                (t, obj)
            }
            Write::Delete => {
                let Some(old) = inner.objects.remove(key) else { return Ok((out, None)) };
                let mut obj = (*old).clone();
                if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.insert("resourceVersion".into(), Value::String(next.to_string()));
                }
                (EventType::Deleted, Arc::new(obj))
            }
        };
        inner.rv = next;
        let event =
            Arc::new(Event { rv: next, type_, key: key.clone(), object: object.clone(), prev: current });
        inner.history.push_back(event.clone());
        while inner.history.len() > self.history_cap {
            if let Some(old) = inner.history.pop_front() {
                inner.compacted = old.rv;
            }
        }
        // Nobody listening is fine.
        let _ = self.tx.send(event);
        let stored = if type_ == EventType::Deleted { None } else { Some(object) };
        Ok((out, stored))
    }

    /// Events after `since` still in the history plus a receiver for later ones, taken
    /// atomically so nothing is missed or seen twice. `Err(Gone)` when `since` was compacted.
    pub fn watch_since(&self, since: u64) -> Result<(Vec<Arc<Event>>, Subscription), Gone> {
        let inner = self.lock();
        if since < inner.compacted {
            return Err(Gone { requested: since, oldest: inner.compacted + 1 });
        }
        let rx = self.tx.subscribe();
        let backlog = inner.history.iter().filter(|e| e.rv > since).cloned().collect();
        Ok((backlog, rx))
    }

    /// A snapshot of one resource and a receiver for changes after it, taken atomically.
    pub fn list_and_watch(
        &self,
        group: &str,
        plural: &str,
        namespace: Option<&str>,
    ) -> (Snapshot, u64, Subscription) {
        let inner = self.lock();
        let rx = self.tx.subscribe();
        let items = inner
            .objects
            .iter()
            .filter(|(k, _)| k.0 == group && k.1 == plural && namespace.is_none_or(|ns| k.2 == ns))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        (items, inner.rv, rx)
    }

    /// A receiver of every future change (for in-process controllers).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key(name: &str) -> Key {
        ("apps".into(), "deployments".into(), "default".into(), name.into())
    }

    fn put(s: &Store, name: &str) -> u64 {
        let (_, obj) = s
            .mutate::<(), ()>(&key(name), |_, _| Ok((Write::Put(json!({"metadata": {"name": name}})), ())))
            .unwrap();
        obj.unwrap()["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap()
    }

    #[test]
    fn versions_increase_and_keep_is_free() {
        let s = Store::new(10);
        let a = put(&s, "a");
        let b = put(&s, "b");
        assert!(b > a);
        let before = s.current_rv();
        s.mutate::<(), ()>(&key("a"), |_, _| Ok((Write::Keep, ()))).unwrap();
        assert_eq!(s.current_rv(), before);
        let (items, rv) = s.list("apps", "deployments", Some("default"));
        assert_eq!(items.len(), 2);
        assert_eq!(rv, before);
        assert!(s.list("apps", "deployments", Some("other")).0.is_empty());
    }

    #[test]
    fn watch_resumes_from_history_and_compacted_versions_are_gone() {
        let s = Store::new(3);
        let first = put(&s, "a");
        for n in ["b", "c", "d", "e"] {
            put(&s, n);
        }
        assert!(matches!(s.watch_since(first), Err(Gone { .. })), "version {first} was compacted");
        let latest = s.current_rv();
        let (backlog, _) = s.watch_since(latest - 2).unwrap();
        assert_eq!(backlog.iter().map(|e| e.rv).collect::<Vec<_>>(), [latest - 1, latest]);
    }

    #[tokio::test]
    async fn deletes_are_broadcast_with_a_new_version() {
        let s = Store::new(10);
        put(&s, "a");
        let (_, mut rx) = s.watch_since(s.current_rv()).unwrap();
        s.mutate::<(), ()>(&key("a"), |cur, _| {
            assert!(cur.is_some());
            Ok((Write::Delete, ()))
        })
        .unwrap();
        let ev = rx.recv().await.unwrap();
        assert_eq!(ev.type_, EventType::Deleted);
        assert_eq!(ev.object["metadata"]["resourceVersion"], json!(s.current_rv().to_string()));
        assert!(s.get(&key("a")).is_none());
    }
}
