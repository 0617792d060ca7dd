//! The in-memory index the cross-object rules read: for every ScaledObject only its target
//! workload and HPA name, for every HorizontalPodAutoscaler only its target, its owning
//! ScaledObject and its ownership-validation opt-out. Fed by watches (see [`crate::watch`]),
//! never by admission requests, so a review (dry run or not) cannot change it. Memory grows with
//! the number of objects times the length of these few keys, not with object size.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock, RwLockReadGuard};
use std::time::Duration;

use tokio::sync::watch;

/// A workload as a scale target: API group (version ignored: `apps/v1` and `apps/v1beta2` name
/// the same Deployment), kind and name, within one namespace.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Workload {
    pub group: Box<str>,
    pub kind: Box<str>,
    pub name: Box<str>,
}

impl Workload {
    /// From a `scaleTargetRef`: `apiVersion` (`group/version`, or `version` for the core group),
    /// kind and name.
    pub fn new(api_version: &str, kind: &str, name: &str) -> Self {
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        Self { group: group.into(), kind: kind.into(), name: name.into() }
    }

    /// `kind/name` with the group when it is not `apps` (for messages).
    pub fn describe(&self) -> String {
        match &*self.group {
            "apps" => format!("{}/{}", self.kind, self.name),
            "" => format!("{}/{} (core group)", self.kind, self.name),
            g => format!("{}.{}/{}", self.kind, g, self.name),
        }
    }
}

/// What the rules need of one ScaledObject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SoKeys {
    pub target: Workload,
    pub hpa: Box<str>,
}

/// What the rules need of one HorizontalPodAutoscaler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HpaKeys {
    pub target: Workload,
    /// Name of the ScaledObject in its ownerReferences, if any.
    pub owner: Option<Box<str>>,
    /// `validations.keda.sh/hpa-ownership: "false"` on the HPA.
    pub validation_off: bool,
}

#[derive(Debug, Default, Clone)]
struct SoNs {
    objects: HashMap<Box<str>, SoKeys>,
    by_target: HashMap<Workload, Vec<Box<str>>>,
    by_hpa: HashMap<Box<str>, Vec<Box<str>>>,
}

/// ScaledObjects by namespace, by target and by HPA name.
#[derive(Debug, Default, Clone)]
pub struct SoIndex {
    namespaces: HashMap<Box<str>, SoNs>,
    len: usize,
}

impl SoIndex {
    /// Adds or replaces ScaledObject `ns/name`.
    pub fn apply(&mut self, ns: &str, name: &str, keys: SoKeys) {
        self.delete(ns, name);
        let n = self.namespaces.entry(ns.into()).or_default();
        n.by_target.entry(keys.target.clone()).or_default().push(name.into());
        n.by_hpa.entry(keys.hpa.clone()).or_default().push(name.into());
        n.objects.insert(name.into(), keys);
        self.len += 1;
    }

    /// Forgets ScaledObject `ns/name` (nothing happens when it is unknown).
    pub fn delete(&mut self, ns: &str, name: &str) {
        let Some(n) = self.namespaces.get_mut(ns) else { return };
        let Some(old) = n.objects.remove(name) else { return };
        self.len -= 1;
        drop_from(&mut n.by_target, &old.target, name);
        drop_from(&mut n.by_hpa, &old.hpa, name);
        if n.objects.is_empty() {
            self.namespaces.remove(ns);
        }
    }

    /// Names of the ScaledObjects in `ns` targeting `w`.
    pub fn targeting<'a>(&'a self, ns: &str, w: &Workload) -> impl Iterator<Item = &'a str> + 'a {
        self.namespaces.get(ns).and_then(|n| n.by_target.get(w)).into_iter().flatten().map(|s| &**s)
    }

    /// Names of the ScaledObjects in `ns` whose HPA is called `hpa`.
    pub fn with_hpa<'a>(&'a self, ns: &str, hpa: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.namespaces.get(ns).and_then(|n| n.by_hpa.get(hpa)).into_iter().flatten().map(|s| &**s)
    }

    /// The keys of ScaledObject `ns/name`.
    pub fn get(&self, ns: &str, name: &str) -> Option<&SoKeys> {
        self.namespaces.get(ns)?.objects.get(name)
    }

    /// Whether the watch has seen a ScaledObject in `ns`.
    pub fn has_namespace(&self, ns: &str) -> bool {
        self.namespaces.contains_key(ns)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[derive(Debug, Default, Clone)]
struct HpaNs {
    objects: HashMap<Box<str>, HpaKeys>,
    by_target: HashMap<Workload, Vec<Box<str>>>,
}

/// HorizontalPodAutoscalers by namespace and by target.
#[derive(Debug, Default, Clone)]
pub struct HpaIndex {
    namespaces: HashMap<Box<str>, HpaNs>,
    len: usize,
}

impl HpaIndex {
    /// Adds or replaces HPA `ns/name`.
    pub fn apply(&mut self, ns: &str, name: &str, keys: HpaKeys) {
        self.delete(ns, name);
        let n = self.namespaces.entry(ns.into()).or_default();
        n.by_target.entry(keys.target.clone()).or_default().push(name.into());
        n.objects.insert(name.into(), keys);
        self.len += 1;
    }

    /// Forgets HPA `ns/name`.
    pub fn delete(&mut self, ns: &str, name: &str) {
        let Some(n) = self.namespaces.get_mut(ns) else { return };
        let Some(old) = n.objects.remove(name) else { return };
        self.len -= 1;
        drop_from(&mut n.by_target, &old.target, name);
        if n.objects.is_empty() {
            self.namespaces.remove(ns);
        }
    }

    /// `(name, keys)` of the HPAs in `ns` targeting `w`.
    pub fn targeting<'a>(
        &'a self,
        ns: &str,
        w: &Workload,
    ) -> impl Iterator<Item = (&'a str, &'a HpaKeys)> + 'a {
        let n = self.namespaces.get(ns);
        n.and_then(|n| n.by_target.get(w))
            .into_iter()
            .flatten()
            .filter_map(move |name| Some((&**name, n?.objects.get(name)?)))
    }

    /// Whether the watch has seen an HPA in `ns`.
    pub fn has_namespace(&self, ns: &str) -> bool {
        self.namespaces.contains_key(ns)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

fn drop_from<K: Eq + std::hash::Hash>(map: &mut HashMap<K, Vec<Box<str>>>, key: &K, name: &str) {
    if let Some(names) = map.get_mut(key) {
        names.retain(|n| &**n != name);
        if names.is_empty() {
            map.remove(key);
        }
    }
}

/// Both indexes and whether each has seen its first complete list.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub sos: SoIndex,
    pub hpas: HpaIndex,
    pub sos_synced: bool,
    pub hpas_synced: bool,
}

impl Snapshot {
    /// A synced snapshot of the given indexes (tests and benchmarks).
    pub fn synced(sos: SoIndex, hpas: HpaIndex) -> Self {
        Self { sos, hpas, sos_synced: true, hpas_synced: true }
    }

    pub fn is_synced(&self) -> bool {
        self.sos_synced && self.hpas_synced
    }

    /// Whether `ns` holds a ScaledObject or an HPA the watches have seen: only such namespaces
    /// are used as metric labels (a review's namespace is whatever its sender wrote).
    pub fn knows_namespace(&self, ns: &str) -> bool {
        self.sos.has_namespace(ns) || self.hpas.has_namespace(ns)
    }
}

/// The shared, watch-fed index: readers take a short read lock per review.
#[derive(Debug)]
pub struct Index {
    state: RwLock<Snapshot>,
    synced: watch::Sender<bool>,
}

impl Default for Index {
    fn default() -> Self {
        Self::new(Snapshot::default())
    }
}

impl Index {
    pub fn new(snapshot: Snapshot) -> Self {
        let synced = snapshot.is_synced();
        Self { state: RwLock::new(snapshot), synced: watch::Sender::new(synced) }
    }

    /// Read access for one review.
    pub fn read(&self) -> RwLockReadGuard<'_, Snapshot> {
        // The state is plain data updated in single steps: a panic elsewhere cannot tear it.
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the state with `f` and publishes whether both indexes are synced.
    pub fn update(&self, f: impl FnOnce(&mut Snapshot)) {
        let synced = {
            let mut s = self.state.write().unwrap_or_else(PoisonError::into_inner);
            f(&mut s);
            s.is_synced()
        };
        self.synced.send_if_modified(|v| std::mem::replace(v, synced) != synced);
    }

    pub fn is_synced(&self) -> bool {
        *self.synced.borrow()
    }

    /// Waits at most `limit` for both indexes to be synced; returns whether they are.
    pub async fn wait_synced(&self, limit: Duration) -> bool {
        let mut rx = self.synced.subscribe();
        matches!(tokio::time::timeout(limit, rx.wait_for(|s| *s)).await, Ok(Ok(_)))
    }

    /// A receiver that sees every change of the synced flag.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.synced.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn so(target: &str, hpa: &str) -> SoKeys {
        SoKeys { target: Workload::new("apps/v1", "Deployment", target), hpa: hpa.into() }
    }

    #[test]
    fn workload_ignores_the_version() {
        assert_eq!(
            Workload::new("apps/v1", "Deployment", "a"),
            Workload::new("apps/v1beta2", "Deployment", "a")
        );
        assert_ne!(Workload::new("apps/v1", "Deployment", "a"), Workload::new("apps/v1", "StatefulSet", "a"));
        assert_eq!(&*Workload::new("v1", "ReplicationController", "a").group, "");
        assert_eq!(Workload::new("argoproj.io/v1alpha1", "Rollout", "r").describe(), "Rollout.argoproj.io/r");
    }

    #[test]
    fn scaled_objects_are_found_by_target_and_hpa_and_forgotten() {
        let mut ix = SoIndex::default();
        ix.apply("ns", "a", so("web", "keda-hpa-a"));
        ix.apply("ns", "b", so("web", "shared"));
        ix.apply("other", "c", so("web", "shared"));
        let web = Workload::new("apps/v1", "Deployment", "web");
        let mut t: Vec<_> = ix.targeting("ns", &web).collect();
        t.sort();
        assert_eq!(t, ["a", "b"]);
        assert_eq!(ix.with_hpa("ns", "shared").collect::<Vec<_>>(), ["b"]);
        assert_eq!(ix.len(), 3);

        // Re-applying moves the keys; deleting forgets them; unknown deletes are no-ops.
        ix.apply("ns", "b", so("api", "keda-hpa-b"));
        assert_eq!(ix.targeting("ns", &web).collect::<Vec<_>>(), ["a"]);
        assert_eq!(ix.with_hpa("ns", "shared").count(), 0);
        assert_eq!(ix.len(), 3);
        ix.delete("ns", "a");
        ix.delete("ns", "zzz");
        ix.delete("nope", "a");
        assert_eq!(ix.targeting("ns", &web).count(), 0);
        assert_eq!(ix.len(), 2);
        ix.delete("ns", "b");
        ix.delete("other", "c");
        assert!(ix.is_empty() && ix.namespaces.is_empty());
    }

    #[test]
    fn hpas_are_found_by_target() {
        let mut ix = HpaIndex::default();
        let web = Workload::new("apps/v1", "Deployment", "web");
        ix.apply(
            "ns",
            "h1",
            HpaKeys { target: web.clone(), owner: Some("so".into()), validation_off: false },
        );
        ix.apply("ns", "h2", HpaKeys { target: web.clone(), owner: None, validation_off: true });
        let mut got: Vec<_> = ix.targeting("ns", &web).map(|(n, k)| (n, k.owner.clone())).collect();
        got.sort();
        assert_eq!(got, [("h1", Some("so".into())), ("h2", None)]);
        ix.delete("ns", "h1");
        assert_eq!(ix.targeting("ns", &web).count(), 1);
        assert_eq!(ix.len(), 1);
    }

    #[tokio::test]
    async fn synced_flag_is_published() {
        let ix = Index::default();
        assert!(!ix.is_synced());
        assert!(!ix.wait_synced(Duration::from_millis(10)).await);
        ix.update(|s| s.sos_synced = true);
        assert!(!ix.is_synced());
        ix.update(|s| s.hpas_synced = true);
        assert!(ix.wait_synced(Duration::from_millis(10)).await);
    }
}
