//! How one Pod of an ebb Deployment becomes a local process: which program, with which
//! arguments and environment — `$(VAR)` references expanded, downward-API and Secret/ConfigMap
//! environment resolved, listening addresses on container ports moved to free loopback ports,
//! files under volume mounts moved to the Pod's local volume directories — which volumes to
//! project, and where its readiness probe and Services reach it; the operator may reach metric
//! backends on loopback (its egress policy refuses loopback by default). Pure: the caller
//! supplies the object lookups and the port allocator.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ebb_scalers::env::expand;
use serde_json::Value;

/// The programs the sandbox runs (a container whose command is one of these, by file name).
pub const PROGRAMS: [&str; 3] = ["ebb-operator", "ebb-metrics-apiserver", "ebb-webhook"];

/// Where a volume's files come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A Secret's data (base64-decoded); `items` maps keys to paths (all keys when empty).
    Secret { name: String, items: Vec<(String, String)>, optional: bool },
    /// A ConfigMap's data.
    ConfigMap { name: String, items: Vec<(String, String)>, optional: bool },
    /// An empty directory.
    EmptyDir,
}

/// A volume of the Pod and its local directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub name: String,
    pub source: Source,
    pub dir: PathBuf,
}

/// The Service a program connects to by its cluster DNS name, which the sandbox cannot
/// resolve: the program is told to connect to a local forwarder instead through `env`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceLink {
    pub namespace: String,
    pub service: String,
    pub port: u16,
    pub env: &'static str,
}

/// Everything needed to start the Pod's process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Container port → local address.
    pub ports: BTreeMap<i64, SocketAddr>,
    /// Port name → container port.
    pub port_names: BTreeMap<String, i64>,
    pub volumes: Vec<Volume>,
    /// Readiness probe: path and local address.
    pub readiness: Option<(String, SocketAddr)>,
    pub link: Option<ServiceLink>,
}

/// What the Pod's environment refers to in other objects.
pub trait Lookup {
    /// `key` of Secret `name` (decoded), or of ConfigMap `name` when `secret` is false.
    fn value(&self, secret: bool, name: &str, key: &str) -> Option<String>;
}

/// The Pod in whose name the process runs.
#[derive(Debug, Clone)]
pub struct PodRef<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub service_account: &'a str,
}

fn s<'a>(v: &'a Value, p: &str) -> Option<&'a str> {
    v.pointer(p).and_then(Value::as_str)
}

/// The first container of `spec` (a Pod spec) running one of [`PROGRAMS`], and that program.
pub fn program(spec: &Value) -> Option<(&Value, &'static str)> {
    spec.get("containers")?.as_array()?.iter().find_map(|c| {
        let cmd = c.pointer("/command/0").and_then(Value::as_str)?;
        let file = Path::new(cmd).file_name()?.to_str()?;
        PROGRAMS.iter().find(|p| **p == file).map(|p| (c, *p))
    })
}

/// Plans the process of a Pod with spec `spec`, its files under `dir`.
pub fn plan(
    spec: &Value,
    pod: &PodRef<'_>,
    dir: &Path,
    lookup: &dyn Lookup,
    alloc: &mut dyn FnMut() -> Result<SocketAddr, String>,
) -> Result<Launch, String> {
    let (container, program) = program(spec).ok_or("no container runs an ebb program")?;
    let cname = s(container, "/name").unwrap_or("?");
    let volumes = volumes(spec, dir)?;
    let mut mounts: Vec<(String, PathBuf)> = Vec::new();
    for m in container.get("volumeMounts").and_then(Value::as_array).into_iter().flatten() {
        let (Some(name), Some(path)) = (s(m, "/name"), s(m, "/mountPath")) else {
            return Err(format!("container {cname}: a volumeMount needs name and mountPath"));
        };
        let vol = volumes.iter().find(|v| v.name == name).ok_or_else(|| {
            format!(
                "container {cname}: volumeMount {path} names volume {name:?}, which the Pod does not have"
            )
        })?;
        if m.get("subPath").is_some() {
            return Err(format!(
                "container {cname}: volumeMount {path}: subPath is not supported by the sandbox"
            ));
        }
        mounts.push((path.trim_end_matches('/').to_owned(), vol.dir.clone()));
    }
    // Longest mount path first, so /a/b wins over /a.
    mounts.sort_by_key(|m| std::cmp::Reverse(m.0.len()));
    let mut ports = BTreeMap::new();
    let mut port_names = BTreeMap::new();
    for p in container.get("ports").and_then(Value::as_array).into_iter().flatten() {
        let n = p
            .get("containerPort")
            .and_then(Value::as_i64)
            .ok_or_else(|| format!("container {cname}: a port has no containerPort"))?;
        ports.insert(n, alloc()?);
        if let Some(name) = s(p, "/name") {
            port_names.insert(name.to_owned(), n);
        }
    }
    let rewrite = |v: &str| rewrite_value(v, &mounts, &ports);
    let env = environment(container, pod, lookup)?;
    let vars: BTreeMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let args: Vec<String> = container
        .get("args")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|a| rewrite_arg(&expand(a, &vars), &rewrite))
        .collect();
    let mut env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.clone(), rewrite(v))).collect();
    if program == "ebb-operator" {
        allow_loopback_egress(&args, &mut env);
    }
    let mut bound: Vec<i64> = Vec::new();
    for v in args.iter().map(String::as_str).chain(env.iter().map(|(_, v)| v.as_str())) {
        let v = v.split_once('=').map_or(v, |(_, r)| r);
        if let Some(a) = ports.iter().find(|(_, a)| a.to_string() == v) {
            bound.push(*a.0);
        }
    }
    if let Some((port, _)) = ports.iter().find(|(p, _)| !bound.contains(p)) {
        return Err(format!(
            "container {cname}: containerPort {port} is not set by any argument or environment variable \
             (such as --flag=0.0.0.0:{port}), so the sandbox cannot move it to a local port"
        ));
    }
    let readiness = match container.pointer("/readinessProbe/httpGet") {
        Some(get) => {
            let port = match get.get("port") {
                Some(Value::Number(n)) => n.as_i64(),
                Some(Value::String(name)) => port_names.get(name).copied(),
                _ => None,
            };
            let addr = port.and_then(|p| ports.get(&p)).ok_or_else(|| {
                format!("container {cname}: the readiness probe's port is not a container port")
            })?;
            Some((s(get, "/path").unwrap_or("/").to_owned(), *addr))
        }
        None => None,
    };
    let link = link(program, &args, &env);
    Ok(Launch { program: program.to_owned(), args, env, ports, port_names, volumes, readiness, link })
}

fn items(v: &Value) -> Vec<(String, String)> {
    v.get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| Some((s(i, "/key")?.to_owned(), s(i, "/path")?.to_owned())))
        .collect()
}

fn volumes(spec: &Value, dir: &Path) -> Result<Vec<Volume>, String> {
    let mut out = Vec::new();
    for v in spec.get("volumes").and_then(Value::as_array).into_iter().flatten() {
        let name = s(v, "/name").ok_or("a volume has no name")?.to_owned();
        let optional = |src: &Value| src.get("optional").and_then(Value::as_bool).unwrap_or(false);
        let source = if let Some(sec) = v.get("secret") {
            let secret =
                s(sec, "/secretName").ok_or_else(|| format!("volume {name}: secretName is required"))?;
            Source::Secret { name: secret.to_owned(), items: items(sec), optional: optional(sec) }
        } else if let Some(cm) = v.get("configMap") {
            let map = s(cm, "/name").ok_or_else(|| format!("volume {name}: configMap.name is required"))?;
            Source::ConfigMap { name: map.to_owned(), items: items(cm), optional: optional(cm) }
        } else if v.get("emptyDir").is_some() {
            Source::EmptyDir
        } else {
            return Err(format!(
                "volume {name}: only secret, configMap and emptyDir volumes run in the sandbox"
            ));
        };
        out.push(Volume { dir: dir.join("volumes").join(&name), name, source });
    }
    Ok(out)
}

/// The container's environment in order, values resolved (not yet rewritten).
fn environment(
    container: &Value,
    pod: &PodRef<'_>,
    lookup: &dyn Lookup,
) -> Result<Vec<(String, String)>, String> {
    let mut env: Vec<(String, String)> = Vec::new();
    for e in container.get("env").and_then(Value::as_array).into_iter().flatten() {
        let name = s(e, "/name").ok_or("an env entry has no name")?.to_owned();
        let value = if let Some(v) = s(e, "/value") {
            let vars: BTreeMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            expand(v, &vars)
        } else if let Some(path) = s(e, "/valueFrom/fieldRef/fieldPath") {
            match path {
                "metadata.name" => pod.name.to_owned(),
                "metadata.namespace" => pod.namespace.to_owned(),
                "spec.serviceAccountName" => pod.service_account.to_owned(),
                "spec.nodeName" => "sandbox".to_owned(),
                "status.podIP" | "status.hostIP" => "127.0.0.1".to_owned(),
                other => return Err(format!("env {name}: fieldRef {other} is not supported by the sandbox")),
            }
        } else if let Some(r) =
            e.pointer("/valueFrom/secretKeyRef").or(e.pointer("/valueFrom/configMapKeyRef"))
        {
            let secret = e.pointer("/valueFrom/secretKeyRef").is_some();
            let (obj, key) = (s(r, "/name").unwrap_or_default(), s(r, "/key").unwrap_or_default());
            match lookup.value(secret, obj, key) {
                Some(v) => v,
                None if r.get("optional").and_then(Value::as_bool) == Some(true) => continue,
                None => {
                    let kind = if secret { "Secret" } else { "ConfigMap" };
                    return Err(format!(
                        "env {name}: waiting for key {key:?} of {kind} {}/{obj}",
                        pod.namespace
                    ));
                }
            }
        } else {
            String::new()
        };
        env.retain(|(k, _)| *k != name);
        env.push((name, value));
    }
    Ok(env)
}

fn rewrite_arg(arg: &str, rewrite: &dyn Fn(&str) -> String) -> String {
    match arg.split_once('=') {
        Some((flag, value)) if flag.starts_with('-') => format!("{flag}={}", rewrite(value)),
        _ => rewrite(arg),
    }
}

/// A path under a mount moves to the volume's directory; an address `[host]:port` on a
/// wildcard or loopback host whose port is a container port moves to its local address.
pub fn rewrite_value(v: &str, mounts: &[(String, PathBuf)], ports: &BTreeMap<i64, SocketAddr>) -> String {
    for (mount, dir) in mounts {
        if let Some(rest) = v.strip_prefix(mount.as_str())
            && (rest.is_empty() || rest.starts_with('/'))
        {
            return format!("{}{rest}", dir.display());
        }
    }
    if let Some((host, port)) = v.rsplit_once(':')
        && matches!(host, "" | "0.0.0.0" | "[::]" | "127.0.0.1" | "localhost")
        && let Ok(port) = port.parse::<i64>()
        && let Some(addr) = ports.get(&port)
    {
        return addr.to_string();
    }
    v.to_owned()
}

/// Metric backends next to the sandbox listen on loopback, which the operator's egress policy
/// refuses by default: unless the manifest sets the allow list itself, the operator may reach
/// loopback (the control plane's own port stays refused as the API server's).
fn allow_loopback_egress(args: &[String], env: &mut Vec<(String, String)>) {
    const VAR: &str = "EBB_EGRESS_ALLOW_CIDRS";
    let set = args.iter().any(|a| a.starts_with("--egress-allow-cidrs")) || env.iter().any(|(k, _)| k == VAR);
    if !set {
        env.push((VAR.to_owned(), "127.0.0.0/8,::1".to_owned()));
    }
}

/// The metrics API server reaches the operator by its Service's DNS name (`--operator-url`,
/// default `https://ebb-operator.keda.svc:9666`); in the sandbox it connects to the
/// Service's local forwarder instead (`EBB_OPERATOR_CONNECT_TO`), still verifying the name.
fn link(program: &str, args: &[String], env: &[(String, String)]) -> Option<ServiceLink> {
    if program != "ebb-metrics-apiserver" {
        return None;
    }
    let from_args = args.iter().enumerate().rev().find_map(|(i, a)| {
        if a == "--operator-url" {
            args.get(i + 1).cloned()
        } else {
            a.strip_prefix("--operator-url=").map(str::to_owned)
        }
    });
    let url = from_args
        .or_else(|| env.iter().find(|(k, _)| k == "EBB_OPERATOR_URL").map(|(_, v)| v.clone()))
        .unwrap_or_else(|| "https://ebb-operator.keda.svc:9666".to_owned());
    let rest = url.strip_prefix("https://")?;
    let authority = rest.split('/').next()?;
    let (host, port) = authority.rsplit_once(':').map_or((authority, "443"), |(h, p)| (h, p));
    let port: u16 = port.parse().ok()?;
    let mut labels = host.split('.');
    let (service, namespace) = (labels.next()?, labels.next()?);
    let tail: Vec<&str> = labels.collect();
    // `service.namespace.svc[.cluster-domain]`: the forms that name a Service unambiguously.
    let cluster = tail.first() == Some(&"svc");
    cluster.then(|| ServiceLink {
        namespace: namespace.to_owned(),
        service: service.to_owned(),
        port,
        env: "EBB_OPERATOR_CONNECT_TO",
    })
}

#[cfg(test)]
#[path = "launch_tests.rs"]
mod tests;
