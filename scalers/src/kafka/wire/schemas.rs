//! The wire schemas of the responses this client reads, field by field as `kafka-protocol` 0.18
//! decodes them (see `schema` for why they are walked first). Each entry lists a field's type and
//! the versions that carry it; `flexible` is the first version with compact encodings and tagged
//! fields.

use std::mem::size_of;

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

use super::schema::{Elem, Schema, Ty, between, since};

const NEVER: i16 = i16::MAX;

const fn array(s: &'static Schema) -> Ty {
    Ty::Array(Elem::Struct(s))
}

pub static RESPONSE_HEADER: Schema =
    Schema { name: "ResponseHeader", size: 0, flexible: 1, fields: &[since(Ty::I32, 0)], tagged: &[] };

static API_VERSION: Schema = Schema {
    name: "ApiVersion",
    size: size_of::<ApiVersion>(),
    flexible: 3,
    fields: &[since(Ty::I16, 0), since(Ty::I16, 0), since(Ty::I16, 0)],
    tagged: &[],
};

static SUPPORTED_FEATURE: Schema = Schema {
    name: "SupportedFeatureKey",
    size: size_of::<SupportedFeatureKey>(),
    flexible: 3,
    fields: &[since(Ty::Str, 3), since(Ty::I16, 3), since(Ty::I16, 3)],
    tagged: &[],
};

static FINALIZED_FEATURE: Schema = Schema {
    name: "FinalizedFeatureKey",
    size: size_of::<FinalizedFeatureKey>(),
    flexible: 3,
    fields: &[since(Ty::Str, 3), since(Ty::I16, 3), since(Ty::I16, 3)],
    tagged: &[],
};

pub static API_VERSIONS: Schema = Schema {
    name: "ApiVersionsResponse",
    size: 0,
    flexible: 3,
    fields: &[since(Ty::I16, 0), since(array(&API_VERSION), 0), since(Ty::I32, 1)],
    tagged: &[(0, array(&SUPPORTED_FEATURE)), (1, Ty::I64), (2, array(&FINALIZED_FEATURE)), (3, Ty::Bool)],
};

pub static SASL_HANDSHAKE: Schema = Schema {
    name: "SaslHandshakeResponse",
    size: 0,
    flexible: NEVER,
    fields: &[since(Ty::I16, 0), since(Ty::Array(Elem::Str), 0)],
    tagged: &[],
};

pub static SASL_AUTHENTICATE: Schema = Schema {
    name: "SaslAuthenticateResponse",
    size: 0,
    flexible: 2,
    fields: &[since(Ty::I16, 0), since(Ty::Str, 0), since(Ty::Bytes, 0), since(Ty::I64, 1)],
    tagged: &[],
};

static COORDINATOR: Schema = Schema {
    name: "Coordinator",
    size: size_of::<Coordinator>(),
    flexible: 3,
    fields: &[
        since(Ty::Str, 4),
        since(Ty::I32, 4),
        since(Ty::Str, 4),
        since(Ty::I32, 4),
        since(Ty::I16, 4),
        since(Ty::Str, 4),
    ],
    tagged: &[],
};

pub static FIND_COORDINATOR: Schema = Schema {
    name: "FindCoordinatorResponse",
    size: 0,
    flexible: 3,
    fields: &[
        since(Ty::I32, 1),
        between(Ty::I16, 0, 3),
        between(Ty::Str, 1, 3),
        between(Ty::I32, 0, 3),
        between(Ty::Str, 0, 3),
        between(Ty::I32, 0, 3),
        since(array(&COORDINATOR), 4),
    ],
    tagged: &[],
};

static METADATA_BROKER: Schema = Schema {
    name: "MetadataResponseBroker",
    size: size_of::<MetadataResponseBroker>(),
    flexible: 9,
    fields: &[since(Ty::I32, 0), since(Ty::Str, 0), since(Ty::I32, 0), since(Ty::Str, 1)],
    tagged: &[],
};

static METADATA_PARTITION: Schema = Schema {
    name: "MetadataResponsePartition",
    size: size_of::<MetadataResponsePartition>(),
    flexible: 9,
    fields: &[
        since(Ty::I16, 0),
        since(Ty::I32, 0),
        since(Ty::I32, 0),
        since(Ty::I32, 7),
        since(Ty::Array(Elem::I32), 0),
        since(Ty::Array(Elem::I32), 0),
        since(Ty::Array(Elem::I32), 5),
    ],
    tagged: &[],
};

static METADATA_TOPIC: Schema = Schema {
    name: "MetadataResponseTopic",
    size: size_of::<MetadataResponseTopic>(),
    flexible: 9,
    fields: &[
        since(Ty::I16, 0),
        since(Ty::Str, 0),
        since(Ty::Uuid, 10),
        since(Ty::Bool, 1),
        since(array(&METADATA_PARTITION), 0),
        since(Ty::I32, 8),
    ],
    tagged: &[],
};

pub static METADATA: Schema = Schema {
    name: "MetadataResponse",
    size: 0,
    flexible: 9,
    fields: &[
        since(Ty::I32, 3),
        since(array(&METADATA_BROKER), 0),
        since(Ty::Str, 2),
        since(Ty::I32, 1),
        since(array(&METADATA_TOPIC), 0),
        between(Ty::I32, 8, 10),
        since(Ty::I16, 13),
    ],
    tagged: &[],
};

static LIST_OFFSETS_PARTITION: Schema = Schema {
    name: "ListOffsetsPartitionResponse",
    size: size_of::<ListOffsetsPartitionResponse>(),
    flexible: 6,
    fields: &[since(Ty::I32, 0), since(Ty::I16, 0), since(Ty::I64, 0), since(Ty::I64, 0), since(Ty::I32, 4)],
    tagged: &[],
};

static LIST_OFFSETS_TOPIC: Schema = Schema {
    name: "ListOffsetsTopicResponse",
    size: size_of::<ListOffsetsTopicResponse>(),
    flexible: 6,
    fields: &[since(Ty::Str, 0), since(array(&LIST_OFFSETS_PARTITION), 0)],
    tagged: &[],
};

pub static LIST_OFFSETS: Schema = Schema {
    name: "ListOffsetsResponse",
    size: 0,
    flexible: 6,
    fields: &[since(Ty::I32, 2), since(array(&LIST_OFFSETS_TOPIC), 0)],
    tagged: &[],
};

static OFFSET_FETCH_PARTITION: Schema = Schema {
    name: "OffsetFetchResponsePartition",
    size: size_of::<OffsetFetchResponsePartition>(),
    flexible: 6,
    fields: &[
        between(Ty::I32, 0, 7),
        between(Ty::I64, 0, 7),
        between(Ty::I32, 5, 7),
        between(Ty::Str, 0, 7),
        between(Ty::I16, 0, 7),
    ],
    tagged: &[],
};

static OFFSET_FETCH_TOPIC: Schema = Schema {
    name: "OffsetFetchResponseTopic",
    size: size_of::<OffsetFetchResponseTopic>(),
    flexible: 6,
    fields: &[between(Ty::Str, 0, 7), between(array(&OFFSET_FETCH_PARTITION), 0, 7)],
    tagged: &[],
};

static OFFSET_FETCH_GROUP_PARTITION: Schema = Schema {
    name: "OffsetFetchResponsePartitions",
    size: size_of::<OffsetFetchResponsePartitions>(),
    flexible: 6,
    fields: &[since(Ty::I32, 8), since(Ty::I64, 8), since(Ty::I32, 8), since(Ty::Str, 8), since(Ty::I16, 8)],
    tagged: &[],
};

static OFFSET_FETCH_GROUP_TOPIC: Schema = Schema {
    name: "OffsetFetchResponseTopics",
    size: size_of::<OffsetFetchResponseTopics>(),
    flexible: 6,
    fields: &[between(Ty::Str, 8, 9), since(Ty::Uuid, 10), since(array(&OFFSET_FETCH_GROUP_PARTITION), 8)],
    tagged: &[],
};

static OFFSET_FETCH_GROUP: Schema = Schema {
    name: "OffsetFetchResponseGroup",
    size: size_of::<OffsetFetchResponseGroup>(),
    flexible: 6,
    fields: &[since(Ty::Str, 8), since(array(&OFFSET_FETCH_GROUP_TOPIC), 8), since(Ty::I16, 8)],
    tagged: &[],
};

pub static OFFSET_FETCH: Schema = Schema {
    name: "OffsetFetchResponse",
    size: 0,
    flexible: 6,
    fields: &[
        since(Ty::I32, 3),
        between(array(&OFFSET_FETCH_TOPIC), 0, 7),
        between(Ty::I16, 2, 7),
        since(array(&OFFSET_FETCH_GROUP), 8),
    ],
    tagged: &[],
};
