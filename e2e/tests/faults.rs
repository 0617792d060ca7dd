//! The fault suite: each scaler's real backend hangs (SIGSTOP) or crashes (SIGKILL, then a
//! restart on the same address with its data rebuilt) while the whole stack scales a target on
//! it, on the cluster `EBB_E2E_CLUSTER` selects (upstream Kubernetes in the test command).
//!
//! Every ScaledObject has `fallback: {failureThreshold: 3, replicas: 4}` and a backend value
//! worth 2 replicas. For each fault the suite records what a user sees — the Fallback condition,
//! the failures counted in `status.health`, the Events, the target's replica timeline — and
//! checks what must hold: the target lands on the fallback replicas, never on zero (a failing
//! source is not an idle one), `status.lastActiveTime` is neither cleared nor moved back, and once
//! the backend is back the object returns to 2 replicas with Fallback=False. The recovery time
//! is measured from the backend answering again. A table of all faults is printed at the end.
//!
//! Certificates rotated under load: while 16 clients ask the external metrics API for a value
//! through the API server's aggregator without pause, the metrics API server's serving
//! certificate and both ends of its link to the operator (the operator's serving certificate,
//! the metrics API server's client certificate) are replaced on disk, twice. No question may go
//! unanswered.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "metrics_apiserver_support/mod.rs"]
mod support;

#[path = "scaling_support/mod.rs"]
mod scaling;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ebb_api::ScaledObject;
use ebb_scalers::aws::{AwsClients, AwsCredentials, ClientKey, Secret};
use ebb_testbackends::moto::Moto;
use ebb_testbackends::prometheus::{Exporter, Options, Prometheus};
use ebb_testbackends::tansu::{Admin, Tansu};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use scaling::{Stack, Timeline, secret};
use serde_json::{Value, json};
use support::{NS, SERVICE, SERVICE_NS, create_deployment, replicas, wait_for, wait_until};

/// What the backends report: worth 2 replicas at a target of 5 per replica.
const VALUE: u32 = 10;
const HEALTHY: i32 = 2;
const FALLBACK: i32 = 4;
/// How long a fault may take to be seen and the fallback to be applied.
const FAULT_LIMIT: Duration = Duration::from_secs(60);
/// How long recovery may take once the backend answers again.
const RECOVERY_LIMIT: Duration = Duration::from_secs(60);

/// One row of the fault table.
struct Row {
    fault: String,
    observed: String,
    to_fallback: Duration,
    recovery: Duration,
    lost: String,
}

/// The ScaledObject spec shared by every scenario around `triggers`.
fn spec(target: &str, triggers: Value) -> Value {
    json!({"scaleTargetRef": {"name": target}, "minReplicaCount": 0, "maxReplicaCount": 10,
        "pollingInterval": 1, "cooldownPeriod": 30,
        "fallback": {"failureThreshold": 3, "replicas": FALLBACK},
        "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}}},
        "triggers": triggers})
}

fn scaled_object(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": name}, "spec": spec})
}

/// (lastActiveTime, failures counted over all metrics, Fallback condition status and message).
async fn state(
    client: &kube::Client,
    name: &str,
) -> (Option<k8s_openapi::jiff::Timestamp>, i32, String, String) {
    let so = Api::<ScaledObject>::namespaced(client.clone(), NS).get(name).await.unwrap();
    let status = so.status.unwrap_or_default();
    let failures = status.health.values().filter_map(|h| h.number_of_failures).sum();
    let fallback = status.conditions.iter().find(|c| c.type_ == "Fallback");
    (
        status.last_active_time.map(|t| t.0),
        failures,
        fallback.map(|c| c.status.clone()).unwrap_or_default(),
        fallback.and_then(|c| c.message.clone()).unwrap_or_default(),
    )
}

/// How often each Event reason was recorded about `name` (a repeated Event is one object with a
/// series count).
async fn event_counts(client: &kube::Client, name: &str) -> BTreeMap<String, i32> {
    let events: Api<Event> = Api::namespaced(client.clone(), NS);
    let mut counts = BTreeMap::new();
    for e in events.list(&ListParams::default()).await.unwrap().items {
        if e.regarding.as_ref().and_then(|r| r.name.as_deref()) != Some(name) {
            continue;
        }
        let n = e.series.as_ref().map_or(e.deprecated_count.unwrap_or(1), |s| s.count);
        *counts.entry(e.reason.unwrap_or_default()).or_insert(0) += n;
    }
    counts
}

/// The Events recorded between `before` and `after`, as `reason×n`.
fn new_events(before: &BTreeMap<String, i32>, after: &BTreeMap<String, i32>) -> Vec<String> {
    after
        .iter()
        .filter_map(|(reason, n)| {
            let n = n - before.get(reason).copied().unwrap_or(0);
            (n > 0).then(|| format!("{reason}×{n}"))
        })
        .collect()
}

/// Waits until `name`'s target runs `HEALTHY` replicas with Fallback=False.
async fn wait_healthy(client: &kube::Client, name: &str, limit: Duration) -> Option<Duration> {
    wait_until(limit, async || {
        let (_, failures, fallback, _) = state(client, name).await;
        failures == 0 && fallback == "False" && replicas(client, name).await == HEALTHY
    })
    .await
}

/// Runs one fault on ScaledObject `name` (whose target has the same name): `fault` breaks the
/// backend, `heal` makes it answer again. Checks the invariants and returns the table row. With
/// `exact`, the timeline must be exactly healthy → fallback → healthy; a backend whose data is
/// rebuilt after a restart may pass through partial values (a half-filled queue) on the way back.
async fn run_fault<B>(
    client: &kube::Client,
    name: &str,
    fault: &str,
    exact: bool,
    backend: &mut B,
    break_it: impl AsyncFnOnce(&mut B),
    heal: impl AsyncFnOnce(&mut B),
) -> Row {
    let healthy = wait_healthy(client, name, RECOVERY_LIMIT).await;
    assert!(healthy.is_some(), "{name}: not healthy at {HEALTHY} replicas before `{fault}`");
    let (active_before, _, _, _) = state(client, name).await;
    assert!(active_before.is_some(), "{name}: active, so lastActiveTime is set");
    let events_before = event_counts(client, name).await;
    let timeline = Timeline::start(client, name);

    let broken_at = Instant::now();
    break_it(backend).await;
    let mut most_failures = 0;
    let mut message = String::new();
    let to_fallback = wait_for(
        &format!("{name}: Fallback=True and {FALLBACK} replicas after `{fault}`"),
        FAULT_LIMIT,
        async || {
            let (_, failures, fallback, msg) = state(client, name).await;
            most_failures = most_failures.max(failures);
            if fallback == "True" {
                message = msg;
            }
            fallback == "True" && replicas(client, name).await == FALLBACK
        },
    )
    .await;
    let (active_during, _, _, _) = state(client, name).await;

    heal(backend).await;
    let healed_at = Instant::now();
    let recovery = wait_healthy(client, name, RECOVERY_LIMIT).await.unwrap_or_else(|| {
        panic!("{name}: did not recover within {RECOVERY_LIMIT:?} after `{fault}`: {}", timeline.render())
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (active_after, _, _, _) = state(client, name).await;
    let counts = timeline.counts();
    let events = new_events(&events_before, &event_counts(client, name).await);

    // What must hold.
    assert!(
        !counts.contains(&0),
        "{name}: a failing source scaled the target to zero: {}",
        timeline.render()
    );
    assert!(
        counts.iter().all(|n| *n <= FALLBACK),
        "{name}: more than {FALLBACK} replicas: {}",
        timeline.render()
    );
    assert!(most_failures >= 3, "{name}: Fallback=True with {most_failures} failures counted");
    for (when, t) in [("during the fault", &active_during), ("after recovery", &active_after)] {
        let t = t.as_ref().unwrap_or_else(|| panic!("{name}: lastActiveTime cleared {when}"));
        assert!(t >= active_before.as_ref().unwrap(), "{name}: lastActiveTime moved back {when}: {t}");
    }
    assert!(events.iter().any(|r| r.starts_with("ScaledObjectFallbackActivated")), "{name}: {events:?}");
    assert!(events.iter().any(|r| r.starts_with("ScaledObjectFallbackDeactivated")), "{name}: {events:?}");
    let flaps = counts.windows(2).filter(|w| w[0] != w[1]).count();
    assert_eq!(counts[..2], [HEALTHY, FALLBACK], "{name}: straight to fallback: {}", timeline.render());
    if exact {
        assert_eq!(counts, vec![HEALTHY, FALLBACK, HEALTHY], "{name}: no flapping: {}", timeline.render());
    }

    let row = Row {
        fault: fault.to_owned(),
        observed: format!(
            "Fallback=True ({most_failures} failures counted; message: {message:?}); replicas {}; events {}",
            counts.iter().map(ToString::to_string).collect::<Vec<_>>().join("→"),
            events.join(", ")
        ),
        to_fallback,
        recovery,
        lost: format!("nothing (lastActiveTime kept, {flaps} replica changes, never 0)"),
    };
    println!(
        "FAULT | {} | {} | to fallback {:.1}s (fault at +0, broken for {:.1}s) | recovery {:.1}s | {}",
        row.fault,
        row.observed,
        row.to_fallback.as_secs_f64(),
        healed_at.duration_since(broken_at).as_secs_f64(),
        row.recovery.as_secs_f64(),
        row.lost
    );
    row
}

/// An SQS client on moto for the test's own side.
async fn sqs(moto: &Moto) -> aws_sdk_sqs::Client {
    let clients = AwsClients::shared(ClientKey {
        region: "us-east-1".into(),
        endpoint: Some(moto.endpoint()),
        credentials: AwsCredentials::Static {
            access_key_id: Secret::new("AKIAEBBEFAULTS"),
            secret_access_key: Secret::new("producer"),
            session_token: None,
        },
    });
    clients.sqs().await.clone()
}

/// Creates queue `faults` with `VALUE` messages; returns its URL.
async fn fill_queue(moto: &Moto) -> String {
    let sqs = sqs(moto).await;
    let url = sqs.create_queue().queue_name("faults").send().await.unwrap().queue_url().unwrap().to_owned();
    for i in 0..VALUE {
        sqs.send_message().queue_url(&url).message_body(format!("m{i}")).send().await.unwrap();
    }
    url
}

/// Creates the topic with `VALUE` records over its 3 partitions, then commits offset 0 for the
/// group: a lag of `VALUE`.
async fn fill_topic(tansu: &Tansu) {
    let mut admin = Admin::connect(&tansu.bootstrap()).await.unwrap();
    admin.create_topic("faults", 3).await.unwrap();
    admin.produce("faults", &[(0, 4), (1, 3), (2, 3)]).await.unwrap();
    admin.commit("faults-group", "faults", &[(0, 0), (1, 0), (2, 0)]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backends_that_hang_or_crash_land_on_fallback_and_recover_losing_nothing() {
    support::init_logs();
    let started = Instant::now();
    let exporter = Exporter::start(&format!("# TYPE ebb_queue gauge\nebb_queue {VALUE}\n")).await.unwrap();
    let opts = Options { scrape_interval: Duration::from_secs(1), ..Options::scraping(&[exporter.addr()]) };
    let mut prom = tokio::task::block_in_place(|| Prometheus::start(&opts)).unwrap();
    let mut moto = tokio::task::block_in_place(Moto::start).unwrap();
    let url = fill_queue(&moto).await;
    let mut tansu = tokio::task::block_in_place(Tansu::start).unwrap();
    fill_topic(&tansu).await;

    let stack = Stack::start("faults", Duration::from_secs(1)).await;
    let client = stack.client.clone();
    stack
        .create(secret("fault-keys", &[("id", "AKIAEBBEFAULTS"), ("secret", "faultsSecretNeverLogged")]))
        .await;
    stack
        .create(json!({"apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication",
        "metadata": {"name": "fault-keys"},
        "spec": {"secretTargetRef": [
            {"parameter": "awsAccessKeyID", "name": "fault-keys", "key": "id"},
            {"parameter": "awsSecretAccessKey", "name": "fault-keys", "key": "secret"}]}}))
        .await;
    for name in ["f-prometheus", "f-sqs", "f-kafka"] {
        create_deployment(&client, name, 0).await;
    }
    let prom_trigger = json!([{"type": "prometheus", "metadata": {"serverAddress": prom.url(),
        "query": "ebb_queue", "threshold": "5", "ignoreNullValues": "false"}}]);
    stack.create(scaled_object("f-prometheus", spec("f-prometheus", prom_trigger))).await;
    let sqs_trigger = json!([{"type": "aws-sqs-queue", "authenticationRef": {"name": "fault-keys"},
        "metadata": {"queueURL": url, "queueLength": "5", "awsRegion": "us-east-1",
        "awsEndpoint": moto.endpoint()}}]);
    stack.create(scaled_object("f-sqs", spec("f-sqs", sqs_trigger))).await;
    let kafka_trigger = json!([{"type": "kafka", "metadata": {"bootstrapServers": tansu.bootstrap(),
        "consumerGroup": "faults-group", "topic": "faults", "lagThreshold": "5"}}]);
    stack.create(scaled_object("f-kafka", spec("f-kafka", kafka_trigger))).await;

    let mut rows = Vec::new();
    rows.push(
        run_fault(
            &client,
            "f-prometheus",
            "prometheus hangs (SIGSTOP) 12 s",
            true,
            &mut prom,
            async |prom| prom.pause().unwrap(),
            async |prom| {
                tokio::time::sleep(Duration::from_secs(12)).await;
                prom.resume().unwrap();
            },
        )
        .await,
    );
    rows.push(
        run_fault(
            &client,
            "f-prometheus",
            "prometheus crashes (SIGKILL), restarts on its address",
            true,
            &mut prom,
            async |prom| tokio::task::block_in_place(|| prom.kill()),
            async |prom| tokio::task::block_in_place(|| prom.restart()).unwrap(),
        )
        .await,
    );
    rows.push(
        run_fault(
            &client,
            "f-sqs",
            "moto SQS hangs (SIGSTOP) 12 s",
            true,
            &mut moto,
            async |moto| moto.pause().unwrap(),
            async |moto| {
                tokio::time::sleep(Duration::from_secs(12)).await;
                moto.resume().unwrap();
            },
        )
        .await,
    );
    rows.push(
        run_fault(
            &client,
            "f-sqs",
            "moto SQS crashes (SIGKILL), restarts empty, queue refilled",
            false,
            &mut moto,
            async |moto| tokio::task::block_in_place(|| moto.kill()),
            async |moto| {
                tokio::task::block_in_place(|| moto.restart(&[])).unwrap();
                assert_eq!(fill_queue(moto).await, url, "the queue URL survives the restart");
            },
        )
        .await,
    );
    rows.push(
        run_fault(
            &client,
            "f-kafka",
            "tansu broker hangs (SIGSTOP) 12 s",
            true,
            &mut tansu,
            async |tansu| tansu.pause().unwrap(),
            async |tansu| {
                tokio::time::sleep(Duration::from_secs(12)).await;
                tansu.resume().unwrap();
            },
        )
        .await,
    );
    rows.push(
        run_fault(
            &client,
            "f-kafka",
            "tansu broker crashes (SIGKILL), restarts empty, topic and offsets rebuilt",
            false,
            &mut tansu,
            async |tansu| tokio::task::block_in_place(|| tansu.kill()),
            async |tansu| {
                tokio::task::block_in_place(|| tansu.restart()).unwrap();
                fill_topic(tansu).await;
            },
        )
        .await,
    );

    println!("\n| fault | observed | to fallback | recovery | lost |\n|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {:.1} s | {:.1} s | {} |",
            r.fault,
            r.observed,
            r.to_fallback.as_secs_f64(),
            r.recovery.as_secs_f64(),
            r.lost
        );
    }
    println!("fault suite took {:?}", started.elapsed());
    stack.stop().await;
}

/// Asks the external metrics API for `path` through the API server (the aggregator): status code
/// and time taken.
async fn ask(client: &kube::Client, path: &str) -> (u16, Duration) {
    let started = Instant::now();
    let request = http::Request::get(path).body(Vec::new()).unwrap();
    let status = match client.request_text(request).await {
        Ok(_) => 200,
        Err(kube::Error::Api(e)) => e.code,
        Err(_) => 0,
    };
    (status, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_rotated_under_load_lose_no_question() {
    support::init_logs();
    let stack = Stack::start("rotate-load", Duration::from_secs(1)).await;
    let client = stack.client.clone();
    create_deployment(&client, "rotated", 1).await;
    support::create_cron_so(&client, "rotated", "rotated", 3, 30).await;
    let metric = support::metric_name(&client, "rotated").await;
    let path = support::value_path(&metric, "rotated");
    wait_for("a value through the aggregator", Duration::from_secs(30), async || {
        ask(&client, &path).await.0 == 200
    })
    .await;

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (client, path, stop) = (client.clone(), path.clone(), stop.clone());
            tokio::spawn(async move {
                let mut answers = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    answers.push(ask(&client, &path).await);
                }
                answers
            })
        })
        .collect();
    let pki = &stack.pki;
    for round in 0..2 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        pki.rotate_serving(&stack.cluster.service_cert(SERVICE_NS, SERVICE));
        tokio::time::sleep(Duration::from_secs(2)).await;
        let operator = pki.internal_ca.issue_server(&["localhost"], &[[127, 0, 0, 1].into()]).unwrap();
        pki.dir.write("operator.key", &operator.key_pem);
        pki.dir.write("operator.crt", &operator.cert_pem);
        let client_leaf = pki.internal_ca.issue_client(SERVICE, &[]).unwrap();
        pki.dir.write("client.key", &client_leaf.key_pem);
        pki.dir.write("client.crt", &client_leaf.cert_pem);
        println!("round {round}: serving and both internal certificates replaced");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut answers = Vec::new();
    for w in workers {
        answers.extend(w.await.unwrap());
    }
    let failed: Vec<u16> = answers.iter().map(|(s, _)| *s).filter(|s| *s != 200).collect();
    let ms: Vec<f64> = answers.iter().map(|(_, t)| t.as_secs_f64() * 1000.0).collect();
    println!(
        "FAULT | serving + internal certificates replaced twice under load (16 clients, through the aggregator) | {} questions, {} unanswered, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms | recovery 0 s | nothing",
        answers.len(),
        failed.len(),
        scaling::percentile(&ms, 50.0),
        scaling::percentile(&ms, 99.0),
        scaling::percentile(&ms, 100.0)
    );
    assert!(answers.len() > 100, "the load ran: {} questions", answers.len());
    assert!(failed.is_empty(), "questions unanswered during rotation: {failed:?}");
    stack.stop().await;
}
