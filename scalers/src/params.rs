//! Parameter declarations and the typed reader over a trigger's `metadata`. Each scaler declares
//! its parameters once (`ParamSpec`: name, kind, default, required, enum, deprecated, where else
//! the value may come from); the reader resolves a value from the metadata, then `<name>FromEnv`
//! (the target container's environment), then the TriggerAuthentication parameters, converts it
//! and reports problems naming the trigger, the parameter and what was expected.
//!
//! Two rules protect what travels with a credential:
//! - a parameter the scaler reads from authentication may be set in one place only: given both
//!   by the TriggerAuthentication and in the metadata (or as `<name>FromEnv`), it is an error
//!   naming both places (KEDA refuses `tls` and `sasl` set in both; ebb refuses every such
//!   parameter), so a trigger cannot override what a (Cluster)TriggerAuthentication sets;
//! - only values written in the ScaledObject's own metadata (or defaults) are ever shown: a
//!   value from a TriggerAuthentication (any source) or from the target's environment is never
//!   put in an error, whichever scaler builds the message ([`Params::error`] scrubs them).
//!
//! The reader also carries the operator's decision whether a trigger may use the operator's own
//! cloud identity ([`OperatorIdentity`]); the scalers that can use it ask [`Params::allow_operator_identity`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use ebb_api::{AuthPodIdentity, MetadataValue};

use crate::error::{Location, ParseError, ParseErrorKind};

mod spec;

pub use spec::{PASS_THROUGH, ParamKind, ParamSpec};

/// Everything outside the ScaledObject that parameters may resolve from. Debug shows the names
/// of environment variables and authentication parameters, never their values.
#[derive(Clone, Default)]
pub struct ParseContext {
    /// Environment of the target's `envSourceContainerName` container (or first container).
    pub env: BTreeMap<String, String>,
    /// Parameters resolved from the trigger's TriggerAuthentication, per trigger index.
    pub auth: BTreeMap<usize, BTreeMap<String, String>>,
    /// `podIdentity` of the trigger's TriggerAuthentication, per trigger index.
    pub pod_identity: BTreeMap<usize, AuthPodIdentity>,
    /// The `eks.amazonaws.com/role-arn` annotation of the target's ServiceAccount, when read
    /// (only needed by `podIdentity.identityOwner: workload`).
    pub workload_role_arn: Option<String>,
    /// The trigger's authentication as messages name it, e.g. `ClusterTriggerAuthentication
    /// "shared"`, per trigger index (absent: "the TriggerAuthentication").
    pub auth_name: BTreeMap<usize, String>,
    /// Where the authentication read each parameter, e.g. `secretTargetRef: Secret "db" key
    /// "password"`, per trigger index and parameter. Names only, never values.
    pub auth_sources: BTreeMap<usize, BTreeMap<String, String>>,
    /// Which triggers may use the operator's own cloud identity.
    pub operator_identity: OperatorIdentity,
}

/// Whether triggers may use the operator's own cloud identity (AWS `identityOwner: operator`,
/// `podIdentity` with `identityOwner: keda` and no role to assume).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum OperatorIdentity {
    /// Every trigger may (`ebb check`, tests: the identity is the caller's own).
    #[default]
    Allowed,
    /// Only the listed trigger indices may; the others are refused with `reason`, which says
    /// how to allow it.
    Only { triggers: BTreeSet<usize>, reason: String },
}

impl fmt::Debug for ParseContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth: BTreeMap<&usize, Vec<&String>> =
            self.auth.iter().map(|(i, m)| (i, m.keys().collect())).collect();
        f.debug_struct("ParseContext")
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("auth", &auth)
            .field("pod_identity", &self.pod_identity)
            .field("workload_role_arn", &self.workload_role_arn)
            .field("auth_name", &self.auth_name)
            .field("auth_sources", &self.auth_sources)
            .field("operator_identity", &self.operator_identity)
            .finish()
    }
}

/// Where a parameter's value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Source {
    /// Written in the trigger's metadata: may be shown.
    Metadata,
    /// The declared default: may be shown.
    Default,
    /// The target container's environment variable named (`<name>FromEnv`): never shown.
    Env(String),
    /// The trigger's authentication: never shown.
    Auth,
}

/// What replaces a value that must not be shown.
const REDACTED: &str = "<redacted>";
/// Values (and pieces of values) at least this long are scrubbed from messages even unquoted;
/// shorter ones only in their quoted form, so common words in a message are left alone.
const SCRUB_UNQUOTED_MIN: usize = 8;

/// Typed reader over one trigger's parameters. Debug shows no environment or authentication
/// values.
pub struct Params<'a> {
    index: usize,
    type_: &'a str,
    specs: &'static [ParamSpec],
    metadata: &'a BTreeMap<String, MetadataValue>,
    env: &'a BTreeMap<String, String>,
    auth: Option<&'a BTreeMap<String, String>>,
    auth_name: Option<&'a str>,
    auth_sources: Option<&'a BTreeMap<String, String>>,
    pod_identity: Option<&'a AuthPodIdentity>,
    workload_role_arn: Option<&'a str>,
    /// `Err(reason)` when this trigger may not use the operator's own identity.
    operator_identity: Result<(), &'a str>,
    /// Values this trigger may read that must never be shown (authentication, environment).
    hidden: Vec<&'a str>,
    warnings: Vec<String>,
}

impl fmt::Debug for Params<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Params")
            .field("index", &self.index)
            .field("type_", &self.type_)
            .field("metadata", &self.metadata)
            .field("auth", &self.auth.map(|a| a.keys().collect::<Vec<_>>()))
            .field("auth_name", &self.auth_name)
            .field("pod_identity", &self.pod_identity)
            .finish_non_exhaustive()
    }
}

impl<'a> Params<'a> {
    pub fn new(
        index: usize,
        type_: &'a str,
        specs: &'static [ParamSpec],
        metadata: &'a BTreeMap<String, MetadataValue>,
        ctx: &'a ParseContext,
    ) -> Self {
        let auth = ctx.auth.get(&index);
        let mut hidden: Vec<&'a str> =
            auth.into_iter().flat_map(|a| a.values().map(String::as_str)).collect();
        // Environment variables this trigger names through `<name>FromEnv`.
        hidden.extend(
            metadata
                .iter()
                .filter(|(k, _)| k.ends_with("FromEnv"))
                .filter_map(|(_, var)| ctx.env.get(var.as_str()).map(String::as_str)),
        );
        hidden.retain(|v| !v.trim().is_empty());
        let operator_identity = match &ctx.operator_identity {
            OperatorIdentity::Allowed => Ok(()),
            OperatorIdentity::Only { triggers, .. } if triggers.contains(&index) => Ok(()),
            OperatorIdentity::Only { reason, .. } => Err(reason.as_str()),
        };
        let mut p = Self {
            index,
            type_,
            specs,
            metadata,
            env: &ctx.env,
            auth,
            auth_name: ctx.auth_name.get(&index).map(String::as_str),
            auth_sources: ctx.auth_sources.get(&index),
            pod_identity: ctx.pod_identity.get(&index),
            workload_role_arn: ctx.workload_role_arn.as_deref(),
            operator_identity,
            hidden,
            warnings: Vec::new(),
        };
        p.check_keys();
        p
    }

    pub fn trigger_index(&self) -> usize {
        self.index
    }

    /// The `podIdentity` of this trigger's TriggerAuthentication, if any.
    pub fn pod_identity(&self) -> Option<&'a AuthPodIdentity> {
        self.pod_identity
    }

    /// The role annotated on the target's ServiceAccount (`eks.amazonaws.com/role-arn`), if read.
    pub fn workload_role_arn(&self) -> Option<&'a str> {
        self.workload_role_arn
    }

    /// Warnings gathered while reading (unknown or deprecated parameters).
    pub fn into_warnings(self) -> Vec<String> {
        self.warnings
    }

    /// Whether the authentication gives parameter `name` (a non-empty value).
    fn auth_gives(&self, name: &str) -> bool {
        self.auth.and_then(|a| a.get(name)).is_some_and(|v| !v.trim().is_empty())
    }

    /// The metadata key setting `name` in the trigger itself (`name`, or `<name>FromEnv` when
    /// the parameter takes one), if any is set.
    fn metadata_key(&self, spec: &ParamSpec) -> Option<String> {
        let set = |k: &str| self.metadata.get(k).is_some_and(|v| !v.as_str().trim().is_empty());
        if set(spec.name) {
            return Some(spec.name.to_owned());
        }
        let env_key = format!("{}FromEnv", spec.name);
        (spec.from_env && set(&env_key)).then_some(env_key)
    }

    /// Every metadata entry as written (no defaults, environment or authentication values).
    pub fn metadata(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.metadata.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    fn check_keys(&mut self) {
        let pass_through = self.specs.iter().any(|s| s.name == PASS_THROUGH);
        let known = |k: &str| {
            (pass_through && !self.specs.iter().any(|s| s.secret && s.name == k))
                || self.specs.iter().any(|s| {
                    (s.name == k && !s.secret) || (s.from_env && k.strip_suffix("FromEnv") == Some(s.name))
                })
        };
        let unknown: Vec<&String> = self.metadata.keys().filter(|k| !known(k)).collect();
        if !unknown.is_empty() {
            let accepted: Vec<&str> = self.specs.iter().filter(|s| !s.secret).map(|s| s.name).collect();
            for k in unknown {
                let secret = self.specs.iter().any(|s| s.secret && s.name == k);
                if secret && self.auth_gives(k) {
                    // Reported as a conflict.
                    continue;
                }
                self.warnings.push(if secret {
                    format!(
                        "{}: {k} is a credential and is read only from a TriggerAuthentication; the metadata value is ignored",
                        self.location(Some(k))
                    )
                } else {
                    format!("{}: unknown parameter is ignored; accepted: {}", self.location(Some(k)), accepted.join(", "))
                });
            }
        }
        for s in self.specs {
            if let (Some(why), true) = (s.deprecated, self.metadata.contains_key(s.name)) {
                self.warnings.push(format!("{}: {why}", self.location(Some(s.name))));
            }
        }
    }

    /// Every parameter read from authentication that the authentication gives and the trigger's
    /// metadata sets too (directly or as `<name>FromEnv`): one error each, naming both places.
    pub fn conflicts(&self) -> Vec<ParseError> {
        self.specs.iter().filter_map(|s| self.conflict(s)).collect()
    }

    fn conflict(&self, spec: &ParamSpec) -> Option<ParseError> {
        if !spec.from_auth || !self.auth_gives(spec.name) {
            return None;
        }
        let key = self.metadata_key(spec).or_else(|| {
            // A credential in metadata is never read, but it still claims the parameter.
            (spec.secret && self.metadata.get(spec.name).is_some_and(|v| !v.as_str().trim().is_empty()))
                .then(|| spec.name.to_owned())
        })?;
        let in_metadata = if key == spec.name {
            "in the trigger's metadata".to_owned()
        } else {
            format!("in the trigger's metadata (as {key})")
        };
        Some(self.error(
            spec.name,
            ParseErrorKind::InvalidParameter,
            format!(
                "set both {in_metadata} and by {}; set it in one place only (a trigger may not override what its authentication sets)",
                self.auth_origin(spec.name)
            ),
        ))
    }

    /// `the TriggerAuthentication` or `ClusterTriggerAuthentication "x"`, with where it read
    /// `name` when known.
    fn auth_origin(&self, name: &str) -> String {
        let who = self.auth_name.unwrap_or("the TriggerAuthentication");
        match self.auth_sources.and_then(|s| s.get(name)) {
            Some(from) => format!("{who} ({from})"),
            None => who.to_owned(),
        }
    }

    fn location(&self, parameter: Option<&str>) -> Location {
        Location::Trigger {
            index: self.index,
            type_: self.type_.to_owned(),
            parameter: parameter.map(str::to_owned),
        }
    }

    /// Removes every value of this trigger that must not be shown (and its pieces) from `message`.
    fn scrub(&self, message: String) -> String {
        if self.hidden.is_empty() {
            return message;
        }
        let mut patterns: Vec<String> = Vec::new();
        let mut add = |piece: &str| {
            if piece.is_empty() {
                return;
            }
            patterns.push(format!("{piece:?}"));
            if piece.chars().count() >= SCRUB_UNQUOTED_MIN {
                patterns.push(piece.to_owned());
            }
        };
        for v in &self.hidden {
            add(v);
            add(v.trim());
            for piece in v.split([',', ';', ' ', '\n', '\t', '/', '&', '=']) {
                add(piece.trim());
            }
        }
        patterns.sort_by_key(|p| std::cmp::Reverse(p.len()));
        patterns.dedup();
        let mut out = message;
        for p in &patterns {
            if out.contains(p.as_str()) {
                out = out.replace(p.as_str(), REDACTED);
            }
        }
        out
    }

    /// `message` scrubbed; when something was removed, says where the hidden value came from.
    fn redacted(&self, parameter: Option<&str>, message: String) -> String {
        let scrubbed = self.scrub(message.clone());
        if scrubbed == message {
            return scrubbed;
        }
        let spec = parameter.and_then(|n| self.specs.iter().find(|s| s.name == n));
        let from = match spec {
            Some(s) if s.from_env && self.metadata_key(s).is_some_and(|k| k != s.name) => {
                let var = self.metadata.get(&format!("{}FromEnv", s.name)).map(MetadataValue::as_str);
                format!("environment variable {:?} of the scale target's container", var.unwrap_or_default())
            }
            Some(s) if s.from_auth && self.auth_gives(s.name) => self.auth_origin(s.name),
            _ => "the trigger's authentication or the scale target's environment".to_owned(),
        };
        format!("{scrubbed} (values from {from} are not shown)")
    }

    /// An error about one parameter of this trigger. Values from authentication or the
    /// environment are scrubbed from the message.
    pub fn error(&self, parameter: &str, kind: ParseErrorKind, message: impl Into<String>) -> ParseError {
        ParseError {
            location: self.location(Some(parameter)),
            message: self.redacted(Some(parameter), message.into()),
            kind,
        }
    }

    /// An error about the trigger as a whole (scrubbed like [`Params::error`]).
    pub fn trigger_error(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            location: self.location(None),
            message: self.redacted(None, message.into()),
            kind: ParseErrorKind::InvalidParameter,
        }
    }

    /// Whether this trigger may use the operator's own cloud identity; `what` says how the
    /// trigger asked for it (e.g. `identityOwner: operator`).
    pub fn allow_operator_identity(&self, what: &str) -> Result<(), ParseError> {
        self.operator_identity.map_err(|reason| ParseError {
            kind: ParseErrorKind::InvalidParameter,
            ..self.trigger_error(format!("{what} uses the operator's own cloud identity, which {reason}"))
        })
    }

    fn spec(&self, name: &str) -> Result<&'static ParamSpec, ParseError> {
        self.specs.iter().find(|s| s.name == name).ok_or_else(|| {
            // A scaler asking for a parameter it did not declare is a programming error; report it
            // as a parse error rather than panicking.
            self.error(name, ParseErrorKind::InvalidParameter, "parameter is not declared by this scaler")
        })
    }

    /// The raw value, from metadata, then `…FromEnv`, then authentication, then the default.
    pub fn raw(&self, name: &str) -> Result<Option<String>, ParseError> {
        Ok(self.lookup(name)?.map(|(v, _)| v))
    }

    /// The raw value and where it came from. A parameter set both by the authentication and in
    /// the metadata is an error.
    fn lookup(&self, name: &str) -> Result<Option<(String, Source)>, ParseError> {
        let spec = self.spec(name)?;
        if let Some(e) = self.conflict(spec) {
            return Err(e);
        }
        if !spec.secret
            && let Some(v) = self.metadata.get(name).map(MetadataValue::as_str).filter(|v| !v.is_empty())
        {
            return Ok(Some((v.to_owned(), Source::Metadata)));
        }
        if spec.from_env {
            let key = format!("{name}FromEnv");
            if let Some(var) = self.metadata.get(&key).map(MetadataValue::as_str).filter(|v| !v.is_empty()) {
                return match self.env.get(var) {
                    Some(v) if !v.is_empty() => Ok(Some((v.clone(), Source::Env(var.to_owned())))),
                    _ => Err(self.error(
                        &key,
                        ParseErrorKind::MissingParameter,
                        format!("environment variable {var:?} is not set on the scale target's container"),
                    )),
                };
            }
        }
        if spec.from_auth
            && let Some(v) = self.auth.and_then(|a| a.get(name)).filter(|v| !v.is_empty())
        {
            return Ok(Some((v.clone(), Source::Auth)));
        }
        if let Some(d) = spec.default {
            return Ok(Some((d.to_owned(), Source::Default)));
        }
        if spec.required {
            let mut how = vec![format!("set metadata.{name}")];
            if spec.from_env {
                how.push(format!("{name}FromEnv"));
            }
            if spec.from_auth {
                how.push("a TriggerAuthentication parameter".to_owned());
            }
            if spec.secret {
                how = vec![format!("a TriggerAuthentication parameter {name:?}")];
            }
            return Err(self.error(
                name,
                ParseErrorKind::MissingParameter,
                format!("required; {}", how.join(" or ")),
            ));
        }
        Ok(None)
    }

    fn convert<T>(
        &self,
        name: &str,
        f: impl FnOnce(&'static ParamSpec, &str) -> Result<T, String>,
    ) -> Result<Option<T>, ParseError> {
        let spec = self.spec(name)?;
        match self.lookup(name)? {
            None => Ok(None),
            Some((v, source)) => f(spec, v.trim()).map(Some).map_err(|m| {
                // Only values written in the ScaledObject are shown.
                let shown = match source {
                    _ if spec.secret => format!("{m}; the value is a credential and is not shown"),
                    Source::Metadata | Source::Default => format!("{m}, found {v:?}"),
                    Source::Env(var) => format!(
                        "{m}; the value, from environment variable {var:?} of the scale target's container, is not shown"
                    ),
                    Source::Auth => {
                        format!("{m}; the value, from {}, is not shown", self.auth_origin(name))
                    }
                };
                self.error(name, ParseErrorKind::InvalidParameter, shown)
            }),
        }
    }

    pub fn text(&self, name: &str) -> Result<Option<String>, ParseError> {
        self.convert(name, |spec, v| match spec.kind {
            ParamKind::Enum(allowed) if !allowed.contains(&v) => {
                Err(format!("expected one of {}", allowed.join(", ")))
            }
            _ => Ok(v.to_owned()),
        })
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>, ParseError> {
        self.convert(name, |spec, v| {
            let min = match spec.kind {
                ParamKind::Int { min } => min,
                _ => i64::MIN,
            };
            let n: i64 = v.parse().map_err(|_| "expected an integer".to_owned())?;
            if n < min { Err(format!("expected an integer ≥ {min}")) } else { Ok(n) }
        })
    }

    pub fn float(&self, name: &str) -> Result<Option<f64>, ParseError> {
        self.convert(name, |spec, v| {
            let min = match spec.kind {
                ParamKind::Float { min } => min,
                _ => f64::MIN,
            };
            let n: f64 = v.parse().map_err(|_| "expected a number".to_owned())?;
            if !n.is_finite() {
                Err("expected a finite number".to_owned())
            } else if n < min {
                Err(format!("expected a number ≥ {min}"))
            } else {
                Ok(n)
            }
        })
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, ParseError> {
        self.convert(name, |_, v| match v.to_ascii_lowercase().as_str() {
            "true" | "1" | "t" => Ok(true),
            "false" | "0" | "f" => Ok(false),
            _ => Err("expected true or false".to_owned()),
        })
    }

    /// Like `text`, but absent is an error (use for parameters declared `required`).
    pub fn required_text(&self, name: &str) -> Result<String, ParseError> {
        self.text(name)?.ok_or_else(|| self.error(name, ParseErrorKind::MissingParameter, "required"))
    }
    pub fn required_int(&self, name: &str) -> Result<i64, ParseError> {
        self.int(name)?.ok_or_else(|| self.error(name, ParseErrorKind::MissingParameter, "required"))
    }
    pub fn required_float(&self, name: &str) -> Result<f64, ParseError> {
        self.float(name)?.ok_or_else(|| self.error(name, ParseErrorKind::MissingParameter, "required"))
    }
    pub fn required_bool(&self, name: &str) -> Result<bool, ParseError> {
        self.bool(name)?.ok_or_else(|| self.error(name, ParseErrorKind::MissingParameter, "required"))
    }
}

#[cfg(test)]
mod tests;
