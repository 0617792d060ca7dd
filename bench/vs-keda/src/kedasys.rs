//! KEDA's programs as [`Proc`]s, through the launcher `ebb_testbackends::keda` (which builds a
//! KEDA release with `bench/keda/build.sh` and starts its operator, metrics adapter and
//! admission webhook out of cluster). Builds are made once per version and process.

use std::collections::HashMap;
use std::sync::Mutex;

use ebb_testbackends::keda::{self, Build, Options, Running};
use serde::Deserialize as _;

use crate::plane::{Plane, PlaneKind};
use crate::system::{Limits, Proc};

static BUILDS: Mutex<Option<HashMap<String, Result<Build, String>>>> = Mutex::new(None);

/// Builds KEDA `version` (cached: `/var/tmp/ebb-keda/VERSION`); blocking, minutes the first time.
pub fn build(version: &str) -> Result<Build, String> {
    let mut builds = BUILDS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let builds = builds.get_or_insert_with(HashMap::new);
    let built = builds.entry(version.to_owned()).or_insert_with(|| keda::build(version));
    built.clone()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f).await.map_err(|e| format!("task: {e}"))?
}

/// Installs KEDA `version`'s own CRDs on `plane`. Applying them is idempotent; a wait that
/// found a CRD without status yet (kubectl's "accessor error" right after the apply) is retried.
pub async fn install_crds(plane: &Plane, version: &str) -> Result<(), String> {
    let build = build_async(version).await?;
    if plane.kind == PlaneKind::Local {
        // The launcher applies them with kubectl, which validates against the OpenAPI document
        // the local control plane does not serve: create them directly there.
        for path in &build.crds {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            for doc in serde_yaml::Deserializer::from_str(&text) {
                let crd =
                    serde_json::Value::deserialize(doc).map_err(|e| format!("{}: {e}", path.display()))?;
                if crd.is_object() {
                    plane.create_crd(&crd).await.map_err(|e| format!("{}: {e}", path.display()))?;
                }
            }
        }
        return Ok(());
    }
    let mut last = String::new();
    for _ in 0..3 {
        let (kubeconfig, build) = (plane.kubeconfig().to_owned(), build.clone());
        match blocking(move || keda::install_crds(&kubeconfig, &build)).await {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    Err(last)
}

async fn build_async(version: &str) -> Result<Build, String> {
    let v = version.to_owned();
    blocking(move || build(&v)).await
}

fn options(plane: &Plane, limits: Limits) -> Options {
    Options {
        kubeconfig: plane.kubeconfig().to_owned(),
        namespace: "keda".into(),
        watch_namespace: String::new(),
        kube_api_qps: limits.qps,
        kube_api_burst: limits.burst,
        extra_args: Vec::new(),
    }
}

fn proc(r: Running) -> Proc {
    Proc::new(r.pid(), r.metrics_url(), r.serving_addr(), r.log_path(), Box::new(r))
}

/// Starts KEDA's operator (ready = its health probe).
pub async fn operator(plane: &Plane, version: &str, limits: Limits) -> Result<Proc, String> {
    let build = build_async(version).await?;
    let opts = options(plane, limits);
    blocking(move || keda::start_operator(&build, &opts).map(proc)).await
}

/// Starts KEDA's metrics adapter talking to `operator` and registers it as APIService
/// v1beta1.external.metrics.k8s.io: with the launcher on upstream (an ExternalName Service),
/// by mapping the Service on the local control plane.
pub async fn adapter(plane: &Plane, version: &str, operator: &Proc) -> Result<Proc, String> {
    let build = build_async(version).await?;
    let opts = options(plane, Limits::default());
    let running = operator.guard::<Running>().ok_or("the operator was not started by the KEDA launcher")?;
    let adapter = tokio::task::block_in_place(|| keda::start_adapter(&build, &opts, running))?;
    match plane.kind {
        PlaneKind::Upstream => {
            let kubeconfig = plane.kubeconfig().to_owned();
            tokio::task::block_in_place(|| keda::register_apiservice(&kubeconfig, &adapter))?;
        }
        PlaneKind::Local => {
            let addr = adapter.serving_addr().ok_or("the adapter has no serving address")?;
            let ca = adapter.ca_pem().ok_or("the adapter has no CA")?;
            let port = plane.expose("keda", keda::ADAPTER_SERVICE, addr).await?;
            plane.register_apiservice("keda", keda::ADAPTER_SERVICE, port, &ca).await?;
        }
    }
    Ok(proc(adapter))
}

/// Starts KEDA's admission webhook.
pub async fn webhook(plane: &Plane, version: &str) -> Result<Proc, String> {
    let build = build_async(version).await?;
    let opts = options(plane, Limits::default());
    blocking(move || keda::start_webhook(&build, &opts).map(proc)).await
}
