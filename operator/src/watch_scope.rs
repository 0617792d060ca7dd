//! Which namespaces the operator watches (`--watch-namespace`, env `WATCH_NAMESPACE`): all of
//! them, or a set given as KEDA takes it, a comma-separated list. This module owns the parsed
//! value ([`WatchScope`]), the `Api`s every watch of the operator is made from, and [`merged`],
//! which turns one watch per namespace into one watch stream a reflector store can be filled
//! from.
//!
//! Why a merge is needed: a reflector treats `Init` … `InitDone` as "the store is now exactly
//! this list"; interleaving several namespaces' watches as they are would let one namespace's
//! re-list wipe the others' objects from the store (and the operator would stop their scale
//! loops as deleted). [`merged`] instead announces one initial list, complete once every
//! namespace has listed, and afterwards turns a namespace's re-list into `Apply` events plus a
//! `Delete` for each object of that namespace the new list no longer holds.
//!
//! All namespaces, or one, use the plain single watch, exactly as a single `Api` would.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;

use futures::stream::{self, BoxStream};
use futures::{Stream, StreamExt};
use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::NamespaceResourceScope;
use kube::runtime::reflector::Store;
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Client, Resource, ResourceExt};

/// The namespaces the operator watches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum WatchScope {
    /// Every namespace (cluster-wide watches).
    #[default]
    All,
    /// These namespaces only (never empty).
    Namespaces(BTreeSet<String>),
}

/// Longest namespace name (a DNS-1123 label).
const MAX_LABEL: usize = 63;

impl WatchScope {
    /// Parses KEDA's form: a comma-separated list of namespaces, entries trimmed, empty entries
    /// ignored, duplicates removed; nothing (or only commas and spaces) means all namespaces.
    /// Every entry must be a namespace name (a DNS-1123 label); the error names the bad entry.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut set = BTreeSet::new();
        for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if !is_dns1123_label(entry) {
                return Err(format!(
                    "{entry:?} is not a namespace name: expected a comma-separated list of DNS-1123 labels \
                     (at most {MAX_LABEL} lowercase letters, digits or '-', starting and ending with a letter \
                     or digit), or nothing for all namespaces"
                ));
            }
            set.insert(entry.to_owned());
        }
        Ok(if set.is_empty() { Self::All } else { Self::Namespaces(set) })
    }

    /// Whether objects of namespace `ns` are watched.
    pub fn contains(&self, ns: &str) -> bool {
        match self {
            Self::All => true,
            Self::Namespaces(set) => set.contains(ns),
        }
    }

    /// One `Api` per watched namespace, with its name; or one cluster-wide `Api`, with `None`.
    pub fn apis<K>(&self, client: &Client) -> Vec<(Option<String>, Api<K>)>
    where
        K: Resource<Scope = NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        match self {
            Self::All => vec![(None, Api::all(client.clone()))],
            Self::Namespaces(set) => {
                set.iter().map(|ns| (Some(ns.clone()), Api::namespaced(client.clone(), ns))).collect()
            }
        }
    }

    /// [`Self::apis`] for objects of kind `resource`.
    pub fn apis_dynamic(
        &self,
        client: &Client,
        resource: &ApiResource,
    ) -> Vec<(Option<String>, Api<DynamicObject>)> {
        match self {
            Self::All => vec![(None, Api::all_with(client.clone(), resource))],
            Self::Namespaces(set) => set
                .iter()
                .map(|ns| (Some(ns.clone()), Api::namespaced_with(client.clone(), ns, resource)))
                .collect(),
        }
    }

    /// A watch of `K` over the scope, to fill the reflector store `reader` reads: the plain
    /// watch for all namespaces or one, else one watch per namespace [`merged`].
    pub fn watch<K>(
        &self,
        client: &Client,
        config: &watcher::Config,
        reader: Store<K>,
    ) -> BoxStream<'static, watcher::Result<Event<K>>>
    where
        K: Resource<Scope = NamespaceResourceScope>
            + Clone
            + fmt::Debug
            + serde::de::DeserializeOwned
            + Send
            + Sync
            + 'static,
        K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
    {
        let mut apis = self.apis::<K>(client);
        if apis.len() == 1
            && let Some((_, api)) = apis.pop()
        {
            return watcher(api, config.clone()).boxed();
        }
        let streams = apis
            .into_iter()
            .map(|(ns, api)| (ns.unwrap_or_default(), watcher(api, config.clone()).boxed()))
            .collect();
        merged(streams, reader).boxed()
    }
}

impl fmt::Display for WatchScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("all namespaces"),
            Self::Namespaces(set) => {
                f.write_str(&set.iter().map(String::as_str).collect::<Vec<_>>().join(","))
            }
        }
    }
}

/// A DNS-1123 label: 1 to 63 characters `[a-z0-9-]`, starting and ending alphanumeric.
fn is_dns1123_label(s: &str) -> bool {
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_LABEL
        && b.iter().all(|&c| alnum(c) || c == b'-')
        && b.first().copied().is_some_and(alnum)
        && b.last().copied().is_some_and(alnum)
}

/// One watch stream from one watch per namespace (`(namespace, stream)`), for a reflector whose
/// store `reader` reads (see the module documentation).
pub fn merged<K>(
    streams: Vec<(String, BoxStream<'static, watcher::Result<Event<K>>>)>,
    reader: Store<K>,
) -> impl Stream<Item = watcher::Result<Event<K>>> + Send + 'static
where
    K: Resource + Clone + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
{
    let namespaces: Vec<String> = streams.iter().map(|(ns, _)| ns.clone()).collect();
    let tagged =
        stream::select_all(streams.into_iter().enumerate().map(|(i, (_, s))| s.map(move |e| (i, e)).boxed()));
    let state = Merge::new(namespaces, reader);
    stream::unfold((tagged, state), |(mut tagged, mut state)| async move {
        loop {
            // Emitted events are applied to the store before the reflector polls again, so a
            // re-list's end is compared with a store holding everything emitted before it.
            if let Some(event) = state.out.pop_front() {
                return Some((event, (tagged, state)));
            }
            let (i, event) = tagged.next().await?;
            state.take(i, event);
        }
    })
}

/// The state of [`merged`].
struct Merge<K>
where
    K: Resource + 'static,
    K::DynamicType: Eq + std::hash::Hash,
{
    namespaces: Vec<String>,
    /// Namespaces whose first list is not complete yet.
    listing: Vec<bool>,
    /// Until every namespace has listed: the objects of the one initial list.
    buffer: HashMap<(String, String), K>,
    /// Per namespace, the names seen by the re-list in progress.
    relist: Vec<Option<HashSet<String>>>,
    reader: Store<K>,
    out: VecDeque<watcher::Result<Event<K>>>,
}

impl<K> Merge<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    fn new(namespaces: Vec<String>, reader: Store<K>) -> Self {
        let n = namespaces.len();
        Self {
            namespaces,
            listing: vec![true; n],
            buffer: HashMap::new(),
            relist: vec![None; n],
            reader,
            out: VecDeque::new(),
        }
    }

    /// Takes event `event` of namespace number `i`, queueing what the merged stream emits.
    fn take(&mut self, i: usize, event: watcher::Result<Event<K>>) {
        let event = match event {
            Ok(event) => event,
            Err(e) => return self.out.push_back(Err(e)),
        };
        let Some(ns) = self.namespaces.get(i).cloned() else { return };
        let initial = self.listing.iter().any(|l| *l);
        let key = |o: &K| (ns.clone(), o.name_any());
        match event {
            Event::Init => {
                if let Some(r) = self.relist.get_mut(i) {
                    *r = Some(HashSet::new());
                }
                if initial {
                    self.buffer.retain(|(n, _), _| *n != ns);
                }
            }
            Event::InitApply(o) => {
                if let Some(Some(seen)) = self.relist.get_mut(i) {
                    seen.insert(o.name_any());
                }
                if initial {
                    self.buffer.insert(key(&o), o);
                } else {
                    self.out.push_back(Ok(Event::Apply(o)));
                }
            }
            Event::Apply(o) if initial => {
                self.buffer.insert(key(&o), o);
            }
            Event::Delete(o) if initial => {
                self.buffer.remove(&key(&o));
            }
            Event::InitDone if initial => {
                if let Some(r) = self.relist.get_mut(i) {
                    *r = None;
                }
                if let Some(l) = self.listing.get_mut(i) {
                    *l = false;
                }
                if !self.listing.iter().any(|l| *l) {
                    self.out.push_back(Ok(Event::Init));
                    self.out.extend(self.buffer.drain().map(|(_, o)| Ok(Event::InitApply(o))));
                    self.out.push_back(Ok(Event::InitDone));
                }
            }
            Event::InitDone => {
                let Some(seen) = self.relist.get_mut(i).and_then(Option::take) else { return };
                for o in self.reader.state() {
                    if o.namespace().as_deref() == Some(ns.as_str()) && !seen.contains(&o.name_any()) {
                        self.out.push_back(Ok(Event::Delete((*o).clone())));
                    }
                }
            }
            Event::Apply(o) => self.out.push_back(Ok(Event::Apply(o))),
            Event::Delete(o) => self.out.push_back(Ok(Event::Delete(o))),
        }
    }
}

#[cfg(test)]
#[path = "watch_scope_tests.rs"]
mod tests;
