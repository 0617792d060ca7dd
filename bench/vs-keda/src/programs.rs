//! One entry point per program role whatever the system: a control plane prepared for a system
//! (its CRDs installed), its operator, its metrics API server registered behind the aggregator,
//! its admission webhook and the path that webhook validates ScaledObjects on.

use std::path::Path;

#[cfg(not(feature = "keda"))]
use crate::kedastub as keda;
#[cfg(feature = "keda")]
use crate::kedasys as keda;
use crate::plane::{Plane, PlaneKind};
use crate::system::{self, EbbBinaries, InternalPki, Limits, Proc, System};

/// Checks once, before any run, that `system` can be started (KEDA: built).
pub fn prepare(system: &System) -> Result<(), String> {
    match system {
        System::Ebb => Ok(()),
        System::Keda(v) => keda::build(v).map(drop),
    }
}

/// A fresh control plane of `kind` in `dir` with `system`'s CRDs.
pub async fn plane_for(kind: PlaneKind, system: &System, dir: &Path) -> Result<Plane, String> {
    let plane = Plane::start(kind, dir).await?;
    let installed = match system {
        System::Ebb => plane.install_ebb_crds().await,
        System::Keda(v) => keda::install_crds(&plane, v).await.map_err(|e| format!("KEDA's CRDs: {e}")),
    };
    match installed {
        Ok(()) => Ok(plane),
        Err(e) => {
            plane.stop().await;
            Err(e)
        }
    }
}

/// An operator; `with_internal` also serves ebb's internal endpoint (for its metrics API server).
pub struct Operator {
    pub proc: Proc,
    pub pki: Option<InternalPki>,
}

pub async fn operator(
    bins: &EbbBinaries,
    plane: &Plane,
    system: &System,
    limits: Limits,
    with_internal: bool,
) -> Result<Operator, String> {
    match system {
        System::Ebb => {
            let pki = if with_internal { Some(InternalPki::write(plane.dir())?) } else { None };
            let proc = system::ebb_operator(bins, plane, limits, pki.as_ref()).await?;
            Ok(Operator { proc, pki })
        }
        System::Keda(v) => Ok(Operator { proc: keda::operator(plane, v, limits).await?, pki: None }),
    }
}

/// The metrics API server (ebb-metrics-apiserver or KEDA's adapter), registered as APIService
/// v1beta1.external.metrics.k8s.io and Available.
pub async fn metrics_server(
    bins: &EbbBinaries,
    plane: &Plane,
    system: &System,
    operator: &Operator,
) -> Result<Proc, String> {
    match system {
        System::Ebb => {
            let pki =
                operator.pki.as_ref().ok_or("the operator was started without its internal endpoint")?;
            let internal = operator.proc.serving.ok_or("the operator has no internal endpoint")?;
            let server = system::ebb_metrics_apiserver(bins, plane, pki, internal).await?;
            let addr = server.serving.ok_or("the metrics API server has no serving address")?;
            let port = plane.expose("keda", "ebb-metrics-apiserver", addr).await?;
            plane.register_apiservice("keda", "ebb-metrics-apiserver", port, plane.service_ca_pem()).await?;
            Ok(server)
        }
        System::Keda(v) => keda::adapter(plane, v, &operator.proc).await,
    }
}

pub async fn webhook(bins: &EbbBinaries, plane: &Plane, system: &System) -> Result<Proc, String> {
    match system {
        System::Ebb => system::ebb_webhook(bins, plane).await,
        System::Keda(v) => keda::webhook(plane, v).await,
    }
}

/// The path the webhook validates ScaledObjects on.
pub fn webhook_path(system: &System) -> &'static str {
    match system {
        System::Ebb => "/validate",
        System::Keda(_) => "/validate-keda-sh-v1alpha1-scaledobject",
    }
}
