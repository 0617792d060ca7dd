//! Picking up rotated credentials. The [`AuthIndex`] records, per ScaledObject, the objects its
//! authentication and its target's container environment were resolved from
//! (TriggerAuthentications, ClusterTriggerAuthentications, Secrets, ConfigMaps) with the resource
//! version each had, and a keyed digest of what was resolved (parameters and environment). [`start`] runs, while leading, what notices changes to those objects:
//! - TriggerAuthentications and ClusterTriggerAuthentications are watched (metadata only);
//! - referenced Secrets and ConfigMaps are checked every `--auth-refresh-interval` with a
//!   metadata-only GET each: the operator may `get` the Secrets it is pointed at but, by design,
//!   never lists or watches Secrets (a list or watch right is a right to read every Secret).
//!
//! A changed, created or deleted object sends a reconcile of exactly the ScaledObjects that
//! reference it, past the reconcile's fast path; that reconcile resolves the authentication
//! again, and [`crate::auth::parse_context`] rebuilds the object's scalers only when the digest
//! of the resolved parameters changed. Nothing here holds a credential: versions and a digest
//! keyed per process ([`RandomState`]) only.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use ebb_api::{ClusterTriggerAuthentication, ScaledObject, TriggerAuthentication};
use ebb_scalers::ParseContext;
use futures::channel::mpsc;
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};

use crate::context::Ctx;
use crate::watch_scope::WatchScope;

/// An object an authentication was resolved from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ref {
    TriggerAuthentication { namespace: String, name: String },
    ClusterTriggerAuthentication { name: String },
    Secret { namespace: String, name: String },
    ConfigMap { namespace: String, name: String },
}

type Key = (String, String);

/// What each ScaledObject's authentication was resolved from, and a digest of the result.
#[derive(Default)]
pub struct AuthIndex {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for AuthIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("AuthIndex")
            .field("objects", &inner.objects.len())
            .field("refs", &inner.refs.len())
            .finish()
    }
}

#[derive(Default)]
struct Inner {
    /// Keys the digests, so a digest says nothing about a credential outside this process.
    hasher: RandomState,
    objects: HashMap<Key, Tracked>,
    refs: HashMap<Ref, RefState>,
}

#[derive(Default)]
struct Tracked {
    refs: BTreeSet<Ref>,
    digest: Option<u64>,
}

#[derive(Default)]
struct RefState {
    /// Resource version last seen (`None`: the object did not exist).
    version: Option<String>,
    users: BTreeSet<Key>,
}

impl AuthIndex {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the objects ScaledObject `ns/name` was just resolved from, with the versions seen.
    pub fn track(&self, ns: &str, name: &str, refs: BTreeMap<Ref, Option<String>>) {
        let mut inner = self.lock();
        let key = (ns.to_owned(), name.to_owned());
        let old = inner.objects.get(&key).map(|t| t.refs.clone()).unwrap_or_default();
        for r in old.iter().filter(|r| !refs.contains_key(*r)) {
            inner.unuse(r, &key);
        }
        for (r, version) in &refs {
            let state = inner.refs.entry(r.clone()).or_default();
            state.version.clone_from(version);
            state.users.insert(key.clone());
        }
        inner.objects.entry(key).or_default().refs = refs.into_keys().collect();
    }

    /// Records the digest of a successful resolution; `true` when an earlier resolution of the
    /// same object gave different parameters (its scalers hold stale credentials).
    pub fn settle(&self, ns: &str, name: &str, resolved: &ParseContext) -> bool {
        let mut inner = self.lock();
        let digest = digest(&inner.hasher, resolved);
        let tracked = inner.objects.entry((ns.to_owned(), name.to_owned())).or_default();
        let changed = tracked.digest.is_some_and(|d| d != digest);
        tracked.digest = Some(digest);
        changed
    }

    /// Forgets every object for which `live` is false.
    pub fn retain(&self, live: impl Fn(&str, &str) -> bool) {
        let mut inner = self.lock();
        let gone: Vec<Key> = inner.objects.keys().filter(|(ns, n)| !live(ns, n)).cloned().collect();
        for key in gone {
            if let Some(t) = inner.objects.remove(&key) {
                for r in &t.refs {
                    inner.unuse(r, &key);
                }
            }
        }
    }

    /// Records the version of `r` seen now; returns the ScaledObjects using `r` when it differs
    /// from the version last seen.
    pub fn observe(&self, r: &Ref, version: Option<String>) -> Vec<Key> {
        let mut inner = self.lock();
        match inner.refs.get_mut(r) {
            Some(state) if state.version != version => {
                state.version = version;
                state.users.iter().cloned().collect()
            }
            _ => Vec::new(),
        }
    }

    /// The referenced objects `keep` selects.
    pub fn refs(&self, keep: impl Fn(&Ref) -> bool) -> Vec<Ref> {
        let mut out: Vec<Ref> = self.lock().refs.keys().filter(|r| keep(r)).cloned().collect();
        out.sort();
        out
    }

    /// The ScaledObjects referencing `r`.
    pub fn users(&self, r: &Ref) -> Vec<Key> {
        self.lock().refs.get(r).map(|s| s.users.iter().cloned().collect()).unwrap_or_default()
    }
}

impl Inner {
    fn unuse(&mut self, r: &Ref, key: &Key) {
        if let Some(state) = self.refs.get_mut(r) {
            state.users.remove(key);
            if state.users.is_empty() {
                self.refs.remove(r);
            }
        }
    }
}

/// Keyed digest of everything resolution produced that a scaler is built from.
fn digest(keys: &RandomState, c: &ParseContext) -> u64 {
    let mut h = keys.build_hasher();
    c.env.hash(&mut h);
    c.auth.hash(&mut h);
    c.auth_sources.hash(&mut h);
    for (i, p) in &c.pod_identity {
        (i, &p.provider, &p.role_arn, &p.identity_owner, &p.identity_id).hash(&mut h);
    }
    c.workload_role_arn.hash(&mut h);
    h.finish()
}

/// Starts noticing changes to the objects authentications were resolved from; the stream asks
/// for reconciles of the ScaledObjects concerned (give it to the controller's `reconcile_on`).
/// The task stops when its handle is aborted.
pub fn start(
    ctx: Arc<Ctx>,
    scope: WatchScope,
) -> (impl Stream<Item = ObjectRef<ScaledObject>> + Send + 'static, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded();
    let notify = Notify { ctx: ctx.clone(), tx };
    let client = ctx.client.clone();
    // `Api<PartialObjectMeta<_>>` makes metadata-only requests; one watch per namespace watched
    // (or one cluster-wide).
    let tas = scope.apis::<PartialObjectMeta<TriggerAuthentication>>(&client);
    let ctas: Api<PartialObjectMeta<ClusterTriggerAuthentication>> = Api::all(client.clone());
    let task = tokio::spawn(async move {
        let ta = futures::future::join_all(tas.into_iter().map(|(ns, api)| {
            watch(
                api,
                ns,
                "triggerauthentications",
                notify.clone(),
                |m: &PartialObjectMeta<TriggerAuthentication>| Ref::TriggerAuthentication {
                    namespace: m.metadata.namespace.clone().unwrap_or_default(),
                    name: m.metadata.name.clone().unwrap_or_default(),
                },
            )
        }));
        let cta = watch(
            ctas,
            None,
            "clustertriggerauthentications",
            notify.clone(),
            |m: &PartialObjectMeta<ClusterTriggerAuthentication>| Ref::ClusterTriggerAuthentication {
                name: m.metadata.name.clone().unwrap_or_default(),
            },
        );
        tokio::join!(ta, cta, poll(client, notify));
    });
    (rx, task)
}

/// Sends reconciles of the users of a changed object, past the reconcile's fast path.
#[derive(Clone)]
struct Notify {
    ctx: Arc<Ctx>,
    tx: mpsc::UnboundedSender<ObjectRef<ScaledObject>>,
}

impl Notify {
    fn changed(&self, r: &Ref, version: Option<String>) {
        for (ns, name) in self.ctx.auth_index.observe(r, version) {
            let state = self
                .ctx
                .objects
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&(ns.clone(), name.clone()))
                .cloned();
            if let Some(state) = state {
                *state.reconciled.lock().unwrap_or_else(PoisonError::into_inner) = None;
            }
            tracing::debug!(namespace = ns, name, reference = ?r, "referenced authentication object changed");
            let _ = self.tx.unbounded_send(ObjectRef::new(&name).within(&ns));
        }
    }
}

/// Watches the metadata of one kind of authentication (in `namespace`, or everywhere) and
/// reports every version change of the objects the index references (a re-list also reports
/// those of its namespace deleted meanwhile).
async fn watch<K>(
    api: Api<PartialObjectMeta<K>>,
    namespace: Option<String>,
    what: &str,
    notify: Notify,
    to_ref: impl Fn(&PartialObjectMeta<K>) -> Ref,
) where
    K: Resource + Clone + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default + Clone + Eq + Hash + Send + Sync,
{
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut relisted: Option<HashSet<Ref>> = None;
    let mut kind = None;
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::Init) => relisted = Some(HashSet::new()),
            Ok(watcher::Event::InitApply(m)) => {
                let r = to_ref(&m);
                kind.get_or_insert_with(|| std::mem::discriminant(&r));
                notify.changed(&r, m.metadata.resource_version.clone());
                if let Some(seen) = relisted.as_mut() {
                    seen.insert(r);
                }
            }
            Ok(watcher::Event::InitDone) => {
                let Some(seen) = relisted.take() else { continue };
                // Referenced objects absent from the new list were deleted meanwhile.
                let Some(kind) = kind else { continue };
                let listed = |r: &Ref| match (&namespace, r) {
                    (Some(ns), Ref::TriggerAuthentication { namespace, .. }) => namespace == ns,
                    (Some(_), _) => false,
                    (None, _) => true,
                };
                for r in notify
                    .ctx
                    .auth_index
                    .refs(|r| std::mem::discriminant(r) == kind && listed(r) && !seen.contains(r))
                {
                    notify.changed(&r, None);
                }
            }
            Ok(watcher::Event::Apply(m)) => {
                let r = to_ref(&m);
                kind.get_or_insert_with(|| std::mem::discriminant(&r));
                notify.changed(&r, m.metadata.resource_version.clone());
            }
            Ok(watcher::Event::Delete(m)) => notify.changed(&to_ref(&m), None),
            Err(e) => tracing::warn!("watching {what}: {e}"),
        }
    }
}

/// Every refresh interval: one metadata-only GET per referenced Secret and ConfigMap; also
/// forgets the objects the operator no longer tracks.
async fn poll(client: Client, notify: Notify) {
    let mut tick = tokio::time::interval(notify.ctx.config.auth.refresh_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        {
            let objects = notify.ctx.objects.lock().unwrap_or_else(PoisonError::into_inner);
            let live: HashSet<Key> = objects.keys().cloned().collect();
            drop(objects);
            notify.ctx.auth_index.retain(|ns, name| live.contains(&(ns.to_owned(), name.to_owned())));
        }
        let mut failed = Vec::new();
        for r in notify.ctx.auth_index.refs(|r| matches!(r, Ref::Secret { .. } | Ref::ConfigMap { .. })) {
            let got = match &r {
                Ref::Secret { namespace, name } => Api::<Secret>::namespaced(client.clone(), namespace)
                    .get_metadata_opt(name)
                    .await
                    .map(|m| m.and_then(|m| m.metadata.resource_version)),
                Ref::ConfigMap { namespace, name } => Api::<ConfigMap>::namespaced(client.clone(), namespace)
                    .get_metadata_opt(name)
                    .await
                    .map(|m| m.and_then(|m| m.metadata.resource_version)),
                _ => continue,
            };
            match got {
                Ok(version) => notify.changed(&r, version),
                Err(e) => failed.push(format!("{r:?}: {e}")),
            }
        }
        if let Some(first) = failed.first() {
            tracing::warn!(
                failed = failed.len(),
                "cannot check referenced Secrets/ConfigMaps for changes; first: {first}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(name: &str) -> Ref {
        Ref::Secret { namespace: "a".into(), name: name.into() }
    }

    fn resolved(token: &str) -> ParseContext {
        let mut c = ParseContext::default();
        c.auth.insert(0, [("bearerToken".to_owned(), token.to_owned())].into());
        c
    }

    #[test]
    fn a_changed_reference_names_its_users_once() {
        let index = AuthIndex::default();
        index.track("a", "so1", [(secret("s"), Some("1".into()))].into());
        index.track("a", "so2", [(secret("s"), Some("1".into())), (secret("t"), None)].into());
        assert!(index.observe(&secret("s"), Some("1".into())).is_empty(), "same version");
        let mut users = index.observe(&secret("s"), Some("2".into()));
        users.sort();
        assert_eq!(users, [("a".to_owned(), "so1".to_owned()), ("a".to_owned(), "so2".to_owned())]);
        assert!(index.observe(&secret("s"), Some("2".into())).is_empty(), "reported once");
        // A missing Secret that appears.
        assert_eq!(index.observe(&secret("t"), Some("7".into())), [("a".to_owned(), "so2".to_owned())]);
        // Unreferenced objects are not tracked.
        assert!(index.observe(&secret("other"), Some("1".into())).is_empty());
        // so2 no longer references t; then is deleted.
        index.track("a", "so2", [(secret("s"), Some("2".into()))].into());
        assert!(index.refs(|_| true).iter().all(|r| *r != secret("t")));
        index.retain(|_, name| name != "so2");
        assert_eq!(index.users(&secret("s")), [("a".to_owned(), "so1".to_owned())]);
    }

    #[test]
    fn settle_reports_only_a_change_of_resolved_parameters() {
        let index = AuthIndex::default();
        assert!(!index.settle("a", "so", &resolved("old")), "first resolution");
        assert!(!index.settle("a", "so", &resolved("old")));
        assert!(index.settle("a", "so", &resolved("new")));
        assert!(!index.settle("a", "so", &resolved("new")));
    }
}
