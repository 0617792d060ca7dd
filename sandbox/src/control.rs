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
use crate::patch::apply::{ApplyRequest, ListKeys, record_update};
use crate::resources::{Registry, Resource};
use crate::status::ApiError;
use crate::store::{Key, Store, Write};

mod list;
mod request_context;
mod scale;
mod write;

pub use list::ListOptions;
pub(crate) use request_context::system_ctx;
pub use request_context::{FieldValidation, PatchType, Sub, UserInfo, Warnings, WriteCtx};
use scale::from_scale;
pub(crate) use scale::{selector_string, to_scale};
use write::{apply_error, apply_patch, merge_for_write};

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
        crate::decode::check(res, &obj)?;
        crate::decode::prune(res, &mut obj, ctx)?;
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
        let valid =
            if res.path_segment_names { meta::validate_path_segment_name } else { meta::validate_name };
        valid(&name).map_err(|e| ApiError::invalid(&res.group, &res.kind, &name, e))?;
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
        self.admission.admit(self, res, Operation::Create, "", ns, &name, Some(&obj), None, ctx).await?;
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
            self.admission.admit(self, res, Operation::Create, "", ns, &name, Some(&obj), None, ctx).await?;
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
                    ctx,
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
        self.admission.admit(self, res, Operation::Delete, "", ns, name, None, Some(&cur), ctx).await?;
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
                    crate::gc::orphan_dependents(self, meta::uid(&cur).unwrap_or_default());
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
            crate::gc::delete_namespace_contents(self, ns);
        }
        if let Some(uid) = meta::uid(obj) {
            crate::gc::collect(self, uid);
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

/// List merge keys for server-side apply.
pub(crate) fn list_keys(res: &Resource) -> ListKeys {
    if res.custom { ListKeys::atomic() } else { ListKeys::for_kind(&res.api_version(), &res.kind) }
}

/// Time helper for controllers and tests.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// Labels of an object as a map (re-exported for controllers).
pub fn object_labels(obj: &Value) -> BTreeMap<String, String> {
    meta::labels(obj)
}
