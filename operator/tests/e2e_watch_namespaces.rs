//! End to end on the local control plane: `WATCH_NAMESPACE` as KEDA takes it, a comma-separated
//! list. With `--watch-namespace team-a,team-b`, ScaledObjects in team-a and team-b get their
//! HPA and are scaled, one in team-c is left untouched (no HPA, no status, no scaling), and a
//! change of a TriggerAuthentication, then of its Secret, in team-b still reaches the scaler of
//! the ScaledObject using it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Mutex;
use std::time::Duration;

use ebb_api::TriggerAuthentication;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::*;

/// A client of the local control plane whose default namespace is `ns` (created if missing).
async fn client_in(sandbox: &ebb_sandbox::sandbox::Sandbox, admin: &kube::Client, ns: &str) -> kube::Client {
    let nss: Api<Namespace> = Api::all(admin.clone());
    let _ = nss
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap())
        .await;
    let kc = kube::config::Kubeconfig::from_yaml(&sandbox.kubeconfig()).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
    config.default_namespace = ns.to_owned();
    kube::Client::try_from(config).unwrap()
}

async fn put_secret(client: &kube::Client, name: &str, token: &str) {
    let secrets: Api<Secret> = Api::default_namespaced(client.clone());
    let s: Secret = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name}, "stringData": {"token": token}}))
    .unwrap();
    secrets.patch(name, &PatchParams::apply("e2e-test").force(), &Patch::Apply(&s)).await.unwrap();
}

fn trigger_auth(secret: &str) -> Value {
    json!({"apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication", "metadata": {"name": "auth"},
        "spec": {"secretTargetRef": [{"parameter": "bearerToken", "name": secret, "key": "token"}]}})
}

async fn hpa_exists(client: &kube::Client, so: &str) -> bool {
    let hpas: Api<HorizontalPodAutoscaler> = Api::default_namespaced(client.clone());
    hpas.get_opt(&ebb_api::scaled_object::hpa_name_for(so, None)).await.unwrap().is_some()
}

fn since(seen: &Mutex<Vec<String>>, from: usize) -> Vec<String> {
    seen.lock().unwrap().get(from..).map(<[String]>::to_vec).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_listed_namespaces_are_reconciled_and_scaled() {
    let (cluster, admin) = start_sandbox().await;
    let Some(sandbox) = cluster.sandbox_for("watching several namespaces") else {
        return cluster.stop().await;
    };
    let a = client_in(sandbox, &admin, "team-a").await;
    let b = client_in(sandbox, &admin, "team-b").await;
    let c = client_in(sandbox, &admin, "team-c").await;
    for client in [&a, &b, &c] {
        create_deployment(client, "web", 0).await;
    }
    let (prom, seen) = fake_prometheus().await;
    create_deployment(&b, "api", 0).await;
    put_secret(&b, "token-1", "first-token").await;
    put_secret(&b, "token-2", "second-token").await;
    let tas: Api<TriggerAuthentication> = Api::default_namespaced(b.clone());
    tas.create(&PostParams::default(), &serde_json::from_value(trigger_auth("token-1")).unwrap())
        .await
        .unwrap();

    let op =
        start_operator(&admin, &["--watch-namespace", " team-a,team-b ,", "--auth-refresh-interval", "1s"])
            .await;
    for client in [&a, &b, &c] {
        create_so(client, &scaled_object("web", "web", json!([open_window(10)]), json!({}))).await;
    }
    let prometheus = json!([{"type": "prometheus", "authenticationRef": {"name": "auth"},
        "metadata": {"serverAddress": format!("http://{prom}"), "query": "up", "threshold": "1", "authModes": "bearer"}}]);
    create_so(&b, &scaled_object("api", "api", prometheus, json!({"minReplicaCount": 1}))).await;

    for (what, client, name) in
        [("team-a/web", &a, "web"), ("team-b/web", &b, "web"), ("team-b/api", &b, "api")]
    {
        wait_for(&format!("{what} scaled to 1 with its HPA"), Duration::from_secs(30), async || {
            replicas(client, name).await == 1 && hpa_exists(client, name).await
        })
        .await;
    }
    // team-c is outside the list: no HPA, no status, no scaling.
    holds_for("team-c/web left untouched", Duration::from_secs(3), async || {
        let so = get_so(&c, "web").await.unwrap();
        so.status.is_none() && !hpa_exists(&c, "web").await && replicas(&c, "web").await == 0
    })
    .await;

    wait_for("queries with the first token", Duration::from_secs(20), async || {
        since(&seen, 0).contains(&"Bearer first-token".to_owned())
    })
    .await;
    // The TriggerAuthentication in team-b now points at another Secret: its watch notices.
    tas.patch("auth", &PatchParams::apply("e2e-test").force(), &Patch::Apply(trigger_auth("token-2")))
        .await
        .unwrap();
    wait_for("queries with the second token", Duration::from_secs(20), async || {
        since(&seen, 0).contains(&"Bearer second-token".to_owned())
    })
    .await;
    // And its Secret's value changes.
    put_secret(&b, "token-2", "third-token").await;
    wait_for("queries with the third token", Duration::from_secs(20), async || {
        since(&seen, 0).contains(&"Bearer third-token".to_owned())
    })
    .await;
    let so = get_so(&c, "web").await.unwrap();
    assert!(so.status.is_none() && count_events(&c, "web", "KEDAScalersStarted").await == 0);
    op.stop().await;
    cluster.stop().await;
}
