//! Events in protobuf: client-go's event broadcasters post `events.k8s.io/v1` Events (and the
//! legacy recorder core/v1 Events) as `application/vnd.kubernetes.protobuf`. The same bytes go to
//! upstream and to the local control plane; both must accept them and read them back alike as
//! JSON.
//!
//! The bytes are written here from the field numbers of `k8s.io/api/events/v1/generated.proto`,
//! `k8s.io/api/core/v1/generated.proto` and `k8s.io/apimachinery/pkg/apis/meta/v1/
//! generated.proto`, the way Go's encoder writes them: every non-pointer field present, empty
//! strings and zero numbers included, zero timestamps as empty messages; pointer fields (series,
//! related) absent.
//!
//! Compared after removing what the server sets (uid, resourceVersion, creationTimestamp,
//! managedFields), upstream's `null`s for unset timestamps, which the local control plane omits
//! (see `sandbox/src/proto.rs`), and `generation`, which the local control plane sets on every
//! kind and upstream only on kinds with a spec (see sandbox/README.md).

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

use super::{common, get, upstream_client};

const NS: &str = "proto-events";

/// Protobuf wire format: a varint.
fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited field (wire type 2): strings, bytes, messages.
fn bytes(field: u64, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint(field << 3 | 2, &mut out);
    varint(value.len() as u64, &mut out);
    out.extend_from_slice(value);
    out
}

fn string(field: u64, value: &str) -> Vec<u8> {
    bytes(field, value.as_bytes())
}

/// A varint field (wire type 0); negative int32/int64 as Go writes them (64-bit two's complement).
fn number(field: u64, value: i64) -> Vec<u8> {
    let mut out = Vec::new();
    varint(field << 3, &mut out);
    varint(value as u64, &mut out);
    out
}

/// `Time` / `MicroTime`: 1 seconds, 2 nanos. Go writes a zero (unset) time as an empty message.
fn time(field: u64, seconds: i64, nanos: i64) -> Vec<u8> {
    bytes(field, &[number(1, seconds), number(2, nanos)].concat())
}

/// `ObjectMeta` as a client sends it: 1 name, 2 generateName, 3 namespace, 4 selfLink, 5 uid,
/// 6 resourceVersion, 7 generation, 8 creationTimestamp (zero).
fn object_meta(name: &str) -> Vec<u8> {
    [
        string(1, name),
        string(2, ""),
        string(3, NS),
        string(4, ""),
        string(5, ""),
        string(6, ""),
        number(7, 0),
        bytes(8, &[]),
    ]
    .concat()
}

/// core/v1 `ObjectReference`: 1 kind, 2 namespace, 3 name, 4 uid, 5 apiVersion,
/// 6 resourceVersion, 7 fieldPath.
fn object_reference(kind: &str, name: &str, api_version: &str) -> Vec<u8> {
    [
        string(1, kind),
        string(2, NS),
        string(3, name),
        string(4, "0b6f1c2e-6f1d-4a55-9d2b-3f1f9a8e7c11"),
        string(5, api_version),
        string(6, "17"),
        string(7, ""),
    ]
    .concat()
}

/// The body: `k8s\0`, then `runtime.Unknown` (1 typeMeta {1 apiVersion, 2 kind}, 2 raw,
/// 3 contentEncoding, 4 contentType).
fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let type_meta = [string(1, api_version), string(2, kind)].concat();
    let unknown = [bytes(1, &type_meta), bytes(2, raw), string(3, ""), string(4, "")].concat();
    [b"k8s\0".as_slice(), &unknown].concat()
}

/// events.k8s.io/v1 `Event`: 1 metadata, 2 eventTime, 3 series (pointer, absent),
/// 4 reportingController, 5 reportingInstance, 6 action, 7 reason, 8 regarding, 9 related
/// (pointer, absent), 10 note, 11 type, 12 deprecatedSource, 13 deprecatedFirstTimestamp,
/// 14 deprecatedLastTimestamp, 15 deprecatedCount.
fn events_v1_event() -> Vec<u8> {
    let raw = [
        bytes(1, &object_meta("web.18a2b3c4d5e6f708")),
        time(2, 1_796_000_000, 123_456_000),
        string(4, "keda-operator"),
        string(5, "keda-operator-7d9c"),
        string(6, "Reconciling"),
        string(7, "ScaledObjectReady"),
        bytes(8, &object_reference("ScaledObject", "web", "keda.sh/v1alpha1")),
        string(10, "ScaledObject is ready for scaling"),
        string(11, "Normal"),
        bytes(12, &[string(1, ""), string(2, "")].concat()),
        bytes(13, &[]),
        bytes(14, &[]),
        number(15, 0),
    ]
    .concat();
    envelope("events.k8s.io/v1", "Event", &raw)
}

/// core/v1 `Event`: 1 metadata, 2 involvedObject, 3 reason, 4 message, 5 source {1 component,
/// 2 host}, 6 firstTimestamp, 7 lastTimestamp, 8 count, 9 type, 10 eventTime, 11 series (pointer,
/// absent), 12 action, 13 related (pointer, absent), 14 reportingComponent, 15 reportingInstance.
fn core_v1_event() -> Vec<u8> {
    let raw = [
        bytes(1, &object_meta("web.18a2b3c4d5e6f709")),
        bytes(2, &object_reference("Deployment", "web", "apps/v1")),
        string(3, "ScalingReplicaSet"),
        string(4, "Scaled up replica set web-5d8f to 2"),
        bytes(5, &[string(1, "deployment-controller"), string(2, "")].concat()),
        time(6, 1_796_000_000, 0),
        time(7, 1_796_000_060, 0),
        number(8, 3),
        string(9, "Normal"),
        bytes(10, &[]),
        string(12, ""),
        string(14, ""),
        string(15, ""),
    ]
    .concat();
    envelope("v1", "Event", &raw)
}

/// What is compared of a stored object (see the module doc).
fn comparable(mut v: Value) -> Value {
    if let Some(meta) = v["metadata"].as_object_mut() {
        for k in ["uid", "resourceVersion", "creationTimestamp", "managedFields", "generation"] {
            meta.remove(k);
        }
    }
    if let Some(obj) = v.as_object_mut() {
        obj.retain(|_, value| !value.is_null());
    }
    v
}

/// Posts both Events as protobuf and reads them back as JSON.
async fn answers(client: &kube::Client) -> Vec<Result<Value, (u16, String)>> {
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap())
        .await
        .unwrap();
    let mut out = Vec::new();
    for (collection, body, name) in [
        (format!("/apis/events.k8s.io/v1/namespaces/{NS}/events"), events_v1_event(), "web.18a2b3c4d5e6f708"),
        (format!("/api/v1/namespaces/{NS}/events"), core_v1_event(), "web.18a2b3c4d5e6f709"),
    ] {
        let req = http::Request::post(&collection)
            .header("Content-Type", "application/vnd.kubernetes.protobuf")
            .header("Accept", "application/json")
            .body(body)
            .unwrap();
        let created = client.request_text(req).await.map_err(|e| match e {
            kube::Error::Api(s) => (s.code, s.message),
            other => (0, other.to_string()),
        });
        let read = match created {
            Ok(_) => get(client, &format!("{collection}/{name}")).await,
            Err(e) => Err(e),
        };
        out.push(read.map(|text| comparable(serde_json::from_str(&text).unwrap())));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_events_are_stored_as_upstream_stores_them() {
    let upstream = upstream_client().await;
    let (sb, local) = common::start(Default::default()).await;
    let from_upstream = answers(&upstream).await;
    let from_local = answers(&local).await;
    sb.stop().await;
    for (u, l) in from_upstream.iter().zip(&from_local) {
        let u = u.as_ref().expect("upstream accepts the protobuf Event");
        println!("upstream: {u}");
        assert_eq!(l.as_ref(), Ok(u), "the local control plane reads the Event back differently");
    }
}
