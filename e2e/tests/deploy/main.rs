//! The installation manifests under deploy/ against the programs they run and the control plane
//! they go to:
//!
//! - [`manifests`]: every overlay (and one combining every component) renders with
//!   `kubectl kustomize`, passes `kubernetes-validate --strict` for Kubernetes 1.30 and 1.33, and
//!   holds together (security settings, Services and policies naming real container ports,
//!   RBAC naming real accounts and roles, cert-manager and ServiceMonitor references).
//! - [`flags`]: the Deployments' flags, environment variables, ports, probe paths and mounted
//!   files are ones the binaries have (read from their clap definitions).
//! - [`dashboard`]: every metric deploy/grafana/ebb-dashboard.json queries is exported by a
//!   running operator or webhook (or is a kube-state-metrics series).
//! - [`cluster`]: the default overlay applies to the local control plane with kubectl and
//!   answers the post-install checks; certificates from deploy/scripts/generate-certs.sh carry a
//!   real admission through the API server to an in-process webhook.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cluster;
mod dashboard;
mod flags;
mod manifests;
mod sharded;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

/// deploy/ in the repository.
pub fn deploy() -> PathBuf {
    repo().join("deploy")
}

/// The overlays shipped under deploy/overlays.
pub const OVERLAYS: [&str; 4] = ["default", "cert-manager", "high-availability", "sharded"];

/// The components shipped under deploy/components.
pub const COMPONENTS: [&str; 6] = [
    "cert-manager",
    "high-availability",
    "sharded",
    "service-monitor",
    "secrets-in-operator-namespace",
    "self-managed-certificates",
];

/// Runs `program` with `args` (and `stdin`, if any): (success, stdout, stderr).
pub fn run(
    program: &str,
    args: &[&str],
    stdin: Option<&str>,
    env: &[(&str, &Path)],
) -> (bool, String, String) {
    let mut cmd = Command::new(program);
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `kubectl kustomize dir` as YAML text.
pub fn kustomize(dir: &Path) -> String {
    let (ok, out, err) = run("kubectl", &["kustomize", dir.to_str().unwrap()], None, &[]);
    assert!(ok, "kubectl kustomize {} failed: {err}", dir.display());
    out
}

/// The documents of a YAML stream (separated by `---` lines), empty ones skipped.
pub fn documents(yaml: &str) -> Vec<Value> {
    let mut docs = vec![String::new()];
    for line in yaml.lines() {
        if line.trim_end() == "---" {
            docs.push(String::new());
        } else if let Some(last) = docs.last_mut() {
            last.push_str(line);
            last.push('\n');
        }
    }
    docs.iter()
        .map(|d| {
            serde_yaml::from_str::<Value>(d).unwrap_or_else(|e| panic!("invalid YAML document: {e}\n{d}"))
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// A rendered installation: its name (for messages) and its objects.
#[derive(Debug)]
pub struct Rendered {
    pub name: String,
    pub yaml: String,
    pub objects: Vec<Value>,
}

impl Rendered {
    /// Objects of `kind`.
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects.iter().filter(move |o| o["kind"] == kind)
    }

    /// The object of `kind` named `name`.
    pub fn get(&self, kind: &str, name: &str) -> Option<&Value> {
        self.objects.iter().find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
    }
}

/// Renders overlay `name`.
pub fn render_overlay(name: &str) -> Rendered {
    let yaml = kustomize(&deploy().join("overlays").join(name));
    Rendered { name: name.to_owned(), objects: documents(&yaml), yaml }
}

/// Renders the base with every component but `self-managed-certificates`, from a kustomization in
/// a temporary directory (kustomize accepts only relative paths to other kustomizations).
pub fn render_everything() -> Rendered {
    let dir = temp_dir("everything");
    let up = "../".repeat(dir.components().count() - 1);
    let rel = |p: &str| format!("{up}{}", deploy().join(p).strip_prefix("/").unwrap().display());
    let components: Vec<String> = COMPONENTS
        .iter()
        // The alternative to cert-manager: one of the two manages the certificates.
        .filter(|c| **c != "self-managed-certificates")
        .map(|c| rel(&format!("components/{c}")))
        .collect();
    let text = format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- {}\ncomponents:\n{}\n",
        rel("base"),
        components.iter().map(|c| format!("- {c}")).collect::<Vec<_>>().join("\n")
    );
    std::fs::write(dir.join("kustomization.yaml"), text).unwrap();
    let yaml = kustomize(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    Rendered {
        name: "base + every component but self-managed-certificates".into(),
        objects: documents(&yaml),
        yaml,
    }
}

/// Every shipped overlay, and the combination of every component.
pub fn all_renderings() -> Vec<Rendered> {
    let mut all: Vec<Rendered> = OVERLAYS.iter().map(|o| render_overlay(o)).collect();
    all.push(render_everything());
    all
}

/// A fresh directory under the system temp dir, unique to this process and `tag`.
pub fn temp_dir(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ebb-e2e-deploy-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.canonicalize().unwrap()
}

/// `kind/name` of an object, for messages.
pub fn kn(o: &Value) -> String {
    format!("{}/{}", o["kind"].as_str().unwrap_or("?"), o["metadata"]["name"].as_str().unwrap_or("?"))
}

/// Whether every `matchLabels` entry of `selector` is among `labels`.
pub fn selects(selector: &Value, labels: &Value) -> bool {
    selector.as_object().is_some_and(|m| !m.is_empty() && m.iter().all(|(k, v)| labels.get(k) == Some(v)))
}

/// Labels a program sets on its own Pod at run time, which no Pod template carries: the leading
/// operator replica's leader label.
pub const RUN_TIME_LABELS: [(&str, &str); 1] =
    [(ebb_operator::leader::podlabel::LEADER_LABEL, ebb_operator::leader::podlabel::LEADER_VALUE)];

/// Whether `selector` selects Pods of a template labelled `labels` once they carry the
/// [`RUN_TIME_LABELS`] (as Service ebb-operator selects the leading operator's Pod).
pub fn selects_at_run_time(selector: &Value, labels: &Value) -> bool {
    let mut labels = labels.clone();
    if let Some(map) = labels.as_object_mut() {
        for (k, v) in RUN_TIME_LABELS {
            map.insert(k.to_owned(), Value::from(v));
        }
    }
    selects(selector, &labels)
}
