//! A ScaledObject's triggers and their TriggerAuthentications, built from structured input for
//! every scaler type the registry knows: metadata keys drawn from each scaler's declared
//! parameters (and `<name>FromEnv`, and arbitrary keys), values drawn from the parameter's kind
//! (enum words, numbers, booleans, plausible texts, arbitrary text); a TriggerAuthentication
//! with env, Secret and ConfigMap references (found, missing object, missing key), podIdentity
//! and unsupported providers. The spec goes through the API types' deserialization,
//! `auth::resolve` and `validate::parse_scaled_object`, and each parsed trigger through its
//! metric name, targets and description.
//!
//! Properties: no panic; a value that came from a TriggerAuthentication never appears in a
//! parse error, a warning or an authentication error; a secret parameter's value never appears
//! in a description or metric name.
#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use ebb_api::{ScaledObject, TriggerAuthenticationSpec};
use ebb_scalers::auth::{AuthSources, Lookup, resolve};
use ebb_scalers::params::ParamKind;
use ebb_scalers::registry;
use ebb_scalers::{ParseContext, parse_scaled_object};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

/// Appended to every value a TriggerAuthentication provides when the input marks it, so the
/// value can be recognized in any message. Its first character is removed from every other
/// string the input chooses (names, keys, metadata), so nothing else can carry it.
const MARK: &str = "\u{2603}mark";

/// A string chosen by the input, without the mark's first character.
fn clean(s: &str) -> String {
    s.replace('\u{2603}', "")
}

const TEXTS: &[&str] = &[
    "",
    "0",
    "1",
    "-1",
    "2.5",
    "1e309",
    "NaN",
    "true",
    "false",
    "Etc/UTC",
    "Asia/Seoul",
    "0 8 * * *",
    "*/5 * * * 1-5",
    "@daily",
    "http://127.0.0.1:9090",
    "https://prometheus.example:9090/prefix",
    "sum(rate(http_requests_total[2m]))",
    "127.0.0.1:9092",
    "broker-1:9092,broker-2:9092",
    "orders",
    "group-1",
    "https://sqs.us-east-1.amazonaws.com/123456789012/queue",
    "us-east-1",
    "AWS/SQS",
    "ApproximateNumberOfMessagesVisible",
    "QueueName",
    "arn:aws:iam::123456789012:role/r",
    "enable",
    "disable",
    "plaintext",
    "scram_sha256",
    "scram_sha512",
    "bearer",
    "basic",
    "tls",
    "X-Scope-OrgID=tenant,a=b",
    "30s",
    "5m",
];

#[derive(Arbitrary, Debug)]
enum Text {
    Known(u8),
    Raw(String),
}

impl Text {
    fn render(&self) -> String {
        match self {
            Text::Known(i) => TEXTS[usize::from(*i) % TEXTS.len()].to_owned(),
            Text::Raw(s) => clean(s),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Val {
    /// A value that fits the parameter's kind (enum word, boolean, number, text).
    Fitting(u8),
    Text(Text),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Not a scalar: the parser must name the key.
    Nested,
}

#[derive(Arbitrary, Debug)]
enum Key {
    Param(u8),
    FromEnv(u8),
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum TypeSel {
    Known(u8),
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Outcome {
    Found { value: Val, marked: bool },
    NoObject,
    NoKey,
}

#[derive(Arbitrary, Debug)]
enum Source {
    Env { container: Option<String> },
    Secret,
    ConfigMap,
}

#[derive(Arbitrary, Debug)]
struct AuthRef {
    source: Source,
    parameter: Key,
    outcome: Outcome,
}

#[derive(Arbitrary, Debug)]
struct PodIdentity {
    provider: u8,
    role_arn: Option<Text>,
    owner: Option<u8>,
}

#[derive(Arbitrary, Debug)]
struct Auth {
    refs: Vec<AuthRef>,
    pod_identity: Option<PodIdentity>,
    unsupported: Option<u8>,
}

#[derive(Arbitrary, Debug)]
struct Trigger {
    type_: TypeSel,
    name: Option<String>,
    metric_type: Option<u8>,
    use_cached_metrics: bool,
    metadata: Vec<(Key, Val)>,
    auth: Option<Auth>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    triggers: Vec<Trigger>,
    min: Option<i32>,
    max: Option<i32>,
    idle: Option<i32>,
    fallback: Option<(i32, i32)>,
    env: Vec<(Text, Val)>,
    workload_role_arn: Option<Text>,
}

/// What the input's lookups answer: (kind, name, key) → outcome, env name → value.
#[derive(Default)]
struct Sources {
    objects: BTreeMap<(&'static str, String, String), Lookup>,
    /// The container's environment (also what `…FromEnv` parameters read).
    env: BTreeMap<String, String>,
    /// Variables only TriggerAuthentication `env` entries name (kept apart so a value read
    /// through the authentication is never also read through `…FromEnv`).
    auth_env: BTreeMap<String, String>,
}

impl AuthSources for Sources {
    fn secret(&self, name: &str, key: &str) -> Lookup {
        self.objects.get(&("Secret", name.to_owned(), key.to_owned())).cloned().unwrap_or(Lookup::NoObject)
    }
    fn config_map(&self, name: &str, key: &str) -> Lookup {
        self.objects.get(&("ConfigMap", name.to_owned(), key.to_owned())).cloned().unwrap_or(Lookup::NoObject)
    }
    fn env(&self, name: &str, _container: Option<&str>) -> Option<String> {
        self.auth_env.get(name).or_else(|| self.env.get(name)).cloned()
    }
}

fn def_of(type_: &str) -> Option<&'static registry::ScalerDef> {
    registry::implemented().find(|d| d.type_name == type_)
}

fn param_name(def: Option<&registry::ScalerDef>, i: u8) -> String {
    match def {
        Some(d) if !d.params.is_empty() => d.params[usize::from(i) % d.params.len()].name.to_owned(),
        _ => TEXTS[usize::from(i) % TEXTS.len()].to_owned(),
    }
}

fn key_name(def: Option<&registry::ScalerDef>, k: &Key) -> String {
    match k {
        Key::Param(i) => param_name(def, *i),
        Key::FromEnv(i) => format!("{}FromEnv", param_name(def, *i)),
        Key::Other(s) => clean(s),
    }
}

/// A value that suits the parameter named `key` (its enum words, a boolean, a number).
fn fitting(def: Option<&registry::ScalerDef>, key: &str, i: u8) -> String {
    let spec = def.and_then(|d| d.params.iter().find(|p| p.name == key));
    let i = usize::from(i);
    match spec.map(|p| p.kind) {
        Some(ParamKind::Enum(words)) if !words.is_empty() => words[i % words.len()].to_owned(),
        Some(ParamKind::Bool) => ["true", "false", "TRUE", "1", "0", "t"][i % 6].to_owned(),
        Some(ParamKind::Int { min }) => (min.saturating_add(i as i64 - 2)).to_string(),
        Some(ParamKind::Float { min }) => (min + (i as f64 - 2.0) / 4.0).to_string(),
        _ => TEXTS[i % TEXTS.len()].to_owned(),
    }
}

fn value_json(def: Option<&registry::ScalerDef>, key: &str, v: &Val) -> Value {
    match v {
        Val::Fitting(i) => Value::String(fitting(def, key, *i)),
        Val::Text(t) => Value::String(t.render()),
        Val::Int(n) => json!(n),
        Val::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Val::Bool(b) => json!(b),
        Val::Nested => json!({"nested": [1]}),
    }
}

fn value_text(def: Option<&registry::ScalerDef>, key: &str, v: &Val) -> String {
    match value_json(def, key, v) {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

fn assert_unmarked(what: &str, text: &str) {
    assert!(!text.contains(MARK), "a value from a TriggerAuthentication appears in {what}: {text}");
}

fuzz_target!(|input: Input| {
    let mut sources = Sources::default();
    for (name, value) in input.env.iter().take(8) {
        sources.env.insert(name.render(), value_text(None, "", value));
    }
    let mut triggers = Vec::new();
    let mut auth_specs = BTreeMap::new();
    let mut secret_params: Vec<String> = Vec::new();
    for (index, t) in input.triggers.iter().take(4).enumerate() {
        let type_ = match &t.type_ {
            TypeSel::Known(i) => {
                let defs: Vec<_> = registry::implemented().collect();
                defs[usize::from(*i) % defs.len()].type_name.to_owned()
            }
            TypeSel::Other(s) => clean(s),
        };
        let def = def_of(&type_);
        let mut metadata = serde_json::Map::new();
        for (k, v) in t.metadata.iter().take(16) {
            let key = key_name(def, k);
            metadata.insert(key.clone(), value_json(def, &key, v));
        }
        let mut trigger = json!({"type": type_, "metadata": metadata});
        if let Some(n) = &t.name {
            trigger["name"] = json!(clean(n));
        }
        if let Some(m) = t.metric_type {
            trigger["metricType"] = json!(["AverageValue", "Value", "Utilization"][usize::from(m) % 3]);
        }
        if t.use_cached_metrics {
            trigger["useCachedMetrics"] = json!(true);
        }
        if let Some(a) = &t.auth {
            trigger["authenticationRef"] = json!({"name": format!("ta-{index}")});
            let (mut env, mut secrets, mut maps) = (Vec::new(), Vec::new(), Vec::new());
            for (j, r) in a.refs.iter().take(8).enumerate() {
                let parameter = key_name(def, &r.parameter);
                let (name, key) = (format!("obj-{index}-{j}"), format!("key-{j}"));
                let found = match &r.outcome {
                    Outcome::Found { value, marked } => {
                        let v = value_text(def, &parameter, value);
                        let v = if *marked { format!("{v}{MARK}") } else { v };
                        if def.is_some_and(|d| d.params.iter().any(|p| p.name == parameter && p.secret)) {
                            secret_params.push(v.clone());
                        }
                        Lookup::Found(v)
                    }
                    Outcome::NoObject => Lookup::NoObject,
                    Outcome::NoKey => Lookup::NoKey,
                };
                match &r.source {
                    Source::Env { container } => {
                        if let Lookup::Found(v) = &found {
                            sources.auth_env.insert(name.clone(), v.clone());
                        }
                        let container = container.as_deref().map(clean);
                        env.push(json!({"parameter": parameter, "name": name, "containerName": container}));
                    }
                    Source::Secret => {
                        sources.objects.insert(("Secret", name.clone(), key.clone()), found);
                        secrets.push(json!({"parameter": parameter, "name": name, "key": key}));
                    }
                    Source::ConfigMap => {
                        sources.objects.insert(("ConfigMap", name.clone(), key.clone()), found);
                        maps.push(json!({"parameter": parameter, "name": name, "key": key}));
                    }
                }
            }
            let mut spec = json!({"env": env, "secretTargetRef": secrets, "configMapTargetRef": maps});
            if let Some(p) = &a.pod_identity {
                let provider =
                    ["none", "aws", "aws-eks", "azure-workload", "gcp", ""][usize::from(p.provider) % 6];
                let mut pi = json!({"provider": provider});
                if let Some(r) = &p.role_arn {
                    pi["roleArn"] = json!(r.render());
                }
                if let Some(o) = p.owner {
                    pi["identityOwner"] = json!(["keda", "workload", "operator", ""][usize::from(o) % 4]);
                }
                spec["podIdentity"] = pi;
            }
            if let Some(u) = a.unsupported {
                let provider = ["hashiCorpVault", "azureKeyVault", "gcpSecretManager", "awsSecretManager"]
                    [usize::from(u) % 4];
                spec[provider] = json!({});
            }
            auth_specs.insert(index, spec);
        }
        triggers.push(trigger);
    }
    let mut spec = json!({"scaleTargetRef": {"name": "web"}, "triggers": triggers});
    if let Some(v) = input.min {
        spec["minReplicaCount"] = json!(v);
    }
    if let Some(v) = input.max {
        spec["maxReplicaCount"] = json!(v);
    }
    if let Some(v) = input.idle {
        spec["idleReplicaCount"] = json!(v);
    }
    if let Some((threshold, replicas)) = input.fallback {
        spec["fallback"] = json!({"failureThreshold": threshold, "replicas": replicas});
    }
    let object = json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": "so", "namespace": "ns"}, "spec": spec});
    let Ok(so) = serde_json::from_value::<ScaledObject>(object) else { return };

    let mut ctx = ParseContext { env: sources.env.clone(), ..ParseContext::default() };
    ctx.workload_role_arn = input.workload_role_arn.as_ref().map(Text::render);
    for (index, spec) in auth_specs {
        let Ok(spec) = serde_json::from_value::<TriggerAuthenticationSpec>(spec) else { continue };
        if let Some(pi) = &spec.pod_identity {
            ctx.pod_identity.insert(index, pi.clone());
        }
        match resolve(&spec, &sources) {
            Ok(params) => {
                ctx.auth.insert(index, params);
            }
            Err(e) => assert_unmarked("an authentication error", &e.to_string()),
        }
    }
    match parse_scaled_object(&so, &ctx) {
        Ok(parsed) => {
            for w in &parsed.warnings {
                assert_unmarked("a warning", w);
            }
            for t in &parsed.triggers {
                let _ = (t.target(), t.activation_target());
                let (description, metric) = (t.config.describe(), t.metric_name.clone());
                for secret in secret_params.iter().filter(|s| s.contains(MARK)) {
                    assert!(!description.contains(secret.as_str()), "secret in description: {description}");
                    assert!(!metric.contains(secret.as_str()), "secret in metric name: {metric}");
                }
            }
        }
        Err(errors) => {
            for e in &errors {
                assert_unmarked("a parse error", &e.to_string());
            }
        }
    }
});
