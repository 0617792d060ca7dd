//! The registry from trigger `type` to its parameter declarations and parser. Types ebb knows
//! but whose scaler is not in this build are listed too, so users get a precise "not
//! implemented" message instead of "unknown type".

use std::sync::Arc;

use crate::error::{Location, ParseError, ParseErrorKind};
use crate::params::{ParamSpec, Params};
use crate::trigger::ScalerConfig;

/// Parses one trigger's parameters into its scaler configuration.
pub type ParseFn = fn(&Params<'_>) -> Result<Arc<dyn ScalerConfig>, ParseError>;

/// One trigger type.
#[derive(Debug, Clone, Copy)]
pub struct ScalerDef {
    pub type_name: &'static str,
    pub params: &'static [ParamSpec],
    /// `None` while the scaler is not implemented in this build.
    pub parse: Option<ParseFn>,
    /// Whether `useCachedMetrics` is meaningful (not for cron, cpu, memory).
    pub allows_cached_metrics: bool,
}

const PLANNED: &[&str] = &[];

static DEFS: &[ScalerDef] = &[
    ScalerDef {
        type_name: "cron",
        params: crate::cron::PARAMS,
        parse: Some(crate::cron::parse),
        allows_cached_metrics: false,
    },
    ScalerDef {
        type_name: "prometheus",
        params: crate::prometheus::PARAMS,
        parse: Some(crate::prometheus::parse),
        allows_cached_metrics: true,
    },
    ScalerDef {
        type_name: "aws-sqs-queue",
        params: crate::aws::sqs::PARAMS,
        parse: Some(crate::aws::sqs::parse),
        allows_cached_metrics: true,
    },
    ScalerDef {
        type_name: "aws-cloudwatch",
        params: crate::aws::cloudwatch::PARAMS,
        parse: Some(crate::aws::cloudwatch::parse),
        allows_cached_metrics: true,
    },
    ScalerDef {
        type_name: "kafka",
        params: crate::kafka::PARAMS,
        parse: Some(crate::kafka::parse),
        allows_cached_metrics: true,
    },
];

/// Every implemented trigger type.
pub fn implemented() -> impl Iterator<Item = &'static ScalerDef> {
    DEFS.iter()
}

/// Looks a trigger type up; the error says whether it is unknown or not yet implemented.
pub fn lookup(index: usize, type_: &str) -> Result<&'static ScalerDef, ParseError> {
    if let Some(def) = DEFS.iter().find(|d| d.type_name == type_ && d.parse.is_some()) {
        return Ok(def);
    }
    let location = Location::Trigger { index, type_: type_.to_owned(), parameter: None };
    let supported: Vec<&str> = DEFS.iter().map(|d| d.type_name).collect();
    if PLANNED.contains(&type_) {
        return Err(ParseError {
            location,
            message: format!(
                "the {type_} scaler is not implemented in this build of ebb yet (implemented: {})",
                supported.join(", ")
            ),
            kind: ParseErrorKind::NotImplemented,
        });
    }
    let mut all = supported.clone();
    all.extend(PLANNED);
    Err(ParseError {
        location,
        message: format!("unknown trigger type {type_:?}; ebb knows: {}", all.join(", ")),
        kind: ParseErrorKind::UnknownTriggerType,
    })
}
