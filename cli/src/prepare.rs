//! Turning a loaded ScaledObject into parsed triggers, the way the operator would: resolve each
//! trigger's TriggerAuthentication from the given manifests, take `…FromEnv` and `env`
//! authentication values from the environment the user gave ([`EnvOptions`]), and parse with the
//! shared parser.
//!
//! The environment of the `ebb` process itself is never read unless `--env-from-process` is
//! given: a manifest chooses both the variable names and the server that receives them, so
//! reading the shell's environment by default would send e.g. `GITHUB_TOKEN` to whatever
//! `serverAddress` the manifest names. Precedence, highest first: `--env`, `--env-file` (later
//! files win), the target workload's container environment from a `-f` manifest (resolved as
//! the operator does: `envFrom`, `valueFrom` from the Secrets and ConfigMaps given with `-f`,
//! `$(VAR)`; a TriggerAuthentication `env` entry reads the container its `containerName`
//! names), and the process environment with `--env-from-process`.

use std::collections::BTreeMap;

use ebb_api::annotations::ScalingAnnotations;
use ebb_scalers::auth::{AuthError, AuthSources, Lookup, resolve};
use ebb_scalers::{Location, ParseContext, ParseErrorKind, ParsedScaledObject, parse_scaled_object};

use crate::error::CliError;
use crate::load::{Loaded, ManifestSources, Manifests};

/// What to add to an error about a variable that is not set.
pub const ENV_HINT: &str = "pass it with --env NAME=VALUE or --env-file FILE, add the target workload's manifest with -f, or use --env-from-process to read this shell's environment";

/// The environment `…FromEnv` parameters and `env` authentication read from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvOptions {
    /// `--env` and `--env-file` values.
    pub vars: BTreeMap<String, String>,
    /// `--env-from-process`: fall back to this process's environment.
    pub from_process: bool,
}

impl EnvOptions {
    /// From the flags: `NAME=VALUE` pairs, files of `NAME=VALUE` lines (blank lines and `#`
    /// comments skipped, an optional `export ` prefix allowed), and the process switch. A
    /// malformed entry is named by file and line; its value is never echoed.
    pub fn from_flags(env: &[String], env_files: &[String], from_process: bool) -> Result<Self, CliError> {
        let mut vars = BTreeMap::new();
        for f in env_files {
            let text = std::fs::read_to_string(f)
                .map_err(|e| CliError::Usage(format!("--env-file {f}: cannot read: {e}")))?;
            for (i, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let line = line.strip_prefix("export ").unwrap_or(line);
                let (k, v) = pair(line).ok_or_else(|| {
                    CliError::Usage(format!("--env-file {f}: line {}: expected NAME=VALUE", i + 1))
                })?;
                vars.insert(k, v);
            }
        }
        for e in env {
            let (k, v) = pair(e).ok_or_else(|| {
                let name = e.split('=').next().unwrap_or_default();
                CliError::Usage(format!("--env {name}: expected NAME=VALUE"))
            })?;
            vars.insert(k, v);
        }
        Ok(Self { vars, from_process })
    }
}

fn pair(s: &str) -> Option<(String, String)> {
    let (k, v) = s.split_once('=')?;
    let k = k.trim();
    (!k.is_empty()).then(|| (k.to_owned(), v.to_owned()))
}

/// The variables the ScaledObject's `…FromEnv` parameters and `env` authentication entries
/// naming `container` (`None`: the default one) may read; an error says why the workload
/// container's environment cannot be computed (the other sources are still there).
fn environment(
    m: &Manifests,
    so: &Loaded,
    opts: &EnvOptions,
    container: Option<&str>,
) -> (BTreeMap<String, String>, Option<String>) {
    let mut env: BTreeMap<String, String> =
        if opts.from_process { std::env::vars().collect() } else { BTreeMap::new() };
    let mut problem = None;
    match m.target_env(&so.object, container) {
        Ok(found) => env.extend(found.unwrap_or_default()),
        Err(e) => problem = Some(format!("{}: spec.scaleTargetRef: {e}", so.source)),
    }
    env.extend(opts.vars.clone());
    (env, problem)
}

/// Authentication sources with the environment of each container `env` entries name.
struct Sources<'a> {
    manifests: ManifestSources<'a>,
    containers: BTreeMap<String, BTreeMap<String, String>>,
}

impl AuthSources for Sources<'_> {
    fn secret(&self, name: &str, key: &str) -> Lookup {
        self.manifests.secret(name, key)
    }
    fn config_map(&self, name: &str, key: &str) -> Lookup {
        self.manifests.config_map(name, key)
    }
    fn env(&self, name: &str, container: Option<&str>) -> Option<String> {
        match container.and_then(|c| self.containers.get(c)) {
            Some(env) => env.get(name).cloned(),
            None => self.manifests.env(name, None),
        }
    }
}

/// Parses one ScaledObject with everything the manifests and the given environment provide.
pub fn prepare(m: &Manifests, so: &Loaded, opts: &EnvOptions) -> Result<ParsedScaledObject, CliError> {
    let obj = &so.object;
    let mut errors = Vec::new();
    let (env, problem) = environment(m, so, opts, None);
    let from_env = obj.spec.triggers.iter().any(|t| t.metadata.keys().any(|k| k.ends_with("FromEnv")));
    let mut default_problem = problem;
    if from_env && let Some(p) = default_problem.take() {
        errors.push(p);
    }
    let mut sources = Sources {
        manifests: ManifestSources { manifests: m, namespace: obj.metadata.namespace.as_deref(), env: &env },
        containers: BTreeMap::new(),
    };
    let mut ctx = ParseContext { env: env.clone(), ..ParseContext::default() };
    for (i, t) in obj.spec.triggers.iter().enumerate() {
        let Some(r) = &t.authentication_ref else { continue };
        let spec = match r.kind() {
            "ClusterTriggerAuthentication" => m
                .cluster_trigger_auths
                .iter()
                .find(|a| a.metadata.name.as_deref() == Some(&r.name))
                .map(|a| &a.spec.auth)
                .ok_or_else(|| format!("{} {:?} not found", r.kind(), r.name)),
            _ => m.trigger_auth(obj.metadata.namespace.as_deref(), &r.name),
        };
        let spec = match spec {
            Ok(spec) => spec,
            Err(e) => {
                errors.push(format!(
                    "{}: spec.triggers[{i}].authenticationRef: {e}; pass its manifest with another -f",
                    so.source
                ));
                continue;
            }
        };
        if let Some(pi) = &spec.pod_identity {
            ctx.pod_identity.insert(i, pi.clone());
        }
        for e in &spec.env {
            match e.container_name.as_deref().filter(|c| !c.is_empty()) {
                Some(c) if !sources.containers.contains_key(c) => {
                    let (env, problem) = environment(m, so, opts, Some(c));
                    errors.extend(problem);
                    sources.containers.insert(c.to_owned(), env);
                }
                Some(_) => {}
                None => errors.extend(default_problem.take()),
            }
        }
        match resolve(spec, &sources) {
            Ok(params) => {
                ctx.auth.insert(i, params);
            }
            Err(e) => {
                let hint = if matches!(e, AuthError::MissingEnv { .. }) && !opts.from_process {
                    format!("; {ENV_HINT}")
                } else {
                    String::new()
                };
                errors.push(format!(
                    "{}: spec.triggers[{i}].authenticationRef ({}): {e}{hint}",
                    so.source, r.name
                ))
            }
        }
    }
    if let Some(e) = ScalingAnnotations::read(obj.metadata.annotations.as_ref()).error() {
        errors.push(format!("{}: metadata.annotations: {e}", so.source));
    }
    if !errors.is_empty() {
        return Err(CliError::Invalid(errors));
    }
    parse_scaled_object(obj, &ctx).map_err(|es| {
        CliError::Invalid(
            es.iter()
                .map(|e| {
                    let from_env = matches!(&e.location, Location::Trigger { parameter: Some(p), .. } if p.ends_with("FromEnv"));
                    if from_env && e.kind == ParseErrorKind::MissingParameter && !opts.from_process {
                        format!("{}: {e}; {ENV_HINT}", so.source)
                    } else {
                        format!("{}: {e}", so.source)
                    }
                })
                .collect(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_flags_parse_and_never_echo_values() {
        let dir = std::env::temp_dir().join(format!("ebb-prepare-env-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("vars.env");
        std::fs::write(&file, "# c\n\nexport A=1\nB=from-file\n").unwrap();
        let f = file.to_str().unwrap().to_owned();
        let o = EnvOptions::from_flags(&["B=flag=x".into()], std::slice::from_ref(&f), false).unwrap();
        assert_eq!(o.vars, BTreeMap::from([("A".into(), "1".into()), ("B".into(), "flag=x".into())]));
        assert!(!o.from_process);
        std::fs::write(&file, "A=1\nsecret-without-equals\n").unwrap();
        let e = EnvOptions::from_flags(&[], &[f], false).unwrap_err().to_string();
        assert!(e.ends_with("line 2: expected NAME=VALUE") && !e.contains("secret"), "{e}");
        let e = EnvOptions::from_flags(&["=v".into()], &[], false).unwrap_err().to_string();
        assert!(e.contains("expected NAME=VALUE"), "{e}");
    }
}
