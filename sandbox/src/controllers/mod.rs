//! Built-in controllers of the control plane: workloads' status follows their spec
//! (`deployments`), the HorizontalPodAutoscaler controller (`hpa`), and APIService
//! availability (`apiservices`).

pub mod apiservices;
pub mod deployments;
pub mod hpa;
