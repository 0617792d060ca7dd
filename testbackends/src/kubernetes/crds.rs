//! ebb's CustomResourceDefinitions on a real cluster: applied by their own names (server-side
//! apply) and awaited until kube-apiserver marks each Established, so objects of those kinds can
//! be created at once.

use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};

/// How long a CRD may take to become Established.
const ESTABLISHED_TIMEOUT: Duration = Duration::from_secs(30);

/// Applies every CRD of `ebb_api::crds::all()` with field manager `manager` and waits until each
/// is Established.
pub async fn install(client: &kube::Client, manager: &str) -> Result<(), String> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let pp = PatchParams::apply(manager).force();
    for (_, crd) in ebb_api::crds::all() {
        let name = crd.metadata.name.clone().ok_or("a CRD without a name")?;
        crds.patch(&name, &pp, &Patch::Apply(&crd))
            .await
            .map_err(|e| format!("cannot apply CRD {name}: {e}"))?;
        let started = Instant::now();
        loop {
            let conds = crds.get(&name).await.ok().and_then(|c| c.status?.conditions).unwrap_or_default();
            if conds.iter().any(|c| c.type_ == "Established" && c.status == "True") {
                break;
            }
            if started.elapsed() > ESTABLISHED_TIMEOUT {
                return Err(format!("CRD {name} not Established within {ESTABLISHED_TIMEOUT:?}: {conds:?}"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}
