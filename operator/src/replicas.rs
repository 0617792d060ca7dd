//! Watch-fed cache of `spec.replicas` of Deployments and StatefulSets, the usual scale targets,
//! so that a scale-loop tick does not need an API request to learn the current replica count
//! (10,000 objects polled every second would otherwise send 10,000 GETs a second). Only the
//! count is kept per object, never the object. Targets of other kinds, and targets the cache has
//! not seen (yet), are read through `/scale` as before. After ebb writes a count it stores it
//! here at once, so the next tick never acts on the value from before its own write.
//! Counts are kept by kind, then namespace, then name, so a tick's look-up (by `&str`)
//! allocates nothing.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};

use futures::StreamExt;
use kube::Client;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};

use crate::target::Target;
use crate::watch_scope::WatchScope;

/// The kinds whose replica counts are cached: (group, version, kind, plural).
const KINDS: [(&str, &str, &str, &str); 2] =
    [("apps", "v1", "Deployment", "deployments"), ("apps", "v1", "StatefulSet", "statefulsets")];

type Key = (&'static str, String, String);

/// Counts of one kind: by namespace, then name.
type Counts = HashMap<String, HashMap<String, i32>>;

/// Replica counts by kind, namespace and name.
#[derive(Debug, Default)]
pub struct ReplicaCache {
    counts: RwLock<HashMap<&'static str, Counts>>,
}

fn kind_of(t: &Target) -> Option<&'static str> {
    KINDS.iter().find(|(g, _, k, _)| t.gvkr.group == *g && t.gvkr.kind == *k).map(|(_, _, k, _)| *k)
}

impl ReplicaCache {
    /// The cached `spec.replicas` of the target, if its kind is cached and the object was seen.
    pub fn get(&self, t: &Target, ns: &str) -> Option<i32> {
        let kind = kind_of(t)?;
        let counts = self.counts.read().unwrap_or_else(PoisonError::into_inner);
        counts.get(kind)?.get(ns)?.get(&t.name).copied()
    }

    /// Records a count ebb has just written.
    pub fn set(&self, t: &Target, ns: &str, replicas: i32) {
        if let Some(kind) = kind_of(t) {
            self.insert((kind, ns.to_owned(), t.name.clone()), replicas);
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<&'static str, Counts>> {
        self.counts.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn insert(&self, (kind, ns, name): Key, replicas: i32) {
        self.write().entry(kind).or_default().entry(ns).or_default().insert(name, replicas);
    }

    fn remove(&self, (kind, ns, name): &Key) {
        let mut counts = self.write();
        let Some(namespaces) = counts.get_mut(kind) else { return };
        if let Some(names) = namespaces.get_mut(ns) {
            names.remove(name);
            if names.is_empty() {
                namespaces.remove(ns);
            }
        }
    }

    /// Number of cached objects.
    pub fn len(&self) -> usize {
        let counts = self.counts.read().unwrap_or_else(PoisonError::into_inner);
        counts.values().flat_map(HashMap::values).map(HashMap::len).sum()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Applies one watch event for `kind` from the watch of `namespace` (or of every namespace);
    /// `relisted` collects the names seen during a relist so that objects of that watch deleted
    /// while it was down are dropped when the relist completes.
    fn apply(
        &self,
        kind: &'static str,
        namespace: Option<&str>,
        event: Event<DynamicObject>,
        relisted: &mut Option<HashSet<Key>>,
    ) {
        let key = |o: &DynamicObject| {
            (
                kind,
                o.metadata.namespace.clone().unwrap_or_default(),
                o.metadata.name.clone().unwrap_or_default(),
            )
        };
        // A Deployment without spec.replicas has 1 (the API server defaults it).
        let count = |o: &DynamicObject| {
            o.data
                .pointer("/spec/replicas")
                .and_then(serde_json::Value::as_i64)
                .map_or(1, |n| i32::try_from(n).unwrap_or(i32::MAX))
        };
        match event {
            Event::Init => *relisted = Some(HashSet::new()),
            Event::InitApply(o) => {
                let k = key(&o);
                if let Some(seen) = relisted {
                    seen.insert(k.clone());
                }
                self.insert(k, count(&o));
            }
            Event::InitDone => {
                if let Some(seen) = relisted.take() {
                    let mut counts = self.write();
                    if let Some(namespaces) = counts.get_mut(kind) {
                        for (ns, names) in namespaces.iter_mut() {
                            if namespace.is_none_or(|n| n == ns) {
                                names.retain(|name, _| seen.contains(&(kind, ns.clone(), name.clone())));
                            }
                        }
                        namespaces.retain(|_, names| !names.is_empty());
                    }
                }
            }
            Event::Apply(o) => self.insert(key(&o), count(&o)),
            Event::Delete(o) => self.remove(&key(&o)),
        }
    }

    /// Watches Deployments and StatefulSets (in each namespace of `scope`, or everywhere) until
    /// dropped, retrying with backoff when a watch fails. Errors are logged, never fatal:
    /// uncached targets are read through `/scale`.
    pub async fn run(self: Arc<Self>, client: Client, scope: WatchScope) {
        let watches = KINDS.iter().flat_map(|(group, version, kind, plural)| {
            let resource =
                ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
            let this = self.clone();
            scope.apis_dynamic(&client, &resource).into_iter().map(move |(namespace, api)| {
                let cache = this.clone();
                async move {
                    let mut relisted = None;
                    let mut stream = watcher::watcher(api, watcher::Config::default().any_semantic())
                        .default_backoff()
                        .boxed();
                    while let Some(event) = stream.next().await {
                        match event {
                            Ok(event) => cache.apply(kind, namespace.as_deref(), event, &mut relisted),
                            Err(e) => tracing::debug!(kind, "replica cache watch: {e}"),
                        }
                    }
                }
            })
        });
        futures::future::join_all(watches).await;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn target(kind: &str, group: &str, name: &str) -> Target {
        let gvk = GroupVersionKind::gvk(group, "v1", kind);
        let resource = ApiResource::from_gvk(&gvk);
        Target {
            gvkr: ebb_api::GroupVersionKindResource {
                group: group.into(),
                version: "v1".into(),
                kind: kind.into(),
                resource: resource.plural.clone(),
            },
            resource,
            name: name.into(),
        }
    }

    fn object(ns: &str, name: &str, spec: serde_json::Value) -> DynamicObject {
        serde_json::from_value(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"namespace": ns, "name": name}, "spec": spec}))
        .unwrap()
    }

    #[test]
    fn events_keep_counts_and_relists_drop_vanished_objects() {
        let cache = ReplicaCache::default();
        let mut relist = None;
        let web = target("Deployment", "apps", "web");
        let api = target("Deployment", "apps", "api");
        cache.apply("Deployment", None, Event::Init, &mut relist);
        cache.apply(
            "Deployment",
            None,
            Event::InitApply(object("shop", "web", json!({"replicas": 3}))),
            &mut relist,
        );
        cache.apply("Deployment", None, Event::InitApply(object("shop", "api", json!({}))), &mut relist);
        cache.apply("Deployment", None, Event::InitDone, &mut relist);
        assert_eq!(cache.get(&web, "shop"), Some(3));
        assert_eq!(cache.get(&api, "shop"), Some(1), "absent spec.replicas defaults to 1");
        assert_eq!(cache.get(&web, "other"), None);

        cache.apply(
            "Deployment",
            None,
            Event::Apply(object("shop", "web", json!({"replicas": 0}))),
            &mut relist,
        );
        assert_eq!(cache.get(&web, "shop"), Some(0));
        cache.set(&web, "shop", 5);
        assert_eq!(cache.get(&web, "shop"), Some(5));

        // A relist that no longer sees "api" drops it; a StatefulSet of the same name is separate.
        let sts = target("StatefulSet", "apps", "api");
        cache.apply(
            "StatefulSet",
            None,
            Event::Apply(object("shop", "api", json!({"replicas": 2}))),
            &mut None,
        );
        cache.apply("Deployment", None, Event::Init, &mut relist);
        cache.apply(
            "Deployment",
            None,
            Event::InitApply(object("shop", "web", json!({"replicas": 4}))),
            &mut relist,
        );
        cache.apply("Deployment", None, Event::InitDone, &mut relist);
        assert_eq!(cache.get(&api, "shop"), None);
        assert_eq!(cache.get(&web, "shop"), Some(4));
        assert_eq!(cache.get(&sts, "shop"), Some(2));

        cache.apply("Deployment", None, Event::Delete(object("shop", "web", json!({}))), &mut relist);
        assert_eq!(cache.get(&web, "shop"), None);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn other_kinds_are_never_cached() {
        let cache = ReplicaCache::default();
        let rollout = target("Rollout", "argoproj.io", "web");
        cache.set(&rollout, "shop", 3);
        assert_eq!(cache.get(&rollout, "shop"), None);
        assert!(cache.is_empty());
    }
}
