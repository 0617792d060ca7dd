//! A broker's byte stream through the Kafka connection layer (`kafka::wire::Connection` over the
//! in-memory `kafka::wire::fuzz::Replay` stream): framing bounded by what each request can
//! produce, the schema walk, decoding, ApiVersions negotiation (with the v0 retry) and SASL —
//! the code every poll runs, with the requests a poll sends.
//!
//! Input: `[sasl][n][n request keys][broker bytes]`. `sasl` selects the handshake (0 none,
//! 1 PLAIN, 2 SCRAM-SHA-256, 3 SCRAM-SHA-512); after ApiVersions (and SASL) the connection sends
//! the `n` requests in order (key 3 Metadata, 10 FindCoordinator, 9 OffsetFetch, 2 ListOffsets;
//! bit 7 set asks Metadata and OffsetFetch for every topic), each at the negotiated version,
//! stopping at the first error. The seeds are connections recorded from tansu (`fuzz/seeds`).
//!
//! Properties: no panic and no abort — every failure is a `WireError` naming the broker and
//! never the SASL password, and no count or length
//! on the wire makes the process reserve memory the received bytes do not justify (libFuzzer's
//! `-malloc_limit_mb` and `-rss_limit_mb` turn such an allocation into a reported crash).
#![no_main]

use std::sync::Arc;

use ebb_scalers::kafka::config::{SaslMechanism, SaslSettings};
use ebb_scalers::kafka::wire::fuzz::{REPLAY_ADDR, Replay};
use ebb_scalers::kafka::wire::scram::ScramHash;
use ebb_scalers::kafka::wire::{Connection, WireError};
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use kafka_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{BrokerId, GroupId, TopicName};
use kafka_protocol::protocol::StrBytes;
use libfuzzer_sys::fuzz_target;

const TOPIC: &str = "orders";
const GROUP: &str = "workers";
const PARTITIONS: [i32; 3] = [0, 1, 2];
/// Recognizable in any message, where it must never appear.
const PASSWORD: &str = "pw-\u{2603}-never-shown";

fn topic() -> TopicName {
    TopicName(StrBytes::from_static_str(TOPIC))
}

fn metadata(v: i16, all: bool) -> MetadataRequest {
    let mut r = MetadataRequest::default();
    if !all {
        let mut t = MetadataRequestTopic::default();
        t.name = Some(topic());
        r.topics = Some(vec![t]);
    }
    if v >= 4 {
        r.allow_auto_topic_creation = false;
    }
    r
}

fn find_coordinator(v: i16) -> FindCoordinatorRequest {
    let mut r = FindCoordinatorRequest::default();
    if v >= 4 {
        r.coordinator_keys = vec![StrBytes::from_static_str(GROUP)];
    } else {
        r.key = StrBytes::from_static_str(GROUP);
    }
    r
}

fn offset_fetch(v: i16, all: bool) -> OffsetFetchRequest {
    let mut r = OffsetFetchRequest::default();
    if v >= 8 {
        let mut g = OffsetFetchRequestGroup::default();
        g.group_id = GroupId(StrBytes::from_static_str(GROUP));
        if !all {
            let mut t = OffsetFetchRequestTopics::default();
            t.name = topic();
            t.partition_indexes = PARTITIONS.to_vec();
            g.topics = Some(vec![t]);
        }
        r.groups = vec![g];
    } else {
        r.group_id = GroupId(StrBytes::from_static_str(GROUP));
        if !all {
            let mut t = OffsetFetchRequestTopic::default();
            t.name = topic();
            t.partition_indexes = PARTITIONS.to_vec();
            r.topics = Some(vec![t]);
        }
    }
    r
}

fn list_offsets() -> ListOffsetsRequest {
    let mut r = ListOffsetsRequest::default();
    r.replica_id = BrokerId(-1);
    let mut t = ListOffsetsTopic::default();
    t.name = topic();
    t.partitions = PARTITIONS
        .iter()
        .map(|p| {
            let mut lp = ListOffsetsPartition::default();
            lp.partition_index = *p;
            lp.timestamp = -1;
            lp
        })
        .collect();
    r.topics = vec![t];
    r
}

async fn exchange(keys: &[u8], stream: &[u8], sasl: Option<&SaslSettings>) -> Result<(), WireError> {
    let mut conn = Connection::over(Box::new(Replay::new(stream)), REPLAY_ADDR, sasl, Arc::default()).await?;
    for k in keys {
        let all = k & 0x80 != 0;
        match k & 0x7f {
            3 => {
                let v = conn.version::<MetadataRequest>()?;
                conn.send_version(&metadata(v, all), v).await?;
            }
            10 => {
                let v = conn.version::<FindCoordinatorRequest>()?;
                conn.send_version(&find_coordinator(v), v).await?;
            }
            9 => {
                let v = conn.version::<OffsetFetchRequest>()?;
                conn.send_version(&offset_fetch(v, all), v).await?;
            }
            2 => {
                let v = conn.version::<ListOffsetsRequest>()?;
                conn.send_version(&list_offsets(), v).await?;
            }
            _ => {}
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let [mode, n, rest @ ..] = data else { return };
    let n = usize::from(*n).min(rest.len()).min(8);
    let (keys, stream) = rest.split_at(n);
    let mechanism = match mode {
        1 => Some(SaslMechanism::Plain),
        2 => Some(SaslMechanism::Scram(ScramHash::Sha256)),
        3 => Some(SaslMechanism::Scram(ScramHash::Sha512)),
        _ => None,
    };
    let sasl = mechanism.map(|mechanism| SaslSettings {
        mechanism,
        username: "user".to_owned(),
        password: PASSWORD.to_owned(),
        msk_iam: None,
        oauth: None,
    });
    // Replay never waits, so the exchange needs no runtime.
    if let Err(e) = futures::executor::block_on(exchange(keys, stream, sasl.as_ref())) {
        let message = e.to_string();
        assert!(message.contains(REPLAY_ADDR), "error does not name the broker: {message}");
        assert!(!message.contains(PASSWORD), "the SASL password appears in an error: {message}");
    }
});
