//! Ownership of the loops: only the context's objects hold a loop's handle, so dropping the
//! context stops every loop task and releases what the tasks held.

use std::convert::Infallible;
use std::sync::Arc;

use ebb_api::ScaledObject;
use kube::client::Body;
use kube::runtime::events::Reporter;

use crate::target::Target;

fn client() -> kube::Client {
    let svc = tower::service_fn(|_req: http::Request<Body>| async {
        Ok::<_, Infallible>(http::Response::builder().status(503).body(Body::empty()).unwrap())
    });
    kube::Client::new(svc, "apps")
}

#[tokio::test]
async fn dropping_the_context_stops_every_loop() {
    let args = <crate::Args as clap::Parser>::try_parse_from(["ebb-operator"]).unwrap();
    let metrics = crate::metrics::Metrics::register(&mut prometheus_client::registry::Registry::default());
    let reporter = Reporter { controller: "test".into(), instance: None };
    let leadership = crate::leader::Leadership::always();
    let ctx = Arc::new(crate::context(&args, client(), metrics, reporter, leadership).unwrap());

    let mut so: ScaledObject =
        serde_yaml::from_str(include_str!("../../../tests/fixtures/seed/cron-prescale.yaml")).unwrap();
    so.metadata.namespace = Some("apps".into());
    let parsed = ebb_scalers::parse_scaled_object(&so, &ebb_scalers::ParseContext::default()).unwrap();
    let state = ctx.object("apps", "php-apache-cron-scaled");
    let handle = crate::scaleloop::spawn(
        ctx.core.clone(),
        state.model.clone(),
        Arc::new(so),
        &parsed,
        Target::deployment("php-apache"),
    )
    .unwrap();
    let (shared, core, model) =
        (Arc::downgrade(&handle.shared), Arc::downgrade(&ctx.core), Arc::downgrade(&state.model));
    *state.scale_loop.lock().await = Some(handle);
    drop(state);
    tokio::task::yield_now().await;
    assert!(shared.upgrade().is_some(), "the loop runs");

    drop(ctx);
    // An aborted task's future is dropped when the runtime next handles it.
    for _ in 0..100 {
        if shared.upgrade().is_none() && core.upgrade().is_none() {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(shared.upgrade().is_none(), "the loop task still holds its values: it was not stopped");
    assert!(core.upgrade().is_none(), "the loops' context outlived the operator's context");
    assert!(model.upgrade().is_none(), "the status model outlived its object");
}
