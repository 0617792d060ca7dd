//! The registry from trigger `type` to its parameter declarations and parser. Any other type
//! is an "unknown trigger type" error listing the types ebb has.

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
    pub parse: ParseFn,
    /// Whether `useCachedMetrics` is meaningful (not for cron, cpu, memory).
    pub allows_cached_metrics: bool,
}

static DEFS: &[ScalerDef] = &[
    ScalerDef {
        type_name: "cron",
        params: crate::cron::PARAMS,
        parse: crate::cron::parse,
        allows_cached_metrics: false,
    },
    ScalerDef {
        type_name: "prometheus",
        params: crate::prometheus::PARAMS,
        parse: crate::prometheus::parse,
        allows_cached_metrics: true,
    },
    ScalerDef {
        type_name: "aws-sqs-queue",
        params: crate::aws::sqs::PARAMS,
        parse: crate::aws::sqs::parse,
        allows_cached_metrics: true,
    },
    ScalerDef {
        type_name: "aws-cloudwatch",
        params: crate::aws::cloudwatch::PARAMS,
        parse: crate::aws::cloudwatch::parse,
        allows_cached_metrics: true,
    },
    ScalerDef {
        type_name: "external",
        params: crate::external::PARAMS,
        parse: crate::external::parse,
        allows_cached_metrics: true,
    },
    ScalerDef {
        type_name: "external-push",
        params: crate::external::PARAMS,
        parse: crate::external::parse_push,
        allows_cached_metrics: true,
    },
    ScalerDef {
        type_name: "kafka",
        params: crate::kafka::PARAMS,
        parse: crate::kafka::parse,
        allows_cached_metrics: true,
    },
    ScalerDef {
        type_name: "apache-kafka",
        params: crate::kafka::APACHE_PARAMS,
        parse: crate::kafka::parse_apache,
        allows_cached_metrics: true,
    },
    // Measured by the HPA itself (a Resource metric), never polled: see `crate::resource`.
    ScalerDef {
        type_name: "cpu",
        params: crate::resource::PARAMS,
        parse: crate::resource::parse_cpu,
        allows_cached_metrics: false,
    },
    ScalerDef {
        type_name: "memory",
        params: crate::resource::PARAMS,
        parse: crate::resource::parse_memory,
        allows_cached_metrics: false,
    },
];

/// Every implemented trigger type.
pub fn implemented() -> impl Iterator<Item = &'static ScalerDef> {
    DEFS.iter()
}

/// Looks a trigger type up; any type not in the registry is an "unknown trigger type" error.
pub fn lookup(index: usize, type_: &str) -> Result<&'static ScalerDef, ParseError> {
    DEFS.iter().find(|d| d.type_name == type_).ok_or_else(|| {
        let known: Vec<&str> = DEFS.iter().map(|d| d.type_name).collect();
        ParseError {
            location: Location::Trigger { index, type_: type_.to_owned(), parameter: None },
            message: format!("unknown trigger type {type_:?}; ebb knows: {}", known.join(", ")),
            kind: ParseErrorKind::UnknownTriggerType,
        }
    })
}
