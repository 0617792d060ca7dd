//! The manifests on the local control plane, through the real kubectl:
//!
//! - the rendered default overlay is applied (`kubectl apply --validate=false -f -`), every
//!   object is created, a second apply changes nothing, and the post-install checks of seed 003
//!   answer: `kubectl get crd` lists KEDA's three CRDs, `kubectl get apiservice
//!   v1beta1.external.metrics.k8s.io` shows the ebb Service, `kubectl get
//!   validatingwebhookconfigurations` lists ebb's. (`kubectl get --raw
//!   /apis/external.metrics.k8s.io/v1beta1` needs a running metrics API server and is covered by
//!   its own scenarios, not here.)
//! - deploy/scripts/generate-certs.sh makes a CA and a certificate that `openssl verify`
//!   accepts for server and client use with the three Services' names, and a kustomization that
//!   `kubectl apply -k` installs; an in-process webhook serving that certificate then admits
//!   and denies ScaledObjects applied with kubectl, the control plane checking it against the
//!   caBundle the kustomization set.
//! - deploy/rendered/default.yaml, the copy `ebb sandbox` installs, equals the rendering of
//!   the default overlay (`EBB_UPDATE_RENDERED=1` rewrites it).
//!
//! The stack running from these manifests (the sandbox node starting the Deployments' Pods) is
//! covered by `cli/tests/sandbox.rs`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use clap::Parser as _;
use ebb_sandbox::sandbox::{Config, Sandbox};
use serde_json::json;

use super::{deploy, documents, kn, kustomize, render_overlay, run, temp_dir};

#[derive(Debug)]
struct Cluster {
    sb: Sandbox,
    dir: PathBuf,
    kubeconfig: PathBuf,
}

impl Cluster {
    async fn start(tag: &str) -> Self {
        let sb = Sandbox::start(Config { controllers: false, ..Default::default() }).await.unwrap();
        let dir = temp_dir(tag);
        let kubeconfig = dir.join("kubeconfig");
        ebb_sandbox::kubeconfig::write_kubeconfig(&kubeconfig, &sb.kubeconfig()).unwrap();
        Self { sb, dir, kubeconfig }
    }

    /// kubectl against this control plane, with a discovery cache of its own.
    async fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let mut all = vec!["--cache-dir".to_owned(), self.dir.join("cache").display().to_string()];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        let (kc, input) = (self.kubeconfig.clone(), stdin.map(str::to_owned));
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = all.iter().map(String::as_str).collect();
            run("kubectl", &args, input.as_deref(), &[("KUBECONFIG", kc.as_path())])
        })
        .await
        .unwrap()
    }

    async fn stop(self) {
        self.sb.stop().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn rendered_default_overlay_is_current() {
    let path = deploy().join("rendered/default.yaml");
    let header = "# Generated from deploy/overlays/default by `kubectl kustomize`; do not edit. `ebb sandbox` installs\n\
                  # it. Regenerate: EBB_UPDATE_RENDERED=1 cargo test -p ebb-e2e --test deploy rendered\n";
    let want = format!("{header}{}", render_overlay("default").yaml);
    if std::env::var("EBB_UPDATE_RENDERED").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{} is stale: run EBB_UPDATE_RENDERED=1 cargo test -p ebb-e2e --test deploy rendered",
        path.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_overlay_applies_and_answers_the_post_install_checks() {
    let cluster = Cluster::start("apply").await;
    let rendered = render_overlay("default");
    let (ok, out, err) =
        cluster.kubectl(&["apply", "--validate=false", "-f", "-"], Some(&rendered.yaml)).await;
    assert!(ok, "kubectl apply failed:\n{out}\n{err}");
    let created = out.lines().filter(|l| l.ends_with(" created")).count();
    assert_eq!(created, rendered.objects.len(), "not every object was created:\n{out}\n{err}");
    for o in &rendered.objects {
        let name = o["metadata"]["name"].as_str().unwrap();
        assert!(
            out.lines().any(|l| l.contains(&format!("/{name} created"))),
            "{} missing from:\n{out}",
            kn(o)
        );
    }

    // Applying again changes nothing.
    let (ok, out, err) =
        cluster.kubectl(&["apply", "--validate=false", "-f", "-"], Some(&rendered.yaml)).await;
    assert!(ok, "second apply failed:\n{err}");
    let unchanged = out.lines().filter(|l| l.ends_with(" unchanged")).count();
    assert_eq!(unchanged, rendered.objects.len(), "second apply changed objects:\n{out}");

    // Seed 003's post-install checks.
    let (ok, out, err) = cluster.kubectl(&["get", "crd"], None).await;
    assert!(ok, "{err}");
    let keda: Vec<&str> =
        out.lines().filter(|l| l.contains("keda")).map(|l| l.split_whitespace().next().unwrap()).collect();
    assert_eq!(
        keda,
        ["clustertriggerauthentications.keda.sh", "scaledobjects.keda.sh", "triggerauthentications.keda.sh"],
        "{out}"
    );
    let (ok, out, err) =
        cluster.kubectl(&["get", "apiservice", "v1beta1.external.metrics.k8s.io"], None).await;
    assert!(ok, "{err}");
    let row: Vec<&str> = out.lines().nth(1).unwrap_or("").split_whitespace().collect();
    assert_eq!(
        row.get(..2),
        Some(&["v1beta1.external.metrics.k8s.io", "keda/ebb-metrics-apiserver"][..]),
        "{out}"
    );
    let (ok, out, err) = cluster.kubectl(&["get", "validatingwebhookconfigurations"], None).await;
    assert!(ok, "{err}");
    let row: Vec<&str> =
        out.lines().find(|l| l.starts_with("keda-admission ")).unwrap_or("").split_whitespace().collect();
    assert_eq!(row.get(..2), Some(&["keda-admission", "3"][..]), "{out}");
    let (ok, out, _) = cluster.kubectl(&["-n", "keda", "get", "deployments", "-o", "name"], None).await;
    assert!(ok);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "deployment.apps/ebb-metrics-apiserver",
            "deployment.apps/ebb-operator",
            "deployment.apps/ebb-webhook"
        ]
    );
    cluster.stop().await;
}

/// Runs deploy/scripts/generate-certs.sh into `out`: its standard output.
fn generate_certs(out: &Path) -> String {
    let script = deploy().join("scripts/generate-certs.sh");
    let (ok, stdout, stderr) = run("bash", &[script.to_str().unwrap(), out.to_str().unwrap()], None, &[]);
    assert!(ok, "generate-certs.sh failed: {stderr}");
    stdout
}

#[test]
fn generated_certificates_serve_and_authenticate_the_three_services() {
    let dir = temp_dir("certs");
    let out = dir.join("out");
    let printed = generate_certs(&out);
    let file = |n: &str| out.join(n).display().to_string();
    let mut leaves = Vec::new();
    for (secret, service, _) in super::manifests::CERTIFICATE_SECRETS {
        let crt = file(&format!("{secret}/tls.crt"));
        // Each certificate is for one purpose only, and verifies for it.
        let (want, other) =
            if service.is_some() { ("sslserver", "sslclient") } else { ("sslclient", "sslserver") };
        let verify = |purpose: &str| {
            run("openssl", &["verify", "-CAfile", &file("ca.crt"), "-purpose", purpose, &crt], None, &[])
        };
        let (ok, stdout, stderr) = verify(want);
        assert!(ok, "{secret} {want}: {stdout}{stderr}");
        assert!(!verify(other).0, "{secret} also verifies for {other}");
        let (ok, text, _) =
            run("openssl", &["x509", "-in", &crt, "-noout", "-ext", "subjectAltName"], None, &[]);
        assert!(ok);
        let name = service.unwrap_or("ebb-metrics-apiserver");
        let host = if service.is_some() { format!("{name}.keda.svc") } else { name.to_owned() };
        assert!(
            text.contains(&format!("DNS:{host},")) || text.contains(&format!("DNS:{host}\n")),
            "{secret}: {text}"
        );
        leaves.push(std::fs::read(&crt).unwrap());
    }
    let mode = |n: &str| {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(out.join(n)).unwrap().permissions().mode() & 0o777
    };
    assert_eq!((mode("ebb-webhook-tls/tls.key"), mode("ca.key")), (0o600, 0o600));
    assert!(!printed.contains("PRIVATE KEY"), "keys must never be printed");

    let ca = std::fs::read(out.join("ca.crt")).unwrap();
    let bundle = base64::engine::general_purpose::STANDARD.encode(&ca);
    assert!(printed.contains(&bundle), "the caBundle patch is not printed");
    let objects = documents(&kustomize(&out));
    let api = objects.iter().find(|o| o["kind"] == "APIService").unwrap();
    assert_eq!(api["spec"]["caBundle"], bundle.as_str());
    let vwc = objects.iter().find(|o| o["kind"] == "ValidatingWebhookConfiguration").unwrap();
    for hook in vwc["webhooks"].as_array().unwrap() {
        assert_eq!(hook["clientConfig"]["caBundle"], bundle.as_str());
    }
    for (name, _, _) in super::manifests::CERTIFICATE_SECRETS {
        let secret = objects.iter().find(|o| o["kind"] == "Secret" && o["metadata"]["name"] == name).unwrap();
        assert_eq!(secret["metadata"]["namespace"], "keda");
        let mut keys: Vec<&String> = secret["data"].as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["ca.crt", "tls.crt", "tls.key"], "{name}");
    }

    // A second run keeps the CA (the caBundles stay valid) and renews the certificates.
    generate_certs(&out);
    assert_eq!(std::fs::read(out.join("ca.crt")).unwrap(), ca);
    assert_ne!(std::fs::read(out.join("ebb-webhook-tls/tls.crt")).unwrap(), leaves[1]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_certificates_carry_admission_through_the_control_plane() {
    let cluster = Cluster::start("admission").await;
    let out = cluster.dir.join("certs");
    generate_certs(&out);
    let (ok, stdout, err) =
        cluster.kubectl(&["apply", "--validate=false", "-k", out.to_str().unwrap()], None).await;
    assert!(ok, "kubectl apply -k failed:\n{stdout}\n{err}");
    assert!(stdout.contains("secret/ebb-webhook-tls created"), "{stdout}");

    let kc = kube::config::Kubeconfig::from_yaml(&cluster.sb.kubeconfig()).unwrap();
    let client =
        kube::Client::try_from(kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap())
            .unwrap();
    let args = ebb_webhook::Args::try_parse_from([
        "ebb-webhook",
        "--admin-addr=127.0.0.1:0",
        "--secure-addr=127.0.0.1:0",
        &format!("--tls-cert-file={}", out.join("ebb-webhook-tls/tls.crt").display()),
        &format!("--tls-key-file={}", out.join("ebb-webhook-tls/tls.key").display()),
    ])
    .unwrap();
    let bound = ebb_webhook::bind(&args, client).await.unwrap();
    cluster.sb.map_service("keda", "ebb-webhook", bound.secure_addr());
    let index = bound.webhook().index.clone();
    let (trigger, shutdown) = ebb_plumbing::shutdown::channel();
    let task = tokio::spawn(async move { bound.serve(shutdown).await });
    assert!(index.wait_synced(Duration::from_secs(20)).await, "the webhook's watches never listed");

    let so = |name: &str, min: i64, max: i64| {
        serde_yaml::to_string(&json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"scaleTargetRef": {"name": "web"}, "minReplicaCount": min, "maxReplicaCount": max,
                "triggers": [{"type": "cron", "metadata": {"timezone": "UTC", "start": "0 8 * * *", "end": "0 9 * * *", "desiredReplicas": "1"}}]}}))
        .unwrap()
    };
    let (ok, stdout, err) =
        cluster.kubectl(&["apply", "--validate=false", "-f", "-"], Some(&so("good", 0, 3))).await;
    assert!(ok, "a valid ScaledObject was refused: {err}");
    assert_eq!(stdout.trim(), "scaledobject.keda.sh/good created");
    let (ok, _, err) =
        cluster.kubectl(&["apply", "--validate=false", "-f", "-"], Some(&so("bad", 5, 2))).await;
    assert!(!ok, "an invalid ScaledObject was admitted");
    assert!(err.contains("admission webhook \"vscaledobject.ebb.keda.sh\" denied the request"), "{err}");

    trigger.trigger();
    tokio::time::timeout(Duration::from_secs(15), task).await.unwrap().unwrap().unwrap();
    cluster.stop().await;
}
