//! End to end (local control plane by default, upstream Kubernetes with
//! `EBB_E2E_CLUSTER=upstream`): credentials follow their Secret. A prometheus trigger reads its
//! bearer token through a TriggerAuthentication from a Secret; a small HTTP server in the test
//! plays Prometheus and records the Authorization header of every query. When the Secret's value
//! is replaced, the queries carry the new token within a few refresh intervals, only the
//! ScaledObject using that Secret gets its scalers rebuilt, and nothing of either token reaches
//! status or events. Also the authentication policy as a user meets it: a
//! ClusterTriggerAuthentication limited to other namespaces is refused with its rule named (and
//! without reading its Secret), a parameter set in metadata and by the authentication is
//! refused, and a Secret value mapped onto a non-secret parameter never appears in status or
//! events.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use ebb_api::ClusterTriggerAuthentication;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::*;

/// Operator flags: Secrets checked every second; the in-test Prometheus on loopback allowed.
const FLAGS: &[&str] = &["--auth-refresh-interval", "1s", "--egress-allow-cidrs", "127.0.0.0/8"];

async fn put_secret(client: &kube::Client, name: &str, data: Value) {
    let secrets: Api<Secret> = Api::default_namespaced(client.clone());
    let s: Secret = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name}, "stringData": data}))
    .unwrap();
    let pp = PatchParams::apply("e2e-test").force();
    secrets.patch(name, &pp, &Patch::Apply(&s)).await.unwrap();
}

async fn create(client: &kube::Client, obj: Value) {
    let api: Api<kube::api::DynamicObject> = Api::default_namespaced_with(
        client.clone(),
        &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
            "keda.sh",
            "v1alpha1",
            "TriggerAuthentication",
        )),
    );
    api.create(&PostParams::default(), &serde_json::from_value(obj).unwrap()).await.unwrap();
}

fn prometheus_trigger(addr: SocketAddr, auth: &str) -> Value {
    json!([{"type": "prometheus", "authenticationRef": {"name": auth},
        "metadata": {"serverAddress": format!("http://{addr}"), "query": "up", "threshold": "1", "authModes": "bearer"}}])
}

/// How many times an event with `reason` was recorded for object `name` (a repeated event is one
/// Event object whose series counts the occurrences).
async fn occurrences(client: &kube::Client, name: &str, reason: &str) -> i32 {
    let evs: Api<k8s_openapi::api::events::v1::Event> = Api::default_namespaced(client.clone());
    evs.list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .filter(|e| e.reason.as_deref() == Some(reason))
        .map(|e| e.series.as_ref().map_or(1, |s| s.count))
        .sum()
}

/// The Authorization headers seen since index `from`.
fn since(seen: &Mutex<Vec<String>>, from: usize) -> Vec<String> {
    seen.lock().unwrap().get(from..).map(<[String]>::to_vec).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_reaches_the_scaler_and_only_its_scaler_is_rebuilt() {
    let (cluster, client) = start_sandbox().await;
    let (rotated_addr, rotated_seen) = fake_prometheus().await;
    let (steady_addr, steady_seen) = fake_prometheus().await;
    create_deployment(&client, "rotated", 1).await;
    create_deployment(&client, "steady", 1).await;
    put_secret(&client, "token-a", json!({"token": "first-token"})).await;
    put_secret(&client, "token-b", json!({"token": "steady-token"})).await;
    for (ta, secret) in [("auth-a", "token-a"), ("auth-b", "token-b")] {
        create(
            &client,
            json!({"apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication",
            "metadata": {"name": ta},
            "spec": {"secretTargetRef": [{"parameter": "bearerToken", "name": secret, "key": "token"}]}}),
        )
        .await;
    }
    let op = start_operator(&client, FLAGS).await;
    let extra = json!({"minReplicaCount": 1});
    create_so(
        &client,
        &scaled_object("rotated", "rotated", prometheus_trigger(rotated_addr, "auth-a"), extra.clone()),
    )
    .await;
    create_so(&client, &scaled_object("steady", "steady", prometheus_trigger(steady_addr, "auth-b"), extra))
        .await;
    wait_for("queries with the first token", Duration::from_secs(20), async || {
        since(&rotated_seen, 0).contains(&"Bearer first-token".to_owned())
    })
    .await;
    wait_for("queries of the steady object", Duration::from_secs(20), async || {
        since(&steady_seen, 0).contains(&"Bearer steady-token".to_owned())
    })
    .await;
    let started = |name: &'static str| {
        let client = client.clone();
        async move { occurrences(&client, name, "KEDAScalersStarted").await }
    };
    assert_eq!(started("rotated").await, 1);
    assert_eq!(started("steady").await, 1);

    put_secret(&client, "token-a", json!({"token": "second-token"})).await;
    let took = wait_for("queries with the second token", Duration::from_secs(20), async || {
        since(&rotated_seen, 0).contains(&"Bearer second-token".to_owned())
    })
    .await;
    eprintln!("rotated token in use after {took:?}");
    // Once the new token is used, the old one is not sent again.
    let mark = rotated_seen.lock().unwrap().len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = since(&rotated_seen, mark);
    assert!(!after.is_empty() && after.iter().all(|h| h == "Bearer second-token"), "{after:?}");
    assert_eq!(started("rotated").await, 2, "the rotated object's scalers are rebuilt once");
    assert_eq!(started("steady").await, 1, "the other object's scalers are left alone");
    assert!(since(&steady_seen, 0).iter().all(|h| h == "Bearer steady-token"));

    // A change that leaves the resolved parameters as they were rebuilds nothing.
    put_secret(&client, "token-a", json!({"token": "second-token", "unrelated": "x"})).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(started("rotated").await, 2, "an unrelated key changed: nothing rebuilt");

    for name in ["rotated", "steady"] {
        let so = get_so(&client, name).await.unwrap();
        let text = format!("{:?} {:?}", so.status, events(&client, name).await);
        for token in ["first-token", "second-token", "steady-token"] {
            assert!(!text.contains(token), "{name}: {text}");
        }
    }
    op.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authentication_policy_is_explained_without_values() {
    let (cluster, client) = start_sandbox().await;
    let ns = client.default_namespace().to_owned();
    create_deployment(&client, "web", 1).await;
    put_secret(&client, "kafka", json!({"tls": "enable", "unsafe": "hunter2-not-a-number"})).await;
    // A ClusterTriggerAuthentication for another namespace only; its Secret does not even exist:
    // the refusal comes before anything is read.
    let cta_name = format!("only-elsewhere-{ns}");
    let ctas: Api<ClusterTriggerAuthentication> = Api::all(client.clone());
    let cta: ClusterTriggerAuthentication = serde_json::from_value(json!({
        "apiVersion": "keda.sh/v1alpha1", "kind": "ClusterTriggerAuthentication",
        "metadata": {"name": cta_name, "annotations": {"ebb.keda.sh/allowed-namespaces": "team-elsewhere"}},
        "spec": {"secretTargetRef": [{"parameter": "bearerToken", "name": "does-not-exist", "key": "token"}]}}))
    .unwrap();
    ctas.create(&PostParams::default(), &cta).await.unwrap();
    create(
        &client,
        json!({"apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication",
        "metadata": {"name": "kafka-auth"},
        "spec": {"secretTargetRef": [
            {"parameter": "tls", "name": "kafka", "key": "tls"},
            {"parameter": "unsafeSsl", "name": "kafka", "key": "unsafe"}]}}),
    )
    .await;
    let op = start_operator(&client, FLAGS).await;

    let kafka = |extra: Value| {
        let mut metadata = json!({"bootstrapServers": "127.0.0.1:9", "consumerGroup": "g", "topic": "t"});
        for (k, v) in extra.as_object().unwrap() {
            metadata[k] = v.clone();
        }
        json!([{"type": "kafka", "authenticationRef": {"name": "kafka-auth"}, "metadata": metadata}])
    };
    let cases = [
        (
            "cta-elsewhere",
            json!([{"type": "prometheus", "authenticationRef": {"name": cta_name, "kind": "ClusterTriggerAuthentication"},
                "metadata": {"serverAddress": "http://127.0.0.1:9", "query": "up", "threshold": "1"}}]),
            format!(
                "ClusterTriggerAuthentication {cta_name:?} may be used only by ScaledObjects in namespaces team-elsewhere (its ebb.keda.sh/allowed-namespaces annotation); namespace {ns:?} is not allowed"
            ),
        ),
        (
            "secret-value",
            kafka(json!({})),
            "spec.triggers[0] (kafka) metadata.unsafeSsl: expected true or false; the value, from TriggerAuthentication \"kafka-auth\" (secretTargetRef: Secret \"kafka\" key \"unsafe\"), is not shown".to_owned(),
        ),
        (
            "both-places",
            kafka(json!({"tls": "disable"})),
            "spec.triggers[0] (kafka) metadata.tls: set both in the trigger's metadata and by TriggerAuthentication \"kafka-auth\" (secretTargetRef: Secret \"kafka\" key \"tls\")".to_owned(),
        ),
    ];
    for (name, triggers, _) in &cases {
        create_so(&client, &scaled_object(name, "web", triggers.clone(), json!({}))).await;
    }
    for (name, _, want) in &cases {
        wait_for(&format!("{name}: Ready=False"), Duration::from_secs(15), async || {
            condition(&client, name, "Ready").await.is_some_and(|(s, _, _)| s == "False")
        })
        .await;
        let (_, reason, message) = condition(&client, name, "Ready").await.unwrap();
        assert_eq!(reason, "ScaledObjectCheckFailed", "{name}");
        assert!(message.contains(want.as_str()), "{name}: want {want:?} in {message:?}");
        let evs = events(&client, name).await;
        assert!(evs.iter().any(|(_, _, note)| note.contains(want.as_str())), "{name}: {evs:?}");
        let text = format!("{:?} {evs:?}", get_so(&client, name).await.unwrap().status);
        assert!(!text.contains("hunter2"), "{name}: {text}");
    }
    op.stop().await;
    let _ = ctas.delete(&cta_name, &DeleteParams::default()).await;
    cluster.stop().await;
}
