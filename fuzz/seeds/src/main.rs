//! Writes the fuzz corpora's seeds (`fuzz/corpus/<target>/`):
//! - `kafka_response`: what a real broker (tansu) answers ebb's Kafka scaler, recorded by a TCP
//!   proxy the broker advertises, so every connection the scaler opens passes through it. One
//!   seed per connection: the broker's bytes in order (ApiVersions, Metadata, FindCoordinator,
//!   OffsetFetch, ListOffsets frames, each with its length prefix), prefixed by `[0][n][n request
//!   keys]` (no SASL, then the requests after ApiVersions) as the fuzz target reads them (see
//!   `fuzz_targets/kafka_response.rs`).
//! - `prometheus_response`: `/api/v1/query` bodies from a real Prometheus (vector, scalar,
//!   matrix, several series, empty, string, error).
//! - `admission_review`, `check_manifests`: AdmissionReviews wrapping the repository's
//!   ScaledObject fixtures (`tests/fixtures`) and TriggerAuthentications, and the fixtures
//!   themselves with a manifest stream and a series CSV.
//!
//! Usage: `ebb-fuzz-seeds <fuzz dir> <repository dir>`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ebb_api::MetadataValue;
use ebb_scalers::kafka::config::parse_config;
use ebb_scalers::kafka::{KafkaScaler, PARAMS};
use ebb_scalers::params::{Params, ParseContext};
use ebb_testbackends::prometheus::{Exporter, Options, Prometheus};
use ebb_testbackends::tansu::{Admin, Tansu, TansuOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

type Result<T> = std::result::Result<T, String>;

/// Bytes of one proxied connection, each direction in order.
#[derive(Default, Debug)]
struct Recorded {
    requests: Vec<u8>,
    responses: Vec<u8>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, fuzz, repo] = &args[..] else {
        return Err("usage: ebb-fuzz-seeds <fuzz dir> <repository dir>".into());
    };
    let corpus = Path::new(fuzz).join("corpus");
    manifests(&corpus, Path::new(repo))?;
    kafka(&corpus.join("kafka_response")).await?;
    prometheus(&corpus.join("prometheus_response")).await?;
    Ok(())
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join(name);
    std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("{} ({} bytes)", path.display(), bytes.len());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Kafka

async fn proxy(
    listener: TcpListener,
    upstream: SocketAddr,
    on: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<Arc<Mutex<Recorded>>>>>,
) {
    while let Ok((client, _)) = listener.accept().await {
        let Ok(server) = tokio::net::TcpStream::connect(upstream).await else { continue };
        let rec = Arc::new(Mutex::new(Recorded::default()));
        if on.load(Ordering::SeqCst) {
            log.lock().unwrap_or_else(|e| e.into_inner()).push(rec.clone());
        }
        let (mut cr, mut cw) = client.into_split();
        let (mut sr, mut sw) = server.into_split();
        let up = rec.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 16 * 1024];
            while let Ok(n) = cr.read(&mut buf).await {
                if n == 0 || sw.write_all(&buf[..n]).await.is_err() {
                    break;
                }
                up.lock().unwrap_or_else(|e| e.into_inner()).requests.extend_from_slice(&buf[..n]);
            }
        });
        tokio::spawn(async move {
            let mut buf = [0u8; 16 * 1024];
            while let Ok(n) = sr.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                rec.lock().unwrap_or_else(|e| e.into_inner()).responses.extend_from_slice(&buf[..n]);
                if cw.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// Splits a stream of length-prefixed frames.
fn frames(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 4 {
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if rest.len() < 4 + len {
            break;
        }
        out.push(&rest[..4 + len]);
        rest = &rest[4 + len..];
    }
    out
}

fn api_name(key: i16) -> &'static str {
    match key {
        0 => "Produce",
        2 => "ListOffsets",
        3 => "Metadata",
        8 => "OffsetCommit",
        9 => "OffsetFetch",
        10 => "FindCoordinator",
        17 => "SaslHandshake",
        18 => "ApiVersions",
        36 => "SaslAuthenticate",
        _ => "Other",
    }
}

fn scaler(bootstrap: &str, pairs: &[(&str, &str)]) -> Result<KafkaScaler> {
    let mut md: BTreeMap<String, MetadataValue> = BTreeMap::new();
    md.insert("bootstrapServers".into(), bootstrap.into());
    for (k, v) in pairs {
        md.insert((*k).into(), (*v).into());
    }
    let ctx = ParseContext::default();
    let config = parse_config(&Params::new(0, "kafka", PARAMS, &md, &ctx)).map_err(|e| e.to_string())?;
    Ok(KafkaScaler::new(config))
}

async fn kafka(dir: &Path) -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let proxy_port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let tansu =
        Tansu::start_with(&TansuOptions { advertised_port: Some(proxy_port), ..TansuOptions::default() })?;
    let upstream: SocketAddr = tansu.bootstrap().parse().map_err(|e| format!("{e}"))?;
    let on = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Vec::new()));
    tokio::spawn(proxy(listener, upstream, on.clone(), log.clone()));

    let mut admin = Admin::connect(&tansu.bootstrap()).await?;
    admin.create_topic("orders", 3).await?;
    admin.produce("orders", &[(0, 10), (1, 7), (2, 25)]).await?;
    admin.commit("workers", "orders", &[(0, 4), (2, 5)]).await?;
    admin.create_topic("empty", 1).await?;

    on.store(true, Ordering::SeqCst);
    let bootstrap = format!("127.0.0.1:{proxy_port}");
    let cases: [&[(&str, &str)]; 5] = [
        &[("consumerGroup", "workers"), ("topic", "orders")],
        &[("consumerGroup", "workers")],
        &[("consumerGroup", "nobody"), ("topic", "orders"), ("offsetResetPolicy", "earliest")],
        &[("consumerGroup", "workers"), ("topic", "missing")],
        &[("consumerGroup", "workers"), ("topic", "empty"), ("partitionLimitation", "0")],
    ];
    for (i, pairs) in cases.iter().enumerate() {
        // A distinct setting per case so each scaler opens connections of its own.
        let mut pairs = pairs.to_vec();
        let lag = format!("{}", 10 + i);
        pairs.push(("lagThreshold", &lag));
        let s = scaler(&bootstrap, &pairs)?;
        let r = tokio::time::timeout(Duration::from_secs(10), s.poll()).await;
        println!("kafka case {i}: {r:?}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let recorded = log.lock().unwrap_or_else(|e| e.into_inner());
    let mut n = 0;
    for rec in recorded.iter() {
        let rec = rec.lock().unwrap_or_else(|e| e.into_inner());
        let keys: Vec<i16> = frames(&rec.requests)
            .iter()
            .filter_map(|f| f.get(4..6).map(|k| i16::from_be_bytes([k[0], k[1]])))
            .collect();
        let answers = frames(&rec.responses);
        if answers.is_empty() {
            continue;
        }
        let names: Vec<&str> = keys.iter().map(|k| api_name(*k)).collect();
        // The fuzz target's input: the request keys it sends after ApiVersions (one byte each,
        // count first), then the broker's bytes.
        let mut seed = vec![0u8]; // no SASL
        let later: Vec<i16> = keys.iter().skip(1).copied().collect();
        seed.push(u8::try_from(later.len()).unwrap_or(u8::MAX));
        seed.extend(later.iter().map(|k| u8::try_from(*k).unwrap_or(u8::MAX)));
        for a in &answers {
            seed.extend_from_slice(a);
        }
        write(dir, &format!("tansu-{n}-{}", names.join("-")), &seed)?;
        n += 1;
    }
    drop(tansu);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Prometheus

fn get(addr: SocketAddr, path_and_query: &str) -> Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    write!(s, "GET {path_and_query} HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut all = Vec::new();
    s.read_to_end(&mut all).map_err(|e| e.to_string())?;
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no header end")?;
    let head = String::from_utf8_lossy(&all[..split]).to_string();
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or("no status")?;
    Ok((status, all[split + 4..].to_vec()))
}

fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn prometheus(dir: &Path) -> Result<()> {
    let exporter = Exporter::start(
        "# TYPE queue_depth gauge\nqueue_depth{queue=\"a\"} 3\nqueue_depth{queue=\"b\"} 4.5\nqueue_depth{queue=\"c\"} NaN\nrequests_total 12\n",
    )
    .await?;
    let prom = Prometheus::start(&Options::scraping(&[exporter.addr()]))?;
    // Wait for the first samples.
    for _ in 0..60 {
        let (_, body) = get(prom.addr(), &format!("/api/v1/query?query={}", encode("count(queue_depth)")))?;
        if String::from_utf8_lossy(&body).contains("\"3\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let queries = [
        ("vector", "sum(queue_depth)"),
        ("vector-nan", "queue_depth{queue=\"c\"}"),
        ("vector-inf", "sum(queue_depth) / 0"),
        ("scalar", "scalar(sum(queue_depth))"),
        ("matrix", "queue_depth[5s]"),
        ("several-series", "queue_depth"),
        ("empty", "no_such_metric"),
        ("string", "\"text\""),
        ("error-parse", "sum(queue_depth"),
        ("error-execution", "queue_depth + on(queue) group_left queue_depth"),
    ];
    for (name, q) in queries {
        let (status, body) = get(prom.addr(), &format!("/api/v1/query?query={}", encode(q)))?;
        write(dir, &format!("prometheus-{name}-{status}"), &body)?;
    }
    let (status, body) = get(prom.addr(), "/api/v1/nope")?;
    write(dir, &format!("prometheus-not-found-{status}"), &body)?;
    let (status, body) = get(prom.addr(), "/graph")?;
    write(dir, &format!("prometheus-html-{status}"), &body)?;
    drop(prom);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Manifests and admission reviews

fn yaml_files(repo: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in ["tests/fixtures/seed", "tests/fixtures/bad"] {
        if let Ok(entries) = std::fs::read_dir(repo.join(d)) {
            for e in entries.flatten() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

fn review(operation: &str, object: &serde_json::Value, old: Option<&serde_json::Value>) -> serde_json::Value {
    let kind = object["kind"].as_str().unwrap_or("ScaledObject");
    let resource = if kind == "ScaledObject" { "scaledobjects" } else { "triggerauthentications" };
    serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "5b2d1c3e-0000-4000-8000-000000000001",
            "kind": {"group": "keda.sh", "version": "v1alpha1", "kind": kind},
            "resource": {"group": "keda.sh", "version": "v1alpha1", "resource": resource},
            "name": object["metadata"]["name"],
            "namespace": "ns",
            "operation": operation,
            "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
            "object": object,
            "oldObject": old.cloned().unwrap_or(serde_json::Value::Null),
            "dryRun": false
        }
    })
}

fn manifests(corpus: &Path, repo: &Path) -> Result<()> {
    let checks = corpus.join("check_manifests");
    let reviews = corpus.join("admission_review");
    for path in yaml_files(repo) {
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("x").to_owned();
        let bad = path.to_string_lossy().contains("/bad/");
        let stem = if bad { format!("bad-{stem}") } else { stem };
        write(&checks, &format!("{stem}.yaml"), text.as_bytes())?;
        let Ok(object) = serde_yaml::from_str::<serde_json::Value>(&text) else { continue };
        let mut object = object;
        object["metadata"]["namespace"] = serde_json::json!("ns");
        let body = serde_json::to_vec(&review("CREATE", &object, None)).map_err(|e| e.to_string())?;
        write(&reviews, &format!("{stem}-create.json"), &body)?;
        if !bad {
            let mut newer = object.clone();
            newer["spec"]["maxReplicaCount"] = serde_json::json!(7);
            let body =
                serde_json::to_vec(&review("UPDATE", &newer, Some(&object))).map_err(|e| e.to_string())?;
            write(&reviews, &format!("{stem}-update.json"), &body)?;
        }
    }
    // TriggerAuthentications: a typical one, and one naming providers ebb does not implement.
    let ta = serde_json::json!({
        "apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication",
        "metadata": {"name": "kafka-auth", "namespace": "ns"},
        "spec": {
            "secretTargetRef": [
                {"parameter": "username", "name": "kafka-secrets", "key": "username"},
                {"parameter": "password", "name": "kafka-secrets", "key": "password"}
            ],
            "env": [{"parameter": "region", "name": "AWS_REGION", "containerName": "app"}],
            "configMapTargetRef": [{"parameter": "ca", "name": "kafka-ca", "key": "ca.crt"}],
            "podIdentity": {"provider": "aws", "identityOwner": "workload"}
        }
    });
    let ta_vault = serde_json::json!({
        "apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication",
        "metadata": {"name": "vault-auth", "namespace": "ns"},
        "spec": {"hashiCorpVault": {"address": "https://vault:8200", "authentication": "token"}}
    });
    for (name, object) in [("trigger-authentication", &ta), ("trigger-authentication-vault", &ta_vault)] {
        let body = serde_json::to_vec(&review("CREATE", object, None)).map_err(|e| e.to_string())?;
        write(&reviews, &format!("{name}-create.json"), &body)?;
    }
    let delete = review("DELETE", &ta, Some(&ta));
    write(
        &reviews,
        "trigger-authentication-delete.json",
        &serde_json::to_vec(&delete).map_err(|e| e.to_string())?,
    )?;
    // `ebb check` input with a ScaledObject, its TriggerAuthentication, Secret and Deployment.
    let stream = "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: worker\n  namespace: ns\nspec:\n  scaleTargetRef:\n    name: worker\n  triggers:\n  - type: prometheus\n    metadata:\n      serverAddress: http://prometheus:9090\n      query: sum(queue_depth)\n      threshold: '5'\n    authenticationRef:\n      name: prom-auth\n---\napiVersion: keda.sh/v1alpha1\nkind: TriggerAuthentication\nmetadata:\n  name: prom-auth\n  namespace: ns\nspec:\n  secretTargetRef:\n  - parameter: bearerToken\n    name: prom\n    key: token\n  env:\n  - parameter: customHeaders\n    name: HEADERS\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: prom\n  namespace: ns\nstringData:\n  token: abc\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: worker\n  namespace: ns\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        env:\n        - name: HEADERS\n          value: X-Scope-OrgID=t1\n";
    write(&checks, "stream-with-auth.yaml", stream.as_bytes())?;
    write(&checks, "series.csv", b"time,value\n0s,1\n30s,\n1m,4.5\n2026-01-01T00:00:00Z,7\n")?;
    Ok(())
}
