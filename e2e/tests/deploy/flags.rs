//! The rendered Deployments against the binaries' own flag definitions (clap): every flag,
//! flag value and environment variable must be one the program accepts; every listening
//! address must be a declared container port and every declared port a listening address;
//! probes must ask the admin port for /livez or /readyz; every file a flag names (defaults
//! included) must come from a mounted volume, and from the certificate Secret only under the
//! keys it has. A program URL flag (the metrics API server's operator URL) must name a rendered
//! Service port that reaches the operator's internal port.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use clap::CommandFactory as _;
use serde_json::{Value, json};

use super::{Rendered, all_renderings, kn, render_overlay, selects_at_run_time};

/// Paths the admin server (plumbing) serves on every program.
pub const ADMIN_PATHS: [&str; 3] = ["/livez", "/readyz", "/metrics"];

/// Keys of the certificate Secret (cert-manager's and generate-certs.sh's).
const CERT_KEYS: [&str; 3] = ["tls.crt", "tls.key", "ca.crt"];

/// The clap definition of the program a container runs, by binary name.
fn command(binary: &str) -> Option<clap::Command> {
    match binary {
        "ebb-operator" => Some(ebb_operator::Args::command()),
        "ebb-webhook" => Some(ebb_webhook::Args::command()),
        "ebb-metrics-apiserver" => Some(ebb_metrics_apiserver::Args::command()),
        _ => None,
    }
}

/// Everything wrong with the first container of Deployment `dep` in rendering `r`.
pub fn problems(r: &Rendered, dep: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let pod = &dep["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    let at = format!("{} container {}", kn(dep), c["name"].as_str().unwrap_or("?"));
    let binary = c["command"][0].as_str().unwrap_or("").rsplit('/').next().unwrap_or("").to_owned();
    let Some(cmd) = command(&binary) else {
        return vec![format!("{at}: runs {binary:?}, which is not an ebb program")];
    };
    let flags: BTreeMap<String, &clap::Arg> =
        cmd.get_arguments().filter_map(|a| Some((a.get_long()?.to_owned(), a))).collect();
    let envs: BTreeMap<String, String> = cmd
        .get_arguments()
        .filter_map(|a| Some((a.get_env()?.to_str()?.to_owned(), a.get_long()?.to_owned())))
        .collect();

    // Flags and literal env values, parsed as the program parses them.
    let mut argv = vec![binary.clone()];
    for a in c["args"].as_array().into_iter().flatten() {
        let a = a.as_str().unwrap_or("");
        let name = a.strip_prefix("--").map(|f| f.split('=').next().unwrap_or(f));
        match name {
            Some(n) if flags.contains_key(n) => argv.push(a.to_owned()),
            Some(n) => out.push(format!("{at}: flag --{n} is not a flag of {binary}")),
            None => out.push(format!("{at}: argument {a:?} is not a --flag")),
        }
    }
    for e in c["env"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().unwrap_or("");
        match envs.get(name) {
            None => out.push(format!("{at}: env {name} is read by no flag of {binary}")),
            Some(long) => {
                if let Some(v) = e["value"].as_str() {
                    argv.push(format!("--{long}={v}"));
                }
            }
        }
    }
    let matches = match cmd.clone().try_get_matches_from(&argv) {
        Ok(m) => m,
        Err(e) => {
            out.push(format!(
                "{at}: {binary} rejects {argv:?}: {}",
                e.to_string().lines().next().unwrap_or("")
            ));
            return out;
        }
    };
    let value = |long: &str| -> Option<String> {
        let id = flags.get(long)?.get_id().as_str();
        matches.get_raw(id)?.next().map(|v| v.to_string_lossy().into_owned())
    };

    // Listening addresses ⇔ container ports.
    let ports: Vec<(String, i64)> = c["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| (p["name"].as_str().unwrap_or("").to_owned(), p["containerPort"].as_i64().unwrap_or(0)))
        .collect();
    let mut listening = BTreeMap::new();
    for long in flags.keys().filter(|l| l.ends_with("-addr")) {
        if let Some(v) = value(long) {
            match v.parse::<SocketAddr>() {
                Ok(addr) => {
                    listening.insert(i64::from(addr.port()), long.clone());
                }
                Err(_) => out.push(format!("{at}: --{long}={v} is not an address")),
            }
        }
    }
    for (port, long) in &listening {
        if !ports.iter().any(|(_, p)| p == port) {
            out.push(format!("{at}: listens on {port} (--{long}) but declares no such container port"));
        }
    }
    for (name, port) in &ports {
        if !listening.contains_key(port) {
            out.push(format!("{at}: container port {name} ({port}) is no address {binary} listens on"));
        }
    }

    // Probes: the admin port, a path the admin server has.
    let admin_port =
        value("admin-addr").and_then(|v| v.parse::<SocketAddr>().ok()).map(|a| i64::from(a.port()));
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        let get = &c[probe]["httpGet"];
        if get.is_null() {
            continue;
        }
        let path = get["path"].as_str().unwrap_or("");
        if !ADMIN_PATHS.contains(&path) {
            out.push(format!("{at}: {probe} asks for {path}, which the admin server does not serve"));
        }
        let port = match &get["port"] {
            Value::String(n) => ports.iter().find(|(name, _)| name == n).map(|(_, p)| *p),
            Value::Number(n) => n.as_i64(),
            _ => None,
        };
        if port.is_none() || port != admin_port {
            out.push(format!("{at}: {probe} port {} is not the admin port", get["port"]));
        }
    }

    // Files named by flags come from mounted volumes.
    let mounts: Vec<(String, String)> = c["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (m["mountPath"].as_str().unwrap_or("").to_owned(), m["name"].as_str().unwrap_or("").to_owned())
        })
        .collect();
    for long in flags.keys().filter(|l| l.ends_with("-file")) {
        let Some(path) = value(long) else { continue };
        let Some((dir, volume)) = mounts
            .iter()
            .find(|(dir, _)| path.strip_prefix(dir.as_str()).is_some_and(|rest| rest.starts_with('/')))
        else {
            out.push(format!("{at}: --{long}={path} is in no mounted volume"));
            continue;
        };
        let vol = pod["volumes"].as_array().into_iter().flatten().find(|v| v["name"] == volume.as_str());
        if let Some(secret) = vol.and_then(|v| v["secret"]["secretName"].as_str())
            && super::manifests::CERTIFICATE_SECRETS.iter().any(|c| c.0 == secret)
        {
            let key = &path[dir.len() + 1..];
            if !CERT_KEYS.contains(&key) {
                out.push(format!("{at}: --{long}={path}: Secret {secret} has no key {key}"));
            }
        }
    }

    // URLs of other ebb programs resolve to a rendered Service reaching the right port.
    if let Some(url) = flags.contains_key("operator-url").then(|| value("operator-url")).flatten() {
        out.extend(check_operator_url(r, &at, &url));
    }
    out
}

/// `url` (https://<service>.<namespace>.svc:<port>) reaches the operator's internal port.
fn check_operator_url(r: &Rendered, at: &str, url: &str) -> Vec<String> {
    let rest = url.strip_prefix("https://").unwrap_or("");
    let (host, port) = rest.trim_end_matches('/').rsplit_once(':').unwrap_or((rest, "443"));
    let mut parts = host.split('.');
    let (svc, ns) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let Some(service) =
        r.of_kind("Service").find(|s| s["metadata"]["name"] == svc && s["metadata"]["namespace"] == ns)
    else {
        return vec![format!("{at}: operator URL {url} names no rendered Service")];
    };
    let sp = service["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["port"].as_i64() == port.parse::<i64>().ok());
    let operator = r.get("Deployment", "ebb-operator");
    let ok = sp.zip(operator).is_some_and(|(sp, op)| {
        selects_at_run_time(&service["spec"]["selector"], &op["spec"]["template"]["metadata"]["labels"])
            && op["spec"]["template"]["spec"]["containers"][0]["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p["name"] == sp["targetPort"] && p["name"] == "internal")
    });
    if ok {
        Vec::new()
    } else {
        vec![format!("{at}: operator URL {url} does not reach the operator's internal port")]
    }
}

#[test]
fn deployments_name_only_what_the_binaries_have() {
    for r in all_renderings() {
        let mut seen = 0;
        for dep in r.of_kind("Deployment") {
            let p = problems(&r, dep);
            assert!(p.is_empty(), "{}:\n{}", r.name, p.join("\n"));
            seen += 1;
        }
        assert_eq!(seen, 3, "{}", r.name);
    }
}

#[test]
fn every_kind_of_mismatch_is_found() {
    let r = render_overlay("default");
    let dep = |name: &str| r.get("Deployment", name).unwrap().clone();
    type Edit = fn(&mut Value);
    let cases: [(&str, &str, Edit); 9] = [
        ("ebb-operator", "flag --no-such-flag is not a flag of ebb-operator", |c| {
            c["args"].as_array_mut().unwrap().push(json!("--no-such-flag=1"));
        }),
        ("ebb-operator", "env EBB_NOT_A_SETTING is read by no flag", |c| {
            c["env"].as_array_mut().unwrap().push(json!({"name": "EBB_NOT_A_SETTING", "value": "1"}));
        }),
        ("ebb-operator", "ebb-operator rejects", |c| {
            c["args"].as_array_mut().unwrap().push(json!("--scaler-timeout=soon"));
        }),
        ("ebb-operator", "ebb-operator rejects", |c| {
            c["env"].as_array_mut().unwrap().push(json!({"name": "EBB_LEADER_ELECT", "value": "maybe"}));
        }),
        ("ebb-webhook", "readinessProbe asks for /healthz", |c| {
            c["readinessProbe"]["httpGet"]["path"] = json!("/healthz");
        }),
        ("ebb-webhook", "livenessProbe port \"https\" is not the admin port", |c| {
            c["livenessProbe"]["httpGet"]["port"] = json!("https");
        }),
        (
            "ebb-metrics-apiserver",
            "listens on 6443 (--secure-addr) but declares no such container port",
            |c| {
                c["ports"][1]["containerPort"] = json!(7443);
            },
        ),
        ("ebb-webhook", "--tls-cert-file=/etc/tls/tls.crt is in no mounted volume", |c| {
            let args = c["args"].as_array_mut().unwrap();
            args.retain(|a| !a.as_str().unwrap().starts_with("--tls-cert-file"));
            args.push(json!("--tls-cert-file=/etc/tls/tls.crt"));
        }),
        ("ebb-operator", "Secret ebb-operator-tls has no key client-ca.pem", |c| {
            let args = c["args"].as_array_mut().unwrap();
            args.retain(|a| !a.as_str().unwrap().starts_with("--internal-client-ca-file"));
            args.push(json!("--internal-client-ca-file=/certs/client-ca.pem"));
        }),
    ];
    for (name, want, edit) in cases {
        let mut d = dep(name);
        edit(&mut d["spec"]["template"]["spec"]["containers"][0]);
        let p = problems(&r, &d);
        assert!(
            p.iter().any(|m| m.contains(want)),
            "{name}: expected a problem containing {want:?}, got {p:#?}"
        );
    }
    let mut stray = dep("ebb-operator");
    stray["spec"]["template"]["spec"]["containers"][0]["command"] = json!(["/usr/local/bin/ebb-scaler"]);
    assert!(problems(&r, &stray)[0].contains("not an ebb program"));
}
