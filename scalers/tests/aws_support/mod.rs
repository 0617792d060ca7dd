//! Helpers shared by the AWS scalers' integration tests: parsing a trigger the way the operator
//! does (static keys from a TriggerAuthentication), measuring it with the usual bound, and an
//! SDK client on moto to create queues, messages and metrics.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ebb_api::MetadataValue;
use ebb_scalers::aws::{AwsClients, AwsCredentials, ClientKey, Secret};
use ebb_scalers::params::Params;
use ebb_scalers::{Measurement, ParseContext, ScalerConfig, ScalerError, measure_with_timeout};

pub const KEY_ID: &str = "AKIAEBBTESTKEY000001";
pub const SECRET_KEY: &str = "ebbSecretKeyMustNeverBeLogged/0123456789";
pub const SESSION_TOKEN: &str = "ebbSessionTokenMustNeverBeLogged0123456789";

/// Context with static keys from a TriggerAuthentication for trigger 0.
pub fn context(session_token: bool) -> ParseContext {
    let mut auth = BTreeMap::from([
        ("awsAccessKeyID".to_owned(), KEY_ID.to_owned()),
        ("awsSecretAccessKey".to_owned(), SECRET_KEY.to_owned()),
    ]);
    if session_token {
        auth.insert("awsSessionToken".to_owned(), SESSION_TOKEN.to_owned());
    }
    let mut ctx = ParseContext::default();
    ctx.auth.insert(0, auth);
    ctx
}

/// Parses trigger 0 of `type_` through the registry.
pub fn parse(type_: &str, meta: &[(&str, &str)], ctx: &ParseContext) -> Arc<dyn ScalerConfig> {
    let m: BTreeMap<String, MetadataValue> =
        meta.iter().map(|(k, v)| ((*k).to_owned(), MetadataValue::from(*v))).collect();
    let def = ebb_scalers::registry::lookup(0, type_).unwrap();
    let p = Params::new(0, type_, def.params, &m, ctx);
    let parse = def.parse;
    parse(&p).unwrap()
}

/// Builds the scaler and measures once at `now`, bounded like the operator does.
pub async fn measure_at(cfg: &Arc<dyn ScalerConfig>, now: DateTime<Utc>) -> Result<Measurement, ScalerError> {
    let s = cfg.build()?;
    measure_with_timeout(&s, now, Duration::from_secs(3)).await
}

pub async fn measure(cfg: &Arc<dyn ScalerConfig>) -> Result<Measurement, ScalerError> {
    measure_at(cfg, Utc::now()).await
}

/// SDK clients on `endpoint` for setting up fixtures.
pub fn admin(endpoint: &str) -> Arc<AwsClients> {
    AwsClients::shared(ClientKey {
        region: "us-east-1".into(),
        endpoint: Some(endpoint.to_owned()),
        credentials: AwsCredentials::Static {
            access_key_id: Secret::new("AKIAEBBADMIN"),
            secret_access_key: Secret::new("admin"),
            session_token: None,
        },
    })
}

/// A port nothing listens on.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
