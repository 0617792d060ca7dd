//! Built-in controllers of the control plane: workloads' status follows their spec
//! (`deployments`), and the HorizontalPodAutoscaler controller (`hpa`).

pub mod deployments;
pub mod hpa;
