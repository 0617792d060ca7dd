//! Field sets for server-side apply: paths into an object (`f:` map fields, `k:` keyed list
//! elements, `v:` set elements, `i:` list indices), their `fieldsV1` JSON encoding as stored in
//! `metadata.managedFields`, and set algebra. The walks computing field sets from objects, and
//! the per-kind list semantics they use, live in the `walk` submodule and are re-exported here.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::PatchError;

/// One step of a path into an object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElement {
    /// A field of a map (`f:<name>`).
    Field(String),
    /// An element of a keyed list, named by its key fields: canonical compact JSON object with
    /// sorted keys (`k:{"name":"app"}`).
    Key(String),
    /// An element of a set-like list, named by its canonical compact JSON value (`v:"x"`).
    Value(String),
    /// An element of a list addressed by position (`i:<n>`).
    Index(usize),
}

impl PathElement {
    /// The element of a keyed list whose key fields have these values.
    pub fn key(fields: &Map<String, Value>) -> Self {
        PathElement::Key(canonical_json(&Value::Object(fields.clone())))
    }

    /// The element of a set-like list with this value.
    pub fn value(value: &Value) -> Self {
        PathElement::Value(canonical_json(value))
    }

    /// Parses one `fieldsV1` key (`f:…`, `k:…`, `v:…`, `i:…`).
    pub fn parse(text: &str) -> Result<Self, PatchError> {
        let bad = || PatchError::Invalid(format!("bad managedFields path element {text:?}"));
        let (prefix, rest) = text.split_once(':').ok_or_else(bad)?;
        match prefix {
            "f" => Ok(PathElement::Field(rest.to_string())),
            "k" => match serde_json::from_str::<Value>(rest) {
                Ok(Value::Object(fields)) => Ok(PathElement::key(&fields)),
                _ => Err(bad()),
            },
            "v" => serde_json::from_str::<Value>(rest).map(|v| PathElement::value(&v)).map_err(|_| bad()),
            "i" => rest.parse().map(PathElement::Index).map_err(|_| bad()),
            _ => Err(bad()),
        }
    }

    /// The `fieldsV1` key of this element.
    pub fn encode(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(json) => format!("k:{json}"),
            PathElement::Value(json) => format!("v:{json}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// The human-readable form used in conflict messages: `.name`, `[name="app"]`, `[="x"]`,
    /// `[3]`.
    pub fn human(&self) -> String {
        match self {
            PathElement::Field(name) => format!(".{name}"),
            PathElement::Key(json) => match serde_json::from_str::<Value>(json) {
                Ok(Value::Object(fields)) => {
                    let mut names: Vec<&String> = fields.keys().collect();
                    names.sort();
                    let parts: Vec<String> = names
                        .iter()
                        .map(|k| format!("{k}={}", canonical_json(&fields[k.as_str()])))
                        .collect();
                    format!("[{}]", parts.join(","))
                }
                _ => format!("[{json}]"),
            },
            PathElement::Value(json) => format!("[={json}]"),
            PathElement::Index(i) => format!("[{i}]"),
        }
    }
}

/// Renders a whole path for humans, e.g. `.spec.template.spec.containers[name="app"].image`.
pub fn path_string(path: &[PathElement]) -> String {
    path.iter().map(PathElement::human).collect()
}

/// JSON with object keys sorted at every level and no whitespace, independent of how
/// `serde_json` orders maps.
pub fn canonical_json(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut names: Vec<&String> = map.keys().collect();
            names.sort();
            let parts: Vec<String> = names
                .iter()
                .map(|k| format!("{}:{}", Value::String((*k).clone()), canonical_json(&map[k.as_str()])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(canonical_json).collect();
            format!("[{}]", parts.join(","))
        }
        other => other.to_string(),
    }
}

/// A set of paths into an object, stored as a tree: `members` are paths ending at this level,
/// `children` hold paths continuing below an element. A path may be both a member and have
/// children (in `fieldsV1` that is the `".": {}` marker). Children are never empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the set holds no path.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    /// Adds a path. The empty path (the object itself) is never a member and is ignored.
    pub fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    /// Whether this exact path is in the set.
    pub fn contains(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.contains(rest)),
        }
    }

    /// Whether `element` itself is a member at this level.
    pub fn has_member(&self, element: &PathElement) -> bool {
        self.members.contains(element)
    }

    /// The paths continuing below `element`, if any.
    pub fn child(&self, element: &PathElement) -> Option<&FieldSet> {
        self.children.get(element)
    }

    /// Whether `element` or any path below it is in the set.
    pub fn touches(&self, element: &PathElement) -> bool {
        self.members.contains(element) || self.children.contains_key(element)
    }

    /// Elements at this level that are members or have children.
    pub fn elements(&self) -> BTreeSet<&PathElement> {
        self.members.iter().chain(self.children.keys()).collect()
    }

    /// Paths in either set.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (pe, child) in &other.children {
            let merged = match out.children.get(pe) {
                Some(mine) => mine.union(child),
                None => child.clone(),
            };
            out.children.insert(pe.clone(), merged);
        }
        out
    }

    /// Paths in `self` but not in `other`.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.difference(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            let rest = match other.children.get(pe) {
                Some(theirs) => child.difference(theirs),
                None => child.clone(),
            };
            if !rest.is_empty() {
                children.insert(pe.clone(), rest);
            }
        }
        FieldSet { members, children }
    }

    /// Paths in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.intersection(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            if let Some(theirs) = other.children.get(pe) {
                let both = child.intersection(theirs);
                if !both.is_empty() {
                    children.insert(pe.clone(), both);
                }
            }
        }
        FieldSet { members, children }
    }

    /// Every path in the set, in sorted order (a member before the paths below it).
    pub fn paths(&self) -> Vec<Vec<PathElement>> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Vec<PathElement>>) {
        for pe in self.elements() {
            prefix.push(pe.clone());
            if self.members.contains(pe) {
                out.push(prefix.clone());
            }
            if let Some(child) = self.children.get(pe) {
                child.collect_paths(prefix, out);
            }
            prefix.pop();
        }
    }

    /// The `fieldsV1` encoding: nested objects keyed by encoded path elements, `{}` leaves, and
    /// `".": {}` where an element with children is itself a member.
    pub fn to_fields_v1(&self) -> Value {
        let mut map = Map::new();
        for pe in self.elements() {
            let value = match self.children.get(pe) {
                Some(child) => {
                    let mut inner = child.to_fields_v1();
                    if self.members.contains(pe)
                        && let Value::Object(m) = &mut inner
                    {
                        m.insert(".".to_string(), Value::Object(Map::new()));
                    }
                    inner
                }
                None => Value::Object(Map::new()),
            };
            map.insert(pe.encode(), value);
        }
        Value::Object(map)
    }

    /// Parses the `fieldsV1` encoding.
    pub fn from_fields_v1(value: &Value) -> Result<FieldSet, PatchError> {
        let map = value
            .as_object()
            .ok_or_else(|| PatchError::Invalid("managedFields fieldsV1 must be an object".to_string()))?;
        let mut set = FieldSet::new();
        for (key, inner) in map {
            if key == "." {
                continue;
            }
            let pe = PathElement::parse(key)?;
            let inner_map = inner.as_object().ok_or_else(|| {
                PatchError::Invalid(format!("managedFields entry {key:?} must be an object"))
            })?;
            let child = FieldSet::from_fields_v1(inner)?;
            if child.is_empty() || inner_map.contains_key(".") {
                set.members.insert(pe.clone());
            }
            if !child.is_empty() {
                set.children.insert(pe, child);
            }
        }
        Ok(set)
    }
}

mod walk;
pub use walk::{Comparison, ListKeys, ListKind, compare, element_key, field_set_of, field_set_of_lenient};

#[cfg(test)]
mod tests;
