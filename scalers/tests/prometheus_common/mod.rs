//! Helpers shared by the prometheus scaler's integration tests: build a scaler through the
//! registry exactly as the operator does, and poll it until Prometheus has scraped what the test
//! expects.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use ebb_api::MetadataValue;
use ebb_scalers::params::Params;
use ebb_scalers::{Measurement, ParseContext, Scaler, ScalerConfig, ScalerError, registry};

/// Parses the trigger through the registry (trigger index 0).
pub fn config(metadata: &[(&str, &str)], auth: &[(&str, &str)]) -> Arc<dyn ScalerConfig> {
    let def = registry::lookup(0, "prometheus").unwrap();
    let m: BTreeMap<String, MetadataValue> =
        metadata.iter().map(|(k, v)| ((*k).to_owned(), MetadataValue::from(*v))).collect();
    let mut ctx = ParseContext::default();
    ctx.auth.insert(0, auth.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect());
    let p = Params::new(0, "prometheus", def.params, &m, &ctx);
    (def.parse)(&p).unwrap()
}

/// Parses and builds the live scaler.
pub fn scaler(metadata: &[(&str, &str)], auth: &[(&str, &str)]) -> Arc<dyn Scaler> {
    config(metadata, auth).build().unwrap()
}

pub async fn measure(s: &Arc<dyn Scaler>) -> Result<Measurement, ScalerError> {
    s.measure(Utc::now()).await
}

/// Measures until `done` holds (Prometheus needs a few scrapes to see a new value), at most 30 s;
/// returns the last result.
pub async fn measure_until(
    s: &Arc<dyn Scaler>,
    done: impl Fn(&Result<Measurement, ScalerError>) -> bool,
) -> Result<Measurement, ScalerError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = measure(s).await;
        if done(&r) || Instant::now() > deadline {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Measures until the value equals `v`.
pub async fn measure_value(s: &Arc<dyn Scaler>, v: f64) -> Result<Measurement, ScalerError> {
    measure_until(s, |r| matches!(r, Ok(m) if m.value == v)).await
}
