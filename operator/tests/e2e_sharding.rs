//! End to end on upstream Kubernetes (`EBB_E2E_CLUSTER=upstream`; skipped elsewhere): three
//! operator replicas with `--shards 12` split 60 cron ScaledObjects (pollingInterval 1, their
//! windows open, so each owner writes the object's status every poll). Each replica sends its
//! requests with a user agent of its own (`ebb-replica-<i>`), and kube-apiserver records every
//! `/scale` and `/status` write in its audit log, naming the replica.
//!
//! - The split: every shard Lease is held, each replica holds its fair share (4), and the
//!   objects per replica follow from the Leases' holders (their internal-address annotation).
//! - Metrics routing: the metrics API server (`--operator-shards 12`) answers a value for one
//!   object owned by each replica, dialling the holder's annotated address and verifying the
//!   operator's certificate for `--operator-url`'s host name.
//! - Takeover: one replica is aborted (no release). Its shard Leases get new holders within the
//!   lease duration plus a retry period (plus a margin for a loaded machine), and every
//!   orphaned object is written again by a survivor within that plus one polling interval.
//! - Rebalancing: a fourth replica joins; the survivors stop the loops of their extra shards,
//!   release them, and it takes them over while every replica keeps running.
//! - No double scaling: per object, the audit log's writes by the replicas, from the moment the
//!   split was stable, never interleave: the writers' intervals `[first, last]` do not overlap.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ebb_api::ScaledObject;
use ebb_api::shard::{INTERNAL_ADDRESS_ANNOTATION, shard_lease_name, shard_of};
use ebb_sandbox::pki::CertAuthority;
use ebb_testbackends::kubernetes::{Options, Upstream};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use support::*;

const SHARDS: u32 = 12;
const REPLICAS: usize = 3;
const OBJECTS: usize = 60;
const LEASE_NAME: &str = "ebb-operator";
const LEASE_DURATION: Duration = Duration::from_secs(3);
const RETRY: Duration = Duration::from_millis(500);
const OPERATOR_HOST: &str = "ebb-operator.keda.svc";

const AUDIT_POLICY: &str = r#"apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  verbs: ["update", "patch"]
  resources:
  - group: "apps"
    resources: ["deployments/scale"]
  - group: "keda.sh"
    resources: ["scaledobjects/status"]
- level: None
"#;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A replica's writes of one object: first, last, how many.
type Span = (DateTime<Utc>, DateTime<Utc>, usize);

/// One write in the audit log: when, by which replica, to which ScaledObject's target or status.
#[derive(Debug, Clone)]
struct Write {
    at: DateTime<Utc>,
    replica: usize,
    object: String,
}

/// The successful `/scale` and `/status` writes of the replicas in the audit log at `path`.
fn audit_writes(path: &Path, ns: &str) -> Vec<Write> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let Ok(ev) = serde_json::from_str::<Value>(line) else { continue };
        if ev["stage"] != "ResponseComplete" || ev["objectRef"]["namespace"] != ns {
            continue;
        }
        let code = ev["responseStatus"]["code"].as_i64().unwrap_or(0);
        if !(200..300).contains(&code) {
            continue;
        }
        let Some(replica) = ev["userAgent"]
            .as_str()
            .and_then(|ua| ua.strip_prefix("ebb-replica-"))
            .and_then(|i| i.parse().ok())
        else {
            continue;
        };
        let name = ev["objectRef"]["name"].as_str().unwrap_or_default();
        let object = match (ev["objectRef"]["resource"].as_str(), ev["objectRef"]["subresource"].as_str()) {
            (Some("deployments"), Some("scale")) => name.replacen("dep-", "so-", 1),
            (Some("scaledobjects"), Some("status")) => name.to_owned(),
            _ => continue,
        };
        let Some(at) = ev["requestReceivedTimestamp"].as_str().and_then(|t| t.parse().ok()) else { continue };
        out.push(Write { at, replica, object });
    }
    out.sort_by_key(|w| w.at);
    out
}

/// Per shard, the replica (index into `ports`) holding its Lease now, from the address annotation.
async fn holders(leases: &Api<Lease>, ports: &[u16]) -> BTreeMap<u32, Option<usize>> {
    let mut out = BTreeMap::new();
    let now = Utc::now();
    for k in 0..SHARDS {
        let lease = leases.get_opt(&shard_lease_name(LEASE_NAME, k)).await.unwrap();
        let holder = lease.and_then(|l| {
            let spec = l.spec?;
            if spec.holder_identity.as_deref().unwrap_or_default().is_empty() {
                return None;
            }
            let renewed = spec.renew_time?.0.as_millisecond();
            let expires = renewed + i64::from(spec.lease_duration_seconds.unwrap_or(0)) * 1000;
            if expires < now.timestamp_millis() {
                return None;
            }
            let address = l.metadata.annotations?.get(INTERNAL_ADDRESS_ANNOTATION)?.clone();
            let port: u16 = address.rsplit(':').next()?.parse().ok()?;
            ports.iter().position(|p| *p == port)
        });
        out.insert(k, holder);
    }
    out
}

struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("ebb-e2e-sharding-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = CertAuthority::new("sharding-ca").unwrap();
        let server = ca.issue_server(&["localhost", OPERATOR_HOST], &[[127, 0, 0, 1].into()]).unwrap();
        let client = ca.issue_client("ebb-metrics-apiserver", &[]).unwrap();
        for (name, text) in [
            ("ca.crt", ca.cert_pem()),
            ("tls.crt", &server.cert_pem),
            ("tls.key", &server.key_pem),
            ("client.crt", &client.cert_pem),
            ("client.key", &client.key_pem),
            ("audit-policy.yaml", AUDIT_POLICY),
        ] {
            std::fs::write(dir.join(name), text).unwrap();
        }
        Self { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A kube client for the upstream cluster with default namespace `ns`, sending `user_agent`.
async fn client_for(up: &Upstream, ns: &str, user_agent: Option<&str>) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(up.kubeconfig_path()).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
    config.default_namespace = ns.to_owned();
    if let Some(ua) = user_agent {
        config.headers.push((http::header::USER_AGENT, http::HeaderValue::from_str(ua).unwrap()));
    }
    kube::Client::try_from(config).unwrap()
}

/// The value the metrics API server at `port` answers for ScaledObject `so`'s first external
/// metric (waiting up to 10 s for a success), with the metric's name.
async fn external_value(
    https: &reqwest::Client,
    port: u16,
    client: &kube::Client,
    so: &str,
) -> (String, Value) {
    let ns = client.default_namespace().to_owned();
    let metric = get_so(client, so)
        .await
        .and_then(|o: ScaledObject| o.status?.external_metric_names.into_iter().next())
        .expect("externalMetricNames");
    let url = format!(
        "https://127.0.0.1:{port}/apis/external.metrics.k8s.io/v1beta1/namespaces/{ns}/{metric}\
         ?labelSelector=scaledobject.keda.sh%2Fname%3D{so}"
    );
    let mut answer = Value::Null;
    wait_for(&format!("a value for {so}"), Duration::from_secs(10), async || {
        let Ok(resp) = https.get(&url).send().await else { return false };
        let ok = resp.status().is_success();
        answer = resp.json().await.unwrap_or(Value::Null);
        ok
    })
    .await;
    (metric, answer["items"][0]["value"].clone())
}

struct Replica {
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    trigger: ebb_plumbing::shutdown::ShutdownTrigger,
}

async fn start_replica(up: &Upstream, ns: &str, i: usize, port: u16, pki: &Pki) -> Replica {
    // As the program does: the Leases through a client (and connections) of their own.
    let client = client_for(up, ns, Some(&format!("ebb-replica-{i}"))).await;
    let lease_client = client_for(up, ns, Some(&format!("ebb-replica-{i}"))).await;
    let internal = format!("127.0.0.1:{port}");
    let (cert, key, ca) = (pki.path("tls.crt"), pki.path("tls.key"), pki.path("ca.crt"));
    let argv = [
        "ebb-operator",
        "--admin-addr=127.0.0.1:0",
        "--operator-namespace",
        ns,
        "--watch-namespace",
        ns,
        "--egress-allow-cidrs=127.0.0.0/8,::1",
        "--shards=12",
        "--lease-name",
        LEASE_NAME,
        "--lease-duration=3s",
        "--renew-deadline=2s",
        "--retry-period=500ms",
        "--internal-addr",
        &internal,
        "--internal-cert-file",
        &cert,
        "--internal-key-file",
        &key,
        "--internal-client-ca-file",
        &ca,
    ];
    let args = <ebb_operator::Args as clap::Parser>::try_parse_from(argv).unwrap();
    let (trigger, shutdown) = ebb_plumbing::shutdown::channel();
    let task = tokio::spawn(ebb_operator::serve_with_lease_client(args, client, lease_client, shutdown));
    Replica { task, trigger }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_split_the_shards_and_take_over_a_lost_one() {
    if target() != Target::Upstream {
        return skipped("skipped: e2e_sharding needs upstream Kubernetes (EBB_E2E_CLUSTER=upstream)");
    }
    let started = Instant::now();
    let pki = Pki::new();
    let audit_log = pki.dir.join("audit.log");
    let opts = Options {
        apiserver_args: vec![
            format!("--audit-policy-file={}", pki.path("audit-policy.yaml")),
            format!("--audit-log-path={}", audit_log.display()),
            "--audit-log-maxbackup=1".into(),
        ],
        ..Options::default()
    };
    let up = tokio::task::spawn_blocking(move || Upstream::start(&opts)).await.unwrap().unwrap();
    let admin = client_for(&up, "default", None).await;
    ebb_testbackends::kubernetes::crds::install(&admin, "ebb-e2e").await.unwrap();
    let ns = format!("ebb-e2e-sharding-{}", std::process::id());
    let nss: Api<Namespace> = Api::all(admin.clone());
    nss.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap())
        .await
        .unwrap();
    let client = client_for(&up, &ns, None).await;
    eprintln!("control plane up after {:?}", started.elapsed());

    let window = open_window(15);
    for i in 0..OBJECTS {
        create_deployment(&client, &format!("dep-{i}"), 0).await;
        create_so(
            &client,
            &scaled_object(&format!("so-{i}"), &format!("dep-{i}"), json!([window.clone()]), json!({})),
        )
        .await;
    }

    let mut ports: Vec<u16> = (0..REPLICAS).map(|_| free_port()).collect();
    let mut replicas = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        replicas.push(Some(start_replica(&up, &ns, i, *port, &pki).await));
    }
    let leases: Api<Lease> = Api::default_namespaced(client.clone());

    // The split: every shard held, each replica at its fair share.
    let mut split = BTreeMap::new();
    wait_for("every replica holding its fair share of the shards", Duration::from_secs(20), async || {
        split = holders(&leases, &ports).await;
        let mut per = [0usize; REPLICAS];
        for h in split.values() {
            match h {
                Some(r) => per[*r] += 1,
                None => return false,
            }
        }
        let fair = per.iter().all(|n| *n == (SHARDS as usize).div_ceil(REPLICAS));
        if !fair {
            eprintln!("shards per replica: {per:?}");
        }
        fair
    })
    .await;
    let stable_at = Utc::now();
    let owner = |so: &str, split: &BTreeMap<u32, Option<usize>>| split[&shard_of(&ns, so, SHARDS)].unwrap();
    let mut objects_of: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for i in 0..OBJECTS {
        let so = format!("so-{i}");
        objects_of.entry(owner(&so, &split)).or_default().push(so);
    }
    for (r, objs) in &objects_of {
        let shards: Vec<u32> = split.iter().filter(|(_, h)| **h == Some(*r)).map(|(k, _)| *k).collect();
        eprintln!("split: replica {r} holds shards {shards:?}: {} objects", objs.len());
    }
    assert_eq!(objects_of.len(), REPLICAS, "every replica owns objects: {objects_of:?}");

    // Every object is written by its owner.
    wait_for("every object's loop writing from its owner", Duration::from_secs(20), async || {
        let writes = audit_writes(&audit_log, &ns);
        let written: BTreeSet<(usize, String)> =
            writes.iter().filter(|w| w.at > stable_at).map(|w| (w.replica, w.object.clone())).collect();
        (0..OBJECTS).all(|i| {
            let so = format!("so-{i}");
            written.contains(&(owner(&so, &split), so))
        })
    })
    .await;

    // Metrics routing: one object per replica through the metrics API server.
    let mas_args = <ebb_metrics_apiserver::Args as clap::Parser>::try_parse_from([
        "ebb-metrics-apiserver",
        "--secure-addr=127.0.0.1:0",
        "--admin-addr=127.0.0.1:0",
        "--insecure-skip-auth",
        &format!("--tls-cert-file={}", pki.path("tls.crt")),
        &format!("--tls-key-file={}", pki.path("tls.key")),
        &format!("--operator-url=https://{OPERATOR_HOST}:9666"),
        &format!("--operator-ca-file={}", pki.path("ca.crt")),
        &format!("--operator-cert-file={}", pki.path("client.crt")),
        &format!("--operator-key-file={}", pki.path("client.key")),
        "--operator-shards=12",
        &format!("--operator-lease-namespace={ns}"),
        &format!("--operator-lease-name={LEASE_NAME}"),
    ])
    .unwrap();
    let mas = ebb_metrics_apiserver::MetricsApiServer::bind(&mas_args, Some(client.clone())).await.unwrap();
    let mas_addr: SocketAddr = mas.secure_addr();
    let (mas_trigger, mas_shutdown) = ebb_plumbing::shutdown::channel();
    let mas_task = tokio::spawn(mas.serve(mas_shutdown));
    let https = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(std::fs::read(pki.dir.join("ca.crt")).unwrap().as_slice())
                .unwrap(),
        )
        .build()
        .unwrap();
    for (r, objs) in &objects_of {
        let (metric, value) = external_value(&https, mas_addr.port(), &client, &objs[0]).await;
        eprintln!("metrics API: {} (owned by replica {r}, port {}): {metric} = {value}", objs[0], ports[*r]);
        assert_eq!(value, "1", "the cron trigger's desiredReplicas");
    }

    // Kill replica 0: no release, its Leases expire.
    let victim = 0usize;
    let orphans: BTreeSet<String> = objects_of[&victim].iter().cloned().collect();
    let orphan_shards: Vec<u32> =
        split.iter().filter(|(_, h)| **h == Some(victim)).map(|(k, _)| *k).collect();
    replicas[victim].take().unwrap().task.abort();
    let killed_at = Utc::now();
    wait_for("the lost replica's shards taken over", Duration::from_secs(15), async || {
        let now = holders(&leases, &ports).await;
        orphan_shards.iter().all(|k| now[k].is_some_and(|r| r != victim))
    })
    .await;
    // When the last of them was taken: the new holders' acquireTime.
    let mut lease_takeover = Duration::ZERO;
    for k in &orphan_shards {
        let lease = leases.get(&shard_lease_name(LEASE_NAME, *k)).await.unwrap();
        let acquired = lease.spec.and_then(|s| s.acquire_time).unwrap().0.as_millisecond();
        let after = Duration::from_millis(u64::try_from(acquired - killed_at.timestamp_millis()).unwrap());
        lease_takeover = lease_takeover.max(after);
    }
    let mut loops_back = Duration::ZERO;
    wait_for("every orphaned object written again by a survivor", Duration::from_secs(15), async || {
        let writes = audit_writes(&audit_log, &ns);
        let mut first: BTreeMap<&str, DateTime<Utc>> = BTreeMap::new();
        for w in
            writes.iter().filter(|w| w.at > killed_at && w.replica != victim && orphans.contains(&w.object))
        {
            first.entry(w.object.as_str()).or_insert(w.at);
        }
        if first.len() < orphans.len() {
            return false;
        }
        let last = first.values().max().copied().unwrap();
        loops_back = (last - killed_at).to_std().unwrap_or_default();
        true
    })
    .await;
    eprintln!(
        "takeover: {} objects of replica {victim} (shards {orphan_shards:?}); Leases re-held after {lease_takeover:?}, \
         every orphaned loop writing again after {loops_back:?} (lease {LEASE_DURATION:?} + retry {RETRY:?})",
        orphans.len()
    );
    // Margins: the Lease is written in whole seconds and read by survivors once per retry
    // period; a loop starts after the reconcile and ticks once per polling interval (1 s).
    let margin = Duration::from_millis(1500);
    assert!(lease_takeover <= LEASE_DURATION + RETRY + margin, "Lease takeover took {lease_takeover:?}");
    assert!(
        loops_back <= LEASE_DURATION + RETRY + Duration::from_secs(1) + margin,
        "orphaned loops back after {loops_back:?}"
    );
    // The metrics API server follows the moved shard.
    let moved_so = orphans.iter().next().unwrap();
    let (metric, value) = external_value(&https, mas_addr.port(), &client, moved_so).await;
    let new_owner = owner(moved_so, &holders(&leases, &ports).await);
    eprintln!(
        "metrics API after takeover: {moved_so} (now owned by replica {new_owner}): {metric} = {value}"
    );
    assert_eq!(value, "1");

    // A newcomer: the two survivors (6 shards each) give up their extra shards — loops stopped,
    // then the Leases released — and it takes them while everyone keeps running.
    let newcomer = REPLICAS;
    ports.push(free_port());
    replicas.push(Some(start_replica(&up, &ns, newcomer, ports[newcomer], &pki).await));
    let joined_at = Utc::now();
    let mut after = BTreeMap::new();
    let rebalance = wait_for("the newcomer holding its fair share", Duration::from_secs(20), async || {
        after = holders(&leases, &ports).await;
        let mut per: BTreeMap<usize, usize> = BTreeMap::new();
        for h in after.values() {
            match h {
                Some(r) => *per.entry(*r).or_default() += 1,
                None => return false,
            }
        }
        per.get(&newcomer) == Some(&4) && per.values().all(|n| *n == 4)
    })
    .await;
    let handed: BTreeSet<String> =
        (0..OBJECTS).map(|i| format!("so-{i}")).filter(|so| owner(so, &after) == newcomer).collect();
    let handed_back = wait_for("the newcomer's objects written by it", Duration::from_secs(15), async || {
        let writes = audit_writes(&audit_log, &ns);
        let by_newcomer: BTreeSet<&str> = writes
            .iter()
            .filter(|w| w.at > joined_at && w.replica == newcomer)
            .map(|w| w.object.as_str())
            .collect();
        handed.iter().all(|so| by_newcomer.contains(so.as_str()))
    })
    .await;
    eprintln!(
        "rebalance: a fourth replica holds 4 shards after {rebalance:?}; its {} objects written by it after {:?} more",
        handed.len(),
        handed_back
    );
    tokio::time::sleep(Duration::from_secs(2)).await;

    // No double scaling: per object, the replicas' writes since the split was stable never
    // interleave.
    let writes = audit_writes(&audit_log, &ns);
    let mut per_object: BTreeMap<&str, BTreeMap<usize, Span>> = BTreeMap::new();
    for w in writes.iter().filter(|w| w.at > stable_at) {
        let e = per_object.entry(&w.object).or_default().entry(w.replica).or_insert((w.at, w.at, 0));
        e.1 = w.at;
        e.2 += 1;
    }
    let mut overlaps = Vec::new();
    let mut moved = 0;
    for (object, writers) in &per_object {
        let spans: Vec<_> = writers.iter().collect();
        if spans.len() > 1 {
            moved += 1;
        }
        for (i, (ra, a)) in spans.iter().enumerate() {
            for (rb, b) in &spans[i + 1..] {
                if a.0 <= b.1 && b.0 <= a.1 {
                    overlaps.push(format!(
                        "{object}: replica {ra} {:?}..{:?} and replica {rb} {:?}..{:?}",
                        a.0, a.1, b.0, b.1
                    ));
                }
            }
        }
    }
    let total: usize = per_object.values().flat_map(|w| w.values()).map(|s| s.2).sum();
    eprintln!(
        "double scaling: {total} /scale and /status writes by the replicas on {} objects ({moved} changed hands): {} overlapping writer intervals",
        per_object.len(),
        overlaps.len()
    );
    assert!(overlaps.is_empty(), "two replicas wrote one object at once: {overlaps:#?}");
    let expected: BTreeSet<&String> = orphans.iter().chain(&handed).collect();
    assert_eq!(moved, expected.len(), "exactly the orphaned and the handed-over objects changed hands");

    mas_trigger.trigger();
    let _ = tokio::time::timeout(Duration::from_secs(5), mas_task).await;
    for r in replicas.into_iter().flatten() {
        r.trigger.trigger();
        let _ = tokio::time::timeout(Duration::from_secs(5), r.task).await;
    }
    let _ = nss.delete(&ns, &Default::default()).await;
    eprintln!("e2e_sharding done in {:?}", started.elapsed());
}
