//! The Kafka wire layer against a hostile peer: a fake broker on 127.0.0.1 (a tokio listener in
//! the test) answers with frames a real broker never sends — element counts far beyond the bytes
//! that follow, frames larger than the request can produce. Each must end in a clear error naming
//! the broker, never in a process abort. An allocation failure aborts the process (it is not a
//! panic), so the scenarios that could allocate run in a child process — this test binary again,
//! under `ulimit -v` — and the parent asserts the child exited normally.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kafka_support;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use chrono::Utc;
use ebb_scalers::Scaler;
use ebb_scalers::kafka::wire::{Connection, Opener, WireError};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, ResponseHeader};
use kafka_protocol::protocol::{Encodable, HeaderVersion};

/// Environment variable naming the scenario a child process runs.
const SCENARIO: &str = "EBB_KAFKA_HOSTILE_SCENARIO";
/// Address-space limit of the child (KiB): far above what decoding a small frame needs, far below
/// what a wire count of 2³¹ elements would reserve.
const CHILD_VMEM_KIB: u64 = 2 << 20;

/// One request as the fake broker saw it.
#[derive(Debug, Clone, Copy)]
struct Req {
    key: i16,
    version: i16,
    correlation: i32,
    /// The fake broker's own port.
    port: u16,
}

/// What the fake broker does with a request.
enum Answer {
    /// Send these bytes as they are (length prefix included).
    Raw(Vec<u8>),
}

/// A fake broker for one connection: answers each request with `answer`.
async fn fake_broker(answer: impl Fn(Req) -> Answer + Send + 'static) -> String {
    kafka_support::fake_broker(move |body, port| {
        let req = Req {
            key: i16::from_be_bytes([body[0], body[1]]),
            version: i16::from_be_bytes([body[2], body[3]]),
            correlation: i32::from_be_bytes([body[4], body[5], body[6], body[7]]),
            port,
        };
        let Answer::Raw(b) = answer(req);
        Some(b)
    })
    .await
}

/// A frame: length prefix, then `body`.
fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

/// An unsigned varint as the flexible versions encode counts (count + 1).
fn uvarint(mut v: u32) -> Vec<u8> {
    let mut out = Vec::new();
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out
}

/// A well-formed ApiVersions answer (encoded by kafka-protocol) listing what ebb uses.
fn good_api_versions(req: Req) -> Vec<u8> {
    let mut resp = ApiVersionsResponse::default();
    for (key, max) in [(18, 3), (3, 12), (2, 9), (10, 6), (9, 9), (17, 1), (36, 2)] {
        let mut k = ApiVersion::default();
        k.api_key = key;
        k.min_version = 0;
        k.max_version = max;
        resp.api_keys.push(k);
    }
    let mut buf = BytesMut::new();
    let mut h = ResponseHeader::default();
    h.correlation_id = req.correlation;
    h.encode(&mut buf, ApiVersionsResponse::header_version(req.version)).unwrap();
    resp.encode(&mut buf, req.version).unwrap();
    frame(&buf)
}

async fn open(addr: &str) -> Result<Connection, WireError> {
    Connection::open(addr, &Opener::default(), Arc::default()).await
}

fn assert_malformed(e: &WireError, addr: &str) {
    match e {
        WireError::Protocol(m) => {
            assert!(m.starts_with(addr), "names the broker: {m}");
            assert!(m.contains("malformed response"), "{m}");
        }
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

/// ApiVersions v3 (flexible) answered with a compact array count of 2³¹ − 1 and nothing after:
/// 15 bytes on the wire.
async fn compact_api_versions_count() {
    let addr = fake_broker(|req| {
        let mut body = req.correlation.to_be_bytes().to_vec(); // header v0
        body.extend_from_slice(&0i16.to_be_bytes()); // error_code
        body.extend(uvarint(0x8000_0000)); // api_keys: 2³¹ − 1 elements
        Answer::Raw(frame(&body))
    })
    .await;
    let e = open(&addr).await.unwrap_err();
    assert_malformed(&e, &addr);
    println!("scenario error: {e}");
}

/// ApiVersions v3 refused with UNSUPPORTED_VERSION, then the v0 retry answered with a classic
/// array count of 0x7fff_ffff.
async fn classic_api_versions_count() {
    let addr = fake_broker(|req| {
        let mut body = req.correlation.to_be_bytes().to_vec();
        if req.version >= 3 {
            body.extend_from_slice(&35i16.to_be_bytes()); // UNSUPPORTED_VERSION
            body.extend(uvarint(1)); // api_keys: empty
            body.extend_from_slice(&0i32.to_be_bytes()); // throttle_time_ms
            body.push(0); // no tagged fields
        } else {
            body.extend_from_slice(&0i16.to_be_bytes());
            body.extend_from_slice(&0x7fff_ffffi32.to_be_bytes());
        }
        Answer::Raw(frame(&body))
    })
    .await;
    let e = open(&addr).await.unwrap_err();
    assert_malformed(&e, &addr);
    println!("scenario error: {e}");
}

/// A well-formed ApiVersions, then a Metadata answer whose brokers array claims 0x7fff_ffff
/// elements; polled through the scaler, the error names the bootstrap servers.
async fn metadata_count_through_the_scaler() {
    let addr = fake_broker(|req| {
        if req.key == ApiKey::ApiVersions as i16 {
            return Answer::Raw(good_api_versions(req));
        }
        let mut body = req.correlation.to_be_bytes().to_vec();
        if req.version >= 9 {
            body.push(0); // response header v1: no tagged fields
            body.extend_from_slice(&0i32.to_be_bytes()); // throttle_time_ms
            body.extend(uvarint(0x8000_0000)); // brokers
        } else {
            if req.version >= 3 {
                body.extend_from_slice(&0i32.to_be_bytes());
            }
            body.extend_from_slice(&0x7fff_ffffi32.to_be_bytes());
        }
        Answer::Raw(frame(&body))
    })
    .await;
    let s = kafka_support::scaler(&addr, &[]);
    let e = s.measure(Utc::now()).await.unwrap_err().to_string();
    assert!(e.contains(&addr) && e.contains("malformed response"), "{e}");
    println!("scenario error: {e}");
}

/// All-topics mode: a well-formed OffsetFetch (v9) naming one topic of 30,000 bytes with
/// 100,000 partitions — 2 MB on the wire, within every frame bound. A poll that copied the name
/// once per partition would hold 3 GB.
async fn long_topic_name_times_many_partitions() {
    let (addr, e) = poll_all_topics(30_000, 100_000).await;
    assert!(e.contains(&addr) && e.contains("malformed response: a topic name of 30000 bytes"), "{e}");
    println!("scenario error: {e}");
}

/// A poll in all-topics mode against a broker whose OffsetFetch (v9) names one topic of
/// `name_len` bytes with `partitions` partitions; returns the broker's address and the error.
async fn poll_all_topics(name_len: usize, partitions: i32) -> (String, String) {
    let addr = fake_broker(move |req| {
        if req.key == ApiKey::ApiVersions as i16 {
            return Answer::Raw(good_api_versions(req));
        }
        let mut body = req.correlation.to_be_bytes().to_vec();
        body.push(0); // response header v1
        body.extend_from_slice(&0i32.to_be_bytes()); // throttle_time_ms
        if req.key == ApiKey::FindCoordinator as i16 {
            // v6: one coordinator, this broker.
            body.extend(uvarint(2));
            body.extend(uvarint(2));
            body.push(b'g'); // key
            body.extend_from_slice(&1i32.to_be_bytes()); // node id
            body.extend(uvarint(10));
            body.extend_from_slice(b"127.0.0.1");
            body.extend_from_slice(&i32::from(req.port).to_be_bytes());
            body.extend_from_slice(&0i16.to_be_bytes());
            body.extend([0, 0, 0]); // error message: null; coordinator and response tagged fields
            return Answer::Raw(frame(&body));
        }
        body.extend(uvarint(2)); // groups: one
        body.extend(uvarint(2));
        body.push(b'g'); // group_id "g"
        body.extend(uvarint(2)); // topics: one
        body.extend(uvarint(name_len as u32 + 1));
        body.extend(std::iter::repeat_n(b't', name_len));
        body.extend(uvarint(partitions as u32 + 1));
        for p in 0..partitions {
            body.extend_from_slice(&p.to_be_bytes());
            body.extend_from_slice(&1i64.to_be_bytes()); // committed offset
            body.extend_from_slice(&(-1i32).to_be_bytes()); // leader epoch
            body.push(0); // metadata: null
            body.extend_from_slice(&0i16.to_be_bytes());
            body.push(0); // tagged fields
        }
        body.push(0); // topic tagged fields
        body.extend_from_slice(&0i16.to_be_bytes()); // group error code
        body.push(0); // group tagged fields
        body.push(0); // response tagged fields
        Answer::Raw(frame(&body))
    })
    .await;
    let pairs = [("bootstrapServers", addr.as_str()), ("consumerGroup", "g")];
    let s = ebb_scalers::kafka::KafkaScaler::new(kafka_support::config(&pairs, &[]));
    let e = s.measure(Utc::now()).await.unwrap_err().to_string();
    (addr, e)
}

#[tokio::test]
async fn more_partitions_than_a_poll_reads_is_an_error() {
    let (addr, e) = poll_all_topics(1, 50_001).await;
    assert!(e.contains(&addr) && e.contains("more than 50000 partitions in scope"), "{e}");
}

/// Runs the scenario named by the environment in this process; does nothing without it.
#[test]
fn child_scenario() {
    let Ok(name) = std::env::var(SCENARIO) else { return };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let run = async {
            match name.as_str() {
                "compact_api_versions_count" => compact_api_versions_count().await,
                "classic_api_versions_count" => classic_api_versions_count().await,
                "metadata_count_through_the_scaler" => metadata_count_through_the_scaler().await,
                "long_topic_name_times_many_partitions" => long_topic_name_times_many_partitions().await,
                other => panic!("unknown scenario {other}"),
            }
        };
        tokio::time::timeout(Duration::from_secs(20), run).await.expect("scenario finished");
    });
    println!("scenario {name} passed");
}

/// Runs `name` in a child process under an address-space limit; the child must exit normally.
fn isolated(name: &str) {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("ulimit -v {CHILD_VMEM_KIB} && exec \"$0\" \"$@\""))
        .arg(exe)
        .args(["--exact", "child_scenario", "--nocapture", "--test-threads=1"])
        .env(SCENARIO, name)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains(&format!("scenario {name} passed")),
        "scenario {name}: child {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
}

#[test]
fn a_huge_compact_array_count_is_a_malformed_response_not_an_abort() {
    isolated("compact_api_versions_count");
}

#[test]
fn a_huge_classic_array_count_after_the_version_fallback_is_a_malformed_response() {
    isolated("classic_api_versions_count");
}

#[test]
fn a_long_topic_name_times_many_partitions_fails_the_poll_without_copying_it_each_time() {
    isolated("long_topic_name_times_many_partitions");
}

#[test]
fn a_huge_count_in_metadata_fails_the_poll_naming_the_cluster() {
    isolated("metadata_count_through_the_scaler");
}

/// Declared frame lengths beyond what the request can produce are refused as soon as the length
/// arrives: the fake broker sends only the 4-byte prefix and then nothing, so a client that tried
/// to read (or allocate) the body would wait until the test's deadline.
#[tokio::test]
async fn oversized_frames_are_refused_without_reading_them() {
    for declared in [60u32 << 20, 1 << 20] {
        let addr = fake_broker(move |_| Answer::Raw(declared.to_be_bytes().to_vec())).await;
        let started = Instant::now();
        let r = tokio::time::timeout(Duration::from_secs(5), open(&addr)).await;
        let e = r.unwrap_or_else(|_| panic!("{declared}-byte frame: no answer within 5 s")).unwrap_err();
        match &e {
            WireError::Protocol(m) => {
                assert!(m.starts_with(&addr) && m.contains(&format!("{declared} bytes")), "{m}");
                assert!(m.contains("ApiVersions"), "{m}");
            }
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    }
}
