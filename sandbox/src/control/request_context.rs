//! What a request brings to the control plane's verbs: who makes it ([`UserInfo`]), its write
//! options and the warnings admission collects for it ([`WriteCtx`], [`Warnings`]), the part of
//! the object it addresses ([`Sub`]) and the kind of patch body ([`PatchType`]).

use std::sync::{Arc, Mutex, PoisonError};

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
    /// Warnings admission webhooks returned for this request (sent as `Warning` headers).
    pub warnings: Warnings,
    /// What to do with fields of a custom resource its schema does not have.
    pub field_validation: FieldValidation,
}

/// The `fieldValidation` parameter of a write: fields the schema does not have are dropped
/// silently (`Ignore`), dropped with a `Warning` header each (`Warn`, kube-apiserver's default
/// when the parameter is absent), or refuse the request (`Strict`, what kubectl sends by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

impl FieldValidation {
    /// From the query parameter; `None` for a value kube-apiserver refuses.
    pub fn parse(v: Option<&str>) -> Option<Self> {
        match v {
            None | Some("") | Some("Warn") => Some(Self::Warn),
            Some("Ignore") => Some(Self::Ignore),
            Some("Strict") => Some(Self::Strict),
            Some(_) => None,
        }
    }
}

/// Warnings collected while a request is handled.
#[derive(Debug, Clone, Default)]
pub struct Warnings(Arc<Mutex<Vec<String>>>);

impl Warnings {
    pub fn push(&self, w: String) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push(w);
    }

    /// Every warning so far, leaving none.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
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

/// A context for the control plane's own writes.
pub(crate) fn system_ctx() -> WriteCtx {
    WriteCtx {
        user: UserInfo { username: "system:apiserver".into(), groups: vec!["system:masters".into()] },
        field_manager: "kube-apiserver".into(),
        dry_run: false,
        force: false,
        warnings: Warnings::default(),
        field_validation: FieldValidation::Ignore,
    }
}
