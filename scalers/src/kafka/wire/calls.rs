//! The requests this client sends: for each, its API key, the highest version it fills and reads
//! correctly, the wire schema of its response, and the largest response it can produce — a
//! constant for answers that do not grow with the question, proportional to the topics and
//! partitions asked otherwise, never above `frame::MAX_FRAME`.

use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, FindCoordinatorRequest, FindCoordinatorResponse,
    ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse, OffsetFetchRequest,
    OffsetFetchResponse, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};

use super::frame::{MAX_FRAME, SMALL_FRAME};
use super::schema::Schema;
use super::schemas;

/// Allowance for the part of an answer that does not depend on what was asked (brokers,
/// cluster id, top-level fields).
const BASE: usize = 1 << 20;
/// Allowance per topic named in a Metadata request: its name, and up to ~20,000 partitions with
/// three replicas each.
const PER_METADATA_TOPIC: usize = 1 << 20;
/// Allowance per topic named in ListOffsets or OffsetFetch (its name, 249 bytes at most).
const PER_TOPIC: usize = 1 << 10;
/// Allowance per partition in a ListOffsets answer (about 30 bytes on the wire).
const PER_OFFSET: usize = 256;
/// Allowance per partition in an OffsetFetch answer: the committed metadata string is bounded by
/// the broker's `offset.metadata.max.bytes`, 4096 by default.
const PER_COMMITTED: usize = 4096 + 256;

/// A request this client sends, with the highest version it understands.
pub trait Call: Encodable + HeaderVersion {
    const KEY: ApiKey;
    /// Highest version whose fields this client fills and reads correctly.
    const MAX: i16;
    type Response: Decodable + HeaderVersion;
    /// Wire schema of the response, walked before decoding.
    const SCHEMA: &'static Schema;
    /// Largest response frame this request can produce (at most `MAX_FRAME`).
    fn max_response(&self) -> usize {
        SMALL_FRAME
    }
}

macro_rules! call {
    ($req:ty, $resp:ty, $key:ident, $max:literal, $schema:expr $(, $cap:item)?) => {
        impl Call for $req {
            const KEY: ApiKey = ApiKey::$key;
            const MAX: i16 = $max;
            type Response = $resp;
            const SCHEMA: &'static Schema = &$schema;
            $($cap)?
        }
    };
}

call!(ApiVersionsRequest, ApiVersionsResponse, ApiVersions, 3, schemas::API_VERSIONS);
call!(FindCoordinatorRequest, FindCoordinatorResponse, FindCoordinator, 6, schemas::FIND_COORDINATOR);
call!(SaslHandshakeRequest, SaslHandshakeResponse, SaslHandshake, 1, schemas::SASL_HANDSHAKE);
call!(SaslAuthenticateRequest, SaslAuthenticateResponse, SaslAuthenticate, 2, schemas::SASL_AUTHENTICATE);
call!(
    MetadataRequest,
    MetadataResponse,
    Metadata,
    12,
    schemas::METADATA,
    fn max_response(&self) -> usize {
        match &self.topics {
            // Every topic of the cluster.
            None => MAX_FRAME,
            Some(t) => proportional(BASE, &[(t.len(), PER_METADATA_TOPIC)]),
        }
    }
);
call!(
    ListOffsetsRequest,
    ListOffsetsResponse,
    ListOffsets,
    9,
    schemas::LIST_OFFSETS,
    fn max_response(&self) -> usize {
        let partitions = self.topics.iter().map(|t| t.partitions.len()).sum();
        proportional(SMALL_FRAME, &[(self.topics.len(), PER_TOPIC), (partitions, PER_OFFSET)])
    }
);
call!(
    OffsetFetchRequest,
    OffsetFetchResponse,
    OffsetFetch,
    9,
    schemas::OFFSET_FETCH,
    fn max_response(&self) -> usize {
        // Up to v7 one group and its topics at the top; from v8 a list of groups.
        let lists: Vec<Option<(usize, usize)>> = if self.groups.is_empty() {
            vec![
                self.topics.as_ref().map(|ts| (ts.len(), ts.iter().map(|t| t.partition_indexes.len()).sum())),
            ]
        } else {
            self.groups
                .iter()
                .map(|g| {
                    g.topics.as_ref().map(|ts| (ts.len(), ts.iter().map(|t| t.partition_indexes.len()).sum()))
                })
                .collect()
        };
        let mut topics = 0usize;
        let mut partitions = 0usize;
        for l in lists {
            // No topic list: everything the group committed to.
            let Some((t, p)) = l else { return MAX_FRAME };
            topics = topics.saturating_add(t);
            partitions = partitions.saturating_add(p);
        }
        proportional(SMALL_FRAME, &[(topics, PER_TOPIC), (partitions, PER_COMMITTED)])
    }
);

/// `base` + Σ count × each, capped at `MAX_FRAME`.
fn proportional(base: usize, parts: &[(usize, usize)]) -> usize {
    parts.iter().fold(base, |acc, (n, each)| acc.saturating_add(n.saturating_mul(*each))).min(MAX_FRAME)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::offset_fetch_request::{OffsetFetchRequestGroup, OffsetFetchRequestTopics};

    use super::*;

    #[test]
    fn caps_follow_what_was_asked() {
        assert_eq!(ApiVersionsRequest::default().max_response(), SMALL_FRAME);
        let mut md = MetadataRequest::default();
        md.topics = None;
        assert_eq!(md.max_response(), MAX_FRAME);
        md.topics = Some(vec![MetadataRequestTopic::default()]);
        assert_eq!(md.max_response(), 2 << 20);
        md.topics = Some(vec![MetadataRequestTopic::default(); 100]);
        assert_eq!(md.max_response(), MAX_FRAME);

        let mut lo = ListOffsetsRequest::default();
        let mut t = ListOffsetsTopic::default();
        t.partitions = vec![ListOffsetsPartition::default(); 3];
        lo.topics = vec![t];
        assert_eq!(lo.max_response(), SMALL_FRAME + PER_TOPIC + 3 * PER_OFFSET);

        let mut of = OffsetFetchRequest::default();
        of.topics = None;
        assert_eq!(of.max_response(), MAX_FRAME);
        let mut g = OffsetFetchRequestGroup::default();
        let mut ft = OffsetFetchRequestTopics::default();
        ft.partition_indexes = vec![0, 1];
        g.topics = Some(vec![ft]);
        of.groups = vec![g.clone()];
        assert_eq!(of.max_response(), SMALL_FRAME + PER_TOPIC + 2 * PER_COMMITTED);
        g.topics = None;
        of.groups = vec![g];
        assert_eq!(of.max_response(), MAX_FRAME);
    }
}
