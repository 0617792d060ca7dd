//! In-memory storage with Kubernetes resource versions: one global, strictly increasing
//! `resourceVersion`, objects keyed by (group, plural, namespace, name), a bounded history of
//! change events for resuming watches (older versions are compacted: resuming from them is
//! `410 Gone`, as with etcd compaction), and a broadcast of every change to live watchers.
//! Compaction and the watchers' feeds are per resource, as kube-apiserver's watch cache is: a
//! watch of ScaledObjects neither falls behind on, nor is made `Gone` by, a flood of writes to
//! Deployments or Events.

use std::collections::{BTreeMap, HashMap, VecDeque};
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
    /// Per resource (group, then plural): the resource version of its newest event dropped
    /// from the history. A watch of one resource can resume from any version at or after it,
    /// whatever other resources wrote since, as with kube-apiserver's per-resource watch cache.
    compacted: HashMap<String, HashMap<String, u64>>,
    /// Per resource (group, then plural): the feed its watches receive, so a watcher is cut off
    /// for falling behind on its own resource only.
    feeds: HashMap<String, HashMap<String, broadcast::Sender<Arc<Event>>>>,
}

/// Capacity of each broadcast feed; a receiver further behind is cut off (its watch ends and
/// the client resumes from its last version).
const FEED_CAPACITY: usize = 16_384;

impl Inner {
    /// The stored objects of one resource (optionally one namespace), in key order.
    fn of<'a>(
        &'a self,
        group: &'a str,
        plural: &'a str,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a Key, &'a Arc<Value>)> {
        let lo =
            (group.to_owned(), plural.to_owned(), namespace.unwrap_or_default().to_owned(), String::new());
        self.objects
            .range(lo..)
            .take_while(move |(k, _)| k.0 == group && k.1 == plural && namespace.is_none_or(|ns| k.2 == ns))
    }

    fn compacted(&self, group: &str, plural: &str) -> u64 {
        self.compacted.get(group).and_then(|m| m.get(plural)).copied().unwrap_or(0)
    }

    fn subscribe(&mut self, group: &str, plural: &str) -> Subscription {
        self.feeds
            .entry(group.to_owned())
            .or_default()
            .entry(plural.to_owned())
            .or_insert_with(|| broadcast::channel(FEED_CAPACITY).0)
            .subscribe()
    }
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
        let (tx, _) = broadcast::channel(FEED_CAPACITY);
        Self {
            inner: Mutex::new(Inner {
                rv: 1,
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                compacted: HashMap::new(),
                feeds: HashMap::new(),
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
        let items = inner.of(group, plural, namespace).map(|(k, v)| (k.clone(), v.clone())).collect();
        (items, inner.rv)
    }

    /// How many objects of one resource (optionally one namespace) exist, without copying them:
    /// the lock is held for one ordered scan.
    pub fn count(&self, group: &str, plural: &str, namespace: Option<&str>) -> usize {
        self.lock().of(group, plural, namespace).count()
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
                let (group, plural) = (&old.key.0, &old.key.1);
                match inner.compacted.get_mut(group.as_str()).and_then(|m| m.get_mut(plural.as_str())) {
                    Some(rv) => *rv = old.rv,
                    None => {
                        inner.compacted.entry(group.clone()).or_default().insert(plural.clone(), old.rv);
                    }
                }
            }
        }
        // Nobody listening is fine.
        if let Some(feed) = inner.feeds.get(key.0.as_str()).and_then(|m| m.get(key.1.as_str())) {
            let _ = feed.send(event.clone());
        }
        let _ = self.tx.send(event);
        let stored = if type_ == EventType::Deleted { None } else { Some(object) };
        Ok((out, stored))
    }

    /// Events of one resource after `since` still in the history plus a receiver for its later
    /// ones, taken atomically so nothing is missed or seen twice. `Err(Gone)` when an event of
    /// that resource after `since` was compacted.
    pub fn watch_since(
        &self,
        group: &str,
        plural: &str,
        since: u64,
    ) -> Result<(Vec<Arc<Event>>, Subscription), Gone> {
        let mut inner = self.lock();
        let compacted = inner.compacted(group, plural);
        if since < compacted {
            return Err(Gone { requested: since, oldest: compacted + 1 });
        }
        let rx = inner.subscribe(group, plural);
        let backlog = inner
            .history
            .iter()
            .filter(|e| e.rv > since && e.key.0 == group && e.key.1 == plural)
            .cloned()
            .collect();
        Ok((backlog, rx))
    }

    /// A snapshot of one resource and a receiver for changes after it, taken atomically.
    pub fn list_and_watch(
        &self,
        group: &str,
        plural: &str,
        namespace: Option<&str>,
    ) -> (Snapshot, u64, Subscription) {
        let mut inner = self.lock();
        let rx = inner.subscribe(group, plural);
        let items = inner
            .objects
            .iter()
            .filter(|(k, _)| k.0 == group && k.1 == plural && namespace.is_none_or(|ns| k.2 == ns))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        (items, inner.rv, rx)
    }

    /// A receiver of every future change of every resource (for in-process controllers).
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
        put_at(s, &key(name))
    }

    /// Stores an object under `k`; returns its resource version.
    fn put_at(s: &Store, k: &Key) -> u64 {
        let name = k.3.clone();
        let (_, obj) =
            s.mutate::<(), ()>(k, |_, _| Ok((Write::Put(json!({"metadata": {"name": name}})), ()))).unwrap();
        obj.unwrap()["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap()
    }

    fn put_event(s: &Store, name: &str) -> u64 {
        put_at(s, &("events.k8s.io".into(), "events".into(), "default".into(), name.into()))
    }

    #[tokio::test]
    async fn other_resources_neither_compact_nor_crowd_a_watch() {
        // History of 3 events; a watcher of Deployments at `a`, then 5 Events written.
        let s = Store::new(3);
        let a = put(&s, "a");
        let (_, mut feed) = s.watch_since("apps", "deployments", a).unwrap();
        for i in 0..5 {
            put_event(&s, &format!("e{i}"));
        }
        // kube-apiserver keeps history per resource: no Deployment changed since `a`, so the
        // watch resumes from it (410 Gone only once a Deployment event after it is dropped).
        let (backlog, _) = s.watch_since("apps", "deployments", a).unwrap();
        assert!(backlog.is_empty());
        // The Deployment feed carries Deployments only.
        assert!(feed.try_recv().is_err(), "an Event reached the Deployments' feed");
        let b = put(&s, "b");
        assert_eq!(feed.recv().await.unwrap().rv, b);
        // Once Deployment events after `a` are compacted, resuming from `a` is Gone.
        for n in ["c", "d", "f"] {
            put(&s, n);
        }
        assert!(matches!(s.watch_since("apps", "deployments", a), Err(Gone { .. })));
        let (backlog, _) = s.watch_since("events.k8s.io", "events", b).unwrap();
        assert!(backlog.is_empty(), "no Event after {b}");
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
        assert!(
            matches!(s.watch_since("apps", "deployments", first), Err(Gone { .. })),
            "{first} was compacted"
        );
        let latest = s.current_rv();
        let (backlog, _) = s.watch_since("apps", "deployments", latest - 2).unwrap();
        assert_eq!(backlog.iter().map(|e| e.rv).collect::<Vec<_>>(), [latest - 1, latest]);
    }

    #[tokio::test]
    async fn deletes_are_broadcast_with_a_new_version() {
        let s = Store::new(10);
        put(&s, "a");
        let (_, mut rx) = s.watch_since("apps", "deployments", s.current_rv()).unwrap();
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
