//! The cron scaler: `desiredReplicas` while the time in `timezone` lies in a window opened by
//! `start` and closed by `end` (5-field Linux cron expressions), 0 otherwise; target 1. Needs no
//! connection, so it is evaluated at whatever instant the caller passes (wall clock or simulated).

pub mod schedule;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use ebb_api::metric_name;

use crate::error::{ParseError, ParseErrorKind, ScalerError};
use crate::params::{ParamKind, ParamSpec, Params};
use crate::scaler::{Measurement, Scaler};
use crate::trigger::ScalerConfig;
use schedule::Schedule;

/// Parameters of the cron trigger.
pub const PARAMS: &[ParamSpec] = &[
    ParamSpec::new("timezone", ParamKind::Text).required(),
    ParamSpec::new("start", ParamKind::Text).required(),
    ParamSpec::new("end", ParamKind::Text).required(),
    ParamSpec::new("desiredReplicas", ParamKind::Text).required(),
];

/// A validated cron trigger.
#[derive(Debug, Clone)]
pub struct CronConfig {
    pub timezone: Tz,
    pub start: Schedule,
    pub end: Schedule,
    pub desired_replicas: i64,
}

/// Registry entry point.
pub fn parse(p: &Params<'_>) -> Result<Arc<dyn ScalerConfig>, ParseError> {
    Ok(Arc::new(parse_config(p)?))
}

fn parse_config(p: &Params<'_>) -> Result<CronConfig, ParseError> {
    let tz_name = p.required_text("timezone")?;
    let timezone: Tz = tz_name.parse().map_err(|_| {
        p.error(
            "timezone",
            ParseErrorKind::InvalidParameter,
            format!(
                "unknown time zone {tz_name:?}; expected an IANA name such as \"Asia/Seoul\" or \"Etc/UTC\""
            ),
        )
    })?;
    let schedule = |name: &str| -> Result<Schedule, ParseError> {
        let expr = p.required_text(name)?;
        Schedule::parse(&expr).map_err(|e| p.error(name, ParseErrorKind::InvalidParameter, e.to_string()))
    };
    let start = schedule("start")?;
    let end = schedule("end")?;
    if start.same_fire_times(&end) {
        return Err(p.error(
            "end",
            ParseErrorKind::InvalidParameter,
            "start and end fire at the same times, so the window never opens; they must differ",
        ));
    }
    let raw = p.required_text("desiredReplicas")?;
    let desired_replicas = match raw.trim().parse::<i64>() {
        Ok(n) if n >= 1 => n,
        Ok(n) => {
            return Err(p.error(
                "desiredReplicas",
                ParseErrorKind::InvalidParameter,
                format!(
                    "must be an integer ≥ 1, found {n}; outside the window the trigger already reports 0 (set minReplicaCount: 0 to scale to zero)"
                ),
            ));
        }
        Err(_) => {
            return Err(p.error(
                "desiredReplicas",
                ParseErrorKind::InvalidParameter,
                format!("must be an integer ≥ 1, found {raw:?}"),
            ));
        }
    };
    Ok(CronConfig { timezone, start, end, desired_replicas })
}

impl CronConfig {
    /// The trigger's value at `now`.
    pub fn value_at(&self, now: DateTime<Utc>) -> f64 {
        if schedule::window_open(&self.start, &self.end, self.timezone, now) {
            self.desired_replicas as f64
        } else {
            0.0
        }
    }
}

impl ScalerConfig for CronConfig {
    fn metric_part(&self) -> String {
        metric_name::cron_part(self.timezone.name(), self.start.expression(), self.end.expression())
    }
    fn target(&self) -> f64 {
        1.0
    }
    fn activation_target(&self) -> f64 {
        0.0
    }
    fn build(&self) -> Result<Arc<dyn Scaler>, ScalerError> {
        Ok(Arc::new(self.clone()))
    }
    fn describe(&self) -> String {
        format!(
            "desiredReplicas {} from \"{}\" until \"{}\" ({})",
            self.desired_replicas,
            self.start.expression(),
            self.end.expression(),
            self.timezone.name()
        )
    }
}

#[async_trait]
impl Scaler for CronConfig {
    async fn measure(&self, now: DateTime<Utc>) -> Result<Measurement, ScalerError> {
        Ok(Measurement::from_value(self.value_at(now), 0.0))
    }
}

#[cfg(test)]
mod tests;
