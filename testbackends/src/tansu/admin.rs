//! A minimal Kafka client for test fixtures, written over `kafka-protocol` and tokio: creates
//! topics, produces records and commits consumer-group offsets (as a consumer that is not a group
//! member would, generation -1). Every produced record travels in its own record batch, because
//! tansu reports the high watermark as the last batch's base offset + 1; with one record per batch
//! the watermark is exact.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    OffsetCommitRequest, OffsetCommitResponse, ProduceRequest, ProduceResponse, RequestHeader,
    ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Highest version of each API this client speaks (newer versions change field layouts).
const CAPS: &[(ApiKey, i16)] = &[(ApiKey::CreateTopics, 7), (ApiKey::Produce, 9), (ApiKey::OffsetCommit, 8)];

/// One connection to a broker, used for fixtures.
#[derive(Debug)]
pub struct Admin {
    stream: TcpStream,
    correlation: i32,
    versions: BTreeMap<i16, (i16, i16)>,
}

fn err(what: &str, e: impl std::fmt::Display) -> String {
    format!("kafka fixture: {what}: {e}")
}

impl Admin {
    /// Connects to `host:port` and learns the broker's API versions.
    pub async fn connect(addr: &str) -> Result<Self, String> {
        let stream = TcpStream::connect(addr).await.map_err(|e| err(&format!("connect {addr}"), e))?;
        stream.set_nodelay(true).map_err(|e| err("nodelay", e))?;
        let mut a = Self { stream, correlation: 0, versions: BTreeMap::new() };
        let resp: ApiVersionsResponse = a
            .call(
                ApiKey::ApiVersions,
                0,
                &ApiVersionsRequest::default(),
                ApiVersionsRequest::header_version(0),
            )
            .await?;
        if resp.error_code != 0 {
            return Err(err("ApiVersions", format!("error code {}", resp.error_code)));
        }
        a.versions = resp.api_keys.iter().map(|k| (k.api_key, (k.min_version, k.max_version))).collect();
        Ok(a)
    }

    fn version(&self, key: ApiKey) -> Result<i16, String> {
        let cap = CAPS.iter().find(|(k, _)| *k == key).map_or(i16::MAX, |(_, v)| *v);
        let (min, max) = self
            .versions
            .get(&(key as i16))
            .copied()
            .ok_or_else(|| err("version", format!("{key:?} unsupported")))?;
        let v = max.min(cap);
        if v < min { Err(err("version", format!("{key:?} needs ≥ v{min}"))) } else { Ok(v) }
    }

    async fn call<Req: Encodable, Resp: Decodable + HeaderVersion>(
        &mut self,
        key: ApiKey,
        version: i16,
        req: &Req,
        request_header_version: i16,
    ) -> Result<Resp, String> {
        self.correlation += 1;
        let mut header = RequestHeader::default();
        header.request_api_key = key as i16;
        header.request_api_version = version;
        header.correlation_id = self.correlation;
        header.client_id = Some(StrBytes::from_static_str("ebb-test-fixtures"));
        let mut body = BytesMut::new();
        header.encode(&mut body, request_header_version).map_err(|e| err("encode header", e))?;
        req.encode(&mut body, version).map_err(|e| err("encode request", e))?;
        let len = i32::try_from(body.len()).map_err(|e| err("request size", e))?;
        self.stream.write_all(&len.to_be_bytes()).await.map_err(|e| err("write", e))?;
        self.stream.write_all(&body).await.map_err(|e| err("write", e))?;
        let len = self.stream.read_i32().await.map_err(|e| err("read", e))?;
        let mut buf = vec![0u8; usize::try_from(len).map_err(|e| err("response size", e))?];
        self.stream.read_exact(&mut buf).await.map_err(|e| err("read", e))?;
        let mut buf = Bytes::from(buf);
        let rh = ResponseHeader::decode(&mut buf, Resp::header_version(version))
            .map_err(|e| err("decode header", e))?;
        if rh.correlation_id != self.correlation {
            return Err(err("response", "correlation id mismatch"));
        }
        Resp::decode(&mut buf, version).map_err(|e| err(&format!("decode {key:?} v{version}"), e))
    }

    /// Creates a topic with `partitions` partitions (replication factor 1).
    pub async fn create_topic(&mut self, name: &str, partitions: i32) -> Result<(), String> {
        let v = self.version(ApiKey::CreateTopics)?;
        let mut topic = kafka_protocol::messages::create_topics_request::CreatableTopic::default();
        topic.name = kafka_protocol::messages::TopicName(StrBytes::from_string(name.to_owned()));
        topic.num_partitions = partitions;
        topic.replication_factor = 1;
        let mut req = CreateTopicsRequest::default();
        req.topics = vec![topic];
        req.timeout_ms = 10_000;
        let resp: CreateTopicsResponse =
            self.call(ApiKey::CreateTopics, v, &req, CreateTopicsRequest::header_version(v)).await?;
        for t in &resp.topics {
            if t.error_code != 0 {
                return Err(err(&format!("create topic {name}"), format!("error code {}", t.error_code)));
            }
        }
        Ok(())
    }

    /// Produces `counts[i].1` records to partition `counts[i].0` of `topic`, one record per batch;
    /// each request carries at most one batch per partition. Returns the next offset of every
    /// partition written.
    pub async fn produce(
        &mut self,
        topic: &str,
        counts: &[(i32, u32)],
    ) -> Result<BTreeMap<i32, i64>, String> {
        let v = self.version(ApiKey::Produce)?;
        let rounds = counts.iter().map(|(_, n)| *n).max().unwrap_or(0);
        let mut next = BTreeMap::new();
        for round in 0..rounds {
            let mut data = kafka_protocol::messages::produce_request::TopicProduceData::default();
            data.name = kafka_protocol::messages::TopicName(StrBytes::from_string(topic.to_owned()));
            for (partition, n) in counts {
                if round >= *n {
                    continue;
                }
                let record = Record {
                    transactional: false,
                    control: false,
                    delete_horizon: false,
                    partition_leader_epoch: -1,
                    producer_id: -1,
                    producer_epoch: -1,
                    timestamp_type: TimestampType::Creation,
                    offset: 0,
                    sequence: -1,
                    timestamp: 0,
                    key: None,
                    value: Some(Bytes::from(format!("{topic}/{partition}/{round}"))),
                    headers: Default::default(),
                };
                let mut batch = BytesMut::new();
                RecordBatchEncoder::encode(
                    &mut batch,
                    std::iter::once(&record),
                    &RecordEncodeOptions { version: 2, compression: Compression::None },
                )
                .map_err(|e| err("encode batch", e))?;
                let mut p = kafka_protocol::messages::produce_request::PartitionProduceData::default();
                p.index = *partition;
                p.records = Some(batch.freeze());
                data.partition_data.push(p);
            }
            let mut req = ProduceRequest::default();
            req.acks = 1;
            req.timeout_ms = 10_000;
            req.topic_data = vec![data];
            let resp: ProduceResponse =
                self.call(ApiKey::Produce, v, &req, ProduceRequest::header_version(v)).await?;
            for t in &resp.responses {
                for p in &t.partition_responses {
                    if p.error_code != 0 {
                        return Err(err(
                            &format!("produce to {topic}/{}", p.index),
                            format!("error code {}", p.error_code),
                        ));
                    }
                    next.insert(p.index, p.base_offset + 1);
                }
            }
        }
        Ok(next)
    }

    /// Commits `offsets` (partition, next offset to consume) of `topic` for `group`.
    pub async fn commit(&mut self, group: &str, topic: &str, offsets: &[(i32, i64)]) -> Result<(), String> {
        let v = self.version(ApiKey::OffsetCommit)?;
        let mut t = kafka_protocol::messages::offset_commit_request::OffsetCommitRequestTopic::default();
        t.name = kafka_protocol::messages::TopicName(StrBytes::from_string(topic.to_owned()));
        for (partition, offset) in offsets {
            let mut p =
                kafka_protocol::messages::offset_commit_request::OffsetCommitRequestPartition::default();
            p.partition_index = *partition;
            p.committed_offset = *offset;
            t.partitions.push(p);
        }
        let mut req = OffsetCommitRequest::default();
        req.group_id = kafka_protocol::messages::GroupId(StrBytes::from_string(group.to_owned()));
        req.generation_id_or_member_epoch = -1;
        req.topics = vec![t];
        let resp: OffsetCommitResponse =
            self.call(ApiKey::OffsetCommit, v, &req, OffsetCommitRequest::header_version(v)).await?;
        for t in &resp.topics {
            for p in &t.partitions {
                if p.error_code != 0 {
                    return Err(err(
                        &format!("commit {group} {topic}/{}", p.partition_index),
                        format!("error code {}", p.error_code),
                    ));
                }
            }
        }
        Ok(())
    }
}
