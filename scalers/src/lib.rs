//! ebb's scalers: typed, pure trigger parsing (each scaler declares its parameters once), the
//! `Scaler` trait and registry, one module per scaler, and the pure scaling arithmetic shared by
//! the operator and the CLI (the HPA replica calculator and the activation decision).

pub mod auth;
pub mod aws;
pub mod cron;
pub mod decision;
pub mod egress;
pub mod encode;
pub mod env;
pub mod error;
pub mod external;
pub mod formula;
pub mod hpa;
pub mod kafka;
pub mod params;
pub mod pem_params;
pub mod prometheus;
pub mod registry;
pub mod resource;
pub mod scaler;
pub mod trigger;
pub mod validate;

pub use error::{Location, ParseError, ParseErrorKind, ScalerError};
pub use params::ParseContext;
pub use scaler::{Measurement, Scaler, measure_with_timeout, query_with_timeout};
pub use trigger::{ScalerConfig, TriggerSpec};
pub use validate::{ParsedScaledObject, parse_scaled_object};
