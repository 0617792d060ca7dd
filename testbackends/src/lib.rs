//! Test support shared by the scalers', operator's and CLI's tests: each module starts one real
//! metric source on 127.0.0.1 (installed by `scripts/backends/*.sh`, which the test command runs),
//! waits until it is ready, and stops it when its handle is dropped.

pub mod moto;
pub mod prometheus;
pub mod tansu;
