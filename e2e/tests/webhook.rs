//! The admission webhook behind the admission path of the cluster `EBB_E2E_CLUSTER` selects (the
//! local control plane, or upstream kube-apiserver calling it through an `ExternalName` Service),
//! driven with the real `kubectl apply --validate=false`: the webhook runs in-process on its TLS
//! port, reached as Service keda/ebb-webhook and registered with deploy/base/webhook's
//! ValidatingWebhookConfiguration (caBundle filled in). Seeds are admitted, bad manifests are
//! denied with the operator parser's own message, cross-object rules follow what the watches
//! see, dry runs change nothing, finalizer and label edits of an invalid object pass, and with
//! the webhook down applies fail while deletes still work.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "metrics_apiserver_support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use clap::Parser as _;
use ebb_api::ScaledObject;
use ebb_plumbing::shutdown::{self, ShutdownTrigger};
use ebb_scalers::{ParseContext, ParseErrorKind, parse_scaled_object};
use ebb_webhook::admission::Webhook;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::{Value, json};
use support::{Cluster, Options, TempDir};
use tokio::task::JoinHandle;

const DENIED: &str = "admission webhook \"vscaledobject.ebb.keda.sh\" denied the request: ";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

struct Stack {
    cluster: Cluster,
    dir: TempDir,
    /// The registered ValidatingWebhookConfiguration, as created.
    registration: ValidatingWebhookConfiguration,
    webhook: Arc<Webhook>,
    admin: SocketAddr,
    trigger: ShutdownTrigger,
    task: Option<JoinHandle<()>>,
}

async fn start(tag: &str) -> Stack {
    let cluster =
        Cluster::start(Options { controllers: false, ..Options::hpa_sync(Duration::from_secs(15)) }).await;
    let dir = TempDir::new(&format!("webhook-{tag}"));
    let leaf = cluster.service_cert("keda", "ebb-webhook");
    dir.write("tls.crt", &leaf.cert_pem);
    dir.write("tls.key", &leaf.key_pem);
    let client = cluster.client();

    let args = ebb_webhook::Args::try_parse_from([
        "ebb-webhook".to_owned(),
        "--admin-addr".into(),
        "127.0.0.1:0".into(),
        "--secure-addr".into(),
        "127.0.0.1:0".into(),
        "--tls-cert-file".into(),
        dir.arg("tls.crt"),
        "--tls-key-file".into(),
        dir.arg("tls.key"),
    ])
    .unwrap();
    let bound = ebb_webhook::bind(&args, client.clone()).await.unwrap();
    let port = cluster.expose("keda", "ebb-webhook", bound.secure_addr()).await;
    let (webhook, admin) = (bound.webhook(), bound.admin_addr());
    let (trigger, shutdown) = shutdown::channel();
    let task = Some(tokio::spawn(async move {
        if let Err(e) = bound.serve(shutdown).await {
            panic!("webhook failed: {e:#}");
        }
    }));
    assert!(webhook.index.wait_synced(Duration::from_secs(20)).await, "the watches never listed");

    // Register the deployed configuration with the cluster's serving CA as its caBundle.
    let text =
        std::fs::read_to_string(repo().join("deploy/base/webhook/validatingwebhookconfiguration.yaml"))
            .unwrap();
    let mut cfg: Value = serde_yaml::from_str(&text).unwrap();
    let ca = base64::engine::general_purpose::STANDARD.encode(cluster.ca_pem());
    for hook in cfg["webhooks"].as_array_mut().unwrap() {
        assert_eq!(hook["failurePolicy"], "Fail");
        assert_eq!(hook["timeoutSeconds"], 10);
        assert_eq!(hook["sideEffects"], "None");
        assert_eq!(hook["clientConfig"]["service"]["port"], 443);
        hook["clientConfig"]["caBundle"] = json!(ca);
        hook["clientConfig"]["service"]["port"] = json!(port);
    }
    let registration: ValidatingWebhookConfiguration = serde_json::from_value(cfg).unwrap();
    let stack = Stack { cluster, dir, registration, webhook, admin, trigger, task };
    stack.register().await;
    stack
}

impl Stack {
    /// Runs kubectl with this cluster's admin kubeconfig: (success, stdout, stderr).
    async fn kubectl(&self, args: &[&str]) -> (bool, String, String) {
        support::kubectl(&self.cluster, args).await
    }

    /// `kubectl apply --validate=false -f` of a manifest written to a file.
    async fn apply(&self, name: &str, manifest: &Value, extra: &[&str]) -> (bool, String, String) {
        let path = self.dir.path(&format!("{name}.yaml"));
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

    /// Creates the ValidatingWebhookConfiguration. The local control plane uses it at once;
    /// kube-apiserver once its informer has it, so on upstream this waits until an invalid
    /// object is denied (a server-side dry run, which stores nothing).
    async fn register(&self) {
        let vwcs: Api<ValidatingWebhookConfiguration> = Api::all(self.cluster.client());
        vwcs.create(&PostParams::default(), &self.registration).await.unwrap();
        if self.cluster.is_upstream() {
            self.wait_judging(true).await;
        }
    }

    /// Waits until kube-apiserver sends ScaledObjects to the webhook (`judging`) or no longer does.
    async fn wait_judging(&self, judging: bool) {
        let sos: Api<ScaledObject> = Api::namespaced(self.cluster.client(), "default");
        // Valid to the CRD's schema (which kube-apiserver checks before calling webhooks), not
        // to the operator's parser.
        let probe = scaled_object("e2e-probe", "e2e-probe", cron_in("Mars/Olympus"), json!({}));
        let probe: ScaledObject = serde_json::from_value(probe).unwrap();
        let dry = PostParams { dry_run: true, ..Default::default() };
        support::wait_for(
            &format!("the API server's webhook calls (judging: {judging})"),
            Duration::from_secs(20),
            async || {
                let denied = match sos.create(&dry, &probe).await {
                    Ok(_) => false,
                    Err(kube::Error::Api(s)) if s.message.contains("denied the request") => true,
                    Err(e) => panic!("dry run of an invalid ScaledObject: {e}"),
                };
                denied == judging
            },
        )
        .await;
    }

    /// Stores `obj` without the webhook judging it: directly into the local control plane's
    /// store; on upstream with the registration removed meanwhile.
    async fn store_unchecked(&self, obj: &Value) {
        if self.cluster.is_upstream() {
            let vwcs: Api<ValidatingWebhookConfiguration> = Api::all(self.cluster.client());
            let name = self.registration.metadata.name.clone().unwrap();
            vwcs.delete(&name, &DeleteParams::default()).await.unwrap();
            self.wait_judging(false).await;
            self.cluster.create(obj).await.unwrap();
            self.register().await;
        } else {
            self.cluster.create(obj).await.unwrap();
        }
    }

    /// Stops the webhook (the cluster keeps running).
    async fn stop_webhook(&mut self) {
        self.trigger.trigger();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(15), task).await.unwrap().unwrap();
        }
    }

    async fn stop(mut self) {
        self.stop_webhook().await;
        self.cluster.stop().await;
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

/// A spec fragment: one cron trigger in time zone `tz`.
fn cron_in(tz: &str) -> Value {
    json!({"triggers": [{"type": "cron", "metadata": {"timezone": tz, "start": "0 8 * * *", "end": "0 9 * * *", "desiredReplicas": "1"}}]})
}

/// A spec fragment: two cron triggers both named `name` (valid to the CRD's schema, an invalid
/// spec to the operator's parser).
fn twin_triggers(name: &str) -> Value {
    let cron = json!({"type": "cron", "name": name, "metadata": {"timezone": "UTC", "start": "0 8 * * *", "end": "0 9 * * *", "desiredReplicas": "1"}});
    json!({"triggers": [cron, cron]})
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
        let want = if file == "min-greater-than-max" && stack.cluster.is_upstream() {
            // kube-apiserver checks the CRD's validation rules (this one among them) before it
            // calls validating webhooks; the local control plane has no CEL rules.
            "spec: Invalid value: minReplicaCount must be less than or equal to maxReplicaCount (default 100)"
                .to_owned()
        } else {
            format!("{DENIED}{}", operator.join("; "))
        };
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
        err.contains(&format!("{DENIED}spec.scaleTargetRef: the workload Deployment/web is already scaled by another ScaledObject in namespace \"default\"")),
        "{err}"
    );
    let same_hpa = json!({"advanced": {"horizontalPodAutoscalerConfig": {"name": "keda-hpa-first"}}});
    let (ok, _, err) =
        stack.apply("hpa-name", &scaled_object("hpa-name", "other", same_hpa, json!({})), &[]).await;
    assert!(
        !ok && err.contains(
            "the HPA name \"keda-hpa-first\" is already used by another ScaledObject in namespace \"default\""
        ),
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
        !ok && err.contains(
            "already scaled by an HPA in namespace \"default\" that this ScaledObject does not own"
        ),
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
    assert!(!ok && err.contains("already scaled by another ScaledObject"), "{err}");
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

    // An invalid object stored around the webhook (valid to the CRD's schema, which upstream
    // enforces even then): label and finalizer edits pass, spec edits are judged, deletes are
    // never blocked.
    stack.store_unchecked(&scaled_object("legacy", "legacy", twin_triggers("a"), json!({}))).await;
    let (ok, _, err) = stack.kubectl(&["label", "so", "legacy", "team=a"]).await;
    assert!(ok, "{err}");
    let fin = r#"{"metadata":{"finalizers":["finalizer.keda.sh"]}}"#;
    let (ok, _, err) = stack.kubectl(&["patch", "so", "legacy", "--type=merge", "-p", fin]).await;
    assert!(ok, "{err}");
    let edit = json!({"spec": twin_triggers("b")}).to_string();
    let (ok, _, err) = stack.kubectl(&["patch", "so", "legacy", "--type=merge", "-p", &edit]).await;
    assert!(!ok && err.contains(DENIED) && err.contains("duplicate trigger name \"b\""), "{err}");
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

/// The operator's ServiceAccount as the API server names it.
const OPERATOR_USER: &str = "system:serviceaccount:keda:ebb-operator";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_webhook_down_the_operators_own_writes_and_finalizer_removal_pass() {
    let stack = start("operator-writes").await;
    // An object with the operator's finalizer (restoreToOriginalReplicaCount), and one without.
    let held =
        scaled_object("held", "web", json!({"advanced": {"restoreToOriginalReplicaCount": true}}), json!({}));
    let mut held = held;
    held["metadata"]["finalizers"] = json!(["finalizer.keda.sh"]);
    let (ok, _, err) = stack.apply("held", &held, &[]).await;
    assert!(ok, "{err}");
    let (ok, _, err) = stack.apply("live", &scaled_object("live", "api", json!({}), json!({})), &[]).await;
    assert!(ok, "{err}");
    // Acting as the operator: impersonation on upstream (its admin may impersonate), a token of
    // that user on the local control plane.
    let as_operator: Vec<String> = if stack.cluster.is_upstream() {
        // The operator's own RBAC from deploy/, so its rights are what a cluster grants.
        let rbac = repo().join("deploy/base/operator/rbac.yaml");
        let (ok, _, err) = stack.kubectl(&["apply", "-f", rbac.to_str().unwrap()]).await;
        assert!(ok, "{err}");
        vec!["--as".into(), OPERATOR_USER.into()]
    } else {
        let sb = stack.cluster.sandbox_for("a token for the operator's user").unwrap();
        sb.add_user("e2e-operator-token", OPERATOR_USER, &["system:serviceaccounts", "system:authenticated"]);
        vec!["--token".into(), "e2e-operator-token".into()]
    };
    let operator = |args: &[&str]| -> Vec<String> {
        args.iter().map(|a| (*a).to_owned()).chain(as_operator.iter().cloned()).collect()
    };
    let mut stack = stack;
    stack.stop_webhook().await;

    // Other users' updates are still refused while nothing can judge them.
    let (ok, _, err) = stack.kubectl(&["label", "so", "live", "team=a"]).await;
    assert!(!ok && err.contains("failed calling webhook"), "{err}");
    // The operator's label patch passes.
    let args = operator(&["label", "so", "live", "scaledobject.keda.sh/name=live"]);
    let (ok, _, err) = stack.kubectl(&args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert!(ok, "the operator's label patch was blocked by the absent webhook: {err}");

    // Deleting the held object: the operator removes its finalizer and the delete completes.
    let (ok, _, err) = stack.kubectl(&["delete", "so", "held", "--wait=false"]).await;
    assert!(ok, "{err}");
    let args = operator(&[
        "patch",
        "so",
        "held",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ]);
    let (ok, _, err) = stack.kubectl(&args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert!(ok, "the operator's finalizer removal was blocked by the absent webhook: {err}");
    let sos: Api<ScaledObject> = Api::namespaced(stack.cluster.client(), "default");
    support::wait_for("the held ScaledObject to be gone", Duration::from_secs(20), async || {
        sos.get_opt("held").await.unwrap().is_none()
    })
    .await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_formula_naming_no_trigger_is_denied_with_its_position() {
    let stack = start("modifiers").await;
    let path = repo().join("tests/fixtures/scaling-modifiers/bad-formula.yaml");
    let (ok, _, err) = stack.kubectl(&["apply", "--validate=false", "-f", path.to_str().unwrap()]).await;
    assert!(!ok, "bad-formula.yaml was admitted");
    let want = format!(
        "{DENIED}spec.advanced.scalingModifiers.formula: unknown name \"trig_three\" (at character 47): every \
         variable must be the name of one of this ScaledObject's triggers (named: trig_one, trig_two)"
    );
    assert!(err.contains(&want), "want {want}\ngot  {err}");
    // KEDA's documented examples are admitted.
    for file in ["average", "conditional", "count", "fallback-chain"] {
        let path = repo().join(format!("tests/fixtures/scaling-modifiers/{file}.yaml"));
        let (ok, _, err) = stack.kubectl(&["apply", "--validate=false", "-f", path.to_str().unwrap()]).await;
        assert!(ok, "{file}: {err}");
    }
    stack.stop().await;
}
