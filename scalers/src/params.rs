//! Parameter declarations and the typed reader over a trigger's `metadata`. Each scaler declares
//! its parameters once (`ParamSpec`: name, kind, default, required, enum, deprecated, where else
//! the value may come from); the reader resolves a value from the metadata, then `<name>FromEnv`
//! (the target container's environment), then the TriggerAuthentication parameters, converts it
//! and reports problems naming the trigger, the parameter and what was expected.

use std::collections::BTreeMap;
use std::fmt;

use ebb_api::{AuthPodIdentity, MetadataValue};

use crate::error::{Location, ParseError, ParseErrorKind};

/// What a parameter holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ParamKind {
    Text,
    /// An integer no lower than `min`.
    Int {
        min: i64,
    },
    /// A finite number no lower than `min`.
    Float {
        min: f64,
    },
    Bool,
    /// One of the listed words (compared case-sensitively, as KEDA does).
    Enum(&'static [&'static str]),
}

/// One declared parameter of a scaler.
#[derive(Clone, Copy, Debug)]
pub struct ParamSpec {
    pub name: &'static str,
    pub kind: ParamKind,
    pub required: bool,
    pub default: Option<&'static str>,
    /// `<name>FromEnv` names an environment variable of the target container.
    pub from_env: bool,
    /// The value may come from a TriggerAuthentication.
    pub from_auth: bool,
    /// Only from a TriggerAuthentication (a secret): never read from metadata, never logged.
    pub secret: bool,
    /// Set when the parameter is accepted but deprecated or ignored; the text says why.
    pub deprecated: Option<&'static str>,
}

impl ParamSpec {
    pub const fn new(name: &'static str, kind: ParamKind) -> Self {
        Self {
            name,
            kind,
            required: false,
            default: None,
            from_env: false,
            from_auth: false,
            secret: false,
            deprecated: None,
        }
    }
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub const fn default(mut self, v: &'static str) -> Self {
        self.default = Some(v);
        self
    }
    pub const fn from_env(mut self) -> Self {
        self.from_env = true;
        self
    }
    pub const fn from_auth(mut self) -> Self {
        self.from_auth = true;
        self
    }
    pub const fn secret(mut self) -> Self {
        self.secret = true;
        self.from_auth = true;
        self
    }
    pub const fn deprecated(mut self, why: &'static str) -> Self {
        self.deprecated = Some(why);
        self
    }
}

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
            .finish()
    }
}

/// Typed reader over one trigger's parameters. Debug shows no environment or authentication
/// values.
pub struct Params<'a> {
    index: usize,
    type_: &'a str,
    specs: &'static [ParamSpec],
    metadata: &'a BTreeMap<String, MetadataValue>,
    env: &'a BTreeMap<String, String>,
    auth: Option<&'a BTreeMap<String, String>>,
    pod_identity: Option<&'a AuthPodIdentity>,
    workload_role_arn: Option<&'a str>,
    warnings: Vec<String>,
}

impl fmt::Debug for Params<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Params")
            .field("index", &self.index)
            .field("type_", &self.type_)
            .field("metadata", &self.metadata)
            .field("auth", &self.auth.map(|a| a.keys().collect::<Vec<_>>()))
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
        let mut p = Self {
            index,
            type_,
            specs,
            metadata,
            env: &ctx.env,
            auth: ctx.auth.get(&index),
            pod_identity: ctx.pod_identity.get(&index),
            workload_role_arn: ctx.workload_role_arn.as_deref(),
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

    fn check_keys(&mut self) {
        let known = |k: &str| {
            self.specs.iter().any(|s| {
                (s.name == k && !s.secret) || (s.from_env && k.strip_suffix("FromEnv") == Some(s.name))
            })
        };
        let unknown: Vec<&String> = self.metadata.keys().filter(|k| !known(k)).collect();
        if !unknown.is_empty() {
            let accepted: Vec<&str> = self.specs.iter().filter(|s| !s.secret).map(|s| s.name).collect();
            for k in unknown {
                let secret = self.specs.iter().any(|s| s.secret && s.name == k);
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

    fn location(&self, parameter: Option<&str>) -> Location {
        Location::Trigger {
            index: self.index,
            type_: self.type_.to_owned(),
            parameter: parameter.map(str::to_owned),
        }
    }

    /// An error about one parameter of this trigger.
    pub fn error(&self, parameter: &str, kind: ParseErrorKind, message: impl Into<String>) -> ParseError {
        ParseError { location: self.location(Some(parameter)), message: message.into(), kind }
    }

    /// An error about the trigger as a whole.
    pub fn trigger_error(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            location: self.location(None),
            message: message.into(),
            kind: ParseErrorKind::InvalidParameter,
        }
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
        let spec = self.spec(name)?;
        if !spec.secret
            && let Some(v) = self.metadata.get(name).map(MetadataValue::as_str).filter(|v| !v.is_empty())
        {
            return Ok(Some(v.to_owned()));
        }
        if spec.from_env {
            let key = format!("{name}FromEnv");
            if let Some(var) = self.metadata.get(&key).map(MetadataValue::as_str).filter(|v| !v.is_empty()) {
                return match self.env.get(var) {
                    Some(v) if !v.is_empty() => Ok(Some(v.clone())),
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
            return Ok(Some(v.clone()));
        }
        if let Some(d) = spec.default {
            return Ok(Some(d.to_owned()));
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
        match self.raw(name)? {
            None => Ok(None),
            Some(v) => f(spec, v.trim()).map(Some).map_err(|m| {
                // Secrets are never echoed back in messages.
                let shown = if spec.secret { "<redacted>".to_owned() } else { format!("{v:?}") };
                self.error(name, ParseErrorKind::InvalidParameter, format!("{m}, found {shown}"))
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
mod tests {
    use super::*;

    const SPECS: &[ParamSpec] = &[
        ParamSpec::new("queue", ParamKind::Text).required().from_env(),
        ParamSpec::new("length", ParamKind::Int { min: 1 }).default("5"),
        ParamSpec::new("ratio", ParamKind::Float { min: 0.0 }),
        ParamSpec::new("flag", ParamKind::Bool).default("false"),
        ParamSpec::new("mode", ParamKind::Enum(&["a", "b"])).default("a"),
        ParamSpec::new("password", ParamKind::Text).secret(),
        ParamSpec::new("metricName", ParamKind::Text).deprecated("ignored; the metric name is generated"),
    ];

    fn md(pairs: &[(&str, &str)]) -> BTreeMap<String, MetadataValue> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), MetadataValue::from(*v))).collect()
    }

    #[test]
    fn reads_typed_values_and_defaults() {
        let m = md(&[("queue", "q"), ("ratio", "0.5"), ("flag", "TRUE")]);
        let ctx = ParseContext::default();
        let p = Params::new(0, "t", SPECS, &m, &ctx);
        assert_eq!(p.required_text("queue").unwrap(), "q");
        assert_eq!(p.int("length").unwrap(), Some(5));
        assert_eq!(p.float("ratio").unwrap(), Some(0.5));
        assert_eq!(p.bool("flag").unwrap(), Some(true));
        assert_eq!(p.text("mode").unwrap().as_deref(), Some("a"));
        assert!(p.into_warnings().is_empty());
    }

    #[test]
    fn errors_name_trigger_parameter_and_expectation() {
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
        let cases: &[Case] = &[
            (
                &[],
                "queue",
                "spec.triggers[2] (t) metadata.queue: required; set metadata.queue or queueFromEnv",
            ),
            (
                &[("length", "x")],
                "length",
                "spec.triggers[2] (t) metadata.length: expected an integer, found \"x\"",
            ),
            (
                &[("length", "0")],
                "length",
                "spec.triggers[2] (t) metadata.length: expected an integer ≥ 1, found \"0\"",
            ),
            (
                &[("ratio", "NaN")],
                "ratio",
                "spec.triggers[2] (t) metadata.ratio: expected a finite number, found \"NaN\"",
            ),
            (
                &[("flag", "yes")],
                "flag",
                "spec.triggers[2] (t) metadata.flag: expected true or false, found \"yes\"",
            ),
            (
                &[("mode", "c")],
                "mode",
                "spec.triggers[2] (t) metadata.mode: expected one of a, b, found \"c\"",
            ),
        ];
        let ctx = ParseContext::default();
        for (pairs, param, want) in cases {
            let m = md(pairs);
            let p = Params::new(2, "t", SPECS, &m, &ctx);
            let err = match *param {
                "queue" => p.required_text("queue").unwrap_err(),
                "length" => p.int("length").unwrap_err(),
                "ratio" => p.float("ratio").unwrap_err(),
                "flag" => p.bool("flag").unwrap_err(),
                _ => p.text("mode").unwrap_err(),
            };
            assert_eq!(err.to_string(), *want);
        }
    }

    #[test]
    fn resolves_from_env_and_auth() {
        let m = md(&[("queueFromEnv", "QUEUE_URL")]);
        let mut ctx = ParseContext::default();
        ctx.env.insert("QUEUE_URL".into(), "from-env".into());
        ctx.auth.insert(0, [("password".to_owned(), "s3cret".to_owned())].into());
        let p = Params::new(0, "t", SPECS, &m, &ctx);
        assert_eq!(p.required_text("queue").unwrap(), "from-env");
        assert_eq!(p.text("password").unwrap().as_deref(), Some("s3cret"));

        let missing = md(&[("queueFromEnv", "NOPE")]);
        let p = Params::new(0, "t", SPECS, &missing, &ctx);
        let e = p.required_text("queue").unwrap_err().to_string();
        assert!(e.contains("queueFromEnv") && e.contains("\"NOPE\" is not set"), "{e}");
    }

    #[test]
    fn debug_shows_names_not_values() {
        let m = md(&[("queue", "q")]);
        let mut ctx = ParseContext::default();
        ctx.env.insert("DB_PASSWORD".into(), "env-value".into());
        ctx.auth.insert(0, [("password".to_owned(), "s3cret".to_owned())].into());
        let p = Params::new(0, "t", SPECS, &m, &ctx);
        for text in [format!("{ctx:?}"), format!("{ctx:#?}"), format!("{p:?}")] {
            assert!(
                text.contains("password") && !text.contains("s3cret") && !text.contains("env-value"),
                "{text}"
            );
        }
    }

    #[test]
    fn secrets_are_not_read_from_metadata_nor_echoed() {
        let m = md(&[("queue", "q"), ("password", "leak")]);
        let ctx = ParseContext::default();
        let p = Params::new(0, "t", SPECS, &m, &ctx);
        assert_eq!(p.text("password").unwrap(), None);
        let w = p.into_warnings().join("\n");
        assert!(w.contains("read only from a TriggerAuthentication") && !w.contains("leak"), "{w}");
    }

    #[test]
    fn warns_on_unknown_and_deprecated() {
        let m = md(&[("queue", "q"), ("qeue", "typo"), ("metricName", "x")]);
        let ctx = ParseContext::default();
        let w = Params::new(1, "t", SPECS, &m, &ctx).into_warnings();
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].contains("metadata.qeue: unknown parameter is ignored; accepted: queue, length"),
            "{}",
            w[0]
        );
        assert!(w[1].contains("metadata.metricName: ignored; the metric name is generated"), "{}", w[1]);
    }
}
