//! The admission webhook behind the local control plane's admission path, driven with the real
//! `kubectl apply --validate=false`: the webhook runs in-process on its TLS port, mapped as
//! Service keda/ebb-webhook and registered with deploy/base/webhook's
//! ValidatingWebhookConfiguration (caBundle filled in). Seeds are admitted, bad manifests are
//! denied with the operator parser's own message, cross-object rules follow what the watches
//! see, dry runs change nothing, finalizer and label edits of an invalid object pass, and with
//! the webhook down applies fail while deletes still work.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use clap::Parser as _;
use ebb_api::ScaledObject;
use ebb_plumbing::shutdown::{self, ShutdownTrigger};
use ebb_sandbox::sandbox::{Config, Sandbox};
use ebb_scalers::{ParseContext, ParseErrorKind, parse_scaled_object};
use ebb_webhook::admission::Webhook;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

const DENIED: &str = "admission webhook \"vscaledobject.ebb.keda.sh\" denied the request: ";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

struct Stack {
    sb: Sandbox,
    dir: PathBuf,
    kubeconfig: PathBuf,
    webhook: Arc<Webhook>,
    admin: SocketAddr,
    trigger: ShutdownTrigger,
    task: Option<JoinHandle<()>>,
}

async fn start(tag: &str) -> Stack {
    let sb = Sandbox::start(Config { controllers: false, ..Default::default() }).await.unwrap();
    for (_, crd) in ebb_api::crds::all() {
        sb.create(&serde_json::to_value(&crd).unwrap()).unwrap();
    }
    let dir =
        std::env::temp_dir().join(format!("ebb-e2e-webhook-{tag}-{}-{}", std::process::id(), sb.addr.port()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    ebb_sandbox::kubeconfig::write_kubeconfig(&kubeconfig, &sb.kubeconfig()).unwrap();
    let leaf = sb.service_cert("keda", "ebb-webhook").unwrap();
    std::fs::write(dir.join("tls.crt"), &leaf.cert_pem).unwrap();
    std::fs::write(dir.join("tls.key"), &leaf.key_pem).unwrap();
    let kc = kube::config::Kubeconfig::from_yaml(&sb.kubeconfig()).unwrap();
    let client =
        kube::Client::try_from(kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap())
            .unwrap();

    let cert = dir.join("tls.crt");
    let key = dir.join("tls.key");
    let args = ebb_webhook::Args::try_parse_from([
        "ebb-webhook",
        "--admin-addr",
        "127.0.0.1:0",
        "--secure-addr",
        "127.0.0.1:0",
        "--tls-cert-file",
        cert.to_str().unwrap(),
        "--tls-key-file",
        key.to_str().unwrap(),
    ])
    .unwrap();
    let bound = ebb_webhook::bind(&args, client.clone()).await.unwrap();
    sb.map_service("keda", "ebb-webhook", bound.secure_addr());
    let (webhook, admin) = (bound.webhook(), bound.admin_addr());
    let (trigger, shutdown) = shutdown::channel();
    let task = Some(tokio::spawn(async move {
        if let Err(e) = bound.serve(shutdown).await {
            panic!("webhook failed: {e:#}");
        }
    }));
    assert!(webhook.index.wait_synced(Duration::from_secs(20)).await, "the watches never listed");

    // Register the deployed configuration with the sandbox CA as its caBundle.
    let text =
        std::fs::read_to_string(repo().join("deploy/base/webhook/validatingwebhookconfiguration.yaml"))
            .unwrap();
    let mut cfg: Value = serde_yaml::from_str(&text).unwrap();
    let ca = base64::engine::general_purpose::STANDARD.encode(sb.ca.cert_pem());
    for hook in cfg["webhooks"].as_array_mut().unwrap() {
        assert_eq!(hook["failurePolicy"], "Fail");
        assert_eq!(hook["timeoutSeconds"], 10);
        assert_eq!(hook["sideEffects"], "None");
        hook["clientConfig"]["caBundle"] = json!(ca);
    }
    let vwcs: Api<ValidatingWebhookConfiguration> = Api::all(client);
    vwcs.create(&PostParams::default(), &serde_json::from_value(cfg).unwrap()).await.unwrap();
    Stack { sb, dir, kubeconfig, webhook, admin, trigger, task }
}

impl Stack {
    /// Runs kubectl with this control plane's kubeconfig: (success, stdout, stderr).
    async fn kubectl(&self, args: &[&str]) -> (bool, String, String) {
        let kc = self.kubeconfig.clone();
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        tokio::task::spawn_blocking(move || {
            let out = Command::new("kubectl")
                .env("KUBECONFIG", kc)
                .args(&args)
                .stdin(std::process::Stdio::null())
                .output()
                .expect("kubectl must be installed (scripts/test installs it)");
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
        .await
        .unwrap()
    }

    /// `kubectl apply --validate=false -f` of a manifest written to a file.
    async fn apply(&self, name: &str, manifest: &Value, extra: &[&str]) -> (bool, String, String) {
        let path = self.dir.join(format!("{name}.yaml"));
        std::fs::write(&path, serde_yaml::to_string(manifest).unwrap()).unwrap();
        let mut args = vec!["apply", "--validate=false", "-f", path.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.kubectl(&args).await
    }

    async fn wait_indexed(&self, what: &str, f: impl Fn(&ebb_webhook::index::Snapshot) -> bool) {
        for _ in 0..100 {
            if f(&self.webhook.index.read()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{what} never reached the index");
    }

    /// Stops the webhook (the control plane keeps running).
    async fn stop_webhook(&mut self) {
        self.trigger.trigger();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(15), task).await.unwrap().unwrap();
        }
    }

    async fn stop(mut self) {
        self.stop_webhook().await;
        self.sb.stop().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn scaled_object(name: &str, target: &str, spec: Value, annotations: Value) -> Value {
    let mut s = json!({"scaleTargetRef": {"name": target}, "minReplicaCount": 0, "maxReplicaCount": 3,
        "triggers": [{"type": "cron", "metadata": {"timezone": "UTC", "start": "0 8 * * *", "end": "0 9 * * *", "desiredReplicas": "1"}}]});
    for (k, v) in spec.as_object().into_iter().flatten() {
        s[k] = v.clone();
    }
    json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": "default", "annotations": annotations}, "spec": s})
}

fn read_yaml(path: &Path) -> Value {
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeds_are_admitted_and_bad_manifests_get_the_operators_message() {
    let stack = start("seeds").await;
    let seeds = repo().join("tests/fixtures/seed");
    let mut admitted = 0;
    for entry in std::fs::read_dir(&seeds).unwrap() {
        let path = entry.unwrap().path();
        let doc = read_yaml(&path);
        if doc["kind"] != "ScaledObject" {
            continue;
        }
        let (ok, out, err) =
            stack.kubectl(&["apply", "--validate=false", "-f", path.to_str().unwrap()]).await;
        assert!(ok, "{}: {err}", path.display());
        assert_eq!(
            out.trim(),
            format!("scaledobject.keda.sh/{} created", doc["metadata"]["name"].as_str().unwrap())
        );
        // The parser accepts it, or only lacks what a TriggerAuthentication gives (admitted).
        let so: ScaledObject = serde_json::from_value(doc).unwrap();
        if let Err(errors) = parse_scaled_object(&so, &ParseContext::default()) {
            assert!(
                // Only what the operator resolves later: credentials, parameters a referenced
                // TriggerAuthentication supplies.
                errors.iter().all(|e| matches!(
                    e.kind,
                    ParseErrorKind::MissingCredentials | ParseErrorKind::MissingParameter
                )),
                "{}: {errors:?}",
                path.display()
            );
        }
        admitted += 1;
    }
    assert_eq!(admitted, 4);

    let bad = repo().join("tests/fixtures/bad");
    let mut denied = 0;
    for file in
        ["bad-cron", "desired-replicas-zero", "min-greater-than-max", "unknown-timezone", "unknown-type"]
    {
        let path = bad.join(format!("{file}.yaml"));
        let so: ScaledObject = serde_json::from_value(read_yaml(&path)).unwrap();
        let operator: Vec<String> = parse_scaled_object(&so, &ParseContext::default())
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        let (ok, _, err) = stack.kubectl(&["apply", "--validate=false", "-f", path.to_str().unwrap()]).await;
        assert!(!ok, "{file} was admitted");
        let want = format!("{DENIED}{}", operator.join("; "));
        assert!(err.contains(&want), "{file}:\n  want {want}\n  got  {err}");
        if file == "bad-cron" {
            eprintln!("kubectl stderr for {file}.yaml:\n{err}");
        }
        denied += 1;
    }
    assert_eq!(denied, 5);
    let (_, out, _) = stack.kubectl(&["get", "so", "-o", "name"]).await;
    assert_eq!(out.lines().count(), 4, "{out}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_object_rules_dry_runs_and_edits_that_are_never_blocked() {
    let stack = start("cross").await;

    let (ok, _, err) = stack.apply("first", &scaled_object("first", "web", json!({}), json!({})), &[]).await;
    assert!(ok, "{err}");
    stack.wait_indexed("first", |s| s.sos.get("default", "first").is_some()).await;
    let (ok, _, err) =
        stack.apply("second", &scaled_object("second", "web", json!({}), json!({})), &[]).await;
    assert!(!ok);
    assert!(
        err.contains(&format!("{DENIED}spec.scaleTargetRef: the workload Deployment/web is already scaled by ScaledObject \"first\"")),
        "{err}"
    );
    let same_hpa = json!({"advanced": {"horizontalPodAutoscalerConfig": {"name": "keda-hpa-first"}}});
    let (ok, _, err) =
        stack.apply("hpa-name", &scaled_object("hpa-name", "other", same_hpa, json!({})), &[]).await;
    assert!(
        !ok && err.contains("the HPA name \"keda-hpa-first\" is already used by ScaledObject \"first\""),
        "{err}"
    );

    // An HPA made by hand blocks a ScaledObject on its workload until the object adopts it.
    let hpa = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "manual", "namespace": "default"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"}, "minReplicas": 1, "maxReplicas": 4}});
    let (ok, _, err) = stack.apply("manual-hpa", &hpa, &[]).await;
    assert!(ok, "{err}");
    stack.wait_indexed("HPA manual", |s| s.hpas.len() == 1).await;
    let (ok, _, err) = stack.apply("third", &scaled_object("third", "api", json!({}), json!({})), &[]).await;
    assert!(
        !ok && err.contains("already scaled by HPA \"manual\", which this ScaledObject does not own"),
        "{err}"
    );
    let adopt = scaled_object(
        "third",
        "api",
        json!({"advanced": {"horizontalPodAutoscalerConfig": {"name": "manual"}}}),
        json!({"scaledobject.keda.sh/transfer-hpa-ownership": "true"}),
    );
    let (ok, _, err) = stack.apply("third-adopts", &adopt, &[]).await;
    assert!(ok, "{err}");

    // Server-side dry runs are judged like real applies and store nothing.
    let (ok, out, err) =
        stack.apply("dry", &scaled_object("dry", "web2", json!({}), json!({})), &["--dry-run=server"]).await;
    assert!(ok && out.contains("(server dry run)"), "{out}{err}");
    let (ok, _, _) = stack.kubectl(&["get", "so", "dry"]).await;
    assert!(!ok, "a dry run stored the object");
    let (ok, _, err) = stack
        .apply("dry-dup", &scaled_object("dry-dup", "web", json!({}), json!({})), &["--dry-run=server"])
        .await;
    assert!(!ok && err.contains("already scaled by ScaledObject \"first\""), "{err}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(stack.webhook.index.read().sos.get("default", "dry").is_none());

    // Authentications.
    let ta = |kind: &str, owner: &str| {
        json!({"apiVersion": "keda.sh/v1alpha1", "kind": kind, "metadata": {"name": "aws", "namespace": "default"},
            "spec": {"podIdentity": {"provider": "aws", "roleArn": "arn:aws:iam::1:role/r", "identityOwner": owner}}})
    };
    for kind in ["TriggerAuthentication", "ClusterTriggerAuthentication"] {
        let (ok, _, err) = stack.apply("ta-bad", &ta(kind, "workload"), &[]).await;
        assert!(
            !ok && err.contains("spec.podIdentity.roleArn: cannot be set when identityOwner is workload"),
            "{kind}: {err}"
        );
        let (ok, _, err) = stack.apply("ta-good", &ta(kind, "keda"), &[]).await;
        assert!(ok, "{kind}: {err}");
    }

    // An invalid object stored around the webhook: label and finalizer edits pass, spec edits
    // are judged, deletes are never blocked.
    stack
        .sb
        .create(&scaled_object(
            "legacy",
            "legacy",
            json!({"minReplicaCount": 5, "maxReplicaCount": 2}),
            json!({}),
        ))
        .unwrap();
    let (ok, _, err) = stack.kubectl(&["label", "so", "legacy", "team=a"]).await;
    assert!(ok, "{err}");
    let fin = r#"{"metadata":{"finalizers":["finalizer.keda.sh"]}}"#;
    let (ok, _, err) = stack.kubectl(&["patch", "so", "legacy", "--type=merge", "-p", fin]).await;
    assert!(ok, "{err}");
    let (ok, _, err) = stack
        .kubectl(&["patch", "so", "legacy", "--type=merge", "-p", r#"{"spec":{"maxReplicaCount":3}}"#])
        .await;
    assert!(
        !ok && err.contains("minReplicaCount (5) must be less than or equal to maxReplicaCount (3)"),
        "{err}"
    );
    let (ok, _, err) = stack
        .kubectl(&["patch", "so", "legacy", "--type=merge", "-p", r#"{"metadata":{"finalizers":null}}"#])
        .await;
    assert!(ok, "{err}");
    let (ok, _, err) = stack.kubectl(&["delete", "so", "legacy"]).await;
    assert!(ok, "{err}");

    let metrics =
        reqwest::get(format!("http://{}/metrics", stack.admin)).await.unwrap().text().await.unwrap();
    for want in [
        "keda_webhook_scaled_object_validation_errors_total{namespace=\"default\",action=\"create\",reason=\"duplicate-target\"} 2",
        "keda_webhook_scaled_object_validation_errors_total{namespace=\"default\",action=\"create\",reason=\"hpa-conflict\"} 1",
        "keda_webhook_scaled_object_validation_errors_total{namespace=\"default\",action=\"update\",reason=\"invalid-spec\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == want), "{want} not in\n{metrics}");
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_webhook_down_applies_fail_and_deletes_work() {
    let stack = start("down").await;
    let (ok, _, err) = stack.apply("one", &scaled_object("one", "web", json!({}), json!({})), &[]).await;
    assert!(ok, "{err}");
    let mut stack = stack;
    stack.stop_webhook().await;
    let (ok, _, err) = stack.apply("two", &scaled_object("two", "api", json!({}), json!({})), &[]).await;
    assert!(!ok && err.contains("failed calling webhook \"vscaledobject.ebb.keda.sh\""), "{err}");
    let (ok, _, err) = stack.kubectl(&["delete", "so", "one"]).await;
    assert!(ok, "{err}");
    stack.stop().await;
}
