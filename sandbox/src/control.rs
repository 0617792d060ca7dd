//! The control plane's state and the semantics of each verb on stored objects — what
//! kube-apiserver's generic registry does: metadata on create (uid, creationTimestamp,
//! generation, generateName), optimistic concurrency, status and scale subresources,
//! no-op detection, managed fields, finalizers and deletion, owner-based garbage collection,
//! namespaces, and CustomResourceDefinitions that start serving their resources.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::admission::{Admission, Operation};
use crate::auth::Auth;
use crate::faults::Faults;
use crate::meta;
use crate::patch::apply::{ApplyError, ApplyRequest, ListKeys, record_update};
use crate::resources::{Registry, Resource, get_path, set_path};
use crate::status::ApiError;
use crate::store::{Key, Store, Write};

/// Who is making a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInfo {
    pub username: String,
    pub groups: Vec<String>,
}

/// Per-request options shared by writes.
#[derive(Debug, Clone)]
pub struct WriteCtx {
    pub user: UserInfo,
    pub field_manager: String,
    pub dry_run: bool,
    pub force: bool,
}

/// Which part of an object a request addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sub {
    Main,
    Status,
    Scale,
}

impl Sub {
    pub fn name(self) -> Option<&'static str> {
        match self {
            Sub::Main => None,
            Sub::Status => Some("status"),
            Sub::Scale => Some("scale"),
        }
    }
}

/// The kinds of patch bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Json,
    Strategic,
    Apply,
}

/// The whole control plane.
#[derive(Debug)]
pub struct ControlPlane {
    pub registry: RwLock<Registry>,
    pub store: Store,
    pub faults: Faults,
    pub admission: Admission,
    pub auth: Auth,
}

pub(crate) fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn ns_key(res: &Resource, ns: &str) -> String {
    if res.namespaced { ns.to_owned() } else { String::new() }
}

fn key(res: &Resource, ns: &str, name: &str) -> Key {
    (res.group.clone(), res.plural.clone(), ns_key(res, ns), name.to_owned())
}

/// Sets apiVersion/kind to the served version (objects are shared between versions).
pub(crate) fn as_served(res: &Resource, obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.insert("apiVersion".into(), Value::String(res.api_version()));
        m.insert("kind".into(), Value::String(res.kind.clone()));
    }
    o
}

const SYSTEM_NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

impl ControlPlane {
    pub fn new(history: usize) -> Arc<Self> {
        let cp = Arc::new(Self {
            registry: RwLock::new(Registry::builtin()),
            store: Store::new(history),
            faults: Faults::default(),
            admission: Admission::default(),
            auth: Auth::default(),
        });
        for ns in SYSTEM_NAMESPACES {
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            let res = cp.resource("", "v1", "namespaces");
            if let Some(res) = res {
                let _ = cp.create_sync(&res, "", obj, &system_ctx());
            }
        }
        cp
    }

    /// Looks a resource up (cloned so no lock is held across awaits).
    pub fn resource(&self, group: &str, version: &str, plural: &str) -> Option<Resource> {
        self.registry
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(group, version, plural)
            .cloned()
    }

    pub fn registry(&self) -> Registry {
        self.registry.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    pub fn get(&self, res: &Resource, ns: &str, name: &str) -> Result<Value, ApiError> {
        self.store
            .get(&key(res, ns, name))
            .map(|o| as_served(res, &o))
            .ok_or_else(|| ApiError::not_found(&res.group, &res.plural, name))
    }

    /// Reads the object addressed by a subresource.
    pub fn get_sub(&self, res: &Resource, ns: &str, name: &str, sub: Sub) -> Result<Value, ApiError> {
        let obj = self.get(res, ns, name)?;
        match sub {
            Sub::Scale => to_scale(res, &obj),
            _ => Ok(obj),
        }
    }

    fn check_namespace(&self, res: &Resource, ns: &str) -> Result<(), ApiError> {
        if !res.namespaced {
            return Ok(());
        }
        if ns.is_empty() {
            return Err(ApiError::bad_request("the namespace of the object is required"));
        }
        let k: Key = (String::new(), "namespaces".into(), String::new(), ns.to_owned());
        match self.store.get(&k) {
            None => Err(ApiError::not_found("", "namespaces", ns)),
            Some(n) if meta::deletion_timestamp(&n).is_some() => Err(ApiError::forbidden(format!(
                "{} {:?} is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                res.qualified(),
                ""
            ))),
            Some(_) => Ok(()),
        }
    }

    /// Prepares a new object for storage (metadata, defaults, status reset).
    fn prepare_create(
        &self,
        res: &Resource,
        ns: &str,
        mut obj: Value,
        ctx: &WriteCtx,
    ) -> Result<(Value, String), ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request("the request body must be a JSON or YAML object"));
        }
        let want = res.api_version();
        match (obj.get("apiVersion").and_then(Value::as_str), obj.get("kind").and_then(Value::as_str)) {
            (Some(a), Some(k))
                if (a != want || k != res.kind)
                // A body of another version of the same group is accepted (shared storage).
                && !(k == res.kind && a.split('/').next() == want.split('/').next() && res.group.contains('.')) =>
            {
                return Err(ApiError::bad_request(format!(
                    "the API version in the data ({a}) does not match the expected API version ({want})"
                )));
            }
            _ => {}
        }
        obj = as_served(res, &obj);
        let m = meta::metadata_mut(&mut obj)
            .ok_or_else(|| ApiError::bad_request("metadata must be an object"))?;
        if let Some(body_ns) = m.get("namespace").and_then(Value::as_str)
            && res.namespaced
            && !body_ns.is_empty()
            && body_ns != ns
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let name = match m.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()) {
            Some(n) => n.to_owned(),
            None => match m.get("generateName").and_then(Value::as_str).filter(|n| !n.is_empty()) {
                Some(prefix) => format!("{prefix}{}", &uuid::Uuid::new_v4().simple().to_string()[..5]),
                None => {
                    return Err(ApiError::invalid(
                        &res.group,
                        &res.kind,
                        "",
                        "metadata.name: Required value: name or generateName is required",
                    ));
                }
            },
        };
        meta::validate_name(&name).map_err(|e| ApiError::invalid(&res.group, &res.kind, &name, e))?;
        m.insert("name".into(), Value::String(name.clone()));
        if res.namespaced {
            m.insert("namespace".into(), Value::String(ns.to_owned()));
        } else {
            m.remove("namespace");
        }
        m.insert("uid".into(), Value::String(uuid::Uuid::new_v4().to_string()));
        m.insert("creationTimestamp".into(), Value::String(now_rfc3339()));
        m.insert("generation".into(), json!(1));
        for f in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
            "selfLink",
        ] {
            m.remove(f);
        }
        if res.status
            && let Some(o) = obj.as_object_mut()
        {
            o.remove("status");
        }
        crate::defaults::apply(res, &mut obj);
        record_update(
            None,
            &mut obj,
            &ctx.field_manager,
            &now_rfc3339(),
            &res.api_version(),
            None,
            &list_keys(res),
        );
        Ok((obj, name))
    }

    /// Creates without admission (for the control plane's own objects).
    pub(crate) fn create_sync(
        &self,
        res: &Resource,
        ns: &str,
        obj: Value,
        ctx: &WriteCtx,
    ) -> Result<Value, ApiError> {
        let (obj, name) = self.prepare_create(res, ns, obj, ctx)?;
        self.store_create(res, ns, &name, obj, ctx.dry_run)
    }

    fn store_create(
        &self,
        res: &Resource,
        ns: &str,
        name: &str,
        obj: Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        if dry_run {
            return match self.store.get(&key(res, ns, name)) {
                Some(_) => Err(ApiError::already_exists(&res.group, &res.plural, name)),
                None => Ok(obj),
            };
        }
        let (_, stored) = self.store.mutate(&key(res, ns, name), |cur, _| match cur {
            Some(_) => Err(ApiError::already_exists(&res.group, &res.plural, name)),
            None => Ok((Write::Put(obj), ())),
        })?;
        let stored = stored.ok_or_else(|| ApiError::internal("object vanished after create"))?;
        self.after_write(res, &stored);
        Ok(as_served(res, &stored))
    }

    /// POST: create an object.
    pub async fn create(
        &self,
        res: &Resource,
        ns: &str,
        obj: Value,
        ctx: &WriteCtx,
    ) -> Result<Value, ApiError> {
        if res.virtual_create {
            return crate::reviews::answer(self, res, obj);
        }
        self.check_namespace(res, ns)?;
        let (obj, name) = self.prepare_create(res, ns, obj, ctx)?;
        self.admission
            .admit(self, res, Operation::Create, "", ns, &name, Some(&obj), None, &ctx.user, ctx.dry_run)
            .await?;
        self.store_create(res, ns, &name, obj, ctx.dry_run)
    }

    /// PUT: replace an object (or its status / scale).
    pub async fn update(
        &self,
        res: &Resource,
        ns: &str,
        name: &str,
        body: Value,
        sub: Sub,
        ctx: &WriteCtx,
    ) -> Result<Value, ApiError> {
        let precondition = meta::resource_version(&body).map(str::to_owned);
        let body_name = meta::name(&body).unwrap_or(name);
        if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        self.write(res, ns, name, sub, ctx, precondition, true, |cur| match sub {
            Sub::Scale => from_scale(res, cur, &body),
            _ => Ok(body.clone()),
        })
        .await
    }

    /// PATCH with any patch type.
    // The request's coordinates, body, addressed part and context are all needed; grouping them
    // would only move the list into a struct used once.
    #[allow(clippy::too_many_arguments)]
    pub async fn patch(
        &self,
        res: &Resource,
        ns: &str,
        name: &str,
        type_: PatchType,
        patch: Value,
        sub: Sub,
        ctx: &WriteCtx,
    ) -> Result<Value, ApiError> {
        if type_ == PatchType::Strategic && res.custom {
            return Err(ApiError::unsupported_media_type(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
            ));
        }
        let exists = self.store.get(&key(res, ns, name)).is_some();
        if type_ == PatchType::Apply && !exists {
            if sub != Sub::Main {
                return Err(ApiError::not_found(&res.group, &res.plural, name));
            }
            self.check_namespace(res, ns)?;
            let req = ApplyRequest {
                manager: &ctx.field_manager,
                force: ctx.force,
                subresource: None,
                now: &now_rfc3339(),
                api_version: &res.api_version(),
            };
            let applied = crate::patch::apply::apply(None, &as_served(res, &patch), &req, &list_keys(res))
                .map_err(|e| apply_error(res, name, e))?;
            let managed = applied.pointer("/metadata/managedFields").cloned();
            let (mut obj, name) = self.prepare_create(res, ns, applied, ctx)?;
            if let (Some(mf), Some(m)) = (managed, meta::metadata_mut(&mut obj)) {
                m.insert("managedFields".into(), mf);
            }
            self.admission
                .admit(self, res, Operation::Create, "", ns, &name, Some(&obj), None, &ctx.user, ctx.dry_run)
                .await?;
            return self.store_create(res, ns, &name, obj, ctx.dry_run);
        }
        let precondition =
            if type_ == PatchType::Apply { None } else { meta::resource_version(&patch).map(str::to_owned) };
        self.write(res, ns, name, sub, ctx, precondition, type_ != PatchType::Apply, |cur| {
            let target = match sub {
                Sub::Scale => to_scale(res, cur)?,
                _ => as_served(res, cur),
            };
            let patched = apply_patch(res, sub, target, type_, &patch, ctx)?;
            match sub {
                Sub::Scale => from_scale(res, cur, &patched),
                _ => Ok(patched),
            }
        })
        .await
    }

    /// The read-compute-admit-store loop shared by update and patch.
    /// [`Self::write_object`], answering with the Scale view for `/scale` requests.
    #[allow(clippy::too_many_arguments)]
    async fn write(
        &self,
        res: &Resource,
        ns: &str,
        name: &str,
        sub: Sub,
        ctx: &WriteCtx,
        precondition: Option<String>,
        record_fields: bool,
        compute: impl Fn(&Value) -> Result<Value, ApiError>,
    ) -> Result<Value, ApiError> {
        let obj = self.write_object(res, ns, name, sub, ctx, precondition, record_fields, compute).await?;
        if sub == Sub::Scale { to_scale(res, &obj) } else { Ok(obj) }
    }

    #[allow(clippy::too_many_arguments)]
    async fn write_object(
        &self,
        res: &Resource,
        ns: &str,
        name: &str,
        sub: Sub,
        ctx: &WriteCtx,
        precondition: Option<String>,
        record_fields: bool,
        compute: impl Fn(&Value) -> Result<Value, ApiError>,
    ) -> Result<Value, ApiError> {
        let k = key(res, ns, name);
        for _ in 0..8 {
            let cur = self.store.get(&k).ok_or_else(|| ApiError::not_found(&res.group, &res.plural, name))?;
            let cur_rv = meta::resource_version(&cur).unwrap_or_default().to_owned();
            if let Some(p) = &precondition
                && *p != cur_rv
            {
                return Err(ApiError::conflict(
                    &res.group,
                    &res.plural,
                    name,
                    "the object has been modified; please apply your changes to the latest version and try again",
                ));
            }
            let proposed = compute(&cur)?;
            let new = merge_for_write(res, &cur, proposed, sub, ctx, record_fields)?;
            if meta::comparable(&new) == meta::comparable(&as_served(res, &cur)) {
                return Ok(as_served(res, &cur));
            }
            self.admission
                .admit(
                    self,
                    res,
                    Operation::Update,
                    sub.name().unwrap_or_default(),
                    ns,
                    name,
                    Some(&new),
                    Some(&cur),
                    &ctx.user,
                    ctx.dry_run,
                )
                .await?;
            if ctx.dry_run {
                return Ok(new);
            }
            let finalized = meta::deletion_timestamp(&new).is_some() && meta::finalizers(&new).is_empty();
            let result = self.store.mutate(&k, |now_cur, _| match now_cur {
                None => Err(Retry::Gone),
                Some(c) if meta::resource_version(c).unwrap_or_default() != cur_rv => Err(Retry::Again),
                Some(_) if finalized => Ok((Write::Delete, ())),
                Some(_) => Ok((Write::Put(new.clone()), ())),
            });
            match result {
                Ok((_, Some(stored))) => {
                    self.after_write(res, &stored);
                    return Ok(as_served(res, &stored));
                }
                Ok((_, None)) => {
                    self.after_delete(res, &new);
                    return Ok(as_served(res, &new));
                }
                Err(Retry::Gone) => return Err(ApiError::not_found(&res.group, &res.plural, name)),
                Err(Retry::Again) if precondition.is_some() => {
                    return Err(ApiError::conflict(
                        &res.group,
                        &res.plural,
                        name,
                        "the object has been modified; please apply your changes to the latest version and try again",
                    ));
                }
                Err(Retry::Again) => continue,
            }
        }
        Err(ApiError::conflict(&res.group, &res.plural, name, "too many concurrent writes; try again"))
    }

    /// DELETE: with finalizers the object only gets a deletionTimestamp; otherwise it goes,
    /// and its dependents are garbage collected in the background.
    pub async fn delete(
        &self,
        res: &Resource,
        ns: &str,
        name: &str,
        opts: &Value,
        ctx: &WriteCtx,
    ) -> Result<Value, ApiError> {
        let k = key(res, ns, name);
        let cur = self.store.get(&k).ok_or_else(|| ApiError::not_found(&res.group, &res.plural, name))?;
        if let Some(p) = opts.pointer("/preconditions/resourceVersion").and_then(Value::as_str)
            && meta::resource_version(&cur) != Some(p)
        {
            return Err(ApiError::conflict(
                &res.group,
                &res.plural,
                name,
                "the ResourceVersion in the precondition does not match the ResourceVersion in record. The object might have been modified",
            ));
        }
        if let Some(p) = opts.pointer("/preconditions/uid").and_then(Value::as_str)
            && meta::uid(&cur) != Some(p)
        {
            return Err(ApiError::conflict(
                &res.group,
                &res.plural,
                name,
                "the UID in the precondition does not match the UID in record. The object might have been deleted and then recreated",
            ));
        }
        self.admission
            .admit(self, res, Operation::Delete, "", ns, name, None, Some(&cur), &ctx.user, ctx.dry_run)
            .await?;
        if ctx.dry_run {
            return Ok(as_served(res, &cur));
        }
        let orphan = opts.get("propagationPolicy").and_then(Value::as_str) == Some("Orphan")
            || opts.get("orphanDependents").and_then(Value::as_bool) == Some(true);
        let has_finalizers = !meta::finalizers(&cur).is_empty();
        let (_, stored) = self.store.mutate(&k, |now_cur, _| {
            let Some(c) = now_cur else { return Err(ApiError::not_found(&res.group, &res.plural, name)) };
            if has_finalizers || !meta::finalizers(c).is_empty() {
                if meta::deletion_timestamp(c).is_some() {
                    return Ok((Write::Keep, ()));
                }
                let mut o = c.clone();
                if let Some(m) = meta::metadata_mut(&mut o) {
                    m.insert("deletionTimestamp".into(), Value::String(now_rfc3339()));
                    m.insert("deletionGracePeriodSeconds".into(), json!(0));
                }
                return Ok((Write::Put(o), ()));
            }
            Ok((Write::Delete, ()))
        })?;
        match stored {
            Some(o) => Ok(as_served(res, &o)),
            None => {
                if orphan {
                    self.orphan_dependents(meta::uid(&cur).unwrap_or_default());
                }
                self.after_delete(res, &cur);
                Ok(crate::status::success(&res.group, &res.plural, name, meta::uid(&cur)))
            }
        }
    }

    /// Side effects of a stored write: CRDs start serving.
    fn after_write(&self, res: &Resource, obj: &Value) {
        if res.group == "apiextensions.k8s.io" && res.plural == "customresourcedefinitions" {
            crate::crd::established(self, obj);
        }
    }

    /// Side effects of a removal: garbage collection, namespace contents, CRD resources.
    fn after_delete(&self, res: &Resource, obj: &Value) {
        if res.group == "apiextensions.k8s.io" && res.plural == "customresourcedefinitions" {
            crate::crd::removed(self, obj);
        }
        if res.group.is_empty()
            && res.plural == "namespaces"
            && let Some(ns) = meta::name(obj)
        {
            self.delete_namespace_contents(ns);
        }
        if let Some(uid) = meta::uid(obj) {
            crate::gc::collect(self, uid);
        }
    }

    fn delete_namespace_contents(&self, ns: &str) {
        for (k, obj) in self.store.all() {
            if k.2 == ns {
                let _ = self.store.mutate::<(), ()>(&k, |_, _| Ok((Write::Delete, ())));
                if let Some(uid) = meta::uid(&obj) {
                    crate::gc::collect(self, uid);
                }
            }
        }
    }

    fn orphan_dependents(&self, uid: &str) {
        for (k, obj) in self.store.all() {
            if meta::owner_uids(&obj).iter().any(|u| u == uid) {
                let _ = self.store.mutate::<(), ()>(&k, |cur, _| {
                    let Some(c) = cur else { return Ok((Write::Keep, ())) };
                    let mut o = c.clone();
                    if let Some(refs) =
                        o.pointer_mut("/metadata/ownerReferences").and_then(Value::as_array_mut)
                    {
                        refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid));
                    }
                    Ok((Write::Put(o), ()))
                });
            }
        }
    }
}

#[derive(Debug)]
enum Retry {
    Gone,
    Again,
}

impl From<Retry> for ApiError {
    fn from(_: Retry) -> Self {
        ApiError::internal("retry")
    }
}

/// A context for the control plane's own writes.
pub(crate) fn system_ctx() -> WriteCtx {
    WriteCtx {
        user: UserInfo { username: "system:apiserver".into(), groups: vec!["system:masters".into()] },
        field_manager: "kube-apiserver".into(),
        dry_run: false,
        force: false,
    }
}

/// List merge keys for server-side apply.
pub(crate) fn list_keys(res: &Resource) -> ListKeys {
    if res.custom { ListKeys::atomic() } else { ListKeys::for_kind(&res.api_version(), &res.kind) }
}

fn apply_error(res: &Resource, name: &str, e: ApplyError) -> ApiError {
    match e {
        ApplyError::Conflicts(cs) => {
            let mut err = ApiError::new(409, "Conflict", crate::patch::apply::conflicts_message(&cs));
            let causes: Vec<Value> = cs
                .iter()
                .map(|c| json!({"reason": "FieldManagerConflict", "message": c.message(), "field": c.field}))
                .collect();
            err.details =
                Some(json!({"name": name, "group": res.group, "kind": res.plural, "causes": causes}));
            err
        }
        ApplyError::Patch(p) => patch_error(p),
    }
}

fn patch_error(e: crate::patch::PatchError) -> ApiError {
    match e {
        crate::patch::PatchError::Invalid(m) => ApiError::bad_request(m),
        crate::patch::PatchError::Unprocessable(m) => ApiError::new(422, "Invalid", m),
    }
}

/// Applies one patch document to the addressed object (or Scale).
fn apply_patch(
    res: &Resource,
    sub: Sub,
    mut target: Value,
    type_: PatchType,
    patch: &Value,
    ctx: &WriteCtx,
) -> Result<Value, ApiError> {
    match type_ {
        PatchType::Merge => crate::patch::merge::apply(&mut target, patch),
        PatchType::Json => crate::patch::json::apply(&mut target, patch).map_err(patch_error)?,
        PatchType::Strategic => {
            let (api_version, kind) = if sub == Sub::Scale {
                ("autoscaling/v1".to_owned(), "Scale".to_owned())
            } else {
                (res.api_version(), res.kind.clone())
            };
            match crate::patch::strategic::StrategicKind::for_kind(&api_version, &kind) {
                Some(k) => crate::patch::strategic::apply(&mut target, patch, &k).map_err(patch_error)?,
                None => crate::patch::merge::apply(&mut target, patch),
            }
        }
        PatchType::Apply => {
            let name = meta::name(&target).unwrap_or_default().to_owned();
            let req = ApplyRequest {
                manager: &ctx.field_manager,
                force: ctx.force,
                subresource: sub.name(),
                now: &now_rfc3339(),
                api_version: &res.api_version(),
            };
            let keys = if sub == Sub::Scale { ListKeys::atomic() } else { list_keys(res) };
            target = crate::patch::apply::apply(Some(&target), patch, &req, &keys)
                .map_err(|e| apply_error(res, &name, e))?;
        }
    }
    Ok(target)
}

/// Combines the current object with what the request proposes, honouring subresources and
/// immutable metadata; bumps generation and records managed fields.
fn merge_for_write(
    res: &Resource,
    cur: &Value,
    proposed: Value,
    sub: Sub,
    ctx: &WriteCtx,
    record_fields: bool,
) -> Result<Value, ApiError> {
    let cur = as_served(res, cur);
    let mut new = as_served(res, &proposed);
    if !new.is_object() {
        return Err(ApiError::bad_request("the request body must be an object"));
    }
    match sub {
        Sub::Status => {
            // Only status changes through /status.
            let status = new.get("status").cloned();
            // An apply to /status has computed its own field ownership; keep it.
            let applied_fields =
                if record_fields { None } else { new.pointer("/metadata/managedFields").cloned() };
            new = cur.clone();
            if let Some(o) = new.as_object_mut() {
                match status {
                    Some(s) => o.insert("status".into(), s),
                    None => o.remove("status"),
                };
            }
            if let (Some(mf), Some(m)) = (applied_fields, meta::metadata_mut(&mut new)) {
                m.insert("managedFields".into(), mf);
            }
        }
        Sub::Main | Sub::Scale => {
            if res.status
                && let Some(o) = new.as_object_mut()
            {
                match cur.get("status") {
                    Some(s) => o.insert("status".into(), s.clone()),
                    None => o.remove("status"),
                };
            }
        }
    }
    let keep = [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ];
    let cur_meta = cur.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let m =
        meta::metadata_mut(&mut new).ok_or_else(|| ApiError::bad_request("metadata must be an object"))?;
    for f in keep {
        match cur_meta.get(f) {
            Some(v) => m.insert(f.into(), v.clone()),
            None => m.remove(f),
        };
    }
    // A deleted object may only lose finalizers, never gain new ones.
    if meta::deletion_timestamp(&cur).is_some() {
        let old: Vec<String> = meta::finalizers(&cur);
        let added: Vec<String> = meta::finalizers(&new).into_iter().filter(|f| !old.contains(f)).collect();
        if !added.is_empty() {
            return Err(ApiError::forbidden(format!(
                "no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
            )));
        }
    }
    if meta::spec_part(&new) != meta::spec_part(&cur) {
        let g = cur_meta.get("generation").and_then(Value::as_i64).unwrap_or(1);
        if let Some(m) = meta::metadata_mut(&mut new) {
            m.insert("generation".into(), json!(g + 1));
        }
    }
    crate::defaults::apply(res, &mut new);
    if record_fields {
        // (An apply has already recorded its own ownership.)
        let now = now_rfc3339();
        record_update(
            Some(&cur),
            &mut new,
            &ctx.field_manager,
            &now,
            &res.api_version(),
            sub.name(),
            &list_keys(res),
        );
    }
    Ok(new)
}

/// The autoscaling/v1 Scale view of an object.
pub(crate) fn to_scale(res: &Resource, obj: &Value) -> Result<Value, ApiError> {
    let paths = res.scale.as_ref().ok_or_else(|| {
        ApiError::not_found(&res.group, &format!("{}/scale", res.plural), meta::name(obj).unwrap_or_default())
    })?;
    let spec = get_path(obj, &paths.spec_replicas).and_then(Value::as_i64).unwrap_or(0);
    let status = get_path(obj, &paths.status_replicas).and_then(Value::as_i64).unwrap_or(0);
    let selector =
        paths.label_selector.as_ref().and_then(|p| get_path(obj, p)).map(selector_string).unwrap_or_default();
    let m = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let mut scale_meta = serde_json::Map::new();
    for f in ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"] {
        if let Some(v) = m.get(f) {
            scale_meta.insert(f.into(), v.clone());
        }
    }
    let mut status_obj = json!({"replicas": status});
    if !selector.is_empty() {
        status_obj["selector"] = Value::String(selector);
    }
    Ok(
        json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": scale_meta, "spec": {"replicas": spec}, "status": status_obj}),
    )
}

/// Writes a Scale's spec.replicas back into the object.
fn from_scale(res: &Resource, cur: &Value, scale: &Value) -> Result<Value, ApiError> {
    let paths = res
        .scale
        .as_ref()
        .ok_or_else(|| ApiError::not_found(&res.group, &res.plural, meta::name(cur).unwrap_or_default()))?;
    let replicas = scale.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0);
    if replicas < 0 {
        return Err(ApiError::invalid(
            "autoscaling",
            "Scale",
            meta::name(cur).unwrap_or_default(),
            "spec.replicas: Invalid value: must be greater than or equal to 0",
        ));
    }
    let mut obj = as_served(res, cur);
    set_path(&mut obj, &paths.spec_replicas, json!(replicas));
    Ok(obj)
}

/// A label selector (metav1.LabelSelector or already a string) as `a=b,c=d`.
pub(crate) fn selector_string(v: &Value) -> String {
    if let Some(s) = v.as_str() {
        return s.to_owned();
    }
    let mut parts: Vec<String> = v
        .get("matchLabels")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect())
        .unwrap_or_default();
    for e in v.get("matchExpressions").and_then(Value::as_array).into_iter().flatten() {
        let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
        let vals: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        parts.push(match e.get("operator").and_then(Value::as_str).unwrap_or_default() {
            "In" => format!("{key} in ({})", vals.join(",")),
            "NotIn" => format!("{key} notin ({})", vals.join(",")),
            "Exists" => key.to_owned(),
            _ => format!("!{key}"),
        });
    }
    parts.join(",")
}

/// Query options of a list.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub limit: Option<usize>,
    pub continue_: Option<String>,
}

impl ControlPlane {
    /// LIST with selectors and paging.
    pub fn list(&self, res: &Resource, ns: Option<&str>, opts: &ListOptions) -> Result<Value, ApiError> {
        let labels =
            crate::selectors::LabelSelector::parse(opts.label_selector.as_deref().unwrap_or_default())
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let fields =
            crate::selectors::FieldSelector::parse(opts.field_selector.as_deref().unwrap_or_default())
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let ns = if res.namespaced { ns } else { None };
        let (items, rv) = self.store.list(&res.group, &res.plural, ns);
        let start_after: Option<(String, String)> = match &opts.continue_ {
            Some(c) if !c.is_empty() => Some(decode_continue(c)?),
            _ => None,
        };
        let mut out = Vec::new();
        let mut next = None;
        let mut remaining = 0usize;
        for (k, obj) in items {
            if start_after.as_ref().is_some_and(|(sn, sname)| (&k.2, &k.3) <= (sn, sname)) {
                continue;
            }
            if !labels.matches(&meta::labels(&obj)) || !fields.matches(&obj) {
                continue;
            }
            if opts.limit.is_some_and(|l| l > 0 && out.len() >= l) {
                remaining += 1;
                continue;
            }
            out.push(as_served(res, &obj));
            next = Some((k.2.clone(), k.3.clone()));
        }
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if remaining > 0
            && let Some((n, m)) = next
        {
            metadata["continue"] = Value::String(encode_continue(&n, &m));
            metadata["remainingItemCount"] = json!(remaining);
        }
        Ok(
            json!({"kind": res.list_kind, "apiVersion": res.api_version(), "metadata": metadata, "items": out}),
        )
    }
}

fn encode_continue(ns: &str, name: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json!({"ns": ns, "name": name}).to_string())
}

fn decode_continue(token: &str) -> Result<(String, String), ApiError> {
    use base64::Engine;
    let bad = || ApiError::bad_request("continue key is not valid: malformed token");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    Ok((v["ns"].as_str().ok_or_else(bad)?.to_owned(), v["name"].as_str().ok_or_else(bad)?.to_owned()))
}

/// Time helper for controllers and tests.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// Labels of an object as a map (re-exported for controllers).
pub fn object_labels(obj: &Value) -> BTreeMap<String, String> {
    meta::labels(obj)
}
