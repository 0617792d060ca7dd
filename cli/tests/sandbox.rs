//! `ebb sandbox` end to end, as a user runs it: the stack comes up from `deploy/` — applied by
//! kubectl from `deploy/overlays/default`, or installed by the sandbox from the rendered copy —
//! with the operator issuing the certificates, and answers seed 003's post-install checks.
//! The programs must be built next to `ebb` (the workspace test command builds them).

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

/// A running `ebb sandbox` and its output lines.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    dir: PathBuf,
    kubeconfig: PathBuf,
    /// kubectl from PATH, or the pinned one for upstream Kubernetes.
    kubectl: PathBuf,
}

impl Running {
    fn start(tag: &str, extra: &[&str]) -> Self {
        let bin = Path::new(env!("CARGO_BIN_EXE_ebb")).parent().unwrap().to_path_buf();
        for p in ["ebb-operator", "ebb-webhook", "ebb-metrics-apiserver"] {
            assert!(bin.join(p).exists(), "{p} is not built in {} (cargo build --workspace)", bin.display());
        }
        let dir = std::env::temp_dir().join(format!("ebb-sandbox-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let kubeconfig = dir.join("kubeconfig");
        let mut args = vec!["sandbox", "--port", "0", "--kubeconfig", kubeconfig.to_str().unwrap()];
        args.extend_from_slice(extra);
        let mut child = Command::new(env!("CARGO_BIN_EXE_ebb"))
            .args(&args)
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                println!("sandbox: {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let kubectl = if extra.contains(&"--upstream") {
            ebb_testbackends::kubernetes::binary("kubectl").unwrap()
        } else {
            PathBuf::from("kubectl")
        };
        Self { child, lines, seen: Vec::new(), dir, kubeconfig, kubectl }
    }

    /// Waits for an output line satisfying `f`.
    fn wait_line(&mut self, within: Duration, f: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + within;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if f(&line) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("no such line within {within:?}; output: {:#?}", self.seen);
    }

    fn kubectl(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(&self.kubectl)
            .env("KUBECONFIG", &self.kubeconfig)
            .args(args)
            .current_dir(root())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Polls `kubectl args` until `f` accepts its stdout.
    fn until(&self, within: Duration, args: &[&str], f: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + within;
        loop {
            let (ok, out, err) = self.kubectl(args);
            if ok && f(&out) {
                return out;
            }
            assert!(Instant::now() < end, "kubectl {args:?} within {within:?}: {out}{err}");
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// SIGTERM, then the exit status within 20 s (SIGKILL after that).
    fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        None
    }

    fn stop(mut self) {
        let status = self.terminate();
        assert!(status.is_some_and(|s| s.success()), "clean exit on SIGTERM: {status:?}");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Running {
    /// A failed test still stops the sandbox (which stops its programs).
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate();
        }
    }
}

/// Seed 003's checks, with what an installation of ebb answers.
fn post_install_checks(sb: &Running) {
    let (ok, out, err) = sb.kubectl(&["get", "crd"]);
    assert!(ok, "{err}");
    let keda: Vec<&str> =
        out.lines().filter(|l| l.contains("keda")).map(|l| l.split_whitespace().next().unwrap()).collect();
    assert_eq!(
        keda,
        ["clustertriggerauthentications.keda.sh", "scaledobjects.keda.sh", "triggerauthentications.keda.sh"],
        "{out}"
    );
    let out =
        sb.until(Duration::from_secs(60), &["get", "apiservice", "v1beta1.external.metrics.k8s.io"], |o| {
            o.lines().nth(1).is_some_and(|l| l.split_whitespace().nth(2) == Some("True"))
        });
    let row: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[..3], ["v1beta1.external.metrics.k8s.io", "keda/ebb-metrics-apiserver", "True"], "{out}");
    let (ok, out, err) = sb.kubectl(&["get", "--raw", "/apis/external.metrics.k8s.io/v1beta1"]);
    assert!(ok, "{err}");
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list["kind"], "APIResourceList");
    assert_eq!(list["groupVersion"], "external.metrics.k8s.io/v1beta1");
    let r = &list["resources"][0];
    assert_eq!(
        (r["name"].as_str(), r["namespaced"].as_bool(), r["kind"].as_str(), r["verbs"].clone()),
        (Some("externalmetrics"), Some(true), Some("ExternalMetricValueList"), serde_json::json!(["get"])),
        "{out}"
    );
    let (ok, out, err) = sb.kubectl(&["get", "validatingwebhookconfigurations", "keda-admission"]);
    assert!(ok, "{err}");
    let row: Vec<&str> = out.lines().nth(1).unwrap_or("").split_whitespace().collect();
    assert_eq!(row.get(..2), Some(&["keda-admission", "3"][..]), "{out}");
}

/// ScaledObjects go through the webhook the installation registered: the seeds are admitted
/// (the kafka one with the webhook's warning shown by kubectl), a broken one denied with the
/// webhook's reason.
fn admission_works(sb: &Running) {
    let (ok, out, err) =
        sb.kubectl(&["apply", "--validate=false", "-f", "tests/fixtures/seed/cron-prescale.yaml"]);
    assert!(ok, "{out}{err}");
    // Admitted with the webhook's warning, which kubectl prints.
    let (ok, out, err) =
        sb.kubectl(&["apply", "--validate=false", "-f", "tests/fixtures/seed/kafka-trigger.yaml"]);
    assert!(ok, "{out}{err}");
    assert!(err.contains("Warning: "), "{err}");
    println!("kafka seed: {out}{err}");
    // Valid for the CRD's schema (upstream checks that first), refused by the webhook.
    let bad = "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: bad, namespace: default}\n\
               spec:\n  scaleTargetRef: {name: other}\n  \
               triggers: [{type: cron, metadata: {timezone: Mars/Olympus, start: '0 * * * *', end: '5 * * * *', desiredReplicas: '1'}}]\n";
    let path = sb.dir.join("bad.yaml");
    std::fs::write(&path, bad).unwrap();
    let (ok, out, err) = sb.kubectl(&["apply", "--validate=false", "-f", path.to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert!(
        err.contains(r#"admission webhook "vscaledobject.ebb.keda.sh" denied the request"#)
            && err.contains("Mars/Olympus"),
        "{err}"
    );
}

#[test]
fn kubectl_applies_the_default_overlay_and_the_stack_comes_up() {
    let mut sb = Running::start("kubectl", &["--no-install"]);
    sb.wait_line(Duration::from_secs(30), |l| l == "sandbox ready");
    let (ok, out, err) = sb.kubectl(&["apply", "--validate=false", "-k", "deploy/overlays/default"]);
    assert!(ok, "kubectl apply -k deploy/overlays/default: {out}{err}");
    assert!(out.contains("deployment.apps/ebb-operator created"), "{out}");
    // The node runs one Pod per Deployment; each becomes ready.
    let pods = sb.until(Duration::from_secs(90), &["get", "pods", "-n", "keda"], |o| {
        o.lines().skip(1).filter(|l| l.split_whitespace().nth(1) == Some("1/1")).count() == 3
    });
    for d in ["ebb-operator", "ebb-webhook", "ebb-metrics-apiserver"] {
        assert!(pods.lines().any(|l| l.starts_with(&format!("{d}-")) && l.contains("Running")), "{pods}");
    }
    // The operator made one certificate per component, each in its own Secret, and injected
    // the CA.
    let mut certs = std::collections::BTreeSet::new();
    for secret in [
        "ebb-operator-tls",
        "ebb-webhook-tls",
        "ebb-metrics-apiserver-tls",
        "ebb-metrics-apiserver-client-tls",
    ] {
        let (ok, out, err) = sb.kubectl(&["get", "secret", "-n", "keda", secret, "-o", "jsonpath={.data}"]);
        assert!(ok, "{secret}: {err}");
        let data: serde_json::Value = serde_json::from_str(&out).unwrap();
        for key in ["tls.crt", "tls.key", "ca.crt"] {
            assert!(data.get(key).is_some(), "{secret}: {key} in {out}");
        }
        certs.insert(data["tls.crt"].as_str().unwrap().to_owned());
    }
    assert_eq!(certs.len(), 4, "four distinct certificates");
    post_install_checks(&sb);
    admission_works(&sb);
    sb.stop();
}

/// The same on upstream Kubernetes (`ebb sandbox --upstream`): kube-apiserver's RBAC applies to
/// each program (the node gives it its service account's token), the real aggregator marks the
/// APIService available and proxies values, and the real API server calls `keda-admission`.
#[test]
fn upstream_kubernetes_runs_the_default_overlay() {
    let mut sb = Running::start("upstream", &["--upstream", "--no-install"]);
    sb.wait_line(Duration::from_secs(60), |l| l == "sandbox ready");
    assert!(sb.seen.iter().any(|l| l.starts_with("Server Version: v1.")), "{:#?}", sb.seen);
    let (ok, out, err) = sb.kubectl(&["version"]);
    assert!(ok, "{err}");
    println!("{out}");
    let (ok, out, err) = sb.kubectl(&["apply", "-k", "deploy/overlays/default"]);
    assert!(ok, "kubectl apply -k deploy/overlays/default: {out}{err}");
    let pods = sb.until(Duration::from_secs(90), &["get", "pods", "-n", "keda", "-o", "wide"], |o| {
        o.lines().skip(1).filter(|l| l.split_whitespace().nth(1) == Some("1/1")).count() == 3
    });
    println!("{pods}");
    post_install_checks(&sb);
    let (ok, out, err) = sb.kubectl(&[
        "create",
        "deployment",
        "php-apache",
        "--image=registry.k8s.io/hpa-example",
        "--replicas=0",
    ]);
    assert!(ok, "{out}{err}");
    // The seed is admitted by the webhook and reconciled by the operator under its own RBAC.
    let (ok, out, err) = sb.kubectl(&["apply", "-f", "tests/fixtures/seed/cron-prescale.yaml"]);
    assert!(ok, "{out}{err}");
    let hpa = "keda-hpa-php-apache-cron-scaled";
    let metric = sb.until(
        Duration::from_secs(30),
        &["get", "hpa", hpa, "-o", "jsonpath={.spec.metrics[0].external.metric.name}"],
        |o| !o.is_empty(),
    );
    let path = format!(
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/{metric}?labelSelector=scaledobject.keda.sh%2Fname%3Dphp-apache-cron-scaled"
    );
    let value = sb
        .until(Duration::from_secs(30), &["get", "--raw", &path], |o| o.contains("ExternalMetricValueList"));
    println!("kubectl get --raw {path}\n{value}");
    let list: serde_json::Value = serde_json::from_str(&value).unwrap();
    assert_eq!(list["items"][0]["metricName"], metric.as_str(), "{value}");
    // The seeds are admitted, a schema-valid object the webhook refuses is denied: by the real
    // API server through keda-admission.
    admission_works(&sb);
    // The aggregator fetches the metrics API server's OpenAPI as an authenticated user: never
    // forbidden (503s while the Pods start are expected).
    let logs =
        sb.seen.iter().find_map(|l| l.split("(upstream, logs in ").nth(1)).unwrap().trim_end_matches(')');
    let log = std::fs::read_to_string(Path::new(logs).join("kube-apiserver.log")).unwrap();
    let refused: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("failed to download v1beta1.external.metrics.k8s.io") && l.contains("403"))
        .collect();
    assert!(refused.is_empty(), "the aggregator's OpenAPI download was refused:\n{}", refused.join("\n"));
    sb.stop();
}

#[test]
fn the_sandbox_installs_deploy_and_runs_the_demo() {
    let mut sb = Running::start("install", &[]);
    sb.wait_line(Duration::from_secs(120), |l| l == "sandbox ready");
    assert!(
        sb.seen.iter().any(|l| l.starts_with("installed ") && l.ends_with(" objects; waiting for the stack"))
    );
    post_install_checks(&sb);
    sb.wait_line(Duration::from_secs(10), |l| l.starts_with("demo: Deployment php-apache"));
    let (ok, out, err) = sb.kubectl(&["get", "scaledobject", "php-apache-cron-scaled", "-o", "name"]);
    assert!(ok, "{out}{err}");
    sb.stop();
}

/// The high-availability overlay on the sandbox: two replicas of each program; value queries
/// through the aggregator reach whichever operator leads, before and after the leader's Pod
/// is deleted.
#[test]
fn high_availability_overlay_follows_the_leader() {
    high_availability(&[]);
}

#[test]
fn high_availability_overlay_follows_the_leader_on_upstream() {
    high_availability(&["--upstream"]);
}

fn high_availability(flags: &[&str]) {
    let rendered = Command::new("kubectl")
        .args(["kustomize", "deploy/overlays/high-availability"])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(rendered.status.success(), "{}", String::from_utf8_lossy(&rendered.stderr));
    let file =
        std::env::temp_dir().join(format!("ebb-sandbox-ha{}-{}.yaml", flags.len(), std::process::id()));
    std::fs::write(&file, &rendered.stdout).unwrap();
    let mut args = vec!["--no-demo", "--manifests", file.to_str().unwrap()];
    args.extend_from_slice(flags);
    let mut sb = Running::start(&format!("ha{}", flags.len()), &args);
    sb.wait_line(Duration::from_secs(120), |l| l == "sandbox ready");
    let pods = sb.until(Duration::from_secs(30), &["get", "pods", "-n", "keda"], |o| {
        o.lines().skip(1).filter(|l| l.split_whitespace().nth(1) == Some("1/1")).count() == 6
    });
    println!("{pods}");
    let so = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: default}\n\
              spec: {replicas: 1, selector: {matchLabels: {app: web}}, template: {metadata: {labels: {app: web}}, \
              spec: {containers: [{name: web, image: web}]}}}\n---\n\
              apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: cron-ha, namespace: default}\n\
              spec:\n  scaleTargetRef: {name: web}\n  pollingInterval: 1\n  \
              triggers: [{type: cron, metadata: {timezone: UTC, start: '0 * * * *', end: '59 * * * *', desiredReplicas: '3'}}]\n";
    let path = sb.dir.join("so.yaml");
    std::fs::write(&path, so).unwrap();
    let (ok, out, err) = sb.kubectl(&["apply", "--validate=false", "-f", path.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    let leader = |sb: &Running| {
        sb.until(
            Duration::from_secs(30),
            &["get", "pods", "-n", "keda", "-l", "ebb.keda.sh/leader=true", "-o", "name"],
            |o| o.lines().count() == 1,
        )
        .trim()
        .to_owned()
    };
    let value = "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/s0-cron-UTC-0xxxx-59xxxx\
                 ?labelSelector=scaledobject.keda.sh%2Fname%3Dcron-ha";
    let first = leader(&sb);
    assert!(first.starts_with("pod/ebb-operator-"), "{first}");
    let answer = sb
        .until(Duration::from_secs(30), &["get", "--raw", value], |o| o.contains("ExternalMetricValueList"));
    assert!(answer.contains("s0-cron-UTC-0xxxx-59xxxx"), "{answer}");
    // The leader's Pod goes: the node stops its process (SIGTERM: it gives up the label and the
    // Lease), the other replica leads and labels itself, and values flow again through the
    // same Service.
    let (ok, out, err) = sb.kubectl(&["delete", "-n", "keda", &first]);
    assert!(ok, "{out}{err}");
    let second = sb.until(
        Duration::from_secs(40),
        &["get", "pods", "-n", "keda", "-l", "ebb.keda.sh/leader=true", "-o", "name"],
        |o| o.lines().count() == 1 && o.trim() != first,
    );
    println!("leader {first} → {}", second.trim());
    let answer = sb
        .until(Duration::from_secs(30), &["get", "--raw", value], |o| o.contains("ExternalMetricValueList"));
    assert!(answer.contains("s0-cron-UTC-0xxxx-59xxxx"), "{answer}");
    let _ = std::fs::remove_file(&file);
    sb.stop();
}

/// Certificates renewed by the operator reach the running programs without restarts: with a
/// 12 s certificate renewed 8 s before expiry, the Secret changes every few seconds, the node
/// projects it, the webhook and the metrics API server reload it, and admission and the
/// aggregated API keep working across renewals.
#[test]
fn renewed_certificates_reach_the_programs_without_restarts() {
    certificate_renewal(&[]);
}

#[test]
fn renewed_certificates_reach_the_programs_without_restarts_on_upstream() {
    certificate_renewal(&["--upstream"]);
}

fn certificate_renewal(flags: &[&str]) {
    let default = std::fs::read_to_string(root().join("deploy/rendered/default.yaml")).unwrap();
    let flag = "        - --manage-certificates=true\n";
    assert!(default.contains(flag));
    let short = default.replace(
        flag,
        &format!(
            "{flag}        - --certificate-validity=12s\n        - --certificate-renew-before=8s\n        - --ca-rotation-overlap=4s\n"
        ),
    );
    let file =
        std::env::temp_dir().join(format!("ebb-sandbox-renew{}-{}.yaml", flags.len(), std::process::id()));
    std::fs::write(&file, short).unwrap();
    let mut args = vec!["--no-demo", "--manifests", file.to_str().unwrap()];
    args.extend_from_slice(flags);
    let mut sb = Running::start(&format!("renew{}", flags.len()), &args);
    sb.wait_line(Duration::from_secs(120), |l| l == "sandbox ready");
    let cert = |sb: &Running| {
        let (ok, out, err) = sb.kubectl(&[
            "get",
            "secret",
            "-n",
            "keda",
            "ebb-webhook-tls",
            "-o",
            "jsonpath={.data.tls\\.crt}",
        ]);
        assert!(ok, "{err}");
        out
    };
    let mut seen = vec![cert(&sb)];
    let end = Instant::now() + Duration::from_secs(40);
    while seen.len() < 3 {
        assert!(Instant::now() < end, "the certificate was not renewed twice in 40 s");
        std::thread::sleep(Duration::from_millis(500));
        let now = cert(&sb);
        if seen.last() != Some(&now) {
            seen.push(now);
        }
    }
    // Renewed twice; give the node and the programs a moment to pick the files up.
    std::thread::sleep(Duration::from_secs(2));
    let (ok, out, err) = sb.kubectl(&["get", "--raw", "/apis/external.metrics.k8s.io/v1beta1"]);
    assert!(ok && out.contains("externalmetrics"), "{out}{err}");
    admission_works(&sb);
    let pods = sb.kubectl(&["get", "pods", "-n", "keda"]).1;
    for line in pods.lines().skip(1) {
        assert_eq!(line.split_whitespace().nth(3), Some("0"), "no restarts: {pods}");
    }
    let logs = sb.dir.join("ebb-sandbox-logs/logs");
    for program in ["ebb-webhook", "ebb-metrics-apiserver"] {
        let log = std::fs::read_dir(&logs)
            .unwrap()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().starts_with(&format!("keda_{program}-")))
            .map(|e| std::fs::read_to_string(e.path()).unwrap())
            .unwrap();
        let reloads = log.lines().filter(|l| l.contains("TLS files reloaded")).count();
        assert!(reloads >= 1, "{program} never reloaded its certificate:\n{log}");
        println!("{program}: {reloads} reloads");
    }
    let _ = std::fs::remove_file(&file);
    sb.stop();
}
