//! A scaler's parameter declarations: each parameter once, with its kind, default, whether it is
//! required, deprecated or secret, and where else its value may come from (`<name>FromEnv`, a
//! TriggerAuthentication). Read by [`super::Params`].

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

/// A declared parameter of this name accepts every other metadata key too (the external
/// scalers pass the whole metadata through); read them with
/// [`Params::metadata`](super::Params::metadata).
pub const PASS_THROUGH: &str = "*";
