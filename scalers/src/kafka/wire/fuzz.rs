//! An entry point for fuzzing the connection layer: arbitrary bytes stand for everything a broker
//! sends on one connection, and one exchange runs through the same code as a poll — framing,
//! the schema walk, decoding, version negotiation, SASL. Not used by the scaler itself.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{GroupId, MetadataRequest, OffsetFetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::scram::ScramHash;
use super::{Connection, Stream, WireError};
use crate::kafka::config::{SaslMechanism, SaslSettings};

/// The address the replayed broker is reported under in errors.
pub const REPLAY_ADDR: &str = "replay:9092";

/// A stream whose reads return `data` (then end of stream) and whose writes are discarded. Reads
/// never wait, so a future driven over it needs no runtime.
#[derive(Debug)]
pub struct Replay {
    data: Vec<u8>,
    pos: usize,
}

impl Replay {
    pub fn new(data: &[u8]) -> Self {
        Self { data: data.to_vec(), pos: 0 }
    }
}

impl AsyncRead for Replay {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = buf.remaining().min(self.data.len() - self.pos);
        let start = self.pos;
        buf.put_slice(&self.data[start..start + n]);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Replay {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// One exchange over `stream` as with a broker at [`REPLAY_ADDR`]: ApiVersions (with the v0
/// retry on UNSUPPORTED_VERSION), SASL when `sasl` is given, Metadata for topic `t`, then
/// OffsetFetch for group `g` on partitions 0–2 of `t` — each at the version negotiated, each
/// response checked and decoded as in a poll. Requests use correlation ids 1, 2, 3, … in order.
pub async fn exchange<S: Stream + 'static>(stream: S, sasl: Option<&SaslSettings>) -> Result<(), WireError> {
    let mut conn = Connection::over(Box::new(stream), REPLAY_ADDR, sasl, Arc::default()).await?;
    let topic = || TopicName(StrBytes::from_static_str("t"));
    let mut md = MetadataRequest::default();
    let mut mt = MetadataRequestTopic::default();
    mt.name = Some(topic());
    md.topics = Some(vec![mt]);
    let v = conn.version::<MetadataRequest>()?;
    if v >= 4 {
        md.allow_auto_topic_creation = false;
    }
    conn.send_version(&md, v).await?;
    let v = conn.version::<OffsetFetchRequest>()?;
    let mut of = OffsetFetchRequest::default();
    if v >= 8 {
        let mut g = OffsetFetchRequestGroup::default();
        g.group_id = GroupId(StrBytes::from_static_str("g"));
        let mut t = OffsetFetchRequestTopics::default();
        t.name = topic();
        t.partition_indexes = vec![0, 1, 2];
        g.topics = Some(vec![t]);
        of.groups = vec![g];
    } else {
        of.group_id = GroupId(StrBytes::from_static_str("g"));
        let mut t = OffsetFetchRequestTopic::default();
        t.name = topic();
        t.partition_indexes = vec![0, 1, 2];
        of.topics = Some(vec![t]);
    }
    conn.send_version(&of, v).await?;
    Ok(())
}

/// Feeds `data` as everything one broker sends on a connection and runs [`exchange`] to its end.
/// The first byte selects SASL (0: none, 1: PLAIN, 2: SCRAM-SHA-256, 3: SCRAM-SHA-512, other:
/// none); the rest is the response stream. Returns the error the exchange ended with; never
/// panics and never reserves memory beyond what the bytes justify.
pub fn feed(data: &[u8]) -> Result<(), WireError> {
    let (mode, rest) = data.split_first().map_or((0, &[][..]), |(m, r)| (*m, r));
    let mechanism = match mode {
        1 => Some(SaslMechanism::Plain),
        2 => Some(SaslMechanism::Scram(ScramHash::Sha256)),
        3 => Some(SaslMechanism::Scram(ScramHash::Sha512)),
        _ => None,
    };
    let sasl = mechanism.map(|mechanism| SaslSettings {
        mechanism,
        username: "user".to_owned(),
        password: "password".to_owned(),
        msk_iam: None,
        oauth: None,
    });
    futures::executor::block_on(exchange(Replay::new(rest), sasl.as_ref()))
}

#[cfg(test)]
#[path = "fuzz_tests.rs"]
mod tests;
