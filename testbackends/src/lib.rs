//! Test support shared by the scalers', operator's and CLI's tests: each module starts one real
//! backend on 127.0.0.1 (installed by `scripts/backends/*.sh`, which the test command runs) —
//! a metric source, or upstream Kubernetes ([`kubernetes`]) — waits until it is ready, and stops
//! it when its handle is dropped.

pub mod apache_kafka;
pub mod external_scaler;
pub mod faults;
pub mod http_stub;
pub mod keda;
pub mod kubernetes;
pub mod moto;
pub mod procfs;
pub mod prometheus;
pub mod tansu;
pub mod watched;
