//! The schema tables against `kafka-protocol`'s own encoder (the broker side of the crate, a
//! test-only feature): for every version this client can negotiate, a populated answer encoded by
//! the crate is walked to its last byte, every shorter prefix is refused, and the crate decodes
//! it back; hostile counts and lengths are refused with what and where.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::{ApiVersion, FinalizedFeatureKey, SupportedFeatureKey};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    ApiVersionsResponse, BrokerId, FindCoordinatorResponse, GroupId, ListOffsetsResponse, MetadataResponse,
    OffsetFetchResponse, ResponseHeader, SaslAuthenticateResponse, SaslHandshakeResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};

use super::super::schemas;
use super::*;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn encode<T: Encodable + HeaderVersion>(value: &T, version: i16) -> Vec<u8> {
    let mut buf = BytesMut::new();
    let mut h = ResponseHeader::default();
    h.correlation_id = 7;
    h.encode(&mut buf, T::header_version(version)).unwrap();
    value.encode(&mut buf, version).unwrap();
    buf.to_vec()
}

/// Walks the whole frame; returns (bytes consumed, decoded estimate).
fn walk<T: HeaderVersion>(schema: &Schema, frame: &[u8], version: i16) -> Result<(usize, usize), String> {
    let mut w = Walk { buf: frame, pos: 0, decoded: 0, limit: usize::MAX };
    w.schema(&schemas::RESPONSE_HEADER, T::header_version(version))?;
    w.schema(schema, version)?;
    Ok((w.pos, w.decoded))
}

/// The frame walks to its end, no prefix walks, and the crate decodes it to `value`.
fn round_trip<T>(schema: &Schema, value: &T, version: i16)
where
    T: Encodable + Decodable + HeaderVersion + PartialEq + std::fmt::Debug,
{
    let frame = encode(value, version);
    let what = format!("{} v{version}", schema.name);
    let (used, _) = walk::<T>(schema, &frame, version).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(used, frame.len(), "{what}: walk stopped early");
    for cut in 0..frame.len() {
        assert!(walk::<T>(schema, &frame[..cut], version).is_err(), "{what}: prefix of {cut} bytes accepted");
    }
    let mut b = Bytes::from(frame);
    ResponseHeader::decode(&mut b, T::header_version(version)).unwrap();
    assert_eq!(&T::decode(&mut b, version).unwrap(), value, "{what}");
}

fn api_versions(v: i16) -> ApiVersionsResponse {
    let mut r = ApiVersionsResponse::default();
    r.error_code = 0;
    for key in [18, 3, 2] {
        let mut k = ApiVersion::default();
        k.api_key = key;
        k.max_version = 9;
        r.api_keys.push(k);
    }
    if v >= 1 {
        r.throttle_time_ms = 5;
    }
    if v >= 3 {
        let mut f = SupportedFeatureKey::default();
        f.name = s("metadata.version");
        f.max_version = 20;
        r.supported_features = vec![f];
        let mut f = FinalizedFeatureKey::default();
        f.name = s("metadata.version");
        f.max_version_level = 20;
        r.finalized_features = vec![f];
        r.finalized_features_epoch = 3;
        r.zk_migration_ready = true;
        r.unknown_tagged_fields.insert(9, Bytes::from_static(b"xyz"));
    }
    r
}

fn metadata(v: i16) -> MetadataResponse {
    let mut r = MetadataResponse::default();
    for id in [1, 2] {
        let mut b = MetadataResponseBroker::default();
        b.node_id = BrokerId(id);
        b.host = s("broker.example");
        b.port = 9092;
        if v >= 1 {
            b.rack = Some(s("rack-a"));
        }
        r.brokers.push(b);
    }
    if v >= 2 {
        r.cluster_id = Some(s("cluster"));
    }
    let mut t = MetadataResponseTopic::default();
    t.name = Some(TopicName(s("orders")));
    for p in 0..3 {
        let mut mp = MetadataResponsePartition::default();
        mp.partition_index = p;
        mp.leader_id = BrokerId(1);
        mp.replica_nodes = vec![BrokerId(1), BrokerId(2)];
        mp.isr_nodes = vec![BrokerId(1)];
        if v >= 5 {
            mp.offline_replicas = vec![BrokerId(2)];
        }
        t.partitions.push(mp);
    }
    r.topics.push(t);
    if v >= 9 {
        r.unknown_tagged_fields.insert(4, Bytes::from_static(b"\x01\x02"));
    }
    r
}

fn list_offsets(v: i16) -> ListOffsetsResponse {
    let mut r = ListOffsetsResponse::default();
    let mut t = ListOffsetsTopicResponse::default();
    t.name = TopicName(s("orders"));
    for p in 0..2 {
        let mut lp = ListOffsetsPartitionResponse::default();
        lp.partition_index = p;
        lp.offset = 42;
        if v >= 4 {
            lp.leader_epoch = 1;
        }
        t.partitions.push(lp);
    }
    r.topics.push(t);
    r
}

fn offset_fetch(v: i16) -> OffsetFetchResponse {
    let mut r = OffsetFetchResponse::default();
    if v >= 8 {
        let mut g = OffsetFetchResponseGroup::default();
        g.group_id = GroupId(s("workers"));
        let mut t = OffsetFetchResponseTopics::default();
        if v <= 9 {
            t.name = TopicName(s("orders"));
        }
        for p in 0..2 {
            let mut fp = OffsetFetchResponsePartitions::default();
            fp.partition_index = p;
            fp.committed_offset = 4;
            fp.metadata = Some(s("meta"));
            t.partitions.push(fp);
        }
        g.topics.push(t);
        r.groups.push(g);
    } else {
        let mut t = OffsetFetchResponseTopic::default();
        t.name = TopicName(s("orders"));
        for p in 0..2 {
            let mut fp = OffsetFetchResponsePartition::default();
            fp.partition_index = p;
            fp.committed_offset = 4;
            fp.metadata = Some(s("meta"));
            if v >= 5 {
                fp.committed_leader_epoch = 2;
            }
            t.partitions.push(fp);
        }
        r.topics.push(t);
    }
    r
}

fn find_coordinator(v: i16) -> FindCoordinatorResponse {
    let mut r = FindCoordinatorResponse::default();
    if v >= 4 {
        let mut c = Coordinator::default();
        c.key = s("workers");
        c.host = s("broker.example");
        c.port = 9092;
        c.error_message = Some(s("none"));
        r.coordinators.push(c);
    } else {
        r.host = s("broker.example");
        r.port = 9092;
        if v >= 1 {
            r.error_message = Some(s("none"));
        }
    }
    r
}

#[test]
fn every_negotiable_version_walks_like_the_crate_encodes() {
    for v in 0..=4 {
        round_trip(&schemas::API_VERSIONS, &api_versions(v), v);
    }
    for v in 0..=13 {
        round_trip(&schemas::METADATA, &metadata(v), v);
    }
    for v in 1..=10 {
        round_trip(&schemas::LIST_OFFSETS, &list_offsets(v), v);
        round_trip(&schemas::OFFSET_FETCH, &offset_fetch(v), v);
    }
    for v in 0..=6 {
        round_trip(&schemas::FIND_COORDINATOR, &find_coordinator(v), v);
    }
    for v in 0..=1 {
        let mut r = SaslHandshakeResponse::default();
        r.mechanisms = vec![s("PLAIN"), s("SCRAM-SHA-256")];
        round_trip(&schemas::SASL_HANDSHAKE, &r, v);
    }
    for v in 0..=2 {
        let mut r = SaslAuthenticateResponse::default();
        r.error_message = Some(s("denied"));
        r.auth_bytes = Bytes::from_static(b"r=abc,s=c2FsdA==,i=4096");
        if v >= 1 {
            r.session_lifetime_ms = 1000;
        }
        round_trip(&schemas::SASL_AUTHENTICATE, &r, v);
    }
}

#[test]
fn the_estimate_covers_the_elements_and_is_enforced() {
    let frame = encode(&metadata(12), 12);
    let (_, est) = walk::<MetadataResponse>(&schemas::METADATA, &frame, 12).unwrap();
    let least = 2 * size_of::<MetadataResponseBroker>()
        + size_of::<MetadataResponseTopic>()
        + 3 * size_of::<MetadataResponsePartition>();
    assert!(est >= least, "{est} < {least}");
    let e = check(&frame, (&schemas::RESPONSE_HEADER, 1), (&schemas::METADATA, 12), least / 2).unwrap_err();
    assert!(e.contains("bound"), "{e}");
}

fn hostile(schema: &Schema, header_version: i16, version: i16, body: &[u8]) -> String {
    let mut frame = 1i32.to_be_bytes().to_vec();
    if header_version >= 1 {
        frame.push(0);
    }
    frame.extend_from_slice(body);
    check(&frame, (&schemas::RESPONSE_HEADER, header_version), (schema, version), 48 << 20).unwrap_err()
}

#[test]
fn hostile_counts_and_lengths_are_refused_naming_them() {
    // ApiVersions v3: error code, then a compact count of 2³² − 2 elements.
    let e = hostile(&schemas::API_VERSIONS, 0, 3, &[0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert!(e.contains("ApiVersionsResponse claims 4294967294 elements but only 0 bytes follow"), "{e}");
    // ApiVersions v0: classic count 0x7fff_ffff with 12 bytes (two elements) behind it.
    let mut body = vec![0, 0, 0x7f, 0xff, 0xff, 0xff];
    body.extend([0u8; 12]);
    let e = hostile(&schemas::API_VERSIONS, 0, 0, &body);
    assert!(e.contains("claims 2147483647 elements but only 12 bytes follow (at least 6 each)"), "{e}");
    // A count that fits the bytes only with elements smaller than their minimum.
    let e = hostile(&schemas::API_VERSIONS, 0, 0, &[0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert!(e.contains("claims 3 elements"), "{e}");
    // Negative lengths other than null.
    let e = hostile(&schemas::API_VERSIONS, 0, 0, &[0, 0, 0xff, 0xff, 0xff, 0xfe]);
    assert!(e.contains("negative length -2"), "{e}");
    // Metadata v1: a broker whose host claims 30,000 bytes.
    let mut body = vec![0, 0, 0, 1, 0, 0, 0, 1, 0x75, 0x30];
    body.extend([b'h'; 8]);
    let e = hostile(&schemas::METADATA, 0, 1, &body);
    assert!(
        e.contains("MetadataResponseBroker of 30000 bytes at offset") && e.contains("runs past the end"),
        "{e}"
    );
    // Metadata v12: partitions' replica list of 2³¹ i32s, nested two levels down.
    let mut body = vec![0, 0, 0, 0]; // throttle
    body.extend([1, 0, 0, 0, 0, 0]); // brokers: none; cluster id: null; controller 0
    body.extend([2, 0, 0, 2, b't']); // one topic: error 0, name "t"
    body.extend([0u8; 16]); // topic id
    body.extend([0, 2]); // not internal; one partition
    body.extend([0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]); // error, index, leader, epoch
    body.extend([0x80, 0x80, 0x80, 0x80, 0x08]); // replica_nodes: 2³¹ − 1
    let e = hostile(&schemas::METADATA, 1, 12, &body);
    assert!(e.contains("MetadataResponsePartition claims 2147483647 elements"), "{e}");
    // Tagged fields: a count far beyond the bytes, and a known field whose size lies.
    let e = hostile(&schemas::API_VERSIONS, 0, 3, &[0, 0, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert!(e.contains("tagged fields claimed in 0 bytes"), "{e}");
    let e = hostile(&schemas::API_VERSIONS, 0, 3, &[0, 0, 1, 0, 0, 0, 0, 1, 3, 5, 1]);
    assert!(e.contains("tagged field 3 declares 5 bytes but holds 1"), "{e}");
    // A classic string of negative length other than -1.
    let e = hostile(&schemas::SASL_HANDSHAKE, 0, 1, &[0, 0, 0, 0, 0, 1, 0xff, 0xf0]);
    assert!(e.contains("negative length -16"), "{e}");
}

#[test]
fn varints_read_like_the_decoder() {
    // Five bytes at most: the fifth byte's continuation bit is ignored, as the crate does.
    let bytes = [0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
    let mut w = Walk { buf: &bytes, pos: 0, decoded: 0, limit: 0 };
    assert_eq!(w.uvarint().unwrap(), u32::MAX);
    assert_eq!(w.pos, 5);
    let mut w = Walk { buf: &[0x80], pos: 0, decoded: 0, limit: 0 };
    assert!(w.uvarint().is_err());
}
