//! ebb's scalers: typed, pure trigger parsing (each scaler declares its parameters once), the
//! `Scaler` trait and registry, one module per scaler, and the pure scaling arithmetic shared by
//! the operator and the CLI (the HPA replica calculator and the activation decision).

pub mod cron;
pub mod hpa;
