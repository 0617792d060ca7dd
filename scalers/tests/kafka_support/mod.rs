//! Shared by the kafka integration tests: building a trigger from metadata pairs the way the
//! operator does, and the standard fixture — topic `orders` with 3 partitions holding 10, 7 and
//! 25 records, group `workers` committed at 4 (p0) and 5 (p2), never on p1 — and a fake broker
//! for one connection whose answers the test writes byte by byte.

#![allow(dead_code)]

use std::collections::BTreeMap;

use ebb_api::MetadataValue;
use ebb_scalers::kafka::config::parse_config;
use ebb_scalers::kafka::{KafkaConfig, KafkaScaler, PARAMS};
use ebb_scalers::params::{Params, ParseContext};
use ebb_testbackends::tansu::{Admin, Tansu};

pub const TOPIC: &str = "orders";
pub const GROUP: &str = "workers";
/// Records produced per partition of `orders`.
pub const PRODUCED: [(i32, u32); 3] = [(0, 10), (1, 7), (2, 25)];
/// Offsets committed by `workers` (p1 never).
pub const COMMITTED: [(i32, i64); 2] = [(0, 4), (2, 5)];

/// Parses a kafka trigger from metadata pairs and TriggerAuthentication parameters.
pub fn config(pairs: &[(&str, &str)], auth: &[(&str, &str)]) -> KafkaConfig {
    try_config(pairs, auth).unwrap_or_else(|e| panic!("{e}"))
}

pub fn try_config(pairs: &[(&str, &str)], auth: &[(&str, &str)]) -> Result<KafkaConfig, String> {
    let md: BTreeMap<String, MetadataValue> =
        pairs.iter().map(|(k, v)| ((*k).to_owned(), MetadataValue::from(*v))).collect();
    let mut ctx = ParseContext::default();
    ctx.auth.insert(0, auth.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect());
    parse_config(&Params::new(0, "kafka", PARAMS, &md, &ctx)).map_err(|e| e.to_string())
}

/// A scaler for `orders`/`workers` on `bootstrap` with extra metadata.
pub fn scaler(bootstrap: &str, extra: &[(&str, &str)]) -> KafkaScaler {
    let mut pairs = vec![("bootstrapServers", bootstrap), ("consumerGroup", GROUP), ("topic", TOPIC)];
    for (k, v) in extra {
        pairs.retain(|(a, _)| a != k);
        pairs.push((k, v));
    }
    pairs.retain(|(_, v)| !v.is_empty());
    KafkaScaler::new(config(&pairs, &[]))
}

/// Creates and fills the standard fixture on `addr` (a plain listener of the broker).
pub async fn fixture(addr: &str) -> Admin {
    let mut a = Admin::connect(addr).await.unwrap();
    a.create_topic(TOPIC, 3).await.unwrap();
    let next = a.produce(TOPIC, &PRODUCED).await.unwrap();
    assert_eq!(next, BTreeMap::from([(0, 10), (1, 7), (2, 25)]), "one record per batch gives exact offsets");
    a.commit(GROUP, TOPIC, &COMMITTED).await.unwrap();
    a
}

/// A broker with the standard fixture.
pub async fn broker_with_fixture() -> (Tansu, Admin) {
    let t = Tansu::start().unwrap();
    let a = fixture(&t.bootstrap()).await;
    (t, a)
}

/// A fake broker for one connection on 127.0.0.1: reads each request frame and writes what
/// `answer(request body without its length prefix, the broker's own port)` returns (a whole
/// frame, length prefix included); `None` closes the connection. Returns `host:port`.
pub async fn fake_broker(answer: impl Fn(Vec<u8>, u16) -> Option<Vec<u8>> + Send + 'static) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        loop {
            let Ok(len) = s.read_u32().await else { return };
            let mut body = vec![0u8; len as usize];
            if s.read_exact(&mut body).await.is_err() {
                return;
            }
            let Some(out) = answer(body, addr.port()) else { return };
            if s.write_all(&out).await.is_err() {
                return;
            }
        }
    });
    addr.to_string()
}
