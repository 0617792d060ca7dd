//! One poll of a kafka trigger: Metadata for the topic (partitions and leaders), ListOffsets
//! batched into one request per leader, FindCoordinator (cached per group) and one OffsetFetch
//! for the group; without a topic, the OffsetFetch for all of the group's topics comes first and
//! names the topics. With `offsetResetPolicy: earliest`, one more ListOffsets (timestamp -2, the
//! log start) for the partitions the group has no committed offset for. Leader or coordinator changes and broken connections are retried within
//! the poll with fresh metadata; a cluster that cannot be reached is one error naming it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::StreamExt;
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{
    BrokerId, GroupId, ListOffsetsRequest, MetadataRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::cluster::Cluster;
use super::lag::PartitionOffsets;
use super::partitions::PartitionSet;
use super::wire::WireError;
use crate::error::ScalerError;

/// Attempts per poll: the first, then retries after leader/coordinator changes or a broken
/// connection.
const ATTEMPTS: u32 = 3;
/// Longest topic name Kafka allows; a longer one in an answer is not from a Kafka broker.
const MAX_TOPIC_NAME: usize = 249;
/// Partitions one poll reads at most. Topic names are copied per partition, so this (with
/// `MAX_TOPIC_NAME`) bounds the memory a broker's answers can make one poll hold.
pub const MAX_PARTITIONS: usize = 50_000;
/// ListOffsets requests in flight at once in one poll (one per partition leader).
const PARALLEL_LEADERS: usize = 16;
/// ListOffsets timestamp asking for the log end offset.
const LATEST: i64 = -1;
/// ListOffsets timestamp asking for the log start offset (the earliest retained record).
const EARLIEST: i64 = -2;

enum Failure {
    /// Worth another attempt with fresh metadata.
    Retry(ScalerError),
    Fatal(ScalerError),
}

/// What to read.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub group: &'a str,
    /// Empty: every topic the group has committed offsets for.
    pub topics: &'a [String],
    pub limit: Option<&'a PartitionSet>,
    /// Read the log start offset of partitions the group has not committed to
    /// (`offsetResetPolicy: earliest`, whose lag there is log end − log start).
    pub log_start_for_uncommitted: bool,
}

fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

impl Cluster {
    fn context(&self) -> String {
        format!("kafka (bootstrapServers {:?})", self.servers())
    }

    fn wire(&self, e: WireError, retry: bool) -> Failure {
        let ctx = self.context();
        let err = match e {
            WireError::Io(m) | WireError::Tls(m) => ScalerError::Unreachable(format!("{ctx}: {m}")),
            WireError::Auth(m) => return Failure::Fatal(ScalerError::Unauthorized(format!("{ctx}: {m}"))),
            WireError::Protocol(m) => {
                return Failure::Fatal(ScalerError::InvalidResponse(format!("{ctx}: {m}")));
            }
        };
        if retry { Failure::Retry(err) } else { Failure::Fatal(err) }
    }

    /// A topic name from an answer, refused beyond Kafka's own limit.
    fn name<'a>(&self, name: &'a str) -> Result<&'a str, Failure> {
        if name.len() > MAX_TOPIC_NAME {
            return Err(Failure::Fatal(ScalerError::InvalidResponse(format!(
                "{}: malformed response: a topic name of {} bytes (Kafka allows {MAX_TOPIC_NAME})",
                self.context(),
                name.len()
            ))));
        }
        Ok(name)
    }

    /// Refuses an answer that puts more than `MAX_PARTITIONS` partitions in scope.
    fn in_scope(&self, count: usize) -> Result<(), Failure> {
        if count > MAX_PARTITIONS {
            return Err(Failure::Fatal(ScalerError::InvalidResponse(format!(
                "{}: more than {MAX_PARTITIONS} partitions in scope; a trigger reads at most {MAX_PARTITIONS} \
                 (narrow it with topic or partitionLimitation)",
                self.context()
            ))));
        }
        Ok(())
    }

    fn code(&self, what: &str, code: i16) -> Failure {
        let ctx = self.context();
        let name = kafka_protocol::ResponseError::try_from_code(code)
            .map_or("unknown".to_owned(), |e| format!("{e:?}"));
        let msg = format!("{ctx}: {what}: error {code} ({name})");
        match code {
            // Leadership or coordinator moved, or the broker is still loading: ask again.
            3 | 5 | 6 | 7 | 13 | 14 | 15 | 16 | 74 | 75 => Failure::Retry(ScalerError::Unreachable(msg)),
            // Topic, group or cluster authorization failed.
            29..=31 => Failure::Fatal(ScalerError::Unauthorized(msg)),
            _ => Failure::Fatal(ScalerError::InvalidResponse(msg)),
        }
    }

    /// Reads latest and committed offsets of every partition in scope.
    pub async fn read_offsets(&self, target: Target<'_>) -> Result<Vec<PartitionOffsets>, ScalerError> {
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            if attempt > 1 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            match self.attempt(target).await {
                Ok(v) => return Ok(v),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Retry(e)) => {
                    tracing::debug!(error = %e, attempt, "kafka poll retried");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| ScalerError::Unreachable(self.context())))
    }

    async fn attempt(&self, t: Target<'_>) -> Result<Vec<PartitionOffsets>, Failure> {
        let (parts, latest, committed) = match t.topics {
            [_, ..] => {
                let parts = self.partitions(t.topics, true, t.limit).await?;
                let mut wanted: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                for (topic, partition, _) in &parts {
                    wanted.entry(topic.clone()).or_default().push(*partition);
                }
                let (latest, committed) =
                    tokio::join!(self.latest(&parts), self.committed(t.group, Some(&wanted)));
                (parts, latest?, committed?)
            }
            [] => {
                let committed = self.committed(t.group, None).await?;
                let topics: Vec<String> =
                    committed.keys().map(|(t, _)| t.clone()).collect::<BTreeSet<_>>().into_iter().collect();
                if topics.is_empty() {
                    return Ok(Vec::new());
                }
                let parts = self.partitions(&topics, false, None).await?;
                let latest = self.latest(&parts).await?;
                (parts, latest, committed)
            }
        };
        let committed_at = |topic: &str, partition: i32| {
            committed.get(&(topic.to_owned(), partition)).copied().filter(|o| *o >= 0)
        };
        let earliest = if t.log_start_for_uncommitted {
            let uncommitted: Vec<(String, i32, i32)> =
                parts.iter().filter(|(t, p, _)| committed_at(t, *p).is_none()).cloned().collect();
            self.log_start(&uncommitted).await
        } else {
            BTreeMap::new()
        };
        Ok(latest
            .into_iter()
            .map(|((topic, partition), latest)| {
                let committed = committed_at(&topic, partition);
                let log_start = earliest.get(&(topic.clone(), partition)).copied();
                PartitionOffsets { topic, partition, latest, committed, log_start }
            })
            .collect())
    }

    /// Log start offsets of `parts` (none asked → no request). A failure is logged and yields no
    /// offsets, so those partitions count from offset 0 (their whole log end) rather than failing
    /// the poll.
    async fn log_start(&self, parts: &[(String, i32, i32)]) -> BTreeMap<(String, i32), i64> {
        if parts.is_empty() {
            return BTreeMap::new();
        }
        match self.list_offsets(parts, EARLIEST).await {
            Ok(v) => v.into_iter().collect(),
            Err(Failure::Retry(e) | Failure::Fatal(e)) => {
                tracing::warn!(error = %e, "kafka log start offsets unavailable; counting uncommitted partitions from offset 0");
                BTreeMap::new()
            }
        }
    }

    /// Metadata for `topics`: (topic, partition, leader) of every partition in scope.
    async fn partitions(
        &self,
        topics: &[String],
        must_exist: bool,
        limit: Option<&PartitionSet>,
    ) -> Result<Vec<(String, i32, i32)>, Failure> {
        let build = |v: i16| {
            let mut r = MetadataRequest::default();
            r.topics = Some(
                topics
                    .iter()
                    .map(|t| {
                        let mut mt = MetadataRequestTopic::default();
                        mt.name = Some(topic_name(t));
                        mt
                    })
                    .collect(),
            );
            if v >= 4 {
                r.allow_auto_topic_creation = false;
            }
            r
        };
        // Reaching no broker at all is final: every candidate was just tried.
        let (_, md) = self.call_any(build).await.map_err(|e| self.wire(e, false))?;
        self.update_brokers(&md);
        let mut out = Vec::new();
        for topic in &md.topics {
            let name = self.name(topic.name.as_ref().map_or("", |n| n.0.as_str()))?;
            match topic.error_code {
                0 => {}
                3 if !must_exist => continue,
                3 => {
                    return Err(Failure::Fatal(ScalerError::NotFound(format!(
                        "{}: topic {name:?} does not exist",
                        self.context()
                    ))));
                }
                c => return Err(self.code(&format!("metadata of topic {name:?}"), c)),
            }
            let all = topic.partitions.len();
            let in_limit = |index: i32| limit.is_none_or(|l| l.contains(index));
            self.in_scope(
                out.len() + topic.partitions.iter().filter(|p| in_limit(p.partition_index)).count(),
            )?;
            let mut kept: Vec<(String, i32, i32)> = topic
                .partitions
                .iter()
                .filter(|p| in_limit(p.partition_index))
                .map(|p| (name.to_owned(), p.partition_index, p.leader_id.0))
                .collect();
            if kept.is_empty() && must_exist {
                let what = limit
                    .map_or(String::new(), |l| format!(" matching partitionLimitation {:?}", l.to_string()));
                return Err(Failure::Fatal(ScalerError::Config(format!(
                    "{}: topic {name:?} has no partitions{what} (it has {all})",
                    self.context()
                ))));
            }
            out.append(&mut kept);
        }
        out.sort();
        Ok(out)
    }

    /// Latest offsets (log end), one ListOffsets request per partition leader, all leaders at once.
    async fn latest(&self, parts: &[(String, i32, i32)]) -> Result<Vec<((String, i32), i64)>, Failure> {
        self.list_offsets(parts, LATEST).await
    }

    /// Offsets at `timestamp` (`LATEST`: log end, `EARLIEST`: log start), one ListOffsets request
    /// per partition leader, all leaders at once.
    async fn list_offsets(
        &self,
        parts: &[(String, i32, i32)],
        timestamp: i64,
    ) -> Result<Vec<((String, i32), i64)>, Failure> {
        let what = if timestamp == EARLIEST { "earliest" } else { "latest" };
        let mut by_leader: BTreeMap<i32, BTreeMap<&str, Vec<i32>>> = BTreeMap::new();
        for (topic, partition, leader) in parts {
            by_leader.entry(*leader).or_default().entry(topic.as_str()).or_default().push(*partition);
        }
        let requests: Vec<_> = by_leader
            .into_iter()
            .map(|(leader, topics)| async move {
                let Some(addr) = self.broker_addr(leader).filter(|_| leader >= 0) else {
                    return Err(self.code(&format!("no leader known for partitions of node {leader}"), 5));
                };
                let build = |_v: i16| {
                    let mut r = ListOffsetsRequest::default();
                    r.replica_id = BrokerId(-1);
                    r.topics = topics
                        .iter()
                        .map(|(t, ps)| {
                            let mut lt = ListOffsetsTopic::default();
                            lt.name = topic_name(t);
                            lt.partitions = ps
                                .iter()
                                .map(|p| {
                                    let mut lp = ListOffsetsPartition::default();
                                    lp.partition_index = *p;
                                    lp.timestamp = timestamp;
                                    lp
                                })
                                .collect();
                            lt
                        })
                        .collect();
                    r
                };
                let (_, resp) = self.call_at(&addr, build).await.map_err(|e| self.wire(e, true))?;
                let mut out = Vec::new();
                for t in &resp.topics {
                    let name = self.name(t.name.0.as_str())?;
                    for p in &t.partitions {
                        self.in_scope(out.len() + 1)?;
                        if p.error_code != 0 {
                            return Err(self.code(
                                &format!(
                                    "{what} offset of {}/{} from broker {addr}",
                                    t.name.0.as_str(),
                                    p.partition_index
                                ),
                                p.error_code,
                            ));
                        }
                        out.push(((name.to_owned(), p.partition_index), p.offset));
                    }
                }
                Ok(out)
            })
            .collect();
        let mut latest = BTreeMap::new();
        let mut answers = futures::stream::iter(requests).buffer_unordered(PARALLEL_LEADERS);
        while let Some(r) = answers.next().await {
            latest.extend(r?);
        }
        parts
            .iter()
            .map(|(t, p, _)| {
                let key = (t.clone(), *p);
                match latest.get(&key) {
                    Some(o) => Ok((key, *o)),
                    None => Err(self.code(&format!("no {what} offset returned for {t}/{p}"), 6)),
                }
            })
            .collect()
    }

    /// The group's coordinator, from the cache or FindCoordinator.
    async fn coordinator_addr(&self, group: &str) -> Result<String, Failure> {
        if let Some(a) = self.coordinator(group) {
            return Ok(a);
        }
        let build = |v: i16| {
            let mut r = FindCoordinatorRequest::default();
            if v >= 4 {
                r.coordinator_keys = vec![StrBytes::from_string(group.to_owned())];
            } else {
                r.key = StrBytes::from_string(group.to_owned());
            }
            r
        };
        let (v, resp) = self.call_any(build).await.map_err(|e| self.wire(e, false))?;
        let (code, host, port) = if v >= 4 {
            match resp.coordinators.first() {
                Some(c) => (c.error_code, c.host.as_str().to_owned(), c.port),
                None => return Err(self.code("FindCoordinator returned no coordinator", 15)),
            }
        } else {
            (resp.error_code, resp.host.as_str().to_owned(), resp.port)
        };
        if code != 0 {
            return Err(self.code(&format!("coordinator of group {group:?}"), code));
        }
        let addr = format!("{host}:{port}");
        self.set_coordinator(group, addr.clone());
        Ok(addr)
    }

    /// Committed offsets of `group`: for the listed partitions, or (None) for every topic the
    /// group has committed to. Partitions without a commit are absent or negative.
    async fn committed(
        &self,
        group: &str,
        wanted: Option<&BTreeMap<String, Vec<i32>>>,
    ) -> Result<BTreeMap<(String, i32), i64>, Failure> {
        let addr = self.coordinator_addr(group).await?;
        let build = |v: i16| {
            let mut r = OffsetFetchRequest::default();
            if v >= 8 {
                let mut g = OffsetFetchRequestGroup::default();
                g.group_id = GroupId(StrBytes::from_string(group.to_owned()));
                g.topics = wanted.map(|w| {
                    w.iter()
                        .map(|(t, ps)| {
                            let mut ft = OffsetFetchRequestTopics::default();
                            ft.name = topic_name(t);
                            ft.partition_indexes = ps.clone();
                            ft
                        })
                        .collect()
                });
                r.groups = vec![g];
            } else {
                r.group_id = GroupId(StrBytes::from_string(group.to_owned()));
                r.topics = wanted.map(|w| {
                    w.iter()
                        .map(|(t, ps)| {
                            let mut ft = OffsetFetchRequestTopic::default();
                            ft.name = topic_name(t);
                            ft.partition_indexes = ps.clone();
                            ft
                        })
                        .collect()
                });
            }
            r
        };
        let (v, resp) = match self.call_at(&addr, build).await {
            Ok(r) => r,
            Err(e) => {
                self.forget_coordinator(group);
                return Err(self.wire(e, true));
            }
        };
        let mut out = BTreeMap::new();
        let mut codes = vec![resp.error_code];
        if v >= 8 {
            for g in &resp.groups {
                codes.push(g.error_code);
                for t in &g.topics {
                    let name = self.name(t.name.0.as_str())?;
                    for p in &t.partitions {
                        self.in_scope(out.len() + 1)?;
                        codes.push(if p.error_code == 3 { 0 } else { p.error_code });
                        out.insert((name.to_owned(), p.partition_index), p.committed_offset);
                    }
                }
            }
        } else {
            for t in &resp.topics {
                let name = self.name(t.name.0.as_str())?;
                for p in &t.partitions {
                    self.in_scope(out.len() + 1)?;
                    codes.push(if p.error_code == 3 { 0 } else { p.error_code });
                    out.insert((name.to_owned(), p.partition_index), p.committed_offset);
                }
            }
        }
        if let Some(code) = codes.into_iter().find(|c| *c != 0) {
            if matches!(code, 15 | 16) {
                self.forget_coordinator(group);
            }
            return Err(
                self.code(&format!("committed offsets of group {group:?} from coordinator {addr}"), code)
            );
        }
        Ok(out)
    }
}
